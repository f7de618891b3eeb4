"""Hamming distances, top-k and radius search over packed codes.

All functions take packed uint64 codes (see :mod:`hashlearn.codes.bits`) and validate them once.
Ranking rule, everywhere: ascending Hamming distance, ties broken by the smaller database position
(or the smaller id when ``tie_ids`` is given), so results equal a stable sort and are deterministic.
Work is parallel over blocks of queries; ``n_threads`` caps the threads for one call.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..errors import ValidationError
from .bits import check_codes

__all__ = ["hamming_distances", "knn_search", "range_search", "candidate_distances", "thread_limit", "MISSING_DISTANCE"]

MISSING_DISTANCE = np.int32(2**31 - 1)
"""Distance reported in padded result slots (with id -1) when fewer than k results exist."""


@contextlib.contextmanager
def thread_limit(n_threads: int | None):
    """Limit numba's worker threads inside the block (None: leave as is)."""
    import numba

    if n_threads is None:
        yield
        return
    n_threads = int(n_threads)
    if n_threads < 1:
        raise ValidationError(f"n_threads must be >= 1, got {n_threads}")
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _query_block(nq: int) -> int:
    import numba

    # Enough blocks to keep every thread busy, large enough to amortise streaming the database.
    return int(max(1, min(32, -(-nq // max(1, numba.get_num_threads())))))


def _check_pair(q, db, n_bits):
    if n_bits is None:
        q = np.asarray(q)
        db = np.asarray(db)
        if db.ndim != 2 or db.dtype != np.uint64:
            raise ValidationError(f"database codes must be a 2-D uint64 array, got {db.dtype} with shape {db.shape}")
        n_bits = 64 * db.shape[1]
    return check_codes(q, n_bits, "query codes"), check_codes(db, n_bits, "database codes")


def hamming_distances(q, db, *, n_bits: int | None = None, n_threads: int | None = None) -> np.ndarray:
    """All query × database Hamming distances.

    Parameters
    ----------
    q : uint64 array (nq, W); db : uint64 array (n, W)
    n_bits : int, optional — code length, to validate padding (default 64 * W)

    Returns
    -------
    ndarray (nq, n) int32
    """
    from . import _kernels

    q, db = _check_pair(q, db, n_bits)
    with thread_limit(n_threads):
        return _kernels.distance_kernel(q, db, _query_block(q.shape[0]))


def knn_search(q, db, k: int, *, n_bits: int | None = None, tie_ids=None, n_threads: int | None = None):
    """The ``k`` nearest database codes of each query in Hamming distance (exact, streamed).

    Memory stays O(nq * k + threads * tile) whatever the database size.

    Parameters
    ----------
    q : uint64 array (nq, W); db : uint64 array (n, W); k : int >= 1
    tie_ids : int64 array (n,), optional
        Break distance ties by the smaller ``tie_ids`` value instead of the smaller position.

    Returns
    -------
    D : ndarray (nq, k) int32 — distances, ascending; ``MISSING_DISTANCE`` where fewer than k exist
    I : ndarray (nq, k) int64 — database positions; -1 where fewer than k exist
    """
    from . import _kernels

    q, db = _check_pair(q, db, n_bits)
    k = int(k)
    if k < 1:
        raise ValidationError(f"k must be >= 1, got {k}")
    if tie_ids is None:
        keys, use_keys = np.empty(0, np.int64), False
    else:
        keys = np.ascontiguousarray(tie_ids, dtype=np.int64)
        if keys.shape != (db.shape[0],):
            raise ValidationError(f"tie_ids must have shape ({db.shape[0]},), got {keys.shape}")
        use_keys = True
    with thread_limit(n_threads):
        return _kernels.knn_kernel(q, db, k, keys, use_keys, _query_block(q.shape[0]))


def range_search(q, db, radius: int, *, n_bits: int | None = None, n_threads: int | None = None):
    """All database codes within Hamming distance ``radius`` (inclusive) of each query.

    Returns
    -------
    lims : ndarray (nq + 1,) int64 — results of query i are entries ``lims[i]:lims[i+1]``
    D : ndarray (lims[-1],) int32 — distances
    I : ndarray (lims[-1],) int64 — database positions, ascending within each query
    """
    from . import _kernels

    q, db = _check_pair(q, db, n_bits)
    radius = int(radius)
    if radius < 0:
        raise ValidationError(f"radius must be >= 0, got {radius}")
    with thread_limit(n_threads):
        qb = _query_block(q.shape[0])
        counts = _kernels.range_count_kernel(q, db, radius, qb)
        lims = np.zeros(q.shape[0] + 1, np.int64)
        np.cumsum(counts, out=lims[1:])
        out_d = np.empty(lims[-1], np.int32)
        out_i = np.empty(lims[-1], np.int64)
        _kernels.range_fill_kernel(q, db, radius, lims, qb, out_d, out_i)
    return lims, out_d, out_i


def candidate_distances(q, db, lims, positions, *, n_bits: int | None = None) -> np.ndarray:
    """Hamming distance of query i to database rows ``positions[lims[i]:lims[i+1]]`` (int32)."""
    from . import _kernels

    q, db = _check_pair(q, db, n_bits)
    lims = np.ascontiguousarray(lims, dtype=np.int64)
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    if lims.shape != (q.shape[0] + 1,) or lims[-1] != positions.shape[0]:
        raise ValidationError("lims must have nq + 1 entries ending at len(positions)")
    if positions.size and (positions.min() < 0 or positions.max() >= db.shape[0]):
        raise ValidationError("candidate positions out of range of the database")
    return _kernels.gather_distance_kernel(q, db, lims, positions)
