"""Cross-modal hashing (hashlearn.crossmodal): validation, RREH invariants, retrieval, persistence, lifelong."""

from __future__ import annotations

import numpy as np
import pytest

import hashlearn
from hashlearn.codes import hamming_distances, unpack
from hashlearn.crossmodal import RREH, check_pairs, check_views, reconstruction_weights, semi_paired_split
from hashlearn.crossmodal.data import gradient_histograms, make_planted_views
from hashlearn.errors import NotFittedError, UnknownMethodError, ValidationError
from hashlearn.metrics import hamming_ranking, mean_average_precision, relevance_from_labels

PAIRED_METHODS = ["cca-itq", "cmfh", "rreh"]
FAST = {"kernel": "rbf", "n_anchors": 80}


def cross_map(model, views, labels, n_bits, q_view=0):
    db_view = 1 - q_view
    q = model.transform(views[q_view], view=q_view)
    db = model.transform(views[db_view], view=db_view)
    rank = hamming_ranking(hamming_distances(q, db, n_bits=n_bits))
    return mean_average_precision(relevance_from_labels(labels, labels, rank))


@pytest.fixture(scope="module")
def planted():
    return make_planted_views(400, n_clusters=5, latent_dim=6, dims=(30, 20), noise=0.2, random_state=1)


# -- registry ------------------------------------------------------------------------------------------
def test_registry_lists_crossmodal_methods():
    names = hashlearn.list_methods("crossmodal")
    for name in ["cca-itq", "cmfh", "rreh"]:
        assert name in names
    model = hashlearn.make_hasher("rreh", n_bits=64)
    assert isinstance(model, RREH) and model.n_bits == 64
    with pytest.raises(UnknownMethodError):
        hashlearn.make_hasher("no-such-xm")


# -- validation of views and pairs -------------------------------------------------------------------------
def test_check_pairs_accepts_indices_mask_and_none():
    np.testing.assert_array_equal(check_pairs(None, [3, 3]), [[0, 0], [1, 1], [2, 2]])
    np.testing.assert_array_equal(check_pairs(np.array([True, False, True]), [3, 3]), [[0, 0], [2, 2]])
    np.testing.assert_array_equal(check_pairs([[2, 0], [0, 4]], [3, 5]), [[2, 0], [0, 4]])


@pytest.mark.parametrize(
    "pairs, rows, message",
    [
        (None, [3, 4], "pairs=None means every row is paired"),
        ([[0, 0], [0, 1]], [3, 3], "row 0 of view 0 appears in 2 pairs"),
        ([[0, 1], [2, 1]], [3, 3], "row 1 of view 1 appears in 2 pairs"),
        ([[0, 3]], [3, 3], "refers to row 3 of view 1, which has 3 rows"),
        ([[-1, 0]], [3, 3], "refers to row -1 of view 0"),
        ([0, 1, 2], [3, 3], "shape (n_pairs, 2)"),
        (np.zeros((0, 2), dtype=int), [3, 3], "pairs is empty"),
        ([[0.5, 1]], [3, 3], "integer row indices"),
        (np.array([True, False]), [3, 3], "boolean pairing mask must have shape (3,)"),
    ],
)
def test_check_pairs_errors_name_the_problem(pairs, rows, message):
    with pytest.raises(ValidationError) as exc:
        check_pairs(pairs, rows)
    assert message in str(exc.value)


def test_check_views_errors():
    good = np.ones((4, 3))
    with pytest.raises(ValidationError, match="list of arrays"):
        check_views(good)
    with pytest.raises(ValidationError, match="expected 2 views, got 1"):
        check_views([good])
    bad = good.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValidationError, match=r"views\[1\]"):
        check_views([good, bad])
    with pytest.raises(ValidationError):
        check_views([good, np.ones((0, 3))])


def test_fit_and_transform_errors(planted):
    views, _ = planted
    model = hashlearn.make_hasher("cmfh", n_bits=8, random_state=0, kernel="linear")
    with pytest.raises(NotFittedError):
        model.transform(views[0], view=0)
    with pytest.raises(ValidationError, match="duplicate"):
        model.fit(views, [[0, 0], [0, 1]])
    model.fit(views)
    with pytest.raises(ValidationError, match="20 features but the model was fitted on 30"):
        model.transform(views[1], view=0)
    with pytest.raises(ValidationError, match="view must be an integer in"):
        model.transform(views[0], view=2)
    with pytest.raises(ValidationError, match="n_bits"):
        hashlearn.make_hasher("rreh", n_bits=0).fit(views)


