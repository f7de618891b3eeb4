"""Spherical Hashing: one hypersphere per bit, pivots optimised for balanced, independent bits."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..codes.spherical import spherical_hamming_distances, spherical_knn_search
from ._validation import check_int_param, check_real_param
from .base import BaseHasher
from .registry import register

__all__ = ["SphericalHashing"]

_BLOCK = 8192  # rows per block when computing distances to the pivots


def _sq_dists(X: np.ndarray, P: np.ndarray, P_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n, l) of rows of X to the pivots P (l, d), in float64, >= 0."""
    X = X.astype(np.float64, copy=False)
    D = np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * (X @ P.T) + P_sq[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def _half_radii(D: np.ndarray) -> np.ndarray:
    """Squared radius per pivot (column of D) so that its ball holds ``m // 2`` of the m rows.

    The radius is midway between the (m//2)-th and (m//2 + 1)-th smallest distance, so the training
    membership has a margin (without ties exactly m // 2 points are inside).
    """
    m = D.shape[0]
    h = m // 2
    part = np.partition(D, (h - 1, h), axis=0)
    r = 0.5 * (np.sqrt(part[h - 1]) + np.sqrt(part[h]))
    return r * r


def _overlap_stats(B: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Pairwise overlaps o_ij = |ball_i ∩ ball_j| (l, l), mean |o_ij - m/4| and std of o_ij (i < j)."""
    m = B.shape[0]
    Bf = B.astype(np.float64)
    O = Bf.T @ Bf
    iu = np.triu_indices(O.shape[0], k=1)
    if iu[0].size == 0:
        return O, 0.0, 0.0
    o = O[iu]
    return O, float(np.mean(np.abs(o - m / 4.0))), float(np.std(o))


@register("sph")
class SphericalHashing(BaseHasher):
    """Spherical Hashing: bit ``k`` of ``x`` is 1 iff ``||x - p_k|| <= t_k``.

    Each bit is a hypersphere with pivot ``p_k`` and radius ``t_k``. On a training sample of ``m``
    points, the pivots are optimised so that every ball holds half of the points (balanced bits) and
    every two balls share a quarter of them (independent bits). Each iteration sets every radius to
    the median distance from its pivot, counts the overlaps ``o_ij``, and moves every pivot by the
    average of the forces ``f_ij = 1/2 (o_ij - m/4) / (m/4) (p_i - p_j)`` (pushing apart balls that
    overlap too much, pulling together those that overlap too little), until the mean of
    ``|o_ij - m/4|`` is at most ``epsilon_mean * m/4`` and the standard deviation of the ``o_ij`` at
    most ``epsilon_std * m/4`` (the paper's 10% and 15%), or ``max_iter`` iterations have run (then
    a :class:`~sklearn.exceptions.ConvergenceWarning` is issued and ``converged_`` is False).
    Pivots start as means of 5 random training points, as in the authors' code.

    Codes are meant to be compared with the *spherical Hamming distance*
    ``|a XOR b| / |a AND b|`` (:func:`hashlearn.codes.spherical_hamming_distances`); the class
    attribute ``distance = "spherical"`` and :meth:`ranking_distances` / :meth:`knn_search` let
    evaluation and search use it. Plain Hamming distance also works on the same codes.

    Unlike hyperplane methods, the number of bits is not limited by the dimension: any number of
    spheres can be placed in a space of any dimension (the paper's point), so ``n_bits`` may exceed
    ``n_features``. The fit cost is independent of ``n`` beyond drawing the sample:
    O(max_iter · sample_size · n_bits · d).

    Parameters
    ----------
    n_bits : int, default 64
        Number of hyperspheres (code length).
    sample_size : int, default 5000
        Number of training points, drawn without replacement, the pivots are optimised on (all of
        them when fewer). At least 2.
    max_iter : int, default 100
        Maximum number of pivot updates.
    epsilon_mean, epsilon_std : float, default 0.1 and 0.15
        Convergence tolerances on the mean absolute deviation of the overlaps from ``m/4`` and on
        their standard deviation, as fractions of ``m/4``.
    random_state : int, numpy Generator or None, default None
        Seed, resolved in ``fit``.

    Attributes
    ----------
    pivots_ : ndarray of shape (n_bits, n_features_in_), float64
        Sphere centres.
    radii_ : ndarray of shape (n_bits,), float64
        Sphere radii.
    n_iter_ : int
        Pivot updates performed.
    converged_ : bool
        Whether both overlap criteria were met.
    overlap_mean_error_, overlap_std_ : float
        Final mean ``|o_ij - m/4|`` and standard deviation of ``o_ij``, as fractions of ``m/4``.
    n_train_samples_ : int
        Size ``m`` of the training sample.
    n_features_in_ : int

    References
    ----------
    J.-P. Heo, Y. Lee, J. He, S.-F. Chang and S.-E. Yoon, "Spherical Hashing", CVPR 2012.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 32))
    >>> h = SphericalHashing(n_bits=16, random_state=0).fit(X)
    >>> codes = h.transform(X)
    >>> codes.shape, h.ranking_distances(codes[:3], codes).shape
    ((500, 1), (3, 500))
    """

    distance = "spherical"
    """Distance the codes are meant to be ranked with (see :meth:`ranking_distances`)."""

    def __init__(self, n_bits=64, *, sample_size=5000, max_iter=100, epsilon_mean=0.1, epsilon_std=0.15,
                 random_state=None):
        self.n_bits = n_bits
        self.sample_size = sample_size
        self.max_iter = max_iter
        self.epsilon_mean = epsilon_mean
        self.epsilon_std = epsilon_std
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.sample_size, "sample_size", min_val=2)
        check_int_param(self.max_iter, "max_iter", min_val=0)
        check_real_param(self.epsilon_mean, "epsilon_mean", min_val=0)
        check_real_param(self.epsilon_std, "epsilon_std", min_val=0)

    _min_samples = 2

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        n, d = X.shape
        m = min(n, int(self.sample_size))
        idx = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
        S = X[idx].astype(np.float64)
        nb = int(self.n_bits)
        k0 = min(5, m)
        init = np.stack([rng.choice(m, size=k0, replace=False) for _ in range(nb)])
        P = S[init].mean(axis=1)
        S_sq = np.einsum("ij,ij->i", S, S)
        q = m / 4.0
        n_iter, converged = 0, False
        while True:
            P_sq = np.einsum("ij,ij->i", P, P)
            D = S_sq[:, None] - 2.0 * (S @ P.T) + P_sq[None, :]
            np.maximum(D, 0.0, out=D)
            R2 = _half_radii(D)
            O, mean_err, std = _overlap_stats(D <= R2[None, :])
            converged = mean_err <= self.epsilon_mean * q and std <= self.epsilon_std * q
            if converged or n_iter >= self.max_iter:
                break
            C = 0.5 * (O - q) / q
            np.fill_diagonal(C, 0.0)
            # f_i = (1/l) sum_j C_ij (p_i - p_j)
            P = P + (C.sum(axis=1)[:, None] * P - C @ P) / nb
            n_iter += 1
        if not converged:
            warnings.warn(
                f"SphericalHashing stopped after max_iter={self.max_iter} pivot updates without meeting the overlap "
                f"criteria: mean |o_ij - m/4| = {mean_err / q:.3f} m/4 (target {self.epsilon_mean}), std(o_ij) = "
                f"{std / q:.3f} m/4 (target {self.epsilon_std}); the bits are less independent than intended "
                "(increase max_iter, or expect this when n_bits is large for the dimension)",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.pivots_ = P
        self.radii_ = np.sqrt(R2)
        self.n_iter_ = n_iter
        self.converged_ = bool(converged)
        self.overlap_mean_error_ = mean_err / q
        self.overlap_std_ = std / q
        self.n_train_samples_ = m

    def _project(self, X: np.ndarray) -> np.ndarray:
        """``t_k**2 - ||x - p_k||**2`` (n, n_bits) float64: non-negative ⇔ inside ball k ⇔ bit 1."""
        P = self.pivots_
        P_sq = np.einsum("ij,ij->i", P, P)
        R2 = self.radii_ * self.radii_
        out = np.empty((X.shape[0], P.shape[0]), np.float64)
        for s in range(0, X.shape[0], _BLOCK):
            out[s : s + _BLOCK] = R2[None, :] - _sq_dists(X[s : s + _BLOCK], P, P_sq)
        return out

    def _encode_bits(self, X: np.ndarray) -> np.ndarray:
        return self._project(X) >= 0

    def margins(self, X) -> np.ndarray:
        """``t_k**2 - ||x - p_k||**2`` for every sphere: non-negative ⇔ bit 1.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        M : ndarray of shape (n, n_bits), float64
        """
        return super().margins(X)

    def ranking_distances(self, q_codes, db_codes) -> np.ndarray:
        """Spherical Hamming distances (nq, n) float64 between packed codes of this hasher.

        See :func:`hashlearn.codes.spherical_hamming_distances` (value when no bit is shared:
        ``n_bits + |a XOR b|``). Rank with a stable sort, e.g. :func:`hashlearn.metrics.hamming_ranking`.
        """
        return spherical_hamming_distances(q_codes, db_codes, self.code_bits)

    def knn_search(self, q_codes, db_codes, k: int):
        """The ``k`` nearest database codes in spherical Hamming distance: ``(D float32, I int64)``."""
        return spherical_knn_search(q_codes, db_codes, k, n_bits=self.code_bits)
