"""Shared machinery of the cross-modal and multi-view hashers.

* :func:`check_views` / :func:`check_pairs` — validation of a list of views (one array per modality, each
  with its own rows) and of the pairing between view 0 and view 1 (``(n_pairs, 2)`` row indices or a
  boolean mask over equal-length views); every problem raises :class:`~hashlearn.errors.ValidationError`
  naming it.
* :class:`FeatureMap` — the per-view input map used by every method: centring and a global scale
  (``kernel="linear"``) or an RBF map to anchors (``kernel="rbf"``), then centring.
* :class:`BaseCrossModalHasher` — the estimator contract: ``fit(views, pairs=None)`` and
  ``transform(X, view=v)`` returning packed uint64 codes in the shared Hamming space.
* :func:`semi_paired_split` — the semi-paired protocol: keep a fraction of the pairs, split the rest
  into items that only have view 0 and items that only have view 1.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.linalg import orthogonal_procrustes
from sklearn.base import BaseEstimator

from ..codes import pack
from ..errors import ValidationError
from ..hashing._rotations import random_orthogonal
from ..hashing.base import FittedStateMixin, PersistableEstimatorMixin, check_random_state, check_vectors_array
from ..io.persist import persistable

__all__ = [
    "BaseCrossModalHasher",
    "FeatureMap",
    "check_views",
    "check_pairs",
    "semi_paired_split",
    "paired_part",
    "unpaired_rows",
]

_CHUNK_ELEMS = 1 << 22


# -- validation ---------------------------------------------------------------------------------------
def check_views(views, *, n_views: int | None = 2, min_views: int = 2, n_features=None) -> list[np.ndarray]:
    """Validate a list of views: each a finite 2-D float matrix with at least one row.

    Parameters
    ----------
    views : sequence of array-like, each of shape (n_v, d_v)
    n_views : int or None
        Exact number of views required (None: at least ``min_views``).
    n_features : sequence of int, optional
        Feature counts the model was fitted on; a mismatch names both numbers.

    Returns
    -------
    list of float32 C-contiguous arrays.
    """
    if isinstance(views, np.ndarray) or not isinstance(views, (list, tuple)):
        raise ValidationError(
            f"views must be a list of arrays (one per modality), got {type(views).__name__}"
        )
    if n_views is not None and len(views) != n_views:
        raise ValidationError(f"expected {n_views} views, got {len(views)}")
    if len(views) < min_views:
        raise ValidationError(f"expected at least {min_views} views, got {len(views)}")
    out = []
    for v, X in enumerate(views):
        nf = None if n_features is None else int(n_features[v])
        out.append(check_vectors_array(X, name=f"views[{v}]", n_features=nf))
    return out


def check_pairs(pairs, n_rows) -> np.ndarray:
    """Validate the pairing between view 0 and view 1 and return it as an (n_pairs, 2) int64 array.

    Parameters
    ----------
    pairs : None, array of shape (n_pairs, 2) of int, or boolean mask of shape (n,)
        None: every row is paired with the same row of the other view (the views must have the same
        number of rows). Index pairs: ``pairs[i] = (row in view 0, row in view 1)``; a row may appear
        in at most one pair. Boolean mask (views of equal length): row ``i`` of view 0 and row ``i`` of
        view 1 are a pair where the mask is True; the other rows are unpaired.
    n_rows : sequence of int
        Rows of view 0 and view 1.
    """
    n0, n1 = int(n_rows[0]), int(n_rows[1])
    if pairs is None:
        if n0 != n1:
            raise ValidationError(
                f"pairs=None means every row is paired, but view 0 has {n0} rows and view 1 has {n1}; "
                f"pass pairs=(n_pairs, 2) row indices for semi-paired data"
            )
        idx = np.arange(n0, dtype=np.int64)
        return np.stack([idx, idx], axis=1)
    arr = np.asarray(pairs)
    if arr.dtype == bool:
        if arr.ndim != 1 or n0 != n1 or arr.shape[0] != n0:
            raise ValidationError(
                f"a boolean pairing mask must have shape ({n0},) over views of equal length; got mask of "
                f"shape {arr.shape} for views with {n0} and {n1} rows"
            )
        idx = np.flatnonzero(arr).astype(np.int64)
        arr = np.stack([idx, idx], axis=1)
    else:
        if arr.dtype.kind not in "iu":
            if arr.size and arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ValidationError(f"pairs must be integer row indices, got dtype {arr.dtype}")
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValidationError(f"pairs must have shape (n_pairs, 2), got {arr.shape}")
        arr = arr.astype(np.int64)
    if arr.shape[0] == 0:
        raise ValidationError("pairs is empty: at least one paired item is needed to align the views")
    for col, n in ((0, n0), (1, n1)):
        c = arr[:, col]
        if c.min() < 0 or c.max() >= n:
            bad = int(c[(c < 0) | (c >= n)][0])
            raise ValidationError(f"pairs[:, {col}] refers to row {bad} of view {col}, which has {n} rows")
        u, counts = np.unique(c, return_counts=True)
        if np.any(counts > 1):
            dup = int(u[counts > 1][0])
            raise ValidationError(
                f"row {dup} of view {col} appears in {int(counts[counts > 1][0])} pairs; each row may be "
                f"paired at most once (duplicate pairs)"
            )
    return np.ascontiguousarray(arr)


def paired_part(views, pairs) -> list[np.ndarray]:
    """The paired rows of view 0 and view 1, aligned: ``[X0[pairs[:, 0]], X1[pairs[:, 1]]]``."""
    return [views[0][pairs[:, 0]], views[1][pairs[:, 1]]]


def unpaired_rows(n_rows: int, paired_idx: np.ndarray) -> np.ndarray:
    """Indices (int64, sorted) of the rows among ``n_rows`` that do not appear in ``paired_idx``."""
    mask = np.ones(n_rows, dtype=bool)
    mask[paired_idx] = False
    return np.flatnonzero(mask).astype(np.int64)


def semi_paired_split(n: int, paired_ratio: float, random_state=None):
    """The semi-paired protocol on ``n`` aligned items.

    A fraction ``paired_ratio`` of the items keep both views; the others are split in two halves, one
    keeping only view 0 and one keeping only view 1 (the partner is dropped).

    Returns
    -------
    rows0, rows1 : int64 arrays
        Item indices kept in view 0 and in view 1 (the rows of the returned views, in this order).
    pairs : (n_pairs, 2) int64
        Pairs as row indices into ``X0[rows0]`` and ``X1[rows1]``.
    """
    if not (isinstance(paired_ratio, numbers.Real) and 0 < paired_ratio <= 1):
        raise ValidationError(f"paired_ratio must be in (0, 1], got {paired_ratio!r}")
    rng = check_random_state(random_state)
    perm = rng.permutation(n)
    n_p = max(1, int(round(paired_ratio * n)))
    paired = np.sort(perm[:n_p])
    rest = perm[n_p:]
    only0, only1 = np.sort(rest[: len(rest) // 2]), np.sort(rest[len(rest) // 2 :])
    rows0 = np.concatenate([paired, only0]).astype(np.int64)
    rows1 = np.concatenate([paired, only1]).astype(np.int64)
    idx = np.arange(n_p, dtype=np.int64)
    return rows0, rows1, np.stack([idx, idx], axis=1)


# -- feature maps -------------------------------------------------------------------------------------
def sq_dists(X: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n, s), float64, clipped at 0."""
    X = X.astype(np.float64, copy=False)
    A = A.astype(np.float64, copy=False)
    d = (X * X).sum(1)[:, None] - 2.0 * X @ A.T + (A * A).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


