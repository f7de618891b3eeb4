"""Constructor-parameter checks shared by every estimator of the library.

:func:`check_int_param` / :func:`check_real_param` run :func:`sklearn.utils.check_scalar` and report a
:class:`~hashlearn.errors.ValidationError` naming the parameter, the value and the accepted range, e.g.
``n_anchors must be an integer >= 2, got 1``.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_scalar

from .errors import ValidationError

__all__ = ["check_int_param", "check_real_param", "check_param_groups"]


def _range_text(kind: str, min_val, max_val, allow_none: bool) -> str:
    if min_val is not None and max_val is not None:
        text = f"{kind} from {min_val} to {max_val}"
    elif min_val is not None:
        text = f"{kind} >= {min_val}"
    elif max_val is not None:
        text = f"{kind} <= {max_val}"
    else:
        text = kind
    return text + (" or None" if allow_none else "")


def check_int_param(value, name: str, *, min_val: int | None = None, max_val: int | None = None,
                    allow_none: bool = False):
    """Check an integer parameter with :func:`sklearn.utils.check_scalar`; returns it (int or None).

    Booleans are refused although Python counts them as integers. The error is a
    :class:`~hashlearn.errors.ValidationError` naming the parameter, the value and the range, e.g.
    ``n_anchors must be an integer >= 2, got 1``.
    """
    if allow_none and value is None:
        return None
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} is a bool")
        check_scalar(value, name, numbers.Integral, min_val=min_val, max_val=max_val)
    except (TypeError, ValueError) as exc:
        expected = _range_text("an integer", min_val, max_val, allow_none)
        raise ValidationError(f"{name} must be {expected}, got {value!r}") from exc
    return int(value)


def check_real_param(value, name: str, *, min_val: float | None = None, max_val: float | None = None,
                     include_boundaries: str = "both", allow_none: bool = False):
    """Check a finite real parameter with :func:`sklearn.utils.check_scalar`; returns it (float or None).

    ``include_boundaries`` is as in ``check_scalar`` (``"neither"``: a positive number for
    ``min_val=0``). Booleans, NaN and infinities are refused; the error names the parameter, the value
    and the range.
    """
    if allow_none and value is None:
        return None
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} is a bool")
        check_scalar(value, name, numbers.Real, min_val=min_val, max_val=max_val,
                     include_boundaries=include_boundaries)
        if not np.isfinite(value):
            raise ValueError(f"{name} is not finite")
    except (TypeError, ValueError) as exc:
        low = {"both": ">=", "left": ">=", "right": ">", "neither": ">"}[include_boundaries]
        high = {"both": "<=", "right": "<=", "left": "<", "neither": "<"}[include_boundaries]
        parts = ([f"{low} {min_val}"] if min_val is not None else []) + (
            [f"{high} {max_val}"] if max_val is not None else [])
        expected = "a finite number" + (" " + " and ".join(parts) if parts else "")
        raise ValidationError(f"{name} must be {expected}{' or None' if allow_none else ''}, got {value!r}") from exc
    return float(value)


def check_param_groups(est, *, positive_ints=(), positive_reals=(), non_negative_reals=()) -> None:
    """Check groups of an estimator's parameters by name: integers >= 1, reals > 0, reals >= 0."""
    for name in positive_ints:
        check_int_param(getattr(est, name), name, min_val=1)
    for name in positive_reals:
        check_real_param(getattr(est, name), name, min_val=0, include_boundaries="neither")
    for name in non_negative_reals:
        check_real_param(getattr(est, name), name, min_val=0)
