"""HashIndex: a fitted hasher, its codes, and optionally the float vectors for exact re-ranking."""

from __future__ import annotations

import numpy as np

from ..errors import NotFittedError, ValidationError
from ..hashing.base import check_vectors_array
from ..io.persist import persistable
from .flat import BinaryIndex, CodeStore, _check_k
from .mih import MultiIndexHashing

__all__ = ["HashIndex", "rerank_distances"]

_METRICS = ("l2", "ip", "cosine")
#: Floats gathered per block of the re-ranking (16 MiB of float32): memory stays bounded whatever
#: ``nq × candidates × d`` a search asks for.
RERANK_BLOCK_FLOATS = 1 << 22


def rerank_distances(Xq: np.ndarray, V: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances of each query to its candidates' vectors.

    Xq: (nq, d) float32 queries; V: (nq, c, d) float32 candidate vectors. Returns (nq, c) float32:
    squared L2 for ``"l2"``, negated inner product for ``"ip"``, 1 - cosine for ``"cosine"`` (smaller
    is closer). Each entry is a sum over ``d`` computed on its own (no ``|v|² - 2 v·q + |q|²``
    expansion, which cancels badly for near neighbours), so the result of one (query, candidate) pair
    does not depend on which other pairs share the call: blocked and unblocked calls agree bit for bit.
    """
    Xq = np.asarray(Xq, np.float32)
    V = np.asarray(V, np.float32)
    q = Xq[:, None, :]
    if metric == "l2":
        diff = V - q
        np.multiply(diff, diff, out=diff)
        return diff.sum(-1)
    if metric == "ip":
        return -(V * q).sum(-1)
    qn = Xq / np.maximum(np.linalg.norm(Xq, axis=1, keepdims=True), np.float32(1e-30))
    dots = (V * qn[:, None, :]).sum(-1)
    vn = np.sqrt((V * V).sum(-1))
    return (1 - dots / np.maximum(vn, np.float32(1e-30))).astype(np.float32)


@persistable
class HashIndex:
    """Approximate nearest-neighbour index over float vectors: binary search, then float re-rank.

    Vectors are encoded by ``hasher`` and searched by Hamming distance. With ``rerank`` > 0 the
    original vectors are kept (float32) and the ``rerank`` best Hamming candidates of each query are
    re-scored exactly — the standard "binary search, float rescore" recipe.

    Parameters
    ----------
    hasher : fitted or unfitted hashlearn hasher (e.g. ``make_hasher("simhash", n_bits=64)``)
        If unfitted, the first :meth:`add` fits it on the added vectors (see ``fit_on_add``), or
        :meth:`train` does.
    rerank : int, default 0
        Number of Hamming candidates re-scored per query (0: no re-ranking, return Hamming results;
        the vectors are then not stored).
    metric : {"l2", "ip", "cosine"}, default "l2"
        Metric of the re-ranking. Returned distances are squared L2, negative inner product, or
        1 - cosine, so smaller is always better.
    index : {"flat", "mih"}, default "flat"
        Hamming search structure.
    n_threads : int, optional
        Threads of the Hamming search (default: numba's setting).
    fit_on_add : bool, default True
        With an unfitted hasher, the first :meth:`add` fits it on the added vectors. ``False`` (needs
        ``rerank`` > 0): :meth:`add` only stores the vectors, and :meth:`train` or :meth:`set_hasher`
        encodes them later — vectors first, training when enough of them are there.

    Notes
    -----
    Rows live in one :class:`~hashlearn.index.flat.CodeStore` (codes, ids and vectors side by side):
    :meth:`remove` costs O(batch) — each freed row takes the last row — and results never depend on
    row order (Hamming ties go to the smaller id, re-ranked ties too).

    Examples
    --------
    >>> import numpy as np, hashlearn
    >>> X = np.random.default_rng(0).normal(size=(500, 16)).astype("float32")
    >>> index = hashlearn.HashIndex(hashlearn.make_hasher("simhash", n_bits=64, random_state=0), rerank=50)
    >>> _ = index.add(X)
    >>> D, I = index.search(X[:3], 1)
    >>> I[:, 0].tolist()
    [0, 1, 2]
    """

    def __init__(self, hasher, *, rerank: int = 0, metric: str = "l2", index: str = "flat", n_threads=None,
                 fit_on_add: bool = True):
        if not hasattr(hasher, "transform") or getattr(hasher, "input_kind", "vector") != "vector":
            raise ValidationError(f"HashIndex needs a vector hasher, got {type(hasher).__name__}")
        if isinstance(rerank, bool) or not isinstance(rerank, (int, np.integer)) or rerank < 0:
            raise ValidationError(f"rerank must be a non-negative integer, got {rerank!r}")
        if metric not in _METRICS:
            raise ValidationError(f"metric must be one of {', '.join(_METRICS)}, got {metric!r}")
        if index not in ("flat", "mih"):
            raise ValidationError(f"index must be 'flat' or 'mih', got {index!r}")
        if not isinstance(fit_on_add, (bool, np.bool_)):
            raise ValidationError(f"fit_on_add must be True or False, got {fit_on_add!r}")
        if not fit_on_add and not rerank:
            raise ValidationError("fit_on_add=False stores vectors until training: it needs rerank > 0")
        self.hasher = hasher
        self.rerank = int(rerank)
        self.metric = metric
        self.index = index
        self.n_threads = n_threads
        self.fit_on_add = bool(fit_on_add)
        self._store: CodeStore | None = None
        self._codes_index = None

    # -- internals ---------------------------------------------------------------------------------
    def _fitted(self) -> bool:
        return hasattr(self.hasher, "n_features_in_")

    def _keeps_vectors(self) -> bool:
        return self.rerank > 0

    def _wrap(self, store: CodeStore, like=None):
        """The Hamming index over ``store`` (a new wrapper object: derived tables start empty)."""
        if self.index == "flat":
            out = BinaryIndex(store.n_bits, n_threads=self.n_threads)
        else:
            out = MultiIndexHashing(store.n_bits, getattr(like, "n_substrings", None), n_threads=self.n_threads,
                                    probe_budget=getattr(like, "probe_budget", None))
        out._store = store
        return out

    def _ensure_index(self):
        if self._codes_index is None:
            dim = self.hasher.n_features_in_ if self._keeps_vectors() else None
            self._store = CodeStore(self.hasher.code_bits, dim=dim)
            self._codes_index = self._wrap(self._store)
        return self._codes_index

    def _encode_all(self, hasher, codes=None) -> np.ndarray:
        """Codes of every stored vector under ``hasher`` (checked if given precomputed)."""
        V = self.vectors
        from ..codes import check_codes

        if codes is None:
            codes = hasher.transform(V) if V.shape[0] else np.zeros((0, (hasher.code_bits + 63) // 64), np.uint64)
        codes = check_codes(codes, hasher.code_bits)
        if codes.shape[0] != V.shape[0]:
            raise ValidationError(f"codes has {codes.shape[0]} rows, the index holds {V.shape[0]} vectors")
        return codes

    # -- building --------------------------------------------------------------------------------
    def train(self, X) -> "HashIndex":
        """Fit the hasher on training vectors X (n, d); vectors already stored are re-encoded.

        An index that holds codes but no vectors (``rerank=0``) cannot re-encode them: it refuses to
        retrain rather than mix codes of two hashers.
        """
        if not self.ntotal:
            self.hasher.fit(X)  # in place, as scikit-learn estimators are fitted
            return self.set_hasher(self.hasher)
        if not self._keeps_vectors():
            raise ValidationError("this index holds codes but no vectors (rerank=0): it cannot be re-trained; "
                                  "build a new index")
        # A copy is fitted, so that a failed fit leaves the index and its current hasher as they were.
        from sklearn.base import clone

        hasher = clone(self.hasher)
        hasher.fit(X)
        return self.set_hasher(hasher)

    def set_hasher(self, hasher, *, codes=None) -> "HashIndex":
        """Use the fitted ``hasher`` from now on; every stored vector is re-encoded.

        Parameters
        ----------
        hasher : fitted vector hasher, for vectors of the stored dimension
        codes : (ntotal, n_words) uint64, optional
            ``hasher.transform(self.vectors)`` computed beforehand (so that a caller can do the work,
            and see it fail, before committing anything).
        """
        if not hasattr(hasher, "n_features_in_") or not hasattr(hasher, "transform"):
            raise NotFittedError(f"set_hasher needs a fitted vector hasher, got an unfitted {type(hasher).__name__}")
        if self.ntotal and not self._keeps_vectors():
            raise ValidationError("this index holds codes but no vectors (rerank=0): it cannot re-encode them")
        store = self._store
        if store is not None and store.dim is not None and store.ntotal and hasher.n_features_in_ != store.dim:
            raise ValidationError(f"the hasher was fitted on {hasher.n_features_in_}-dimensional vectors, the index "
                                  f"holds {store.dim}-dimensional ones")
        codes = self._encode_all(hasher, codes)
        # commit: plain assignments from here on
        if store is None or store.ntotal == 0:
            self.hasher, self._codes_index, self._store = hasher, None, None
            self._ensure_index()
            return self
        store.recode(codes, hasher.code_bits)
        self.hasher = hasher
        self._codes_index = self._wrap(store, like=self._codes_index)
        return self

    def encode(self, X) -> np.ndarray:
        """Codes of X (n, d) under the fitted hasher, X validated against it."""
        if not self._fitted():
            raise NotFittedError("the hasher is not fitted: add vectors or train the index first")
        X = check_vectors_array(X, name="X", n_features=self.hasher.n_features_in_)
        return self.hasher.transform(X)

    def add(self, X, ids=None, *, codes=None) -> np.ndarray:
        """Encode and add vectors X (n, d); returns the assigned int64 ids.

        Ids must be unique and not stored yet (remove an id first to replace its vector). ``codes``:
        ``self.encode(X)`` computed beforehand, used instead of encoding again. With an unfitted
        hasher the first call fits it (``fit_on_add``), or only stores the vectors.
        """
        if not self._fitted():
            if not self.fit_on_add:
                return self._add_unencoded(X, ids)
            self.hasher.fit(X)
        X = check_vectors_array(X, name="X", n_features=self.hasher.n_features_in_)
        if codes is None:
            codes = self.hasher.transform(X)
        index = self._ensure_index()
        start = self._store.ntotal
        ids = index.add(codes, ids)
        if self._keeps_vectors() and ids.shape[0]:
            self._store.set_vectors(start, X)
        return ids

    def _add_unencoded(self, X, ids) -> np.ndarray:
        X = check_vectors_array(X, name="X", n_features=None if self._store is None else self._store.dim)
        if self._store is None:
            self._store = CodeStore(0, dim=X.shape[1])
        return self._store.add(None, ids, vectors=X)

    def remove(self, ids) -> int:
        """Remove vectors by id in O(len(ids)); returns the number removed (unknown ids are ignored)."""
        if self._store is None:
            return 0
        if self._codes_index is None:
            return self._store.remove(ids)
        return self._codes_index.remove(ids)

    def reorder_by_id(self) -> None:
        """Put the rows back in id order (O(n log n)) after removals: Hamming ties are then broken by
        row, the faster path. Results do not change."""
        if self._store is None or self._store.ids_increasing:
            return
        self._store.sort_by_id()
        if self._codes_index is not None:
            self._codes_index = self._wrap(self._store, like=self._codes_index)

    @property
    def ntotal(self) -> int:
        return 0 if self._store is None else self._store.ntotal

    def __len__(self) -> int:
        return self.ntotal

    @property
    def ids(self) -> np.ndarray:
        """Stored ids in row order (int64)."""
        return np.zeros(0, np.int64) if self._store is None else self._store.ids

    @property
    def ids_in_order(self) -> bool:
        """True while rows are in increasing id order (always, until a removal swaps rows)."""
        return self._store is None or self._store.ids_increasing

    @property
    def vectors(self) -> np.ndarray:
        """Stored float32 vectors in row order, aligned with :attr:`ids` ((0, 0) when none are kept)."""
        if self._store is None or self._store.vectors is None:
            return np.zeros((0, 0), np.float32)
        return self._store.vectors

    @property
    def codes(self) -> np.ndarray:
        """Stored codes in row order, aligned with :attr:`ids` (empty until the hasher is fitted)."""
        return np.zeros((0, 0), np.uint64) if self._codes_index is None else self._store.codes

    @property
    def code_index(self):
        """The underlying :class:`BinaryIndex` or :class:`MultiIndexHashing`."""
        return self._ensure_index()

    def rows(self, ids) -> np.ndarray:
        """Rows of ``ids`` in :attr:`ids` / :attr:`vectors` (same shape); -1 for ids not stored."""
        ids = np.asarray(ids, np.int64)
        return np.full(ids.shape, -1, np.int64) if self._store is None else self._store.rows(ids)

    @property
    def nbytes(self) -> int:
        """Bytes of the row buffers (codes, ids, vectors)."""
        return 0 if self._store is None else self._store.nbytes

    # -- search ----------------------------------------------------------------------------------
    def search(self, Xq, k: int, *, rerank: int | None = None, subset=None):
        """k nearest neighbours of the queries Xq (nq, d).

        Parameters
        ----------
        Xq : (nq, d) float vectors
        k : int
        rerank : int, optional
            Candidates re-scored per query (default: the index's ``rerank``; 0: Hamming results).
            At most ``ntotal`` candidates are gathered whatever is asked.
        subset : array of int64 ids, optional
            Search only among these stored ids (others are ignored): the results are those of an
            index holding just these points.

        Returns
        -------
        (D, I): with re-ranking, float32 distances in the index metric; without, int32 Hamming
        distances. I holds int64 ids, -1 where fewer than k results exist.
        """
        if not self._fitted():
            raise NotFittedError("HashIndex is empty and its hasher is not fitted: add vectors first")
        k = _check_k(k)
        if rerank is not None and (isinstance(rerank, bool) or not isinstance(rerank, (int, np.integer)) or rerank < 0):
            raise ValidationError(f"rerank must be a non-negative integer, got {rerank!r}")
        rerank = self.rerank if rerank is None else int(rerank)
        if rerank and not self.rerank:
            raise ValidationError("this index was built with rerank=0, so it holds no vectors to re-rank")
        Xq = check_vectors_array(Xq, name="queries", n_features=self.hasher.n_features_in_)
        qcodes = self.hasher.transform(Xq)
        index = self._ensure_index()
        if not rerank:
            return self._hamming(index, qcodes, k, subset)
        n = self.ntotal if subset is None else int(np.asarray(subset).size)
        _, cand = self._hamming(index, qcodes, max(k, min(rerank, max(n, 1))), subset)
        return self._rerank(Xq, cand, k)

    def _hamming(self, index, qcodes, k, subset):
        if subset is None:
            return index.search(qcodes, k)
        from ..codes import MISSING_DISTANCE, knn_search

        store = self._store
        rows = store.rows(np.unique(np.asarray(subset, np.int64).ravel()))
        rows = np.sort(rows[rows >= 0])
        nq = qcodes.shape[0]
        if rows.size == 0:
            return np.full((nq, k), MISSING_DISTANCE, np.int32), np.full((nq, k), -1, np.int64)
        sub_ids = store.ids[rows]
        D, P = knn_search(qcodes, store.codes[rows], k, n_bits=store.n_bits, tie_ids=sub_ids,
                          n_threads=self.n_threads)
        return D, np.where(P >= 0, sub_ids[np.maximum(P, 0)], -1)

    def _rerank(self, Xq: np.ndarray, cand: np.ndarray, k: int):
        nq, c = cand.shape
        if self.ntotal == 0:
            return np.full((nq, k), np.inf, np.float32), np.full((nq, k), -1, np.int64)
        valid = cand >= 0
        rows = self._store.rows(np.where(valid, cand, 0))
        rows[~valid] = 0
        V = self._store.vectors
        d = V.shape[1]
        dist = np.empty((nq, c), np.float32)
        # Streamed in blocks of queries (and of candidates, for very many): memory stays
        # O(RERANK_BLOCK_FLOATS) whatever nq × c × d is.
        cb = min(c, max(1, RERANK_BLOCK_FLOATS // max(d, 1)))
        qb = max(1, RERANK_BLOCK_FLOATS // max(cb * d, 1)) if cb == c else 1
        for q0 in range(0, nq, qb):
            q1 = min(nq, q0 + qb)
            for c0 in range(0, c, cb):
                c1 = min(c, c0 + cb)
                dist[q0:q1, c0:c1] = rerank_distances(Xq[q0:q1], V[rows[q0:q1, c0:c1]], self.metric)
        dist[~valid] = np.inf
        # Sort by (distance, id) so ties are deterministic.
        order = np.lexsort((np.where(valid, cand, np.iinfo(np.int64).max), dist), axis=1)[:, :k]
        D = np.take_along_axis(dist, order, 1)
        I = np.take_along_axis(cand, order, 1)
        if k > c:
            D = np.pad(D, ((0, 0), (0, k - c)), constant_values=np.inf)
            I = np.pad(I, ((0, 0), (0, k - c)), constant_values=-1)
        I[~np.isfinite(D)] = -1
        return D, I

    # -- persistence -----------------------------------------------------------------------------
    def _get_state(self) -> dict:
        state = {
            "hasher": self.hasher,
            "rerank": self.rerank,
            "metric": self.metric,
            "index": self.index,
            "n_threads": self.n_threads,
            "fit_on_add": self.fit_on_add,
            "codes_index": self._codes_index,
            "vectors": self.vectors,
        }
        if self._codes_index is None and self.ntotal:  # vectors stored before the hasher was fitted
            state["pending_ids"] = self._store.ids
        return state

    @classmethod
    def _from_state(cls, state: dict) -> "HashIndex":
        obj = cls(state["hasher"], rerank=state["rerank"], metric=state["metric"], index=state["index"],
                  n_threads=state["n_threads"], fit_on_add=state.get("fit_on_add", True))
        codes_index, vectors = state["codes_index"], state["vectors"]
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise ValidationError("stored vectors must be a 2-D array")
        if codes_index is not None:
            expected = (BinaryIndex if obj.index == "flat" else MultiIndexHashing)
            if type(codes_index) is not expected or not obj._fitted():
                raise ValidationError(f"codes_index must be a {expected.__name__} with a fitted hasher")
            if codes_index.n_bits != obj.hasher.code_bits:
                raise ValidationError(f"the code index has {codes_index.n_bits} bits, the hasher makes {obj.hasher.code_bits}")
            obj._codes_index, obj._store = codes_index, codes_index._store
            if obj._keeps_vectors():
                if vectors.shape[0] != codes_index.ntotal or (vectors.shape[0] and vectors.shape[1] != obj.hasher.n_features_in_):
                    raise ValidationError("stored vectors do not match the number of codes")
                obj._store.attach_vectors(vectors.astype(np.float32, copy=False)
                                          if vectors.shape[0] else np.zeros((0, obj.hasher.n_features_in_), np.float32))
        elif "pending_ids" in state:
            ids = state["pending_ids"]
            if not obj._keeps_vectors() or not isinstance(ids, np.ndarray) or ids.shape != (vectors.shape[0],):
                raise ValidationError("pending ids do not match the stored vectors")
            obj._store = CodeStore(0, dim=vectors.shape[1])
            obj._store.add(None, ids, vectors=vectors)
        return obj

    def __repr__(self) -> str:
        return (f"HashIndex({type(self.hasher).__name__}, n_bits={getattr(self.hasher, 'n_bits', '?')}, "
                f"rerank={self.rerank}, ntotal={self.ntotal})")

