"""Tests for hashlearn.metrics: hand-computed values, cross-checks with scikit-learn / faiss /
numpy brute force, tie handling, chunk-size invariance and input validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import average_precision_score, ndcg_score

import hashlearn.metrics as M
from hashlearn.errors import ValidationError
from hashlearn.metrics import knn as knn_mod
from hashlearn.metrics import ranking as ranking_mod


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Force blocks of a few elements so every chunked loop runs many iterations."""
    monkeypatch.setattr(ranking_mod, "_BUDGET", 7)
    monkeypatch.setattr(knn_mod, "_BUDGET", 7)


def brute_ranking(d):
    """Reference tie rule: sort by (distance, index)."""
    d = np.asarray(d)
    idx = np.broadcast_to(np.arange(d.shape[1]), d.shape)
    return np.lexsort((idx, d), axis=1)


# ----------------------------------------------------------------------------------------------
# average precision
# ----------------------------------------------------------------------------------------------


def test_ap_hand_computed():
    # [1,0,1,0,0]: hits at ranks 1 and 3 -> P(1)=1/1, P(3)=2/3; retrieved-normaliser: 2 hits
    #   AP = (1 + 2/3) / 2 = 0.8333...
    # [0,1,1,0,1]: P(2)=1/2, P(3)=2/3, P(5)=3/5 -> (0.5 + 0.6667 + 0.6) / 3 = 0.58889
    # [0,0,0,0,0]: no hit -> 0
    rel = np.array([[1, 0, 1, 0, 0], [0, 1, 1, 0, 1], [0, 0, 0, 0, 0]], dtype=bool)
    assert_allclose(M.average_precision(rel), [(1 + 2 / 3) / 2, (1 / 2 + 2 / 3 + 3 / 5) / 3, 0.0])
    assert M.mean_average_precision(rel) == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2 + 2 / 3 + 3 / 5) / 3) / 3)


