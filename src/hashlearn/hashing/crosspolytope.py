"""Cross-polytope LSH for angular distance, with fast pseudo-random rotations.

Kernels (numba, chosen by measurement): rows are transformed ``lanes`` at a time as the columns of a
(D, lanes) float32 block, so every butterfly of the fast Walsh–Hadamard transform — including the
first stages, whose partners are 1, 2 and 4 apart — is one loop over the lanes that LLVM vectorises.
The lane count is passed at run time on purpose: numba leaves LLVM's SLP vectoriser off, and a loop
with a small constant trip count is fully unrolled into scalar code before the loop vectoriser sees
it. Butterfly stages are fused in pairs (radix 4) with the same additions in the same order as one
stage at a time, so results are bit-identical to the textbook natural-order transform. A block of rows
goes through all hashes and all three (sign flip, FWHT) rounds while it is in cache and the closest
vertex is picked in the same pass: no (n, n_hashes, D) tensor is ever built. With ``last_dim < D`` the
last round computes only the coordinates it keeps. Blocks run in parallel on numba's threads.
"""

from __future__ import annotations

import numbers

import numba
import numpy as np

from ..errors import ValidationError
from ._validation import check_int_param
from .base import BaseHasher
from .registry import register

__all__ = ["CrossPolytopeLSH", "fwht"]

_LANES = 32  # rows per block: the vectorised axis of the kernels (128 KiB of float32 at D = 1024)
_CHUNK_ELEMENTS = 1 << 22  # vertex scores held at once by rank_vertices (n_rows × n_hashes × 2 last_dim)


# -- kernels ------------------------------------------------------------------------------------------
@numba.njit(cache=True, boundscheck=False)
def _fwht_lanes(Y, size):  # pragma: no cover - compiled
    """In place on ``Y`` (D, lanes): the Walsh–Hadamard transform of every aligned block of ``size`` rows.

    These are the butterfly stages ``h = 1, 2, ..., size / 2`` of the natural-order FWHT along axis 0
    (``size = D``: the whole transform), two stages per pass.
    """
    D, nl = Y.shape
    h = 1
    while 4 * h <= size:
        for i in range(0, D, 4 * h):
            for j in range(i, i + h):
                for l in range(nl):
                    x0 = Y[j, l]
                    x1 = Y[j + h, l]
                    x2 = Y[j + 2 * h, l]
                    x3 = Y[j + 3 * h, l]
                    s0 = x0 + x1
                    s1 = x0 - x1
                    s2 = x2 + x3
                    s3 = x2 - x3
                    Y[j, l] = s0 + s2
                    Y[j + h, l] = s1 + s3
                    Y[j + 2 * h, l] = s0 - s2
                    Y[j + 3 * h, l] = s1 - s3
        h *= 4
    if h < size:
        for i in range(0, D, 2 * h):
            for j in range(i, i + h):
                for l in range(nl):
                    x0 = Y[j, l]
                    x1 = Y[j + h, l]
                    Y[j, l] = x0 + x1
                    Y[j + h, l] = x0 - x1


@numba.njit(cache=True, boundscheck=False)
def _fold_lanes(Y, size):  # pragma: no cover - compiled
    """The remaining stages ``h = size, ..., D / 2``, restricted to the first ``size`` outputs.

    After ``_fwht_lanes(Y, size)`` this leaves the first ``size`` rows of ``Y`` equal to those of the
    full transform, bit for bit: output ``p < size`` only needs the ``+`` half of each later stage, at
    the positions ``q`` with ``q mod 2h < size`` — under ``D`` additions per lane instead of
    ``D log2(D / size) / 2`` butterflies.
    """
    D, nl = Y.shape
    h = size
    while h < D:
        for base in range(0, D, 2 * h):
            for j in range(base, base + size):
                for l in range(nl):
                    Y[j, l] += Y[j + h, l]
        h *= 2


@numba.njit(cache=True, boundscheck=False)
def _rotate_lanes(XT, signs, Y, n_out):  # pragma: no cover - compiled
    """Y (D, lanes) ← the (sign flip, FWHT) rounds of one hash applied to the block XT (d, lanes).

    ``signs`` (n_rounds, D) float32; the input is zero-padded from d to D. Only the first ``n_out``
    rows of the result are exact (the last round stops at the next power of two, see
    :func:`_fold_lanes`); they are not yet scaled.
    """
    d, nl = XT.shape
    R, D = signs.shape
    size = 1
    while size < n_out:
        size *= 2
    for t in range(d):
        st = signs[0, t]
        for l in range(nl):
            Y[t, l] = XT[t, l] * st
    for t in range(d, D):
        z = np.float32(0.0) * signs[0, t]  # ±0, exactly as multiplying the padding by the sign
        for l in range(nl):
            Y[t, l] = z
    for r in range(R):
        if r > 0:
            for t in range(D):
                st = signs[r, t]
                for l in range(nl):
                    Y[t, l] *= st
        if r < R - 1:
            _fwht_lanes(Y, D)
        else:
            _fwht_lanes(Y, size)
            _fold_lanes(Y, size)


