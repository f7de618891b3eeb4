"""The supervised hashing protocol: labelled training items, class-balanced queries, mAP over the database.

Protocol (Liu et al., "Supervised Hashing with Kernels", CVPR 2012; Xia et al., "Supervised Hashing for
Image Retrieval via Image Representation Learning", AAAI 2014):

* **queries**: ``n_queries`` items, the same number from every class (1,000 → 100 per class), drawn at
  random from the test images (MNIST's ``t10k`` set; from all items for datasets without a test set);
* **database**: every other item (69,000 on MNIST);
* **training set**: ``n_labels`` items drawn at random from the database with their labels (5,000 in
  the papers); supervised methods see the labels, unsupervised methods and faiss' ``IndexLSH`` are
  fitted on the same items without them.

Each method is fitted, the database and the queries are encoded, and the whole database is ranked for
every query by Hamming distance (ties: smaller database index first). Reported per (method, bits):

* ``map``: mean average precision over the full ranking (relevant = same class);
* ``precision_at``: precision of the top ``k`` for every ``k`` of ``precision_ks``;
* ``precision_radius2``: mean precision within Hamming radius 2 (an empty ball counts 0);
* ``pr_curve``: precision and recall of Hamming-ball retrieval for every radius 0..bits;
* ``fit_seconds``, ``encode_per_s`` (database vectors per second), ``supervised`` and ``peer`` flags.

The ranking is evaluated in blocks of queries, so memory stays at a few (block × database) arrays.

Datasets (:func:`load_supervised_split`): ``mnist`` (the four idx files of the original release, from
``data_dir``), ``digits`` (scikit-learn's 8×8 digits), ``mfeat`` (UCI multiple features: the six views
concatenated and standardised, from ``data_dir/handwritten.mat``). Image datasets carry their
``image_shape`` (C, H, W); methods that take an ``input_shape`` parameter (the deep hashers) receive it
unless the caller passes one, so they use their CNN on raw pixels.
"""

from __future__ import annotations

import gzip
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import codes as codes_mod
from .errors import DataFileError, ValidationError
from .metrics import (
    hamming_ranking,
    mean_average_precision,
    precision_at_k,
    precision_recall_by_radius,
    precision_within_radius,
    relevance_from_labels,
)

__all__ = ["SupervisedSplit", "SupervisedRow", "load_supervised_split", "read_mnist", "evaluate_supervised_method",
           "evaluate_split", "run_supervised_protocol",
           "SUPERVISED_DATASETS", "MNIST_FILES"]

SUPERVISED_DATASETS = ("mnist", "digits", "mfeat")
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz")
_QUERY_BLOCK = 100


@dataclass(eq=False)
class SupervisedSplit:
    """One split of the supervised protocol.

    ``xb`` (nb, d) float32 database with ``yb`` (nb,) int64; ``xq``/``yq`` the queries; ``xt``/``yt`` the
    labelled training items (rows ``ids_t`` of the database); ``image_shape`` (C, H, W) or None.
    """

    name: str
    xb: np.ndarray
    yb: np.ndarray
    xq: np.ndarray
    yq: np.ndarray
    ids_t: np.ndarray
    image_shape: tuple | None = None

    @property
    def xt(self) -> np.ndarray:
        return self.xb[self.ids_t]

    @property
    def yt(self) -> np.ndarray:
        return self.yb[self.ids_t]

    def describe(self) -> str:
        return (f"{self.name}: {self.xb.shape[0]:,} database / {self.xq.shape[0]:,} queries "
                f"({self.xq.shape[0] // max(1, np.unique(self.yq).shape[0])} per class) / "
                f"{self.ids_t.shape[0]:,} labelled training items, d={self.xb.shape[1]}")


@dataclass
class SupervisedRow:
    """One line of the supervised result table (see the module docstring)."""

    method: str
    bits: int
    map: float
    precision_at: dict
    precision_radius2: float
    fit_seconds: float
    encode_per_s: float
    supervised: bool
    n_labels: int
    peer: bool = False
    pr_curve: dict | None = field(default=None, repr=False)

    def as_dict(self, *, curve: bool = True) -> dict:
        d = asdict(self)
        d["precision_at"] = {str(k): float(v) for k, v in self.precision_at.items()}
        if not curve:
            d.pop("pr_curve")
        elif self.pr_curve is not None:
            d["pr_curve"] = {k: np.asarray(v).tolist() for k, v in self.pr_curve.items()}
        return d