def test_semi_paired_split():
    rows0, rows1, pairs = semi_paired_split(100, 0.3, random_state=0)
    assert pairs.shape == (30, 2)
    # paired items are the same underlying item in both views
    np.testing.assert_array_equal(rows0[pairs[:, 0]], rows1[pairs[:, 1]])
    # the 70 others are split between the views, none kept twice
    only0, only1 = set(rows0[30:]), set(rows1[30:])
    assert len(only0) + len(only1) == 70 and not only0 & only1
    assert not (only0 | only1) & set(rows0[:30])
    check_pairs(pairs, [len(rows0), len(rows1)])
    with pytest.raises(ValidationError):
        semi_paired_split(10, 0.0)


# -- reconstruction relations ---------------------------------------------------------------------------
def test_reconstruction_weights_sum_to_one_and_anchors_reproduce_themselves():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 5))
    X = rng.normal(size=(50, 5))
    W = reconstruction_weights(X, A, k=6)
    assert W.shape == (50, 30)
    np.testing.assert_allclose(np.asarray(W.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    assert np.all(np.diff(W.indptr) == 6)
    WA = reconstruction_weights(A, A, k=6).toarray()
    np.testing.assert_allclose(WA, np.eye(30), atol=1e-12)
    np.testing.assert_allclose(WA @ A, A, atol=1e-12)


def test_reconstruction_weights_match_brute_force_constrained_least_squares():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(20, 4))
    X = rng.normal(size=(8, 4))
    k, reg = 5, 1e-3
    W = reconstruction_weights(X, A, k=k, reg=reg).toarray()
    for i, x in enumerate(X):
        nn = np.argsort(((A - x) ** 2).sum(1))[:k]
        N = A[nn]
        C = (N - x) @ (N - x).T
        C += reg * np.trace(C) / k * np.eye(k)
        # KKT system of min w'Cw s.t. 1'w = 1
        K = np.block([[2 * C, np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
        sol = np.linalg.solve(K, np.r_[np.zeros(k), 1.0])
        expected = np.zeros(20)
        expected[nn] = sol[:k]
        np.testing.assert_allclose(W[i], expected, atol=1e-8)
    # a point inside the affine hull of its neighbours is (nearly) reconstructed exactly
    x = 0.3 * A[0] + 0.7 * A[1]
    w = reconstruction_weights(x[None], A[:2], k=2, reg=1e-9).toarray()[0]
    np.testing.assert_allclose(w, [0.3, 0.7], atol=1e-5)


# -- RREH invariants ------------------------------------------------------------------------------------------
def test_rreh_objective_non_increasing_and_codes_balanced(planted):
    views, _ = planted
    rows0, rows1, pairs = semi_paired_split(400, 0.3, random_state=0)
    model = RREH(n_bits=16, n_iter=15, tol=0.0, random_state=0, **FAST)
    model.fit([views[0][rows0], views[1][rows1]], pairs)
    obj = model.objective_
    assert len(obj) == 16
    assert np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1])), np.diff(obj)
    assert obj[-1] < obj[0]
    # 5 equal clusters cannot be split evenly by every bit: no bit may be (nearly) constant
    assert np.all(np.abs(model.train_codes_balance_ - 0.5) < 0.3)
    bits = unpack(model.transform(views[1], view=1), 16)
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 0.3)


def test_rreh_codes_balanced_on_unclustered_data():
    rng = np.random.default_rng(5)
    Y = rng.normal(size=(600, 12))
    views = [Y @ rng.normal(size=(12, 30)), Y @ rng.normal(size=(12, 20))]
    rows0, rows1, pairs = semi_paired_split(600, 0.3, random_state=0)
    model = RREH(n_bits=12, random_state=0).fit([views[0][rows0], views[1][rows1]], pairs)
    assert np.all(np.abs(model.train_codes_balance_ - 0.5) < 0.1), model.train_codes_balance_
    for v in (0, 1):
        bits = unpack(model.transform(views[v], view=v), 12)
        assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 0.12)


def test_cmfh_objective_non_increasing(planted):
    views, _ = planted
    model = hashlearn.make_hasher("cmfh", n_bits=12, random_state=0, kernel="linear", n_iter=20).fit(views)
    obj = model.objective_
    assert np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1]))


