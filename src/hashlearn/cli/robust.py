"""CLI command of ``hashlearn.robust``: ``hashlearn bench robust``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

PARTS = ("attack", "vfl", "unlearnable")


def register(app, bench_app) -> None:
    """Add ``hashlearn bench robust`` to the typer apps."""
    import typer

    @bench_app.command("robust")
    def bench_robust_cmd(
        part: str = typer.Option(..., "--part", help=f"What to measure: {', '.join(PARTS)} (targeted attacks on "
                                 "DPSH 32 bits: ProS-GAN vs none, noise, P2P, DHTA, before and after adversarial "
                                 "training; vertical federated learning with plain embeddings vs hash codes, "
                                 "parties as real processes, with the top's reconstruction and label inference; "
                                 "unlearnable clusters: a CNN and DPSH trained on perturbed MNIST)."),
        data_dir: Path = typer.Option(Path("../shared/data/mnist"), "--data-dir",
                                      help="An MNIST idx folder (train and t10k files)."),
        tabular_dir: Optional[Path] = typer.Option(None, "--tabular-dir",
                                                   help="vfl: a TabularNCD folder; adds the Pendigits split "
                                                   "(columns halved between the parties)."),
        eps: Optional[list[float]] = typer.Option(None, "--eps", help="L∞ budget in [0, 1] pixel units; attack: "
                                                  "one value (default 0.1); unlearnable: repeatable (default "
                                                  "16/255 and 0.3)."),
        vfl_bits: int = typer.Option(32, "--vfl-bits", min=1, help="vfl: width of each party's message "
                                     "(float32 dimensions, or bits when hashed)."),
        size: str = typer.Option("full", "--size", help="Problem size: full (the benchmark, minutes) or tiny "
                                 "(a smoke run in seconds)."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG image grids."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
    ):
        """Robustness and privacy of hashing: targeted attacks, hashed VFL, unlearnable clusters (minutes)."""
        from ._common import CLIError, _check_output, bench_table, check_choice, check_folder, finish_bench

        _check_output(json_out)
        check_choice(part, PARTS, "--part")
        check_choice(size, ("full", "tiny"), "--size")
        check_folder(data_dir, "an MNIST idx folder")
        if eps and part == "attack" and len(eps) != 1:
            raise CLIError(f"--eps: the attack part takes one budget, got {len(eps)}")
        if eps and part == "vfl":
            raise CLIError("--eps applies to the attack and unlearnable parts, not vfl")
        from hashlearn.robust import bench, check_eps

        for e in eps or ():
            check_eps(e, name="--eps")
        value = None if not eps else (eps[0] if part == "attack" else tuple(eps))
        rows = bench.run(part, data_dir, tabular_dir=tabular_dir, seed=seed, eps=value, n_bits=vfl_bits, size=size,
                         plots=plots, progress=not quiet)
        cols = [c for c in bench.COLUMNS[part] if any(c in r for r in rows)]
        cells = [[("-" if r.get(c) is None else f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c])) for c in cols]
                 for r in rows]
        table = bench_table(f"robust bench, part {part}, seed {seed}", cols, cells, left=("model", "method", "dataset"))
        written = list(dict.fromkeys(r["plot"] for r in rows if "plot" in r))  # the bench wrote its grids already
        finish_bench(table, quiet=quiet, plots=plots, make_plots=lambda _: written,
                     json_out=json_out, payload={"part": part, "rows": rows})
