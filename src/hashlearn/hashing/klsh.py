"""Kernelized locality-sensitive hashing: random hyperplanes in the feature space of a kernel."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ValidationError
from ._validation import check_int_param, check_real_param
from .base import BaseHasher
from .registry import register

__all__ = ["KernelizedLSH"]

KERNELS = ("rbf", "laplacian", "linear", "cosine")
_BLOCK = 4096  # rows per block when computing kernels to the anchors
_EIG_RTOL = 1e-6  # eigenvalues of the centred kernel below this fraction of the largest are dropped


def _sq_euclidean(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    D = np.einsum("ij,ij->i", A, A)[:, None] - 2.0 * (A @ B.T) + np.einsum("ij,ij->i", B, B)[None, :]
    return np.maximum(D, 0.0, out=D)


def _l1(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(A, B, metric="cityblock")


def _unit_rows(A: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(norms > 0, norms, 1.0)


def _kernel(kind: str, gamma: float, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Kernel matrix (len(A), len(B)) in float64."""
    if kind == "rbf":
        return np.exp(-gamma * _sq_euclidean(A, B))
    if kind == "laplacian":
        return np.exp(-gamma * _l1(A, B))
    if kind == "linear":
        return A @ B.T
    return _unit_rows(A) @ _unit_rows(B).T  # cosine


def _median_gamma(kind: str, A: np.ndarray) -> float:
    """Median heuristic on the anchors: rbf 1 / (2 median ||x - y||^2), laplacian 1 / median ||x - y||_1."""
    iu = np.triu_indices(A.shape[0], k=1)
    D = _sq_euclidean(A, A) if kind == "rbf" else _l1(A, A)
    vals = D[iu]
    vals = vals[vals > 0]
    if vals.size == 0:
        return 1.0  # all anchors identical: any bandwidth gives the same (constant) kernel
    med = float(np.median(vals))
    return 1.0 / (2.0 * med) if kind == "rbf" else 1.0 / med


