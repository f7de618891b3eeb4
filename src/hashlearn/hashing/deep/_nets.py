"""Torch modules of the deep hashers (imported only inside ``fit`` / ``transform``: torch is optional).

* :class:`HashNet` — backbone (MLP on vectors, or a small CNN on ``(C, H, W)`` images given flattened),
  a linear hash layer, an optional rotation (:class:`HouseholderRotation` or an unconstrained linear
  layer) and, with ``csce``, the cross-scale context gate and per-sample dynamic sign thresholds;
* :func:`init_weights` — the default initialisation of torch's layers, drawn from a ``torch.Generator``
  (no global seeding);
* :func:`pair_scores` — the pairwise similarity scores of the losses under the ``distance`` option
  (inner product, Euclidean, cosine or signal-to-noise ratio).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["HashNet", "HouseholderRotation", "init_weights", "pair_scores"]


class HouseholderRotation(nn.Module):
    """``Q = H_1 H_2 ⋯ H_k`` with ``H_i = I - 2 v_i v_iᵀ / ||v_i||²``: an orthogonal (r × r) layer.

    Any orthogonal matrix with determinant ``(-1)^k`` is such a product with ``k = r`` reflections, so
    the layer is a learnable rotation that stays exactly orthogonal (no penalty, no re-projection).

    References: "Householder Projector for Unsupervised Latent Semantics Discovery", ICCV 2023.
    """

    def __init__(self, r: int, n_reflections: int | None = None):
        super().__init__()
        self.vectors = nn.Parameter(torch.empty(n_reflections or r, r))

    def matrix(self) -> torch.Tensor:
        r = self.vectors.shape[1]
        Q = torch.eye(r, dtype=self.vectors.dtype)
        for v in self.vectors:
            v = v / v.norm().clamp_min(1e-12)
            Q = Q - 2.0 * torch.outer(Q @ v, v)  # Q H = Q - 2 (Q v) vᵀ
        return Q

    def forward(self, h):
        return h @ self.matrix()


class _MLP(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.l1, self.l2 = nn.Linear(d, hidden), nn.Linear(hidden, hidden)
        self.out_dim, self.scale_dims = hidden, (hidden, hidden)

    def forward(self, x):
        a = torch.relu(self.l1(x))
        b = torch.relu(self.l2(a))
        return b, (a, b)  # final features, one summary per scale (depth)


class _CNN(nn.Module):
    def __init__(self, shape, hidden: int):
        super().__init__()
        c, h, w = shape
        self.shape = (c, h, w)
        self.c1 = nn.Conv2d(c, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * (h // 4) * (w // 4), hidden)
        self.out_dim, self.scale_dims = hidden, (16, 32)

    def forward(self, x):
        x = x.view(x.shape[0], *self.shape)
        a = self.pool(torch.relu(self.c1(x)))
        b = self.pool(torch.relu(self.c2(a)))
        f = torch.relu(self.fc(b.flatten(1)))
        # scale summaries: global average of each stage's feature map
        return f, (a.mean(dim=(2, 3)), b.mean(dim=(2, 3)))


class HashNet(nn.Module):
    """Backbone → hash layer → (rotation) → continuous codes ``h`` (n, r); bits are ``h > 0``.

    With ``csce``, a cross-scale context vector ``c = σ(W [s_1; s_2])`` from the summaries of the two
    backbone scales gates the final features (``f ⊙ c``), and a per-sample threshold ``t(x) = U [s_1; s_2]``
    is subtracted from the codes (``h - t(x)``): the sign threshold is learned and depends on the image.
    """

    def __init__(self, d: int, r: int, *, input_shape=None, hidden: int = 256, rotation=None, csce=False):
        super().__init__()
        self.backbone = _CNN(tuple(input_shape), hidden) if input_shape is not None else _MLP(d, hidden)
        self.hash = nn.Linear(self.backbone.out_dim, r)
        if rotation == "householder":
            self.rotation = HouseholderRotation(r)
        elif rotation == "linear":
            self.rotation = nn.Linear(r, r, bias=False)
        else:
            self.rotation = None
        self.csce = bool(csce)
        if self.csce:
            s = sum(self.backbone.scale_dims)
            self.context = nn.Linear(s, self.backbone.out_dim)
            self.threshold = nn.Linear(s, r)

    def forward(self, x):
        f, scales = self.backbone(x)
        if self.csce:
            s = torch.cat(scales, dim=1)
            f = f * torch.sigmoid(self.context(s))
        h = self.hash(f)
        if self.rotation is not None:
            h = self.rotation(h)
        if self.csce:
            h = h - self.threshold(s)
        return h


def init_weights(module: nn.Module, gen: torch.Generator) -> None:
    """torch's default initialisation of Linear / Conv layers (Kaiming-uniform weights, uniform biases),
    drawn from ``gen``; Householder vectors and the rotation start near the identity / at random."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=gen)
        elif isinstance(m, HouseholderRotation):
            nn.init.normal_(m.vectors, generator=gen)
    rot = getattr(module, "rotation", None)
    if isinstance(rot, nn.Linear):  # unconstrained rotation: start at the identity, like Householder's orthogonal start
        with torch.no_grad():
            rot.weight.copy_(torch.eye(rot.weight.shape[0]))


def pair_scores(h: torch.Tensor, bank: torch.Tensor, distance: str) -> torch.Tensor:
    """Similarity scores ``Θ`` (n, m) between rows of ``h`` and of ``bank`` on the inner-product scale.

    For ±1 codes of length ``r`` every choice gives ``Θ_ij = ½ ⟨b_i, b_j⟩`` (``½ r`` for equal codes,
    ``-½ r`` for opposite ones); they differ on the continuous codes being trained:

    * ``inner``: ``½ ⟨h_i, h_j⟩`` (DPSH, HashNet);
    * ``euclidean``: ``½ (r - ½ ||h_i - h_j||²)``;
    * ``cosine``: ``½ r cos(h_i, h_j)``;
    * ``snr``: ``½ r (1 - ½ var(h_j - h_i) / var(h_i))`` — the signal-to-noise ratio distance of Yuan et
      al., "Signal-to-Noise Ratio: A Robust Distance Metric for Deep Metric Learning", CVPR 2019 (the
      anchor ``h_i`` is the signal, the difference the noise; variances over the code dimensions).
    """
    r = h.shape[1]
    if distance == "inner":
        return 0.5 * h @ bank.T
    if distance == "euclidean":
        d2 = (h * h).sum(1, keepdim=True) + (bank * bank).sum(1)[None, :] - 2.0 * h @ bank.T
        return 0.5 * (r - 0.5 * d2)
    if distance == "cosine":
        return 0.5 * r * (nn.functional.normalize(h, dim=1) @ nn.functional.normalize(bank, dim=1).T)
    if distance == "snr":
        hc = h - h.mean(1, keepdim=True)
        bc = bank - bank.mean(1, keepdim=True)
        # var(b_j - h_i) = mean((bc_j - hc_i)²) over the r dimensions
        noise = ((hc * hc).sum(1, keepdim=True) + (bc * bc).sum(1)[None, :] - 2.0 * hc @ bc.T) / r
        signal = (hc * hc).sum(1, keepdim=True) / r
        return 0.5 * r * (1.0 - 0.5 * noise / signal.clamp_min(1e-8))
    raise ValueError(distance)  # pragma: no cover - checked in _check_params
