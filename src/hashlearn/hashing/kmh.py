"""K-means Hashing: product-space k-means whose codeword indices preserve distances in Hamming space."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from ._validation import check_int_param, check_real_param, warn_data_limit
from .base import BaseHasher
from .registry import register

__all__ = ["KMeansHashing"]

_BLOCK = 8192  # rows per block when encoding
_MAX_BITS_PER_SUBSPACE = 8


def _popcount_table(b: int) -> np.ndarray:
    """Hamming distances (2**b, 2**b) between the b-bit indices of the codewords."""
    idx = np.arange(1 << b)
    x = idx[:, None] ^ idx[None, :]
    return np.array([[bin(int(v)).count("1") for v in row] for row in x], dtype=np.float64)


def _subspace_bits(n_bits: int, b: int) -> np.ndarray:
    """Bits of each subspace: ``b`` each, the last one the remainder when ``b`` does not divide ``n_bits``."""
    full, rest = divmod(n_bits, b)
    return np.array([b] * full + ([rest] if rest else []), dtype=np.int64)


def _subspace_sizes(d: int, bits: np.ndarray) -> np.ndarray:
    """Dimensions per subspace, proportional to its bits (largest remainders), at least 1 each."""
    M = bits.shape[0]
    share = d * bits / bits.sum()
    sizes = np.maximum(np.floor(share).astype(np.int64), 1)
    while sizes.sum() > d:  # the minimum of 1 overshot: take from the largest
        sizes[np.argmax(sizes)] -= 1
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    i = 0
    while sizes.sum() < d:
        sizes[order[i % M]] += 1
        i += 1
    return sizes


def _balanced_partition(eigvals: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """Greedy allocation of principal directions (descending variance) to subspaces of given sizes.

    Each direction goes to the non-full subspace with the smallest sum of log-variances, so the
    subspaces get balanced products of variances (He, Wen & Sun's implementation; the "eigenvalue
    allocation" of Ge et al., Optimized Product Quantization, CVPR 2013). Within a subspace the
    directions stay in descending order of variance.
    """
    f = np.log(np.maximum(eigvals, 0.0) + 1e-20)
    f = f - f.min() + 1.0
    M = sizes.shape[0]
    sums = np.zeros(M)
    groups: list[list[int]] = [[] for _ in range(M)]
    for j in range(eigvals.shape[0]):
        open_ = np.array([len(g) < s for g, s in zip(groups, sizes)])
        m = int(np.argmin(np.where(open_, sums, np.inf)))
        groups[m].append(j)
        sums[m] += f[j]
    return [np.array(g, dtype=np.int64) for g in groups]


def _assign(Z: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index of the nearest codeword (row of C) of every row of Z; ties: the smaller index."""
    d2 = np.einsum("ij,ij->i", C, C)[None, :] - 2.0 * (Z @ C.T)
    return np.argmin(d2, axis=1)


def _objective(flat, K, w, S, counts, n, dh, lam):
    """Quantization error (up to a constant) + λ affinity error, and its gradient, over all codewords.

    E = 1/n Σ_j (n_j ||c_j||² - 2 S_j·c_j) + λ Σ_{i≠j} (n_i n_j / n²) (||c_i - c_j|| - d_h(i, j))²,
    the sum over codewords of the per-codeword cost of He, Wen & Sun's code (Eq. 8).
    """
    C = flat.reshape(K, w)
    sq = np.einsum("ij,ij->i", C, C)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (C @ C.T), 0.0))
    np.fill_diagonal(D, 0.0)
    W = np.outer(counts, counts) / (n * n)
    err = D - dh
    np.fill_diagonal(err, 0.0)
    e_quan = float(np.sum(counts * sq) - 2.0 * np.sum(S * C)) / n
    e_aff = float(np.sum(W * err * err))
    with np.errstate(divide="ignore", invalid="ignore"):
        G = np.where(D > 1e-12, 4.0 * lam * W * err / D, 0.0)
    grad = (2.0 * counts[:, None] * C - 2.0 * S) / n + G.sum(axis=1)[:, None] * C - G @ C
    return e_quan + lam * e_aff, grad.ravel()


