"""Training pairs without labels for :class:`~hashlearn.apps.blocking.NeuralBlocker`.

Positives that look like real matches of the two tables (not perturbed copies of one record):

* :func:`mutual_nearest_pairs` -- records that are each other's nearest neighbour under the frozen model,
  with a margin over both records' second-best partner;
* :func:`code_token_pairs` -- records sharing a rare code-like token (a model or part number such as
  ``kdl-40v4100``: letters and digits), found in exactly one record of each table;

and hard negatives from the same blocks: :func:`hard_negatives` takes each anchor's nearest records of the
other table under the frozen model, skipping its mined partners. All vectors are unit rows; scores are
computed in blocks, never as one ``n_left x n_right`` matrix.

Pairs are ``(left position, right position)``; in deduplication (``right`` absent) both index one table
and ``i < j``.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

__all__ = ["mutual_nearest_pairs", "code_token_pairs", "hard_negatives", "split_pairs", "partner_ranks"]

_TOKEN = re.compile(r"[a-z0-9]+(?:[-/.][a-z0-9]+)*")
_HAS_DIGIT = re.compile(r"\d")
_HAS_ALPHA = re.compile(r"[a-z]")


def _top2_rows(XL: np.ndarray, XR: np.ndarray, dedup: bool, block: int):
    """Per row of ``XL``: best column, best score and second-best score; per column of ``XR``: the same
    over rows (blocked). Self pairs are excluded when ``dedup``."""
    nl, nr = XL.shape[0], XR.shape[0]
    r_best, r_val, r_2nd = np.full(nl, -1), np.full(nl, -np.inf), np.full(nl, -np.inf)
    c_best, c_val, c_2nd = np.full(nr, -1), np.full(nr, -np.inf), np.full(nr, -np.inf)
    for s in range(0, nl, block):
        rows = np.arange(s, min(s + block, nl))
        S = XL[rows] @ XR.T
        if dedup:
            S[np.arange(rows.size), rows] = -np.inf
        if nr >= 2:
            top = np.argpartition(-S, 1, axis=1)[:, :2]
            v = np.take_along_axis(S, top, axis=1)
            o = np.argsort(-v, axis=1)
            top, v = np.take_along_axis(top, o, axis=1), np.take_along_axis(v, o, axis=1)
            r_best[rows], r_val[rows], r_2nd[rows] = top[:, 0], v[:, 0], v[:, 1]
        else:
            r_best[rows], r_val[rows] = 0, S[:, 0]
        # columns: merge this block's top-2 with the running top-2
        if rows.size >= 2:
            ctop = np.argpartition(-S, 1, axis=0)[:2]
            cv = np.take_along_axis(S, ctop, axis=0)
            o = np.argsort(-cv, axis=0)
            ctop, cv = np.take_along_axis(ctop, o, axis=0), np.take_along_axis(cv, o, axis=0)
            b_idx, b_val, b_2nd = rows[ctop[0]], cv[0], cv[1]
        else:
            b_idx, b_val, b_2nd = np.full(nr, rows[0]), S[0], np.full(nr, -np.inf)
        better = b_val > c_val
        new_2nd = np.where(better, np.maximum(c_val, b_2nd), np.maximum(c_2nd, b_val))
        c_best = np.where(better, b_idx, c_best)
        c_val = np.where(better, b_val, c_val)
        c_2nd = new_2nd
    return r_best, r_val, r_2nd, c_best, c_2nd


def mutual_nearest_pairs(XL: np.ndarray, XR: np.ndarray | None = None, *, margin: float = 0.05,
                         block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)`` that are each other's nearest neighbour, with a margin.

    ``j`` is the most similar row of ``XR`` for ``XL[i]`` and ``i`` the most similar row of ``XL`` for
    ``XR[j]``, and ``s(i, j) - max(second best of i, second best of j) >= margin`` (inner products of
    unit rows, i.e. cosine).

    Parameters
    ----------
    XL : ndarray of shape (n_left, d), float32 (unit rows)
    XR : ndarray of shape (n_right, d), float32, optional
        ``None``: deduplication of ``XL`` (self pairs excluded; pairs returned with ``i < j``).
    margin : float, default 0.05

    Returns
    -------
    pairs : ndarray of shape (m, 2), int64
    margins : ndarray of shape (m,), float32
        ``s(i, j)`` minus the larger of the two second-best scores.
    """
    dedup = XR is None
    XR = XL if dedup else XR
    if XL.shape[0] == 0 or XR.shape[0] == 0 or (dedup and XL.shape[0] < 2):
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    r_best, r_val, r_2nd, c_best, c_2nd = _top2_rows(XL, XR, dedup, block)
    i = np.flatnonzero(r_best >= 0)
    j = r_best[i]
    mutual = c_best[j] == i
    i, j = i[mutual], j[mutual]
    m = r_val[i] - np.maximum(r_2nd[i], c_2nd[j])
    keep = m >= margin
    pairs = np.stack([i[keep], j[keep]], axis=1).astype(np.int64)
    m = m[keep].astype(np.float32)
    if dedup:
        pairs = np.sort(pairs, axis=1)
        pairs, first = np.unique(pairs, axis=0, return_index=True)
        m = m[first]
    return pairs, m


