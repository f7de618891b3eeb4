"""numba kernels of :mod:`hashlearn.text.sparse` (private). Single-threaded per call, cached on disk.

Top-k uses a min-heap of (score, doc); ties are broken towards the smaller document id so that the
exact kernels agree with a stable sort.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _worse(s1, d1, s2, d2):
    # True when (s1, d1) ranks below (s2, d2): lower score, or equal score and larger id.
    return s1 < s2 or (s1 == s2 and d1 > d2)


@njit(cache=True)
def _heap_push(hs, hd, size, k, s, d):
    """Offer (s, d) to a min-heap of capacity k holding ``size`` items; returns the new size."""
    if size < k:
        i = size
        hs[i] = s
        hd[i] = d
        size += 1
        while i > 0:
            p = (i - 1) // 2
            if _worse(hs[i], hd[i], hs[p], hd[p]):
                hs[i], hs[p] = hs[p], hs[i]
                hd[i], hd[p] = hd[p], hd[i]
                i = p
            else:
                break
        return size
    if not _worse(hs[0], hd[0], s, d):
        return size
    hs[0] = s
    hd[0] = d
    i = 0
    while True:
        left = 2 * i + 1
        right = left + 1
        m = i
        if left < size and _worse(hs[left], hd[left], hs[m], hd[m]):
            m = left
        if right < size and _worse(hs[right], hd[right], hs[m], hd[m]):
            m = right
        if m == i:
            break
        hs[i], hs[m] = hs[m], hs[i]
        hd[i], hd[m] = hd[m], hd[i]
        i = m
    return size


@njit(cache=True)
def _drain(hs, hd, size, out_s, out_i, row):
    # Sort the heap content best first into the output row.
    order = np.argsort(-hs[:size], kind="mergesort")
    # equal scores: smaller id first
    n = size
    tmp_s = hs[:size][order]
    tmp_d = hd[:size][order]
    i = 0
    while i < n:
        j = i
        while j + 1 < n and tmp_s[j + 1] == tmp_s[i]:
            j += 1
        if j > i:
            tmp_d[i:j + 1] = np.sort(tmp_d[i:j + 1])
        i = j + 1
    for j in range(n):
        out_s[row, j] = tmp_s[j]
        out_i[row, j] = tmp_d[j]


@njit(cache=True)
def taat_search(q_ptr, q_idx, q_val, k, post_ptr, post_docs, post_vals, n_docs):
    nq = q_ptr.shape[0] - 1
    out_s = np.full((nq, k), -np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    acc = np.zeros(n_docs, dtype=np.float32)
    touched = np.empty(n_docs, dtype=np.int32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    for qi in range(nq):
        nt = 0
        for j in range(q_ptr[qi], q_ptr[qi + 1]):
            t = q_idx[j]
            w = q_val[j]
            for p in range(post_ptr[t], post_ptr[t + 1]):
                d = post_docs[p]
                if acc[d] == 0.0:
                    touched[nt] = d
                    nt += 1
                acc[d] += w * post_vals[p]
        size = 0
        for j in range(nt):
            d = touched[j]
            if acc[d] > 0.0:
                size = _heap_push(hs, hd, size, k, acc[d], d)
            acc[d] = 0.0
        _drain(hs, hd, size, out_s, out_i, qi)
    return out_s, out_i


@njit(cache=True, inline="always")
def _sparse_dot(qt_idx, qt_val, qd, idx, val, a, b):
    """<q, v> for a sparse v with sorted indices idx[a:b]: scan v with the dense query ``qd`` when v is
    short, else binary-search each of the query's terms in v (short queries, long summaries)."""
    nq = qt_idx.shape[0]
    s = np.float32(0.0)
    if b - a <= 8 * nq:
        for f in range(a, b):
            s += qd[idx[f]] * val[f]
    else:
        lo = a
        for j in range(nq):
            t = qt_idx[j]
            pos = lo + np.searchsorted(idx[lo:b], t)
            if pos < b and idx[pos] == t:
                s += qt_val[j] * val[pos]
            lo = pos
            if lo >= b:
                break
    return s


