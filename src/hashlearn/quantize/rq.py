"""Residual quantization (RQ): a sum of one centroid per level, each level quantizing what is left."""

from __future__ import annotations

import numpy as np

from ..params import check_int_param
from ..registry import register
from ._kmeans import DEFAULT_POINTS_PER_CENTROID, _accumulate, train_kmeans
from .base import BaseQuantizer

__all__ = ["RQ"]

_PAIRS_PER_BLOCK = 1 << 22  # (rows × beam × centroids) distances computed at once


def _beam_step(R: np.ndarray, codes: np.ndarray, C: np.ndarray, c_sq: np.ndarray, beam_out: int):
    """One level of beam search.

    R (n, B, d) float32 residuals of the B current candidates (sorted best first), codes (n, B, l)
    uint8, C (ksub, d) the level's codebook, c_sq its squared norms. Returns the ``beam_out`` best
    extended candidates: residuals (n, beam_out, d), codes (n, beam_out, l + 1), squared residual
    norms (n, beam_out). Equal distances keep the smaller (candidate, centroid) index.
    """
    n, B, d = R.shape
    ksub = C.shape[0]
    width = min(beam_out, B * ksub)
    out_R = np.empty((n, width, d), np.float32)
    out_codes = np.empty((n, width, codes.shape[2] + 1), np.uint8)
    out_sq = np.empty((n, width), np.float32)
    rows = max(1, _PAIRS_PER_BLOCK // (B * ksub))
    for s in range(0, n, rows):
        r = R[s : s + rows]
        m = r.shape[0]
        r_sq = np.einsum("nbd,nbd->nb", r, r)
        dist = (r_sq[:, :, None] - 2.0 * (r.reshape(m * B, d) @ C.T).reshape(m, B, ksub) + c_sq[None, None, :])
        flat = dist.reshape(m, B * ksub)
        if width < B * ksub:
            part = np.argpartition(flat, width - 1, axis=1)[:, :width]
        else:
            part = np.broadcast_to(np.arange(B * ksub), (m, B * ksub))
        order = np.lexsort((part, np.take_along_axis(flat, part, 1)), axis=1)
        pick = np.take_along_axis(part, order, 1)  # (m, width), best first
        b_idx, j_idx = np.divmod(pick, ksub)
        rows_idx = np.arange(m)[:, None]
        new_r = r[rows_idx, b_idx] - C[j_idx]
        out_R[s : s + m] = new_r
        out_codes[s : s + m, :, :-1] = codes[s : s + m][rows_idx, b_idx]
        out_codes[s : s + m, :, -1] = j_idx
        out_sq[s : s + m] = np.einsum("nbd,nbd->nb", new_r, new_r)
    return out_R, out_codes, out_sq


@register("rq", kind="quantizer")
class RQ(BaseQuantizer):
    """Residual quantizer: ``levels`` codebooks; level l quantizes the residual left by levels < l.

    The reconstruction of a code is ``sum_l codebooks_[l, code[l]]``. Encoding is a beam search
    (``beam_size`` partial codes kept per level); ``beam_size=1`` is the greedy encoder of the original
    method. The codes are also coarse-to-fine "semantic ids": a prefix of a code is a coarser cluster.
    ADC distances need the squared norm of each reconstruction (:meth:`code_bias`), as in faiss'
    ``IndexResidualQuantizer`` with ``ST_norm_float``: an index storing RQ codes keeps it as a float32.

    Parameters
    ----------
    levels : int, default 8
        Number of levels (bytes per code).
    nbits : int, default 8
        Bits per level, 1 to 8.
    beam_size : int, default 5
        Candidates kept per level when encoding (faiss' default ``max_beam_size`` is 5).
    n_iter : int, default 25
        k-means iterations per level.
    refine_iter : int, default 2
        Sweeps of codebook refinement after the greedy level-by-level training: each level's
        centroids are re-fitted by least squares given the other levels, then the training set is
        re-encoded (lowers the reconstruction error; compare ``refine_iter=0`` with
        :meth:`quantization_error`).
    max_points_per_centroid : int, default 256
        Training subsample: at most this many vectors per centroid.
    random_state : int, numpy Generator or None

    Attributes
    ----------
    codebooks_ : float32 array (levels, 2**nbits, d)
    n_features_in_ : int
    fingerprint_ : str

    References
    ----------
    Chen, Guan & Wang, "Approximate Nearest Neighbor Search by Residual Vector Quantization",
    Sensors 10(12), 2010. Beam encoding: Babenko & Lempitsky, "Additive Quantization for Extreme
    Vector Compression", CVPR 2014, and faiss' ResidualQuantizer.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.quantize import RQ
    >>> X = np.random.default_rng(0).normal(size=(1000, 8)).astype("float32")
    >>> rq = RQ(3, nbits=4, random_state=0).fit(X)
    >>> rq.encode(X[:2]).shape
    (2, 3)
    """

    size_param = "levels"

    def __init__(self, levels: int = 8, *, nbits: int = 8, beam_size: int = 5, n_iter: int = 25, refine_iter: int = 2,
                 max_points_per_centroid: int = DEFAULT_POINTS_PER_CENTROID, random_state=None):
        self.levels = levels
        self.nbits = nbits
        self.beam_size = beam_size
        self.n_iter = n_iter
        self.refine_iter = refine_iter
        self.max_points_per_centroid = max_points_per_centroid
        self.random_state = random_state

    @property
    def n_codes(self) -> int:
        """Sub-codes per vector (= ``levels``)."""
        return int(self.levels)

    def _check_params(self) -> None:
        check_int_param(self.levels, "levels", min_val=1, max_val=4096)
        check_int_param(self.nbits, "nbits", min_val=1, max_val=8)
        check_int_param(self.beam_size, "beam_size", min_val=1, max_val=256)
        check_int_param(self.n_iter, "n_iter", min_val=1)
        check_int_param(self.refine_iter, "refine_iter", min_val=0)
        check_int_param(self.max_points_per_centroid, "max_points_per_centroid", min_val=1)

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        limit = int(self.max_points_per_centroid) * self.n_centroids
        if X.shape[0] > limit:
            X = X[np.sort(rng.choice(X.shape[0], size=limit, replace=False))]
        n, d = X.shape
        books = np.empty((int(self.levels), self.n_centroids, d), np.float32)
        R = X[:, None, :].copy()
        codes = np.zeros((n, 1, 0), np.uint8)
        for level in range(int(self.levels)):
            # Two candidate codebooks per level: k-means on the best candidate's residuals, and on the
            # residuals of every beam candidate (as faiss' ResidualQuantizer trains). The one whose
            # beam step leaves the smaller training error is kept: all candidates helped on SIFT10K but
            # hurt on well-separated clusters, where the runner-up candidates' residuals are large and
            # pull the centroids away (see tests/test_quantize.py).
            best = None
            pools = [R[:, 0]] if R.shape[1] == 1 else [R[:, 0], R.reshape(-1, d)]
            for pool in pools:
                C = train_kmeans(np.ascontiguousarray(pool), self.n_centroids, n_iter=int(self.n_iter), rng=rng,
                                 max_points_per_centroid=int(self.max_points_per_centroid))
                step = _beam_step(R, codes, C, (C * C).sum(1), int(self.beam_size))
                err = float(step[2][:, 0].sum())
                if best is None or err < best[0]:
                    best = (err, C, step)
            _, books[level], (R, codes, _) = best
        self.codebooks_ = books
        codes = codes[:, 0]
        for _ in range(int(self.refine_iter)):
            self._refine(X, codes)
            codes = self._encode(X)

    def _refine(self, X: np.ndarray, codes: np.ndarray) -> None:
        """One sweep of block-coordinate descent: each level's centroids become the mean of what the
        other levels leave of their assigned vectors (exact least squares for that level)."""
        books = self.codebooks_
        rec = self._decode(codes)
        for level in range(int(self.levels)):
            col = np.ascontiguousarray(codes[:, level : level + 1])
            old = books[level][codes[:, level]]
            sums, counts = _accumulate(np.ascontiguousarray(X - rec + old), col, self.n_centroids, X.shape[1])
            used = counts[0] > 0
            books[level, used] = (sums[0, used] / counts[0, used, None]).astype(np.float32)
            rec += books[level][codes[:, level]] - old

    def _encode(self, X: np.ndarray) -> np.ndarray:
        books = self.codebooks_
        sq = (books * books).sum(2)
        out = np.empty((X.shape[0], int(self.levels)), np.uint8)
        for s in range(0, X.shape[0], 16384):
            R = np.ascontiguousarray(X[s : s + 16384, None, :], dtype=np.float32)
            codes = np.zeros((R.shape[0], 1, 0), np.uint8)
            for level in range(int(self.levels)):
                R, codes, _ = _beam_step(R, codes, books[level], sq[level], int(self.beam_size))
            out[s : s + R.shape[0]] = codes[:, 0]
        return out

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        out = np.zeros((codes.shape[0], self.codebooks_.shape[2]), np.float32)
        for level in range(int(self.levels)):
            out += self.codebooks_[level][codes[:, level]]
        return out

    def _distance_tables(self, Q: np.ndarray) -> np.ndarray:
        # ||q - x||^2 = ||q||^2 - 2 sum_l <q, c_l> + ||x||^2: the last term is code_bias().
        T = -2.0 * np.einsum("qd,lkd->qlk", Q, self.codebooks_, optimize=True)
        T[:, 0, :] += (Q * Q).sum(1)[:, None]
        return np.ascontiguousarray(T, dtype=np.float32)

    def _ip_tables(self, Q: np.ndarray) -> np.ndarray:
        return -np.einsum("qd,lkd->qlk", Q, self.codebooks_, optimize=True)

    def _code_bias(self, codes: np.ndarray) -> np.ndarray:
        out = np.empty(codes.shape[0], np.float32)
        for s in range(0, codes.shape[0], 65536):
            x = self._decode(codes[s : s + 65536])
            out[s : s + x.shape[0]] = np.einsum("nd,nd->n", x, x)
        return out

    def _codebook_arrays(self) -> list[np.ndarray]:
        return [self.codebooks_]

    def to_faiss(self, *, search_type: str = "norm_float"):
        """An empty faiss ``IndexResidualQuantizer`` with these codebooks and beam size.

        ``search_type`` ``"norm_float"`` (faiss' ``ST_norm_float``: LUT search with a float32 norm
        stored per code, as this class scores) or ``"decompress"`` (faiss' default).
        """
        import faiss

        self._check_fitted()
        types = {"norm_float": faiss.AdditiveQuantizer.ST_norm_float,
                 "decompress": faiss.AdditiveQuantizer.ST_decompress}
        if search_type not in types:
            from ..errors import ValidationError

            raise ValidationError(f"search_type must be one of {', '.join(types)}, got {search_type!r}")
        index = faiss.IndexResidualQuantizer(self.n_features_in_, int(self.levels), int(self.nbits),
                                             faiss.METRIC_L2, types[search_type])
        rq = index.rq
        faiss.copy_array_to_vector(self.codebooks_.ravel(), rq.codebooks)
        rq.max_beam_size = int(self.beam_size)
        rq.is_trained = True
        rq.compute_codebook_tables()
        index.is_trained = True
        return index

    def __repr__(self) -> str:
        return f"RQ(levels={self.levels}, nbits={self.nbits}, beam_size={self.beam_size})"
