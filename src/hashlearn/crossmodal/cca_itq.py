"""CCA-ITQ: canonical correlation analysis followed by iterative quantisation, for two modalities."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ValidationError
from ..hashing.registry import register
from .base import BaseCrossModalHasher, itq_rotation, paired_part

__all__ = ["CCAITQ"]


def _inv_sqrt(C: np.ndarray, reg: float) -> np.ndarray:
    w, U = np.linalg.eigh(C)
    w = np.maximum(w, 0.0) + reg
    return (U / np.sqrt(w)) @ U.T


def cca_directions(Z0: np.ndarray, Z1: np.ndarray, r: int, reg: float):
    """Top ``r`` regularised canonical directions of centred ``Z0`` (n, d0) and ``Z1`` (n, d1).

    Returns ``W0`` (d0, r), ``W1`` (d1, r) and the canonical correlations ``rho`` (r,), float64; ``reg``
    is the ridge added to each covariance relative to its mean eigenvalue.
    """
    n = Z0.shape[0]
    C00, C11, C01 = Z0.T @ Z0 / n, Z1.T @ Z1 / n, Z0.T @ Z1 / n
    S0 = _inv_sqrt(C00, reg * np.trace(C00) / C00.shape[0] + 1e-12)
    S1 = _inv_sqrt(C11, reg * np.trace(C11) / C11.shape[0] + 1e-12)
    U, rho, Vt = np.linalg.svd(S0 @ C01 @ S1, full_matrices=False)
    return S0 @ U[:, :r], S1 @ Vt[:r].T, rho[:r]


@register("cca-itq", kind="crossmodal")
class CCAITQ(BaseCrossModalHasher):
    """CCA-ITQ: project both modalities on their top canonical directions, then learn one ITQ rotation.

    On the paired rows (semi-paired input: only the paired part is used — the method needs pairs), the
    regularised CCA of the two (feature-mapped, centred) views gives directions ``W_0``, ``W_1`` with
    canonical correlations ``ρ_j``; the projections are scaled by ``ρ_j ** eigen_power`` (Gong et al.
    scale by a power of the eigenvalues) and one orthogonal rotation ``R`` minimising
    ``||B - [X_0 W_0; X_1 W_1] R||²`` over both modalities' projections is found by ITQ. A row ``x`` of
    modality ``v`` is encoded as ``sign(φ_v(x) W_v R)``.

    Parameters
    ----------
    n_bits : int, default 64
        Code length; at most the smaller mapped dimension (use ``kernel="rbf"`` for long codes on
        low-dimensional views).
    kernel : {"linear", "rbf"}, default "rbf"
        Input map of each view (see :class:`~hashlearn.crossmodal.base.FeatureMap`).
    n_anchors : int, default 500
        Anchors of the RBF map.
    reg : float, default 0.1
        Ridge added to each covariance, relative to its mean eigenvalue.
    eigen_power : float, default 4.0
        Scale the canonical projections by ``ρ ** eigen_power`` before the rotation (the power 4 of
        Gong et al.: weak, noisy canonical directions get little weight).
    n_iter : int, default 50
        ITQ iterations.
    random_state : int, Generator or None

    Attributes
    ----------
    feature_maps_ : list of FeatureMap
    projections_ : list of ndarray, view ``v`` of shape (d_v_mapped, n_bits), float64
        ``W_v diag(ρ ** p) R``.
    correlations_ : ndarray (n_bits,) — canonical correlations
    n_features_in_ : list of int

    References
    ----------
    Y. Gong, Q. Ke, M. Isard and S. Lazebnik, "A Multi-View Embedding Space for Modeling Internet Images,
    Tags, and Their Semantics", IJCV 2014; Y. Gong, S. Lazebnik, A. Gordo and F. Perronnin, "Iterative
    Quantization: A Procrustean Approach to Learning Binary Codes for Large-Scale Image Retrieval",
    TPAMI 35(12), 2013 (CCA-ITQ).
    """

    def __init__(self, n_bits: int = 64, *, kernel: str = "rbf", n_anchors: int = 500, reg: float = 0.1,
                 eigen_power: float = 4.0, n_iter: int = 50, random_state=None):
        self.n_bits = n_bits
        self.kernel = kernel
        self.n_anchors = n_anchors
        self.reg = reg
        self.eigen_power = eigen_power
        self.n_iter = n_iter
        self.random_state = random_state

    def _fit(self, views, pairs, rng):
        X0, X1 = paired_part(views, pairs)
        self.feature_maps_ = self._fit_feature_maps([X0, X1], rng)
        Z0, Z1 = (fm.transform(X) for fm, X in zip(self.feature_maps_, (X0, X1)))
        r = int(self.n_bits)
        if r > min(Z0.shape[1], Z1.shape[1]):
            raise ValidationError(
                f"cca-itq: n_bits={r} exceeds the canonical directions available "
                f"(mapped dimensions {Z0.shape[1]} and {Z1.shape[1]}); use kernel='rbf' or fewer bits"
            )
        W0, W1, rho = cca_directions(Z0, Z1, r, float(self.reg))
        scale = np.maximum(rho, 1e-12) ** float(self.eigen_power)
        W0, W1 = W0 * scale, W1 * scale
        Y = np.vstack([Z0 @ W0, Z1 @ W1])
        R = itq_rotation(Y, rng, int(self.n_iter))
        self.projections_ = [W0 @ R, W1 @ R]
        self.correlations_ = rho.copy()

    def _check_params(self):
        super()._check_params()
        if not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 0:
            raise ValidationError(f"n_iter must be a non-negative integer, got {self.n_iter!r}")

    def _project(self, X, view):
        return self.feature_maps_[view].transform(X) @ self.projections_[view]
