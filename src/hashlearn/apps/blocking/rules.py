"""Classic key-based blocking: standard blocking (equal keys) and the sorted neighbourhood method."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import ValidationError
from .base import Blocker
from .pairs import check_int, group_pairs, normalize_dedup
from .records import RecordTable

__all__ = ["StandardBlocker", "SortedNeighbourhoodBlocker"]


def _key_codes(left: RecordTable, right: RecordTable | None, on, transform=None):
    """Integer codes of the blocking key (joined values of ``on``); -1 for an empty key.

    Codes are the ranks of the sorted distinct keys of both tables.
    """
    on = [on] if isinstance(on, str) else list(on)

    def keys(t):
        return [transform(v) if (transform and v) else v for v in t.texts(on)]

    kl = keys(left)
    kr = kl if right is None else keys(right)
    allk = np.array(kl + ([] if right is None else kr), dtype=object)
    uniq, inv = np.unique(allk.astype(str), return_inverse=True)
    empty = np.flatnonzero(uniq == "")
    inv = inv.astype(np.int64)
    if empty.size:
        inv[inv == empty[0]] = -1
    gl = inv[: len(kl)]
    gr = gl if right is None else inv[len(kl):]
    return gl, gr, uniq


class StandardBlocker(Blocker):
    """Standard blocking: pair the records whose blocking key is exactly equal.

    Parameters
    ----------
    on : str or list of str, optional
        Field(s) forming the key (values joined by spaces); default: the first prepared field.
    key : callable, optional
        Applied to each non-empty key string (e.g. ``lambda s: s[:3]`` for a prefix, a phonetic code).

    Records with an empty key are never paired.

    References
    ----------
    I. P. Fellegi and A. B. Sunter, "A Theory for Record Linkage", JASA 1969; P. Christen, "A Survey of
    Indexing Techniques for Scalable Record Linkage and Deduplication", IEEE TKDE 2012.
    """

    name = "standard"

    def __init__(self, on=None, *, key: Callable | None = None):
        self.on = on
        self.key = key

    def _candidates(self, left, right):
        on = self.on if self.on is not None else left.fields[:1]
        gl, gr, _ = _key_codes(left, right, on, self.key)
        yield from group_pairs(gl, gr, dedup=right is None)


class SortedNeighbourhoodBlocker(Blocker):
    """Sorted neighbourhood: sort the distinct keys; pair records whose key ranks differ by at most
    ``window // 2`` (the semantics of ``recordlinkage.index.SortedNeighbourhood``).

    Parameters
    ----------
    on : str or list of str, optional
        Sorting key field(s); default: the first prepared field.
    window : int, default 3
        Odd window size over the sorted distinct keys of both tables.

    References
    ----------
    M. A. Hernández and S. J. Stolfo, "The Merge/Purge Problem for Large Databases", SIGMOD 1995.
    """

    name = "sortedneighbourhood"

    def __init__(self, on=None, *, window: int = 3):
        self.on = on
        self.window = window

    def _candidates(self, left, right):
        w = check_int("window", self.window)
        if w % 2 == 0:
            raise ValidationError(f"window must be odd, got {w}")
        on = self.on if self.on is not None else left.fields[:1]
        gl, gr, _ = _key_codes(left, right, on)  # codes are ranks of the sorted distinct keys
        dedup = right is None
        # dedup is symmetric: offsets > 0 and the i < j half of offset 0 cover every pair
        for off in range(0 if dedup else -(w // 2), w // 2 + 1):
            shifted = np.where(gl >= 0, gl + off, -1)
            if dedup and off > 0:
                for ch in group_pairs(shifted, gr, dedup=False):
                    yield normalize_dedup(ch)
            else:
                yield from group_pairs(shifted, gr, dedup=dedup)
