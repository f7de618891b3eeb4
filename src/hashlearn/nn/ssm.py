"""A diagonal state-space layer, LSH-bucketed context-dependent sparse attention, and the MQAR task.

* :class:`DiagonalSSM` — per channel and state ``h_t = a * h_{t-1} + b * x_t``, ``y_t = sum_s c_s h_t[s] +
  d x_t`` with ``a`` in (0, 1) learned; computed as a causal convolution with the kernel ``a^k`` (FFT),
  so a length-L sequence costs O(L log L) per channel.
* :class:`HashedSparseAttention` — causal attention in which query ``i`` sees only the keys ``j <= i``
  that fall in its angular-LSH bucket. The buckets are computed from the current queries and keys (the
  hash of the projected hidden states), so which tokens may interact depends on the context — the
  extension of the 2025 seed over position-fixed sparsity. :meth:`HashedSparseAttention.pair_fraction`
  reports the share of the dense causal (query, key) pairs that are scored: the attention FLOPs relative to
  dense attention. The scores are computed as a masked dense matrix here (simple and exact for the
  pairs kept), so the FLOP count, not this implementation's wall time, is the saving.
* :func:`mqar_batch` — multi-query associative recall (Zoology): ``n_pairs`` key-value pairs, then the
  keys asked again at random later positions; the target at a query position is the key's value.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ValidationError
from ..params import check_int_param
from .lsh import angular_buckets, random_projections

__all__ = ["DiagonalSSM", "HashedSparseAttention", "mqar_batch"]


def mqar_batch(n: int, seq_len: int, n_pairs: int, vocab: int, *, generator: torch.Generator | None = None):
    """``(inputs (n, seq_len) int64, targets (n, seq_len) int64)``; targets are -100 except at queries.

    Token 0 is padding; keys are drawn without repetition from ``[1, vocab // 2)``, values from
    ``[vocab // 2, vocab)``. Positions ``0 .. 2 n_pairs - 1`` hold ``k1 v1 k2 v2 ...``; each key is asked
    once at a distinct random position after them.

    References
    ----------
    S. Arora et al., "Zoology: Measuring and Improving Recall in Efficient Language Models", ICLR 2024.

    Examples
    --------
    >>> x, y = mqar_batch(2, 32, 4, 64, generator=torch.Generator().manual_seed(0))
    >>> x.shape, int((y >= 0).sum())
    (torch.Size([2, 32]), 8)
    """
    for name, value in (("n", n), ("seq_len", seq_len), ("n_pairs", n_pairs), ("vocab", vocab)):
        check_int_param(value, name, min_val=1)
    if 3 * n_pairs > seq_len:
        raise ValidationError(f"mqar_batch: {n_pairs} pairs need seq_len >= {3 * n_pairs}, got {seq_len}")
    if vocab // 2 - 1 < n_pairs:
        raise ValidationError(f"mqar_batch: vocab {vocab} has {vocab // 2 - 1} keys for {n_pairs} pairs")
    g = generator
    half = vocab // 2
    keys = torch.stack([torch.randperm(half - 1, generator=g)[:n_pairs] + 1 for _ in range(n)])
    vals = torch.randint(half, vocab, (n, n_pairs), generator=g)
    x = torch.zeros(n, seq_len, dtype=torch.int64)
    y = torch.full((n, seq_len), -100, dtype=torch.int64)
    x[:, 0:2 * n_pairs:2] = keys
    x[:, 1:2 * n_pairs:2] = vals
    for i in range(n):
        pos = torch.randperm(seq_len - 2 * n_pairs, generator=g)[:n_pairs] + 2 * n_pairs
        x[i, pos] = keys[i]
        y[i, pos] = vals[i]
    return x, y


class DiagonalSSM(torch.nn.Module):
    """Diagonal linear state-space layer on (B, L, d_model), causal, O(L log L).

    Parameters
    ----------
    d_model : int
    d_state : int, default 16
    seed : int, default 0

    References
    ----------
    A. Gupta, A. Gu, J. Berant, "Diagonal State Spaces are as Effective as Structured State Spaces",
    NeurIPS 2022; the 2025 seed ("Overcoming Long-Context Limitations of State-Space Models via
    Context-Dependent Sparse Attention") pairs such a layer with sparse attention.

    Examples
    --------
    >>> ssm = DiagonalSSM(4, d_state=2)
    >>> ssm(torch.zeros(1, 10, 4)).shape
    torch.Size([1, 10, 4])
    """

    def __init__(self, d_model: int, *, d_state: int = 16, seed: int = 0):
        super().__init__()
        check_int_param(d_model, "d_model", min_val=1)
        check_int_param(d_state, "d_state", min_val=1)
        g = torch.Generator().manual_seed(int(seed))
        # decay rates spread from fast to slow memory: a = sigmoid(logit) in (0.5, 0.999)
        a = torch.linspace(0.5, 0.999, d_state).repeat(d_model, 1)
        self.a_logit = torch.nn.Parameter(torch.log(a / (1 - a)))
        self.b = torch.nn.Parameter(torch.randn(d_model, d_state, generator=g) / math.sqrt(d_state))
        self.c = torch.nn.Parameter(torch.randn(d_model, d_state, generator=g) / math.sqrt(d_state))
        self.d = torch.nn.Parameter(torch.ones(d_model))

    def kernel(self, length: int) -> torch.Tensor:
        """(d_model, length) impulse response ``sum_s c_s b_s a_s^k``."""
        a = torch.sigmoid(self.a_logit)  # (d, s)
        k = torch.arange(length, dtype=a.dtype, device=a.device)
        powers = torch.exp(k.view(1, 1, -1) * torch.log(a).unsqueeze(-1))  # (d, s, L)
        return ((self.b * self.c).unsqueeze(-1) * powers).sum(1)

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d.shape[0]:
            raise ValidationError(f"DiagonalSSM expects (batch, length, {self.d.shape[0]}), got {tuple(x.shape)}")
        L = x.shape[1]
        kern = self.kernel(L).to(x.dtype)
        n = 2 * L
        y = torch.fft.irfft(torch.fft.rfft(x.transpose(1, 2), n=n) * torch.fft.rfft(kern, n=n), n=n)[..., :L]
        return y.transpose(1, 2) + self.d * x


class HashedSparseAttention(torch.nn.Module):
    """Causal multi-head attention restricted to same-bucket pairs of a context-dependent angular LSH.

    Query ``i`` of a head attends to keys ``j <= i`` whose bucket (SimHash of the normalised key with
    ``n_bits`` fixed hyperplanes) equals the query's; key ``i`` itself is always visible, so no row is
    empty. ``n_bits = 0`` is full causal attention.

    Parameters
    ----------
    d_model : int
    n_heads : int, default 1
    n_bits : int, default 2
        ``2**n_bits`` buckets: about a ``2**-n_bits`` share of the causal pairs is scored.
    seed : int, default 0

    Attributes
    ----------
    last_pair_fraction : float
        After ``forward``: scored (query, key) pairs / dense causal pairs.

    References
    ----------
    "Overcoming Long-Context Limitations of State-Space Models via Context-Dependent Sparse Attention",
    2025; N. Kitaev, L. Kaiser, A. Levskaya, "Reformer: The Efficient Transformer", ICLR 2020 (shared-QK
    angular LSH buckets).
    """

    def __init__(self, d_model: int, *, n_heads: int = 1, n_bits: int = 2, seed: int = 0):
        super().__init__()
        check_int_param(d_model, "d_model", min_val=1)
        check_int_param(n_heads, "n_heads", min_val=1)
        check_int_param(n_bits, "n_bits", min_val=0, max_val=20)
        if d_model % n_heads:
            raise ValidationError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.qk = torch.nn.Linear(d_model, d_model)  # shared query/key projection (as in Reformer)
            self.v = torch.nn.Linear(d_model, d_model)
            self.out = torch.nn.Linear(d_model, d_model)
        self.n_heads, self.n_bits = int(n_heads), int(n_bits)
        dh = d_model // n_heads
        self.register_buffer("projections", random_projections(dh, max(1, n_bits), seed=seed + 7))
        self.last_pair_fraction = 1.0

    def forward(self, x):
        B, L, D = x.shape
        h = self.n_heads
        qk = self.qk(x).view(B, L, h, -1).transpose(1, 2)  # (B, h, L, dh)
        v = self.v(x).view(B, L, h, -1).transpose(1, 2)
        kn = F.normalize(qk, dim=-1)
        allowed = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        if self.n_bits > 0:
            bucket = angular_buckets(kn.detach(), self.projections.to(x.dtype))  # (B, h, L)
            allowed = allowed & (bucket.unsqueeze(-1) == bucket.unsqueeze(-2))
        allowed = allowed | torch.eye(L, dtype=torch.bool, device=x.device)
        self.last_pair_fraction = float(allowed.sum()) / (B * h * L * (L + 1) / 2) if self.n_bits else 1.0
        scores = (qk @ kn.transpose(-1, -2)) / math.sqrt(qk.shape[-1])
        out = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v
        return self.out(out.transpose(1, 2).reshape(B, L, D))
