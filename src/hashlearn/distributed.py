"""A sharded index on Ray: parallel encoding, shards held in actors, exact scatter-gather top-k.

When one process is not enough, :class:`ShardedIndex` splits a dataset (an array, a ``.npy`` file or
a Parquet file) into chunks, encodes the chunks in parallel Ray tasks (each task reads its own rows
from the file, so the data never passes through the driver), and sends each chunk's codes straight
to one of ``n_shards`` actors. A query batch is encoded once, scattered to every shard, and the
per-shard top-k lists are merged exactly by (distance, id), so the result is *identical* to one
:class:`hashlearn.index.HashIndex` over the same data with the same fitted hasher — including the
re-ranked mode, which first merges the global Hamming candidate list and then lets each shard score
the candidates it owns with the same arithmetic as ``HashIndex``.

Works the same on one machine (``ray.init()``, as in the tests) and on a cluster (``ray.init(address=...)``).
Extra ``[distributed]`` (Ray). Ray is imported only when an index is built.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .codes import MISSING_DISTANCE
from .errors import DataFileError, NotFittedError, ValidationError
from .hashing.base import check_vectors_array
from .index.hashindex import rerank_distances

__all__ = ["ShardedIndex", "merge_topk"]

_METRICS = ("l2", "ip", "cosine")


def merge_topk(D_parts, I_parts, k: int):
    """Merge per-shard top-k lists into the global top-k, ordered by (distance, id).

    Parameters
    ----------
    D_parts, I_parts : lists of (nq, k_s) arrays; ids are unique across parts, ``-1`` marks no result

    Returns
    -------
    (D, I) of shape (nq, k). Because every part is itself the exact top-k of its shard under the same
    order, the merge is the exact top-k of the union.
    """
    D = np.concatenate(D_parts, axis=1)
    I = np.concatenate(I_parts, axis=1)
    key_id = np.where(I >= 0, I, np.iinfo(np.int64).max)
    order = np.lexsort((key_id, D), axis=1)[:, :k]
    D, I = np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)
    if D.shape[1] < k:
        pad = k - D.shape[1]
        fill = MISSING_DISTANCE if D.dtype.kind == "i" else np.inf
        D = np.pad(D, ((0, 0), (0, pad)), constant_values=fill)
        I = np.pad(I, ((0, 0), (0, pad)), constant_values=-1)
    return D, I


# -- sources --------------------------------------------------------------------------------------------
def _describe_source(data, vector_column):
    """(kind, n_rows, dim, chunk descriptors) of an array, .npy or Parquet source."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_file():
            raise DataFileError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            arr = np.load(path, mmap_mode="r")
            if arr.ndim != 2:
                raise DataFileError(f"{path}: expected a 2-D array of vectors, got shape {arr.shape}")
            return "npy", arr.shape[0], arr.shape[1], str(path)
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                meta = pq.ParquetFile(path).metadata
            except Exception as exc:  # pyarrow raises several types
                raise DataFileError(f"{path}: not a valid Parquet file ({exc})") from None
            return "parquet", meta.num_rows, None, str(path)
        raise DataFileError(f"{path}: unsupported extension {suffix!r}; expected .npy or .parquet")
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ValidationError(f"data must be a 2-D array (n, d), got shape {arr.shape}")
    return "array", arr.shape[0], arr.shape[1], None


def _read_rows(kind, source, start, stop, vector_column, columns):
    if kind == "npy":
        return np.asarray(np.load(source, mmap_mode="r")[start:stop])
    if kind == "parquet":
        return _read_parquet_rows(source, start, stop, vector_column, columns)
    return np.asarray(source[start:stop])


def _read_parquet_rows(path, start, stop, vector_column, columns):
    import pyarrow.parquet as pq

    from .io.readers import _arrow_vector_column

    pf = pq.ParquetFile(path)
    tables, offset = [], 0
    cols = [vector_column] if vector_column else columns
    for g in range(pf.num_row_groups):
        rows = pf.metadata.row_group(g).num_rows
        if offset + rows > start and offset < stop:
            t = pf.read_row_group(g, columns=cols)
            tables.append(t.slice(max(0, start - offset), min(rows, stop - offset) - max(0, start - offset)))
        offset += rows
    import pyarrow as pa

    table = pa.concat_tables(tables)
    if vector_column:
        return _arrow_vector_column(table.column(vector_column).combine_chunks(), Path(path), vector_column)
    names = columns or table.column_names
    return np.column_stack([table.column(c).to_numpy() for c in names]).astype(np.float32)


