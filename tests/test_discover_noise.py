"""Web-noise handling (hashlearn.discover.noise): injection, detection AUC, strategies, CLI part ``noise``."""

import json

import numpy as np
import pytest

from hashlearn.cli import main
from hashlearn.discover import WebNoiseClassifier, detection_auc, inject_web_noise, web_noise_scores
from hashlearn.errors import ValidationError

from test_discover_cli import _tiny_mnist


def _gauss(n, rng, k=4, d=8, spread=1.6):
    means = np.eye(k, d) * 3.0
    y = rng.integers(0, k, n)
    return means[y] + rng.normal(0, spread, (n, d)), y


def test_injection_fractions_and_flags():
    rng = np.random.default_rng(0)
    X, y = _gauss(1000, rng)
    ood_pool = rng.normal(5, 1, (500, 8)) + 100  # distinguishable from every ID row
    w = inject_web_noise(X, y, ood_pool, ood_fraction=0.25, flip_fraction=0.15, random_state=1)
    assert w.images.shape == X.shape and w.images.dtype == np.float32
    assert w.is_ood.sum() == 250 and w.is_flipped.sum() == 150 and not (w.is_ood & w.is_flipped).any()
    assert w.is_noisy.sum() == 400
    # OOD rows are exactly the rows from the pool, with clean label -1 and a label in 0..k-1
    assert np.array_equal(w.is_ood, w.images[:, 0] > 50)
    assert (w.clean_labels[w.is_ood] == -1).all() and set(np.unique(w.labels[w.is_ood])) <= {0, 1, 2, 3}
    idd = ~w.is_ood
    assert np.array_equal(w.labels[idd] != w.clean_labels[idd], w.is_flipped[idd])  # flips change the label
    # every kept ID row is an original row with its original label
    orig = {tuple(np.round(r, 4)): c for r, c in zip(X.astype(np.float32), y)}
    assert all(orig[tuple(np.round(r, 4))] == c for r, c in zip(w.images[idd], w.clean_labels[idd]))
    # same seed, same set
    w2 = inject_web_noise(X, y, ood_pool, ood_fraction=0.25, flip_fraction=0.15, random_state=1)
    assert np.array_equal(w.labels, w2.labels) and np.array_equal(w.is_ood, w2.is_ood)


@pytest.mark.parametrize("kw, msg", [({"ood_fraction": 1.0}, "ood_fraction"),
                                     ({"flip_fraction": -0.1}, "flip_fraction"),
                                     ({"ood_fraction": 0.6, "flip_fraction": 0.4}, "must be < 1"),
                                     ({"ood_fraction": 0.9, "flip_fraction": 0.0}, "needs 90 OOD images")])
def test_injection_bad_input(kw, msg):
    rng = np.random.default_rng(0)
    X, y = _gauss(100, rng)
    with pytest.raises(ValidationError, match=msg):
        inject_web_noise(X, y, rng.normal(size=(50, 8)), **kw)
    with pytest.raises(ValidationError, match="one label per row"):
        inject_web_noise(X, y[:-1], rng.normal(size=(50, 8)))
    with pytest.raises(ValidationError, match="x_ood rows have shape"):
        inject_web_noise(X, y, rng.normal(size=(50, 7)))


def test_detection_auc_matches_sklearn_and_hand_value():
    from sklearn.metrics import roc_auc_score

    s = [0.1, 0.4, 0.35, 0.8, 0.4]
    f = [0, 0, 1, 1, 1]
    # flagged 0.35, 0.8, 0.4 vs unflagged 0.1, 0.4: pairs won 1+0, 1+1, 1+0.5 of 6
    assert detection_auc(s, f) == pytest.approx(4.5 / 6) == pytest.approx(roc_auc_score(f, s))
    rng = np.random.default_rng(3)
    s, f = rng.integers(0, 5, 200), rng.random(200) < 0.3
    assert detection_auc(s, f) == pytest.approx(roc_auc_score(f, s))
    with pytest.raises(ValidationError, match="3 values but flags has 2"):
        detection_auc([1, 2, 3], [0, 1])
    with pytest.raises(ValidationError, match="flagged and unflagged"):
        detection_auc([1, 2, 3], [0, 0, 0])


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    X, y = _gauss(1500, rng)
    ood = rng.normal(0, 1.0, (800, 8)) + np.r_[np.zeros(7), 6.0]
    w = inject_web_noise(X, y, ood, ood_fraction=0.2, flip_fraction=0.2, random_state=seed)
    Xt, yt = _gauss(2000, rng)
    return w, Xt, yt


