"""BEIR's retrieval metrics (nDCG@k, Recall@k, MRR@k) from ranked document positions and qrels.

Conventions are those of BEIR's ``EvaluateRetrieval`` (pytrec_eval / trec_eval): linear gains,
the ideal DCG built from *all* judged documents of the query, recall counts documents with a score
> 0, and every evaluated query counts (a query that retrieves nothing scores 0). Queries without
judgements are not evaluated — the caller passes only judged queries (see
:meth:`hashlearn.text.beir.BeirData.judged_queries`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError
from ..metrics import ndcg_at_k

__all__ = ["beir_metrics", "gains_matrix"]


def gains_matrix(ranking: np.ndarray, query_ids, doc_ids, qrels) -> tuple[np.ndarray, np.ndarray]:
    """Graded relevance of each ranked position and of each query's judged documents.

    Parameters
    ----------
    ranking : int array (nq, k)
        Positions into ``doc_ids`` best first; ``-1`` for "no result".
    query_ids : sequence of str, length nq
    doc_ids : sequence of str
    qrels : dict ``{query_id: {doc_id: score}}``

    Returns
    -------
    gains : float64 (nq, k); ideal : float64 (nq, m) — every positive judgement of the query, padded with 0.
    """
    ranking = np.asarray(ranking)
    if ranking.ndim != 2 or ranking.shape[0] != len(query_ids):
        raise ValidationError(f"ranking must have shape ({len(query_ids)}, k), got {ranking.shape}")
    gains = np.zeros(ranking.shape, dtype=np.float64)
    rels = [qrels.get(q, {}) for q in query_ids]
    width = max([sum(1 for s in r.values() if s > 0) for r in rels] + [1])
    ideal = np.zeros((len(query_ids), width), dtype=np.float64)
    for row, rel in enumerate(rels):
        positives = sorted((s for s in rel.values() if s > 0), reverse=True)
        ideal[row, : len(positives)] = positives
        for col, pos in enumerate(ranking[row]):
            if pos >= 0:
                gains[row, col] = max(rel.get(doc_ids[pos], 0), 0)
    return gains, ideal


def beir_metrics(ranking, query_ids, doc_ids, qrels, *, k_values=(10, 100)) -> dict:
    """``ndcg@k``, ``recall@k`` and ``mrr@k`` (means over queries) for every ``k`` in ``k_values``.

    ``ranking`` needs at least ``max(k_values)`` columns (pad with -1).

    Examples
    --------
    >>> import numpy as np
    >>> m = beir_metrics(np.array([[1, 0]]), ["q"], ["a", "b"], {"q": {"b": 1}}, k_values=(1, 2))
    >>> m["ndcg@1"], m["recall@2"], m["mrr@2"]
    (1.0, 1.0, 1.0)
    """
    ranking = np.asarray(ranking)
    if ranking.ndim != 2:
        raise ValidationError(f"ranking must be 2-D (queries, k), got shape {ranking.shape}")
    if len(query_ids) == 0:
        raise ValidationError("no query to evaluate (none has a positive judgement)")
    kmax = max(k_values)
    if ranking.shape[1] < kmax:
        raise ValidationError(f"ranking has {ranking.shape[1]} columns, fewer than k={kmax}")
    gains, ideal = gains_matrix(ranking[:, :kmax], query_ids, doc_ids, qrels)
    n_pos = (ideal > 0).sum(axis=1)
    hit = gains > 0
    out = {}
    for k in k_values:
        out[f"ndcg@{k}"] = float(ndcg_at_k(gains, k, ideal_gains=ideal).mean())
        found = hit[:, :k].sum(axis=1)
        out[f"recall@{k}"] = float(np.mean(np.divide(found, n_pos, out=np.zeros(len(n_pos)), where=n_pos > 0)))
        first = np.where(hit[:, :k].any(axis=1), hit[:, :k].argmax(axis=1) + 1, 0)
        out[f"mrr@{k}"] = float(np.mean(np.divide(1.0, first, out=np.zeros(len(first)), where=first > 0)))
    return out
