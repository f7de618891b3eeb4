"""Hashing and clustering for recommender systems (``hashlearn.recsys``).

* Data: :class:`Interactions` (events + catalogues), MovieLens readers :func:`load_movielens` (100K and
  1M layouts) and :func:`movielens_fold` (official u1..u5), :func:`leave_last_out`.
* ID compression, one interface ``fit(interactions)`` → rows per user and item: :class:`FullTable`,
  :class:`RandomHash`, :class:`DoubleHash`, :class:`GraphHash`, :class:`SemanticIDs`
  (:func:`make_compressor` by name).
* Models (torch, extra ``[deep]``, imported only when training): :class:`BPRMF` (two-tower BPR) and
  :class:`HistoryCTR` (embeddings + MLP over a pooled user history: SDIM, target attention, mean).
* Evaluation: :func:`ranking_metrics` (tie-aware recall@k, nDCG@k, AUC), :func:`cold_items`.

MovieLens is research-only data: hashlearn never ships it; every loader takes a path.
"""

from .ctr import POOLINGS, HistoryCTR
from .compress import BaseCompressor, DoubleHash, FullTable, RandomHash, compressor_names, make_compressor
from .evaluate import cold_items, ranking_metrics
from .graphhash import GraphHash, bipartite_communities
from .interactions import Interactions, Split, leave_last_out, temporal_split
from .mf import BPRMF
from .movielens import MovieLens, load_movielens, movielens_fold
from .rqkmeans import ResidualKMeans, collision_suffix
from .semantic import SemanticIDs, item_content_embeddings

__all__ = [
    "Interactions", "Split", "leave_last_out", "temporal_split",
    "MovieLens", "load_movielens", "movielens_fold",
    "BaseCompressor", "FullTable", "RandomHash", "DoubleHash", "GraphHash", "SemanticIDs",
    "make_compressor", "compressor_names", "bipartite_communities",
    "ResidualKMeans", "collision_suffix", "item_content_embeddings",
    "BPRMF", "HistoryCTR", "POOLINGS", "ranking_metrics", "cold_items",
]
