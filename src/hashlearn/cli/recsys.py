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
        from ._common import _check_output, bench_table, check_choice, check_folder, finish_bench, mean_sd_cell

        _check_output(json_out)
        check_choice(part, PARTS, "--part")
        check_folder(data_dir, "a MovieLens download, e.g. ml-100k")
        from hashlearn.recsys import bench

        cache = cache_dir or Path.home() / ".cache" / "hashlearn" / "recsys"
        rows = bench.run(part, data_dir, seeds=tuple(range(seed, seed + repeats)), cache_dir=cache,
                         progress=not quiet)
        summary = bench.summarize(rows)
        metrics = list(dict.fromkeys(k[:-3] for s in summary for k in s if k.endswith("_sd")))
        cells = [[s["method"], "-" if s.get("budget") is None else f"{float(s['budget']):g}",
                  "yes" if s["cold"] else "no", *[mean_sd_cell(s, m, ".4f") for m in metrics]] for s in summary]
        table = bench_table(f"recsys bench, part {part}, seeds {seed}..{seed + repeats - 1}",
                            ("method", "budget", "cold", *metrics), cells)
        finish_bench(table, quiet=quiet, plots=plots, make_plots=lambda folder: bench.plot(rows, folder),
                     json_out=json_out, payload={"part": part, "rows": rows, "summary": summary})
