"""Flat (exhaustive) binary index over packed codes with int64 external ids."""

from __future__ import annotations

import numpy as np

from ..codes import MISSING_DISTANCE, check_codes, knn_search, n_words, range_search
from ..errors import IncompatibleError, ValidationError
from ..io.persist import persistable

__all__ = ["BinaryIndex", "CodeStore"]


def _as_ids(ids, n: int, name: str = "ids") -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValidationError(f"{name} must be a 1-D array of {n} ids, got shape {arr.shape}")
    if n and arr.dtype.kind not in "iu":
        raise ValidationError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and n and arr.max() > np.iinfo(np.int64).max:
        raise ValidationError(f"{name} do not fit in int64")
    arr = arr.astype(np.int64, copy=False)
    if n and arr.min() < 0:
        raise ValidationError(f"{name} must be non-negative (-1 marks a missing result), got {arr.min()}")
    if n > 1 and np.unique(arr).shape[0] != n:
        raise ValidationError(f"{name} contains duplicates")
    return arr


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``values`` occur in ``sorted_set`` (binary search; np.isin is ~300× slower
    for a small batch against a large id set)."""
    if sorted_set.size == 0:
        return np.zeros(values.shape, bool)
    pos = np.searchsorted(sorted_set, values)
    pos[pos == sorted_set.size] = 0
    return sorted_set[pos] == values


class CodeStore:
    """Growable (codes, ids) arrays shared by the binary indexes.

    Codes are kept in insertion order in one C-contiguous (capacity, W) uint64 buffer; ids in a
    parallel int64 buffer. ``ids_increasing`` tells whether position order equals id order, which lets
    the kernels break ties by position (the faster path).
    """

    def __init__(self, n_bits: int):
        self.n_bits = int(n_bits)
        self.n_words = n_words(self.n_bits)
        self._codes = np.zeros((0, self.n_words), np.uint64)
        self._ids = np.zeros(0, np.int64)
        self.ntotal = 0
        self._next_id = 0
        self.ids_increasing = True
        self._sorted_ids = None  # lazily built sorted copy of ids, for duplicate checks

    @property
    def codes(self) -> np.ndarray:
        return self._codes[: self.ntotal]

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.ntotal]

    def _reserve(self, extra: int) -> None:
        need = self.ntotal + extra
        if need <= self._codes.shape[0] and self._codes.flags.writeable:
            return
        cap = max(need, int(self._codes.shape[0] * 1.5), 1024)
        codes = np.zeros((cap, self.n_words), np.uint64)
        codes[: self.ntotal] = self.codes
        ids = np.zeros(cap, np.int64)
        ids[: self.ntotal] = self.ids
        self._codes, self._ids = codes, ids

    def add(self, codes, ids=None) -> np.ndarray:
        try:
            codes = check_codes(codes, self.n_bits)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        m = codes.shape[0]
        if ids is None:
            ids = np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        else:
            ids = _as_ids(ids, m)
            # Ids above every id ever assigned cannot collide: skip the check (the common append case).
            if m and self.ntotal and int(ids.min()) < self._next_id:
                present = _member(ids, self._sorted())
                if present.any():
                    raise ValidationError(
                        f"id {ids[present][0]} is already in the index (remove it first to replace it)"
                    )
        if m == 0:
            return ids
        if self.ntotal and ids[0] <= self._ids[self.ntotal - 1]:
            self.ids_increasing = False
        if m > 1 and np.any(np.diff(ids) <= 0):
            self.ids_increasing = False
        self._reserve(m)
        self._codes[self.ntotal : self.ntotal + m] = codes
        self._ids[self.ntotal : self.ntotal + m] = ids
        self.ntotal += m
        self._next_id = max(self._next_id, int(ids.max()) + 1)
        self._sorted_ids = None
        return ids

    def _sorted(self) -> np.ndarray:
        if self._sorted_ids is None:
            self._sorted_ids = np.sort(self.ids)
        return self._sorted_ids

    def remove(self, ids) -> int:
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if self.ntotal == 0 or ids.size == 0:
            return 0
        drop = _member(self.ids, np.sort(ids))
        n_drop = int(drop.sum())
        if n_drop:
            keep = ~drop
            codes, kept_ids = self.codes[keep], self.ids[keep]
            self._codes = np.ascontiguousarray(codes)
            self._ids = np.ascontiguousarray(kept_ids)
            self.ntotal = kept_ids.shape[0]
            self._sorted_ids = None
        return n_drop

    def check_queries(self, q) -> np.ndarray:
        try:
            return check_codes(q, self.n_bits, "query codes")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def positions_to_ids(self, positions: np.ndarray) -> np.ndarray:
        out = np.full(positions.shape, -1, np.int64)
        valid = positions >= 0
        out[valid] = self.ids[positions[valid]]
        return out

    def state(self) -> dict:
        return {
            "n_bits": self.n_bits,
            "codes": self.codes,
            "ids": self.ids,
            "next_id": self._next_id,
            "ids_increasing": self.ids_increasing,
        }

    @classmethod
    def from_state(cls, state: dict) -> "CodeStore":
        store = cls(state["n_bits"])
        codes, ids = state["codes"], state["ids"]
        if codes.shape != (ids.shape[0], store.n_words) or codes.dtype != np.uint64 or ids.dtype != np.int64:
            raise ValueError("codes and ids arrays do not match the declared n_bits")
        store._codes, store._ids = codes, ids
        store.ntotal = ids.shape[0]
        store._next_id = int(state["next_id"])
        store.ids_increasing = bool(state["ids_increasing"])
        return store


def _check_k(k) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValidationError(f"k must be a positive integer, got {k!r}")
    return int(k)


@persistable
class BinaryIndex:
    """Exhaustive Hamming-distance index over packed binary codes.

    Parameters
    ----------
    n_bits : int
        Code length; codes are uint64 arrays of shape (n, ceil(n_bits / 64)).
    n_threads : int, optional
        Threads for search (default: numba's setting, i.e. all cores).

    Results follow faiss' convention: ``search`` returns (D, I) of shape (nq, k), ascending distance,
    ties broken by the smaller id, ``I = -1`` (and ``D = MISSING_DISTANCE``) where fewer than k codes
    exist.

    Examples
    --------
    >>> import numpy as np, hashlearn
    >>> index = hashlearn.BinaryIndex(64)
    >>> codes = np.array([[0], [1], [3]], dtype=np.uint64)
    >>> _ = index.add(codes, ids=[10, 11, 12])
    >>> D, I = index.search(np.array([[1]], dtype=np.uint64), 2)
    >>> I.tolist(), D.tolist()
    ([[11, 10]], [[0, 1]])
    """

    def __init__(self, n_bits: int, *, n_threads: int | None = None):
        if not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
            raise ValidationError(f"n_bits must be a positive integer, got {n_bits!r}")
        self.n_bits = int(n_bits)
        self.n_threads = n_threads
        self._store = CodeStore(self.n_bits)

    # -- content -------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return self._store.ntotal

    def __len__(self) -> int:
        return self.ntotal

    @property
    def ids(self) -> np.ndarray:
        """External ids in insertion order (int64, read-only view)."""
        return self._store.ids

    @property
    def codes(self) -> np.ndarray:
        """Stored codes in insertion order, (ntotal, n_words) uint64."""
        return self._store.codes

    def add(self, codes, ids=None) -> np.ndarray:
        """Add packed codes (n, n_words) uint64 with optional int64 ids (default: consecutive).

        Returns the ids assigned. Ids must be unique non-negative integers.
        """
        return self._store.add(codes, ids)

    def remove(self, ids) -> int:
        """Remove codes by id; returns how many were removed (unknown ids are ignored)."""
        return self._store.remove(ids)

    # -- search --------------------------------------------------------------------------------
    def search(self, query_codes, k: int):
        """k nearest codes per query: (D int32, I int64), each of shape (nq, k)."""
        k = _check_k(k)
        q = self._store.check_queries(query_codes)
        store = self._store
        if store.ntotal == 0:
            return np.full((q.shape[0], k), MISSING_DISTANCE, np.int32), np.full((q.shape[0], k), -1, np.int64)
        tie = None if store.ids_increasing else store.ids
        D, P = knn_search(q, store.codes, k, n_bits=self.n_bits, tie_ids=tie, n_threads=self.n_threads)
        return D, store.positions_to_ids(P)

    def range_search(self, query_codes, radius: int):
        """All codes within Hamming distance ``radius`` (inclusive).

        Returns (lims, D, I): results of query i are ``D[lims[i]:lims[i+1]]``, ``I[...]``, sorted by
        (distance, id).
        """
        q = self._store.check_queries(query_codes)
        if not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ValidationError(f"radius must be a non-negative integer, got {radius!r}")
        store = self._store
        lims, D, P = range_search(q, store.codes, int(radius), n_bits=self.n_bits, n_threads=self.n_threads)
        ids = store.ids[P]
        return (lims,) + _sort_segments(lims, D, ids)

    # -- interop ----------------------------------------------------------------------------------
    def to_faiss(self):
        """A faiss binary index with the same codes and ids (IndexBinaryIDMap2 over IndexBinaryFlat)."""
        import faiss

        from ..codes import to_bytes

        if self.n_bits % 8:
            raise IncompatibleError(f"faiss binary indexes need a multiple of 8 bits, this index has {self.n_bits}")
        index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(self.n_bits))
        if self.ntotal:
            index.add_with_ids(to_bytes(self.codes, self.n_bits), self.ids)
        return index

    @classmethod
    def from_faiss(cls, index) -> "BinaryIndex":
        """Build from a faiss ``IndexBinaryFlat`` (ids 0..n-1) or an ``IndexBinaryIDMap(2)`` over one."""
        import faiss

        from ..codes import from_bytes

        ids = None
        inner = index
        if isinstance(index, (faiss.IndexBinaryIDMap, faiss.IndexBinaryIDMap2)):
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            inner = faiss.downcast_IndexBinary(index.index)
        if not isinstance(inner, faiss.IndexBinaryFlat):
            raise IncompatibleError(f"can import IndexBinaryFlat (optionally in an IDMap), got {type(inner).__name__}")
        out = cls(index.d)
        if index.ntotal:
            raw = faiss.vector_to_array(inner.xb).reshape(index.ntotal, index.code_size)
            out.add(from_bytes(raw, index.d), ids)
        return out

    # -- persistence ----------------------------------------------------------------------------
    def _get_state(self) -> dict:
        return {"store": self._store.state(), "n_threads": self.n_threads}

    @classmethod
    def _from_state(cls, state: dict) -> "BinaryIndex":
        store = CodeStore.from_state(state["store"])
        obj = cls(store.n_bits, n_threads=state.get("n_threads"))
        obj._store = store
        return obj

    def __repr__(self) -> str:
        return f"BinaryIndex(n_bits={self.n_bits}, ntotal={self.ntotal})"


def _sort_segments(lims: np.ndarray, D: np.ndarray, ids: np.ndarray):
    """Sort each CSR segment by (distance, id)."""
    if D.size == 0:
        return D, ids
    seg = np.repeat(np.arange(lims.shape[0] - 1), np.diff(lims))
    order = np.lexsort((ids, D, seg))
    return D[order], ids[order]
