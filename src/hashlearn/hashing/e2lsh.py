"""p-stable locality-sensitive hashing for Euclidean distance (E2LSH).

Also home of the 64-bit mixing helpers shared by the hashing and index modules: :func:`_fmix64`
(splitmix64 finaliser) and :func:`_combine_keys` (integer vectors → one uint64 key, used for the
bucket keys of :class:`hashlearn.index.tables.MultiTableLSH` and the band keys of MinHash). numpy
uint64 arithmetic wraps modulo 2**64, which is exactly what these mixing functions need.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_real_param
from .base import BaseHasher
from .registry import register

__all__ = ["E2LSH"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _fmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijection of uint64 with full avalanche, elementwise (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _parity64(v: np.ndarray) -> np.ndarray:
    """Parity (popcount mod 2) of each uint64 as uint8 0/1."""
    v = np.asarray(v, dtype=np.uint64)
    for shift in (32, 16, 8, 4, 2, 1):
        v = v ^ (v >> np.uint64(shift))
    return (v & np.uint64(1)).astype(np.uint8)


def _combine_keys(values: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Mix integer vectors into one uint64 key each.

    Parameters
    ----------
    values : ndarray of shape (..., T, k), integer
        ``k`` integers per key, for ``T`` independent key families (tables). Signed values are taken
        modulo 2**64 (their two's-complement bits).
    seeds : ndarray of shape (T,), uint64
        One seed per family.

    Returns
    -------
    keys : ndarray of shape (..., T), uint64
        Equal vectors give equal keys; two different vectors collide with probability about 2**-64.
    """
    v = np.asarray(values)
    v = v.astype(np.uint64, copy=False) if v.dtype.kind == "u" else v.astype(np.int64, copy=False).view(np.uint64)
    h = np.broadcast_to(np.asarray(seeds, dtype=np.uint64), v.shape[:-1]).copy()
    with np.errstate(over="ignore"):
        for j in range(v.shape[-1]):
            h = _fmix64(h ^ _fmix64(v[..., j] + _GOLDEN * np.uint64(j + 1)))
    return h


def _default_bucket_width(X: np.ndarray, rng: np.random.Generator, *, sample: int = 1000, factor: float = 4.0) -> float:
    """``factor`` × the median nearest-neighbour distance within a random sample of ``sample`` rows."""
    n = X.shape[0]
    idx = rng.choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    S = X[idx].astype(np.float64)
    if S.shape[0] < 2:
        return 1.0
    sq = np.einsum("ij,ij->i", S, S)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (S @ S.T)
    np.fill_diagonal(d2, np.inf)
    nn = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    med = float(np.median(nn))
    if not med > 0:  # many duplicates: ignore zero distances
        pos = nn[nn > 1e-12]
        med = float(np.median(pos)) if pos.size else 0.0
    return factor * med if med > 0 else 1.0