def test_ap_at_k_and_normalizers():
    rel = np.array([[1, 0, 1, 0, 0]])
    # k=2: top-2 = [1,0] -> retrieved normaliser: 1 hit -> AP = 1/1 = 1
    assert M.average_precision(rel, k=2)[0] == pytest.approx(1.0)
    # relevant normaliser, 4 relevant in the database: Z = min(2, 4) = 2 -> AP = 1/2
    assert M.average_precision(rel, k=2, normalizer="relevant", n_relevant=[4])[0] == pytest.approx(0.5)
    # k=5: Z = min(5, 4) = 4 -> (1 + 2/3) / 4 = 0.41667
    assert M.average_precision(rel, normalizer="relevant", n_relevant=[4])[0] == pytest.approx((1 + 2 / 3) / 4)
    # a query with no relevant item at all: AP = 0 with both normalisers
    zero = np.zeros((1, 5), dtype=bool)
    assert M.average_precision(zero, normalizer="relevant", n_relevant=[0])[0] == 0.0
    # 1-D input is one query; {0,1} ints accepted like bools
    assert M.average_precision([1, 0, 1, 0, 0]).shape == (1,)
    assert M.average_precision([0, 1])[0] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_ap_matches_sklearn_on_full_ranking(seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = rng.random((8, n)) < 0.3
    y[:, 0] = True  # every query has at least one relevant item
    scores = rng.random((8, n))  # continuous: no ties
    order = np.argsort(-scores, axis=1)
    rel = np.take_along_axis(y, order, axis=1)
    expected = [average_precision_score(y[i], scores[i]) for i in range(8)]
    assert_allclose(M.average_precision(rel), expected, rtol=1e-12)
    assert_allclose(
        M.average_precision(rel, normalizer="relevant", n_relevant=y.sum(1)), expected, rtol=1e-12
    )


def test_ap_normalizers_differ_on_truncated_ranking():
    # top-3 = [1,0,0] with 3 relevant items overall: retrieved -> 1/1 = 1, relevant -> 1/min(3,3)
    rel = np.array([[1, 0, 0, 1, 1]])
    assert M.average_precision(rel, k=3)[0] == pytest.approx(1.0)
    assert M.average_precision(rel, k=3, normalizer="relevant", n_relevant=[3])[0] == pytest.approx(1 / 3)


def test_ap_validation():
    rel = np.array([[1, 0, 1]])
    with pytest.raises(ValidationError, match="k=4 exceeds the 3"):
        M.average_precision(rel, k=4)
    with pytest.raises(ValidationError, match="positive"):
        M.average_precision(rel, k=0)
    with pytest.raises(ValidationError, match="normalizer"):
        M.average_precision(rel, normalizer="total")
    with pytest.raises(ValidationError, match="needs n_relevant"):
        M.average_precision(rel, normalizer="relevant")
    with pytest.raises(ValidationError, match="only used"):
        M.average_precision(rel, n_relevant=[2])
    with pytest.raises(ValidationError, match=r"n_relevant\[0\] is 1 .* holds 2"):
        M.average_precision(rel, normalizer="relevant", n_relevant=[1])
    with pytest.raises(ValidationError, match="n_relevant has 2 entries but the relevance has 1"):
        M.average_precision(rel, normalizer="relevant", n_relevant=[2, 2])
    with pytest.raises(ValidationError, match="empty"):
        M.average_precision(np.zeros((0, 3), dtype=bool))
    with pytest.raises(ValidationError, match="NaN"):
        M.average_precision(np.array([[1.0, np.nan]]))
    with pytest.raises(ValidationError, match="only 0 and 1"):
        M.average_precision(np.array([[2, 0]]))


def test_ap_chunk_invariance(tiny_blocks):
    rng = np.random.default_rng(3)
    rel = rng.random((13, 17)) < 0.4
    expected = []
    for row in rel:  # per-query loop reference
        hits = np.flatnonzero(row)
        expected.append(np.mean((np.arange(len(hits)) + 1) / (hits + 1)) if len(hits) else 0.0)
    assert_allclose(M.average_precision(rel), expected, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# precision / recall / ndcg
# ----------------------------------------------------------------------------------------------


def test_precision_recall_at_k():
    rel = np.array([[1, 0, 1, 1], [0, 0, 0, 1]])
    # top-3: 2 hits / 3 and 0 hits / 3
    assert_allclose(M.precision_at_k(rel, 3), [2 / 3, 0.0])
    assert_allclose(M.precision_at_k(rel), [3 / 4, 1 / 4])
    # recall with 5 and 0... second query has 1 relevant in the list, 2 in the database
    assert_allclose(M.recall_at_k(rel, 3, [5, 2]), [2 / 5, 0.0])
    assert_allclose(M.recall_at_k(rel, None, [5, 2]), [3 / 5, 1 / 2])
    # no relevant item at all -> recall 0
    assert_allclose(M.recall_at_k(np.zeros((1, 3), bool), 2, [0]), [0.0])
    with pytest.raises(ValidationError, match="holds 3"):
        M.recall_at_k(rel, 2, [2, 2])


def test_ndcg_hand_computed():
    # gains [3,2,0,1]: DCG = 3/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5) = 3 + 1.26186 + 0.43068
    # ideal [3,2,1,0]:  IDCG = 3 + 1.26186 + 1/log2(4) = 4.76186
    dcg = 3 + 2 / np.log2(3) + 1 / np.log2(5)
    idcg = 3 + 2 / np.log2(3) + 1 / 2
    assert M.ndcg_at_k([3, 2, 0, 1])[0] == pytest.approx(dcg / idcg)
    # k=2: DCG = IDCG = 3 + 2/log2(3) -> 1
    assert M.ndcg_at_k([3, 2, 0, 1], k=2)[0] == pytest.approx(1.0)
    # ideal from a judgement list with an unretrieved item of gain 3: IDCG@2 = 3 + 3/log2(3)
    assert M.ndcg_at_k([3, 2, 0, 1], k=2, ideal_gains=[[3, 3, 2, 1]])[0] == pytest.approx(
        (3 + 2 / np.log2(3)) / (3 + 3 / np.log2(3))
    )
    assert M.ndcg_at_k([0, 0, 0])[0] == 0.0
    with pytest.raises(ValidationError, match="non-negative"):
        M.ndcg_at_k([1, -1])
    with pytest.raises(ValidationError, match="ideal_gains has 2 rows but gains has 1"):
        M.ndcg_at_k([1, 0], ideal_gains=np.ones((2, 2)))


@pytest.mark.parametrize("k", [1, 3, 10, None])
def test_ndcg_matches_sklearn(k):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 4, size=(6, 25)).astype(float)
    scores = rng.random((6, 25))
    gains = np.take_along_axis(y, np.argsort(-scores, axis=1), axis=1)
    ours = M.ndcg_at_k(gains, k)
    ref = [ndcg_score(y[i : i + 1], scores[i : i + 1], k=k) for i in range(6)]
    assert_allclose(ours, ref, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# labels -> relevance
# ----------------------------------------------------------------------------------------------


def test_relevance_single_label():
    yq = np.array([0, 2])
    ydb = np.array([0, 1, 2, 0, 2])
    ranking = np.array([[3, 1, -1], [4, 0, 2]])
    # query 0 (class 0): db 3 is class 0, db 1 class 1, -1 empty -> [T, F, F]
    # query 1 (class 2): db 4 class 2, db 0 class 0, db 2 class 2 -> [T, F, T]
    assert_array_equal(M.relevance_from_labels(yq, ydb, ranking), [[1, 0, 0], [1, 0, 1]])
    assert_array_equal(M.relevance_from_labels(yq, ydb), [[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    assert_array_equal(M.count_relevant(yq, ydb), [2, 2])
    assert_array_equal(M.count_relevant([7], ydb), [0])  # class absent from the database
    assert_array_equal(M.relevance_from_labels(["a"], ["b", "a"]), [[False, True]])


def test_relevance_multi_label():
    yq = np.array([[1, 0, 0], [0, 1, 1]])
    ydb = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0], [0.5, 0, 0]])
    # query 0 shares label 0 with db 0 and db 3; query 1 shares label 1 with db 0, label 2 with db 1
    full = M.relevance_from_labels(yq, ydb)
    assert_array_equal(full, [[1, 0, 0, 1], [1, 1, 0, 0]])
    assert_array_equal(M.count_relevant(yq, ydb), [2, 2])
    ranking = np.array([[2, 3], [1, -1]])
    assert_array_equal(M.relevance_from_labels(yq, ydb, ranking), [[0, 1], [1, 0]])


def test_relevance_chunk_invariance_and_agreement(tiny_blocks):
    rng = np.random.default_rng(11)
    for yq, ydb in [
        (rng.integers(0, 4, 9), rng.integers(0, 4, 23)),
        (rng.random((9, 5)) < 0.3, rng.random((23, 5)) < 0.3),
    ]:
        full = M.relevance_from_labels(yq, ydb)
        if yq.ndim == 1:
            assert_array_equal(full, yq[:, None] == ydb[None, :])
        else:
            assert_array_equal(full, (yq.astype(int) @ ydb.T.astype(int)) > 0)
        ranking = rng.integers(0, 23, size=(9, 6))
        assert_array_equal(M.relevance_from_labels(yq, ydb, ranking), np.take_along_axis(full, ranking, 1))
        assert_array_equal(M.count_relevant(yq, ydb), full.sum(1))


def test_relevance_validation():
    with pytest.raises(ValidationError, match="labels has 2 rows but the ranking has 3 queries"):
        M.relevance_from_labels([0, 1], [0, 1, 1], np.zeros((3, 2), dtype=int))
    with pytest.raises(ValidationError, match="db_labels has 3 rows"):
        M.relevance_from_labels([0, 1], [0, 1, 1], np.array([[0, 3], [1, 2]]))
    with pytest.raises(ValidationError, match="1-D but db_labels is 2-D"):
        M.relevance_from_labels([0, 1], np.ones((3, 2)))
    with pytest.raises(ValidationError, match="2 label columns but db_labels has 3"):
        M.relevance_from_labels(np.ones((1, 2)), np.ones((3, 3)))
    with pytest.raises(ValidationError, match="NaN"):
        M.relevance_from_labels([0.0, np.nan], [0.0])
    with pytest.raises(ValidationError, match="empty"):
        M.relevance_from_labels([], [0, 1])


# ----------------------------------------------------------------------------------------------
# Hamming ranking and tie rule
# ----------------------------------------------------------------------------------------------


def test_hamming_ranking_hand_example():
    # distances [2,1,1,0,1]: 0 at index 3, then the tie {1,2,4} in index order
    assert_array_equal(M.hamming_ranking([[2, 1, 1, 0, 1]], 3), [[3, 1, 2]])
    assert_array_equal(M.hamming_ranking([[2, 1, 1, 0, 1]]), [[3, 1, 2, 4, 0]])


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.integers(0, 4, (12, 40)).astype(np.uint8),  # heavy ties, composite-key path
        lambda rng: rng.integers(0, 2**61, (12, 40)) * 2,  # huge span: generic path
        lambda rng: rng.integers(0, 3, (12, 40)) + 0.5,  # float ties: generic path with fallback
        lambda rng: rng.random((12, 40)),  # float without ties
        lambda rng: rng.random((12, 40)) < 0.5,  # bool distances
        lambda rng: rng.integers(-70000, 70000, (12, 40)),  # negative, span > 16 bits
    ],
)
@pytest.mark.parametrize("k", [1, 5, 39, 40])
def test_hamming_ranking_matches_stable_sort(make, k, tiny_blocks):
    d = make(np.random.default_rng(k))
    assert_array_equal(M.hamming_ranking(d, k), brute_ranking(d)[:, :k])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=30), st.integers(1, 30))
