"""MCR² manifold clustering: features and a doubly-stochastic membership learned by maximising the
coding-rate reduction ΔR = R(Z) − Rc(Z, Γ).

* :func:`coding_rate` — ``R(Z) = ½ logdet(I + d/(n ε²) ZᵀZ)`` of rows ``Z`` (n, d);
* :func:`coding_rate_reduction` — ``R(Z) − Rc(Z, Π)`` with ``Rc = Σ_j tr(Π_j)/(2n) logdet(I + d/(tr(Π_j) ε²)
  Zᵀ diag(π_j) Z)`` for a membership ``Π`` (n, m) whose column j weighs the rows of group j;
* :func:`sinkhorn` — the doubly-stochastic projection of ``exp(logits)`` (log-domain Sinkhorn–Knopp);
* :func:`subspace_coherence` — mean |cos| of the principal angles between the clusters' subspaces
  (0: mutually orthogonal subspaces, 1: identical);
* :class:`ManifoldClustering` — the MLC estimator (``fit`` / ``predict`` / ``transform``).

References: T. Ding, S. Tong, K. H. R. Chan, X. Dai, Y. Ma, B. D. Haeffele, "Unsupervised Manifold
Linearizing and Clustering", ICCV 2023; Y. Yu, K. H. R. Chan, C. You, C. Song, Y. Ma, "Learning Diverse and
Discriminative Representations via the Principle of Maximal Coding Rate Reduction", NeurIPS 2020.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from ..errors import ValidationError
from ..params import check_int_param, check_real_param
from ._common import check_fitted, mlp, require_torch, seed_of, to_images, torch_local_state

__all__ = ["coding_rate", "coding_rate_reduction", "sinkhorn", "subspace_coherence", "ManifoldClustering"]


# ---- torch kernels (tensors in, tensors out) ---------------------------------------------------------------

def _rate(torch, Z, eps: float):
    n, d = Z.shape
    eye = torch.eye(d, dtype=Z.dtype, device=Z.device)
    return 0.5 * torch.linalg.slogdet(eye + (d / (n * eps**2)) * Z.T @ Z)[1]


def _compressed_rate(torch, Z, Pi, eps: float):
    """``Rc(Z, Π)``: Π (n, m) non-negative, column j = weights of group j (empty groups contribute 0)."""
    n, d = Z.shape
    size = Pi.sum(0)  # (m,)
    keep = size > 1e-12
    Pi, size = Pi[:, keep], size[keep]
    cov = torch.einsum("nj,nd,ne->jde", Pi, Z, Z)  # (m, d, d) = Zᵀ diag(π_j) Z
    eye = torch.eye(d, dtype=Z.dtype, device=Z.device)
    logdets = torch.linalg.slogdet(eye + (d / eps**2) * cov / size[:, None, None])[1]
    return (size * logdets).sum() / (2.0 * n)


def _sinkhorn(torch, logits, n_iter: int, row_sum: float = 1.0):
    """Log-domain Sinkhorn: ``exp(logits + a_i + b_j)`` with rows summing to ``row_sum`` and columns to
    ``row_sum · n / m`` (n, m = shape); ``-inf`` logits stay exactly 0."""
    n, m = logits.shape
    log_r = torch.log(torch.tensor(row_sum, dtype=logits.dtype))
    log_c = torch.log(torch.tensor(row_sum * n / m, dtype=logits.dtype))
    L = logits
    for _ in range(n_iter):
        L = L - torch.logsumexp(L, dim=1, keepdim=True) + log_r
        L = L - torch.logsumexp(L, dim=0, keepdim=True) + log_c
    return torch.exp(L)


# ---- numpy front ends --------------------------------------------------------------------------------------

def _as_tensor(torch, A, name: str, ndim: int = 2):
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != ndim or A.shape[0] == 0 or not np.isfinite(A).all():
        raise ValidationError(f"{name} must be a finite non-empty {ndim}-D array, got shape {A.shape}")
    return torch.from_numpy(A)


def coding_rate(Z, eps: float = 0.5) -> float:
    """``R(Z) = ½ logdet(I_d + d/(n ε²) ZᵀZ)`` (nats) for rows Z float (n, d): the bits (in nats) needed to
    code the rows up to distortion ε with a Gaussian codebook (Yu et al., 2020, eq. 1)."""
    torch = require_torch("coding_rate")
    eps = check_real_param(eps, "eps", min_val=0, include_boundaries="neither")
    return float(_rate(torch, _as_tensor(torch, Z, "Z"), eps))


def coding_rate_reduction(Z, membership, eps: float = 0.5) -> float:
    """``ΔR = R(Z) − Rc(Z, Π)`` for rows Z float (n, d) and a membership Π float (n, m) ≥ 0 (column j: the
    weight of each row in group j; one-hot labels give the hard MCR² of Yu et al., 2020, eq. 8; MLC's
    doubly-stochastic Γ (n, n) gives every row its own soft group)."""
    torch = require_torch("coding_rate_reduction")
    eps = check_real_param(eps, "eps", min_val=0, include_boundaries="neither")
    Zt, Pt = _as_tensor(torch, Z, "Z"), _as_tensor(torch, membership, "membership")
    if Pt.shape[0] != Zt.shape[0] or (Pt < 0).any():
        raise ValidationError(f"membership must be non-negative with {Zt.shape[0]} rows, got shape "
                              f"{tuple(Pt.shape)}")
    return float(_rate(torch, Zt, eps) - _compressed_rate(torch, Zt, Pt, eps))


def sinkhorn(logits, n_iter: int = 50, row_sum: float = 1.0) -> np.ndarray:
    """Doubly-stochastic projection (float64 (n, m)) of ``exp(logits)``: rows sum to ``row_sum``, columns to
    ``row_sum · n / m``; entries with ``-inf`` logits (e.g. a masked diagonal) stay 0. Sinkhorn–Knopp in the
    log domain, ``n_iter`` row/column passes (ends on a column pass: columns exact, rows approximately)."""
    torch = require_torch("sinkhorn")
    L = np.asarray(logits, dtype=np.float64)
    if L.ndim != 2 or L.size == 0 or np.isnan(L).any() or np.isposinf(L).any():
        raise ValidationError(f"logits must be a non-empty 2-D array without NaN or +inf, got shape {L.shape}")
    if np.isneginf(L).all(axis=1).any() or np.isneginf(L).all(axis=0).any():
        raise ValidationError("a row or column of logits is all -inf: no doubly-stochastic scaling exists")
    n_iter = check_int_param(n_iter, "n_iter", min_val=1)
    return _sinkhorn(torch, torch.from_numpy(L), n_iter, float(row_sum)).numpy()


def subspace_coherence(Z, labels, energy: float = 0.9, max_dim: int | None = None) -> float:
    """Mean |cos| of the principal angles between the subspaces of every pair of clusters (0 = orthogonal).

    Each cluster's subspace is spanned by the top right singular vectors of its rows (uncentred, as MCR²'s
    subspaces pass through the origin) that hold ``energy`` of its squared norm (at most ``max_dim``,
    default ``d // n_clusters``, at least 1). Clusters with fewer than 2 rows are skipped.
    """
    Z = np.asarray(Z, dtype=np.float64)
    labels = np.asarray(labels)
    if Z.ndim != 2 or labels.shape != (Z.shape[0],):
        raise ValidationError(f"Z (n, d) and labels (n,) do not match: {Z.shape}, {labels.shape}")
    ks = [c for c in np.unique(labels) if (labels == c).sum() >= 2]
    cap = max_dim or max(1, Z.shape[1] // max(1, len(ks)))
    bases = []
    for c in ks:
        _, s, vt = np.linalg.svd(Z[labels == c], full_matrices=False)
        share = np.cumsum(s**2) / max((s**2).sum(), 1e-300)
        bases.append(vt[: min(cap, int(np.searchsorted(share, energy)) + 1)].T)
    cos = [np.linalg.svd(a.T @ b, compute_uv=False).mean() for i, a in enumerate(bases) for b in bases[i + 1:]]
    if not cos:
        raise ValidationError("subspace_coherence needs at least two clusters with 2 or more rows")
    return float(np.mean(cos))


# ---- the estimator -----------------------------------------------------------------------------------------

def _augment_batch(torch, x, gen, image_shape, noise: float):
    """Two views of a batch: random affine + noise for images (the SimCLR augmentation of
    :mod:`hashlearn.discover.labels`), Gaussian noise for plain feature rows."""
    if image_shape is not None:
        from ..discover.labels import _augment

        imgs = x.view(x.shape[0], *image_shape)
        return [_augment(torch, imgs, gen, 15.0, 0.12, noise).flatten(1) for _ in range(2)]
    return [x + noise * torch.randn(x.shape, generator=gen) for _ in range(2)]


class _MLCNet:
    """Backbone MLP and two heads (features Z, cluster vectors C), both outputs on the unit sphere."""

    def __init__(self, torch, d_in: int, hidden: int, dim: int):
        nn = torch.nn
        self.torch = torch
        self.backbone = mlp(torch, [d_in, hidden, hidden])
        self.backbone.append(nn.BatchNorm1d(hidden))
        self.backbone.append(nn.ReLU())
        self.feature = nn.Linear(hidden, dim)
        self.cluster = nn.Linear(hidden, dim)
        self.modules = nn.ModuleDict({"backbone": self.backbone, "feature": self.feature, "cluster": self.cluster})

    def __call__(self, x):
        F = self.torch.nn.functional
        h = self.backbone(x)
        return F.normalize(self.feature(h), dim=1), F.normalize(self.cluster(h), dim=1)


class ManifoldClustering(ClusterMixin, BaseEstimator):
    """MLC: cluster data lying near a union of manifolds while mapping each manifold to a linear subspace.

    A network maps x to unit-norm features ``z`` and cluster vectors ``c``. The membership of a mini-batch is
    the doubly-stochastic matrix ``Γ = Sinkhorn(exp(C Cᵀ / η))`` with a zero diagonal (no row is its own
    group; rows and columns sum to 1), and training maximises ``R(Z) − Rc(Z, Γ)`` (rows of the two views
    averaged) plus ``invariance`` × the cosine between the two augmented views of each row. Following the
    paper's initialisation, the first ``pretrain_steps`` maximise the total coding rate of each view plus
    view invariance (self-supervised), and the cluster head is then initialised as a copy of the feature
    head, so that the first membership is the doubly-stochastic projection of the features' own affinity.
    ``labels_`` come from spectral clustering of the membership Γ of all training rows (at most
    ``max_spectral`` rows; the rest, and :meth:`predict`, take the cluster whose mean cluster vector is
    closest in cosine).

    Parameters
    ----------
    n_clusters : int, default 10
    dim : int, default 32 — size of z and c
    hidden : int, default 512
    eps : float, default 0.5 — coding precision ε
    eta : float, default 0.1 — Sinkhorn temperature of the membership
    invariance : float, default 20.0 — weight of the view-agreement term
    pretrain_steps : int, default 1000 ; steps : int, default 1000 ; batch_size : int, default 256
    lr : float, default 1e-3 (Adam)
    image_shape : (h, w) or None — inputs are flattened images: use random-affine augmentations; else
        Gaussian noise of ``noise`` × the feature sd
    noise : float, default 0.05
    max_spectral : int, default 10000
    n_threads : int, default 1 ; random_state : int, Generator or None

    Attributes
    ----------
    labels_ : int64 (n,) ; centroids_ : float32 (n_clusters, dim) — mean cluster vectors
    loss_ : float64 (pretrain_steps + steps,) ; delta_r_ : float64 (steps,) — ΔR per joint step
    state_ : dict of float32 arrays — the network's weights ; n_features_in_ : int
    """

    def __init__(self, n_clusters: int = 10, *, dim: int = 32, hidden: int = 512, eps: float = 0.5,
                 eta: float = 0.1, invariance: float = 20.0, pretrain_steps: int = 1000, steps: int = 1000,
                 batch_size: int = 256, lr: float = 1e-3, image_shape=None, noise: float = 0.05,
                 max_spectral: int = 10000, n_threads: int = 1, random_state=None):
        self.n_clusters = n_clusters
        self.dim = dim
        self.hidden = hidden
        self.eps = eps
        self.eta = eta
        self.invariance = invariance
        self.pretrain_steps = pretrain_steps
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.image_shape = image_shape
        self.noise = noise
        self.max_spectral = max_spectral
        self.n_threads = n_threads
        self.random_state = random_state

    def _rows(self, X, fitted: bool = False) -> np.ndarray:
        if self.image_shape is not None:
            X = to_images(X, self.image_shape).reshape(np.asarray(X).shape[0], -1)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] == 0 or not np.isfinite(X).all():
            raise ValidationError(f"X must be a finite 2-D array (n, d) with n >= 1, got shape {X.shape}")
        if fitted and X.shape[1] != self.n_features_in_:
            raise ValidationError(f"X has {X.shape[1]} features but the model was fitted on {self.n_features_in_}")
        return X

    def _check_params(self, n: int) -> dict:
        k = check_int_param(self.n_clusters, "n_clusters", min_val=2)
        if k > n:
            raise ValidationError(f"n_clusters={k} is more than the {n} samples to cluster")
        return {"k": k, "dim": check_int_param(self.dim, "dim", min_val=1),
                "hidden": check_int_param(self.hidden, "hidden", min_val=1),
                "eps": check_real_param(self.eps, "eps", min_val=0, include_boundaries="neither"),
                "eta": check_real_param(self.eta, "eta", min_val=0, include_boundaries="neither"),
                "inv": check_real_param(self.invariance, "invariance", min_val=0),
                "pre": check_int_param(self.pretrain_steps, "pretrain_steps", min_val=0),
                "steps": check_int_param(self.steps, "steps", min_val=1),
                "bs": min(check_int_param(self.batch_size, "batch_size", min_val=4), n),
                "lr": check_real_param(self.lr, "lr", min_val=0, include_boundaries="neither"),
                "noise": check_real_param(self.noise, "noise", min_val=0)}

    def _net(self, torch, d_in: int, p: dict) -> _MLCNet:
        return _MLCNet(torch, d_in, p["hidden"], p["dim"])

    def fit(self, X, y=None):
        """Learn features and membership from X float (n, d) (or images (n, h, w) with ``image_shape``)."""
        X = self._rows(X)
        if X.shape[0] < 4:
            raise ValidationError(f"ManifoldClustering needs at least 4 samples, got {X.shape[0]}")
        p = self._check_params(X.shape[0])
        torch = require_torch("ManifoldClustering")
        seed = seed_of(self.random_state)
        shape = None if self.image_shape is None else tuple(int(s) for s in self.image_shape)
        with torch_local_state(torch, seed, check_int_param(self.n_threads, "n_threads", min_val=1)):
            gen = torch.Generator().manual_seed(seed)
            net = self._net(torch, X.shape[1], p)
            Xt = torch.from_numpy(X)
            noise = p["noise"] * (1.0 if shape is not None else float(X.std()) or 1.0)
            opt = torch.optim.Adam(net.modules.parameters(), lr=p["lr"])
            losses, delta = [], []
            for step in range(p["pre"] + p["steps"]):
                if step == p["pre"]:  # the paper's one-shot initialisation of the membership
                    net.cluster.load_state_dict(net.feature.state_dict())
                    opt = torch.optim.Adam(net.modules.parameters(), lr=p["lr"])
                batch = Xt[torch.randperm(X.shape[0], generator=gen)[:p["bs"]]]
                v1, v2 = _augment_batch(torch, batch, gen, shape, noise)
                z, c = net(torch.cat([v1, v2]))
                z1, z2 = z.chunk(2)
                agree = (z1 * z2).sum(1).mean()
                if step < p["pre"]:
                    loss = -0.5 * (_rate(torch, z1, p["eps"]) + _rate(torch, z2, p["eps"])) - p["inv"] * agree
                else:
                    zb = torch.nn.functional.normalize(z1 + z2, dim=1)
                    cb = torch.nn.functional.normalize(c.chunk(2)[0] + c.chunk(2)[1], dim=1)
                    gamma = self._membership(torch, cb, p["eta"])
                    dr = _rate(torch, zb, p["eps"]) - _compressed_rate(torch, zb, gamma, p["eps"])
                    loss = -dr - p["inv"] * agree
                    delta.append(float(dr.detach()))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            self.state_ = {k: v.detach().numpy().copy() for k, v in net.modules.state_dict().items()}
        self.loss_, self.delta_r_ = np.asarray(losses), np.asarray(delta)
        self.n_features_in_ = X.shape[1]
        Z, C = self._embed(X)
        self.labels_ = self._spectral(C, p, seed)
        cent = np.stack([C[self.labels_ == j].mean(0) if (self.labels_ == j).any() else np.zeros(C.shape[1])
                         for j in range(p["k"])])
        self.centroids_ = (cent / np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        return self

    @staticmethod
    def _membership(torch, C, eta: float, n_iter: int = 20):
        logits = (C @ C.T / eta).masked_fill(torch.eye(C.shape[0], dtype=torch.bool), float("-inf"))
        return _sinkhorn(torch, logits, n_iter)

    def _spectral(self, C: np.ndarray, p: dict, seed: int) -> np.ndarray:
        from sklearn.cluster import SpectralClustering

        torch = require_torch("ManifoldClustering")
        m = min(C.shape[0], check_int_param(self.max_spectral, "max_spectral", min_val=p["k"]))
        sub = np.random.default_rng(seed).permutation(C.shape[0])[:m] if m < C.shape[0] else np.arange(m)
        with torch.no_grad():
            gamma = self._membership(torch, torch.from_numpy(C[sub]).double(), p["eta"], n_iter=30).numpy()
        gamma = 0.5 * (gamma + gamma.T)
        sc = SpectralClustering(p["k"], affinity="precomputed", assign_labels="cluster_qr", random_state=seed)
        lab_sub = sc.fit_predict(gamma)
        if m == C.shape[0]:
            return lab_sub.astype(np.int64)
        cent = np.stack([C[sub][lab_sub == j].mean(0) for j in range(p["k"])])
        return np.argmax(C @ cent.T, axis=1).astype(np.int64)

    def _embed(self, X: np.ndarray, batch_size: int = 4096):
        torch = require_torch("ManifoldClustering")
        p = {"hidden": int(self.hidden), "dim": int(self.dim)}
        net = self._net(torch, X.shape[1], p)
        net.modules.load_state_dict({k: torch.from_numpy(v) for k, v in self.state_.items()})
        net.modules.eval()
        with torch.no_grad():
            out = [net(torch.from_numpy(X[i:i + batch_size])) for i in range(0, X.shape[0], batch_size)]
        return (np.concatenate([o[0].numpy() for o in out]).astype(np.float32),
                np.concatenate([o[1].numpy() for o in out]).astype(np.float32))

    def transform(self, X) -> np.ndarray:
        """Unit-norm features Z float32 (n, dim) of X (rows from the union-of-subspaces representation)."""
        check_fitted(self, "state_")
        return self._embed(self._rows(X, fitted=True))[0]

    def predict(self, X) -> np.ndarray:
        """Cluster int64 (n,) of each row: the fitted cluster whose mean cluster vector is closest (cosine)."""
        check_fitted(self, "state_")
        C = self._embed(self._rows(X, fitted=True))[1]
        return np.argmax(C @ self.centroids_.T, axis=1).astype(np.int64)
