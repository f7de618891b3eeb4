"""torch helpers shared by every room that trains a torch model (private; torch is imported on first use).

No global state: a private ``torch.Generator`` per fit, and the thread count restored on exit.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .errors import ValidationError

__all__ = ["require_torch", "torch_threads", "torch_generator"]


def require_torch(who: str, extra: str = "deep"):
    """Import torch, or raise a :class:`ValidationError` saying that ``who`` needs it and which extra installs it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValidationError(f"{who} need(s) torch: pip install 'hashlearn[{extra}]'") from exc
    return torch


@contextmanager
def torch_threads(n_threads: int):
    """Run the block with at most ``n_threads`` torch threads (yields torch); the previous count is restored."""
    torch = require_torch("this model")
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(max(1, int(n_threads)))
        yield torch
    finally:
        torch.set_num_threads(old)


def torch_generator(rng: np.random.Generator, high: int = 2**62):
    """A private ``torch.Generator`` seeded with ``rng.integers(0, high)`` (no global seeding)."""
    torch = require_torch("this model")
    return torch.Generator().manual_seed(int(rng.integers(0, high)))