def test_hamming_ranking_property(row, k):
    k = min(k, len(row))
    d = np.array([row])
    assert_array_equal(M.hamming_ranking(d, k)[0], np.argsort(d[0], kind="stable")[:k])


def test_hamming_ranking_validation():
    with pytest.raises(ValidationError, match="k=6 exceeds the 5"):
        M.hamming_ranking(np.zeros((2, 5), dtype=int), 6)
    with pytest.raises(ValidationError, match="NaN"):
        M.hamming_ranking([[0.0, np.nan]])
    with pytest.raises(ValidationError, match="2-D"):
        M.hamming_ranking([0, 1, 2])


def test_end_to_end_map_with_ties():
    # query class 0; db classes [1,0,0,1]; distances [1,1,0,1]
    # tie rule -> ranking [2,0,1,3]; relevance [T,F,T,F]; AP = (1/1 + 2/3)/2
    ranking = M.hamming_ranking([[1, 1, 0, 1]])
    rel = M.relevance_from_labels([0], [1, 0, 0, 1], ranking)
    assert_array_equal(ranking, [[2, 0, 1, 3]])
    assert M.mean_average_precision(rel) == pytest.approx((1 + 2 / 3) / 2)


# ----------------------------------------------------------------------------------------------
# Hamming-radius metrics
# ----------------------------------------------------------------------------------------------


