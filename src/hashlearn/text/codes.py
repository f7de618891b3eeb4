"""Codes for dense text embeddings that are not plain ``fit(X)`` hashers: sign bits and the BPR head.

Registered in :mod:`hashlearn.registry` with kind ``"embedding"``: ``sign`` and ``msign`` (one bit per
dimension, so they take no code length) and ``bpr`` (:class:`~hashlearn.text.bpr.BPRHasher`, trained
with queries).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..codes import pack
from ..errors import NotFittedError
from ..hashing.base import PersistableEstimatorMixin, check_vectors_array
from ..registry import register
from .bpr import BPRHasher

__all__ = ["SignCodes", "MeanSignCodes", "BPRHasher"]


@register("sign", kind="embedding")
class SignCodes(PersistableEstimatorMixin, BaseEstimator):
    """Sign binarisation of embeddings: bit j is ``x_j - m_j > 0`` (``m`` = 0, or the corpus mean).

    Parameters
    ----------
    center : bool, default False
        Subtract the mean of the fitted vectors first ("mean-centred sign").

    Attributes
    ----------
    mean_ : ndarray (d,) float32
    n_features_in_ : int

    References
    ----------
    Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002 (sign random
    projections; here the projection is the identity, as in the binary embeddings of
    sentence-transformers' ``quantize_embeddings``).
    """


    def __init__(self, center: bool = False):
        self.center = center

    def fit(self, X, y=None):
        """Store the dimension (and the mean when ``center``) of ``X`` (n, d); returns ``self``."""
        X = check_vectors_array(X, name="X")
        self.n_features_in_ = int(X.shape[1])
        self.mean_ = X.mean(axis=0).astype(np.float32) if self.center else np.zeros(X.shape[1], np.float32)
        return self

    @property
    def code_bits(self) -> int:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError("SignCodes is not fitted yet: call fit(X) first")
        return self.n_features_in_

    def margins(self, X) -> np.ndarray:
        """``X - mean_`` (n, d) float32."""
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError("SignCodes is not fitted yet: call fit(X) first")
        return check_vectors_array(X, name="X", n_features=self.n_features_in_) - self.mean_

    def transform(self, X) -> np.ndarray:
        """Packed codes (n, ceil(d / 64)) uint64."""
        return pack(self.margins(X) > 0)


@register("msign", kind="embedding")
class MeanSignCodes(SignCodes):
    """:class:`SignCodes` with ``center=True``: bit j is ``x_j - mean_j > 0`` (mean of the fitted vectors)."""

    def __init__(self, center: bool = True):
        super().__init__(center=center)
