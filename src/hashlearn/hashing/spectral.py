"""Spectral Hashing (Weiss, Torralba & Fergus, NIPS 2008).

Spectral Hashing looks for codes whose Hamming distances follow a Gaussian affinity
``exp(-||x - y||² / ε²)``; the relaxed problem is solved by the eigenfunctions of the weighted
Laplace–Beltrami operator of the data distribution. The paper approximates that distribution by a
uniform one on a box aligned with the principal directions, for which the eigenfunctions are known in
closed form: along a direction with range ``[a, b]`` the ``k``-th one-dimensional eigenfunction and
its eigenvalue are

    Φ_k(x) = sin(π/2 + kπ/(b - a) · (x - a)),      λ_k = 1 - exp(-ε²/2 · |kπ/(b - a)|²).

The algorithm (as in the authors' MATLAB ``trainSH`` / ``compressSH``):

1. PCA: the top ``min(n_bits, d)`` principal directions of the training data;
2. a box per direction: the minimum and maximum of the training projections;
3. all single-direction modes ``(i, k)``, ``k = 1, 2, ...``, ranked by their angular frequency
   ``ω = kπ / (b_i - a_i)`` (λ_k increases with ω for every ε, so ε never needs to be chosen); the
   ``n_bits`` lowest-frequency modes are kept;
4. bit ``j`` of ``x`` is ``[Φ_{k_j}(pc_{i_j}(x)) > 0]``.

Long directions receive several modes (higher "harmonics") before short directions get their first,
which is how the method produces more bits than the data has dimensions (``n_bits > d``). It is also
why Spectral Hashing degrades at high code lengths: the extra bits are high-frequency cosines of the
same few directions, which cut near neighbours apart.

Fitting streams the training matrix in row chunks (float64 mean and covariance, then the projected
ranges), so its cost is linear in the number of rows and its memory ``O(d²)`` besides one chunk.
"""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError
from .base import BaseHasher
from .pca import _chunk_rows, _mean_cov, _top_eigh
from .registry import register

__all__ = ["SpectralHashing"]

# Widening of the box on both sides, as the ``- eps`` / ``+ eps`` of the authors' code: it keeps the
# range of a constant direction positive.
_BOX_EPS = np.finfo(np.float64).eps


