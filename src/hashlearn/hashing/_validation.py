"""Validation shared by the estimators: scikit-learn's checks, reported as hashlearn errors.

* :func:`validate_vectors` — the input boundary of every vector hasher: scikit-learn's
  :func:`~sklearn.utils.validation.validate_data` (2-D, finite, numeric, dense, at least one row and
  column, ``n_features_in_`` set by ``fit`` and checked afterwards), converted to C-contiguous float32.
* :func:`check_int_param` / :func:`check_real_param` — :func:`sklearn.utils.check_scalar` for the
  constructor parameters, with one message naming the parameter, the value and the accepted range.
* :func:`warn_data_limit` — the warning given when a parameter exceeds what the training data allows
  and ``fit`` uses a smaller effective value (stored in a fitted attribute; the parameter is never
  rewritten), as scikit-learn does for ``n_components``.

scikit-learn's own messages are kept word for word; only the exception type changes:
``ValueError`` becomes :class:`~hashlearn.errors.ValidationError` and ``TypeError`` becomes
:class:`InputTypeError`, which derives from both, so code and checks written against either
convention keep working.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import validate_data

from ..errors import HashlearnError, ValidationError
from ..params import check_int_param, check_real_param  # noqa: F401  (re-exported)

__all__ = [
    "InputTypeError",
    "validate_vectors",
    "check_int_param",
    "check_real_param",
    "warn_data_limit",
]


class InputTypeError(ValidationError, TypeError):
    """Input of a type the estimator refuses (sparse, or an object array that is not numeric)."""


def _as_hashlearn_error(exc: Exception) -> HashlearnError:
    if isinstance(exc, TypeError):
        return InputTypeError(str(exc))
    return ValidationError(str(exc))


def validate_vectors(estimator, X, *, reset: bool, min_samples: int = 1) -> np.ndarray:
    """Validate the vectors ``X`` of a vector hasher with scikit-learn's ``validate_data``.

    Parameters
    ----------
    estimator : BaseEstimator
        ``fit`` passes ``reset=True``, which sets ``n_features_in_`` (and ``feature_names_in_`` for
        a DataFrame with string column names); every other method passes ``reset=False``, which
        checks ``X`` against them.
    X : array-like of shape (n_samples, n_features)
        Dense, real numeric (bool, integer or float), finite. 1-D input is refused with
        scikit-learn's "Reshape your data" message.
    reset : bool
    min_samples : int, default 1
        Fewest rows accepted (``fit`` of methods that need two or more vectors).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32, C-contiguous
        The input itself when it already is one (no copy).

    Raises
    ------
    ValidationError
        For what scikit-learn reports as ``ValueError`` (its message unchanged).
    InputTypeError
        For what scikit-learn reports as ``TypeError`` (sparse input, non-numeric objects).
    """
    try:
        return validate_data(estimator, X, reset=reset, dtype=np.float32, order="C",
                             ensure_min_samples=min_samples)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, HashlearnError):
            raise
        raise _as_hashlearn_error(exc) from exc




def warn_data_limit(estimator, parameter: str, value, used, reason: str) -> None:
    """Warn that ``fit`` uses ``used`` instead of the parameter's ``value`` because of the data.

    The message names the estimator, the parameter, both numbers and the reason, e.g.
    ``AnchorGraphHashing: n_anchors=300 exceeds the 20 training vectors; fitting with n_anchors_=20``.
    """
    warnings.warn(
        f"{type(estimator).__name__}: {parameter}={value} {reason}; fitting with {parameter}_={used}",
        UserWarning,
        stacklevel=4,
    )
