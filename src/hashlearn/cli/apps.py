"""CLI commands of ``hashlearn.apps``, added to the main app by :func:`register`.

* ``hashlearn block LEFT [RIGHT]`` -- candidate pairs for linkage / deduplication (``apps.blocking``).
* ``hashlearn dedup INPUT`` -- clusters of near-duplicate texts (``apps.dedup``).

Heavy dependencies (torch, sentence-transformers) are imported inside the commands only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ._common import SEED_HELP


def register(app, bench_app) -> None:
    """Add this package's commands to the hashlearn typer app (and its bench group)."""
    _register_blocking(app)
    _register_dedup(app)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# -- hashlearn block -------------------------------------------------------------------------------
def _register_blocking(app) -> None:
    @app.command("block")
    def block(
        left: Path = typer.Argument(..., metavar="LEFT", help="Left table (CSV or Parquet); the only table for deduplication."),
        right: Optional[Path] = typer.Argument(None, metavar="RIGHT", help="Right table for linkage (omit to deduplicate LEFT)."),
        sep: str = typer.Option(",", "--sep", help="CSV separator of the tables."),
        id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column (default: row number)."),
        fields: Optional[str] = typer.Option(None, "--fields", help="Comma-separated fields (default: all but the id)."),
        method: str = typer.Option("minhash", "--method", "-m",
                                   help="Blocker: standard, sortedneighbourhood, minhash, simhash, embedding, neural, "
                                        "or union:A+B."),
        threshold: Optional[float] = typer.Option(None, "--threshold", help="MinHash Jaccard threshold (default 0.5)."),
        k: Optional[int] = typer.Option(None, "--k", "-k", help="Candidates per record (embedding, neural, simhash)."),
        on: Optional[str] = typer.Option(None, "--on", help="Key field(s) of standard / sortedneighbourhood (default: first field)."),
        window: Optional[int] = typer.Option(None, "--window", help="Sorted-neighbourhood window (odd, default 3)."),
        n_perm: Optional[int] = typer.Option(None, "--n-perm", help="MinHash permutations (default 128)."),
        q: Optional[int] = typer.Option(None, "--q", help="Character q-grams of MinHash (default 3; 0 = word tokens)."),
        min_similarity: Optional[float] = typer.Option(None, "--min-similarity", help="MinHash: drop candidates below this estimated Jaccard."),
        max_per_record: Optional[int] = typer.Option(None, "--max-per-record", help="MinHash: keep the best N candidates per left record."),
        train_pairs: Optional[Path] = typer.Option(None, "--train-pairs", help="Neural: labelled matches (two id columns, like --truth)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", help="Neural: training epochs (default 2)."),
        max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="Neural: at most N training pairs "
                                                "(default 1000; bounds the training time)."),
        model: Optional[str] = typer.Option(None, "--model", help="Sentence-transformers model (default all-MiniLM-L6-v2, offline)."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache embeddings in this folder."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Candidate pairs: .csv or .parquet (left_id, right_id, blocker)."),
        truth: Optional[Path] = typer.Option(None, "--truth", help="True links: two columns left id, right id (header allowed)."),
        truth_sep: Optional[str] = typer.Option(None, "--truth-sep", help="Separator of --truth / --train-pairs (default: --sep)."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the summary (and metrics) as JSON."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars, messages or tables."),
    ):
        """Candidate pairs of records that may match (blocking), with metrics when --truth is given."""
        import json

        from ._common import CLIError, _check_output, console, err_console, report_written, write_outputs

        from hashlearn.apps.blocking import make_blocker, prepare_table, read_table, read_truth, run_blocking, write_pairs

        _check_output(output, json_out)
        if output is not None and output.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise CLIError(f"{output}: the output must end in .csv or .parquet")
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise CLIError(f"--threshold must be in (0, 1), got {threshold}")
        if k is not None and k < 1:
            raise CLIError(f"--k must be >= 1, got {k}")
        if max_pairs is not None and max_pairs < 1:
            raise CLIError(f"--max-pairs must be >= 1, got {max_pairs}")
        tsep = truth_sep if truth_sep is not None else sep
        L = prepare_table(read_table(left, sep=sep), fields=fields, id_col=id_col, name=str(left))
        R = None
        if right is not None:
            R = prepare_table(read_table(right, sep=sep), fields=fields, id_col=id_col, name=str(right))
        gt = read_truth(truth, L, R, sep=tsep) if truth is not None else None
        tp = read_truth(train_pairs, L, R, sep=tsep) if train_pairs is not None else None
        embedder = None
        if any(m in method.lower() for m in ("simhash", "embedding", "neural")):
            from hashlearn.embed import Embedder

            embedder = Embedder(model=model or "all-MiniLM-L6-v2", cache_dir=cache_dir, show_progress=not quiet)
        options = dict(threshold=threshold, k=k, on=on.split(",") if on else None, window=window, n_perm=n_perm,
                       q=q, min_similarity=min_similarity, max_per_record=max_per_record, train_pairs=tp,
                       epochs=epochs, max_pairs=max_pairs)
        options = {key: value for key, value in options.items() if value is not None}  # only what the user set
        _refuse_options_the_blocker_ignores(method, options)
        if embedder is not None:
            options["embedder"] = embedder
        blocker = make_blocker(method, random_state=seed, **options)

        chunks = []
        if not quiet:
            err_console.print(f"[dim]{method}: {len(L)} left" + (f" × {len(R)} right" if R is not None else " (dedup)")
                              + " records[/dim]")

        def on_chunk(pairs, label):
            chunks.append((pairs, label))
            if not quiet:
                err_console.print(f"[dim]  {label}: +{pairs.shape[0]} candidates[/dim]")

        run = run_blocking(blocker, L, R, truth=gt, on_chunk=on_chunk)
        if output is not None:
            write_pairs(output, chunks, L, R)
            report_written(output)
        summary = {"method": method, **run.summary()}
        trained = _training_reports(blocker)
        if trained:
            summary["training"] = trained
            if not quiet:
                for label, report in trained.items():
                    err_console.print(f"{label}: trained on {report['mined']['trained_on']} pairs in "
                                      f"{report['train_seconds']:.1f} s; guard: {report['guard']['reason']}",
                                      highlight=False, soft_wrap=True)
        if json_out is not None:
            data = json.dumps(summary, indent=2, default=float).encode()
            write_outputs([(json_out, lambda fh: fh.write(data))])
        if not quiet:
            from rich.table import Table

            table = Table(title=f"blocking: {method}")
            table.add_column("metric")
            table.add_column("value", justify="right")
            keys = ["n_candidates", "pair_completeness", "reduction_ratio", "pairs_quality", "n_true_links",
                    "n_found", "seconds", "candidates_per_second", "peak_rss_mib"]
            for key in keys:
                if key in summary:
                    table.add_row(key, _fmt(summary[key]))
            for label, n in summary["pairs_by_blocker"].items():
                table.add_row(f"pairs from {label}", str(n))
            sk = summary["skipped"]
            table.add_row("records with empty fields (left)", str(sk["empty_left"]))
            if "empty_right" in sk:
                table.add_row("records with empty fields (right)", str(sk["empty_right"]))
            console.print(table)


