"""hashlearn.robust unlearnable clusters: bounded per-cluster perturbations, label-free clusters, errors."""

import numpy as np
import pytest

pytest.importorskip("torch")

from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.robust import UnlearnableClusters, classifier_accuracy, train_classifier


def _images(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    X = rng.uniform(0, 0.2, (n, 8, 8))
    for c in range(3):
        X[y == c, :, 2 * c : 2 * c + 2] += 0.7
    return np.clip(X, 0, 1).reshape(n, -1).astype(np.float32), y


def test_perturbations_bounded_one_per_cluster():
    X, _ = _images()
    uc = UnlearnableClusters(3, eps=0.1, n_components=5, steps=20, random_state=0)
    Xp = uc.fit_transform(X)
    assert uc.perturbations_.shape == (3, 64)
    assert np.abs(uc.perturbations_).max() <= 0.1 + 1e-6
    assert Xp.min() >= 0 and Xp.max() <= 1 and np.abs(Xp - X).max() <= 0.1 + 1e-6
    # every image of a cluster gets the same perturbation (where no clipping happened)
    for c in range(3):
        rows = np.flatnonzero(uc.labels_ == c)
        d = Xp[rows] - X[rows]
        inside = (X[rows] + uc.perturbations_[c] >= 0) & (X[rows] + uc.perturbations_[c] <= 1)
        assert np.allclose(d[inside], np.broadcast_to(uc.perturbations_[c], d.shape)[inside], atol=1e-6)
    # the optimisation moved the features: KL to the shifted centre is finite and the perturbation non-zero
    assert np.all(np.isfinite(uc.kl_history_)) and np.abs(uc.perturbations_).max() > 0.01


def test_clusters_do_not_depend_on_labels():
    X, y = _images()
    a = UnlearnableClusters(3, eps=0.1, n_components=5, steps=5, random_state=0).fit(X)
    b = UnlearnableClusters(3, eps=0.1, n_components=5, steps=5, random_state=0).fit(X, y[::-1].copy())
    assert np.array_equal(a.labels_, b.labels_)
    assert np.allclose(a.perturbations_, b.perturbations_)
    assert np.array_equal(a.predict(X), a.labels_)


def test_bad_input():
    X, _ = _images()
    for eps in (0, -1, 1.2):
        with pytest.raises(ValidationError, match="eps must be in"):
            UnlearnableClusters(3, eps=eps).fit(X)
    with pytest.raises(ValidationError, match="n_clusters=200 needs at least 200 images"):
        UnlearnableClusters(200, eps=0.1).fit(X)
    with pytest.raises(NotFittedError):
        UnlearnableClusters().transform(X)
    with pytest.raises(ValidationError, match="outside the data range"):
        UnlearnableClusters(3).fit(X * 255)


def test_classifier_learns_tiny_images():
    X, y = _images(150)
    model = train_classifier(X, y, input_shape=(1, 8, 8), epochs=15, batch_size=16, random_state=0)
    assert classifier_accuracy(model, X, y) > 0.9


def test_given_clusters_replace_kmeans():
    X, y = _images()
    uc = UnlearnableClusters(3, eps=0.1, n_components=5, steps=5, random_state=0).fit(X, clusters=y)
    assert np.array_equal(uc.labels_, y) and uc.perturbations_.shape == (3, 64)
    with pytest.raises(ValidationError, match=r"clusters must be 90 integers in \[0, 3\)"):
        UnlearnableClusters(3, eps=0.1, steps=2).fit(X, clusters=y + 1)
