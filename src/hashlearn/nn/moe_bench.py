"""Part ``moe`` of the attention benchmark: a tiny character LM with an LSH-MoE layer, with and without
compressed dispatch, on Tiny Shakespeare (``input.txt`` of ``data_dir``).

Model (deliberately tiny, CPU time is scarce): the previous ``context`` characters are embedded
(dim 16 each), concatenated and projected to ``d_model``; then ``x + LSHMoE(x)`` and a linear head over
the character vocabulary. The two runs start from the same weights and see the same batches; each
step records the training loss and the bytes the MoE all-to-all carries (dispatch + combine, float32),
and the held-out loss (last 10% of the text) is measured at the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataFileError
from .moe import LSHMoE

__all__ = ["load_chars", "moe_rows"]


def load_chars(data_dir) -> tuple[np.ndarray, list[str]]:
    """Tiny Shakespeare as int64 character ids and the vocabulary (sorted characters)."""
    path = Path(data_dir) / "input.txt"
    if not path.is_file():
        raise DataFileError(f"{path}: missing (expected the Tiny Shakespeare input.txt in --data-dir)")
    text = path.read_text(encoding="utf-8")
    vocab = sorted(set(text))
    lut = {c: i for i, c in enumerate(vocab)}
    return np.fromiter((lut[c] for c in text), dtype=np.int64, count=len(text)), vocab


class _CharMoELM(torch.nn.Module):
    def __init__(self, vocab: int, context: int, d_model: int, compress: bool, n_hashes: int, seed: int):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.emb = torch.nn.Embedding(vocab, 16)
            self.proj = torch.nn.Linear(16 * context, d_model)
            self.head = torch.nn.Linear(d_model, vocab)
        self.moe = LSHMoE(d_model, n_experts=2, d_hidden=2 * d_model, n_hashes=n_hashes, compress=compress,
                          seed=seed)

    def forward(self, ctx):
        x = torch.tanh(self.proj(self.emb(ctx).flatten(1)))
        return self.head(x + self.moe(x))


def _windows(ids, starts, context):
    offs = np.arange(context + 1)
    w = ids[starts[:, None] + offs[None, :]]
    return torch.from_numpy(w[:, :-1]), torch.from_numpy(w[:, -1])


def moe_rows(data_dir, *, steps: int = 300, batch: int = 1024, context: int = 8, d_model: int = 64,
             n_hashes=(1, 2), seed: int = 0, progress: bool = True) -> list[dict]:
    """Rows ``{part: "moe", method, step, loss, bytes, tokens}`` per step and one ``heldout`` row per method.

    Methods: ``moe`` (every token dispatched) and ``lsh-moe-h{L}`` for each ``L`` in ``n_hashes``
    (cross-polytope rotations per cluster key: more rotations, more and smaller clusters).
    """
    ids, vocab = load_chars(data_dir)
    split = int(0.9 * len(ids))
    rng = np.random.default_rng(seed)
    batches = [rng.integers(0, split - context - 1, size=batch) for _ in range(steps)]
    eval_starts = np.random.default_rng(seed + 1).integers(split, len(ids) - context - 1, size=8192)
    rows = []
    runs = [("moe", False, 1)] + [(f"lsh-moe-h{int(L)}", True, int(L)) for L in n_hashes]
    for method, compress, n_hash in runs:
        model = _CharMoELM(len(vocab), context, d_model, compress, n_hash, seed)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        it = batches
        if progress:
            from tqdm import tqdm

            it = tqdm(batches, desc=f"moe part: {method}", unit="step")
        for step, starts in enumerate(it):
            x, y = _windows(ids, starts, context)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rows.append({"part": "moe", "method": method, "step": step, "loss": float(loss.detach()),
                         "bytes": model.moe.last_stats["bytes"], "tokens": batch})
        with torch.no_grad():
            x, y = _windows(ids, eval_starts, context)
            held = float(F.cross_entropy(model(x), y))
        rows.append({"part": "moe", "method": method, "step": "heldout", "loss": held,
                     "bytes": model.moe.last_stats["bytes"], "tokens": len(eval_starts)})
    return rows
