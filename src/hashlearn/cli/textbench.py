"""CLI benchmarks of retrieval without labels: ``hashlearn bench adapt`` and ``bench grank`` (added by :func:`register`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional


def register(app, bench_app) -> None:
    """Add ``hashlearn bench adapt`` and ``hashlearn bench grank`` to the typer apps."""
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

    @bench_app.command("grank")
    def bench_grank_cmd(
        beir: Path = typer.Option(..., "--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."),
        embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="Precomputed corpus.npy/queries.npy (+ .ids)."),
        model: str = typer.Option("all-MiniLM-L6-v2", "--model", help="Encoder of the dense feature (without --embeddings)."),
        split: str = typer.Option("test", "--split", help="The qrels split of the evaluation queries."),
        train_split: str = typer.Option("train", "--train-split",
                                        help="The qrels split whose queries the peers ask (clicks simulated from it)."),
        param: Optional[List[str]] = typer.Option(None, "--param", "-p",
                                                  help="Simulation parameter KEY=VALUE (JSON value): n_peers, "
                                                       "queries_per_peer, gossip_every, fanout, lr, temperature ..."),
        backend: str = typer.Option("local", "--backend", help="Where the peers run: local (this process) or ray "
                                    "(one Ray actor process per peer; same numbers)."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON (a list)."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages or tables."),
    ):
        """G-Rank: peers learn to rank from simulated clicks and gossip; churn, a poisoned peer, robust merging."""
        import inspect

        from ._common import (CLIError, _check_output, _parse_params, _write_json, check_choice, console, err_console,
                              report_written)

        from hashlearn.text.grank import load_beir_candidates, run_scenarios, simulate

        _check_output(json_out)
        if not beir.is_dir():
            raise CLIError(f"{beir}: not a folder (expected a BEIR dataset)")
        params = _parse_params(param)
        from hashlearn.text.grank.network import BACKENDS

        check_choice(backend, BACKENDS, "--backend")
        known = set(inspect.signature(simulate).parameters) - {"train", "evaluation", "random_state", "gossip",
                                                                 "churn", "n_poisoned", "aggregation", "clicks",
                                                                 "backend"}
        if unknown := sorted(set(params) - known):
            raise CLIError(f"unknown simulation parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        log = (lambda msg: None) if quiet else (lambda msg: err_console.print(f"[dim]{msg}[/dim]", highlight=False))
        log("candidates and features (dense + BM25)")
        train, evaluation = load_beir_candidates(beir, train_split=train_split, eval_split=split,
                                                 embeddings=embeddings, model=model)
        with _ray_runtime(backend == "ray"):  # one runtime for every scenario, not one each
            rows = run_scenarios(train, evaluation, log=log, random_state=seed, backend=backend, **params)
        if not quiet:
            for r in rows:
                console.print(f"{r['scenario']:<30} nDCG@10 {r['final_ndcg@10']:.4f}  gain {r['gain']:+.1%}  "
                              f"bytes {r['bytes']:,}", highlight=False)
        if plots is not None:
            from hashlearn.text.grank.plot import plot_curves

            report_written(plot_curves(rows, plots / "grank.png"))
        _write_json(json_out, rows)


@contextlib.contextmanager
def _ray_runtime(wanted: bool):
    """A local Ray runtime for the block if ``wanted`` and none is running (shut down afterwards)."""
    if not wanted:
        yield
        return
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
