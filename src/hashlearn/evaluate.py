"""Evaluation of hashers under the standard protocols: one result row per (method, bits).

Protocol (Gong & Lazebnik, "Iterative Quantization", CVPR 2011): a dataset is split into queries and a
database that also serves as the training set. Each hasher is fitted on the training set; database
and queries are encoded; the database is ranked for every query by Hamming distance (ties: smaller
database index first). We report

* ``map``: mean average precision over the full Hamming ranking, relevance = same class label;
* ``precision@k`` over the same ranking (``precision_at``, default 1000, clipped to the database);
* ``precision_radius2``: mean precision of the database items within Hamming distance <= 2 of each
  query, relevance = same class label, a query with an empty Hamming ball counting as 0
  (:func:`hashlearn.metrics.precision_within_radius`);
* ``recall@10`` / ``recall@100``: overlap of the Hamming top-k with the exact Euclidean top-k;
* ``qps``: end-to-end queries per second of the index (encode the queries + Hamming top-10 search);
* ``encode_per_s``: vectors per second of encoding the whole database (best of 3, after a warm-up);
* ``bytes_per_vector``: storage of one code;
* ``pr_curve``: precision and recall of Hamming-ball retrieval for every radius 0..bits
  (:func:`hashlearn.metrics.precision_recall_by_radius`, label relevance), for plotting; ``None``
  without labels. :meth:`EvalRow.as_dict` holds it as plain lists (JSON-serialisable); the CLI
  tables leave it out.

Radius metrics and Spherical Hashing: ``sph`` ranks with the spherical Hamming distance, but
``precision_radius2`` and ``pr_curve`` always use the plain Hamming distance on its codes, so every
method's Hamming ball means the same thing (the same bits differing).

faiss' ``IndexLSH`` (random rotation + sign) is evaluated through the same code path: its codes are
read back with ``sa_encode`` and ranked by our kernels, so differences come from the codes alone.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from . import codes as codes_mod
from .datasets import Dataset
from .errors import ValidationError
from .hashing import make_hasher
from .index import BinaryIndex
from .metrics import (
    exact_knn,
    hamming_ranking,
    knn_recall,
    mean_average_precision,
    precision_at_k,
    precision_recall_by_radius,
    precision_within_radius,
    relevance_from_labels,
)

__all__ = ["EvalRow", "GroundTruth", "evaluate_codes", "evaluate_method", "faiss_lsh", "faiss_itq", "FAISS_METHODS"]


@dataclass
class EvalRow:
    """One line of a result table.

    ``precision_radius2`` and ``pr_curve`` are ``None`` when the dataset has no labels. For a hasher
    ranked with a non-Hamming distance (Spherical Hashing's spherical Hamming distance) both are
    still computed with the plain Hamming distance on its codes, so Hamming balls are comparable
    across methods; ``map``, ``precision_at_k`` and the recalls use the hasher's own ranking.
    ``pr_curve`` = ``{"radius": [0..bits], "precision": [...], "recall": [...]}``.
    """

    method: str
    bits: int
    map: float | None
    precision_at_k: float | None
    recall_at_10: float
    recall_at_100: float
    qps: float
    fit_seconds: float
    bytes_per_vector: float
    peer: bool = False
    precision_radius2: float | None = None
    encode_per_s: float = 0.0
    pr_curve: dict | None = field(default=None, repr=False)

    def as_dict(self, *, curve: bool = True) -> dict:
        """Plain dict (JSON-serialisable: the curve arrays become lists); ``curve=False`` drops it."""
        d = asdict(self)
        if not curve:
            d.pop("pr_curve")
        elif self.pr_curve is not None:
            d["pr_curve"] = {k: np.asarray(v).tolist() for k, v in self.pr_curve.items()}
        return d


@dataclass
class GroundTruth:
    """Exact Euclidean neighbours of the queries, computed once per dataset."""

    I: np.ndarray  # (nq, kmax) int64

    @classmethod
    def compute(cls, ds: Dataset, k: int = 100) -> "GroundTruth":
        _, I = exact_knn(ds.xq, ds.xb, min(k, ds.xb.shape[0]))
        return cls(I=I)


def _best_time(fn, repeats: int = 3) -> float:
    fn()  # warm-up (JIT, caches)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _time_search(encode, db_codes: np.ndarray, xq: np.ndarray, n_bits: int) -> float:
    """Queries per second of encoding the queries and a Hamming top-10 search (best of 3)."""
    index = BinaryIndex(n_bits)
    index.add(db_codes)
    k = min(10, db_codes.shape[0])
    return xq.shape[0] / _best_time(lambda: index.search(encode(xq), k))


def evaluate_codes(
    name: str,
    n_bits: int,
    encode,
    ds: Dataset,
    gt: GroundTruth,
    *,
    fit_seconds: float = 0.0,
    precision_at: int = 1000,
    peer: bool = False,
    search_qps=None,
    distances=None,
) -> EvalRow:
    """Evaluate a fitted encoder ``encode(X) -> packed uint64 codes`` on a dataset.

    ``search_qps()``, if given, measures queries/s with the peer's own index instead of ours;
    ``distances(q_codes, db_codes)``, if given, replaces the Hamming distance for ranking (e.g. the
    spherical Hamming distance of Spherical Hashing). The radius metrics (``precision_radius2``,
    ``pr_curve``) always use the plain Hamming distance on the codes, also when ``distances`` is
    given. Memory: one (n_queries, n_database) distance matrix (two when ``distances`` is given) and,
    with labels, one bool relevance matrix of the same shape.
    """
    db_codes = encode(ds.xb)
    q_codes = encode(ds.xq)
    nb = ds.xb.shape[0]
    encode_per_s = nb / _best_time(lambda: encode(ds.xb))
    ham = codes_mod.hamming_distances(q_codes, db_codes, n_bits=n_bits)
    dists = distances(q_codes, db_codes) if distances is not None else ham
    kmax = min(max(100, precision_at), nb)
    ranking = hamming_ranking(dists, k=kmax)
    r10 = knn_recall(ranking[:, :10], gt.I[:, :10], k=min(10, gt.I.shape[1]))
    r100 = knn_recall(ranking[:, : min(100, nb)], gt.I[:, :100], k=min(100, gt.I.shape[1], nb))
    m_ap = p_at = p_r2 = curve = None
    if ds.labels_b is not None and ds.labels_q is not None:
        full = hamming_ranking(dists)
        m_ap = mean_average_precision(relevance_from_labels(ds.labels_q, ds.labels_b, full))
        del full
        rel = relevance_from_labels(ds.labels_q, ds.labels_b, ranking[:, : min(precision_at, nb)])
        p_at = float(np.mean(precision_at_k(rel)))
        rel_all = relevance_from_labels(ds.labels_q, ds.labels_b)  # (nq, nb) bool, database order
        p_r2 = float(precision_within_radius(ham, rel_all, radius=2))
        prec, rec = precision_recall_by_radius(ham, rel_all, n_bits)
        curve = {"radius": np.arange(n_bits + 1), "precision": prec, "recall": rec}
        del rel_all
    qps = search_qps() if search_qps is not None else _time_search(encode, db_codes, ds.xq, n_bits)
    return EvalRow(name, n_bits, m_ap, p_at, r10, r100, qps, fit_seconds, n_bits / 8, peer,
                   precision_radius2=p_r2, encode_per_s=encode_per_s, pr_curve=curve)


def evaluate_method(method: str, n_bits: int, ds: Dataset, gt: GroundTruth, *, random_state=0, **params) -> EvalRow:
    """Fit registry method ``method`` at ``n_bits`` on ``ds.xt`` and evaluate it."""
    if method in FAISS_METHODS:
        t0 = time.perf_counter()
        index = FAISS_METHODS[method](ds, n_bits)
        fit_s = time.perf_counter() - t0

        def encode(X):
            return codes_mod.from_bytes(index.sa_encode(np.ascontiguousarray(X, dtype=np.float32)), n_bits)

        def search_qps():
            index.reset()
            index.add(ds.xb)
            return ds.xq.shape[0] / _best_time(lambda: index.search(ds.xq, min(10, ds.xb.shape[0])))

        return evaluate_codes(method, n_bits, encode, ds, gt, fit_seconds=fit_s, peer=True, search_qps=search_qps)
    hasher = make_hasher(method, n_bits=n_bits, random_state=random_state, **params)
    if getattr(hasher, "input_kind", "vector") != "vector":
        raise ValidationError(f"method {method!r} hashes sets, not vectors: it cannot be evaluated on {ds.name}")
    t0 = time.perf_counter()
    _fit_at_requested_bits(hasher, method, n_bits, ds.xt if ds.xt is not None else ds.xb)
    fit_s = time.perf_counter() - t0
    if getattr(hasher, "distance", "hamming") == "spherical":
        db_codes = hasher.transform(ds.xb)
        k = min(10, ds.xb.shape[0])

        def search_qps():
            return ds.xq.shape[0] / _best_time(lambda: hasher.knn_search(hasher.transform(ds.xq), db_codes, k))

        return evaluate_codes(
            method, n_bits, hasher.transform, ds, gt, fit_seconds=fit_s,
            distances=hasher.ranking_distances, search_qps=search_qps,
        )
    return evaluate_codes(method, n_bits, hasher.transform, ds, gt, fit_seconds=fit_s)


def _fit_at_requested_bits(hasher, method: str, n_bits: int, X: np.ndarray) -> None:
    """Fit ``hasher`` on ``X``; refuse when the data let it learn fewer than ``n_bits`` bits.

    A PCA-family hasher asked for more bits than dimensions warns and learns ``d`` bits; a protocol
    that compares methods at equal code length must not report those codes as ``n_bits``-bit rows.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hasher.fit(X)
    learned = int(getattr(hasher, "code_bits", n_bits))
    if learned < n_bits:
        raise ValidationError(
            f"{method} learns only {learned} bits on this data (d={X.shape[1]}), fewer than the {n_bits} "
            f"requested: a PCA basis has at most d directions"
        )
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def faiss_lsh(ds: Dataset, n_bits: int):
    """faiss ``IndexLSH(d, n_bits, rotate_data=True)`` (random rotation + sign), trained on ``ds.xt``."""
    import faiss

    if n_bits % 8:
        raise ValidationError(f"faiss IndexLSH needs a multiple of 8 bits, got {n_bits}")
    xt = ds.xt if ds.xt is not None else ds.xb
    index = faiss.IndexLSH(xt.shape[1], n_bits, True, False)
    index.train(np.ascontiguousarray(xt, dtype=np.float32))
    return index


def faiss_itq(ds: Dataset, n_bits: int):
    """faiss index factory ``ITQ{n_bits},LSH``: PCA + ITQ rotation + sign, trained on ``ds.xt``."""
    import faiss

    xt = ds.xt if ds.xt is not None else ds.xb
    if n_bits % 8 or n_bits > xt.shape[1]:
        raise ValidationError(f"faiss ITQ,LSH needs a multiple of 8 bits and at most d={xt.shape[1]}, got {n_bits}")
    index = faiss.index_factory(xt.shape[1], f"ITQ{n_bits},LSH")
    index.train(np.ascontiguousarray(xt, dtype=np.float32))
    return index


FAISS_METHODS = {"faiss-lsh": faiss_lsh, "faiss-itq": faiss_itq}
"""Peer baselines evaluated through the same protocol; queries/s is measured with faiss' own index."""
