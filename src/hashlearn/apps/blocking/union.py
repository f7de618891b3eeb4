"""The union of several blockers, each pair credited to the first blocker that proposed it."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...errors import ValidationError
from .base import Blocker

__all__ = ["UnionBlocker"]


class UnionBlocker(Blocker):
    """The union of several blockers' candidates; each pair is credited to the first blocker (in order)
    that proposed it (:attr:`last_sources_` after a run: pairs per blocker).

    Parameters
    ----------
    blockers : list of Blocker

    References
    ----------
    P. Christen, "A Survey of Indexing Techniques for Scalable Record Linkage and Deduplication",
    IEEE TKDE 2012 (several blocking keys, candidates united).
    """

    name = "union"

    def __init__(self, blockers):
        self.blockers = blockers

    def iter_labelled(self, left, right=None) -> Iterator[tuple[np.ndarray, str]]:
        """``(pairs, blocker name)`` chunks, no pair twice across blockers."""
        if not self.blockers:
            raise ValidationError("a union needs at least one blocker")
        n_right = len(left if right is None else right)
        seen = np.empty(0, dtype=np.int64)
        self.last_sources_ = {}
        for b in self.blockers:
            label = getattr(b, "name", type(b).__name__)
            self.last_sources_.setdefault(label, 0)
            for chunk in b.iter_candidates(left, right):
                codes = chunk[:, 0] * n_right + chunk[:, 1]
                codes = codes[~np.isin(codes, seen)]
                if codes.size == 0:
                    continue
                seen = np.union1d(seen, codes)
                self.last_sources_[label] += int(codes.size)
                yield np.stack([codes // n_right, codes % n_right], axis=1), label

    def _candidates(self, left, right):
        for chunk, _ in self.iter_labelled(left, right):
            yield chunk
