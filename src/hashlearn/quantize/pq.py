"""Product quantization (PQ) and optimized product quantization (OPQ)."""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError
from ..params import check_int_param
from ..registry import register
from . import _kernels
from ._kmeans import DEFAULT_POINTS_PER_CENTROID, product_kmeans
from .base import BaseQuantizer
from .search import sdc_lookup

__all__ = ["PQ", "OPQ"]

_BLOCK = 65536  # rows encoded per kernel call (bounds temporaries of rotated inputs)


@register("pq", kind="quantizer")
class PQ(BaseQuantizer):
    """Product quantizer: ``M`` sub-vectors, each replaced by the nearest of ``2**nbits`` centroids.

    The vector is cut into ``M`` contiguous sub-vectors of ``d / M`` dimensions; each sub-space has
    its own k-means codebook. A code is ``M`` bytes; the squared L2 distance of a float query to a
    code's reconstruction is a sum of ``M`` table look-ups (asymmetric distance computation, ADC).

    Parameters
    ----------
    M : int, default 8
        Number of sub-quantizers (bytes per code). Must divide the dimension.
    nbits : int, default 8
        Bits per sub-code, 1 to 8 (``2**nbits`` centroids per sub-space). Codes keep one byte per
        sub-code whatever ``nbits``.
    n_iter : int, default 25
        k-means iterations per sub-space.
    max_points_per_centroid : int, default 256
        Training vectors are subsampled to at most this many per centroid (faiss' default).
    random_state : int, numpy Generator or None
        Seeds the subsampling and the k-means initialisation (resolved at fit).

    Attributes
    ----------
    codebooks_ : float32 array (M, 2**nbits, d / M)
    n_features_in_ : int
    fingerprint_ : str — identifies the codebook; carried by the codes :meth:`encode` returns

    References
    ----------
    Jégou, Douze & Schmid, "Product quantization for nearest neighbor search", IEEE TPAMI 33(1), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.quantize import PQ
    >>> X = np.random.default_rng(0).normal(size=(2000, 16)).astype("float32")
    >>> pq = PQ(4, nbits=4, random_state=0).fit(X)
    >>> codes = pq.encode(X[:5])
    >>> codes.shape, codes.dtype.name
    ((5, 4), 'uint8')
    >>> D, I = pq.search(X[:2], pq.encode(X), 3)
    >>> I.shape
    (2, 3)
    """

    def __init__(self, M: int = 8, *, nbits: int = 8, n_iter: int = 25,
                 max_points_per_centroid: int = DEFAULT_POINTS_PER_CENTROID, random_state=None):
        self.M = M
        self.nbits = nbits
        self.n_iter = n_iter
        self.max_points_per_centroid = max_points_per_centroid
        self.random_state = random_state

    # -- shape -------------------------------------------------------------------------------------
    @property
    def n_codes(self) -> int:
        """Sub-codes per vector (= ``M``)."""
        return int(self.M)

    @property
    def dsub(self) -> int:
        """Dimension of each sub-space (``n_features_in_ / M``)."""
        self._check_fitted()
        return self.n_features_in_ // int(self.M)

    # -- hooks -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_int_param(self.M, "M", min_val=1, max_val=4096)
        check_int_param(self.nbits, "nbits", min_val=1, max_val=8)
        check_int_param(self.n_iter, "n_iter", min_val=1)
        check_int_param(self.max_points_per_centroid, "max_points_per_centroid", min_val=1)

    def _check_train(self, X: np.ndarray) -> None:
        d = X.shape[1]
        if d % int(self.M):
            raise ValidationError(
                f"{type(self).__name__} needs a dimension divisible by M: d = {d} is not a multiple of M = {self.M} "
                f"(pad the vectors with zeros to {-(-d // int(self.M)) * int(self.M)} dimensions or pick another M)"
            )
        super()._check_train(X)

    def _subsample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        limit = int(self.max_points_per_centroid) * self.n_centroids
        if X.shape[0] <= limit:
            return X
        return X[np.sort(rng.choice(X.shape[0], size=limit, replace=False))]

    def _train_codebooks(self, X: np.ndarray, rng, n_iter: int, init: np.ndarray | None = None) -> np.ndarray:
        return product_kmeans(X, int(self.M), self.n_centroids, n_iter=n_iter, rng=rng, init=init)

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        self.codebooks_ = self._train_codebooks(self._subsample(X, rng), rng, int(self.n_iter))

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        """Map input vectors to the space the codebooks live in (identity for PQ)."""
        return X

    def _codebooks_t(self) -> np.ndarray:
        return np.ascontiguousarray(self.codebooks_.transpose(0, 2, 1))

    def _encode(self, X: np.ndarray) -> np.ndarray:
        CT = self._codebooks_t()
        out = np.empty((X.shape[0], int(self.M)), np.uint8)
        for s in range(0, X.shape[0], _BLOCK):
            out[s : s + _BLOCK] = _kernels.encode_pq_kernel(
                np.ascontiguousarray(self._preprocess(X[s : s + _BLOCK]), dtype=np.float32), CT)
        return out

    def _decode_rotated(self, codes: np.ndarray) -> np.ndarray:
        M, _, dsub = self.codebooks_.shape
        out = np.empty((codes.shape[0], M, dsub), np.float32)
        for m in range(M):
            out[:, m] = self.codebooks_[m][codes[:, m]]
        return out.reshape(codes.shape[0], M * dsub)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self._decode_rotated(codes)

    def _distance_tables(self, Q: np.ndarray) -> np.ndarray:
        return _kernels.tables_l2_kernel(np.ascontiguousarray(self._preprocess(Q), dtype=np.float32), self._codebooks_t())

    def _ip_tables(self, Q: np.ndarray) -> np.ndarray:
        M, _, dsub = self.codebooks_.shape
        Qs = np.ascontiguousarray(self._preprocess(Q), dtype=np.float32).reshape(Q.shape[0], M, dsub)
        return -np.einsum("qmd,mkd->qmk", Qs, self.codebooks_, optimize=True)

    def _codebook_arrays(self) -> list[np.ndarray]:
        return [self.codebooks_]

    # -- symmetric distances ------------------------------------------------------------------------
    def sdc_table(self) -> np.ndarray:
        """Centroid-to-centroid squared distances of every sub-quantizer: float32 (M, ksub, ksub)."""
        self._check_fitted()
        cached = getattr(self, "_sdc_cache", None)
        if cached is None or cached[0] != self.fingerprint_:
            C = self.codebooks_
            sq = (C * C).sum(-1)
            table = sq[:, :, None] + sq[:, None, :] - 2.0 * np.einsum("mid,mjd->mij", C, C)
            cached = (self.fingerprint_, np.maximum(table, 0.0).astype(np.float32))
            self._sdc_cache = cached
        return cached[1]

    def sdc_tables(self, query_codes) -> np.ndarray:
        """Per-query symmetric-distance tables (nq, M, ksub), read from :meth:`sdc_table`."""
        return sdc_lookup(self.sdc_table(), self.check_codes(query_codes, name="query codes"))

    # -- interop -----------------------------------------------------------------------------------
    def _faiss_pq_index(self):
        import faiss

        index = faiss.IndexPQ(self.n_features_in_, int(self.M), int(self.nbits))
        faiss.copy_array_to_vector(self.codebooks_.ravel(), index.pq.centroids)
        index.is_trained = True
        return index

    def to_faiss(self):
        """An empty faiss index with these codebooks (``IndexPQ``); ``index.add(X)`` gives the same codes."""
        self._check_fitted()
        return self._faiss_pq_index()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(M={self.M}, nbits={self.nbits})"


