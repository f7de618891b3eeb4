"""Kernel-Based Supervised Hashing (KSH, Liu et al. 2012)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh
from scipy.optimize import minimize

from .._validation import check_int_param, check_real_param
from ..registry import register
from ._labels import PairwiseLabels
from .base import SupervisedHasher, signs

__all__ = ["KSH"]


class _Residual:
    """``R_k = r S± - Σ_{t≤k} b_t b_tᵀ`` (l × l) as products, never formed.

    ``S±`` is the ±1 label similarity (:class:`PairwiseLabels`), ``b_t`` the codes (±1) of the bits
    fitted so far; ``R V`` costs ``O(l (c + k))`` per column with one label per row.
    """

    def __init__(self, pairs: PairwiseLabels, r: int):
        self.pairs, self.r = pairs, float(r)
        self.B = np.zeros((pairs.n, 0))

    def matvec(self, V: np.ndarray) -> np.ndarray:
        return self.r * self.pairs.signed_matvec(V) - self.B @ (self.B.T @ V)

    def add(self, b: np.ndarray) -> None:
        self.B = np.column_stack([self.B, b])


def _smooth_sign(z):
    """φ(z) = 2 / (1 + exp(-z)) - 1 = tanh(z / 2), the paper's sigmoid surrogate of sign."""
    return np.tanh(0.5 * z)


@register("ksh")
class KSH(SupervisedHasher):
    r"""Kernel-Based Supervised Hashing (KSH): bit-wise greedy fit of code inner products to labels.

    With ``Φ`` the centred RBF anchor features of the ``l`` labelled training rows and ``S`` the ±1
    label similarity (``+1`` when two rows share a label), KSH fits the code inner products to
    ``r S``: ``min_B ||B Bᵀ - r S||_F²`` with ``B = sgn(Φ A)``. The ``r`` columns of ``A`` are learned
    one at a time (the paper's greedy scheme): with the residue ``R_{k-1} = r S - Σ_{t<k} b_t b_tᵀ``,
    bit ``k`` maximises ``bᵀ R_{k-1} b``, ``b = sgn(Φ a)``:

    1. *spectral relaxation*: ``a⁰`` is the top generalised eigenvector of
       ``Φᵀ R_{k-1} Φ a = λ Φᵀ Φ a``, scaled so that ``||Φ a⁰||² = l``;
    2. *sigmoid smoothing*: from ``a⁰``, minimise ``-φ(Φ a)ᵀ R_{k-1} φ(Φ a)`` with
       ``φ(z) = 2 / (1 + e^{-z}) - 1`` by L-BFGS (scipy; the paper uses Nesterov's gradient method), with
       gradient ``-Φᵀ((R_{k-1} φ) ⊙ (1 - φ²))``;
    3. the one of ``a⁰`` and the refined ``a`` whose signs give the larger ``bᵀ R_{k-1} b`` is kept;
       ``R_k = R_{k-1} - b bᵀ``.

    ``R`` is never formed: with one label per row ``S = 2 Y Yᵀ - 1`` has rank ``c + 1`` and each
    product costs ``O(l (c + k))``; a multi-label matrix is multiplied in row blocks (``O(l²)`` time,
    bounded memory). A query ``x`` gets ``sgn(φ(x)ᵀ A)`` (:attr:`projection_`).

    Parameters
    ----------
    n_bits : int, default 64
        Code length ``r``.
    n_anchors : int, default 300
        Number of anchors ``m`` (300 in the paper), drawn at random from the training rows; at most the
        number of training rows (a warning says when fewer are used).
    max_iter : int, default 300
        L-BFGS iterations per bit in step 2 (0: spectral relaxation only).
    reg : float, default 1e-6
        Ridge added to ``ΦᵀΦ`` (relative to its mean diagonal) in the generalised eigenproblem.
    random_state : int, numpy Generator or None, default None
        Seed of the anchor draw, resolved in ``fit``.

    Attributes
    ----------
    projection_ : ndarray of shape (n_anchors_, n_bits_), float64
        ``A``: bit ``k`` of ``x`` is ``[φ(x)ᵀ A[:, k] > 0]``.
    n_iter_ : int
        L-BFGS iterations run, summed over the bits (0 with ``max_iter=0``).
    n_iter_per_bit_ : ndarray of shape (n_bits_,), int64
    objective_ : ndarray of shape (n_bits_,), float64
        ``b_kᵀ R_{k-1} b_k / l²`` of each bit as it is fitted (positive: the bit agrees with the labels).
    anchors_, sigma_, feature_mean_, n_anchors_, classes_, multilabel_, n_bits_, n_features_in_
        See :class:`~hashlearn.hashing.supervised.base.SupervisedHasher`.

    References
    ----------
    W. Liu, J. Wang, R. Ji, Y.-G. Jiang and S.-F. Chang, "Supervised Hashing with Kernels", CVPR 2012.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> ksh = KSH(n_bits=16, n_anchors=100, random_state=0).fit(X[:500], y[:500])
    >>> ksh.transform(X[500:510]).shape
    (10, 1)
    """

    def __init__(self, n_bits=64, *, n_anchors=300, max_iter=300, reg=1e-6, random_state=None):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.max_iter = max_iter
        self.reg = reg
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.max_iter, "max_iter", min_val=0)
        check_real_param(self.reg, "reg", min_val=0, include_boundaries="neither")

    def _fit_supervised(self, Phi, Y, rng):
        l, m = Phi.shape
        r = self.n_bits_
        residual = _Residual(PairwiseLabels(Y), r)
        G = Phi.T @ Phi
        G[np.diag_indices_from(G)] += float(self.reg) * max(float(np.trace(G)) / m, 1e-12)
        A = np.zeros((m, r))
        objective = np.zeros(r)
        n_iter = np.zeros(r, dtype=np.int64)
        for k in range(r):
            M = Phi.T @ residual.matvec(Phi)
            M = 0.5 * (M + M.T)
            _, vec = eigh(M, G, subset_by_index=[m - 1, m - 1])
            a0 = vec[:, 0]
            norm = float(np.linalg.norm(Phi @ a0))
            a0 = a0 * (np.sqrt(l) / norm) if norm > 0 else a0
            candidates = [a0]
            if self.max_iter > 0:
                res = minimize(self._surrogate, a0, args=(Phi, residual), jac=True, method="L-BFGS-B",
                               options={"maxiter": int(self.max_iter)})
                candidates.append(res.x)
                n_iter[k] = int(res.nit)
            scores = []
            for a in candidates:
                b = signs(Phi @ a)
                scores.append(float(b @ residual.matvec(b[:, None])[:, 0]))
            best = int(np.argmax(scores))
            A[:, k] = candidates[best]
            objective[k] = scores[best] / (l * l)
            residual.add(signs(Phi @ A[:, k]))
        self.projection_ = A
        self.objective_ = objective
        self.n_iter_per_bit_ = n_iter
        self.n_iter_ = int(n_iter.sum())

    @staticmethod
    def _surrogate(a, Phi, residual):
        f = _smooth_sign(Phi @ a)
        Rf = residual.matvec(f[:, None])[:, 0]
        value = -float(f @ Rf)
        grad = -(Phi.T @ (Rf * (1.0 - f * f)))
        return value, grad
