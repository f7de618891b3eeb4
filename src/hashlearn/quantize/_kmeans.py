"""k-means and nearest-centroid helpers shared by the quantizers.

* :func:`train_kmeans` — faiss' ``Kmeans`` (Lloyd, random initial centroids, faiss' rule for empty
  clusters) for full-dimensional codebooks (RQ levels, coarse IVF centroids): several times faster
  than scikit-learn's ``KMeans`` on one thread in our measurements, and the k-means faiss' own
  quantizers train with, which keeps codebooks comparable in the benchmarks.
* :func:`product_kmeans` — the M sub-space k-means of PQ/OPQ run together, with the exact PQ encoder
  as assignment step; faster than M separate ``faiss.Kmeans`` runs on small sub-spaces (the
  per-call overhead dominates there).

Timings of all three: ``python bench/quantize.py --part micro`` (bench/sections/quantize.md).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["train_kmeans", "product_kmeans", "nearest_centroids", "squared_distances"]

DEFAULT_POINTS_PER_CENTROID = 256  # faiss' default training sample: at most 256 points per centroid


def train_kmeans(X: np.ndarray, k: int, *, n_iter: int, rng: np.random.Generator,
                 max_points_per_centroid: int = DEFAULT_POINTS_PER_CENTROID, init: np.ndarray | None = None) -> np.ndarray:
    """Lloyd k-means of ``X`` (n, d) float32 into ``k`` centroids; returns float32 (k, d).

    ``init`` (k, d) warm-starts from given centroids; otherwise faiss picks k random training points.
    Empty clusters are re-seeded by splitting large ones (faiss' rule). The seed is drawn from ``rng``.
    """
    import faiss

    X = np.ascontiguousarray(X, dtype=np.float32)
    km = faiss.Kmeans(
        X.shape[1], int(k), niter=int(n_iter), seed=int(rng.integers(0, 2**31 - 1)),
        max_points_per_centroid=int(max_points_per_centroid), min_points_per_centroid=1, verbose=False,
    )
    if init is None:
        km.train(X)
    else:
        km.train(X, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def squared_distances(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """(n, k) float32 squared L2 distances by the norm expansion (clipped at 0)."""
    X = np.asarray(X, dtype=np.float32)
    C = np.asarray(C, dtype=np.float32)
    d = (X * X).sum(1)[:, None] - 2.0 * (X @ C.T) + (C * C).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


def nearest_centroids(X: np.ndarray, C: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest centroids of each row: (D float32 (n, k) squared L2, I int64 (n, k))."""
    import faiss

    D, I = faiss.knn(np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(C, dtype=np.float32), int(k))
    return D.astype(np.float32, copy=False), I.astype(np.int64, copy=False)


# -- product k-means: all sub-spaces at once ------------------------------------------------------------
@njit(cache=True, parallel=True, boundscheck=False)
def _accumulate(X, codes, ksub, dsub):
    """Per sub-space and centroid: sum of assigned sub-vectors (float64) and counts."""
    n = X.shape[0]
    M = codes.shape[1]
    sums = np.zeros((M, ksub, dsub), np.float64)
    counts = np.zeros((M, ksub), np.int64)
    for m in prange(M):
        base = m * dsub
        for i in range(n):
            c = codes[i, m]
            counts[m, c] += 1
            for s in range(dsub):
                sums[m, c, s] += X[i, base + s]
    return sums, counts


def _split_empty(C: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> None:
    """faiss' rule for empty clusters: copy a large cluster's centroid (picked with probability
    proportional to its size - 1) and push the two copies apart symmetrically by 1/1024."""
    eps = 1.0 / 1024.0
    for ci in np.flatnonzero(counts == 0):
        weights = np.maximum(counts - 1, 0).astype(np.float64)
        if weights.sum() <= 0:
            return
        cj = int(rng.choice(counts.shape[0], p=weights / weights.sum()))
        sign = np.where(np.arange(C.shape[1]) % 2 == 0, 1.0, -1.0)
        C[ci] = C[cj] * (1 + sign * eps)
        C[cj] = C[cj] * (1 - sign * eps)
        counts[ci] = counts[cj] // 2
        counts[cj] -= counts[ci]


def product_kmeans(X: np.ndarray, M: int, ksub: int, *, n_iter: int, rng: np.random.Generator,
                   init: np.ndarray | None = None) -> np.ndarray:
    """Lloyd k-means in each of the ``M`` contiguous sub-spaces of ``X`` (n, M * dsub) at once.

    Returns float32 codebooks (M, ksub, dsub). Initialisation: ``init`` or ``ksub`` distinct random
    training vectors per sub-space (faiss' default); empty clusters are re-seeded with faiss' rule.
    The assignment step is the exact PQ encoder (:func:`_kernels.encode_pq_kernel`, direct distances).
    """
    from ._kernels import encode_pq_kernel

    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    dsub = d // M
    if init is None:
        C = np.empty((M, ksub, dsub), np.float32)
        for m in range(M):
            C[m] = X[rng.choice(n, size=ksub, replace=False), m * dsub : (m + 1) * dsub]
    else:
        C = np.array(init, dtype=np.float32, copy=True)
    for _ in range(int(n_iter)):
        codes = encode_pq_kernel(X, np.ascontiguousarray(C.transpose(0, 2, 1)))
        sums, counts = _accumulate(X, codes, ksub, dsub)
        for m in range(M):
            nz = counts[m] > 0
            C[m, nz] = (sums[m, nz] / counts[m, nz, None]).astype(np.float32)
            if not nz.all():
                _split_empty(C[m], counts[m].copy(), rng)
    return C
