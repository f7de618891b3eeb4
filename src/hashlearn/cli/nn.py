"""CLI command of ``hashlearn.nn``: ``hashlearn bench attention``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

PARTS = ("speed", "real", "lm", "ssm", "moe")  # hashlearn.nn.bench.PARTS (not imported here: it needs torch)


def register(app, bench_app) -> None:
    """Add ``hashlearn bench attention`` to the typer apps."""
    import typer

    @bench_app.command("attention")
    def bench_attention_cmd(
        part: str = typer.Option("speed", "--part", help=f"What to measure: {', '.join(PARTS)} (speed: "
                                 "HyperAttention vs exact SDPA, n = 1k..32k, d = 64, 1 and 8 heads, causal and not; real: "
                                 "all-MiniLM-L6-v2 on SciFact, attention error per layer and nDCG@10 with HyperAttention in the "
                                 "last 0..6 layers; lm: a char transformer trained with exact attention, held-out perplexity "
                                 "with HyperAttention in none/half/all layers, and one trained with EcoFormer; moe: a tiny char "
                                 "LM with LSH-MoE vs plain MoE, loss and all-to-all bytes per step; ssm: MQAR recall vs length, "
                                 "SSM alone / + hashed attention / + full attention)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Parts moe and lm: the Tiny Shakespeare "
                                                "folder (input.txt); part real: the BEIR SciFact folder."),
        steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Part lm: training steps of each model "
                                            "(default 1200, one window per step)."),
        context: Optional[int] = typer.Option(None, "--context", min=8, help="Part lm: context length in "
                                              "characters (default 2048)."),
        max_docs: Optional[int] = typer.Option(None, "--max-docs", min=0, help="Part real: SciFact passages "
                                               "encoded, the judged ones first (default 1000; 0: all 5,183)."),
        block_size: Optional[int] = typer.Option(None, "--block-size", min=1, help="HyperAttention keys per "
                                                 "sortLSH block (defaults: speed 256, lm 256, real 32)."),
        sample_size: Optional[int] = typer.Option(None, "--sample-size", min=0, help="HyperAttention sampled "
                                                  "residual columns (defaults: speed 256, lm 256, real 32)."),
        min_seq_len: Optional[int] = typer.Option(None, "--min-seq-len", min=1, help="HyperAttention computes "
                                                  "exactly below this length (defaults: speed 1024, lm 512, real 64)."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and the machine load as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or table."),
    ):
        """Attention with hashing inside models vs exact attention (torch, one thread; takes minutes)."""
        from ._common import CLIError, _check_output, check_choice, finish_bench

        _check_output(json_out)
        check_choice(part, PARTS, "--part")
        try:
            from hashlearn.nn import bench
        except ImportError as exc:
            raise CLIError("bench attention needs torch: pip install 'hashlearn[deep]'") from exc
        if part in ("moe", "lm") and (data_dir is None or not (data_dir / "input.txt").is_file()):
            raise CLIError(f"--data-dir: part {part} needs a folder with Tiny Shakespeare's input.txt, got {data_dir}")
        kw = _part_options(part, steps=steps, context=context, max_docs=max_docs, block_size=block_size,
                           sample_size=sample_size, min_seq_len=min_seq_len)
        if part == "real":
            from hashlearn.nn.real_bench import real_unavailable

            reason = real_unavailable(data_dir)
            if reason is not None:
                raise CLIError(f"--data-dir: part real cannot run: {reason}")
        result = bench.run(part, data_dir=data_dir, seed=seed, progress=not quiet, **kw)
        rows = result["rows"]
        make_plots = (lambda folder: []) if part == "ssm" else (lambda folder: bench.plot(rows, folder))
        finish_bench(_part_table(part, result), quiet=quiet, plots=plots, make_plots=make_plots, json_out=json_out,
                     payload=result)


def _part_options(part: str, **opts) -> dict:
    """Keyword arguments of the part's row function from the CLI options; an option the part ignores is an error."""
    from ._common import CLIError

    hyper = {k: opts.pop(k) for k in ("block_size", "sample_size", "min_seq_len") if opts.get(k) is not None}
    for k in ("block_size", "sample_size", "min_seq_len"):
        opts.pop(k, None)
    allowed = {"lm": {"steps", "context"}, "real": {"max_docs"}}.get(part, set())
    given = {k: v for k, v in opts.items() if v is not None}
    bad = sorted(set(given) - allowed)
    if bad:
        raise CLIError(f"--{bad[0].replace('_', '-')} does not apply to part {part}")
    if hyper and part not in ("speed", "lm", "real"):
        raise CLIError(f"--{next(iter(hyper)).replace('_', '-')} does not apply to part {part}")
    if part == "speed":
        return {"hyper_kw": hyper} if hyper else {}
    return {**given, **hyper}


#: part → (title, columns, which rows, cells of a row)
_TABLES = {
    "speed": ("attention bench, part speed, {threads} torch thread",
              ("method", "n", "heads", "causal", "ms", "speedup", "rel_error", "rel_error_concentrated"),
              lambda r: True,
              lambda r: [r["method"], str(r["n"]), str(r["heads"]), "yes" if r["causal"] else "no", f"{r['ms']:.1f}",
                         f"{r['speedup']:.2f}x", f"{r['rel_error']:.3f}", f"{r['rel_error_concentrated']:.3f}"]),
    "lm": ("attention bench, part lm (held-out perplexity)", ("method", "layers", "n", "perplexity", "loss", "ms"),
           lambda r: True,
           lambda r: [r["method"], r["layers"], str(r["n"]), f"{r['perplexity']:.3f}", f"{r['loss']:.4f}",
                      f"{r['ms']:.1f}"]),
    "real": ("attention bench, part real (MiniLM on SciFact)", ("method", "layers replaced", "ndcg@10", "rel_error", "ms"),
             lambda r: r["kind"] == "retrieval",
             lambda r: [r["method"], str(r["replaced_layers"]), f"{r['ndcg@10']:.4f}", f"{r['rel_error']:.4f}",
                        f"{r['ms']:.0f}"]),
    "ssm": ("attention bench, part ssm (MQAR recall)", ("method", "n", "recall", "pair_fraction", "ms"),
            lambda r: True,
            lambda r: [r["method"], str(r["n"]), f"{r['recall']:.3f}", f"{r['pair_fraction']:.3f}", f"{r['ms']:.1f}"]),
    "moe": ("attention bench, part moe (held-out loss; bytes of the last step)", ("method", "loss", "bytes"),
            lambda r: r["step"] == "heldout",
            lambda r: [r["method"], f"{r['loss']:.4f}", f"{r['bytes']:,}"]),
}


def _part_table(part: str, result: dict):
    from ._common import bench_table

    title, columns, keep, cells = _TABLES[part]
    return bench_table(title.format(threads=result.get("threads", 1)), columns,
                       [cells(r) for r in result["rows"] if keep(r)], left=("method", "layers"))
