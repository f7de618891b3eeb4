"""EcoFormer attention: kernelized hashing of queries and keys into binary codes, linear attention on them.

Queries and keys are mapped to ``b``-bit codes ``h(x) = sign(phi(x) W)`` with RBF kernel features
``phi(x)_j = exp(-||x - a_j||^2 / (2 sigma^2))`` against ``m`` anchors ``a_j`` (Gaussian at
initialisation, trainable) and a learned projection ``W`` (m, b). The attention similarity of a query
and a key is the number of bits on which their codes agree, ``s(q, k) = (b + h(q) . h(k)) / 2`` in
``[0, b]``, which factorises, so the attention is linear in the length::

    out_i = (b * sum_j v_j + h(q_i) (H_k^T V)) / (b * n + h(q_i) . sum_j h(k_j))      (non-causal)

with prefix sums for the causal case. ``H_k^T V`` and ``h(q_i) (.)`` multiply by +1/-1 only: the paper's
energy argument is that these multiply-accumulates become additions (:func:`operation_counts`).

Training end to end: the forward pass uses the hard signs and the backward pass the gradient of
``tanh`` (straight-through), so the hash functions learn from the task loss; :meth:`EcoFormerAttention.hash_loss`
adds the paper's self-supervised target — the codes' inner products should match the ranking of the
softmax attention scores (the most attended keys of a query similar, the least attended dissimilar).
"""

from __future__ import annotations

import math

import torch

from ..errors import ValidationError
from ..params import check_int_param
from .attention import check_qkv

__all__ = ["KernelizedHash", "EcoFormerAttention", "operation_counts"]


class KernelizedHash(torch.nn.Module):
    """``h(x) = sign(phi(x) W)``: RBF features against ``n_anchors`` anchors, then ``n_bits`` hyperplanes.

    ``forward`` returns codes in {-1, +1} (float, same dtype as ``x``) whose gradient is that of
    ``tanh(phi(x) W)`` (straight-through); :meth:`relaxed` returns ``tanh(phi(x) W)`` itself.

    Parameters
    ----------
    dim : int
        Head dimension of the vectors hashed.
    n_bits : int, default 16
    n_anchors : int, default 64
    seed : int, default 0
        Seeds the anchors and the initial ``W`` (a private generator).

    References
    ----------
    J. Liu, Z. Pan, H. He, J. Cai, B. Zhuang, "EcoFormer: Energy-Saving Attention with Linear Complexity",
    NeurIPS 2022 (kernelized hashing, Sec. 3.2); B. Kulis, K. Grauman, "Kernelized Locality-Sensitive
    Hashing", 2009.
    """

    def __init__(self, dim: int, *, n_bits: int = 16, n_anchors: int = 64, seed: int = 0):
        super().__init__()
        check_int_param(dim, "dim", min_val=1)
        check_int_param(n_bits, "n_bits", min_val=1)
        check_int_param(n_anchors, "n_anchors", min_val=1)
        g = torch.Generator().manual_seed(int(seed))
        self.dim, self.n_bits, self.n_anchors = int(dim), int(n_bits), int(n_anchors)
        self.anchors = torch.nn.Parameter(torch.randn(n_anchors, dim, generator=g))
        self.weight = torch.nn.Parameter(torch.randn(n_anchors, n_bits, generator=g) / math.sqrt(n_anchors))
        self.log_sigma = torch.nn.Parameter(torch.tensor(0.5 * math.log(2.0 * dim)))

    def _scores(self, x):
        if x.shape[-1] != self.dim:
            raise ValidationError(f"KernelizedHash: vectors of shape {tuple(x.shape)} have dimension {x.shape[-1]}, "
                                  f"expected {self.dim}")
        d2 = torch.cdist(x.reshape(-1, self.dim), self.anchors.to(x.dtype)).square().reshape(*x.shape[:-1], -1)
        phi = torch.exp(-d2 / (2.0 * torch.exp(2.0 * self.log_sigma)))
        phi = phi - phi.mean(-1, keepdim=True)  # centred features: balanced bits
        return phi @ self.weight.to(x.dtype)

    def relaxed(self, x):
        return torch.tanh(self._scores(x))

    def forward(self, x):
        return _SignTanhGrad.apply(self._scores(x))


class _SignTanhGrad(torch.autograd.Function):
    """Forward: exact signs in {-1, +1}; backward: the gradient of tanh (straight-through)."""

    @staticmethod
    def forward(ctx, z):
        t = torch.tanh(z)
        ctx.save_for_backward(t)
        return torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved_tensors
        return grad * (1.0 - t * t)


def _linear_attention(hq, hk, v, causal: bool, n_bits: int, eps: float = 1e-6):
    """Attention with similarity (b + hq . hk) / 2 in O(n b d): (B, H, N, b) codes, v (B, H, N, Dv)."""
    if causal:
        kv = torch.cumsum(hk.unsqueeze(-1) * v.unsqueeze(-2), dim=2)  # (B, H, N, b, Dv): prefix sums
        vsum = torch.cumsum(v, dim=2)
        ksum = torch.cumsum(hk, dim=2)
        count = torch.arange(1, v.shape[2] + 1, dtype=v.dtype, device=v.device).view(1, 1, -1, 1)
        num = n_bits * vsum + (hq.unsqueeze(-2) @ kv).squeeze(-2)
        den = n_bits * count + (hq * ksum).sum(-1, keepdim=True)
    else:
        kv = hk.transpose(-1, -2) @ v  # (B, H, b, Dv)
        num = n_bits * v.sum(2, keepdim=True) + hq @ kv
        den = n_bits * v.shape[2] + hq @ hk.sum(2).unsqueeze(-1)
    return (0.5 * num) / (0.5 * den + eps)  # similarity = agreeing bits = (b + hq . hk) / 2