def _code_tokens(text: str) -> set:
    """Code-like tokens of a text: runs of letters/digits (joined across ``-``, ``/``, ``.``) that hold a
    digit and a letter (or are at least 5 digits long), at least 4 characters once the separators go."""
    out = set()
    for tok in _TOKEN.findall(text.lower()):
        t = re.sub(r"[-/.]", "", tok)
        if len(t) >= 4 and _HAS_DIGIT.search(t) and (_HAS_ALPHA.search(t) or len(t) >= 5):
            out.add(t)
    return out


def _singletons(texts: Sequence[str]) -> dict:
    """Code token -> the one position holding it (tokens held by several records are dropped)."""
    seen: dict = {}
    for i, t in enumerate(texts):
        for tok in _code_tokens(t):
            seen[tok] = -1 if tok in seen else i
    return {t: i for t, i in seen.items() if i >= 0}


def code_token_pairs(left_texts: Sequence[str], right_texts: Sequence[str] | None = None) -> np.ndarray:
    """Pairs of records sharing a code-like token found in exactly one record of each table.

    In deduplication (``right_texts`` None) a token found in exactly two records pairs them.

    Returns
    -------
    pairs : ndarray of shape (m, 2), int64
        Sorted and unique.
    """
    if right_texts is None:
        where: dict = {}
        for i, t in enumerate(left_texts):
            for tok in _code_tokens(t):
                where.setdefault(tok, []).append(i)
        pairs = [tuple(v) for v in where.values() if len(v) == 2]
    else:
        a, b = _singletons(left_texts), _singletons(right_texts)
        pairs = [(a[t], b[t]) for t in a.keys() & b.keys()]
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.array(pairs, dtype=np.int64), axis=0)


def hard_negatives(XA: np.ndarray, XB: np.ndarray, anchors: np.ndarray, exclude: np.ndarray, m: int, *,
                   dedup: bool = False) -> np.ndarray:
    """The ``m`` most similar rows of ``XB`` for each row ``XA[anchors[t]]``, skipping ``exclude``.

    Parameters
    ----------
    XA, XB : ndarray of shape (n_a, d), (n_b, d), float32 (unit rows)
    anchors : ndarray of shape (t,), int64
    exclude : ndarray of shape (e, 2), int64
        ``(t, row of XB)``: row ``t`` of the output (anchor ``anchors[t]``) never gets that negative
        (its mined partners).
    m : int
    dedup : bool
        ``XA`` and ``XB`` are one table: the anchor itself is skipped too.

    Returns
    -------
    negatives : ndarray of shape (t, m), int64
        Rows of ``XB``, most similar first; ``-1`` where fewer than ``m`` remain.
    """
    t = anchors.shape[0]
    out = np.full((t, m), -1, dtype=np.int64)
    if t == 0 or m == 0 or XB.shape[0] == 0:
        return out
    S = XA[anchors] @ XB.T
    if dedup:
        S[np.arange(t), anchors] = -np.inf
    pos = {}
    for a, b in exclude:
        pos.setdefault(int(a), []).append(int(b))
    for r in range(t):
        for b in pos.get(r, ()):
            S[r, b] = -np.inf
    kk = min(m, XB.shape[0])
    top = np.argpartition(-S, kk - 1, axis=1)[:, :kk] if kk < XB.shape[0] else np.tile(np.arange(kk), (t, 1))
    sc = np.take_along_axis(S, top, axis=1)
    o = np.argsort(-sc, axis=1, kind="stable")
    top, sc = np.take_along_axis(top, o, axis=1), np.take_along_axis(sc, o, axis=1)
    out[:, :kk] = np.where(np.isfinite(sc), top, -1)
    return out


def split_pairs(pairs: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held_out)``: a random ``fraction`` of the rows held out (rounded down)."""
    perm = rng.permutation(pairs.shape[0])
    n_out = int(fraction * pairs.shape[0])
    return pairs[np.sort(perm[n_out:])], pairs[np.sort(perm[:n_out])]


def partner_ranks(XQ: np.ndarray, XD: np.ndarray, q: np.ndarray, d: np.ndarray, *, dedup: bool = False,
                  block: int = 1024) -> np.ndarray:
    """1-based rank of ``XD[d[t]]`` among all rows of ``XD`` by similarity to ``XQ[q[t]]`` (ties count
    against the partner: rank = 1 + number of rows scoring at least as high, the partner excluded).

    Returns
    -------
    ranks : ndarray of shape (t,), int64
    """
    ranks = np.empty(q.shape[0], dtype=np.int64)
    for s in range(0, q.shape[0], block):
        qs, ds = q[s : s + block], d[s : s + block]
        S = XQ[qs] @ XD.T
        if dedup:
            S[np.arange(qs.size), qs] = -np.inf
        own = S[np.arange(qs.size), ds]
        ranks[s : s + block] = (S >= own[:, None]).sum(axis=1)  # includes the partner itself
    return ranks