def test_radius_hand_example():
    d = np.array([[0, 1, 2, 3], [3, 3, 2, 1]])
    rel = np.array([[1, 0, 1, 1], [0, 1, 0, 0]], dtype=bool)
    retrieved, hit, n_rel = M.radius_counts(d, rel, n_bits=3)
    assert_array_equal(retrieved, [[1, 2, 3, 4], [0, 1, 2, 4]])
    assert_array_equal(hit, [[1, 1, 2, 3], [0, 0, 0, 1]])
    assert_array_equal(n_rel, [3, 1])
    prec, rec = M.precision_recall_by_radius(d, rel, n_bits=3)
    # query 0: P = [1/1, 1/2, 2/3, 3/4], R = [1/3, 1/3, 2/3, 1]
    # query 1: P = [0 (nothing returned), 0/1, 0/2, 1/4], R = [0, 0, 0, 1]
    assert_allclose(prec, [(1 + 0) / 2, (0.5 + 0) / 2, (2 / 3 + 0) / 2, (0.75 + 0.25) / 2])
    assert_allclose(rec, [1 / 6, 1 / 6, 1 / 3, 1.0])
    # radius 2: query 0 -> 2/3, query 1 -> 0/2 = 0; radius 0: query 1 returns nothing -> 0
    assert M.precision_within_radius(d, rel, radius=2) == pytest.approx(1 / 3)
    assert M.precision_within_radius(d, rel, radius=0) == pytest.approx(0.5)


