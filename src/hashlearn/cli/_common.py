"""Shared pieces of the command-line interface: the typer apps, consoles, option parsers and writers.

Every command validates its input and reports a problem as one line on stderr with exit code 2
(never a traceback); output files are written atomically, so a failed command leaves files on disk
as they were.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console

from hashlearn.errors import HashlearnError

# -h works like --help on every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings=CONTEXT,
                  help="Compact similarity search with hashing and clustering.")
index_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT, help="Build indexes.")
bench_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT,
                        help="Benchmarks under the field's standard protocols (long: the times are in the README).")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")

# Result tables are wide; keep them readable when stdout is a pipe or a log file (rich defaults to 80).
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


class CLIError(HashlearnError, ValueError):
    """A user-facing usage error of the command line: printed as one line, exit code 2."""


# Help texts shared by every command that takes the option (one meaning, one text).
SEED_HELP = "Random seed (data split and methods)."
PARAM_HELP = "Method parameter KEY=VALUE (JSON value); repeatable."
PARAM_HELP_MULTI = "Method parameter METHOD.KEY=VALUE (JSON value), or KEY=VALUE for every method; repeatable."


# -- option parsers --------------------------------------------------------------------------------
def _parse_bits(text: str) -> list[int]:
    """``--bits`` "16,32" → [16, 32]; every length in [1, MAX_BITS]."""
    from hashlearn.registry import MAX_BITS

    try:
        bits = [int(b) for b in str(text).split(",") if b.strip()]
    except ValueError:
        raise CLIError(f"--bits must be a comma-separated list of integers, got {text!r}") from None
    if not bits or any(not 1 <= b <= MAX_BITS for b in bits):
        raise CLIError(f"--bits must be integers from 1 to {MAX_BITS}, got {text!r}")
    return bits


def _single_bits(text: str) -> int:
    """``--bits`` of a command that takes one code length."""
    bits = _parse_bits(text)
    if len(bits) != 1:
        raise CLIError(f"--bits: this command takes one code length, got {text!r}")
    return bits[0]


def _parse_params(items: Optional[List[str]]) -> dict:
    """``--param KEY=VALUE`` (repeatable) → dict; values are parsed as JSON when they are JSON."""
    params = {}
    for item in items or []:
        if "=" not in item:
            raise CLIError(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _parse_method_params(items: Optional[List[str]], methods: List[str]) -> dict:
    """``--param`` of a command that runs several methods → ``{method: {key: value}}``.

    ``METHOD.KEY=VALUE`` goes to one method; a plain ``KEY=VALUE`` to every method (then each must
    accept it, which the registry checks when the method is made).
    """
    out: dict = {m: {} for m in methods}
    for key, value in _parse_params(items).items():
        method, dot, name = key.rpartition(".")
        if not dot:
            for m in methods:
                out[m][key] = value
        elif method not in out:
            raise CLIError(f"--param {key}: method {method!r} is not among --method ({', '.join(methods)})")
        else:
            out[method][name] = value
    return out


def _read_matrix(path: Path, what: str) -> np.ndarray:
    from hashlearn.io.readers import read_vectors

    return np.asarray(read_vectors(path))


def _read_npy(path: Path) -> np.ndarray:
    """A .npy file (codes, ids) read into memory; errors name the file."""
    from hashlearn.io.readers import read_npy

    return np.asarray(read_npy(path, mmap=False))


def _check_output(*paths: Optional[Path]) -> None:
    """Refuse an output path that cannot be replaced by a file, before doing any work."""
    for path in paths:
        if path is not None and Path(path).is_dir():
            raise CLIError(f"{path}: is a directory; give a file name for the output")


# -- writers: every output file goes through write_outputs (atomic, usual file mode, one message) -----
def report_written(path) -> None:
    """The one message of a written output file (stderr, so stdout stays the result)."""
    err_console.print(f"[dim]wrote {path}[/dim]", highlight=False, soft_wrap=True)


def write_outputs(items) -> None:
    """Write ``[(path, write)]`` all or none (:func:`hashlearn.io.persist.atomic_write_many`), then
    print the one message per file."""
    from hashlearn.io.persist import atomic_write_many

    for path in atomic_write_many(items):
        report_written(path)


def save_object(obj, path) -> None:
    """``hashlearn.save`` plus the one message."""
    from hashlearn.io import save

    save(obj, path)
    report_written(path)


def _write_json(path: Optional[Path], payload) -> None:
    if path is None:
        return
    data = json.dumps(payload, indent=2, default=_json_default).encode()
    write_outputs([(path, lambda fh: fh.write(data))])


# -- benchmark commands: one shape for `hashlearn bench <room> --part ...` -------------------------------
def check_choice(value: str, choices, option: str) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming the option and the choices."""
    if value not in choices:
        raise CLIError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def check_folder(folder: Optional[Path], what: str) -> Path:
    """``folder`` must exist as a directory (``what`` says what it should hold)."""
    if folder is None or not Path(folder).is_dir():
        raise CLIError(f"--data-dir: {folder} is not a folder ({what})")
    return Path(folder)


def mean_sd_cell(summary: dict, metric: str, fmt: str = ".3f") -> str:
    """``"mean ± sd"`` of ``metric`` in a summary row, ``"-"`` where the row lacks it."""
    if metric not in summary:
        return "-"
    return f"{summary[metric]:{fmt}} ± {summary[metric + '_sd']:{fmt}}"


def bench_table(title: str, columns, rows, left=("method",)):
    """A rich table: ``columns`` (names), ``rows`` (lists of cell strings); ``left`` columns left-aligned."""
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c in left else "right")
    for cells in rows:
        table.add_row(*cells)
    return table


def finish_bench(table, *, quiet: bool, plots: Optional[Path], make_plots, json_out: Optional[Path],
                 payload) -> None:
    """Print ``table`` (unless quiet), write ``make_plots(plots)``'s PNGs and the JSON payload."""
    if not quiet and table is not None:
        console.print(table)
    if plots is not None:
        for path in make_plots(plots):
            report_written(path)
    _write_json(json_out, payload)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _load_object(path: Path):
    from hashlearn.io import load

    return load(path)