# Blocker parameters set from the command line, by the flag that sets them.
_BLOCKER_FLAGS = {"threshold": "--threshold", "k": "-k", "on": "--on", "window": "--window", "n_perm": "--n-perm",
                  "q": "--q", "min_similarity": "--min-similarity", "max_per_record": "--max-per-record",
                  "train_pairs": "--train-pairs", "epochs": "--epochs", "max_pairs": "--max-pairs"}


def _training_reports(blocker) -> dict:
    """What the trained blocker(s) in ``blocker`` did (a union's parts included): pairs, time, guard."""
    parts = getattr(blocker, "blockers", None) or [blocker]
    return {b.name: b.report() for b in parts if getattr(b, "guard_", None) is not None}


def _refuse_options_the_blocker_ignores(method: str, options: dict) -> None:
    """A blocker option the user set that no part of ``-m METHOD`` takes is an error naming the flag."""
    from hashlearn.apps.blocking import get_blocker_class

    from ._common import CLIError

    spec = method.strip()
    names = spec[len("union:"):].split("+") if spec.lower().startswith("union:") else [spec]
    accepted = set().union(*(get_blocker_class(n.strip()).param_names() for n in names if n.strip()))
    ignored = [_BLOCKER_FLAGS[key] for key in options if key not in accepted]
    if ignored:
        takes = [flag for key, flag in _BLOCKER_FLAGS.items() if key in accepted]
        raise CLIError(f"{', '.join(ignored)} does not apply to -m {spec}; its options: "
                       f"{', '.join(takes) if takes else 'none'}")


