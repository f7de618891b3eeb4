"""numba kernels for quantizer encoding and ADC/SDC scans. Private: use :mod:`hashlearn.quantize.search`.

Design (chosen by measurement, see bench/quantize.py and bench/sections/quantize.md):

* A scan's distance of query q to code c is ``bias[c] + sum_m T[q, m, c_m]`` (table look-ups; ``bias``
  is an optional per-code term, e.g. the squared norm of a residual quantizer's reconstruction).
* Queries are processed in blocks (one block per parallel task) and codes in tiles of ``TILE`` rows.
  Each tile is transposed to sub-quantizer-major order ``(M, TILE)`` once per block, so every look-up
  loop reads one contiguous byte stream; four sub-quantizers are summed per pass over the tile. In
  our measurements (AVX-512 machine, 1M codes × 16 bytes, one thread) this beat both summing the M
  look-ups of one code row at a time and one sub-quantizer (or eight) per pass; the resulting scan
  is compared with faiss' IndexPQ in bench/quantize.py.
* Top-k selection keeps a sorted buffer of size k per query; chunks of 64 distances whose minimum
  cannot enter it are skipped. Ties go to the smaller tie key (code position, or a caller's ids), so
  results equal a stable sort by (distance, key) and are deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TILE = 1024
CHUNK = 64
INF32 = np.float32(np.inf)
_KEY_MAX = np.iinfo(np.int64).max


# -- encoding and tables -----------------------------------------------------------------------------
@njit(cache=True, parallel=True, boundscheck=False, fastmath=True)
def encode_pq_kernel(X, CT):
    """Nearest centroid of every sub-vector. X (n, M * dsub) float32; CT (M, dsub, ksub) float32.

    Returns codes (n, M) uint8. Distances are computed directly (no norm expansion), so the argmin is
    exact in float32; ties go to the smaller centroid index.
    """
    n = X.shape[0]
    M, dsub, ksub = CT.shape
    out = np.empty((n, M), np.uint8)
    n_blocks = (n + 255) // 256
    for b in prange(n_blocks):
        dist = np.empty(ksub, np.float32)
        for i in range(b * 256, min(n, b * 256 + 256)):
            for m in range(M):
                base = m * dsub
                c = CT[m]
                x0 = X[i, base]
                r0 = c[0]
                for j in range(ksub):
                    t = x0 - r0[j]
                    dist[j] = t * t
                for s in range(1, dsub):
                    xs = X[i, base + s]
                    rs = c[s]
                    for j in range(ksub):
                        t = xs - rs[j]
                        dist[j] += t * t
                best = 0
                bd = dist[0]
                for j in range(1, ksub):
                    if dist[j] < bd:
                        bd = dist[j]
                        best = j
                out[i, m] = best
    return out


@njit(cache=True, parallel=True, boundscheck=False, fastmath=True)
def tables_l2_kernel(Q, CT):
    """Squared L2 distance tables. Q (nq, M * dsub) float32; CT (M, dsub, ksub). Returns (nq, M, ksub)."""
    nq = Q.shape[0]
    M, dsub, ksub = CT.shape
    out = np.empty((nq, M, ksub), np.float32)
    for i in prange(nq):
        for m in range(M):
            base = m * dsub
            row = out[i, m]
            c = CT[m]
            x0 = Q[i, base]
            r0 = c[0]
            for j in range(ksub):
                t = x0 - r0[j]
                row[j] = t * t
            for s in range(1, dsub):
                xs = Q[i, base + s]
                rs = c[s]
                for j in range(ksub):
                    t = xs - rs[j]
                    row[j] += t * t
    return out


# -- the scan -----------------------------------------------------------------------------------------
@njit(cache=True, boundscheck=False)
def _transpose_tile(tile, out):
    L, M = tile.shape
    for j in range(L):
        for m in range(M):
            out[m, j] = tile[j, m]


@njit(cache=True, boundscheck=False)
def tile_distances(T, cT, L, bias, s, use_bias, dist):
    """dist[j] = bias[s + j] + sum_m T[m, cT[m, j]] for j < L; T (M, ksub), cT (M, TILE) uint8.

    No fastmath: the additions keep their written order (the bias, ``(t0 + t1) + (t2 + t3)`` per group
    of four sub-quantizers, then the rest), which the IVF kernel's row-by-row path repeats, so a
    code's distance is the same bits whichever path scores it (the loop over j vectorises without it)."""
    M = T.shape[0]
    if use_bias:
        for j in range(L):
            dist[j] = bias[s + j]
    else:
        for j in range(L):
            dist[j] = 0.0
    m = 0
    while m < M:
        if M - m >= 4:
            t0 = T[m]
            t1 = T[m + 1]
            t2 = T[m + 2]
            t3 = T[m + 3]
            c0 = cT[m]
            c1 = cT[m + 1]
            c2 = cT[m + 2]
            c3 = cT[m + 3]
            for j in range(L):
                dist[j] += (t0[c0[j]] + t1[c1[j]]) + (t2[c2[j]] + t3[c3[j]])
            m += 4
        else:
            tm = T[m]
            cm = cT[m]
            for j in range(L):
                dist[j] += tm[cm[j]]
            m += 1