def _random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


@register("opq", kind="quantizer")
class OPQ(PQ):
    """Optimized product quantizer: an orthogonal rotation learned jointly with the PQ codebooks.

    Vectors are rotated (``X @ rotation_``) before product quantization; the rotation and the
    codebooks are optimised alternately (the non-parametric OPQ of Ge et al.): k-means on the rotated
    data, then the rotation that best maps the data onto its reconstructions (orthogonal Procrustes).
    Because the rotation is orthogonal, distances are those of the original space.

    Parameters
    ----------
    M : int, default 8
        Number of sub-quantizers (bytes per code). Must divide the dimension.
    nbits : int, default 8
        Bits per sub-code, 1 to 8.
    n_iter : int, default 25
        k-means iterations of the final codebooks.
    opq_iter : int, default 50
        Alternations between codebooks and rotation (faiss' ``OPQMatrix.niter``).
    opq_pq_iter : int, default 4
        k-means iterations inside each alternation (warm-started; faiss' ``niter_pq``).
    max_points_per_centroid : int, default 256
        Training subsample: at most this many vectors per centroid.
    random_state : int, numpy Generator or None

    Attributes
    ----------
    rotation_ : float32 array (d, d), orthogonal
    codebooks_ : float32 array (M, 2**nbits, d / M), in the rotated space
    n_features_in_ : int
    fingerprint_ : str

    References
    ----------
    Ge, He, Ke & Sun, "Optimized Product Quantization for Approximate Nearest Neighbor Search",
    CVPR 2013 (and "Optimized Product Quantization", IEEE TPAMI 2014).

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.quantize import OPQ
    >>> X = np.random.default_rng(0).normal(size=(2000, 16)).astype("float32")
    >>> opq = OPQ(4, nbits=4, opq_iter=5, random_state=0).fit(X)
    >>> bool(np.allclose(opq.rotation_ @ opq.rotation_.T, np.eye(16), atol=1e-5))
    True
    """

    def __init__(self, M: int = 8, *, nbits: int = 8, n_iter: int = 25, opq_iter: int = 50, opq_pq_iter: int = 4,
                 max_points_per_centroid: int = DEFAULT_POINTS_PER_CENTROID, random_state=None):
        super().__init__(M, nbits=nbits, n_iter=n_iter, max_points_per_centroid=max_points_per_centroid,
                         random_state=random_state)
        self.opq_iter = opq_iter
        self.opq_pq_iter = opq_pq_iter

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.opq_iter, "opq_iter", min_val=0)
        check_int_param(self.opq_pq_iter, "opq_pq_iter", min_val=1)

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        Xs = self._subsample(X, rng)
        d = Xs.shape[1]
        R = _random_rotation(d, rng).astype(np.float32)
        Xd = Xs.astype(np.float64)
        # faiss' OPQMatrix: 40 k-means iterations on the first rotation, then warm-started short runs.
        books = self._train_codebooks(Xs @ R, rng, max(int(self.opq_pq_iter), 40))
        for _ in range(int(self.opq_iter)):
            Xr = np.ascontiguousarray(Xs @ R)
            self.codebooks_ = books
            Y = self._decode_rotated(self._encode_rotated(Xr))
            U, _, Vt = np.linalg.svd(Xd.T @ Y.astype(np.float64))
            R = (U @ Vt).astype(np.float32)
            books = self._train_codebooks(np.ascontiguousarray(Xs @ R), rng, int(self.opq_pq_iter), init=books)
        self.rotation_ = R
        self.codebooks_ = self._train_codebooks(np.ascontiguousarray(Xs @ R), rng, int(self.n_iter), init=books)

    def _encode_rotated(self, Xr: np.ndarray) -> np.ndarray:
        return _kernels.encode_pq_kernel(Xr, self._codebooks_t())

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        return X @ self.rotation_

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self._decode_rotated(codes) @ self.rotation_.T

    def _codebook_arrays(self) -> list[np.ndarray]:
        return [self.rotation_, self.codebooks_]

    def to_faiss(self):
        """An empty faiss ``IndexPreTransform(LinearTransform(rotation), IndexPQ)`` with these parameters."""
        import faiss

        index = faiss.IndexPreTransform(self.rotation_faiss(), self._faiss_pq_index())
        index.is_trained = True
        return index

    def rotation_faiss(self):
        """The rotation as a trained faiss ``LinearTransform`` (y = x @ rotation_)."""
        import faiss

        self._check_fitted()
        d = self.n_features_in_
        lt = faiss.LinearTransform(d, d, False)
        faiss.copy_array_to_vector(np.ascontiguousarray(self.rotation_.T).ravel(), lt.A)
        lt.is_trained = True
        return lt
