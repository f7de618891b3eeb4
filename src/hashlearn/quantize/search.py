"""ADC and SDC scans over quantizer codes: top-k, full distance matrices and range search.

A scan scores every code with look-up tables: the distance of query ``q`` to code ``c`` is
``bias[c] + sum_m tables[q, m, c[m]]`` (``bias`` optional). Asymmetric distance computation (ADC)
uses tables built from the float query (:meth:`distance_tables` of a quantizer); symmetric
distance computation (SDC) uses tables built from the query's own code (:meth:`sdc_tables`).
Jégou, Douze & Schmid, "Product quantization for nearest neighbor search", IEEE TPAMI 2011.

Conventions are those of :func:`hashlearn.codes.knn_search`: results ``(D, I)`` of shape ``(nq, k)``,
ascending distance, ties broken by the smaller code position (or the smaller ``tie_ids`` value),
``I = -1`` and ``D = inf`` where fewer than ``k`` codes exist. Work is parallel over blocks of queries;
``n_threads`` caps the threads of one call.
"""

from __future__ import annotations

import numpy as np

from ..codes.search import _query_block, thread_limit
from ..errors import ValidationError

__all__ = ["adc_search", "adc_distances", "adc_range_search", "sdc_search", "sdc_lookup", "MISSING_DISTANCE"]

MISSING_DISTANCE = np.float32(np.inf)
"""Distance reported in padded result slots (with id -1) when fewer than k results exist."""


def _check_tables(tables) -> np.ndarray:
    t = np.asarray(tables)
    if t.ndim != 3 or t.dtype.kind != "f":
        raise ValidationError(f"tables must be a 3-D float array (nq, M, ksub), got {t.dtype} with shape {t.shape}")
    if t.shape[2] < 1 or t.shape[2] > 256:
        raise ValidationError(f"tables must have between 1 and 256 entries per sub-quantizer, got {t.shape[2]}")
    t = np.ascontiguousarray(t, dtype=np.float32)
    if not np.isfinite(t).all():
        raise ValidationError("tables contain NaN or infinite values")
    return t


def _check_scan_codes(codes, tables: np.ndarray) -> np.ndarray:
    c = np.asarray(codes)
    M, ksub = tables.shape[1], tables.shape[2]
    if c.ndim != 2 or c.dtype != np.uint8 or c.shape[1] != M:
        raise ValidationError(f"codes must be a uint8 array of shape (n, {M}), got {c.dtype} with shape {c.shape}")
    c = np.ascontiguousarray(c).view(np.ndarray)
    if ksub < 256 and c.size and int(c.max()) >= ksub:
        raise ValidationError(f"codes contain the value {int(c.max())} but the tables have only {ksub} entries")
    return c


def _check_bias(bias, n: int) -> tuple[np.ndarray, bool]:
    if bias is None:
        return np.empty(0, np.float32), False
    b = np.ascontiguousarray(bias, dtype=np.float32)
    if b.shape != (n,):
        raise ValidationError(f"bias must have shape ({n},), got {b.shape}")
    if not np.isfinite(b).all():
        raise ValidationError("bias contains NaN or infinite values")
    return b, True


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValidationError(f"k must be a positive integer, got {k!r}")
    return int(k)


