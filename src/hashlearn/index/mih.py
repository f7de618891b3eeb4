"""Multi-index hashing: exact Hamming k-NN and radius search, sub-linear for small radii."""

from __future__ import annotations

import math

import numpy as np

from ..codes import MISSING_DISTANCE, knn_search
from ..errors import ValidationError
from ..io.persist import persistable
from .flat import BinaryIndex, CodeStore, _check_k, _sort_segments

__all__ = ["MultiIndexHashing"]

_MAX_SUBSTRING_BITS = 40


def _default_budget(n: int) -> float:
    # A query may spend up to one flat scan's worth of work probing before it falls back to one.
    return float(max(n, 1024))


def _range_probe_cost(lengths, s_max: int, n: int) -> float:
    from ._mih_kernels import PROBE_COST

    probes = sum(math.comb(int(L), s) for L in lengths for s in range(min(s_max, int(L)) + 1))
    return float(probes) * PROBE_COST


def _split(n_bits: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of m near-equal disjoint substrings covering n_bits."""
    base, extra = divmod(n_bits, m)
    lengths = np.array([base + (1 if i < extra else 0) for i in range(m)], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return starts, lengths


def _masks(n_bits: int, starts, lengths, n_words: int) -> np.ndarray:
    masks = np.zeros((len(starts), n_words * 64), np.uint8)
    for t, (a, L) in enumerate(zip(starts, lengths)):
        masks[t, a : a + L] = 1
    return np.packbits(masks, axis=1, bitorder="little").view("<u8").astype(np.uint64)


@persistable
class MultiIndexHashing(BinaryIndex):
    """Exact Hamming search with multi-index hashing.

    Codes are split into ``m`` disjoint substrings, each indexed in its own hash table. A code within
    Hamming distance r of the query matches it within ``floor(r / m)`` in at least one substring
    (pigeonhole), so probing every substring table at increasing radius finds exactly the neighbours a
    linear scan finds while touching a small part of the database when neighbours are close.

    Results are identical to :class:`~hashlearn.BinaryIndex` — the same (distance, id) order, the
    same ties — which the tests check property-wise.

    Parameters
    ----------
    n_bits : int
    n_substrings : int, optional
        Number of tables m. Default ``round(n_bits / log2(n))`` as recommended by the paper, chosen
        when the tables are (re)built, and at least ``ceil(n_bits / 40)``.
    n_threads : int, optional
        Threads for search.
    probe_budget : float, optional
        Query-time knob: the work, in units of one code scanned by the flat kernel, a query may
        spend probing (bucket look-ups cost ~200 units, candidate checks ~150, predicted before each
        radius from what the query has seen) before it is answered by the flat scan instead — same
        results, bounded cost when neighbours are far. Default ``max(ntotal, 1024)`` (one flat
        scan); ``float("inf")`` always probes, ``0`` always scans.

    References
    ----------
    Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012.
    """

    def __init__(
        self, n_bits: int, n_substrings: int | None = None, *, n_threads: int | None = None, probe_budget=None
    ):
        if not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
            raise ValidationError(f"n_bits must be a positive integer, got {n_bits!r}")
        if n_substrings is not None and not (1 <= int(n_substrings) <= n_bits):
            raise ValidationError(f"n_substrings must be between 1 and n_bits={n_bits}, got {n_substrings}")
        super().__init__(n_bits, n_threads=n_threads)
        self.n_substrings = None if n_substrings is None else int(n_substrings)
        self.probe_budget = probe_budget
        self._tables = None

    def _budget(self) -> float:
        return _default_budget(self.ntotal) if self.probe_budget is None else float(self.probe_budget)

    def add(self, codes, ids=None) -> np.ndarray:
        """Add packed codes with optional unique int64 ids; returns the ids. Tables rebuild lazily."""
        ids = super().add(codes, ids)
        self._tables = None
        return ids

    def remove(self, ids) -> int:
        """Remove codes by id; returns the number removed."""
        n = super().remove(ids)
        if n:
            self._tables = None
        return n

    def _choose_m(self) -> int:
        if self.n_substrings is not None:
            m = self.n_substrings
        else:
            m = max(1, round(self.n_bits / math.log2(max(self.ntotal, 2))))
        return max(m, math.ceil(self.n_bits / _MAX_SUBSTRING_BITS))

    def _build(self):
        from ._mih_kernels import table_keys

        codes = self._store.codes
        m = self._choose_m()
        starts, lengths = _split(self.n_bits, m)
        ukeys, uoff, boff, positions = [], [0], [0], []
        base = 0
        for a, L in zip(starts, lengths):
            keys = table_keys(codes, int(a), int(L))
            order = np.argsort(keys, kind="stable")
            sk = keys[order]
            if sk.size:
                new = np.empty(sk.size, bool)
                new[0] = True
                np.not_equal(sk[1:], sk[:-1], out=new[1:])
                starts_u = np.flatnonzero(new)
            else:
                starts_u = np.zeros(0, np.int64)
            ukeys.append(sk[starts_u])
            uoff.append(uoff[-1] + starts_u.size)
            ends = np.append(starts_u[1:], sk.size)
            boff.extend((ends + base).tolist())
            positions.append(order)
            base += sk.size
        self._tables = dict(
            starts=starts,
            lengths=lengths,
            masks=_masks(self.n_bits, starts, lengths, self._store.n_words),
            ukeys=np.concatenate(ukeys).astype(np.uint64),
            uoff=np.array(uoff, np.int64),
            boff=np.array(boff, np.int64),
            positions=np.concatenate(positions).astype(np.int64),
        )
        return self._tables

    def _tables_ready(self):
        return self._tables if self._tables is not None else self._build()

    def search(self, query_codes, k: int):
        """Exact k nearest codes: (D int32, I int64) of shape (nq, k), as BinaryIndex.search."""
        from ..codes.search import thread_limit
        from ._mih_kernels import mih_knn

        k = _check_k(k)
        q = self._store.check_queries(query_codes)
        store = self._store
        if store.ntotal == 0:
            return np.full((q.shape[0], k), MISSING_DISTANCE, np.int32), np.full((q.shape[0], k), -1, np.int64)
        t = self._tables_ready()
        use_keys = not store.ids_increasing
        keys = store.ids if use_keys else np.empty(0, np.int64)
        with thread_limit(self.n_threads):
            D, P, fallback = mih_knn(
                q, store.codes, k, t["starts"], t["lengths"], t["masks"], t["ukeys"], t["uoff"], t["boff"],
                t["positions"], keys, use_keys, self._budget(),
            )
            far = np.flatnonzero(fallback)
            if far.size:
                # Queries whose neighbours are too far for probing to pay: one batched flat scan.
                D[far], P[far] = knn_search(
                    q[far], store.codes, k, n_bits=self.n_bits, tie_ids=store.ids if use_keys else None
                )
        return D, store.positions_to_ids(P)

    def range_search(self, query_codes, radius: int):
        """All codes within Hamming distance ``radius``: (lims, D, I) as BinaryIndex.range_search."""
        from ..codes.search import thread_limit
        from ._mih_kernels import mih_range

        q = self._store.check_queries(query_codes)
        if not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ValidationError(f"radius must be a non-negative integer, got {radius!r}")
        store = self._store
        nq = q.shape[0]
        lims = np.zeros(nq + 1, np.int64)
        if store.ntotal == 0:
            return lims, np.zeros(0, np.int32), np.zeros(0, np.int64)
        t = self._tables_ready()
        if _range_probe_cost(t["lengths"], int(radius) // len(t["lengths"]), store.ntotal) > self._budget():
            from ..codes import range_search

            lims, D, P = range_search(q, store.codes, int(radius), n_bits=self.n_bits, n_threads=self.n_threads)
            return (lims,) + _sort_segments(lims, D, store.ids[P])
        args = (t["starts"], t["lengths"], t["masks"], t["ukeys"], t["uoff"], t["boff"], t["positions"])
        with thread_limit(self.n_threads):
            empty_d, empty_i = np.zeros(0, np.int32), np.zeros(0, np.int64)
            mih_range(q, store.codes, int(radius), *args, lims, empty_d, empty_i, True)
            np.cumsum(lims, out=lims)
            out_d = np.empty(lims[-1], np.int32)
            out_i = np.empty(lims[-1], np.int64)
            mih_range(q, store.codes, int(radius), *args, lims, out_d, out_i, False)
        return (lims,) + _sort_segments(lims, out_d, store.ids[out_i])

    def _get_state(self) -> dict:
        return {
            "store": self._store.state(),
            "n_substrings": self.n_substrings,
            "n_threads": self.n_threads,
            "probe_budget": None if self.probe_budget is None else repr(float(self.probe_budget)),
        }

    @classmethod
    def _from_state(cls, state: dict) -> "MultiIndexHashing":
        store = CodeStore.from_state(state["store"])
        obj = cls(
            store.n_bits, state.get("n_substrings"), n_threads=state.get("n_threads"), probe_budget=None if state.get("probe_budget") is None else float(state["probe_budget"]),
        )
        obj._store = store
        return obj

    def __repr__(self) -> str:
        return f"MultiIndexHashing(n_bits={self.n_bits}, n_substrings={self.n_substrings}, ntotal={self.ntotal})"
