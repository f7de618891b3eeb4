"""CLI commands of ``hashlearn.apps.selection``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ._common import SEED_HELP

from hashlearn.apps._selection_names import BUILTIN_DATASETS, SELECTION_MODES


def register(app, bench_app) -> None:
    """Add ``hashlearn select`` and ``hashlearn bench selection`` to the typer apps."""
    import typer

    @app.command("select")
    def select_cmd(
        data: str = typer.Argument(..., metavar="DATA", help="CSV/Parquet file with numeric features and a label column, "
                                   f"or a bundled data set: {', '.join(BUILTIN_DATASETS)}."),
        label_col: str = typer.Option("label", "--label-col", help="Name of the label column (files)."),
        sep: Optional[str] = typer.Option(None, "--sep", help="CSV separator (default ',')."),
        mode: str = typer.Option("single", "--mode", help=f"Selection mode: {', '.join(SELECTION_MODES)}."),
        bits: str = typer.Option("8", "--bits", "-b", help="Code length in bits: cuts per table (coarsest level of multi_level)."),
        levels: int = typer.Option(3, "--n-levels", help="Levels of multi_level."),
        views: int = typer.Option(3, "--n-views", help="Hash tables of multi_view."),
        view_features: float = typer.Option(1.0, "--view-features", help="Fraction of features per view."),
        per_bucket: int = typer.Option(1, "--per-bucket", help="Representatives per (bucket, class)."),
        representative: str = typer.Option("medoid", "--representative", help="Representative of a group: medoid or random."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        output: Optional[Path] = typer.Option(None, "--output", "-o",
                                              help="Write the selected rows (CSV; .npy with --indices-only)."),
        indices_only: bool = typer.Option(False, "--indices-only", help="Write only the selected row indices."),
        evaluate: bool = typer.Option(False, "--evaluate",
                                      help="5-fold accuracy: subset vs all data vs random stratified subsets."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write a JSON summary."),
    ):
        """Select a representative subset of a labelled data set by hierarchical hashing."""
        import io

        import numpy as np
        from rich.table import Table

        from hashlearn.apps.selection import (
            HashedInstanceSelector,
            evaluate_selection,
            load_classification_dataset,
            read_labelled_table,
        )

        from ._common import _check_output, _single_bits, _write_json, console, write_outputs

        _check_output(output, json_out)
        bits = _single_bits(bits)
        df = None
        if data in BUILTIN_DATASETS and not Path(data).exists():
            X, y = load_classification_dataset(data)
        else:
            df, X, y = read_labelled_table(data, label_col, sep)
        sel = HashedInstanceSelector(bits, mode=mode, n_levels=levels, n_views=views, view_features=view_features,
                                     per_bucket=per_bucket, representative=representative, random_state=seed)
        sel.fit(X, y)
        idx = sel.sample_indices_
        summary = {
            "data": data, "mode": mode, "n_bits": bits, "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
            "n_classes": int(sel.classes_.size), "n_selected": int(idx.size),
            "reduction_rate": float(sel.reduction_rate_), "n_groups": sel.n_buckets_, "seconds": sel.fit_seconds_,
        }
        table = Table(title=f"instance selection ({mode}, {bits} bits)")
        for c in ("samples", "classes", "selected", "reduction rate", "seconds"):
            table.add_column(c, justify="right")
        table.add_row(f"{X.shape[0]:,}", str(sel.classes_.size), f"{idx.size:,}", f"{sel.reduction_rate_:.3f}",
                      f"{sel.fit_seconds_:.3f}")
        console.print(table)
        if evaluate:
            rows = evaluate_selection(X, y, sel, random_state=seed)
            summary["evaluation"] = rows
            t2 = Table(title="5-fold accuracy (trained on: all / hashed subset / random stratified subset, same size)")
            for c in ("classifier", "all", "subset", "random", "subset size"):
                t2.add_column(c, justify="right" if c != "classifier" else "left")
            for r in rows:
                t2.add_row(r["classifier"], f"{r['acc_full']:.4f}", f"{r['acc_subset']:.4f}", f"{r['acc_random']:.4f}",
                           f"{r['subset_size']:.0f}")
            console.print(t2)
        if output is not None:
            if indices_only:
                def write(fh):
                    np.save(fh, idx)
            else:
                if df is None:
                    import pandas as pd

                    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
                    df[label_col] = y
                buf = io.StringIO()
                df.iloc[idx].to_csv(buf, index=False, sep=sep or ",")
                payload = buf.getvalue().encode()

                def write(fh):
                    fh.write(payload)
            write_outputs([(output, write)])
        _write_json(json_out, summary)

    @bench_app.command("selection")
    def bench_selection_cmd(
        datasets: str = typer.Option("iris,wine,breast_cancer,digits", "--dataset",
                                     help=f"Data sets, comma-separated, from: {', '.join(BUILTIN_DATASETS)}."),
        modes: str = typer.Option("single,multi_level,multi_view", "--mode",
                                  help=f"Selection modes, comma-separated, from: {', '.join(SELECTION_MODES)}."),
        bits: str = typer.Option("6", "--bits", "-b", help="Code length in bits: cuts per table."),
        folds: int = typer.Option(5, "--folds", help="Folds of the cross-validation."),
        n_random: int = typer.Option(3, "--random-subsets", help="Random stratified subsets per fold."),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON."),
    ):
        """Accuracy of classifiers trained on hashed subsets vs all data vs random subsets (k-fold)."""
        from rich.table import Table

        from hashlearn.apps.selection import HashedInstanceSelector, evaluate_selection, load_classification_dataset

        from ._common import CLIError, _check_output, _single_bits, _write_json, console

        _check_output(json_out)
        bits = _single_bits(bits)
        names = [d.strip() for d in datasets.split(",") if d.strip()]
        mode_list = [m.strip() for m in modes.split(",") if m.strip()]
        bad = [m for m in mode_list if m not in SELECTION_MODES]
        if bad or not mode_list:
            raise CLIError(f"--mode: unknown mode(s) {', '.join(bad) or '(none)'}; known: {', '.join(SELECTION_MODES)}")
        if folds < 2:
            raise CLIError(f"--folds must be at least 2, got {folds}")
        table = Table(title=f"hashed instance selection, {folds}-fold, {bits} bits")
        for c in ("data", "mode", "classifier", "reduction", "acc all", "acc subset", "acc random"):
            table.add_column(c, justify="left" if c in ("data", "mode", "classifier") else "right")
        out = []
        for name in names:
            X, y = load_classification_dataset(name)
            sels = {mode: HashedInstanceSelector(bits, mode=mode, random_state=seed) for mode in mode_list}
            for r in evaluate_selection(X, y, sels, n_splits=folds, n_random=n_random, random_state=seed):
                r = {"data": name, "mode": r.pop("selector"), "n_bits": bits, **r}
                out.append(r)
                table.add_row(name, r["mode"], r["classifier"], f"{r['reduction_rate']:.3f}", f"{r['acc_full']:.4f}",
                              f"{r['acc_subset']:.4f}", f"{r['acc_random']:.4f}")
        console.print(table)
        _write_json(json_out, out)
