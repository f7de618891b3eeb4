"""Keyphrase extraction and keyphrase expansion of documents.

* :func:`candidate_phrases` — n-gram candidates (1..3 words, no stop word at either end, no digits-only
  token), pre-ranked by TF-IDF against the corpus so that only the ``n_candidates`` most promising
  phrases of a document are embedded;
* :class:`KeyphraseExtractor` — embedding-ranked keyphrases with Maximal Marginal Relevance, after
  KeyBERT (Grootendorst, 2020) and MMR (Carbonell & Goldstein, "The Use of MMR, Diversity-Based
  Reranking for Reordering Documents and Producing Summaries", SIGIR 1998);
* :func:`expand_documents` — appends a document's keyphrases to its text (``repeat`` times), the
  document-side expansion of ERU-KG ("ERU-KG: Efficient Reference-aligned Unsupervised Keyphrase
  Generation", 2025) for a lexical (BM25) index.

The embedder is any callable ``list[str] -> (n, d) float`` (e.g. :class:`hashlearn.embed.Embedder`'s
``encode``); nothing here imports torch.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import ValidationError

__all__ = ["candidate_phrases", "KeyphraseExtractor", "expand_documents"]

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9]|[A-Za-z]")


def _stopwords() -> frozenset:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text or "")]


def _ngrams(text: str, max_words: int, stop: frozenset) -> list[str]:
    """n-grams of 1..max_words consecutive words not crossing punctuation, stop words not at either end."""
    out = []
    for chunk in re.split(r"[.,;:!?()\[\]\"]", text or ""):
        toks = _tokens(chunk)
        for i in range(len(toks)):
            if toks[i] in stop or len(toks[i]) < 2:
                continue
            for n in range(1, max_words + 1):
                j = i + n
                if j > len(toks):
                    break
                if toks[j - 1] in stop or len(toks[j - 1]) < 2:
                    continue
                out.append(" ".join(toks[i:j]))
    return out


def candidate_phrases(texts, *, max_words: int = 3, n_candidates: int = 20, df_texts=None) -> list[list[str]]:
    """The ``n_candidates`` best n-gram candidates of each text by TF-IDF over ``texts``.

    Parameters
    ----------
    texts : list of str
    max_words : int, default 3
        Longest candidate (words).
    n_candidates : int, default 20
    df_texts : list of str, optional
        Texts the document frequencies come from (default: ``texts``); e.g. the corpus when the
        ``texts`` are a few short queries.

    Returns
    -------
    list (len(texts)) of lists of str, best first; an empty text yields an empty list.
    """
    texts = _check_texts(texts)
    if max_words < 1 or n_candidates < 1:
        raise ValidationError(f"max_words and n_candidates must be >= 1, got {max_words}, {n_candidates}")
    stop = _stopwords()
    grams = [_ngrams(t, max_words, stop) for t in texts]
    ref = grams if df_texts is None else [_ngrams(t, max_words, stop) for t in _check_texts(df_texts)]
    df: dict[str, int] = {}
    for g in ref:
        for p in set(g):
            df[p] = df.get(p, 0) + 1
    n = len(ref)
    out = []
    for g in grams:
        tf: dict[str, int] = {}
        for p in g:
            tf[p] = tf.get(p, 0) + 1
        # tf-idf, with a mild preference for multi-word phrases (they carry more specific meaning)
        scored = sorted(tf, key=lambda p: (-(tf[p] * np.log((1 + n) / (1 + df.get(p, 0))) * (1 + 0.25 * p.count(" "))), p))
        out.append(scored[:n_candidates])
    return out


class KeyphraseExtractor:
    """Embedding-ranked keyphrases with Maximal Marginal Relevance (KeyBERT-style).

    A candidate's relevance is the cosine between its embedding and the document's; MMR then picks
    ``top_n`` phrases greedily maximising ``(1 - diversity) * relevance - diversity * max cosine to the
    phrases already picked``.

    Parameters
    ----------
    embedder : callable ``list[str] -> (n, d)`` float
        Embeds documents and phrases (same model for both).
    top_n : int, default 5
    diversity : float in [0, 1], default 0.5
        0 = pure relevance ranking; 1 = pure novelty.
    max_words : int, default 3
    n_candidates : int, default 20
        TF-IDF pre-selected candidates per document that get embedded.

    References
    ----------
    Grootendorst, "KeyBERT: Minimal keyword extraction with BERT", 2020. Carbonell & Goldstein, "The
    Use of MMR, Diversity-Based Reranking for Reordering Documents and Producing Summaries", SIGIR 1998.
    Also the extraction step of "ERU-KG: Efficient Reference-aligned Unsupervised Keyphrase Generation"
    (2025).

    Examples
    --------
    >>> import numpy as np
    >>> vocab = {}
    >>> def emb(texts):  # bag of words hashed into 64 dims
    ...     out = np.zeros((len(texts), 64), np.float32)
    ...     for i, t in enumerate(texts):
    ...         for w in t.lower().split():
    ...             out[i, vocab.setdefault(w, len(vocab)) % 64] += 1
    ...     return out
    >>> kx = KeyphraseExtractor(emb, top_n=2)
    >>> phrases = kx.extract(["protein folding in yeast cells. protein folding matters."])
    >>> "protein folding" in phrases[0]
    True
    """

    def __init__(self, embedder, *, top_n: int = 5, diversity: float = 0.5, max_words: int = 3,
                 n_candidates: int = 20):
        self.embedder = embedder
        self.top_n = top_n
        self.diversity = diversity
        self.max_words = max_words
        self.n_candidates = n_candidates

    def _check(self):
        if not callable(self.embedder):
            raise ValidationError("embedder must be a callable list[str] -> (n, d) array")
        if not isinstance(self.top_n, (int, np.integer)) or self.top_n < 1:
            raise ValidationError(f"top_n must be a positive integer, got {self.top_n!r}")
        if not 0.0 <= float(self.diversity) <= 1.0:
            raise ValidationError(f"diversity must be in [0, 1], got {self.diversity!r}")

    def _embed(self, texts, what):
        if not texts:
            return np.zeros((0, 1), np.float32)
        E = np.asarray(self.embedder(list(texts)), dtype=np.float32)
        if E.ndim != 2 or E.shape[0] != len(texts):
            raise ValidationError(f"embedder returned shape {E.shape} for {len(texts)} {what}")
        if not np.isfinite(E).all():
            raise ValidationError(f"embedder returned NaN or infinite values for the {what}")
        norms = np.linalg.norm(E, axis=1, keepdims=True)
        return E / np.maximum(norms, 1e-12)

    def extract(self, texts, doc_embeddings=None) -> list[list[str]]:
        """Keyphrases of each text, best first.

        Parameters
        ----------
        texts : list of str
        doc_embeddings : array (len(texts), d), optional
            Precomputed document embeddings from the same model (saves embedding the documents).

        Returns
        -------
        list (len(texts)) of lists of at most ``top_n`` str; empty texts get an empty list.
        """
        self._check()
        texts = _check_texts(texts)
        cands = candidate_phrases(texts, max_words=self.max_words, n_candidates=self.n_candidates)
        if doc_embeddings is None:
            D = self._embed(texts, "documents")
        else:
            D = np.asarray(doc_embeddings, dtype=np.float32)
            if D.ndim != 2 or D.shape[0] != len(texts):
                raise ValidationError(f"doc_embeddings must have shape ({len(texts)}, d), got {D.shape}")
            D = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)
        unique = sorted({p for c in cands for p in c})
        E = self._embed(unique, "candidate phrases")
        if len(unique) and E.shape[1] != D.shape[1]:
            raise ValidationError(f"phrase embeddings have {E.shape[1]} dims but documents {D.shape[1]}")
        row = {p: i for i, p in enumerate(unique)}
        lam = float(self.diversity)
        out = []
        for i, c in enumerate(cands):
            if not c:
                out.append([])
                continue
            C = E[[row[p] for p in c]]
            rel = C @ D[i]
            sim = C @ C.T
            picked = [int(np.argmax(rel))]
            left = set(range(len(c))) - set(picked)
            while left and len(picked) < self.top_n:
                idx = np.fromiter(left, dtype=np.int64)
                score = (1 - lam) * rel[idx] - lam * sim[np.ix_(idx, picked)].max(axis=1)
                best = int(idx[int(np.argmax(score))])
                picked.append(best)
                left.discard(best)
            out.append([c[j] for j in picked])
        return out


def expand_documents(texts, keyphrases, *, repeat: int = 1) -> list[str]:
    """Each text with its keyphrases appended (``repeat`` times): keyphrase expansion for BM25.

    Parameters
    ----------
    texts : list of str
    keyphrases : list (len(texts)) of lists of str
    repeat : int, default 1

    Returns
    -------
    list of str
    """
    texts = _check_texts(texts)
    if len(keyphrases) != len(texts):
        raise ValidationError(f"got {len(keyphrases)} keyphrase lists for {len(texts)} texts")
    if not isinstance(repeat, (int, np.integer)) or repeat < 0:
        raise ValidationError(f"repeat must be a non-negative integer, got {repeat!r}")
    out = []
    for t, kp in zip(texts, keyphrases):
        extra = " ; ".join(kp)
        out.append(t if not extra or repeat == 0 else t + " ; " + " ; ".join([extra] * repeat))
    return out


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ValidationError("give a list of texts, not a single str")
    texts = list(texts)
    if not texts:
        raise ValidationError("no texts given")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValidationError(f"text {i} is {type(t).__name__}, not str")
    return texts
