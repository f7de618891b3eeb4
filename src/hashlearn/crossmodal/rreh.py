"""RREH: Reconstruction Relations Embedded Hashing for semi-paired cross-modal retrieval.

The method as designed here from the paper's description (no public code); the objective and every update
are written out in :class:`RREH` and in ``docs/crossmodal.md``.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve, orthogonal_procrustes
from scipy.sparse.linalg import LinearOperator, cg

from ..errors import ValidationError
from ..hashing._rotations import nearest_orthogonal
from ..hashing.base import check_random_state
from ..hashing.registry import register
from .cca_itq import cca_directions
from .base import (
    BaseCrossModalHasher,
    check_pairs,
    check_views,
    itq_rotation,
    sign_pm,
    sq_dists,
    unpaired_rows,
)

__all__ = ["RREH", "reconstruction_weights"]

_CHUNK_ELEMS = 1 << 22


def reconstruction_weights(X, anchors, k: int = 5, reg: float = 1e-3):
    """Locally linear reconstruction of each row of ``X`` from its ``k`` nearest anchors.

    For every row ``x``: ``min_w ||x - Σ_j w_j a_j||² + ε||w||²`` subject to ``Σ_j w_j = 1`` over its
    ``k`` nearest anchors (the LLE weights; ``ε = reg · trace(C) / k`` with ``C`` the local Gram matrix).
    A row equal to an anchor is reconstructed by that anchor alone (weight 1).

    Parameters
    ----------
    X : ndarray (n, d)
    anchors : ndarray (s, d)
    k : int
        Neighbours per row (``min(k, s)`` are used).
    reg : float
        Relative ridge of the local Gram matrix.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n, s), float64, each row with ``min(k, s)`` stored entries summing
    to one. Cost ``O(n (s d + k³))``; no n × n matrix is formed.
    """
    X = np.asarray(X, dtype=np.float64)
    A = np.asarray(anchors, dtype=np.float64)
    n, s = X.shape[0], A.shape[0]
    if s == 0:
        raise ValidationError("reconstruction_weights needs at least one anchor")
    if X.ndim != 2 or A.ndim != 2 or X.shape[1] != A.shape[1]:
        raise ValidationError(f"X {X.shape} and anchors {A.shape} must be 2-D with the same number of columns")
    k = int(min(k, s))
    cols = np.empty((n, k), dtype=np.int64)
    vals = np.empty((n, k), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMS // max(1, s * max(1, k)))
    scale = float(np.mean(A * A)) * A.shape[1] + 1e-300
    for start in range(0, n, rows):
        x = X[start : start + rows]
        D = sq_dists(x, A)
        if k < s:
            idx = np.argpartition(D, k - 1, axis=1)[:, :k]
        else:
            idx = np.tile(np.arange(s), (x.shape[0], 1))
        order = np.argsort(np.take_along_axis(D, idx, axis=1), axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        diff = A[idx] - x[:, None, :]  # (c, k, d)
        C = diff @ diff.transpose(0, 2, 1)  # (c, k, k)
        tr = np.trace(C, axis1=1, axis2=2)
        eps = reg * tr / k + 1e-12 * scale
        C[:, np.arange(k), np.arange(k)] += eps[:, None]
        w = np.linalg.solve(C, np.ones((x.shape[0], k, 1)))[..., 0]
        w /= w.sum(axis=1, keepdims=True)
        exact = np.take_along_axis(D, idx[:, :1], axis=1)[:, 0] <= 1e-12 * scale
        w[exact] = 0.0
        w[exact, 0] = 1.0
        cols[start : start + rows] = idx
        vals[start : start + rows] = w
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    return sp.csr_matrix((vals.ravel(), cols.ravel(), indptr), shape=(n, s))


def _solve_matrix_cg(op, rhs: np.ndarray, x0: np.ndarray, n_iter: int) -> np.ndarray:
    """At most ``n_iter`` conjugate-gradient steps on ``op(Y) = rhs`` from ``x0`` (matrices of one shape).

    ``op`` is a symmetric positive definite linear map on matrices (Frobenius inner product), solved by
    :func:`scipy.sparse.linalg.cg` on the flattened matrices. Every CG iterate minimises the quadratic
    ``½ <Y, op(Y)> - <Y, rhs>`` over a growing Krylov subspace around ``x0``, so the quadratic never
    increases from the warm start, whether or not the cap stops CG before convergence.
    """
    shape = rhs.shape
    A = LinearOperator((rhs.size, rhs.size), matvec=lambda y: op(y.reshape(shape)).ravel(), dtype=np.float64)
    x, _ = cg(A, rhs.ravel(), x0=x0.ravel(), rtol=1e-10, atol=0.0, maxiter=n_iter)  # info > 0: the cap, on purpose
    return x.reshape(shape)


@register("rreh", kind="crossmodal")
class RREH(BaseCrossModalHasher):
    r"""Reconstruction Relations Embedded Hashing (unsupervised, semi-paired, two modalities).

    Data (rows are items, ``Z`` = feature-mapped, centred rows): paired part ``Z_vᵖ`` (n_p × D_v) of both
    modalities, unpaired parts ``Z_vᵘ`` (n_v × D_v). ``s`` anchors ``S`` are sampled from the paired
    items; every unpaired row is reconstructed from its ``k`` nearest anchors *in its own modality* (raw
    features) with LLE weights (rows of ``G_v``, n_v × s, sparse, each row summing to one; see
    :func:`reconstruction_weights`). Its latent representation is ``G_v V_S`` — the reconstruction
    relation carried into the latent space.

    Objective (minimised over ``V, U_v, P_v, R, B, H_v``)::

        J = Σ_v λ_v ( ||Z_vᵖ - V U_v||² + α ||Z_vᵘ - G_v V_S U_v||² )       shared latent + relations
          + μ Σ_v ||V - Z_vᵖ P_v||²                                          latent predictable from features
          + β ( ||Bᵖ - V R||² + Σ_v ||B_vᵘ - G_v V_S R||² )                  codes = rotated latent
          + η Σ_v ||B_v - Z_v H_v||²                                         hash functions (all rows of v)
          + γ Σ_v ( ||U_v||² + ||P_v||² + ||H_v||² )

    with ``V`` (n_p × r) the shared latent of the paired items, ``R`` (r × r) orthogonal,
    ``B = [Bᵖ; B_0ᵘ; B_1ᵘ] ∈ {-1, +1}`` the codes of all training items (a paired item has one code, used
    by both modalities) and ``B_v`` the rows of ``B`` of the items having modality ``v``.

    Updates (each exact for its block, so ``J`` never increases — :attr:`objective_` records it):

    * ``U_v = (VᵀV + α M_vᵀM_v + γ/λ_v I)⁻¹ (VᵀZ_vᵖ + α M_vᵀZ_vᵘ)``, ``M_v = G_v V_S``;
    * ``P_v = (Z_vᵖᵀZ_vᵖ + γ/μ I)⁻¹ Z_vᵖᵀ V``;
    * ``V``: rows outside ``S`` in closed form, ``V_i = b_i A⁻¹`` with
      ``A = Σ_v λ_v U_vU_vᵀ + (2μ + β) I``; the anchor rows solve
      ``V_S A + Σ_v (G_vᵀG_v) V_S (αλ_v U_vU_vᵀ + β I) = b_S + Σ_v G_vᵀ(αλ_v Z_vᵘU_vᵀ + β B_vᵘRᵀ)`` by
      conjugate gradients warm-started from the current value (at most 10 steps per alternation;
      every CG iterate lowers the quadratic, so the step is monotone without being solved exactly);
    * ``R`` = orthogonal Procrustes on the r × r matrix ``[V; M_0; M_1]ᵀ B``;
    * ``B`` discrete and exact, no relaxation: ``Bᵖ = sgn(β V R + η Σ_v Z_vᵖ H_v)``,
      ``B_vᵘ = sgn(β M_v R + η Z_vᵘ H_v)``;
    * ``H_v = (Z_vᵀZ_v + γ/η I)⁻¹ Z_vᵀ B_v``.

    Every step costs ``O(n (D + r) r)`` plus ``O(s²r)`` for the anchors: linear in the number of items.
    A query of modality ``v`` is encoded as ``sgn(φ_v(x) H_v)``.

    Lifelong updates: :meth:`partial_fit` runs the same alternation on a new batch only, with the
    previous items' latents and codes frozen; their contribution enters through accumulated r × r and
    D × r statistics (:attr:`stats_`), so codes already stored in an index stay valid and the cost is
    linear in the batch size. The batch's latent starts from its own factorisation rotated onto the old
    latent axes by orthogonal Procrustes (:meth:`_batch_latent`), so new classes are not forced into the
    old couplings' span.

    Parameters
    ----------
    n_bits : int, default 64
    kernel : {"linear", "rbf"}, default "linear"
        Input map ``φ_v`` of each view, fitted on all its rows (paired and unpaired).
    n_anchors : int, default 500
        RBF anchors of the input map.
    n_relation_anchors : int, default 300
        ``s``, anchors of the reconstruction relations (sampled from the paired items).
    n_neighbors : int, default 10
        ``k``, anchors per reconstructed row.
    lam : float, default 0.5
        λ_0 (λ_1 = 1 - lam).
    alpha, mu, beta, eta, gamma : float
        Weights of the objective (defaults 1.0, 1.0, 0.1, 3.0, 1.0; chosen on a validation split of
        the Wiki training items, see ``docs/crossmodal.md``).
    n_iter : int, default 30
        Maximum alternations; stops when ``J`` changes by less than ``tol`` relative.
    tol : float, default 1e-4
    init : {"svd", "pls", "cca"}, default "svd"
        Initial latent of the paired items (see ``_init_latent``).
    memory : float in (0, 1], default 1.0
        :meth:`partial_fit` multiplies the accumulated statistics of earlier batches by this factor
        (1: every item counts the same; smaller: the hash functions follow the newer batches more,
        as in recursive least squares with forgetting).
    random_state : int, Generator or None

    Attributes
    ----------
    feature_maps_ : list of FeatureMap
    hash_projections_ : list of (D_v, n_bits) float64 — ``H_v``
    rotation_ : (n_bits, n_bits) float64 — ``R``
    bases_ : list of (n_bits, D_v) float64 — ``U_v``
    couplings_ : list of (D_v, n_bits) float64 — ``P_v``
    anchors_ : list of (s, d_v) float32 — the relation anchors (raw features) of each view
    anchor_latent_ : (s, n_bits) float64 — ``V_S``
    stats_ : dict of arrays — accumulated statistics used by :meth:`partial_fit`
    objective_ : (n_iter_done + 1,) float64
    train_codes_balance_ : (n_bits,) float64 — fraction of +1 per bit over the training codes
    n_features_in_ : list of int

    References
    ----------
    "RREH: Reconstruction Relations Embedded Hashing for Semi-Paired Cross-Modal Retrieval", 2024
    (abstract only; formulation here our own). Building blocks: G. Ding, Y. Guo, J. Zhou, "Collective
    Matrix Factorization Hashing for Multimodal Data", CVPR 2014; S. Roweis, L. Saul, "Nonlinear
    Dimensionality Reduction by Locally Linear Embedding", Science 2000; F. Shen et al., "Supervised
    Discrete Hashing", CVPR 2015 (discrete code updates).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.normal(size=(300, 4))
    >>> views = [Y @ rng.normal(size=(4, 20)), Y @ rng.normal(size=(4, 12))]
    >>> pairs = np.stack([np.arange(100), np.arange(100)], axis=1)   # a third of the items paired
    >>> model = RREH(n_bits=16, kernel="linear", random_state=0).fit(views, pairs)
    >>> model.transform(views[1], view=1).shape
    (300, 1)
    """

    def __init__(self, n_bits: int = 64, *, kernel: str = "linear", n_anchors: int = 500,
                 n_relation_anchors: int = 300, n_neighbors: int = 10, lam: float = 0.5, alpha: float = 1.0,
                 mu: float = 1.0, beta: float = 0.1, eta: float = 3.0, gamma: float = 1.0, n_iter: int = 30,
                 tol: float = 1e-4, init: str = "svd", memory: float = 1.0,
                 random_state=None):
        self.n_bits = n_bits
        self.kernel = kernel
        self.n_anchors = n_anchors
        self.n_relation_anchors = n_relation_anchors
        self.n_neighbors = n_neighbors
        self.lam = lam
        self.alpha = alpha
        self.mu = mu
        self.beta = beta
        self.eta = eta
        self.gamma = gamma
        self.n_iter = n_iter
        self.tol = tol
        self.init = init
        self.memory = memory
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------------------
    def _check_params(self):
        super()._check_params()
        if not 0 < float(self.memory) <= 1:
            raise ValidationError(f"memory must be in (0, 1], got {self.memory!r}")
        if self.init not in ("cca", "svd", "pls"):
            raise ValidationError(f"init must be 'pls', 'svd' or 'cca', got {self.init!r}")
        if not (0 < float(self.lam) < 1):
            raise ValidationError(f"lam must be in (0, 1), got {self.lam!r}")
        for name in ("alpha", "beta"):
            if not float(getattr(self, name)) >= 0:
                raise ValidationError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("mu", "eta", "gamma"):
            if not float(getattr(self, name)) > 0:
                raise ValidationError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name, lo in (("n_iter", 1), ("n_relation_anchors", 1), ("n_neighbors", 1), ("n_anchors", 1)):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < lo:
                raise ValidationError(f"{name} must be an integer >= {lo}, got {val!r}")

    # -- fitting -------------------------------------------------------------------------------------
    def _fit(self, views, pairs, rng):
        self.feature_maps_ = self._fit_feature_maps(views, rng)
        r = int(self.n_bits)
        data = self._prepare(views, pairs, rng, anchors=None)
        zero = self._zero_stats([fm.n_features_out for fm in self.feature_maps_], r)
        V0 = self._init_latent(data["Zp"], r, rng)
        R0 = itq_rotation(V0, rng, 20)  # ITQ on the initial latent: a good start for the codes
        res = self._solve(data, V0, R0, zero, rng)
        self._store(res, data, zero)

    def partial_fit(self, views, pairs=None):
        """Update the hash functions with a new batch; codes of earlier items stay as they are.

        Parameters
        ----------
        views, pairs : as in :meth:`fit`, for the new batch only (new classes allowed). A batch without
            enough pairs for new anchors reconstructs its rows from the stored anchors.

        Returns
        -------
        self

        Notes
        -----
        On an unfitted model this is :meth:`fit`. The previous items' latents and codes are frozen:
        they enter the updates of ``U_v, P_v, R, H_v`` only through :attr:`stats_`, so the cost is linear
        in the batch size, not in the total.
        """
        if not self._is_fitted():
            return self.fit(views, pairs)
        self._check_params()
        views = check_views(views, n_views=2, n_features=self.n_features_in_)
        pairs = self._check_partial_pairs(pairs, views)
        rng = check_random_state(self.random_state)
        rng = np.random.default_rng([int(rng.integers(2**31 - 1)), int(self.stats_["n_batches"][0])])
        r = int(self.n_bits)
        k = int(self.n_neighbors)
        own_anchors = pairs is not None and pairs.shape[0] >= 2 * k
        data = self._prepare(views, pairs if pairs is not None else np.zeros((0, 2), np.int64), rng,
                             anchors=None if own_anchors else self.anchors_)
        V0 = self._batch_latent(data["Zp"], r, rng)
        m = float(self.memory)
        prior = {k: (v if k == "n_batches" else m * v) for k, v in self.stats_.items()}
        res = self._solve(data, V0, self.rotation_.copy(), prior, rng,
                          fixed_anchor_latent=None if own_anchors else self.anchor_latent_)
        self._store(res, data, prior, keep_anchors=not own_anchors)
        return self

    def _check_partial_pairs(self, pairs, views):
        if pairs is None:
            return check_pairs(None, [v.shape[0] for v in views])
        arr = np.asarray(pairs)
        if arr.ndim == 2 and arr.shape[0] == 0:
            return None
        return check_pairs(pairs, [v.shape[0] for v in views])

    def _prepare(self, views, pairs, rng, anchors):
        """Mapped paired/unpaired blocks, relation anchors and reconstruction weights."""
        p = [pairs[:, 0], pairs[:, 1]]
        u = [unpaired_rows(views[v].shape[0], p[v]) for v in range(2)]
        Zp = [self.feature_maps_[v].transform(views[v][p[v]]) for v in range(2)]
        Zu = [self.feature_maps_[v].transform(views[v][u[v]]) for v in range(2)]
        if anchors is None:
            n_p = pairs.shape[0]
            s = min(int(self.n_relation_anchors), n_p)
            S = np.sort(rng.choice(n_p, s, replace=False))
            anchors = [np.ascontiguousarray(views[v][p[v][S]], dtype=np.float32) for v in range(2)]
        else:
            S = None
        G = [reconstruction_weights(views[v][u[v]], anchors[v], k=int(self.n_neighbors))
             if len(u[v]) else sp.csr_matrix((0, anchors[v].shape[0])) for v in range(2)]
        return {"Zp": Zp, "Zu": Zu, "G": G, "S": S, "anchors": anchors, "n_u": [len(x) for x in u]}

    @staticmethod
    def _zero_stats(dims, r):
        st = {"n_batches": np.zeros(1, dtype=np.int64), "LtB": np.zeros((r, r))}
        for v, D in enumerate(dims):
            st[f"UU{v}"] = np.zeros((r, r))
            st[f"UZ{v}"] = np.zeros((r, D))
            st[f"PZZ{v}"] = np.zeros((D, D))
            st[f"PZV{v}"] = np.zeros((D, r))
            st[f"HZZ{v}"] = np.zeros((D, D))
            st[f"HZB{v}"] = np.zeros((D, r))
        return st

    def _init_latent(self, Zp, r, rng):
        """Initial shared latent of the paired items (n_p, r).

        ``init="svd"`` (default): the top left singular vectors of the concatenated views; ``"pls"``: the
        mean of both views' projections on the top singular pairs of the cross-covariance ``Z_0ᵖᵀ Z_1ᵖ``
        (partial least squares: the directions the two modalities *share*, without the view-specific
        variance that "svd" also follows); ``"cca"``: the mean of both views' canonical projections
        (regularised CCA), each scaled by its correlation to the power 4, as CCA-ITQ. "pls" looked better
        on a first set of validation splits but not on a second (``docs/crossmodal.md``), so the default
        stays "svd". The latent is rescaled so that the mean squared row norm is r (the scale
        of a ±1 code). Directions beyond the rank are filled with small noise.
        """
        n = Zp[0].shape[0]
        k = min(r, Zp[0].shape[1], Zp[1].shape[1], n)
        V = 1e-3 * rng.standard_normal((n, r))
        if self.init == "cca":
            W0, W1, rho = cca_directions(Zp[0], Zp[1], k, 0.1)
            V[:, :k] = 0.5 * (Zp[0] @ W0 + Zp[1] @ W1) * np.maximum(rho, 1e-12) ** 4
        elif self.init == "pls":
            Uc, sc, Vct = np.linalg.svd(Zp[0].T @ Zp[1], full_matrices=False)
            k = min(k, len(sc))
            V[:, :k] = 0.5 * (Zp[0] @ Uc[:, :k] + Zp[1] @ Vct[:k].T)
        else:
            Uz, sv, _ = np.linalg.svd(np.hstack(Zp), full_matrices=False)
            k = min(k, Uz.shape[1])
            V[:, :k] = Uz[:, :k] * sv[:k]
        V *= np.sqrt(r / max(np.mean(np.sum(V * V, axis=1)), 1e-300))
        return V

    def _warm_latent(self, Zp):
        """Latent of new paired rows predicted by the current coupling ``P_v`` (mean over the views)."""
        return 0.5 * (Zp[0] @ self.couplings_[0] + Zp[1] @ self.couplings_[1])

    def _batch_latent(self, Zp, r, rng):
        """Initial latent of a new batch's paired rows for :meth:`partial_fit`.

        The batch's own factorisation (:meth:`_init_latent`, as a fresh fit would start) carries the
        structure of new classes that the old couplings ``P_v`` cannot predict, but its axes are
        arbitrary; it is therefore rotated onto the old latent coordinates by orthogonal Procrustes
        against the couplings' prediction ``Ṽ = ½ Σ_v Z_vᵖ P_v``: ``V₀ = V_svd Q``,
        ``Q = argmin_{QᵀQ=I} ||V_svd Q - Ṽ||``. (Chosen on validation splits of the training items
        of Wiki and MNIST two-view; see ``docs/crossmodal.md``.)
        """
        warm = self._warm_latent(Zp)
        n = Zp[0].shape[0]
        if n < 2:
            return warm
        Zc = np.hstack(Zp)
        if self.init == "svd" and n < Zc.shape[1]:
            # the same latent as _init_latent's SVD (up to column signs, which the Procrustes rotation
            # absorbs), from the eigenvectors of the n_p × n_p Gram matrix: cheaper for a small batch
            k = min(r, Zp[0].shape[1], Zp[1].shape[1], n)
            Vs = 1e-3 * rng.standard_normal((n, r))
            w, E = np.linalg.eigh(Zc @ Zc.T)
            top = np.argsort(w)[::-1][:k]
            Vs[:, :k] = E[:, top] * np.sqrt(np.maximum(w[top], 0.0))
            Vs *= np.sqrt(r / max(np.mean(np.sum(Vs * Vs, axis=1)), 1e-300))
        else:
            Vs = self._init_latent(Zp, r, rng)
        return Vs @ orthogonal_procrustes(Vs, warm)[0]

    def _solve(self, data, V, R, prior, rng, fixed_anchor_latent=None):
        lam = (float(self.lam), 1.0 - float(self.lam))
        al, mu, be, et, ga = (float(self.alpha), float(self.mu), float(self.beta), float(self.eta),
                              float(self.gamma))
        Zp, Zu, G, S = data["Zp"], data["Zu"], data["G"], data["S"]
        r = R.shape[0]
        I = np.eye(r)
        n_p = Zp[0].shape[0]
        has_p = n_p > 0
        GtG = [(g.T @ g).tocsr() for g in G]

        def anchor_latent(V):
            return V[S] if fixed_anchor_latent is None else fixed_anchor_latent

        # Gram matrices of the fixed inputs (plus the frozen items' statistics).
        PZZ = [prior[f"PZZ{v}"] + Zp[v].T @ Zp[v] for v in range(2)]
        HZZ = [prior[f"HZZ{v}"] + Zp[v].T @ Zp[v] + Zu[v].T @ Zu[v] for v in range(2)]
        HZZ_f = [cho_factor(HZZ[v] + (ga / et) * np.eye(HZZ[v].shape[0]), check_finite=False) for v in range(2)]
        PZZ_f = [cho_factor(PZZ[v] + (ga / mu) * np.eye(PZZ[v].shape[0]), check_finite=False) for v in range(2)]

        def chol_solve(L, B):
            return cho_solve(L, B, check_finite=False)

        # initial codes and hash functions
        M = [G[v] @ anchor_latent(V) for v in range(2)]
        Bp = sign_pm(V @ R)
        Bu = [sign_pm(M[v] @ R) for v in range(2)]
        H = [chol_solve(HZZ_f[v], prior[f"HZB{v}"] + Zp[v].T @ Bp + Zu[v].T @ Bu[v]) for v in range(2)]
        U = [np.zeros((r, Zp[v].shape[1])) for v in range(2)]
        P = [np.zeros((Zp[v].shape[1], r)) for v in range(2)]

        def objective():
            val = 0.0
            for v in range(2):
                val += lam[v] * (np.sum((Zp[v] - V @ U[v]) ** 2) + al * np.sum((Zu[v] - M[v] @ U[v]) ** 2))
                val += mu * np.sum((V - Zp[v] @ P[v]) ** 2)
                val += be * np.sum((Bu[v] - M[v] @ R) ** 2)
                val += et * (np.sum((Bp - Zp[v] @ H[v]) ** 2) + np.sum((Bu[v] - Zu[v] @ H[v]) ** 2))
                val += ga * (np.sum(U[v] ** 2) + np.sum(P[v] ** 2) + np.sum(H[v] ** 2))
            return val + be * np.sum((Bp - V @ R) ** 2)

        obj = []
        for it in range(int(self.n_iter)):
            # U_v, P_v
            for v in range(2):
                lhs = prior[f"UU{v}"] + V.T @ V + al * M[v].T @ M[v] + (ga / lam[v]) * I
                U[v] = np.linalg.solve(lhs, prior[f"UZ{v}"] + V.T @ Zp[v] + al * M[v].T @ Zu[v])
                P[v] = chol_solve(PZZ_f[v], prior[f"PZV{v}"] + Zp[v].T @ V)
            if it == 0:
                obj.append(objective())
            # V
            if has_p:
                A = sum(lam[v] * U[v] @ U[v].T for v in range(2)) + (2 * mu + be) * I
                rhs = sum(lam[v] * Zp[v] @ U[v].T + mu * Zp[v] @ P[v] for v in range(2)) + be * Bp @ R.T
                Vnew = np.linalg.solve(A, rhs.T).T
                if fixed_anchor_latent is None and S is not None and len(S):
                    C = [al * lam[v] * U[v] @ U[v].T + be * I for v in range(2)]
                    rhs_S = rhs[S] + sum(G[v].T @ (al * lam[v] * Zu[v] @ U[v].T + be * Bu[v] @ R.T)
                                         for v in range(2))

                    def op(Y, A=A, C=C):
                        return Y @ A + GtG[0] @ (Y @ C[0]) + GtG[1] @ (Y @ C[1])

                    Vnew[S] = _solve_matrix_cg(op, rhs_S, V[S], n_iter=10)  # warm start: a few steps suffice
                V = Vnew
                M = [G[v] @ anchor_latent(V) for v in range(2)]
            # R (orthogonal Procrustes over all rows, frozen items included)
            LtB = prior["LtB"] + V.T @ Bp + M[0].T @ Bu[0] + M[1].T @ Bu[1]
            R = nearest_orthogonal(LtB)
            # B: exact discrete minimiser
            Bp = sign_pm(be * V @ R + et * (Zp[0] @ H[0] + Zp[1] @ H[1]))
            Bu = [sign_pm(be * M[v] @ R + et * Zu[v] @ H[v]) for v in range(2)]
            # H_v
            H = [chol_solve(HZZ_f[v], prior[f"HZB{v}"] + Zp[v].T @ Bp + Zu[v].T @ Bu[v]) for v in range(2)]
            obj.append(objective())
            if abs(obj[-2] - obj[-1]) <= float(self.tol) * abs(obj[-2]):
                break
        stats = {"LtB": V.T @ Bp + M[0].T @ Bu[0] + M[1].T @ Bu[1]}
        for v in range(2):
            stats[f"UU{v}"] = V.T @ V + al * M[v].T @ M[v]
            stats[f"UZ{v}"] = V.T @ Zp[v] + al * M[v].T @ Zu[v]
            stats[f"PZZ{v}"] = Zp[v].T @ Zp[v]
            stats[f"PZV{v}"] = Zp[v].T @ V
            stats[f"HZZ{v}"] = Zp[v].T @ Zp[v] + Zu[v].T @ Zu[v]
            stats[f"HZB{v}"] = Zp[v].T @ Bp + Zu[v].T @ Bu[v]
        codes = np.vstack([Bp] + Bu)
        return {"U": U, "P": P, "H": H, "R": R, "V": V, "obj": np.asarray(obj), "stats": stats,
                "balance": (codes > 0).mean(axis=0) if codes.shape[0] else np.full(r, 0.5)}

    def _store(self, res, data, prior, keep_anchors=False):
        self.hash_projections_ = res["H"]
        self.rotation_ = res["R"]
        self.bases_ = res["U"]
        self.couplings_ = res["P"]
        if not keep_anchors:
            self.anchors_ = data["anchors"]
            self.anchor_latent_ = res["V"][data["S"]]
        new = {k: prior[k] + res["stats"][k] for k in res["stats"]}
        new["n_batches"] = prior["n_batches"] + 1
        self.stats_ = new
        self.objective_ = res["obj"]
        self.train_codes_balance_ = res["balance"]

    def _project(self, X, view):
        return self.feature_maps_[view].transform(X) @ self.hash_projections_[view]
