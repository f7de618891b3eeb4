"""Base of the supervised vector hashers: ``fit(X, y)`` with labels, RBF anchor features, packed codes.

Every shallow supervised hasher here (KSH, SDH, COSDISH, LFH) encodes a vector through the same
kernel feature map, as their papers do for image features: ``m`` anchors drawn at random from the
training rows, ``φ(x)_j = exp(-||x - a_j||² / (2 σ²))`` with ``σ`` the mean distance of the training
rows to the anchors, minus the training mean of ``φ``; bit ``k`` of ``x`` is ``[φ(x)ᵀ p_k > 0]``
(see :class:`SupervisedHasher`).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances

from ...errors import ValidationError
from .._validation import check_int_param, warn_data_limit
from ..base import BaseHasher
from ._labels import LabelledFitMixin

__all__ = ["SupervisedHasher", "rbf_anchor_features"]

_CHUNK = 4096  # rows per block of the kernel feature map


def rbf_anchor_features(X: np.ndarray, anchors: np.ndarray, sigma: float, mean=None) -> np.ndarray:
    """``exp(-||x - a||² / (2 σ²))`` for every row of X and anchor (n, m) float64, minus ``mean``."""
    out = np.empty((X.shape[0], anchors.shape[0]), dtype=np.float64)
    for s in range(0, X.shape[0], _CHUNK):
        D = euclidean_distances(X[s : s + _CHUNK], anchors, squared=True).astype(np.float64)
        np.exp(-D / (2.0 * sigma * sigma), out=out[s : s + _CHUNK])
    if mean is not None:
        out -= mean
    return out


class SupervisedHasher(LabelledFitMixin, BaseHasher):
    """Base of the supervised hashers: labels in, packed codes out; shared RBF anchor features.

    ``fit(X, y)`` validates ``X`` (as every hasher) and ``y`` (:func:`._labels.check_supervision`:
    class labels of shape (n,) or a 0/1 label matrix (n, c)), draws ``n_anchors`` anchors from the
    training rows, builds the centred kernel features ``Φ`` (n, m) and calls
    ``_fit_supervised(Phi, Y, rng)``, which sets ``projection_`` (m, n_bits_) and anything else it learns.
    Codes are ``sign(φ(x)ᵀ P)`` packed into uint64 words.

    Attributes set here
    -------------------
    anchors_ : ndarray of shape (n_anchors_, n_features_in_), float32
    sigma_ : float
        RBF width: mean Euclidean distance from the training rows to the anchors.
    feature_mean_ : ndarray of shape (n_anchors_,), float64
        Training mean of the kernel features, subtracted before projecting.
    classes_ : ndarray of shape (n_classes,)
        Class labels (``arange(n_classes)`` for a label matrix).
    multilabel_ : bool
    n_anchors_ : int
        ``min(n_anchors, n_samples)``.
    """

    _min_samples = 2

    def _fit_labelled(self, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> None:
        self._fit_supervised(self._fit_features(X, rng), Y, rng)

    # -- shared pieces -----------------------------------------------------------------------------
    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_anchors, "n_anchors", min_val=1)

    def _fit_features(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = X.shape[0]
        m = int(self.n_anchors)
        if m > n:
            warn_data_limit(self, "n_anchors", m, n, f"exceeds the {n} training vectors")
            m = n
        idx = np.sort(rng.choice(n, size=m, replace=False))
        self.anchors_ = np.ascontiguousarray(X[idx], dtype=np.float32)
        self.n_anchors_ = int(m)
        dist = np.sqrt(np.maximum(euclidean_distances(X[: min(n, 20000)], self.anchors_, squared=True), 0.0))
        sigma = float(dist.mean())
        self.sigma_ = sigma if sigma > 0 else 1.0  # all rows identical: any width gives constant features
        Phi = rbf_anchor_features(X, self.anchors_, self.sigma_)
        self.feature_mean_ = Phi.mean(axis=0)
        Phi -= self.feature_mean_
        return Phi

    def features(self, X) -> np.ndarray:
        """Centred RBF anchor features ``φ(x)`` of ``X``: (n_samples, n_anchors_) float64."""
        X = self._validated(X)
        return rbf_anchor_features(X, self.anchors_, self.sigma_, self.feature_mean_)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return rbf_anchor_features(X, self.anchors_, self.sigma_, self.feature_mean_) @ self.projection_

    def _fit_supervised(self, Phi: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError


def ridge_projection(Phi: np.ndarray, T: np.ndarray, reg: float) -> np.ndarray:
    """``argmin_P ||Φ P - T||² + reg ||P||²`` = ``(ΦᵀΦ + reg I)⁻¹ ΦᵀT`` (m, k) float64, by Cholesky."""
    from scipy.linalg import cho_factor, cho_solve

    G = Phi.T @ Phi
    G[np.diag_indices_from(G)] += reg
    try:
        return cho_solve(cho_factor(G), Phi.T @ T)
    except np.linalg.LinAlgError as exc:  # pragma: no cover - reg > 0 makes G positive definite
        raise ValidationError(f"the kernel feature Gram matrix is singular (reg={reg}); increase reg") from exc


def signs(A: np.ndarray) -> np.ndarray:
    """±1 float64 signs with 0 mapped to +1 (a code bit is never undecided)."""
    return np.where(A >= 0, 1.0, -1.0)
