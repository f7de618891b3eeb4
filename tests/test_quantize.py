"""Quantizers (PQ, OPQ, RQ, balanced k-means) against brute-force references and faiss.

References are plain numpy: nearest centroid per sub-space by explicit distances, reconstructions
by indexing the codebooks, exact squared distances to reconstructions. faiss loaded with our
codebooks must produce the same codes and the same neighbours (up to float rounding at ties).
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from sklearn.base import clone

import hashlearn
from hashlearn.errors import IncompatibleError, NotFittedError, ValidationError
from hashlearn.quantize import OPQ, PQ, QUANTIZERS, RQ, BalancedKMeans, QuantizedCodes


# -- data and references -------------------------------------------------------------------------------
def clustered(rng, n, d, n_centers=20, scale=0.3):
    centers = rng.normal(size=(n_centers, d)) * 3
    return (centers[rng.integers(0, n_centers, n)] + scale * rng.normal(size=(n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = clustered(rng, 3000, 16)
    Q = clustered(rng, 40, 16)
    return X, Q


@pytest.fixture(scope="module")
def pq(data):
    return PQ(4, nbits=6, random_state=0).fit(data[0])


def brute_pq_codes(X, books):
    M, _, dsub = books.shape
    out = np.empty((X.shape[0], M), np.uint8)
    for m in range(M):
        sub = X[:, m * dsub : (m + 1) * dsub].astype(np.float64)
        dist = ((sub[:, None, :] - books[m][None].astype(np.float64)) ** 2).sum(-1)
        out[:, m] = dist.argmin(1)
    return out


def exact_sq_dist(Q, R):
    Q = Q.astype(np.float64)
    R = R.astype(np.float64)
    return ((Q[:, None, :] - R[None]) ** 2).sum(-1)


def assert_knn_matches(D, I, D_ref_full, k, rtol=1e-4):
    """(D, I) equals a stable sort of the reference distances, accepting id swaps at float-rounding ties."""
    order = np.argsort(D_ref_full, axis=1, kind="stable")[:, :k]
    D_ref = np.take_along_axis(D_ref_full, order, 1)
    np.testing.assert_allclose(D, D_ref, rtol=rtol, atol=1e-3)
    real = np.take_along_axis(D_ref_full, I, 1)
    np.testing.assert_allclose(real, D_ref, rtol=rtol, atol=1e-3)
    assert all(len(set(row)) == k for row in I.tolist())


# -- PQ --------------------------------------------------------------------------------------------------
def test_pq_codes_are_the_nearest_centroids(data, pq):
    X, _ = data
    codes = pq.encode(X)
    assert isinstance(codes, QuantizedCodes) and codes.dtype == np.uint8 and codes.shape == (3000, 4)
    assert pq.codebooks_.shape == (4, 64, 4) and pq.code_size == 4
    ref = brute_pq_codes(X, pq.codebooks_)
    same = codes == ref
    if not same.all():  # only float-rounding ties may differ: both centroids at the same distance
        i, m = np.argwhere(~same)[0]
        sub = X[i, m * 4 : (m + 1) * 4]
        d = ((pq.codebooks_[m] - sub) ** 2).sum(1)
        assert abs(d[codes[i, m]] - d[ref[i, m]]) <= 1e-5 * max(1.0, d.min())
    assert same.mean() > 0.999


def test_pq_decode_and_tables_give_exact_distances_to_reconstructions(data, pq):
    X, Q = data
    codes = pq.encode(X[:200])
    R = pq.decode(codes)
    assert R.dtype == np.float32 and R.shape == (200, 16)
    np.testing.assert_array_equal(R, np.concatenate([pq.codebooks_[m][codes[:, m]] for m in range(4)], 1))
    T = pq.distance_tables(Q)
    assert T.shape == (40, 4, 64) and T.dtype == np.float32
    via_tables = T[:, np.arange(4)[None, :], codes].sum(-1)
    np.testing.assert_allclose(via_tables, exact_sq_dist(Q, R), rtol=1e-5, atol=1e-4)
    assert pq.code_bias(codes) is None


def test_pq_search_equals_brute_force_adc(data, pq):
    X, Q = data
    codes = pq.encode(X)
    D, I = pq.search(Q, codes, 10)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (40, 10)
    assert_knn_matches(D, I, exact_sq_dist(Q, pq.decode(codes)), 10)


def test_pq_sdc_search_uses_both_reconstructions(data, pq):
    X, Q = data
    codes = pq.encode(X)
    qcodes = pq.encode(Q)
    D, I = pq.search(qcodes, codes, 5, symmetric=True)
    assert_knn_matches(D, I, exact_sq_dist(pq.decode(qcodes), pq.decode(codes)), 5)
    np.testing.assert_allclose(pq.sdc_tables(qcodes), pq.distance_tables(pq.decode(qcodes)), rtol=1e-4, atol=1e-4)


def test_pq_range_search_equals_brute_force(data, pq):
    X, Q = data
    codes = pq.encode(X)
    full = exact_sq_dist(Q, pq.decode(codes))
    radius = float(np.quantile(full, 0.01))
    lims, D, I = pq.range_search(Q, codes, radius)
    assert lims.shape == (41,)
    for i in range(40):
        got = I[lims[i] : lims[i + 1]]
        assert np.all(np.diff(got) > 0)
        clear_in = np.flatnonzero(full[i] <= radius * (1 - 1e-4))
        clear_out = np.flatnonzero(full[i] > radius * (1 + 1e-4))
        assert set(clear_in) <= set(got.tolist()) and not set(clear_out) & set(got.tolist())


def test_pq_matches_faiss_with_the_same_codebooks(data, pq):
    X, Q = data
    pq8 = PQ(4, random_state=0).fit(X)
    index = pq8.to_faiss()
    index.add(X)
    faiss_codes = faiss.vector_to_array(index.codes).reshape(-1, 4)
    ours = pq8.encode(X)
    assert (faiss_codes == ours).mean() > 0.999
    Df, If = index.search(Q, 10)
    D, I = pq8.search(Q, ours, 10)
    np.testing.assert_allclose(D, Df, rtol=1e-4, atol=1e-3)
    assert (I == If).mean() > 0.99


def test_pq_learns_better_than_random_codebooks(data):
    X, _ = data
    pq = PQ(4, nbits=6, random_state=0).fit(X)
    untrained = PQ(4, nbits=6, n_iter=1, random_state=0).fit(X)
    assert pq.quantization_error(X) < untrained.quantization_error(X)
    assert pq.quantization_error(X) < 0.2 * float(((X - X.mean(0)) ** 2).sum(1).mean())


def test_nbits_below_8_and_4bit_codes(data):
    X, Q = data
    pq4 = PQ(8, nbits=4, random_state=1).fit(X)
    codes = pq4.encode(X)
    assert codes.max() < 16 and pq4.distance_tables(Q).shape == (40, 8, 16)
    bad = np.array(codes, copy=True).view(np.ndarray)
    bad[0, 0] = 16
    with pytest.raises(ValidationError, match="value 16"):
        pq4.decode(bad)


def test_same_seed_same_model_and_refit(data):
    X, _ = data
    a = PQ(4, nbits=5, random_state=3).fit(X)
    b = PQ(4, nbits=5, random_state=3).fit(X)
    np.testing.assert_array_equal(a.codebooks_, b.codebooks_)
    assert a.fingerprint_ == b.fingerprint_
    c = clone(a).set_params(random_state=4).fit(X)
    assert c.fingerprint_ != a.fingerprint_
    assert a.get_params()["M"] == 4 and "codebooks_" not in clone(a).__dict__


# -- fingerprints and codes -------------------------------------------------------------------------------
def test_codes_of_another_codebook_are_refused(data, pq):
    X, Q = data
    other = PQ(4, nbits=6, random_state=99).fit(X)
    foreign = other.encode(X[:10])
    for call in (lambda: pq.decode(foreign), lambda: pq.search(Q, foreign, 3), lambda: pq.code_bias(foreign),
                 lambda: pq.search(foreign, pq.encode(X), 3, symmetric=True)):
        with pytest.raises(IncompatibleError, match="fingerprint"):
            call()
    # plain arrays carry no fingerprint: accepted after the shape/range checks
    assert pq.decode(np.asarray(foreign)).shape == (10, 16)


def test_quantized_codes_keep_fingerprint_on_slices_only(pq, data):
    codes = pq.encode(data[0][:20])
    assert codes[3:7].fingerprint == pq.fingerprint_ and codes.copy().fingerprint == pq.fingerprint_
    assert type(codes + 1) is np.ndarray and type(codes == 3) is np.ndarray
    assert isinstance(codes.max(), np.integer)
    assert type(np.asarray(codes)) is np.ndarray


# -- bad input ----------------------------------------------------------------------------------------------
def test_bad_input_is_refused_with_numbers(data, pq):
    X, Q = data
    with pytest.raises(ValidationError, match="d = 16 is not a multiple of M = 3"):
        PQ(3).fit(X)
    with pytest.raises(ValidationError, match="got 100 vectors for 256 centroids"):
        PQ(4).fit(X[:100])
    Xn = X.copy()
    Xn[5, 2] = np.nan
    with pytest.raises(ValidationError, match="row 5"):
        PQ(4, nbits=4).fit(Xn)
    with pytest.raises(ValidationError, match="row 5"):
        pq.encode(Xn)
    with pytest.raises(ValidationError, match="15 features but the model was fitted on 16"):
        pq.encode(X[:, :15])
    with pytest.raises(ValidationError, match=r"shape \(n, 4\)"):
        pq.decode(np.zeros((3, 5), np.uint8))
    with pytest.raises(ValidationError, match="nbits"):
        PQ(4, nbits=9).fit(X)
    with pytest.raises(ValidationError, match="k must be a positive integer"):
        pq.search(Q, pq.encode(X), 0)
    with pytest.raises(NotFittedError):
        PQ(4).encode(X)
    with pytest.raises(NotFittedError):
        RQ(2).decode(np.zeros((1, 2), np.uint8))


def test_failed_refit_leaves_the_model_unfitted_not_stale(data):
    X, _ = data
    model = PQ(4, nbits=4, random_state=0).fit(X)
    model.set_params(M=3)
    with pytest.raises(ValidationError):
        model.fit(X)
    # the old codebooks must not be used with the new parameters
    with pytest.raises(NotFittedError):
        model.encode(X)


# -- persistence ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_quantizers_round_trip_through_save_load(tmp_path, data, name):
    X, Q = data
    params = {"pq": dict(M=4, nbits=5), "opq": dict(M=4, nbits=5, opq_iter=3), "rq": dict(levels=3, nbits=5),
              "balanced-kmeans": dict(n_clusters=16, balance_iter=2)}[name]
    model = QUANTIZERS[name](**params, random_state=0).fit(X)
    codes = model.encode(X[:100])
    path = hashlearn.save(model, tmp_path / f"{name}.hlq")
    loaded = hashlearn.load(path)
    assert type(loaded) is type(model) and loaded.fingerprint_ == model.fingerprint_
    np.testing.assert_array_equal(loaded.encode(X[:100]), codes)
    np.testing.assert_array_equal(loaded.decode(codes), model.decode(codes))  # codes from before saving still fit
    np.testing.assert_array_equal(loaded.search(Q, codes, 5)[1], model.search(Q, codes, 5)[1])


# -- OPQ ---------------------------------------------------------------------------------------------------
def test_opq_rotation_helps_on_correlated_data():
    rng = np.random.default_rng(3)
    # strong correlations across the PQ sub-space boundaries: PQ wastes bits, OPQ rotates them away
    latent = rng.normal(size=(3000, 4)) * np.array([6, 4, 3, 2])
    X = (latent @ rng.normal(size=(4, 16)) + 0.1 * rng.normal(size=(3000, 16))).astype(np.float32)
    pq = PQ(4, nbits=5, random_state=0).fit(X)
    opq = OPQ(4, nbits=5, opq_iter=10, random_state=0).fit(X)
    R = opq.rotation_
    np.testing.assert_allclose(R @ R.T, np.eye(16), atol=1e-4)
    assert opq.quantization_error(X) < 0.9 * pq.quantization_error(X)


def test_opq_distances_and_faiss_interop(data):
    X, Q = data
    opq = OPQ(4, opq_iter=4, random_state=0).fit(X)
    codes = opq.encode(X)
    D, I = opq.search(Q, codes, 10)
    assert_knn_matches(D, I, exact_sq_dist(Q, opq.decode(codes)), 10)
    index = opq.to_faiss()
    index.add(X)
    Df, If = index.search(Q, 10)
    np.testing.assert_allclose(D, Df, rtol=1e-4, atol=1e-3)
    assert (I == If).mean() > 0.99
    inner = faiss.downcast_index(index.index)
    assert (faiss.vector_to_array(inner.codes).reshape(-1, 4) == codes).mean() > 0.999


# -- RQ ----------------------------------------------------------------------------------------------------
def greedy_rq_codes(X, books):
    R = X.astype(np.float64).copy()
    out = np.empty((X.shape[0], books.shape[0]), np.uint8)
    for level, C in enumerate(books):
        j = ((R[:, None, :] - C[None].astype(np.float64)) ** 2).sum(-1).argmin(1)
        out[:, level] = j
        R -= C[j]
    return out


def test_rq_greedy_encoder_equals_reference(data):
    X, _ = data
    rq = RQ(3, nbits=4, beam_size=1, refine_iter=0, random_state=0).fit(X)
    codes = rq.encode(X[:500])
    ref = greedy_rq_codes(X[:500], rq.codebooks_)
    assert (codes == ref).all(1).mean() > 0.99
    np.testing.assert_allclose(rq.decode(codes), rq.codebooks_[np.arange(3)[None, :], codes].sum(1), rtol=1e-6, atol=1e-6)


def test_rq_beam_and_refinement_lower_the_error(data):
    X, _ = data
    greedy = RQ(4, nbits=4, beam_size=1, refine_iter=0, random_state=0).fit(X)
    beam = RQ(4, nbits=4, beam_size=4, refine_iter=0, random_state=0).fit(X)
    refined = RQ(4, nbits=4, beam_size=4, refine_iter=2, random_state=0).fit(X)
    assert beam.quantization_error(X) < greedy.quantization_error(X)
    assert refined.quantization_error(X) <= beam.quantization_error(X) * 1.001


def test_rq_tables_plus_bias_are_exact_and_search_matches_brute_force(data):
    X, Q = data
    rq = RQ(3, nbits=5, random_state=0).fit(X)
    codes = rq.encode(X)
    T = rq.distance_tables(Q)
    bias = rq.code_bias(codes)
    assert T.shape == (40, 3, 32) and bias.shape == (3000,)
    full = exact_sq_dist(Q, rq.decode(codes))
    via = T[:, np.arange(3)[None, :], codes].sum(-1) + bias[None, :]
    np.testing.assert_allclose(via, full, rtol=1e-4, atol=1e-2)
    D, I = rq.search(Q, codes, 10)
    assert_knn_matches(D, I, full, 10, rtol=1e-4)


def test_rq_matches_faiss_residual_quantizer(data):
    X, Q = data
    rq = RQ(3, random_state=0).fit(X)
    index = rq.to_faiss()
    index.add(X)
    codes = rq.encode(X)
    assert (index.sa_encode(X)[:, :3] == codes).mean() > 0.999
    Df, If = index.search(Q, 10)
    D, I = rq.search(Q, codes, 10)
    np.testing.assert_allclose(D, Df, rtol=1e-3, atol=1e-2)
    assert (I == If).mean() > 0.98


# -- balanced k-means --------------------------------------------------------------------------------------
def skewed(rng, scale=1):
    X = np.concatenate([rng.normal(0, 1, (2400 * scale, 8)), rng.normal(6, 1, (400 * scale, 8)),
                        rng.normal(-6, 0.5, (200 * scale, 8))])
    return X.astype(np.float32)


def test_balanced_kmeans_equalises_skewed_clusters():
    rng = np.random.default_rng(5)
    X = skewed(rng)
    km = BalancedKMeans(10, max_points_per_centroid=300, random_state=0).fit(X)  # trains on all 3000 points
    sizes = np.bincount(km.labels_, minlength=10)
    assert sizes.max() <= 1.05 * 300 and sizes.min() >= 0.8 * 300
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    scores = km.assignment_scores(X[:50])
    np.testing.assert_array_equal(scores.argmin(1), km.labels_[:50])
    # new points drawn like the training set get nearly balanced clusters too
    held_out = np.bincount(km.predict(skewed(np.random.default_rng(6), scale=2)), minlength=10)
    assert held_out.max() <= 1.2 * 600
    # plain k-means on the same data is far from balanced
    plain = BalancedKMeans(10, balance_iter=0, max_points_per_centroid=300, random_state=0).fit(X)
    assert np.bincount(plain.labels_, minlength=10).max() > 1.3 * 300
    codes = km.encode(X[:7])
    assert codes.shape == (7, 1) and (codes[:, 0] == km.labels_[:7]).all()
    np.testing.assert_array_equal(km.decode(codes), km.cluster_centers_[km.labels_[:7]])


def test_capacity_repair_meets_the_cap_from_any_potentials():
    from hashlearn.quantize.balanced import _repair_capacity

    rng = np.random.default_rng(0)
    C = rng.random((1000, 8)).astype(np.float32)
    C[:, 0] -= 0.5  # everyone prefers cluster 0
    g = _repair_capacity(C, np.zeros(8), 1.05 * 125, step=1e-6)
    sizes = np.bincount(np.argmin(C - g[None, :].astype(np.float32), axis=1), minlength=8)
    assert sizes.max() <= 131 and sizes.sum() == 1000


def test_balanced_kmeans_refuses_one_byte_codes_for_many_clusters(data):
    X, _ = data
    km = BalancedKMeans(300, balance_iter=1, n_iter=2, random_state=0).fit(X)
    assert km.predict(X[:3]).dtype == np.int64
    with pytest.raises(ValidationError, match="n_clusters <= 256, got 300"):
        km.encode(X[:3])
    with pytest.raises(ValidationError, match="sinkhorn_reg"):
        BalancedKMeans(4, sinkhorn_reg=0).fit(X)
    with pytest.raises(ValidationError, match="got 10 vectors for 16 centroids"):
        BalancedKMeans(16).fit(X[:10])


def test_sinkhorn_kernel_matches_pot_potentials():
    ot = pytest.importorskip("ot", reason="POT is only the reference here")
    from hashlearn.quantize._sinkhorn import sinkhorn_column_potentials

    rng = np.random.default_rng(0)
    C = rng.random((300, 7)).astype(np.float32)
    g, _, err = sinkhorn_column_potentials(C, 0.05, max_iter=2000, tol=1e-7)
    assert err < 1e-6
    P_ref = ot.sinkhorn(np.full(300, 1 / 300), np.full(7, 1 / 7), C.astype(np.float64), 0.05, method="sinkhorn_log",
                        numItermax=5000, stopThr=1e-10)
    logits = (g[None, :] - C) / 0.05
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True) * 300
    np.testing.assert_allclose(P, P_ref, rtol=1e-3, atol=1e-7)


def test_a_tampered_codebook_file_is_refused(tmp_path, data):
    X, _ = data
    model = PQ(4, nbits=4, random_state=0).fit(X)
    model.codebooks_ = model.codebooks_.copy()
    model.codebooks_[0, 0, 0] += 1.0  # codebook changed after fitting: the fingerprint no longer matches
    path = hashlearn.save(model, tmp_path / "pq.hlq")
    with pytest.raises(hashlearn.FileFormatError, match="fingerprint"):
        hashlearn.load(path)


def test_registry_specs_set_the_quantizer_size():
    """``pq:16`` sets M (bytes per code), ``rq:4`` the levels; errors name the size parameter."""
    from hashlearn.registry import make_from_spec

    assert make_from_spec("pq:16").M == 16
    assert make_from_spec("opq:8", random_state=3).get_params()["M"] == 8
    assert make_from_spec("rq:4").levels == 4
    with pytest.raises(ValidationError, match="M must be an integer from 1 to 4096, got 0"):
        make_from_spec("pq:0")
    with pytest.raises(ValidationError, match="the levels after ':'"):
        make_from_spec("rq:four")
    with pytest.raises(ValidationError, match="takes no size after ':'"):
        make_from_spec("balanced-kmeans:4")
