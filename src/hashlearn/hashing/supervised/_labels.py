"""Supervision of the supervised hashers: class labels or a 0/1 label matrix → a (n, c) label matrix.

* :func:`check_supervision` — the boundary check of ``y`` (length, NaN, a single class, rows without a
  label), returning the 0/1 label matrix ``Y`` and the classes.
* :class:`PairwiseLabels` — the pairwise semantic similarity ``S_ij = [y_i and y_j share a label]``
  without forming the ``n × n`` matrix where it can be avoided: with one label per row
  ``S = Y Yᵀ`` has rank ``c`` and ``S V`` costs ``O(n c k)``; with several labels per row the
  products are taken over row blocks (``O(n² k)`` time, one block of memory).
"""

from __future__ import annotations

import numpy as np

from ...errors import ValidationError

__all__ = ["check_supervision", "PairwiseLabels", "LabelledFitMixin"]

_BLOCK = 2048  # rows per block of the dense multi-label similarity


def _first(idx: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:k])
    return shown + (", ..." if idx.shape[0] > k else "")


def _label_text(value) -> str:
    item = value.item() if isinstance(value, np.generic) else value
    return repr(item) if isinstance(item, str) else str(item)


def check_supervision(y, n_samples: int, *, who: str = "the hasher") -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate the supervision ``y`` of ``n_samples`` training rows.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_classes)
        Class labels (integers, or any sortable labels such as strings; floats must be integral), or a
        0/1 (bool or numeric) multi-label matrix whose rows each hold at least one label. A column
        ``(n_samples, 1)`` is read as class labels.
    n_samples : int
        Rows of ``X``.
    who : str
        Name used in the messages.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_classes), float32
        0/1 label matrix (one-hot for class labels).
    classes : ndarray of shape (n_classes,)
        The sorted class labels (``arange(n_classes)`` for a label matrix).
    multilabel : bool
        Whether ``y`` was a label matrix.

    Raises
    ------
    ValidationError
        ``y`` is None, of the wrong length or dimension, holds NaN / infinite / non-integral floats,
        a single class, values other than 0/1 (matrix), or rows without any label (matrix); the
        message names the numbers (and the first offending rows).
    """
    if y is None:
        raise ValidationError(
            f"{who} requires y to be passed, but the target y is None: give class labels of shape "
            f"({n_samples},) or a 0/1 label matrix of shape ({n_samples}, n_classes)")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise ValidationError(f"y must be 1-D class labels or a 2-D 0/1 label matrix, got {arr.ndim} dimensions "
                              f"(shape {arr.shape})")
    if arr.shape[0] != n_samples:
        raise ValidationError(f"y has {arr.shape[0]} rows of labels but X has {n_samples} rows")
    if arr.dtype.kind == "c" or arr.dtype.kind == "V":
        raise ValidationError(f"y has dtype {arr.dtype}; expected integer labels or a 0/1 matrix")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.flatnonzero(bad.reshape(arr.shape[0], -1).any(axis=1))
            raise ValidationError(f"y holds NaN or infinity in {rows.shape[0]} of {n_samples} rows (rows {_first(rows)})")
        if np.any(arr != np.round(arr)):
            rows = np.flatnonzero((arr != np.round(arr)).reshape(arr.shape[0], -1).any(axis=1))
            raise ValidationError(f"y holds non-integral values in {rows.shape[0]} of {n_samples} rows "
                                  f"(rows {_first(rows)}); expected class labels, not a continuous target")
    if arr.dtype.kind == "O":
        try:
            as_float = arr.astype(np.float64)
        except (TypeError, ValueError):
            as_float = None
        if as_float is not None and np.isnan(as_float).any():
            rows = np.flatnonzero(np.isnan(as_float).reshape(arr.shape[0], -1).any(axis=1))
            raise ValidationError(f"y holds NaN in {rows.shape[0]} of {n_samples} rows (rows {_first(rows)})")
    if arr.ndim == 1:
        try:
            classes, inverse = np.unique(arr, return_inverse=True)
        except TypeError as exc:
            raise ValidationError(f"y holds labels that cannot be sorted: {exc}") from None
        if classes.shape[0] < 2:
            raise ValidationError(
                f"y holds a single class ({_label_text(classes[0])} for all {n_samples} rows); supervised hashing needs "
                f"at least 2 classes")
        Y = np.zeros((n_samples, classes.shape[0]), dtype=np.float32)
        Y[np.arange(n_samples), inverse.ravel()] = 1.0
        return Y, classes, False
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"a 2-D y must be a 0/1 label matrix, got dtype {arr.dtype}")
    Yf = arr.astype(np.float32)
    off = (Yf != 0) & (Yf != 1)
    if off.any():
        rows = np.flatnonzero(off.any(axis=1))
        raise ValidationError(f"the label matrix y must hold only 0 and 1; {int(off.sum())} entries in "
                              f"{rows.shape[0]} rows differ (rows {_first(rows)})")
    empty = np.flatnonzero(Yf.sum(axis=1) == 0)
    if empty.shape[0]:
        raise ValidationError(f"{empty.shape[0]} of {n_samples} rows of the label matrix y have no label "
                              f"(rows {_first(empty)}); every training row needs at least one")
    if np.all(Yf == Yf[0]):
        raise ValidationError(f"every one of the {n_samples} rows of the label matrix y has the same labels; "
                              f"supervised hashing needs at least 2 different label sets")
    return np.ascontiguousarray(Yf), np.arange(Yf.shape[1]), True


class PairwiseLabels:
    """The 0/1 semantic similarity ``S_ij = [Y_i · Y_j > 0]`` of a label matrix, as products.

    Parameters
    ----------
    Y : ndarray of shape (n, c), float32
        0/1 labels (from :func:`check_supervision`).
    """

    def __init__(self, Y: np.ndarray):
        self.Y = np.ascontiguousarray(Y, dtype=np.float64)
        self.n = self.Y.shape[0]
        self.single = bool(np.all(self.Y.sum(axis=1) == 1))  # one label per row: S = Y Yᵀ exactly
        self._label = np.argmax(self.Y, axis=1) if self.single else None

    def block(self, rows, cols) -> np.ndarray:
        """Dense 0/1 block ``S[rows][:, cols]`` (float64)."""
        if self.single:
            return (self._label[rows][:, None] == self._label[cols][None, :]).astype(np.float64)
        return (self.Y[rows] @ self.Y[cols].T > 0).astype(np.float64)

    def matvec(self, V: np.ndarray) -> np.ndarray:
        """``S V`` for V of shape (n, k): O(n c k) with one label per row, row blocks otherwise."""
        V = np.asarray(V, dtype=np.float64)
        if self.single:
            return self.Y @ (self.Y.T @ V)
        out = np.empty((self.n, V.shape[1]) if V.ndim == 2 else (self.n,), dtype=np.float64)
        for s in range(0, self.n, _BLOCK):
            out[s : s + _BLOCK] = (self.Y[s : s + _BLOCK] @ self.Y.T > 0) @ V
        return out

    def signed_matvec(self, V: np.ndarray) -> np.ndarray:
        """``(2 S - 1) V``: the ±1 similarity of KSH and COSDISH times ``V``."""
        V = np.asarray(V, dtype=np.float64)
        return 2.0 * self.matvec(V) - V.sum(axis=0, keepdims=V.ndim == 2)


class LabelledFitMixin:
    """``fit(X, y)`` with required labels for a :class:`~hashlearn.hashing.base.BaseHasher` subclass.

    Put it before ``BaseHasher`` in the bases. ``fit`` validates ``X`` as every hasher does, then ``y``
    (:func:`check_supervision`), sets ``classes_`` and ``multilabel_`` and calls
    ``_fit_labelled(X, Y, rng)`` with ``Y`` the (n_samples, n_classes) 0/1 label matrix, float64.
    """

    _FIT_CALL = "fit(X, y)"

    def fit(self, X, y=None):
        """Learn the hash functions from labelled training vectors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense, finite, real-valued training vectors (converted to float32); images of a deep hasher's
            ``input_shape`` flattened in C order.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or a 0/1 label matrix with at least one label per row. Two rows are
            similar when they share a label.

        Returns
        -------
        self
        """
        return super().fit(X, y)

    def _fit_with_target(self, X, y, rng) -> None:
        Y, classes, multilabel = check_supervision(y, X.shape[0], who=type(self).__name__)
        self.classes_ = classes
        self.multilabel_ = bool(multilabel)
        self._fit_labelled(X, Y, rng)

    def _fit_labelled(self, X, Y, rng) -> None:
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