@pytest.mark.parametrize("name", PAIRED_METHODS)
def test_planted_views_are_retrieved_across_views(planted, name):
    views, labels = planted
    params = dict(FAST)
    model = hashlearn.make_hasher(name, n_bits=16, random_state=0, **params).fit(views)
    # CMFH's latent factors beyond the planted rank fit noise (0.83 measured); the others are near-perfect
    threshold = 0.8 if name == "cmfh" else 0.9
    for q_view in (0, 1):
        assert cross_map(model, views, labels, 16, q_view) > threshold


def test_rreh_uses_unpaired_data(planted):
    """With 10% pairs, RREH (which also learns from the unpaired rows) retrieves near-perfectly."""
    views, labels = planted
    rows0, rows1, pairs = semi_paired_split(400, 0.1, random_state=0)
    model = RREH(n_bits=16, random_state=0, **FAST).fit([views[0][rows0], views[1][rows1]], pairs)
    assert cross_map(model, views, labels, 16, 0) > 0.9
    assert cross_map(model, views, labels, 16, 1) > 0.9


def test_fit_is_deterministic_given_seed(planted):
    views, _ = planted
    a = RREH(n_bits=8, random_state=3, **FAST).fit(views).transform(views[0], view=0)
    b = RREH(n_bits=8, random_state=3, **FAST).fit(views).transform(views[0], view=0)
    np.testing.assert_array_equal(a, b)


# -- persistence -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PAIRED_METHODS)
def test_save_load_round_trip(planted, name, tmp_path):
    views, _ = planted
    model = hashlearn.make_hasher(name, n_bits=16, random_state=0, **FAST).fit(views[:2], None)
    path = hashlearn.save(model, tmp_path / f"{name}.hl")
    loaded = hashlearn.load(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    for v in (0, 1):
        np.testing.assert_array_equal(loaded.transform(views[v], view=v), model.transform(views[v], view=v))


# -- lifelong updates -------------------------------------------------------------------------------------------
def test_partial_fit_keeps_old_codes_valid_and_learns_new_classes():
    views, labels = make_planted_views(600, n_clusters=6, latent_dim=6, dims=(30, 20), noise=0.2, random_state=4)
    old = labels < 4
    new = ~old
    V_old = [v[old] for v in views]
    model = RREH(n_bits=16, random_state=0, **FAST).fit(V_old)
    db_old = model.transform(V_old[1], view=1)  # stored in an index; never re-encoded
    db_old_copy = db_old.copy()
    model.partial_fit([v[new] for v in views])
    np.testing.assert_array_equal(db_old, db_old_copy)
    assert model.stats_["n_batches"][0] == 2
    # the updated functions still agree with the stored codes of the old items
    agree = (unpack(model.transform(V_old[1], view=1), 16) == unpack(db_old, 16)).mean()
    assert agree > 0.9
    # old-class image queries still find their texts among the stored old codes
    q = model.transform(V_old[0], view=0)
    rank = hamming_ranking(hamming_distances(q, db_old, n_bits=16))
    assert mean_average_precision(relevance_from_labels(labels[old], labels[old], rank)) > 0.85
    # new-class items are retrievable across views
    q_new = model.transform(views[0][new], view=0)
    db_new = model.transform(views[1][new], view=1)
    rank = hamming_ranking(hamming_distances(q_new, db_new, n_bits=16))
    assert mean_average_precision(relevance_from_labels(labels[new], labels[new], rank)) > 0.85


def test_partial_fit_on_unfitted_model_is_fit(planted):
    views, _ = planted
    a = RREH(n_bits=8, random_state=0, **FAST).partial_fit(views).transform(views[0], view=0)
    b = RREH(n_bits=8, random_state=0, **FAST).fit(views).transform(views[0], view=0)
    np.testing.assert_array_equal(a, b)


def test_partial_fit_with_unpaired_batch_uses_stored_anchors(planted):
    views, _ = planted
    model = RREH(n_bits=8, random_state=0, **FAST).fit([v[:300] for v in views])
    anchors = [a.copy() for a in model.anchors_]
    model.partial_fit([views[0][300:], views[1][300:350]], pairs=np.zeros((0, 2), dtype=np.int64))
    for a, b in zip(anchors, model.anchors_):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValidationError, match="20 features but the model was fitted on 30"):
        model.partial_fit([views[1], views[1]])


