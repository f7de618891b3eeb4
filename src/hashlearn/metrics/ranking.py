"""Retrieval metrics over ranked lists and Hamming radii.

All functions take plain numpy arrays and are vectorised; work is done in blocks of queries so the
temporary memory stays bounded (about ``_BUDGET`` elements) beyond the inputs themselves. See the
package docstring (:mod:`hashlearn.metrics`) for the conventions shared by every metric: the tie
rule, the AP normalisers and the value reported when nothing is retrieved.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hashlearn.errors import ValidationError

__all__ = [
    "hamming_ranking",
    "relevance_from_labels",
    "count_relevant",
    "average_precision",
    "mean_average_precision",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "radius_counts",
    "precision_recall_by_radius",
    "precision_within_radius",
]

#: Number of array elements a temporary block may hold (per block, not in total).
_BUDGET = 1 << 22

_NORMALIZERS = ("retrieved", "relevant")


# --------------------------------------------------------------------------------------------------
# validation helpers (shared with knn.py)
# --------------------------------------------------------------------------------------------------


def _check_k(k, width: int, what: str) -> int:
    """Return ``k`` as an int in ``[1, width]``; ``None`` means ``width``."""
    if k is None:
        return width
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValidationError(f"k must be a positive integer or None, got {k!r}")
    k = int(k)
    if k < 1:
        raise ValidationError(f"k must be a positive integer, got {k}")
    if k > width:
        raise ValidationError(f"k={k} exceeds the {width} {what}")
    return k


def _as_matrix(x, name: str, kinds: str = "biuf") -> np.ndarray:
    """Validate a non-empty 2-D numeric array without NaN/inf."""
    x = np.asarray(x)
    if x.dtype.kind not in kinds:
        raise ValidationError(f"{name} must have a numeric dtype, got {x.dtype}")
    if x.ndim != 2:
        raise ValidationError(f"{name} must be a 2-D array, got {x.ndim} dimension(s) with shape {x.shape}")
    if x.size == 0:
        raise ValidationError(f"{name} is empty (shape {x.shape})")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValidationError(f"{name} contains NaN or inf")
    return x


def _as_relevance(relevance, name: str = "relevance") -> np.ndarray:
    """A bool (n_queries, m) matrix from bool or {0, 1} input; a 1-D array is one query."""
    rel = np.asarray(relevance)
    if rel.ndim == 1:
        rel = rel[None, :]
    rel = _as_matrix(rel, name)
    if rel.dtype != np.bool_:
        if not np.all((rel == 0) | (rel == 1)):
            raise ValidationError(
                f"{name} must be bool or contain only 0 and 1; use ndcg_at_k for graded relevance"
            )
        rel = rel.astype(bool)
    return rel


def _as_counts(n_relevant, n_queries: int, name: str = "n_relevant") -> np.ndarray:
    """Validate a per-query count vector of shape (n_queries,)."""
    n = np.asarray(n_relevant)
    if n.ndim == 0:
        n = n[None]
    if n.ndim != 1:
        raise ValidationError(f"{name} must be a 1-D array, got shape {n.shape}")
    if n.shape[0] != n_queries:
        raise ValidationError(f"{name} has {n.shape[0]} entries but the relevance has {n_queries} queries")
    if n.dtype.kind not in "iu":
        if n.dtype.kind != "f" or not np.all(np.isfinite(n)) or not np.all(n == np.round(n)):
            raise ValidationError(f"{name} must contain non-negative integers, got dtype {n.dtype}")
    if np.any(n < 0):
        raise ValidationError(f"{name} must be non-negative, found {n.min()}")
    return n.astype(np.int64)


def _row_blocks(n_rows: int, row_width: int) -> Iterator[slice]:
    """Slices over rows so that one block holds about ``_BUDGET`` elements."""
    step = max(1, _BUDGET // max(1, row_width))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


# --------------------------------------------------------------------------------------------------
# ranking with the deterministic tie rule
# --------------------------------------------------------------------------------------------------


def _sort_selected(vals: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row of (vals, cols) by value, then by column index."""
    order = np.lexsort((cols, vals), axis=1)
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(cols, order, axis=1)


