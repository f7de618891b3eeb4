"""numba kernels for Hamming-space search. Private: use :mod:`hashlearn.codes.search`.

Design (chosen by measurement, see bench/hamming.py and bench/RESULTS.md):

* Queries are processed in blocks (one block per parallel task) and the database in tiles of
  ``TILE`` codes that stay in L1/L2 while every query of the block scans them, so the code array
  streams from memory once per query block rather than once per query.
* Within a tile, distances are computed into a small int32 buffer by a loop that LLVM vectorises
  (AVX-512 ``vpopcntq`` where the CPU has it). Loops index *slices* with non-negative offsets: a
  ``db[s + j]`` index defeats vectorisation because numba must handle negative wrap-around.
* For codes of more than one word the tile is first transposed to word-major order (W, TILE), so each
  word is a contiguous stream; four words are summed per pass.
* Top-k selection scans the buffer in chunks of 64 and skips a chunk whose minimum cannot enter the
  current result (the common case once the result has filled); survivors go into a sorted buffer of
  size k by insertion. Ties are resolved by the smaller tie key (database position, or a caller's id
  array), so results are deterministic and equal a stable sort.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

TILE = 1024
CHUNK = 64
BIG = np.int32(2**31 - 1)


@intrinsic
def popcount64(typingctx, x):
    """LLVM ctpop on a uint64 (compiles to popcnt / vpopcntq)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, boundscheck=False, fastmath=True)
def _transpose_tile(tile, out):
    L, W = tile.shape
    for j in range(L):
        for w in range(W):
            out[w, j] = tile[j, w]


@njit(cache=True, boundscheck=False, fastmath=True)
def _dists_one_word(qw, tile, dist):
    for j in range(tile.shape[0]):
        dist[j] = np.int32(popcount64(qw ^ tile[j, 0]))


@njit(cache=True, boundscheck=False, fastmath=True)
def _dists_word_major(qrow, tT, L, dist):
    """dist[j] = Hamming(qrow, column j of the transposed tile tT (W, TILE)), for j < L."""
    W = tT.shape[0]
    w = 0
    first = True
    while w < W:
        rem = W - w
        if rem >= 4:
            r0 = tT[w]
            r1 = tT[w + 1]
            r2 = tT[w + 2]
            r3 = tT[w + 3]
            a0 = qrow[w]
            a1 = qrow[w + 1]
            a2 = qrow[w + 2]
            a3 = qrow[w + 3]
            if first:
                for j in range(L):
                    dist[j] = np.int32(
                        popcount64(a0 ^ r0[j]) + popcount64(a1 ^ r1[j]) + popcount64(a2 ^ r2[j]) + popcount64(a3 ^ r3[j])
                    )
            else:
                for j in range(L):
                    dist[j] += np.int32(
                        popcount64(a0 ^ r0[j]) + popcount64(a1 ^ r1[j]) + popcount64(a2 ^ r2[j]) + popcount64(a3 ^ r3[j])
                    )
            w += 4
        elif rem >= 2:
            r0 = tT[w]
            r1 = tT[w + 1]
            a0 = qrow[w]
            a1 = qrow[w + 1]
            if first:
                for j in range(L):
                    dist[j] = np.int32(popcount64(a0 ^ r0[j]) + popcount64(a1 ^ r1[j]))
            else:
                for j in range(L):
                    dist[j] += np.int32(popcount64(a0 ^ r0[j]) + popcount64(a1 ^ r1[j]))
            w += 2
        else:
            r0 = tT[w]
            a0 = qrow[w]
            if first:
                for j in range(L):
                    dist[j] = np.int32(popcount64(a0 ^ r0[j]))
            else:
                for j in range(L):
                    dist[j] += np.int32(popcount64(a0 ^ r0[j]))
            w += 1
        first = False


@njit(cache=True, boundscheck=False, inline="always")
def _tile_dists(qrow, tile, tT, L, dist):
    if tile.shape[1] == 1:
        _dists_one_word(qrow[0], tile, dist)
    else:
        _dists_word_major(qrow, tT, L, dist)


@njit(cache=True, boundscheck=False, fastmath=True)
def _chunk_min(dist, a, b):
    m = np.int32(2**31 - 1)
    for j in range(a, b):
        v = dist[j]
        m = v if v < m else m
    return m


@njit(cache=True, boundscheck=False)
def _insert(hd, hi, hk, k, d, pos, key):
    """Insert (d, key) into the sorted buffers (hd, hk) of length k, dropping the last entry."""
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
def _scan_tile_topk(dist, L, s, hd, hi, hk, k, tie_keys, use_keys):
    t = hd[k - 1]
    tk = hk[k - 1]
    for j0 in range(0, L, CHUNK):
        j1 = min(L, j0 + CHUNK)
        m = _chunk_min(dist, j0, j1)
        if m > t or (m == t and not use_keys):
            continue
        for j in range(j0, j1):
            d = dist[j]
            if d > t:
                continue
            pos = s + j
            key = tie_keys[pos] if use_keys else np.int64(pos)
            if d < t or key < tk:
                _insert(hd, hi, hk, k, d, pos, key)
                t = hd[k - 1]
                tk = hk[k - 1]


