"""Anchor Graph Hashing, one- and two-layer (Liu, Wang, Kumar & Chang, ICML 2011).

AGH replaces the n × n neighbourhood graph of spectral hashing by a low-rank *anchor graph*:

1. ``m`` anchors ``u_1 .. u_m`` are K-means centres of the training data (a few Lloyd iterations, as
   in the paper);
2. every vector ``x`` is linked to its ``s`` nearest anchors ``⟨x⟩`` with Gaussian weights,
   normalised to sum to one::

       Z(x)_j = exp(-||x - u_j||² / t) / Σ_{j' ∈ ⟨x⟩} exp(-||x - u_j'||² / t)   for j ∈ ⟨x⟩, else 0,

   so the (n, m) matrix ``Z`` of the training set is row-stochastic and ``s``-sparse. The bandwidth
   is ``t = σ²`` with ``σ`` the mean distance of a training vector to its ``s``-th nearest anchor (the
   rule of the authors' code: ``sigma = mean(sqrt(d²_s))``, ``exp(-d²/σ²)``);
3. the anchor graph ``A = Z Λ⁻¹ Zᵀ`` with ``Λ = diag(Zᵀ 1)`` is doubly stochastic and its
   eigenvectors come from the m × m matrix ``M = Λ^{-1/2} Zᵀ Z Λ^{-1/2}``: for an eigenpair
   ``M v = σ_k v`` the graph eigenvector is ``Z Λ^{-1/2} v / √σ_k``. The trivial eigenvector
   (eigenvalue 1) is dropped and the next ``r`` are kept, giving the projection
   ``W = √n Λ^{-1/2} V Σ^{-1/2}`` (m × r) and the spectral embedding ``Y = Z W`` with
   ``Yᵀ Y = n I`` and ``1ᵀ Y = 0`` on the training set;
4. out of sample: ``y(x) = Z(x) W``, whose sign gives the bits (one-layer AGH).

Two-layer AGH (paper Section 4.2) spends two bits on each of the first ``r/2`` eigenfunctions: the
first bit is ``[y_k(x) > 0]``; the second thresholds each half separately, ``[y_k(x) > b_k⁺]`` where
``y_k(x) > 0`` and ``[y_k(x) < b_k⁻]`` where ``y_k(x) <= 0``, i.e. it is 1 at both far ends of the
eigenfunction. On the training set the relaxed second-layer function is
``f = [y⁺ - b⁺ ; -y⁻ + b⁻]`` (``y⁺``/``y⁻`` the entries with ``y_k > 0`` / ``<= 0``), and the thresholds
minimise its graph smoothness ``fᵀ (I - A) f`` on the anchor graph ``A = Z Λ⁻¹ Zᵀ`` subject to the
balance constraint ``1ᵀ f = 0``. The minimiser has a closed form, evaluated as in the authors'
``TwoLayerAGH_Train``; with ``1⁺`` the indicator of ``y_k > 0`` (``n⁺`` points, ``n⁻`` the others) and
``|y|`` the absolute embedding::

    s₁ = 1⁺ᵀ A |y|,   s₂ = 1⁺ᵀ (I - A) 1⁺,   s₃ = 1⁺ᵀ y,
    b⁺ = (2 s₃ + n⁻ (s₃ - s₁) / s₂) / n,     b⁻ = (n⁺ (s₃ - s₁) / s₂ - 2 s₃) / n,

all evaluated through ``Z`` in ``O(n s)``. Bits are laid out as the authors' code does: the ``⌈r/2⌉``
first-layer bits, then the ``⌊r/2⌋`` second-layer bits (for odd ``r`` the last eigenfunction has a
first-layer bit only).

Cost: K-means and the nearest-anchor search are ``O(n m d)`` per pass, the graph is accumulated as a
sparse ``Z`` (``n s`` entries) and everything else works on m × m matrices: fitting is linear in
``n``. The training vectors are processed in row chunks. Codes of the training vectors are those of
their out-of-sample encoding (the paper defines them so): ``fit_transform(X)`` returns the codes that
``fit`` computed, which equal ``transform(X)``.

Spectral embeddings come from ``m`` anchors, so ``n_bits`` must be smaller than ``n_anchors``
(one-layer) or ``ceil(n_bits / 2)`` must be (two-layer); the data dimension may be anything. Limits
set by the training data are not errors: with fewer training vectors than ``n_anchors``, ``fit`` warns
and uses ``n_anchors_ = n`` anchors, and with fewer non-trivial eigenvectors than the code needs (few
or duplicate training vectors) it warns and learns the ``n_bits_`` bits that they give, as
scikit-learn's estimators do with an ``n_components`` larger than the data allow.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans

from ..codes import pack
from ..errors import ValidationError
from ._validation import check_int_param, check_real_param, warn_data_limit
from .base import BaseHasher
from .registry import register

__all__ = ["AnchorGraphHashing", "TwoLayerAnchorGraphHashing"]

# Elements (rows × columns) per chunk in the streamed passes: 4M, i.e. 32 MB of float64 temporaries.
_CHUNK_ELEMS = 1 << 22
# Eigenvalues of M at or above this are treated as trivial (the constant eigenvector; also those of a
# disconnected anchor graph), as in the authors' code.
_TRIVIAL_EIGENVALUE = 1.0 - 1e-3


def _chunk_rows(n_cols: int) -> int:
    return max(1, _CHUNK_ELEMS // max(1, n_cols))


def nearest_anchors(X: np.ndarray, anchors: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and squared Euclidean distances of the ``s`` nearest anchors of every row of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    anchors : ndarray of shape (m, d)
    s : int, 1 <= s <= m

    Returns
    -------
    idx : ndarray of shape (n, s), int64
        Anchor indices, nearest first (ties: lower index first).
    sqdist : ndarray of shape (n, s), float64
        Their squared distances, non-decreasing along each row.
    """
    n, m = X.shape[0], anchors.shape[0]
    A = anchors.astype(np.float64)
    a2 = np.einsum("ij,ij->i", A, A)
    idx = np.empty((n, s), dtype=np.int64)
    sqd = np.empty((n, s), dtype=np.float64)
    rows = _chunk_rows(max(X.shape[1], m))
    for start in range(0, n, rows):
        B = X[start : start + rows].astype(np.float64)
        D = np.einsum("ij,ij->i", B, B)[:, None] - 2.0 * (B @ A.T) + a2
        np.maximum(D, 0.0, out=D)
        part = np.argpartition(D, s - 1, axis=1)[:, :s] if s < m else np.broadcast_to(np.arange(m), D.shape)
        dpart = np.take_along_axis(D, part, axis=1)
        order = np.lexsort((part, dpart), axis=1) if s > 1 else np.zeros((len(B), 1), dtype=np.int64)
        idx[start : start + rows] = np.take_along_axis(part, order, axis=1)
        sqd[start : start + rows] = np.take_along_axis(dpart, order, axis=1)
    return idx, sqd


