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
def _list_tile(mode, tables, qcodes, p, codes, bias, use_bias, s, L, cT, dist):
    """Distances of rows s..s+L of ``codes`` for probe p: ADC (mode 0) or Hamming (mode 1)."""
    if mode == 0:
        _transpose_tile(codes[s : s + L], cT)
        tile_distances(tables[p], cT, L, bias, s, use_bias, dist)
    else:
        _hamming_tile(qcodes[p], codes, s, L, dist)


@njit(cache=True, parallel=True, boundscheck=False)
def ivf_knn_kernel(mode, tables, qcodes, probes, offsets, codes, bias, use_bias, ids, k):
    """Top-k over the probed lists. tables (nq, nprobe, M, ksub) float32 for ADC (mode 0), or qcodes
    (nq, nprobe, W) uint64 for Hamming (mode 1); probes (nq, nprobe) int64, -1 = no list.

    Returns D float32 (nq, k) and I int64 (nq, k) (ids, -1 padding, D = inf there).
    """
    nq, nprobe = probes.shape
    M = codes.shape[1]
    out_d = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    for i in prange(nq):
        hd = np.full(k, INF32, np.float32)
        hi = np.full(k, -1, np.int64)
        hk = np.full(k, _KEY_MAX, np.int64)
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M if mode == 0 else 1, TILE), np.uint8)
        for p in range(nprobe):
            lst = probes[i, p]
            if lst < 0:
                continue
            for s in range(offsets[lst], offsets[lst + 1], TILE):
                L = min(TILE, offsets[lst + 1] - s)
                if mode == 0:
                    _list_tile(0, tables[i], qcodes[i], p, codes, bias, use_bias, s, L, cT, dist)
                else:
                    _list_tile(1, tables[i], qcodes[i], p, codes, bias, use_bias, s, L, cT, dist)
                scan_topk(dist, L, s, hd, hi, hk, k, ids, True)
        for j in range(k):
            out_d[i, j] = hd[j]
            out_i[i, j] = ids[hi[j]] if hi[j] >= 0 else -1
    return out_d, out_i


@njit(cache=True, parallel=True, boundscheck=False)
def ivf_range_kernel(mode, tables, qcodes, probes, offsets, codes, bias, use_bias, radius, lims, count_only,
                     out_d, out_pos):
    """Range search over the probed lists, two passes: ``count_only`` returns the counts (nq,);
    otherwise (distance, row) pairs are written from ``lims``."""
    nq, nprobe = probes.shape
    M = codes.shape[1]
    counts = np.zeros(nq, np.int64)
    for i in prange(nq):
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M if mode == 0 else 1, TILE), np.uint8)
        f = 0 if count_only else lims[i]
        c = 0
        for p in range(nprobe):
            lst = probes[i, p]
            if lst < 0:
                continue
            for s in range(offsets[lst], offsets[lst + 1], TILE):
                L = min(TILE, offsets[lst + 1] - s)
                if mode == 0:
                    _list_tile(0, tables[i], qcodes[i], p, codes, bias, use_bias, s, L, cT, dist)
                else:
                    _list_tile(1, tables[i], qcodes[i], p, codes, bias, use_bias, s, L, cT, dist)
                for j in range(L):
                    if dist[j] <= radius:
                        if not count_only:
                            out_d[f] = dist[j]
                            out_pos[f] = s + j
                            f += 1
                        c += 1
        counts[i] = c
    return counts
