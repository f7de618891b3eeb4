"""Text retrieval on compact codes: embeddings → binary codes → rescoring, BM25, hybrids, sparse index.

Public API (heavy dependencies — torch, sentence-transformers, bm25s, numba kernels — load on first use):

* :func:`load_beir`, :func:`iter_corpus`, :func:`read_corpus` — BEIR data with bad input counted or refused;
* :class:`TextIndex`, :class:`SignCodes`, :func:`parse_codes`, :func:`make_encoder` — codes + search +
  rescoring (none / asym / float / int8);
* :class:`BPRHasher` — learned binary codes (ranking loss, straight-through sign; supervised or
  self-supervised with pseudo-queries);
* :class:`BM25`, :func:`reciprocal_rank_fusion`, :func:`score_fusion`;
* :class:`SeismicIndex`, :class:`InvertedIndex`, :func:`exhaustive_search`, :func:`term_vectors`;
* :func:`beir_metrics`, :func:`beir_eval` — BEIR's nDCG@k / Recall@k and the whole evaluation;
* :class:`TopicRetriever` — documents for a topic given by a few keywords (Lbl2Vec-style);
* :class:`KeyphraseExtractor`, :func:`candidate_phrases`, :func:`expand_documents` — keyphrase expansion.

CLI: ``hashlearn text index | search | eval`` (see :mod:`hashlearn.cli.text`).
"""

from .beir import BeirData, Corpus, Document, ReadReport, iter_corpus, load_beir, read_corpus, read_qrels, read_queries
from .bpr import BPRHasher
from .evaluation import beir_eval
from .index import RESCORE_MODES, SignCodes, TextIndex, make_encoder, parse_codes
from .lexical import BM25, reciprocal_rank_fusion, score_fusion
from .metrics import beir_metrics
from .pipeline import load_embeddings, make_pseudo_queries
from .sparse import InvertedIndex, SeismicIndex, exhaustive_search, term_vectors
from .keyphrases import KeyphraseExtractor, candidate_phrases, expand_documents
from .topics import TopicRetriever

__all__ = [
    "BeirData", "Corpus", "Document", "ReadReport", "iter_corpus", "load_beir", "read_corpus", "read_qrels",
    "read_queries", "BPRHasher", "beir_eval", "RESCORE_MODES", "SignCodes", "TextIndex", "make_encoder",
    "parse_codes", "BM25", "reciprocal_rank_fusion", "score_fusion", "beir_metrics", "load_embeddings",
    "make_pseudo_queries", "InvertedIndex", "SeismicIndex", "exhaustive_search", "term_vectors",
    "TopicRetriever", "KeyphraseExtractor", "candidate_phrases", "expand_documents",
]
