"""numba kernels for the inverted-file index. Private: use :class:`hashlearn.index.IVFIndex`.

Codes are stored list-major (CSR: list ``l`` holds rows ``offsets[l]:offsets[l+1]``). A query scans
its ``nprobe`` lists; distances of a list are computed tile by tile into a buffer (ADC tables with the
flat scan's sub-quantizer-major tile layout, or Hamming popcounts) and merged into a sorted top-k
buffer whose ties go to the smaller id. Parallel over queries.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..codes._kernels import popcount64
from ..quantize._kernels import TILE, _transpose_tile, scan_topk, tile_distances

_KEY_MAX = np.iinfo(np.int64).max
ROWWISE_BELOW = 256  # lists (or list tails) shorter than this are scored row by row
INF32 = np.float32(np.inf)


@njit(cache=True, boundscheck=False, fastmath=True)
def _hamming_tile(qrow, codes, s, L, dist):
    W = codes.shape[1]
    for j in range(L):
        acc = np.uint64(0)
        for w in range(W):
            acc += popcount64(qrow[w] ^ codes[s + j, w])
        dist[j] = np.float32(acc)


@njit(cache=True, boundscheck=False)
def _rowwise_distances(T, codes, s, L, bias, use_bias, dist):
    """dist[j] = bias + sum_m T[m, codes[s + j, m]], one code row at a time.

    The additions are done in exactly the order of the tiled scan (``tile_distances``: the bias, then
    ``(t0 + t1) + (t2 + t3)`` per group of four sub-quantizers, then the rest one by one), so a code's
    distance does not depend on the length of its list: an index split into shards gives bit-identical
    distances (no fastmath here, so the compiler keeps that order)."""
    M = T.shape[0]
    for j in range(L):
        row = codes[s + j]
        acc = bias[s + j] if use_bias else np.float32(0.0)
        m = 0
        while m + 4 <= M:
            acc += (T[m, row[m]] + T[m + 1, row[m + 1]]) + (T[m + 2, row[m + 2]] + T[m + 3, row[m + 3]])
            m += 4
        while m < M:
            acc += T[m, row[m]]
            m += 1
        dist[j] = acc


@njit(cache=True, boundscheck=False)
def _list_tile(mode, T, qrow, codes, bias, use_bias, s, L, cT, dist):
    """Distances of rows s..s+L of ``codes``: ADC with table T (modes 0, 2) or Hamming to qrow (mode 1).
    Short runs are scored row by row; long ones through the transposed tile (as the flat scan)."""
    if mode == 1:
        _hamming_tile(qrow, codes, s, L, dist)
    elif L < ROWWISE_BELOW:
        _rowwise_distances(T, codes, s, L, bias, use_bias, dist)
    else:
        _transpose_tile(codes[s : s + L], cT)
        tile_distances(T, cT, L, bias, s, use_bias, dist)


@njit(cache=True, boundscheck=False, fastmath=True)
def _probe_table(mode, tables, A, Bq, qc, i, p, lst, T):
    """The look-up table of query i for probe p (list lst): given (mode 0) or A[lst] + Bq[i] with the
    query-to-centroid distance qc[i, p] added to the first sub-quantizer's row (mode 2; an A with one
    row serves every list)."""
    if mode == 0:
        return tables[i, p]
    M, ksub = T.shape
    a = A[lst if A.shape[0] > 1 else 0]
    b = Bq[i]
    for m in range(M):
        for j in range(ksub):
            T[m, j] = a[m, j] + b[m, j]
    c = qc[i, p]
    for j in range(ksub):
        T[0, j] += c
    return T


@njit(cache=True, parallel=True, boundscheck=False)
def ivf_knn_kernel(mode, tables, A, Bq, qc, qcodes, probes, offsets, codes, bias, use_bias, ids, k):
    """Top-k over the probed lists; probes (nq, nprobe) int64, -1 = no list.

    mode 0: tables (nq, nprobe, M, ksub) given per probe; mode 2: tables A[list] + Bq[query] (+ qc
    (nq, nprobe) on the first row), the precomputed-table form of residual ADC; mode 1: Hamming
    distances of uint64 codes to qcodes (nq, nprobe, W). Unused inputs may be dummies.

    Returns D float32 (nq, k) and I int64 (nq, k) (ids, -1 padding, D = inf there).
    """
    nq, nprobe = probes.shape
    M = codes.shape[1]
    ksub = Bq.shape[2]
    out_d = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    for i in prange(nq):
        hd = np.full(k, INF32, np.float32)
        hi = np.full(k, -1, np.int64)
        hk = np.full(k, _KEY_MAX, np.int64)
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M if mode != 1 else 1, TILE), np.uint8)
        Tbuf = np.empty((M if mode == 2 else 1, ksub), np.float32)
        for p in range(nprobe):
            lst = probes[i, p]
            if lst < 0 or offsets[lst + 1] == offsets[lst]:
                continue
            T = _probe_table(mode, tables, A, Bq, qc, i, p, lst, Tbuf) if mode != 1 else Tbuf
            qrow = qcodes[i, p]
            for s in range(offsets[lst], offsets[lst + 1], TILE):
                L = min(TILE, offsets[lst + 1] - s)
                _list_tile(mode, T, qrow, codes, bias, use_bias, s, L, cT, dist)
                scan_topk(dist, L, s, hd, hi, hk, k, ids, True)
        for j in range(k):
            out_d[i, j] = hd[j]
            out_i[i, j] = ids[hi[j]] if hi[j] >= 0 else -1
    return out_d, out_i


@njit(cache=True, parallel=True, boundscheck=False)
def ivf_range_kernel(mode, tables, A, Bq, qc, qcodes, probes, offsets, codes, bias, use_bias, radius, lims,
                     count_only, out_d, out_pos):
    """Range search over the probed lists (inputs as :func:`ivf_knn_kernel`), two passes:
    ``count_only`` returns the counts (nq,); otherwise (distance, row) pairs are written from ``lims``."""
    nq, nprobe = probes.shape
    M = codes.shape[1]
    ksub = Bq.shape[2]
    counts = np.zeros(nq, np.int64)
    for i in prange(nq):
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M if mode != 1 else 1, TILE), np.uint8)
        Tbuf = np.empty((M if mode == 2 else 1, ksub), np.float32)
        f = 0 if count_only else lims[i]
        c = 0
        for p in range(nprobe):
            lst = probes[i, p]
            if lst < 0 or offsets[lst + 1] == offsets[lst]:
                continue
            T = _probe_table(mode, tables, A, Bq, qc, i, p, lst, Tbuf) if mode != 1 else Tbuf
            qrow = qcodes[i, p]
            for s in range(offsets[lst], offsets[lst + 1], TILE):
                L = min(TILE, offsets[lst + 1] - s)
                _list_tile(mode, T, qrow, codes, bias, use_bias, s, L, cT, dist)
                for j in range(L):
                    if dist[j] <= radius:
                        if not count_only:
                            out_d[f] = dist[j]
                            out_pos[f] = s + j
                            f += 1
                        c += 1
        counts[i] = c
    return counts