def _smallest_k(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest entries of each row, ordered by (value, column index).

    Returns ``(values, columns)`` of shape (n_rows, k). Exact under ties: among equal values the
    smaller column index wins, also at the k-th position. ``d`` must not contain NaN.
    """
    n = d.shape[1]
    if k >= n:
        key = d
        if d.dtype.kind in "biu" and int(d.max()) - int(d.min()) < 2**16:
            # numpy's stable sort of 16-bit keys is a linear-time radix sort
            key = (d.astype(np.int64) - int(d.min())).astype(np.uint16)
        cols = np.argsort(key, axis=1, kind="stable")
        return np.take_along_axis(d, cols, axis=1), cols
    if d.dtype.kind in "biu":
        lo = int(d.min())
        span = int(d.max()) - lo + 1
        if span * n < 2**62:  # unique composite key (value, column): argpartition is then exact
            key = (d.astype(np.int64) - lo) * n + np.arange(n, dtype=np.int64)
            cols = np.argpartition(key, k - 1, axis=1)[:, :k]
            cols = np.take_along_axis(cols, np.argsort(np.take_along_axis(key, cols, 1), 1), 1)
            return np.take_along_axis(d, cols, axis=1), cols
    cols = np.argpartition(d, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(d, cols, axis=1).max(axis=1)
    # a row is ambiguous when more than k entries are <= its k-th value: argpartition may have
    # picked any of the tied entries, so redo those rows with a stable sort
    ambiguous = np.count_nonzero(d <= kth[:, None], axis=1) > k
    if ambiguous.any():
        cols[ambiguous] = np.argsort(d[ambiguous], axis=1, kind="stable")[:, :k]
    return _sort_selected(np.take_along_axis(d, cols, axis=1), cols)


def hamming_ranking(dists, k: int | None = None) -> np.ndarray:
    """Rank the database for every query by distance, with a deterministic tie rule.

    Parameters
    ----------
    dists : array-like of shape (n_queries, n_database)
        Distances, usually integer Hamming distances (any integer or float dtype; no NaN/inf).
    k : int or None, default None
        Length of the returned ranking, ``1 <= k <= n_database``; ``None`` ranks the whole database.

    Returns
    -------
    ranking : ndarray of shape (n_queries, k), dtype int64
        Database indices, nearest first. Equal distances are ordered by smaller database index
        first (a stable sort), also at the cut-off position ``k``. Cost is linear in
        ``n_database`` per query for integer distances.
    """
    d = _as_matrix(dists, "dists")
    k = _check_k(k, d.shape[1], "database items per query (columns of dists)")
    out = np.empty((d.shape[0], k), dtype=np.int64)
    for rows in _row_blocks(d.shape[0], d.shape[1]):
        out[rows] = _smallest_k(d[rows], k)[1]
    return out


# --------------------------------------------------------------------------------------------------
# relevance from class labels
# --------------------------------------------------------------------------------------------------


def _as_labels(labels, name: str) -> np.ndarray:
    """1-D class labels or a 2-D non-negative multi-hot label matrix; non-empty, no NaN."""
    y = np.asarray(labels)
    if y.ndim not in (1, 2):
        raise ValidationError(f"{name} must be 1-D class labels or a 2-D multi-hot matrix, got shape {y.shape}")
    if y.size == 0:
        raise ValidationError(f"{name} is empty (shape {y.shape})")
    if y.dtype.kind not in ("biuf" if y.ndim == 2 else "biufUS"):
        raise ValidationError(f"{name} has unsupported dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValidationError(f"{name} contains NaN or inf")
    if y.ndim == 2 and np.any(y < 0):
        raise ValidationError(f"multi-hot {name} must be non-negative, found {y.min()}")
    return y


def _check_label_pair(query_labels, db_labels) -> tuple[np.ndarray, np.ndarray]:
    q = _as_labels(query_labels, "query_labels")
    b = _as_labels(db_labels, "db_labels")
    if q.ndim != b.ndim:
        raise ValidationError(
            f"query_labels is {q.ndim}-D but db_labels is {b.ndim}-D: use 1-D class labels for both "
            "or 2-D multi-hot matrices for both"
        )
    if q.ndim == 2:
        if q.shape[1] != b.shape[1]:
            raise ValidationError(
                f"query_labels has {q.shape[1]} label columns but db_labels has {b.shape[1]}"
            )
        return q > 0, b > 0
    return q, b


def relevance_from_labels(query_labels, db_labels, ranking=None) -> np.ndarray:
    """Binary relevance of ranked database items, from class labels.

    Parameters
    ----------
    query_labels : array-like of shape (n_queries,) or (n_queries, n_labels)
        1-D class labels (integer, float or string) or a 2-D non-negative multi-hot matrix.
    db_labels : array-like of shape (n_database,) or (n_database, n_labels)
        Same kind as ``query_labels``.
    ranking : array-like of shape (n_queries, k), integer, optional
        Database indices per query (e.g. from :func:`hamming_ranking`). ``-1`` marks an empty slot
        (as faiss pads short result lists) and is never relevant. ``None`` returns the relevance of
        the whole database in index order, shape (n_queries, n_database).

    Returns
    -------
    relevance : ndarray of shape (n_queries, k) or (n_queries, n_database), dtype bool
        Single-label: the item has the query's class. Multi-label: the label vectors share at least
        one positive entry (their dot product is > 0). Computed in blocks of queries, so the
        temporary memory stays bounded.
    """
    q, b = _check_label_pair(query_labels, db_labels)
    nq, n = q.shape[0], b.shape[0]
    if ranking is None:
        out = np.empty((nq, n), dtype=bool)
        if q.ndim == 1:
            for rows in _row_blocks(nq, n):
                out[rows] = q[rows, None] == b[None, :]
        else:
            bf = b.astype(np.float32).T  # counts of shared labels are exact in float32
            for rows in _row_blocks(nq, n):
                out[rows] = q[rows].astype(np.float32) @ bf > 0
        return out
    r = _as_matrix(ranking, "ranking", kinds="iu")
    if r.shape[0] != nq:
        raise ValidationError(f"query_labels has {nq} rows but the ranking has {r.shape[0]} queries")
    if r.min() < -1 or r.max() >= n:
        raise ValidationError(
            f"ranking holds indices in [{r.min()}, {r.max()}] but db_labels has {n} rows "
            "(valid: 0..n_database-1, or -1 for an empty slot)"
        )
    out = np.empty(r.shape, dtype=bool)
    width = r.shape[1] * (q.shape[1] if q.ndim == 2 else 1)
    for rows in _row_blocks(nq, width):
        idx = r[rows]
        empty = idx < 0
        has_empty = empty.any()
        if has_empty:
            idx = np.where(empty, 0, idx)
        if q.ndim == 1:
            block = b[idx] == q[rows, None]
        else:
            block = np.any(b[idx] & q[rows, None, :], axis=2)
        if has_empty:
            block[empty] = False
        out[rows] = block
    return out


def count_relevant(query_labels, db_labels) -> np.ndarray:
    """Number of relevant database items per query (the denominator of recall).

    Parameters
    ----------
    query_labels, db_labels : array-like
        As in :func:`relevance_from_labels`.

    Returns
    -------
    n_relevant : ndarray of shape (n_queries,), dtype int64
    """
    q, b = _check_label_pair(query_labels, db_labels)
    if q.ndim == 1:
        classes, counts = np.unique(b, return_counts=True)
        pos = np.clip(np.searchsorted(classes, q), 0, len(classes) - 1)
        return np.where(classes[pos] == q, counts[pos], 0).astype(np.int64)
    out = np.empty(q.shape[0], dtype=np.int64)
    bf = b.astype(np.float32).T
    for rows in _row_blocks(q.shape[0], b.shape[0]):
        out[rows] = np.count_nonzero(q[rows].astype(np.float32) @ bf > 0, axis=1)
    return out


# --------------------------------------------------------------------------------------------------
# ranked-list metrics
# --------------------------------------------------------------------------------------------------


def _hits(rel: np.ndarray, k: int) -> np.ndarray:
    return np.count_nonzero(rel[:, :k], axis=1).astype(np.int64)


def _check_n_relevant(n_relevant, rel: np.ndarray) -> np.ndarray:
    """Validate n_relevant and that it is at least the number of relevant items in the ranking."""
    n = _as_counts(n_relevant, rel.shape[0])
    found = _hits(rel, rel.shape[1])
    bad = np.flatnonzero(found > n)
    if bad.size:
        i = bad[0]
        raise ValidationError(
            f"n_relevant[{i}] is {n[i]} but the ranking of query {i} already holds {found[i]} relevant items"
        )
    return n


def _precision_sum(rel: np.ndarray) -> np.ndarray:
    """sum_i P(i) * rel(i) over the columns of each row, computed in row blocks."""
    out = np.empty(rel.shape[0], dtype=np.float64)
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    for rows in _row_blocks(rel.shape[0], rel.shape[1]):
        r = rel[rows]
        prec = np.cumsum(r, axis=1, dtype=np.float64) / ranks
        out[rows] = np.where(r, prec, 0.0).sum(axis=1)
    return out


def average_precision(
    relevance, k: int | None = None, *, normalizer: str = "retrieved", n_relevant=None
) -> np.ndarray:
    """Average precision at ``k`` of every query.

    ``AP@k = (1 / Z) * sum_{i <= k} P(i) * rel(i)`` where ``P(i)`` is the precision of the top ``i``
    items.

    Parameters
    ----------
    relevance : array-like of shape (n_queries, m) or (m,)
        Bool or {0, 1} relevance of each query's ranked items, best first (e.g. from
        :func:`relevance_from_labels`). A 1-D array is one query.
    k : int or None, default None
        Cut-off, ``1 <= k <= m``; ``None`` uses all ``m`` columns.
    normalizer : {"retrieved", "relevant"}, default "retrieved"
        ``"retrieved"``: ``Z`` = number of relevant items within the top ``k`` (the convention of
        the hashing literature, e.g. the DPSH / HashNet evaluation code); AP is 0 when none is
        retrieved. ``"relevant"``: ``Z = min(k, n_relevant)``, with ``n_relevant`` the number of
        relevant items in the whole database (with ``k=None`` over a full ranking this is the
        trec_eval / scikit-learn AP); AP is 0 when the query has no relevant item.
    n_relevant : array-like of shape (n_queries,), int
        Required with ``normalizer="relevant"`` (e.g. from :func:`count_relevant`), refused otherwise.

    Returns
    -------
    ap : ndarray of shape (n_queries,), dtype float64
    """
    rel = _as_relevance(relevance)
    k = _check_k(k, rel.shape[1], "ranked items per query (columns of relevance)")
    if normalizer not in _NORMALIZERS:
        raise ValidationError(f"normalizer must be one of {_NORMALIZERS}, got {normalizer!r}")
    if normalizer == "retrieved":
        if n_relevant is not None:
            raise ValidationError("n_relevant is only used with normalizer='relevant'")
        z = _hits(rel, k)
    else:
        if n_relevant is None:
            raise ValidationError("normalizer='relevant' needs n_relevant (see count_relevant)")
        z = np.minimum(k, _check_n_relevant(n_relevant, rel))
    s = _precision_sum(rel[:, :k])
    return np.divide(s, z, out=np.zeros_like(s), where=z > 0)


def mean_average_precision(
    relevance, k: int | None = None, *, normalizer: str = "retrieved", n_relevant=None
) -> float:
    """Mean over queries of :func:`average_precision` (mAP@k); same parameters.

    Returns
    -------
    map : float
    """
    return float(np.mean(average_precision(relevance, k, normalizer=normalizer, n_relevant=n_relevant)))


def precision_at_k(relevance, k: int | None = None) -> np.ndarray:
    """Fraction of relevant items among the top ``k`` of every query.

    Parameters
    ----------
    relevance : array-like of shape (n_queries, m) or (m,)
        Bool or {0, 1}, ranked best first.
    k : int or None, default None
        ``1 <= k <= m``; ``None`` uses all ``m`` columns.

    Returns
    -------
    precision : ndarray of shape (n_queries,), dtype float64
    """
    rel = _as_relevance(relevance)
    k = _check_k(k, rel.shape[1], "ranked items per query (columns of relevance)")
    return _hits(rel, k) / float(k)


def recall_at_k(relevance, k: int | None, n_relevant) -> np.ndarray:
    """Fraction of each query's relevant database items found in its top ``k``.

    Parameters
    ----------
    relevance : array-like of shape (n_queries, m) or (m,)
        Bool or {0, 1}, ranked best first.
    k : int or None
        ``1 <= k <= m``; ``None`` uses all ``m`` columns.
    n_relevant : array-like of shape (n_queries,), int
        Relevant items in the whole database per query (e.g. :func:`count_relevant`); required
        because ``relevance`` usually covers only a truncated ranking.

    Returns
    -------
    recall : ndarray of shape (n_queries,), dtype float64
        0 for a query without any relevant item.
    """
    rel = _as_relevance(relevance)
    k = _check_k(k, rel.shape[1], "ranked items per query (columns of relevance)")
    n = _check_n_relevant(n_relevant, rel)
    h = _hits(rel, k).astype(np.float64)
    return np.divide(h, n, out=np.zeros_like(h), where=n > 0)


def _as_gains(x, name: str) -> np.ndarray:
    g = np.asarray(x)
    if g.ndim == 1:
        g = g[None, :]
    g = _as_matrix(g, name)
    if np.any(g < 0):
        raise ValidationError(f"{name} must be non-negative, found {g.min()}")
    return g.astype(np.float64)


def _dcg(g: np.ndarray, k: int) -> np.ndarray:
    w = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    return g[:, :k] @ w[: min(k, g.shape[1])]


def ndcg_at_k(gains, k: int | None = None, *, ideal_gains=None) -> np.ndarray:
    """Normalised discounted cumulative gain at ``k`` with linear gains.

    ``DCG@k = sum_{i <= k} g_i / log2(i + 1)`` (linear gain, as trec_eval's ``ndcg_cut`` /
    pytrec_eval used by BEIR, and scikit-learn's ``ndcg_score``; *not* the ``2**g - 1`` variant).
    ``NDCG@k = DCG@k / IDCG@k`` where IDCG is the DCG of the ideal ordering.

    Parameters
    ----------
    gains : array-like of shape (n_queries, m) or (m,)
        Non-negative graded relevance of each query's ranked items, best first.
    k : int or None, default None
        ``1 <= k <= m``; ``None`` uses all ``m`` columns.
    ideal_gains : array-like of shape (n_queries, p), optional
        Graded relevance of *all* judged items of each query, any order (pad with zeros). If omitted,
        the ideal ordering is ``gains`` sorted descending, which is right only when ``gains`` covers
        every relevant item (e.g. a full ranking).

    Returns
    -------
    ndcg : ndarray of shape (n_queries,), dtype float64
        0 for a query whose ideal DCG is 0 (no relevant item).
    """
    g = _as_gains(gains, "gains")
    k = _check_k(k, g.shape[1], "ranked items per query (columns of gains)")
    ideal = g if ideal_gains is None else _as_gains(ideal_gains, "ideal_gains")
    if ideal.shape[0] != g.shape[0]:
        raise ValidationError(f"ideal_gains has {ideal.shape[0]} rows but gains has {g.shape[0]} queries")
    ideal = -np.sort(-ideal, axis=1)
    dcg, idcg = _dcg(g, k), _dcg(ideal, k)
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


# --------------------------------------------------------------------------------------------------
# Hamming-radius metrics
# --------------------------------------------------------------------------------------------------


def _check_dists_relevance(hamming_dists, relevance) -> tuple[np.ndarray, np.ndarray]:
    d = _as_matrix(hamming_dists, "hamming_dists", kinds="iu")
    rel = _as_relevance(relevance)
    if rel.shape != d.shape:
        raise ValidationError(
            f"hamming_dists has shape {d.shape} but relevance has shape {rel.shape}; both must be "
            "(n_queries, n_database)"
        )
    if d.min() < 0:
        raise ValidationError(f"hamming_dists must be non-negative, found {d.min()}")
    return d, rel


def radius_counts(hamming_dists, relevance, n_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query retrieval counts for every Hamming radius ``r = 0 .. n_bits``.

    The building block of the radius metrics; use it for conventions other than the defaults.

    Parameters
    ----------
    hamming_dists : array-like of shape (n_queries, n_database), integer
        Hamming distances, in ``[0, n_bits]``.
    relevance : array-like of shape (n_queries, n_database)
        Bool or {0, 1} relevance of every database item (e.g. ``relevance_from_labels(q, db)``).
    n_bits : int
        Code length.

    Returns
    -------
    retrieved : ndarray of shape (n_queries, n_bits + 1), dtype int64
        ``retrieved[q, r]`` = number of items within distance ``<= r``.
    relevant_retrieved : ndarray of shape (n_queries, n_bits + 1), dtype int64
        Relevant items within distance ``<= r``.
    n_relevant : ndarray of shape (n_queries,), dtype int64
        Relevant items in the database.
    """
    d, rel = _check_dists_relevance(hamming_dists, relevance)
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValidationError(f"n_bits must be a positive integer, got {n_bits!r}")
    n_bits = int(n_bits)
    if d.max() > n_bits:
        raise ValidationError(f"hamming_dists holds distance {d.max()} but n_bits is {n_bits}")
    nq, n = d.shape
    width = n_bits + 1
    retrieved = np.empty((nq, width), dtype=np.int64)
    rel_retrieved = np.empty((nq, width), dtype=np.int64)
    for rows in _row_blocks(nq, n):
        c = rows.stop - rows.start
        flat = (d[rows].astype(np.int64) + width * np.arange(c, dtype=np.int64)[:, None]).ravel()
        hist = np.bincount(flat, minlength=c * width).reshape(c, width)
        hist_rel = np.bincount(flat[rel[rows].ravel()], minlength=c * width).reshape(c, width)
        retrieved[rows] = np.cumsum(hist, axis=1)
        rel_retrieved[rows] = np.cumsum(hist_rel, axis=1)
    return retrieved, rel_retrieved, np.count_nonzero(rel, axis=1).astype(np.int64)


def precision_recall_by_radius(hamming_dists, relevance, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of Hamming-ball retrieval for every radius ``r = 0 .. n_bits``.

    For each query, the items within Hamming distance ``<= r`` are returned. Per query, precision
    is ``relevant returned / returned`` and is **0 when nothing is returned** (the convention of
    Gong & Lazebnik and Weiss et al.; some codes instead skip such queries: compute that from
    :func:`radius_counts`); recall is ``relevant returned / relevant`` and is 0 for a query with no
    relevant item. Both are then averaged over queries.

    Parameters
    ----------
    hamming_dists, relevance, n_bits
        As in :func:`radius_counts`.

    Returns
    -------
    precision : ndarray of shape (n_bits + 1,), dtype float64
    recall : ndarray of shape (n_bits + 1,), dtype float64
        Entry ``r`` is the value at radius ``r``; recall is non-decreasing and reaches 1 at
        ``r = n_bits`` when every query has a relevant item.
    """
    retrieved, hit, n_rel = radius_counts(hamming_dists, relevance, n_bits)
    hit = hit.astype(np.float64)
    prec = np.divide(hit, retrieved, out=np.zeros_like(hit), where=retrieved > 0)
    rec = np.divide(hit, n_rel[:, None], out=np.zeros_like(hit), where=n_rel[:, None] > 0)
    return prec.mean(axis=0), rec.mean(axis=0)


def precision_within_radius(hamming_dists, relevance, radius: int = 2) -> float:
    """Mean precision of the items within Hamming distance ``<= radius`` of each query.

    The classic "precision within Hamming radius 2" of the hashing literature: a query with no item
    within the radius counts as precision **0** (Gong & Lazebnik; Weiss et al.), so this penalises
    long codes whose balls are empty.

    Parameters
    ----------
    hamming_dists : array-like of shape (n_queries, n_database), integer
    relevance : array-like of shape (n_queries, n_database)
        Bool or {0, 1} relevance of every database item.
    radius : int, default 2
        Non-negative Hamming radius (inclusive).

    Returns
    -------
    precision : float
    """
    d, rel = _check_dists_relevance(hamming_dists, relevance)
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValidationError(f"radius must be a non-negative integer, got {radius!r}")
    total = 0.0
    for rows in _row_blocks(d.shape[0], d.shape[1]):
        inside = d[rows] <= radius
        n_in = np.count_nonzero(inside, axis=1).astype(np.float64)
        n_hit = np.count_nonzero(inside & rel[rows], axis=1).astype(np.float64)
        total += np.divide(n_hit, n_in, out=np.zeros_like(n_hit), where=n_in > 0).sum()
    return total / d.shape[0]
