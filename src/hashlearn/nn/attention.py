"""HyperAttention: sortLSH block-diagonal attention plus uniformly sampled residual columns.

Shapes follow :func:`torch.nn.functional.scaled_dot_product_attention`: query ``(B, H, Nq, D)``, key and
value ``(B, H, Nk, D)`` (value may have its own last dimension), output ``(B, H, Nq, Dv)``.

Non-causal (Han et al. 2023, Algorithm 3 with the sortLSH mask of Algorithm 1):

1. hash queries and keys with the same angular LSH (``p`` hyperplanes), sort both by the Gray-code rank
   of their bucket, cut the sorted keys into ``m = ceil(Nk / block_size)`` blocks and the sorted
   queries into ``m`` blocks of matching count; every query attends exactly to the keys of its block;
2. sample ``sample_size`` key columns uniformly with replacement; every query also attends to those
   that are *not* in its own block, each with weight ``Nk / sample_size`` (the unbiased estimate of the
   residual ``A - A_block`` of the softmax numerator and of its row sums);
3. normalise: output = (block numerator + weighted sample numerator) / (block row sum + weighted
   sample row sum). This is the paper's combination of two partial attentions by their log-sum-exps:
   the block part (torch's fused kernel, no mask unless there is padding) and the sample part (the
   same kernel with an additive bias ``log(Nk / sample_size)``, ``-inf`` for samples inside the
   query's block).

Causal (the paper's Algorithm 4): split the sequence into halves; the two diagonal blocks are causal
attentions of half the length (computed together, recursively, by folding the halves into the head
axis); the lower-left block (second-half queries, first-half keys) has no mask and uses the
non-causal algorithm; the two parts of the second half are merged by their log-sum-exps. Below
``min_seq_len`` the recursion (and a non-causal call) computes exact attention. A query never sees a
key after it: the only keys a second-half query meets outside its own half come from the first half.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ValidationError
from ..params import check_int_param, check_real_param
from .lsh import angular_buckets, random_projections

__all__ = ["hyper_attention", "HyperAttention", "exact_attention"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Config:
    block_size: int
    sample_size: int
    min_seq_len: int
    projections: torch.Tensor
    generator: torch.Generator | None


# -- checks -------------------------------------------------------------------------------------------
def _shape(t) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_qkv(query, key, value, *, causal: bool = False, key_padding_mask=None, name: str = "attention") -> None:
    """Raise :class:`ValidationError` naming the shapes unless (q, k, v, mask) fit together.

    query (B, H, Nq, D), key (B, H, Nk, D), value (B, H, Nk, Dv), one floating dtype, finite; with
    ``causal`` Nq == Nk; ``key_padding_mask`` bool (B, Nk), True where a key may be attended.
    """
    for label, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, torch.Tensor):
            raise ValidationError(f"{name}: {label} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValidationError(f"{name}: expected (batch, heads, length, dim) tensors, got {label} of shape "
                                  f"{_shape(t)}")
        if not t.dtype.is_floating_point:
            raise ValidationError(f"{name}: {label} must be floating point, got {t.dtype}")
    if not (query.dtype == key.dtype == value.dtype):
        raise ValidationError(f"{name}: query, key and value must share one dtype, got {query.dtype}, {key.dtype}, "
                              f"{value.dtype}")
    if not (query.shape[:2] == key.shape[:2] == value.shape[:2]):
        raise ValidationError(f"{name}: batch and head axes differ: query {_shape(query)}, key {_shape(key)}, "
                              f"value {_shape(value)}")
    if key.shape[2] != value.shape[2]:
        raise ValidationError(f"{name}: key {_shape(key)} and value {_shape(value)} have different lengths")
    if query.shape[3] != key.shape[3]:
        raise ValidationError(f"{name}: query {_shape(query)} and key {_shape(key)} have different head dims")
    if min(query.shape[2], key.shape[2]) < 1:
        raise ValidationError(f"{name}: empty sequence: query {_shape(query)}, key {_shape(key)}")
    if causal and query.shape[2] != key.shape[2]:
        raise ValidationError(f"{name}: causal attention needs as many queries as keys, got query {_shape(query)} "
                              f"and key {_shape(key)}")
    for label, t in (("query", query), ("key", key), ("value", value)):
        # one read-only pass: a NaN or infinity makes the sum non-finite; an overflowing sum of finite
        # values is rechecked element by element
        if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
            raise ValidationError(f"{name}: {label} of shape {_shape(t)} contains NaN or infinity")
    if key_padding_mask is not None:
        want = (key.shape[0], key.shape[2])
        if not isinstance(key_padding_mask, torch.Tensor) or key_padding_mask.dtype != torch.bool:
            raise ValidationError(f"{name}: key_padding_mask must be a bool tensor of shape {want}")
        if tuple(key_padding_mask.shape) != want:
            raise ValidationError(f"{name}: key_padding_mask has shape {_shape(key_padding_mask)}, expected "
                                  f"(batch, key length) = {want} for key {_shape(key)}")


# -- exact attention with log-sum-exp ---------------------------------------------------------------
def _softmax_attend(scores: torch.Tensor, values, merge=None):
    """(out, lse) of softmax rows of ``scores``; rows that are all ``-inf`` give out 0 and lse ``-inf``."""
    lse = torch.logsumexp(scores, dim=-1)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    p = torch.exp(scores - safe.unsqueeze(-1))
    out = merge(p) if merge is not None else p @ values
    return out, lse


def _flash_op(q=None, v=None):
    """torch's fused CPU attention that also returns the log-sum-exp, or None where it is missing or unusable."""
    if q is not None and (q.device.type != "cpu" or q.dtype not in (torch.float32, torch.float64)
                          or q.shape[-1] != v.shape[-1]):
        return None
    try:
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    except (AttributeError, RuntimeError):  # pragma: no cover - depends on the torch build
        return None


