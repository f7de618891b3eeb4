"""Shared checks and helpers of :mod:`hashlearn.discover` (input validation, torch scoping, labels)."""

from __future__ import annotations

import contextlib

import numpy as np

from ..errors import NotFittedError, ValidationError
from ..io.readers.validation import check_vectors

__all__ = ["check_features", "check_partial_labels", "torch_local_state", "require_torch", "check_fitted",
           "optimise", "forward_in_batches", "UNLABELLED"]

#: Label of an unlabelled row in ``fit(X, y)`` (scikit-learn's semi-supervised convention).
UNLABELLED = -1


def check_features(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """(n, d) float32, finite (NaN/inf named with row and column), with ``n_features`` columns if given."""
    X = check_vectors(X, name=name, dtype=np.float32)
    if n_features is not None and X.shape[1] != n_features:
        raise ValidationError(f"{name} has {X.shape[1]} features but the model was fitted on {n_features}")
    return X


def check_partial_labels(y, n: int, known_classes=None) -> tuple[np.ndarray, np.ndarray]:
    """Labels with -1 for unlabelled rows → (y int64 (n,), known classes sorted int64).

    ``known_classes`` (optional) lists the classes the caller says are known: each must have at least
    one labelled row, and no labelled row may carry a class outside the list.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValidationError(f"y must be a 1-D array of {n} labels (one per row of X), got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            bad = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ValidationError(f"y holds a non-finite label at row {bad}: use -1 for unlabelled rows")
        if not np.all(y == np.round(y)):
            raise ValidationError("y must hold integer class labels (-1 = unlabelled)")
    elif y.dtype.kind not in "iub":
        raise ValidationError(f"y must hold integer class labels (-1 = unlabelled), got dtype {y.dtype}")
    y = y.astype(np.int64)
    if (y < UNLABELLED).any():
        raise ValidationError(f"y holds negative labels other than -1 (e.g. {int(y[y < -1][0])})")
    present = np.unique(y[y != UNLABELLED])
    if known_classes is None:
        known = present
    else:
        known = np.unique(np.asarray(list(known_classes), dtype=np.int64))
        missing = np.setdiff1d(known, present)
        if missing.size:
            raise ValidationError(f"known class(es) {missing.tolist()} have no labelled row "
                                  f"({int((y != UNLABELLED).sum())} labelled rows hold classes {present.tolist()})")
        extra = np.setdiff1d(present, known)
        if extra.size:
            raise ValidationError(f"labelled rows carry class(es) {extra.tolist()} that are not in known_classes "
                                  f"{known.tolist()}")
    if known.size == 0:
        raise ValidationError(f"no labelled row: all {n} labels are -1")
    return y, known


def require_torch(what: str):
    """Import torch or raise a ValidationError saying which estimator needs it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValidationError(f"{what} needs torch (pip install 'hashlearn[deep]')") from exc
    return torch


@contextlib.contextmanager
def torch_local_state(torch, seed: int, n_threads: int):
    """Inside: torch's global generator seeded with ``seed`` and at most ``n_threads`` threads; both restored.

    Layer initialisation draws from torch's global generator; :func:`torch.random.fork_rng` restores
    the caller's state on exit, so fitting leaves no trace, while the same seed gives the same weights.
    """
    old_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # scoped by fork_rng
        try:
            torch.set_num_threads(max(1, min(int(n_threads), old_threads)))
            yield
        finally:
            torch.set_num_threads(old_threads)


def check_fitted(est, attr: str) -> None:
    if not hasattr(est, attr):
        raise NotFittedError(f"this {type(est).__name__} is not fitted yet: call fit first")


def optimise(torch, opt, sched, steps: int, step_loss, *, desc: str, progress: bool) -> np.ndarray:
    """Run ``steps`` optimiser steps on ``step_loss()`` (a scalar tensor); the losses as float64 (steps,).

    Each step: zero the gradients, back-propagate, step the optimiser then the scheduler. ``progress``
    shows a tqdm bar with the mean of the last 50 losses.
    """
    losses = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=desc)
    try:
        for _ in range(steps):
            loss = step_loss()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    finally:
        if bar is not None:
            bar.close()
    return np.asarray(losses, dtype=np.float64)


def forward_in_batches(torch, net, X: np.ndarray, batch_size: int, reshape) -> np.ndarray:
    """``net(reshape(batch))`` over row blocks of ``X`` without gradients, as one float32 array."""
    net.eval()
    with torch.no_grad():
        return np.concatenate([net(reshape(torch.from_numpy(X[i:i + batch_size]))).numpy()
                               for i in range(0, X.shape[0], batch_size)]).astype(np.float32)
