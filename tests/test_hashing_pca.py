"""PCA-based learned hashing: PCAH, PCA-ITQ and Isotropic Hashing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

import hashlearn
from hashlearn.codes import unpack
from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.hashing import ITQ, IsotropicHashing, PCAHashing, make_hasher
from hashlearn.hashing import pca as pca_mod
from hashlearn.hashing._rotations import random_orthogonal

METHODS = [PCAHashing, ITQ, IsotropicHashing]


def _anisotropic(rng, n=600, d=24, offset=3.0):
    """Correlated Gaussian data with a decaying spectrum and a non-zero mean."""
    A = rng.normal(size=(d, d)) * (0.8 ** np.arange(d))
    return (rng.normal(size=(n, d)) @ A.T + offset).astype(np.float32)


def _quant_loss(V, R):
    P = V @ R
    return float(np.sum((np.where(P >= 0, 1.0, -1.0) - P) ** 2)) / V.shape[0]


# -- the registry and the estimator contract ---------------------------------------------------------------
@pytest.mark.parametrize("name,cls", [("pcah", PCAHashing), ("itq", ITQ), ("isoh", IsotropicHashing)])
def test_registered_and_public(name, cls):
    assert name in hashlearn.list_methods("vector")
    h = make_hasher(name, n_bits=8, random_state=3)
    assert type(h) is cls and h.n_bits == 8 and h.random_state == 3
    assert cls.__doc__ and "References" in cls.__doc__


@pytest.mark.parametrize("cls", METHODS)
def test_shapes_bits_are_signs_of_margins(cls, rng):
    X = _anisotropic(rng)
    h = cls(n_bits=20, random_state=0)
    assert h.fit(X) is h
    assert h.n_features_in_ == 24
    codes = h.transform(X[:50])
    assert codes.shape == (50, 1) and codes.dtype == np.uint64
    M = h.margins(X[:50])
    assert M.shape == (50, 20) and M.dtype == np.float32
    np.testing.assert_array_equal(unpack(codes, 20), (M > 0).astype(np.uint8))
    # a single vector must be passed as one row, as in scikit-learn
    with pytest.raises(ValidationError, match="Expected 2D array, got 1D array"):
        h.transform(X[0])
    np.testing.assert_array_equal(h.transform(X[:1]), codes[:1])
    assert h.code_bits == h.n_bits_ == 20
    # the mean is removed: bits are far from constant on the (offset) training data
    assert np.all(np.abs((h.margins(X) > 0).mean(axis=0) - 0.5) < 0.35)


@pytest.mark.parametrize("cls", METHODS)
def test_constructor_stores_only(cls):
    h = cls(n_bits=7, random_state=11)
    assert h.get_params()["n_bits"] == 7
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(h))
    with pytest.raises(NotFittedError, match="fit"):
        h.transform(np.zeros((2, 3)))


# -- PCA front end ------------------------------------------------------------------------------------------
def test_pcah_matches_sklearn_pca(rng):
    X = _anisotropic(rng, n=500, d=16)
    h = PCAHashing(n_bits=6).fit(X)
    ref = PCA(n_components=6, svd_solver="full").fit(X.astype(np.float64))
    np.testing.assert_allclose(h.mean_, ref.mean_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h.explained_variance_, ref.explained_variance_, rtol=1e-6)
    W = h.components_.astype(np.float64)
    np.testing.assert_allclose(W.T @ W, np.eye(6), atol=1e-6)
    # same directions up to sign; ours have their largest-magnitude entry positive
    np.testing.assert_allclose(np.abs(W.T @ ref.components_.T), np.eye(6), atol=1e-4)
    assert np.all(W[np.argmax(np.abs(W), axis=0), np.arange(6)] > 0)
    np.testing.assert_array_equal(h.projection_, h.components_)
    signs = np.sign(np.diag(W.T @ ref.components_.T))
    expected = (ref.transform(X.astype(np.float64)) * signs) > 0
    agree = np.mean(unpack(h.transform(X), 6).astype(bool) == expected)
    assert agree > 0.999, agree


def test_streamed_covariance_matches_numpy(rng, monkeypatch):
    X = (rng.normal(size=(1001, 7)) * 50 + 1e4).astype(np.float32)  # large mean: no cancellation allowed
    monkeypatch.setattr(pca_mod, "_CHUNK_ELEMS", 7 * 64)  # 64-row chunks, a ragged last one
    mean, cov = pca_mod._mean_cov(X)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(mean, X64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(X64, rowvar=False), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cls", METHODS)
def test_chunked_fit_equals_one_chunk_fit(cls, rng, monkeypatch):
    X = _anisotropic(rng, n=700)
    whole = cls(n_bits=12, random_state=5).fit(X)
    monkeypatch.setattr(pca_mod, "_CHUNK_ELEMS", 24 * 50)
    chunked = cls(n_bits=12, random_state=5).fit(X)
    np.testing.assert_allclose(chunked.projection_, whole.projection_, atol=1e-4)
    agree = np.mean(unpack(chunked.transform(X), 12) == unpack(whole.transform(X), 12))
    assert agree > 0.999


@pytest.mark.parametrize("cls", METHODS)
def test_fit_on_memory_map(cls, rng, tmp_path):
    X = _anisotropic(rng, n=400)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    a = cls(n_bits=10, random_state=1).fit(mm)
    b = cls(n_bits=10, random_state=1).fit(X)
    np.testing.assert_array_equal(a.projection_, b.projection_)


# -- ITQ ------------------------------------------------------------------------------------------------------
def test_itq_rotation_orthogonal_and_loss_monotone(rng):
    X = _anisotropic(rng, n=800, d=32)
    itq = ITQ(n_bits=16, n_iter=50, random_state=0).fit(X)
    R = itq.rotation_
    assert R.shape == (16, 16) and R.dtype == np.float64
    np.testing.assert_allclose(R.T @ R, np.eye(16), atol=1e-10)
    np.testing.assert_allclose(R @ R.T, np.eye(16), atol=1e-10)
    np.testing.assert_allclose(itq.projection_, itq.components_.astype(np.float64) @ R, atol=1e-6)
    L = itq.loss_history_
    assert L.shape == (51,) and np.all(np.isfinite(L))
    assert np.all(np.diff(L) <= 1e-6 * L[0]), np.diff(L).max()
    assert L[-1] < 0.95 * L[0]  # the iterations do something
    # the recorded loss is ||sign(V R) - V R||² / n at the final rotation
    V = (X.astype(np.float64) - itq.mean_) @ itq.components_.astype(np.float64)
    assert _quant_loss(V, R) == pytest.approx(L[-1], rel=1e-4)
    # ITQ quantises better than PCAH (R = I)
    assert _quant_loss(V, np.eye(16)) > L[-1]


@settings(max_examples=15)
@given(
    n=st.integers(2, 120),
    d=st.integers(1, 12),
    frac=st.floats(0.1, 1.0),
    seed=st.integers(0, 2**16),
    n_iter=st.integers(0, 8),
)
def test_itq_invariants_property(n, d, frac, seed, n_iter):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d) + rng.normal(size=d)
    nb = max(1, int(round(frac * d)))
    itq = ITQ(n_bits=nb, n_iter=n_iter, random_state=seed).fit(X)
    R = itq.rotation_
    np.testing.assert_allclose(R.T @ R, np.eye(nb), atol=1e-9)
    L = itq.loss_history_
    assert L.shape == (n_iter + 1,)
    assert np.all(np.diff(L) <= 1e-5 * max(L[0], 1.0))
    assert itq.transform(X).shape == (n, 1)


def test_itq_zero_iterations_is_pca_with_random_rotation(rng):
    X = _anisotropic(rng)
    a = ITQ(n_bits=8, n_iter=0, random_state=4).fit(X)
    assert a.loss_history_.shape == (1,)
    np.testing.assert_allclose(a.rotation_ @ a.rotation_.T, np.eye(8), atol=1e-12)
    assert not np.allclose(np.abs(a.rotation_), np.eye(8))


def test_itq_max_train_samples(rng):
    X = _anisotropic(rng, n=900)
    a = ITQ(n_bits=10, max_train_samples=300, random_state=2).fit(X)
    b = ITQ(n_bits=10, max_train_samples=300, random_state=2).fit(X)
    full = ITQ(n_bits=10, random_state=2).fit(X)
    assert a.n_train_samples_ == 300 and full.n_train_samples_ == 900
    np.testing.assert_array_equal(a.rotation_, b.rotation_)
    # the PCA still uses every row
    np.testing.assert_array_equal(a.components_, full.components_)
    assert np.all(np.diff(a.loss_history_) <= 1e-6 * a.loss_history_[0])
    assert ITQ(n_bits=10, max_train_samples=5000, random_state=2).fit(X).n_train_samples_ == 900


# -- IsoH -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [1, 5, 16, 24])
def test_isoh_equalises_variances(rng, n_bits):
    X = _anisotropic(rng, n=1000, d=24)
    h = IsotropicHashing(n_bits=n_bits, random_state=0).fit(X)
    Q, lam = h.rotation_, h.explained_variance_
    np.testing.assert_allclose(Q.T @ Q, np.eye(n_bits), atol=1e-10)
    a = lam.mean()
    np.testing.assert_allclose(np.diag(Q.T @ np.diag(lam) @ Q), a, rtol=1e-5)
    assert h.isotropy_error_ <= h.tol
    # and so the rotated projections of the training data have equal variances
    P = h.margins(X).astype(np.float64)
    np.testing.assert_allclose(P.var(axis=0, ddof=1), a, rtol=1e-3)
    if n_bits > 1:
        assert lam[0] > 2 * lam[-1]  # the test is not trivial: PCA variances are far from equal
        assert h.n_iter_ >= 1


def test_isoh_helper_trivial_and_non_converged_cases(rng):
    Q0 = random_orthogonal(rng, 4)
    Q, it, err = pca_mod._isotropic_rotation(np.full(4, 2.5), Q0, max_iter=100, tol=1e-6)
    assert it == 0 and err == 0.0 and Q is Q0
    Q, it, err = pca_mod._isotropic_rotation(np.zeros(4), Q0, max_iter=100, tol=1e-6)
    assert it == 0
    X = _anisotropic(rng, n=500)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        h = IsotropicHashing(n_bits=16, max_iter=1, random_state=0).fit(X)
    assert h.n_iter_ == 1 and h.isotropy_error_ > h.tol


# -- reproducibility and persistence -----------------------------------------------------------------------
@pytest.mark.parametrize("cls", METHODS)
def test_random_state_reproducible(cls, rng):
    X = _anisotropic(rng)
    a = cls(n_bits=12, random_state=7).fit(X)
    b = cls(n_bits=12, random_state=7).fit(X)
    np.testing.assert_array_equal(a.projection_, b.projection_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    g1 = cls(n_bits=12, random_state=np.random.default_rng(7)).fit(X)
    g2 = cls(n_bits=12, random_state=np.random.default_rng(7)).fit(X)
    np.testing.assert_array_equal(g1.projection_, g2.projection_)
    if cls is not PCAHashing:
        c = cls(n_bits=12, random_state=8).fit(X)
        assert not np.array_equal(a.rotation_, c.rotation_)


@pytest.mark.parametrize("cls", METHODS)
def test_save_load_round_trip(cls, rng, tmp_path):
    X = _anisotropic(rng)
    Xq = _anisotropic(np.random.default_rng(99), n=50)
    h = cls(n_bits=20, random_state=np.random.default_rng(3)).fit(X)
    path = tmp_path / f"{cls.__name__}.hlrn"
    hashlearn.save(h, path)
    g = hashlearn.load(path)
    assert type(g) is cls and g.get_params()["n_bits"] == 20
    np.testing.assert_array_equal(g.transform(Xq), h.transform(Xq))
    np.testing.assert_array_equal(g.transform(X), h.transform(X))
    for key in ("mean_", "components_", "explained_variance_", "projection_"):
        np.testing.assert_array_equal(getattr(g, key), getattr(h, key))
    if cls is ITQ:
        np.testing.assert_array_equal(g.loss_history_, h.loss_history_)
        assert g.n_train_samples_ == h.n_train_samples_


# -- validation -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", METHODS)
def test_n_bits_above_dimension_learns_d_bits_with_a_warning(cls, rng):
    X = rng.normal(size=(100, 8))
    with pytest.warns(UserWarning, match=r"n_bits=9 exceeds the data dimension d=8 .*; fitting with n_bits_=8"):
        h = cls(n_bits=9, random_state=0).fit(X)
    assert h.n_bits == 9 and h.n_bits_ == h.code_bits == 8  # the parameter is left as given
    assert h.projection_.shape == (8, 8) and h.margins(X).shape == (100, 8)
    # the same model as asking for d bits
    ref = cls(n_bits=8, random_state=0).fit(X)
    np.testing.assert_array_equal(h.transform(X), ref.transform(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n_bits == d: no warning
        assert ref.transform(X).shape == (100, 1) and ref.n_bits_ == 8


@pytest.mark.parametrize("cls", METHODS)
def test_wrong_dimension_and_nan(cls, rng):
    X = rng.normal(size=(100, 8))
    h = cls(n_bits=4, random_state=0).fit(X)
    with pytest.raises(ValidationError, match=f"X has 5 features, but {cls.__name__} is expecting 8 features"):
        h.transform(rng.normal(size=(3, 5)))
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        cls(n_bits=4).fit(bad)
    with pytest.raises(ValidationError, match="NaN"):
        h.transform(bad)
    bad[7, 2] = np.inf
    with pytest.raises(ValidationError):
        h.transform(bad)
    with pytest.raises(ValidationError):
        cls(n_bits=4).fit(np.zeros((0, 8)))
    with pytest.raises(ValidationError, match="Expected 2D array, got 1D array"):
        cls(n_bits=4).fit(rng.normal(size=8 * 3))  # 1-D training data


@pytest.mark.parametrize(
    "cls,params,match",
    [
        (PCAHashing, {"n_bits": 0}, "n_bits"),
        (ITQ, {"n_bits": 2.5}, "n_bits"),
        (ITQ, {"n_iter": -1}, "n_iter"),
        (ITQ, {"n_iter": True}, "n_iter"),
        (ITQ, {"max_train_samples": 0}, "max_train_samples"),
        (IsotropicHashing, {"max_iter": -2}, "max_iter"),
        (IsotropicHashing, {"tol": 0.0}, "tol"),
        (IsotropicHashing, {"tol": "x"}, "tol"),
    ],
)
def test_bad_parameters(cls, params, match, rng):
    with pytest.raises(ValidationError, match=match):
        cls(**params).fit(rng.normal(size=(30, 6)))


@pytest.mark.parametrize("cls", METHODS)
def test_degenerate_training_sets(cls):
    # two rows (rank-1 covariance) and a constant matrix (zero covariance) still give a usable model
    X2 = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0]])
    h = cls(n_bits=3, random_state=0).fit(X2)
    assert np.all(np.isfinite(h.projection_))
    assert h.transform(X2).shape == (2, 1)
    h = cls(n_bits=2, random_state=0).fit(np.ones((10, 3)))
    assert np.all(np.isfinite(h.projection_))


@pytest.mark.parametrize("cls", METHODS)
def test_failed_refit_leaves_the_estimator_unfitted(cls, rng):
    h = cls(n_bits=6, random_state=0).fit(rng.normal(size=(50, 8)))
    bad = rng.normal(size=(50, 8))
    bad[3, 1] = np.inf
    with pytest.raises(ValidationError, match="infinity"):
        h.fit(bad)
    assert not [k for k in vars(h) if k.endswith("_")]  # no fitted attribute of the previous model is left
    with pytest.raises(NotFittedError):
        h.transform(rng.normal(size=(2, 8)))
    h.fit(rng.normal(size=(50, 16)))  # and a successful refit works
    assert h.transform(rng.normal(size=(2, 16))).shape == (2, 1)