def _exact_math(query, key, value, causal, scale, key_bias):
    scores = (query @ key.transpose(-1, -2)) * scale
    if key_bias is not None:
        scores = scores + key_bias.unsqueeze(-2)
    if causal:
        nq, nk = scores.shape[-2:]
        future = torch.ones(nq, nk, dtype=torch.bool, device=query.device).triu(1 + nk - nq)
        scores = scores.masked_fill(future, float("-inf"))
    return _softmax_attend(scores, value)


def _plain_attention(q, k, v, scale):
    """(out, lse) of softmax(q k^T * scale) v for 4-d tensors, no mask (torch's fused kernel where usable)."""
    op = _flash_op(q, v)
    if op is None:
        return _softmax_attend((q @ k.transpose(-1, -2)) * scale, v)
    out, lse = op(q, k, v, 0.0, False, scale=scale)
    return out, lse.to(q.dtype)


def _biased_attention(q, k, v, bias, scale):
    """(out, lse) of softmax(q k^T * scale + bias) v for 4-d tensors; ``bias`` (..., 1, Nk) broadcasts over queries.

    A row whose bias is ``-inf`` everywhere gets out 0 and lse ``-inf``.
    """
    op = _flash_op(q, v)
    if op is None:
        return _softmax_attend((q @ k.transpose(-1, -2)) * scale + bias, v)
    out, lse = op(q, k, v, 0.0, False, attn_mask=bias.to(q.dtype), scale=scale)
    seen = torch.isfinite(bias).any(-1)  # (..., 1): broadcasts over the queries
    return out.masked_fill(~seen.unsqueeze(-1), 0.0), lse.to(q.dtype).masked_fill(~seen, float("-inf"))


def exact_attention(query, key, value, *, causal: bool = False, scale: float | None = None,
                    key_bias: torch.Tensor | None = None):
    """Exact softmax attention with its log-sum-exp: ``(out (B, H, Nq, Dv), lse (B, H, Nq))``.

    ``key_bias`` (B, H, Nk) is added to every query's scores (``-inf`` masks a key); a query that sees
    no key gets output 0 and lse ``-inf``. Causal attention needs Nq == Nk. On CPU this is torch's fused
    flash-attention kernel (``aten._scaled_dot_product_flash_attention_for_cpu``, the one behind
    ``F.scaled_dot_product_attention``, which also returns the log-sum-exp); elsewhere, or for
    other dtypes, the (Nq, Nk) score matrix is materialised.

    Examples
    --------
    >>> q = torch.randn(1, 1, 5, 4, generator=torch.Generator().manual_seed(0))
    >>> out, lse = exact_attention(q, q, q, causal=True)
    >>> bool(torch.allclose(out, torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)))
    True
    """
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    op = _flash_op(query, value)
    if op is None:
        return _exact_math(query, key, value, causal, scale, key_bias)
    mask = None if key_bias is None else key_bias.unsqueeze(-2).to(query.dtype)
    out, lse = op(query, key, value, 0.0, causal, attn_mask=mask, scale=scale)
    lse = lse.to(query.dtype)
    if key_bias is not None:  # the kernel reports lse 0 for a query that sees no key: make it -inf
        visible = torch.isfinite(key_bias)
        seen = visible.cumsum(-1) > 0 if causal else visible.any(-1, keepdim=True).expand_as(lse)
        lse = lse.masked_fill(~seen, float("-inf"))
        out = out.masked_fill(~seen.unsqueeze(-1), 0.0)
    return out, lse


