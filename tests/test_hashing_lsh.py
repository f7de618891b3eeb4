"""Data-independent LSH families: SimHash, E2LSH, cross-polytope (and the fast Walsh–Hadamard transform)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from scipy.spatial.distance import cdist
from scipy.stats import norm

import hashlearn
from hashlearn.codes import unpack
from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.hashing import CrossPolytopeLSH, E2LSH, SimHash, fwht

FAMILIES = [SimHash, E2LSH, CrossPolytopeLSH]


def _pair_at_angle(rng, d, theta):
    """Two unit vectors in R^d at angle theta (random orientation)."""
    Q, _ = np.linalg.qr(rng.normal(size=(d, 2)))
    u, v = Q[:, 0], Q[:, 1]
    return u, math.cos(theta) * u + math.sin(theta) * v


def _binomial_tol(p, n, z=5.0):
    return z * math.sqrt(max(p * (1 - p), 1e-4) / n)


# -- SimHash -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("theta", [0.2, 0.7, 1.3, 2.0, 2.8])
def test_simhash_bit_agreement_is_one_minus_theta_over_pi(theta):
    rng = np.random.default_rng(int(theta * 100))
    d, nb = 24, 8192
    h = SimHash(n_bits=nb, random_state=7).fit(rng.normal(size=(50, d)))
    x, y = _pair_at_angle(rng, d, theta)
    bits = unpack(h.transform(np.stack([x, y])), nb)
    agree = np.mean(bits[0] == bits[1])
    p = 1 - theta / math.pi
    assert abs(agree - p) < _binomial_tol(p, nb), (agree, p)


def test_simhash_margins_signs_are_the_bits_and_centering():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10)) + 5.0
    h = SimHash(n_bits=70, center=True, random_state=1).fit(X)
    np.testing.assert_allclose(h.mean_, X.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(h.projections_, axis=0), 1.0, rtol=1e-5)
    M = h.margins(X)
    assert M.shape == (200, 70)
    np.testing.assert_array_equal(unpack(h.transform(X), 70), (M > 0).astype(np.uint8))
    # centred bits are balanced on the training data; uncentred ones are not (all points near 5·1)
    imbalance_centred = np.abs((M > 0).mean(axis=0) - 0.5).mean()
    M0 = SimHash(n_bits=70, random_state=1).fit(X).margins(X)
    imbalance_raw = np.abs((M0 > 0).mean(axis=0) - 0.5).mean()
    assert imbalance_centred < 0.1 < 0.3 < imbalance_raw, (imbalance_centred, imbalance_raw)
    np.testing.assert_array_equal(SimHash(n_bits=8, random_state=1).fit(X).mean_, 0.0)


# -- E2LSH -------------------------------------------------------------------------------------------
def _p_stable_collision(c, w):
    r = w / c
    return 1 - 2 * norm.cdf(-r) - 2 / (math.sqrt(2 * math.pi) * r) * (1 - math.exp(-(r**2) / 2))


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_e2lsh_collision_probability_matches_closed_form(c):
    rng = np.random.default_rng(int(c * 10))
    d, nb, w = 16, 6000, 4.0
    h = E2LSH(n_bits=nb, bucket_width=w, random_state=3).fit(rng.normal(size=(20, d)))
    x = rng.normal(size=d)
    u = rng.normal(size=d)
    y = x + c * u / np.linalg.norm(u)
    H = h.hash_values(np.stack([x, y]))
    assert H.dtype == np.int64 and H.shape == (2, nb)
    rate = np.mean(H[0] == H[1])
    p = _p_stable_collision(c, w)
    assert abs(rate - p) < _binomial_tol(p, nb), (rate, p)
    # a code bit agrees when the buckets agree, and with probability 1/2 otherwise
    bits = unpack(h.transform(np.stack([x, y])), nb)
    agree = np.mean(bits[0] == bits[1])
    p_bit = p + (1 - p) / 2
    assert abs(agree - p_bit) < _binomial_tol(p_bit, nb), (agree, p_bit)


def test_e2lsh_bits_of_equal_and_different_buckets():
    rng = np.random.default_rng(1)
    h = E2LSH(n_bits=4096, bucket_width=1.0, random_state=0).fit(rng.normal(size=(5, 4)))
    # every hash function maps the same bucket to the same bit
    X = rng.normal(size=(30, 4)) * 1e3
    H = h.hash_values(X)
    bits = unpack(h.transform(X), 4096)
    for j in range(0, 4096, 97):
        for value in np.unique(H[:, j]):
            assert len(set(bits[H[:, j] == value, j])) == 1
    # far apart points never share buckets: half of the bits differ
    diff = np.mean(bits[0] != bits[1])
    assert np.all(H[0] != H[1])
    assert abs(diff - 0.5) < _binomial_tol(0.5, 4096)


def test_e2lsh_positions_are_the_unfloored_hashes():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 7)).astype(np.float32)
    h = E2LSH(n_bits=40, bucket_width=1.5, random_state=0).fit(X)
    P = h.positions(X)
    assert P.shape == (50, 40) and P.dtype == np.float64
    expect = ((X @ h.projections_).astype(np.float64) + h.offsets_) / h.bucket_width_
    np.testing.assert_allclose(P, expect, rtol=1e-12)
    np.testing.assert_array_equal(np.floor(P).astype(np.int64), h.hash_values(X))


def test_e2lsh_default_bucket_width_rule():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    h = E2LSH(n_bits=8, random_state=0).fit(X)
    D = cdist(X.astype(np.float64), X.astype(np.float64))
    np.fill_diagonal(D, np.inf)
    assert h.bucket_width_ == pytest.approx(4 * np.median(D.min(axis=1)), rel=1e-4)
    assert h.bucket_width is None  # the parameter is not overwritten
    assert np.all((h.offsets_ >= 0) & (h.offsets_ < h.bucket_width_))
    # duplicates (zero distances) are ignored; a single point gives 1.0
    Xd = np.repeat(X[:50], 3, axis=0)
    assert E2LSH(n_bits=8, random_state=0).fit(Xd).bucket_width_ > 0
    assert E2LSH(n_bits=8, random_state=0).fit(X[:1]).bucket_width_ == 1.0
    with pytest.raises(ValidationError):
        E2LSH(bucket_width=-1.0).fit(X)
    with pytest.raises(ValidationError):
        E2LSH(bucket_width=float("nan")).fit(X)


# -- FWHT and cross-polytope ------------------------------------------------------------------------
@pytest.mark.parametrize("D", [1, 2, 4, 8, 32, 128])
def test_fwht_equals_hadamard_matrix(D):
    rng = np.random.default_rng(D)
    X = rng.normal(size=(3, 5, D))
    H = scipy.linalg.hadamard(D)
    np.testing.assert_allclose(fwht(X), X @ H.T, rtol=1e-10, atol=1e-10)
    Xi = rng.integers(-5, 5, size=(4, D))
    np.testing.assert_array_equal(fwht(Xi), Xi @ H.T)
    # orthonormal version is an involution
    np.testing.assert_allclose(fwht(fwht(X, normalize=True), normalize=True), X, atol=1e-10)
    X32 = X.astype(np.float32)
    assert fwht(X32).dtype == np.float32
    many = rng.normal(size=(100, D)).astype(np.float32)  # several blocks of rows in the kernel
    np.testing.assert_allclose(fwht(many), many.astype(np.float64) @ H.T, rtol=1e-4, atol=1e-4)


def test_fwht_rejects_non_power_of_two():
    with pytest.raises(ValidationError, match="power-of-two"):
        fwht(np.ones((2, 6)))


def _rotations_reference(h, X):
    """The rotations of a fitted CrossPolytopeLSH by the textbook algorithm, in float32: zero-pad, then
    three rounds of (sign flip, one butterfly stage at a time), scale, keep the first last_dim_."""
    X = np.asarray(X, dtype=np.float32)
    (n, d), D, H = X.shape, h.rotation_dim_, h.n_hashes_
    Y = np.zeros((n, H, D), dtype=np.float32)
    Y[:, :, :d] = X[:, None, :]
    for r in range(h.signs_.shape[1]):
        Y *= h.signs_[None, :, r, :].astype(np.float32)
        step = 1
        while step < D:
            V = Y.reshape(n, H, D // (2 * step), 2, step)
            a, b = V[..., 0, :].copy(), V[..., 1, :].copy()
            V[..., 0, :] = a + b
            V[..., 1, :] = a - b
            step *= 2
    Y *= np.float32(D ** (-0.5 * h.signs_.shape[1]))
    return Y[:, :, : h.last_dim_]


@pytest.mark.parametrize("n, d, n_bits, last_dim", [
    (1, 1, 5, None), (70, 20, 60, None), (45, 100, 50, 24), (33, 9, 12, 1), (40, 784, 64, None), (40, 784, 64, 16),
])
def test_crosspolytope_kernels_equal_textbook_reference(n, d, n_bits, last_dim):
    # bit for bit: the compiled kernels do the same float32 additions in the same order (any number of
    # rows, partial blocks, padding, dimension reduction with a last round cut short)
    rng = np.random.default_rng(d)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[: n // 2, : d // 2] = np.round(X[: n // 2, : d // 2])  # exact ties between scores
    h = CrossPolytopeLSH(n_bits=n_bits, last_dim=last_dim, random_state=3).fit(X)
    Y = _rotations_reference(h, X)
    np.testing.assert_array_equal(h.rotate(X), Y)
    np.testing.assert_array_equal(h.hash_values(X), np.argmax(np.concatenate([Y, -Y], axis=2), axis=2))
    np.testing.assert_array_equal(h.hash_values(X[-1:]), h.hash_values(X)[-1:])


def test_crosspolytope_hash_bits_before_fitting():
    X = np.random.default_rng(0).normal(size=(10, 20))
    for last_dim in (None, 1, 5, 32):
        h = CrossPolytopeLSH(n_bits=30, last_dim=last_dim, random_state=0).fit(X)
        assert CrossPolytopeLSH.hash_bits(20, last_dim) == h.bits_per_hash_
    assert CrossPolytopeLSH.hash_bits(20) == 6  # D = 32: 64 vertices
    for bad in (0, 33, 2.0, True):
        with pytest.raises(ValidationError, match="last_dim"):
            CrossPolytopeLSH.hash_bits(20, bad)
        with pytest.raises(ValidationError, match="last_dim"):
            CrossPolytopeLSH(last_dim=bad).fit(X)


def test_crosspolytope_rotation_is_orthogonal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 20))  # padded to 32
    h = CrossPolytopeLSH(n_bits=60, random_state=0).fit(X)
    assert (h.rotation_dim_, h.last_dim_, h.bits_per_hash_, h.n_hashes_) == (32, 32, 6, 10)
    Y = h.rotate(X).astype(np.float64)
    assert Y.shape == (40, 10, 32)
    norms = np.linalg.norm(Y, axis=2)
    np.testing.assert_allclose(norms, np.broadcast_to(np.linalg.norm(X, axis=1)[:, None], norms.shape), rtol=1e-5)
    G = np.einsum("ihk,jhk->hij", Y, Y)
    np.testing.assert_allclose(G, np.broadcast_to(X @ X.T, G.shape), rtol=1e-4, atol=1e-4)
    # the rotations differ between hashes
    assert not np.allclose(Y[:, 0], Y[:, 1])


def test_crosspolytope_hash_is_closest_vertex_and_ranking():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 12))
    h = CrossPolytopeLSH(n_bits=40, last_dim=8, random_state=2).fit(X)
    assert h.bits_per_hash_ == 4 and h.n_hashes_ == 10
    Y = h.rotate(X)
    assert Y.shape == (50, 10, 8)
    H = h.hash_values(X)
    S = np.concatenate([Y, -Y], axis=2)
    np.testing.assert_array_equal(H, S.argmax(axis=2))
    assert H.min() >= 0 and H.max() < 16
    V, G = h.rank_vertices(X, 5)
    assert V.shape == G.shape == (50, 10, 5)
    np.testing.assert_array_equal(V[:, :, 0], H)
    assert np.all(G[:, :, 0] == 0) and np.all(np.diff(G, axis=2) >= 0)
    np.testing.assert_allclose(np.take_along_axis(S, V, axis=2), S.max(axis=2, keepdims=True) - G, atol=1e-5)
    Vall, _ = h.rank_vertices(X)
    np.testing.assert_array_equal(np.sort(Vall, axis=2), np.broadcast_to(np.arange(16), Vall.shape))
    # codes: the first n_bits bits of the concatenated 4-bit hashes
    bits = unpack(h.transform(X), 40)
    expect = ((H[:, :, None] >> np.arange(4)) & 1).reshape(50, -1)[:, :40]
    np.testing.assert_array_equal(bits, expect)
    with pytest.raises(ValidationError, match="last_dim"):
        CrossPolytopeLSH(last_dim=64).fit(X)


def test_crosspolytope_truncated_last_hash():
    X = np.random.default_rng(3).normal(size=(30, 8))
    h = CrossPolytopeLSH(n_bits=10, random_state=0).fit(X)  # 4 bits per hash, 3 hashes, 2 bits of the last
    assert h.n_hashes_ == 3
    H = h.hash_values(X)
    bits = unpack(h.transform(X), 10)
    np.testing.assert_array_equal(bits[:, 8:], (H[:, 2:3] >> np.arange(2)) & 1)


def test_crosspolytope_collisions_decrease_with_angle():
    rng = np.random.default_rng(4)
    d = 16
    h = CrossPolytopeLSH(n_bits=5 * 2000, random_state=0).fit(rng.normal(size=(10, d)))
    rates = []
    for theta in (0.2, 0.6, 1.0, 1.5):
        x, y = _pair_at_angle(rng, d, theta)
        H = h.hash_values(np.stack([x, y]))
        rates.append(np.mean(H[0] == H[1]))
    tol = _binomial_tol(0.25, h.n_hashes_, z=3.0)
    assert all(a > b + tol for a, b in zip(rates, rates[1:])), rates
    assert rates[0] > 0.5 and rates[-1] < 0.1, rates


# -- common contract ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", FAMILIES)
def test_registered_and_persistence_roundtrip(cls, tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 13))
    h = hashlearn.make_hasher(cls.method_name, n_bits=33, random_state=4).fit(X)
    assert isinstance(h, cls) and h.code_bits == 33
    codes = h.transform(X)
    assert codes.shape == (100, 1) and codes.dtype == np.uint64
    # deterministic given the seed
    np.testing.assert_array_equal(cls(n_bits=33, random_state=4).fit(X).transform(X), codes)
    assert not np.array_equal(cls(n_bits=33, random_state=5).fit(X).transform(X), codes)
    path = hashlearn.save(h, tmp_path / "h.hl")
    g = hashlearn.load(path)
    assert type(g) is cls and g.get_params() == h.get_params()
    np.testing.assert_array_equal(g.transform(X), codes)
    if hasattr(h, "hash_values"):
        np.testing.assert_array_equal(g.hash_values(X), h.hash_values(X))


@pytest.mark.parametrize("cls", FAMILIES)
def test_bad_input_raises_hashlearn_errors(cls):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(20, 5))
    with pytest.raises(NotFittedError):
        cls().transform(X)
    for method in ("hash_values", "margins", "positions", "rotate", "rank_vertices"):
        if hasattr(cls, method):
            with pytest.raises(NotFittedError):
                getattr(cls(), method)(X)
    h = cls(n_bits=16, random_state=0).fit(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValidationError, match="Input X contains NaN"):
        h.transform(bad)
    for method in ("transform", "hash_values", "margins", "positions", "rotate", "rank_vertices"):
        if hasattr(h, method):
            with pytest.raises(ValidationError, match=f"X has 6 features, but {cls.__name__} is expecting 5"):
                getattr(h, method)(rng.normal(size=(4, 6)))
            with pytest.raises(ValidationError, match="Input X contains NaN"):
                getattr(h, method)(bad)
            with pytest.raises(ValidationError, match="Expected 2D array, got 1D array"):
                getattr(h, method)(X[0])
            with pytest.raises(TypeError, match="Sparse data was passed"):
                getattr(h, method)(sp.csr_matrix(X))
    with pytest.raises(ValidationError):
        cls(n_bits=0).fit(X)
    with pytest.raises(ValidationError):
        cls(n_bits=16).fit(bad)