@persistable
class FeatureMap(PersistableEstimatorMixin, BaseEstimator):
    """Input map of one view: ``linear`` (centre, one global scale) or ``rbf`` (Gaussian kernel to anchors).

    The output is centred and scaled so that the mean squared row norm on the fitting data is 1, which
    makes the weights of the cross-modal objectives comparable across views.

    Parameters
    ----------
    kernel : {"linear", "rbf"}
    n_anchors : int
        Anchors of the RBF map (sampled from the fitting rows; fewer if there are fewer rows).
    random_state : int, Generator or None

    Attributes
    ----------
    anchors_ : ndarray (s, d) float32 (RBF only; empty (0, d) for linear)
    sigma_ : float  — RBF bandwidth, the mean anchor distance of the fitting rows
    mean_ : ndarray (d_out,) float64 — subtracted from the mapped rows
    scale_ : float — the mapped, centred rows are divided by it
    n_features_in_ : int
    """

    def __init__(self, kernel: str = "linear", n_anchors: int = 500, random_state=None):
        self.kernel = kernel
        self.n_anchors = n_anchors
        self.random_state = random_state

    def fit(self, X, anchors=None):
        if self.kernel not in ("linear", "rbf"):
            raise ValidationError(f"kernel must be 'linear' or 'rbf', got {self.kernel!r}")
        X = check_vectors_array(X, name="X")
        rng = check_random_state(self.random_state)
        self.n_features_in_ = int(X.shape[1])
        if self.kernel == "rbf":
            if anchors is None:
                s = min(int(self.n_anchors), X.shape[0])
                anchors = X[np.sort(rng.choice(X.shape[0], s, replace=False))]
            self.anchors_ = np.ascontiguousarray(anchors, dtype=np.float32)
            sample = X[rng.choice(X.shape[0], min(2000, X.shape[0]), replace=False)]
            self.sigma_ = float(np.sqrt(sq_dists(sample, self.anchors_)).mean()) or 1.0
        else:
            self.anchors_ = np.zeros((0, X.shape[1]), dtype=np.float32)
            self.sigma_ = 1.0
        self.mean_ = np.zeros(self._raw_dim(), dtype=np.float64)
        self.scale_ = 1.0
        Z = self._raw(X)
        self.mean_ = Z.mean(axis=0)
        Z -= self.mean_
        self.scale_ = float(np.sqrt((Z * Z).sum(1).mean())) or 1.0
        return self

    def _raw_dim(self) -> int:
        return self.anchors_.shape[0] if self.kernel == "rbf" else self.n_features_in_

    def _raw(self, X: np.ndarray) -> np.ndarray:
        if self.kernel == "rbf":
            out = np.empty((X.shape[0], self.anchors_.shape[0]), dtype=np.float64)
            rows = max(1, _CHUNK_ELEMS // max(1, self.anchors_.shape[0]))
            for s in range(0, X.shape[0], rows):
                out[s : s + rows] = np.exp(-sq_dists(X[s : s + rows], self.anchors_) / (2.0 * self.sigma_**2))
            return out
        return X.astype(np.float64)

    def transform(self, X) -> np.ndarray:
        """Mapped rows, (n, d_out) float64."""
        Z = self._raw(X)
        Z -= self.mean_
        Z /= self.scale_
        return Z

    @property
    def n_features_out(self) -> int:
        return self._raw_dim()


# -- the estimator base ---------------------------------------------------------------------------------
class BaseCrossModalHasher(PersistableEstimatorMixin, FittedStateMixin, BaseEstimator):
    """Base of the cross-modal hashers: ``fit(views, pairs=None)``, ``transform(X, view=v)``.

    Subclasses implement ``_fit(views, pairs, rng)`` (views validated float32, pairs a validated
    (n_pairs, 2) int64 array) and ``_project(X, view)`` returning an (n, n_bits) float array whose
    positive entries are the 1 bits. Fitted attributes end in ``_`` (lists of per-view arrays are
    allowed: they persist as lists).
    """

    _FIT_CALL = "fit(views, pairs)"

    method_name = "crossmodal-base"
    input_kind = "crossmodal"
    #: number of views the method takes (None: two or more, all rows aligned)
    _n_views: int | None = 2

    # -- contract ----------------------------------------------------------------------------------
    def fit(self, views, pairs=None):
        """Learn the hash functions of every view.

        Parameters
        ----------
        views : list of array-like, view ``v`` of shape (n_v, d_v)
            One matrix per modality, each with its own rows.
        pairs : None, (n_pairs, 2) int array or bool mask of shape (n,)
            Row ``pairs[i, 0]`` of view 0 and row ``pairs[i, 1]`` of view 1 are the same item (see
            :func:`check_pairs`). None: all rows paired (equal lengths).

        Returns
        -------
        self
        """
        self._check_params()
        views = check_views(views, n_views=type(self)._n_views)
        pairs = self._check_pairs(pairs, views)
        rng = check_random_state(self.random_state)
        self._clear_fitted()
        try:
            self.n_features_in_ = [int(v.shape[1]) for v in views]
            self._fit(views, pairs, rng)
        except BaseException:
            self._clear_fitted()
            raise
        return self

    def transform(self, X, view: int = 0) -> np.ndarray:
        """Packed codes of rows ``X`` of modality ``view``: uint64 array of shape (n, ceil(n_bits / 64))."""
        return pack(self.margins(X, view=view) > 0)

    encode = transform

    def margins(self, X, view: int = 0) -> np.ndarray:
        """Real-valued projections (n, n_bits) of rows of modality ``view``; positive entries are 1 bits."""
        self._check_fitted()
        view = self._check_view(view)
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_[view])
        return self._project(X, view)

    @property
    def code_bits(self) -> int:
        return int(self.n_bits)

    # -- hooks and helpers -------------------------------------------------------------------------------
    def _check_pairs(self, pairs, views):
        if len(views) == 2:
            return check_pairs(pairs, [v.shape[0] for v in views])
        n = {v.shape[0] for v in views}
        if pairs is not None or len(n) != 1:
            raise ValidationError(
                f"{type(self).__name__} with {len(views)} views needs aligned views (pairs=None and the same "
                f"number of rows in every view), got rows {[v.shape[0] for v in views]}"
            )
        return None

    def _check_params(self) -> None:
        if isinstance(self.n_bits, bool) or not isinstance(self.n_bits, numbers.Integral) or self.n_bits < 1:
            raise ValidationError(f"n_bits must be a positive integer, got {self.n_bits!r}")
        kernel = getattr(self, "kernel", "linear")
        if kernel not in ("linear", "rbf"):
            raise ValidationError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")

    def _check_view(self, view) -> int:
        n = len(self.n_features_in_)
        if isinstance(view, bool) or not isinstance(view, numbers.Integral) or not 0 <= view < n:
            raise ValidationError(f"view must be an integer in [0, {n - 1}], got {view!r}")
        return int(view)


    def _fit_feature_maps(self, views, rng, fit_rows=None) -> list:
        """One :class:`FeatureMap` per view, fitted on all its rows (or ``fit_rows[v]``)."""
        maps = []
        for v, X in enumerate(views):
            fm = FeatureMap(kernel=getattr(self, "kernel", "linear"), n_anchors=getattr(self, "n_anchors", 500),
                            random_state=int(rng.integers(2**31 - 1)))
            maps.append(fm.fit(X if fit_rows is None else X[fit_rows[v]]))
        return maps

    def _fit(self, views, pairs, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _project(self, X, view):  # pragma: no cover - abstract
        raise NotImplementedError


def ridge(A: np.ndarray, B: np.ndarray, reg: float) -> np.ndarray:
    """argmin_W ||A W - B||² + reg ||W||²  via the (d, d) normal equations (float64)."""
    G = A.T @ A
    G[np.diag_indices_from(G)] += reg
    return np.linalg.solve(G, A.T @ B)


def itq_rotation(Y: np.ndarray, rng: np.random.Generator, n_iter: int) -> np.ndarray:
    """Iterative quantisation of the rows of ``Y`` (n, r): the rotation ``R`` (r, r) that ``sgn(Y R)`` fits.

    From a Haar-random ``R`` drawn from ``rng``, ``n_iter`` times: ``B = sgn(Y R)``, then ``R`` solves
    the orthogonal Procrustes problem ``min ||Y R - B||_F`` (:func:`scipy.linalg.orthogonal_procrustes`).
    Y. Gong and S. Lazebnik, "Iterative Quantization: A Procrustean Approach to Learning Binary Codes",
    CVPR 2011.
    """
    R = random_orthogonal(rng, Y.shape[1])
    for _ in range(int(n_iter)):
        R, _ = orthogonal_procrustes(Y, sign_pm(Y @ R))
    return R


def sign_pm(X: np.ndarray) -> np.ndarray:
    """Elementwise sign in {-1, +1} (0 maps to +1), float64."""
    return np.where(X >= 0, 1.0, -1.0)
