"""Candidate pairs as int64 arrays: chunking, de-duplication and the expansion of key groups into pairs.

A pair is ``(left position, right position)``; in deduplication both index one table and ``i < j``.
"""

from __future__ import annotations

import numbers
from typing import Iterator

import numpy as np

from ...errors import ValidationError

__all__ = ["chunks", "unique_pairs", "group_pairs", "normalize_dedup", "check_int"]

_CHUNK = 1 << 18  # candidate pairs per yielded chunk


def check_int(name: str, value, lo: int = 1) -> int:
    """``value`` as an int ``>= lo``; a :class:`ValidationError` naming ``name`` otherwise (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValidationError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def chunks(pairs: np.ndarray, size: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive slices of ``size`` rows (default: the module's chunk size)."""
    size = _CHUNK if size is None else size
    for s in range(0, pairs.shape[0], size):
        yield pairs[s : s + size]


def unique_pairs(pairs: np.ndarray, n_right: int) -> np.ndarray:
    """The distinct rows of ``pairs``, sorted."""
    if pairs.shape[0] == 0:
        return pairs.reshape(0, 2).astype(np.int64)
    codes = np.unique(pairs[:, 0].astype(np.int64) * n_right + pairs[:, 1])
    return np.stack([codes // n_right, codes % n_right], axis=1)


def normalize_dedup(pairs: np.ndarray) -> np.ndarray:
    """Deduplication pairs as ``i < j`` (each row sorted), self pairs dropped."""
    pairs = np.sort(pairs, axis=1)
    return pairs[pairs[:, 0] != pairs[:, 1]]


def _expand_groups(ol, orr, ls, rs, na, nb) -> np.ndarray:
    """Every (left, right) pair of the groups whose members are ``ol[ls:ls+na]`` and ``orr[rs:rs+nb]``."""
    cnt = na * nb
    g = np.repeat(np.arange(cnt.shape[0]), cnt)
    w = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    nbg = nb[g]
    a = ol[ls[g] + w // nbg]
    b = orr[rs[g] + w % nbg]
    return np.stack([a, b], axis=1).astype(np.int64)


def group_pairs(gl: np.ndarray, gr: np.ndarray, dedup: bool) -> Iterator[np.ndarray]:
    """All pairs (i, j) with ``gl[i] == gr[j] >= 0`` (``i < j`` when ``dedup``), in chunks.

    Groups are expanded by sorting; a group of ``a`` left and ``b`` right records gives ``a b`` pairs
    (``a (a-1)/2`` for dedup). Chunks hold whole groups, about ``_CHUNK`` pairs each.
    """
    il = np.flatnonzero(gl >= 0)
    ir = np.flatnonzero(gr >= 0)
    ol = il[np.argsort(gl[il], kind="stable")]
    orr = ir[np.argsort(gr[ir], kind="stable")]
    kl, kr = gl[ol], gr[orr]
    ukeys = np.intersect1d(kl, kr)
    if ukeys.size == 0:
        return
    ls, le = np.searchsorted(kl, ukeys, "left"), np.searchsorted(kl, ukeys, "right")
    rs, re_ = np.searchsorted(kr, ukeys, "left"), np.searchsorted(kr, ukeys, "right")
    na, nb = le - ls, re_ - rs
    cs = np.cumsum(na * nb)
    start = 0
    while start < ukeys.size:
        base = int(cs[start - 1]) if start else 0
        stop = max(int(np.searchsorted(cs, base + _CHUNK, "right")), start + 1)
        sl = slice(start, stop)
        start = stop
        p = _expand_groups(ol, orr, ls[sl], rs[sl], na[sl], nb[sl])
        if dedup:
            p = p[p[:, 0] < p[:, 1]]
        if p.shape[0]:
            yield p
