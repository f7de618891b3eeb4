"""CLI command of ``hashlearn.represent``: ``hashlearn bench represent``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

PARTS = ("mcr2", "gsimclr", "climb", "householder")
_DEFAULT_DIRS = {"mcr2": Path("../shared/data/mnist"), "gsimclr": Path("../shared/data/mnist"),
                 "climb": Path("../shared/data/text/20newsgroups"), "householder": Path("../shared/data/mnist")}


def register(app, bench_app) -> None:
    """Add ``hashlearn bench represent`` to the typer apps."""
    import typer

    @bench_app.command("represent")
    def bench_represent_cmd(
        part: str = typer.Option(..., "--part", help=f"What to measure: {', '.join(PARTS)} (MCR² manifold "
                                 "clustering vs k-means and spectral on MNIST; G-SimCLR vs SimCLR linear-eval "
                                 "accuracy on MNIST; CLIMB data mixtures vs uniform and natural on 20 Newsgroups; "
                                 "Householder latent directions of an MNIST VAE vs random and PCA directions)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="mcr2, gsimclr, householder: an MNIST "
                                                "idx folder (default ../shared/data/mnist); climb: the 20 "
                                                "Newsgroups bydate tarball or its folder (default "
                                                "../shared/data/text/20newsgroups)."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        repeats: int = typer.Option(3, "--repeats", min=1, help="Seeds SEED, SEED+1, ...; cells are mean ± sd."),
        quick: bool = typer.Option(False, "--quick", help="Smoke-test sizes (few rows and steps, seconds): "
                                   "checks the pipeline, not the methods."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and their summary as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
    ):
        """Representation and data-curation benchmarks: MCR², G-SimCLR, CLIMB, Householder (takes minutes)."""
        from ._common import CLIError, _check_output, bench_table, check_choice, finish_bench, mean_sd_cell

        _check_output(json_out)
        check_choice(part, PARTS, "--part")
        folder = data_dir if data_dir is not None else _DEFAULT_DIRS[part]
        if not folder.exists():
            raise CLIError(f"--data-dir: {folder} does not exist")
        from hashlearn.represent import bench

        rows = bench.run(part, folder, seeds=tuple(range(seed, seed + repeats)), progress=not quiet,
                         options=bench.quick_options(part) if quick else None, plots=plots)
        summary = bench.summarize(rows)
        metrics = [m for m in ("acc", "nmi", "coherence", "perplexity", "downstream_acc", "attribute_change",
                               "beats_random_p90") if any(m in s for s in summary)]
        cells = [[s["dataset"], s["method"], *[f"{s[m]:.1f} / {s['n_directions']}" if m == "beats_random_p90" and m in s
                                               else mean_sd_cell(s, m, ".4g") for m in metrics]] for s in summary]
        table = bench_table(f"represent bench, part {part}, seeds {seed}..{seed + repeats - 1}",
                            ("dataset", "method", *metrics), cells, left=("dataset", "method"))
        finish_bench(table, quiet=quiet, plots=plots, make_plots=lambda folder: bench.plot(rows, folder),
                     json_out=json_out, payload={"part": part, "rows": rows, "summary": summary})