@njit(cache=True, boundscheck=False)
def insert_sorted(hd, hi, hk, k, d, pos, key):
    """Insert (d, key) into the buffers sorted by (distance, key), dropping the last entry."""
    p = k - 1
    while p > 0 and (hd[p - 1] > d or (hd[p - 1] == d and hk[p - 1] > key)):
        hd[p] = hd[p - 1]
        hi[p] = hi[p - 1]
        hk[p] = hk[p - 1]
        p -= 1
    hd[p] = d
    hi[p] = pos
    hk[p] = key


@njit(cache=True, boundscheck=False)
def scan_topk(dist, L, s, hd, hi, hk, k, tie_keys, use_keys):
    """Merge distances dist[:L] of positions s.. into the sorted top-k buffers."""
    t = hd[k - 1]
    tk = hk[k - 1]
    for j0 in range(0, L, CHUNK):
        j1 = min(L, j0 + CHUNK)
        mn = INF32
        for j in range(j0, j1):
            v = dist[j]
            mn = v if v < mn else mn
        if mn > t or (mn == t and not use_keys):
            continue
        for j in range(j0, j1):
            d = dist[j]
            if d > t:
                continue
            pos = s + j
            key = tie_keys[pos] if use_keys else np.int64(pos)
            if d < t or key < tk:
                insert_sorted(hd, hi, hk, k, d, pos, key)
                t = hd[k - 1]
                tk = hk[k - 1]


@njit(cache=True, parallel=True, boundscheck=False)
def adc_knn_kernel(tables, codes, bias, use_bias, k, tie_keys, use_keys, qblock):
    """Top-k smallest table distances. tables (nq, M, ksub) float32, codes (n, M) uint8.

    Returns D float32 and I int64 (nq, k); missing results (n < k) have D = inf and I = -1.
    """
    nq, M, _ = tables.shape
    n = codes.shape[0]
    out_d = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        hd = np.full((m, k), INF32, np.float32)
        hi = np.full((m, k), -1, np.int64)
        hk = np.full((m, k), _KEY_MAX, np.int64)
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M, TILE), np.uint8)
        for s in range(0, n, TILE):
            tile = codes[s : s + TILE]
            L = tile.shape[0]
            _transpose_tile(tile, cT)
            for qi in range(m):
                tile_distances(tables[q0 + qi], cT, L, bias, s, use_bias, dist)
                scan_topk(dist, L, s, hd[qi], hi[qi], hk[qi], k, tie_keys, use_keys)
        for qi in range(m):
            out_d[q0 + qi] = hd[qi]
            out_i[q0 + qi] = hi[qi]
    return out_d, out_i


@njit(cache=True, parallel=True, boundscheck=False)
def adc_distance_kernel(tables, codes, bias, use_bias, qblock):
    """Full (nq, n) float32 table-distance matrix."""
    nq, M, _ = tables.shape
    n = codes.shape[0]
    out = np.empty((nq, n), np.float32)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M, TILE), np.uint8)
        for s in range(0, n, TILE):
            tile = codes[s : s + TILE]
            L = tile.shape[0]
            _transpose_tile(tile, cT)
            for qi in range(m):
                tile_distances(tables[q0 + qi], cT, L, bias, s, use_bias, dist)
                row = out[q0 + qi, s : s + L]
                for j in range(L):
                    row[j] = dist[j]
    return out


@njit(cache=True, parallel=True, boundscheck=False)
def adc_range_count_kernel(tables, codes, bias, use_bias, radius, qblock):
    """Number of codes with table distance <= radius, per query (nq,) int64."""
    nq, M, _ = tables.shape
    n = codes.shape[0]
    counts = np.zeros(nq, np.int64)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M, TILE), np.uint8)
        for s in range(0, n, TILE):
            tile = codes[s : s + TILE]
            L = tile.shape[0]
            _transpose_tile(tile, cT)
            for qi in range(m):
                tile_distances(tables[q0 + qi], cT, L, bias, s, use_bias, dist)
                c = 0
                for j in range(L):
                    c += dist[j] <= radius
                counts[q0 + qi] += c
    return counts


@njit(cache=True, parallel=True, boundscheck=False)
def adc_range_fill_kernel(tables, codes, bias, use_bias, radius, lims, qblock, out_d, out_i):
    """Second pass of range search: (distance, position) of matches, in position order."""
    nq, M, _ = tables.shape
    n = codes.shape[0]
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        fill = np.empty(m, np.int64)
        for qi in range(m):
            fill[qi] = lims[q0 + qi]
        dist = np.empty(TILE, np.float32)
        cT = np.empty((M, TILE), np.uint8)
        for s in range(0, n, TILE):
            tile = codes[s : s + TILE]
            L = tile.shape[0]
            _transpose_tile(tile, cT)
            for qi in range(m):
                tile_distances(tables[q0 + qi], cT, L, bias, s, use_bias, dist)
                f = fill[qi]
                for j in range(L):
                    if dist[j] <= radius:
                        out_d[f] = dist[j]
                        out_i[f] = s + j
                        f += 1
                fill[qi] = f
