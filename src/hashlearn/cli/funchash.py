"""CLI commands of ``hashlearn.apps.funchash``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

from hashlearn.apps.funchash import FEYNMAN_EQUATIONS, cache_benchmark, hash_error_rates


def register(app, bench_app) -> None:
    """Add ``hashlearn bench funchash`` to the typer apps."""
    import typer

    @bench_app.command("funchash")
    def bench_funchash_cmd(
        task: str = typer.Option("I.12.2", "--task",
                                 help=f"Feynman equation ({', '.join(FEYNMAN_EQUATIONS)}) or 'diabetes'."),
        samples: int = typer.Option(100_000, "--samples", help="Rows of the Feynman data (fitness cost)."),
        cycles: int = typer.Option(1000, "--cycles", help="Children of the regularized evolution."),
        population: int = typer.Option(100, "--population", help="Population size of the regularized evolution."),
        tournament: int = typer.Option(10, "--tournament", help="Sample size of the tournament."),
        probes: int = typer.Option(32, "--probes", help="Probe inputs of the functional hash."),
        rtol: float = typer.Option(1e-6, "--rtol", help="Relative tolerance of two outputs being equal."),
        atol: float = typer.Option(1e-9, "--atol", help="Absolute tolerance of two outputs being equal."),
        pairs: int = typer.Option(0, "--pairs", help="Also measure false split/collision rates on this many pairs."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON."),
    ):
        """Regularized evolution for symbolic regression with and without the functional cache."""
        from rich.table import Table

        from ._common import CLIError, _check_output, _write_json, console, err_console

        _check_output(json_out)
        if task != "diabetes" and task not in FEYNMAN_EQUATIONS:
            raise CLIError(f"--task: unknown task {task!r}; known: {', '.join(FEYNMAN_EQUATIONS)}, diabetes")
        if cycles < 0 or samples < 2 or probes < 1 or population < tournament or tournament < 1:
            raise CLIError("need --cycles >= 0, --samples >= 2, --probes >= 1, 1 <= --tournament <= --population")
        rows = cache_benchmark(task, n_samples=samples, n_cycles=cycles, population_size=population,
                               sample_size=tournament, n_probes=probes, rtol=rtol, atol=atol, random_state=seed,
                               progress=lambda name: err_console.print(f"[dim]run: {name}[/dim]"))
        table = Table(title=f"regularized evolution on {task}: {population + cycles} candidates, seed {seed}")
        for c in ("cache", "seconds", "speedup", "hit rate", "evaluations", "saved", "false collisions",
                  "same history", "best NMSE"):
            table.add_column(c, justify="left" if c == "cache" else "right")
        for r in rows:
            fc = "-" if r["false_collisions"] is None else f"{r['false_collisions']}/{r['checked']}"
            table.add_row(r["cache"], f"{r['seconds']:.2f}", f"{r['speedup']:.2f}", f"{r['hit_rate']:.3f}",
                          f"{r['evaluations']:,}", f"{r['evaluations_saved']:,}", fc,
                          "yes" if r["same_history"] else "no", f"{r['best_fitness']:.4g}")
        console.print(table)
        out = {"evolution": rows}
        if pairs > 0:
            rates = hash_error_rates(pairs, rtol=rtol, atol=atol, n_probes=probes, random_state=seed)
            out["hash_error_rates"] = rates
            console.print(
                f"false splits: {rates['split_lookup']}/{rates['equivalent_pairs']} equivalent pairs "
                f"(primary key only: {rates['split_primary']}); false collisions: "
                f"{rates['collisions']}/{rates['different_pairs']} different pairs"
            )
        _write_json(json_out, out)
