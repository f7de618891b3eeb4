"""CLI command of ``hashlearn.recsys``: ``hashlearn bench recsys``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

PARTS = ("compress", "semantic", "sdim")


def register(app, bench_app) -> None:
    """Add ``hashlearn bench recsys`` to the typer apps."""
    import typer

    @bench_app.command("recsys")
    def bench_recsys_cmd(
        part: str = typer.Option(..., "--part", help=f"What to measure: {', '.join(PARTS)} (ID compression, "
                                 "semantic IDs for cold items, SDIM long-history attention)."),
        data_dir: Path = typer.Option(..., "--data-dir", help="A MovieLens folder (100K or 1M layout; "
                                      "research-only data, not shipped: see the README)."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        repeats: int = typer.Option(3, "--repeats", min=1, help="Seeds SEED, SEED+1, ...; cells are mean ± sd."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache of the item-text embeddings "
                                                 "(default: ~/.cache/hashlearn/recsys)."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and their summary as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ):
        """Recommender benchmarks: compressed ID tables, semantic IDs, SDIM (takes minutes to hours)."""
        from rich.table import Table

        from ._common import CLIError, _check_output, _write_json, console, report_written

        _check_output(json_out)
        if part not in PARTS:
            raise CLIError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
        if not data_dir.is_dir():
            raise CLIError(f"--data-dir: {data_dir} is not a folder (a MovieLens download, e.g. ml-100k)")
        from hashlearn.recsys import bench

        cache = cache_dir or Path.home() / ".cache" / "hashlearn" / "recsys"
        rows = bench.run(part, data_dir, seeds=tuple(range(seed, seed + repeats)), cache_dir=cache,
                         progress=not quiet)
        summary = bench.summarize(rows)
        metrics = list(dict.fromkeys(k[:-3] for s in summary for k in s if k.endswith("_sd")))
        table = Table(title=f"recsys bench, part {part}, seeds {seed}..{seed + repeats - 1}")
        for c in ("method", "budget", "cold", *metrics):
            table.add_column(c, justify="left" if c == "method" else "right")
        for s in summary:
            cells = [f"{s[m]:.4f} ± {s[m + '_sd']:.4f}" if m in s else "-" for m in metrics]
            budget = "-" if s.get("budget") is None else f"{float(s['budget']):g}"
            table.add_row(s["method"], budget, "yes" if s["cold"] else "no", *cells)
        if not quiet:
            console.print(table)
        if plots is not None:
            for path in bench.plot(rows, plots):
                report_written(path)
        _write_json(json_out, {"part": part, "rows": rows, "summary": summary})
