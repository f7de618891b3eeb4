"""numba kernels of multi-index hashing (private; see :mod:`hashlearn.index.mih`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..codes._kernels import _insert, popcount64


@njit(cache=True, boundscheck=False, inline="always")
def substring(row, start, length):
    """Bits [start, start + length) of a packed code row as an integer (length <= 63)."""
    w = start >> 6
    off = start & 63
    v = row[w] >> np.uint64(off)
    if off + length > 64:
        v |= row[w + 1] << np.uint64(64 - off)
    return v & ((np.uint64(1) << np.uint64(length)) - np.uint64(1))


@njit(cache=True, boundscheck=False)
def table_keys(codes, start, length):
    out = np.empty(codes.shape[0], np.uint64)
    for i in range(codes.shape[0]):
        out[i] = substring(codes[i], start, length)
    return out


@njit(cache=True, boundscheck=False, inline="always")
def _next_combination(v):
    """Gosper's hack: next larger integer with the same number of set bits."""
    c = v & (~v + np.uint64(1))
    r = v + c
    return (((r ^ v) >> np.uint64(2)) // c) | r


@njit(cache=True, boundscheck=False, inline="always")
def _first_discovery(qrow, crow, masks, s, t):
    """Full distance of candidate crow, and whether table t at radius s is its first discovery.

    A candidate is processed only where (substring distance, table) is lexicographically smallest,
    so each one is examined exactly once without a per-query 'seen' array.
    """
    m, W = masks.shape
    d = 0
    first = True
    for j in range(m):
        sd = 0
        for w in range(W):
            sd += popcount64((qrow[w] ^ crow[w]) & masks[j, w])
        d += sd
        if j < t and sd <= s:
            first = False
        elif j > t and sd < s:
            first = False
    return d, first


@njit(cache=True, boundscheck=False)
def _bucket(ukeys, uoff, t, key):
    """(begin, end) into the table's position array for ``key`` in table t, or (0, 0)."""
    lo = uoff[t]
    hi = uoff[t + 1]
    keys = ukeys[lo:hi]
    j = np.searchsorted(keys, key)
    if j < keys.shape[0] and keys[j] == key:
        return lo + j, lo + j + 1
    return 0, 0


@njit(cache=True, boundscheck=False)
def _n_probes(lengths, s):
    """Buckets probed at substring radius exactly s, summed over tables: sum_t C(L_t, s)."""
    total = 0.0
    for t in range(lengths.shape[0]):
        L = lengths[t]
        if s > L:
            continue
        c = 1.0
        for i in range(s):
            c = c * (L - i) / (i + 1)
        total += c
    return total


# Cost model, in units of one code scanned by the vectorised flat kernel (measured: a bucket probe
# ~250 ns and a candidate check ~200-300 ns, against ~1.3 ns per code in the flat scan).
PROBE_COST = 200.0
CANDIDATE_COST = 150.0


@njit(cache=True, parallel=True, boundscheck=False)
def mih_knn(q, codes, k, starts, lengths, masks, ukeys, uoff, boff, positions, tie_keys, use_keys, budget):
    """Exact k-NN by multi-index hashing (Norouzi et al. 2012), incremental radius per substring.

    Tables: for table t, unique keys ukeys[uoff[t]:uoff[t+1]]; bucket u of the concatenated keys
    holds positions[boff[u]:boff[u+1]].

    Before each radius the work it would take is predicted (probes x PROBE_COST + expected
    candidates x CANDIDATE_COST, candidates per probe taken from what this query has seen so far);
    a query whose total would pass ``budget`` stops and is flagged in ``fallback``: the caller
    answers those queries with the flat kernel, which is then cheaper.
    """
    nq = q.shape[0]
    m = starts.shape[0]
    n = codes.shape[0]
    max_len = 0
    prior = 0.0  # candidates per probe expected from the table sizes alone
    for t in range(m):
        max_len = max(max_len, lengths[t])
        prior = max(prior, n / (uoff[t + 1] - uoff[t] + 1.0))
    out_d = np.empty((nq, k), np.int32)
    out_i = np.empty((nq, k), np.int64)
    fallback = np.zeros(nq, np.bool_)
    for qi in prange(nq):
        qrow = q[qi]
        hd = np.full(k, np.int32(2**31 - 1), np.int32)
        hi = np.full(k, -1, np.int64)
        hk = np.full(k, np.iinfo(np.int64).max, np.int64)
        spent = 0.0
        probes = 0.0
        cands = 0.0
        for s in range(max_len + 1):
            next_probes = _n_probes(lengths, s)
            per_probe = max(prior, cands / probes) if probes > 0 else prior
            if spent + next_probes * (PROBE_COST + CANDIDATE_COST * per_probe) > budget:
                fallback[qi] = True
                break
            for t in range(m):
                L = lengths[t]
                if s > L:
                    continue
                qsub = substring(qrow, starts[t], L)
                mask = (np.uint64(1) << np.uint64(s)) - np.uint64(1)
                limit = np.uint64(1) << np.uint64(L)
                while mask < limit:
                    b0, b1 = _bucket(ukeys, uoff, t, qsub ^ mask)
                    probes += 1.0
                    for u in range(b0, b1):
                        cands += boff[u + 1] - boff[u]
                        for c in range(boff[u], boff[u + 1]):
                            pos = positions[c]
                            d, first = _first_discovery(qrow, codes[pos], masks, s, t)
                            if not first:
                                continue
                            key = tie_keys[pos] if use_keys else np.int64(pos)
                            if d < hd[k - 1] or (d == hd[k - 1] and key < hk[k - 1]):
                                _insert(hd, hi, hk, k, np.int32(d), pos, key)
                    if s == 0:
                        break
                    mask = _next_combination(mask)
            spent = probes * PROBE_COST + cands * CANDIDATE_COST
            # Every code with distance < m * (s + 1) has been seen (pigeonhole).
            if hd[k - 1] < m * (s + 1):
                break
        out_d[qi] = hd
        out_i[qi] = hi
    return out_d, out_i, fallback


@njit(cache=True, parallel=True, boundscheck=False)
def mih_range(q, codes, radius, starts, lengths, masks, ukeys, uoff, boff, positions, lims, out_d, out_i, count_only):
    """Radius search by MIH. With count_only, fills lims[i+1] with counts; else writes results."""
    nq = q.shape[0]
    m = starts.shape[0]
    s_max = radius // m
    for qi in prange(nq):
        qrow = q[qi]
        f = lims[qi] if not count_only else 0
        cnt = 0
        for s in range(s_max + 1):
            for t in range(m):
                L = lengths[t]
                if s > L:
                    continue
                qsub = substring(qrow, starts[t], L)
                mask = (np.uint64(1) << np.uint64(s)) - np.uint64(1)
                limit = np.uint64(1) << np.uint64(L)
                while mask < limit:
                    b0, b1 = _bucket(ukeys, uoff, t, qsub ^ mask)
                    for u in range(b0, b1):
                        for c in range(boff[u], boff[u + 1]):
                            pos = positions[c]
                            d, first = _first_discovery(qrow, codes[pos], masks, s, t)
                            if first and d <= radius:
                                if count_only:
                                    cnt += 1
                                else:
                                    out_d[f] = d
                                    out_i[f] = pos
                                    f += 1
                    if s == 0:
                        break
                    mask = _next_combination(mask)
        if count_only:
            lims[qi + 1] = cnt
