"""A sharded index on Ray: parallel encoding, shards held in actors, exact scatter-gather top-k.

When one process is not enough, :class:`ShardedIndex` splits a dataset (an array, a ``.npy`` file or
a Parquet file) into chunks, encodes the chunks in parallel Ray tasks (each task reads its own rows
from the file, so the data never passes through the driver), and sends each chunk's codes straight
to one of ``n_shards`` actors. A query batch is encoded once, scattered to every shard, and the
per-shard top-k lists are merged exactly by (distance, id), so the result is *identical* to one
:class:`hashlearn.index.HashIndex` over the same data with the same fitted hasher — including the
re-ranked mode, which first merges the global Hamming candidate list and then lets each shard score
the candidates it owns with the same arithmetic as ``HashIndex``.

The model can also be a fitted quantizer (:class:`~hashlearn.quantize.PQ`, ``OPQ``, ``RQ``: flat ADC
scan, the query tables computed once on the driver and sent to every shard) or a *trained*
:class:`~hashlearn.index.ivf.IVFIndex` (train once on a sample; every shard holds an empty copy of it
and fills its lists with its rows; each shard probes the same lists, so the merge of the shard top-k
lists equals one IVFIndex over all the rows).

Works the same on one machine (``ray.init()``, as in the tests) and on a cluster (``ray.init(address=...)``).
Extra ``[distributed]`` (Ray). Ray is imported only after the arguments are checked, when an index is
built or searched.
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


def _model_kind(model) -> str:
    """``"hash"`` (binary hasher), ``"quant"`` (flat quantizer) or ``"ivf"`` (IVFIndex)."""
    from .index.ivf import IVFIndex
    from .quantize.base import BaseQuantizer

    if isinstance(model, IVFIndex):
        return "ivf"
    if isinstance(model, BaseQuantizer):
        return "quant"
    return "hash"


def _model_dim(model) -> int:
    return model.d if _model_kind(model) == "ivf" else int(model.n_features_in_)


def _check_model(model) -> str:
    """The kind of a usable model; NotFittedError / ValidationError naming what is missing otherwise."""
    kind = _model_kind(model)
    if kind == "ivf":
        if not model.is_trained:
            raise NotFittedError("ShardedIndex needs a trained IVFIndex: call train() on a sample of the data first")
        if model.ntotal:
            raise ValidationError(f"ShardedIndex needs an empty trained IVFIndex (the shards hold the vectors); "
                                  f"this one holds {model.ntotal}: call reset() first")
    elif kind == "quant":
        from .quantize import BalancedKMeans

        if isinstance(model, BalancedKMeans):
            raise ValidationError("a BalancedKMeans gives list ids, not codes to search: use it as the coarse "
                                  "quantizer of an IVFIndex")
        if not hasattr(model, "fingerprint_"):
            raise NotFittedError(f"ShardedIndex needs a fitted {type(model).__name__}: fit it on a sample first")
        if getattr(model, "metric", "l2") != "l2":
            raise ValidationError(f"{type(model).__name__} ranks by inner product; ShardedIndex scans squared-L2 "
                                  "ADC distances (PQ, OPQ, RQ)")
    elif not hasattr(model, "n_features_in_"):
        raise NotFittedError("ShardedIndex needs a fitted hasher: fit it on a sample of the data first")
    return kind


def _encode_chunk(hasher, kind, source, start, stop, keep_vectors, vector_column, columns):
    """(ids, codes or vectors, vectors to keep) of rows start:stop; an IVF shard encodes its rows itself."""
    X = _read_rows(kind, source, start, stop, vector_column, columns)
    X = check_vectors_array(X, name=f"rows {start}:{stop}", n_features=_model_dim(hasher))
    ids = np.arange(start, stop, dtype=np.int64)
    if _model_kind(hasher) == "ivf":
        return ids, X, None
    codes = hasher.transform(X)
    if _model_kind(hasher) == "quant":
        codes = np.asarray(codes).view(np.ndarray)
    return ids, codes, (X if keep_vectors else None)


class _QuantShard:
    """One shard of quantizer codes: ADC scan with the driver's query tables, ties by id."""

    def __init__(self, quantizer):
        self.quantizer = quantizer
        self.reset()

    def reset(self, *_args) -> bool:
        self.parts: list[tuple] = []
        self.merged = None
        return True

    def add(self, chunk) -> int:
        ids, codes, _ = chunk
        self.parts.append((ids, codes))
        self.merged = None
        return int(ids.shape[0])

    def _data(self):
        if self.merged is None:
            q = self.quantizer
            if self.parts:
                ids = np.concatenate([p[0] for p in self.parts])
                codes = np.ascontiguousarray(np.concatenate([p[1] for p in self.parts]))
            else:
                ids, codes = np.zeros(0, np.int64), np.zeros((0, q.n_codes), np.uint8)
            bias = q._code_bias(codes) if codes.shape[0] else None
            self.merged = (ids, codes, bias)
        return self.merged

    def ntotal(self) -> int:
        return int(sum(p[0].shape[0] for p in self.parts))

    def search(self, tables, k):
        from .quantize import adc_search

        ids, codes, bias = self._data()
        nq = tables.shape[0]
        if codes.shape[0] == 0:
            return np.full((nq, k), np.inf, np.float32), np.full((nq, k), -1, np.int64)
        D, pos = adc_search(tables, codes, k, bias=bias, tie_ids=ids)
        return D, np.where(pos >= 0, ids[np.maximum(pos, 0)], -1)