def test_radius_matches_loop_reference(tiny_blocks):
    rng = np.random.default_rng(5)
    n_bits = 6
    d = rng.integers(0, n_bits + 1, (11, 30))
    rel = rng.random((11, 30)) < 0.3
    prec, rec = M.precision_recall_by_radius(d, rel, n_bits)
    for r in range(n_bits + 1):
        p_q, r_q = [], []
        for q in range(11):
            ret = d[q] <= r
            p_q.append(rel[q][ret].sum() / ret.sum() if ret.sum() else 0.0)
            r_q.append(rel[q][ret].sum() / rel[q].sum() if rel[q].sum() else 0.0)
        assert prec[r] == pytest.approx(np.mean(p_q))
        assert rec[r] == pytest.approx(np.mean(r_q))
        assert M.precision_within_radius(d, rel, r) == pytest.approx(np.mean(p_q))


def test_radius_validation():
    d = np.array([[0, 5]])
    rel = np.array([[True, False]])
    with pytest.raises(ValidationError, match="distance 5 but n_bits is 4"):
        M.radius_counts(d, rel, 4)
    with pytest.raises(ValidationError, match=r"shape \(1, 2\) but relevance has shape \(1, 3\)"):
        M.precision_within_radius(d, np.ones((1, 3), bool))
    with pytest.raises(ValidationError, match="numeric"):
        M.precision_within_radius(d.astype(float), rel)
    with pytest.raises(ValidationError, match="radius"):
        M.precision_within_radius(d, rel, radius=-1)


# ----------------------------------------------------------------------------------------------
# exact kNN
# ----------------------------------------------------------------------------------------------