def _train_subspace(Z: np.ndarray, b: int, lam: float, max_iter: int):
    """Affinity-preserving k-means in one subspace. Z (n, d_m), d_m >= b, is PCA-aligned (centred,
    directions by descending variance). Returns codewords (2**b, d_m), the scale s and the iterations."""
    n, dz = Z.shape
    K = 1 << b
    bits = ((np.arange(K)[:, None] >> np.arange(b)[None, :]) & 1).astype(np.float64)
    # PCA-hashing initialisation: hypercube vertices s·(±1) on the first b principal directions,
    # s fitted by least squares to the PCA-hashing codes sign(z).
    s = float(np.abs(Z[:, :b]).sum() / (n * b))
    C = np.zeros((K, dz))
    C[:, :b] = s * (2.0 * bits - 1.0)
    dh = 2.0 * s * np.sqrt(_popcount_table(b))  # distances between the hypercube vertices
    idx = None
    it = 0
    for it in range(1, max_iter + 1):
        new_idx = _assign(Z, C)
        if idx is not None and np.array_equal(new_idx, idx):
            it -= 1  # assignment stable: the previous update already minimised this problem
            break
        idx = new_idx
        onehot = np.zeros((n, K))
        onehot[np.arange(n), idx] = 1.0
        counts = onehot.sum(axis=0)
        S = onehot.T @ Z  # per-codeword sums of the assigned vectors
        res = minimize(_objective, C.ravel(), args=(K, dz, S, counts, n, dh, lam), jac=True,
                       method="L-BFGS-B", options={"maxiter": 200})
        C = res.x.reshape(K, dz)
    return C, s, it