def _encode_chunk(hasher, kind, source, start, stop, keep_vectors, vector_column, columns):
    X = _read_rows(kind, source, start, stop, vector_column, columns)
    X = check_vectors_array(X, name=f"rows {start}:{stop}", n_features=hasher.n_features_in_)
    codes = hasher.transform(X)
    ids = np.arange(start, stop, dtype=np.int64)
    return ids, codes, (X if keep_vectors else None)


class _ShardImpl:
    """State of one shard (wrapped as a Ray actor): a BinaryIndex and, for re-ranking, the vectors."""

    def __init__(self, n_bits: int, keep_vectors: bool, metric: str, n_threads):
        self.reset(n_bits, keep_vectors, metric, n_threads)

    def reset(self, n_bits: int, keep_vectors: bool, metric: str, n_threads) -> bool:
        from .index import BinaryIndex

        self.index = BinaryIndex(n_bits, n_threads=n_threads)
        self.keep_vectors = keep_vectors
        self.metric = metric
        self.parts: list[np.ndarray] = []
        self.vectors = None
        self.sorted = None
        return True

    def add(self, chunk) -> int:
        ids, codes, X = chunk
        self.index.add(codes, ids)
        if self.keep_vectors:
            self.parts.append(X)
            self.vectors, self.sorted = None, None
        return int(ids.shape[0])

    def ntotal(self) -> int:
        return self.index.ntotal

    def search(self, qcodes, k):
        return self.index.search(qcodes, k)

    def score(self, Xq, cand):
        """Exact distances of the candidates this shard owns (inf elsewhere), same arithmetic as HashIndex."""
        if self.vectors is None:
            self.vectors = np.concatenate(self.parts) if self.parts else np.zeros((0, Xq.shape[1]), np.float32)
            order = np.argsort(self.index.ids, kind="stable")
            self.sorted = (self.index.ids[order], order)
        sorted_ids, order = self.sorted
        mine = np.zeros(cand.shape, bool)
        pos = np.zeros(cand.shape, np.int64)
        if sorted_ids.shape[0]:
            where = np.minimum(np.searchsorted(sorted_ids, cand), sorted_ids.shape[0] - 1)
            mine = (cand >= 0) & (sorted_ids[where] == cand)
            pos[mine] = order[where[mine]]
        V = np.where(mine[..., None], self.vectors[pos] if self.vectors.shape[0] else 0, 0).astype(np.float32)
        return np.where(mine, rerank_distances(Xq, V, self.metric), np.inf).astype(np.float32)


