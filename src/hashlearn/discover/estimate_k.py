"""Estimating a number of clusters: k-means over a range of k, best silhouette."""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError

__all__ = ["estimate_n_clusters"]


def estimate_n_clusters(Z: np.ndarray, *, min_k: int = 2, max_k: int = 15, sample: int = 3000,
                        random_state=0) -> tuple[int, dict]:
    """The k in ``min_k..max_k`` whose k-means clustering of ``Z`` has the largest silhouette.

    Parameters
    ----------
    Z : float array (n, d)
    min_k, max_k : int
        Range searched (``max_k`` is capped at ``n - 1``).
    sample : int
        Rows used for the silhouette (a random subset when ``n`` is larger).

    Returns
    -------
    (k, {k: silhouette})

    References
    ----------
    P. J. Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation of cluster
    analysis", 1987; used to estimate the number of novel classes in "A Practical Approach to Novel
    Class Discovery in Tabular Data", 2023.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = Z.shape[0]
    max_k = min(int(max_k), n - 1)
    if max_k < min_k:
        raise ValidationError(f"cannot estimate a number of clusters in {min_k}..{max_k} from {n} rows")
    rng = np.random.default_rng(random_state)
    sub = rng.choice(n, size=min(sample, n), replace=False)
    scores = {}
    for k in range(int(min_k), max_k + 1):
        labels = KMeans(k, n_init=4, random_state=int(rng.integers(2**31 - 1))).fit_predict(Z)
        if np.unique(labels[sub]).size < 2:
            continue
        scores[k] = float(silhouette_score(Z[sub], labels[sub]))
    if not scores:
        raise ValidationError(f"no clustering of the {n} rows into {min_k}..{max_k} clusters has 2 distinct clusters")
    best = max(scores, key=scores.get)
    return int(best), scores