def adc_search(tables, codes, k: int, *, bias=None, tie_ids=None, n_threads: int | None = None):
    """The ``k`` codes of smallest table distance for each query (exact scan, streamed).

    Parameters
    ----------
    tables : float32 array (nq, M, ksub)
        ``tables[q, m, j]``: contribution of value ``j`` of sub-code ``m`` to query ``q``'s distance.
    codes : uint8 array (n, M)
    k : int >= 1
    bias : float32 array (n,), optional
        Per-code term added to every distance.
    tie_ids : int64 array (n,), optional
        Break distance ties by the smaller ``tie_ids`` value instead of the smaller position.
    n_threads : int, optional
        Cap on the threads of this call.

    Returns
    -------
    D : ndarray (nq, k) float32 — ascending; ``inf`` where fewer than k codes exist
    I : ndarray (nq, k) int64 — code positions; -1 where fewer than k codes exist
    """
    from . import _kernels

    t = _check_tables(tables)
    c = _check_scan_codes(codes, t)
    k = _check_k(k)
    b, use_bias = _check_bias(bias, c.shape[0])
    if tie_ids is None:
        keys, use_keys = np.empty(0, np.int64), False
    else:
        keys = np.ascontiguousarray(tie_ids, dtype=np.int64)
        if keys.shape != (c.shape[0],):
            raise ValidationError(f"tie_ids must have shape ({c.shape[0]},), got {keys.shape}")
        use_keys = True
    with thread_limit(n_threads):
        return _kernels.adc_knn_kernel(t, c, b, use_bias, k, keys, use_keys, _query_block(t.shape[0]))


def adc_distances(tables, codes, *, bias=None, n_threads: int | None = None) -> np.ndarray:
    """All query × code table distances, float32 (nq, n)."""
    from . import _kernels

    t = _check_tables(tables)
    c = _check_scan_codes(codes, t)
    b, use_bias = _check_bias(bias, c.shape[0])
    with thread_limit(n_threads):
        return _kernels.adc_distance_kernel(t, c, b, use_bias, _query_block(t.shape[0]))


def adc_range_search(tables, codes, radius: float, *, bias=None, n_threads: int | None = None):
    """All codes with table distance ``<= radius`` for each query.

    Returns
    -------
    lims : ndarray (nq + 1,) int64 — results of query i are entries ``lims[i]:lims[i+1]``
    D : ndarray (lims[-1],) float32 — distances
    I : ndarray (lims[-1],) int64 — code positions, ascending within each query
    """
    from . import _kernels

    t = _check_tables(tables)
    c = _check_scan_codes(codes, t)
    b, use_bias = _check_bias(bias, c.shape[0])
    radius = float(radius)
    if not np.isfinite(radius):
        raise ValidationError(f"radius must be a finite number, got {radius}")
    r = np.float32(radius)
    with thread_limit(n_threads):
        qb = _query_block(t.shape[0])
        counts = _kernels.adc_range_count_kernel(t, c, b, use_bias, r, qb)
        lims = np.zeros(t.shape[0] + 1, np.int64)
        np.cumsum(counts, out=lims[1:])
        out_d = np.empty(lims[-1], np.float32)
        out_i = np.empty(lims[-1], np.int64)
        _kernels.adc_range_fill_kernel(t, c, b, use_bias, r, lims, qb, out_d, out_i)
    return lims, out_d, out_i


def sdc_lookup(sdc_table, query_codes) -> np.ndarray:
    """Per-query tables of symmetric distances: ``out[q, m, :] = sdc_table[m, query_codes[q, m], :]``.

    Parameters
    ----------
    sdc_table : float32 array (M, ksub, ksub) — centroid-to-centroid distances of each sub-quantizer
    query_codes : uint8 array (nq, M)

    Returns
    -------
    tables : float32 array (nq, M, ksub), to pass to :func:`adc_search`
    """
    s = np.asarray(sdc_table, dtype=np.float32)
    if s.ndim != 3 or s.shape[1] != s.shape[2]:
        raise ValidationError(f"sdc_table must have shape (M, ksub, ksub), got {s.shape}")
    q = _check_scan_codes(query_codes, s[None, :, 0, :])
    return np.ascontiguousarray(s[np.arange(s.shape[0])[None, :], q])


def sdc_search(sdc_table, query_codes, codes, k: int, *, tie_ids=None, n_threads: int | None = None):
    """Top-k by symmetric distance: both sides quantized (see :func:`sdc_lookup`, :func:`adc_search`)."""
    return adc_search(sdc_lookup(sdc_table, query_codes), codes, k, tie_ids=tie_ids, n_threads=n_threads)
