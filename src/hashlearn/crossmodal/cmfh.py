"""Collective Matrix Factorization Hashing (CMFH), unsupervised, for two modalities."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ValidationError
from ..hashing.registry import register
from .base import BaseCrossModalHasher, paired_part

__all__ = ["CMFH"]


@register("cmfh", kind="crossmodal")
class CMFH(BaseCrossModalHasher):
    """Collective Matrix Factorization Hashing: one latent factor per paired item, shared by both modalities.

    Objective on the paired rows ``X_v`` (n × d_v, mapped and centred; semi-paired input: only the paired
    part is used)::

        min  Σ_v λ_v ||X_v - V U_v||² + μ Σ_v ||V - X_v P_v||² + γ (Σ_v ||U_v||² + ||P_v||² + ||V||²)

    with ``V`` (n × r) the unified latent representation, ``U_v`` (r × d_v) the bases and ``P_v``
    (d_v × r) the hash projections. Alternating closed-form updates (each the exact minimiser of its
    block, so the objective never increases)::

        U_v = (VᵀV + γ/λ_v I)⁻¹ VᵀX_v
        P_v = (X_vᵀX_v + γ/μ I)⁻¹ X_vᵀV
        V   = (Σ_v λ_v X_v U_vᵀ + μ Σ_v X_v P_v)(Σ_v λ_v U_v U_vᵀ + (2μ + γ) I)⁻¹

    A row ``x`` of modality ``v`` is encoded as ``sign(φ_v(x) P_v - t)`` with ``t`` the mean of ``V``.

    Parameters
    ----------
    n_bits : int, default 64
    kernel : {"linear", "rbf"}, default "rbf"
    n_anchors : int, default 500
    lam : float, default 0.5
        λ_0 (λ_1 = 1 - lam).
    mu : float, default 1.0
    gamma : float, default 0.01
    n_iter : int, default 30
    random_state : int, Generator or None

    Attributes
    ----------
    feature_maps_ : list of FeatureMap
    projections_ : list of (d_v_mapped, n_bits) float64 arrays — ``P_v``
    offset_ : (n_bits,) float64 — threshold ``t``
    objective_ : (n_iter_done + 1,) float64 — objective before the first and after each iteration
    n_features_in_ : list of int

    References
    ----------
    G. Ding, Y. Guo and J. Zhou, "Collective Matrix Factorization Hashing for Multimodal Data", CVPR 2014.
    """

    def __init__(self, n_bits: int = 64, *, kernel: str = "rbf", n_anchors: int = 500, lam: float = 0.5,
                 mu: float = 1.0, gamma: float = 0.01, n_iter: int = 30, random_state=None):
        self.n_bits = n_bits
        self.kernel = kernel
        self.n_anchors = n_anchors
        self.lam = lam
        self.mu = mu
        self.gamma = gamma
        self.n_iter = n_iter
        self.random_state = random_state

    def _check_params(self):
        super()._check_params()
        if not (0 < float(self.lam) < 1):
            raise ValidationError(f"lam must be in (0, 1), got {self.lam!r}")
        for name in ("mu", "gamma"):
            if not float(getattr(self, name)) > 0:
                raise ValidationError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 1:
            raise ValidationError(f"n_iter must be a positive integer, got {self.n_iter!r}")

    def _objective(self, Z, V, U, P, lams):
        mu, g = float(self.mu), float(self.gamma)
        val = 0.0
        for v in range(2):
            val += lams[v] * np.sum((Z[v] - V @ U[v]) ** 2) + mu * np.sum((V - Z[v] @ P[v]) ** 2)
            val += g * (np.sum(U[v] ** 2) + np.sum(P[v] ** 2))
        return val + g * np.sum(V**2)

    def _fit(self, views, pairs, rng):
        Xp = paired_part(views, pairs)
        self.feature_maps_ = self._fit_feature_maps(Xp, rng)
        Z = [fm.transform(X) for fm, X in zip(self.feature_maps_, Xp)]
        n, r = Z[0].shape[0], int(self.n_bits)
        lams = (float(self.lam), 1.0 - float(self.lam))
        mu, g = float(self.mu), float(self.gamma)
        I = np.eye(r)
        V = rng.standard_normal((n, r))
        U = [np.zeros((r, z.shape[1])) for z in Z]
        P = [np.linalg.solve(z.T @ z + (g / mu) * np.eye(z.shape[1]), z.T @ V) for z in Z]
        gram = [z.T @ z for z in Z]
        obj = [self._objective(Z, V, U, P, lams)]
        for _ in range(int(self.n_iter)):
            U = [np.linalg.solve(V.T @ V + (g / lams[v]) * I, V.T @ Z[v]) for v in range(2)]
            P = [np.linalg.solve(gram[v] + (g / mu) * np.eye(gram[v].shape[0]), Z[v].T @ V) for v in range(2)]
            A = sum(lams[v] * U[v] @ U[v].T for v in range(2)) + (2 * mu + g) * I
            rhs = sum(lams[v] * Z[v] @ U[v].T + mu * Z[v] @ P[v] for v in range(2))
            V = np.linalg.solve(A, rhs.T).T
            obj.append(self._objective(Z, V, U, P, lams))
            if abs(obj[-2] - obj[-1]) <= 1e-6 * abs(obj[-2]):
                break
        self.projections_ = P
        self.offset_ = V.mean(axis=0)
        self.objective_ = np.asarray(obj)

    def _project(self, X, view):
        return self.feature_maps_[view].transform(X) @ self.projections_[view] - self.offset_
