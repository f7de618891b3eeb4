"""LatentLabelShift: recovery of classes from domain structure alone, where k-means on X cannot see them."""

import numpy as np
import pytest

from hashlearn.discover import LatentLabelShift
from hashlearn.errors import HashlearnError, NotFittedError
from hashlearn.io import persist
from hashlearn.metrics.clustering import cluster_accuracy


def _shifted(seed=0, n_classes=4, per=300, n_domains=8, alpha=0.3, sep=3.0):
    rng = np.random.default_rng(seed)
    Y = np.repeat(np.arange(n_classes), per)
    X = rng.normal(0, sep, (n_classes, 5))[Y] + rng.normal(size=(Y.size, 5))
    P = rng.dirichlet(np.full(n_classes, alpha), size=n_domains)
    p_d_given_y = P / P.sum(0, keepdims=True)
    dom = np.array([rng.choice(n_domains, p=p_d_given_y[:, c]) for c in Y])
    return X, dom, Y


@pytest.mark.parametrize("hidden,n_clusters", [(64, None), (0, 8)])
def test_recovers_classes(hidden, n_clusters):
    X, dom, Y = _shifted()
    model = LatentLabelShift(4, hidden=hidden, n_clusters=n_clusters, random_state=0).fit(X, dom)
    assert cluster_accuracy(Y, model.labels_) > 0.9
    assert np.array_equal(model.predict(X, dom), model.labels_)
    B = model.class_given_domain_
    assert B.shape == (4, 8) and np.allclose(B.sum(0), 1.0)


def test_domain_signal_beats_kmeans_when_features_hide_the_classes():
    # each class is two blobs (class 0 left/right, class 1 up/down): k-means on X splits them wrongly,
    # the domain proportions tie the blobs of a class together
    rng = np.random.default_rng(1)
    Y = np.repeat(np.arange(2), 600)
    side = rng.choice([-6.0, 6.0], 1200)
    X = np.where(Y[:, None] == 0, np.c_[side, 0 * side], np.c_[0 * side, side]) + rng.normal(size=(1200, 2))
    dom = np.where(rng.random(1200) < 0.9, Y, 1 - Y) * 2 + rng.integers(0, 2, 1200)  # 4 domains
    from sklearn.cluster import KMeans

    km = cluster_accuracy(Y, KMeans(2, n_init=4, random_state=0).fit_predict(X))
    lls = cluster_accuracy(Y, LatentLabelShift(2, hidden=32, max_iter=200, random_state=0).fit(X, dom).labels_)
    assert km < 0.8 and lls > 0.95


def test_roundtrip_and_bad_input():
    X, dom, _ = _shifted(seed=2)
    model = LatentLabelShift(4, hidden=16, random_state=0).fit(X, dom)
    again = persist.loads(persist.dumps(model))
    assert np.array_equal(again.predict(X, dom), model.predict(X, dom))
    with pytest.raises(HashlearnError, match="n_classes=5000 classes requested but only 1200 rows"):
        LatentLabelShift(5000).fit(X, dom)
    with pytest.raises(HashlearnError, match="at least 2 domains, got 1"):
        LatentLabelShift(4).fit(X, np.zeros(len(X)))
    with pytest.raises(HashlearnError, match=r"domains \[99\] were not seen in fit \(8 domains\)"):
        model.predict(X[:2], [0, 99])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(HashlearnError, match="NaN"):
        LatentLabelShift(4).fit(bad, dom)
    with pytest.raises(NotFittedError):
        LatentLabelShift(4).predict(X, dom)
