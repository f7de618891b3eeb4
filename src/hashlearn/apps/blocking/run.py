"""A blocking run: candidates of a blocker with their sources, timed, scored against true links."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .base import Blocker
from .metrics import blocking_metrics
from .records import RecordTable

__all__ = ["BlockingRun", "run_blocking"]


def _peak_rss_mib() -> float:
    import resource
    import sys

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


@dataclass(repr=False)
class BlockingRun:
    """Result of :func:`run_blocking`: candidates, the blocker of each, timings and metrics."""

    pairs: np.ndarray
    sources: np.ndarray
    seconds: float
    metrics: dict
    n_left: int
    n_right: int | None
    skipped: dict

    @property
    def candidates_per_second(self) -> float:
        return self.pairs.shape[0] / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict:
        """JSON-able summary: metrics (when truth was given), ``n_candidates``, ``seconds``, etc."""
        out = {"n_candidates": int(self.pairs.shape[0]), "seconds": self.seconds,
               "candidates_per_second": self.candidates_per_second, "peak_rss_mib": _peak_rss_mib(),
               "n_left": self.n_left, "n_right": self.n_right, "skipped": self.skipped}
        labels, counts = np.unique(self.sources, return_counts=True)
        out["pairs_by_blocker"] = {str(a): int(b) for a, b in zip(labels, counts)}
        out.update(self.metrics)
        return out


def _skipped(left: RecordTable, right: RecordTable | None) -> dict:
    skipped = {"empty_left": left.n_empty, "missing_cells_left": dict(left.n_missing)}
    if right is not None:
        skipped.update({"empty_right": right.n_empty, "missing_cells_right": dict(right.n_missing)})
    return skipped


def run_blocking(blocker: Blocker, left: RecordTable, right: RecordTable | None = None, *,
                 truth: np.ndarray | None = None, on_chunk: Callable | None = None) -> BlockingRun:
    """Run a blocker, timing it and scoring against ``truth``; ``on_chunk(pairs, label)`` sees each chunk
    (to stream them to a file) before it is kept.

    Returns
    -------
    BlockingRun
    """
    t0 = time.perf_counter()
    chunks, labels = [], []
    for chunk, label in blocker.iter_labelled(left, right):
        if on_chunk is not None:
            on_chunk(chunk, label)
        chunks.append(chunk)
        labels.append(np.full(chunk.shape[0], label, dtype=object))
    seconds = time.perf_counter() - t0
    pairs = np.concatenate(chunks) if chunks else np.empty((0, 2), dtype=np.int64)
    sources = np.concatenate(labels) if labels else np.empty(0, dtype=object)
    nl, nr = len(left), (None if right is None else len(right))
    metrics = blocking_metrics(pairs, truth, nl, nr) if truth is not None else {}
    return BlockingRun(pairs, sources, seconds, metrics, nl, nr, _skipped(left, right))