# -- data --------------------------------------------------------------------------------------------
def _read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip or plain) of unsigned bytes: ``(n,)`` labels or ``(n, rows, cols)`` images."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read ({exc})") from None
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataFileError(f"{path}: not an idx file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.shape[0] != int(np.prod(dims)):
        raise DataFileError(f"{path}: header says {dims} ({int(np.prod(dims))} bytes) but the file holds "
                            f"{body.shape[0]} bytes")
    return body.reshape(dims)


def read_mnist(data_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST's four idx files from ``data_dir`` → (x_train (60000, 784), y_train, x_test, y_test).

    Pixels are scaled to [0, 1] float32; labels int64. Either the ``.gz`` files of the original release
    or their uncompressed versions (same names without ``.gz``) are read.
    """
    folder = Path(data_dir)
    arrays = []
    for name in MNIST_FILES:
        path = folder / name
        if not path.exists() and (folder / name[:-3]).exists():
            path = folder / name[:-3]
        if not path.exists():
            raise DataFileError(f"{folder}: missing the MNIST file {name} (the four idx files "
                                f"{', '.join(MNIST_FILES)} are needed)")
        arrays.append(_read_idx(path))
    xtr, ytr, xte, yte = arrays
    if xtr.ndim != 3 or xte.ndim != 3 or xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0]:
        raise DataFileError(f"{folder}: inconsistent MNIST files: images {xtr.shape} / {xte.shape}, "
                            f"labels {ytr.shape} / {yte.shape}")

    def flat(x):
        return (x.reshape(x.shape[0], -1).astype(np.float32) / 255.0)

    return flat(xtr), ytr.astype(np.int64), flat(xte), yte.astype(np.int64)


def _default_dir(name: str) -> Path:
    return Path(os.environ.get("HASHLEARN_DATA", "../shared/data")) / name


def _balanced_queries(y: np.ndarray, n_queries: int, rng: np.random.Generator, name: str) -> np.ndarray:
    n_classes = np.unique(y).shape[0]
    if n_queries % n_classes:
        raise ValidationError(f"{name}: n_queries={n_queries} is not a multiple of its {n_classes} classes "
                              f"(the queries are class-balanced)")
    per_class = n_queries // n_classes
    picks = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if rows.shape[0] < per_class:
            raise ValidationError(f"{name}: class {c} has {rows.shape[0]} candidate queries, fewer than the "
                                  f"{per_class} per class asked for")
        picks.append(rng.choice(rows, size=per_class, replace=False))
    return np.sort(np.concatenate(picks))


def load_supervised_split(dataset: str, *, n_labels: int = 5000, n_queries: int = 1000,
                          data_dir=None, random_state=0) -> SupervisedSplit:
    """Split a labelled dataset by the supervised protocol (see the module docstring).

    Parameters
    ----------
    dataset : {"mnist", "digits", "mfeat"}
    n_labels : int, default 5000
        Labelled training items drawn from the database (at most its size).
    n_queries : int, default 1000
        Queries, the same number from every class (all three datasets have 10 classes: 100 per class);
        must be a multiple of the number of classes.
    data_dir : path, optional
        Folder of the data files: ``mnist``: the four idx files (default ``../shared/data/mnist`` or
        ``$HASHLEARN_DATA/mnist``); ``mfeat``: ``handwritten.mat`` (default ``.../mfeat``). Unused for digits.
    random_state : int or None
        Seed of the query and training draws.

    Returns
    -------
    SupervisedSplit
    """
    if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)) or n_labels < 2:
        raise ValidationError(f"n_labels must be an integer >= 2, got {n_labels!r}")
    if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)) or n_queries < 1:
        raise ValidationError(f"n_queries must be a positive integer, got {n_queries!r}")
    rng = np.random.default_rng(random_state)
    image_shape = None
    if dataset == "mnist":
        xtr, ytr, xte, yte = read_mnist(data_dir if data_dir is not None else _default_dir("mnist"))
        q = _balanced_queries(yte, int(n_queries), rng, dataset)
        rest = np.setdiff1d(np.arange(xte.shape[0]), q)
        xb, yb = np.concatenate([xtr, xte[rest]]), np.concatenate([ytr, yte[rest]])
        xq, yq = xte[q], yte[q]
        image_shape = (1, 28, 28)
    elif dataset in ("digits", "mfeat"):
        if dataset == "digits":
            from sklearn.datasets import load_digits

            X, y = load_digits(return_X_y=True)
            X = (X / 16.0).astype(np.float32)
            image_shape = (1, 8, 8)
        else:
            X, y = _load_mfeat(data_dir if data_dir is not None else _default_dir("mfeat"))
        q = _balanced_queries(y, int(n_queries), rng, dataset)
        rest = np.setdiff1d(np.arange(X.shape[0]), q)
        xb, yb, xq, yq = X[rest], y[rest], X[q], y[q]
    else:
        raise ValidationError(f"unknown dataset {dataset!r} for the supervised protocol; known: "
                              f"{', '.join(SUPERVISED_DATASETS)}")
    if n_labels > xb.shape[0]:
        raise ValidationError(f"{dataset}: n_labels={n_labels} exceeds the {xb.shape[0]} database items")
    ids_t = np.sort(rng.choice(xb.shape[0], size=int(n_labels), replace=False))
    return SupervisedSplit(dataset, np.ascontiguousarray(xb), yb, np.ascontiguousarray(xq), yq, ids_t, image_shape)


def _load_mfeat(folder) -> tuple[np.ndarray, np.ndarray]:
    """mfeat's six views concatenated (649 columns), each column standardised; labels 0..9."""
    from scipy.io import loadmat

    path = Path(folder) / "handwritten.mat"
    if not path.exists():
        raise DataFileError(f"{folder}: missing handwritten.mat (UCI multiple features, 6 views)")
    d = loadmat(path)
    X = np.hstack([np.asarray(d["X"][0, v], dtype=np.float64) for v in range(d["X"].shape[1])])
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    y = np.asarray(d["Y"]).ravel().astype(np.int64)
    return X.astype(np.float32), y - y.min()


# -- evaluation --------------------------------------------------------------------------------------
def _ranking_metrics(q_codes, db_codes, yq, yb, n_bits: int, ks) -> tuple[float, dict, float, dict]:
    nq, nb = q_codes.shape[0], db_codes.shape[0]
    ks = [k for k in ks if k <= nb]
    ap_sum, p2_sum = 0.0, 0.0
    prec_sum = {k: 0.0 for k in ks}
    pr_p = np.zeros(n_bits + 1)
    pr_r = np.zeros(n_bits + 1)
    for s in range(0, nq, _QUERY_BLOCK):
        ham = codes_mod.hamming_distances(q_codes[s : s + _QUERY_BLOCK], db_codes, n_bits=n_bits)
        m = ham.shape[0]
        rel_all = relevance_from_labels(yq[s : s + _QUERY_BLOCK], yb)
        ranking = hamming_ranking(ham)
        rel = np.take_along_axis(rel_all, ranking, axis=1)
        ap_sum += mean_average_precision(rel) * m
        for k in ks:
            prec_sum[k] += float(np.sum(precision_at_k(rel, k)))
        p2_sum += precision_within_radius(ham, rel_all, radius=2) * m
        p, r = precision_recall_by_radius(ham, rel_all, n_bits)
        pr_p += p * m
        pr_r += r * m
    curve = {"radius": np.arange(n_bits + 1), "precision": pr_p / nq, "recall": pr_r / nq}
    return ap_sum / nq, {k: v / nq for k, v in prec_sum.items()}, p2_sum / nq, curve


def _best_time(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def evaluate_supervised_method(method: str, n_bits: int, split: SupervisedSplit, *, random_state=0,
                               precision_ks=(100, 500, 1000), **params) -> SupervisedRow:
    """Fit ``method`` (a registry vector hasher or a faiss peer) on the split's training items and evaluate it.

    Supervised methods (scikit-learn tag ``target_tags.required``) get the training labels; the others
    are fitted on the same items without labels. A method with an ``input_shape`` parameter gets
    ``split.image_shape`` unless ``params`` sets it.
    """
    from .evaluate import FAISS_METHODS
    from .hashing import is_supervised, make_hasher

    xt, yt = split.xt, split.yt
    supervised, peer = False, method in FAISS_METHODS
    if peer:
        from .datasets import Dataset

        t0 = time.perf_counter()
        index = FAISS_METHODS[method](Dataset("train", xb=xt, xq=xt[:1]), n_bits)
        fit_s = time.perf_counter() - t0

        def encode(X):
            return codes_mod.from_bytes(index.sa_encode(np.ascontiguousarray(X, dtype=np.float32)), n_bits)
    else:
        hasher = make_hasher(method, n_bits=n_bits, random_state=random_state, **params)
        if getattr(hasher, "input_kind", "vector") != "vector":
            raise ValidationError(f"method {method!r} does not hash vectors: it cannot be evaluated on {split.name}")
        if "input_shape" in hasher.get_params() and "input_shape" not in params and split.image_shape is not None:
            hasher.set_params(input_shape=split.image_shape)
        supervised = is_supervised(hasher)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hasher.fit(xt, yt) if supervised else hasher.fit(xt)
        fit_s = time.perf_counter() - t0
        learned = int(getattr(hasher, "code_bits", n_bits))
        if learned < n_bits:
            raise ValidationError(f"{method} learns only {learned} bits on this data (d={xt.shape[1]}), fewer than "
                                  f"the {n_bits} requested")
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        encode = hasher.transform
    db_codes = encode(split.xb)
    q_codes = encode(split.xq)
    enc_s = _best_time(lambda: encode(split.xb[: min(10000, split.xb.shape[0])]))
    encode_per_s = min(10000, split.xb.shape[0]) / enc_s
    m_ap, p_at, p_r2, curve = _ranking_metrics(q_codes, db_codes, split.yq, split.yb, n_bits, precision_ks)
    return SupervisedRow(method, n_bits, m_ap, p_at, p_r2, fit_s, encode_per_s, supervised,
                         int(split.ids_t.shape[0]), peer, curve)


def evaluate_split(split: SupervisedSplit, methods, bits, *, seed: int = 0, params: dict | None = None,
                   skip_errors: bool = True, progress=None) -> tuple[list[dict], list[str]]:
    """Evaluate every (bits, method) on one split.

    Returns ``(rows, skipped)``: ``rows`` are :meth:`SupervisedRow.as_dict` dicts; with ``skip_errors``
    a combination that cannot run is recorded in ``skipped`` as ``"method@bits: reason"``. ``params``
    maps a method to its extra parameters; ``progress(description)``, if given, is called before each fit.
    """
    from .errors import HashlearnError

    rows, skipped = [], []
    for b in bits:
        for m in methods:
            if progress is not None:
                progress(f"{m} @ {b} bits")
            try:
                rows.append(evaluate_supervised_method(m, b, split, random_state=seed,
                                                       **(params or {}).get(m, {})).as_dict())
            except (HashlearnError, ValueError) as exc:
                if not skip_errors:
                    raise
                skipped.append(f"{m}@{b}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return rows, skipped


def run_supervised_protocol(dataset: str, methods, bits, *, n_labels: int = 5000, n_queries: int = 1000,
                            data_dir=None, seed: int = 0, params: dict | None = None, skip_errors: bool = True,
                            progress=None) -> tuple[SupervisedSplit, list[dict], list[str]]:
    """:func:`load_supervised_split` then :func:`evaluate_split`; returns ``(split, rows, skipped)``."""
    split = load_supervised_split(dataset, n_labels=n_labels, n_queries=n_queries, data_dir=data_dir,
                                  random_state=seed)
    rows, skipped = evaluate_split(split, methods, bits, seed=seed, params=params, skip_errors=skip_errors,
                                   progress=progress)
    return split, rows, skipped