@njit(cache=True, parallel=True, boundscheck=False)
def knn_kernel(q, db, k, tie_keys, use_keys, qblock):
    """Top-k smallest Hamming distances. q (nq, W), db (n, W) uint64; returns D int32, I int64 (nq, k).

    Missing results (n < k) have D = 2**31 - 1 and I = -1.
    """
    nq, W = q.shape
    n = db.shape[0]
    out_d = np.empty((nq, k), np.int32)
    out_i = np.empty((nq, k), np.int64)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        hd = np.full((m, k), BIG, np.int32)
        hi = np.full((m, k), -1, np.int64)
        hk = np.full((m, k), np.iinfo(np.int64).max, np.int64)
        dist = np.empty(TILE, np.int32)
        tT = np.empty((W, TILE), np.uint64)
        for s in range(0, n, TILE):
            tile = db[s : s + TILE]
            L = tile.shape[0]
            if W > 1:
                _transpose_tile(tile, tT)
            for qi in range(m):
                _tile_dists(q[q0 + qi], tile, tT, L, dist)
                _scan_tile_topk(dist, L, s, hd[qi], hi[qi], hk[qi], k, tie_keys, use_keys)
        for qi in range(m):
            out_d[q0 + qi] = hd[qi]
            out_i[q0 + qi] = hi[qi]
    return out_d, out_i


@njit(cache=True, parallel=True, boundscheck=False)
def distance_kernel(q, db, qblock):
    """Full (nq, n) int32 Hamming distance matrix."""
    nq, W = q.shape
    n = db.shape[0]
    out = np.empty((nq, n), np.int32)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        dist = np.empty(TILE, np.int32)
        tT = np.empty((W, TILE), np.uint64)
        for s in range(0, n, TILE):
            tile = db[s : s + TILE]
            L = tile.shape[0]
            if W > 1:
                _transpose_tile(tile, tT)
            for qi in range(m):
                _tile_dists(q[q0 + qi], tile, tT, L, dist)
                row = out[q0 + qi, s : s + L]
                for j in range(L):
                    row[j] = dist[j]
    return out


@njit(cache=True, parallel=True, boundscheck=False)
def range_count_kernel(q, db, radius, qblock):
    """Number of database codes within Hamming distance ``radius`` of each query (nq,) int64."""
    nq, W = q.shape
    n = db.shape[0]
    counts = np.zeros(nq, np.int64)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        dist = np.empty(TILE, np.int32)
        tT = np.empty((W, TILE), np.uint64)
        for s in range(0, n, TILE):
            tile = db[s : s + TILE]
            L = tile.shape[0]
            if W > 1:
                _transpose_tile(tile, tT)
            for qi in range(m):
                _tile_dists(q[q0 + qi], tile, tT, L, dist)
                c = 0
                for j in range(L):
                    c += dist[j] <= radius
                counts[q0 + qi] += c
    return counts


@njit(cache=True, parallel=True, boundscheck=False)
def range_fill_kernel(q, db, radius, lims, qblock, out_d, out_i):
    """Second pass of range search: write (distance, position) of matches in database order."""
    nq, W = q.shape
    n = db.shape[0]
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        fill = np.empty(m, np.int64)
        for qi in range(m):
            fill[qi] = lims[q0 + qi]
        dist = np.empty(TILE, np.int32)
        tT = np.empty((W, TILE), np.uint64)
        for s in range(0, n, TILE):
            tile = db[s : s + TILE]
            L = tile.shape[0]
            if W > 1:
                _transpose_tile(tile, tT)
            for qi in range(m):
                _tile_dists(q[q0 + qi], tile, tT, L, dist)
                f = fill[qi]
                for j in range(L):
                    if dist[j] <= radius:
                        out_d[f] = dist[j]
                        out_i[f] = s + j
                        f += 1
                fill[qi] = f


@njit(cache=True, parallel=True, boundscheck=False)
def gather_distance_kernel(q, db, cand_lims, cand_pos):
    """Hamming distance of each query to its own candidate positions (CSR layout)."""
    nq, W = q.shape
    out = np.empty(cand_pos.shape[0], np.int32)
    for i in prange(nq):
        for c in range(cand_lims[i], cand_lims[i + 1]):
            p = cand_pos[c]
            acc = np.uint64(0)
            for w in range(W):
                acc += popcount64(q[i, w] ^ db[p, w])
            out[c] = np.int32(acc)
    return out
