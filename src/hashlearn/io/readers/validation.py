"""Validation of vector matrices: numeric dtype, 2-D, non-empty, finite (a chunked scan).

:func:`check_vectors` is the public entry point; :func:`validate_matrix` checks without converting and
is what :func:`~hashlearn.io.readers.read_vectors` runs on what it read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn.errors import ValidationError

__all__ = ["check_vectors", "validate_matrix", "describe_kind", "first_nonfinite", "nonfinite_message"]

# Elements scanned per chunk by the finiteness check.
_CHUNK_ELEMS = 1 << 22


def describe_kind(dtype: np.dtype) -> str | None:
    """Return a description of why ``dtype`` is not a numeric dtype, or None if it is numeric."""
    kind = dtype.kind
    if kind in "biuf":
        return None
    if kind == "O":
        return "has dtype object; expected a numeric array (are there strings, None or ragged rows?)"
    if kind in "US":
        return f"has string dtype {dtype}; expected a numeric array"
    if kind == "c":
        return f"has complex dtype {dtype}; expected a real numeric array"
    if kind == "V":
        return f"has structured/void dtype {dtype}; expected a plain numeric array"
    if kind in "mM":
        return f"has datetime/timedelta dtype {dtype}; expected a numeric array"
    return f"has unsupported dtype {dtype}; expected a numeric array"


def first_nonfinite(X: np.ndarray) -> tuple[int, int, float] | None:
    """Locate the first non-finite entry of a 2-D float array, scanning in row chunks.

    Returns ``(row, column, value)`` or ``None`` when every entry is finite. Integer and bool arrays are
    always finite and are not scanned.
    """
    if X.dtype.kind not in "fc" or X.size == 0:
        return None
    n, d = X.shape
    step = max(1, _CHUNK_ELEMS // max(d, 1))
    for start in range(0, n, step):
        blk = X[start : start + step]
        fin = np.isfinite(blk)
        if not fin.all():
            r = int(np.flatnonzero(~fin.all(axis=1))[0])
            c = int(np.flatnonzero(~fin[r])[0])
            return start + r, c, float(blk[r, c])
    return None


def nonfinite_message(name: str, row: int, col: int, value: float) -> str:
    """``"NAME: contains NaN at row R (column C)"`` (or ``+inf`` / ``-inf``)."""
    what = "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
    return f"{name}: contains {what} at row {row} (column {col})"


def validate_matrix(X: np.ndarray, name: str, allow_empty: bool = False) -> None:
    """Check numeric dtype, ndim == 2, non-empty and finite; raise ValidationError naming ``name``."""
    problem = describe_kind(X.dtype)
    if problem is not None:
        raise ValidationError(f"{name}: {problem}")
    if X.ndim != 2:
        hint = " (use X.reshape(1, -1) for a single vector)" if X.ndim == 1 else ""
        raise ValidationError(
            f"{name}: expected a 2-D array of shape (n_samples, n_features), "
            f"got ndim={X.ndim} with shape {X.shape}{hint}"
        )
    if not allow_empty and (X.shape[0] == 0 or X.shape[1] == 0):
        raise ValidationError(f"{name}: is empty (shape {X.shape})")
    bad = first_nonfinite(X)
    if bad is not None:
        raise ValidationError(nonfinite_message(name, *bad))


def check_vectors(
    X: Any,
    name: str = "X",
    dtype: Any = np.float32,
    allow_empty: bool = False,
) -> np.ndarray:
    """Validate a matrix of vectors and return it as a C-contiguous array of ``dtype``.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
        Numeric (bool, integer or floating) data. Lists, memory maps and DataFrames are accepted.
    name : str, default "X"
        Name used at the start of error messages (e.g. a file name or ``"xq"``).
    dtype : numpy dtype or None, default np.float32
        Dtype of the result. ``None`` keeps the input's (numeric) dtype.
    allow_empty : bool, default False
        If False, an array with zero rows or zero columns is an error.

    Returns
    -------
    X : ndarray, shape (n_samples, n_features), dtype ``dtype``
        C-contiguous. The input object itself is returned (no copy) when it already is a C-contiguous
        ndarray of the requested dtype.

    Raises
    ------
    ValidationError
        If ``X`` cannot be converted to an array, has a non-numeric dtype (object, strings, complex,
        ...), is not 2-D, is empty (unless ``allow_empty``), or contains NaN/inf (the message gives
        the first bad row and column). A finite float64 value that overflows ``dtype`` (e.g. 1e39 to
        float32) is also reported.

    Notes
    -----
    The finiteness check is a single pass of :func:`numpy.isfinite` over row chunks of about 4M
    elements, so it needs no full-size temporary. Integer inputs are not scanned.
    """
    try:
        A = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{name}: cannot be converted to a numeric array ({exc})") from None
    validate_matrix(A, name, allow_empty=allow_empty)  # dtype kind, ndim, empty, finite (input)
    target = A.dtype if dtype is None else np.dtype(dtype)
    if target.kind not in "biuf":
        raise ValidationError(f"{name}: requested dtype {target} is not a real numeric dtype")
    if A.dtype == target and A.flags.c_contiguous:
        return A
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(A, dtype=target)
    if target.kind == "f" and A.dtype.kind == "f" and target.itemsize < A.dtype.itemsize:
        bad = first_nonfinite(out)
        if bad is not None:
            r, c, _ = bad
            raise ValidationError(
                f"{name}: value {float(A[r, c])!r} at row {r} (column {c}) overflows {target}"
            )
    return out