def anchor_weights(sqdist: np.ndarray, sigma: float) -> np.ndarray:
    """Row-normalised Gaussian weights ``exp(-d² / σ²) / Σ exp(-d² / σ²)`` of nearest-anchor distances.

    The smallest distance of each row is subtracted before exponentiating (the normalisation cancels
    it), so a vector far from every anchor still gets finite weights summing to one.
    """
    W = np.exp(-(sqdist - sqdist[:, :1]) / (sigma * sigma))
    W /= W.sum(axis=1, keepdims=True)
    return W


def _sign_fix(V: np.ndarray) -> np.ndarray:
    """Columns of ``V`` with their largest-magnitude entry made positive (LAPACK-independent output)."""
    signs = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return V * signs


class _FitCodesMixin:
    """``fit_transform`` returns the training codes that ``_fit`` computed (in ``self._fit_bits``).

    For methods whose training codes are by definition their out-of-sample encoding, this saves the
    second encoding pass; ``fit`` alone discards them so a fitted estimator never holds O(n) state.
    """

    def fit(self, X, y=None):
        super().fit(X, y)
        self.__dict__.pop("_fit_bits", None)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        super().fit(X, y)
        return pack(self.__dict__.pop("_fit_bits"))


@register("agh")
class AnchorGraphHashing(_FitCodesMixin, BaseHasher):
    """One-layer Anchor Graph Hashing: signs of the anchor-graph Laplacian eigenfunctions.

    Bit ``k`` of ``x`` is ``[Z(x) w_k > 0]`` where ``Z(x)`` holds the Gaussian weights of the
    ``n_nearest`` nearest K-means anchors of ``x`` (summing to one) and ``w_k`` extends the ``k``-th
    non-trivial eigenvector of the anchor graph (see the module docstring for the derivation).

    Parameters
    ----------
    n_bits : int, default 64
        Code length; must be smaller than ``n_anchors`` (see ``n_bits_``).
    n_anchors : int, default 300
        Number of K-means anchors ``m`` (the paper's value); at most the number of training vectors
        (see ``n_anchors_``).
    n_nearest : int, default 2
        Number ``s >= 2`` of nearest anchors each vector links to (the paper uses 2 to 5).
    sigma : float or None, default None
        Gaussian kernel width ``σ``, weights ``exp(-d² / σ²)``. None: the mean distance of the training
        vectors to their ``n_nearest``-th nearest anchor.
    kmeans_iter : int, default 5
        Lloyd iterations of the anchor K-means (k-means++ seeding, one initialisation).
    random_state : None, int or numpy Generator, default None
        Seed of the K-means, resolved in ``fit``.

    Attributes
    ----------
    anchors_ : ndarray of shape (n_anchors_, n_features_in_), float32
        K-means centres; centres that no training vector links to are dropped.
    n_anchors_ : int
        Anchors used: ``min(n_anchors, n_samples)`` K-means centres (with a warning when the training
        set is the smaller), less those dropped.
    sigma_ : float
        Kernel width used.
    projections_ : ndarray of shape (n_anchors_, n_eigen), float64
        ``W = √n Λ^{-1/2} V Σ^{-1/2}``; ``n_eigen = n_bits_`` (one layer) or ``ceil(n_bits_ / 2)``.
    eigenvalues_ : ndarray of shape (n_eigen,), float64
        Eigenvalues ``σ_k`` of ``M`` of the kept eigenvectors (decreasing, below 1).
    n_bits_ : int
        Code length learned: ``n_bits``, or fewer (with a warning) when the anchor graph has fewer
        non-trivial eigenvectors than the code needs.
    n_features_in_ : int

    References
    ----------
    W. Liu, J. Wang, S. Kumar and S.-F. Chang, "Hashing with Graphs", ICML 2011.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> agh = AnchorGraphHashing(n_bits=24, n_anchors=50, random_state=0).fit(X)
    >>> agh.transform(X).shape
    (500, 1)
    >>> Z = agh.anchor_graph(X)                 # row-stochastic, n_nearest non-zeros per row
    >>> bool(np.allclose(Z.sum(axis=1), 1.0)), Z.nnz == 2 * len(X)
    (True, True)
    """

    _n_layers = 1

    def __init__(self, n_bits=64, *, n_anchors=300, n_nearest=2, sigma=None, kmeans_iter=5, random_state=None):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_nearest = n_nearest
        self.sigma = sigma
        self.kmeans_iter = kmeans_iter
        self.random_state = random_state

    # -- parameters ---------------------------------------------------------------------------------
    def _n_eigen(self, n_bits: int) -> int:
        """Eigenfunctions a code of ``n_bits`` bits uses: ``n_bits`` (one layer) or ``ceil(n_bits / 2)``."""
        return int(n_bits) if self._n_layers == 1 else math.ceil(int(n_bits) / 2)

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_anchors, "n_anchors", min_val=2)
        check_int_param(self.n_nearest, "n_nearest", min_val=2)
        check_int_param(self.kmeans_iter, "kmeans_iter", min_val=1)
        if self.n_nearest > self.n_anchors:
            raise ValidationError(f"n_nearest={self.n_nearest} exceeds n_anchors={self.n_anchors}")
        check_real_param(self.sigma, "sigma", min_val=0, include_boundaries="neither", allow_none=True)
        r = self._n_eigen(self.n_bits)
        if r >= self.n_anchors:
            what = "n_bits" if self._n_layers == 1 else f"ceil(n_bits / 2) = {r}"
            raise ValidationError(
                f"{type(self).__name__}: {what} must be smaller than n_anchors={self.n_anchors} (an anchor "
                f"graph on m anchors has m - 1 non-trivial eigenvectors), got n_bits={self.n_bits}"
            )

    # -- fitting ------------------------------------------------------------------------------------
    _min_samples = 2

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        n = X.shape[0]
        m, s = int(self.n_anchors), int(self.n_nearest)
        if n < m:
            warn_data_limit(self, "n_anchors", m, n, f"exceeds the {n} training vectors")
            m = n
        if s > m:
            raise ValidationError(
                f"{type(self).__name__}: n_nearest={s} exceeds the {m} anchors that {n} training vectors give"
            )
        km = KMeans(n_clusters=m, n_init=1, max_iter=int(self.kmeans_iter),
                    random_state=int(rng.integers(2**31 - 1)))
        anchors = km.fit(X).cluster_centers_.astype(np.float32)

        idx, sqd = nearest_anchors(X, anchors, s)
        if self.sigma is None:
            sigma = float(np.mean(np.sqrt(sqd[:, s - 1])))
            if not sigma > 0:
                raise ValidationError(
                    f"cannot estimate sigma: every training vector coincides with its {s} nearest anchors "
                    f"(too few distinct vectors for n_anchors={m}); pass sigma or lower n_anchors"
                )
        else:
            sigma = float(self.sigma)
        w = anchor_weights(sqd, sigma)
        degree = np.bincount(idx.ravel(), weights=w.ravel(), minlength=anchors.shape[0])
        used = degree > 0
        if not used.all():
            # anchors in no training row: dropping them changes no weight of Z; the search is redone
            # with the kept anchors so that fit and transform compute Z with the very same arithmetic
            anchors = anchors[used]
            idx, sqd = nearest_anchors(X, anchors, s)
            w = anchor_weights(sqd, sigma)
            degree = np.bincount(idx.ravel(), weights=w.ravel(), minlength=anchors.shape[0])
        Z = sp.csr_matrix((w.ravel(), idx.ravel(), np.arange(0, n * s + 1, s)), shape=(n, anchors.shape[0]))
        evals, V = self._graph_spectrum(Z, degree)
        inv_sqrt = 1.0 / np.sqrt(degree)
        self.anchors_ = anchors
        self.n_anchors_ = int(anchors.shape[0])
        self.sigma_ = sigma
        self.eigenvalues_ = evals
        self.projections_ = math.sqrt(n) * inv_sqrt[:, None] * V / np.sqrt(evals)
        Y = self._embed(idx, w)
        if self._n_layers == 2:
            self.thresholds_ = self._second_layer_thresholds(Y, Z, degree)
        self._fit_bits = self._margins_from_embedding(Y) > 0

    def _graph_spectrum(self, Z: sp.csr_matrix, degree: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The non-trivial eigenpairs of ``M = Λ^{-1/2} Zᵀ Z Λ^{-1/2}`` the code uses, by decreasing eigenvalue.

        Sets ``n_bits_``: if the graph has fewer non-trivial eigenvectors than ``n_bits`` needs, the code
        is shortened to what they give, with a warning (an error if there is none).
        """
        inv_sqrt = 1.0 / np.sqrt(degree)
        M = (Z.T @ Z).toarray()
        M *= inv_sqrt[:, None]
        M *= inv_sqrt[None, :]
        evals, V = np.linalg.eigh((M + M.T) / 2)
        order = np.argsort(evals)[::-1]
        evals, V = evals[order], V[:, order]
        ok = (evals > 0) & (evals < _TRIVIAL_EIGENVALUE)
        available = int(ok.sum())
        r = self._n_eigen(self.n_bits)
        if available == 0:
            raise ValidationError(
                f"{type(self).__name__}: the anchor graph of {Z.shape[0]} training vectors has no non-trivial "
                f"eigenvector (duplicate or disconnected training data?); cannot learn any bit"
            )
        if available < r:
            bits = available if self._n_layers == 1 else min(int(self.n_bits), 2 * available)
            warn_data_limit(self, "n_bits", self.n_bits, bits,
                            f"needs {r} non-trivial eigenvectors of the anchor graph, which has {available} "
                            f"(few, duplicate or clustered training vectors?)")
            self.n_bits_ = bits
            r = available
        return evals[ok][:r], _sign_fix(V[:, ok][:, :r])

    def _second_layer_thresholds(self, Y: np.ndarray, Z: sp.csr_matrix, degree: np.ndarray) -> np.ndarray:
        """(2, n_bits_ - ceil(n_bits_/2)) thresholds ``b⁺`` (row 0) and ``b⁻`` (row 1); see the module doc."""
        n = Y.shape[0]
        r2 = self.n_bits_ - Y.shape[1]
        T = np.zeros((2, r2), dtype=np.float64)
        for k in range(r2):
            y = Y[:, k]
            pos = y > 0
            n1 = int(pos.sum())
            n2 = n - n1
            left = np.asarray(Z[pos].sum(axis=0)).ravel()  # Zᵀ 1⁺
            s1 = float(left @ ((Z.T @ np.abs(y)) / degree))  # 1⁺ᵀ A |y|
            s2 = n1 - float(left @ (left / degree))  # 1⁺ᵀ (I - A) 1⁺: weight of the cut
            s3 = float(y[pos].sum())
            if s2 > 1e-12 * max(n1, 1):
                T[0, k] = (2 * s3 + n2 * (s3 - s1) / s2) / n
                T[1, k] = (n1 * (s3 - s1) / s2 - 2 * s3) / n
            else:  # the sign split cuts no edge: fall back to splitting each half at its median
                T[0, k] = float(np.median(y[pos])) if n1 else 0.0
                T[1, k] = float(np.median(y[~pos])) if n2 else 0.0
        return T

    # -- encoding -----------------------------------------------------------------------------------
    def _embed(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Spectral embedding ``Z W`` (n, n_eigen) from nearest-anchor indices and weights.

        Each row is ``Σ_k w_k W[idx_k]``, summed in the same order whatever the chunking.
        """
        W = self.projections_
        out = np.empty((idx.shape[0], W.shape[1]), dtype=np.float64)
        rows = _chunk_rows(idx.shape[1] * W.shape[1])
        for s in range(0, idx.shape[0], rows):
            out[s : s + rows] = np.einsum("ns,nsr->nr", w[s : s + rows], W[idx[s : s + rows]])
        return out

    def _embed_vectors(self, X: np.ndarray) -> np.ndarray:
        """Spectral embedding of validated rows, streamed in the row chunks of :func:`nearest_anchors`."""
        out = np.empty((X.shape[0], self.projections_.shape[1]), dtype=np.float64)
        rows = _chunk_rows(max(X.shape[1], self.anchors_.shape[0]))
        for s in range(0, X.shape[0], rows):
            idx, sqd = nearest_anchors(X[s : s + rows], self.anchors_, int(self.n_nearest))
            out[s : s + rows] = self._embed(idx, anchor_weights(sqd, self.sigma_))
        return out

    def _margins_from_embedding(self, Y: np.ndarray) -> np.ndarray:
        if self._n_layers == 1:
            return Y
        r2 = self.n_bits_ - Y.shape[1]
        Y2 = Y[:, :r2]
        second = np.where(Y2 > 0, Y2 - self.thresholds_[0], -Y2 + self.thresholds_[1])
        return np.concatenate([Y, second], axis=1)

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Real values (n, n_bits_) whose positive entries are the 1 bits (also :meth:`margins`)."""
        return self._margins_from_embedding(self._embed_vectors(X))

    def anchor_graph(self, X) -> sp.csr_matrix:
        """The anchor-graph rows ``Z(X)``: Gaussian weights of each vector's ``n_nearest`` nearest anchors.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        Z : scipy.sparse.csr_matrix of shape (n, n_anchors_), float64
            Row-stochastic, exactly ``n_nearest`` non-zeros per row (nearest anchor first).
        """
        X = self._validated(X)
        s = int(self.n_nearest)
        idx, sqd = nearest_anchors(X, self.anchors_, s)
        w = anchor_weights(sqd, self.sigma_)
        n = X.shape[0]
        return sp.csr_matrix((w.ravel(), idx.ravel(), np.arange(0, n * s + 1, s)), shape=(n, self.anchors_.shape[0]))

    def embed(self, X) -> np.ndarray:
        """Continuous spectral embedding ``Z(X) W`` of shape (n, n_eigen), before any thresholding."""
        return self._embed_vectors(self._validated(X))


@register("agh2")
class TwoLayerAnchorGraphHashing(AnchorGraphHashing):
    """Two-layer Anchor Graph Hashing: two bits per anchor-graph eigenfunction.

    Same anchor graph and eigenfunctions as :class:`AnchorGraphHashing`, but only ``ceil(n_bits / 2)``
    of them: bit ``k`` is ``[y_k(x) > 0]`` and bit ``ceil(n_bits/2) + k`` is ``[y_k(x) > b_k⁺]`` where
    ``y_k(x) > 0``, ``[y_k(x) < b_k⁻]`` elsewhere, with the thresholds learned in closed form from the
    training graph (see :mod:`hashlearn.hashing.anchor_graph`). Using fewer, smoother eigenfunctions
    is what lets two-layer AGH keep its precision at longer codes.

    Parameters
    ----------
    n_bits : int, default 64
        Code length; ``ceil(n_bits / 2)`` must be smaller than ``n_anchors``.
    n_anchors, n_nearest, sigma, kmeans_iter, random_state
        As in :class:`AnchorGraphHashing`.

    Attributes
    ----------
    thresholds_ : ndarray of shape (2, n_bits_ // 2), float64
        ``b⁺`` (row 0) and ``b⁻`` (row 1) of each second-layer bit.
    anchors_, n_anchors_, sigma_, projections_, eigenvalues_, n_bits_, n_features_in_
        As in :class:`AnchorGraphHashing` (``ceil(n_bits_ / 2)`` eigenvectors).

    References
    ----------
    W. Liu, J. Wang, S. Kumar and S.-F. Chang, "Hashing with Graphs", ICML 2011.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 16))
    >>> agh2 = TwoLayerAnchorGraphHashing(n_bits=24, n_anchors=50, random_state=0).fit(X)
    >>> agh2.projections_.shape[1], agh2.thresholds_.shape
    (12, (2, 12))
    """

    _n_layers = 2
