"""ADC/SDC scans (hashlearn.quantize.search) against a numpy brute force, with exact ties.

Tables hold small integers, so float sums are exact and many distances tie: results must equal a
stable sort by (distance, position) — or by (distance, tie id) — exactly, as the binary kernels do.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashlearn.errors import ValidationError
from hashlearn.quantize import MISSING_DISTANCE, adc_distances, adc_range_search, adc_search, sdc_lookup, sdc_search


def brute(tables, codes, bias=None):
    M = tables.shape[1]
    d = tables[:, np.arange(M)[None, :], codes.astype(np.int64)].sum(-1).astype(np.float64)
    return d if bias is None else d + bias[None, :]


def brute_topk(full, k, keys=None):
    n = full.shape[1]
    keys = np.arange(n) if keys is None else keys
    D = np.full((full.shape[0], k), np.inf)
    I = np.full((full.shape[0], k), -1, np.int64)
    for i, row in enumerate(full):
        order = np.lexsort((keys, row))[:k]
        D[i, : order.size] = row[order]
        I[i, : order.size] = order
    return D, I


def int_problem(rng, nq, n, M, ksub, hi=4):
    tables = rng.integers(0, hi, size=(nq, M, ksub)).astype(np.float32)
    codes = rng.integers(0, ksub, size=(n, M)).astype(np.uint8)
    return tables, codes


@given(st.integers(1, 7), st.integers(0, 3000), st.sampled_from([1, 3, 4, 8, 9]), st.sampled_from([2, 16, 256]),
       st.integers(1, 40), st.booleans(), st.integers(0, 2**32 - 1))
def test_adc_search_equals_stable_sort(nq, n, M, ksub, k, with_bias, seed):
    rng = np.random.default_rng(seed)
    tables, codes = int_problem(rng, nq, n, M, ksub)
    bias = rng.integers(0, 3, size=n).astype(np.float32) if with_bias else None
    D, I = adc_search(tables, codes, k, bias=bias)
    D_ref, I_ref = brute_topk(brute(tables, codes, bias), k)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_array_equal(D, D_ref.astype(np.float32))
    assert D.dtype == np.float32 and I.dtype == np.int64


def test_padding_when_fewer_codes_than_k(rng):
    tables, codes = int_problem(rng, 3, 5, 4, 16)
    D, I = adc_search(tables, codes, 8)
    assert (I[:, 5:] == -1).all() and np.isinf(D[:, 5:]).all() and D[0, 7] == MISSING_DISTANCE
    D0, I0 = adc_search(tables, codes[:0], 2)
    assert (I0 == -1).all() and np.isinf(D0).all()


def test_tie_ids_break_ties(rng):
    tables, codes = int_problem(rng, 5, 700, 2, 4, hi=2)  # very many ties
    keys = rng.permutation(700).astype(np.int64) * 3
    D, I = adc_search(tables, codes, 50, tie_ids=keys)
    D_ref, I_ref = brute_topk(brute(tables, codes), 50, keys=keys)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_array_equal(D, D_ref)


def test_thread_count_does_not_change_results(rng):
    tables, codes = int_problem(rng, 37, 5000, 8, 256)
    a = adc_search(tables, codes, 10, n_threads=1)
    b = adc_search(tables, codes, 10, n_threads=2)
    np.testing.assert_array_equal(a[1], b[1])


def test_float_tables_match_float64_reference(rng):
    tables = rng.random((4, 16, 256)).astype(np.float32)
    codes = rng.integers(0, 256, size=(3000, 16)).astype(np.uint8)
    D, I = adc_search(tables, codes, 20)
    full = brute(tables, codes)
    np.testing.assert_allclose(D, np.sort(full, 1)[:, :20], rtol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(full, I, 1), D, rtol=1e-5)


def test_adc_distances_and_range_search(rng):
    tables, codes = int_problem(rng, 6, 1500, 4, 16)
    bias = rng.integers(0, 2, size=1500).astype(np.float32)
    full = brute(tables, codes, bias)
    np.testing.assert_array_equal(adc_distances(tables, codes, bias=bias), full.astype(np.float32))
    lims, D, I = adc_range_search(tables, codes, 5.0, bias=bias)
    for i in range(6):
        expect = np.flatnonzero(full[i] <= 5.0)
        np.testing.assert_array_equal(I[lims[i] : lims[i + 1]], expect)
        np.testing.assert_array_equal(D[lims[i] : lims[i + 1]], full[i, expect])


def test_sdc_lookup_and_search(rng):
    M, ksub = 4, 16
    S = rng.integers(0, 5, size=(M, ksub, ksub)).astype(np.float32)
    S = S + S.transpose(0, 2, 1)
    qcodes = rng.integers(0, ksub, size=(5, M)).astype(np.uint8)
    codes = rng.integers(0, ksub, size=(800, M)).astype(np.uint8)
    T = sdc_lookup(S, qcodes)
    full = np.stack([sum(S[m, qcodes[i, m], codes[:, m]] for m in range(M)) for i in range(5)])
    np.testing.assert_array_equal(brute(T, codes), full)
    D, I = sdc_search(S, qcodes, codes, 7)
    np.testing.assert_array_equal(I, brute_topk(full, 7)[1])


def test_bad_input(rng):
    tables, codes = int_problem(rng, 2, 10, 4, 16)
    with pytest.raises(ValidationError, match="value"):
        bad = codes.copy()
        bad[3, 1] = 16
        adc_search(tables, bad, 3)
    with pytest.raises(ValidationError, match=r"shape \(n, 4\)"):
        adc_search(tables, codes[:, :3], 3)
    with pytest.raises(ValidationError, match="k must be"):
        adc_search(tables, codes, 0)
    with pytest.raises(ValidationError, match="NaN"):
        t = tables.copy()
        t[0, 0, 0] = np.nan
        adc_search(t, codes, 1)
    with pytest.raises(ValidationError, match="bias must have shape"):
        adc_search(tables, codes, 1, bias=np.zeros(3))
    with pytest.raises(ValidationError, match="tie_ids"):
        adc_search(tables, codes, 1, tie_ids=np.zeros(3))
    with pytest.raises(ValidationError, match="finite"):
        adc_range_search(tables, codes, np.inf)
    with pytest.raises(ValidationError, match="3-D"):
        adc_search(tables[0], codes, 1)
