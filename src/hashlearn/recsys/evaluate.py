"""Top-k evaluation of a recommender: recall@k, nDCG@k and AUC over the whole catalogue, tie-aware.

Compressed tables give many items *identical* scores (all items of one hash bucket), so a ranking metric
that breaks ties by item order would reward or punish a method by accident. Here every metric is its
expectation under a uniformly random order within tied scores: an item whose score is beaten by ``g``
candidates and tied with ``e - 1`` others sits at each rank ``g .. g + e - 1`` with probability ``1/e``.
By linearity the expected recall and DCG are then exact.

Candidates for a user are the catalogue items not in its training events. When the relevant set is
restricted (e.g. to cold items), the user's other test items are removed from the candidates instead of
counting as wrong answers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ValidationError
from .interactions import Interactions

__all__ = ["ranking_metrics", "cold_items"]


def cold_items(train: Interactions, max_count: int = 5) -> np.ndarray:
    """Boolean mask (n_items,) of catalogue items with at most ``max_count`` training events."""
    return train.item_counts() <= int(max_count)


def _expected_gains(g: np.ndarray, e: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """P(rank < k) and E[1/log2(rank + 2); rank < k] for ranks uniform on [g, g + e)."""
    ranks = np.arange(k)
    disc = 1.0 / np.log2(ranks + 2.0)
    lo = np.minimum(g, k)
    hi = np.minimum(g + e, k)
    hit = (hi - lo) / e
    cum = np.r_[0.0, np.cumsum(disc)]
    dcg = (cum[hi] - cum[lo]) / e
    return hit, dcg


def _user_metrics(s: np.ndarray, rel: np.ndarray, cand: np.ndarray, k: int):
    """recall, ndcg, auc for one user: scores s (n_items,), relevant item positions, candidate mask."""
    cs = s[cand]
    rs = s[rel][:, None]
    greater = (cs[None, :] > rs).sum(1)
    equal = (cs[None, :] == rs).sum(1)  # includes the item itself
    hit, dcg = _expected_gains(greater, equal, k)
    n_rel = rel.size
    idcg = (1.0 / np.log2(np.arange(min(n_rel, k)) + 2.0)).sum()
    # AUC of each relevant item against the non-relevant candidates (ties count one half)
    relset = np.zeros(s.size, bool)
    relset[rel] = True
    neg = s[cand & ~relset]
    if neg.size == 0:
        auc = np.nan
    else:
        neg_sorted = np.sort(neg)
        below = np.searchsorted(neg_sorted, s[rel], side="left")
        tied = np.searchsorted(neg_sorted, s[rel], side="right") - below
        auc = float(np.mean((below + 0.5 * tied) / neg.size))
    return hit.sum() / n_rel, dcg.sum() / idcg, auc


def _group(users: np.ndarray, items: np.ndarray, n_users: int) -> list[np.ndarray]:
    """Items of each user position (a list of n_users arrays)."""
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    it = items[order]
    return [it[bounds[u]:bounds[u + 1]] for u in range(n_users)]


def ranking_metrics(score_fn: Callable[[np.ndarray], np.ndarray], train: Interactions, test: Interactions,
                    *, k: int = 20, items=None, batch_size: int = 256) -> dict:
    """Mean recall@k, nDCG@k and AUC over the test users.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(user_ids)`` → float array (len(user_ids), n_items) of scores of every catalogue
        item (``train.item_ids`` order), e.g. :meth:`BPRMF.score_all <hashlearn.recsys.mf.BPRMF.score_all>`.
    train, test : Interactions
        Same catalogues. Training items are excluded from each user's candidates.
    k : int, default 20
    items : bool array (n_items,), optional
        Restrict the relevant items to this set (e.g. :func:`cold_items`); users without a relevant
        test item are skipped.
    batch_size : int

    Returns
    -------
    dict with ``recall``, ``ndcg``, ``auc`` (means over users), ``n_users`` and ``n_positives`` (the
    relevant test events evaluated).
    """
    if not (np.array_equal(train.item_ids, test.item_ids) and np.array_equal(train.user_ids, test.user_ids)):
        raise ValidationError("train and test must share their user and item catalogues")
    n_items = train.n_items
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_items:
        raise ValidationError(f"k must be an integer in [1, {n_items}], got {k!r}")
    mask = None if items is None else np.asarray(items, dtype=bool)
    if mask is not None and mask.shape != (n_items,):
        raise ValidationError(f"items must be a boolean mask of shape ({n_items},), got {mask.shape}")
    tr_u, tr_i = train.user_index(), train.item_index()
    te_u, te_i = test.user_index(), test.item_index()
    seen, held = _group(tr_u, tr_i, train.n_users), _group(te_u, te_i, train.n_users)
    users = np.unique(te_u)
    results = []
    for start in range(0, users.size, batch_size):
        block = users[start:start + batch_size]
        S = np.asarray(score_fn(train.user_ids[block]), dtype=np.float64)
        if S.shape != (block.size, n_items):
            raise ValidationError(f"score_fn returned shape {S.shape}, expected ({block.size}, {n_items})")
        for r, u in enumerate(block):
            pos = np.unique(held[u])
            cand = np.ones(n_items, bool)
            cand[seen[u]] = False
            pos = pos[cand[pos]]
            if mask is not None:
                cand[pos[~mask[pos]]] = False
                pos = pos[mask[pos]]
            if pos.size == 0:
                continue
            results.append((*_user_metrics(S[r], pos, cand, k), pos.size))
    if not results:
        return {"recall": float("nan"), "ndcg": float("nan"), "auc": float("nan"), "n_users": 0, "n_positives": 0}
    arr = np.asarray(results, dtype=np.float64)
    return {"recall": float(arr[:, 0].mean()), "ndcg": float(arr[:, 1].mean()),
            "auc": float(np.nanmean(arr[:, 2])), "n_users": int(arr.shape[0]), "n_positives": int(arr[:, 3].sum())}
