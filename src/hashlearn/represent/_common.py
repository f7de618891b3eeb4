"""Shared helpers of :mod:`hashlearn.represent`: input checks, torch scoping, image batches, a small MLP."""

from __future__ import annotations

import numpy as np

from ..discover._common import check_fitted, require_torch, torch_local_state
from ..errors import ValidationError

__all__ = ["check_images", "check_fitted", "require_torch", "torch_local_state", "seed_of", "mlp", "to_images",
           "progress_logger"]


def check_images(images, name: str = "images", min_rows: int = 2) -> np.ndarray:
    """float32 (n, h, w) with n >= ``min_rows``, finite (uint8 0–255 is scaled to [0, 1])."""
    X = np.asarray(images)
    if X.dtype == np.uint8:
        X = X.astype(np.float32) / 255.0
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3 or X.shape[0] < min_rows:
        raise ValidationError(f"{name} must be an array (n, h, w) with n >= {min_rows}, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValidationError(f"{name} contain NaN or infinite values")
    return X


def to_images(X, image_shape) -> np.ndarray:
    """Rows (n, h·w) or images (n, h, w) → float32 images (n, h, w) checked as :func:`check_images`."""
    X = np.asarray(X)
    if X.ndim == 2 and image_shape is not None:
        h, w = image_shape
        if X.shape[1] != h * w:
            raise ValidationError(f"rows have {X.shape[1]} features but image_shape {tuple(image_shape)} needs {h * w}")
        X = X.reshape(X.shape[0], h, w)
    return check_images(X)


def seed_of(random_state) -> int:
    """An int seed drawn from ``random_state`` (int, RandomState, Generator or None)."""
    from sklearn.utils import check_random_state

    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    return int(check_random_state(random_state).randint(2**31 - 1))


def mlp(torch, sizes, *, batch_norm: bool = True):
    """``Linear → (BatchNorm) → ReLU`` blocks through ``sizes``; no activation after the last layer."""
    nn = torch.nn
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += ([nn.BatchNorm1d(b)] if batch_norm else []) + [nn.ReLU()]
    return nn.Sequential(*layers)


def progress_logger(enabled: bool):
    """A ``log(msg)`` function writing to stderr through rich, or a no-op."""
    if not enabled:
        return lambda msg: None
    from rich.console import Console

    console = Console(stderr=True)
    return lambda msg: console.log(msg)
