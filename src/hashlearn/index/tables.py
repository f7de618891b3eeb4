"""Multi-table LSH bucket lookup with query-directed multi-probe, for candidate generation.

Storage is arrays only: per table the sorted uint64 bucket keys of the database and the permutation
that sorts them; a lookup is ``np.searchsorted`` over all queries and probes at once. No dicts, no
Python object per vector.
"""

from __future__ import annotations

import numbers

import numba
import numpy as np

from ..errors import IncompatibleError, NotFittedError, ValidationError
from ..hashing.base import check_random_state, check_vectors_array
from ..hashing.e2lsh import _combine_keys
from ..hashing.registry import get_hasher_class
from ..io.persist import persistable

__all__ = ["MultiTableLSH", "probe_sequences"]

_FAMILIES = ("simhash", "e2lsh", "crosspolytope")
_DEFAULT_METRIC = {"simhash": "cosine", "e2lsh": "l2", "crosspolytope": "cosine"}
_MAX_ELEMENTS = 64  # perturbation elements considered per table (bitmask width)
_QUERY_BLOCK = 2048
_PAIR_BLOCK = 1 << 22  # (candidate pairs × d) floats computed at once when re-ranking


# -- query-directed probing sequences (Lv et al. 2007) ---------------------------------------------
@numba.njit(cache=True)
def _probe_masks_kernel(costs, groups, n_sets):  # pragma: no cover - compiled
    """Lv et al.'s heap over subsets of cost-sorted perturbations; sets are bitmasks of sorted positions."""
    m, L = costs.shape
    out = np.zeros((m, n_sets), dtype=np.uint64)
    valid = np.zeros((m, n_sets), dtype=np.bool_)
    cap = 4 * n_sets + 8
    hs = np.empty(cap, dtype=np.float64)
    hm = np.empty(cap, dtype=np.uint64)
    hl = np.empty(cap, dtype=np.int64)
    one = np.uint64(1)
    for i in range(m):
        valid[i, 0] = True  # the home bucket
        if n_sets == 1 or L == 0:
            continue
        hs[0] = costs[i, 0]
        hm[0] = one
        hl[0] = 0
        size = 1
        found = 1
        while found < n_sets and size > 0:
            # pop the minimum
            s, mask, last = hs[0], hm[0], hl[0]
            size -= 1
            if size > 0:
                ts, tm, tl = hs[size], hm[size], hl[size]
                j = 0
                while True:
                    c = 2 * j + 1
                    if c >= size:
                        break
                    if c + 1 < size and hs[c + 1] < hs[c]:
                        c += 1
                    if hs[c] < ts:
                        hs[j], hm[j], hl[j] = hs[c], hm[c], hl[c]
                        j = c
                    else:
                        break
                hs[j], hm[j], hl[j] = ts, tm, tl
            ok = True  # no two perturbations of the set share a group
            for e1 in range(last + 1):
                if not ok:
                    break
                if (mask >> np.uint64(e1)) & one:
                    for e2 in range(e1 + 1, last + 1):
                        if (mask >> np.uint64(e2)) & one and groups[i, e1] == groups[i, e2]:
                            ok = False
                            break
            if ok:
                out[i, found] = mask
                valid[i, found] = True
                found += 1
            if last + 1 < L:
                nxt = last + 1
                bit_last = one << np.uint64(last)
                bit_next = one << np.uint64(nxt)
                for kind in range(2):
                    if kind == 0:  # shift: replace the last element by the next one
                        ns, nm = s - costs[i, last] + costs[i, nxt], (mask ^ bit_last) | bit_next
                    else:  # expand: add the next element
                        ns, nm = s + costs[i, nxt], mask | bit_next
                    if size == hs.shape[0]:
                        hs = np.concatenate((hs, np.empty(size, dtype=np.float64)))
                        hm = np.concatenate((hm, np.empty(size, dtype=np.uint64)))
                        hl = np.concatenate((hl, np.empty(size, dtype=np.int64)))
                    j = size
                    size += 1
                    while j > 0:
                        p = (j - 1) // 2
                        if hs[p] > ns:
                            hs[j], hm[j], hl[j] = hs[p], hm[p], hl[p]
                            j = p
                        else:
                            break
                    hs[j], hm[j], hl[j] = ns, nm, nxt
    return out, valid


