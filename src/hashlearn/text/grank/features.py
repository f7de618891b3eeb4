"""Query-document features for the G-Rank simulation: candidates and click-free features from a BEIR folder.

For every query, the candidates are the union of the dense top ``k_dense`` and the BM25 top ``k_bm25``
documents; each (query, candidate) gets features computed without any label, standardised within the
query's candidate list:

0. dense cosine (the zero-shot encoder: ranking by it alone is the static zero-shot ranker),
1. BM25 score (0 outside BM25's top ``2 * k_bm25``),
2. ``1 / (60 + dense rank)`` and 3. ``1 / (60 + BM25 rank)`` (reciprocal-rank-fusion terms),
4. title-query word overlap (share of the query's words found in the title),
5. log document length.

Relevance grades of the candidates come from the qrels, for the click simulator and the evaluation only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ...errors import ValidationError

__all__ = ["CandidateSet", "build_candidates", "FEATURE_NAMES"]

FEATURE_NAMES = ("dense", "bm25", "rrf_dense", "rrf_bm25", "title_overlap", "log_length")
_WORD = re.compile(r"\w+")


@dataclass
class CandidateSet:
    """Candidates of ``n_queries`` queries, padded to ``C`` columns.

    Attributes
    ----------
    features : float32 (n_queries, C, n_features), standardised per query; padding rows are 0
    valid : bool (n_queries, C)
    grades : float32 (n_queries, C), qrels grade of each candidate (0 if unjudged)
    ideal_dcg10 : float64 (n_queries,), the ideal DCG@10 over *all* judged documents of the query
    query_ids : list of str
    """

    features: np.ndarray
    valid: np.ndarray
    grades: np.ndarray
    ideal_dcg10: np.ndarray
    query_ids: list

    def __len__(self) -> int:
        return len(self.query_ids)

    def subset(self, rows) -> "CandidateSet":
        rows = np.asarray(rows)
        return CandidateSet(self.features[rows], self.valid[rows], self.grades[rows], self.ideal_dcg10[rows],
                            [self.query_ids[r] for r in rows])


def _words(text: str) -> set:
    return set(w.lower() for w in _WORD.findall(text or ""))


def build_candidates(X, Q, query_ids, query_texts, corpus, qrels: dict, *, bm25_scores=None, bm25_pos=None,
                     k_dense: int = 50, k_bm25: int = 50) -> CandidateSet:
    """Candidates and features of the queries ``Q`` (n_q, d) against documents ``X`` (n, d).

    ``bm25_scores``/``bm25_pos`` (n_q, >= k_bm25): BM25 results (computed with bm25s when omitted).
    """
    X, Q = np.asarray(X, np.float32), np.asarray(Q, np.float32)
    if Q.shape[0] != len(query_ids) or X.shape[0] != len(corpus):
        raise ValidationError(f"got {Q.shape[0]} query vectors for {len(query_ids)} queries and {X.shape[0]} "
                              f"document vectors for {len(corpus)} documents")
    if bm25_scores is None:
        from ..lexical import BM25

        bm25_scores, bm25_pos = BM25().fit(corpus.full_texts).search(list(query_texts), k=2 * k_bm25)
    title_words = [_words(t) for t in corpus.titles]
    log_len = np.log1p(np.array([len(t.split()) for t in corpus.full_texts], np.float32))
    doc_row = {d: i for i, d in enumerate(corpus.ids)}
    sims = Q @ X.T
    C = k_dense + k_bm25
    F = np.zeros((len(Q), C, len(FEATURE_NAMES)), np.float32)
    valid = np.zeros((len(Q), C), bool)
    grades = np.zeros((len(Q), C), np.float32)
    ideal = np.zeros(len(Q))
    for qi in range(len(Q)):
        dense_top = np.argsort(-sims[qi], kind="stable")[:k_dense]
        bpos = [int(p) for p in bm25_pos[qi] if p >= 0]
        bscore = {p: float(s) for p, s in zip(bpos, bm25_scores[qi])}
        brank = {p: r for r, p in enumerate(bpos)}
        cand = list(dict.fromkeys(list(dense_top) + bpos[:k_bm25]))
        drank = {int(p): r for r, p in enumerate(np.argsort(-sims[qi][cand], kind="stable"))}
        qwords = _words(query_texts[qi])
        rows = np.array([[sims[qi, p], bscore.get(p, 0.0), 1 / (60 + drank[j]), 1 / (60 + brank.get(p, 2 * k_bm25)),
                          len(qwords & title_words[p]) / max(1, len(qwords)), log_len[p]]
                         for j, p in enumerate(cand)], np.float32)
        sd = rows.std(axis=0)
        rows = (rows - rows.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        F[qi, :len(cand)] = rows
        valid[qi, :len(cand)] = True
        rel = qrels.get(query_ids[qi], {})
        grades[qi, :len(cand)] = [max(0, rel.get(corpus.ids[p], 0)) for p in cand]
        g = sorted((max(0, v) for d, v in rel.items() if d in doc_row), reverse=True)[:10]
        ideal[qi] = sum(v / np.log2(r + 2) for r, v in enumerate(g))
    return CandidateSet(F, valid, grades, ideal, list(query_ids))
