"""Orthogonal matrices shared by ITQ, IsoH and the cross-modal hashers, from scipy.

* :func:`random_orthogonal` — a Haar-distributed random rotation (:data:`scipy.stats.ortho_group`);
* :func:`nearest_orthogonal` — the orthogonal Procrustes step of ITQ-style methods
  (:func:`scipy.linalg.orthogonal_procrustes`) when only the cross-product matrix is at hand.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

__all__ = ["random_orthogonal", "nearest_orthogonal"]


def random_orthogonal(rng: np.random.Generator, k: int) -> np.ndarray:
    """A Haar-distributed random orthogonal (k, k) float64 matrix drawn from ``rng``.

    :data:`scipy.stats.ortho_group` (QR of a Gaussian matrix with the signs of ``R`` fixed), which
    needs ``k >= 2``; for ``k = 1`` the orthogonal group is ``{1, -1}`` and the sign of one Gaussian
    draw is returned, so the generator advances the same way.
    """
    if k == 1:
        return np.where(rng.standard_normal((1, 1)) < 0, -1.0, 1.0)
    return ortho_group.rvs(k, random_state=rng)


def nearest_orthogonal(M: np.ndarray) -> np.ndarray:
    """The orthogonal ``R`` maximising ``tr(Rᵀ M)`` for a square ``M``: ``R = U Vᵀ`` from ``M = U Σ Vᵀ``.

    This is the orthogonal Procrustes problem ``min ||A R - B||_F`` with ``Aᵀ B = M``, solved by
    :func:`scipy.linalg.orthogonal_procrustes` with ``A = I`` and ``B = M``; use it where ``M`` is
    accumulated over row chunks instead of forming ``A`` and ``B`` (otherwise call
    ``orthogonal_procrustes(A, B)`` directly).
    """
    R, _ = orthogonal_procrustes(np.eye(M.shape[0]), M)
    return R
