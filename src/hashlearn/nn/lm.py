"""A small causal character transformer whose attention can be exact, HyperAttention or EcoFormer.

Part ``lm`` of the attention benchmark (:func:`lm_rows`): a model trained with exact attention at a
long context (default 2,048 characters of Tiny Shakespeare) is evaluated on held-out text with
HyperAttention swapped into none, the last half, or all of its layers (the HyperAttention paper replaces
the final layers of chatglm2-32k the same way, without fine-tuning); a second model of the same shape is
trained from scratch with EcoFormer attention in every layer, on the same batches and step budget.

Model: character embedding (d_model), ``n_layers`` pre-LayerNorm blocks ``x + attn(LN(x))``,
``x + MLP(LN(x))`` (MLP 4 d_model, GELU), final LayerNorm, linear head. Attention: ``n_heads`` heads of
``d_model / n_heads`` dims, rotary position embeddings on queries and keys (RoFormer, Su et al. 2021) so
that any attention function applies unchanged, causal. All weights are drawn from a private
:class:`torch.Generator` (no global seeding).

References
----------
I. Han et al., "HyperAttention: Long-context Attention in Near-Linear Time", 2023 (Sec. 4.1: perplexity
of chatglm2-32k with the final layers replaced). J. Liu et al., "EcoFormer: Energy-Saving Attention with
Linear Complexity", NeurIPS 2022.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ValidationError
from ..params import check_int_param
from .attention import HyperAttention
from .ecoformer import EcoFormerAttention, operation_counts

__all__ = ["CharTransformer", "replace_attention", "perplexity", "train_char_lm", "lm_rows", "LAYER_CHOICES"]

#: which layers get HyperAttention: none, the last half (rounded up), all.
LAYER_CHOICES = ("none", "half", "all")


def _rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding of (B, H, N, D) (D even): pairs (x_2i, x_2i+1) rotated by angle pos * base^(-2i/D)."""
    n, d = x.shape[-2], x.shape[-1]
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    ang = torch.arange(n, dtype=torch.float64, device=x.device)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class _CausalSelfAttention(torch.nn.Module):
    def __init__(self, d_model: int, n_heads: int, kind: str, eco_bits: int, eco_anchors: int, seed: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = torch.nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = torch.nn.Linear(d_model, d_model, bias=False)
        self.eco = (EcoFormerAttention(self.head_dim, n_bits=eco_bits, n_anchors=eco_anchors, seed=seed)
                    if kind == "ecoformer" else None)
        self.hyper: HyperAttention | None = None  # set by replace_attention

    def qkv_heads(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return _rope(q), _rope(k), v

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv_heads(x)
        if self.hyper is not None:
            o = self.hyper(q, k, v, causal=True)
        elif self.eco is not None:
            o = self.eco(q, k, v, causal=True)
        else:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(o.transpose(1, 2).reshape(B, N, C))


class _Block(torch.nn.Module):
    def __init__(self, d_model, n_heads, kind, eco_bits, eco_anchors, seed):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d_model)
        self.attn = _CausalSelfAttention(d_model, n_heads, kind, eco_bits, eco_anchors, seed)
        self.ln2 = torch.nn.LayerNorm(d_model)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d_model, 4 * d_model), torch.nn.GELU(),
                                       torch.nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(torch.nn.Module):
    """Causal character transformer: ``forward(ids (B, N) int64) -> logits (B, N, vocab) float32``.

    Parameters
    ----------
    vocab : int
        Number of distinct characters.
    d_model : int, default 128
    n_layers : int, default 2
    n_heads : int, default 4
        ``d_model / n_heads`` must be even (rotary embeddings).
    attention : {"exact", "ecoformer"}, default "exact"
        Exact causal SDPA, or :class:`EcoFormerAttention` (trainable) in every layer.
        HyperAttention is swapped in after training by :func:`replace_attention`.
    eco_bits, eco_anchors : int, default 16, 64
        EcoFormer hash length and kernel anchors.
    seed : int, default 0
        Seeds every initial weight (private generator).

    Examples
    --------
    >>> m = CharTransformer(10, d_model=16, n_layers=2, n_heads=2)
    >>> m(torch.zeros(1, 7, dtype=torch.long)).shape
    torch.Size([1, 7, 10])
    """

    def __init__(self, vocab: int, *, d_model: int = 128, n_layers: int = 2, n_heads: int = 4,
                 attention: str = "exact", eco_bits: int = 16, eco_anchors: int = 64, seed: int = 0):
        super().__init__()
        check_int_param(vocab, "vocab", min_val=2)
        check_int_param(d_model, "d_model", min_val=2)
        check_int_param(n_layers, "n_layers", min_val=1)
        check_int_param(n_heads, "n_heads", min_val=1)
        if d_model % n_heads or (d_model // n_heads) % 2:
            raise ValidationError(f"CharTransformer: d_model={d_model} must split into n_heads={n_heads} heads of an "
                                  "even dimension")
        if attention not in ("exact", "ecoformer"):
            raise ValidationError(f"CharTransformer: attention must be 'exact' or 'ecoformer', got {attention!r}")
        self.attention = attention
        with torch.random.fork_rng(devices=[]):  # torch's default initialisers leave the global RNG untouched
            self.emb = torch.nn.Embedding(vocab, d_model)
            self.blocks = torch.nn.ModuleList(_Block(d_model, n_heads, attention, eco_bits, eco_anchors,
                                                     seed + 17 * i) for i in range(n_layers))
            self.ln = torch.nn.LayerNorm(d_model)
            self.head = torch.nn.Linear(d_model, vocab)
        self._init_weights(seed)  # every weight redrawn from a private generator

    def _init_weights(self, seed: int) -> None:
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for name, mod in self.named_modules():
                if isinstance(mod, torch.nn.Linear):
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.02)
                    if mod.bias is not None:
                        mod.bias.zero_()
                elif isinstance(mod, torch.nn.Embedding):
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.02)

    def forward(self, ids):
        x = self.emb(ids)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