def _probe_sets(costs, groups, n_probes):
    """Best perturbation sets as bitmasks over cost-sorted positions.

    Returns ``masks`` (m, n_probes) uint64 (bit ``e`` ⇔ the ``e``-th cheapest perturbation of the row),
    ``valid`` (m, n_probes) bool and ``order`` (m, keep) int64, the original index of each sorted position.
    """
    costs = np.asarray(costs, dtype=np.float64)
    m, L = costs.shape
    keep = min(L, max(int(n_probes) - 1, 0), _MAX_ELEMENTS)
    if keep < L:
        part = np.argpartition(costs, keep - 1, axis=1)[:, :keep] if keep else np.empty((m, 0), np.int64)
        sub = np.take_along_axis(costs, part, axis=1)
        order = np.take_along_axis(part, np.argsort(sub, axis=1, kind="stable"), axis=1)
    else:
        order = np.argsort(costs, axis=1, kind="stable")
    c = np.ascontiguousarray(np.take_along_axis(costs, order, axis=1))
    g = np.ascontiguousarray(np.take_along_axis(np.asarray(groups, dtype=np.int64), order, axis=1))
    masks, valid = _probe_masks_kernel(c, g, int(n_probes))
    return masks, valid, order.astype(np.int64)


def _mask_bits(masks: np.ndarray, e: int) -> np.ndarray:
    return ((masks >> np.uint64(e)) & np.uint64(1)).astype(bool)


def probe_sequences(costs, groups=None, n_probes=8):
    """The ``n_probes`` best perturbation sets by total cost, per row (Lv et al.'s heap algorithm).

    Parameters
    ----------
    costs : ndarray of shape (m, L), float
        Non-negative cost of each elementary perturbation (e.g. ``|margin|`` of a bit).
    groups : ndarray of shape (m, L), int, optional
        Perturbations with the same group id exclude each other (e.g. ``+1`` and ``-1`` on one E2LSH
        coordinate); ``None`` means all compatible.
    n_probes : int
        Number of sets per row, the empty set (home bucket) first.

    Returns
    -------
    sets : ndarray of shape (m, n_probes, L), bool
        ``sets[i, p, e]`` is true when perturbation ``e`` is in the ``p``-th best set of row ``i``, in
        non-decreasing order of total cost; ``sets[i, 0]`` is empty.
    valid : ndarray of shape (m, n_probes), bool
        False for slots left over when a row has fewer than ``n_probes`` compatible sets.

    Notes
    -----
    Only the ``min(L, n_probes - 1, 64)`` cheapest perturbations of a row can appear (any set holding the
    ``k``-th cheapest is preceded by the ``k - 1`` cheaper singletons and the empty set), so the result
    is exact whenever ``n_probes <= 65``. The index itself uses the compact bitmask form internally.
    """
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2:
        raise ValidationError(f"costs must be 2-D (m, L), got shape {costs.shape}")
    n_probes = _check_positive_int("n_probes", n_probes)
    m, L = costs.shape
    if groups is None:
        groups = np.broadcast_to(np.arange(L), (m, L))
    masks, valid, order = _probe_sets(costs, groups, n_probes)
    sets = np.zeros((m, n_probes, L), dtype=bool)
    rows = np.arange(m)
    for e in range(order.shape[1]):  # back from sorted positions to the original perturbation indices
        sets[rows, :, order[:, e]] = _mask_bits(masks, e)
    return sets, valid


def _bits_to_keys(bits: np.ndarray) -> np.ndarray:
    """uint64 keys of SimHash tables: bit ``j`` of the key is ``bits[..., j]`` (bits (..., per), per <= 64)."""
    shifts = np.arange(bits.shape[-1], dtype=np.uint64)
    return (bits.astype(np.uint64) << shifts).sum(axis=-1, dtype=np.uint64)