def spectral_modes(ranges: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n_bits`` lowest-frequency one-dimensional modes of a box with side lengths ``ranges``.

    Enumerates, as the authors' code does, modes ``k = 1 .. ceil((n_bits + 1) · R_i / max R) - 1`` of
    every direction ``i`` (enough candidates: the longest side alone offers ``n_bits``), ranks them by
    angular frequency ``ω = kπ / R_i`` with a stable sort (ties: lower direction index, then lower
    ``k``) and keeps the first ``n_bits``.

    Parameters
    ----------
    ranges : ndarray of shape (p,)
        Positive side lengths ``b_i - a_i`` of the box.
    n_bits : int

    Returns
    -------
    directions : ndarray of shape (n_bits,), int64
        Direction ``i`` of each selected mode.
    modes : ndarray of shape (n_bits,), int64
        Its mode number ``k >= 1``.
    frequencies : ndarray of shape (n_bits,), float64
        ``kπ / R_i``, non-decreasing.
    """
    R = np.asarray(ranges, dtype=np.float64)
    max_mode = np.ceil((n_bits + 1) * R / R.max()).astype(np.int64)
    dirs = np.concatenate([np.full(m - 1, i, dtype=np.int64) for i, m in enumerate(max_mode)])
    ks = np.concatenate([np.arange(1, m, dtype=np.int64) for m in max_mode])
    omegas = ks * np.pi / R[dirs]
    order = np.argsort(omegas, kind="stable")[:n_bits]
    return dirs[order], ks[order], omegas[order]


@register("sh")
class SpectralHashing(BaseHasher):
    """Spectral Hashing: analytic Laplacian eigenfunctions of a PCA-aligned uniform box.

    Bit ``j`` of ``x`` is ``[cos(ω_j · (pc_{i_j}(x) - a_{i_j})) > 0]`` (the paper's
    ``sin(π/2 + ω_j (x - a))``), where ``pc_i`` is the projection on the ``i``-th principal direction,
    ``[a_i, b_i]`` its range on the training data and ``ω_j = k_j π / (b_i - a_i)`` one of the
    ``n_bits`` smallest frequencies over all directions and mode numbers (see the module docstring).
    ``n_bits`` may exceed the data dimension: long directions then carry several modes.

    Parameters
    ----------
    n_bits : int, default 64
        Code length.
    random_state : None, int or numpy Generator, default None
        Unused (the method is deterministic); accepted so every hasher has the same interface.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,), float32
        Training mean.
    components_ : ndarray of shape (n_features_in_, n_components_), float32
        Principal directions (columns, decreasing variance), ``n_components_ = min(n_bits, d)``.
    explained_variance_ : ndarray of shape (n_components_,), float64
    box_min_, box_max_ : ndarray of shape (n_components_,), float64
        The box: training range of each principal projection, widened by one float64 ``eps``.
    directions_ : ndarray of shape (n_bits,), int64
        Principal direction ``i_j`` of each bit.
    modes_ : ndarray of shape (n_bits,), int64
        Mode number ``k_j >= 1`` of each bit.
    frequencies_ : ndarray of shape (n_bits,), float64
        ``ω_j = k_j π / (box_max_ - box_min_)[i_j]``, non-decreasing: bits come in the order of the
        eigenvalues.
    n_features_in_ : int

    References
    ----------
    Y. Weiss, A. Torralba and R. Fergus, "Spectral Hashing", NIPS 2008.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 8))
    >>> sh = SpectralHashing(n_bits=16).fit(X)
    >>> sh.transform(X).shape
    (200, 1)
    >>> int(sh.modes_.max()) > 1      # 16 bits from 8 directions: some direction carries a harmonic
    True
    """

    def __init__(self, n_bits=64, *, random_state=None):
        self.n_bits = n_bits
        self.random_state = random_state

    _min_samples = 2  # a box needs two points

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        n, d = X.shape
        nb = int(self.n_bits)
        p = min(nb, d)
        mean, cov = _mean_cov(X)
        var, U = _top_eigh(cov, p)
        self.mean_ = mean.astype(np.float32)
        self.components_ = U.astype(np.float32)
        self.explained_variance_ = var
        lo = np.full(p, np.inf)
        hi = np.full(p, -np.inf)
        rows = _chunk_rows(d)
        for s in range(0, n, rows):
            Y = self._principal(X[s : s + rows])
            lo = np.minimum(lo, Y.min(axis=0))
            hi = np.maximum(hi, Y.max(axis=0))
        R = hi - lo
        if not R.max() > 0:
            raise ValidationError("SpectralHashing cannot fit a box to constant training data (every vector is equal)")
        self.box_min_ = lo - _BOX_EPS
        self.box_max_ = hi + _BOX_EPS
        self.directions_, self.modes_, self.frequencies_ = spectral_modes(self.box_max_ - self.box_min_, nb)

    def _principal(self, X: np.ndarray) -> np.ndarray:
        """Principal projections (n, n_components_), float64, of validated float32 rows."""
        return ((X - self.mean_) @ self.components_).astype(np.float64)

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Eigenfunction values (n, n_bits) in [-1, 1]; a bit is 1 where its value is positive."""
        out = np.empty((X.shape[0], self.n_bits_), dtype=np.float32)
        rows = _chunk_rows(max(X.shape[1], self.n_bits_))  # bounds the (rows, d) and (rows, n_bits) temporaries
        for s in range(0, X.shape[0], rows):
            Y = self._principal(X[s : s + rows])
            phase = (Y[:, self.directions_] - self.box_min_[self.directions_]) * self.frequencies_
            out[s : s + rows] = np.sin(np.pi / 2 + phase)
        return out

