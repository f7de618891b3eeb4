"""Random-hyperplane LSH (SimHash) for cosine similarity."""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError
from .base import BaseHasher
from .registry import register

__all__ = ["SimHash"]


@register("simhash")
class SimHash(BaseHasher):
    """Random-hyperplane hashing: bit ``j`` of ``x`` is ``[r_j · (x - μ) > 0]`` with ``r_j`` Gaussian.

    For two vectors at angle ``θ`` (after centring) each bit agrees with probability ``1 - θ / π``, so the
    normalised Hamming distance of two codes estimates ``θ / π``. The hyperplane normals are scaled to
    unit length (this changes no bit), so :meth:`margins` are signed Euclidean distances to the
    hyperplanes: small ``|margin|`` means a bit likely to flip for a near neighbour, which query-directed
    multi-probe uses.

    Parameters
    ----------
    n_bits : int, default 64
        Code length (number of hyperplanes).
    center : bool, default False
        Subtract the training mean before hashing (learned in ``fit``); otherwise hyperplanes pass
        through the origin, which is what cosine similarity of the raw vectors needs.
    random_state : int, numpy Generator or None, default None
        Seed, resolved in ``fit``.

    Attributes
    ----------
    projections_ : ndarray of shape (n_features_in_, n_bits), float32
        Unit-norm hyperplane normals, one per column.
    mean_ : ndarray of shape (n_features_in_,), float32
        Training mean if ``center`` else zeros.
    n_features_in_ : int

    References
    ----------
    M. S. Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 8))
    >>> SimHash(n_bits=32, random_state=0).fit(X).transform(X).shape
    (100, 1)
    """

    def __init__(self, n_bits=64, *, center=False, random_state=None):
        self.n_bits = n_bits
        self.center = center
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.center, (bool, np.bool_)):
            raise ValidationError(f"center must be True or False, got {self.center!r}")

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        d, nb = X.shape[1], int(self.n_bits)
        P = rng.standard_normal((d, nb))
        P /= np.linalg.norm(P, axis=0, keepdims=True)
        self.projections_ = P.astype(np.float32)
        if self.center:
            self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        else:
            self.mean_ = np.zeros(d, dtype=np.float32)

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Signed distances of validated float32 ``X`` (n, d) to the hyperplanes: (n, n_bits) float32."""
        if np.any(self.mean_):
            X = X - self.mean_
        return X @ self.projections_

