"""Residual k-means quantization: a coarse-to-fine code (c1, c2, ..., cL) per vector.

Level 1 clusters the vectors with k-means; level ℓ clusters the residuals left by levels 1..ℓ-1. The
code of a vector is the tuple of its nearest centroid at each level, so vectors sharing a prefix are
close — the property semantic IDs rely on. Kept small and self-contained so it can move to
``hashlearn.quantize`` (as the residual quantizer) later; k-means itself is scikit-learn's.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import NotFittedError, ValidationError
from ..hashing.base import PersistableEstimatorMixin, check_random_state, check_vectors_array
from ..io.persist import persistable

__all__ = ["ResidualKMeans", "collision_suffix"]


def _nearest(R: np.ndarray, C: np.ndarray) -> np.ndarray:
    d = (R * R).sum(1, keepdims=True) - 2.0 * R @ C.T + (C * C).sum(1)[None, :]
    return np.argmin(d, axis=1).astype(np.int64)


@persistable
class ResidualKMeans(PersistableEstimatorMixin, BaseEstimator):
    """Residual (multi-stage) k-means: ``n_levels`` codebooks of ``n_clusters`` centroids each.

    Parameters
    ----------
    n_levels : int, default 3
    n_clusters : int, default 16
        Centroids per level (fewer at a level if there are fewer distinct residuals).
    n_init : int, default 3
        k-means restarts per level (scikit-learn's ``KMeans``).
    max_iter : int, default 100
    random_state : int, Generator or None

    Attributes
    ----------
    codebooks_ : list of float32 arrays (k_l, d)
        Centroids of each level.
    n_features_in_ : int
    inertia_ : list of float
        Mean squared residual norm after each level (non-increasing).

    References
    ----------
    Juang, Gray, "Multiple stage vector quantization for speech coding", ICASSP 1982. Used for semantic
    IDs by Singh et al., "Better Generalization with Semantic IDs: A Case Study in Ranking for
    Recommendations", 2023 (with an RQ-VAE instead of k-means).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> rq = ResidualKMeans(n_levels=2, n_clusters=4, random_state=0).fit(X)
    >>> rq.transform(X).shape
    (200, 2)
    """

    def __init__(self, n_levels: int = 3, n_clusters: int = 16, *, n_init: int = 3, max_iter: int = 100,
                 random_state=None):
        self.n_levels = n_levels
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_params(self):
        for name in ("n_levels", "n_clusters", "n_init", "max_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")

    def fit(self, X, y=None):
        """Learn the codebooks from vectors ``X`` (n, d); returns ``self``."""
        from sklearn.cluster import KMeans

        self._check_params()
        X = check_vectors_array(X, name="X", dtype=np.float64)
        rng = check_random_state(self.random_state)
        R = X.copy()
        books, inertia = [], []
        for _ in range(int(self.n_levels)):
            k = int(min(self.n_clusters, np.unique(R, axis=0).shape[0]))
            km = KMeans(n_clusters=k, n_init=int(self.n_init), max_iter=int(self.max_iter),
                        random_state=int(rng.integers(0, 2**31 - 1))).fit(R)
            C = km.cluster_centers_
            R = R - C[_nearest(R, C)]
            books.append(C.astype(np.float32))
            inertia.append(float((R * R).sum(1).mean()))
        self.codebooks_ = books
        self.inertia_ = inertia
        self.n_features_in_ = int(X.shape[1])
        return self

    def _check_fitted(self):
        if not hasattr(self, "codebooks_"):
            raise NotFittedError("this ResidualKMeans is not fitted yet: call fit(X) first")

    def transform(self, X) -> np.ndarray:
        """Codes (n, n_levels) int64 of ``X`` (n, d): greedy nearest centroid at each level."""
        self._check_fitted()
        R = check_vectors_array(X, name="X", n_features=self.n_features_in_, dtype=np.float64).copy()
        codes = np.empty((R.shape[0], len(self.codebooks_)), np.int64)
        for level, C in enumerate(self.codebooks_):
            C = C.astype(np.float64)
            codes[:, level] = _nearest(R, C)
            R -= C[codes[:, level]]
        return codes

    def inverse_transform(self, codes) -> np.ndarray:
        """Reconstruction (n, d) float32: the sum of each level's centroid."""
        self._check_fitted()
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(self.codebooks_) or codes.dtype.kind not in "iu":
            raise ValidationError(f"codes must be an integer array (n, {len(self.codebooks_)}), got {codes.shape}")
        out = np.zeros((codes.shape[0], self.n_features_in_), np.float32)
        for level, C in enumerate(self.codebooks_):
            if codes.size and (codes[:, level].min() < 0 or codes[:, level].max() >= C.shape[0]):
                raise ValidationError(f"codes at level {level} must be in [0, {C.shape[0]})")
            out += C[codes[:, level]]
        return out


def collision_suffix(codes) -> np.ndarray:
    """Rank of each row among the rows with the same code tuple (0 for the first, in input order).

    ``(codes, suffix)`` is then unique per row — the collision suffix of semantic IDs.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValidationError(f"codes must be 2-D, got shape {codes.shape}")
    n = codes.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((np.arange(n), *codes.T[::-1]))
    c = codes[order]
    new = np.r_[True, np.any(c[1:] != c[:-1], axis=1)]
    group_start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    out = np.empty(n, np.int64)
    out[order] = np.arange(n) - group_start
    return out