def _no_grad_needed(*ts) -> bool:
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in ts))


def _merge(o1, l1, o2, l2, *, inplace: bool = False):
    """Combine two partial attentions over disjoint key sets by their log-sum-exps.

    With ``inplace`` (and no autograd involved) the result is written into ``o1``, which the caller owns.
    """
    lse = torch.logaddexp(l1, l2)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    w1 = torch.exp(l1 - safe).unsqueeze(-1).to(o1.dtype)
    w2 = torch.exp(l2 - safe).unsqueeze(-1).to(o2.dtype)
    if inplace and _no_grad_needed(o1, o2, l1, l2):
        return o1.mul_(w1).addcmul_(o2, w2), lse
    return o1 * w1 + o2 * w2, lse


def _flat_rows(idx, n: int):
    """Row numbers of ``idx`` (B, H, M) into the (B * H * n)-row view of a (B, H, n, D) tensor, shape (B*H*M,)."""
    B, H, M = idx.shape
    base = torch.arange(0, B * H * n, n, device=idx.device).view(B, H, 1)
    return (idx + base).reshape(-1)


def _row_view(x):
    """``(rows, first_row, stride_b, stride_h)``: the (D,) rows of x (B, H, N, D) in its storage, or None.

    Slices along the length axis of a contiguous tensor (the halves of the causal recursion) keep
    whole rows contiguous; their rows are picked from the underlying storage without a copy.
    """
    D = x.shape[-1]
    st = x.stride()
    if x.requires_grad and torch.is_grad_enabled():
        return None
    if st[3] != 1 or st[2] != D or st[0] % D or st[1] % D or x.storage_offset() % D:
        return None
    n_rows = x.untyped_storage().nbytes() // (x.element_size() * D)
    rows = x.as_strided((n_rows, D), (D, 1), 0)
    return rows, x.storage_offset() // D, st[0] // D, st[1] // D


def _gather_rows(x, idx):
    """x (B, H, N, D), idx (B, H, M) -> (B, H, M, D) (whole-row copies: faster than ``torch.gather``)."""
    B, H, N, D = x.shape
    view = _row_view(x)
    if view is None:
        return x.reshape(B * H * N, D).index_select(0, _flat_rows(idx, N)).view(B, H, idx.shape[2], D)
    rows, first, sb, sh = view
    base = (first + torch.arange(B, device=idx.device).view(B, 1, 1) * sb
            + torch.arange(H, device=idx.device).view(1, H, 1) * sh)
    return rows.index_select(0, (idx + base).reshape(-1)).view(B, H, idx.shape[2], D)


def _scatter_rows(x, idx, n: int):
    """Inverse of :func:`_gather_rows` for a permutation ``idx`` (B, H, n): out[b, h, idx[b, h, i]] = x[b, h, i]."""
    B, H, _, D = x.shape
    out = torch.empty(B * H * n, D, dtype=x.dtype, device=x.device)
    out.index_copy_(0, _flat_rows(idx, n), x.reshape(B * H * n, D))
    return out.view(B, H, n, D)


def _pad_rows(x, n, value=0.0):
    extra = n - x.shape[2]
    if extra <= 0:
        return x
    if x.ndim == 4:
        return F.pad(x, (0, 0, 0, extra), value=value)
    return F.pad(x, (0, extra), value=value)