class ShardedIndex:
    """Hash-code index split over Ray actors; searches give the same results as one ``HashIndex``.

    Parameters
    ----------
    hasher : a *fitted* hashlearn vector hasher (fit it on a sample first; it is shipped to every task)
    n_shards : int, default 2
        Number of shard actors; rows are assigned to shards chunk by chunk, round-robin.
    rerank : int, default 0
        As in :class:`hashlearn.index.HashIndex`: 0 returns Hamming results; > 0 keeps the vectors in
        the shards and re-scores the ``rerank`` best Hamming candidates of each query exactly.
    metric : {"l2", "ip", "cosine"}, default "l2"
    chunk_rows : int, default 50_000
        Rows per encoding task.
    shard_threads : int, optional
        Threads each shard uses for its Hamming search (default: numba's default).

    Attributes
    ----------
    ntotal : int
        Vectors indexed.
    build_seconds_ : float
        Wall time of the last :meth:`build`.

    Examples
    --------
    >>> import ray, numpy as np, hashlearn                                 # doctest: +SKIP
    >>> ray.init(num_cpus=2, include_dashboard=False)                      # doctest: +SKIP
    >>> X = np.random.default_rng(0).normal(size=(10000, 32)).astype("float32")  # doctest: +SKIP
    >>> h = hashlearn.make_hasher("simhash", n_bits=64, random_state=0).fit(X[:1000])  # doctest: +SKIP
    >>> index = ShardedIndex(h, n_shards=2).build(X)                      # doctest: +SKIP
    >>> D, I = index.search(X[:5], 10)                                     # doctest: +SKIP

    Notes
    -----
    The merge is exact: every shard returns its own top-k' under the order (distance, id), and the
    driver keeps the k' smallest of the union under the same order — which is the top-k' of the whole
    dataset. With re-ranking the global top-``rerank`` Hamming candidates are formed first (as a single
    index would), then scored by the shards that own them.
    """

    def __init__(self, hasher, *, n_shards: int = 2, rerank: int = 0, metric: str = "l2", chunk_rows: int = 50_000,
                 shard_threads: int | None = None):
        self.hasher = hasher
        self.n_shards = n_shards
        self.rerank = rerank
        self.metric = metric
        self.chunk_rows = chunk_rows
        self.shard_threads = shard_threads
        self._shards = []
        self.ntotal = 0

    def _check(self):
        if not hasattr(self.hasher, "n_features_in_"):
            raise NotFittedError("ShardedIndex needs a fitted hasher: fit it on a sample of the data first")
        for name in ("n_shards", "chunk_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.rerank, bool) or not isinstance(self.rerank, (int, np.integer)) or self.rerank < 0:
            raise ValidationError(f"rerank must be a non-negative integer, got {self.rerank!r}")
        if self.metric not in _METRICS:
            raise ValidationError(f"metric must be one of {', '.join(_METRICS)}, got {self.metric!r}")

    def build(self, data, *, vector_column: str | None = None, columns: list[str] | None = None) -> "ShardedIndex":
        """Encode ``data`` in parallel and fill the shards; ids are row numbers 0..n-1.

        Parameters
        ----------
        data : (n, d) array, or path of a ``.npy`` file (memory-mapped by each task) or a Parquet file
            (a list column named by ``vector_column``, or numeric ``columns``)
        """
        import ray

        self._check()
        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        t0 = time.perf_counter()
        kind, n, dim, path = _describe_source(data, vector_column)
        if n == 0:
            raise ValidationError("data is empty")
        if dim is not None and dim != self.hasher.n_features_in_:
            raise ValidationError(f"data has {dim} features but the hasher was fitted on {self.hasher.n_features_in_}")
        keep = self.rerank > 0
        shard_args = (self.hasher.code_bits, keep, self.metric, self.shard_threads)
        if len(self._shards) == self.n_shards:  # rebuild: empty the running actors, keep their processes
            ray.get([s.reset.remote(*shard_args) for s in self._shards])
        else:
            self.close()
            Shard = ray.remote(_ShardImpl)
            self._shards = [Shard.remote(*shard_args) for _ in range(self.n_shards)]
        self.ntotal = 0
        encode = ray.remote(_encode_chunk)
        hasher_ref = ray.put(self.hasher)
        source = path if path is not None else ray.put(np.ascontiguousarray(data))
        adds = []
        for c, start in enumerate(range(0, n, self.chunk_rows)):
            stop = min(n, start + self.chunk_rows)
            chunk = encode.remote(hasher_ref, kind, source, start, stop, keep, vector_column, columns)
            adds.append(self._shards[c % self.n_shards].add.remote(chunk))
        try:
            self.ntotal = int(sum(ray.get(adds)))
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            self.close()
            raise cause from None
        self.build_seconds_ = time.perf_counter() - t0
        return self

    def search(self, Xq, k: int, *, rerank: int | None = None):
        """k nearest neighbours of Xq (nq, d): (D, I) exactly as ``HashIndex.search`` would return them."""
        import ray

        if not self._shards:
            raise NotFittedError("ShardedIndex is empty: call build() first")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValidationError(f"k must be a positive integer, got {k!r}")
        rerank = self.rerank if rerank is None else rerank
        if isinstance(rerank, bool) or not isinstance(rerank, (int, np.integer)) or rerank < 0:
            raise ValidationError(f"rerank must be a non-negative integer, got {rerank!r}")
        if rerank and not self.rerank:
            raise ValidationError("this index was built with rerank=0, so it holds no vectors to re-rank")
        Xq = check_vectors_array(Xq, name="queries", n_features=self.hasher.n_features_in_)
        qcodes = self.hasher.transform(Xq)
        kk = max(k, rerank) if rerank else k
        q_ref = ray.put(qcodes)
        parts = ray.get([s.search.remote(q_ref, kk) for s in self._shards])
        D, I = merge_topk([p[0] for p in parts], [p[1] for p in parts], kk)
        if not rerank:
            return D, I
        x_ref, c_ref = ray.put(Xq), ray.put(I)
        scores = ray.get([s.score.remote(x_ref, c_ref) for s in self._shards])
        dist = np.minimum.reduce(scores)
        order = np.lexsort((np.where(I >= 0, I, np.iinfo(np.int64).max), dist), axis=1)[:, :k]
        Dr, Ir = np.take_along_axis(dist, order, 1), np.take_along_axis(I, order, 1)
        Ir[~np.isfinite(Dr)] = -1
        return Dr, Ir

    def shard_sizes(self) -> list[int]:
        import ray

        return ray.get([s.ntotal.remote() for s in self._shards])

    def close(self) -> None:
        """Stop the shard actors."""
        if self._shards:
            import ray

            for s in self._shards:
                try:
                    ray.kill(s)
                except Exception:  # pragma: no cover - actor already gone
                    pass
        self._shards = []
        self.ntotal = 0

    def __repr__(self) -> str:
        return f"ShardedIndex(n_shards={self.n_shards}, rerank={self.rerank}, ntotal={self.ntotal})"
