"""BM25 (through ``bm25s``) and rank fusion of lexical and dense results.

* :class:`BM25` — Okapi BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and
  Beyond", 2009) in the Lucene variant, via ``bm25s`` (Lù, "BM25S: Orders of magnitude faster lexical
  search via eager sparse scoring", 2024), English stop words, no stemming (bm25s defaults).
* :func:`reciprocal_rank_fusion` — RRF (Cormack, Clarke, Büttcher, "Reciprocal Rank Fusion
  outperforms Condorcet and individual Rank Learning Methods", SIGIR 2009).
* :func:`score_fusion` — convex combination of per-query min-max normalised scores.
"""

from __future__ import annotations

import numpy as np

from ..errors import NotFittedError, ValidationError

__all__ = ["BM25", "reciprocal_rank_fusion", "score_fusion"]
__doctest_requires__ = ("bm25s",)  # the BM25 example indexes a corpus (tests/test_doctests.py skips without it)


class BM25:
    """BM25 retrieval over a list of texts.

    Parameters
    ----------
    k1 : float, default 1.5
    b : float, default 0.75
    method : str, default "lucene"
    stopwords : str or list, default "en"
    n_threads : int, default 1

    Examples
    --------
    >>> bm = BM25().fit(["the cat sat", "dogs bark loudly", "a cat and a dog"])
    >>> scores, pos = bm.search(["cat"], k=2)
    >>> sorted(pos[0].tolist())
    [0, 2]
    """

    def __init__(self, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", stopwords="en",
                 n_threads: int = 1):
        self.k1 = k1
        self.b = b
        self.method = method
        self.stopwords = stopwords
        self.n_threads = n_threads

    def fit(self, texts):
        """Index ``texts`` (list of str); returns ``self``."""
        import bm25s

        texts = _check_texts(texts, "documents")
        self.n_docs_ = len(texts)
        tokens = bm25s.tokenize(texts, stopwords=self.stopwords, show_progress=False)
        self.model_ = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self.model_.index(tokens, show_progress=False)
        return self

    def search(self, queries, k: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, positions)`` float32 / int64 of shape (nq, k), best first; -1 / 0 past the matches."""
        import bm25s

        if not hasattr(self, "model_"):
            raise NotFittedError("BM25 is not fitted yet: call fit(texts) first")
        queries = _check_texts(queries, "queries")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValidationError(f"k must be a positive integer, got {k!r}")
        kk = min(k, self.n_docs_)
        tokens = bm25s.tokenize(queries, stopwords=self.stopwords, show_progress=False)
        pos, scores = self.model_.retrieve(tokens, k=kk, show_progress=False, n_threads=self.n_threads)
        pos = np.asarray(pos, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float32)
        pos = np.where(scores > 0, pos, -1)  # a document sharing no term with the query is no match
        out_s = np.zeros((len(queries), k), np.float32)
        out_p = np.full((len(queries), k), -1, np.int64)
        out_s[:, :kk], out_p[:, :kk] = scores, pos
        return out_s, out_p


def _check_texts(texts, what):
    if isinstance(texts, str):
        raise ValidationError(f"{what} must be a list of strings, got one string")
    texts = list(texts)
    if not texts:
        raise ValidationError(f"no {what} given")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValidationError(f"{what} must be strings; {len(bad)} are not (first at position {bad[0]})")
    return texts


def _check_runs(runs):
    if len(runs) < 2:
        raise ValidationError(f"fusion needs at least two result lists, got {len(runs)}")
    nq = np.asarray(runs[0]).shape[0]
    for r in runs:
        if np.asarray(r).ndim != 2 or np.asarray(r).shape[0] != nq:
            raise ValidationError("every result list must be a (n_queries, k) array with the same n_queries")
    return nq


def reciprocal_rank_fusion(rankings, k: int = 100, *, c: float = 60.0, weights=None):
    """Fuse rankings with ``sum_r w_r / (c + rank_r(d))`` (rank from 1; absent documents add 0).

    Parameters
    ----------
    rankings : list of int arrays (nq, k_r)
        Positions, best first, ``-1`` for none.
    k : int
        Length of the fused lists.
    c : float, default 60

    Returns
    -------
    scores : float32 (nq, k); positions : int64 (nq, k)

    Examples
    --------
    >>> import numpy as np
    >>> s, p = reciprocal_rank_fusion([np.array([[0, 1, 2]]), np.array([[2, 1, 0]])], k=3)
    >>> p[0].tolist()  # 0 and 2: 1/61 + 1/63 each; 1: 2/62, a little less
    [0, 2, 1]
    """
    nq = _check_runs(rankings)
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    out_s = np.full((nq, k), -np.inf, np.float32)
    out_p = np.full((nq, k), -1, np.int64)
    for q in range(nq):
        acc: dict[int, float] = {}
        for w, ranking in zip(weights, rankings):
            for r, d in enumerate(np.asarray(ranking)[q]):
                if d >= 0:
                    acc[int(d)] = acc.get(int(d), 0.0) + w / (c + r + 1)
        _fill(out_s, out_p, q, acc, k)
    return out_s, out_p


def score_fusion(results, k: int = 100, *, weights=None):
    """Convex combination of min-max normalised scores per query (absent documents count as 0).

    Parameters
    ----------
    results : list of ``(scores, positions)`` pairs, arrays (nq, k_r)
    weights : list of float, default equal weights
    """
    nq = _check_runs([p for _, p in results])
    weights = [1.0 / len(results)] * len(results) if weights is None else list(weights)
    out_s = np.full((nq, k), -np.inf, np.float32)
    out_p = np.full((nq, k), -1, np.int64)
    for q in range(nq):
        acc: dict[int, float] = {}
        for w, (scores, pos) in zip(weights, results):
            s, p = np.asarray(scores)[q], np.asarray(pos)[q]
            ok = (p >= 0) & np.isfinite(s)
            if not ok.any():
                continue
            lo, hi = s[ok].min(), s[ok].max()
            norm = (s[ok] - lo) / (hi - lo) if hi > lo else np.ones(ok.sum())
            for d, v in zip(p[ok], norm):
                acc[int(d)] = acc.get(int(d), 0.0) + w * float(v)
        _fill(out_s, out_p, q, acc, k)
    return out_s, out_p


def _fill(out_s, out_p, q, acc, k):
    items = sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    for j, (d, v) in enumerate(items):
        out_s[q, j], out_p[q, j] = v, d
