"""Clustering scores against ground-truth classes: Hungarian accuracy, NMI, ARI and GCD's All/Old/New.

Cluster ids are arbitrary, so accuracy is measured after the one-to-one matching of clusters to
classes that maximises the number of agreements (the Hungarian algorithm,
:func:`scipy.optimize.linear_sum_assignment`, on the contingency table). Clusters left unmatched
(more clusters than classes) count as errors, as do classes left without a cluster.
"""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError

__all__ = ["cluster_accuracy", "hungarian_mapping", "clustering_scores", "gcd_accuracy"]


def _labels_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValidationError(f"y_true has {y_true.shape[0]} labels but y_pred has {y_pred.shape[0]}")
    if y_true.shape[0] == 0:
        raise ValidationError("cannot score an empty labelling (0 samples)")
    return y_true, y_pred


def hungarian_mapping(y_true, y_pred) -> dict:
    """The cluster → class matching that maximises agreements: ``{cluster id: class id}``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Class labels and cluster ids (any hashable, sortable values).

    Returns
    -------
    dict mapping each matched cluster id to a class id (at most ``min(#clusters, #classes)`` pairs).
    """
    from scipy.optimize import linear_sum_assignment

    y_true, y_pred = _labels_pair(y_true, y_pred)
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((clusters.size, classes.size), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {clusters[r].item(): classes[c].item() for r, c in zip(rows, cols)}


def cluster_accuracy(y_true, y_pred) -> float:
    """Clustering accuracy: the fraction of samples whose cluster maps to their class (best 1-to-1 map).

    Examples
    --------
    >>> cluster_accuracy([0, 0, 1, 1, 2], [5, 5, 3, 3, 3])
    0.8
    """
    y_true, y_pred = _labels_pair(y_true, y_pred)
    mapping = hungarian_mapping(y_true, y_pred)
    hits = sum(int(np.sum((y_pred == c) & (y_true == k))) for c, k in mapping.items())
    return hits / y_true.shape[0]


def clustering_scores(y_true, y_pred) -> dict:
    """``{"acc", "nmi", "ari"}``: Hungarian accuracy, normalised mutual information, adjusted Rand index."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    y_true, y_pred = _labels_pair(y_true, y_pred)
    return {"acc": cluster_accuracy(y_true, y_pred),
            "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
            "ari": float(adjusted_rand_score(y_true, y_pred))}


def gcd_accuracy(y_true, y_pred, known_classes) -> dict:
    """Generalized-category-discovery accuracy: ``{"all", "old", "new"}``.

    One Hungarian matching of clusters to classes over all samples (the protocol of "Generalized
    Category Discovery", Vaze et al., 2022); "old" and "new" are the accuracies of that matching on
    the samples whose true class is known / novel. A part with no samples scores NaN.
    """
    y_true, y_pred = _labels_pair(y_true, y_pred)
    mapping = hungarian_mapping(y_true, y_pred)
    mapped = np.array([mapping.get(c.item() if hasattr(c, "item") else c, None) for c in y_pred], dtype=object)
    hit = np.array([m is not None and m == t for m, t in zip(mapped, y_true.tolist())], dtype=bool)
    old = np.isin(y_true, np.asarray(list(known_classes)))
    out = {"all": float(hit.mean())}
    out["old"] = float(hit[old].mean()) if old.any() else float("nan")
    out["new"] = float(hit[~old].mean()) if (~old).any() else float("nan")
    return out
