"""Multi-vector retrieval over token embeddings: MaxSim, CRISP pruning, and CUR search (ANNCUR).

* :func:`encode_tokens` — the token outputs of a sentence-transformers model before pooling (for
  all-MiniLM-L6-v2: 384-d, up to 256 word pieces, [CLS] and [SEP] included), unit-normalised per
  token, stored flat with offsets (:class:`TokenVectors`).
* :func:`maxsim_scores` — late interaction (ColBERT): ``score(q, d) = sum over query tokens of the
  largest dot product with any document token``, computed by BLAS over blocks of documents.
* :class:`CRISP` — replace each document's token vectors by the centroids of a per-document k-means
  (a fixed number, or a fraction of its length), which prunes the index and, per the paper, removes
  noise.
* :class:`CURSearch` — retrieval for a scorer that does not factor into two embeddings: anchor queries
  × all items are scored offline; a new query is scored exactly on a few anchor items, its scores on
  every item are approximated by the CUR factorisation, and the remaining budget of exact calls goes
  to the best approximated items.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import ValidationError
from ..hashing.base import check_random_state

__all__ = ["TokenVectors", "encode_tokens", "maxsim_scores", "CRISP", "CURSearch"]

_BLOCK_PAIRS = 1 << 25  # document tokens × query tokens per BLAS block (128 MB of float32)


@dataclass
class TokenVectors:
    """Token vectors of many texts: ``vectors[offsets[i]:offsets[i+1]]`` belong to text i."""

    vectors: np.ndarray  # (n_tokens, d) float16 or float32
    offsets: np.ndarray  # (n_texts + 1,) int64

    def __post_init__(self):
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.vectors.ndim != 2 or self.offsets.ndim != 1 or self.offsets[0] != 0 or self.offsets[-1] != self.vectors.shape[0]:
            raise ValidationError("TokenVectors: offsets must start at 0 and end at the number of vectors")
        if np.any(np.diff(self.offsets) < 1):
            raise ValidationError("TokenVectors: every text needs at least one vector")

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, rows) -> "TokenVectors":
        rows = np.asarray(rows, dtype=np.int64)
        parts = [self.vectors[self.offsets[r] : self.offsets[r + 1]] for r in rows]
        return TokenVectors(np.concatenate(parts), np.concatenate([[0], np.cumsum([p.shape[0] for p in parts])]))

    def save(self, path) -> None:
        np.savez(path, vectors=self.vectors, offsets=self.offsets)

    @classmethod
    def load(cls, path) -> "TokenVectors":
        with np.load(path) as f:
            return cls(f["vectors"], f["offsets"])


def encode_tokens(texts, *, model=None, batch_size: int = 32, dtype=np.float16, show_progress: bool = False) -> TokenVectors:
    """Unit-normalised token embeddings of ``texts`` (sentence-transformers ``output_value="token_embeddings"``).

    Parameters
    ----------
    texts : list of str
    model : a sentence-transformers model, or None for all-MiniLM-L6-v2 (hashlearn's default embedder)
    dtype : storage dtype of the vectors (float16 halves the memory; scores are computed in float32)
    """
    if model is None:
        from ..embed import DEFAULT_MODEL, _load_sentence_transformer

        model = _load_sentence_transformer(DEFAULT_MODEL, "cpu", show_progress=show_progress)
    texts = [str(t) for t in texts]
    if not texts:
        raise ValidationError("encode_tokens needs at least one text")
    out = model.encode(texts, output_value="token_embeddings", batch_size=batch_size, show_progress_bar=show_progress,
                       convert_to_numpy=False)
    parts = []
    for t in out:
        v = t.detach().float().cpu().numpy()
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        parts.append(v.astype(dtype))
    lengths = [p.shape[0] for p in parts]
    return TokenVectors(np.concatenate(parts), np.concatenate([[0], np.cumsum(lengths)]))


def maxsim_scores(queries: TokenVectors, docs: TokenVectors, *, doc_rows=None) -> np.ndarray:
    """Late-interaction scores: float32 (n_queries, n_docs) (or (n_queries, len(doc_rows)))."""
    Qv = np.ascontiguousarray(queries.vectors, dtype=np.float32)
    if Qv.shape[1] != docs.vectors.shape[1]:
        raise ValidationError(f"query tokens have {Qv.shape[1]} dimensions, document tokens {docs.vectors.shape[1]}")
    if doc_rows is not None:
        docs = docs.subset(doc_rows)
    n_docs = len(docs)
    out = np.empty((len(queries), n_docs), np.float32)
    q_starts = queries.offsets[:-1]
    per_block = max(1, _BLOCK_PAIRS // max(1, Qv.shape[0]))
    s = 0
    while s < n_docs:
        # as many whole documents as fit the token budget
        e = int(np.searchsorted(docs.offsets, docs.offsets[s] + per_block, side="right")) - 1
        e = min(max(e, s + 1), n_docs)
        lo, hi = docs.offsets[s], docs.offsets[e]
        S = np.asarray(docs.vectors[lo:hi], dtype=np.float32) @ Qv.T  # (doc tokens, query tokens)
        best = np.maximum.reduceat(S, docs.offsets[s:e] - lo, axis=0)  # (docs, query tokens)
        out[:, s:e] = np.add.reduceat(best, q_starts, axis=1).T
        s = e
    return out


def _small_kmeans(V: np.ndarray, k: int, rng: np.random.Generator, n_iter: int = 10) -> np.ndarray:
    """k-means of a few hundred vectors (k-means++ seeding, Lloyd); centroids re-normalised."""
    n = V.shape[0]
    if k >= n:
        return V.copy()
    centers = [V[int(rng.integers(n))]]
    d2 = ((V - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centers.append(V[int(rng.choice(n, p=p))])
        d2 = np.minimum(d2, ((V - centers[-1]) ** 2).sum(1))
    C = np.array(centers)
    for _ in range(n_iter):
        labels = np.argmax(V @ C.T - 0.5 * (C * C).sum(1)[None, :], axis=1)
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(C)
        np.add.at(sums, labels, V)
        used = counts > 0
        C[used] = sums[used] / counts[used, None]
    C /= np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    return C


class CRISP:
    """Prune a document's token vectors to the centroids of a per-document k-means.

    Parameters
    ----------
    n_clusters : int, optional
        Fixed number of vectors kept per document (documents with fewer tokens keep theirs).
    fraction : float, optional
        Or: keep ``ceil(fraction * length)`` vectors per document. Exactly one of the two.
    n_iter : int, default 10
    random_state : int, Generator or None

    References
    ----------
    "CRISP: Clustering Multi-Vector Representations for Denoising and Pruning", 2025.
    """

    def __init__(self, n_clusters: int | None = None, *, fraction: float | None = None, n_iter: int = 10,
                 random_state=None):
        self.n_clusters = n_clusters
        self.fraction = fraction
        self.n_iter = n_iter
        self.random_state = random_state

    def _k(self, length: int) -> int:
        if self.n_clusters is not None:
            return min(int(self.n_clusters), length)
        return max(1, min(length, int(np.ceil(float(self.fraction) * length))))

    def transform(self, docs: TokenVectors) -> TokenVectors:
        """Pruned token vectors (float32), one block per document, same order."""
        if (self.n_clusters is None) == (self.fraction is None):
            raise ValidationError("CRISP needs exactly one of n_clusters and fraction")
        if self.n_clusters is not None and (not isinstance(self.n_clusters, numbers.Integral) or self.n_clusters < 1):
            raise ValidationError(f"n_clusters must be a positive integer, got {self.n_clusters!r}")
        if self.fraction is not None and not 0 < float(self.fraction) <= 1:
            raise ValidationError(f"fraction must lie in (0, 1], got {self.fraction!r}")
        rng = check_random_state(self.random_state)
        parts = []
        for i in range(len(docs)):
            V = np.asarray(docs.vectors[docs.offsets[i] : docs.offsets[i + 1]], dtype=np.float32)
            parts.append(_small_kmeans(V, self._k(V.shape[0]), rng, int(self.n_iter)))
        return TokenVectors(np.concatenate(parts), np.concatenate([[0], np.cumsum([p.shape[0] for p in parts])]))


class CURSearch:
    """ANNCUR: k-NN search for an expensive scorer with a budget of exact calls per query.

    Parameters
    ----------
    n_anchor_items : int
        Items scored exactly for every new query (part of the budget).
    rank : int, optional
        Truncate the pseudo-inverse of the anchor block to this rank (default: full).
    random_state : int, Generator or None — draws the anchor items

    ``fit(anchor_scores)`` takes the exact scores of the anchor queries on every item
    ``(n_anchor_queries, n_items)`` (computed offline). ``search(score_fn, k, budget)`` calls
    ``score_fn(item_rows) -> scores`` for one query, at most ``budget`` items in total.

    References
    ----------
    Yadav, Monath, Zaheer, Fergus, McCallum, "Efficient Nearest Neighbor Search for Cross-Encoder
    Models using Matrix Factorization", EMNLP 2022.
    """

    def __init__(self, n_anchor_items: int = 100, *, rank: int | None = None, random_state=None):
        self.n_anchor_items = n_anchor_items
        self.rank = rank
        self.random_state = random_state

    def fit(self, anchor_scores) -> "CURSearch":
        R = np.asarray(anchor_scores, dtype=np.float64)
        if R.ndim != 2 or not np.isfinite(R).all():
            raise ValidationError("anchor_scores must be a finite 2-D array (anchor queries, items)")
        n_items = R.shape[1]
        k = int(self.n_anchor_items)
        if not 1 <= k < n_items:
            raise ValidationError(f"n_anchor_items must lie in [1, {n_items - 1}], got {k}")
        rng = check_random_state(self.random_state)
        self.anchor_items_ = np.sort(rng.choice(n_items, size=k, replace=False))
        C = R[:, self.anchor_items_]  # (anchor queries, anchor items)
        U, s, Vt = np.linalg.svd(C, full_matrices=False)
        r = s.shape[0] if self.rank is None else min(int(self.rank), s.shape[0])
        keep = s[:r] > s[0] * 1e-10
        pinv = (Vt[:r][keep].T / s[:r][keep]) @ U[:, :r][:, keep].T  # (anchor items, anchor queries)
        self.projection_ = (pinv @ R).astype(np.float32)  # (anchor items, items): approx = s_anchor @ projection_
        self.n_items_ = n_items
        return self

    def approximate(self, anchor_item_scores) -> np.ndarray:
        """Approximate scores on every item from the exact scores on the anchor items: (n_items,)."""
        return np.asarray(anchor_item_scores, dtype=np.float32) @ self.projection_

    def search(self, score_fn, k: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items by exact score among at most ``budget`` exactly scored items.

        Returns (scores float32 (k,), items int64 (k,)), best first.
        """
        a = self.anchor_items_
        if budget < a.shape[0] or k > budget:
            raise ValidationError(f"budget ({budget}) must cover the {a.shape[0]} anchor items and k ({k})")
        exact_a = np.asarray(score_fn(a), dtype=np.float32)
        approx = self.approximate(exact_a)
        approx[a] = -np.inf
        extra = budget - a.shape[0]
        picked = np.argpartition(-approx, extra - 1)[:extra] if extra > 0 else np.zeros(0, np.int64)
        exact_p = np.asarray(score_fn(picked), dtype=np.float32) if extra > 0 else np.zeros(0, np.float32)
        items = np.concatenate([a, picked])
        scores = np.concatenate([exact_a, exact_p])
        order = np.lexsort((items, -scores))[:k]
        return scores[order], items[order].astype(np.int64)
