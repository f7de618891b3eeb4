"""Supervised Hashing with Latent Factor Models (LFH, Zhang et al. 2014)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._validation import check_int_param, check_real_param
from ..registry import register
from ._labels import PairwiseLabels
from .base import SupervisedHasher, ridge_projection, signs

__all__ = ["LFH"]

_BLOCK = 64  # rows updated together
_MAX_HALVINGS = 8


def _pair_terms(U, rows, S):
    """``s_ij Θ_ij - log(1 + e^Θ_ij)`` for i in ``rows`` and every j, the self pairs set to 0."""
    Theta = 0.5 * (U[rows] @ U.T)
    # log(1 + e^Θ) = max(Θ, 0) + log1p(e^{-|Θ|}), stable and faster than np.logaddexp
    term = S * Theta - np.maximum(Theta, 0.0) - np.log1p(np.exp(-np.abs(Theta)))
    term[np.arange(rows.shape[0]), rows] = 0.0
    return term


def _block_objective(U, rows, S, beta):
    """The part of the log-posterior that depends on the rows ``rows`` of U."""
    term = _pair_terms(U, rows, S)
    inside = np.zeros(U.shape[0], dtype=bool)
    inside[rows] = True
    # pairs (i, j) and (j, i) with j outside the block both count; pairs inside the block are all in `term`
    return 2.0 * float(term[:, ~inside].sum()) + float(term[:, inside].sum()) - float(np.sum(U[rows] ** 2)) / (2 * beta)


def _objective(U, pairs, beta):
    total = 0.0
    for s in range(0, U.shape[0], 1024):
        rows = np.arange(s, min(U.shape[0], s + 1024))
        total += float(_pair_terms(U, rows, pairs.block(rows, slice(None))).sum())
    return total - float(np.sum(U * U)) / (2 * beta)


@register("lfh")
class LFH(SupervisedHasher):
    r"""Latent Factor Hashing (LFH): a logistic latent-factor model of the pairwise labels, then signs.

    The 0/1 similarity ``s_ij`` (rows share a label) is modelled as
    ``p(s_ij = 1 | U) = σ(Θ_ij)``, ``Θ_ij = ½ u_iᵀ u_j``, with a Gaussian prior ``u_i ~ N(0, β I)``;
    the latent factors ``U`` (n, r) maximise the log-posterior

    ``L(U) = Σ_{i≠j} [s_ij Θ_ij - log(1 + e^{Θ_ij})] - ||U||² / (2β)``.

    As in the paper, each row is updated by a surrogate Newton step that uses a lower bound of its
    Hessian, ``H ⪰ -(1/8) Σ_j u_j u_jᵀ - I/β`` (since ``σ(1-σ) ≤ ¼``):
    ``u_i ← u_i + g_i ((1/8) UᵀU + I/β)⁻¹`` with ``g_i = Σ_j (s_ij - σ(Θ_ij)) u_j - u_i / β``. Rows
    are updated in blocks of 64 (Gauss–Seidel over blocks: each block uses the latest other rows); as
    the bound holds for one row with the others fixed, a block's step is halved until the
    log-posterior does not decrease, so :attr:`loss_history_` is non-increasing.
    ``L`` per pair is recorded in :attr:`loss_history_`. Codes of the training rows are ``sgn(U)``; the
    hash functions regress them on the centred RBF anchor features:
    ``P = (ΦᵀΦ + δ I)⁻¹ Φᵀ sgn(U)``, a query ``x`` gets ``sgn(φ(x)ᵀ P)``.

    Cost: ``O(n² r)`` per epoch (every pair is used: the paper's full LFH; its stochastic variant,
    which samples ``O(r)`` columns per row for large ``n``, is not implemented).

    Parameters
    ----------
    n_bits : int, default 64
    n_anchors : int, default 1000
    n_epochs : int, default 30
        Passes over the rows.
    beta : float, default 10.0
        Prior variance ``β`` of the latent factors.
    reg_features : float, default 1e-2
        ``δ``.
    random_state : int, numpy Generator or None, default None
        Seed of the anchors and of the initial factors (``N(0, 0.1²)``).

    Attributes
    ----------
    projection_ : ndarray of shape (n_anchors_, n_bits_), float64
    loss_history_ : ndarray of shape (n_epochs,), float64
        Negative log-posterior per pair after each epoch.
    train_codes_agreement_ : float
        Fraction of the bits of ``sgn(U)`` that ``sgn(Φ P)`` reproduces.
    anchors_, sigma_, feature_mean_, n_anchors_, classes_, multilabel_, n_bits_, n_features_in_

    References
    ----------
    P. Zhang, W. Zhang, W.-J. Li and M. Guo, "Supervised Hashing with Latent Factor Models", SIGIR 2014.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> h = LFH(n_bits=16, n_anchors=200, n_epochs=10, random_state=0).fit(X[:500], y[:500])
    >>> h.transform(X[500:510]).shape
    (10, 1)
    """

    def __init__(self, n_bits=64, *, n_anchors=1000, n_epochs=30, beta=10.0, reg_features=1e-2,
                 random_state=None):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_epochs = n_epochs
        self.beta = beta
        self.reg_features = reg_features
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_epochs, "n_epochs", min_val=1)
        check_real_param(self.beta, "beta", min_val=0, include_boundaries="neither")
        check_real_param(self.reg_features, "reg_features", min_val=0, include_boundaries="neither")

    def _fit_supervised(self, Phi, Y, rng):
        n, r = Phi.shape[0], self.n_bits_
        pairs = PairwiseLabels(Y)
        beta = float(self.beta)
        U = 0.1 * rng.standard_normal((n, r))
        losses = []
        for _ in range(int(self.n_epochs)):
            for s in range(0, n, _BLOCK):
                rows = np.arange(s, min(n, s + _BLOCK))
                S = pairs.block(rows, slice(None))
                Theta = 0.5 * (U[rows] @ U.T)
                Sig = expit(Theta)
                Sig[np.arange(rows.shape[0]), rows] = S[np.arange(rows.shape[0]), rows]  # no self pair
                G = (S - Sig) @ U - U[rows] / beta
                Hbar = U.T @ U / 8.0 + np.eye(r) / beta
                step = np.linalg.solve(Hbar, G.T).T
                before = _block_objective(U, rows, S, beta)
                old = U[rows].copy()
                for _ in range(_MAX_HALVINGS):  # the bound holds row by row; a block step is checked
                    U[rows] = old + step
                    if _block_objective(U, rows, S, beta) >= before:
                        break
                    step *= 0.5
                else:
                    U[rows] = old
            losses.append(-_objective(U, pairs, beta) / max(n * (n - 1), 1))
        B = signs(U)
        P = ridge_projection(Phi, B, float(self.reg_features))
        self.projection_ = P
        self.loss_history_ = np.asarray(losses)
        self.train_codes_agreement_ = float(np.mean(signs(Phi @ P) == B))
