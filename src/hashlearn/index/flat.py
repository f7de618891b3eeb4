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
    """Rows of (code, id[, vector]) shared by the binary indexes and :class:`~hashlearn.HashIndex`.

    Each column lives in one growable C-contiguous buffer: codes (capacity, W) uint64, ids (capacity,)
    int64 and, when the store keeps vectors (``dim`` given), vectors (capacity, dim) float32. Rows are
    appended at the end; :meth:`remove` moves the current last row into each freed row, so a removal
    costs O(batch), not O(n), and row order is insertion order only until the first removal.
    ``ids_increasing`` says whether row order is id order, which lets the kernels break distance ties by
    row (the faster path); :meth:`sort_by_id` restores it.

    Ids are found by binary search while rows are in id order; otherwise through an id → row dict,
    built on the first look-up that needs it and kept up to date after.

    ``n_bits = 0`` is a store without codes yet (rows hold ids and vectors; :meth:`recode` gives them
    codes later), used by an index whose hasher is not fitted.
    """

    def __init__(self, n_bits: int, *, dim: int | None = None):
        self.n_bits = int(n_bits)
        self.n_words = n_words(self.n_bits) if self.n_bits else 0
        self.dim = None if dim is None else int(dim)
        self._codes = np.zeros((0, self.n_words), np.uint64)
        self._ids = np.zeros(0, np.int64)
        self._vectors = None if self.dim is None else np.zeros((0, self.dim), np.float32)
        self.ntotal = 0
        self._next_id = 0
        self.ids_increasing = True
        self._sorted_ids = None  # lazily built sorted copy of ids, for duplicate checks without the dict
        self._pos: dict[int, int] | None = None  # id -> row, built on demand

    # -- views -----------------------------------------------------------------------------------
    @property
    def codes(self) -> np.ndarray:
        return self._codes[: self.ntotal]

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.ntotal]

    @property
    def vectors(self) -> np.ndarray | None:
        """Stored float32 vectors in row order (None for a store without vectors)."""
        return None if self._vectors is None else self._vectors[: self.ntotal]

    @property
    def nbytes(self) -> int:
        """Bytes held by the row buffers (capacity included)."""
        return int(self._codes.nbytes + self._ids.nbytes + (0 if self._vectors is None else self._vectors.nbytes))

    # -- growth ----------------------------------------------------------------------------------
    def _buffers_writeable(self) -> bool:
        return all(b.flags.writeable for b in (self._codes, self._ids, self._vectors) if b is not None)

    def _reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows, in writeable buffers (arrays loaded with mmap are copied here)."""
        need = self.ntotal + extra
        if need <= self._codes.shape[0] and self._buffers_writeable():
            return
        cap = max(need, int(self._codes.shape[0] * 1.5), 1024)
        n = self.ntotal

        def grown(buf, shape_tail, dtype):
            out = np.zeros((cap,) + shape_tail, dtype)
            out[:n] = buf[:n]
            return out

        self._codes = grown(self._codes, (self.n_words,), np.uint64)
        self._ids = grown(self._ids, (), np.int64)
        if self._vectors is not None:
            self._vectors = grown(self._vectors, (self.dim,), np.float32)

    # -- content ---------------------------------------------------------------------------------
    def check_new_ids(self, ids, m: int) -> np.ndarray:
        """``ids`` for ``m`` new rows (default: consecutive after the largest id so far), checked:
        unique, non-negative, not stored yet. Nothing is changed."""
        if ids is None:
            return np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        ids = _as_ids(ids, m)
        # Ids above every id ever assigned cannot collide: skip the check (the common append case).
        if m and self.ntotal and int(ids.min()) < self._next_id:
            if self._pos is not None:
                pos = self._pos
                present = np.fromiter((i in pos for i in ids.tolist()), bool, m)
            else:
                present = _member(ids, self._sorted())
            if present.any():
                raise ValidationError(f"id {ids[present][0]} is already in the index (remove it first to replace it)")
        return ids

    def add(self, codes, ids=None, vectors=None) -> np.ndarray:
        """Append rows; returns their ids.

        ``vectors`` (m, dim) only for a store that keeps vectors; left out there, the new rows' vectors
        are zeros until :meth:`set_vectors` writes them (what HashIndex does after its code index added
        the codes). A store without codes yet (``n_bits = 0``) takes ``codes=None`` and the vectors.
        """
        if self.n_bits:
            codes = self.check_queries(codes, "codes")
            m = codes.shape[0]
        else:
            if codes is not None:
                raise ValidationError("this store holds no codes yet (its hasher is not fitted): pass codes=None")
            m = None
        if self._vectors is not None and vectors is not None:
            vectors = np.asarray(vectors, np.float32)
            if vectors.ndim != 2 or vectors.shape[1] != self.dim or (m is not None and vectors.shape[0] != m):
                raise ValidationError(f"vectors must have shape ({m if m is not None else 'n'}, {self.dim}), got {vectors.shape}")
            m = vectors.shape[0]
        elif vectors is not None:
            raise ValidationError("this store keeps no vectors")
        if m is None:
            raise ValidationError("a store without codes takes rows only with their vectors")
        ids = self.check_new_ids(ids, m)
        if m == 0:
            return ids
        if self.ntotal and ids[0] <= self._ids[self.ntotal - 1]:
            self.ids_increasing = False
        if m > 1 and np.any(np.diff(ids) <= 0):
            self.ids_increasing = False
        self._reserve(m)
        lo, hi = self.ntotal, self.ntotal + m
        if self.n_bits:
            self._codes[lo:hi] = codes
        self._ids[lo:hi] = ids
        if vectors is not None:
            self._vectors[lo:hi] = vectors
        if self._pos is not None:
            self._pos.update(zip(ids.tolist(), range(lo, hi)))
        self.ntotal = hi
        self._next_id = max(self._next_id, int(ids.max()) + 1)
        self._sorted_ids = None
        return ids

    def _sorted(self) -> np.ndarray:
        if self._sorted_ids is None:
            self._sorted_ids = np.sort(self.ids)
        return self._sorted_ids

    def rows(self, ids) -> np.ndarray:
        """Rows of ``ids`` (int64 array of the same shape); -1 for ids not stored."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.ntotal == 0 or ids.size == 0:
            return np.full(ids.shape, -1, np.int64)
        if self._pos is None and self.ids_increasing:
            stored = self.ids
            r = np.minimum(np.searchsorted(stored, ids), self.ntotal - 1)
            return np.where(stored[r] == ids, r, -1).astype(np.int64)
        pos = self._id_map()
        get = pos.get
        flat = np.fromiter((get(i, -1) for i in ids.ravel().tolist()), np.int64, ids.size)
        return flat.reshape(ids.shape)

    def _id_map(self) -> dict:
        if self._pos is None:
            self._pos = dict(zip(self.ids.tolist(), range(self.ntotal)))
        return self._pos

    def remove(self, ids) -> int:
        """Remove the stored ``ids`` (others are ignored) in O(len(ids)): each freed row takes the
        current last row. Returns how many were removed."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).ravel())
        if self.ntotal == 0 or ids.size == 0:
            return 0
        rows = self.rows(ids)
        rows = np.sort(rows[rows >= 0])[::-1]  # descending: the last row is never one still to go
        if rows.size == 0:
            return 0
        self._reserve(0)
        pos = self._pos  # kept up to date if it exists; the swaps themselves need only `rows`
        codes, stored, vectors = self._codes, self._ids, self._vectors
        for r in rows.tolist():
            last = self.ntotal - 1
            if pos is not None:
                del pos[int(stored[r])]
            if r != last:
                moved = int(stored[last])
                stored[r] = moved
                codes[r] = codes[last]
                if vectors is not None:
                    vectors[r] = vectors[last]
                if pos is not None:
                    pos[moved] = r
                self.ids_increasing = False
            self.ntotal = last
        if self.ntotal < 2:
            self.ids_increasing = True
        self._sorted_ids = None
        return int(rows.size)

    def set_vectors(self, start: int, vectors) -> None:
        """Write the vectors of rows ``start .. start + len(vectors)`` (rows that :meth:`add` just appended)."""
        vectors = np.asarray(vectors, np.float32)
        if self._vectors is None or vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValidationError(f"vectors must have shape (m, {self.dim}) for a store that keeps vectors")
        if not 0 <= start <= start + vectors.shape[0] <= self.ntotal:
            raise ValidationError(f"rows {start}..{start + vectors.shape[0]} are not all stored (ntotal={self.ntotal})")
        self._vectors[start : start + vectors.shape[0]] = vectors

    def sort_by_id(self) -> None:
        """Put the rows in increasing id order (O(n log n)); searches then break ties by row again."""
        if self.ids_increasing:
            return
        order = np.argsort(self.ids, kind="stable")
        self._reserve(0)
        n = self.ntotal
        self._codes[:n] = self._codes[:n][order]
        self._ids[:n] = self._ids[:n][order]
        if self._vectors is not None:
            self._vectors[:n] = self._vectors[:n][order]
        if self._pos is not None:
            self._pos = dict(zip(self._ids[:n].tolist(), range(n)))
        self.ids_increasing = True

    def recode(self, codes, n_bits: int) -> None:
        """Replace every row's code by ``codes`` (ntotal, n_words(n_bits)), in row order: a new hasher."""
        n_bits = int(n_bits)
        codes = check_codes(codes, n_bits)
        if codes.shape[0] != self.ntotal:
            raise ValidationError(f"recode needs {self.ntotal} codes (one per row), got {codes.shape[0]}")
        buf = np.zeros((max(self._codes.shape[0], self.ntotal), n_words(n_bits)), np.uint64)
        buf[: self.ntotal] = codes
        self.n_bits, self.n_words, self._codes = n_bits, buf.shape[1], buf

    def attach_vectors(self, vectors) -> None:
        """Keep ``vectors`` (ntotal, d) float32, row-aligned, from now on (used when loading)."""
        if not isinstance(vectors, np.ndarray):  # (a memory-mapped array stays one)
            vectors = np.asarray(vectors)
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != self.ntotal:
            raise ValidationError(f"vectors must be float32 of shape ({self.ntotal}, d), got {vectors.dtype} {vectors.shape}")
        self.dim = int(vectors.shape[1])
        self._vectors = vectors
        if self._codes.shape[0] != self.ntotal or self._ids.shape[0] != self.ntotal:
            self._codes, self._ids = self.codes, self.ids  # one capacity for every buffer

    def check_queries(self, q, name: str = "query codes") -> np.ndarray:
        return check_codes(q, self.n_bits, name)

    def positions_to_ids(self, positions: np.ndarray) -> np.ndarray:
        out = np.full(positions.shape, -1, np.int64)
        valid = positions >= 0
        out[valid] = self.ids[positions[valid]]
        return out

    def state(self) -> dict:
        """Codes and ids (vectors are saved by their owner, see HashIndex)."""
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
        if not (isinstance(codes, np.ndarray) and isinstance(ids, np.ndarray)):
            raise ValidationError("codes and ids must be arrays")
        if codes.shape != (ids.shape[0], store.n_words) or codes.dtype != np.uint64 or ids.dtype != np.int64 or ids.ndim != 1:
            raise ValidationError("codes and ids arrays do not match the declared n_bits")
        store._codes, store._ids = codes, ids
        store.ntotal = ids.shape[0]
        store._next_id = int(state["next_id"])
        store.ids_increasing = bool(state["ids_increasing"])
        if store.ids_increasing and store.ntotal > 1 and not np.all(np.diff(ids) > 0):
            raise ValidationError("ids are marked increasing but are not")
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
        """External ids in row order (int64 view): insertion order until the first :meth:`remove`, which
        moves the last row into each freed row."""
        return self._store.ids

    @property
    def codes(self) -> np.ndarray:
        """Stored codes in row order (see :attr:`ids`), (ntotal, n_words) uint64."""
        return self._store.codes

    def add(self, codes, ids=None) -> np.ndarray:
        """Add packed codes (n, n_words) uint64 with optional int64 ids (default: consecutive).

        Returns the ids assigned. Ids must be unique non-negative integers.
        """
        return self._store.add(codes, ids)

    def remove(self, ids) -> int:
        """Remove codes by id in O(len(ids)); returns how many were removed (unknown ids are ignored).

        Each freed row takes the current last row, so row order no longer follows insertion; results do
        not change (ties are broken by id whatever the row order).
        """
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
