"""Label efficiency (hashlearn.discover.labels): balanced sampling, curve fitting, rows, bad input, encoder."""

import numpy as np
import pytest

from hashlearn.discover import bench
from hashlearn.discover.labels import (ContrastiveEncoder, balanced_label_indices, fit_label_curve, itq_bits,
                                       label_curve, label_efficiency)
from hashlearn.errors import HashlearnError, ValidationError


def _blobs(n_per_class, k=4, d=8, seed=0, sep=3.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, sep, (k, d))
    y = np.repeat(np.arange(k), n_per_class)
    return (centers[y] + rng.normal(0, 1, (y.size, d))).astype(np.float32), y


@pytest.mark.parametrize("n_labels", [1, 3, 4, 10, 23, 40])
def test_balanced_indices_are_distinct_and_balanced(n_labels):
    y = np.repeat(np.arange(4), 10)
    idx = balanced_label_indices(y, n_labels, np.random.default_rng(1))
    assert idx.size == n_labels == np.unique(idx).size
    counts = np.bincount(y[idx], minlength=4)
    assert counts.max() - counts.min() <= 1  # as balanced as the count allows
    assert counts.sum() == n_labels


def test_balanced_indices_fill_from_other_classes_when_one_is_small():
    y = np.concatenate([np.zeros(2, int), np.ones(50, int), np.full(50, 2)])
    idx = balanced_label_indices(y, 30, 0)
    counts = np.bincount(y[idx], minlength=3)
    assert counts[0] == 2 and counts.sum() == 30 and abs(counts[1] - counts[2]) <= 1


def test_balanced_indices_depend_on_seed_only():
    y = np.repeat(np.arange(5), 20)
    a, b = balanced_label_indices(y, 10, 3), balanced_label_indices(y, 10, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, balanced_label_indices(y, 10, 4))


def test_more_labels_than_rows_names_the_numbers():
    y = np.repeat(np.arange(3), 5)
    with pytest.raises(HashlearnError, match=r"n_labels=16 is more than the 15 rows"):
        balanced_label_indices(y, 16, 0)
    X, yb = _blobs(5, k=3)
    with pytest.raises(ValidationError, match=r"n_labels \[20\] exceed the 15 training rows"):
        label_efficiency({"raw": (X, X)}, yb, yb, n_labels=(5, 20), seeds=(0,))
    with pytest.raises(ValidationError, match="n_labels"):
        balanced_label_indices(y, 0, 0)


@pytest.mark.parametrize("abc", [(0.95, 0.8, 0.5), (0.7, 2.0, 0.3), (0.99, 0.5, 1.2)])
def test_curve_fit_recovers_known_parameters(abc):
    n = np.array([10, 20, 50, 100, 200, 500, 1000, 5000, 60000], float)
    fit = fit_label_curve(n, label_curve(n, *abc))
    assert np.allclose([fit["a"], fit["b"], fit["c"]], abc, rtol=1e-3, atol=1e-4)
    assert fit["rmse"] < 1e-6


def test_curve_fit_with_noise_and_bad_input():
    rng = np.random.default_rng(0)
    n = np.repeat([10, 30, 100, 300, 1000, 3000, 10000], 5).astype(float)
    fit = fit_label_curve(n, label_curve(n, 0.9, 1.0, 0.5) + rng.normal(0, 0.005, n.size))
    assert abs(fit["a"] - 0.9) < 0.01 and abs(fit["c"] - 0.5) < 0.1
    with pytest.raises(ValidationError, match="at least 3 distinct numbers of labels, got 2"):
        fit_label_curve([10, 10, 20], [0.1, 0.2, 0.3])
    with pytest.raises(ValidationError, match="3 values but acc has 2"):
        fit_label_curve([1, 2, 3], [0.1, 0.2])


def test_itq_bits_unpacks_packed_words():
    bits = np.random.default_rng(0).integers(0, 2, (7, 70)).astype(np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="little")
    words = np.zeros((7, 16), np.uint8)
    words[:, :packed.shape[1]] = packed
    assert np.array_equal(itq_bits(words.view(np.uint64), 70), bits.astype(np.float32))


