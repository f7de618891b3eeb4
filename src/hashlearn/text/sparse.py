"""Approximate retrieval over sparse (learned-sparse or weighted-term) vectors, after Seismic.

:class:`SeismicIndex` follows "Efficient Inverted Indexes for Approximate Retrieval over Learned Sparse
Representations" (Bruch, Nardini, Rulli, Venturini, SIGIR 2024):

1. **static pruning**: each term's posting list keeps only its ``posting_length`` largest weights;
2. **blocking**: a list is split into blocks of about ``block_size`` documents by clustering (random
   documents of the list as centroids, each document joins the centroid with the largest inner product);
3. **summaries**: each block gets the coordinate-wise maximum of its documents' vectors (an upper bound
   on their inner product with any non-negative query), pruned to the largest entries that keep
   ``summary_energy`` of its L1 mass, and stored with 8-bit codes (one scale per block, as in the paper,
   rounded up so that the quantised summary is still an upper bound);
4. **query**: the ``query_cut`` heaviest query terms are visited in decreasing weight; a block is
   skipped when ``heap_factor × <q, summary>`` cannot beat the current k-th score; otherwise its
   documents are scored exactly with the forward index (each document once per query). With
   ``block_order="bound"`` the bounds of all candidate blocks are computed first and blocks are opened in
   decreasing bound until one cannot beat the k-th score (early exit).

:class:`InvertedIndex` is the exact baseline over the same vectors (term-at-a-time accumulation over
full posting lists), and :func:`exhaustive_search` scores every document (``X @ q``, scipy CSR product;
:func:`exhaustive_search_numba` does the same from the forward index, one query at a time).
:func:`term_vectors` makes BM25-weighted document vectors and count query vectors, so that
``<q, d>`` is the BM25 score (no learned-sparse model is available offline).

All searches return ``(scores, ids)`` float32 / int64 of shape (nq, k), best first, ``-1`` past the end.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import NotFittedError, ValidationError

__all__ = ["SeismicIndex", "InvertedIndex", "exhaustive_search", "exhaustive_search_numba", "term_vectors"]


def _check_csr(X, name: str, n_features: int | None = None):
    import scipy.sparse as sp

    if not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValidationError(f"{name} must be a 2-D (sparse) matrix, got shape {X.shape}")
        X = sp.csr_matrix(X)
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    X.sort_indices()
    if X.shape[0] == 0:
        raise ValidationError(f"{name} is empty")
    if n_features is not None and X.shape[1] != n_features:
        raise ValidationError(f"{name} has {X.shape[1]} features but the index has {n_features}")
    if X.nnz and not np.isfinite(X.data).all():
        raise ValidationError(f"{name} contains NaN or infinite values")
    if X.nnz and X.data.min() < 0:
        raise ValidationError(f"{name} has negative weights; block summaries bound only non-negative vectors")
    return X


def _check_k(k):
    if not isinstance(k, numbers.Integral) or k < 1:
        raise ValidationError(f"k must be a positive integer, got {k!r}")
    return int(k)


def term_vectors(doc_texts, query_texts=None, *, k1: float = 1.5, b: float = 0.75, min_df: int = 1):
    """BM25-weighted sparse document vectors (and count vectors of the queries) over one vocabulary.

    ``doc[t] = idf_t · tf / (tf + k1 (1 - b + b·|d|/avgdl))`` (Lucene's BM25, ``idf = ln(1 + (N - df +
    0.5) / (df + 0.5))``), ``query[t] = count of t``, so ``<query, doc>`` is the BM25 score.
    Tokens: scikit-learn's default pattern, lower-cased, English stop words removed.

    Returns
    -------
    D : csr float32 (n_docs, V); Q : csr float32 (n_queries, V) or None; vocabulary : list of str
    """
    from sklearn.feature_extraction.text import CountVectorizer

    cv = CountVectorizer(lowercase=True, stop_words="english", min_df=min_df, dtype=np.float32)
    C = cv.fit_transform(list(doc_texts)).tocsr().astype(np.float32)
    n = C.shape[0]
    df = np.bincount(C.indices, minlength=C.shape[1]).astype(np.float64)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    dl = np.asarray(C.sum(axis=1)).ravel()
    avgdl = max(dl.mean(), 1e-9)
    rows = np.repeat(np.arange(n), np.diff(C.indptr))
    tf = C.data.astype(np.float64)
    C.data = (idf[C.indices] * tf / (tf + k1 * (1 - b + b * dl[rows] / avgdl))).astype(np.float32)
    Q = None
    if query_texts is not None:
        Q = cv.transform(list(query_texts)).tocsr().astype(np.float32)
    return C, Q, list(cv.get_feature_names_out())


def exhaustive_search(X, Q, k: int = 10, *, block: int = 256):
    """Exact top-``k`` by scoring every document: ``Q @ X.T`` (scipy), query blocks of ``block``."""
    X = _check_csr(X, "documents")
    Q = _check_csr(Q, "queries", X.shape[1])
    k = _check_k(k)
    XT = X.T.tocsr()
    kk = min(k, X.shape[0])
    out_s = np.full((Q.shape[0], k), -np.inf, np.float32)
    out_i = np.full((Q.shape[0], k), -1, np.int64)
    for start in range(0, Q.shape[0], block):
        S = (Q[start:start + block] @ XT).toarray()
        part = np.argpartition(-S, kk - 1, axis=1)[:, :kk] if kk < S.shape[1] else np.tile(np.arange(S.shape[1]), (len(S), 1))
        vals = np.take_along_axis(S, part, 1)
        order = np.lexsort((part, -vals), axis=1)
        vals, part = np.take_along_axis(vals, order, 1), np.take_along_axis(part, order, 1)
        part = np.where(vals > 0, part, -1)
        out_s[start:start + len(S), :kk] = np.where(vals > 0, vals, -np.inf)
        out_i[start:start + len(S), :kk] = part
    return out_s, out_i


def exhaustive_search_numba(X, Q, k: int = 10):
    """Exact top-``k`` by scoring every document from the forward (row) index, one query at a time
    (numba, single thread): cost ``nnz(X)`` per query whatever the query length. Same output as
    :func:`exhaustive_search`."""
    X = _check_csr(X, "documents")
    Q = _check_csr(Q, "queries", X.shape[1])
    k = _check_k(k)
    from ._sparse_kernels import forward_scan_search

    return forward_scan_search(Q.indptr.astype(np.int64), Q.indices.astype(np.int32), Q.data, k,
                               X.indptr.astype(np.int64), X.indices.astype(np.int32), X.data, X.shape[1])


class InvertedIndex:
    """Exact term-at-a-time retrieval over full posting lists (the plain inverted index baseline).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1, 0, 2], [0, 3, 0], [1, 1, 1]], dtype=np.float32)
    >>> InvertedIndex().fit(X).search(np.array([[0, 0, 1.0]]), k=2)[1].tolist()
    [[0, 2]]
    """

    def fit(self, X):
        X = _check_csr(X, "documents")
        C = X.tocsc()
        self.n_docs_, self.n_features_in_ = X.shape
        self.post_ptr_ = C.indptr.astype(np.int64)
        self.post_docs_ = C.indices.astype(np.int32)
        self.post_vals_ = C.data.astype(np.float32)
        return self

    def search(self, Q, k: int = 10):
        if not hasattr(self, "post_ptr_"):
            raise NotFittedError("InvertedIndex is not fitted yet: call fit(X) first")
        Q = _check_csr(Q, "queries", self.n_features_in_)
        k = _check_k(k)
        from ._sparse_kernels import taat_search

        return taat_search(Q.indptr.astype(np.int64), Q.indices.astype(np.int32), Q.data, k,
                           self.post_ptr_, self.post_docs_, self.post_vals_, self.n_docs_)


class SeismicIndex:
    """Seismic-style approximate inverted index (see the module docstring).

    Parameters
    ----------
    posting_length : int, default 1000
        Largest weights kept per posting list (static pruning, the paper's λ).
    block_size : int, default 16
        Mean number of documents per block (the paper's β = posting_length / block_size blocks).
    summary_energy : float, default 0.5
        Share of each summary's L1 mass kept (the paper's α).
    query_cut : int, default 10
        Heaviest query terms visited (the paper's query_cut).
    heap_factor : float, default 1.0
        Skip a block when ``heap_factor * <q, summary>`` is below the current k-th score; < 1 skips more.
    block_order : {"list", "bound"}, default "list"
        ``"list"``: the paper's order (terms by decreasing weight, each list's blocks in order, skipping
        blocks whose bound fails). ``"bound"``: the summary bounds of all blocks of the cut terms are
        computed first and blocks are opened in decreasing bound, stopping at the first that fails
        (early exit); the heap fills with strong documents early, so fewer blocks are opened -- but with
        energy-pruned summaries the bounds underestimate and the early exit loses recall; on SciFact
        passages (``bench/text_sparse.py``) ``"list"`` gave the better recall/speed trade-off.
    copy_block_vectors : bool, default False
        Store a copy of every block document's vector next to its block, so that scoring an opened block
        reads memory sequentially (the forward index is jumped across otherwise). Same results; costs
        about (postings kept) × (terms per document) × 6 bytes (~60 MB on 45k SciFact passages).
    random_state : int, Generator or None

    Attributes
    ----------
    n_docs_, n_features_in_ : int
    n_blocks_ : int
    postings_kept_ : int
        Postings that survived static pruning (of ``postings_total_``).

    References
    ----------
    Bruch, Nardini, Rulli, Venturini, "Efficient Inverted Indexes for Approximate Retrieval over Learned
    Sparse Representations", SIGIR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).random((50, 30)).astype(np.float32)
    >>> s = SeismicIndex(posting_length=50, block_size=8, summary_energy=1.0, random_state=0).fit(X)
    >>> ids = s.search(X[:2], k=1)[1]
    >>> ids.shape
    (2, 1)
    """

    def __init__(self, *, posting_length: int = 1000, block_size: int = 16, summary_energy: float = 0.5,
                 query_cut: int = 10, heap_factor: float = 1.0, block_order: str = "list",
                 copy_block_vectors: bool = False, random_state=None):
        self.posting_length = posting_length
        self.block_size = block_size
        self.summary_energy = summary_energy
        self.query_cut = query_cut
        self.heap_factor = heap_factor
        self.block_order = block_order
        self.copy_block_vectors = copy_block_vectors
        self.random_state = random_state

    def _check_params(self):
        for name in ("posting_length", "block_size", "query_cut"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")
        if not 0 < float(self.summary_energy) <= 1:
            raise ValidationError(f"summary_energy must be in (0, 1], got {self.summary_energy!r}")
        if not float(self.heap_factor) > 0:
            raise ValidationError(f"heap_factor must be > 0, got {self.heap_factor!r}")
        if self.block_order not in ("bound", "list"):
            raise ValidationError(f"block_order must be 'bound' or 'list', got {self.block_order!r}")

    def fit(self, X):
        """Build the index over documents ``X`` (n, V), sparse or dense, non-negative; returns ``self``."""
        from ..hashing.base import check_random_state

        self._check_params()
        X = _check_csr(X, "documents")
        rng = check_random_state(self.random_state)
        from ._sparse_kernels import block_summaries, build_blocks

        n, V = X.shape
        C = X.tocsc()
        C.sort_indices()
        fwd_ptr, fwd_idx, fwd_val = X.indptr.astype(np.int64), X.indices.astype(np.int32), X.data.astype(np.float32)
        keys = rng.random(C.nnz)
        term_block_ptr, block_doc_ptr, block_docs, kept = build_blocks(
            C.indptr.astype(np.int64), C.indices.astype(np.int32), C.data.astype(np.float32), keys,
            fwd_ptr, fwd_idx, fwd_val, int(self.posting_length), int(self.block_size), V)
        sum_ptr, sum_idx, sum_val = block_summaries(block_doc_ptr, block_docs, fwd_ptr, fwd_idx, fwd_val,
                                                    float(self.summary_energy), V)
        self.n_docs_, self.n_features_in_ = int(n), int(V)
        self.term_block_ptr_ = term_block_ptr
        self.block_doc_ptr_ = block_doc_ptr
        self.block_docs_ = block_docs
        # 8-bit summaries (a scale per block, rounded up so they still bound their blocks) and 16-bit
        # term ids when the vocabulary allows: less memory traffic for the bound computations
        from ._sparse_kernels import quantize_summaries

        self.sum_ptr_ = sum_ptr
        self.sum_idx_ = sum_idx.astype(np.uint16) if V <= 65536 else sum_idx
        self.sum_val_, self.sum_scale_ = quantize_summaries(sum_ptr, sum_val)
        if V <= 65536:  # 16-bit term ids: less memory traffic when scoring documents
            fwd_idx = fwd_idx.astype(np.uint16)
        self.fwd_ptr_, self.fwd_idx_, self.fwd_val_ = fwd_ptr, fwd_idx, fwd_val
        if self.copy_block_vectors:
            from ._sparse_kernels import block_forward

            ptr, self.vec_idx_, self.vec_val_ = block_forward(block_docs, fwd_ptr, fwd_idx, fwd_val)
            self.doc_start_, self.doc_end_ = ptr[:-1], ptr[1:]
        else:
            self.vec_idx_, self.vec_val_ = fwd_idx, fwd_val
            self.doc_start_, self.doc_end_ = fwd_ptr[block_docs], fwd_ptr[block_docs.astype(np.int64) + 1]
        self.n_blocks_ = int(len(block_doc_ptr) - 1)
        self.postings_kept_ = int(kept)
        self.postings_total_ = int(X.nnz)
        return self

    def search(self, Q, k: int = 10, *, query_cut: int | None = None, heap_factor: float | None = None,
               block_order: str | None = None):
        """Approximate top-``k`` of each query (nq, V); query-time ``query_cut``/``heap_factor``/``block_order``
        override the constructor's."""
        if not hasattr(self, "fwd_ptr_"):
            raise NotFittedError("SeismicIndex is not fitted yet: call fit(X) first")
        Q = _check_csr(Q, "queries", self.n_features_in_)
        k = _check_k(k)
        qc = self.query_cut if query_cut is None else int(query_cut)
        hf = self.heap_factor if heap_factor is None else float(heap_factor)
        if qc < 1 or hf <= 0:
            raise ValidationError(f"query_cut must be >= 1 and heap_factor > 0, got {qc}, {hf}")
        bo = self.block_order if block_order is None else block_order
        if bo not in ("bound", "list"):
            raise ValidationError(f"block_order must be 'bound' or 'list', got {bo!r}")
        from ._sparse_kernels import seismic_search

        return seismic_search(Q.indptr.astype(np.int64), Q.indices.astype(np.int32), Q.data, k, qc, hf,
                              self.term_block_ptr_, self.block_doc_ptr_, self.block_docs_, self.sum_ptr_,
                              self.sum_idx_, self.sum_val_, self.sum_scale_, self.doc_start_, self.doc_end_,
                              self.vec_idx_, self.vec_val_, self.n_docs_, self.n_features_in_, bo == "bound")

    def memory_bytes(self) -> dict:
        """Bytes of the forward index, the pruned posting lists (block documents, with each posting's
        vector range), the block-local vector copies (``copy_block_vectors``) and the summaries."""
        return {"forward": int(self.fwd_ptr_.nbytes + self.fwd_idx_.nbytes + self.fwd_val_.nbytes),
                "blocks": int(self.block_docs_.nbytes + self.block_doc_ptr_.nbytes + self.term_block_ptr_.nbytes
                              + self.doc_start_.nbytes
                              + (8 if self.copy_block_vectors else self.doc_end_.nbytes)),
                "block_vectors": int(self.vec_idx_.nbytes + self.vec_val_.nbytes) if self.copy_block_vectors else 0,
                "summaries": int(self.sum_ptr_.nbytes + self.sum_idx_.nbytes + self.sum_val_.nbytes
                                 + self.sum_scale_.nbytes)}
