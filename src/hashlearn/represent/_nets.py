"""Torch modules of :mod:`hashlearn.represent` (imported only inside ``fit`` / ``transform``: torch is optional).

* :class:`HouseholderProjector` — the deep hashers' :class:`~hashlearn.hashing.deep._nets.HouseholderRotation`
  (``rotation="householder"``) cut to its first ``k`` columns: ``k`` orthonormal directions in ``R^d``;
* :class:`TinyVAE` — an MLP variational autoencoder for 28×28 images;
* :func:`small_cnn` — the 2-block CNN encoder of G-SimCLR.
"""

from __future__ import annotations

import torch
from torch import nn

from ..hashing.deep._nets import HouseholderRotation

__all__ = ["HouseholderProjector", "TinyVAE", "small_cnn"]


class HouseholderProjector(HouseholderRotation):
    """Orthogonal projection ``P = (H_1 H_2 ⋯ H_m)[:, :k]`` (d × k, ``PᵀP = I_k`` by construction).

    The layer is the Householder rotation of the deep hashers; its first ``k`` columns are ``k`` orthonormal
    latent directions (:meth:`directions`, rows), and ``forward(z)`` gives the coordinates ``z P`` (n, k).

    References: Y. Song, J. Zhang, N. Sebe, W. Wang, "Householder Projector for Unsupervised Latent Semantics
    Discovery", ICCV 2023.
    """

    def __init__(self, dim: int, n_directions: int, n_reflections: int | None = None):
        if not 1 <= n_directions <= dim:
            raise ValueError(f"n_directions must be in 1..{dim}, got {n_directions}")
        super().__init__(dim, n_reflections)
        self.n_directions = int(n_directions)

    def reset(self, gen: torch.Generator) -> None:
        """Householder vectors drawn from N(0, 1) with ``gen`` (a random orthogonal start)."""
        with torch.no_grad():
            self.vectors.normal_(generator=gen)

    def set_directions(self, rows) -> None:
        """Set the Householder vectors so that :meth:`directions` equals ``rows`` (k, d) orthonormal, up to the
        sign of each row: the rows are completed to an orthogonal basis U, whose Householder QR gives
        ``U = H_1 ⋯ H_d R`` with R diagonal ±1 (needs ``n_reflections = d``)."""
        import numpy as np

        A = np.asarray(rows, dtype=np.float64)
        d = self.vectors.shape[1]
        if self.vectors.shape[0] != d or A.shape != (self.n_directions, d):
            raise ValueError(f"set_directions needs {self.n_directions} rows of {d} values and {d} reflections")
        U = np.linalg.qr(np.hstack([A.T, np.random.default_rng(0).standard_normal((d, d - A.shape[0]))]))[0]
        U[:, : A.shape[0]] = A.T  # qr may flip signs of the given columns: keep them exactly
        vecs, M = np.zeros((d, d)), U.copy()
        for j in range(d):
            x = M[j:, j]
            v = x.copy()
            v[0] += (1.0 if x[0] >= 0 else -1.0) * np.linalg.norm(x)
            if np.linalg.norm(v) > 1e-12:
                vecs[j, j:] = v
                M[j:] -= 2.0 * np.outer(v, v @ M[j:]) / (v @ v)  # M ← H_j M
        with torch.no_grad():
            self.vectors.copy_(torch.from_numpy(vecs).to(self.vectors.dtype))

    def directions(self) -> torch.Tensor:
        """(k, d): orthonormal rows."""
        return self.matrix()[:, : self.n_directions].T

    def forward(self, z):
        return z @ self.matrix()[:, : self.n_directions]


class TinyVAE(nn.Module):
    """MLP VAE: 784 → hidden → (μ, log σ²) in R^latent; decoder latent → hidden → 784 (sigmoid)."""

    def __init__(self, latent: int = 16, hidden: int = 400, d: int = 784):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, hidden), nn.ReLU())
        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, d), nn.Sigmoid())

    def encode(self, x):
        h = self.enc(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        return self.dec(z)

    def loss(self, x, gen: torch.Generator):
        """Negative ELBO per image (Bernoulli likelihood, standard normal prior)."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        rec = nn.functional.binary_cross_entropy(self.decode(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (rec + kl) / x.shape[0]


def small_cnn(dim: int) -> nn.Sequential:
    """(n, 1, 28, 28) → (n, dim): two 3×3 conv blocks (16, 32 channels, BN, ReLU, 2×2 pool) and a linear layer."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, dim))
