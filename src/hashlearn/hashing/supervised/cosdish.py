"""Column Sampling Based Discrete Supervised Hashing (COSDISH, Kang et al. 2016)."""

from __future__ import annotations

import numpy as np

from .._validation import check_int_param, check_real_param
from ..registry import register
from ._labels import PairwiseLabels
from .base import SupervisedHasher, ridge_projection, signs

__all__ = ["COSDISH", "maximize_bqp"]


def maximize_bqp(A: np.ndarray, p: np.ndarray, b: np.ndarray, max_flips: int) -> np.ndarray:
    """Greedy single-flip ascent of ``f(b) = bᵀ A b + pᵀ b`` over b ∈ {±1}^q from ``b`` (A symmetric).

    Flipping ``b_i`` changes ``f`` by ``Δ_i = -4 b_i (A b)_i + 4 A_ii - 2 p_i b_i``; the best positive
    flip is taken until none is left or ``max_flips`` is reached, so ``f`` never decreases.
    """
    b = b.copy()
    Ab = A @ b
    diag = np.diag(A)
    for _ in range(max_flips):
        gain = -4.0 * b * Ab + 4.0 * diag - 2.0 * p * b
        i = int(np.argmax(gain))
        if gain[i] <= 1e-12:
            break
        Ab -= 2.0 * b[i] * A[:, i]
        b[i] = -b[i]
    return b


