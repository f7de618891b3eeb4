"""Retrieval evaluation: ranked-list metrics, Hamming-radius metrics and exact kNN ground truth.

Imports only numpy and :mod:`hashlearn.errors`. Invalid input (wrong shape, empty, NaN/inf,
mismatched sizes, ``k`` out of range) raises :class:`hashlearn.errors.ValidationError`.

Conventions shared by every function
------------------------------------
Tie rule
    Rankings order equal distances by **smaller database index first** (a stable sort), also at the
    cut-off ``k``: :func:`hamming_ranking` and :func:`exact_knn` both use it, so every metric
    computed from their output is deterministic. No metric averages over tie permutations.
``k``
    ``1 <= k <= m`` where ``m`` is the number of ranked items given; ``k=None`` means all of them.
    A larger ``k`` is an error rather than silently clipped.
Average precision
    ``AP@k = (1/Z) * sum_{i<=k} P(i) * rel(i)``. The default ``normalizer="retrieved"`` uses
    ``Z`` = relevant items within the top ``k`` (hashing papers; DPSH / HashNet code) and gives
    AP = 0 when none is retrieved. ``normalizer="relevant"`` uses ``Z = min(k, n_relevant)`` over
    the whole database (trec_eval / scikit-learn when ``k`` covers the full ranking) and gives
    AP = 0 for a query with no relevant item. Relevance from labels: same class (1-D labels) or
    at least one shared label (multi-hot, dot product > 0).
Nothing retrieved / nothing relevant
    Precision is **0** when nothing is returned (Hamming ball empty), recall and AP are 0 when the
    query has no relevant item, NDCG is 0 when the ideal DCG is 0. Means are plain means over all
    queries (no query is skipped); :func:`radius_counts` gives the per-query counts for other
    conventions.
NDCG
    Linear gain ``rel_i / log2(i + 1)`` (trec_eval / pytrec_eval as used by BEIR, scikit-learn).
Distances
    :func:`exact_knn` returns *squared* L2 distances (like faiss) or inner products / cosine
    similarities, float32, computed in float64.

Typical pipeline (hashing protocol)::

    ranking = hamming_ranking(hamming_dists, k=1000)          # (nq, 1000) int64
    rel = relevance_from_labels(y_query, y_db, ranking)       # (nq, 1000) bool
    mean_average_precision(rel)                               # mAP@1000
"""

from .knn import exact_knn, knn_recall, knn_recall_tie_aware, neighbor_distances
from .ranking import (
    average_precision,
    count_relevant,
    hamming_ranking,
    mean_average_precision,
    ndcg_at_k,
    precision_at_k,
    precision_recall_by_radius,
    precision_within_radius,
    radius_counts,
    recall_at_k,
    relevance_from_labels,
)

__all__ = [
    "hamming_ranking",
    "relevance_from_labels",
    "count_relevant",
    "average_precision",
    "mean_average_precision",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "radius_counts",
    "precision_recall_by_radius",
    "precision_within_radius",
    "exact_knn",
    "neighbor_distances",
    "knn_recall",
    "knn_recall_tie_aware",
]