# -- non-causal ---------------------------------------------------------------------------------------
def _hyper_noncausal(q, k, v, kbias, scale, cfg: _Config):
    B, H, nq, d = q.shape
    nk = k.shape[2]
    if nq < cfg.min_seq_len or nk < cfg.min_seq_len:
        return exact_attention(q, k, v, scale=scale, key_bias=kbias)
    bs = min(cfg.block_size, nk)  # a piece of the causal recursion may be shorter than a block: one block
    n_blocks = -(-nk // bs)
    bq = -(-nq // n_blocks)
    qi = torch.argsort(angular_buckets(q, cfg.projections), dim=2, stable=True)
    ki = torch.argsort(angular_buckets(k, cfg.projections), dim=2, stable=True)
    qs, ks, vs = _gather_rows(q, qi), _gather_rows(k, ki), _gather_rows(v, ki)
    dv = v.shape[-1]
    kb = None if kbias is None else torch.gather(kbias, 2, ki)
    # pad the sorted rows to whole blocks; padded keys are masked out with -inf
    qf = _pad_rows(qs, n_blocks * bq).view(B, H * n_blocks, bq, d)
    kf = _pad_rows(ks, n_blocks * bs).view(B, H * n_blocks, bs, d)
    vf = _pad_rows(vs, n_blocks * bs).view(B, H * n_blocks, bs, dv)
    if kb is None and n_blocks * bs == nk:  # nothing to mask: the plain fused kernel
        out, lse = _plain_attention(qf, kf, vf, scale)
    else:
        kbz = torch.zeros(B, H, nk, dtype=q.dtype, device=q.device) if kb is None else kb
        bblk = _pad_rows(kbz, n_blocks * bs, float("-inf")).view(B, H * n_blocks, 1, bs)
        out, lse = _biased_attention(qf, kf, vf, bblk, scale)
    m = cfg.sample_size
    if m > 0 and n_blocks > 1:
        # the sampled residual columns: a second attention of every query block against the same m keys,
        # weighted nk / m (bias log(nk / m)) and masked where a sample lies in the query's own block;
        # merged with the block part by the log-sum-exps (= one softmax over block keys and samples)
        cols = torch.randint(nk, (B, H, m), generator=cfg.generator, device=q.device)
        ksmp, vsmp = _gather_rows(ks, cols), _gather_rows(vs, cols)
        same_block = (cols // bs).unsqueeze(2) == torch.arange(n_blocks, device=q.device).view(1, 1, -1, 1)
        bsmp = torch.full((B, H, 1, m), math.log(nk / m), dtype=q.dtype, device=q.device)
        if kb is not None:
            bsmp = bsmp + torch.gather(kb, 2, cols).unsqueeze(2)
        bsmp = bsmp.masked_fill(same_block, float("-inf")).reshape(B, H * n_blocks, 1, m)
        ksmp = ksmp.unsqueeze(2).expand(B, H, n_blocks, m, d).reshape(B, H * n_blocks, m, d)
        vsmp = vsmp.unsqueeze(2).expand(B, H, n_blocks, m, dv).reshape(B, H * n_blocks, m, dv)
        o_s, l_s = _biased_attention(qf, ksmp, vsmp, bsmp, scale)
        out, lse = _merge(out, lse, o_s, l_s, inplace=True)  # out: this call's kernel output
    out = out.reshape(B, H, n_blocks * bq, -1)[:, :, :nq]
    lse = lse.reshape(B, H, n_blocks * bq)[:, :, :nq]
    lse_out = torch.empty_like(lse).scatter_(2, qi, lse)
    return _scatter_rows(out, qi, nq), lse_out


# -- causal -------------------------------------------------------------------------------------------
def _hyper_causal(q, k, v, kbias, scale, cfg: _Config):
    B, H, n, d = q.shape
    if n <= cfg.min_seq_len:
        return exact_attention(q, k, v, causal=True, scale=scale, key_bias=kbias)
    n2 = n + (n % 2)
    if n2 != n:  # one padded row at the end: a key no real query may see (it is in everyone's future)
        if kbias is None:
            kbias = torch.zeros(B, H, n, dtype=q.dtype, device=q.device)
        q, k, v = _pad_rows(q, n2), _pad_rows(k, n2), _pad_rows(v, n2)
        kbias = _pad_rows(kbias, n2, float("-inf"))
    half = n2 // 2
    # fold the two halves into the head axis: (B, H, 2*half, D) -> (B, 2H, half, D)
    o_bd, l_bd = _hyper_causal(q.reshape(B, 2 * H, half, d), k.reshape(B, 2 * H, half, d),
                               v.reshape(B, 2 * H, half, v.shape[-1]),
                               None if kbias is None else kbias.reshape(B, 2 * H, half), scale, cfg)
    o_bd = o_bd.reshape(B, H, n2, -1)
    l_bd = l_bd.reshape(B, H, n2)
    o_off, l_off = _hyper_noncausal(q[:, :, half:], k[:, :, :half], v[:, :, :half],
                                    None if kbias is None else kbias[:, :, :half], scale, cfg)
    if not _no_grad_needed(o_bd, o_off, l_bd, l_off):  # autograd needs o_bd intact
        o_dn, l_dn = _merge(o_bd[:, :, half:], l_bd[:, :, half:], o_off, l_off)
        return (torch.cat([o_bd[:, :, :half], o_dn], dim=2)[:, :, :n],
                torch.cat([l_bd[:, :, :half], l_dn], dim=2)[:, :, :n])
    # o_bd and l_bd are fresh tensors of this call: the second half is merged in place, no copy of the rest
    _, l_dn = _merge(o_bd[:, :, half:], l_bd[:, :, half:], o_off, l_off, inplace=True)
    l_bd[:, :, half:] = l_dn
    return o_bd[:, :, :n], l_bd[:, :, :n]


# -- public API ---------------------------------------------------------------------------------------
def _check_config(block_size, sample_size, n_projections, min_seq_len):
    check_int_param(block_size, "block_size", min_val=1)
    check_int_param(sample_size, "sample_size", min_val=0)
    check_int_param(n_projections, "n_projections", min_val=1, max_val=30)
    check_int_param(min_seq_len, "min_seq_len", min_val=1)


def hyper_attention(query, key, value, causal: bool = False, *, scale: float | None = None,
                    key_padding_mask: torch.Tensor | None = None, block_size: int = 256, sample_size: int = 256,
                    n_projections: int = 7, min_seq_len: int = 1024, seed: int = 0,
                    generator: torch.Generator | None = None, projections: torch.Tensor | None = None,
                    return_lse: bool = False):
    """Approximate softmax attention in near-linear time (HyperAttention).

    Drop-in for ``F.scaled_dot_product_attention(query, key, value, is_causal=causal, scale=scale)``.
    Sequences shorter than ``min_seq_len`` are computed exactly (the fallback is logged at INFO level on
    logger ``hashlearn.nn.attention``); so are the blocks of the causal recursion of that length.

    Parameters
    ----------
    query : Tensor of shape (B, H, Nq, D), floating point
    key : Tensor of shape (B, H, Nk, D), same dtype
    value : Tensor of shape (B, H, Nk, Dv), same dtype
    causal : bool, default False
        Query ``i`` attends to keys ``<= i`` (needs Nq == Nk).
    scale : float, optional
        Score scale; default ``1 / sqrt(D)``.
    key_padding_mask : bool Tensor of shape (B, Nk), optional
        True where a key may be attended. A query with no visible key gets output 0 (SDPA gives NaN).
    block_size : int, default 256
        Keys per sortLSH block (queries per block: ``ceil(Nq / ceil(Nk / block_size))``).
    sample_size : int, default 256
        Uniformly sampled residual key columns per (batch, head); 0 keeps only the blocks.
    n_projections : int, default 7
        SimHash hyperplanes of the sortLSH (``2**p`` buckets, Gray-code ordered).
    min_seq_len : int, default 1024
        Below this many queries or keys the computation is exact (and the causal recursion stops).
    seed : int, default 0
        Seeds the hyperplanes (unless ``projections`` is given) and the column sampler (unless
        ``generator`` is given). The same seed gives the same output.
    generator : torch.Generator, optional
        Generator for the column samples (advanced by the call).
    projections : Tensor of shape (D, n_projections), optional
        Hyperplane normals to use instead of drawing them from ``seed``.
    return_lse : bool, default False
        Also return the (approximate) log-sum-exp of each query's scores, shape (B, H, Nq).

    Returns
    -------
    out : Tensor of shape (B, H, Nq, Dv)
    lse : Tensor of shape (B, H, Nq), only with ``return_lse``

    References
    ----------
    I. Han, R. Jayaram, A. Karbasi, V. Mirrokni, D. P. Woodruff, A. Zandieh, "HyperAttention: Long-context
    Attention in Near-Linear Time", 2023 (arXiv:2310.05869), Algorithms 1, 3 and 4.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> q, k, v = (torch.randn(1, 2, 600, 16, generator=g) for _ in range(3))
    >>> out = hyper_attention(q, k, v, causal=True, block_size=64, sample_size=64, min_seq_len=128)
    >>> out.shape
    torch.Size([1, 2, 600, 16])
    >>> exact = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    >>> bool(torch.allclose(out[:, :, :128], exact[:, :, :128], atol=1e-5))  # first block: exact
    True
    """
    _check_config(block_size, sample_size, n_projections, min_seq_len)
    check_qkv(query, key, value, causal=causal, key_padding_mask=key_padding_mask, name="hyper_attention")
    if scale is not None:
        scale = check_real_param(scale, "scale", min_val=0.0, include_boundaries="neither")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    B, H, nq, d = query.shape
    nk = key.shape[2]
    kbias = None
    if key_padding_mask is not None:
        kbias = torch.zeros(key_padding_mask.shape, dtype=query.dtype, device=query.device)
        kbias = kbias.masked_fill(~key_padding_mask, float("-inf")).unsqueeze(1).expand(B, H, nk).contiguous()
    if min(nq, nk) >= min_seq_len and nk < block_size:
        raise ValidationError(f"hyper_attention: key {_shape(key)} has {nk} positions, shorter than one block "
                              f"(block_size={block_size}); lower block_size or raise min_seq_len above {nk}")
    if nq < min_seq_len or nk < min_seq_len:
        log.info("hyper_attention: %d queries x %d keys is below min_seq_len=%d: computing exact attention",
                 nq, nk, min_seq_len)
    if projections is None:
        projections = random_projections(d, n_projections, seed=seed, dtype=query.dtype)
    elif tuple(projections.shape) != (d, n_projections):
        raise ValidationError(f"hyper_attention: projections have shape {_shape(projections)}, expected "
                              f"(head dim, n_projections) = ({d}, {n_projections})")
    if generator is None:
        generator = torch.Generator(device=query.device).manual_seed(int(seed) + 1)
    cfg = _Config(int(block_size), int(sample_size), int(min_seq_len), projections.to(query.device), generator)
    if causal:
        out, lse = _hyper_causal(query, key, value, kbias, scale, cfg)
    else:
        out, lse = _hyper_noncausal(query, key, value, kbias, scale, cfg)
    return (out, lse) if return_lse else out


class HyperAttention(torch.nn.Module):
    """HyperAttention as a module: ``forward(query, key, value, causal=False, key_padding_mask=None)``.

    Holds the sortLSH hyperplanes (a buffer, drawn from ``seed`` at the first call for the head dim seen)
    and a private generator for the column samples, so repeated calls draw fresh samples and the whole
    sequence of calls is reproducible from ``seed``. No trainable parameters: it replaces the softmax
    of an attention layer, not its projections. See :func:`hyper_attention` for the parameters.

    References
    ----------
    I. Han et al., "HyperAttention: Long-context Attention in Near-Linear Time", 2023.

    Examples
    --------
    >>> attn = HyperAttention(block_size=32, sample_size=32, min_seq_len=64, seed=0)
    >>> q = torch.randn(2, 4, 256, 8, generator=torch.Generator().manual_seed(1))
    >>> attn(q, q, q, causal=True).shape
    torch.Size([2, 4, 256, 8])
    """

    def __init__(self, *, block_size: int = 256, sample_size: int = 256, n_projections: int = 7,
                 min_seq_len: int = 1024, seed: int = 0):
        super().__init__()
        _check_config(block_size, sample_size, n_projections, min_seq_len)
        self.block_size = int(block_size)
        self.sample_size = int(sample_size)
        self.n_projections = int(n_projections)
        self.min_seq_len = int(min_seq_len)
        self.seed = int(seed)
        self.register_buffer("projections", torch.empty(0), persistent=False)
        self._generator = torch.Generator().manual_seed(self.seed + 1)

    def extra_repr(self) -> str:
        return (f"block_size={self.block_size}, sample_size={self.sample_size}, n_projections={self.n_projections}, "
                f"min_seq_len={self.min_seq_len}, seed={self.seed}")

    def forward(self, query, key, value, causal: bool = False, key_padding_mask=None, scale=None):
        d = query.shape[-1] if isinstance(query, torch.Tensor) and query.ndim == 4 else None
        if d is not None and (self.projections.ndim != 2 or self.projections.shape[0] != d):
            self.projections = random_projections(d, self.n_projections, seed=self.seed).to(query.device)
        proj = self.projections.to(query.dtype) if d is not None else None
        return hyper_attention(query, key, value, causal, scale=scale, key_padding_mask=key_padding_mask,
                               block_size=self.block_size, sample_size=self.sample_size,
                               n_projections=self.n_projections, min_seq_len=self.min_seq_len,
                               generator=self._generator, projections=proj)
