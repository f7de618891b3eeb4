"""TabularNCD: pieces against brute force, discovery on separated synthetic classes, determinism, bad input."""

import numpy as np
import pytest

from hashlearn.errors import HashlearnError, NotFittedError
from hashlearn.metrics.clustering import cluster_accuracy

torch = pytest.importorskip("torch", reason="TabularNCD trains with torch (pip install 'hashlearn[deep]')")

from hashlearn.discover import TabularNCD, estimate_n_clusters  # noqa: E402
from hashlearn.discover._tabular_train import _pairwise_bce, _pseudo_labels  # noqa: E402
from hashlearn.discover.tabular_ncd import _cosine_knn  # noqa: E402
from hashlearn.io import persist  # noqa: E402


def _data(seed=0, n_classes=4, n_known=2, per=150, d=6, spread=5.0):
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(n_classes), per)
    X = (rng.normal(0, spread, (n_classes, d))[y_true] + rng.normal(size=(y_true.size, d))).astype(np.float32)
    y = np.where(y_true < n_known, y_true, -1)
    return X, y, y_true


FAST = dict(epochs=8, ssl_epochs=3, batch_size=128, topk_percent=20.0)


def test_cosine_knn_matches_brute_force():
    X = np.random.default_rng(1).normal(size=(60, 5))
    got = _cosine_knn(X, 4, block=16)
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Z @ Z.T
    np.fill_diagonal(S, -np.inf)
    ref = np.argsort(-S, axis=1)[:, :4]
    assert all(set(a) == set(b) for a, b in zip(got, ref))


def test_pseudo_labels_and_pairwise_bce_reference():
    z = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    P = _pseudo_labels(torch, z, 2).numpy()
    assert np.array_equal(P, P.T) and np.all(np.diag(P) == 0)
    zn = torch.nn.functional.normalize(z, dim=1).numpy()
    S = zn @ zn.T
    np.fill_diagonal(S, -np.inf)
    for i in range(12):  # each row's 2 nearest are positive
        assert P[i, np.argsort(-S[i])[:2]].all()
    logits = torch.randn(12, 4, generator=torch.Generator().manual_seed(1))
    p = torch.softmax(logits, 1).numpy()
    ref = [-(P[i, j] * np.log(p[i] @ p[j] + 1e-7) + (1 - P[i, j]) * np.log(1 - p[i] @ p[j] + 1e-7))
           for i in range(12) for j in range(i + 1, 12)]
    assert float(_pairwise_bce(torch, logits, torch.from_numpy(P))) == pytest.approx(np.mean(ref), rel=1e-5)


def test_estimate_n_clusters_on_blobs():
    rng = np.random.default_rng(0)
    Z = 20 * np.eye(5)[np.repeat(np.arange(5), 60)] + rng.normal(size=(300, 5))  # centres 28 apart
    k, scores = estimate_n_clusters(Z, max_k=9, random_state=0)
    assert k == 5 and set(scores) == set(range(2, 10))


def test_discovers_novel_classes_and_keeps_known():
    X, y, y_true = _data()
    model = TabularNCD(2, **FAST, random_state=0).fit(X, y)
    novel = y_true >= 2
    assert cluster_accuracy(y_true[novel], model.predict_novel(X[novel])) > 0.95
    assert np.mean(model.predict_known(X[~novel]) == y_true[~novel]) > 0.95
    pred = model.predict(X)  # the classifier's "novel" output routes rows to the clustering head
    assert np.isin(pred[novel], model.novel_labels_).mean() > 0.9
    assert np.isin(pred[~novel], model.classes_).mean() > 0.9
    assert model.transform(X).shape == (X.shape[0], X.shape[1])
    assert model.loss_.shape == (8,) and model.ssl_loss_.shape == (3,)


def test_estimates_number_of_novel_classes():
    X, y, _ = _data(seed=1, n_classes=5, n_known=2, spread=10.0)
    model = TabularNCD(None, max_novel=6, **FAST, random_state=0).fit(X, y)
    assert model.n_novel_ == 3 and model.n_novel_candidates_.tolist() == [2, 3, 4, 5, 6]
    assert model.n_novel_candidates_[np.argmax(model.n_novel_scores_)] == 3
    again = persist.loads(persist.dumps(model))
    assert np.array_equal(again.predict(X), model.predict(X)) and again.n_novel_ == 3


def test_determinism_no_global_state_and_roundtrip():
    X, y, _ = _data(seed=2)
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    a = TabularNCD(2, **FAST, random_state=3).fit(X, y)
    assert torch.equal(state, torch.get_rng_state()) and torch.get_num_threads() == threads
    b = TabularNCD(2, **FAST, random_state=3).fit(X, y)
    assert np.array_equal(a.predict(X), b.predict(X))
    c = persist.loads(persist.dumps(a))
    assert np.array_equal(c.predict(X), a.predict(X))


def test_bad_input():
    X, y, _ = _data(seed=3)
    n_unlab = int((y == -1).sum())
    with pytest.raises(HashlearnError, match=rf"n_novel=5000 novel classes requested but only {n_unlab} unlabelled"):
        TabularNCD(5000).fit(X, y)
    with pytest.raises(HashlearnError, match=r"known class\(es\) \[7\] have no labelled row"):
        TabularNCD(2, known_classes=[0, 1, 7]).fit(X, y)
    Xn = X.copy()
    Xn[5, 2] = np.nan
    with pytest.raises(HashlearnError, match="NaN"):
        TabularNCD(2).fit(Xn, y)
    with pytest.raises(HashlearnError, match="600 labels"):
        TabularNCD(2).fit(X, y[:10])
    with pytest.raises(NotFittedError):
        TabularNCD(2).predict(X)