@register("kmh")
class KMeansHashing(BaseHasher):
    """K-means Hashing: affinity-preserving product quantization whose codeword indices are the code.

    The data are rotated by PCA and their principal directions split into ``M = ceil(n_bits / b)``
    subspaces with balanced variance. In each subspace ``2**b`` codewords are learned; the ``b``-bit
    index of the nearest codeword is that subspace's part of the code, so the code of ``x`` is the
    concatenation of its ``M`` indices. Codewords minimise

    ``E = E_quan + λ E_aff``,  ``E_aff = Σ_{i,j} (n_i n_j / n²) (||c_i - c_j|| - s·sqrt(h(i, j)))²``

    (``E_quan`` the mean squared quantization error, ``n_i`` the size of cluster ``i``, ``h`` the
    Hamming distance between indices, ``s`` a scale), so that Hamming distance between
    codes approximates the Euclidean distance between the quantized vectors. Following the authors'
    implementation, codewords start at the vertices of a hypercube on the first ``b`` principal
    directions (PCA hashing, which also fixes the index of every codeword and the scale), then an
    assignment step and an update step alternate. The update step minimises ``E`` over all
    codewords of the subspace at once with L-BFGS (the authors update one codeword at a time; both
    decrease the same objective). Iterations stop after ``max_iter`` or when no assignment changes.

    The fit cost is O(n · d² + max_iter · n · d · 2**b): linear in ``n``. Subspaces get a number of
    principal directions proportional to their bits, and a subspace of ``b`` bits needs at least
    ``b`` of them for the hypercube its codewords start from (the authors' code needs it too), so
    the code length is at most ``n_features``: with ``n_bits > n_features``, ``fit`` warns and learns
    ``n_bits_ = n_features`` bits. Methods whose bits are not limited by the dimension: ``sph``, ``klsh``.

    Parameters
    ----------
    n_bits : int, default 64
        Code length; at most the data dimension (see ``n_bits_``).
    bits_per_subspace : int, default 4
        Bits ``b`` per subspace (``2**b`` codewords), 1 to 8. The authors recommend 4 (2 for short
        codes on SIFT, up to 8 on GIST). When ``b`` does not divide ``n_bits`` the last subspace gets
        the remaining bits.
    affinity_weight : float, default 10.0
        The weight ``λ`` of the affinity error (the paper's value).
    max_iter : int, default 50
        Maximum number of assignment / update iterations per subspace (authors: 50 to 200).
    sample_size : int or None, default None
        Train on a random sample of this many vectors (None: all, as the authors recommend).
    random_state : int, numpy Generator or None, default None
        Seed of the training sample; the algorithm is otherwise deterministic.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,), float64
    projection_ : ndarray of shape (n_features_in_, n_features_in_), float64
        Principal directions as columns, grouped by subspace (see ``subspace_bounds_``).
    subspace_bounds_ : ndarray of shape (M + 1,), int64
        Subspace ``m`` is columns ``subspace_bounds_[m]:subspace_bounds_[m + 1]`` of the projection.
    subspace_bits_ : ndarray of shape (M,), int64
        Bits of each subspace; subspace ``m`` writes bits from ``sum(subspace_bits_[:m])`` on, bit
        ``j`` of the codeword index to code bit ``sum(subspace_bits_[:m]) + j``.
    centroids_ : ndarray of shape (M, 2**b, width), float64
        Codewords of each subspace in its projected coordinates, zero-padded (rows beyond
        ``2**subspace_bits_[m]`` and columns beyond the subspace's width are zero).
    scales_ : ndarray of shape (M,), float64
        Half the side of each subspace's initial hypercube (vertices at ``±scales_[m]``, fitted by least
        squares to the data); the target distance between codewords ``i`` and ``j`` is
        ``s·sqrt(h(i, j))`` with ``s = 2 scales_[m]``, held fixed as in the authors' code.
    n_iter_ : ndarray of shape (M,), int64
        Update steps run in each subspace.
    n_bits_ : int
        Code length learned: ``min(n_bits, n_features_in_)``.
    n_features_in_ : int

    References
    ----------
    K. He, F. Wen and J. Sun, "K-means Hashing: an Affinity-Preserving Quantization Method for
    Learning Binary Compact Codes", CVPR 2013.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> KMeansHashing(n_bits=16, max_iter=5).fit(X).transform(X).shape
    (500, 1)
    """

    def __init__(self, n_bits=64, *, bits_per_subspace=4, affinity_weight=10.0, max_iter=50, sample_size=None,
                 random_state=None):
        self.n_bits = n_bits
        self.bits_per_subspace = bits_per_subspace
        self.affinity_weight = affinity_weight
        self.max_iter = max_iter
        self.sample_size = sample_size
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.bits_per_subspace, "bits_per_subspace", min_val=1, max_val=_MAX_BITS_PER_SUBSPACE)
        check_real_param(self.affinity_weight, "affinity_weight", min_val=0)
        check_int_param(self.max_iter, "max_iter", min_val=1)
        check_int_param(self.sample_size, "sample_size", min_val=2, allow_none=True)

    _min_samples = 2

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        n, d = X.shape
        nb, b = int(self.n_bits), int(self.bits_per_subspace)
        if d < nb:
            warn_data_limit(self, "n_bits", nb, d, f"exceeds the {d} features (a subspace of b bits needs b "
                            f"dimensions for its codewords' hypercube; sph and klsh are not limited by the dimension)")
            nb = self.n_bits_ = d
        bits = _subspace_bits(nb, b)
        M = bits.shape[0]
        if self.sample_size is not None and self.sample_size < n:
            X = X[np.sort(rng.choice(n, size=int(self.sample_size), replace=False))]
            n = X.shape[0]
        Xd = X.astype(np.float64)
        mean = Xd.mean(axis=0)
        Xd -= mean
        cov = Xd.T @ Xd / n
        with threadpool_limits(limits=1 if d <= 1000 else None, user_api="blas"):
            evals, evecs = np.linalg.eigh(cov)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        groups = _balanced_partition(evals, _subspace_sizes(d, bits))
        order = np.concatenate(groups)
        P = evecs[:, order]
        bounds = np.zeros(M + 1, dtype=np.int64)
        bounds[1:] = np.cumsum([g.shape[0] for g in groups])
        Z = Xd @ P
        width = int(max(g.shape[0] for g in groups))
        centroids = np.zeros((M, 1 << int(bits.max()), width))
        scales = np.zeros(M)
        n_iter = np.zeros(M, dtype=np.int64)
        # Many small products (n x d_m x 2**b) and L-BFGS steps: one BLAS thread, as scikit-learn's
        # KMeans does; OpenBLAS threads only add synchronisation overhead at these sizes.
        with threadpool_limits(limits=1, user_api="blas"):
            for m in range(M):
                Zm = np.ascontiguousarray(Z[:, bounds[m] : bounds[m + 1]])
                bm = int(bits[m])
                C, s, it = _train_subspace(Zm, bm, float(self.affinity_weight), int(self.max_iter))
                centroids[m, : 1 << bm, : Zm.shape[1]] = C
                scales[m] = s
                n_iter[m] = it
        self.mean_ = mean
        self.projection_ = P
        self.subspace_bounds_ = bounds
        self.subspace_bits_ = bits
        self.centroids_ = centroids
        self.scales_ = scales
        self.n_iter_ = n_iter

    def quantize(self, X) -> np.ndarray:
        """Index of the nearest codeword of every subspace.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        idx : ndarray of shape (n, M), int64
        """
        return self._quantize(self._validated(X))

    def _quantize(self, X: np.ndarray) -> np.ndarray:
        M = self.subspace_bits_.shape[0]
        out = np.empty((X.shape[0], M), dtype=np.int64)
        for s in range(0, X.shape[0], _BLOCK):
            Z = (X[s : s + _BLOCK].astype(np.float64) - self.mean_) @ self.projection_
            for m in range(M):
                lo, hi = int(self.subspace_bounds_[m]), int(self.subspace_bounds_[m + 1])
                C = self.centroids_[m, : 1 << int(self.subspace_bits_[m]), : hi - lo]
                out[s : s + _BLOCK, m] = _assign(Z[:, lo:hi], C)
        return out

    def _encode_bits(self, X: np.ndarray) -> np.ndarray:
        idx = self._quantize(X)
        out = np.zeros((X.shape[0], self.n_bits_), dtype=bool)
        off = 0
        for m, bm in enumerate(self.subspace_bits_.tolist()):
            out[:, off : off + bm] = (idx[:, m : m + 1] >> np.arange(bm)[None, :]) & 1
            off += bm
        return out
