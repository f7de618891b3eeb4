"""hashlearn.text.sparse: Seismic-style index, plain inverted index and exhaustive scoring.

The exact configurations are compared with brute force (dense ``Q @ X.T``); the approximate knobs must
only lose recall, never return wrong scores.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.text.sparse import (InvertedIndex, SeismicIndex, exhaustive_search, exhaustive_search_numba,
                                   term_vectors)


def _sparse_data(seed=0, n=400, V=300, nq=40, density=0.05):
    rng = np.random.default_rng(seed)
    X = sp.random(n, V, density=density, random_state=rng, dtype=np.float32, format="csr")
    X.data = rng.gamma(1.0, 1.0, X.nnz).astype(np.float32)  # continuous weights: no ties
    Q = sp.random(nq, V, density=0.03, random_state=rng, dtype=np.float32, format="csr")
    Q.data = rng.random(Q.nnz).astype(np.float32) + 0.1
    return X, Q


def _brute(X, Q, k):
    S = (Q @ X.T).toarray()
    ids = np.argsort(-S, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(S, ids, 1)
    return vals, np.where(vals > 0, ids, -1)


def _check_exact(scores, ids, ref_scores, ref_ids):
    np.testing.assert_allclose(np.where(ids >= 0, scores, 0), np.where(ref_ids >= 0, ref_scores, 0), rtol=1e-5)
    np.testing.assert_array_equal(ids, ref_ids)


def test_exhaustive_and_inverted_index_are_exact():
    X, Q = _sparse_data()
    ref = _brute(X, Q, 10)
    _check_exact(*exhaustive_search(X, Q, 10), *ref)
    _check_exact(*InvertedIndex().fit(X).search(Q, 10), *ref)
    _check_exact(*exhaustive_search_numba(X, Q, 10), *ref)
    # k larger than the number of matching documents: -1 / -inf past the end, as the reference
    s, i = exhaustive_search_numba(X, Q, X.shape[0] + 5)
    assert i.shape == (Q.shape[0], X.shape[0] + 5) and np.all(i[:, X.shape[0]:] == -1)
    np.testing.assert_array_equal(i[:, :X.shape[0]], _brute(X, Q, X.shape[0])[1])


@pytest.mark.parametrize("block_order", ["bound", "list"])
def test_seismic_without_pruning_is_exact(block_order):
    X, Q = _sparse_data(seed=1)
    s = SeismicIndex(posting_length=10**6, block_size=4, summary_energy=1.0, query_cut=10**6, heap_factor=1.0,
                     block_order=block_order, random_state=0).fit(X)
    assert s.postings_kept_ == s.postings_total_ == X.nnz
    # every posting is in exactly one block of its term
    assert len(s.block_docs_) == X.nnz and s.n_blocks_ >= X.shape[1] // 2
    _check_exact(*s.search(Q, 10), *_brute(X, Q, 10))


@pytest.mark.parametrize("block_order", ["bound", "list"])
def test_seismic_approximation_only_loses_recall(block_order):
    X, Q = _sparse_data(seed=2, n=800)
    ref_s, ref_i = _brute(X, Q, 10)
    S = (Q @ X.T).toarray()
    exact = SeismicIndex(posting_length=10**6, block_size=8, summary_energy=1.0, random_state=0).fit(X)
    recalls = []
    for kw in ({"posting_length": 40, "block_size": 8, "summary_energy": 0.5},
               {"posting_length": 10, "block_size": 4, "summary_energy": 0.3}):
        s = SeismicIndex(random_state=0, **kw).fit(X)
        assert s.postings_kept_ < X.nnz
        scores, ids = s.search(Q, 10, query_cut=3, heap_factor=0.8, block_order=block_order)
        ok = ids >= 0
        # returned scores are the true inner products of the returned documents, in descending order
        np.testing.assert_allclose(scores[ok], np.take_along_axis(S, np.where(ok, ids, 0), 1)[ok], rtol=1e-5)
        assert np.all(np.diff(np.where(ok, scores, -np.inf), axis=1) <= 1e-6)
        recalls.append(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum())
                                for a, b in zip(ids, ref_i)]))
    full = exact.search(Q, 10, query_cut=3, block_order=block_order)[1]
    assert 0 < recalls[1] <= recalls[0] <= 1.0
    assert recalls[0] < 1.0 or np.array_equal(full, ref_i)


def test_term_vectors_give_bm25_scores():
    docs = ["protein folding in cells", "cells divide", "protein protein interaction networks", "heart disease"]
    D, Q, vocab = term_vectors(docs, ["protein cells", "heart"])
    assert "the" not in vocab and D.shape == (4, len(vocab))
    pytest.importorskip("bm25s")
    from hashlearn.text.lexical import BM25

    s, p = BM25().fit(docs).search(["protein cells", "heart"], k=4)
    S = (Q @ D.T).toarray()
    for qi in range(2):
        ok = p[qi] >= 0
        np.testing.assert_allclose(S[qi, p[qi][ok]], s[qi][ok], rtol=1e-4)


def test_sparse_bad_input():
    X, Q = _sparse_data()
    with pytest.raises(ValidationError, match="negative"):
        SeismicIndex().fit(-X)
    with pytest.raises(ValidationError, match="100 features but the index has 300"):
        InvertedIndex().fit(X).search(Q[:, :100], 5)
    with pytest.raises(ValidationError, match="summary_energy"):
        SeismicIndex(summary_energy=0).fit(X)
    with pytest.raises(ValidationError, match="k must be"):
        exhaustive_search(X, Q, 0)
    with pytest.raises(ValidationError, match="k must be"):
        exhaustive_search_numba(X, Q, 0)
    with pytest.raises(ValidationError, match="block_order"):
        SeismicIndex(block_order="random").fit(X)
    with pytest.raises(ValidationError, match="block_order"):
        SeismicIndex(posting_length=10, random_state=0).fit(X).search(Q, 5, block_order="zigzag")
    with pytest.raises(NotFittedError):
        SeismicIndex().search(Q)
    bad = X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        SeismicIndex().fit(bad)


def test_seismic_block_vector_copies_and_quantised_summaries():
    X, Q = _sparse_data(seed=3, n=600)
    kw = {"posting_length": 60, "block_size": 8, "summary_energy": 1.0, "random_state": 0}
    a = SeismicIndex(**kw).fit(X)
    b = SeismicIndex(copy_block_vectors=True, **kw).fit(X)
    assert a.memory_bytes()["block_vectors"] == 0 < b.memory_bytes()["block_vectors"]
    for hf in (0.7, 1.0):
        sa, ia = a.search(Q, 10, query_cut=4, heap_factor=hf)
        sb, ib = b.search(Q, 10, query_cut=4, heap_factor=hf)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(sa, sb)
    # 8-bit summaries (rounded up) still bound every document of their block, coordinate-wise
    Xd = X.toarray()
    assert a.sum_val_.dtype == np.uint8
    for blk in range(0, a.n_blocks_, 7):
        docs = a.block_docs_[a.block_doc_ptr_[blk]:a.block_doc_ptr_[blk + 1]]
        idx = a.sum_idx_[a.sum_ptr_[blk]:a.sum_ptr_[blk + 1]].astype(np.int64)
        summ = np.zeros(X.shape[1], np.float32)
        summ[idx] = a.sum_val_[a.sum_ptr_[blk]:a.sum_ptr_[blk + 1]].astype(np.float32) * a.sum_scale_[blk]
        assert np.all(summ[None, :] >= Xd[docs])
        assert np.all(summ[idx] <= Xd[docs][:, idx].max(axis=0) + a.sum_scale_[blk] * (1 + 1e-5))  # one step up at most
