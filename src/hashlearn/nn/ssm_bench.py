"""Part ``ssm`` of the attention benchmark: MQAR recall vs sequence length for a diagonal SSM alone,
SSM + LSH-bucketed sparse attention, and SSM + full causal attention (tiny models, CPU).

Model: token embedding -> SSM block -> [nothing | HashedSparseAttention(n_bits) | full attention] ->
SSM block -> linear head, residual connections with LayerNorm; trained with Adam on fresh MQAR batches
at each length; ``recall`` = accuracy of the value predicted at the query positions of 256 held-out
sequences; ``pair_fraction`` = scored attention pairs / dense causal pairs (the attention FLOPs).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .ssm import DiagonalSSM, HashedSparseAttention, mqar_batch

__all__ = ["MQARModel", "mqar_rows"]

METHODS = {"ssm": None, "ssm+hashed": 2, "ssm+attention": 0}  # method -> n_bits of the attention (None: none)


class MQARModel(torch.nn.Module):
    """Two SSM blocks with an optional (hashed or full) attention block between them."""

    def __init__(self, vocab: int, d_model: int, attention_bits: int | None, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.emb = torch.nn.Embedding(vocab, d_model)
            self.head = torch.nn.Linear(d_model, vocab)
            self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(d_model) for _ in range(3))
        self.ssm1 = DiagonalSSM(d_model, seed=seed)
        self.ssm2 = DiagonalSSM(d_model, seed=seed + 1)
        self.attn = None if attention_bits is None else HashedSparseAttention(d_model, n_bits=attention_bits,
                                                                              seed=seed)

    def forward(self, x):
        h = self.emb(x)
        h = h + self.ssm1(self.norms[0](h))
        if self.attn is not None:
            h = h + self.attn(self.norms[1](h))
        h = h + self.ssm2(self.norms[2](h))
        return self.head(h)


def mqar_rows(*, lengths=(64, 128, 256), n_pairs: int = 8, vocab: int = 64, d_model: int = 64, steps: int = 400,
              batch: int = 32, seed: int = 0, methods=tuple(METHODS), progress: bool = True) -> list[dict]:
    """Rows ``{part: "ssm", method, n, recall, pair_fraction, ms (per training step), steps}``."""
    rows = []
    for n in lengths:
        for method in methods:
            g = torch.Generator().manual_seed(seed)
            model = MQARModel(vocab, d_model, METHODS[method], seed=seed)
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            it = range(steps)
            if progress:
                from tqdm import tqdm

                it = tqdm(it, desc=f"ssm part: {method}, n={n}", unit="step")
            t0 = time.perf_counter()
            for _ in it:
                x, y = mqar_batch(batch, n, n_pairs, vocab, generator=g)
                loss = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1), ignore_index=-100)
                opt.zero_grad()
                loss.backward()
                opt.step()
            ms = (time.perf_counter() - t0) * 1e3 / max(1, steps)
            xe, ye = mqar_batch(256, n, n_pairs, vocab, generator=torch.Generator().manual_seed(seed + 10_000))
            with torch.no_grad():
                pred = model(xe).argmax(-1)
            asked = ye >= 0
            frac = model.attn.last_pair_fraction if model.attn is not None else 0.0
            rows.append({"part": "ssm", "method": method, "n": n, "causal": True,
                         "recall": float((pred[asked] == ye[asked]).float().mean()), "pair_fraction": frac,
                         "ms": ms, "steps": steps})
    return rows
