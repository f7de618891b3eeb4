"""CLI commands of ``hashlearn.crossmodal``, added to the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app, bench_app) -> None:
    """Add this package's commands to the hashlearn typer app (and its bench group)."""

    @bench_app.command("crossmodal")
    def bench_crossmodal(
        dataset: str = typer.Option("wiki", help="wiki, mfeat, mnist (pixels vs HOG) or planted (synthetic)"),
        data_file: Optional[Path] = typer.Option(
            None, "--data-file", help="wiki_data.mat (wiki) or handwritten.mat (mfeat)"),
        bits: str = typer.Option("16,32,64,128"),
        paired: str = typer.Option("0.1,0.3,0.5,0.7,1.0", help="fractions of training items keeping both views"),
        methods: str = typer.Option("cca-itq,cmfh,imh,rreh", help="comma-separated cross-modal registry names"),
        views: str = typer.Option("0,1", help="mfeat: the two views (0 pix, 1 fou, 2 fac, 3 zer, 4 kar, 5 mor)"),
        n_queries: int = typer.Option(500, help="mfeat / mnist / planted: held-out query items"),
        param: Optional[List[str]] = typer.Option(
            None, "--param", help="method.key=value (JSON value), e.g. rreh.beta=0.5; repeatable"),
        seed: int = typer.Option(0, help="query split (mfeat / mnist / planted), semi-paired split and model seed"),
        repeats: int = typer.Option(1, help="run each cell with seeds seed, seed+1, …: new semi-paired split and "
                                           "model seed each time (the query split stays); tables show mean ± sd"),
        json_path: Optional[Path] = typer.Option(None, "--json", help="write the rows as JSON"),
        plots: Optional[Path] = typer.Option(None, "--plots", help="folder for PNG plots (mAP vs pairing ratio)"),
    ):
        """Cross-modal retrieval under semi-paired training: mAP of both directions per method, bits, ratio.

        Queries are held-out items (Wiki: the 693 test pairs); the database is every training item of the
        other modality; relevant = same label. Paired-only baselines fit on the paired part of the split.
        """
        import json

        from rich.table import Table

        from ._common import CLIError, _check_output, _parse_bits, _parse_params, console
        from hashlearn.hashing import get_hasher_class, list_methods

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
            get_hasher_class(name)  # unknown: UnknownMethodError listing every method
            if name not in known:
                raise CLIError(f"{name!r} is not a cross-modal method; cross-modal methods: {', '.join(known)}")
        if not names:
            raise CLIError(f"no method given; cross-modal methods: {', '.join(known)}")
        try:
            view_pair = tuple(int(v) for v in views.split(","))
        except ValueError:
            raise CLIError(f"--views must be two integers like 0,1, got {views!r}") from None
        if len(view_pair) != 2 or view_pair[0] == view_pair[1]:
            raise CLIError(f"--views must name two different views, got {views!r}")
        params: dict = {}
        for key, value in _parse_params(param).items():
            if "." not in key:
                raise CLIError(f"--param expects method.key=value, got {key!r}")
            meth, k = key.split(".", 1)
            if meth not in names:
                raise CLIError(f"--param {key}: method {meth!r} is not among --methods")
            params.setdefault(meth, {})[k] = value
        data = load_crossmodal_dataset(dataset, data_file, view_pair, n_queries, seed)
        a, b = data.view_names

        def progress(row):
            console.print(f"{row['method']:>8} {row['bits']:>4} bits, paired {row['paired']:.2f}: "
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

        def fmt(row, k):
            return f"{row[k]:.4f}" + (f"±{row[k + '_sd']:.4f}" if repeats > 1 else "")

        for nb in bit_list:
            table = Table(title=f"{data.name}: mAP, {nb} bits ({data.train[0].shape[0]} train items, "
                                f"{data.test[0].shape[0]} queries" + (f", mean ± sd of {repeats} seeds)"
                                                                      if repeats > 1 else ")"))
            table.add_column("method")
            for r in ratios:
                table.add_column(f"{a}→{b} @{r:g}", justify="right")
            for r in ratios:
                table.add_column(f"{b}→{a} @{r:g}", justify="right")
            for name in names:
                cells = {(row["paired"], k): fmt(row, k) for row in summary if row["bits"] == nb
                         and row["method"] == name for k in ("map_q0_db1", "map_q1_db0")}
                table.add_row(name, *[cells[(r, "map_q0_db1")] for r in ratios],
                              *[cells[(r, "map_q1_db0")] for r in ratios])
            console.print(table)
        if plots is not None:
            for path in plot_rows(summary, plots, data.view_names):
                console.print(f"plot: {path}", highlight=False, soft_wrap=True)
        if json_path is not None:
            from hashlearn.io.persist import atomic_write

            payload = json.dumps({"dataset": data.name, "views": list(data.view_names), "params": params,
                                  "seeds": list(range(seed, seed + repeats)), "rows": rows, "summary": summary},
                                 indent=1).encode()
            atomic_write(json_path, lambda fh: fh.write(payload))
            console.print(f"json: {json_path}", highlight=False, soft_wrap=True)
