"""Clustering metrics of hashlearn.metrics.clustering against brute force and invariants."""

from itertools import permutations

import numpy as np
import pytest

from hashlearn.errors import HashlearnError
from hashlearn.metrics.clustering import cluster_accuracy, clustering_scores, gcd_accuracy, hungarian_mapping


def _brute_accuracy(y_true, y_pred):
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    # every injective map of clusters to classes (clusters padded with "no class")
    slots = list(classes) + [None] * max(0, len(clusters) - len(classes))
    for perm in permutations(slots, len(clusters)):
        m = dict(zip(clusters, perm))
        best = max(best, sum(m[p] == t for p, t in zip(y_pred, y_true)))
    return best / len(y_true)


@pytest.mark.parametrize("seed", range(6))
def test_accuracy_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, 40)
    y_pred = rng.integers(0, 3 + seed % 3, 40)
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(_brute_accuracy(y_true, y_pred))


def test_permuted_labelling_scores_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 300)
    perm = rng.permutation(7) + 100
    s = clustering_scores(y, perm[y])
    assert s["acc"] == 1.0 and s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0)
    assert hungarian_mapping(y, perm[y]) == {int(perm[k]): k for k in range(7)}


def test_gcd_accuracy_parts():
    y_true = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    y_pred = np.array([9, 9, 8, 8, 7, 7, 7, 7])  # the two novel classes 2 and 3 share one cluster
    out = gcd_accuracy(y_true, y_pred, known_classes=[0, 1])
    assert out == {"all": 0.75, "old": 1.0, "new": 0.5}
    assert np.isnan(gcd_accuracy([0, 1], [0, 1], known_classes=[0, 1])["new"])


def test_bad_input_names_numbers():
    with pytest.raises(HashlearnError, match="3 labels but y_pred has 2"):
        cluster_accuracy([0, 1, 2], [0, 1])
    with pytest.raises(HashlearnError, match="empty"):
        cluster_accuracy([], [])