def test_scores_detect_the_noise():
    w, _, _ = _toy()
    sc = web_noise_scores(w.images, w.labels, random_state=0)
    assert detection_auc(sc["p_ood"], w.is_ood) > 0.95
    assert detection_auc(sc["score"], w.is_noisy) > 0.85
    with pytest.raises(ValidationError, match="one label per row"):
        web_noise_scores(w.images, w.labels[:-3])


@pytest.mark.slow
def test_unlabelled_beats_training_on_everything():
    w, Xt, yt = _toy()
    sc = web_noise_scores(w.images, w.labels, random_state=0)
    acc = {}
    for s in ("all", "discard", "unlabelled"):
        clf = WebNoiseClassifier(s, hidden=128, steps=1500, random_state=0).fit(w.images, w.labels, noise_scores=sc)
        acc[s] = float(np.mean(clf.predict(Xt) == yt))
        if s != "all":
            assert clf.flagged_.sum() > 0.25 * w.labels.size  # most of the 40 % noise is flagged
    assert acc["unlabelled"] > acc["all"] + 0.02, acc
    assert acc["unlabelled"] >= acc["discard"] - 0.01, acc


def test_classifier_bad_input():
    w, Xt, _ = _toy()
    with pytest.raises(ValidationError, match="strategy must be one of all, discard, unlabelled"):
        WebNoiseClassifier("drop").fit(w.images, w.labels)
    with pytest.raises(ValidationError, match="one label per row"):
        WebNoiseClassifier("all", steps=2).fit(w.images, w.labels[:10])
    clf = WebNoiseClassifier("all", steps=2, random_state=0).fit(w.images, w.labels)
    with pytest.raises(ValidationError, match="7 features but the model was fitted on 8"):
        clf.predict(Xt[:, :7])
    n = w.labels.size
    with pytest.raises(ValidationError, match="noise_scores must hold 'score', 'p_ood', 'pseudo' and 'p_pseudo'"):
        WebNoiseClassifier("discard", steps=2).fit(w.images, w.labels, noise_scores={
            "score": np.ones(n), "p_ood": np.zeros(n)})
    with pytest.raises(ValidationError, match="nothing to train on"):
        WebNoiseClassifier("discard", steps=2).fit(w.images, w.labels, noise_scores={
            "score": np.ones(n), "p_ood": np.zeros(n), "pseudo": w.labels, "p_pseudo": np.ones(n)})


def _tiny_omniglot(folder, n_chars=20, n_draw=5):
    rng = np.random.default_rng(1)
    sub = folder / "full_npz_bitsandscraps"
    sub.mkdir(parents=True)
    for part in ("background", "evaluation"):
        images = rng.random((n_chars, n_draw, 105, 105)) > 0.05  # ink False, sparse strokes
        labels = np.repeat(np.arange(n_chars)[:, None], n_draw, 1)
        np.savez(sub / f"images_{part}.npz", images=images, labels=labels)
    return folder


def test_cli_noise_on_tiny_folders(tmp_path):
    mnist = _tiny_mnist(tmp_path / "mnist", n=300, n_test=100)
    omni = _tiny_omniglot(tmp_path / "omniglot")
    out = tmp_path / "noise.json"
    assert main(["bench", "discover", "--part", "noise", "--data-dir", str(mnist), "--omniglot-dir", str(omni),
                 "--repeats", "1", "-q", "--contrastive-steps", "10", "--head-steps", "50",
                 "--json", str(out), "--plots", str(tmp_path / "plots")]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["method"] for r in rows] == ["all", "discard", "detect+unlabelled", "oracle-clean"]
    for r in rows:
        assert r["part"] == "noise" and {"dataset", "acc", "auc"} <= set(r) and 0 <= r["acc"] <= 1
        assert r["ood_fraction"] == pytest.approx(0.2) and r["flip_fraction"] == pytest.approx(0.2)
    assert 0 <= rows[1]["auc"] <= 1 and rows[0]["auc"] is None
    assert (tmp_path / "plots" / "discover_noise.png").is_file()


def test_cli_noise_bad_options(tmp_path, capsys):
    mnist = _tiny_mnist(tmp_path / "mnist", n=100, n_test=20)
    assert main(["bench", "discover", "--part", "noise", "--data-dir", str(mnist), "--omniglot-dir",
                 str(tmp_path / "none"), "-q"]) == 2
    assert "--omniglot-dir" in capsys.readouterr().err
    assert main(["bench", "discover", "--part", "noise", "--data-dir", str(mnist), "--noise-fraction", "1", "-q"]) == 2
    assert "--noise-fraction must be in [0, 1), got 1" in capsys.readouterr().err
