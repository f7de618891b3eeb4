"""The text metrics agree with pytrec_eval (trec_eval's reference implementation, as BEIR uses it)."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn.text.metrics import beir_metrics

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier is in the [dev] extra")


def _random_run(seed: int, n_queries: int = 40, n_docs: int = 300, depth: int = 100):
    rng = np.random.default_rng(seed)
    doc_ids = [f"d{i}" for i in range(n_docs)]
    query_ids = [f"q{i}" for i in range(n_queries)]
    qrels = {}
    for q in query_ids:
        judged = rng.choice(n_docs, size=rng.integers(1, 12), replace=False)
        qrels[q] = {doc_ids[d]: int(rng.integers(1, 3)) for d in judged}  # graded relevance 1..2
    ranking = np.stack([rng.permutation(n_docs)[:depth] for _ in query_ids])
    ranking[0, 50:] = -1  # a short result list, padded with -1
    return ranking, query_ids, doc_ids, qrels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ndcg_and_recall_equal_pytrec_eval(seed):
    ranking, query_ids, doc_ids, qrels = _random_run(seed)
    ours = beir_metrics(ranking, query_ids, doc_ids, qrels, k_values=(1, 10, 100))
    run = {q: {doc_ids[d]: float(ranking.shape[1] - j) for j, d in enumerate(row) if d >= 0}
           for q, row in zip(query_ids, ranking)}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.1,10,100", "recall.10,100"})
    ref = evaluator.evaluate(run)
    for k in (1, 10, 100):
        expect = np.mean([ref[q][f"ndcg_cut_{k}"] for q in query_ids])
        assert ours[f"ndcg@{k}"] == pytest.approx(expect, abs=1e-12)
    for k in (10, 100):
        expect = np.mean([ref[q][f"recall_{k}"] for q in query_ids])
        assert ours[f"recall@{k}"] == pytest.approx(expect, abs=1e-12)
