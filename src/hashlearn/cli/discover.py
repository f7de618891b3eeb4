"""CLI command of ``hashlearn.discover``: ``hashlearn bench discover``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

PARTS = ("ncd", "gcd", "fewshot", "lls", "labels", "noise")
_DEFAULT_DIRS = {"ncd": Path("../shared/data/tabularncd"), "gcd": Path("../shared/data/mnist"),
                 "fewshot": Path("../shared/data/omniglot"), "lls": Path("../shared/data/mnist"),
                 "labels": Path("../shared/data/mnist"), "noise": Path("../shared/data/mnist")}
_DEFAULT_OMNIGLOT = Path("../shared/data/omniglot")


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
                                 "on raw pixels, PCA, ITQ bits and a contrastive encoder; web noise on MNIST with "
                                 "Omniglot characters and label flips: heads trained on everything, after discarding "
                                 "detected noise, with detected rows as unlabelled data)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="ncd: the TabularNCD data folder "
                                                "(default ../shared/data/tabularncd); gcd: an MNIST idx folder "
                                                "(default ../shared/data/mnist); fewshot: the Omniglot folder "
                                                "(default ../shared/data/omniglot); lls, labels: an MNIST idx "
                                                "folder (labels also reads the t10k test files); noise: an MNIST "
                                                "idx folder with its t10k files (default ../shared/data/mnist)."),
        omniglot_dir: Optional[Path] = typer.Option(None, "--omniglot-dir", help="noise: the Omniglot folder whose "
                                                    "characters are injected as out-of-distribution rows (default "
                                                    "../shared/data/omniglot)."),
        noise_fraction: float = typer.Option(0.4, "--noise-fraction", help="noise: share of noisy training rows "
                                             "in [0, 1), half Omniglot characters with random labels, half "
                                             "MNIST label flips."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        contrastive_steps: int = typer.Option(3000, "--contrastive-steps", min=1,
                                              help="labels, noise: training steps of the contrastive (SimCLR) "
                                              "encoder."),
        head_steps: int = typer.Option(3000, "--head-steps", min=1, help="noise: training steps of each classifier "
                                       "head (MLP on the contrastive features)."),
        repeats: int = typer.Option(3, "--repeats", min=1, help="Seeds SEED, SEED+1, ...; cells are mean ± sd."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write rows and their summary as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
    ):
        """Category-discovery benchmarks: TabularNCD, GMMDiscovery vs k-means (takes minutes)."""
        from ._common import (CLIError, _check_output, bench_table, check_choice, check_folder, finish_bench,
                              mean_sd_cell)

        _check_output(json_out)
        check_choice(part, PARTS, "--part")
        folder = check_folder(data_dir if data_dir is not None else _DEFAULT_DIRS[part], f"the data of part {part}")
        noise_options = None
        if part == "noise":
            if not 0 <= noise_fraction < 1:
                raise CLIError(f"--noise-fraction must be in [0, 1), got {noise_fraction:g}")
            omni = omniglot_dir if omniglot_dir is not None else _DEFAULT_OMNIGLOT
            if not omni.is_dir():
                raise CLIError(f"--omniglot-dir: {omni} is not a folder (the Omniglot data of part noise)")
            noise_options = {"omniglot_dir": omni, "ood_fraction": noise_fraction / 2,
                             "flip_fraction": noise_fraction / 2, "contrastive_steps": contrastive_steps,
                             "head_steps": head_steps}
        from hashlearn.discover import bench

        rows = bench.run(part, folder, seeds=tuple(range(seed, seed + repeats)), progress=not quiet,
                         labels_options={"contrastive_steps": contrastive_steps} if part == "labels" else None,
                         noise_options=noise_options)
        summary = bench.summarize(rows)
        metrics = [m for m in ("acc", "ci95", "nmi", "ari", "all", "old", "new", "auc", "k_estimated")
                   if any(m in s for s in summary)]
        table = bench_table(f"discover bench, part {part}, seeds {seed}..{seed + repeats - 1}",
                            ("dataset", "method", *metrics),
                            [[s["dataset"], _row_label(s), *[mean_sd_cell(s, m) for m in metrics]] for s in summary],
                            left=("dataset", "method"))
        finish_bench(table, quiet=quiet, plots=plots, make_plots=lambda folder: bench.plot(rows, folder),
                     json_out=json_out, payload={"part": part, "rows": rows, "summary": summary})


def _row_label(s: dict) -> str:
    if "n_labels" in s:
        return f"{s['method']} n={s['n_labels']}"
    if "encoder" in s:
        return f"{s['encoder']} {s['ways']}w{s['shots']}s {s['method']}"
    return s["method"]
