"""The attention benchmark as a library function: ``run(part) -> list[dict]``, ``plot(rows, dir)``.

Part ``speed``: HyperAttention against exact ``F.scaled_dot_product_attention`` (torch's fused CPU
kernel) on the same inputs in the same run, the two methods interleaved (sdpa, hyper, sdpa, hyper, ...)
and each timed as the best of ``repeat`` calls after one warm-up call, at a fixed torch thread count
(restored after). Rows: ``part, method, n, heads, d, causal, ms, rel_error, speedup`` where
``rel_error = ||out - exact|| / ||exact||`` (Frobenius, over the whole (B, H, N, D) output) on the
timed inputs, and a second error ``rel_error_concentrated`` on inputs whose attention rows are
concentrated (query ``i`` is a scaled copy of key ``i``; see :func:`concentrated_qkv`), since on i.i.d.
Gaussian inputs the attention is nearly uniform and no sparse method has a small relative error.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ValidationError
from .attention import hyper_attention

__all__ = ["PARTS", "SPEED_GRID", "run", "speed_rows", "concentrated_qkv", "plot"]

PARTS = ("speed", "real", "lm", "ssm", "moe")
#: (n, heads, causal) measured by the speed part: d = 64, batch 1; 8 heads up to n = 8,192 (the exact
#: side costs 8 x 5 s per call at n = 32,768 on one core).
SPEED_GRID = tuple((n, h, c) for c in (False, True) for n in (1024, 2048, 4096, 8192, 16384, 32768)
                   for h in ((1, 8) if n <= 8192 else (1,)))


def concentrated_qkv(n: int, heads: int, d: int, *, seed: int = 0, dtype=torch.float32):
    """(q, k, v) of shape (1, heads, n, d): keys of norm 3 in random directions, ``q_i = 8 k_i``.

    Row ``i`` of the attention puts most of its mass on key ``i`` (score ``72 / sqrt(d)`` against
    Gaussian scores of the others).
    """
    g = torch.Generator().manual_seed(int(seed))
    k = F.normalize(torch.randn(1, heads, n, d, generator=g, dtype=dtype), dim=-1) * 3.0
    v = torch.randn(1, heads, n, d, generator=g, dtype=dtype)
    return k * 8.0, k, v


def _rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _timed(fn, results: dict, key: str) -> None:
    t = time.perf_counter()
    out = fn()
    results.setdefault(key, []).append((time.perf_counter() - t) * 1e3)
    results[key + "_out"] = out


def speed_rows(grid=None, *, d: int = 64, repeat: int = 3, seed: int = 0, n_threads: int = 1,
               progress: bool = True, hyper_kw: dict | None = None) -> list[dict]:
    """Rows of the speed part (see the module docstring); one sdpa row and one hyper row per grid point."""
    grid = SPEED_GRID if grid is None else grid
    hyper_kw = dict(hyper_kw or {})
    old = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    rows: list[dict] = []
    try:
        it = grid
        if progress:
            from tqdm import tqdm

            it = tqdm(grid, desc="attention speed", unit="config")
        for n, heads, causal in it:
            g = torch.Generator().manual_seed(int(seed))
            q, k, v = (torch.randn(1, heads, n, d, generator=g) for _ in range(3))
            methods = {
                "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                "hyper": lambda: hyper_attention(q, k, v, causal, seed=seed, **hyper_kw),
            }
            times: dict = {}
            with torch.no_grad():
                for name, fn in methods.items():  # warm-up
                    fn()
                for _ in range(repeat):  # interleaved
                    for name, fn in methods.items():
                        _timed(fn, times, name)
                exact = times["sdpa_out"]
                qc, kc, vc = concentrated_qkv(n, heads, d, seed=seed)
                exact_c = F.scaled_dot_product_attention(qc, kc, vc, is_causal=causal)
                errs = {"sdpa": (0.0, 0.0),
                        "hyper": (_rel(times["hyper_out"], exact),
                                  _rel(hyper_attention(qc, kc, vc, causal, seed=seed, **hyper_kw), exact_c))}
            sdpa_ms = min(times["sdpa"])
            for name in methods:
                ms = min(times[name])
                rows.append({"part": "speed", "method": name, "n": n, "heads": heads, "d": d, "causal": causal,
                             "ms": ms, "rel_error": errs[name][0], "rel_error_concentrated": errs[name][1],
                             "speedup": sdpa_ms / ms, "threads": int(n_threads), "repeat": int(repeat)})
    finally:
        torch.set_num_threads(old)
    return rows


def run(part: str, *, data_dir=None, seed: int = 0, n_threads: int = 1, progress: bool = True, **kw) -> dict:
    """Run one part; returns ``{"part", "rows", "load_start", "load_end", "threads"}``.

    ``speed`` and ``ssm`` (:func:`hashlearn.nn.ssm_bench.mqar_rows`) need no data; ``moe`` and ``lm`` read
    Tiny Shakespeare's ``input.txt`` from ``data_dir`` (:func:`hashlearn.nn.moe_bench.moe_rows`,
    :func:`hashlearn.nn.lm.lm_rows`); ``real`` reads BEIR SciFact from ``data_dir`` and needs the
    all-MiniLM-L6-v2 weights (:func:`hashlearn.nn.real_bench.real_rows`). Extra keyword arguments go to
    the part's row function.
    """
    if part not in PARTS:
        raise ValidationError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if part in ("moe", "lm") and data_dir is None:
        raise ValidationError(f"part {part} needs data_dir: a folder with Tiny Shakespeare's input.txt")
    if part == "real" and data_dir is None:
        raise ValidationError("part real needs data_dir: the BEIR SciFact folder (corpus.jsonl, queries.jsonl, qrels/)")
    load_start = list(os.getloadavg())
    old = torch.get_num_threads()
    if part == "speed":
        rows = speed_rows(seed=seed, n_threads=n_threads, progress=progress, **kw)
    else:
        from .moe_bench import moe_rows
        from .ssm_bench import mqar_rows

        torch.set_num_threads(int(n_threads))
        try:
            if part == "moe":
                rows = moe_rows(data_dir, seed=seed, progress=progress, **kw)
            elif part == "lm":
                from .lm import lm_rows

                rows = lm_rows(data_dir, seed=seed, progress=progress, **kw)
            elif part == "real":
                from .real_bench import real_rows

                rows = real_rows(data_dir, seed=seed, progress=progress, **kw)
            else:
                rows = mqar_rows(seed=seed, progress=progress, **kw)
        finally:
            torch.set_num_threads(old)
    return {"part": part, "rows": rows, "load_start": load_start, "load_end": list(os.getloadavg()),
            "threads": int(n_threads)}


def plot(rows: list[dict], out_dir) -> list[Path]:
    """PNG plots: speed rows (time vs n, log-log, per heads and causal), moe rows (loss and bytes per step),
    lm rows (held-out perplexity per model) or real rows (nDCG@10 vs layers replaced, error per layer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rows and rows[0]["part"] in ("lm", "real"):
        return [_plot_lm(rows, out_dir, plt) if rows[0]["part"] == "lm" else _plot_real(rows, out_dir, plt)]
    if rows and rows[0]["part"] == "moe":
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = [(r["step"], r["loss"], r["bytes"]) for r in rows if r["method"] == method and r["step"] != "heldout"]
            st, lo, by = zip(*pts)
            axes[0].plot(st, lo, label=method)
            axes[1].plot(st, [b / 1024 for b in by], label=method)
        axes[0].set_xlabel("step")
        axes[0].set_ylabel("training loss (nats/char)")
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("all-to-all KiB per step")
        for ax in axes:
            ax.grid(True, alpha=0.3)
            ax.legend()
        fig.tight_layout()
        path = out_dir / "nn_moe.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return [path]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, causal in zip(axes, (False, True)):
        for heads in sorted({r["heads"] for r in rows}):
            for method, style in (("sdpa", "--"), ("hyper", "-")):
                pts = sorted((r["n"], r["ms"]) for r in rows
                             if r["method"] == method and r["causal"] == causal and r["heads"] == heads)
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", label=f"{method}, {heads} head(s)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
        ax.set_ylabel("ms per call")
        ax.set_title(("causal" if causal else "non-causal") + f", d = {rows[0]['d']}, {rows[0]['threads']} thread")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "nn_speed.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def _plot_lm(rows, out_dir: Path, plt) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{r['method']}\n{r['layers']}" for r in rows]
    ax.bar(labels, [r["perplexity"] for r in rows], color=["0.5" if r["method"] == "sdpa" else "C0" for r in rows])
    ax.axhline(rows[0]["perplexity"] * 1.10, ls="--", color="C3", label="1.10 × exact (target, half)")
    ax.set_ylabel("held-out perplexity (chars)")
    ax.set_title(f"char LM, context {rows[0]['n']:,}, {rows[0]['n_layers']} layers, d = {rows[0]['d_model']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "nn_lm.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_real(rows, out_dir: Path, plt) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ret = [r for r in rows if r.get("kind") == "retrieval"]
    exact = next(r["ndcg@10"] for r in ret if r["replaced_layers"] == 0)
    sizes = list(dict.fromkeys((r["block_size"], r["sample_size"]) for r in ret if "block_size" in r))
    markers = "osD^v"
    for j, method in enumerate(("hyper", "hyper+cls")):
        for si, size in enumerate(sizes):
            nd = sorted([(0, exact)] + [(r["replaced_layers"], r["ndcg@10"]) for r in ret if r["method"] == method
                                        and (r.get("block_size"), r.get("sample_size")) == size])
            style = "-" if len(nd) > 2 else "none"
            axes[0].plot(*zip(*nd[1:] if style == "none" else nd), ls=style, marker=markers[si % 5], color=f"C{j}",
                         label=f"{method} {size[0]}/{size[1]}")
    axes[0].axhline(exact - 0.01, ls="--", color="C3", label="exact − 0.01 (target at 3 layers)")
    axes[0].set_xlabel("last layers with HyperAttention")
    axes[0].set_ylabel("SciFact nDCG@10")
    axes[0].legend(fontsize=8)
    for j, method in enumerate(("hyper", "hyper+cls")):
        err = sorted((r["layer"], r["rel_error"]) for r in rows if r.get("kind") == "layer_error"
                     and r["method"] == method and (r["block_size"], r["sample_size"]) == sizes[0])
        axes[1].bar([e[0] + 0.4 * j - 0.2 for e in err], [e[1] for e in err], width=0.4, label=method)
    axes[1].legend(fontsize=8)
    axes[1].set_xlabel("layer")
    axes[1].set_ylabel(f"attention output rel. error ({sizes[0][0]}/{sizes[0][1]})")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.suptitle("all-MiniLM-L6-v2 on SciFact, HyperAttention in the last layers", fontsize=10)
    fig.tight_layout()
    path = out_dir / "nn_real.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
