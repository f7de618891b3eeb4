"""Small torch helpers shared by the recsys models (torch is imported lazily, only by callers that train).

No global state: a private ``torch.Generator`` per fit, and the thread count restored on exit.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager

import numpy as np

from ..errors import ValidationError

__all__ = ["torch_threads", "torch_generator", "padded_rows", "check_positive_int", "check_positive_float"]


def _import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the recsys models need torch: pip install 'hashlearn[deep]'") from exc
    return torch


@contextmanager
def torch_threads(n_threads: int):
    """Run the block with ``torch.set_num_threads(n_threads)``; the previous count is restored after."""
    torch = _import_torch()
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield torch
    finally:
        torch.set_num_threads(old)


def torch_generator(rng: np.random.Generator):
    """A private ``torch.Generator`` seeded from the numpy Generator ``rng``."""
    torch = _import_torch()
    gen = torch.Generator()
    gen.manual_seed(int(rng.integers(0, 2**63 - 1)))
    return gen


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
