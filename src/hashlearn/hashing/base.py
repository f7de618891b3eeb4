"""Base class of every vector hasher: the scikit-learn estimator contract plus packed-code output."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..codes import pack
from ..errors import NotFittedError, ValidationError
from ..io.readers import check_vectors
from ._validation import check_int_param, validate_vectors

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

    For callers that are not vector hashers (indexes, the cross-modal views, text encoders): the
    hashers validate with scikit-learn's checks instead (:func:`._validation.validate_vectors`).
    :func:`hashlearn.io.readers.check_vectors` plus a feature-count check against a fitted model;
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
        if "feature_names_in_" in fitted:  # an object array (of str): stored as a list
            fitted["feature_names_in_"] = [str(name) for name in fitted["feature_names_in_"]]
        return {"params": params, "fitted": fitted}

    @classmethod
    def _from_state(cls, state: dict):
        obj = cls(**state["params"])
        for key, value in state["fitted"].items():
            if key == "feature_names_in_":
                value = np.asarray(value, dtype=object)
            setattr(obj, key, value)
        return obj


class FittedStateMixin:
    """Fitted state = the public trailing-underscore attributes; ``n_features_in_`` marks a fitted model.

    ``_clear_fitted`` drops them all, so a refit that fails never leaves a model that looks fitted.
    """

    _FIT_CALL = "fit(X)"

    def _clear_fitted(self) -> None:
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, key)

    def _is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call {self._FIT_CALL} first")


class BaseHasher(PersistableEstimatorMixin, FittedStateMixin, TransformerMixin, BaseEstimator):
    """Base of vector hashers: ``fit(X)`` learns, ``transform(X)`` returns packed uint64 codes.

    Input is validated once, at each public method, by scikit-learn's ``validate_data`` (see
    :func:`._validation.validate_vectors`): a dense, finite, real 2-D array-like, converted to
    C-contiguous float32; 1-D, sparse, complex and object input are refused with scikit-learn's
    messages (as :class:`~hashlearn.errors.ValidationError`). ``fit`` sets :attr:`n_features_in_`
    and every later call is checked against it.

    Subclasses implement ``_fit(X, rng)`` (X validated float32, rng a numpy Generator) and
    ``_project(X)`` returning an (n, n_bits_) array whose positive entries are the 1 bits — or override
    ``_encode_bits`` directly. Fitted attributes end in ``_``; :attr:`n_features_in_` and
    :attr:`n_bits_` (the code length, which ``_fit`` lowers where the data allow fewer bits than
    ``n_bits``, with a warning) are set here. Methods that need more than one training vector set
    the class attribute ``_min_samples``. Persistence is generic: constructor parameters plus every
    public fitted attribute.
    """

    method_name = "base"
    input_kind = "vector"
    _min_samples = 1

    # -- the estimator contract ------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the hash functions from training vectors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense, finite, real-valued training vectors (converted to float32).
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._clear_fitted()
        try:
            self._check_params()
            X = validate_vectors(self, X, reset=True, min_samples=self._min_samples)
            rng = check_random_state(self.random_state)
            self.n_bits_ = int(self.n_bits)
            self._fit_with_target(X, y, rng)
        except BaseException:
            # A failed (re)fit must not leave an estimator that looks fitted.
            self._clear_fitted()
            raise
        return self

    def transform(self, X) -> np.ndarray:
        """Packed codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        codes : ndarray of shape (n_samples, ceil(n_bits_ / 64)), uint64
            C-contiguous; bit ``j`` of a code is bit ``j % 64`` of word ``j // 64`` (see
            :mod:`hashlearn.codes`).
        """
        return pack(self._encode_bits(self._validated(X)))

    encode = transform

    def margins(self, X) -> np.ndarray:
        """Real-valued projections of ``X`` (n, n_features_in_) whose signs are the bits.

        Returns an (n, code_bits) float array; positive entries are the 1 bits. The value's
        magnitude is each bit's confidence (used by query-directed multi-probe).
        """
        return self._project(self._validated(X))

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X)`` then ``transform(X)``: packed uint64 codes of shape (n_samples, ceil(n_bits_ / 64))."""
        return self.fit(X, y).transform(X)

    @property
    def code_bits(self) -> int:
        """Number of bits of the codes :meth:`transform` returns (``n_bits_`` once fitted)."""
        return int(getattr(self, "n_bits_", self.n_bits))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.two_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.input_tags.string = False
        tags.target_tags.required = False
        # the output is packed uint64 codes whatever the input dtype: no input dtype is preserved
        tags.transformer_tags.preserves_dtype = []
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return self._is_fitted()

    @classmethod
    def _from_state(cls, state: dict):
        obj = super()._from_state(state)
        if obj._is_fitted() and not hasattr(obj, "n_bits_"):
            obj.n_bits_ = int(obj.n_bits)  # a file from before n_bits_ existed: the code length was n_bits
        return obj

    def _validated(self, X) -> np.ndarray:
        """``X`` checked against the fitted model (after :meth:`_check_fitted`): float32, C-contiguous."""
        self._check_fitted()
        return validate_vectors(self, X, reset=False)

    def _encode_bits(self, X: np.ndarray) -> np.ndarray:
        return self._project(X) > 0

    # -- hooks -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_int_param(self.n_bits, "n_bits", min_val=1)

    def _fit_with_target(self, X: np.ndarray, y, rng: np.random.Generator) -> None:
        """Fit on validated ``X``; ``y`` is ignored here (:class:`~.supervised._labels.LabelledFitMixin` uses it)."""
        self._fit(X, rng)

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _project(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