@numba.njit(cache=True, boundscheck=False)
def _load_lanes(X, start, XT):  # pragma: no cover - compiled
    """XT (d, lanes) ← rows ``start, start + 1, ...`` of X (n, d), transposed; lanes past row n are 0.

    Returns the number of rows loaded.
    """
    d, nl = XT.shape
    m = min(nl, X.shape[0] - start)
    XT[:, m:] = 0
    for t in range(d):
        for l in range(m):
            XT[t, l] = X[start + l, t]
    return m


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _hash_kernel(X, signs, scale, last_dim, lanes, out):  # pragma: no cover - compiled
    """``out[i, k]`` ← the closest vertex of hash ``k`` for row ``i`` of ``X`` (n, d) float32.

    ``signs`` (n_hashes, n_rounds, D) float32. Scores are the first ``last_dim`` rotated coordinates
    times ``scale``; the argmax over ``(+y_0, ..., +y_{L-1}, -y_0, ..., -y_{L-1})`` is the first maximum,
    as ``np.argmax`` gives.
    """
    n, d = X.shape
    H, R, D = signs.shape
    for b in numba.prange((n + lanes - 1) // lanes):
        start = b * lanes
        XT = np.empty((d, lanes), dtype=np.float32)
        Y = np.empty((D, lanes), dtype=np.float32)
        best_pos = np.empty(lanes, dtype=np.float32)
        best_neg = np.empty(lanes, dtype=np.float32)
        arg_pos = np.empty(lanes, dtype=np.int64)
        arg_neg = np.empty(lanes, dtype=np.int64)
        m = _load_lanes(X, start, XT)
        for k in range(H):
            _rotate_lanes(XT, signs[k], Y, last_dim)
            for l in range(lanes):
                v = Y[0, l] * scale
                best_pos[l] = v
                best_neg[l] = -v
                arg_pos[l] = 0
                arg_neg[l] = last_dim
            for t in range(1, last_dim):
                for l in range(lanes):
                    v = Y[t, l] * scale
                    if v > best_pos[l]:
                        best_pos[l] = v
                        arg_pos[l] = t
                    if -v > best_neg[l]:
                        best_neg[l] = -v
                        arg_neg[l] = last_dim + t
            for l in range(m):
                out[start + l, k] = arg_pos[l] if best_pos[l] >= best_neg[l] else arg_neg[l]


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _rotate_kernel(X, signs, scale, last_dim, lanes, out):  # pragma: no cover - compiled
    """``out[i, k, :]`` ← the first ``last_dim`` rotated coordinates of row ``i`` by hash ``k``, scaled."""
    n, d = X.shape
    H, R, D = signs.shape
    for b in numba.prange((n + lanes - 1) // lanes):
        start = b * lanes
        XT = np.empty((d, lanes), dtype=np.float32)
        Y = np.empty((D, lanes), dtype=np.float32)
        m = _load_lanes(X, start, XT)
        for k in range(H):
            _rotate_lanes(XT, signs[k], Y, last_dim)
            for l in range(m):
                for t in range(last_dim):
                    out[start + l, k, t] = Y[t, l] * scale


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _fwht_rows_kernel(Y, lanes):  # pragma: no cover - compiled
    """In place: the FWHT of every row of ``Y`` (m, D), float32 or float64."""
    m, D = Y.shape
    for b in numba.prange((m + lanes - 1) // lanes):
        start = b * lanes
        T = np.empty((D, lanes), dtype=Y.dtype)
        k = _load_lanes(Y, start, T)
        _fwht_lanes(T, D)
        for l in range(k):
            for t in range(D):
                Y[start + l, t] = T[t, l]


def fwht(X, *, normalize: bool = False) -> np.ndarray:
    """Fast Walsh–Hadamard transform along the last axis, batched.

    ``log2(D)`` butterfly stages per row, O(n D log D) work, computed by a compiled kernel (rows in
    parallel).

    Parameters
    ----------
    X : array-like of shape (..., D)
        ``D`` must be a power of two. float32 input is computed in float32; any other input in float64
        (float input keeps its dtype in the result, integer input gives float64).
    normalize : bool, default False
        Divide by ``sqrt(D)``, making the transform orthonormal (and its own inverse).

    Returns
    -------
    Y : ndarray of shape (..., D)
        ``Y[..., :] = H_D @ X[..., :]`` with ``H_D`` the Sylvester–Hadamard matrix in natural order
        (``scipy.linalg.hadamard(D)``).
    """
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValidationError("fwht needs at least a 1-D array")
    D = X.shape[-1]
    if D < 1 or D & (D - 1):
        raise ValidationError(f"fwht needs a power-of-two length along the last axis, got {D}")
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    work = np.float32 if dtype == np.float32 else np.float64
    Y = np.array(X, dtype=work, copy=True, order="C")
    _fwht_rows_kernel(Y.reshape(-1, D), _LANES)
    Y = Y.astype(dtype, copy=False)
    if normalize:
        Y *= np.asarray(1.0 / np.sqrt(D), dtype=dtype)
    return Y


def _next_pow2(d: int) -> int:
    return 1 << max(0, int(d - 1).bit_length())


@register("crosspolytope")
class CrossPolytopeLSH(BaseHasher):
    """Cross-polytope LSH: rotate, then hash to the closest vertex ``±e_i`` of the cross-polytope.

    Each hash function applies a pseudo-random rotation made of three rounds of (random ±1 diagonal,
    fast Walsh–Hadamard transform) to the input zero-padded to ``D = 2**ceil(log2 d)`` dimensions, keeps
    the first ``last_dim`` rotated coordinates (``D`` by default: then it is an exact rotation), and
    returns the index of the largest ``±y_i``: ``i`` for ``+e_i`` and ``last_dim + i`` for ``-e_i``, an
    integer in ``[0, 2 last_dim)``. The hash ignores the vector's norm.

    Codes: each hash takes ``bits_per_hash_ = ceil(log2(2 last_dim))`` bits (least significant first);
    ``n_hashes_ = ceil(n_bits / bits_per_hash_)`` independent cross-polytopes are concatenated and the
    code is the first ``n_bits`` bits of that concatenation (so the last hash may be truncated to its
    low bits). :meth:`hash_values` gives the untruncated integer hashes and :meth:`rank_vertices` the
    other vertices by decreasing score, for multi-probe.

    Encoding costs about ``3 n_hashes_ D log2(D)`` float32 additions per vector (the three fast
    Walsh–Hadamard transforms of every hash), run by compiled kernels. A smaller ``last_dim`` saves part
    of the last transform but gives fewer bits per hash, hence more hashes for the same ``n_bits``.

    Parameters
    ----------
    n_bits : int, default 64
        Code length in bits.
    last_dim : int or None, default None
        Number of rotated coordinates the cross-polytope lives in (dimension reduction), between 1 and
        ``D``; ``None`` means ``D``.
    random_state : int, numpy Generator or None, default None
        Seed, resolved in ``fit``.

    Attributes
    ----------
    signs_ : ndarray of shape (n_hashes_, 3, rotation_dim_), int8
        The random ±1 diagonals of the three rotation rounds of each hash.
    rotation_dim_ : int
        ``D``, the padded dimension.
    last_dim_ : int
        Dimension of the cross-polytopes.
    bits_per_hash_ : int
    n_hashes_ : int
    n_features_in_ : int

    References
    ----------
    A. Andoni, P. Indyk, T. Laarhoven, I. Razenshteyn and L. Schmidt, "Practical and Optimal LSH for
    Angular Distance", NeurIPS 2015.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 20))
    >>> h = CrossPolytopeLSH(n_bits=24, random_state=0).fit(X)
    >>> h.rotation_dim_, h.bits_per_hash_, h.n_hashes_, h.hash_values(X).shape
    (32, 6, 4, (100, 4))
    """

    n_rotations = 3

    def __init__(self, n_bits=64, *, last_dim=None, random_state=None):
        self.n_bits = n_bits
        self.last_dim = last_dim
        self.random_state = random_state

    @staticmethod
    def hash_bits(n_features: int, last_dim: int | None = None) -> int:
        """Bits one hash takes for inputs of ``n_features`` dimensions: ``ceil(log2(2 last_dim))``.

        What ``fit`` stores in ``bits_per_hash_``, known before fitting, e.g. to choose ``n_bits`` as a
        multiple of it.

        Parameters
        ----------
        n_features : int
            Input dimension ``d``.
        last_dim : int or None, default None
            As the constructor parameter: ``None`` means the padded dimension ``D = 2**ceil(log2 d)``;
            otherwise an integer between 1 and ``D`` (:class:`ValidationError` if not).

        Returns
        -------
        bits : int
        """
        D = _next_pow2(n_features)
        ld = D if last_dim is None else last_dim
        if isinstance(ld, bool) or not isinstance(ld, numbers.Integral) or not 1 <= ld <= D:
            raise ValidationError(
                f"last_dim must be None or an integer between 1 and the padded dimension {D} "
                f"(d = {n_features}), got {last_dim!r}"
            )
        return max(1, int(2 * ld - 1).bit_length())

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        d = X.shape[1]
        D = _next_pow2(d)
        self.bits_per_hash_ = self.hash_bits(d, self.last_dim)
        self.rotation_dim_ = D
        self.last_dim_ = D if self.last_dim is None else int(self.last_dim)
        self.n_hashes_ = -(-int(self.n_bits) // self.bits_per_hash_)
        self.signs_ = (2 * rng.integers(0, 2, size=(self.n_hashes_, self.n_rotations, D)) - 1).astype(np.int8)

    # -- core ----------------------------------------------------------------------------------------
    def _kernel_args(self):
        """(signs as float32, the orthonormalising scale D**(-rounds/2), last_dim, lanes): the kernels' arguments."""
        signs = np.ascontiguousarray(self.signs_, dtype=np.float32)
        return signs, np.float32(self.rotation_dim_ ** (-0.5 * signs.shape[1])), int(self.last_dim_), _LANES

    def _rotated(self, X: np.ndarray) -> np.ndarray:
        """Rotated (n, n_hashes_, last_dim_) float32 for validated float32 X (n, d)."""
        out = np.empty((X.shape[0], self.n_hashes_, self.last_dim_), dtype=np.float32)
        _rotate_kernel(X, *self._kernel_args(), out)
        return out

    def _hashes(self, X: np.ndarray) -> np.ndarray:
        """Closest vertices (n, n_hashes_) int64 for validated float32 X (n, d)."""
        out = np.empty((X.shape[0], self.n_hashes_), dtype=np.int64)
        _hash_kernel(X, *self._kernel_args(), out)
        return out

    def _encode_bits(self, X: np.ndarray) -> np.ndarray:
        H = self._hashes(X)
        shifts = np.arange(self.bits_per_hash_, dtype=np.int64)
        bits = (H[:, :, None] >> shifts) & 1
        return bits.reshape(X.shape[0], -1)[:, : int(self.n_bits)].astype(bool)

    # -- public --------------------------------------------------------------------------------------
    def rotate(self, X) -> np.ndarray:
        """The pseudo-random rotations of ``X``, one per hash.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        Y : ndarray of shape (n, n_hashes_, last_dim_), float32
            With ``last_dim=None`` each ``Y[:, h]`` is an orthogonal transform of the zero-padded input,
            so norms and angles are preserved.
        """
        return self._rotated(self._validated(X))

    def hash_values(self, X) -> np.ndarray:
        """Closest-vertex index of each cross-polytope.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        H : ndarray of shape (n, n_hashes_), int64
            Values in ``[0, 2 last_dim_)``: ``i`` is vertex ``+e_i`` and ``last_dim_ + i`` is ``-e_i``; a
            tie goes to the lowest index.
        """
        return self._hashes(self._validated(X))

    def rank_vertices(self, X, n_vertices: int | None = None):
        """Vertices of each cross-polytope by decreasing score ``±y_i``, for multi-probe.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)
        n_vertices : int or None, default None
            How many of the ``2 last_dim_`` vertices to return (all if ``None``).

        Returns
        -------
        vertices : ndarray of shape (n, n_hashes_, n_vertices), int64
            ``vertices[..., 0]`` equals :meth:`hash_values`.
        gaps : ndarray of shape (n, n_hashes_, n_vertices), float32
            Score of the best vertex minus the score of this one (0 for the first, non-decreasing): the
            cost of probing that vertex instead of the hash.
        """
        X = self._validated(X)
        V = 2 * self.last_dim_
        if n_vertices is None:
            n_vertices = V
        check_int_param(n_vertices, "n_vertices", min_val=1)
        k = min(int(n_vertices), V)
        n = X.shape[0]
        verts = np.empty((n, self.n_hashes_, k), dtype=np.int64)
        gaps = np.empty((n, self.n_hashes_, k), dtype=np.float32)
        step = max(1, _CHUNK_ELEMENTS // (self.n_hashes_ * V))
        for start in range(0, n, step):
            Y = self._rotated(X[start : start + step])
            S = np.concatenate([Y, -Y], axis=2)
            # stable sort: ties broken by the lowest vertex index, consistently with hash_values
            vv = np.argsort(-S, axis=2, kind="stable")[:, :, :k]
            ss = np.take_along_axis(S, vv, axis=2)
            stop = start + Y.shape[0]
            verts[start:stop] = vv
            gaps[start:stop] = ss[:, :, :1] - ss
        return verts, gaps
