"""Few-shot classification of one episode on fixed features: inductive prototypes and transductive methods.

:func:`fewshot_predict` takes the support set of an N-way K-shot episode and its queries (features from
any encoder) and returns the class of each query. ``method``:

- ``"prototypes"`` — nearest class mean of the support (inductive; Snell et al., "Prototypical Networks
  for Few-shot Learning", 2017).
- ``"softkmeans"`` — prototypes refined by soft k-means over the queries, the support rows keeping
  their class (Ren et al., "Meta-Learning for Semi-Supervised Few-Shot Classification", 2018).
- ``"transductive"`` — the clustering objective of Ziko et al. ("Transductive Few-Shot Learning:
  Clustering is All You Need?", 2021; LaplacianShot's bound optimisation): prototype distortion plus a
  Laplacian term over the queries' kNN graph, the support fixing its own labels; minimised by
  alternating soft assignments and prototype updates.
- ``"opta"`` — BECLR's optimal-transport alignment ("BECLR: Batch Enhanced Contrastive Few-Shot
  Learning", 2024): an entropic transport plan (POT's Sinkhorn) between the queries and the support
  prototypes, uniform masses on both sides, moves each prototype to the plan-weighted mean of the
  queries; queries take the nearest aligned prototype.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from ..errors import UnknownMethodError, ValidationError
from ._common import check_features

__all__ = ["fewshot_predict", "FEWSHOT_METHODS", "opta_plan", "sample_episode"]


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.maximum((A**2).sum(1)[:, None] - 2 * A @ B.T + (B**2).sum(1)[None, :], 0.0)


def _prototypes(S, ys, n_way):
    return np.stack([S[ys == c].mean(0) for c in range(n_way)])


def _predict_prototypes(S, ys, Q, n_way, opts):
    return _sq_dists(Q, _prototypes(S, ys, n_way)).argmin(1)


def _scale(D: np.ndarray) -> float:
    return float(np.median(D)) or 1.0


def _predict_softkmeans(S, ys, Q, n_way, opts):
    n_iter = int(opts.get("n_iter", 10))
    temperature = float(opts.get("temperature", 0.1))
    C = _prototypes(S, ys, n_way)
    counts = np.bincount(ys, minlength=n_way).astype(float)
    sums = np.stack([S[ys == c].sum(0) for c in range(n_way)])
    for _ in range(n_iter):
        D = _sq_dists(Q, C)
        R = softmax(-D / (temperature * _scale(D)), axis=1)
        C = (sums + R.T @ Q) / (counts + R.sum(0))[:, None]
    return _sq_dists(Q, C).argmin(1)


def _knn_affinity(Q: np.ndarray, k: int) -> np.ndarray:
    """Symmetric 0/1 kNN affinity of the queries (cosine), (nq, nq)."""
    n = Q.shape[0]
    k = max(1, min(k, n - 1))
    Z = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
    S = Z @ Z.T
    np.fill_diagonal(S, -np.inf)
    W = np.zeros((n, n))
    np.put_along_axis(W, np.argsort(-S, axis=1)[:, :k], 1.0, axis=1)
    return np.maximum(W, W.T)


def _predict_transductive(S, ys, Q, n_way, opts):
    lam = float(opts.get("lam", 0.5))
    k = int(opts.get("knn", 3))
    n_iter = int(opts.get("n_iter", 20))
    temperature = float(opts.get("temperature", 0.1))
    W = _knn_affinity(Q, k) if Q.shape[0] > 1 else np.zeros((1, 1))
    C = _prototypes(S, ys, n_way)
    counts = np.bincount(ys, minlength=n_way).astype(float)
    sums = np.stack([S[ys == c].sum(0) for c in range(n_way)])
    D = _sq_dists(Q, C)
    unary = D / (temperature * _scale(D))
    Y = softmax(-unary, axis=1)
    for _ in range(n_iter):
        # bound optimisation of  sum_q y_q·a_q - lam sum_{q,p} w_qp y_q·y_p  +  negative entropy
        for _ in range(5):
            Y = softmax(-unary + lam * W @ Y, axis=1)
        C = (sums + Y.T @ Q) / (counts + Y.sum(0))[:, None]  # prototypes: support (fixed labels) + soft queries
        D = _sq_dists(Q, C)
        unary = D / (temperature * _scale(D))
    return Y.argmax(1)


def opta_plan(Q: np.ndarray, C: np.ndarray, reg: float = 0.1, n_iter: int = 5000) -> np.ndarray:
    """BECLR's transport plan (nq, n_way) between queries and prototypes (uniform masses; Sinkhorn, POT).

    The cost is the squared Euclidean distance divided by its mean; ``reg`` is the entropic weight.
    Rows sum to ``1/nq`` and columns to ``1/n_way``.
    """
    import ot

    M = _sq_dists(Q, C)
    M = M / max(float(M.mean()), 1e-12)
    a = np.full(Q.shape[0], 1.0 / Q.shape[0])
    b = np.full(C.shape[0], 1.0 / C.shape[0])
    return ot.sinkhorn(a, b, M, reg, numItermax=n_iter, stopThr=1e-7, warn=False)


def _predict_opta(S, ys, Q, n_way, opts):
    C = _prototypes(S, ys, n_way)
    for _ in range(int(opts.get("n_rounds", 1))):
        G = opta_plan(Q, C, reg=float(opts.get("reg", 0.1)))
        C = (G / G.sum(0, keepdims=True)).T @ Q  # each prototype moved to its plan-weighted query mean
    return _sq_dists(Q, C).argmin(1)


FEWSHOT_METHODS = {"prototypes": _predict_prototypes, "softkmeans": _predict_softkmeans,
                   "transductive": _predict_transductive, "opta": _predict_opta}


def fewshot_predict(support, query, *, method: str = "prototypes", support_labels=None, **options) -> np.ndarray:
    """Classify the queries of one few-shot episode.

    Parameters
    ----------
    support : array (n_way, n_shot, d), or (n_support, d) with ``support_labels``
        Features of the labelled examples.
    query : array (n_query, d)
    method : {"prototypes", "softkmeans", "transductive", "opta"}
    support_labels : array of int (n_support,), optional
        Class of each support row when ``support`` is 2-D (any integers; the output uses them).
    **options
        Method options: ``n_iter``, ``temperature`` (softkmeans, transductive), ``lam``, ``knn``
        (transductive), ``reg``, ``n_rounds`` (opta).

    Returns
    -------
    int64 array (n_query,): class index in ``0..n_way-1`` (3-D support) or a support label.

    References
    ----------
    See the module docstring (one paper per method).

    Examples
    --------
    >>> import numpy as np
    >>> support = np.array([[[0.0, 0.0]], [[10.0, 10.0]]])        # 2-way 1-shot
    >>> fewshot_predict(support, np.array([[1.0, 0.5], [9.0, 9.5]]), method="opta").tolist()
    [0, 1]
    """
    if method not in FEWSHOT_METHODS:
        raise UnknownMethodError(f"unknown few-shot method {method!r}; available: {', '.join(FEWSHOT_METHODS)}")
    S = np.asarray(support)
    if S.ndim == 3:
        if support_labels is not None:
            raise ValidationError("support_labels must be None when support is (n_way, n_shot, d)")
        n_way, n_shot = S.shape[:2]
        ys = np.repeat(np.arange(n_way), n_shot)
        S = check_features(S.reshape(n_way * n_shot, -1), name="support")
        classes = np.arange(n_way)
    elif S.ndim == 2:
        if support_labels is None:
            raise ValidationError("a 2-D support needs support_labels (one per row)")
        S = check_features(S, name="support")
        labels = np.asarray(support_labels)
        if labels.shape != (S.shape[0],):
            raise ValidationError(f"support_labels must have {S.shape[0]} entries, got shape {labels.shape}")
        classes, ys = np.unique(labels, return_inverse=True)
        n_way = classes.size
    else:
        raise ValidationError(f"support must be (n_way, n_shot, d) or (n_support, d), got shape {S.shape}")
    if S.shape[0] == 0:
        raise ValidationError("the support set is empty")
    Q = check_features(query, name="query", n_features=S.shape[1])
    pred = FEWSHOT_METHODS[method](S.astype(np.float64), ys, Q.astype(np.float64), n_way, options)
    return np.asarray(classes)[pred].astype(np.int64)


def sample_episode(labels: np.ndarray, n_way: int, n_shot: int, n_query: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of one episode: support (n_way, n_shot) and queries (n_way, n_query).

    Classes are drawn among those of ``labels``; raises when fewer than ``n_way`` classes exist or a
    drawn class has fewer than ``n_shot + n_query`` rows (the message names the numbers).
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if n_way > classes.size:
        raise ValidationError(f"{n_way}-way episodes need {n_way} classes, the data has {classes.size}")
    need = n_shot + n_query
    if counts.max() < need:
        raise ValidationError(f"episodes ask for {n_shot} shots + {n_query} queries = {need} rows per class, "
                              f"but the largest class has {int(counts.max())}")
    eligible = classes[counts >= need]
    if eligible.size < n_way:
        raise ValidationError(f"only {eligible.size} classes have {need} rows ({n_shot} shots + {n_query} queries); "
                              f"{n_way}-way episodes need {n_way}")
    chosen = rng.choice(eligible, size=n_way, replace=False)
    sup, qry = [], []
    for c in chosen:
        rows = rng.permutation(np.flatnonzero(labels == c))[:need]
        sup.append(rows[:n_shot])
        qry.append(rows[n_shot:])
    return np.stack(sup), np.stack(qry)
