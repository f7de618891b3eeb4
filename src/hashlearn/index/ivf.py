"""IVFIndex: an inverted-file index — coarse clusters, residual codes inside each, probe a few lists."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import FileFormatError, IncompatibleError, NotFittedError, ValidationError
from ..hashing.base import check_random_state, check_vectors_array
from ..io.persist import persistable
from ..quantize import OPQ, PQ, RQ, BalancedKMeans
from ..quantize._kmeans import nearest_centroids, squared_distances, train_kmeans
from ..quantize.base import BaseQuantizer
from .flat import _as_ids, _check_k, _member, _sort_segments

__all__ = ["IVFIndex"]

_COARSE = ("kmeans", "balanced-kmeans")
_TABLE_BUDGET = 1 << 24  # float32 table entries built at once (64 MB)


def _check_count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValidationError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@persistable
class IVFIndex:
    """Inverted-file index: vectors go to the list of their nearest coarse centroid and are stored as
    fine codes of their residual; a query scans the ``nprobe`` lists whose centroids are nearest.

    Parameters
    ----------
    coarse : {"kmeans", "balanced-kmeans"} or BalancedKMeans, default "kmeans"
        Coarse quantizer. ``"kmeans"``: faiss' k-means with ``nlist`` centroids. ``"balanced-kmeans"``
        or a :class:`~hashlearn.quantize.BalancedKMeans` (fitted or not, ``n_clusters == nlist``):
        lists of nearly equal size; vectors are assigned, and lists probed, by its biased rule
        ``||x - c||^2 - g``.
    fine : PQ, OPQ, RQ or a binary hasher
        Codes stored in the lists. Quantizers give squared-L2 ADC distances to the reconstructions;
        a binary hasher (any vector hasher of the registry, e.g. ``make_hasher("itq", 64)``) gives
        Hamming distances between codes. An unfitted ``fine`` is trained on the residuals of the
        training vectors (or on the vectors, with ``by_residual=False``).
    nlist : int, default 100
        Number of lists (coarse centroids).
    nprobe : int, default 1
        Lists scanned per query (query-time parameter; ``search(..., nprobe=)`` overrides it).
    by_residual : bool, default True
        Encode ``x - centroid`` (as faiss' IndexIVFPQ) rather than ``x``.
    n_threads : int, optional
        Threads for search (default: numba's setting).
    random_state : int or None
        Seeds the coarse k-means (and an unfitted ``fine``'s training if its own is None).

    Results follow the package convention: ``search`` returns (D float32, I int64) of shape (nq, k),
    ascending distance, ties by the smaller id, ``I = -1`` and ``D = inf`` where fewer than k
    vectors lie in the probed lists.

    References
    ----------
    Jégou, Douze & Schmid, "Product quantization for nearest neighbor search", IEEE TPAMI 2011
    (IVFADC: inverted file with asymmetric distance computation on residuals).

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.index.ivf import IVFIndex
    >>> from hashlearn.quantize import PQ
    >>> X = np.random.default_rng(0).normal(size=(3000, 16)).astype("float32")
    >>> index = IVFIndex("kmeans", PQ(4, nbits=6, random_state=0), nlist=16, nprobe=4, random_state=0)
    >>> _ = index.add(X)
    >>> D, I = index.search(X[:2], 5)
    >>> I.shape, int(index.ntotal)
    ((2, 5), 3000)
    """

    def __init__(self, coarse="kmeans", fine=None, nlist: int = 100, nprobe: int = 1, *, by_residual: bool = True,
                 n_threads: int | None = None, random_state=None):
        self.nlist = _check_count("nlist", nlist)
        self.nprobe = _check_count("nprobe", nprobe)
        if self.nprobe > self.nlist:
            raise ValidationError(f"nprobe ({self.nprobe}) cannot exceed nlist ({self.nlist})")
        if isinstance(coarse, str):
            if coarse not in _COARSE:
                raise ValidationError(f"coarse must be one of {', '.join(_COARSE)} or a BalancedKMeans, got {coarse!r}")
        elif isinstance(coarse, BalancedKMeans):
            if int(coarse.n_clusters) != self.nlist:
                raise ValidationError(f"the coarse BalancedKMeans has {coarse.n_clusters} clusters but nlist is {self.nlist}")
        else:
            raise ValidationError(f"coarse must be 'kmeans', 'balanced-kmeans' or a BalancedKMeans, got {type(coarse).__name__}")
        if isinstance(fine, BaseQuantizer):
            if isinstance(fine, BalancedKMeans):
                raise ValidationError("fine must be a PQ, OPQ or RQ quantizer or a binary hasher, not BalancedKMeans")
            self._mode = 0
        elif fine is not None and hasattr(fine, "transform") and getattr(fine, "input_kind", None) == "vector":
            self._mode = 1
        else:
            raise ValidationError(f"fine must be a PQ, OPQ or RQ quantizer or a vector hasher, got {type(fine).__name__}")
        self.coarse = coarse
        self.fine = fine
        self.by_residual = bool(by_residual)
        self.n_threads = n_threads
        self.random_state = random_state
        self.centroids_ = None
        self.bias_ = None  # coarse potentials (balanced k-means) or None
        self._clear()

    # -- storage ---------------------------------------------------------------------------------------
    def _clear(self) -> None:
        width, dtype = (1, np.uint8) if self.centroids_ is None else self._code_layout()
        self._codes = np.zeros((0, width), dtype)
        self._ids = np.zeros(0, np.int64)
        self._lists = np.zeros(0, np.int32)
        self._norms = np.zeros(0, np.float32)
        self._next_id = 0
        self._csr = None

    def _code_layout(self) -> tuple[int, type]:
        if self._mode == 0:
            return self.fine.n_codes, np.uint8
        return (int(self.fine.code_bits) + 63) // 64, np.uint64

    @property
    def is_trained(self) -> bool:
        return self.centroids_ is not None

    @property
    def ntotal(self) -> int:
        """Number of vectors in the index."""
        return int(self._ids.shape[0])

    def __len__(self) -> int:
        return self.ntotal

    @property
    def ids(self) -> np.ndarray:
        """Ids in insertion order (int64)."""
        return self._ids

    def list_sizes(self) -> np.ndarray:
        """Number of vectors in each list: int64 (nlist,)."""
        return np.bincount(self._lists, minlength=self.nlist).astype(np.int64)

    @property
    def d(self) -> int:
        self._check_trained()
        return int(self.centroids_.shape[1])

    # -- training ----------------------------------------------------------------------------------------
    def train(self, X) -> "IVFIndex":
        """Learn the coarse centroids and (if unfitted) the fine codes from X (n, d); the index must be empty."""
        if self.ntotal:
            raise ValidationError(f"train() needs an empty index; this one holds {self.ntotal} vectors")
        X = check_vectors_array(X, name="X")
        if X.shape[0] < self.nlist:
            raise ValidationError(f"IVFIndex needs at least nlist training vectors: got {X.shape[0]} for nlist = {self.nlist}")
        rng = check_random_state(self.random_state)
        if isinstance(self.coarse, BalancedKMeans):
            km = self.coarse
            if not hasattr(km, "fingerprint_"):
                km.fit(X)
            elif km.n_features_in_ != X.shape[1]:
                raise ValidationError(f"the coarse BalancedKMeans was fitted on {km.n_features_in_} features, X has {X.shape[1]}")
            self.centroids_, self.bias_ = km.cluster_centers_.copy(), km.cluster_bias_.copy()
        elif self.coarse == "balanced-kmeans":
            km = BalancedKMeans(self.nlist, random_state=int(rng.integers(0, 2**31 - 1))).fit(X)
            self.centroids_, self.bias_ = km.cluster_centers_, km.cluster_bias_
        else:
            self.centroids_ = train_kmeans(X, self.nlist, n_iter=25, rng=rng)
            self.bias_ = None
        if not self._fine_fitted():
            if getattr(self.fine, "random_state", 0) is None:
                self.fine.set_params(random_state=int(rng.integers(0, 2**31 - 1)))
            self.fine.fit(self._residuals(X, self._assign(X)))
        elif self.fine.n_features_in_ != X.shape[1]:
            raise ValidationError(f"the fine encoder was fitted on {self.fine.n_features_in_} features, X has {X.shape[1]}")
        self._clear()
        return self

    def _fine_fitted(self) -> bool:
        return hasattr(self.fine, "fingerprint_") if self._mode == 0 else hasattr(self.fine, "n_features_in_")

    def _scores(self, X: np.ndarray) -> np.ndarray:
        D = squared_distances(X, self.centroids_)
        return D if self.bias_ is None else D - self.bias_[None, :]

    def _assign(self, X: np.ndarray) -> np.ndarray:
        if self.bias_ is None:
            return nearest_centroids(X, self.centroids_, 1)[1][:, 0]
        out = np.empty(X.shape[0], np.int64)
        for s in range(0, X.shape[0], 16384):
            out[s : s + 16384] = np.argmin(self._scores(X[s : s + 16384]), axis=1)
        return out

    def _probe(self, Xq: np.ndarray, nprobe: int) -> np.ndarray:
        if self.bias_ is None:
            return nearest_centroids(Xq, self.centroids_, nprobe)[1]
        S = self._scores(Xq)
        part = np.argpartition(S, nprobe - 1, axis=1)[:, :nprobe] if nprobe < self.nlist else np.tile(np.arange(self.nlist), (Xq.shape[0], 1))
        order = np.argsort(np.take_along_axis(S, part, 1), axis=1, kind="stable")
        return np.take_along_axis(part, order, 1).astype(np.int64)

    def _residuals(self, X: np.ndarray, lists: np.ndarray) -> np.ndarray:
        return X - self.centroids_[lists] if self.by_residual else X

    def _check_trained(self) -> None:
        if self.centroids_ is None:
            raise NotFittedError("IVFIndex is not trained: call train(X) or add(X) first")

    # -- content -------------------------------------------------------------------------------------------
    def add(self, X, ids=None) -> np.ndarray:
        """Encode and add vectors X (n, d) with optional unique non-negative int64 ids; returns the ids.

        An untrained index is first trained on X.
        """
        if not self.is_trained:
            self.train(X)
        X = check_vectors_array(X, name="X", n_features=self.d)
        m = X.shape[0]
        if ids is None:
            ids = np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        else:
            ids = _as_ids(ids, m)
            if m and self.ntotal and int(ids.min()) < self._next_id:
                present = _member(ids, np.sort(self._ids))
                if present.any():
                    raise ValidationError(f"id {ids[present][0]} is already in the index (remove it first to replace it)")
        if m == 0:
            return ids
        lists = self._assign(X)
        R = self._residuals(X, lists)
        codes = np.asarray(self.fine.transform(R)).view(np.ndarray)
        if self._mode == 0 and isinstance(self.fine, RQ):
            self._norms = np.concatenate([self._norms, self.fine._code_bias(codes)])
        self._codes = np.concatenate([self._codes, codes]) if self._codes.shape[0] else np.ascontiguousarray(codes)
        self._ids = np.concatenate([self._ids, ids])
        self._lists = np.concatenate([self._lists, lists.astype(np.int32)])
        self._next_id = max(self._next_id, int(ids.max()) + 1)
        self._csr = None
        return ids

    def remove(self, ids) -> int:
        """Remove vectors by id; returns how many were removed (unknown ids are ignored)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if self.ntotal == 0 or ids.size == 0:
            return 0
        drop = _member(self._ids, np.sort(ids))
        n_drop = int(drop.sum())
        if n_drop:
            keep = ~drop
            self._codes = np.ascontiguousarray(self._codes[keep])
            self._ids = self._ids[keep]
            self._lists = self._lists[keep]
            if self._norms.size:
                self._norms = self._norms[keep]
            self._csr = None
        return n_drop

    def reset(self) -> None:
        """Remove every vector (the trained centroids and codes stay)."""
        self._clear()

    def _layout(self):
        """List-major copies (codes, ids, norms) and list offsets, rebuilt after add/remove."""
        if self._csr is None:
            order = np.argsort(self._lists, kind="stable")
            offsets = np.zeros(self.nlist + 1, np.int64)
            np.cumsum(np.bincount(self._lists, minlength=self.nlist), out=offsets[1:])
            norms = self._norms[order] if self._norms.size else np.zeros(0, np.float32)
            self._csr = (np.ascontiguousarray(self._codes[order]), np.ascontiguousarray(self._ids[order]),
                         np.ascontiguousarray(norms), offsets)
        return self._csr

    # -- search ---------------------------------------------------------------------------------------------
    def _check_nprobe(self, nprobe) -> int:
        if nprobe is None:
            return self.nprobe
        nprobe = _check_count("nprobe", nprobe)
        if nprobe > self.nlist:
            raise ValidationError(f"nprobe ({nprobe}) cannot exceed nlist ({self.nlist})")
        return nprobe

    def _precomputed(self):
        """Per-list term A (nlist or 1, M, ksub) of the residual ADC tables, or None if too large.

        ``||q - c - y||^2 = ||q - c||^2 + sum_m A[c, m, y_m] + B_q[m, y_m]`` with, for PQ/OPQ (in the
        rotated space), ``A = ||y_m||^2 + 2 <c_m, y_m>`` and ``B_q = -2 <q_m, y_m>``; for RQ,
        ``A = 2 <c, y_l>``, ``B_q = -2 <q, y_l>`` and the stored ``||y||^2`` added per code. The
        query-independent part is computed once, as faiss' IndexIVFPQ precomputed tables.
        """
        cached = getattr(self, "_A", None)
        if cached is not None and cached[0] is self.centroids_:
            return cached[1]
        fine = self.fine
        M, ksub = fine.n_codes, fine.n_centroids
        if not self.by_residual:
            A = np.zeros((1, M, ksub), np.float32)
        elif self.nlist * M * ksub > _TABLE_BUDGET:
            A = None
        elif isinstance(fine, RQ):
            A = 2.0 * np.einsum("ld,mkd->lmk", self.centroids_, fine.codebooks_, optimize=True)
        else:
            Y = fine.codebooks_
            C = np.ascontiguousarray(fine._preprocess(self.centroids_)).reshape(self.nlist, M, -1)
            A = (Y * Y).sum(-1)[None] + 2.0 * np.einsum("lmd,mkd->lmk", C, Y, optimize=True)
        A = None if A is None else np.ascontiguousarray(A, dtype=np.float32)
        self._A = (self.centroids_, A)
        return A

    def _query_terms(self, Xq: np.ndarray, probes: np.ndarray) -> dict:
        """Kernel inputs for the queries: ADC terms (modes 0 and 2) or query codes per probe (mode 1)."""
        nq, nprobe = probes.shape
        d = Xq.shape[1]
        dummy = {"tables": np.zeros((nq, 1, 1, 1), np.float32), "A": np.zeros((1, 1, 1), np.float32),
                 "Bq": np.zeros((nq, 1, 1), np.float32), "qc": np.zeros((nq, 1), np.float32),
                 "qcodes": np.zeros((nq, 1, 1), np.uint64)}
        if self._mode == 1:
            if self.by_residual:
                qcodes = self.fine.transform((Xq[:, None, :] - self.centroids_[probes]).reshape(-1, d)).reshape(nq, nprobe, -1)
            else:
                qcodes = np.repeat(self.fine.transform(Xq)[:, None, :], nprobe, 1)
            return dict(dummy, mode=1, qcodes=np.ascontiguousarray(qcodes, dtype=np.uint64))
        fine = self.fine
        A = self._precomputed()
        if A is not None:
            if not self.by_residual:
                Bq = fine._distance_tables(Xq)
                qc = np.zeros((nq, nprobe), np.float32)
            else:
                Y = fine.codebooks_
                # (nq, M, 1, dsub) @ (M, dsub, ksub): the result is laid out (nq, M, ksub) already
                if isinstance(fine, RQ):
                    Bq = np.matmul(Xq[:, None, None, :], -2.0 * Y.transpose(0, 2, 1))[:, :, 0, :]
                else:
                    Qr = np.ascontiguousarray(fine._preprocess(Xq)).reshape(nq, fine.n_codes, 1, -1)
                    Bq = np.matmul(Qr, -2.0 * Y.transpose(0, 2, 1))[:, :, 0, :]
                diff = Xq[:, None, :] - self.centroids_[probes]
                qc = np.einsum("qpd,qpd->qp", diff, diff)
            return dict(dummy, mode=2, A=A, Bq=np.ascontiguousarray(Bq, dtype=np.float32),
                        qc=np.ascontiguousarray(qc, dtype=np.float32))
        M, ksub = fine.n_codes, fine.n_centroids
        tables = np.empty((nq, nprobe, M, ksub), np.float32)
        rows = max(1, _TABLE_BUDGET // (nprobe * M * ksub))
        for s in range(0, nq, rows):
            q = Xq[s : s + rows]
            R = q[:, None, :] - self.centroids_[probes[s : s + rows]]
            tables[s : s + rows] = fine._distance_tables(np.ascontiguousarray(R.reshape(-1, d))).reshape(q.shape[0], nprobe, M, ksub)
        return dict(dummy, mode=0, tables=tables, Bq=np.zeros((nq, 1, ksub), np.float32))

    def search(self, Xq, k: int, *, nprobe: int | None = None):
        """k nearest neighbours of the queries Xq (nq, d) among the probed lists.

        Returns (D, I): float32 distances (squared L2 to the reconstructions for quantizer codes,
        Hamming distances for binary codes), ascending; int64 ids, -1 padding (D = inf there).
        """
        from ..codes.search import thread_limit
        from . import _ivf_kernels

        self._check_trained()
        k = _check_k(k)
        nprobe = self._check_nprobe(nprobe)
        Xq = check_vectors_array(Xq, name="queries", n_features=self.d)
        codes, ids, norms, offsets = self._layout()
        D = np.empty((Xq.shape[0], k), np.float32)
        I = np.empty((Xq.shape[0], k), np.int64)
        with thread_limit(self.n_threads):
            for s in range(0, Xq.shape[0], self._query_chunk()):  # bounds the per-query tables' memory
                q = Xq[s : s + self._query_chunk()]
                probes = self._probe(q, nprobe)
                t = self._query_terms(q, probes)
                D[s : s + q.shape[0]], I[s : s + q.shape[0]] = _ivf_kernels.ivf_knn_kernel(
                    t["mode"], t["tables"], t["A"], t["Bq"], t["qc"], t["qcodes"], probes, offsets, codes, norms,
                    norms.size > 0, ids, k)
        return D, I

    def _query_chunk(self) -> int:
        per_query = self.fine.n_codes * self.fine.n_centroids if self._mode == 0 else 64
        return max(1, _TABLE_BUDGET // (4 * per_query))

    def range_search(self, Xq, radius: float, *, nprobe: int | None = None):
        """All vectors of the probed lists within distance ``radius`` (inclusive).

        Returns (lims, D, I): query i's results are ``D[lims[i]:lims[i+1]]`` (float32) and ``I[...]``
        (int64 ids), sorted by (distance, id).
        """
        from ..codes.search import thread_limit
        from . import _ivf_kernels

        self._check_trained()
        nprobe = self._check_nprobe(nprobe)
        radius = float(radius)
        if not np.isfinite(radius):
            raise ValidationError(f"radius must be a finite number, got {radius}")
        Xq = check_vectors_array(Xq, name="queries", n_features=self.d)
        codes, ids, norms, offsets = self._layout()
        r = np.float32(radius)
        lims_parts, D_parts, P_parts = [np.zeros(1, np.int64)], [], []
        with thread_limit(self.n_threads):
            for s in range(0, Xq.shape[0], self._query_chunk()):
                q = Xq[s : s + self._query_chunk()]
                probes = self._probe(q, nprobe)
                t = self._query_terms(q, probes)
                args = (t["mode"], t["tables"], t["A"], t["Bq"], t["qc"], t["qcodes"], probes, offsets, codes, norms,
                        norms.size > 0, r)
                counts = _ivf_kernels.ivf_range_kernel(*args, np.zeros(1, np.int64), True, np.zeros(0, np.float32),
                                                       np.zeros(0, np.int64))
                lims = np.zeros(q.shape[0] + 1, np.int64)
                np.cumsum(counts, out=lims[1:])
                D = np.empty(lims[-1], np.float32)
                P = np.empty(lims[-1], np.int64)
                _ivf_kernels.ivf_range_kernel(*args, lims, False, D, P)
                lims_parts.append(lims[1:] + lims_parts[-1][-1])
                D_parts.append(D)
                P_parts.append(P)
        lims = np.concatenate(lims_parts)
        D = np.concatenate(D_parts) if D_parts else np.zeros(0, np.float32)
        P = np.concatenate(P_parts) if P_parts else np.zeros(0, np.int64)
        return (lims,) + _sort_segments(lims, D, ids[P])

    # -- faiss interop ---------------------------------------------------------------------------------------
    def to_faiss(self):
        """The same index in faiss: ``IndexIVFPQ`` (PQ fine), ``IndexPreTransform(rotation, IndexIVFPQ)``
        (OPQ fine) or ``IndexIVFResidualQuantizer`` (RQ fine, ``ST_norm_float``), with the same
        centroids, codebooks, codes and ids, and ``nprobe``.

        Raises IncompatibleError for binary fine codes, balanced coarse assignment (faiss probes by
        plain distance) or ``by_residual=False``.
        """
        import faiss

        self._check_trained()
        if self._mode != 0:
            raise IncompatibleError(f"faiss has no IVF index over {type(self.fine).__name__} binary codes of residuals")
        if self.bias_ is not None:
            raise IncompatibleError("faiss assigns and probes lists by plain L2 distance; this index uses balanced "
                                    "k-means' biased rule, so faiss would return different results")
        if not self.by_residual:
            raise IncompatibleError("to_faiss supports by_residual=True only")
        d, fine = self.d, self.fine
        rotation = getattr(fine, "rotation_", None)
        centroids = self.centroids_ if rotation is None else self.centroids_ @ rotation
        quantizer = faiss.IndexFlatL2(d)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        if isinstance(fine, RQ):
            index = faiss.IndexIVFResidualQuantizer(quantizer, d, self.nlist, fine.n_codes, int(fine.nbits),
                                                    faiss.METRIC_L2, faiss.AdditiveQuantizer.ST_norm_float)
            rq = index.rq
            faiss.copy_array_to_vector(fine.codebooks_.ravel(), rq.codebooks)
            rq.max_beam_size = int(fine.beam_size)
            rq.is_trained = True
            rq.compute_codebook_tables()
        elif isinstance(fine, (PQ, OPQ)):
            if int(fine.nbits) != 8:
                raise IncompatibleError(f"to_faiss copies one-byte PQ codes; this PQ has nbits = {fine.nbits}")
            index = faiss.IndexIVFPQ(quantizer, d, self.nlist, fine.n_codes, 8)
            faiss.copy_array_to_vector(fine.codebooks_.ravel(), index.pq.centroids)
        else:
            raise IncompatibleError(f"no faiss counterpart for {type(fine).__name__} fine codes")
        index.is_trained = True
        if isinstance(fine, (PQ, OPQ)):
            index.precompute_table()
        codes, ids, norms, offsets = self._layout()
        if isinstance(fine, RQ):  # faiss stores the code bytes, then the float32 norm
            codes = np.concatenate([codes, norms.view(np.uint8).reshape(-1, 4)], axis=1)
        codes = np.ascontiguousarray(codes)
        for lst in range(self.nlist):
            a, b = int(offsets[lst]), int(offsets[lst + 1])
            if b > a:
                index.invlists.add_entries(lst, b - a, faiss.swig_ptr(ids[a:b]), faiss.swig_ptr(codes[a:b]))
        index.ntotal = self.ntotal
        index.nprobe = self.nprobe
        if rotation is None:
            return index
        pre = faiss.IndexPreTransform(fine.rotation_faiss(), index)
        pre.is_trained = True
        pre.ntotal = self.ntotal
        return pre

    # -- persistence ------------------------------------------------------------------------------------------
    def _get_state(self) -> dict:
        return {
            "coarse": self.coarse, "fine": self.fine, "nlist": self.nlist, "nprobe": self.nprobe,
            "by_residual": self.by_residual, "n_threads": self.n_threads,
            "random_state": self.random_state if isinstance(self.random_state, (int, type(None))) else None,
            "centroids": self.centroids_, "bias": self.bias_,
            "codes": self._codes, "ids": self._ids, "lists": self._lists, "norms": self._norms, "next_id": self._next_id,
        }

    @classmethod
    def _from_state(cls, state: dict) -> "IVFIndex":
        obj = cls(state["coarse"], state["fine"], state["nlist"], state["nprobe"], by_residual=state["by_residual"],
                  n_threads=state["n_threads"], random_state=state["random_state"])
        obj.centroids_, obj.bias_ = state["centroids"], state["bias"]
        codes, ids, lists, norms = state["codes"], state["ids"], state["lists"], state["norms"]
        n = ids.shape[0]
        if obj.centroids_ is not None:
            width, dtype = obj._code_layout()
            if obj.centroids_.shape[0] != obj.nlist or (obj.bias_ is not None and obj.bias_.shape != (obj.nlist,)):
                raise FileFormatError("centroids do not match nlist")
            if codes.shape != (n, width) or codes.dtype != dtype or lists.shape != (n,) or ids.dtype != np.int64:
                raise FileFormatError("stored codes, ids and lists do not match")
            if n and (lists.min() < 0 or lists.max() >= obj.nlist):
                raise FileFormatError("stored list numbers are out of range")
            if isinstance(obj.fine, RQ) and norms.shape != (n,):
                raise FileFormatError("stored norms do not match the codes")
            if obj._mode == 0 and n:
                obj.fine.check_codes(codes)
        elif n:
            raise FileFormatError("an untrained index cannot hold vectors")
        obj._codes, obj._ids, obj._lists, obj._norms = codes, ids, lists.astype(np.int32), norms
        obj._next_id = int(state["next_id"])
        return obj

    def __repr__(self) -> str:
        coarse = self.coarse if isinstance(self.coarse, str) else "balanced-kmeans"
        return f"IVFIndex({coarse}, {self.fine!r}, nlist={self.nlist}, nprobe={self.nprobe}, ntotal={self.ntotal})"
