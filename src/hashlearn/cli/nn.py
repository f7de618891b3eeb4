"""CLI command of ``hashlearn.nn``: ``hashlearn bench attention``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

PARTS = ("speed", "moe", "ssm")  # hashlearn.nn.bench.PARTS (not imported here: it needs torch)


def register(app, bench_app) -> None:
    """Add ``hashlearn bench attention`` to the typer apps."""
    import typer

    @bench_app.command("attention")
    def bench_attention_cmd(
        part: str = typer.Option("speed", "--part", help=f"What to measure: {', '.join(PARTS)} (speed: "
                                 "HyperAttention vs exact SDPA, n = 1k..32k, d = 64, 1 and 8 heads, causal and not; moe: a tiny char "
                                 "LM with LSH-MoE vs plain MoE, loss and all-to-all bytes per step; ssm: MQAR recall vs length, "
                                 "SSM alone / + hashed attention / + full attention)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Part moe: the Tiny Shakespeare folder "
                                                "(input.txt)."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and the machine load as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or table."),
    ):
        """Attention with hashing inside models vs exact attention (torch, one thread; takes minutes)."""
        from rich.table import Table

        from ._common import CLIError, _check_output, _write_json, console, report_written

        _check_output(json_out)
        if part not in PARTS:
            raise CLIError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
        try:
            from hashlearn.nn import bench
        except ImportError as exc:
            raise CLIError("bench attention needs torch: pip install 'hashlearn[deep]'") from exc
        if part == "moe" and (data_dir is None or not (data_dir / "input.txt").is_file()):
            raise CLIError(f"--data-dir: part moe needs a folder with Tiny Shakespeare's input.txt, got {data_dir}")
        result = bench.run(part, data_dir=data_dir, seed=seed, progress=not quiet)
        rows = result["rows"]
        if part == "ssm":
            table = Table(title="attention bench, part ssm (MQAR recall)")
            for c in ("method", "n", "recall", "pair_fraction", "ms"):
                table.add_column(c, justify="left" if c == "method" else "right")
            for r in rows:
                table.add_row(r["method"], str(r["n"]), f"{r['recall']:.3f}", f"{r['pair_fraction']:.3f}",
                              f"{r['ms']:.1f}")
            if not quiet:
                console.print(table)
            _write_json(json_out, result)
            return
        if part == "moe":
            table = Table(title="attention bench, part moe (held-out loss; bytes of the last step)")
            for c in ("method", "loss", "bytes"):
                table.add_column(c, justify="left" if c == "method" else "right")
            for r in rows:
                if r["step"] == "heldout":
                    table.add_row(r["method"], f"{r['loss']:.4f}", f"{r['bytes']:,}")
            if not quiet:
                console.print(table)
            for path in (bench.plot(rows, plots) if plots is not None else []):
                report_written(path)
            _write_json(json_out, result)
            return
        table = Table(title=f"attention bench, part {part}, {result['threads']} torch thread")
        for c in ("method", "n", "heads", "causal", "ms", "speedup", "rel_error", "rel_error_concentrated"):
            table.add_column(c, justify="left" if c == "method" else "right")
        for r in rows:
            table.add_row(r["method"], str(r["n"]), str(r["heads"]), "yes" if r["causal"] else "no", f"{r['ms']:.1f}",
                          f"{r['speedup']:.2f}x", f"{r['rel_error']:.3f}", f"{r['rel_error_concentrated']:.3f}")
        if not quiet:
            console.print(table)
        if plots is not None:
            for path in bench.plot(rows, plots):
                report_written(path)
        _write_json(json_out, result)
