"""Cross-polytope LSH for angular distance, with fast pseudo-random rotations."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ValidationError
from .base import BaseHasher, check_vectors_array
from .registry import register

__all__ = ["CrossPolytopeLSH", "fwht"]

_CHUNK_ELEMENTS = 1 << 22  # rotated values held at once (n_rows × n_hashes × D)


def fwht(X, *, normalize: bool = False) -> np.ndarray:
    """Fast Walsh–Hadamard transform along the last axis, batched.

    ``log2(D)`` butterfly stages, each one vectorised over the whole batch: O(n D log D) work.

    Parameters
    ----------
    X : array-like of shape (..., D)
        ``D`` must be a power of two. Integer input is computed in float64; float input keeps its dtype.
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
    dtype = X.dtype if X.dtype.kind == "f" else np.float64
    Y = np.array(X, dtype=dtype, copy=True).reshape(-1, D)
    m = Y.shape[0]
    h = 1
    while h < D:
        V = Y.reshape(m, D // (2 * h), 2, h)
        a = V[:, :, 0, :].copy()
        V[:, :, 0, :] += V[:, :, 1, :]
        np.subtract(a, V[:, :, 1, :], out=V[:, :, 1, :])
        h *= 2
    Y = Y.reshape(X.shape)
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

    def _check_params(self) -> None:
        super()._check_params()
        ld = self.last_dim
        if ld is not None and (isinstance(ld, bool) or not isinstance(ld, numbers.Integral) or ld < 1):
            raise ValidationError(f"last_dim must be None or a positive integer, got {ld!r}")

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        d = X.shape[1]
        D = _next_pow2(d)
        ld = D if self.last_dim is None else int(self.last_dim)
        if ld > D:
            raise ValidationError(
                f"last_dim must be at most the padded dimension {D} (d = {d}), got {ld}"
            )
        self.rotation_dim_ = D
        self.last_dim_ = ld
        self.bits_per_hash_ = max(1, int(2 * ld - 1).bit_length())
        self.n_hashes_ = -(-int(self.n_bits) // self.bits_per_hash_)
        self.signs_ = (2 * rng.integers(0, 2, size=(self.n_hashes_, self.n_rotations, D)) - 1).astype(np.int8)

    # -- core ----------------------------------------------------------------------------------------
    def _rotate_block(self, X: np.ndarray) -> np.ndarray:
        """Rotated (n, n_hashes_, last_dim_) float32 for a validated block X (n, d)."""
        n, d = X.shape
        D, H = self.rotation_dim_, self.n_hashes_
        Y = np.zeros((n, H, D), dtype=np.float32)
        Y[:, :, :d] = X[:, None, :]
        signs = self.signs_.astype(np.float32)
        for r in range(self.signs_.shape[1]):
            Y *= signs[None, :, r, :]
            Y = fwht(Y)
        Y *= np.float32(D ** (-0.5 * self.signs_.shape[1]))
        return Y[:, :, : self.last_dim_]

    def _blocks(self, X: np.ndarray):
        step = max(1, _CHUNK_ELEMENTS // (self.n_hashes_ * self.rotation_dim_))
        for start in range(0, X.shape[0], step):
            yield start, self._rotate_block(X[start : start + step])

    def _hash_validated(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.n_hashes_), dtype=np.int64)
        for start, Y in self._blocks(X):
            # argmax over the 2 last_dim_ scores (+y, -y): ties go to the lowest vertex index, as in
            # rank_vertices
            out[start : start + Y.shape[0]] = np.argmax(np.concatenate([Y, -Y], axis=2), axis=2)
        return out

    def _encode_bits(self, X: np.ndarray) -> np.ndarray:
        H = self._hash_validated(X)
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
        self._check_fitted()
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_)
        out = np.empty((X.shape[0], self.n_hashes_, self.last_dim_), dtype=np.float32)
        for start, Y in self._blocks(X):
            out[start : start + Y.shape[0]] = Y
        return out

    def hash_values(self, X) -> np.ndarray:
        """Closest-vertex index of each cross-polytope.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        H : ndarray of shape (n, n_hashes_), int64
            Values in ``[0, 2 last_dim_)``: ``i`` is vertex ``+e_i`` and ``last_dim_ + i`` is ``-e_i``.
        """
        self._check_fitted()
        return self._hash_validated(check_vectors_array(X, name="X", n_features=self.n_features_in_))

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
        self._check_fitted()
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_)
        V = 2 * self.last_dim_
        if n_vertices is None:
            n_vertices = V
        if isinstance(n_vertices, bool) or not isinstance(n_vertices, numbers.Integral) or n_vertices < 1:
            raise ValidationError(f"n_vertices must be a positive integer, got {n_vertices!r}")
        k = min(int(n_vertices), V)
        n = X.shape[0]
        verts = np.empty((n, self.n_hashes_, k), dtype=np.int64)
        gaps = np.empty((n, self.n_hashes_, k), dtype=np.float32)
        for start, Y in self._blocks(X):
            S = np.concatenate([Y, -Y], axis=2)
            # stable sort: ties broken by the lowest vertex index, consistently with hash_values
            vv = np.argsort(-S, axis=2, kind="stable")[:, :, :k]
            ss = np.take_along_axis(S, vv, axis=2)
            stop = start + Y.shape[0]
            verts[start:stop] = vv
            gaps[start:stop] = ss[:, :, :1] - ss
        return verts, gaps
