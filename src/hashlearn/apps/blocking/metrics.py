"""Quality of candidate pairs against true links: pair completeness, reduction ratio, pairs quality."""

from __future__ import annotations

import numpy as np

from .pairs import normalize_dedup

__all__ = ["blocking_metrics"]


def blocking_metrics(pairs: np.ndarray, truth: np.ndarray, n_left: int, n_right: int | None = None) -> dict:
    """Pair completeness, reduction ratio and pairs quality of candidate pairs.

    Parameters
    ----------
    pairs : ndarray of shape (m, 2), int
        Candidates (positions); duplicates are counted once. For deduplication (``n_right=None``) the
        order within a pair does not matter.
    truth : ndarray of shape (t, 2), int
        True links, positions.
    n_left, n_right : int
        Table sizes; ``n_right=None`` for deduplication (``n_left (n_left - 1) / 2`` possible pairs).

    Returns
    -------
    dict with ``pair_completeness`` (true links found / true links; 1.0 when there are none),
    ``reduction_ratio`` (1 - candidates / possible pairs), ``pairs_quality`` (true links found /
    candidates; 0.0 when there are no candidates), ``n_candidates``, ``n_true_links``, ``n_found``.

    References
    ----------
    P. Christen, "A Survey of Indexing Techniques for Scalable Record Linkage and Deduplication",
    IEEE TKDE 2012 (pairs completeness, reduction ratio, pairs quality).

    Examples
    --------
    >>> m = blocking_metrics(np.array([[0, 0], [1, 2]]), np.array([[0, 0], [1, 1]]), 3, 3)
    >>> m["pair_completeness"], round(m["reduction_ratio"], 4), m["pairs_quality"]
    (0.5, 0.7778, 0.5)
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.int64).reshape(-1, 2)
    dedup = n_right is None
    nr = n_left if dedup else int(n_right)
    if dedup:
        pairs = normalize_dedup(pairs)
        truth = normalize_dedup(truth)
        total = n_left * (n_left - 1) // 2
    else:
        total = int(n_left) * nr
    pc = np.unique(pairs[:, 0] * nr + pairs[:, 1])
    tc = np.unique(truth[:, 0] * nr + truth[:, 1])
    found = int(np.isin(tc, pc, assume_unique=True).sum())
    return {
        "pair_completeness": found / tc.size if tc.size else 1.0,
        "reduction_ratio": 1.0 - pc.size / total if total else 1.0,
        "pairs_quality": found / pc.size if pc.size else 0.0,
        "n_candidates": int(pc.size),
        "n_true_links": int(tc.size),
        "n_found": found,
    }
