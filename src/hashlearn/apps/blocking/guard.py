"""A label-free guard for a fine-tuned blocker: keep the trained model only if it did not get worse.

The evidence is a set of *held-out* mined pairs (never trained on): mutual nearest neighbours of the
frozen model and records sharing a rare code token (:mod:`~hashlearn.apps.blocking.mining`), or held-out
labelled pairs in supervised mode. For each pair the partner's rank is computed under the frozen and
under the trained vectors, from the record of the smaller table (the side that gets ``k`` candidates).
The trained model is kept when, on these pairs,

* recall at ``k`` (partner within the ``k`` best) dropped by at most ``tolerance``, and
* the mean reciprocal rank dropped by at most ``mrr_tolerance``;

with fewer than ``min_pairs`` held-out pairs there is no evidence and the frozen model is kept. The
verdict, the figures behind it and a one-line reason are returned as a :class:`GuardReport`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .mining import partner_ranks

__all__ = ["GuardReport", "guard_check", "rank_summary"]


@dataclass
class GuardReport:
    """Verdict of :func:`guard_check`.

    Attributes
    ----------
    kept : bool
        True: the trained model is used; False: the blocker fell back to the frozen model.
    reason : str
        One line saying why, with the numbers.
    n_pairs : int
        Held-out pairs the verdict rests on.
    recall_frozen, recall_trained : float
        Fraction of held-out pairs whose partner is within the ``k`` best.
    mrr_frozen, mrr_trained : float
        Mean reciprocal rank of the partners.
    k : int
    """

    kept: bool
    reason: str
    n_pairs: int
    recall_frozen: float = float("nan")
    recall_trained: float = float("nan")
    mrr_frozen: float = float("nan")
    mrr_trained: float = float("nan")
    k: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def rank_summary(ranks: np.ndarray, k: int) -> tuple[float, float]:
    """``(recall at k, mean reciprocal rank)`` of 1-based ranks."""
    if ranks.size == 0:
        return float("nan"), float("nan")
    return float(np.mean(ranks <= k)), float(np.mean(1.0 / ranks))


def _ranks(ZL, ZR, pairs, dedup):
    """Ranks of held-out partners, queried from the smaller table (both directions in dedup)."""
    if dedup:
        a = partner_ranks(ZL, ZL, pairs[:, 0], pairs[:, 1], dedup=True)
        b = partner_ranks(ZL, ZL, pairs[:, 1], pairs[:, 0], dedup=True)
        return np.concatenate([a, b])
    if ZL.shape[0] <= ZR.shape[0]:
        return partner_ranks(ZL, ZR, pairs[:, 0], pairs[:, 1])
    return partner_ranks(ZR, ZL, pairs[:, 1], pairs[:, 0])


def guard_check(frozen: tuple, trained: tuple, held_out: np.ndarray, k: int, *, dedup: bool = False,
                tolerance: float = 0.01, mrr_tolerance: float = 0.02, min_pairs: int = 10) -> GuardReport:
    """Compare frozen and trained vectors on held-out pairs; see the module docstring.

    Parameters
    ----------
    frozen, trained : tuple of (ZL, ZR)
        Unit vectors ``(n_left, d)`` and ``(n_right, d)`` float32 of each model (``ZR`` ignored in dedup).
    held_out : ndarray of shape (m, 2), int64
        Pairs never used in training (positions in the vectors' rows).
    k : int
        Candidates per record of the blocker.
    tolerance, mrr_tolerance : float
        Largest drop in recall at ``k`` and in mean reciprocal rank still accepted.
    min_pairs : int
        Fewer held-out pairs: no evidence, the frozen model is kept.

    Returns
    -------
    GuardReport

    References
    ----------
    The held-out agreement criterion is this library's; mutual nearest neighbours as label-free
    evidence follow the pseudo-labelling of R. Wang et al., "Neural Locality Sensitive Hashing for
    Entity Blocking", SIAM SDM 2024.
    """
    n = int(held_out.shape[0])
    if n < min_pairs:
        return GuardReport(False, f"only {n} held-out pairs (< {min_pairs}): no evidence, frozen model kept", n, k=k)
    rf, mf = rank_summary(_ranks(*frozen, held_out, dedup), k)
    rt, mt = rank_summary(_ranks(*trained, held_out, dedup), k)
    ok_r = rt >= rf - tolerance
    ok_m = mt >= mf - mrr_tolerance
    figures = (f"recall@{k} {rf:.3f} -> {rt:.3f} (tolerance {tolerance}), MRR {mf:.3f} -> {mt:.3f} "
               f"(tolerance {mrr_tolerance}) on {n} held-out pairs")
    if ok_r and ok_m:
        return GuardReport(True, f"kept the trained model: {figures}", n, rf, rt, mf, mt, k)
    return GuardReport(False, f"fell back to the frozen model: {figures}", n, rf, rt, mf, mt, k)