@register("e2lsh")
class E2LSH(BaseHasher):
    """p-stable (Gaussian) LSH for Euclidean distance, with binary codes via random bucket-to-bit hashing.

    Each of the ``n_bits`` hash functions is ``h(x) = floor((a·x + b) / w)`` with ``a ~ N(0, I_d)`` and
    ``b ~ U[0, w)``. For two points at distance ``c`` the collision probability of one function is
    ``p(c) = 1 - 2 Φ(-w/c) - 2 / (sqrt(2π) w/c) (1 - exp(-(w/c)² / 2))``.

    :meth:`hash_values` returns the integer hashes. :meth:`transform` turns each integer into one bit of
    the packed code with a random linear function over GF(2): ``bit_j = parity(m_j AND h_j) XOR c_j``
    where ``m_j`` is a random 64-bit mask and ``c_j`` a random bit, both drawn in ``fit``. Equal buckets
    always give equal bits; for two different buckets the bits differ with probability exactly 1/2 over
    the draw of ``m_j`` (a universal family). The expected normalised Hamming distance of two codes is
    therefore ``(1 - p(c)) / 2``.

    Parameters
    ----------
    n_bits : int, default 64
        Number of hash functions, which is also the number of code bits.
    bucket_width : float or None, default None
        Bucket width ``w``. ``None`` chooses it in ``fit``: 4 × the median distance from a training point
        to its nearest neighbour within a random sample of at most 1000 training points (Datar et al.
        recommend ``w ≈ 4 R`` for a near-neighbour radius ``R``; the sample's nearest-neighbour distance
        overestimates the full data's, which errs on the side of wider buckets). Zero distances are
        ignored; with fewer than two distinct training points the width is 1.0.
    random_state : int, numpy Generator or None, default None
        Seed, resolved in ``fit``.

    Attributes
    ----------
    projections_ : ndarray of shape (n_features_in_, n_bits), float32
        The Gaussian directions ``a``.
    offsets_ : ndarray of shape (n_bits,), float64
        The offsets ``b`` in ``[0, w)``.
    bucket_width_ : float
        The width ``w`` used (``bucket_width`` or the data-derived value).
    bit_masks_ : ndarray of shape (n_bits,), uint64
        Random masks of the bucket-to-bit hash.
    bit_flips_ : ndarray of shape (n_bits,), uint8
        Random bits XORed into the bucket-to-bit hash.
    n_features_in_ : int

    References
    ----------
    M. Datar, N. Immorlica, P. Indyk and V. S. Mirrokni, "Locality-Sensitive Hashing Scheme Based on
    p-Stable Distributions", SoCG 2004.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 8))
    >>> h = E2LSH(n_bits=16, random_state=0).fit(X)
    >>> h.hash_values(X).shape, h.transform(X).shape
    ((100, 16), (100, 1))
    """

    def __init__(self, n_bits=64, *, bucket_width=None, random_state=None):
        self.n_bits = n_bits
        self.bucket_width = bucket_width
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_real_param(self.bucket_width, "bucket_width", min_val=0, include_boundaries="neither", allow_none=True)

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        d, nb = X.shape[1], int(self.n_bits)
        self.projections_ = rng.standard_normal((d, nb)).astype(np.float32)
        w = float(self.bucket_width) if self.bucket_width is not None else _default_bucket_width(X, rng)
        self.bucket_width_ = w
        self.offsets_ = rng.uniform(0.0, w, size=nb)
        self.bit_masks_ = rng.integers(0, np.iinfo(np.uint64).max, size=nb, dtype=np.uint64, endpoint=True)
        self.bit_flips_ = rng.integers(0, 2, size=nb, dtype=np.uint8)

    def _positions(self, X: np.ndarray) -> np.ndarray:
        """:meth:`positions` of validated float32 ``X``."""
        proj = (X @ self.projections_).astype(np.float64)
        proj += self.offsets_
        proj /= self.bucket_width_
        return proj

    def positions(self, X) -> np.ndarray:
        """Positions ``(a·x + b) / w`` on the hash lines, in bucket widths.

        The hashes are their floors; the fractional part ``f`` of a position says how close the point is
        to the boundaries of its bucket (``f`` to the lower one, ``1 - f`` to the upper one), which is
        what query-directed multi-probe uses.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        P : ndarray of shape (n, n_bits), float64
        """
        return self._positions(self._validated(X))

    def hash_values(self, X) -> np.ndarray:
        """Integer hashes ``floor((a·x + b) / w)``.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        H : ndarray of shape (n, n_bits), int64
        """
        return np.floor(self.positions(X)).astype(np.int64)

    def _bits_of(self, H: np.ndarray) -> np.ndarray:
        """Bucket-to-bit hash of integer hashes (n, n_bits) → bool (n, n_bits)."""
        bits = _parity64(H.astype(np.int64, copy=False).view(np.uint64) & self.bit_masks_)
        return (bits ^ self.bit_flips_).astype(bool)

    def _encode_bits(self, X: np.ndarray) -> np.ndarray:
        return self._bits_of(np.floor(self._positions(X)).astype(np.int64))
