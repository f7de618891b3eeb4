"""Spherical Hashing (and its spherical Hamming distance), Kernelized LSH and K-means Hashing.

Distances and searches are compared with brute force on unpacked bits; each method is checked
against its paper's defining property (SPH: balanced, quarter-overlapping balls; KLSH: w = K^{-1/2}
e_S on the centred kernel; KMH: codes are the concatenated codeword indices, and the codewords'
Euclidean distances follow the Hamming distances of their indices), then the estimator contract
(reproducibility, save/load, errors).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist, pdist
from sklearn.exceptions import ConvergenceWarning

import hashlearn
from hashlearn.codes import (
    SPHERICAL_MISSING_DISTANCE,
    pack,
    spherical_hamming_distances,
    spherical_knn_search,
    unpack,
)
from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.hashing import KernelizedLSH, KMeansHashing, SphericalHashing
from hashlearn.hashing.kmh import _objective

METHODS = [SphericalHashing, KernelizedLSH, KMeansHashing]
FAST = {SphericalHashing: {}, KernelizedLSH: {"n_anchors": 60, "subset_size": 10}, KMeansHashing: {"max_iter": 5}}


# -- spherical Hamming distance ---------------------------------------------------------------------
def ref_shd(A: np.ndarray, B: np.ndarray, n_bits: int) -> np.ndarray:
    """|a xor b| / |a and b|, or n_bits + |a xor b| without a common bit (the documented convention)."""
    a, b = A.astype(np.int64), B.astype(np.int64)
    common = a @ b.T
    xor = a.sum(1)[:, None] + b.sum(1)[None, :] - 2 * common
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(common > 0, xor / np.maximum(common, 1), n_bits + xor)


@st.composite
def code_pairs(draw):
    n_bits = draw(st.sampled_from([1, 3, 8, 63, 64, 65, 130]))
    nq = draw(st.integers(1, 6))
    n = draw(st.sampled_from([0, 1, 7, 200, 1025, 1100]))
    density = draw(st.sampled_from([0.05, 0.5, 0.95]))  # sparse codes: many pairs with no common bit
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    A = (rng.random((nq, n_bits)) < density).astype(np.uint8)
    B = (rng.random((n, n_bits)) < density).astype(np.uint8)
    if n:
        B[rng.integers(0, n, size=min(n, 5))] = A[0]  # exact duplicates of a query: distance 0
    return n_bits, A, B


@given(code_pairs())
def test_spherical_distances_match_brute_force(case):
    n_bits, A, B = case
    qc, dbc = pack(A), pack(B) if B.shape[0] else np.zeros((0, (n_bits + 63) // 64), np.uint64)
    D = spherical_hamming_distances(qc, dbc, n_bits)
    assert D.dtype == np.float64 and D.shape == (A.shape[0], B.shape[0])
    np.testing.assert_array_equal(D, ref_shd(A, B, n_bits))


@given(code_pairs(), st.sampled_from([1, 2, 10, 300, 2000]))
def test_spherical_knn_matches_stable_sort(case, k):
    n_bits, A, B = case
    n = B.shape[0]
    dbc = pack(B) if n else np.zeros((0, (n_bits + 63) // 64), np.uint64)
    D, I = spherical_knn_search(pack(A), dbc, k, n_bits=n_bits)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (A.shape[0], k)
    ref = ref_shd(A, B, n_bits)
    kk = min(k, n)
    order = np.argsort(ref, axis=1, kind="stable")[:, :kk]  # ties: smaller database index first
    np.testing.assert_array_equal(I[:, :kk], order)
    np.testing.assert_array_equal(D[:, :kk], np.take_along_axis(ref, order, 1).astype(np.float32))
    assert np.all(I[:, kk:] == -1) and np.all(D[:, kk:] == SPHERICAL_MISSING_DISTANCE)


def test_spherical_distance_conventions_and_errors():
    a = pack(np.array([[1, 1, 0, 0]]))
    b = pack(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]]))
    np.testing.assert_array_equal(spherical_hamming_distances(a, b, 4), [[0.0, 2.0, 8.0, 6.0]])
    zero = pack(np.zeros((1, 4), np.uint8))
    np.testing.assert_array_equal(spherical_hamming_distances(zero, b, 4), [[6.0, 6.0, 6.0, 4.0]])
    # without n_bits the offset is 64 * words; the order is the same
    np.testing.assert_array_equal(spherical_hamming_distances(a, b), [[0.0, 2.0, 68.0, 66.0]])
    with pytest.raises(ValueError, match="uint64"):
        spherical_hamming_distances(a.astype(np.int64), b, 4)
    with pytest.raises(ValueError, match="padding"):
        spherical_hamming_distances(a, b, 2)
    with pytest.raises(ValueError, match="k must be"):
        spherical_knn_search(a, b, 0)


# -- Spherical Hashing ------------------------------------------------------------------------------
def _overlaps(bits: np.ndarray) -> np.ndarray:
    b = bits.astype(np.int64)
    O = b.T @ b
    return O[np.triu_indices(O.shape[0], k=1)]


def test_sph_pivots_meet_balance_and_overlap_criteria():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 24)) * np.linspace(2.0, 0.5, 24)  # anisotropic
    h = SphericalHashing(n_bits=24, random_state=1).fit(X)
    m = X.shape[0]
    assert h.n_train_samples_ == m and h.converged_ and h.n_iter_ > 0
    assert h.pivots_.shape == (24, 24) and h.radii_.shape == (24,)
    # bits by the definition ||x - p_k|| <= t_k, computed independently
    bits = cdist(X, h.pivots_) <= h.radii_[None, :]
    np.testing.assert_array_equal(unpack(h.transform(X), 24), bits)
    # balance: every ball holds half the training points (radius between the m/2-th and next distance)
    np.testing.assert_allclose(bits.mean(axis=0), 0.5, atol=1.5 / m)
    # independence: pairwise overlaps near m/4 -- the paper's criteria with eps_m = 0.1, eps_s = 0.15
    o = _overlaps(bits)
    assert np.mean(np.abs(o - m / 4)) <= 0.1 * m / 4 + 2
    assert np.std(o) <= 0.15 * m / 4 + 2
    assert h.overlap_mean_error_ <= 0.1 and h.overlap_std_ <= 0.15
    # the optimisation did something: random pivots (iteration 0) do not meet the criteria here
    with pytest.warns(ConvergenceWarning, match="overlap criteria"):
        h0 = SphericalHashing(n_bits=24, max_iter=0, random_state=1).fit(X)
    assert not h0.converged_ and h0.overlap_mean_error_ > 0.1


def test_sph_more_bits_than_dimensions():
    X = np.random.default_rng(2).uniform(size=(800, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 40 independent balls in 3-D: criteria not reachable
        h = SphericalHashing(n_bits=40, max_iter=30, random_state=0).fit(X)
    bits = unpack(h.transform(X), 40)
    assert bits.shape == (800, 40)
    np.testing.assert_allclose(bits.mean(axis=0), 0.5, atol=2 / 800)  # balanced bits all the same
    assert np.unique(bits, axis=0).shape[0] > 400  # 40 spheres in 3-D separate most points


def test_sph_spherical_ranking_interface():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 30))
    h = SphericalHashing(n_bits=20, random_state=0).fit(X)
    assert h.converged_
    assert SphericalHashing.distance == "spherical"
    cq, cb = h.transform(X[:7]), h.transform(X)
    D = h.ranking_distances(cq, cb)
    np.testing.assert_array_equal(D, ref_shd(unpack(cq, 20), unpack(cb, 20), 20))
    Dk, Ik = h.knn_search(cq, cb, 5)
    np.testing.assert_array_equal(Ik, np.argsort(D, axis=1, kind="stable")[:, :5])
    assert np.all(Dk[:, 0] == 0)  # each query is in the database
    M = h.margins(X[:7])
    np.testing.assert_array_equal(unpack(cq, 20), (M >= 0).astype(np.uint8))


# -- Kernelized LSH ---------------------------------------------------------------------------------
def test_klsh_weights_are_inverse_sqrt_kernel_times_subset_indicators():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 20))
    h = KernelizedLSH(n_bits=16, n_anchors=40, subset_size=7, random_state=0).fit(X)
    A = h.anchors_
    assert A.shape == (40, 20) and h.n_anchors_ == 40 and h.subset_size_ == 7
    # median heuristic: gamma = 1 / (2 median squared distance between anchors)
    assert math.isclose(h.gamma_, 1 / (2 * np.median(pdist(A, "sqeuclidean"))), rel_tol=1e-9)
    K = np.exp(-h.gamma_ * cdist(A, A, "sqeuclidean"))
    H = np.eye(40) - 1 / 40
    Kc = H @ K @ H
    evals, evecs = np.linalg.eigh(Kc)
    assert h.rank_ == 39  # only the constant direction is dropped
    keep = evals > 1e-6 * evals[-1]
    K_half = (evecs[:, keep] * np.sqrt(evals[keep])) @ evecs[:, keep].T
    # K^{1/2} w = (centred) e_S: t ones per column, after removing the mean t/p
    E = K_half @ h.weights_ + 7 / 40
    np.testing.assert_allclose(E, np.round(E), atol=1e-6)
    np.testing.assert_array_equal(np.round(E).sum(axis=0), 7)
    assert set(np.unique(np.round(E))) == {0.0, 1.0}
    # out-of-sample: sign of sum_i w(i) * centred kernel(x, x_i)
    Y = rng.normal(size=(30, 20))
    Ky = np.exp(-h.gamma_ * cdist(Y, A, "sqeuclidean"))
    Kyc = Ky - Ky.mean(1, keepdims=True) - K.mean(0)[None, :] + K.mean()
    np.testing.assert_array_equal(unpack(h.transform(Y), 16), (Kyc @ h.weights_ > 0).astype(np.uint8))


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "linear", "cosine"])
def test_klsh_is_locality_sensitive(kernel):
    rng = np.random.default_rng(5)
    d, nb = 10, 512
    X = rng.normal(size=(600, d))
    h = KernelizedLSH(n_bits=nb, n_anchors=200, kernel=kernel, random_state=1).fit(X)
    x = rng.normal(size=(200, d))
    near = x + 0.1 * rng.normal(size=(200, d))
    far = rng.normal(size=(200, d))
    agree = lambda a, b: np.mean(unpack(h.transform(a), nb) == unpack(h.transform(b), nb))  # noqa: E731
    a_near, a_far = agree(x, near), agree(x, far)
    assert a_near > 0.85 and a_far < 0.7, (a_near, a_far)
    bits = unpack(h.transform(X), nb)
    assert 0.2 < bits.mean() < 0.8  # centring: hyperplanes pass through the data


def test_klsh_small_training_sets_and_more_bits_than_dimensions():
    X = np.random.default_rng(6).normal(size=(12, 2))
    h = KernelizedLSH(n_bits=64, random_state=0).fit(X)  # 300 anchors requested, 12 available
    assert h.n_anchors_ == 12 and h.subset_size_ == 6 and h.anchors_.shape == (12, 2)
    assert np.unique(unpack(h.transform(X), 64), axis=0).shape[0] == 12


# -- K-means Hashing --------------------------------------------------------------------------------
def test_kmh_codes_are_concatenated_codeword_indices():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, 24)) * np.linspace(3, 0.5, 24)
    h = KMeansHashing(n_bits=10, bits_per_subspace=4, max_iter=10).fit(X)
    np.testing.assert_array_equal(h.subspace_bits_, [4, 4, 2])
    assert h.subspace_bounds_[-1] == 24 and np.all(np.diff(h.subspace_bounds_) >= h.subspace_bits_)
    np.testing.assert_allclose(h.projection_.T @ h.projection_, np.eye(24), atol=1e-10)
    idx = h.quantize(X)
    assert idx.shape == (600, 3) and idx[:, 2].max() < 4 and idx[:, :2].max() < 16
    bits = unpack(h.transform(X), 10)
    rebuilt = np.stack([bits[:, 0:4] @ (1 << np.arange(4)), bits[:, 4:8] @ (1 << np.arange(4)),
                        bits[:, 8:10] @ (1 << np.arange(2))], axis=1)
    np.testing.assert_array_equal(rebuilt, idx)
    # nearest codeword, checked by brute force in the projected space
    Z = (X - h.mean_) @ h.projection_
    for m in range(3):
        lo, hi = h.subspace_bounds_[m], h.subspace_bounds_[m + 1]
        C = h.centroids_[m, : 1 << h.subspace_bits_[m], : hi - lo]
        np.testing.assert_array_equal(idx[:, m], np.argmin(cdist(Z[:, lo:hi], C, "sqeuclidean"), axis=1))


def test_kmh_preserves_affinity_and_lowers_quantization_error():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))
    h0 = KMeansHashing(n_bits=8, bits_per_subspace=4, max_iter=1).fit(X)  # one step from PCA hashing
    h = KMeansHashing(n_bits=8, bits_per_subspace=4, max_iter=30).fit(X)

    def quant_error(model):
        Z = (X - model.mean_) @ model.projection_
        idx = model.quantize(X)
        err = 0.0
        for m in range(2):
            lo, hi = model.subspace_bounds_[m], model.subspace_bounds_[m + 1]
            err += np.sum((Z[:, lo:hi] - model.centroids_[m, idx[:, m], : hi - lo]) ** 2)
        return err / X.shape[0]

    assert quant_error(h) < 0.95 * quant_error(h0)
    ham = np.array([[bin(i ^ j).count("1") for j in range(16)] for i in range(16)])
    iu = np.triu_indices(16, k=1)
    for m in range(2):
        C = h.centroids_[m]
        euc = cdist(C, C)
        # the codewords' distances follow s * sqrt(Hamming distance of their indices)
        assert np.corrcoef(euc[iu], np.sqrt(ham[iu]))[0, 1] > 0.9


def test_kmh_objective_gradient():
    rng = np.random.default_rng(9)
    K, w, n = 8, 3, 50
    C = rng.normal(size=K * w)
    S, counts = rng.normal(size=(K, w)) * 5, rng.integers(0, 12, size=K).astype(float)
    dh = np.sqrt(np.array([[bin(i ^ j).count("1") for j in range(K)] for i in range(K)], float))
    f, g = _objective(C, K, w, S, counts, n, dh, 10.0)
    eps = 1e-6
    num = np.array([(_objective(C + eps * e, K, w, S, counts, n, dh, 10.0)[0]
                     - _objective(C - eps * e, K, w, S, counts, n, dh, 10.0)[0]) / (2 * eps) for e in np.eye(K * w)])
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


def test_kmh_learns_at_most_as_many_bits_as_features():
    X = np.random.default_rng(10).normal(size=(200, 6))
    with pytest.warns(UserWarning, match="n_bits=8 exceeds the 6 features .*; fitting with n_bits_=6"):
        h = KMeansHashing(n_bits=8, bits_per_subspace=3, max_iter=3).fit(X)
    assert h.n_bits == 8 and h.n_bits_ == h.code_bits == 6 and h.subspace_bits_.tolist() == [3, 3]
    ref = KMeansHashing(n_bits=6, bits_per_subspace=3, max_iter=3).fit(X)
    np.testing.assert_array_equal(h.transform(X), ref.transform(X))
    assert ref.transform(X).shape == (200, 1)


# -- the estimator contract, for all three --------------------------------------------------------------
@pytest.mark.parametrize("cls", METHODS)
def test_registered_reproducible_and_roundtrip(cls, tmp_path):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 40))
    Y = rng.normal(size=(50, 40))
    h = hashlearn.make_hasher(cls.method_name, n_bits=33, random_state=4, **FAST[cls]).fit(X)
    assert isinstance(h, cls) and h.code_bits == 33 and cls.method_name in hashlearn.list_methods("vector")
    codes = h.transform(Y)
    assert codes.shape == (50, 1) and codes.dtype == np.uint64
    np.testing.assert_array_equal(cls(n_bits=33, random_state=4, **FAST[cls]).fit(X).transform(Y), codes)
    if cls is not KMeansHashing:  # KMH is deterministic unless it subsamples
        assert not np.array_equal(cls(n_bits=33, random_state=5, **FAST[cls]).fit(X).transform(Y), codes)
    else:
        sub = dict(FAST[cls], sample_size=200)
        np.testing.assert_array_equal(cls(n_bits=33, random_state=4, **sub).fit(X).transform(Y),
                                      cls(n_bits=33, random_state=4, **sub).fit(X).transform(Y))
    path = hashlearn.save(h, tmp_path / "h.hl")
    g = hashlearn.load(path)
    assert type(g) is cls and g.get_params() == h.get_params()
    np.testing.assert_array_equal(g.transform(Y), codes)
    if cls is SphericalHashing:
        np.testing.assert_array_equal(g.ranking_distances(codes, codes), h.ranking_distances(codes, codes))
    gen = cls(n_bits=33, random_state=np.random.default_rng(0), **FAST[cls]).fit(X)
    np.testing.assert_array_equal(hashlearn.load(hashlearn.save(gen, tmp_path / "g.hl")).transform(Y), gen.transform(Y))


@pytest.mark.parametrize("cls", METHODS)
def test_bad_input_raises_hashlearn_errors(cls):
    rng = np.random.default_rng(12)
    X = rng.normal(size=(60, 8))
    with pytest.raises(NotFittedError):
        cls(n_bits=8).transform(X)
    h = cls(n_bits=8, random_state=0, **FAST[cls]).fit(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValidationError, match="Input X contains NaN"):
        cls(n_bits=8, **FAST[cls]).fit(bad)
    for method in ("transform", "margins", "quantize"):
        if hasattr(h, method):
            with pytest.raises(ValidationError, match="Input X contains NaN"):
                getattr(h, method)(bad)
            with pytest.raises(ValidationError, match=f"X has 9 features, but {cls.__name__} is expecting 8"):
                getattr(h, method)(rng.normal(size=(4, 9)))
            with pytest.raises(ValidationError, match="Expected 2D array, got 1D array"):
                getattr(h, method)(X[0])
    with pytest.raises(ValidationError):
        cls(n_bits=0).fit(X)
    with pytest.raises(ValidationError, match=r"1 sample\(s\) \(shape=\(1, 8\)\) while a minimum of 2 is required"):
        cls(n_bits=8).fit(X[:1])


@pytest.mark.parametrize(
    "cls, params, match",
    [
        (SphericalHashing, {"sample_size": 1}, "sample_size"),
        (SphericalHashing, {"max_iter": -1}, "max_iter"),
        (SphericalHashing, {"epsilon_mean": float("nan")}, "epsilon_mean"),
        (KernelizedLSH, {"kernel": "poly"}, "kernel must be one of"),
        (KernelizedLSH, {"gamma": 0.0}, "gamma"),
        (KernelizedLSH, {"n_anchors": 1}, "n_anchors"),
        (KernelizedLSH, {"subset_size": 0}, "subset_size"),
        (KMeansHashing, {"bits_per_subspace": 9}, "bits_per_subspace"),
        (KMeansHashing, {"affinity_weight": -1.0}, "affinity_weight"),
        (KMeansHashing, {"max_iter": 0}, "max_iter"),
        (KMeansHashing, {"sample_size": 1}, "sample_size"),
    ],
)
def test_bad_parameters_are_named(cls, params, match):
    X = np.random.default_rng(13).normal(size=(40, 8))
    with pytest.raises(ValidationError, match=match):
        cls(n_bits=8, **params).fit(X)
