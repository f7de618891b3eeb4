"""Multi-view fusion hashing: one code per item from several views, fused with learned view weights."""

from __future__ import annotations

import numbers

import numpy as np

from ..codes import pack
from ..errors import ValidationError
from ..hashing.registry import register
from .base import BaseCrossModalHasher, check_views, itq_rotation, sign_pm

__all__ = ["MultiViewHashing"]


@register("mvh", kind="crossmodal")
class MultiViewHashing(BaseCrossModalHasher):
    r"""Multi-view fusion hashing with view weights learned from view stability.

    All views are aligned (row ``i`` of every view is item ``i``; ``fit(views)`` with ``pairs=None``).
    With ``Z_v`` the mapped, centred rows of view ``v`` and weights ``w`` on the simplex::

        min_{B, H, w}  Σ_v w_v (||B - Z_v H_v||² + γ ||H_v||²) / (n r)  +  τ Σ_v w_v log w_v
        B ∈ {-1, +1}^{n × r}

    Alternating exact block updates (the objective never increases, :attr:`objective_`):

    * ``H_v = (Z_vᵀZ_v + γ I)⁻¹ Z_vᵀ B`` — each view's hash function;
    * ``B = sgn(Σ_v w_v Z_v H_v)`` — the fused code, discrete (no relaxation);
    * ``w_v ∝ exp(-ℓ_v / τ)`` with ``ℓ_v = (||B - Z_v H_v||² + γ||H_v||²) / (n r)`` — *view stability*: a view whose own
      hash function reproduces the consensus code well (is stable) gets more weight; ``τ → ∞`` gives
      uniform weights.

    ``B`` starts from ITQ on the top principal directions of the concatenated views (each view scaled to
    unit mean squared norm, so no view dominates by its dimension). Encode an item with all its views by
    :meth:`transform_fused` (``sgn(Σ_v w_v Z_v H_v)``), or with one view by :meth:`transform` (``view=v``:
    ``sgn(Z_v H_v)``, in the same Hamming space).

    Parameters
    ----------
    n_bits : int, default 64
    kernel : {"linear", "rbf"}, default "rbf"
    n_anchors : int, default 300
    tau : float, default 1.0
        Temperature of the view weights (``inf``: uniform).
    gamma : float, default 1.0
    n_iter : int, default 20
    random_state : int, Generator or None

    Attributes
    ----------
    feature_maps_ : list of FeatureMap
    hash_projections_ : list of (D_v, n_bits) float64 — ``H_v``
    view_weights_ : (n_views,) float64
    view_agreement_ : (n_views,) float64 — fraction of bits of ``sgn(Z_v H_v)`` equal to the fused code
    objective_ : (n_iter_done + 1,) float64
    n_features_in_ : list of int

    References
    ----------
    L. Yan, F. Zhou, Y. Chen et al. (2020), "Deep Multi-View Enhancement Hashing for Image Retrieval"
    (view stability evaluation; here a shallow, unsupervised counterpart with an entropy-regularised
    weighting of our own); Y. Gong and S. Lazebnik, "Iterative Quantization", CVPR 2011 (initial codes).
    """

    _n_views = None

    def __init__(self, n_bits: int = 64, *, kernel: str = "rbf", n_anchors: int = 300, tau: float = 1.0,
                 gamma: float = 1.0, n_iter: int = 20, random_state=None):
        self.n_bits = n_bits
        self.kernel = kernel
        self.n_anchors = n_anchors
        self.tau = tau
        self.gamma = gamma
        self.n_iter = n_iter
        self.random_state = random_state

    def _check_params(self):
        super()._check_params()
        if not float(self.tau) > 0:
            raise ValidationError(f"tau must be > 0 (inf for uniform weights), got {self.tau!r}")
        if not float(self.gamma) > 0:
            raise ValidationError(f"gamma must be > 0, got {self.gamma!r}")
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 1:
            raise ValidationError(f"n_iter must be a positive integer, got {self.n_iter!r}")

    def _fit(self, views, pairs, rng):
        self.feature_maps_ = self._fit_feature_maps(views, rng)
        Z = [fm.transform(X) for fm, X in zip(self.feature_maps_, views)]
        n, r, nv = Z[0].shape[0], int(self.n_bits), len(Z)
        g, tau = float(self.gamma), float(self.tau)
        # initial codes: ITQ on the principal directions of the concatenated views
        Zc = np.hstack(Z)
        if r > min(Zc.shape):
            raise ValidationError(f"mvh: n_bits={r} exceeds the concatenated mapped dimension {min(Zc.shape)}")
        _, _, Vt = np.linalg.svd(Zc, full_matrices=False)
        Y = Zc @ Vt[:r].T
        B = sign_pm(Y @ itq_rotation(Y, rng, 50))
        w = np.full(nv, 1.0 / nv)
        facts = [np.linalg.cholesky(z.T @ z + g * np.eye(z.shape[1])) for z in Z]

        def solve(L, rhs):
            return np.linalg.solve(L.T, np.linalg.solve(L, rhs))

        def objective(B, H, w):
            loss = np.array([np.sum((B - z @ h) ** 2) + g * np.sum(h * h) for z, h in zip(Z, H)]) / (n * r)
            ent = tau * np.sum(w * np.log(np.maximum(w, 1e-300))) if np.isfinite(tau) else 0.0
            return float(w @ loss + ent), loss

        H = [solve(L, z.T @ B) for L, z in zip(facts, Z)]
        obj = [objective(B, H, w)[0]]
        for _ in range(int(self.n_iter)):
            B = sign_pm(sum(wv * z @ h for wv, z, h in zip(w, Z, H)))
            H = [solve(L, z.T @ B) for L, z in zip(facts, Z)]
            _, loss = objective(B, H, w)
            if np.isfinite(tau):
                e = np.exp(-(loss - loss.min()) / tau)
                w = e / e.sum()
            obj.append(objective(B, H, w)[0])
            if abs(obj[-2] - obj[-1]) <= 1e-6 * abs(obj[-2]):
                break
        self.hash_projections_ = H
        self.view_weights_ = w
        self.view_agreement_ = np.array([np.mean(sign_pm(z @ h) == B) for z, h in zip(Z, H)])
        self.objective_ = np.asarray(obj)

    def _project(self, X, view):
        return self.feature_maps_[view].transform(X) @ self.hash_projections_[view]

    def fused_margins(self, views) -> np.ndarray:
        """``Σ_v w_v Z_v H_v`` (n, n_bits) for items given by all their views (aligned rows)."""
        self._check_fitted()
        views = check_views(views, n_views=len(self.n_features_in_), n_features=self.n_features_in_)
        if len({v.shape[0] for v in views}) != 1:
            raise ValidationError(f"views must have the same number of rows, got {[v.shape[0] for v in views]}")
        return sum(w * self._project(X, v) for v, (w, X) in enumerate(zip(self.view_weights_, views)))

    def transform_fused(self, views) -> np.ndarray:
        """One packed uint64 code (n, ceil(n_bits / 64)) per item from all its views."""
        return pack(self.fused_margins(views) > 0)
