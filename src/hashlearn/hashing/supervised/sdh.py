"""Supervised Discrete Hashing (SDH, Shen et al. 2015)."""

from __future__ import annotations

import numpy as np

from .._validation import check_int_param, check_real_param
from ..registry import register
from .base import SupervisedHasher, ridge_projection, signs

__all__ = ["SDH", "dcc_codes"]


def dcc_codes(B: np.ndarray, Q: np.ndarray, W: np.ndarray, n_sweeps: int) -> np.ndarray:
    """Discrete cyclic coordinate descent of ``min_B ||B W||² - 2 tr(Bᵀ Q)`` over B ∈ {±1}^(n×r).

    Column ``k`` of ``B`` has the closed form ``sgn(q_k - B' W' w_kᵀ)`` given the others (``B'``,
    ``W'``: B and W without column / row ``k``; ``w_k``: row ``k`` of W, shape (r, c)); every update
    lowers the objective. ``n_sweeps`` passes over the ``r`` bits. B is updated in place and returned.
    """
    r = B.shape[1]
    WWt = W @ W.T  # (r, r)
    for _ in range(n_sweeps):
        changed = False
        for k in range(r):
            # B' W' w_kᵀ = B (W w_kᵀ) - b_k (w_k w_kᵀ)
            v = B @ WWt[:, k] - B[:, k] * WWt[k, k]
            new = signs(Q[:, k] - v)
            if not changed and np.any(new != B[:, k]):
                changed = True
            B[:, k] = new
        if not changed:
            break
    return B


@register("sdh")
class SDH(SupervisedHasher):
    r"""Supervised Discrete Hashing (SDH): codes that classify the labels linearly, optimised discretely.

    With ``Φ`` (n, m) the centred RBF anchor features, ``Y`` (n, c) the 0/1 labels, SDH solves

    ``min_{B, W, P} ||Y - B W||² + λ ||W||² + ν ||B - Φ P||²``,  ``B ∈ {±1}^(n×r)``

    by alternating, from random ±1 codes (the paper's initialisation):

    * *F-step*: ``P = (ΦᵀΦ + δ I)⁻¹ Φᵀ B`` (ridge regression of the codes on the features);
    * *G-step*: ``W = (BᵀB + λ I)⁻¹ Bᵀ Y`` (the linear classifier on the codes);
    * *B-step*: with ``Q = Y Wᵀ + ν Φ P``, minimise ``||B W||² - 2 tr(Bᵀ Q)`` by discrete cyclic
      coordinate descent (:func:`dcc_codes`): bit ``k`` is ``sgn(q_k - B' W' w_kᵀ)`` given the others.

    The codes stay binary during optimisation (no relaxation). A query ``x`` gets ``sgn(φ(x)ᵀ P)``.

    Parameters
    ----------
    n_bits : int, default 64
    n_anchors : int, default 1000
        Anchors of the RBF features (1000 in the paper); at most the number of training rows.
    n_iter : int, default 5
        Outer iterations (the paper's code uses 5).
    n_dcc_sweeps : int, default 5
        Sweeps over the bits of each B-step (stops early when no bit changes).
    reg_classifier : float, default 1.0
        ``λ`` (1 in the paper).
    nu : float, default 1e-5
        ``ν``, weight of the hash-function fit in the B-step (1e-5 in the paper's code).
    reg_features : float, default 1e-2
        ``δ``, ridge of the F-step.
    random_state : int, numpy Generator or None, default None
        Seed of the anchor draw and of the initial codes.

    Attributes
    ----------
    projection_ : ndarray of shape (n_anchors_, n_bits_), float64
        ``P``.
    classifier_ : ndarray of shape (n_bits_, n_classes), float64
        ``W``.
    loss_history_ : ndarray of shape (n_iter,), float64
        Objective after each outer iteration, divided by ``n``.
    train_codes_agreement_ : float
        Fraction of the training code bits that ``sgn(Φ P)`` reproduces.
    anchors_, sigma_, feature_mean_, n_anchors_, classes_, multilabel_, n_bits_, n_features_in_
        See :class:`~hashlearn.hashing.supervised.base.SupervisedHasher`.

    References
    ----------
    F. Shen, C. Shen, W. Liu and H. T. Shen, "Supervised Discrete Hashing", CVPR 2015.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> sdh = SDH(n_bits=16, n_anchors=200, random_state=0).fit(X[:500], y[:500])
    >>> sdh.transform(X[500:510]).shape
    (10, 1)
    """

    def __init__(self, n_bits=64, *, n_anchors=1000, n_iter=5, n_dcc_sweeps=5, reg_classifier=1.0, nu=1e-5,
                 reg_features=1e-2, random_state=None):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_iter = n_iter
        self.n_dcc_sweeps = n_dcc_sweeps
        self.reg_classifier = reg_classifier
        self.nu = nu
        self.reg_features = reg_features
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_iter, "n_iter", min_val=1)
        check_int_param(self.n_dcc_sweeps, "n_dcc_sweeps", min_val=1)
        check_real_param(self.reg_classifier, "reg_classifier", min_val=0, include_boundaries="neither")
        check_real_param(self.nu, "nu", min_val=0)
        check_real_param(self.reg_features, "reg_features", min_val=0, include_boundaries="neither")

    def _fit_supervised(self, Phi, Y, rng):
        n = Phi.shape[0]
        r = self.n_bits_
        Y = Y.astype(np.float64)
        lam, nu, delta = float(self.reg_classifier), float(self.nu), float(self.reg_features)
        B = signs(rng.standard_normal((n, r)))
        losses = []
        for _ in range(int(self.n_iter)):
            P = ridge_projection(Phi, B, delta)
            F = Phi @ P
            W = np.linalg.solve(B.T @ B + lam * np.eye(r), B.T @ Y)
            B = dcc_codes(B, Y @ W.T + nu * F, W, int(self.n_dcc_sweeps))
            W = np.linalg.solve(B.T @ B + lam * np.eye(r), B.T @ Y)
            losses.append((np.sum((Y - B @ W) ** 2) + lam * np.sum(W * W) + nu * np.sum((B - F) ** 2)) / n)
        P = ridge_projection(Phi, B, delta)
        self.projection_ = P
        self.classifier_ = W
        self.loss_history_ = np.asarray(losses)
        self.train_codes_agreement_ = float(np.mean(signs(Phi @ P) == B))