@njit(cache=True, inline="always")
def _summary_bound(qt_idx, qt_val, qd, idx, qv, scale, a, b):
    """``scale * <q, summary>`` for an 8-bit summary (codes ``qv[a:b]`` at sorted indices ``idx[a:b]``)."""
    nq = qt_idx.shape[0]
    s = np.float32(0.0)
    if b - a <= 8 * nq:
        for f in range(a, b):
            s += qd[idx[f]] * np.float32(qv[f])
    else:
        lo = a
        for j in range(nq):
            t = qt_idx[j]
            pos = lo + np.searchsorted(idx[lo:b], t)
            if pos < b and idx[pos] == t:
                s += qt_val[j] * np.float32(qv[pos])
            lo = pos
            if lo >= b:
                break
    return s * scale


@njit(cache=True)
def quantize_summaries(sum_ptr, sum_val):
    """8-bit codes of the summaries, one scale per block, rounded *up* (``code * scale >= value``), so a
    quantised summary still bounds every document of its block."""
    n_blocks = sum_ptr.shape[0] - 1
    codes = np.empty(sum_val.shape[0], dtype=np.uint8)
    scales = np.zeros(n_blocks, dtype=np.float32)
    for blk in range(n_blocks):
        a, b = sum_ptr[blk], sum_ptr[blk + 1]
        m = np.float32(0.0)
        for f in range(a, b):
            if sum_val[f] > m:
                m = sum_val[f]
        if m == 0.0:
            for f in range(a, b):
                codes[f] = 0
            continue
        sc = np.float32(m / np.float32(255.0))
        while np.float32(255.0) * sc < m:
            sc = np.nextafter(sc, np.float32(np.inf))
        scales[blk] = sc
        for f in range(a, b):
            c = np.int64(np.ceil(sum_val[f] / sc))
            while c < 255 and np.float32(c) * sc < sum_val[f]:
                c += 1
            codes[f] = min(c, 255)
    return codes, scales


