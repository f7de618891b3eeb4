"""Scalable Graph Hashing with feature transformation (Jiang & Li, IJCAI 2015).

SGH fits codes ``b ∈ {-1, 1}^c`` to the full Gaussian similarity graph without ever forming it. The
target similarity of two (centred) vectors is ``S̃(x, y) = 2 exp(-||x - y||² / ρ) - 1 ∈ (-1, 1]`` and
the objective is ``min Σ_ij (c S̃_ij - b_iᵀ b_j)²``.

*Feature transformation.* ``exp(-||x - y||²/ρ) = e^{-||x||²/ρ} e^{-||y||²/ρ} e^{2xᵀy/ρ}``; with
``ρ >= 2 max ||x||²`` the exponent ``2xᵀy/ρ`` lies in ``[-1, 1]``, where ``e^z`` is replaced by its
chord ``(e - e⁻¹)/2 · z + (e + e⁻¹)/2``. This gives ``S̃(x, y) ≈ P(x)ᵀ Q(y)`` with

    P(x) = [ √(2(e² - 1)/(eρ)) e^{-||x||²/ρ} x ;  √((e² + 1)/e) e^{-||x||²/ρ} ;  1 ],
    Q(y) = [ √(2(e² - 1)/(eρ)) e^{-||y||²/ρ} y ;  √((e² + 1)/e) e^{-||y||²/ρ} ; -1 ],

so ``S̃ ≈ P Qᵀ`` has rank ``d + 2`` and products with it cost ``O(n d)``.

*Hash functions.* Bit ``t`` is ``sgn(K̄(x) w_t)`` where ``K̄(x)`` holds the RBF kernel values
``exp(-||x - a_j||² / (2δ))`` to ``m`` bases ``a_j`` drawn at random from the training set, centred by
their training means; ``δ`` is the mean squared distance between training vectors and bases (the
authors' code).

*Sequential learning with residuals.* With ``R_0 = c S̃`` and ``R_t = R_{t-1} - sgn(K̄ w_t) sgn(K̄ w_t)ᵀ``,
bit ``t`` maximises ``w_tᵀ K̄ᵀ R_{t-1} K̄ w_t`` subject to ``w_tᵀ K̄ᵀ K̄ w_t = 1`` (the relaxed bits
have unit energy): the top eigenvector of the generalized symmetric problem
``(K̄ᵀ R_{t-1} K̄) w = λ (K̄ᵀ K̄ + γ I) w``. Only m × m matrices are formed: ``K̄ᵀ R_0 K̄ =
c (K̄ᵀ P)(K̄ᵀ Q)ᵀ`` and each residual update subtracts ``v vᵀ`` with ``v = K̄ᵀ sgn(K̄ w_t)`` (O(n m)).
Because ``K̄`` is centred, ``K̄ᵀ 1 = 0`` and the constant last coordinate of ``P`` and ``Q`` drops out,
leaving ``c C Cᵀ`` with ``C = K̄ᵀ P₁..d₊₁``. As in the authors' code, one refinement sweep (``n_refine``)
then revisits the bits in random order, adding the bit's term back to the residual and re-solving.
``γ`` is ``1e-6`` times the mean diagonal of ``K̄ᵀ K̄`` (the authors add ``1e-6 I`` for unnormalised
``K̄``).

*Preprocessing.* The training mean is subtracted and ``ρ`` defaults to ``2 max_i ||x_i - μ||²``, the
smallest value for which the chord approximation is valid on the training data. The authors' released
code also scales every centred vector to unit length (then ``ρ = 2`` by the same rule); that is
``normalize=True`` here, off by default so that the codes follow the Euclidean geometry of the data.

Cost: four streamed passes over the training rows (mean; norms; kernel features; the m × m and
m × (d + 1) products) and ``O(n m)`` per bit, linear in ``n``. The centred kernel features of the
training set (n × m float32, smaller than ``X`` whenever ``m < d``) are kept during ``fit`` for the
per-bit sign updates. The data dimension does not limit ``n_bits``: hash functions live in the
m-dimensional kernel space. Training codes are defined as their out-of-sample encoding
``sgn(K̄(x) W)``; ``fit_transform`` returns those computed in ``fit``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from ..errors import ValidationError
from ._validation import check_int_param, check_real_param, warn_data_limit
from .anchor_graph import _FitCodesMixin
from .base import BaseHasher
from .registry import register

__all__ = ["ScalableGraphHashing"]

# Elements (rows × columns) per chunk in the streamed passes: 4M, i.e. 32 MB of float64 temporaries.
_CHUNK_ELEMS = 1 << 22
_GAMMA = 1e-6


def _chunk_rows(n_cols: int) -> int:
    return max(1, _CHUNK_ELEMS // max(1, n_cols))


def _top_generalized_eigvec(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Eigenvector (m,) of the largest eigenvalue of ``A w = λ B w`` (A symmetric, B positive definite)."""
    _, V = scipy.linalg.eigh(A, B, subset_by_index=[A.shape[0] - 1, A.shape[0] - 1])
    w = V[:, 0]
    j = int(np.argmax(np.abs(w)))
    return w if w[j] >= 0 else -w  # fixed sign: LAPACK-independent bits