def _check_positive_int(name, value, lo=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValidationError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


@persistable
class MultiTableLSH:
    """Multi-table LSH index: candidate generation by bucket lookup, optional exact re-ranking.

    One hasher with ``n_tables × bits_per_table`` functions is fitted and split into ``n_tables``
    tables. A table's bucket key is a uint64: for ``simhash`` the table's bits themselves (so
    ``bits_per_table <= 64``); for ``e2lsh`` and ``crosspolytope`` the table's integer hash vector mixed
    by a seeded 64-bit hash (two different vectors collide with probability ≈ 2**-64; a collision only
    adds candidates). ``bits_per_table`` is the number of hash functions per table for ``simhash`` and
    ``e2lsh``; for ``crosspolytope`` each table concatenates ``ceil(bits_per_table / bits_per_hash)``
    cross-polytope hashes (``bits_per_hash = ceil(log2(2 last_dim))``).

    Query-directed multi-probe (``n_probes`` buckets per table, the query's own bucket first) visits the
    buckets whose perturbation sets have the smallest total cost, generated in order with Lv et al.'s
    heap of subsets: for ``simhash`` flipping bit ``j`` costs ``|margin_j|`` (distance to the
    hyperplane); for ``e2lsh`` moving coordinate ``j`` by ``-1`` or ``+1`` costs the squared distance
    (in bucket widths) to that bucket boundary; for ``crosspolytope`` replacing a hash by another vertex
    costs the score gap to the best vertex (:meth:`CrossPolytopeLSH.rank_vertices`).

    Candidates are what LSH proposes, to be verified: :meth:`search` verifies them exactly.

    Parameters
    ----------
    hasher : {"simhash", "e2lsh", "crosspolytope"}, default "simhash"
    n_tables : int, default 8
    bits_per_table : int, default 16
    n_probes : int, default 1
        Default number of buckets probed per table (build-time default, overridable per query).
    metric : {"l2", "cosine"} or None, default None
        Re-ranking metric of :meth:`search`; ``None``: ``"l2"`` for e2lsh, ``"cosine"`` otherwise.
    random_state : int, numpy Generator or None, default None
        Seed, resolved in :meth:`fit`.
    **hasher_params
        Passed to the hasher (e.g. ``center=True``, ``bucket_width=2.0``, ``last_dim=16``).

    Attributes
    ----------
    hasher_ : SimHash, E2LSH or CrossPolytopeLSH
    table_seeds_ : ndarray of shape (n_tables,), uint64
    funcs_per_table_ : int
        Hash functions per table (cross-polytopes for ``crosspolytope``).
    ntotal : int
        Number of indexed vectors.

    References
    ----------
    Q. Lv, W. Josephson, Z. Wang, M. Charikar and K. Li, "Multi-Probe LSH: Efficient Indexing for
    High-Dimensional Similarity Search", VLDB 2007.

    Examples
    --------
    >>> import numpy as np
    >>> xb = np.random.default_rng(0).normal(size=(1000, 16)).astype("float32")
    >>> index = MultiTableLSH("simhash", n_tables=4, bits_per_table=8, random_state=0).fit(xb)
    >>> index.add(xb)
    >>> D, I = index.search(xb[:3], 5, n_probes=4)
    >>> I[:, 0].tolist()
    [0, 1, 2]
    """

    def __init__(self, hasher="simhash", *, n_tables=8, bits_per_table=16, n_probes=1, metric=None,
                 random_state=None, **hasher_params):
        self.hasher = hasher
        self.n_tables = n_tables
        self.bits_per_table = bits_per_table
        self.n_probes = n_probes
        self.metric = metric
        self.random_state = random_state
        self.hasher_params = dict(hasher_params)

    def __repr__(self) -> str:
        return (f"MultiTableLSH({self.hasher!r}, n_tables={self.n_tables}, bits_per_table={self.bits_per_table}, "
                f"n_probes={self.n_probes}, ntotal={self.ntotal})")

    # -- parameters ----------------------------------------------------------------------------------
    def _check_params(self):
        if self.hasher not in _FAMILIES:
            raise ValidationError(f"hasher must be one of {', '.join(_FAMILIES)}, got {self.hasher!r}")
        _check_positive_int("n_tables", self.n_tables)
        _check_positive_int("bits_per_table", self.bits_per_table)
        _check_positive_int("n_probes", self.n_probes)
        if self.hasher == "simhash" and self.bits_per_table > 64:
            raise ValidationError(f"simhash keys are uint64: bits_per_table must be <= 64, got {self.bits_per_table}")
        if self.metric not in (None, "l2", "cosine"):
            raise ValidationError(f"metric must be 'l2', 'cosine' or None, got {self.metric!r}")
        bad = {"n_bits", "random_state"} & set(self.hasher_params)
        if bad:
            raise ValidationError(f"{', '.join(sorted(bad))} are set by MultiTableLSH, not through hasher_params")

    @property
    def metric_(self) -> str:
        return self.metric or _DEFAULT_METRIC[self.hasher]

    @property
    def ntotal(self) -> int:
        ids = getattr(self, "ids_", None)
        return 0 if ids is None else int(ids.shape[0])

    @property
    def d(self) -> int | None:
        return getattr(getattr(self, "hasher_", None), "n_features_in_", None)

    def _check_fitted(self):
        if getattr(self, "hasher_", None) is None:
            raise NotFittedError("this MultiTableLSH is not fitted yet: call fit(X) first")

    # -- building ------------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the hash functions on training vectors ``X`` (n, d); the index is left empty. Returns self."""
        self._check_params()
        X = check_vectors_array(X, name="X")
        rng = check_random_state(self.random_state)
        T, B = int(self.n_tables), int(self.bits_per_table)
        seed = int(rng.integers(0, 2**63 - 1))
        cls = get_hasher_class(self.hasher)
        if self.hasher == "crosspolytope":
            bph = cls.hash_bits(X.shape[1], self.hasher_params.get("last_dim"))
            per = -(-B // bph)
            n_bits = T * per * bph
        else:
            per = B
            n_bits = T * B
        hasher = cls(n_bits=n_bits, random_state=seed, **self.hasher_params)
        hasher.fit(X)
        if self.hasher == "crosspolytope" and hasher.n_hashes_ != T * per:
            raise AssertionError("internal: cross-polytope count does not split into tables")
        self.hasher_ = hasher
        self.funcs_per_table_ = per
        self.table_seeds_ = rng.integers(0, np.iinfo(np.uint64).max, size=T, dtype=np.uint64, endpoint=True)
        self.keys_ = np.empty((T, 0), dtype=np.uint64)
        self.order_ = np.empty((T, 0), dtype=np.int64)
        self.data_ = np.empty((0, X.shape[1]), dtype=np.float32)
        self.ids_ = np.empty(0, dtype=np.int64)
        return self

    def add(self, X, ids=None):
        """Index vectors ``X`` (n, d) under ``ids`` (default: ``ntotal, ntotal + 1, ...``).

        Parameters
        ----------
        X : array-like of shape (n, d)
        ids : array-like of shape (n,), int, optional
            Non-negative, unique across the whole index.
        """
        self._check_fitted()
        X = check_vectors_array(X, name="X", n_features=self.d)
        n = X.shape[0]
        if ids is None:
            start = int(self.ids_.max()) + 1 if self.ntotal else 0
            ids = np.arange(start, start + n, dtype=np.int64)
        else:
            ids = np.asarray(ids)
            if ids.shape != (n,) or ids.dtype.kind not in "iu":
                raise ValidationError(f"ids must be an integer array of shape ({n},), got {ids.dtype} {ids.shape}")
            ids = ids.astype(np.int64)
            if ids.size and ids.min() < 0:
                raise ValidationError("ids must be non-negative (-1 marks missing results)")
        all_ids = np.concatenate([self.ids_, ids])
        if np.unique(all_ids).shape[0] != all_ids.shape[0]:
            raise ValidationError("ids must be unique across the index; some are repeated or already present")
        old_keys = np.empty_like(self.keys_)  # back to row order: old_keys[t, order_[t, i]] = keys_[t, i]
        np.put_along_axis(old_keys, self.order_, self.keys_, axis=1)
        keys = np.concatenate([old_keys, self._home_keys(X).T], axis=1)  # (T, ntotal + n)
        order = np.argsort(keys, axis=1, kind="stable")
        self.keys_ = np.ascontiguousarray(np.take_along_axis(keys, order, axis=1))
        self.order_ = np.ascontiguousarray(order.astype(np.int64))
        self.data_ = np.concatenate([self.data_, X])
        self.ids_ = all_ids

    # -- keys ----------------------------------------------------------------------------------------
    def _home_keys(self, X: np.ndarray) -> np.ndarray:
        """Bucket keys (n, T) uint64 of validated float32 X."""
        T, per = int(self.n_tables), self.funcs_per_table_
        n = X.shape[0]
        h = self.hasher_
        if self.hasher == "simhash":
            return _bits_to_keys((h.margins(X) > 0).reshape(n, T, per))
        return _combine_keys(h.hash_values(X).reshape(n, T, per), self.table_seeds_)

    def hash_keys(self, X) -> np.ndarray:
        """Bucket key of every vector in every table.

        Parameters
        ----------
        X : array-like of shape (n, d)

        Returns
        -------
        keys : ndarray of shape (n, n_tables), uint64
        """
        self._check_fitted()
        return self._home_keys(check_vectors_array(X, name="X", n_features=self.d))

    def _mix_probe_vectors(self, vec: np.ndarray, n: int) -> np.ndarray:
        """Keys (n T, P) uint64 of probed hash vectors ``vec`` (n T, P, per); row ``i T + t``: query i, table t."""
        T, P, per = int(self.n_tables), vec.shape[1], vec.shape[2]
        keys = _combine_keys(vec.reshape(n, T, P, per).transpose(0, 2, 1, 3), self.table_seeds_)  # (n, P, T)
        return keys.transpose(0, 2, 1).reshape(n * T, P)

    def _probe_keys(self, X: np.ndarray, P: int):
        """Probe keys (n, T, P) uint64 and their validity (n, T, P) bool for validated X."""
        T, per = int(self.n_tables), self.funcs_per_table_
        n = X.shape[0]
        h = self.hasher_
        if P == 1:
            return self._home_keys(X)[:, :, None], np.ones((n, T, 1), dtype=bool)
        if self.hasher == "simhash":
            M = h.margins(X).reshape(n * T, per)
            home = _bits_to_keys(M > 0)
            masks, valid, order = _probe_sets(np.abs(M), np.broadcast_to(np.arange(per), M.shape), P)
            keys = np.broadcast_to(home[:, None], masks.shape).copy()
            for e in range(order.shape[1]):
                bit = np.uint64(1) << order[:, e].astype(np.uint64)  # (nT,): the bit this position flips
                keys ^= np.where(_mask_bits(masks, e), bit[:, None], np.uint64(0))
        elif self.hasher == "e2lsh":
            pos = h.positions(X)
            H = np.floor(pos).astype(np.int64).reshape(n * T, per)
            frac = (pos - np.floor(pos)).reshape(n * T, per)
            costs = np.concatenate([frac**2, (1.0 - frac) ** 2], axis=1)  # [-1 moves, +1 moves]
            groups = np.tile(np.arange(per), 2)
            masks, valid, order = _probe_sets(costs, np.broadcast_to(groups, costs.shape), P)
            vec = np.repeat(H[:, None, :], P, axis=1)  # (nT, P, per)
            r_idx, p_idx = np.arange(n * T)[:, None], np.arange(P)[None, :]
            for e in range(order.shape[1]):
                elem = order[:, e]
                step = np.where(elem >= per, 1, -1)[:, None] * _mask_bits(masks, e)
                vec[r_idx, p_idx, (elem % per)[:, None]] += step
            keys = self._mix_probe_vectors(vec, n)
        else:
            nv = min(2 * h.last_dim_, P)
            verts, gaps = h.rank_vertices(X, nv)  # (n, T*per, nv)
            verts = verts.reshape(n * T, per, nv)
            gaps = gaps.reshape(n * T, per, nv)
            alt_v = verts[:, :, 1:].reshape(n * T, per * (nv - 1))
            alt_c = gaps[:, :, 1:].reshape(n * T, per * (nv - 1)).astype(np.float64)
            groups = np.repeat(np.arange(per), nv - 1)
            masks, valid, order = _probe_sets(alt_c, np.broadcast_to(groups, alt_c.shape), P)
            vec = np.repeat(verts[:, None, :, 0], P, axis=1)  # (nT, P, per) home vertices
            r_idx, p_idx = np.arange(n * T)[:, None], np.arange(P)[None, :]
            for e in range(order.shape[1]):
                elem = order[:, e]
                j = groups[elem][:, None]  # which polytope of the table
                new_v = np.take_along_axis(alt_v, elem[:, None], axis=1)  # (nT, 1)
                vec[r_idx, p_idx, j] = np.where(_mask_bits(masks, e), new_v, vec[r_idx, p_idx, j])
            keys = self._mix_probe_vectors(vec, n)
        return keys.reshape(n, T, P), valid.reshape(n, T, P)

    # -- queries -------------------------------------------------------------------------------------
    def _resolve_probes(self, n_probes) -> int:
        return _check_positive_int("n_probes", self.n_probes if n_probes is None else n_probes)

    def _candidate_rows(self, Xq: np.ndarray, P: int):
        """(lims (nq+1,), rows) of internal row indices for validated queries."""
        nq, n, T = Xq.shape[0], self.ntotal, int(self.n_tables)
        if n == 0:
            return np.zeros(nq + 1, dtype=np.int64), np.empty(0, dtype=np.int64)
        out_q, out_r = [], []
        for s in range(0, nq, _QUERY_BLOCK):
            block = Xq[s : s + _QUERY_BLOCK]
            keys, valid = self._probe_keys(block, P)
            m = block.shape[0]
            codes = []
            for t in range(T):
                k = keys[:, t, :].ravel()
                lo = np.searchsorted(self.keys_[t], k, side="left")
                hi = np.searchsorted(self.keys_[t], k, side="right")
                cnt = np.where(valid[:, t, :].ravel(), hi - lo, 0)
                total = int(cnt.sum())
                if total == 0:
                    continue
                first = np.repeat(lo, cnt)
                within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
                rows = self.order_[t][first + within]
                q = np.repeat(np.repeat(np.arange(m, dtype=np.int64), P), cnt)
                codes.append(np.unique(q * n + rows))
            if codes:
                u = np.unique(np.concatenate(codes))
                out_q.append(u // n + s)
                out_r.append(u % n)
        q = np.concatenate(out_q) if out_q else np.empty(0, np.int64)
        rows = np.concatenate(out_r) if out_r else np.empty(0, np.int64)
        lims = np.searchsorted(q, np.arange(nq + 1), side="left").astype(np.int64)
        return lims, rows.astype(np.int64)

    def candidates(self, Xq, n_probes=None):
        """Candidate ids of each query: every indexed vector sharing a probed bucket in some table.

        Parameters
        ----------
        Xq : array-like of shape (nq, d)
        n_probes : int, optional
            Buckets per table (default: the ``n_probes`` given at construction).

        Returns
        -------
        lims : ndarray of shape (nq + 1,), int64
        ids : ndarray of shape (lims[-1],), int64
            Query ``i``'s candidates are ``ids[lims[i]:lims[i+1]]``, without duplicates, in index order.
        """
        self._check_fitted()
        Xq = check_vectors_array(Xq, name="Xq", n_features=self.d)
        lims, rows = self._candidate_rows(Xq, self._resolve_probes(n_probes))
        return lims, self.ids_[rows]

    def search(self, Xq, k, n_probes=None):
        """k nearest candidates of each query, re-ranked exactly.

        Parameters
        ----------
        Xq : array-like of shape (nq, d)
        k : int
        n_probes : int, optional

        Returns
        -------
        D : ndarray of shape (nq, k), float32
            Squared L2 distances (``metric="l2"``, as faiss) or cosine distances ``1 - cos``
            (``metric="cosine"``; a zero vector has cosine 0 with everything), ascending; ``inf`` where
            a query has fewer than ``k`` candidates.
        I : ndarray of shape (nq, k), int64
            Ids, ``-1`` where missing. Ties are broken by index order.
        """
        self._check_fitted()
        k = _check_positive_int("k", k)
        Xq = check_vectors_array(Xq, name="Xq", n_features=self.d)
        nq = Xq.shape[0]
        lims, rows = self._candidate_rows(Xq, self._resolve_probes(n_probes))
        counts = np.diff(lims)
        q = np.repeat(np.arange(nq, dtype=np.int64), counts)
        dist = np.empty(rows.shape[0], dtype=np.float32)
        step = max(1, _PAIR_BLOCK // max(1, self.d))
        cosine = self.metric_ == "cosine"
        if cosine:
            qn = np.linalg.norm(Xq, axis=1)
        for s in range(0, rows.shape[0], step):
            xb = self.data_[rows[s : s + step]]
            xq = Xq[q[s : s + step]]
            if cosine:
                dots = np.einsum("ij,ij->i", xb, xq)
                den = np.linalg.norm(xb, axis=1) * qn[q[s : s + step]]
                dist[s : s + step] = 1.0 - np.where(den > 0, dots / np.where(den > 0, den, 1), 0.0)
            else:
                diff = xb - xq
                dist[s : s + step] = np.einsum("ij,ij->i", diff, diff)
        order = np.lexsort((rows, dist, q))
        rank = np.arange(order.shape[0]) - np.repeat(lims[:-1], counts)
        keep = order[rank < k]
        D = np.full((nq, k), np.inf, dtype=np.float32)
        I = np.full((nq, k), -1, dtype=np.int64)
        rk = rank[rank < k]
        D[q[keep], rk] = dist[keep]
        I[q[keep], rk] = self.ids_[rows[keep]]
        return D, I

    # -- persistence ---------------------------------------------------------------------------------
    def _get_state(self) -> dict:
        rs = self.random_state
        params = {
            "hasher": self.hasher, "n_tables": self.n_tables, "bits_per_table": self.bits_per_table,
            "n_probes": self.n_probes, "metric": self.metric,
            "random_state": rs if rs is None or isinstance(rs, numbers.Integral) else None,
            "hasher_params": dict(self.hasher_params),
        }
        state = {"params": params, "hasher_": getattr(self, "hasher_", None)}
        if state["hasher_"] is not None:
            state.update(funcs_per_table_=self.funcs_per_table_, table_seeds_=self.table_seeds_,
                         keys_=self.keys_, order_=self.order_, data_=self.data_, ids_=self.ids_)
        return state

    @classmethod
    def _from_state(cls, state: dict):
        params = dict(state["params"])
        hp = params.pop("hasher_params", {}) or {}
        obj = cls(**params, **hp)
        if state.get("hasher_") is not None:
            obj.hasher_ = state["hasher_"]
            obj.funcs_per_table_ = int(state["funcs_per_table_"])
            obj.table_seeds_ = np.asarray(state["table_seeds_"], dtype=np.uint64)
            obj.keys_ = state["keys_"]
            obj.order_ = state["order_"]
            obj.data_ = state["data_"]
            obj.ids_ = state["ids_"]
            T = int(obj.n_tables)
            if obj.keys_.shape != (T, obj.ids_.shape[0]) or obj.order_.shape != obj.keys_.shape:
                raise IncompatibleError("stored MultiTableLSH tables are inconsistent with n_tables / ids")
        return obj