class EcoFormerAttention(torch.nn.Module):
    """EcoFormer's binarised linear attention: ``forward(query, key, value, causal=False)``, SDPA shapes.

    Queries and keys (B, H, N, D) are hashed by one :class:`KernelizedHash` shared by the heads; the
    output (B, H, Nq, Dv) is the attention with similarity "number of agreeing bits" (module docstring).
    Every parameter is trainable through the straight-through sign.

    Parameters
    ----------
    dim : int
        Head dimension D.
    n_bits : int, default 16
    n_anchors : int, default 64
    seed : int, default 0

    References
    ----------
    J. Liu, Z. Pan, H. He, J. Cai, B. Zhuang, "EcoFormer: Energy-Saving Attention with Linear Complexity",
    NeurIPS 2022.

    Examples
    --------
    >>> attn = EcoFormerAttention(8, n_bits=4, n_anchors=16)
    >>> q = torch.randn(1, 2, 10, 8, generator=torch.Generator().manual_seed(0))
    >>> attn(q, q, q, causal=True).shape
    torch.Size([1, 2, 10, 8])
    """

    def __init__(self, dim: int, *, n_bits: int = 16, n_anchors: int = 64, seed: int = 0):
        super().__init__()
        self.hash = KernelizedHash(dim, n_bits=n_bits, n_anchors=n_anchors, seed=seed)

    def forward(self, query, key, value, causal: bool = False):
        check_qkv(query, key, value, causal=causal, name="EcoFormerAttention")
        hq, hk = self.hash(query), self.hash(key)
        return _linear_attention(hq, hk, value, causal, self.hash.n_bits)

    def hash_loss(self, query, key, *, top: int = 4, causal: bool = False):
        """Self-supervised hashing loss from the softmax attention scores (EcoFormer Sec. 3.2).

        For each query, its ``top`` highest-scoring keys under ``softmax(q k^T / sqrt(D))`` are targets
        +1 and its ``top`` lowest -1; the loss is the mean squared difference between
        ``tanh-codes(q) . tanh-codes(k) / b`` and the target. O(N^2) in the scores: call it on a
        subsample (few queries) in training.
        """
        check_qkv(query, key, key, causal=causal, name="EcoFormerAttention.hash_loss")
        top = check_int_param(top, "top", min_val=1, max_val=max(1, key.shape[2] // 2))
        with torch.no_grad():
            scores = query @ key.transpose(-1, -2)
            if causal:
                future = torch.ones(scores.shape[-2:], dtype=torch.bool, device=query.device).triu(1)
                scores = scores.masked_fill(future, float("nan"))
            hi = torch.nan_to_num(scores, nan=float("-inf")).topk(top, dim=-1).indices
            lo = torch.nan_to_num(scores, nan=float("inf")).topk(top, dim=-1, largest=False).indices
        rq, rk = self.hash.relaxed(query), self.hash.relaxed(key)
        sim = rq @ rk.transpose(-1, -2) / self.hash.n_bits
        sh, sl = sim.gather(-1, hi), sim.gather(-1, lo)
        if causal:  # the first 2*top queries have too few past keys for both lists: left out
            sh, sl = sh[..., 2 * top:, :], sl[..., 2 * top:, :]
        loss = (sh - 1.0).square().mean() + (sl + 1.0).square().mean()
        return loss


def operation_counts(n: int, d: int, *, n_bits: int = 16, n_anchors: int = 64, causal: bool = False) -> dict:
    """Multiplications and additions of one head's attention, softmax vs EcoFormer (the energy proxy).

    Softmax: ``q k^T`` and ``P V`` are ``2 n^2 d`` multiply-accumulates (halved causal), plus ``n^2``
    exponentials (counted as multiplications) and ``n^2`` additions of the row sums. EcoFormer: hashing
    costs ``2 n m d`` multiplications for the kernel features and ``2 n m b`` for the projection;
    ``H_k^T V`` and ``h(q) (H_k^T V)`` multiply by +1/-1, i.e. ``2 n b d`` additions, plus ``n d``
    divisions (multiplications) for the normalisation; the causal prefix sums add ``n b d`` additions.

    Returns
    -------
    dict with ``softmax_mul``, ``softmax_add``, ``ecoformer_mul``, ``ecoformer_add``, ``mul_saved``
    (``1 - ecoformer_mul / softmax_mul``).

    Examples
    --------
    >>> c = operation_counts(4096, 64)
    >>> round(c["mul_saved"], 3)
    0.98
    """
    pairs = n * (n + 1) // 2 if causal else n * n
    soft_mul = 2 * pairs * d + pairs
    soft_add = 2 * pairs * d + pairs
    eco_mul = 2 * n * n_anchors * d + 2 * n * n_anchors * n_bits + n * d
    eco_add = 2 * n * n_bits * d + n * n_bits + (n * n_bits * d if causal else 0) + 2 * n * n_anchors * d
    return {"softmax_mul": soft_mul, "softmax_add": soft_add, "ecoformer_mul": eco_mul, "ecoformer_add": eco_add,
            "mul_saved": 1.0 - eco_mul / soft_mul}
