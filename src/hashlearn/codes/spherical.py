"""Spherical Hamming distance between packed codes, for the codes of Spherical Hashing.

Heo et al. (CVPR 2012) rank binary codes produced by hyperspheres with

    d_SHD(a, b) = |a XOR b| / |a AND b|

(the number of differing bits over the number of common 1 bits: two points inside many common balls
are close, however many balls they disagree on). The ratio is undefined when the codes share no 1
bit; here it is then defined as

    d_SHD(a, b) = n_bits + |a XOR b|        when |a AND b| = 0,

a finite value larger than every ratio (a ratio is at most ``n_bits - 1``), so codes with no common
bit rank after all codes with one, and among themselves by Hamming distance (two all-zero codes are
the closest such pair). The ordering does not depend on which ``n_bits`` is passed, as long as it is
at least the true code length; only the values of that group do.

Ranking rule, as in :mod:`hashlearn.codes.search`: ascending distance, ties by the smaller database
position. Distances are computed in float64, which orders the ratios exactly (for codes shorter than
2**25 bits two different ratios never round to the same float64, and equal ratios give equal
floats), so ties are true ties.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import ValidationError
from ._kernels import popcount64
from .bits import check_codes
from .search import thread_limit

__all__ = ["spherical_hamming_distances", "spherical_knn_search", "SPHERICAL_MISSING_DISTANCE"]

SPHERICAL_MISSING_DISTANCE = np.float32(np.inf)
"""Distance reported by :func:`spherical_knn_search` in padded slots (id -1) when fewer than k exist."""

_TILE = 1024


@njit(cache=True, boundscheck=False, inline="always")
def _shd(qrow, drow, W, n_bits):
    x = 0
    a = 0
    for w in range(W):
        u = qrow[w]
        v = drow[w]
        x += popcount64(u ^ v)
        a += popcount64(u & v)
    if a > 0:
        return np.float64(x) / np.float64(a)
    return np.float64(n_bits + x)


@njit(cache=True, parallel=True, boundscheck=False)
def _shd_matrix_kernel(q, db, n_bits, qblock):
    nq, W = q.shape
    n = db.shape[0]
    out = np.empty((nq, n), np.float64)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        q1 = min(nq, q0 + qblock)
        for s in range(0, n, _TILE):
            e = min(n, s + _TILE)
            for i in range(q0, q1):
                qrow = q[i]
                for j in range(s, e):
                    out[i, j] = _shd(qrow, db[j], W, n_bits)
    return out


@njit(cache=True, boundscheck=False)
def _sift_down(hd, hi, p, size):
    """Restore the max-heap order (by (distance, position)) below slot p."""
    while True:
        c = 2 * p + 1
        if c >= size:
            return
        r = c + 1
        if r < size and (hd[r] > hd[c] or (hd[r] == hd[c] and hi[r] > hi[c])):
            c = r
        if hd[c] > hd[p] or (hd[c] == hd[p] and hi[c] > hi[p]):
            td = hd[p]
            ti = hi[p]
            hd[p] = hd[c]
            hi[p] = hi[c]
            hd[c] = td
            hi[c] = ti
            p = c
        else:
            return


@njit(cache=True, parallel=True, boundscheck=False)
def _shd_knn_kernel(q, db, k, n_bits, qblock):
    """Top-k by (spherical distance, position): a bounded max-heap per query, then a heap sort."""
    nq, W = q.shape
    n = db.shape[0]
    out_d = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    n_blocks = (nq + qblock - 1) // qblock
    for b in prange(n_blocks):
        q0 = b * qblock
        m = min(nq, q0 + qblock) - q0
        hd = np.full((m, k), np.inf, np.float64)
        hi = np.full((m, k), np.iinfo(np.int64).max, np.int64)
        for s in range(0, n, _TILE):
            e = min(n, s + _TILE)
            for qi in range(m):
                qrow = q[q0 + qi]
                hdq = hd[qi]
                hiq = hi[qi]
                for j in range(s, e):
                    d = _shd(qrow, db[j], W, n_bits)
                    # positions grow during the scan, so (d, j) beats the root iff d is smaller
                    # (or the root is still an empty slot, which carries the largest position)
                    if d < hdq[0] or (d == hdq[0] and j < hiq[0]):
                        hdq[0] = d
                        hiq[0] = j
                        _sift_down(hdq, hiq, 0, k)
        for qi in range(m):
            hdq = hd[qi]
            hiq = hi[qi]
            for size in range(k - 1, 0, -1):  # heap sort: ascending (distance, position)
                td = hdq[0]
                ti = hiq[0]
                hdq[0] = hdq[size]
                hiq[0] = hiq[size]
                hdq[size] = td
                hiq[size] = ti
                _sift_down(hdq, hiq, 0, size)
            for c in range(k):
                if hiq[c] == np.iinfo(np.int64).max:
                    out_d[q0 + qi, c] = np.inf
                    out_i[q0 + qi, c] = -1
                else:
                    out_d[q0 + qi, c] = np.float32(hdq[c])
                    out_i[q0 + qi, c] = hiq[c]
    return out_d, out_i


def _check_pair(q, db, n_bits):
    if n_bits is None:
        db = np.asarray(db)
        if db.ndim != 2 or db.dtype != np.uint64:
            raise ValidationError(f"database codes must be a 2-D uint64 array, got {db.dtype} with shape {db.shape}")
        n_bits = 64 * db.shape[1]
    n_bits = int(n_bits)
    if n_bits < 1:
        raise ValidationError(f"n_bits must be a positive integer, got {n_bits}")
    return check_codes(q, n_bits, "query codes"), check_codes(db, n_bits, "database codes"), n_bits


def _query_block(nq: int) -> int:
    import numba

    return int(max(1, min(32, -(-nq // max(1, numba.get_num_threads())))))


def spherical_hamming_distances(q, db, n_bits: int | None = None, *, n_threads: int | None = None) -> np.ndarray:
    """All query × database spherical Hamming distances ``|a XOR b| / |a AND b|``.

    Parameters
    ----------
    q : uint64 array (nq, W)
        Packed query codes (see :mod:`hashlearn.codes.bits`).
    db : uint64 array (n, W)
        Packed database codes.
    n_bits : int, optional
        Code length, used to validate the padding bits and as the offset of the no-common-bit case
        (default ``64 * W``).
    n_threads : int, optional
        Cap on the worker threads of this call.

    Returns
    -------
    ndarray (nq, n) float64
        ``|a XOR b| / |a AND b|``, or ``n_bits + |a XOR b|`` when the codes share no 1 bit (see the
        module docstring). Rank with a stable sort (ties by the smaller database position), e.g.
        :func:`hashlearn.metrics.hamming_ranking`.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.codes import pack
    >>> a = pack(np.array([[1, 1, 0, 0]]))
    >>> b = pack(np.array([[1, 0, 1, 0], [0, 0, 1, 1]]))
    >>> spherical_hamming_distances(a, b, 4)
    array([[2., 8.]])
    """
    q, db, n_bits = _check_pair(q, db, n_bits)
    with thread_limit(n_threads):
        return _shd_matrix_kernel(q, db, n_bits, _query_block(q.shape[0]))


def spherical_knn_search(q, db, k: int, *, n_bits: int | None = None, n_threads: int | None = None):
    """The ``k`` nearest database codes of each query in spherical Hamming distance (exact, streamed).

    Memory stays O(nq * k) beyond the inputs whatever the database size; the cost is
    O(n + accepted * log k) per query.

    Parameters
    ----------
    q : uint64 array (nq, W); db : uint64 array (n, W); k : int >= 1
    n_bits : int, optional
        Code length (default ``64 * W``), see :func:`spherical_hamming_distances`.
    n_threads : int, optional
        Cap on the worker threads of this call.

    Returns
    -------
    D : ndarray (nq, k) float32
        Distances, ascending (ties: smaller position first); ``inf`` where fewer than k exist.
    I : ndarray (nq, k) int64
        Database positions; -1 where fewer than k exist.
    """
    q, db, n_bits = _check_pair(q, db, n_bits)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 1:
        raise ValidationError(f"k must be a positive integer, got {k!r}")
    with thread_limit(n_threads):
        return _shd_knn_kernel(q, db, int(k), n_bits, _query_block(q.shape[0]))
