"""Record perturbations: noisy copies of a record (word drops, typos, swapped or dropped fields), the
self-supervised positives of :class:`~hashlearn.apps.blocking.NeuralBlocker` (``positives="perturbed"``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["perturb_record"]

_TYPO_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def _typo(w: str, rng: np.random.Generator) -> str:
    """Insert, delete, substitute or transpose one character of ``w``."""
    pos = int(rng.integers(len(w)))
    op = int(rng.integers(4))
    c = _TYPO_CHARS[int(rng.integers(len(_TYPO_CHARS)))]
    if op == 0:
        return w[:pos] + c + w[pos:]
    if op == 1:
        return w[:pos] + w[pos + 1 :]
    if op == 2:
        return w[:pos] + c + w[pos + 1 :]
    if pos + 1 < len(w):
        return w[:pos] + w[pos + 1] + w[pos] + w[pos + 2 :]
    return w


def _noisy_field(v: str, rng: np.random.Generator, p_drop: float, p_typo: float) -> str:
    words = v.split()
    kept = [w for w in words if rng.random() >= p_drop] or words[:1]
    return " ".join(_typo(w, rng) if len(w) > 1 and rng.random() < p_typo else w for w in kept)


def perturb_record(values: Sequence[str], rng: np.random.Generator, *, p_drop=0.15, p_typo=0.1,
                   p_swap=0.2, p_field_drop=0.1) -> str:
    """A noisy copy of a record (list of field values) as one text: word drops, typos (insert, delete,
    substitute, transpose a character), two fields swapped, a field dropped. Used as a self-supervised
    positive for :class:`NeuralBlocker`.

    Examples
    --------
    >>> t = perturb_record(["john smith", "12 main street"], np.random.default_rng(0))
    >>> isinstance(t, str) and len(t) > 0
    True
    """
    vals = list(values)
    if len(vals) > 1 and rng.random() < p_swap:
        i, j = rng.choice(len(vals), 2, replace=False)
        vals[i], vals[j] = vals[j], vals[i]
    out = []
    for v in vals:
        if not v or (len(vals) > 1 and rng.random() < p_field_drop):
            continue
        out.append(_noisy_field(v, rng, p_drop, p_typo))
    text = " ".join(o for o in out if o)
    return text or " ".join(v for v in values if v)