class _IVFShard:
    """One shard of an IVF index: an empty copy of the trained IVFIndex filled with this shard's rows."""

    def __init__(self, ivf):
        self.template = ivf
        self.reset()

    def reset(self, *_args) -> bool:
        import copy

        self.index = copy.deepcopy(self.template)
        self.index.reset()
        return True

    def add(self, chunk) -> int:
        ids, X, _ = chunk
        self.index.add(X, ids)
        return int(ids.shape[0])

    def ntotal(self) -> int:
        return self.index.ntotal

    def search(self, Xq, k, nprobe):
        return self.index.search(Xq, k, nprobe=nprobe)


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
    """Code index split over Ray actors; searches give the same results as one index on one machine.

    Parameters
    ----------
    hasher : a *fitted* hashlearn vector hasher (results as one ``HashIndex``), a fitted quantizer
        ``PQ``/``OPQ``/``RQ`` (results as its exhaustive ``search``, ids = row numbers), or a trained,
        empty :class:`~hashlearn.index.ivf.IVFIndex` (results as that IVFIndex filled with every row);
        fit or train it on a sample first — it is shipped to every task and shard
    n_shards : int, default 2
        Number of shard actors; rows are assigned to shards chunk by chunk, round-robin.
    rerank : int, default 0
        As in :class:`hashlearn.index.HashIndex`: 0 returns Hamming results; > 0 keeps the vectors in
        the shards and re-scores the ``rerank`` best Hamming candidates of each query exactly
        (hashers only).
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
        self._shard_key = None
        self.ntotal = 0

    def _check(self) -> str:
        kind = _check_model(self.hasher)
        for name in ("n_shards", "chunk_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.rerank, bool) or not isinstance(self.rerank, (int, np.integer)) or self.rerank < 0:
            raise ValidationError(f"rerank must be a non-negative integer, got {self.rerank!r}")
        if self.metric not in _METRICS:
            raise ValidationError(f"metric must be one of {', '.join(_METRICS)}, got {self.metric!r}")
        if self.rerank and kind != "hash":
            raise ValidationError(f"rerank applies to binary hash codes; a {type(self.hasher).__name__} is searched "
                                  "by its own distances (use rerank=0)")
        return kind

    def build(self, data, *, vector_column: str | None = None, columns: list[str] | None = None) -> "ShardedIndex":
        """Encode ``data`` in parallel and fill the shards; ids are row numbers 0..n-1.

        Parameters
        ----------
        data : (n, d) array, or path of a ``.npy`` file (memory-mapped by each task) or a Parquet file
            (a list column named by ``vector_column``, or numeric ``columns``)
        """
        model_kind = self._check()
        t0 = time.perf_counter()
        kind, n, dim, path = _describe_source(data, vector_column)
        if n == 0:
            raise ValidationError("data is empty")
        if dim is not None and dim != _model_dim(self.hasher):
            raise ValidationError(f"data has {dim} features but the model was fitted on {_model_dim(self.hasher)}")
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        keep = self.rerank > 0
        if model_kind == "hash":
            shard_cls, shard_args = _ShardImpl, (self.hasher.code_bits, keep, self.metric, self.shard_threads)
        else:
            shard_cls, shard_args = (_IVFShard if model_kind == "ivf" else _QuantShard), (self.hasher,)
        if len(self._shards) == self.n_shards and self._shard_key == (shard_cls, id(self.hasher)):
            # rebuild: empty the running actors, keep their processes
            ray.get([s.reset.remote(*shard_args) for s in self._shards])
        else:
            self.close()
            Shard = ray.remote(shard_cls)
            self._shards = [Shard.remote(*shard_args) for _ in range(self.n_shards)]
            self._shard_key = (shard_cls, id(self.hasher))
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

    def search(self, Xq, k: int, *, rerank: int | None = None, nprobe: int | None = None):
        """k nearest neighbours of Xq (nq, d): (D, I) exactly as the single index would return them.

        ``nprobe`` (IVF models only): lists probed per query (default: the IVFIndex's own).
        """
        if not self._shards:
            raise NotFittedError("ShardedIndex is empty: call build() first")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValidationError(f"k must be a positive integer, got {k!r}")
        rerank = self.rerank if rerank is None else rerank
        if isinstance(rerank, bool) or not isinstance(rerank, (int, np.integer)) or rerank < 0:
            raise ValidationError(f"rerank must be a non-negative integer, got {rerank!r}")
        if rerank and not self.rerank:
            raise ValidationError("this index was built with rerank=0, so it holds no vectors to re-rank")
        model_kind = _model_kind(self.hasher)
        if nprobe is not None and model_kind != "ivf":
            raise ValidationError("nprobe applies to IVF indexes only")
        Xq = check_vectors_array(Xq, name="queries", n_features=_model_dim(self.hasher))
        if model_kind == "ivf":
            nprobe = self.hasher._check_nprobe(nprobe)
        import ray

        kk = max(k, rerank) if rerank else k
        if model_kind == "ivf":
            q_ref = ray.put(Xq)
            parts = ray.get([s.search.remote(q_ref, kk, nprobe) for s in self._shards])
        else:
            query = self.hasher.transform(Xq) if model_kind == "hash" else self.hasher.distance_tables(Xq)
            q_ref = ray.put(query)
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
        self._shard_key = None
        self.ntotal = 0

    def __repr__(self) -> str:
        return f"ShardedIndex(n_shards={self.n_shards}, rerank={self.rerank}, ntotal={self.ntotal})"
