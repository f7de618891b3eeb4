"""Packed codes (pack / unpack / bytes) and the Hamming kernels (distances, k-NN, radius search).

Every result is compared with a brute-force reference computed from the unpacked bit matrix with plain
numpy, on data with many ties (few distinct codes, short codes), for database sizes around the kernel
tile (1024) and code lengths of 1 to 5 words.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hashlearn.codes import (
    MISSING_DISTANCE,
    candidate_distances,
    check_codes,
    from_bytes,
    hamming_distances,
    knn_search,
    n_words,
    pack,
    range_search,
    thread_limit,
    to_bytes,
    unpack,
)
from hashlearn.codes._kernels import TILE

BIT_LENGTHS = [1, 7, 63, 64, 65, 128, 200, 256, 320]  # 1, 1, 1, 1, 2, 2, 4, 4, 5 words (+3 below)
DB_SIZES = [0, 1, 65, TILE - 1, TILE, TILE + 1, 2 * TILE + 37]


# -- references (plain numpy, independent of the code under test) ----------------------------------
def bits_of(codes: np.ndarray, n_bits: int) -> np.ndarray:
    """Unpack with numpy only: the documented layout (little-endian words, LSB first)."""
    as_bytes = np.ascontiguousarray(codes).astype("<u8").view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :n_bits]


def ref_distances(bq: np.ndarray, bdb: np.ndarray) -> np.ndarray:
    """Hamming distances of 0/1 bit matrices: |a| + |b| - 2 a·b."""
    a, b = bq.astype(np.int64), bdb.astype(np.int64)
    return a.sum(1)[:, None] + b.sum(1)[None, :] - 2 * a @ b.T


def ref_knn(dref: np.ndarray, k: int, tie_ids=None):
    nq, n = dref.shape
    D = np.full((nq, k), MISSING_DISTANCE, np.int32)
    I = np.full((nq, k), -1, np.int64)
    for i in range(nq):
        if tie_ids is None:
            order = np.argsort(dref[i], kind="stable")[:k]
        else:
            order = np.lexsort((tie_ids, dref[i]))[:k]
        D[i, : order.size] = dref[i, order]
        I[i, : order.size] = order
    return D, I


def ref_range(dref: np.ndarray, radius: int):
    lims, D, I = [0], [], []
    for row in dref:
        hit = np.flatnonzero(row <= radius)
        D.append(row[hit])
        I.append(hit)
        lims.append(lims[-1] + hit.size)
    return np.array(lims), np.concatenate(D + [np.zeros(0, np.int64)]), np.concatenate(I + [np.zeros(0, np.int64)])


def random_bits(rng, n: int, n_bits: int, n_distinct: int | None = None, flip: float = 0.0) -> np.ndarray:
    """(n, n_bits) uint8 bits; with n_distinct, rows are copies of few prototypes (many exact ties),
    optionally with a few bits flipped (many ties at small distances)."""
    if n_distinct is None:
        bits = rng.integers(0, 2, size=(n, n_bits), dtype=np.uint8)
    else:
        protos = rng.integers(0, 2, size=(max(1, n_distinct), n_bits), dtype=np.uint8)
        bits = protos[rng.integers(0, protos.shape[0], size=n)]
    if flip:
        bits = bits ^ (rng.random(bits.shape) < flip).astype(np.uint8)
    return np.ascontiguousarray(bits)


def make_case(rng, nq, n, n_bits, n_distinct=None, flip=0.0):
    bdb = random_bits(rng, n, n_bits, n_distinct, flip)
    if n and rng.random() < 0.8:
        # queries near database codes (ties at distance 0, 1, 2 ...), plus fresh random ones
        bq = bdb[rng.integers(0, n, size=nq)] ^ (rng.random((nq, n_bits)) < 0.03).astype(np.uint8)
        bq[: nq // 3] = random_bits(rng, nq // 3, n_bits)
    else:
        bq = random_bits(rng, nq, n_bits, n_distinct, flip)
    return bq, bdb, pack(bq), pack(bdb)


# -- n_words / pack / unpack -------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits, expected", [(1, 1), (63, 1), (64, 1), (65, 2), (128, 2), (129, 3), (320, 5)])
def test_n_words(n_bits, expected):
    assert n_words(n_bits) == expected


@pytest.mark.parametrize("bad", [0, -1, -64])
def test_n_words_rejects_non_positive(bad):
    with pytest.raises(ValueError):
        n_words(bad)


def _representations(bits_bool: np.ndarray):
    """The same bit matrix as bool, {0,1} (several dtypes) and {-1,+1} (several dtypes)."""
    b = bits_bool.astype(np.int64)
    return {
        "bool": bits_bool,
        "uint8": b.astype(np.uint8),
        "int64": b,
        "float32": b.astype(np.float32),
        "pm1_int8": (2 * b - 1).astype(np.int8),
        "pm1_float64": (2 * b - 1).astype(np.float64),
        "list": bits_bool.astype(int).tolist() if bits_bool.shape[0] else None,
    }


@given(data=st.data(), n_bits=st.integers(1, 300), n=st.integers(0, 6))
def test_pack_unpack_round_trip(data, n_bits, n):
    bits = data.draw(hnp.arrays(np.bool_, (n, n_bits)))
    nw = (n_bits + 63) // 64
    expected = None
    for name, rep in _representations(bits).items():
        if rep is None:
            continue
        codes = pack(rep)
        assert codes.dtype == np.uint64, name
        assert codes.shape == (n, nw), name
        assert codes.flags.c_contiguous, name
        if expected is None:
            expected = codes
        np.testing.assert_array_equal(codes, expected, err_msg=name)
    codes = expected
    # documented layout: bit j of a code is bit j % 64 of word j // 64
    j = np.arange(n_bits)
    layout = (codes[:, j // 64] >> (j % 64).astype(np.uint64)) & np.uint64(1)
    np.testing.assert_array_equal(layout.astype(bool), bits)
    # padding bits are zero
    if n and n_bits % 64:
        assert not np.any(codes[:, -1] >> np.uint64(n_bits % 64))
    # little-endian bytes view equals numpy's little bit order, zero-padded to whole words
    ref_bytes = np.zeros((n, nw * 8), np.uint8)
    ref_bytes[:, : (n_bits + 7) // 8] = np.packbits(bits, axis=1, bitorder="little")
    np.testing.assert_array_equal(codes.astype("<u8").view(np.uint8).reshape(n, nw * 8), ref_bytes)
    # round trip
    out = unpack(codes, n_bits)
    assert out.dtype == np.uint8 and out.shape == (n, n_bits)
    np.testing.assert_array_equal(out, bits.astype(np.uint8))
    # the numpy-only unpacking used as reference elsewhere agrees
    np.testing.assert_array_equal(bits_of(codes, n_bits), bits.astype(np.uint8))


@pytest.mark.parametrize("n_bits", BIT_LENGTHS + [129, 192])
def test_single_bit_lands_in_documented_word_and_position(n_bits):
    eye = np.eye(n_bits, dtype=bool)
    codes = pack(eye)
    for j in range(n_bits):
        expected = np.zeros(n_words(n_bits), np.uint64)
        expected[j // 64] = np.uint64(1) << np.uint64(j % 64)
        np.testing.assert_array_equal(codes[j], expected)
        # viewed as bytes: bit j % 8 of byte j // 8
        row_bytes = codes[j : j + 1].astype("<u8").view(np.uint8)[0]
        assert row_bytes[j // 8] == 1 << (j % 8)
        assert row_bytes.sum() == 1 << (j % 8)


def test_pack_1d_is_one_row():
    bits = np.array([1, 0, 1, 1], np.uint8)
    np.testing.assert_array_equal(pack(bits), np.array([[0b1101]], np.uint64))


def test_pack_all_minus_one_and_all_plus_one():
    # all +1 is indistinguishable from all 1 (a {0,1} matrix) and must give ones; all -1 gives zeros
    np.testing.assert_array_equal(pack(np.full((2, 70), -1)), np.zeros((2, 2), np.uint64))
    np.testing.assert_array_equal(unpack(pack(np.full((2, 70), 1.0)), 70), np.ones((2, 70), np.uint8))


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0, 1, 2]]),
        np.array([[0.0, 0.5, 1.0]]),
        np.array([[-1, 0, 1]]),  # mixed {-1, 0, 1}
        np.array([[-1, 1, 2]]),
        np.array([[-2, 1]]),
        np.array([[0.0, np.nan, 1.0]]),
        np.array([[0.0, np.inf]]),
        np.array([[-1.0, -np.inf]]),
        np.zeros((2, 3, 4), np.uint8),  # 3-D
        np.zeros((3, 0), np.uint8),  # zero columns
        np.zeros((0, 0), np.uint8),
        np.array([["0", "1"]]),  # strings
        np.array([[1 + 0j, 0j]]),  # complex
    ],
    ids=["two", "half", "mixed-101", "pm1-and-2", "minus-two", "nan", "inf", "minus-inf", "3d", "zero-cols",
         "empty-2d", "strings", "complex"],
)
def test_pack_rejects_invalid_input(bad):
    with pytest.raises(ValueError):
        pack(bad)


def test_pack_zero_rows_is_valid():
    codes = pack(np.zeros((0, 70), np.uint8))
    assert codes.shape == (0, 2) and codes.dtype == np.uint64
    assert unpack(codes, 70).shape == (0, 70)


# -- check_codes -------------------------------------------------------------------------------------
def test_check_codes_accepts_valid_and_returns_contiguous():
    rng = np.random.default_rng(0)
    codes = pack(random_bits(rng, 10, 130))
    view = codes[::2]
    assert not view.flags.c_contiguous
    out = check_codes(view, 130)
    assert out.flags.c_contiguous and out.dtype == np.uint64
    np.testing.assert_array_equal(out, view)
    one = check_codes(codes[3], 130)  # a 1-D array of n_words words is one code
    assert one.shape == (1, 3)
    np.testing.assert_array_equal(one[0], codes[3])


@pytest.mark.parametrize(
    "codes, n_bits",
    [
        (np.zeros((2, 1), np.int64), 64),  # wrong dtype
        (np.zeros((2, 1), np.float64), 64),
        (np.zeros((2, 2), np.uint32), 64),
        (np.zeros((2, 8), np.uint8), 64),
        (np.zeros((2, 2), np.uint64), 64),  # wrong number of words
        (np.zeros((2, 1), np.uint64), 65),
        (np.zeros((2, 1, 1), np.uint64), 64),  # 3-D
        (np.zeros(3, np.uint64), 64),  # 1-D of the wrong length
        (np.array([[np.uint64(1) << np.uint64(7)]], np.uint64), 7),  # padding bit 7 set for 7 bits
        (np.array([[np.uint64(1) << np.uint64(63)]], np.uint64), 63),
        (np.array([[0, 1 << 1]], np.uint64), 65),
        (np.array([[0, 0], [0, np.uint64(2**63)]], np.uint64), 100),  # only the second row is bad
    ],
)
def test_check_codes_rejects(codes, n_bits):
    with pytest.raises(ValueError):
        check_codes(codes, n_bits)


def test_unpack_rejects_non_zero_padding():
    with pytest.raises(ValueError, match="padding"):
        unpack(np.array([[np.uint64(1) << np.uint64(10)]], np.uint64), 10)


# -- bytes (faiss layout) ----------------------------------------------------------------------------
@given(data=st.data(), n_bits=st.integers(1, 300), n=st.integers(0, 5))
def test_to_bytes_from_bytes_round_trip(data, n_bits, n):
    bits = data.draw(hnp.arrays(np.bool_, (n, n_bits)))
    codes = pack(bits)
    b = to_bytes(codes, n_bits)
    assert b.dtype == np.uint8 and b.shape == (n, (n_bits + 7) // 8) and b.flags.c_contiguous
    np.testing.assert_array_equal(b, np.packbits(bits, axis=1, bitorder="little"))
    back = from_bytes(b, n_bits)
    assert back.dtype == np.uint64
    np.testing.assert_array_equal(back, codes)


@pytest.mark.parametrize(
    "arr, n_bits",
    [
        (np.zeros((2, 3), np.uint8), 32),  # wrong width
        (np.zeros((2, 4), np.int8), 32),  # wrong dtype
        (np.zeros(4, np.uint8), 32),  # 1-D
        (np.array([[0x80]], np.uint8), 7),  # bit 7 set, beyond 7 bits
        (np.array([[0, 0x02]], np.uint8), 9),
    ],
)
def test_from_bytes_rejects(arr, n_bits):
    with pytest.raises(ValueError):
        from_bytes(arr, n_bits)


# -- hamming_distances -------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", BIT_LENGTHS + [192])
@pytest.mark.parametrize("n", [0, 1, TILE - 1, TILE + 1, 2 * TILE + 37])
def test_hamming_distances_brute_force(n_bits, n):
    rng = np.random.default_rng(n_bits * 1000 + n)
    bq, bdb, q, db = make_case(rng, 9, n, n_bits, n_distinct=7 if n_bits > 8 else None, flip=0.02)
    D = hamming_distances(q, db, n_bits=n_bits)
    assert D.dtype == np.int32 and D.shape == (9, n)
    np.testing.assert_array_equal(D, ref_distances(bq, bdb))
    # second reference, from the words: popcount of the XOR
    np.testing.assert_array_equal(D, np.bitwise_count(q[:, None, :] ^ db[None, :, :]).sum(-1))
    # n_bits omitted: validated as 64 * W, same distances (padding is zero)
    np.testing.assert_array_equal(hamming_distances(q, db), D)


# -- knn_search --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", BIT_LENGTHS + [192])
@pytest.mark.parametrize("n", DB_SIZES)
def test_knn_search_equals_stable_argsort_with_ties(n_bits, n):
    rng = np.random.default_rng(7 * n_bits + n)
    # few distinct codes: long runs of equal distances straddling tile and chunk boundaries
    bq, bdb, q, db = make_case(rng, 11, n, n_bits, n_distinct=3, flip=0.01 if n_bits > 60 else 0.0)
    dref = ref_distances(bq, bdb)
    for k in sorted({1, 5, 64, 200, n + 3}):
        D, I = knn_search(q, db, k, n_bits=n_bits)
        assert D.dtype == np.int32 and I.dtype == np.int64 and D.shape == I.shape == (11, k)
        Dr, Ir = ref_knn(dref, k)
        np.testing.assert_array_equal(D, Dr, err_msg=f"k={k}")
        np.testing.assert_array_equal(I, Ir, err_msg=f"k={k}")


@pytest.mark.parametrize("n_bits", [7, 64, 65, 200, 320])
@pytest.mark.parametrize("n", [1, 65, TILE + 1, 2 * TILE + 37])
@pytest.mark.parametrize("ids_kind", ["permutation", "descending", "sparse"])
def test_knn_search_tie_ids_equals_lexsort(n_bits, n, ids_kind):
    rng = np.random.default_rng(n_bits + 31 * n)
    bq, bdb, q, db = make_case(rng, 10, n, n_bits, n_distinct=4, flip=0.005)
    if ids_kind == "permutation":
        tie = rng.permutation(n).astype(np.int64)
    elif ids_kind == "descending":
        tie = np.arange(n, dtype=np.int64)[::-1].copy()
    else:
        tie = rng.choice(2**62, size=n, replace=False).astype(np.int64)
    dref = ref_distances(bq, bdb)
    for k in sorted({1, 10, 100, n + 2}):
        D, I = knn_search(q, db, k, n_bits=n_bits, tie_ids=tie)
        Dr, Ir = ref_knn(dref, k, tie_ids=tie)
        np.testing.assert_array_equal(D, Dr, err_msg=f"k={k}")
        np.testing.assert_array_equal(I, Ir, err_msg=f"k={k}")
    # increasing tie ids equal the default (position) order
    D1, I1 = knn_search(q, db, 7, n_bits=n_bits, tie_ids=np.arange(n) * 3 + 5)
    D2, I2 = knn_search(q, db, 7, n_bits=n_bits)
    np.testing.assert_array_equal(D1, D2)
    np.testing.assert_array_equal(I1, I2)


def test_knn_search_k_larger_than_database_pads():
    rng = np.random.default_rng(1)
    bq, bdb, q, db = make_case(rng, 4, 5, 64)
    D, I = knn_search(q, db, 9)
    assert np.all(I[:, 5:] == -1) and np.all(D[:, 5:] == MISSING_DISTANCE)
    assert MISSING_DISTANCE == 2**31 - 1 and np.asarray(MISSING_DISTANCE).dtype == np.int32
    np.testing.assert_array_equal(np.sort(I[:, :5], axis=1), np.tile(np.arange(5), (4, 1)))
    # empty database: everything missing
    D, I = knn_search(q, db[:0], 3)
    assert D.shape == (4, 3) and np.all(I == -1) and np.all(D == MISSING_DISTANCE)
    # no queries
    D, I = knn_search(q[:0], db, 3)
    assert D.shape == I.shape == (0, 3)


def test_knn_search_validation():
    q = pack(np.ones((2, 70), np.uint8))
    db = pack(np.zeros((5, 70), np.uint8))
    for k in (0, -1):
        with pytest.raises(ValueError, match="k"):
            knn_search(q, db, k)
    with pytest.raises(ValueError, match="tie_ids"):
        knn_search(q, db, 2, tie_ids=np.arange(4))
    with pytest.raises(ValueError):
        knn_search(q, pack(np.zeros((5, 130), np.uint8)), 2)  # 2 vs 3 words
    with pytest.raises(ValueError):
        knn_search(q.astype(np.int64), db, 2)
    with pytest.raises(ValueError, match="padding"):
        knn_search(q, db, 2, n_bits=65)  # bit 65..69 set in the queries
    with pytest.raises(ValueError):
        knn_search(q, db, 2, n_threads=0)


# -- range_search ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", BIT_LENGTHS + [192])
@pytest.mark.parametrize("n", [0, 1, TILE - 1, TILE, 2 * TILE + 37])
def test_range_search_brute_force(n_bits, n):
    rng = np.random.default_rng(3 * n_bits + n)
    bq, bdb, q, db = make_case(rng, 8, n, n_bits, n_distinct=5, flip=0.02)
    dref = ref_distances(bq, bdb)
    for radius in sorted({0, 1, n_bits // 8, n_bits // 2, n_bits}):
        lims, D, I = range_search(q, db, radius, n_bits=n_bits)
        assert lims.dtype == np.int64 and D.dtype == np.int32 and I.dtype == np.int64
        lr, Dr, Ir = ref_range(dref, radius)
        np.testing.assert_array_equal(lims, lr, err_msg=f"radius={radius}")
        np.testing.assert_array_equal(D, Dr, err_msg=f"radius={radius}")
        np.testing.assert_array_equal(I, Ir, err_msg=f"radius={radius}")


def test_range_search_validation_and_empty_queries():
    db = pack(np.zeros((5, 10), np.uint8))
    with pytest.raises(ValueError, match="radius"):
        range_search(db[:1], db, -1)
    lims, D, I = range_search(db[:0], db, 3)
    np.testing.assert_array_equal(lims, [0])
    assert D.size == I.size == 0


# -- threads and query blocking ----------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [64, 200])
def test_results_independent_of_threads_and_query_blocking(n_bits):
    rng = np.random.default_rng(n_bits)
    nq, n, k = 70, 2 * TILE + 37, 25  # 70 queries: blocks of 32 with a tail, and a 1-query block
    bq, bdb, q, db = make_case(rng, nq, n, n_bits, n_distinct=6, flip=0.01)
    tie = rng.permutation(n)
    dref = ref_distances(bq, bdb)
    Dr, Ir = ref_knn(dref, k)
    Drt, Irt = ref_knn(dref, k, tie)
    lr, Rr, RIr = ref_range(dref, n_bits // 6)
    for threads in (1, 2):
        D, I = knn_search(q, db, k, n_threads=threads)
        np.testing.assert_array_equal(D, Dr)
        np.testing.assert_array_equal(I, Ir)
        D, I = knn_search(q, db, k, tie_ids=tie, n_threads=threads)
        np.testing.assert_array_equal(D, Drt)
        np.testing.assert_array_equal(I, Irt)
        np.testing.assert_array_equal(hamming_distances(q, db, n_threads=threads), dref)
        lims, D, I = range_search(q, db, n_bits // 6, n_threads=threads)
        np.testing.assert_array_equal(lims, lr)
        np.testing.assert_array_equal(D, Rr)
        np.testing.assert_array_equal(I, RIr)
    # any number of queries per call gives the same rows
    for a, b in [(0, 1), (1, 4), (4, 37), (37, 70)]:
        D, I = knn_search(q[a:b], db, k, n_threads=2)
        np.testing.assert_array_equal(D, Dr[a:b])
        np.testing.assert_array_equal(I, Ir[a:b])
        lims, D, I = range_search(q[a:b], db, n_bits // 6)
        np.testing.assert_array_equal(D, Rr[lr[a] : lr[b]])
        np.testing.assert_array_equal(I, RIr[lr[a] : lr[b]])


def test_thread_limit_restores_setting():
    before = numba.get_num_threads()
    with thread_limit(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with thread_limit(1):
            raise RuntimeError("boom")
    assert numba.get_num_threads() == before
    with thread_limit(None):
        assert numba.get_num_threads() == before
    with pytest.raises(ValueError):
        with thread_limit(0):
            pass


# -- property test over everything at once -----------------------------------------------------------
@settings(max_examples=40)
@given(
    n_bits=st.sampled_from(BIT_LENGTHS) | st.integers(1, 330),
    n=st.sampled_from([0, 1, 2, 63, 64, 65, TILE - 1, TILE, TILE + 1]) | st.integers(0, 2300),
    nq=st.integers(0, 40),
    k=st.integers(1, 80),
    n_distinct=st.none() | st.integers(1, 6),
    use_tie_ids=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_knn_range_distances(n_bits, n, nq, k, n_distinct, use_tie_ids, seed):
    rng = np.random.default_rng(seed)
    bq, bdb, q, db = make_case(rng, nq, n, n_bits, n_distinct, flip=float(rng.choice([0.0, 0.01, 0.1])))
    dref = ref_distances(bq, bdb)
    tie = rng.permutation(n).astype(np.int64) if use_tie_ids else None
    D, I = knn_search(q, db, k, n_bits=n_bits, tie_ids=tie)
    Dr, Ir = ref_knn(dref, k, tie)
    np.testing.assert_array_equal(D, Dr)
    np.testing.assert_array_equal(I, Ir)
    radius = int(rng.integers(0, n_bits + 1))
    lims, Rd, Ri = range_search(q, db, radius, n_bits=n_bits)
    lr, Rdr, Rir = ref_range(dref, radius)
    np.testing.assert_array_equal(lims, lr)
    np.testing.assert_array_equal(Rd, Rdr)
    np.testing.assert_array_equal(Ri, Rir)
    np.testing.assert_array_equal(hamming_distances(q, db, n_bits=n_bits), dref.reshape(nq, n))


# -- candidate_distances -----------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [7, 64, 65, 320])
def test_candidate_distances(n_bits):
    rng = np.random.default_rng(n_bits)
    bq, bdb, q, db = make_case(rng, 6, 300, n_bits)
    counts = rng.integers(0, 20, size=6)
    lims = np.concatenate([[0], np.cumsum(counts)])
    positions = rng.integers(0, 300, size=lims[-1])
    out = candidate_distances(q, db, lims, positions, n_bits=n_bits)
    dref = ref_distances(bq, bdb)
    rows = np.repeat(np.arange(6), counts)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, dref[rows, positions])
    with pytest.raises(ValueError):
        candidate_distances(q, db, lims[:-1], positions, n_bits=n_bits)
    with pytest.raises(ValueError):
        candidate_distances(q, db, lims, np.where(positions == positions[0], 300, positions), n_bits=n_bits)