# -- data helpers ---------------------------------------------------------------------------------------------
def test_gradient_histograms_shape_and_norm():
    rng = np.random.default_rng(0)
    imgs = rng.random((5, 784)).astype(np.float32)
    h = gradient_histograms(imgs)
    assert h.shape == (5, 144) and h.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(h, axis=1), 1.0, atol=1e-4)
    # a vertical edge has only horizontal gradients: all mass in orientation bin 0
    img = np.zeros((28, 28), np.float32)
    img[:, 14:] = 1.0
    h = gradient_histograms(img.ravel()[None]).reshape(4, 4, 9)
    assert h[..., 0].sum() > 0 and np.allclose(h[..., 1:], 0)


def test_partial_fit_memory_is_validated_and_scales_statistics(planted):
    views, _ = planted
    with pytest.raises(ValidationError, match="memory must be in"):
        RREH(n_bits=8, memory=0.0).fit(views)
    a = RREH(n_bits=8, memory=0.5, random_state=0, **FAST).fit([v[:200] for v in views])
    before = a.stats_["HZZ0"].copy()
    a.partial_fit([v[200:] for v in views])
    Z = [a.feature_maps_[0].transform(views[0][200:])]
    # the old Gram matrix is halved, the batch's own Gram matrix is added
    np.testing.assert_allclose(a.stats_["HZZ0"], 0.5 * before + Z[0].T @ Z[0], rtol=1e-10, atol=1e-10)


def test_partial_fit_batch_latent_is_own_factorisation_rotated_onto_old_axes():
    """The new batch's initial latent = its own SVD latent times the orthogonal Procrustes rotation onto
    the old couplings' prediction: same singular values as the SVD latent, and no other rotation of it is
    closer to the prediction."""
    views, labels = make_planted_views(500, n_clusters=5, latent_dim=5, dims=(24, 16), noise=0.2, random_state=7)
    old = labels < 3
    model = RREH(n_bits=8, kernel="linear", random_state=0).fit([v[old] for v in views])
    Zp = [model.feature_maps_[v].transform(views[v][~old]) for v in range(2)]
    rng = np.random.default_rng(0)
    V0 = model._batch_latent(Zp, 8, np.random.default_rng(1))
    Vs = model._init_latent(Zp, 8, np.random.default_rng(1))
    warm = model._warm_latent(Zp)
    np.testing.assert_allclose(np.linalg.svd(V0, compute_uv=False), np.linalg.svd(Vs, compute_uv=False), rtol=1e-8)
    best = np.linalg.norm(V0 - warm)
    assert best <= np.linalg.norm(Vs - warm) + 1e-9
    for _ in range(20):
        Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
        assert best <= np.linalg.norm(Vs @ Q - warm) + 1e-9


def test_rreh_pls_start_follows_shared_structure_not_view_specific_variance():
    """init="pls" starts from the cross-covariance directions: a loud direction that only one view has
    (here 4 noise dimensions of view 0 with 36× the variance) does not enter the start, while the SVD of
    the concatenated views follows it."""
    rng = np.random.default_rng(0)
    n = 400
    Y = rng.standard_normal((n, 3))  # what the two views share
    Z0 = np.hstack([Y @ rng.standard_normal((3, 6)), 6 * rng.standard_normal((n, 4))])
    Z1 = Y @ rng.standard_normal((3, 8)) + 0.1 * rng.standard_normal((n, 8))
    Z = []
    for z in (Z0, Z1):
        z = z - z.mean(axis=0)
        Z.append(z / np.sqrt((z ** 2).sum(axis=1).mean()))

    def explained(V):
        W, *_ = np.linalg.lstsq(V, Y, rcond=None)
        return 1 - ((Y - V @ W) ** 2).sum() / (Y ** 2).sum()

    pls = explained(RREH(n_bits=3, init="pls")._init_latent(Z, 3, np.random.default_rng(1)))
    svd = explained(RREH(n_bits=3, init="svd")._init_latent(Z, 3, np.random.default_rng(1)))
    assert pls > 0.85
    assert pls > svd + 0.2
    with pytest.raises(ValidationError, match="init must be 'pls', 'svd' or 'cca'"):
        RREH(n_bits=3, init="pca").fit([Z0, Z1])
