"""CLI benchmarks of retrieval without labels: ``hashlearn bench adapt`` (added by :func:`register`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional


def register(app, bench_app) -> None:
    """Add ``hashlearn bench adapt`` to the typer apps."""
    import typer

    from ._common import SEED_HELP

    @bench_app.command("adapt")
    def bench_adapt_cmd(
        beir: Path = typer.Option(..., "--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."),
        model: str = typer.Option("all-MiniLM-L6-v2", "--model", help="The zero-shot encoder (adapted here)."),
        embeddings: Optional[Path] = typer.Option(None, "--embeddings",
                                                  help="Precomputed zero-shot corpus.npy/queries.npy (+ .ids)."),
        split: str = typer.Option("test", "--split", help="The qrels split evaluated (never used for training)."),
        bits: int = typer.Option(128, "--bits", "-b", help="Code length of the itq and bpr rows."),
        epochs: int = typer.Option(3, "--epochs", help="Adaptation epochs."),
        max_train_minutes: float = typer.Option(10.0, "--max-train-minutes",
                                                help="Time budget of the adaptation and of each bpr head, in minutes."),
        param: Optional[List[str]] = typer.Option(None, "--param", "-p",
                                                  help="Adaptation parameter KEY=VALUE (JSON value); repeatable."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON (a list)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars, messages or tables."),
    ):
        """Zero-shot vs adapted encoder (no labels): float, sign, ITQ and label-free bpr codes; nDCG@10, R@100."""
        from ._common import CLIError, _check_output, _parse_params, _write_json, console, err_console

        from hashlearn.text.adapt.bench import run, summarize

        _check_output(json_out)
        if not beir.is_dir():
            raise CLIError(f"{beir}: not a folder (expected a BEIR dataset)")
        if not max_train_minutes > 0 or epochs < 1 or bits < 1:
            raise CLIError(f"--max-train-minutes must be > 0 and --epochs, --bits >= 1 (got {max_train_minutes}, "
                           f"{epochs}, {bits})")
        log = (lambda msg: None) if quiet else (lambda msg: err_console.print(f"[dim]{msg}[/dim]", highlight=False))
        cache = Path.home() / ".cache" / "hashlearn" / "embeddings"
        rows = run(beir, model=model, split=split, bits=bits, embeddings=embeddings,
                   adapt_params={"epochs": epochs, **_parse_params(param)}, max_train_minutes=max_train_minutes,
                   seed=seed, cache_dir=cache, show_progress=not quiet, log=log)
        if not quiet:
            console.print(summarize(rows), markup=False, highlight=False)
        _write_json(json_out, rows)
