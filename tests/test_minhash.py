"""MinHash signatures, b-bit MinHash, banding parameters and candidate pairs."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import quad

import hashlearn
from hashlearn.errors import IncompatibleError, NotFittedError, ValidationError
from hashlearn.hashing import MinHash, band_candidates, band_candidates_between, optimal_bands
from hashlearn.hashing.base import PersistableEstimatorMixin
from hashlearn.hashing.minhash import EMPTY_VALUE, MERSENNE_61, _mulmod61  # noqa: F401


def _set_pair(rng, size_a, size_b, shared, universe=10**9):
    tokens = rng.choice(universe, size=size_a + size_b - shared, replace=False)
    a = tokens[:size_a]
    b = np.concatenate([tokens[:shared], tokens[size_a:]])
    return a.tolist(), b.tolist(), shared / (size_a + size_b - shared)


def test_mulmod61_is_exact():
    rng = np.random.default_rng(0)
    a = rng.integers(0, MERSENNE_61, 2000, dtype=np.uint64)
    x = rng.integers(0, MERSENNE_61, 2000, dtype=np.uint64)
    a[:4] = [MERSENNE_61 - 1, 1, 0, MERSENNE_61 - 1]
    x[:4] = [MERSENNE_61 - 1, MERSENNE_61 - 1, 5, 2**32]
    got = _mulmod61(a, x)
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == [int(p) * int(q) % MERSENNE_61 for p, q in zip(a, x)]


def test_compiled_kernel_equals_numpy_reference():
    from hashlearn.hashing.minhash import _record_tokens

    rng = np.random.default_rng(8)
    records = [rng.integers(-(2**62), 2**62, size=rng.integers(0, 40)).tolist() for _ in range(300)]
    records[0] = [1, 2, 3, -5, 2**62 + 5]
    records[1] = []
    mh = MinHash(n_perm=40, random_state=4).fit()
    tok, rec, n = _record_tokens(records, None)
    fast = mh._signatures(tok, rec, n)
    np.testing.assert_array_equal(fast, mh._signatures(tok, rec, n, compiled=False))
    np.testing.assert_array_equal(fast, mh.transform(records))
    # the reference itself, for one record, against Python integers
    x = [int(v) % MERSENNE_61 for v in tok[rec == 0]]
    M64 = (1 << 64) - 1

    def mix(z):  # splitmix64 finaliser in Python integers, then the low 61 bits
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return (z ^ (z >> 31)) & MERSENNE_61

    expect = [min(mix((int(a) * v + int(b)) % MERSENNE_61) for v in x) for a, b in zip(mh.perm_a_, mh.perm_b_)]
    assert len(x) == 5 and fast[0].tolist() == expect
    np.testing.assert_array_equal(fast[1], EMPTY_VALUE)


def test_jaccard_estimate_within_binomial_tolerance():
    rng = np.random.default_rng(1)
    mh = MinHash(n_perm=512, random_state=3).fit()
    errors = []
    for size_a, size_b, shared in [(100, 100, 50), (300, 200, 150), (80, 120, 10), (50, 50, 45), (200, 10, 10)]:
        a, b, J = _set_pair(rng, size_a, size_b, shared)
        sig = mh.transform([a, b])
        assert sig.shape == (2, 512) and sig.dtype == np.uint64
        assert sig.max() < MERSENNE_61
        est = mh.jaccard(sig[0], sig[1])
        assert abs(est - J) < 5 * math.sqrt(J * (1 - J) / 512), (est, J)
        errors.append(est - J)
    # vectorised over rows too
    recs = [_set_pair(rng, 60, 60, 30)[:2] for _ in range(40)]
    left = mh.transform([r[0] for r in recs])
    right = mh.transform([r[1] for r in recs])
    est = mh.jaccard(left, right)
    assert est.shape == (40,)
    assert abs(est.mean() - 30 / 90) < 4 * math.sqrt((1 / 3) * (2 / 3) / 512 / 40)


@pytest.mark.parametrize("b_bits", [1, 2, 4])
def test_b_bit_estimator_with_li_konig_correction(b_bits):
    rng = np.random.default_rng(b_bits)
    n_perm = 2048
    full = MinHash(n_perm=n_perm, random_state=11).fit()
    mh = MinHash(n_perm=n_perm, b_bits=b_bits, random_state=11).fit()
    pairs = [_set_pair(rng, 200, 200, s) for s in (40, 100, 160, 190)]
    for a, b, J in pairs:
        sig = mh.transform([a, b])
        assert sig.dtype == np.uint32 and sig.max() < 2**b_bits
        # the lowest b bits of the full signature
        np.testing.assert_array_equal(sig, (full.transform([a, b]) & np.uint64(2**b_bits - 1)).astype(np.uint32))
        est = mh.jaccard(sig[0], sig[1])
        c = 2.0**-b_bits
        P = c + (1 - c) * J
        sd = math.sqrt(P * (1 - P) / n_perm) / (1 - c)
        assert abs(est - J) < 5 * sd, (est, J)
        raw = np.mean(sig[0] == sig[1])  # the uncorrected agreement is biased upwards by ~c (1 - J)
        if c * (1 - J) > 10 * sd:
            assert abs(raw - J) > 5 * sd


def test_signatures_stable_across_processes_and_token_order():
    records = [["apple", "banana", "ü-ñ", "日本"], [1, 2, 3, 2**40, -7], [], ["x"]]
    mh = MinHash(n_perm=16, random_state=123).fit()
    here = mh.transform(records)
    code = (
        "import json; from hashlearn.hashing import MinHash;"
        f"r = json.loads({json.dumps(json.dumps(records))});"
        "print(json.dumps(MinHash(n_perm=16, random_state=123).fit().transform(r).tolist()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    np.testing.assert_array_equal(np.array(json.loads(out.stdout), dtype=np.uint64), here)
    # order and duplicates do not matter; sets and arrays work too
    perm = mh.transform([["日本", "banana", "apple", "ü-ñ", "apple"], np.array([2**40, -7, 3, 2, 1]), set(), {"x"}])
    np.testing.assert_array_equal(perm, here)
    np.testing.assert_array_equal(here[2], EMPTY_VALUE)
    assert not np.any(here[[0, 1, 3]] == EMPTY_VALUE)
    # a string token is not the same as the integer it prints as
    assert not np.array_equal(mh.transform([["1"]]), mh.transform([[1]]))


def test_empty_records_and_their_jaccard():
    mh = MinHash(n_perm=32, random_state=0).fit()
    sig = mh.transform([[], [], ["a"]])
    assert mh.jaccard(sig[0], sig[1]) == 1.0
    assert mh.jaccard(sig[0], sig[2]) == 0.0


def test_shingles_equal_explicit_qgrams():
    texts = ["hello world", "ab", "", "hello there", "日本語のテキスト"]
    mh = MinHash(n_perm=64, shingle=3, random_state=5).fit()
    sig = mh.transform(texts)

    def qgrams(t, q=3):
        return [t[i : i + q] for i in range(len(t) - q + 1)] if len(t) >= q else ([t] if t else [])

    tok = MinHash(n_perm=64, random_state=5).fit()
    np.testing.assert_array_equal(sig, tok.transform([qgrams(t) for t in texts]))
    np.testing.assert_array_equal(sig[2], EMPTY_VALUE)
    # similar strings get a higher estimate than dissimilar ones
    assert mh.jaccard(sig[0], sig[3]) > mh.jaccard(sig[0], sig[4])


def test_sparse_indicator_rows_equal_integer_records():
    rng = np.random.default_rng(2)
    dense = (rng.random((30, 200)) < 0.1).astype(np.int8)
    dense[4] = 0  # an empty row
    mh = MinHash(n_perm=64, random_state=9).fit()
    records = [np.flatnonzero(r).tolist() for r in dense]
    expected = mh.transform(records)
    np.testing.assert_array_equal(mh.transform(sp.csr_matrix(dense)), expected)
    np.testing.assert_array_equal(mh.transform(sp.csc_array(dense)), expected)
    with_zero = sp.csr_matrix(dense)
    with_zero.data[:5] = 0  # explicit zeros are not tokens
    np.testing.assert_array_equal(mh.transform(with_zero), mh.transform(sp.csr_matrix(with_zero.toarray())))


def test_n_bits_from_make_hasher_and_persistence(tmp_path):
    mh = hashlearn.make_hasher("minhash", n_bits=64, random_state=1).fit()
    assert mh.n_perm_ == 64 and mh.input_kind == "set"
    assert hashlearn.make_hasher("minhash", n_bits=64, b_bits=4).fit().n_perm_ == 16
    assert "minhash" in hashlearn.list_methods("set")
    recs = [["a", "b"], ["b", "c", "d"], []]
    for model in (mh, MinHash(n_perm=40, b_bits=3, shingle=2, random_state=2).fit()):
        data = recs if model.shingle is None else ["abc", "bcd", ""]
        path = hashlearn.save(model, tmp_path / "mh.hl")
        loaded = hashlearn.load(path)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.transform(data), model.transform(data))
    # the same generic persistence as the vector hashers
    assert isinstance(mh, PersistableEstimatorMixin)
    assert issubclass(hashlearn.hashing.SimHash, PersistableEstimatorMixin)
    # same seed same permutations, other seed differs
    assert np.array_equal(MinHash(random_state=1, n_bits=64).fit().perm_a_, mh.perm_a_)
    assert not np.array_equal(MinHash(random_state=2, n_bits=64).fit().perm_a_, mh.perm_a_)


def test_bad_input_raises():
    with pytest.raises(NotFittedError):
        MinHash().transform([["a"]])
    mh = MinHash(n_perm=8, random_state=0).fit()
    with pytest.raises(ValidationError, match="shingle"):
        mh.transform(["a string record"])
    with pytest.raises(ValidationError):
        mh.transform("abc")
    with pytest.raises(ValidationError):
        mh.transform([[1.5, 2.5]])
    with pytest.raises(ValidationError):
        mh.transform([])
    with pytest.raises(ValidationError):
        mh.transform([1, 2])
    with pytest.raises(ValidationError):
        MinHash(n_perm=8, shingle=2, random_state=0).fit().transform([["a", "b"]])
    for bad in (dict(n_perm=0), dict(b_bits=33), dict(shingle=0), dict(n_bits=2, b_bits=4)):
        with pytest.raises(ValidationError):
            MinHash(**bad).fit()
    sig = mh.transform([["a"]])
    with pytest.raises(IncompatibleError, match="8 permutations"):
        mh.jaccard(sig, MinHash(n_perm=16, random_state=0).fit().transform([["a"]]))
    with pytest.raises(IncompatibleError):
        mh.jaccard(sig, sig.astype(np.uint32))


# -- banding -----------------------------------------------------------------------------------------
def _quad_error(t, b, r, wfp=0.5, wfn=0.5):
    fp = quad(lambda s: 1 - (1 - s**r) ** b, 0, t)[0]
    fn = quad(lambda s: (1 - s**r) ** b, t, 1)[0]
    return wfp * fp + wfn * fn


def test_optimal_bands_minimises_weighted_error():
    b, r = optimal_bands(0.5, 128)
    assert b * r <= 128
    s_curve = 1 - (1 - 0.5**r) ** b
    assert 0.3 < s_curve < 0.7, (b, r, s_curve)
    # no other (b, r) is better by an independent integrator
    best = _quad_error(0.5, b, r)
    others = [_quad_error(0.5, bb, rr) for bb in range(1, 129) for rr in range(1, 128 // bb + 1)]
    assert best <= min(others) + 1e-6
    # weighting false negatives more lowers the curve's threshold (more candidates)
    b1, r1 = optimal_bands(0.5, 128, false_positive_weight=0.1, false_negative_weight=0.9)
    b2, r2 = optimal_bands(0.5, 128, false_positive_weight=0.9, false_negative_weight=0.1)
    assert 1 - (1 - 0.5**r1) ** b1 > s_curve > 1 - (1 - 0.5**r2) ** b2
    # a high threshold needs more rows per band
    assert optimal_bands(0.9, 128)[1] > r
    for bad in ((0.0, 128), (1.0, 128), (0.5, 0)):
        with pytest.raises(ValidationError):
            optimal_bands(*bad)


def _brute_pairs(sig, bands, rows):
    n = sig.shape[0]
    pairs = set()
    for i, j in itertools.combinations(range(n), 2):
        for k in range(bands):
            if np.array_equal(sig[i, k * rows : (k + 1) * rows], sig[j, k * rows : (k + 1) * rows]):
                pairs.add((i, j))
                break
    return pairs


def test_band_candidates_equal_brute_force():
    rng = np.random.default_rng(3)
    sig = rng.integers(0, 3, size=(120, 12), dtype=np.uint64)
    got = band_candidates(sig, 4, 3, max_bucket=None)
    assert got.dtype == np.int64 and got.shape[1] == 2
    assert np.all(got[:, 0] < got[:, 1])
    assert len({tuple(p) for p in got}) == len(got)  # no duplicates
    assert {tuple(p) for p in got.tolist()} == _brute_pairs(sig, 4, 3)
    # columns beyond bands × rows are ignored; b-bit (uint32) signatures work too
    np.testing.assert_array_equal(band_candidates(sig[:, :12].astype(np.uint32), 4, 3, max_bucket=None), got)


def test_band_candidates_on_minhash_find_similar_records():
    rng = np.random.default_rng(4)
    mh = MinHash(n_perm=128, random_state=0).fit()
    base = [rng.choice(10**6, 50, replace=False).tolist() for _ in range(40)]
    near = [b[:45] + rng.choice(10**6, 5).tolist() for b in base]  # Jaccard ≈ 0.82
    sig = mh.transform(base + near + [[]] * 3)
    b, r = optimal_bands(0.5, 128)
    pairs = {tuple(p) for p in band_candidates(sig, b, r).tolist()}
    assert all((i, i + 40) in pairs for i in range(40))
    assert not any(i >= 80 or j >= 80 for i, j in pairs)  # empty records are never candidates
    assert len(pairs) < 80  # unrelated random sets (Jaccard ≈ 0) almost never collide


def test_band_candidates_max_bucket_window():
    sig = np.zeros((50, 6), dtype=np.uint64)  # every record in one bucket of every band
    got = {tuple(p) for p in band_candidates(sig, 3, 2, max_bucket=5).tolist()}
    assert got == {(i, j) for i in range(50) for j in range(i + 1, min(50, i + 5))}
    assert len(band_candidates(sig, 3, 2, max_bucket=None)) == 50 * 49 // 2
    with pytest.raises(ValidationError):
        band_candidates(sig, 3, 2, max_bucket=1)
    with pytest.raises(IncompatibleError):
        band_candidates(sig, 4, 2)


def test_band_candidates_between_equal_brute_force_and_cap():
    rng = np.random.default_rng(5)
    left = rng.integers(0, 3, size=(60, 8), dtype=np.uint64)
    right = rng.integers(0, 3, size=(45, 8), dtype=np.uint64)
    right[0] = EMPTY_VALUE
    got = band_candidates_between(left, right, 4, 2, max_bucket=None)
    expect = {
        (i, j)
        for i in range(60)
        for j in range(1, 45)
        if any(np.array_equal(left[i, 2 * k : 2 * k + 2], right[j, 2 * k : 2 * k + 2]) for k in range(4))
    }
    assert {tuple(p) for p in got.tolist()} == expect
    # cap: 20 left × 30 right in one bucket, each left gets 4 partners, spread over all right records
    L, R = np.zeros((20, 4), np.uint64), np.ones((30, 4), np.uint64) * 0
    capped = band_candidates_between(L, R, 2, 2, max_bucket=4)
    assert len(capped) == 80
    assert np.all(np.bincount(capped[:, 0], minlength=20) == 4)
    assert len(np.unique(capped[:, 1])) == 30
    assert len(band_candidates_between(L, R, 2, 2, max_bucket=None)) == 600
    with pytest.raises(IncompatibleError):
        band_candidates_between(L, R.astype(np.uint32), 2, 2)