@njit(cache=True)
def seismic_search(q_ptr, q_idx, q_val, k, query_cut, heap_factor, term_block_ptr, block_doc_ptr, block_docs,
                   sum_ptr, sum_idx, sum_q, sum_scale, doc_start, doc_end, vec_idx, vec_val, n_docs, n_features,
                   sorted_blocks):
    """Seismic query processing.

    ``sorted_blocks=False``: the paper's order -- the ``query_cut`` heaviest terms in decreasing weight, each
    term's blocks in list order, a block skipped when ``heap_factor * <q, summary> <= k-th score``.
    ``sorted_blocks=True``: the bounds of all those blocks are computed first and the blocks are visited in
    decreasing bound, stopping at the first one whose bound cannot beat the k-th score (early exit; the
    heap fills with good documents first, so fewer blocks are opened).
    The vector of the document at posting ``p`` (``block_docs[p]``) is ``vec_idx/vec_val[doc_start[p]:
    doc_end[p]]``: either the forward index or block-local copies (:func:`block_forward`).
    """
    nq = q_ptr.shape[0] - 1
    out_s = np.full((nq, k), -np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    qd = np.zeros(n_features, dtype=np.float32)
    visited = np.full(n_docs, -1, dtype=np.int32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    cap = 1024
    cand_b = np.empty(cap, dtype=np.float32)
    cand_k = np.empty(cap, dtype=np.int64)
    for qi in range(nq):
        a, b = q_ptr[qi], q_ptr[qi + 1]
        for j in range(a, b):
            qd[q_idx[j]] = q_val[j]
        qt_idx = q_idx[a:b]  # the caller passes CSR rows with sorted indices (``_check_csr``)
        qt_val = q_val[a:b]
        order = np.argsort(-q_val[a:b], kind="mergesort")
        n_terms = min(query_cut, b - a)
        size = 0
        if sorted_blocks:
            nc = 0
            for o in range(n_terms):
                t = q_idx[a + order[o]]
                for blk in range(term_block_ptr[t], term_block_ptr[t + 1]):
                    if nc == cap:
                        cap *= 2
                        nb_ = np.empty(cap, dtype=np.float32)
                        nk_ = np.empty(cap, dtype=np.int64)
                        nb_[:nc] = cand_b[:nc]
                        nk_[:nc] = cand_k[:nc]
                        cand_b, cand_k = nb_, nk_
                    cand_b[nc] = _summary_bound(qt_idx, qt_val, qd, sum_idx, sum_q, sum_scale[blk], sum_ptr[blk],
                                                 sum_ptr[blk + 1])
                    cand_k[nc] = blk
                    nc += 1
            border = np.argsort(-cand_b[:nc])
            for o in range(nc):
                blk = cand_k[border[o]]
                if size == k and cand_b[border[o]] * heap_factor <= hs[0]:
                    break
                for p in range(block_doc_ptr[blk], block_doc_ptr[blk + 1]):
                    d = block_docs[p]
                    if visited[d] == qi:
                        continue
                    visited[d] = qi
                    score = _sparse_dot(qt_idx, qt_val, qd, vec_idx, vec_val, doc_start[p], doc_end[p])
                    if score > 0.0:
                        size = _heap_push(hs, hd, size, k, score, d)
        else:
            for o in range(n_terms):
                t = q_idx[a + order[o]]
                for blk in range(term_block_ptr[t], term_block_ptr[t + 1]):
                    if size == k:
                        bound = _summary_bound(qt_idx, qt_val, qd, sum_idx, sum_q, sum_scale[blk], sum_ptr[blk],
                                               sum_ptr[blk + 1])
                        if bound * heap_factor <= hs[0]:
                            continue
                    for p in range(block_doc_ptr[blk], block_doc_ptr[blk + 1]):
                        d = block_docs[p]
                        if visited[d] == qi:
                            continue
                        visited[d] = qi
                        score = _sparse_dot(qt_idx, qt_val, qd, vec_idx, vec_val, doc_start[p], doc_end[p])
                        if score > 0.0:
                            size = _heap_push(hs, hd, size, k, score, d)
        for j in range(a, b):
            qd[q_idx[j]] = 0.0
        _drain(hs, hd, size, out_s, out_i, qi)
    return out_s, out_i


@njit(cache=True)
def block_forward(block_docs, fwd_ptr, fwd_idx, fwd_val):
    """Copy of each block document's vector, laid out block after block (``bfwd_ptr`` per posting), so
    that scoring an opened block reads memory sequentially instead of jumping across the forward index."""
    n = block_docs.shape[0]
    ptr = np.zeros(n + 1, dtype=np.int64)
    for p in range(n):
        d = block_docs[p]
        ptr[p + 1] = ptr[p] + fwd_ptr[d + 1] - fwd_ptr[d]
    idx = np.empty(ptr[n], dtype=fwd_idx.dtype)
    val = np.empty(ptr[n], dtype=np.float32)
    for p in range(n):
        d = block_docs[p]
        o = ptr[p]
        for f in range(fwd_ptr[d], fwd_ptr[d + 1]):
            idx[o] = fwd_idx[f]
            val[o] = fwd_val[f]
            o += 1
    return ptr, idx, val


@njit(cache=True)
def build_blocks(csc_ptr, csc_rows, csc_vals, keys, fwd_ptr, fwd_idx, fwd_val, posting_length, block_size,
                 n_features):
    """Static pruning + clustering of every posting list into blocks.

    Returns ``term_block_ptr`` (V + 1), ``block_doc_ptr`` (n_blocks + 1), ``block_docs`` and the number
    of postings kept. Centroids: the postings with the smallest random ``keys``.
    """
    V = csc_ptr.shape[0] - 1
    nnz = csc_rows.shape[0]
    term_block_ptr = np.zeros(V + 1, dtype=np.int64)
    block_doc_ptr = np.zeros(nnz + 1, dtype=np.int64)
    block_docs = np.empty(nnz, dtype=np.int32)
    scratch = np.zeros(n_features, dtype=np.float32)
    n_blocks = 0
    n_out = 0
    for t in range(V):
        a, b = csc_ptr[t], csc_ptr[t + 1]
        m = b - a
        if m == 0:
            term_block_ptr[t + 1] = n_blocks
            continue
        order = np.argsort(-csc_vals[a:b], kind="mergesort")
        keep = min(m, posting_length)
        rows = csc_rows[a:b][order[:keep]].copy()
        rkeys = keys[a:b][order[:keep]]
        nb = (keep + block_size - 1) // block_size
        if nb <= 1:
            rows.sort()
            for r in rows:
                block_docs[n_out] = r
                n_out += 1
            n_blocks += 1
            block_doc_ptr[n_blocks] = n_out
        else:
            cent = rows[np.argsort(rkeys)[:nb]]
            best = np.full(keep, -1.0, dtype=np.float32)
            assign = np.zeros(keep, dtype=np.int64)
            for ci in range(nb):
                c = cent[ci]
                for f in range(fwd_ptr[c], fwd_ptr[c + 1]):
                    scratch[fwd_idx[f]] = fwd_val[f]
                for i in range(keep):
                    r = rows[i]
                    s = np.float32(0.0)
                    for f in range(fwd_ptr[r], fwd_ptr[r + 1]):
                        s += scratch[fwd_idx[f]] * fwd_val[f]
                    if s > best[i]:
                        best[i] = s
                        assign[i] = ci
                for f in range(fwd_ptr[c], fwd_ptr[c + 1]):
                    scratch[fwd_idx[f]] = 0.0
            # group by cluster (documents sorted inside a block); empty clusters make no block
            o = np.argsort(assign * (np.int64(1) << 32) + rows.astype(np.int64), kind="mergesort")
            prev = -1
            for j in range(keep):
                i = o[j]
                if assign[i] != prev and prev != -1:
                    n_blocks += 1
                    block_doc_ptr[n_blocks] = n_out
                prev = assign[i]
                block_docs[n_out] = rows[i]
                n_out += 1
            n_blocks += 1
            block_doc_ptr[n_blocks] = n_out
        term_block_ptr[t + 1] = n_blocks
    return term_block_ptr, block_doc_ptr[: n_blocks + 1].copy(), block_docs[:n_out].copy(), n_out


@njit(cache=True)
def block_summaries(block_doc_ptr, block_docs, fwd_ptr, fwd_idx, fwd_val, energy, n_features):
    """Coordinate-wise max of each block's vectors, pruned to the top entries holding ``energy`` of the L1 mass."""
    n_blocks = block_doc_ptr.shape[0] - 1
    scratch = np.zeros(n_features, dtype=np.float32)
    touched = np.empty(n_features, dtype=np.int32)
    cap = max(1024, 4 * block_docs.shape[0])
    out_idx = np.empty(cap, dtype=np.int32)
    out_val = np.empty(cap, dtype=np.float32)
    ptr = np.zeros(n_blocks + 1, dtype=np.int64)
    n = 0
    for blk in range(n_blocks):
        nt = 0
        for p in range(block_doc_ptr[blk], block_doc_ptr[blk + 1]):
            d = block_docs[p]
            for f in range(fwd_ptr[d], fwd_ptr[d + 1]):
                j = fwd_idx[f]
                v = fwd_val[f]
                if scratch[j] == 0.0:
                    touched[nt] = j
                    nt += 1
                if v > scratch[j]:
                    scratch[j] = v
        vals = np.empty(nt, dtype=np.float32)
        for i in range(nt):
            vals[i] = scratch[touched[i]]
        order = np.argsort(-vals, kind="mergesort")
        total = 0.0
        for i in range(nt):
            total += vals[i]
        keep = nt
        if energy < 1.0:
            acc = 0.0
            for i in range(nt):
                acc += vals[order[i]]
                if acc >= energy * total:
                    keep = i + 1
                    break
        if n + keep > cap:
            while n + keep > cap:
                cap *= 2
            new_idx = np.empty(cap, dtype=np.int32)
            new_val = np.empty(cap, dtype=np.float32)
            new_idx[:n] = out_idx[:n]
            new_val[:n] = out_val[:n]
            out_idx, out_val = new_idx, new_val
        kept = order[:keep].copy()
        by_index = np.argsort(touched[:nt][kept])
        for i in range(keep):
            out_idx[n] = touched[kept[by_index[i]]]
            out_val[n] = vals[kept[by_index[i]]]
            n += 1
        ptr[blk + 1] = n
        for i in range(nt):
            scratch[touched[i]] = 0.0
    return ptr, out_idx[:n].copy(), out_val[:n].copy()


@njit(cache=True)
def forward_scan_search(q_ptr, q_idx, q_val, k, fwd_ptr, fwd_idx, fwd_val, n_features):
    """Exhaustive exact top-k: every document's ``<q, d>`` from the forward index (dense query lookup)."""
    nq = q_ptr.shape[0] - 1
    n_docs = fwd_ptr.shape[0] - 1
    out_s = np.full((nq, k), -np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    qd = np.zeros(n_features, dtype=np.float32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    for qi in range(nq):
        for j in range(q_ptr[qi], q_ptr[qi + 1]):
            qd[q_idx[j]] = q_val[j]
        size = 0
        for d in range(n_docs):
            s = np.float32(0.0)
            for f in range(fwd_ptr[d], fwd_ptr[d + 1]):
                s += qd[fwd_idx[f]] * fwd_val[f]
            if s > 0.0 and (size < k or s >= hs[0]):
                size = _heap_push(hs, hd, size, k, s, d)
        for j in range(q_ptr[qi], q_ptr[qi + 1]):
            qd[q_idx[j]] = 0.0
        _drain(hs, hd, size, out_s, out_i, qi)
    return out_s, out_i