def brute_knn(xq, xb, k, metric):
    q, b = xq.astype(np.float64), xb.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
    if metric == "l2":
        key = ((q[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    else:
        key = -(q @ b.T)
    order = brute_ranking(key)[:, :k]
    d = np.take_along_axis(key, order, 1)
    return (d if metric == "l2" else -d).astype(np.float32), order


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_exact_knn_with_ties(metric):
    rng = np.random.default_rng(2)
    xb = rng.integers(0, 3, (300, 4)).astype(np.float32)  # 81 distinct points: many exact ties
    xq = rng.integers(0, 3, (20, 4)).astype(np.float32)
    D, I = M.exact_knn(xq, xb, 15, metric, chunk_size=37)
    Dr, Ir = brute_knn(xq, xb, 15, metric)
    assert D.dtype == np.float32 and I.dtype == np.int64
    assert_array_equal(I, Ir)
    assert_array_equal(D, Dr)


def test_exact_knn_cosine_and_chunk_invariance():
    rng = np.random.default_rng(4)
    xb = rng.standard_normal((120, 6))
    xq = rng.standard_normal((9, 6))
    Dr, Ir = brute_knn(xq, xb, 10, "cosine")
    for chunk, qchunk in [(1, 1), (7, 4), (10, None), (1000, None)]:
        D, I = M.exact_knn(xq, xb, 10, "cosine", chunk_size=chunk, query_chunk_size=qchunk)
        assert_array_equal(I, Ir)
        assert_allclose(D, Dr, rtol=1e-6)
    D_all, I_all = M.exact_knn(xq, xb, 120, "l2", chunk_size=13)  # k == n
    assert_array_equal(I_all, brute_knn(xq, xb, 120, "l2")[1])


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_exact_knn_matches_faiss(metric):
    import faiss  # a hard dependency of hashlearn: never skipped
    rng = np.random.default_rng(9)
    xb = rng.standard_normal((500, 16)).astype(np.float32)
    xq = rng.standard_normal((30, 16)).astype(np.float32)
    index = faiss.IndexFlatL2(16) if metric == "l2" else faiss.IndexFlatIP(16)
    index.add(xb)
    Df, If = index.search(xq, 10)
    D, I = M.exact_knn(xq, xb, 10, metric, chunk_size=64)
    assert_array_equal(I, If)
    assert_allclose(D, Df, rtol=1e-4, atol=1e-4)


def test_exact_knn_validation():
    xb = np.zeros((5, 3))
    with pytest.raises(ValidationError, match="k=6 exceeds the 5"):
        M.exact_knn(np.zeros((1, 3)), xb, 6)
    with pytest.raises(ValidationError, match="xq has dimension 2 but xb has dimension 3"):
        M.exact_knn(np.zeros((1, 2)), xb, 1)
    with pytest.raises(ValidationError, match="xq contains NaN"):
        M.exact_knn(np.array([[0.0, np.nan, 0.0]]), xb, 1)
    with pytest.raises(ValidationError, match="empty"):
        M.exact_knn(np.zeros((0, 3)), xb, 1)
    with pytest.raises(ValidationError, match="metric"):
        M.exact_knn(np.zeros((1, 3)), xb, 1, metric="hamming")
    with pytest.raises(ValidationError, match="xb row 0 is all zeros"):
        M.exact_knn(np.ones((1, 3)), xb, 1, metric="cosine")
    with pytest.raises(ValidationError, match="chunk_size"):
        M.exact_knn(np.zeros((1, 3)), xb, 1, chunk_size=0)


def test_neighbor_distances():
    rng = np.random.default_rng(1)
    xb = rng.integers(-3, 4, (40, 5)).astype(float)
    xq = rng.integers(-3, 4, (6, 5)).astype(float)
    for metric in ["l2", "ip", "cosine"]:
        D, I = M.exact_knn(xq + 0.5, xb + 0.5, 8, metric)
        assert_allclose(M.neighbor_distances(xq + 0.5, xb + 0.5, I, metric), D, rtol=1e-6)
    out = M.neighbor_distances([[0.0, 0.0]], [[3.0, 4.0]], [[0, -1]])
    assert out[0, 0] == 25.0 and np.isnan(out[0, 1])
    with pytest.raises(ValidationError, match="I has 2 rows but xq has 1"):
        M.neighbor_distances([[0.0, 0.0]], [[3.0, 4.0]], [[0], [0]])


# ----------------------------------------------------------------------------------------------
# kNN recall
# ----------------------------------------------------------------------------------------------


def test_knn_recall_hand_computed():
    pred = np.array([[1, 2, 3], [4, 5, 6]])
    true = np.array([[3, 2, 9], [7, 8, 9]])
    # query 0: {1,2,3} & {3,2,9} = {2,3} -> 2/3; query 1: 0 -> mean 1/3
    assert M.knn_recall(pred, true) == pytest.approx(1 / 3)
    # k=1: top-1 {1} vs {3}, {4} vs {7} -> 0
    assert M.knn_recall(pred, true, k=1) == 0.0
    # repeated ids and empty slots count at most once / never: {3} & {3,2,1} -> 1/3
    assert M.knn_recall([[3, 3, -1]], [[3, 2, 1]]) == pytest.approx(1 / 3)
    # a longer prediction list is truncated to k
    assert M.knn_recall([[9, 8, 0, 1]], [[0, 1]]) == 0.0
    with pytest.raises(ValidationError, match="k=3 exceeds the 2 columns of I_pred"):
        M.knn_recall([[0, 1]], [[0, 1, 2]])
    with pytest.raises(ValidationError, match="I_pred has 1 rows but I_true has 2"):
        M.knn_recall([[0]], [[0], [1]])
    with pytest.raises(ValidationError, match="distinct"):
        M.knn_recall([[0, 1]], [[1, 1]])
    with pytest.raises(ValidationError, match="I_pred holds id -2"):
        M.knn_recall([[-2, 1]], [[0, 1]])


def test_knn_recall_random_matches_sets():
    rng = np.random.default_rng(8)
    pred = np.array([rng.permutation(50)[:10] for _ in range(20)])
    true = np.array([rng.permutation(50)[:10] for _ in range(20)])
    ref = np.mean([len(set(p) & set(t)) / 10 for p, t in zip(pred, true)])
    assert M.knn_recall(pred, true) == pytest.approx(ref)


def test_knn_recall_tie_aware():
    xb = np.array([[0.0], [1.0], [1.0], [5.0]])
    xq = np.array([[0.0]])
    D, I = M.exact_knn(xq, xb, 2)
    assert_array_equal(I, [[0, 1]])  # tie between db 1 and db 2 -> smaller index
    pred = np.array([[0, 2]])  # the other member of the tie
    dp = M.neighbor_distances(xq, xb, pred)
    assert M.knn_recall(pred, I) == pytest.approx(0.5)
    assert M.knn_recall_tie_aware(pred, dp, D) == pytest.approx(1.0)
    pred = np.array([[0, 3]])  # db 3 is farther than the 2nd neighbour
    assert M.knn_recall_tie_aware(pred, M.neighbor_distances(xq, xb, pred), D) == pytest.approx(0.5)
    pred = np.array([[2, 2]])  # duplicates count once
    assert M.knn_recall_tie_aware(pred, M.neighbor_distances(xq, xb, pred), D) == pytest.approx(0.5)
    pred = np.array([[0, -1]])  # empty slot (NaN distance) never counts
    assert M.knn_recall_tie_aware(pred, M.neighbor_distances(xq, xb, pred), D) == pytest.approx(0.5)
    # inner product: larger is closer; q=[1], db values [3,2,2,0] -> true top-2 = [0,1], sims [3,2]
    xb_ip = np.array([[3.0], [2.0], [2.0], [0.0]])
    D_ip, I_ip = M.exact_knn([[1.0]], xb_ip, 2, "ip")
    assert_array_equal(I_ip, [[0, 1]])
    pred = np.array([[2, 0]])
    dp = M.neighbor_distances([[1.0]], xb_ip, pred, "ip")
    assert M.knn_recall_tie_aware(pred, dp, D_ip, metric="ip") == pytest.approx(1.0)
    pred = np.array([[3, 0]])
    dp = M.neighbor_distances([[1.0]], xb_ip, pred, "ip")
    assert M.knn_recall_tie_aware(pred, dp, D_ip, metric="ip") == pytest.approx(0.5)
    with pytest.raises(ValidationError, match="not sorted ascending"):
        M.knn_recall_tie_aware([[0, 1]], [[0.0, 1.0]], [[2.0, 1.0]])
    with pytest.raises(ValidationError, match="NaN"):
        M.knn_recall_tie_aware([[0, 1]], [[0.0, np.nan]], [[0.0, 1.0]])


def test_tie_aware_bounds_plain_recall():
    rng = np.random.default_rng(12)
    xb = rng.integers(0, 3, (200, 3)).astype(float)
    xq = rng.integers(0, 3, (15, 3)).astype(float)
    D, I = M.exact_knn(xq, xb, 10)
    pred = np.array([rng.permutation(200)[:10] for _ in range(15)])
    pred[:, :5] = I[:, 5:]  # half of the true neighbours, shifted
    dp = M.neighbor_distances(xq, xb, pred)
    plain = M.knn_recall(pred, I)
    tie = M.knn_recall_tie_aware(pred, dp, D)
    ref = np.mean(  # distinct ids at least as close as the 10th neighbour, per query
        [len({i for i, d in zip(pred[q], dp[q]) if d <= D[q, -1]}) / 10 for q in range(15)]
    )
    assert np.any([len(set(row)) < 10 for row in pred])  # the random fill repeats some ids
    assert plain <= tie
    assert tie == pytest.approx(ref)
    assert M.knn_recall_tie_aware(I, M.neighbor_distances(xq, xb, I), D) == 1.0