@register("cosdish")
class COSDISH(SupervisedHasher):
    r"""COSDISH: discrete codes fitted to the ±1 label similarity on sampled columns.

    Learns training codes ``B ∈ {±1}^(n×r)`` for ``min ||r S - B Bᵀ||_F²`` (``S`` the ±1 label
    similarity) without forming ``S``: each of ``n_iter`` iterations samples ``q = n_columns`` rows
    ``Ω`` (the sampled columns of ``S``), the others being ``Γ``, and alternates (``n_alternations``
    times) between

    * ``B_Γ``: ``min ||r S_ΓΩ - B_Γ B_Ωᵀ||²``, row-wise independent; started from the paper's closed
      form ``sgn(S_ΓΩ B_Ω)``, then refined by cyclic coordinate descent over the bits (exact per bit);
    * ``B_Ω``: ``||r S_ΩΩ - B_Ω B_Ωᵀ||² + ||r S_ΓΩ - B_Γ B_Ωᵀ||²``, bit by bit: with the other bits
      fixed, bit ``k`` of ``B_Ω`` maximises the binary quadratic program ``bᵀ R b + (Mᵀ g_k)ᵀ b``
      (``R = r S_ΩΩ - Σ_{t≠k} b_t b_tᵀ``, ``M = r S_ΓΩ - Σ_{t≠k} g_t b_tᵀ``, ``g_k`` bit ``k`` of
      ``B_Γ``); the paper relaxes it and rounds, here it is solved from the current bit by greedy
      single-bit flips (:func:`maximize_bqp`), which never increases the objective.

    Hash functions: ridge regression of the learned ``B`` on the centred RBF anchor features,
    ``P = (ΦᵀΦ + δ I)⁻¹ Φᵀ B``, codes ``sgn(φ(x)ᵀ P)`` (the paper regresses on its input features).

    Parameters
    ----------
    n_bits : int, default 64
    n_anchors : int, default 1000
    n_iter : int, default 10
        Column samplings ``T``.
    n_columns : int, default 500
        Sampled columns ``q = |Ω|`` per iteration (at most ``n``).
    n_alternations : int, default 3
        ``B_Γ`` / ``B_Ω`` alternations per sampling.
    reg_features : float, default 1e-2
        ``δ``.
    random_state : int, numpy Generator or None, default None
        Seed of the anchors, the initial codes and the column samples.

    Attributes
    ----------
    projection_ : ndarray of shape (n_anchors_, n_bits_), float64
    loss_history_ : ndarray of shape (n_iter,), float64
        ``||r S_ΩΩ' - B_Ω' B_Ω'ᵀ||² / q'²`` on a fixed random sample ``Ω'`` of rows after each iteration.
    train_codes_agreement_ : float
        Fraction of the training code bits that ``sgn(Φ P)`` reproduces.
    anchors_, sigma_, feature_mean_, n_anchors_, classes_, multilabel_, n_bits_, n_features_in_

    References
    ----------
    W.-C. Kang, W.-J. Li and Z.-H. Zhou, "Column Sampling Based Discrete Supervised Hashing", AAAI 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> h = COSDISH(n_bits=16, n_anchors=200, random_state=0).fit(X[:500], y[:500])
    >>> h.transform(X[500:510]).shape
    (10, 1)
    """

    def __init__(self, n_bits=64, *, n_anchors=1000, n_iter=10, n_columns=500, n_alternations=3,
                 reg_features=1e-2, random_state=None):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_iter = n_iter
        self.n_columns = n_columns
        self.n_alternations = n_alternations
        self.reg_features = reg_features
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_iter, "n_iter", min_val=1)
        check_int_param(self.n_columns, "n_columns", min_val=1)
        check_int_param(self.n_alternations, "n_alternations", min_val=1)
        check_real_param(self.reg_features, "reg_features", min_val=0, include_boundaries="neither")

    def _fit_supervised(self, Phi, Y, rng):
        n = Phi.shape[0]
        r = float(self.n_bits_)
        pairs = PairwiseLabels(Y)
        B = signs(rng.standard_normal((n, self.n_bits_)))
        q = min(int(self.n_columns), n)
        probe = np.sort(rng.choice(n, size=min(n, 1000), replace=False))
        S_probe = 2.0 * pairs.block(probe, probe) - 1.0
        losses = []
        for _ in range(int(self.n_iter)):
            omega = np.sort(rng.choice(n, size=q, replace=False))
            gamma = np.setdiff1d(np.arange(n), omega, assume_unique=True)
            S_go = 2.0 * pairs.block(gamma, omega) - 1.0  # (|Γ|, q)
            S_oo = 2.0 * pairs.block(omega, omega) - 1.0
            Bo, Bg = B[omega], B[gamma]
            for _ in range(int(self.n_alternations)):
                Bg = self._update_gamma(S_go, Bo, r, Bg)
                Bo = self._update_omega(S_oo, S_go, Bo, Bg, r)
            B[omega], B[gamma] = Bo, Bg
            Bp = B[probe]
            losses.append(float(np.sum((r * S_probe - Bp @ Bp.T) ** 2)) / probe.shape[0] ** 2)
        P = ridge_projection(Phi, B, float(self.reg_features))
        self.projection_ = P
        self.loss_history_ = np.asarray(losses)
        self.train_codes_agreement_ = float(np.mean(signs(Phi @ P) == B))

    @staticmethod
    def _update_gamma(S_go, Bo, r, Bg_old):
        """Rows of B_Γ: min_b -2 r (S_ΓΩ B_Ω) b + bᵀ (B_ΩᵀB_Ω) b, per bit exactly (cyclic)."""
        if Bo.shape[0] == 0 or S_go.shape[0] == 0:
            return Bg_old
        H = r * (S_go @ Bo)  # (|Γ|, r)
        Bg = signs(H)
        C = Bo.T @ Bo  # (r, r)
        for _ in range(3):
            for k in range(Bg.shape[1]):
                # terms of bit k: -2 H_k b_k + 2 b_k Σ_{t≠k} C_kt b_t  → b_k = sgn(H_k - Σ_{t≠k} C_kt b_t)
                Bg[:, k] = signs(H[:, k] - (Bg @ C[:, k] - C[k, k] * Bg[:, k]))
        return Bg

    @staticmethod
    def _update_omega(S_oo, S_go, Bo, Bg, r):
        """Bits of B_Ω one at a time: a BQP solved by greedy flips from the current bit."""
        Bo = Bo.copy()
        q = Bo.shape[0]
        for k in range(Bo.shape[1]):
            others = np.delete(np.arange(Bo.shape[1]), k)
            Bo_o = Bo[:, others]
            A = r * S_oo - Bo_o @ Bo_o.T
            if Bg.shape[0]:
                g = Bg[:, k]
                # Mᵀ g = r S_ΩΓ g - B_Ω' (B_Γ'ᵀ g)
                p = 2.0 * (r * (S_go.T @ g) - Bo_o @ (Bg[:, others].T @ g))
            else:
                p = np.zeros(q)
            Bo[:, k] = maximize_bqp(A, p, Bo[:, k], max_flips=2 * q)
        return Bo
