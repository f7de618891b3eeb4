"""Hash families on torch tensors, for hashing inside models (``hashlearn.nn``).

The same families as :class:`hashlearn.hashing.SimHash` and :class:`hashlearn.hashing.CrossPolytopeLSH`,
written with torch so that they run on activations in a forward pass (any leading batch/head axes, no
copy to numpy) and draw their randomness from a private ``torch.Generator``:

* :func:`angular_buckets` — SimHash with ``p`` hyperplanes, bucket ids ranked in Gray-code order so
  that buckets next to each other in the sort order differ in one bit (sortLSH of HyperAttention);
* :func:`cross_polytope_buckets` — cross-polytope LSH: the closest signed basis vector after a random
  rotation (``argmax`` over ``[xR, -xR]``), used by LSH-MoE to cluster tokens.
"""

from __future__ import annotations

import torch

from ..errors import ValidationError

__all__ = ["gray_rank", "random_projections", "random_rotation", "angular_buckets", "cross_polytope_buckets"]


def gray_rank(n_bits: int) -> torch.Tensor:
    """(2**n_bits,) int64: the position of each bucket id in the reflected Gray-code sequence.

    Sorting by this rank puts buckets that differ in a single hyperplane next to each other.

    Examples
    --------
    >>> gray_rank(2).tolist()  # Gray sequence 00, 01, 11, 10
    [0, 1, 3, 2]
    """
    if n_bits < 1:
        raise ValidationError(f"n_bits must be an integer >= 1, got {n_bits}")
    ids = torch.arange(2 ** n_bits, dtype=torch.int64)
    gray = ids ^ (ids >> 1)  # the i-th Gray code
    rank = torch.empty_like(gray)
    rank[gray] = ids
    return rank


def random_projections(dim: int, n_bits: int, *, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """(dim, n_bits) Gaussian hyperplane normals from a private generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(dim, n_bits, generator=gen, dtype=torch.float64).to(dtype)


def random_rotation(dim: int, *, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """(dim, dim) uniformly random orthogonal matrix (QR of a Gaussian, signs fixed) from ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    g = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    qm, r = torch.linalg.qr(g)
    qm = qm * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return qm.to(dtype)


def angular_buckets(x: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """(..., n) int64 sortLSH keys of ``x`` (..., n, d): Gray-code rank of the SimHash bucket.

    Parameters
    ----------
    x : Tensor of shape (..., n, d)
    projections : Tensor of shape (d, p), p <= 30

    Returns
    -------
    Tensor of shape (..., n), int64, values in ``[0, 2**p)``.

    References
    ----------
    I. Han, R. Jayaram, A. Karbasi, V. Mirrokni, D. Woodruff, A. Zandieh, "HyperAttention: Long-context
    Attention in Near-Linear Time", 2023 (sortLSH); M. S. Charikar, STOC 2002 (SimHash).

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.1], [1.0, 0.2], [-1.0, -0.1]])
    >>> b = angular_buckets(x, random_projections(2, 4, seed=0))
    >>> bool(b[0] == b[1]), bool(b[0] == b[2])
    (True, False)
    """
    p = projections.shape[1]
    if x.shape[-1] != projections.shape[0]:
        raise ValidationError(f"vectors have dimension {x.shape[-1]} but the projections {tuple(projections.shape)} "
                              f"expect {projections.shape[0]}")
    bits = (x @ projections.to(x.dtype)) > 0
    weights = 2 ** torch.arange(p, dtype=torch.int64, device=x.device)
    ids = (bits.to(torch.int64) * weights).sum(-1)
    return gray_rank(p).to(x.device)[ids]


def cross_polytope_buckets(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """(..., n, L) int64 cross-polytope buckets of ``x`` (..., n, d) under L rotations (L, d, d).

    Bucket ``j`` in ``[0, 2d)``: ``argmax`` of ``[xR, -xR]`` — the closest of the ``2d`` signed basis
    vectors after rotation ``R``.

    References
    ----------
    A. Andoni, P. Indyk, T. Laarhoven, I. Razenshteyn, L. Schmidt, "Practical and Optimal LSH for Angular
    Distance", NeurIPS 2015.

    Examples
    --------
    >>> R = torch.stack([random_rotation(3, seed=1)])
    >>> x = torch.tensor([[1.0, 0.0, 0.0], [0.99, 0.01, 0.0]])
    >>> b = cross_polytope_buckets(x, R)
    >>> b.shape, bool(b[0, 0] == b[1, 0])
    (torch.Size([2, 1]), True)
    """
    if rotations.ndim != 3 or rotations.shape[1] != x.shape[-1]:
        raise ValidationError(f"rotations must be (L, {x.shape[-1]}, d), got {tuple(rotations.shape)}")
    y = torch.einsum("...d,lde->...le", x, rotations.to(x.dtype))
    return torch.cat([y, -y], dim=-1).argmax(-1)