# -- hashlearn dedup -------------------------------------------------------------------------------
def _register_dedup(app) -> None:
    @app.command("dedup")
    def dedup(
        input: Path = typer.Argument(..., metavar="INPUT", help="Texts: .txt (one per line), or a CSV/Parquet table with --column."),
        column: Optional[str] = typer.Option(None, "--column", help="Text column(s) of a table, comma-separated."),
        sep: str = typer.Option(",", "--sep", help="CSV separator."),
        id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column of a table (default: row/line number)."),
        threshold: float = typer.Option(0.8, "--threshold", help="Jaccard similarity of near-duplicates."),
        q: int = typer.Option(5, "--q", help="Character q-grams (0 = word tokens)."),
        n_perm: int = typer.Option(128, "--n-perm", help="MinHash permutations."),
        chunk_size: int = typer.Option(100_000, "--chunk-size", help="Texts sketched at a time (bounds memory)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="CSV: id, cluster, for records in clusters of 2+."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the summary as JSON."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars, messages or tables."),
    ):
        """Clusters of near-duplicate texts: MinHash LSH candidates verified by exact Jaccard, union-find."""
        import json

        from ._common import CLIError, _check_output, console, err_console, write_outputs

        from hashlearn.apps.blocking import prepare_table, read_table
        from hashlearn.apps.dedup import NearDuplicates, iter_text_file

        _check_output(output, json_out)
        if not 0.0 < threshold <= 1.0:
            raise CLIError(f"--threshold must be in (0, 1], got {threshold}")
        if not input.is_file():
            raise CLIError(f"{input}: no such file")
        if input.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq"):
            if column is None:
                raise CLIError(f"{input}: give the text column(s) with --column")
            T = prepare_table(read_table(input, sep=sep), fields=column, id_col=id_col, name=str(input),
                              lowercase=False)
            texts, ids = T.texts(), T.ids
            source = texts
        else:
            source = lambda: iter_text_file(input)  # noqa: E731 -- re-iterable: read twice, never held
            ids = None
        nd = NearDuplicates(threshold, q=q, n_perm=n_perm, chunk_size=chunk_size,
                            random_state=seed)
        progress = None if quiet else (lambda msg: err_console.print(f"[dim]{msg}[/dim]"))
        res = nd.run(source, progress=progress)
        summary = res.summary()
        summary["skipped"] = {"empty_texts": res.n_empty}
        if output is not None:
            lab = res.labels
            sizes = res.cluster_sizes()
            rows = np.flatnonzero(sizes[lab] >= 2)
            name = (lambda i: str(i)) if ids is None else (lambda i: str(ids[i]))

            def write(fh):
                fh.write(b"id,cluster\n")
                for s in range(0, rows.size, 100_000):
                    part = rows[s : s + 100_000]
                    fh.write("".join(f"{name(i)},{name(lab[i])}\n" for i in part).encode())

            write_outputs([(output, write)])
        if json_out is not None:
            data = json.dumps(summary, indent=2, default=float).encode()
            write_outputs([(json_out, lambda fh: fh.write(data))])
        if not quiet:
            from rich.table import Table

            table = Table(title="near-duplicates")
            table.add_column("metric")
            table.add_column("value", justify="right")
            for key, v in summary.items():
                if not isinstance(v, dict):
                    table.add_row(key, _fmt(v))
            table.add_row("empty texts (never clustered)", str(res.n_empty))
            console.print(table)

