"""Shared pieces of :mod:`hashlearn.robust`: input checks, the straight-through sign, small torch helpers.

torch is imported inside the functions that need it (``pip install 'hashlearn[robust]'``).
"""

from __future__ import annotations

import numbers

import numpy as np

from .._torch import require_torch, torch_generator, torch_threads
from ..errors import ValidationError

__all__ = ["check_eps", "check_images", "check_targets", "random_targets", "sign_ste", "import_torch",
           "torch_threads", "torch_generator"]


def import_torch():
    return require_torch("hashlearn.robust", "robust")


def check_eps(eps, data_range=(0.0, 1.0), name: str = "eps") -> float:
    """The attacker's L∞ budget, a real number in ``(0, hi - lo]`` of the data's range ``(lo, hi)``.

    Raises :class:`~hashlearn.errors.ValidationError` naming the value: ``eps must be in (0, 1.0] (the
    data range [0.0, 1.0]), got 0``.
    """
    lo, hi = float(data_range[0]), float(data_range[1])
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, numbers.Real) or not np.isfinite(eps):
        raise ValidationError(f"{name} must be a finite real number, got {eps!r}")
    if not 0.0 < float(eps) <= hi - lo:
        raise ValidationError(f"{name} must be in (0, {hi - lo:g}] (the data range [{lo:g}, {hi:g}]), got {eps!r}")
    return float(eps)


def check_images(X, data_range=(0.0, 1.0), name: str = "X") -> np.ndarray:
    """Images flattened to (n, d) float32, finite and inside ``data_range``."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValidationError(f"{name} must be a non-empty 2-D array (n, d) of flattened images, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValidationError(f"{name} contains NaN or infinite values")
    lo, hi = float(data_range[0]), float(data_range[1])
    if X.min() < lo - 1e-6 or X.max() > hi + 1e-6:
        raise ValidationError(f"{name} has values in [{X.min():g}, {X.max():g}], outside the data range "
                              f"[{lo:g}, {hi:g}]")
    return np.ascontiguousarray(X)


def check_targets(targets, db_labels, n_queries: int | None = None) -> np.ndarray:
    """Target labels (n,) int64, each present in the database's labels; else a ValidationError naming it."""
    t = np.asarray(targets)
    if t.ndim != 1 or (n_queries is not None and t.shape[0] != n_queries):
        raise ValidationError(f"targets must be a 1-D array of {n_queries if n_queries is not None else 'n'} labels, "
                              f"got shape {t.shape}")
    if t.dtype.kind not in "iu":
        raise ValidationError(f"targets must be integer labels, got dtype {t.dtype}")
    present = np.unique(np.asarray(db_labels))
    missing = np.setdiff1d(np.unique(t), present)
    if missing.size:
        raise ValidationError(f"target label {missing[0].item()!r} is absent from the database (its labels: "
                              f"{', '.join(str(v) for v in present[:20])})")
    return t.astype(np.int64)


def random_targets(labels, classes, random_state) -> np.ndarray:
    """For each query label a target drawn uniformly among the other ``classes`` (seeded)."""
    from ..hashing.base import check_random_state

    rng = check_random_state(random_state)
    labels = np.asarray(labels, dtype=np.int64)
    classes = np.asarray(sorted(set(int(c) for c in classes)), dtype=np.int64)
    if classes.size < 2:
        raise ValidationError(f"targeted attacks need at least 2 classes in the database, got {classes.size}")
    out = np.empty_like(labels)
    for i, lab in enumerate(labels):
        others = classes[classes != lab]
        out[i] = others[rng.integers(others.size)]
    return out


def sign_ste(z, clip: float = 1.0):
    """Sign with a straight-through gradient: forward ``±1`` (``0`` maps to ``+1``), backward the identity
    where ``|z| <= clip`` and 0 outside (the clipped straight-through estimator of Bengio et al., 2013, used
    by HashVFL, "All You Need Is Hashing: Defending Against Data Reconstruction Attack in Vertical
    Federated Learning", 2022). ``z``: torch tensor of any shape; returns a tensor of the same shape."""
    torch = import_torch()
    hard = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
    soft = torch.clamp(z, -clip, clip)
    return soft + (hard - soft).detach()
