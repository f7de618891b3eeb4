"""GMMDiscovery: recovery of well-separated synthetic classes and their number, bad input, persistence."""

import numpy as np
import pytest

from hashlearn.discover import GMMDiscovery
from hashlearn.errors import HashlearnError, NotFittedError
from hashlearn.io import persist
from hashlearn.metrics.clustering import gcd_accuracy


def _blobs(n_classes=7, n_known=3, per=120, d=4, seed=0, spread=12.0):
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(n_classes), per)
    # anisotropic blobs: the full covariances matter
    A = rng.normal(size=(n_classes, d, d)) * 0.5 + np.eye(d)
    centres = rng.normal(0, spread, (n_classes, d))
    X = centres[y_true] + np.einsum("nij,nj->ni", A[y_true], rng.normal(size=(y_true.size, d)))
    y = np.where((y_true < n_known) & (rng.random(y_true.size) < 0.5), y_true, -1)
    return X, y, y_true


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_separated_classes_and_their_number(seed):
    X, y, y_true = _blobs(seed=seed)
    model = GMMDiscovery(random_state=seed).fit(X, y)
    assert model.n_novel_ == 4
    unl = y == -1
    acc = gcd_accuracy(y_true[unl], model.predict(X[unl]), known_classes=range(3))
    assert acc["all"] > 0.97 and acc["old"] > 0.97 and acc["new"] > 0.97
    # labelled rows keep their class (the anchored components)
    assert np.mean(model.predict(X[~unl]) == y[~unl]) > 0.97


def test_given_number_and_probabilities():
    X, y, _ = _blobs(seed=4)
    model = GMMDiscovery(4, random_state=0).fit(X, y)
    assert model.n_novel_ == 4 and np.isnan(model.split_threshold_)
    P = model.predict_proba(X[:10])
    assert P.shape == (10, 7) and np.allclose(P.sum(1), 1.0)
    assert list(model.labels_) == [0, 1, 2, 3, 4, 5, 6]


def test_same_seed_same_model_and_roundtrip():
    X, y, _ = _blobs(seed=5)
    a = GMMDiscovery(random_state=7).fit(X, y)
    b = GMMDiscovery(random_state=7).fit(X, y)
    assert np.array_equal(a.means_, b.means_)
    c = persist.loads(persist.dumps(a))
    assert np.array_equal(c.predict(X), a.predict(X))


def test_bad_input():
    X, y, _ = _blobs(seed=6)
    with pytest.raises(HashlearnError, match=r"known class\(es\) \[9\] have no labelled row"):
        GMMDiscovery(known_classes=[0, 1, 2, 9]).fit(X, y)
    n_unlab = int((y == -1).sum())
    with pytest.raises(HashlearnError, match=rf"n_novel=10000 novel classes requested but only {n_unlab} unlabelled"):
        GMMDiscovery(10000).fit(X, y)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(HashlearnError, match="NaN"):
        GMMDiscovery().fit(Xn, y)
    with pytest.raises(HashlearnError, match="4 features but the model was fitted on 3"):
        GMMDiscovery(random_state=0).fit(X[:, :3], y).predict(X)
    with pytest.raises(NotFittedError):
        GMMDiscovery().predict(X)
    with pytest.raises(HashlearnError, match="all 840 labels are -1"):
        GMMDiscovery().fit(X, np.full(len(y), -1))
