"""Graph-based learned hashers: Spectral Hashing, Anchor Graph Hashing (one and two layers), Scalable
Graph Hashing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ortho_group

import hashlearn
from hashlearn.codes import unpack
from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.hashing import (
    AnchorGraphHashing,
    ScalableGraphHashing,
    SpectralHashing,
    TwoLayerAnchorGraphHashing,
    make_hasher,
)
from hashlearn.hashing.spectral import spectral_modes

# small but non-trivial settings so the whole file runs in a few seconds
SMALL = {
    "sh": {},
    "agh": {"n_anchors": 40, "n_nearest": 3},
    "agh2": {"n_anchors": 40, "n_nearest": 3},
    "sgh": {"n_bases": 60},
}
METHODS = list(SMALL)


def blobs(rng, n_per=150, d=12, k=5, spread=6.0):
    centres = rng.normal(scale=spread, size=(k, d))
    X = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(k), n_per)
    return X, y


def make(method, n_bits, seed=0, **kw):
    return make_hasher(method, n_bits=n_bits, random_state=seed, **{**SMALL[method], **kw})


# -- Spectral Hashing: the analytic eigenfunctions of a uniform box ---------------------------------------
SIDES = np.array([4.0, 2.5, 1.2])
# the 8 lowest frequencies kπ/L_i of this box: .25k, .4k, .833k (units of π) → (direction, k)
BOX_MODES = [(0, 1), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (0, 4), (1, 3)]


def test_spectral_modes_enumeration_follows_the_paper():
    # sides 4, 2.5, 1.2: frequencies kπ/L are .25k, .4k, .833k (in units of π)
    dirs, ks, om = spectral_modes(SIDES, 8)
    assert list(zip(dirs.tolist(), ks.tolist())) == BOX_MODES
    np.testing.assert_allclose(om, ks * np.pi / SIDES[dirs])
    # one long side takes every mode
    dirs, ks, _ = spectral_modes(np.array([10.0, 1.0]), 5)
    assert dirs.tolist() == [0] * 5 and ks.tolist() == [1, 2, 3, 4, 5]


def _box_eigenfunctions(T, signs):
    """Analytic eigenfunctions sin(π/2 + kπ/L · u) of the box, at box coordinates T (n, 3); ``u`` is
    measured from the end of the side where the fitted principal direction starts."""
    cols = []
    for i, k in BOX_MODES:
        u = T[:, i] if signs[i] > 0 else SIDES[i] - T[:, i]
        cols.append(np.sin(np.pi / 2 + k * np.pi / SIDES[i] * u))
    return np.stack(cols, axis=1)


def _rotated(T, seed=5):
    Q = ortho_group.rvs(3, random_state=seed)
    return T @ Q.T + np.array([1.0, -2.0, 0.5]), Q


@pytest.mark.parametrize("sampling", ["grid", "random"])
def test_spectral_hashing_matches_analytic_eigenfunctions_on_a_uniform_box(sampling):
    rng = np.random.default_rng(3)
    if sampling == "grid":  # a regular grid: PCA axes and box are exact, so is the match
        U = np.stack(np.meshgrid(*[np.linspace(0, L, N) for L, N in zip(SIDES, (41, 26, 13))], indexing="ij"), -1)
        U = U.reshape(-1, 3)
    else:  # uniform samples: axes and box are estimated, the match is up to sampling error
        U = rng.random((20000, 3)) * SIDES
    X, Q = _rotated(U)
    sh = SpectralHashing(n_bits=8).fit(X)  # more bits than dimensions: long sides carry several modes

    # the principal directions are the box axes (rotated), in decreasing side length
    align = Q.T @ sh.components_.astype(np.float64)  # (box axis, component)
    np.testing.assert_allclose(np.abs(align), np.eye(3), atol=1e-6 if sampling == "grid" else 0.03)
    np.testing.assert_allclose(sh.box_max_ - sh.box_min_, SIDES, rtol=1e-6 if sampling == "grid" else 0.01)
    # the selected modes are the 8 lowest-frequency ones of the box, in eigenvalue order
    assert list(zip(sh.directions_.tolist(), sh.modes_.tolist())) == BOX_MODES
    assert np.all(np.diff(sh.frequencies_) >= 0)

    # each learned thresholding function is the analytic eigenfunction of its side
    T = rng.random((3000, 3)) * SIDES
    F = sh.margins(_rotated(T)[0])
    analytic = _box_eigenfunctions(T, np.sign(np.diag(align)))
    if sampling == "grid":
        np.testing.assert_allclose(F, analytic, atol=1e-4)
    else:
        assert np.mean(np.abs(F - analytic)) < 0.02
        assert np.mean((F > 0) == (analytic > 0)) > 0.98
    np.testing.assert_array_equal(unpack(sh.transform(_rotated(T)[0]), 8).astype(bool), F > 0)


def test_spectral_hashing_bits_split_the_box_evenly_and_degrade_gracefully_for_constant_directions():
    rng = np.random.default_rng(0)
    X = np.c_[rng.random((4000, 2)) * [3.0, 1.0], np.zeros(4000)]  # third direction constant
    sh = SpectralHashing(n_bits=6).fit(X)
    assert not np.any(sh.directions_ == 2)  # a zero-width side has infinite frequency: never chosen
    bits = unpack(sh.transform(X), 6)
    # first modes (k = 1) split the uniform box in halves
    first = [j for j in range(6) if sh.modes_[j] == 1]
    np.testing.assert_allclose(bits[:, first].mean(axis=0), 0.5, atol=0.03)
    with pytest.raises(ValidationError, match="constant"):
        SpectralHashing(n_bits=4).fit(np.ones((10, 3)))


# -- Anchor Graph Hashing -------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [2, 3, 5])
def test_anchor_graph_is_row_stochastic_and_s_sparse(s):
    rng = np.random.default_rng(s)
    X, _ = blobs(rng)
    agh = AnchorGraphHashing(n_bits=8, n_anchors=40, n_nearest=s, random_state=0).fit(X)
    Xq = np.r_[X[:50], rng.normal(scale=50.0, size=(20, X.shape[1]))]  # includes far-away queries
    Z = agh.anchor_graph(Xq)
    assert Z.shape == (70, agh.anchors_.shape[0])
    assert np.all(np.diff(Z.indptr) == s) and np.all(Z.data >= 0)
    np.testing.assert_allclose(np.asarray(Z.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    # the non-zeros are the s nearest anchors, weights decreasing with distance
    D = ((Xq[:, None, :].astype(np.float64) - agh.anchors_[None].astype(np.float64)) ** 2).sum(-1)
    nearest = np.sort(np.argsort(D, axis=1)[:, :s], axis=1)
    np.testing.assert_array_equal(np.sort(Z.indices.reshape(-1, s), axis=1), nearest)
    w = Z.data.reshape(-1, s)  # stored nearest first
    assert np.all(np.diff(w, axis=1) <= 1e-12)


def test_anchor_graph_embedding_is_the_normalised_graph_spectrum():
    rng = np.random.default_rng(1)
    X, _ = blobs(rng, n_per=80, spread=1.0)  # overlapping blobs: a connected anchor graph
    agh = AnchorGraphHashing(n_bits=10, n_anchors=40, n_nearest=3, random_state=0).fit(X)
    n = X.shape[0]
    Y = agh.embed(X)
    # on the training set: Yᵀ Y = n I (orthogonal, unit-energy bits) and 1ᵀ Y = 0 (balanced)
    np.testing.assert_allclose(Y.T @ Y / n, np.eye(10), atol=1e-8)
    np.testing.assert_allclose(Y.mean(axis=0), 0.0, atol=1e-8)
    # the columns are eigenvectors of the anchor graph A = Z Λ⁻¹ Zᵀ with the stored eigenvalues
    Z = agh.anchor_graph(X).toarray()
    A = Z @ np.diag(1 / Z.sum(axis=0)) @ Z.T
    np.testing.assert_allclose(A @ Y, Y * agh.eigenvalues_, atol=1e-8)
    assert np.all(np.diff(agh.eigenvalues_) <= 0) and np.all((agh.eigenvalues_ > 0) & (agh.eigenvalues_ < 1))
    # and they are the top ones after the trivial eigenvalue 1
    top = np.sort(np.linalg.eigvalsh(A))[::-1]
    np.testing.assert_allclose(top[0], 1.0, atol=1e-10)
    assert top[1] < 1 - 1e-3
    np.testing.assert_allclose(agh.eigenvalues_, top[1:11], atol=1e-8)


def test_agh_drops_every_unit_eigenvalue_of_a_disconnected_anchor_graph():
    # far-apart blobs: the graph has one component per blob, hence as many eigenvalues 1, all
    # dropped as in the authors' code; the kept eigenvectors are still orthonormal and balanced
    rng = np.random.default_rng(1)
    X, _ = blobs(rng, n_per=80, spread=20.0)
    agh = AnchorGraphHashing(n_bits=6, n_anchors=40, n_nearest=3, random_state=0).fit(X)
    assert np.all(agh.eigenvalues_ < 1 - 1e-3)
    Y = agh.embed(X)
    np.testing.assert_allclose(Y.T @ Y / len(X), np.eye(6), atol=1e-8)
    np.testing.assert_allclose(Y.mean(axis=0), 0.0, atol=1e-8)


def test_two_layer_agh_bits_and_thresholds():
    rng = np.random.default_rng(2)
    X, _ = blobs(rng)
    kw = dict(n_anchors=40, n_nearest=3, random_state=0)
    agh2 = TwoLayerAnchorGraphHashing(n_bits=10, **kw).fit(X)
    agh1 = AnchorGraphHashing(n_bits=5, **kw).fit(X)  # same anchors and eigenfunctions
    np.testing.assert_array_equal(agh2.projections_, agh1.projections_)
    bits2 = unpack(agh2.transform(X), 10).astype(bool)
    np.testing.assert_array_equal(bits2[:, :5], unpack(agh1.transform(X), 5).astype(bool))
    Y = agh2.embed(X)
    bp, bm = agh2.thresholds_
    np.testing.assert_array_equal(bits2[:, 5:], np.where(Y > 0, Y > bp, Y < bm))
    assert np.all(bp > 0) and np.all(bm < 0)

    # the thresholds minimise fᵀ(I - A)f for f = [y⁺ - b⁺; -y⁻ + b⁻] subject to 1ᵀf = 0 (KKT system)
    Z = agh2.anchor_graph(X).toarray()
    L = np.eye(len(X)) - Z @ np.diag(1 / Z.sum(axis=0)) @ Z.T
    for k in range(5):
        y = Y[:, k]
        pos = y > 0
        g = np.where(pos, y, -y)
        Ub = np.stack([-pos.astype(float), (~pos).astype(float)], axis=1)  # f = g + Ub @ (b⁺, b⁻)
        H, q, c = Ub.T @ L @ Ub, Ub.T @ L @ g, Ub.sum(axis=0)
        kkt = np.block([[2 * H, c[:, None]], [c[None, :], np.zeros((1, 1))]])
        sol = np.linalg.solve(kkt, np.r_[-2 * q, -g.sum()])
        np.testing.assert_allclose([bp[k], bm[k]], sol[:2], rtol=1e-7, atol=1e-10)

    # odd code length: ceil(r/2) first-layer bits, floor(r/2) second-layer bits
    odd = TwoLayerAnchorGraphHashing(n_bits=7, **kw).fit(X)
    assert odd.projections_.shape[1] == 4 and odd.thresholds_.shape == (2, 3)
    assert odd.margins(X).shape == (len(X), 7)


def test_agh_parameter_and_size_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    with pytest.raises(ValidationError, match="n_anchors=40"):
        AnchorGraphHashing(n_bits=40, n_anchors=40).fit(X)
    with pytest.raises(ValidationError, match="n_anchors=30"):
        TwoLayerAnchorGraphHashing(n_bits=60, n_anchors=30).fit(X)
    TwoLayerAnchorGraphHashing(n_bits=30, n_anchors=30, random_state=0).fit(X)  # ceil(30/2) = 15 < 30
    with pytest.raises(ValidationError, match="n_nearest"):
        AnchorGraphHashing(n_bits=8, n_anchors=20, n_nearest=1).fit(X)
    with pytest.raises(ValidationError, match="sigma"):
        AnchorGraphHashing(n_bits=8, n_anchors=20, sigma=-1.0).fit(X)
    with pytest.raises(ValidationError, match="n_nearest=5 exceeds the 3 anchors that 3 training vectors give"):
        AnchorGraphHashing(n_bits=2, n_anchors=20, n_nearest=5).fit(X[:3])


@pytest.mark.parametrize("cls", [AnchorGraphHashing, TwoLayerAnchorGraphHashing])
def test_agh_with_fewer_vectors_than_anchors_uses_every_vector_as_an_anchor(cls):
    X = np.random.default_rng(0).normal(size=(60, 4))
    with pytest.warns(UserWarning, match="n_anchors=100 exceeds the 60 training vectors; fitting with n_anchors_=60"):
        h = cls(n_bits=8, n_anchors=100, random_state=0).fit(X)
    assert h.n_anchors == 100 and h.n_anchors_ == h.anchors_.shape[0] <= 60  # the parameter is left as given
    assert h.n_bits_ == 8 and h.transform(X).shape == (60, 1)
    # K-means with as many clusters as points puts one anchor on every (distinct) vector
    np.testing.assert_allclose(np.sort(h.anchors_, axis=0), np.sort(X.astype(np.float32), axis=0), atol=1e-5)


@pytest.mark.parametrize("cls, n_bits", [(AnchorGraphHashing, 19), (TwoLayerAnchorGraphHashing, 38)])
def test_agh_with_too_few_eigenvectors_learns_a_shorter_code(cls, n_bits):
    # eight tight, far-apart clusters: the anchor graph has one component per cluster, hence 8 unit
    # eigenvalues (dropped), which leaves fewer non-trivial eigenvectors than the 19 the code needs
    rng = np.random.default_rng(3)
    X = np.concatenate([c + rng.normal(size=(10, 5)) for c in rng.normal(scale=100.0, size=(8, 5))])
    with pytest.warns(UserWarning, match=f"n_bits={n_bits} needs 19 non-trivial eigenvectors of the anchor graph"):
        h = cls(n_bits=n_bits, n_anchors=20, random_state=0).fit(X)
    # the non-trivial spectrum, recomputed from the fitted graph
    Z = h.anchor_graph(X).toarray()
    inv = 1.0 / np.sqrt(Z.sum(axis=0))
    ev = np.linalg.eigvalsh(inv[:, None] * (Z.T @ Z) * inv[None, :])
    available = int(np.sum((ev > 0) & (ev < 1 - 1e-3)))
    assert 0 < available < 19
    assert h.n_bits == n_bits and h.n_bits_ == h.code_bits == available * h._n_layers
    np.testing.assert_allclose(h.eigenvalues_, np.sort(ev[(ev > 0) & (ev < 1 - 1e-3)])[::-1], atol=1e-8)
    assert h.margins(X).shape == (len(X), h.n_bits_) and h.transform(X).shape == (len(X), 1)


def test_agh_explicit_sigma_and_fewer_dimensions_than_bits():
    rng = np.random.default_rng(4)
    X = rng.random((400, 2))  # d = 2, 24 bits
    agh = AnchorGraphHashing(n_bits=24, n_anchors=60, sigma=0.1, random_state=0).fit(X)
    assert agh.sigma_ == 0.1
    codes = unpack(agh.transform(X), 24)
    assert len({row.tobytes() for row in codes}) > 50  # the extra bits carry information


# -- Scalable Graph Hashing -----------------------------------------------------------------------------
def test_sgh_feature_transformation_and_learned_bits():
    rng = np.random.default_rng(5)
    X, labels = blobs(rng, d=10, k=4)
    sgh = ScalableGraphHashing(n_bits=16, n_bases=60, random_state=0).fit(X)
    Xc = X - sgh.mean_
    assert sgh.rho_ == pytest.approx(2 * np.max(np.sum(Xc.astype(np.float64) ** 2, axis=1)), rel=1e-6)
    D2 = ((Xc[:, None, :] - sgh.bases_[None]) ** 2).sum(-1)
    assert sgh.delta_ == pytest.approx(D2.mean(), rel=1e-4)
    K = sgh.kernel_features(X)
    np.testing.assert_allclose(K.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(K + sgh.kernel_mean_, np.exp(-D2 / (2 * sgh.delta_)), atol=1e-5)
    # the codes reproduce the Gaussian affinity: same-blob pairs are much closer in Hamming distance
    bits = unpack(sgh.transform(X), 16).astype(np.int8)
    ham = (bits[:, None, :] != bits[None]).sum(-1)
    same = labels[:, None] == labels[None]
    assert ham[same].mean() < 0.5 * ham[~same].mean()
    # normalize=True (the authors' preprocessing): unit-length centred vectors, hence ρ = 2
    sgn = ScalableGraphHashing(n_bits=16, n_bases=60, normalize=True, random_state=0).fit(X)
    assert sgn.rho_ == pytest.approx(2.0)
    np.testing.assert_allclose(np.linalg.norm(sgn.bases_, axis=1), 1.0, rtol=1e-5)
    Xn = Xc / np.linalg.norm(Xc, axis=1, keepdims=True)
    assert sgn.delta_ == pytest.approx(((Xn[:, None, :] - sgn.bases_[None]) ** 2).sum(-1).mean(), rel=1e-4)
    scaled = unpack(sgn.transform(3.0 * Xc + sgn.mean_), 16)  # only directions from the mean matter
    assert np.mean(scaled == unpack(sgn.transform(X), 16)) > 0.99
    # more bits than dimensions is fine (the hash functions live in kernel space)
    assert ScalableGraphHashing(n_bits=24, n_bases=60, random_state=0).fit(X[:, :3]).transform(X[:, :3]).shape == (
        len(X), 1)


def test_sgh_size_and_parameter_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    with pytest.warns(UserWarning, match="n_bases=60 exceeds the 50 training vectors; fitting with n_bases_=50"):
        h = ScalableGraphHashing(n_bits=8, n_bases=60, random_state=0).fit(X)
    assert h.n_bases == 60 and h.n_bases_ == 50 and h.bases_.shape == (50, 4) and h.projections_.shape == (50, 8)
    assert ScalableGraphHashing(n_bits=8, n_bases=10).fit(X).n_bases_ == 10
    with pytest.raises(ValidationError, match="rho"):
        ScalableGraphHashing(n_bits=8, n_bases=10, rho=0.0).fit(X)
    with pytest.raises(ValidationError, match="normalize"):
        ScalableGraphHashing(n_bits=8, n_bases=10, normalize="yes").fit(X)
    with pytest.raises(ValidationError, match="n_refine"):
        ScalableGraphHashing(n_bits=8, n_bases=10, n_refine=-1).fit(X)
    with pytest.raises(ValidationError, match="constant"):
        ScalableGraphHashing(n_bits=8, n_bases=10).fit(np.ones((50, 4)))


# -- the estimator contract, for every method -----------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_reproducible_with_random_state(method):
    rng = np.random.default_rng(6)
    X, _ = blobs(rng)
    a = make(method, 16, seed=3).fit(X).transform(X)
    b = make(method, 16, seed=3).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    gen = make(method, 16, seed=np.random.default_rng(3)).fit(X).transform(X)  # a Generator works too
    assert gen.shape == a.shape
    if method != "sh":  # SH is deterministic; the others draw anchors / bases
        c = make(method, 16, seed=4).fit(X).transform(X)
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("method", METHODS)
def test_training_codes_equal_out_of_sample_codes(method):
    rng = np.random.default_rng(7)
    X, _ = blobs(rng)
    h = make(method, 20)
    train_codes = h.fit_transform(X)  # for AGH and SGH: the codes computed during fit
    assert train_codes.dtype == np.uint64 and train_codes.shape == (len(X), 1)
    np.testing.assert_array_equal(train_codes, h.transform(X))
    assert not hasattr(h, "_fit_bits")  # nothing O(n) stays on the estimator
    np.testing.assert_array_equal(unpack(train_codes, 20).astype(bool), h.margins(X) > 0)


@pytest.mark.parametrize("method", METHODS)
def test_save_load_round_trip_gives_identical_codes(method, tmp_path):
    rng = np.random.default_rng(8)
    X, _ = blobs(rng)
    Xq = X[::7] + rng.normal(scale=0.5, size=X[::7].shape).astype(np.float32)
    h = make(method, 24).fit(X)
    path = tmp_path / f"{method}.hl"
    hashlearn.save(h, path)
    back = hashlearn.load(path)
    assert type(back) is type(h) and back.get_params() == h.get_params()
    np.testing.assert_array_equal(back.transform(Xq), h.transform(Xq))
    # an unfitted estimator round-trips too, and stays unfitted
    hashlearn.save(make(method, 24), tmp_path / "unfitted.hl")
    with pytest.raises(NotFittedError):
        hashlearn.load(tmp_path / "unfitted.hl").transform(Xq)


@pytest.mark.parametrize("method", METHODS)
def test_input_validation(method):
    rng = np.random.default_rng(9)
    X, _ = blobs(rng)
    h = make(method, 8)
    with pytest.raises(NotFittedError):
        h.transform(X)
    Xnan = X.copy()
    Xnan[3, 2] = np.nan
    with pytest.raises(ValidationError):
        make(method, 8).fit(Xnan)
    h.fit(X)
    with pytest.raises(ValidationError, match=f"X has {X.shape[1] + 1} features, but .* is expecting {X.shape[1]} features"):
        h.transform(np.ones((2, X.shape[1] + 1)))
    with pytest.raises(ValidationError):
        h.transform(Xnan)
    with pytest.raises(ValidationError):
        h.transform(np.ones((2, 3, 4)))
    with pytest.raises(ValidationError):
        make(method, 0).fit(X)
    with pytest.raises(ValidationError, match="Expected 2D array, got 1D array"):
        h.transform(X[0])  # a single vector is refused, as in scikit-learn: pass X[:1]
    assert h.transform(X[:1]).shape == (1, 1)


# the module whose _CHUNK_ELEMS sets each method's chunking (Spectral Hashing uses pca's streamed helpers)
MODULES = {"sh": "pca", "agh": "anchor_graph", "agh2": "anchor_graph", "sgh": "sgh"}


@pytest.mark.parametrize("method", METHODS)
def test_streamed_fit_in_small_chunks_gives_the_same_model(method, monkeypatch):
    import importlib

    rng = np.random.default_rng(12)
    X, _ = blobs(rng)
    ref = make(method, 16).fit(X)
    # 600 elements per chunk: 50-row chunks of these 12-d vectors, so every pass really is streamed
    monkeypatch.setattr(importlib.import_module(f"hashlearn.hashing.{MODULES[method]}"), "_CHUNK_ELEMS", 600)
    streamed = make(method, 16)
    codes = streamed.fit_transform(X)
    np.testing.assert_array_equal(codes, streamed.transform(X))
    for key, value in vars(ref).items():
        if key.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f":
            np.testing.assert_allclose(getattr(streamed, key), value, rtol=1e-4, atol=1e-5, err_msg=key)
    assert np.mean(unpack(codes, 16) == unpack(ref.transform(X), 16)) > 0.995


@pytest.mark.parametrize("method", METHODS)
def test_more_bits_than_dimensions(method):
    rng = np.random.default_rng(10)
    X = rng.random((300, 3)).astype(np.float32)
    h = make(method, 70, **({"n_anchors": 100} if method.startswith("agh") else {})).fit(X)
    codes = h.transform(X)
    assert codes.shape == (300, 2)
    bits = unpack(codes, 70)
    assert bits.std(axis=0).min() > 0  # no constant bit


def test_codes_preserve_neighbourhoods_better_than_chance():
    rng = np.random.default_rng(11)
    X, labels = blobs(rng, n_per=100, d=16, k=6, spread=3.0)
    for method in METHODS:
        bits = unpack(make(method, 32).fit(X).transform(X), 32).astype(np.int8)
        ham = (bits[:, None, :] != bits[None]).sum(-1).astype(float)
        np.fill_diagonal(ham, np.inf)
        nn = np.argmin(ham, axis=1)  # Hamming nearest neighbour (ties: lowest index)
        assert np.mean(labels[nn] == labels) > 0.8, method


def test_registered_names_and_docstrings_cite_the_papers():
    assert {"sh", "agh", "agh2", "sgh"} <= set(hashlearn.list_methods("vector"))
    for cls, cite in [(SpectralHashing, "Weiss"), (AnchorGraphHashing, "Liu"), (TwoLayerAnchorGraphHashing, "Liu"),
                      (ScalableGraphHashing, "Jiang")]:
        assert cite in cls.__doc__ and "References" in cls.__doc__
    assert math.isclose(SpectralHashing().get_params()["n_bits"], 64)
