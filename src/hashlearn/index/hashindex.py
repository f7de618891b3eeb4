"""HashIndex: a fitted hasher, its codes, and optionally the float vectors for exact re-ranking."""

from __future__ import annotations

import numpy as np

from ..errors import NotFittedError, ValidationError
from ..hashing.base import check_vectors_array
from ..io.persist import persistable
from .flat import BinaryIndex, _check_k
from .mih import MultiIndexHashing

__all__ = ["HashIndex"]

_METRICS = ("l2", "ip", "cosine")


def rerank_distances(Xq: np.ndarray, V: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances of each query to its candidates' vectors.

    Xq: (nq, d) float32 queries; V: (nq, c, d) float32 candidate vectors. Returns (nq, c): squared L2
    for ``"l2"``, negated inner product for ``"ip"``, 1 - cosine for ``"cosine"`` (smaller is closer).
    """
    if metric == "l2":
        dist = np.einsum("qcd,qcd->qc", V, V) - 2 * np.einsum("qcd,qd->qc", V, Xq) + (Xq * Xq).sum(1)[:, None]
        return np.maximum(dist, 0)
    if metric == "ip":
        return -np.einsum("qcd,qd->qc", V, Xq)
    qn = Xq / np.maximum(np.linalg.norm(Xq, axis=1, keepdims=True), 1e-30)
    vn = np.linalg.norm(V, axis=2)
    return 1 - np.einsum("qcd,qd->qc", V, qn) / np.maximum(vn, 1e-30)


@persistable
class HashIndex:
    """Approximate nearest-neighbour index over float vectors: binary search, then float re-rank.

    Vectors are encoded by ``hasher`` and searched by Hamming distance. With ``rerank`` > 0 the
    original vectors are kept (float32) and the ``rerank`` best Hamming candidates of each query are
    re-scored exactly — the standard "binary search, float rescore" recipe.

    Parameters
    ----------
    hasher : fitted or unfitted hashlearn hasher (e.g. ``make_hasher("simhash", n_bits=64)``)
        If unfitted, the first :meth:`add` (or :meth:`train`) fits it on the added vectors.
    rerank : int, default 0
        Number of Hamming candidates re-scored per query (0: no re-ranking, return Hamming results;
        the vectors are then not stored).
    metric : {"l2", "ip", "cosine"}, default "l2"
        Metric of the re-ranking. Returned distances are squared L2, negative inner product, or
        1 - cosine, so smaller is always better.
    index : {"flat", "mih"}, default "flat"
        Hamming search structure.

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

    def __init__(self, hasher, *, rerank: int = 0, metric: str = "l2", index: str = "flat", n_threads=None):
        if not hasattr(hasher, "transform") or getattr(hasher, "input_kind", "vector") != "vector":
            raise ValidationError(f"HashIndex needs a vector hasher, got {type(hasher).__name__}")
        if not isinstance(rerank, (int, np.integer)) or rerank < 0:
            raise ValidationError(f"rerank must be a non-negative integer, got {rerank!r}")
        if metric not in _METRICS:
            raise ValidationError(f"metric must be one of {', '.join(_METRICS)}, got {metric!r}")
        if index not in ("flat", "mih"):
            raise ValidationError(f"index must be 'flat' or 'mih', got {index!r}")
        self.hasher = hasher
        self.rerank = int(rerank)
        self.metric = metric
        self.index = index
        self.n_threads = n_threads
        self._codes_index = None
        self._vectors = np.zeros((0, 0), np.float32)
        self._pos_of_id = None

    # -- building --------------------------------------------------------------------------------
    def _fitted(self) -> bool:
        return hasattr(self.hasher, "n_features_in_")

    def train(self, X) -> "HashIndex":
        """Fit the hasher on training vectors X (n, d)."""
        self.hasher.fit(X)
        return self

    def _ensure_index(self):
        if self._codes_index is None:
            n_bits = self.hasher.code_bits
            cls = BinaryIndex if self.index == "flat" else MultiIndexHashing
            self._codes_index = cls(n_bits, n_threads=self.n_threads)
        return self._codes_index

    def add(self, X, ids=None) -> np.ndarray:
        """Encode and add vectors X (n, d); returns the assigned int64 ids."""
        if not self._fitted():
            self.hasher.fit(X)
        X = check_vectors_array(X, name="X", n_features=self.hasher.n_features_in_)
        codes = self.hasher.transform(X)
        ids = self._ensure_index().add(codes, ids)
        if self.rerank:
            self._vectors = X.copy() if self._vectors.size == 0 else np.concatenate([self._vectors, X])
            self._pos_of_id = None
        return ids

    def remove(self, ids) -> int:
        """Remove vectors by id; returns the number removed."""
        if self._codes_index is None:
            return 0
        if self.rerank:
            keep = ~np.isin(self._codes_index.ids, np.asarray(ids, dtype=np.int64))
        n = self._codes_index.remove(ids)
        if n and self.rerank:
            self._vectors = np.ascontiguousarray(self._vectors[keep])
            self._pos_of_id = None
        return n

    @property
    def ntotal(self) -> int:
        return 0 if self._codes_index is None else self._codes_index.ntotal

    def __len__(self) -> int:
        return self.ntotal

    @property
    def code_index(self):
        """The underlying :class:`BinaryIndex` or :class:`MultiIndexHashing`."""
        return self._ensure_index()

    # -- search ----------------------------------------------------------------------------------
    def search(self, Xq, k: int, *, rerank: int | None = None):
        """k nearest neighbours of the queries Xq (nq, d).

        Returns (D, I): with re-ranking, float32 distances in the index metric; without, int32
        Hamming distances. I holds int64 ids, -1 where fewer than k results exist.
        """
        if not self._fitted():
            raise NotFittedError("HashIndex is empty and its hasher is not fitted: add vectors first")
        k = _check_k(k)
        if rerank is not None and (not isinstance(rerank, (int, np.integer)) or rerank < 0):
            raise ValidationError(f"rerank must be a non-negative integer, got {rerank!r}")
        rerank = self.rerank if rerank is None else int(rerank)
        if rerank and not self.rerank:
            raise ValidationError("this index was built with rerank=0, so it holds no vectors to re-rank")
        Xq = check_vectors_array(Xq, name="queries", n_features=self.hasher.n_features_in_)
        qcodes = self.hasher.transform(Xq)
        index = self._ensure_index()
        if not rerank:
            return index.search(qcodes, k)
        _, cand = index.search(qcodes, max(k, rerank))
        return self._rerank(Xq, cand, k)

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        index_ids = self._codes_index.ids
        if self._pos_of_id is None:
            order = np.argsort(index_ids, kind="stable")
            self._pos_of_id = (index_ids[order], order)
        sorted_ids, order = self._pos_of_id
        return order[np.searchsorted(sorted_ids, ids)]

    def _rerank(self, Xq: np.ndarray, cand: np.ndarray, k: int):
        nq, c = cand.shape
        if self.ntotal == 0:
            return np.full((nq, k), np.inf, np.float32), np.full((nq, k), -1, np.int64)
        valid = cand >= 0
        pos = np.zeros_like(cand)
        pos[valid] = self._positions(cand[valid])
        V = self._vectors[pos]  # (nq, c, d)
        dist = np.where(valid, rerank_distances(Xq, V, self.metric), np.inf).astype(np.float32)
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
        return {
            "hasher": self.hasher,
            "rerank": self.rerank,
            "metric": self.metric,
            "index": self.index,
            "n_threads": self.n_threads,
            "codes_index": self._codes_index,
            "vectors": self._vectors,
        }

    @classmethod
    def _from_state(cls, state: dict) -> "HashIndex":
        obj = cls(state["hasher"], rerank=state["rerank"], metric=state["metric"], index=state["index"],
                  n_threads=state["n_threads"])
        obj._codes_index = state["codes_index"]
        obj._vectors = state["vectors"]
        if obj.rerank and obj._codes_index is not None and obj._vectors.shape[0] != obj._codes_index.ntotal:
            raise ValueError("stored vectors do not match the number of codes")
        return obj

    def __repr__(self) -> str:
        return f"HashIndex({type(self.hasher).__name__}, n_bits={getattr(self.hasher, 'n_bits', '?')}, rerank={self.rerank}, ntotal={self.ntotal})"