@register("klsh")
class KernelizedLSH(BaseHasher):
    """Kernelized LSH: random hyperplanes in a kernel's feature space, from kernel values only.

    SimHash in the feature space of a kernel ``κ`` needs Gaussian directions there; by the central
    limit theorem, ``Σ^{-1/2} z_t`` with ``z_t`` the (centred, scaled) mean of ``t`` random feature
    vectors is approximately such a direction. Over ``p`` anchors sampled from the training data with
    centred kernel matrix ``K``, this gives bit ``k`` of ``x`` as

    ``h_k(x) = [ Σ_i w_k(i) κ̄(x, x_i) > 0 ]``  with  ``w_k = K^{-1/2} e_{S_k}``,

    where ``e_{S_k}`` is the indicator of a random subset ``S_k`` of ``t`` anchors and ``κ̄`` is the
    kernel centred with the anchors' feature-space mean (so both sides of the hyperplane are used).
    ``K^{-1/2}`` is computed by ``eigh``, dropping the null space of the centred matrix and
    eigenvalues below ``1e-6`` of the largest (regularisation). Out-of-sample vectors are hashed
    through their kernel values to the anchors: O(p · d) per vector.

    The fit cost is O(p² d + p³), independent of ``n`` beyond sampling the anchors. The number of
    bits is not limited by the dimension (random subsets can be drawn for any ``n_bits``); with the
    linear kernel and ``n_bits > n_features`` the bits are random hyperplanes in ``R^d``, as with
    SimHash.

    Parameters
    ----------
    n_bits : int, default 64
        Code length (number of hash functions).
    n_anchors : int, default 300
        Number ``p`` of anchors sampled (without replacement) from the training data; all training
        vectors when fewer. At least 2.
    subset_size : int, default 30
        Number ``t`` of anchors per hash function; used as ``min(t, p // 2)`` when the anchors are
        fewer than ``2 t`` (so that subsets differ).
    kernel : {"rbf", "laplacian", "linear", "cosine"}, default "rbf"
        ``rbf``: ``exp(-γ ||x - y||²)``; ``laplacian``: ``exp(-γ ||x - y||₁)``; ``linear``: ``x·y``;
        ``cosine``: ``x·y / (||x|| ||y||)`` (0 for a zero vector).
    gamma : float or None, default None
        Bandwidth of ``rbf`` / ``laplacian``. None: median heuristic on the anchors,
        ``1 / (2 median ||x - y||²)`` for ``rbf`` and ``1 / median ||x - y||₁`` for ``laplacian``.
    random_state : int, numpy Generator or None, default None
        Seed, resolved in ``fit``.

    Attributes
    ----------
    anchors_ : ndarray of shape (n_anchors_, n_features_in_), float64
    weights_ : ndarray of shape (n_anchors_, n_bits), float64
        ``w_k = K^{-1/2} e_{S_k}``, one column per bit.
    kernel_col_mean_ : ndarray of shape (n_anchors_,), float64
        Column means of the uncentred anchor kernel matrix (used to centre out-of-sample kernels).
    kernel_mean_ : float
        Mean of the uncentred anchor kernel matrix.
    gamma_ : float
        Bandwidth used (0.0 for kernels without one).
    n_anchors_, subset_size_ : int
        Values of ``p`` and ``t`` used.
    rank_ : int
        Number of eigen-directions kept in ``K^{-1/2}``.
    n_features_in_ : int

    References
    ----------
    B. Kulis and K. Grauman, "Kernelized Locality-Sensitive Hashing for Scalable Image Search",
    ICCV 2009 (and TPAMI 34(6), 2012).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 8))
    >>> KernelizedLSH(n_bits=32, n_anchors=100, random_state=0).fit(X).transform(X).shape
    (500, 1)
    """

    def __init__(self, n_bits=64, *, n_anchors=300, subset_size=30, kernel="rbf", gamma=None, random_state=None):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.subset_size = subset_size
        self.kernel = kernel
        self.gamma = gamma
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_anchors, "n_anchors", min_val=2)
        check_int_param(self.subset_size, "subset_size", min_val=1)
        if self.kernel not in KERNELS:
            raise ValidationError(f"kernel must be one of {', '.join(KERNELS)}, got {self.kernel!r}")
        check_real_param(self.gamma, "gamma", min_val=0, include_boundaries="neither", allow_none=True)

    _min_samples = 2

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        n = X.shape[0]
        p = min(n, int(self.n_anchors))
        idx = np.sort(rng.choice(n, size=p, replace=False)) if p < n else np.arange(n)
        A = X[idx].astype(np.float64)
        if self.kernel in ("rbf", "laplacian"):
            gamma = float(self.gamma) if self.gamma is not None else _median_gamma(self.kernel, A)
        else:
            gamma = 0.0
        K = _kernel(self.kernel, gamma, A, A)
        K = 0.5 * (K + K.T)
        col_mean = K.mean(axis=0)
        k_mean = float(K.mean())
        Kc = K - col_mean[None, :] - col_mean[:, None] + k_mean
        # a small dense problem: one BLAS thread avoids OpenBLAS' slow paths on busy machines
        with threadpool_limits(limits=1 if p <= 1000 else None, user_api="blas"):
            evals, evecs = np.linalg.eigh(0.5 * (Kc + Kc.T))
        keep = evals > _EIG_RTOL * max(float(evals[-1]), 0.0)
        if not np.any(keep):
            raise ValidationError(
                "the centred kernel matrix of the anchors is zero (all anchors identical in feature space): "
                "cannot draw kernel hyperplanes"
            )
        V = evecs[:, keep]
        K_inv_half = (V / np.sqrt(evals[keep])[None, :]) @ V.T
        t = min(int(self.subset_size), max(1, p // 2))
        E = np.zeros((p, int(self.n_bits)))
        for k in range(int(self.n_bits)):
            E[rng.choice(p, size=t, replace=False), k] = 1.0
        self.anchors_ = A
        self.weights_ = K_inv_half @ E
        self.kernel_col_mean_ = col_mean
        self.kernel_mean_ = k_mean
        self.gamma_ = gamma
        self.n_anchors_ = p
        self.subset_size_ = t
        self.rank_ = int(keep.sum())

    def _centred_kernel(self, X: np.ndarray) -> np.ndarray:
        Kx = _kernel(self.kernel, self.gamma_, X.astype(np.float64), self.anchors_)
        return Kx - Kx.mean(axis=1, keepdims=True) - self.kernel_col_mean_[None, :] + self.kernel_mean_

    def _project(self, X: np.ndarray) -> np.ndarray:
        """``Σ_i w_k(i) κ̄(x, x_i)`` for every bit (n, n_bits) float64: positive ⇔ bit 1."""
        out = np.empty((X.shape[0], self.weights_.shape[1]), np.float64)
        for s in range(0, X.shape[0], _BLOCK):
            out[s : s + _BLOCK] = self._centred_kernel(X[s : s + _BLOCK]) @ self.weights_
        return out
