"""Nearest-neighbour blocking over frozen sentence embeddings, and what the embedding blockers share:
embedding the records' texts and pairing each record with its ``k`` best partners of the other table."""

from __future__ import annotations

import numpy as np

from .base import Blocker
from .pairs import check_int, chunks, normalize_dedup
from .records import RecordTable

__all__ = ["EmbeddingBlocker"]


def _default_embedder():
    from ...embed import Embedder

    return Embedder(show_progress=False)


class _EmbeddingMixin:
    """Shared: embed the records' texts (rows of empty records are left at zero and never paired)."""

    def _embedder(self):
        return self.embedder if self.embedder is not None else _default_embedder()

    def _embed(self, table: RecordTable) -> tuple[np.ndarray, np.ndarray]:
        texts = table.texts(self.fields)
        ok = np.array([bool(t) for t in texts])
        X = np.zeros((len(texts), 0), dtype=np.float32)
        idx = np.flatnonzero(ok)
        if idx.size:
            V = np.asarray(self._embedder().encode([texts[i] for i in idx]), dtype=np.float32)
            X = np.zeros((len(texts), V.shape[1]), dtype=np.float32)
            X[idx] = V
        return X, ok

    def _embed_both(self, left: RecordTable, right: RecordTable | None):
        """``(XL, okL, XR, okR)``; the right side is the left one in deduplication."""
        XL, okL = self._embed(left)
        XR, okR = (XL, okL) if right is None else self._embed(right)
        return XL, okL, XR, okR


def _unit_rows(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _top_k_rows(S: np.ndarray, kk: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and scores of the ``k`` best of the ``kk`` largest entries of each row, best first."""
    if kk < S.shape[1]:
        top = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
    else:
        top = np.tile(np.arange(S.shape[1]), (S.shape[0], 1))
    sc = np.take_along_axis(S, top, axis=1)
    o = np.argsort(-sc, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(top, o, axis=1), np.take_along_axis(sc, o, axis=1)


def _knn_cosine_pairs(Q: np.ndarray, D: np.ndarray, k: int, q_ok: np.ndarray, d_ok: np.ndarray,
                      exclude_self: bool = False, block: int = 1024) -> np.ndarray:
    """(i, j) for the ``k`` most cosine-similar rows ``D[j]`` of each valid ``Q[i]`` (exact, blocked)."""
    Qn, Dn = _unit_rows(Q), _unit_rows(D)
    valid_d = np.flatnonzero(d_ok)
    Dv = Dn[valid_d]
    kk = min(k + int(exclude_self), valid_d.size)
    if kk == 0:
        return np.empty((0, 2), dtype=np.int64)
    out = []
    for s in range(0, Q.shape[0], block):
        rows = np.arange(s, min(s + block, Q.shape[0]))
        rows = rows[q_ok[rows]]
        if rows.size == 0:
            continue
        S = Qn[rows] @ Dv.T
        if exclude_self:
            pos = np.searchsorted(valid_d, rows)
            hit = (pos < valid_d.size) & (valid_d[np.minimum(pos, valid_d.size - 1)] == rows)
            S[np.flatnonzero(hit), pos[hit]] = -np.inf
        top, sc = _top_k_rows(S, kk, k)
        keep = np.isfinite(sc).ravel()
        out.append(np.stack([np.repeat(rows, top.shape[1])[keep], valid_d[top.ravel()[keep]]], axis=1))
    return np.concatenate(out).astype(np.int64) if out else np.empty((0, 2), dtype=np.int64)


def _knn_both_ways(L, R, okL: np.ndarray, okR: np.ndarray, k: int, dedup: bool, scorer=_knn_cosine_pairs):
    """k candidates per record of the smaller table (linkage) or per record (dedup).

    ``L`` and ``R`` are whatever ``scorer(Q, D, k, q_ok, d_ok, exclude_self=False)`` takes for the query
    and database side (embedding matrices for the exact search); ``okL`` / ``okR`` mark the non-empty
    records.
    """
    if dedup:
        return normalize_dedup(scorer(L, L, k, okL, okL, exclude_self=True))
    if okL.shape[0] <= okR.shape[0]:
        return scorer(L, R, k, okL, okR)
    p = scorer(R, L, k, okR, okL)
    return p[:, ::-1].copy()


class EmbeddingBlocker(_EmbeddingMixin, Blocker):
    """Nearest-neighbour blocking over frozen sentence embeddings (default all-MiniLM-L6-v2).

    Each record of the smaller table (every record, in deduplication) is paired with its ``k`` most
    cosine-similar records of the other table, found exactly (blocked matrix products), so a run gives
    at most ``k × min(n_left, n_right)`` candidates.

    Parameters
    ----------
    k : int, default 10
    embedder : object with ``encode(list[str]) -> (n, d)``, optional
        Default: :class:`hashlearn.embed.Embedder` (all-MiniLM-L6-v2, offline).
    fields : list of str, optional
        Fields to embed (default: all prepared fields).

    References
    ----------
    N. Reimers and I. Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks", 2019;
    S. Thirumuruganathan et al., "Deep Learning for Blocking in Entity Matching: A Design Space
    Exploration", VLDB 2021.
    """

    name = "embedding"

    def __init__(self, k=10, *, embedder=None, fields=None):
        self.k = k
        self.embedder = embedder
        self.fields = fields

    def _candidates(self, left, right):
        k = check_int("k", self.k)
        XL, okL, XR, okR = self._embed_both(left, right)
        yield from chunks(_knn_both_ways(XL, XR, okL, okR, k, right is None))
