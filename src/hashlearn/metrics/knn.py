"""Exact k-nearest-neighbour ground truth and recall against it.

:func:`exact_knn` streams over blocks of the database and keeps a running top-k per query, so it
never holds a query x database distance matrix; distances are computed in float64 and returned as
float32. The tie rule is the package-wide one: equal distance (or similarity) -> smaller database
index first.
"""

from __future__ import annotations

import numpy as np

from hashlearn.errors import ValidationError

from .ranking import _BUDGET, _as_matrix, _check_k, _smallest_k

__all__ = ["exact_knn", "neighbor_distances", "knn_recall", "knn_recall_tie_aware"]

_METRICS = ("l2", "ip", "cosine")


def _check_metric(metric: str) -> str:
    if metric not in _METRICS:
        raise ValidationError(f"metric must be one of {_METRICS}, got {metric!r}")
    return metric


def _check_vectors(xq, xb) -> tuple[np.ndarray, np.ndarray]:
    q = _as_matrix(xq, "xq")
    b = _as_matrix(xb, "xb")
    if q.shape[1] != b.shape[1]:
        raise ValidationError(f"xq has dimension {q.shape[1]} but xb has dimension {b.shape[1]}")
    return q, b


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _prepare(x: np.ndarray, metric: str, name: str, offset: int = 0) -> np.ndarray:
    """float64 copy; unit rows for cosine (a zero row is an error)."""
    x = x.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValidationError(f"{name} row {offset + zero[0]} is all zeros: its cosine similarity is undefined")
        x /= norms[:, None]
    return x


def _scores(q: np.ndarray, qn: np.ndarray, b: np.ndarray, bn: np.ndarray, metric: str) -> np.ndarray:
    """Smaller-is-closer score: squared L2, or negated inner product."""
    if metric == "l2":
        return np.maximum(qn[:, None] + bn[None, :] - 2.0 * (q @ b.T), 0.0)
    return -(q @ b.T)


