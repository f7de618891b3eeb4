"""CLI command of ``hashlearn.discover``: ``hashlearn bench discover``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

PARTS = ("ncd", "gcd", "fewshot", "lls", "labels")
_DEFAULT_DIRS = {"ncd": Path("../shared/data/tabularncd"), "gcd": Path("../shared/data/mnist"),
                 "fewshot": Path("../shared/data/omniglot"), "lls": Path("../shared/data/mnist"),
                 "labels": Path("../shared/data/mnist")}


def register(app, bench_app) -> None:
    """Add ``hashlearn bench discover`` to the typer apps."""
    import typer

    @bench_app.command("discover")
    def bench_discover_cmd(
        part: str = typer.Option(..., "--part", help=f"What to measure: {', '.join(PARTS)} (novel class discovery "
                                 "in tables: TabularNCD vs k-means; generalized category discovery on MNIST: "
                                 "GMMDiscovery vs k-means; few-shot episodes on Omniglot: prototypes, softkmeans, "
                                 "transductive, opta; latent label shift on MNIST domains: LatentLabelShift vs "
                                 "k-means; label efficiency on MNIST: linear-head accuracy vs number of labels "
                                 "on raw pixels, PCA, ITQ bits and a contrastive encoder)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="ncd: the TabularNCD data folder "
                                                "(default ../shared/data/tabularncd); gcd: an MNIST idx folder "
                                                "(default ../shared/data/mnist); fewshot: the Omniglot folder "
                                                "(default ../shared/data/omniglot); lls, labels: an MNIST idx "
                                                "folder (labels also reads the t10k test files)."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        contrastive_steps: int = typer.Option(3000, "--contrastive-steps", min=1,
                                              help="labels: training steps of the contrastive (SimCLR) encoder."),
        repeats: int = typer.Option(3, "--repeats", min=1, help="Seeds SEED, SEED+1, ...; cells are mean ± sd."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and their summary as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
    ):
        """Category-discovery benchmarks: TabularNCD, GMMDiscovery vs k-means (takes minutes)."""
        from rich.table import Table

        from ._common import CLIError, _check_output, _write_json, console, report_written

        _check_output(json_out)
        if part not in PARTS:
            raise CLIError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
        folder = data_dir if data_dir is not None else _DEFAULT_DIRS[part]
        if not folder.is_dir():
            raise CLIError(f"--data-dir: {folder} is not a folder")
        from hashlearn.discover import bench

        rows = bench.run(part, folder, seeds=tuple(range(seed, seed + repeats)), progress=not quiet,
                         labels_options={"contrastive_steps": contrastive_steps} if part == "labels" else None)
        summary = bench.summarize(rows)
        metrics = [m for m in ("acc", "ci95", "nmi", "ari", "all", "old", "new", "k_estimated")
                   if any(m in s for s in summary)]
        table = Table(title=f"discover bench, part {part}, seeds {seed}..{seed + repeats - 1}")
        for c in ("dataset", "method", *metrics):
            table.add_column(c, justify="left" if c in ("dataset", "method") else "right")
        for s in summary:
            label = s["method"] if "encoder" not in s else f"{s['encoder']} {s['ways']}w{s['shots']}s {s['method']}"
            if "n_labels" in s:
                label = f"{s['method']} n={s['n_labels']}"
            table.add_row(s["dataset"], label,
                          *[f"{s[m]:.3f} ± {s[m + '_sd']:.3f}" if m in s else "-" for m in metrics])
        if not quiet:
            console.print(table)
        if plots is not None:
            for path in bench.plot(rows, plots):
                report_written(path)
        _write_json(json_out, {"part": part, "rows": rows, "summary": summary})
