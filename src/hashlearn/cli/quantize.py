"""CLI command of ``hashlearn.quantize``: ``hashlearn bench quantize``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

DATASETS = ("sift10k", "scifact-minilm", "synthetic")
_METHODS = ("pq", "opq", "rq", "ivf-pq", "balanced", "adc")


def register(app, bench_app) -> None:
    """Add ``hashlearn bench quantize`` to the typer apps."""
    import typer

    @bench_app.command("quantize")
    def bench_quantize_cmd(
        dataset: str = typer.Option("sift10k", "--dataset", help=f"One of {', '.join(DATASETS)}."),
        bytes_: str = typer.Option("8,16,32,64", "--bytes", help="Code sizes in bytes per vector (PQ sub-quantizers "
                                   "= RQ levels), comma-separated."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder of the dataset's files (default: "
                                                "../shared/data/sift10k or ../shared/data/scifact/minilm)."),
        method: str = typer.Option("pq,opq,rq,ivf-pq,balanced", "--method", "-m",
                                   help=f"Rows to run: {', '.join(_METHODS)} (adc: 1M-code scan, synthetic only)."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON (a list)."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages or tables."),
    ):
        """PQ, OPQ, RQ, IVF-PQ and balanced lists vs faiss at equal bytes (SIFT10K, all rows: ~35 min)."""
        from ._common import CLIError, _check_output, _write_json, console, err_console, report_written

        _check_output(json_out)
        if dataset not in DATASETS:
            raise CLIError(f"--dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
        try:
            sizes = [int(b) for b in bytes_.split(",") if b.strip()]
        except ValueError:
            raise CLIError(f"--bytes must be comma-separated integers, got {bytes_!r}") from None
        if not sizes or min(sizes) < 1:
            raise CLIError(f"--bytes must be positive integers, got {bytes_!r}")
        methods = tuple(m.strip() for m in method.split(",") if m.strip())
        if unknown := sorted(set(methods) - set(_METHODS)):
            raise CLIError(f"--method: unknown {', '.join(unknown)}; choose from {', '.join(_METHODS)}")
        if data_dir is None and dataset != "synthetic":
            from hashlearn.quantize.bench import DEFAULT_DATA_DIRS

            data_dir = Path("..") / "shared" / "data" / DEFAULT_DATA_DIRS[dataset]
        if data_dir is not None and not data_dir.is_dir():
            raise CLIError(f"--data-dir: {data_dir} is not a folder (the {dataset} files; see bench/RESULTS.md)")
        from hashlearn.quantize.bench import plot, run, summarize

        log = (lambda msg: None) if quiet else (lambda msg: err_console.print(f"[dim]{msg}[/dim]", highlight=False))
        rows = run(dataset, sizes, data_dir, methods=methods, log=log)
        if not quiet:
            console.print(summarize(rows, dataset=dataset), markup=False, highlight=False)
        if plots is not None:
            for path in plot(rows, plots, dataset=dataset):
                report_written(path)
        _write_json(json_out, rows)