def test_rows_fields_and_accuracy_grows_with_labels():
    X, y = _blobs(60, k=4)
    Xt, yt = _blobs(30, k=4, seed=0)  # same centres (same seed); extra noise so test rows differ from train rows
    Xt = Xt + np.random.default_rng(5).normal(0, 0.5, Xt.shape).astype(np.float32)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, X.shape).astype(np.float32)
    feats = {"raw": (X, Xt), "noise": (noise, rng.normal(0, 1, Xt.shape).astype(np.float32))}
    rows = label_efficiency(feats, y, yt, n_labels=(4, 40, None), seeds=(0, 1), dataset="blobs")
    assert len(rows) == 3 * 2 * 2
    for r in rows:
        assert r["part"] == "labels" and r["dataset"] == "blobs" and r["method"] in feats
        assert set(r) >= {"n_labels", "acc", "seed", "fit_s"} and 0 <= r["acc"] <= 1
    assert {r["n_labels"] for r in rows} == {4, 40, 240}
    raw = {(r["n_labels"], r["seed"]): r["acc"] for r in rows if r["method"] == "raw"}
    assert raw[(240, 0)] > 0.95 and raw[(240, 0)] == raw[(240, 1)]  # the full set does not depend on the seed
    noise_all = next(r["acc"] for r in rows if r["method"] == "noise" and r["n_labels"] == 240)
    assert noise_all < 0.5  # features without signal stay near chance (1/4)
    summary = bench.summarize(rows)
    assert {s["n_labels"] for s in summary} == {4, 40, 240}
    table = bench.markdown(summary)
    assert "| labels | raw acc (%) | noise acc (%) |" in table and "| 240 |" in table
    curves = bench.label_curves(rows)
    assert set(curves) == {"raw", "noise"} and all(set(c) == {"a", "b", "c", "rmse"} for c in curves.values())


def test_rows_reject_mismatched_features():
    X, y = _blobs(10, k=2)
    with pytest.raises(ValidationError, match="features 'raw': 20 train / 5 test rows, labels 20 / 20"):
        label_efficiency({"raw": (X, X[:5])}, y, y, n_labels=(4,), seeds=(0,))


def test_contrastive_encoder_learns_and_is_deterministic():
    pytest.importorskip("torch", reason="ContrastiveEncoder needs torch")
    rng = np.random.default_rng(0)
    templates = rng.random((3, 12, 12)).astype(np.float32)
    y = np.repeat(np.arange(3), 40)
    images = np.clip(templates[y] + rng.normal(0, 0.1, (y.size, 12, 12)), 0, 1).astype(np.float32)
    kw = dict(dim=8, hidden=32, proj=8, steps=60, batch_size=32, random_state=0)
    enc = ContrastiveEncoder(**kw).fit(images)
    assert enc.loss_[-10:].mean() < enc.loss_[:10].mean()
    F = enc.transform(images)
    assert F.shape == (120, 8) and F.dtype == np.float32
    assert np.array_equal(F, ContrastiveEncoder(**kw).fit(images).transform(images))
    # the classes stay apart in the learned space: nearest class mean is right for most rows
    means = np.stack([F[y == c].mean(0) for c in range(3)])
    assert np.mean(np.argmin(((F[:, None] - means) ** 2).sum(-1), 1) == y) > 0.9
    with pytest.raises(ValidationError, match=r"trained on \(12, 12\)"):
        enc.transform(images[:, :10, :10])
    from hashlearn.io.persist import dumps, loads

    back = loads(dumps(enc))  # persistence round trip: same features, same parameters
    assert isinstance(back, ContrastiveEncoder) and back.get_params() == enc.get_params()
    assert np.array_equal(back.transform(images), F)
    with pytest.raises(ValidationError, match="images must be an array"):
        ContrastiveEncoder().fit(images[0])


def test_global_scaling_makes_rotations_equivalent_and_bad_scaling_is_named():
    X, y = _blobs(30, k=3, d=6)
    Q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(6, 6)))
    feats = {"x": (X, X), "rotated": (X @ Q, X @ Q)}
    rows = label_efficiency(feats, y, y, n_labels=(6, 30), seeds=(0, 1))
    for n in (6, 30):
        for s in (0, 1):
            a, b = (next(r["acc"] for r in rows if r["method"] == m and r["n_labels"] == n and r["seed"] == s)
                    for m in feats)
            assert abs(a - b) < 0.02  # an L2-penalised linear head does not see a rotation
    with pytest.raises(ValidationError, match="scaling must be one of global, feature, got 'none'"):
        label_efficiency(feats, y, y, n_labels=(6,), scaling="none")