def _layer_indices(n_layers: int, layers: str) -> list[int]:
    if layers not in LAYER_CHOICES:
        raise ValidationError(f"layers must be one of {', '.join(LAYER_CHOICES)}, got {layers!r}")
    if layers == "none":
        return []
    if layers == "all":
        return list(range(n_layers))
    return list(range(n_layers - (n_layers + 1) // 2, n_layers))


@contextlib.contextmanager
def replace_attention(model: CharTransformer, layers: str = "all", *, seed: int = 0, **hyper_kw):
    """Context manager: HyperAttention (``hyper_kw`` as for :class:`HyperAttention`) in ``layers`` of ``model``.

    ``layers``: ``"none"``, ``"half"`` (the last ``ceil(n_layers / 2)``) or ``"all"``; restored on exit.
    Yields the list of replaced layer indices.
    """
    idx = _layer_indices(len(model.blocks), layers)
    for i in idx:
        model.blocks[i].attn.hyper = HyperAttention(seed=seed + i, **hyper_kw)
    try:
        yield idx
    finally:
        for i in idx:
            model.blocks[i].attn.hyper = None


def _windows(ids: np.ndarray, context: int, starts) -> tuple[torch.Tensor, torch.Tensor]:
    w = ids[np.asarray(starts)[:, None] + np.arange(context + 1)[None, :]]
    w = torch.from_numpy(np.ascontiguousarray(w))
    return w[:, :-1], w[:, 1:]


def perplexity(model: torch.nn.Module, ids: np.ndarray, context: int, *, max_windows: int | None = None) -> dict:
    """Held-out perplexity ``exp(mean cross-entropy)`` over non-overlapping windows of ``context + 1`` ids.

    Every position of a window is predicted from the characters before it inside the window. Returns
    ``{"perplexity", "loss" (mean nats/char), "tokens", "windows", "ms" (mean forward ms per window)}``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    n_win = (len(ids) - 1) // context
    if n_win < 1:
        raise ValidationError(f"perplexity: {len(ids)} ids hold no window of context + 1 = {context + 1}")
    if max_windows is not None:
        n_win = min(n_win, int(max_windows))
    total, count, ms = 0.0, 0, []
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for w in range(n_win):
                x, y = _windows(ids, context, [w * context])
                t = time.perf_counter()
                logits = model(x)
                ms.append((time.perf_counter() - t) * 1e3)
                total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                               reduction="sum"))
                count += y.numel()
    finally:
        model.train(was)
    loss = total / count
    return {"perplexity": math.exp(loss), "loss": loss, "tokens": count, "windows": n_win, "ms": float(np.mean(ms))}


def train_char_lm(model: torch.nn.Module, ids: np.ndarray, *, steps: int, context: int, batch: int = 1,
                  lr: float = 2e-3, seed: int = 0, progress: bool = False, desc: str = "train") -> dict:
    """AdamW on random windows of ``ids`` (linear warm-up over 5% of the steps, cosine decay to 10%).

    The window starts come from ``np.random.RandomState(seed)``, so two models trained with the same
    seed see the same batches. Returns ``{"steps", "train_s", "ms_per_step", "train_loss" (mean of the
    last 10% of the steps)}``.
    """
    check_int_param(steps, "steps", min_val=1)
    check_int_param(context, "context", min_val=2)
    if len(ids) <= context + 1:
        raise ValidationError(f"train_char_lm: {len(ids)} training ids, need more than context + 1 = {context + 1}")
    rs = np.random.RandomState(int(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warm = max(1, steps // 20)

    def lr_at(s):
        if s < warm:
            return (s + 1) / warm
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    losses = []
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=desc, unit="step")
    model.train()
    t0 = time.perf_counter()
    for _ in it:
        x, y = _windows(ids, context, rs.randint(0, len(ids) - context - 1, size=batch))
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    train_s = time.perf_counter() - t0
    tail = losses[-max(1, steps // 10):]
    return {"steps": steps, "train_s": train_s, "ms_per_step": 1e3 * train_s / steps,
            "train_loss": float(np.mean(tail))}


def lm_rows(data_dir, *, steps: int = 1200, context: int = 2048, batch: int = 1, d_model: int = 128,
            n_layers: int = 2, n_heads: int = 4, lr: float = 2e-3, eval_windows: int = 24,
            block_size: int = 256, sample_size: int = 256, min_seq_len: int = 512, n_projections: int = 7,
            eco_bits: int = 16, eco_anchors: int = 64, seed: int = 0, progress: bool = True,
            text_ids: tuple | None = None) -> list[dict]:
    """Rows of part ``lm``: ``{part, method, layers, n, causal, ms, perplexity, loss, ...}``.

    ``sdpa``/``none``, ``hyper``/``half`` and ``hyper``/``all`` evaluate one exactly trained model;
    ``ecoformer``/``all`` is a second model trained from scratch with EcoFormer attention (same shape,
    initial projections, batches and steps). Text: Tiny Shakespeare's ``input.txt`` in ``data_dir``
    (first 90% train, last 10% held out), or ``text_ids=(ids, vocab)`` directly. ``ms`` is the mean
    forward time per held-out window of ``context`` characters; ``mul_saved`` (EcoFormer row) is
    ``1 - EcoFormer multiplications / softmax multiplications`` of the attention
    (:func:`hashlearn.nn.operation_counts`, per head, at n = context, causal).
    """
    if text_ids is None:
        from .moe_bench import load_chars

        ids, vocab = load_chars(data_dir)
    else:
        ids, vocab = text_ids
    ids = np.asarray(ids, dtype=np.int64)
    cut = int(0.9 * len(ids))
    train, held = ids[:cut], ids[cut:]
    hyper_kw = {"block_size": block_size, "sample_size": sample_size, "min_seq_len": min_seq_len,
                "n_projections": n_projections}
    if min_seq_len <= context < block_size:  # checked before any training (hyper_attention would refuse it)
        raise ValidationError(f"lm_rows: context {context} is shorter than one HyperAttention block "
                              f"(block_size={block_size}); lower block_size or raise min_seq_len above {context}")
    shape = {"d_model": d_model, "n_layers": n_layers, "n_heads": n_heads}
    common = {"part": "lm", "n": int(context), "causal": True, **shape, "batch": batch}
    rows = []
    for kind in ("exact", "ecoformer"):
        model = CharTransformer(len(vocab), attention=kind, eco_bits=eco_bits, eco_anchors=eco_anchors, seed=seed,
                                **shape)
        info = train_char_lm(model, train, steps=steps, context=context, batch=batch, lr=lr, seed=seed,
                             progress=progress, desc=f"lm {kind}")
        if kind == "exact":
            for layers in LAYER_CHOICES:
                with replace_attention(model, layers, seed=seed, **hyper_kw) as idx:
                    ev = perplexity(model, held, context, max_windows=eval_windows)
                rows.append({**common, "method": "sdpa" if layers == "none" else "hyper", "layers": layers,
                             "replaced": idx, **ev, **info, **({} if layers == "none" else hyper_kw)})
        else:
            ev = perplexity(model, held, context, max_windows=eval_windows)
            ops = operation_counts(context, d_model // n_heads, n_bits=eco_bits, n_anchors=eco_anchors, causal=True)
            heads = n_heads * n_layers
            rows.append({**common, "method": "ecoformer", "layers": "all", "replaced": list(range(n_layers)), **ev,
                         **info, "eco_bits": eco_bits, "eco_anchors": eco_anchors, "mul_saved": ops["mul_saved"],
                         "softmax_mul": ops["softmax_mul"] * heads, "ecoformer_mul": ops["ecoformer_mul"] * heads})
    return rows
