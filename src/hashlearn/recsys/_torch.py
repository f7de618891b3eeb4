"""Small torch helpers shared by the recsys models (torch is imported lazily, only by callers that train).

No global state: a private ``torch.Generator`` per fit, and the thread count restored on exit.
"""

from __future__ import annotations

import numbers
import numpy as np

from .._torch import torch_generator as _seeded_generator
from .._torch import torch_threads
from ..errors import ValidationError

__all__ = ["torch_threads", "torch_generator", "padded_rows", "check_positive_int", "check_positive_float"]


def torch_generator(rng: np.random.Generator):
    """A private ``torch.Generator`` seeded from the numpy Generator ``rng``."""
    return _seeded_generator(rng, high=2**63 - 1)


def padded_rows(rows: np.ndarray, pad_row: int) -> np.ndarray:
    """``rows`` (n, k) with the ``-1`` padding replaced by ``pad_row`` (int64)."""
    out = np.asarray(rows, dtype=np.int64).copy()
    out[out < 0] = pad_row
    return out


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive_float(value, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValidationError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return float(value)