@register("sgh")
class ScalableGraphHashing(_FitCodesMixin, BaseHasher):
    """Scalable Graph Hashing: kernel hash functions fitted to the full Gaussian graph, bit by bit.

    Bit ``t`` of ``x`` is ``[K̄(x) w_t > 0]`` with ``K̄(x)`` the centred RBF kernel features of ``x``
    against ``n_bases`` random training vectors; the ``w_t`` are learned sequentially from the
    factorised similarity ``S̃ ≈ P Qᵀ`` (see the module docstring).

    Parameters
    ----------
    n_bits : int, default 64
        Code length (not limited by the data dimension).
    n_bases : int, default 300
        Number ``m`` of kernel bases, sampled without replacement from the training set (the paper's
        value); at most the number of training vectors (see ``n_bases_``).
    rho : float or None, default None
        Bandwidth ``ρ`` of the target similarity ``exp(-||x - y||²/ρ)`` on the prepared (centred,
        optionally normalised) data. None: ``2 max_i ||x_i||²`` over the prepared training vectors, the
        paper's choice (smaller values leave the range where the feature transformation is accurate).
    normalize : bool, default False
        Scale every centred vector to unit length before hashing, as the authors' released code does
        (then ``ρ = 2``); the fitted similarity becomes a function of the angle between centred vectors.
        False keeps the Euclidean geometry of the data.
    n_refine : int, default 1
        Refinement sweeps after the sequential pass (0: none).
    random_state : None, int or numpy Generator, default None
        Seed of the basis sample and of the refinement order, resolved in ``fit``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,), float64
        Training mean.
    bases_ : ndarray of shape (n_bases_, n_features_in_), float32
        Kernel bases (prepared: centred, and unit length with ``normalize``).
    n_bases_ : int
        Bases used: ``min(n_bases, n_samples)``, with a warning when the training set is the smaller.
    delta_ : float
        Kernel parameter: features are ``exp(-||x - a||² / (2 delta_))``.
    rho_ : float
        Bandwidth ``ρ`` of the similarity that was fitted.
    kernel_mean_ : ndarray of shape (n_bases_,), float32
        Training mean of the kernel features (subtracted before projecting).
    projections_ : ndarray of shape (n_bases_, n_bits), float32
        ``W``, one hash function per column.
    n_features_in_ : int

    References
    ----------
    Q.-Y. Jiang and W.-J. Li, "Scalable Graph Hashing with Feature Transformation", IJCAI 2015.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 8))
    >>> sgh = ScalableGraphHashing(n_bits=32, n_bases=100, random_state=0).fit(X)
    >>> sgh.transform(X).shape
    (500, 1)
    """

    def __init__(self, n_bits=64, *, n_bases=300, rho=None, normalize=False, n_refine=1, random_state=None):
        self.n_bits = n_bits
        self.n_bases = n_bases
        self.rho = rho
        self.normalize = normalize
        self.n_refine = n_refine
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_bases, "n_bases", min_val=2)
        check_int_param(self.n_refine, "n_refine", min_val=0)
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ValidationError(f"normalize must be True or False, got {self.normalize!r}")
        check_real_param(self.rho, "rho", min_val=0, include_boundaries="neither", allow_none=True)

    # -- preprocessing and kernel features ------------------------------------------------------------
    def _prepare(self, X: np.ndarray) -> np.ndarray:
        """Centred (and, with ``normalize``, unit-length) float64 copy of a chunk of rows."""
        Xc = X - self.mean_
        if self.normalize:
            norms = np.sqrt(np.einsum("ij,ij->i", Xc, Xc))
            Xc /= np.where(norms > 0, norms, 1.0)[:, None]
        return Xc

    def _raw_kernel(self, Xc: np.ndarray, bases: np.ndarray, b2: np.ndarray) -> np.ndarray:
        """Uncentred kernel features (rows, m) float32 of a chunk of prepared float64 rows."""
        D = np.einsum("ij,ij->i", Xc, Xc)[:, None] + b2 - 2.0 * (Xc @ bases.T)
        np.maximum(D, 0.0, out=D)
        return np.exp(-D / (2.0 * self.delta_)).astype(np.float32)

    # -- fitting ------------------------------------------------------------------------------------
    _min_samples = 2

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        n, d = X.shape
        m, c = int(self.n_bases), int(self.n_bits)
        if n < m:
            warn_data_limit(self, "n_bases", m, n, f"exceeds the {n} training vectors")
            m = n
        self.n_bases_ = m
        rows = _chunk_rows(max(d, m))

        # pass 1: mean; pass 2: squared norms and sum of the prepared rows
        total = np.zeros(d, dtype=np.float64)
        for s in range(0, n, rows):
            total += X[s : s + rows].sum(axis=0, dtype=np.float64)
        self.mean_ = total / n
        sq = np.empty(n, dtype=np.float64)
        xsum = np.zeros(d, dtype=np.float64)
        for s in range(0, n, rows):
            Xc = self._prepare(X[s : s + rows])
            sq[s : s + rows] = np.einsum("ij,ij->i", Xc, Xc)
            xsum += Xc.sum(axis=0)
        if not sq.max() > 0:
            raise ValidationError("ScalableGraphHashing cannot fit constant training data (every vector is equal)")
        rho = 2.0 * float(sq.max()) if self.rho is None else float(self.rho)

        self.bases_ = self._prepare(X[np.sort(rng.choice(n, size=m, replace=False))]).astype(np.float32)
        bases = self.bases_.astype(np.float64)
        b2 = np.einsum("ij,ij->i", bases, bases)
        # mean of ||x_i - a_j||² over all (training vector, basis) pairs, from the streamed statistics
        self.delta_ = float(sq.mean() + b2.mean() - 2.0 * (xsum / n) @ bases.mean(axis=0))
        self.rho_ = rho

        # pass 3: kernel features (kept) and their mean
        K = np.empty((n, m), dtype=np.float32)
        ksum = np.zeros(m, dtype=np.float64)
        for s in range(0, n, rows):
            K[s : s + rows] = self._raw_kernel(self._prepare(X[s : s + rows]), bases, b2)
            ksum += K[s : s + rows].sum(axis=0, dtype=np.float64)
        self.kernel_mean_ = (ksum / n).astype(np.float32)

        # pass 4: centre K in place; accumulate K̄ᵀK̄ and C = K̄ᵀ P (P without its constant coordinate)
        e = math.e
        alpha = math.sqrt(2.0 * (e * e - 1.0) / (e * rho))
        beta = math.sqrt((e * e + 1.0) / e)
        KK = np.zeros((m, m), dtype=np.float64)
        C = np.zeros((m, d + 1), dtype=np.float64)
        for s in range(0, n, rows):
            K[s : s + rows] -= self.kernel_mean_
            Kc = K[s : s + rows].astype(np.float64)
            f = np.exp(-sq[s : s + rows] / rho)
            P = np.empty((len(Kc), d + 1), dtype=np.float64)
            np.multiply(self._prepare(X[s : s + rows]), (alpha * f)[:, None], out=P[:, :d])
            P[:, d] = beta * f
            KK += Kc.T @ Kc
            C += Kc.T @ P
        B = KK + _GAMMA * max(np.trace(KK) / m, np.finfo(np.float64).tiny) * np.eye(m)
        R = c * (C @ C.T)  # K̄ᵀ R_0 K̄

        W = np.zeros((m, c), dtype=np.float64)

        def sign_term(w: np.ndarray) -> np.ndarray:  # v = K̄ᵀ sgn(K̄ w)
            b = np.where(K @ w.astype(np.float32) > 0, 1.0, -1.0).astype(np.float32)
            return (K.T @ b).astype(np.float64)

        for t in range(c):
            w = _top_generalized_eigvec(R, B)
            v = sign_term(w)
            R -= np.outer(v, v)
            W[:, t] = w
        for _ in range(int(self.n_refine)):
            for t in rng.permutation(c):
                v = sign_term(W[:, t])
                R += np.outer(v, v)
                w = _top_generalized_eigvec(R, B)
                v = sign_term(w)
                R -= np.outer(v, v)
                W[:, t] = w
        self.projections_ = W.astype(np.float32)
        self._fit_bits = self._encode_chunks(K, rows)

    # -- encoding -----------------------------------------------------------------------------------
    def _encode_chunks(self, K: np.ndarray, rows: int) -> np.ndarray:
        """Bits of stored centred kernel features, in the row chunks :meth:`_project` uses."""
        out = np.empty((K.shape[0], self.projections_.shape[1]), dtype=bool)
        for s in range(0, K.shape[0], rows):
            out[s : s + rows] = (K[s : s + rows] @ self.projections_) > 0
        return out

    def _centred_kernel_chunks(self, X: np.ndarray):
        """Yield ``(start, K̄(X[start : start + rows]))``: centred float32 kernel features, computed
        exactly as ``fit`` computes those of the training set (same chunking, same rounding)."""
        bases = self.bases_.astype(np.float64)
        b2 = np.einsum("ij,ij->i", bases, bases)
        rows = _chunk_rows(max(X.shape[1], bases.shape[0]))
        for s in range(0, X.shape[0], rows):
            K = self._raw_kernel(self._prepare(X[s : s + rows]), bases, b2)
            K -= self.kernel_mean_
            yield s, K

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Kernel projections ``K̄(X) W`` (n, n_bits) float32; positive entries are the 1 bits."""
        out = np.empty((X.shape[0], self.projections_.shape[1]), dtype=np.float32)
        for s, K in self._centred_kernel_chunks(X):
            out[s : s + len(K)] = K @ self.projections_
        return out

    def kernel_features(self, X) -> np.ndarray:
        """Centred kernel features ``K̄(X)`` of shape (n, n_bases_), float32."""
        X = self._validated(X)
        out = np.empty((X.shape[0], self.bases_.shape[0]), dtype=np.float32)
        for s, K in self._centred_kernel_chunks(X):
            out[s : s + len(K)] = K
        return out
