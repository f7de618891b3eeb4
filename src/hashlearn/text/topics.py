"""Topic retrieval from a few keywords, after Lbl2Vec.

:class:`TopicRetriever` turns each topic's keywords into a *label vector* and ranks the documents by
cosine to it. As in Lbl2Vec ("Lbl2Vec: An Embedding-based Approach for Unsupervised Document Retrieval
on Predefined Topics", Schopf, Braun, Matthes, 2022) the label vector starts as the mean of the
keyword embeddings and is then refined: the documents most similar to it (cosine >= ``min_similarity``,
at most ``n_neighbors``) are averaged, and the label vector becomes that centroid (optionally mixed with
the keyword vector, ``keyword_weight``), for ``n_iter`` rounds. The original uses Doc2Vec, jointly
trained word and document vectors; here any sentence embedder (e.g. MiniLM) embeds both keywords and
documents, which is the variant the Lbl2Vec authors later shipped as "Lbl2TransformerVec".

Documents are given as embeddings (n, d) — the ones a :class:`~hashlearn.text.index.TextIndex` or
``load_embeddings`` already holds — and keywords through a callable ``list[str] -> (n, d)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import NotFittedError, ValidationError
from ..hashing.base import check_vectors_array

__all__ = ["TopicRetriever"]


class TopicRetriever:
    """Lbl2Vec-style label vectors from keywords, refined by the centroid of their nearest documents.

    Parameters
    ----------
    embedder : callable ``list[str] -> (n, d)`` float
        Embeds the keywords (same model as the document embeddings).
    n_neighbors : int, default 20
        Documents averaged into the refined label vector.
    min_similarity : float, default -1.0
        Only documents at least this similar to the current label vector enter the centroid (the
        keyword vector alone is kept when none does).
    keyword_weight : float in [0, 1], default 0.0
        Share of the keyword vector kept in the refined label vector (0 = pure centroid, as Lbl2Vec).
    n_iter : int, default 1
        Refinement rounds; 0 = keyword vector only.
    keyword_mode : {"mean", "joined"}, default "mean"
        ``mean`` averages the embeddings of each keyword (Lbl2Vec); ``joined`` embeds the keywords
        as one string.

    Attributes
    ----------
    topic_names_ : list of str
    keyword_vectors_ : ndarray (n_topics, d) float32, unit rows
    label_vectors_ : ndarray (n_topics, d) float32, unit rows
    n_features_in_ : int

    References
    ----------
    Schopf, Braun, Matthes, "Lbl2Vec: An Embedding-based Approach for Unsupervised Document Retrieval
    on Predefined Topics", WEBIST 2021 / 2022.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> centers = np.eye(8, dtype=np.float32)
    >>> docs = np.repeat(centers[:2], 10, axis=0) + 0.3 * rng.standard_normal((20, 8)).astype(np.float32)
    >>> words = {"cats": centers[0] + 0.5 * centers[3], "dogs": centers[1] + 0.5 * centers[3]}
    >>> tr = TopicRetriever(lambda ws: np.stack([words[w] for w in ws]), n_neighbors=5)
    >>> tr = tr.fit(docs, {"c": ["cats"], "d": ["dogs"]})
    >>> tr.predict(docs).tolist() == [0] * 10 + [1] * 10
    True
    """

    def __init__(self, embedder, *, n_neighbors: int = 20, min_similarity: float = -1.0,
                 keyword_weight: float = 0.0, n_iter: int = 1, keyword_mode: str = "mean"):
        self.embedder = embedder
        self.n_neighbors = n_neighbors
        self.min_similarity = min_similarity
        self.keyword_weight = keyword_weight
        self.n_iter = n_iter
        self.keyword_mode = keyword_mode

    def _check_params(self):
        if not callable(self.embedder):
            raise ValidationError("embedder must be a callable list[str] -> (n, d) array")
        if not isinstance(self.n_neighbors, numbers.Integral) or self.n_neighbors < 1:
            raise ValidationError(f"n_neighbors must be a positive integer, got {self.n_neighbors!r}")
        if not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 0:
            raise ValidationError(f"n_iter must be a non-negative integer, got {self.n_iter!r}")
        if not 0.0 <= float(self.keyword_weight) <= 1.0:
            raise ValidationError(f"keyword_weight must be in [0, 1], got {self.keyword_weight!r}")
        if self.keyword_mode not in ("mean", "joined"):
            raise ValidationError(f"keyword_mode must be 'mean' or 'joined', got {self.keyword_mode!r}")

    def _keyword_vectors(self, topics: dict, d: int) -> np.ndarray:
        names = list(topics)
        lists = []
        for name in names:
            kws = topics[name]
            if isinstance(kws, str):
                kws = [kws]
            kws = [k.strip() for k in kws if isinstance(k, str) and k.strip()]
            if not kws:
                raise ValidationError(f"topic {name!r} has no keyword")
            lists.append(kws)
        texts = [" ".join(k) for k in lists] if self.keyword_mode == "joined" else [w for k in lists for w in k]
        E = np.asarray(self.embedder(texts), dtype=np.float32)
        if E.ndim != 2 or E.shape != (len(texts), d):
            raise ValidationError(f"embedder returned shape {E.shape} for {len(texts)} keywords; expected "
                                  f"({len(texts)}, {d}) to match the documents")
        if not np.isfinite(E).all():
            raise ValidationError("embedder returned NaN or infinite values for the keywords")
        E = _unit(E)
        if self.keyword_mode == "joined":
            return E
        out, pos = np.empty((len(lists), d), np.float32), 0
        for t, k in enumerate(lists):
            out[t] = E[pos:pos + len(k)].mean(axis=0)
            pos += len(k)
        return _unit(out)

    def fit(self, doc_embeddings, topics: dict):
        """Build the label vectors.

        Parameters
        ----------
        doc_embeddings : array (n_docs, d) float
        topics : dict ``{topic name: list of keywords}`` (a single str counts as one keyword)

        Returns
        -------
        self
        """
        self._check_params()
        D = _unit(check_vectors_array(doc_embeddings, name="doc_embeddings"))
        if not isinstance(topics, dict) or not topics:
            raise ValidationError("topics must be a non-empty dict {name: [keywords]}")
        K = self._keyword_vectors(topics, D.shape[1])
        L = K.copy()
        k = min(int(self.n_neighbors), D.shape[0])
        w = float(self.keyword_weight)
        for _ in range(int(self.n_iter)):
            S = L @ D.T
            top = np.argpartition(-S, k - 1, axis=1)[:, :k]
            new = np.empty_like(L)
            for t in range(L.shape[0]):
                rows = top[t][S[t, top[t]] >= float(self.min_similarity)]
                new[t] = D[rows].mean(axis=0) if len(rows) else K[t]
            L = _unit(w * K + (1 - w) * _unit(new))
        self.topic_names_ = [str(n) for n in topics]
        self.keyword_vectors_ = K
        self.label_vectors_ = L
        self.n_features_in_ = int(D.shape[1])
        return self

    def _check_fitted(self):
        if not hasattr(self, "label_vectors_"):
            raise NotFittedError("this TopicRetriever is not fitted yet: call fit(doc_embeddings, topics) first")

    def scores(self, doc_embeddings) -> np.ndarray:
        """Cosine of each document to each label vector, float32 (n_docs, n_topics)."""
        self._check_fitted()
        D = _unit(check_vectors_array(doc_embeddings, name="doc_embeddings", n_features=self.n_features_in_))
        return D @ self.label_vectors_.T

    def predict(self, doc_embeddings) -> np.ndarray:
        """The most similar topic of each document, int64 (n_docs,)."""
        return np.argmax(self.scores(doc_embeddings), axis=1).astype(np.int64)

    def retrieve(self, doc_embeddings, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)`` (n_topics, k) float32 / int64: each topic's top-``k`` documents, best first."""
        S = self.scores(doc_embeddings).T
        if not isinstance(k, numbers.Integral) or k < 1:
            raise ValidationError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), S.shape[1])
        top = np.argsort(-S, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(S, top, axis=1), top.astype(np.int64)


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
