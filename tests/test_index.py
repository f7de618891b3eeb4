"""BinaryIndex, MultiIndexHashing and HashIndex against brute force, faiss interoperability.

MultiIndexHashing must return exactly what BinaryIndex returns (same distances, same ids, same tie
order) whatever its substrings, probe budget or content, and BinaryIndex must equal a brute-force
(distance, id) sort computed with plain numpy.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hashlearn
from hashlearn import BinaryIndex, HashIndex, MultiIndexHashing
from hashlearn.codes import MISSING_DISTANCE, pack
from hashlearn.errors import IncompatibleError, NotFittedError, ValidationError

INF = float("inf")


# -- references ----------------------------------------------------------------------------------------
def random_codes(rng, n, n_bits, n_distinct=None, flip=0.0):
    if n_distinct is None:
        bits = rng.integers(0, 2, size=(n, n_bits), dtype=np.uint8)
    else:
        protos = rng.integers(0, 2, size=(n_distinct, n_bits), dtype=np.uint8)
        bits = protos[rng.integers(0, n_distinct, size=n)]
    if flip:
        bits = bits ^ (rng.random(bits.shape) < flip).astype(np.uint8)
    return pack(bits.reshape(n, n_bits))


def random_queries(rng, codes, nq, n_bits):
    """Queries near stored codes (exact duplicates and small perturbations) and random ones."""
    fresh = random_codes(rng, nq, n_bits)
    if codes.shape[0] == 0:
        return fresh
    near = codes[rng.integers(0, codes.shape[0], size=nq)]
    noise = random_codes(rng, nq, n_bits, flip=0.0) & random_codes(rng, nq, n_bits) & random_codes(rng, nq, n_bits)
    near = near ^ (noise & random_codes(rng, nq, n_bits))  # ~1/16 of the bits flipped
    pick = rng.random(nq)
    out = np.where((pick < 0.3)[:, None], codes[rng.integers(0, codes.shape[0], size=nq)], near)
    return np.ascontiguousarray(np.where((pick > 0.8)[:, None], fresh, out))


def make_ids(rng, n, kind, start=0):
    if kind == "default":
        return None
    if kind == "increasing":
        return np.sort(rng.choice(10 * n + 100, size=n, replace=False)) + start
    if kind == "descending":
        return np.sort(rng.choice(10 * n + 100, size=n, replace=False))[::-1] + start
    return rng.choice(10 * n + 100, size=n, replace=False) + start  # random, non-monotone


def hamming(q, codes):
    return np.bitwise_count(q[:, None, :] ^ codes[None, :, :]).sum(-1).astype(np.int64)


def ref_knn(q, codes, ids, k):
    d = hamming(q, codes)
    D = np.full((q.shape[0], k), MISSING_DISTANCE, np.int32)
    I = np.full((q.shape[0], k), -1, np.int64)
    for i in range(q.shape[0]):
        order = np.lexsort((ids, d[i]))[:k]
        D[i, : order.size] = d[i, order]
        I[i, : order.size] = ids[order]
    return D, I


def ref_range(q, codes, ids, radius):
    d = hamming(q, codes)
    lims, D, I = [0], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for i in range(q.shape[0]):
        hit = np.flatnonzero(d[i] <= radius)
        order = hit[np.lexsort((ids[hit], d[i, hit]))]
        D.append(d[i, order])
        I.append(ids[order])
        lims.append(lims[-1] + order.size)
    return np.array(lims), np.concatenate(D), np.concatenate(I)


def assert_knn_equal(got, want, msg=""):
    np.testing.assert_array_equal(got[0], want[0], err_msg=f"distances {msg}")
    np.testing.assert_array_equal(got[1], want[1], err_msg=f"ids {msg}")
    assert got[0].dtype == np.int32 and got[1].dtype == np.int64


def assert_range_equal(got, want, msg=""):
    for a, b, what in zip(got, want, ("lims", "distances", "ids")):
        np.testing.assert_array_equal(a, b, err_msg=f"{what} {msg}")


class Model:
    """The expected content of an index, maintained with plain numpy."""

    def __init__(self, n_bits):
        self.codes = np.zeros((0, (n_bits + 63) // 64), np.uint64)
        self.ids = np.zeros(0, np.int64)

    def add(self, codes, ids):
        self.codes = np.concatenate([self.codes, codes])
        self.ids = np.concatenate([self.ids, ids])

    def remove(self, ids):
        keep = ~np.isin(self.ids, ids)
        n = int((~keep).sum())
        self.codes, self.ids = self.codes[keep], self.ids[keep]
        return n


# -- BinaryIndex ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [7, 64, 65, 200])
@pytest.mark.parametrize("n", [0, 1, 50, 1500])
@pytest.mark.parametrize("ids_kind", ["default", "increasing", "random"])
def test_binary_index_matches_brute_force(n_bits, n, ids_kind):
    rng = np.random.default_rng(n_bits * 7919 + n)
    codes = random_codes(rng, n, n_bits, n_distinct=max(1, n // 10) if n_bits > 8 else None, flip=0.01)
    ids = make_ids(rng, n, ids_kind)
    index = BinaryIndex(n_bits)
    got_ids = index.add(codes, ids)
    expected_ids = np.arange(n) if ids is None else ids
    np.testing.assert_array_equal(got_ids, expected_ids)
    assert got_ids.dtype == np.int64 and index.ntotal == len(index) == n
    np.testing.assert_array_equal(index.ids, expected_ids)
    np.testing.assert_array_equal(index.codes, codes)
    q = random_queries(rng, codes, 13, n_bits)
    for k in sorted({1, 10, n + 5}):
        assert_knn_equal(index.search(q, k), ref_knn(q, codes, expected_ids, k), f"k={k}")
    for radius in sorted({0, 2, n_bits // 3, n_bits}):
        assert_range_equal(index.range_search(q, radius), ref_range(q, codes, expected_ids, radius), f"r={radius}")
    # one query as a 1-D array of words
    D, I = index.search(q[0], 3)
    assert D.shape == I.shape == (1, 3)
    assert_knn_equal((D, I), ref_knn(q[:1], codes, expected_ids, 3))


def test_binary_index_docstring_example():
    index = BinaryIndex(64)
    index.add(np.array([[0], [1], [3]], dtype=np.uint64), ids=[10, 11, 12])
    D, I = index.search(np.array([[1]], dtype=np.uint64), 2)
    assert I.tolist() == [[11, 10]] and D.tolist() == [[0, 1]]


def test_binary_index_batches_ids_and_remove():
    rng = np.random.default_rng(0)
    n_bits = 70
    index, model = BinaryIndex(n_bits), Model(n_bits)
    c1 = random_codes(rng, 300, n_bits, n_distinct=20, flip=0.02)
    ids1 = index.add(c1)  # default ids 0..299
    np.testing.assert_array_equal(ids1, np.arange(300))
    model.add(c1, ids1)
    c2 = random_codes(rng, 200, n_bits, n_distinct=20, flip=0.02)
    ids2 = rng.choice(np.arange(1000, 5000), size=200, replace=False)  # non-monotone
    index.add(c2, ids2)
    model.add(c2, ids2)
    c3 = random_codes(rng, 50, n_bits)
    ids3 = index.add(c3)  # default ids continue after the largest id so far
    np.testing.assert_array_equal(ids3, np.arange(ids2.max() + 1, ids2.max() + 51))
    model.add(c3, ids3)
    c4 = random_codes(rng, 40, n_bits)
    index.add(c4, np.arange(500, 540))  # smaller than existing ids
    model.add(c4, np.arange(500, 540))
    q = random_queries(rng, model.codes, 20, n_bits)

    def check(msg):
        # the same (id, code) rows; row order is insertion order only until a removal swaps rows
        got, want = np.argsort(index.ids), np.argsort(model.ids)
        np.testing.assert_array_equal(index.ids[got], model.ids[want])
        np.testing.assert_array_equal(index.codes[got], model.codes[want])
        for k in (1, 17, 700):
            assert_knn_equal(index.search(q, k), ref_knn(q, model.codes, model.ids, k), f"{msg} k={k}")
        assert_range_equal(index.range_search(q, 20), ref_range(q, model.codes, model.ids, 20), msg)

    check("after adds")
    victims = np.concatenate([rng.choice(model.ids, size=150, replace=False), [10**9, 777777]])
    assert index.remove(victims) == model.remove(victims) == 150
    check("after remove")
    assert index.remove([10**9, 123456789]) == 0  # unknown ids
    assert index.remove([]) == 0
    check("after no-op removes")
    c5 = random_codes(rng, 30, n_bits, n_distinct=2)
    ids5 = index.add(c5)
    model.add(c5, ids5)
    check("after add following remove")
    everything = model.ids.copy()
    assert index.remove(everything) == model.remove(everything) == everything.size
    assert index.ntotal == 0
    D, I = index.search(q, 4)
    assert np.all(I == -1) and np.all(D == MISSING_DISTANCE)


@pytest.mark.parametrize("cls", [BinaryIndex, MultiIndexHashing])
def test_later_batch_with_smaller_increasing_ids_wins_ties(cls):
    """Each batch is id-ordered, but the second batch's ids precede the first's: ties must still go
    to the smaller id, not to the earlier position."""
    rng = np.random.default_rng(4)
    codes = random_codes(rng, 50, 32, n_distinct=3)
    index = cls(32)
    index.add(codes, np.arange(100, 150))
    index.add(codes, np.arange(0, 50))  # the same codes again, with smaller ids
    index.add(codes[:1], [75])
    q = random_queries(rng, codes, 10, 32)
    all_codes = np.concatenate([codes, codes, codes[:1]])
    all_ids = np.concatenate([np.arange(100, 150), np.arange(50), [75]])
    for k in (1, 5, 60, 120):
        assert_knn_equal(index.search(q, k), ref_knn(q, all_codes, all_ids, k), f"k={k}")
    assert_range_equal(index.range_search(q, 8), ref_range(q, all_codes, all_ids, 8))


def test_binary_index_remove_everything_then_search():
    index = BinaryIndex(16)
    index.add(pack(np.eye(16, dtype=bool)), ids=np.arange(16)[::-1])
    assert index.remove(np.arange(16)) == 16
    assert index.ntotal == 0
    D, I = index.search(pack(np.ones((2, 16), bool)), 3)
    assert D.shape == (2, 3) and np.all(I == -1) and np.all(D == MISSING_DISTANCE)
    lims, D, I = index.range_search(pack(np.ones((2, 16), bool)), 16)
    np.testing.assert_array_equal(lims, [0, 0, 0])
    assert D.size == I.size == 0


@pytest.mark.parametrize("cls", [BinaryIndex, MultiIndexHashing])
def test_empty_index_search(cls):
    index = cls(100)
    q = random_codes(np.random.default_rng(0), 3, 100)
    D, I = index.search(q, 5)
    assert D.shape == I.shape == (3, 5) and D.dtype == np.int32 and I.dtype == np.int64
    assert np.all(I == -1) and np.all(D == MISSING_DISTANCE)
    lims, D, I = index.range_search(q, 100)
    np.testing.assert_array_equal(lims, [0, 0, 0, 0])
    assert D.size == 0 and I.size == 0


@pytest.mark.parametrize("cls", [BinaryIndex, MultiIndexHashing])
def test_duplicate_and_invalid_ids_rejected(cls):
    rng = np.random.default_rng(1)
    index = cls(64)
    index.add(random_codes(rng, 5, 64), ids=[10, 20, 30, 40, 50])
    before_codes, before_ids = index.codes.copy(), index.ids.copy()
    bad = [
        [1, 2, 2],  # duplicate within the batch
        [60, 30, 70],  # already in the index
        [-1, 61, 62],  # negative
        [1.0, 2.0, 3.0],  # not integers
        [1, 2],  # wrong length
        np.array([[1, 2, 3]]),  # 2-D
        np.array([2**64 - 1, 1, 2], dtype=np.uint64),  # does not fit int64
    ]
    for ids in bad:
        with pytest.raises(ValidationError):
            index.add(random_codes(rng, 3, 64), ids=ids)
    # nothing was added by the failed calls
    np.testing.assert_array_equal(index.codes, before_codes)
    np.testing.assert_array_equal(index.ids, before_ids)
    with pytest.raises(ValueError):  # ValidationError is also a ValueError
        index.add(random_codes(rng, 2, 64), ids=[10, 11])
    # a removed id can be reused
    assert index.remove([30]) == 1
    index.add(random_codes(rng, 1, 64), ids=[30])
    assert sorted(index.ids.tolist()) == [10, 20, 30, 40, 50]


@pytest.mark.parametrize("cls", [BinaryIndex, MultiIndexHashing])
def test_k_radius_and_query_validation(cls):
    rng = np.random.default_rng(2)
    index = cls(100)
    index.add(random_codes(rng, 20, 100))
    q = random_codes(rng, 2, 100)
    for k in (0, -3, 1.5, "3", None, np.float64(2.0)):
        with pytest.raises(ValidationError):
            index.search(q, k)
    assert index.search(q, np.int64(2))[0].shape == (2, 2)
    for r in (-1, 2.5, "1", None):
        with pytest.raises(ValidationError):
            index.range_search(q, r)
    bad_queries = [
        random_codes(rng, 2, 64),  # 1 word instead of 2
        random_codes(rng, 2, 192),  # 3 words
        q.astype(np.int64),  # wrong dtype
        q.astype(np.float64),
        q | np.uint64(1 << 63),  # padding bits set (bit 127 of a 100-bit code)
        q[None],  # 3-D
    ]
    for bad in bad_queries:
        with pytest.raises(ValidationError):
            index.search(bad, 2)
        with pytest.raises(ValidationError):
            index.range_search(bad, 2)
    with pytest.raises(ValidationError):
        index.add(random_codes(rng, 2, 64))  # codes of the wrong length
    with pytest.raises(ValidationError):
        index.add(q | np.uint64(1 << 63))


@pytest.mark.parametrize("bad", [0, -1, 2.0, "8", None])
def test_constructors_validate_n_bits(bad):
    with pytest.raises(ValidationError):
        BinaryIndex(bad)
    with pytest.raises(ValidationError):
        MultiIndexHashing(bad)


@pytest.mark.parametrize("m", [0, -1, 33])
def test_mih_validates_n_substrings(m):
    with pytest.raises(ValidationError):
        MultiIndexHashing(32, m)


# -- MultiIndexHashing == BinaryIndex ------------------------------------------------------------------
@st.composite
def mih_params(draw):
    budget = draw(st.sampled_from(["inf", "default", "zero", "finite"]))
    n_sub = draw(st.none() | st.integers(1, 6))
    # Exhaustive probing visits up to 2**L buckets per table (k > n, far queries): with an infinite
    # budget keep explicit substrings short; the default m = n_bits / log2(n) keeps them short anyway.
    max_bits = 160 if budget != "inf" or n_sub is None else min(160, 12 * n_sub)
    n_bits = draw(st.integers(8, max_bits))
    probe_budget = {"inf": INF, "default": None, "zero": 0, "finite": None}[budget]
    if budget == "finite":
        probe_budget = draw(st.integers(1, 3000) | st.floats(0.5, 3000.0))
    return dict(
        n_bits=n_bits,
        n_sub=n_sub,
        probe_budget=probe_budget,
        n=draw(st.integers(0, 400)),
        k=draw(st.integers(1, 50)),
        radius_frac=draw(st.floats(0.0, 0.5)),
        n_distinct=draw(st.none() | st.integers(1, 25)),
        flip=draw(st.sampled_from([0.0, 0.02, 0.1])),
        ids_kind=draw(st.sampled_from(["default", "increasing", "random", "descending"])),
        nq=draw(st.integers(1, 8)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _compare_mih_flat(mih, flat, model, q, k, radius, msg=""):
    want = ref_knn(q, model.codes, model.ids, k)
    assert_knn_equal(flat.search(q, k), want, f"flat {msg}")
    assert_knn_equal(mih.search(q, k), want, f"mih {msg}")
    want_r = ref_range(q, model.codes, model.ids, radius)
    assert_range_equal(flat.range_search(q, radius), want_r, f"flat {msg}")
    assert_range_equal(mih.range_search(q, radius), want_r, f"mih {msg}")


@settings(max_examples=60)
@given(p=mih_params())
def test_mih_equals_binary_index(p):
    rng = np.random.default_rng(p["seed"])
    n_bits = p["n_bits"]
    codes = random_codes(rng, p["n"], n_bits, p["n_distinct"], p["flip"])
    ids = make_ids(rng, p["n"], p["ids_kind"])
    mih = MultiIndexHashing(n_bits, p["n_sub"], probe_budget=p["probe_budget"])
    flat = BinaryIndex(n_bits)
    model = Model(n_bits)
    a, b = mih.add(codes, ids), flat.add(codes, ids)
    np.testing.assert_array_equal(a, b)
    model.add(codes, a)
    q = random_queries(rng, codes, p["nq"], n_bits)
    radius = int(p["radius_frac"] * n_bits)
    _compare_mih_flat(mih, flat, model, q, p["k"], radius)
    # ask again (tables built): same answer; and a different k on the same tables
    _compare_mih_flat(mih, flat, model, q, max(1, p["k"] // 3), radius // 2, "second search")


@settings(max_examples=40)
@given(p=mih_params(), remove_frac=st.floats(0.0, 1.0), n2=st.integers(0, 120))
def test_mih_equals_binary_index_after_remove_and_add(p, remove_frac, n2):
    rng = np.random.default_rng(p["seed"])
    n_bits = p["n_bits"]
    mih = MultiIndexHashing(n_bits, p["n_sub"], probe_budget=p["probe_budget"])
    flat = BinaryIndex(n_bits)
    model = Model(n_bits)
    codes = random_codes(rng, p["n"], n_bits, p["n_distinct"], p["flip"])
    ids = make_ids(rng, p["n"], p["ids_kind"])
    model.add(codes, mih.add(codes, ids))
    flat.add(codes, ids)
    q = random_queries(rng, codes, p["nq"], n_bits)
    radius = int(p["radius_frac"] * n_bits)
    _compare_mih_flat(mih, flat, model, q, p["k"], radius, "before remove")  # builds the tables
    victims = rng.permutation(model.ids)[: int(remove_frac * model.ids.size)]
    victims = np.concatenate([victims, [10**12]])  # plus an unknown id
    n_removed = model.remove(victims)
    assert mih.remove(victims) == n_removed
    assert flat.remove(victims) == n_removed
    _compare_mih_flat(mih, flat, model, q, p["k"], radius, "after remove")
    codes2 = random_codes(rng, n2, n_bits, p["n_distinct"], p["flip"])
    if p["ids_kind"] == "default":
        ids2 = None
    else:  # may interleave with or precede existing ids: the index stops being id-ordered
        free = np.setdiff1d(np.arange(20 * (p["n"] + n2) + 200), model.ids)
        ids2 = rng.choice(free, size=n2, replace=False)
        if p["ids_kind"] == "increasing":  # increasing within the batch, interleaved with the index
            ids2 = np.sort(ids2)
    a, b = mih.add(codes2, ids2), flat.add(codes2, ids2)
    np.testing.assert_array_equal(a, b)
    model.add(codes2, a)
    q2 = np.concatenate([q, random_queries(rng, model.codes, 3, n_bits)])
    _compare_mih_flat(mih, flat, model, q2, p["k"], radius, "after second add")


@pytest.mark.parametrize("probe_budget", [INF, None, 0, 200])
@pytest.mark.parametrize("n_bits, n_sub", [(64, None), (64, 4), (256, None), (96, 8)])
def test_mih_equals_binary_index_larger(n_bits, n_sub, probe_budget):
    """A few thousand clustered codes: most queries are answered by probing (or by the fallback)."""
    rng = np.random.default_rng(n_bits)
    n = 3000
    codes = random_codes(rng, n, n_bits, n_distinct=60, flip=0.03)
    ids = rng.permutation(n) * 3
    mih = MultiIndexHashing(n_bits, n_sub, probe_budget=probe_budget)
    flat = BinaryIndex(n_bits)
    model = Model(n_bits)
    model.add(codes, mih.add(codes, ids))
    flat.add(codes, ids)
    q = random_queries(rng, codes, 40, n_bits)
    for k in (1, 10, 100):
        _compare_mih_flat(mih, flat, model, q, k, n_bits // 10, f"k={k}")


def test_mih_probe_budget_is_query_time_knob():
    rng = np.random.default_rng(5)
    codes = random_codes(rng, 500, 48, n_distinct=30, flip=0.05)
    mih = MultiIndexHashing(48, 4)
    mih.add(codes, rng.permutation(500))
    q = random_queries(rng, codes, 10, 48)
    expected = mih.search(q, 20), mih.range_search(q, 6)
    for budget in (0, 1, 50, INF, None):
        mih.probe_budget = budget
        assert_knn_equal(mih.search(q, 20), expected[0], f"budget={budget}")
        assert_range_equal(mih.range_search(q, 6), expected[1], f"budget={budget}")


# -- faiss interoperability ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [8, 64, 120, 256])
@pytest.mark.parametrize("ids_kind", ["default", "random"])
def test_to_faiss_same_distances(n_bits, ids_kind):
    rng = np.random.default_rng(n_bits)
    n = 700
    codes = random_codes(rng, n, n_bits, n_distinct=40, flip=0.05)
    ids = make_ids(rng, n, ids_kind)
    index = BinaryIndex(n_bits)
    index.add(codes, ids)
    expected_ids = index.ids
    q = random_queries(rng, codes, 25, n_bits)
    fx = index.to_faiss()
    assert isinstance(fx, faiss.IndexBinaryIDMap2)
    assert fx.ntotal == n and fx.d == n_bits
    k = 30
    Df, If = fx.search(hashlearn.codes.to_bytes(q, n_bits), k)
    D, I = index.search(q, k)
    np.testing.assert_array_equal(Df, D)
    dist = hamming(q, codes)
    pos_of = {int(i): p for p, i in enumerate(expected_ids)}
    for r in range(q.shape[0]):
        # faiss' ids really are at the distances it reports
        np.testing.assert_array_equal(dist[r, [pos_of[int(i)] for i in If[r]]], Df[r])
        assert len(set(If[r].tolist())) == k
        below = D[r] < D[r, -1]
        assert set(If[r][below].tolist()) == set(I[r][below].tolist())


def test_to_faiss_needs_multiple_of_8_bits():
    index = BinaryIndex(12)
    with pytest.raises(IncompatibleError, match="8"):
        index.to_faiss()
    index.add(random_codes(np.random.default_rng(0), 3, 12))
    with pytest.raises(IncompatibleError):
        index.to_faiss()


def test_to_faiss_empty():
    fx = BinaryIndex(64).to_faiss()
    assert fx.ntotal == 0
    back = BinaryIndex.from_faiss(fx)
    assert back.ntotal == 0 and back.n_bits == 64


@pytest.mark.parametrize("n_bits", [8, 64, 72, 256])
def test_from_faiss_flat_and_idmaps(n_bits):
    rng = np.random.default_rng(n_bits)
    n = 300
    codes = random_codes(rng, n, n_bits, n_distinct=10, flip=0.05)
    raw = hashlearn.codes.to_bytes(codes, n_bits)
    q = random_queries(rng, codes, 10, n_bits)
    flat = faiss.IndexBinaryFlat(n_bits)
    flat.add(raw)
    back = BinaryIndex.from_faiss(flat)
    assert back.n_bits == n_bits
    np.testing.assert_array_equal(back.codes, codes)
    np.testing.assert_array_equal(back.ids, np.arange(n))
    assert_knn_equal(back.search(q, 15), ref_knn(q, codes, np.arange(n), 15))
    ids = rng.choice(10**6, size=n, replace=False)
    for wrapper in (faiss.IndexBinaryIDMap, faiss.IndexBinaryIDMap2):
        fx = wrapper(faiss.IndexBinaryFlat(n_bits))
        fx.add_with_ids(raw, ids)
        back = BinaryIndex.from_faiss(fx)
        np.testing.assert_array_equal(back.codes, codes)
        np.testing.assert_array_equal(back.ids, ids)
        assert_knn_equal(back.search(q, 15), ref_knn(q, codes, ids, 15))
    # our own export round-trips
    index = BinaryIndex(n_bits)
    index.add(codes, ids)
    again = BinaryIndex.from_faiss(index.to_faiss())
    np.testing.assert_array_equal(again.codes, codes)
    np.testing.assert_array_equal(again.ids, ids)


def test_from_faiss_rejects_other_index_types():
    with pytest.raises(IncompatibleError):
        BinaryIndex.from_faiss(faiss.IndexBinaryHash(64, 8))


# -- HashIndex -----------------------------------------------------------------------------------------
def _vectors(seed=0, n=600, nq=25, d=16):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, d)) * 2
    X = (centers[rng.integers(0, 12, n)] + rng.normal(size=(n, d))).astype(np.float32)
    Xq = (centers[rng.integers(0, 12, nq)] + rng.normal(size=(nq, d))).astype(np.float32)
    return X, Xq


def _exact(metric, Xq, X):
    Xq, X = Xq.astype(np.float64), X.astype(np.float64)
    if metric == "l2":
        return ((Xq[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    if metric == "ip":
        return -(Xq @ X.T)
    return 1 - (Xq / np.linalg.norm(Xq, axis=1, keepdims=True)) @ (X / np.linalg.norm(X, axis=1, keepdims=True)).T


def _check_rerank(D, I, Xq, X_by_id, cand, k, metric):
    """(D, I) must be the k exactly-nearest of the candidate ids cand[i] (up to float32 rounding)."""
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (Xq.shape[0], k)
    for i in range(Xq.shape[0]):
        c = cand[i][cand[i] >= 0]
        exact = _exact(metric, Xq[i : i + 1], np.stack([X_by_id[int(j)] for j in c]))[0]
        n_valid = min(k, c.size)
        assert np.all(I[i, n_valid:] == -1) and np.all(np.isinf(D[i, n_valid:]))
        got = I[i, :n_valid]
        assert len(set(got.tolist())) == n_valid and set(got.tolist()) <= set(c.tolist())
        true_d = exact[[int(np.flatnonzero(c == j)[0]) for j in got]]
        tol = 1e-4 * max(1.0, np.abs(exact).max())
        np.testing.assert_allclose(D[i, :n_valid], true_d, atol=tol, rtol=1e-5)
        np.testing.assert_allclose(np.sort(true_d), np.sort(exact)[:n_valid], atol=tol, rtol=1e-5)
        assert np.all(np.diff(D[i, :n_valid]) >= 0)


def _simhash():
    return hashlearn.make_hasher("simhash", n_bits=64, random_state=0)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("kind", ["flat", "mih"])
@pytest.mark.parametrize("custom_ids", [False, True])
def test_hashindex_rerank_equals_exact_knn_among_candidates(metric, kind, custom_ids):
    X, Xq = _vectors(1)
    rng = np.random.default_rng(3)
    ids = rng.choice(10**6, size=len(X), replace=False) if custom_ids else None
    index = HashIndex(_simhash(), rerank=40, metric=metric, index=kind)
    got_ids = index.add(X, ids)
    X_by_id = dict(zip(got_ids.tolist(), X))
    assert isinstance(index.code_index, BinaryIndex if kind == "flat" else MultiIndexHashing)
    qcodes = index.hasher.transform(Xq)
    for k, rerank in [(10, None), (1, None), (50, None), (10, 15), (5, 600)]:
        r = 40 if rerank is None else rerank
        _, cand = index.code_index.search(qcodes, max(k, r))
        D, I = index.search(Xq, k, rerank=rerank)
        _check_rerank(D, I, Xq, X_by_id, cand, k, metric)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_hashindex_full_rerank_is_exact_knn(metric):
    X, Xq = _vectors(2, n=400)
    index = HashIndex(_simhash(), rerank=len(X), metric=metric)
    index.add(X)
    k = 12
    D, I = index.search(Xq, k)
    exact = _exact(metric, Xq, X)
    all_ids = np.tile(np.arange(len(X)), (len(Xq), 1))
    _check_rerank(D, I, Xq, dict(enumerate(X)), all_ids, k, metric)
    # on this continuous data there are no exact ties: the ids are the exact ones
    np.testing.assert_array_equal(I, np.argsort(exact, axis=1, kind="stable")[:, :k])


def test_hashindex_without_rerank_returns_hamming_results():
    X, Xq = _vectors(3)
    index = HashIndex(_simhash())
    ids = index.add(X)
    np.testing.assert_array_equal(ids, np.arange(len(X)))
    assert index.vectors.size == 0  # no vectors kept without re-ranking
    D, I = index.search(Xq, 7)
    assert D.dtype == np.int32
    codes = index.hasher.transform(X)
    assert_knn_equal((D, I), ref_knn(index.hasher.transform(Xq), codes, np.arange(len(X)), 7))
    with pytest.raises(ValidationError, match="rerank"):
        index.search(Xq, 3, rerank=10)


def test_hashindex_k_larger_than_candidates_and_database():
    X, Xq = _vectors(4, n=30)
    index = HashIndex(_simhash(), rerank=10)
    index.add(X)
    D, I = index.search(Xq, 20)  # 20 candidates (max(k, rerank)), all valid
    _check_rerank(D, I, Xq, dict(enumerate(X)), index.code_index.search(index.hasher.transform(Xq), 20)[1], 20, "l2")
    D, I = index.search(Xq, 45)  # more than the database
    assert np.all(I[:, 30:] == -1) and np.all(np.isinf(D[:, 30:]))
    np.testing.assert_array_equal(np.sort(I[:, :30], axis=1), np.tile(np.arange(30), (len(Xq), 1)))


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_hashindex_remove_keeps_vectors_aligned(kind):
    X, Xq = _vectors(5, n=500)
    rng = np.random.default_rng(6)
    ids = rng.choice(10**5, size=500, replace=False)
    index = HashIndex(_simhash(), rerank=500, metric="l2", index=kind)
    index.add(X, ids)
    live = dict(zip(ids.tolist(), X))

    def check():
        keys = np.array(sorted(live))
        D, I = index.search(Xq, 8, rerank=len(live))
        exact = _exact("l2", Xq, np.stack([live[j] for j in keys]))
        _check_rerank(D, I, Xq, live, np.tile(keys, (len(Xq), 1)), 8, "l2")
        np.testing.assert_array_equal(I, keys[np.argsort(exact, axis=1, kind="stable")[:, :8]])

    check()
    victims = rng.choice(ids, size=200, replace=False)
    assert index.remove(np.concatenate([victims, [-5, 10**7]])) == 200
    for v in victims:
        del live[int(v)]
    assert index.ntotal == len(live) == index.vectors.shape[0]
    check()
    X2, _ = _vectors(7, n=100)
    ids2 = index.add(X2)
    live.update(zip(ids2.tolist(), X2))
    check()
    assert index.remove([]) == 0
    assert index.remove(ids2[:1]) == 1
    del live[int(ids2[0])]
    check()


def test_hashindex_fits_unfitted_hasher_on_first_add():
    X, _ = _vectors(8)
    hasher = _simhash()
    index = HashIndex(hasher, rerank=5)
    index.add(X)
    assert hasher.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(index.code_index.codes, hasher.transform(X))


def test_hashindex_validation():
    X, Xq = _vectors(9)
    with pytest.raises(NotFittedError):
        HashIndex(_simhash()).search(Xq, 3)
    with pytest.raises(NotFittedError):
        HashIndex(_simhash(), rerank=10).search(Xq, 3)
    index = HashIndex(_simhash(), rerank=10)
    index.add(X)
    bad = Xq.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValidationError):
        index.search(bad, 3)
    bad[3, 2] = np.inf
    with pytest.raises(ValidationError):
        index.search(bad, 3)
    with pytest.raises(ValidationError) as exc:
        index.search(np.zeros((2, 9), np.float32), 3)
    assert "9" in str(exc.value) and "16" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        index.add(np.zeros((2, 20), np.float32))
    assert "20" in str(exc.value) and "16" in str(exc.value)
    for k in (0, -1, 2.5):
        with pytest.raises(ValidationError):
            index.search(Xq, k)
    with pytest.raises(ValidationError):
        HashIndex(_simhash(), metric="hamming")
    with pytest.raises(ValidationError):
        HashIndex(_simhash(), rerank=-1)
    with pytest.raises(ValidationError):
        HashIndex(_simhash(), index="ivf")
    with pytest.raises(ValidationError):
        HashIndex(hashlearn.make_hasher("minhash", random_state=0))
    with pytest.raises(ValidationError):  # duplicate ids: nothing added
        index.add(X[:2], ids=[0, 1])
    assert index.ntotal == len(X) and index.vectors.shape[0] == len(X)


@pytest.mark.parametrize("how", ["trained_only", "all_removed"])
def test_hashindex_rerank_search_on_empty_fitted_index(how):
    """A fitted index holding no vectors answers like BinaryIndex: no results (-1 ids, inf distances),
    rather than indexing the empty vector array."""
    X, Xq = _vectors(10)
    index = HashIndex(_simhash(), rerank=10)
    if how == "trained_only":
        index.train(X)
    else:
        ids = index.add(X)
        index.remove(ids)
    D, I = index.search(Xq, 4)
    assert D.shape == I.shape == (len(Xq), 4)
    assert np.all(I == -1) and np.all(np.isinf(D))


def test_duplicate_id_check_tracks_adds_and_removes():
    rng = np.random.default_rng(3)
    index = BinaryIndex(64)
    codes = lambda m: rng.integers(0, 2**63, size=(m, 1), dtype=np.uint64)  # noqa: E731
    index.add(codes(3), ids=[5, 3, 9])
    index.add(codes(1), ids=[4])  # below the largest id, not present: accepted
    with pytest.raises(ValidationError, match="id 3 is already"):
        index.add(codes(2), ids=[7, 3])
    assert index.ntotal == 4  # the rejected batch added nothing
    assert index.remove([3]) == 1
    index.add(codes(1), ids=[3])  # free again after removal
    index.add(codes(2), ids=[10, 11])  # above every id: fast path
    with pytest.raises(ValidationError, match="id 11 is already"):
        index.add(codes(1), ids=[11])
    assert sorted(index.ids.tolist()) == [3, 4, 5, 9, 10, 11]


# -- the shared row store: O(batch) removal, id -> row map, vectors beside the codes ---------------------
def test_code_store_swap_removal_against_dict_reference():
    """Random adds and removals against a dict {id: (code, vector)}: rows stay aligned, look-ups are
    right in both modes (binary search while rows are in id order, the dict after), and sort_by_id
    restores id order."""
    from hashlearn.index.flat import CodeStore

    rng = np.random.default_rng(11)
    store, ref, next_id = CodeStore(70, dim=3), {}, 0
    for step in range(60):
        if rng.random() < 0.4 and ref:
            victims = rng.choice(sorted(ref), size=min(len(ref), int(rng.integers(1, 9))), replace=False)
            asked = np.concatenate([victims, [10**9]])  # an unknown id is ignored
            assert store.remove(asked) == len(victims)
            for v in victims.tolist():
                del ref[v]
        else:
            m = int(rng.integers(1, 7))
            ids = np.arange(next_id, next_id + m) if rng.random() < 0.7 else None
            codes, V = random_codes(rng, m, 70), rng.normal(size=(m, 3)).astype(np.float32)
            got = store.add(codes, ids, vectors=V)
            next_id = int(got.max()) + 1
            ref.update({int(i): (c, v) for i, c, v in zip(got, codes, V)})
        assert store.ntotal == len(ref)
        assert sorted(store.ids.tolist()) == sorted(ref)
        probe = np.array(sorted(ref)[:5] + [10**9, next_id + 3], np.int64)
        rows = store.rows(probe)
        assert (rows[-2:] == -1).all()
        for i, r in zip(probe[:-2].tolist(), rows[:-2].tolist()):
            assert store.ids[r] == i
            np.testing.assert_array_equal(store.codes[r], ref[i][0])
            np.testing.assert_array_equal(store.vectors[r], ref[i][1])
        if store.ids_increasing:
            assert np.all(np.diff(store.ids) > 0)
    assert not store.ids_increasing
    store.sort_by_id()
    assert store.ids_increasing and store.ids.tolist() == sorted(ref)
    for r, i in enumerate(store.ids.tolist()):
        np.testing.assert_array_equal(store.vectors[r], ref[i][1])
    with pytest.raises(ValidationError, match="already in the index"):
        store.add(random_codes(rng, 1, 70), [store.ids[0]], vectors=np.zeros((1, 3), np.float32))


def test_binary_index_search_after_swaps_equals_brute_force():
    rng = np.random.default_rng(12)
    index = BinaryIndex(64)
    codes = random_codes(rng, 400, 64, n_distinct=15)  # many ties
    index.add(codes)
    live = dict(enumerate(codes))
    for _ in range(5):
        victims = rng.choice(sorted(live), size=30, replace=False)
        index.remove(victims)
        for v in victims.tolist():
            del live[v]
        ids = np.array(sorted(live))
        q = random_queries(rng, codes, 12, 64)
        assert_knn_equal(index.search(q, 25), ref_knn(q, np.stack([live[i] for i in ids]), ids, 25))


def _filled_hashindex(rerank=20, **kw):
    X, Xq = _vectors(20, n=300)
    index = HashIndex(_simhash(), rerank=rerank, **kw)
    index.add(X, np.arange(1000, 1300))
    return index, X, Xq


def test_hashindex_train_after_add_reencodes_stored_vectors():
    X, Xq = _vectors(21, n=300)
    index = HashIndex(hashlearn.make_hasher("pcah", n_bits=8), rerank=10)
    index.add(X[:100])
    before = index.hasher
    index.train(X[100:])  # a different sample: a different PCA basis
    assert index.hasher is not before  # a fitted copy replaced it; the old one is untouched
    np.testing.assert_array_equal(index.codes, index.hasher.transform(index.vectors))
    ref = HashIndex(index.hasher, rerank=10)
    ref.add(X[:100])
    for r in (0, 10):
        for a, b in zip(index.search(Xq, 5, rerank=r), ref.search(Xq, 5, rerank=r)):
            np.testing.assert_array_equal(a, b)
    codes_only = HashIndex(_simhash())
    codes_only.add(X)
    with pytest.raises(ValidationError, match="cannot be re-trained"):
        codes_only.train(X)


def test_hashindex_vectors_before_training_then_set_hasher():
    """fit_on_add=False: vectors are stored first (searches refused), and a later train encodes all of
    them: the result equals an index built with the fitted hasher from the start."""
    X, Xq = _vectors(22, n=300)
    index = HashIndex(hashlearn.make_hasher("itq", n_bits=8, random_state=0), rerank=25, fit_on_add=False)
    index.add(X[:200], np.arange(200))
    index.remove(np.arange(0, 200, 3))
    index.add(X[200:], np.arange(200, 300))
    assert index.ntotal == 300 - 67 and index.codes.size == 0
    with pytest.raises(NotFittedError):
        index.search(Xq, 3)
    index.train(X)
    ref = HashIndex(index.hasher, rerank=25)
    keep = np.setdiff1d(np.arange(300), np.arange(0, 200, 3))
    ref.add(X[keep], keep)
    for r in (0, 25, 400):
        for a, b in zip(index.search(Xq, 7, rerank=r), ref.search(Xq, 7, rerank=r)):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValidationError, match="rerank > 0"):
        HashIndex(_simhash(), fit_on_add=False)


def test_hashindex_set_hasher_checks_before_changing_anything():
    index, X, Xq = _filled_hashindex()
    D0, I0 = index.search(Xq, 5)
    other = hashlearn.make_hasher("simhash", n_bits=32, random_state=1).fit(X[:, :8])
    with pytest.raises(ValidationError, match="8-dimensional"):
        index.set_hasher(other)
    with pytest.raises(NotFittedError):
        index.set_hasher(hashlearn.make_hasher("simhash", n_bits=32))
    new = hashlearn.make_hasher("simhash", n_bits=32, random_state=1).fit(X)
    with pytest.raises(ValidationError):  # precomputed codes of the wrong width
        index.set_hasher(new, codes=np.zeros((index.ntotal, 2), np.uint64))
    for a, b in zip(index.search(Xq, 5), (D0, I0)):
        np.testing.assert_array_equal(a, b)
    index.set_hasher(new, codes=new.transform(index.vectors))
    assert index.code_index.n_bits == 32
    np.testing.assert_array_equal(index.codes, new.transform(index.vectors))


@pytest.mark.parametrize("rerank", [0, 15])
def test_hashindex_subset_search_equals_index_of_the_subset(rerank):
    index, X, Xq = _filled_hashindex(rerank=40)
    index.remove(np.arange(1000, 1300, 4))
    subset = np.arange(1001, 1300, 3)
    live = np.setdiff1d(subset, np.arange(1000, 1300, 4))
    ref = HashIndex(index.hasher, rerank=40)
    ref.add(X[live - 1000], live)
    for k in (1, 9, 500):
        got = index.search(Xq, k, rerank=rerank, subset=np.concatenate([subset, [5, 10**8]]))
        for a, b in zip(got, ref.search(Xq, k, rerank=rerank)):
            np.testing.assert_array_equal(a, b)
    D, I = index.search(Xq, 4, rerank=rerank, subset=[])
    assert (I == -1).all()


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_rerank_blocks_give_the_same_bits(metric, monkeypatch):
    """Streaming the re-ranking in small blocks changes no distance, not even in the last bit."""
    from hashlearn.index import hashindex

    index, X, Xq = _filled_hashindex(rerank=300, metric=metric)
    full = index.search(Xq, 50)
    monkeypatch.setattr(hashindex, "RERANK_BLOCK_FLOATS", 7 * X.shape[1])  # < one query's candidates
    blocked = index.search(Xq, 50)
    for a, b in zip(full, blocked):
        np.testing.assert_array_equal(a, b)
    V = np.stack([X[i - 1000] for i in full[1][0]])
    one = hashindex.rerank_distances(Xq[:1], V[None], metric)[0]
    np.testing.assert_array_equal(one, full[0][0])


def test_rerank_candidates_are_capped_at_the_collection_size():
    """Asking for far more candidates than points gathers only the points (no nq × candidates arrays)."""
    index, X, Xq = _filled_hashindex(rerank=5)
    D, I = index.search(Xq, 3, rerank=10**9)
    ref = HashIndex(index.hasher, rerank=len(X))
    ref.add(X, np.arange(1000, 1300))
    for a, b in zip((D, I), ref.search(Xq, 3)):
        np.testing.assert_array_equal(a, b)
