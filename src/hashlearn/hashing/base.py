"""Base class of every vector hasher: the scikit-learn estimator contract plus packed-code output."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..codes import pack
from ..errors import NotFittedError, ValidationError
from ..io.readers import check_vectors

__all__ = ["BaseHasher", "PersistableEstimatorMixin", "check_vectors_array", "check_random_state"]


def check_random_state(random_state) -> np.random.Generator:
    """A numpy Generator from None, an int seed or a Generator (resolved at fit time)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValidationError(f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}")


def check_vectors_array(X, *, name: str = "X", n_features: int | None = None, dtype=np.float32) -> np.ndarray:
    """Validate a 2-D finite numeric matrix and return it C-contiguous as ``dtype``.

    :func:`hashlearn.io.readers.check_vectors` plus a feature-count check against the fitted model;
    a single vector of the right length is accepted as one row. Raises :class:`ValidationError`
    naming the problem.
    """
    if n_features is not None:
        arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if arr.ndim == 1 and arr.shape[0] == n_features:
            X = arr[None, :]
    arr = check_vectors(X, name=name, dtype=dtype)
    if n_features is not None and arr.shape[1] != n_features:
        raise ValidationError(f"{name} has {arr.shape[1]} features but the model was fitted on {n_features}")
    return arr


class PersistableEstimatorMixin:
    """Generic persistence (see :mod:`hashlearn.io.persist`) for scikit-learn style estimators.

    The stored state is the constructor parameters (``get_params``) plus every public fitted attribute
    (name ending in ``_``); a ``random_state`` that is not None or an int is stored as None, since the
    fitted attributes already hold what it produced.
    """

    def _get_state(self) -> dict:
        params = self.get_params(deep=False)
        if not (params.get("random_state") is None or isinstance(params.get("random_state"), numbers.Integral)):
            params["random_state"] = None  # a Generator cannot be stored; the fitted state is what matters
        fitted = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        return {"params": params, "fitted": fitted}

    @classmethod
    def _from_state(cls, state: dict):
        obj = cls(**state["params"])
        for key, value in state["fitted"].items():
            setattr(obj, key, value)
        return obj


class BaseHasher(PersistableEstimatorMixin, TransformerMixin, BaseEstimator):
    """Base of vector hashers: ``fit(X)`` learns, ``transform(X)`` returns packed uint64 codes.

    Subclasses implement ``_fit(X, rng)`` (X validated float32, rng a numpy Generator) and
    ``_project(X)`` returning an (n, n_bits) array whose positive entries are the 1 bits — or override
    ``_encode_bits`` directly. Fitted attributes end in ``_``; :attr:`n_features_in_` is set here.
    Persistence is generic: constructor parameters plus every public fitted attribute.
    """

    method_name = "base"
    input_kind = "vector"

    # -- the estimator contract ------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the hash functions from training vectors ``X`` of shape (n, d); returns ``self``."""
        self._check_params()
        X = check_vectors_array(X, name="X")
        rng = check_random_state(self.random_state)
        self.n_features_in_ = int(X.shape[1])
        try:
            self._fit(X, rng)
        except BaseException:
            # A failed (re)fit must not leave an estimator that looks fitted.
            del self.n_features_in_
            raise
        return self

    def transform(self, X) -> np.ndarray:
        """Packed codes of ``X`` (n, d): a C-contiguous uint64 array of shape (n, ceil(n_bits / 64))."""
        self._check_fitted()
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_)
        return pack(self._encode_bits(X))

    encode = transform

    def margins(self, X) -> np.ndarray:
        """Real-valued projections of ``X`` (n, n_features_in_) whose signs are the bits.

        Returns an (n, code_bits) float array; positive entries are the 1 bits. The value's
        magnitude is each bit's confidence (used by query-directed multi-probe).
        """
        self._check_fitted()
        return self._project(check_vectors_array(X, name="X", n_features=self.n_features_in_))

    def fit_transform(self, X, y=None, **fit_params):
        return self.fit(X, y).transform(X)

    @property
    def code_bits(self) -> int:
        """Number of bits of the codes :meth:`transform` returns."""
        return int(self.n_bits)

    def _encode_bits(self, X: np.ndarray) -> np.ndarray:
        return self._project(X) > 0

    # -- hooks -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.n_bits, numbers.Integral) or self.n_bits < 1:
            raise ValidationError(f"n_bits must be a positive integer, got {self.n_bits!r}")

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _project(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X) first")
