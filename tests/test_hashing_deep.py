"""Deep supervised hashers (dpsh, hashnet, csq, greedyhash, dsh, dtsh): contract, determinism, options, bad input.

Tiny data (scikit-learn's digits, a few epochs) so the whole file runs in seconds on one core.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the deep hashers need torch (extra [deep])")

import hashlearn  # noqa: E402
from hashlearn import codes as codes_mod  # noqa: E402
from hashlearn.errors import ValidationError  # noqa: E402
from hashlearn.hashing import make_hasher  # noqa: E402
from hashlearn.hashing.deep._nets import HouseholderRotation, pair_scores  # noqa: E402
from hashlearn.metrics import hamming_ranking, mean_average_precision, relevance_from_labels  # noqa: E402

DEEP = ("dpsh", "hashnet", "csq", "greedyhash", "dsh", "dtsh")
FAST = {"epochs": 4, "batch_size": 64, "hidden": 64, "n_threads": 1}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    perm = np.random.default_rng(0).permutation(X.shape[0])
    return X[perm[:600]], y[perm[:600]], X[perm[600:900]], y[perm[600:900]]


def deep(name, random_state=0, **kw):
    return make_hasher(name, n_bits=16, random_state=random_state, **{**FAST, **kw})


def test_registered_and_supervised():
    from hashlearn.hashing import is_supervised

    assert set(DEEP) <= set(hashlearn.list_methods("vector"))
    for name in DEEP:
        assert is_supervised(hashlearn.hashing.get_hasher_class(name))


@pytest.mark.parametrize("name", DEEP)
def test_codes_embed_and_persistence(name, digits, tmp_path):
    X, y, Xq, _ = digits
    h = deep(name).fit(X, y)
    c = h.transform(Xq)
    assert c.dtype == np.uint64 and c.shape == (300, 1) and int(c.max()) < 2**16
    e = h.embed(Xq)
    assert e.dtype == np.float32 and e.shape == (300, 16)
    np.testing.assert_array_equal(codes_mod.unpack(c, 16).astype(bool), e > 0)
    assert 1 <= len(h.loss_history_) <= 4 and 1 <= h.best_epoch_ <= len(h.loss_history_)
    loaded = hashlearn.load(hashlearn.save(h, tmp_path / f"{name}.hl"))
    np.testing.assert_array_equal(loaded.transform(Xq), c)
    np.testing.assert_allclose(loaded.embed(Xq), e, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["csq", "dpsh"])
def test_same_seed_same_model_and_no_global_state_touched(name, digits):
    X, y, Xq, _ = digits
    threads = torch.get_num_threads()
    rng_state = torch.random.get_rng_state().clone()
    a = deep(name, random_state=5).fit(X, y).transform(Xq)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # no global seeding
    b = deep(name, random_state=5).fit(X, y).transform(Xq)
    np.testing.assert_array_equal(a, b)
    c = deep(name, random_state=6).fit(X, y).transform(Xq)
    assert not np.array_equal(a, c)


def test_pointwise_deep_hashers_learn_the_classes(digits):
    X, y, Xq, yq = digits
    itq = make_hasher("itq", n_bits=16, random_state=0).fit(X)

    def m_ap(h):
        D = codes_mod.hamming_distances(h.transform(Xq), h.transform(X), n_bits=16)
        return mean_average_precision(relevance_from_labels(yq, y, hamming_ranking(D)))

    base = m_ap(itq)
    for name in ("csq", "greedyhash"):
        got = m_ap(deep(name, epochs=15, hidden=128).fit(X, y))
        assert got > base + 0.15, (name, got, base)


@pytest.mark.parametrize("name,distance,epochs,min_map", [("dpsh", "inner", 40, 0.3), ("dpsh", "euclidean", 20, 0.3),
                                                         ("dsh", "euclidean", 20, 0.5),
                                                         ("hashnet", "snr", 20, 0.5), ("dpsh", "snr", 20, 0.5),
                                                         ("dtsh", "inner", 20, 0.5), ("dtsh", "snr", 20, 0.5)])
def test_pairwise_hashers_do_not_collapse_on_the_cnn(name, distance, epochs, min_map, digits):
    # regression: with a bank of stale detached codes, DPSH / DSH and HashNet's Euclidean / SNR scores
    # collapsed to one code with the CNN trained from scratch (here: 1 distinct code, mAP 0.111 = chance;
    # on MNIST mAP 0.10-0.16)
    X, y, Xq, yq = digits
    h = deep(name, distance=distance, input_shape=(1, 8, 8), epochs=epochs, lr=3e-3, validation_fraction=0.0).fit(X, y)
    cb = h.transform(X)
    D = codes_mod.hamming_distances(h.transform(Xq), cb, n_bits=16)
    got = mean_average_precision(relevance_from_labels(yq, y, hamming_ranking(D)))
    assert len(np.unique(cb)) >= 10, len(np.unique(cb))
    assert got > min_map, got


@pytest.mark.parametrize("distance", ["inner", "snr"])
def test_dtsh_loss_equals_the_triplet_loop(distance):
    # the vectorised in-batch loss against an explicit loop over (anchor, similar, dissimilar) triplets
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(7, 6, generator=gen)
    y = np.array([0, 0, 1, 1, 1, 2, 0])
    Yt = torch.from_numpy(np.eye(3)[y].astype(np.float32))
    est = make_hasher("dtsh", n_bits=6, distance=distance, margin=1.5, quant_weight=0.25)
    got = est._loss(torch, h, np.arange(7), Yt, {"step": 0}, None)
    theta = pair_scores(h, h, distance)
    terms = [torch.nn.functional.softplus(-(theta[i, j] - theta[i, k] - 1.5))
             for i in range(7) for j in range(7) for k in range(7) if j != i and y[j] == y[i] and y[k] != y[i]]
    want = torch.stack(terms).mean() + 0.25 * ((h - torch.sign(h)) ** 2).mean()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_cnn_on_flattened_images_and_shape_errors(digits):
    X, y, Xq, _ = digits
    h = deep("csq", input_shape=(1, 8, 8)).fit(X, y)
    assert any(k.startswith("backbone.c1") for k in h.weights_)  # the CNN was used
    assert h.transform(Xq).shape == (300, 1)
    with pytest.raises(ValidationError, match=r"X has 64 features but input_shape \(1, 28, 28\) needs 1×28×28 = 784"):
        deep("csq", input_shape=(1, 28, 28)).fit(X, y)
    with pytest.raises(ValidationError, match="input_shape must be \\(channels, height, width\\)"):
        deep("csq", input_shape=(8, 8)).fit(X, y)


def test_bad_labels_and_parameters(digits):
    X, y, _, _ = digits
    with pytest.raises(ValidationError, match="y has 599 rows of labels but X has 600 rows"):
        deep("dpsh").fit(X, y[:-1])
    with pytest.raises(ValidationError, match="single class"):
        deep("dsh").fit(X, np.zeros(600, dtype=int))
    Y = np.eye(10)[y]
    Y[[3, 9]] = 0
    with pytest.raises(ValidationError, match=r"2 of 600 rows of the label matrix y have no label \(rows 3, 9\)"):
        deep("hashnet").fit(X, Y)
    with pytest.raises(ValidationError, match="distance must be"):
        deep("dpsh", distance="manhattan").fit(X, y)
    with pytest.raises(ValidationError, match="rotation must be"):
        deep("csq", rotation="givens").fit(X, y)


def test_multilabel_training(digits):
    X, y, Xq, _ = digits
    Y = np.stack([y % 2 == 0, y >= 5], axis=1).astype(int)
    Y[Y.sum(axis=1) == 0, 0] = 1
    for name in ("dpsh", "csq", "greedyhash"):
        h = deep(name).fit(X, Y)
        assert h.multilabel_ and h.transform(Xq).shape == (300, 1)


def test_options_rotation_csce_and_early_stopping(digits):
    X, y, _, _ = digits
    h = deep("dpsh", rotation="householder", csce=True, distance="snr").fit(X, y)
    assert "rotation.vectors" in h.weights_ and "threshold.weight" in h.weights_ and "context.weight" in h.weights_
    lin = deep("dsh", rotation="linear").fit(X, y)
    assert lin.weights_["rotation.weight"].shape == (16, 16)
    full = deep("csq", validation_fraction=0.0, epochs=3).fit(X, y)
    assert full.val_map_history_.shape == (0,) and len(full.loss_history_) == 3 and full.best_epoch_ == 3
    stop = deep("csq", epochs=40, patience=1, lr=1e-6).fit(X, y)  # no progress: stops after one stale epoch
    assert len(stop.loss_history_) < 40 and stop.best_epoch_ < len(stop.loss_history_)


def test_householder_layer_is_orthogonal():
    gen = torch.Generator().manual_seed(0)
    layer = HouseholderRotation(12)
    torch.nn.init.normal_(layer.vectors, generator=gen)
    Q = layer.matrix().detach()
    torch.testing.assert_close(Q @ Q.T, torch.eye(12), atol=1e-5, rtol=0)
    assert abs(abs(float(torch.linalg.det(Q))) - 1.0) < 1e-4


@pytest.mark.parametrize("distance", ["inner", "euclidean", "cosine", "snr"])
def test_pair_scores_agree_on_balanced_binary_codes(distance):
    rng = np.random.default_rng(0)
    r = 16
    B = np.array([rng.permutation(np.repeat([-1.0, 1.0], r // 2)) for _ in range(20)], dtype=np.float32)
    Bt = torch.from_numpy(B)
    expected = 0.5 * B @ B.T  # ½ <b_i, b_j> = ½ (r - 2 · Hamming)
    np.testing.assert_allclose(pair_scores(Bt, Bt, distance).numpy(), expected, atol=1e-4)


# -- DMVEH (multi-view) ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_views():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, 400)
    means = [rng.normal(size=(5, d)) * s for d, s in ((12, 2.0), (7, 1.0), (5, 0.3))]  # a strong, medium, weak view
    views = [(m[y] + rng.normal(size=(400, m.shape[1]))).astype(np.float32) for m in means]
    return views, y


def test_dmveh_fuses_views_in_hamming_space(three_views, tmp_path):
    from hashlearn.crossmodal.dmveh import DeepMultiViewEnhancementHashing

    views, y = three_views
    m = DeepMultiViewEnhancementHashing(n_bits=16, epochs=15, hidden=32, n_threads=1, random_state=0)
    m.fit([v[:300] for v in views], y[:300])
    assert m.view_weights_.shape == (3,) and abs(m.view_weights_.sum() - 1) < 1e-9
    assert m.view_weights_[0] >= m.view_weights_[2]  # the stable view weighs at least as much as the noisy one
    fused = m.transform_fused([v[300:] for v in views])
    assert fused.dtype == np.uint64 and fused.shape == (100, 1)
    # the fused code is the weighted vote of the single-view bits
    bits = [np.where(m.margins(v[300:], i) > 0, 1.0, -1.0) for i, v in enumerate(views)]
    vote = sum(w * b for w, b in zip(m.view_weights_, bits)) > 0
    np.testing.assert_array_equal(codes_mod.unpack(fused, 16).astype(bool), vote)
    db = m.transform_fused([v[:300] for v in views])
    D = codes_mod.hamming_distances(fused, db, n_bits=16)
    assert mean_average_precision(relevance_from_labels(y[300:], y[:300], hamming_ranking(D))) > 0.8
    loaded = hashlearn.load(hashlearn.save(m, tmp_path / "dmveh.hl"))
    np.testing.assert_array_equal(loaded.transform_fused([v[300:] for v in views]), fused)
    again = DeepMultiViewEnhancementHashing(n_bits=16, epochs=15, hidden=32, n_threads=1, random_state=0)
    np.testing.assert_array_equal(again.fit([v[:300] for v in views], y[:300]).transform(views[1][300:], 1),
                                  m.transform(views[1][300:], 1))


def test_dmveh_bad_input(three_views):
    from hashlearn.crossmodal.dmveh import DeepMultiViewEnhancementHashing

    views, y = three_views
    m = DeepMultiViewEnhancementHashing(n_bits=8, epochs=1, hidden=8, n_threads=1)
    with pytest.raises(ValidationError, match=r"aligned views .* got rows \[400, 399, 400\]"):
        m.fit([views[0], views[1][:-1], views[2]], y)
    with pytest.raises(ValidationError, match="y has 10 rows of labels but X has 400 rows"):
        m.fit(views, y[:10])
    m.fit(views, y)
    with pytest.raises(ValidationError, match="view must be an integer in \\[0, 2\\]"):
        m.transform(views[0], 3)
    with pytest.raises(ValidationError, match="needs the 3 views"):
        m.transform_fused(views[:2])
