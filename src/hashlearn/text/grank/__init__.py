"""G-Rank on a simulated peer-to-peer network: online learning to rank from clicks, gossip, churn, poisoning.

Seed: "G-Rank: Unsupervised Continuous Learn-to-Rank for Edge Devices in a P2P Network" (2023).

* :func:`build_candidates` — label-free query-document features (dense, BM25, fusion ranks, title overlap);
* :class:`Peer`, :class:`PositionBiasedClicks`, :func:`aggregate`, :func:`ndcg10` — one peer's learning
  and the robust merge of received models;
* :func:`simulate`, :func:`run_scenarios` — the network (``hashlearn bench grank``).
"""

from .features import FEATURE_NAMES, CandidateSet, build_candidates
from .peer import AGGREGATIONS, Peer, PositionBiasedClicks, aggregate, ndcg10
from .simulate import SCENARIOS, run_scenarios, simulate, static_weights

__all__ = ["FEATURE_NAMES", "CandidateSet", "build_candidates", "AGGREGATIONS", "Peer", "PositionBiasedClicks",
           "aggregate", "ndcg10", "SCENARIOS", "run_scenarios", "simulate", "static_weights", "load_beir_candidates"]


def load_beir_candidates(folder, *, train_split: str = "train", eval_split: str = "test", embeddings=None,
                         model: str = "all-MiniLM-L6-v2", k_dense: int = 50, k_bm25: int = 50):
    """``(train, evaluation)`` candidate sets of a BEIR folder: the streams' queries come from ``train_split``,
    the evaluation queries from ``eval_split`` (disjoint). Embeddings: precomputed folder or ``model``."""
    from pathlib import Path

    from ...errors import ValidationError
    from ..beir import load_beir, read_qrels
    from ..pipeline import load_embeddings

    data = load_beir(folder, eval_split)
    eval_q, eval_t = data.judged_queries()
    train_qrels = read_qrels(Path(folder) / "qrels" / f"{train_split}.tsv")
    text = dict(zip(data.query_ids, data.query_texts))
    train_q = [q for q in train_qrels if q in text and q not in set(eval_q)]
    if not train_q or not eval_q:
        raise ValidationError(f"{folder}: need judged queries in both {train_split!r} and {eval_split!r}")
    if embeddings is not None:
        X = load_embeddings(embeddings, "corpus", data.corpus.ids)
        Qt, Qe = load_embeddings(embeddings, "queries", train_q), load_embeddings(embeddings, "queries", eval_q)
    else:
        from ...embed import Embedder

        emb = Embedder(model, show_progress=False)
        X, Qt, Qe = emb.encode(data.corpus.full_texts), emb.encode([text[q] for q in train_q]), emb.encode(eval_t)
    train = build_candidates(X, Qt, train_q, [text[q] for q in train_q], data.corpus, train_qrels,
                             k_dense=k_dense, k_bm25=k_bm25)
    evaluation = build_candidates(X, Qe, eval_q, eval_t, data.corpus, data.qrels, k_dense=k_dense, k_bm25=k_bm25)
    return train, evaluation