def exact_knn(
    xq, xb, k: int, metric: str = "l2", *, chunk_size: int = 16384, query_chunk_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by brute force, streaming over database blocks.

    Parameters
    ----------
    xq : array-like of shape (n_queries, dim)
        Query vectors (any real dtype; no NaN/inf).
    xb : array-like of shape (n_database, dim)
        Database vectors.
    k : int
        Neighbours per query, ``1 <= k <= n_database``.
    metric : {"l2", "ip", "cosine"}, default "l2"
        ``"l2"``: squared Euclidean distance (as faiss ``IndexFlatL2``), ascending. ``"ip"``: inner
        product, descending. ``"cosine"``: cosine similarity, descending (zero vectors rejected).
    chunk_size : int, default 16384
        Database rows per block. The result does not depend on it.
    query_chunk_size : int, optional
        Queries per block; by default chosen so one block holds about 4M distances.

    Returns
    -------
    D : ndarray of shape (n_queries, k), dtype float32
        Squared L2 distances (ascending) or similarities (descending).
    I : ndarray of shape (n_queries, k), dtype int64
        Database indices. Ties (equal float64 distance) -> smaller index first.

    Notes
    -----
    Distances are computed in float64 as ``|q|^2 + |x|^2 - 2 q.x`` (clipped at 0), ranked in
    float64 and only then rounded to float32, so the ordering is exact up to float64 rounding;
    integer-valued data give exact distances and exact ties.
    """
    q, b = _check_vectors(xq, xb)
    metric = _check_metric(metric)
    k = _check_k(k, b.shape[0], "database vectors (rows of xb)")
    chunk_size = _check_positive(chunk_size, "chunk_size")
    if query_chunk_size is None:
        query_chunk_size = max(1, _BUDGET // chunk_size)
    query_chunk_size = _check_positive(query_chunk_size, "query_chunk_size")

    nq, n = q.shape[0], b.shape[0]
    q = _prepare(q, metric, "xq")
    qn = np.einsum("ij,ij->i", q, q)
    best_s = np.full((nq, k), np.inf)
    best_i = np.full((nq, k), np.iinfo(np.int64).max, dtype=np.int64)
    for start in range(0, n, chunk_size):
        block = _prepare(b[start : start + chunk_size], metric, "xb", start)
        bn = np.einsum("ij,ij->i", block, block)
        kb = min(k, block.shape[0])
        for r0 in range(0, nq, query_chunk_size):
            rows = slice(r0, min(r0 + query_chunk_size, nq))
            s, cols = _smallest_k(_scores(q[rows], qn[rows], block, bn, metric), kb)
            cat_s = np.concatenate([best_s[rows], s], axis=1)
            cat_i = np.concatenate([best_i[rows], cols + start], axis=1)
            order = np.lexsort((cat_i, cat_s), axis=1)[:, :k]
            best_s[rows] = np.take_along_axis(cat_s, order, axis=1)
            best_i[rows] = np.take_along_axis(cat_i, order, axis=1)
    d = best_s if metric == "l2" else -best_s
    return d.astype(np.float32), best_i


def _check_ids(ids, name: str) -> np.ndarray:
    return _as_matrix(ids, name, kinds="iu").astype(np.int64)


def neighbor_distances(xq, xb, I, metric: str = "l2") -> np.ndarray:
    """Exact distances between each query and the given database items.

    Use it to score an approximate search's ids for :func:`knn_recall_tie_aware`.

    Parameters
    ----------
    xq : array-like of shape (n_queries, dim)
    xb : array-like of shape (n_database, dim)
    I : array-like of shape (n_queries, k), integer
        Database indices per query; ``-1`` marks an empty slot.
    metric : {"l2", "ip", "cosine"}, default "l2"
        As in :func:`exact_knn` (same float64 formula, so values match its ``D``).

    Returns
    -------
    D : ndarray of shape (n_queries, k), dtype float32
        NaN where ``I`` is -1.
    """
    q, b = _check_vectors(xq, xb)
    metric = _check_metric(metric)
    ids = _check_ids(I, "I")
    if ids.shape[0] != q.shape[0]:
        raise ValidationError(f"I has {ids.shape[0]} rows but xq has {q.shape[0]} queries")
    if ids.min() < -1 or ids.max() >= b.shape[0]:
        raise ValidationError(
            f"I holds indices in [{ids.min()}, {ids.max()}] but xb has {b.shape[0]} rows (-1 marks an empty slot)"
        )
    out = np.empty(ids.shape, dtype=np.float32)
    step = max(1, _BUDGET // (ids.shape[1] * q.shape[1]))
    for r0 in range(0, q.shape[0], step):
        rows = slice(r0, r0 + step)
        qq = _prepare(q[rows], metric, "xq", r0)
        sel = ids[rows]
        bb = b[np.where(sel < 0, 0, sel)].astype(np.float64)  # (rows, k, dim)
        if metric == "cosine":
            norms = np.linalg.norm(bb, axis=2)
            zero = (norms == 0) & (sel >= 0)
            if zero.any():
                raise ValidationError(
                    f"xb row {sel[zero][0]} is all zeros: its cosine similarity is undefined"
                )
            bb /= np.where(norms == 0, 1.0, norms)[:, :, None]
        dots = np.einsum("ij,ikj->ik", qq, bb)
        if metric == "l2":
            qn = np.einsum("ij,ij->i", qq, qq)
            dist = np.maximum(qn[:, None] + np.einsum("ikj,ikj->ik", bb, bb) - 2.0 * dots, 0.0)
        else:
            dist = dots
        out[rows] = np.where(sel < 0, np.nan, dist)
    return out


def _first_valid(ids: np.ndarray) -> np.ndarray:
    """Mask of entries that are >= 0 and the first occurrence of their id in the row."""
    order = np.argsort(ids, axis=1, kind="stable")
    s = np.take_along_axis(ids, order, axis=1)
    first = np.ones(ids.shape, dtype=bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    mask = np.empty(ids.shape, dtype=bool)
    np.put_along_axis(mask, order, first, axis=1)
    return mask & (ids >= 0)


def _check_pred_true(I_pred, true, k, true_name: str) -> tuple[np.ndarray, int]:
    pred = _check_ids(I_pred, "I_pred")
    if pred.min() < -1:
        raise ValidationError(f"I_pred holds id {pred.min()}: ids must be >= 0, or -1 for an empty slot")
    if pred.shape[0] != true.shape[0]:
        raise ValidationError(f"I_pred has {pred.shape[0]} rows but {true_name} has {true.shape[0]} queries")
    k = _check_k(k, true.shape[1], f"columns of {true_name}")
    if pred.shape[1] < k:
        raise ValidationError(f"k={k} exceeds the {pred.shape[1]} columns of I_pred")
    return pred[:, :k], k


def knn_recall(I_pred, I_true, k: int | None = None) -> float:
    """Recall@k against exact neighbours: mean of ``|pred_top_k & true_top_k| / k``.

    Parameters
    ----------
    I_pred : array-like of shape (n_queries, k_pred), integer
        Approximate neighbours, best first; ``-1`` (empty slot) and repeated ids count once / never.
    I_true : array-like of shape (n_queries, k_true), integer
        Exact neighbours (e.g. from :func:`exact_knn`), distinct and non-negative per row.
    k : int, optional
        ``1 <= k <= min(k_pred, k_true)``; default ``k_true``.

    Returns
    -------
    recall : float
        Ignores ties: a predicted item at exactly the k-th true distance but not in ``I_true``
        counts as a miss (see :func:`knn_recall_tie_aware`).
    """
    true = _check_ids(I_true, "I_true")
    pred, k = _check_pred_true(I_pred, true, k, "I_true")
    true = true[:, :k]
    if true.min() < 0:
        raise ValidationError("I_true contains negative ids: exact neighbours must all be present")
    if not _first_valid(true).all():
        raise ValidationError("I_true repeats an id within a row: exact neighbours must be distinct")
    m = int(max(pred.max(), true.max())) + 1
    if m * true.shape[0] >= 2**62:
        raise ValidationError(f"ids up to {m - 1} for {true.shape[0]} queries overflow the int64 row offsets")
    offset = m * np.arange(true.shape[0], dtype=np.int64)[:, None]
    gt = np.sort((true + offset).ravel())
    gp = pred + offset
    pos = np.minimum(np.searchsorted(gt, gp), gt.size - 1)
    hit = (gt[pos] == gp) & _first_valid(pred)
    return float(np.count_nonzero(hit) / (k * true.shape[0]))


def knn_recall_tie_aware(
    I_pred, D_pred, D_true, k: int | None = None, *, metric: str = "l2", rtol: float = 1e-5, atol: float = 0.0
) -> float:
    """Tie-aware recall@k: a predicted item is correct when it is at least as close as the k-th
    exact neighbour.

    Per query, counts the distinct, non-empty ids among ``I_pred[:, :k]`` whose exact distance
    ``D_pred`` satisfies ``D_pred <= D_true[:, k-1] + tol`` (L2; ``>= ... - tol`` for similarities),
    with ``tol = rtol * |D_true[:, k-1]| + atol``, divided by ``k``; then the mean over queries.
    Unlike :func:`knn_recall` it does not punish a search for returning a different member of a
    tie at the k-th distance.

    Parameters
    ----------
    I_pred : array-like of shape (n_queries, k_pred), integer
        Approximate neighbours; ``-1`` marks an empty slot and never counts.
    D_pred : array-like of shape (n_queries, k_pred)
        *Exact* distances of those items (e.g. :func:`neighbor_distances`), not the approximate
        ones the search reported. May be NaN where ``I_pred`` is -1.
    D_true : array-like of shape (n_queries, k_true)
        Exact kNN distances, sorted best first (e.g. ``D`` of :func:`exact_knn`).
    k : int, optional
        ``1 <= k <= min(k_pred, k_true)``; default ``k_true``.
    metric : {"l2", "ip", "cosine"}, default "l2"
        ``"l2"``: smaller is closer; ``"ip"``/``"cosine"``: larger is closer.
    rtol, atol : float
        Tolerance for float rounding between the two distance computations.

    Returns
    -------
    recall : float
    """
    metric = _check_metric(metric)
    dt = _as_matrix(D_true, "D_true")
    pred, k = _check_pred_true(I_pred, dt, k, "D_true")
    dp = np.asarray(D_pred)
    if dp.ndim != 2 or dp.shape[0] != pred.shape[0] or dp.shape[1] < k:
        raise ValidationError(
            f"D_pred has shape {dp.shape} but I_pred needs at least ({pred.shape[0]}, {k}): they must match"
        )
    if dp.dtype.kind not in "iuf":
        raise ValidationError(f"D_pred must be numeric, got dtype {dp.dtype}")
    dp = dp[:, :k].astype(np.float64)
    valid = _first_valid(pred)
    if not np.all(np.isfinite(dp[pred >= 0])):
        raise ValidationError("D_pred contains NaN or inf for a non-empty id (NaN is allowed only where I_pred is -1)")
    if rtol < 0 or atol < 0:
        raise ValidationError(f"rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")
    dt = dt[:, :k].astype(np.float64)
    step = np.diff(dt, axis=1)
    if np.any(step < 0 if metric == "l2" else step > 0):
        raise ValidationError(
            f"D_true is not sorted {'ascending' if metric == 'l2' else 'descending'} as metric={metric!r} requires"
        )
    kth = dt[:, -1:]
    tol = rtol * np.abs(kth) + atol
    with np.errstate(invalid="ignore"):
        close = dp <= kth + tol if metric == "l2" else dp >= kth - tol
    return float(np.count_nonzero(close & valid) / (k * pred.shape[0]))
