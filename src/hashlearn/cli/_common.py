"""Shared pieces of the command-line interface: the typer apps, consoles, option parsers and writers.

Every command validates its input and reports a problem as one line on stderr with exit code 2
(never a traceback); output files are written atomically, so a failed command leaves files on disk
as they were.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Compact similarity search with hashing.")
index_app = typer.Typer(no_args_is_help=True, help="Build and inspect indexes.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks under the field's standard protocols.")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")

# Result tables are wide; keep them readable when stdout is a pipe or a log file (rich defaults to 80).
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


# -- helpers ---------------------------------------------------------------------------------------
def _parse_bits(text: str) -> list[int]:
    try:
        bits = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise CLIError(f"--bits must be a comma-separated list of integers, got {text!r}") from None
    if not bits or any(b < 1 for b in bits):
        raise CLIError(f"--bits must list positive integers, got {text!r}")
    return bits


def _parse_params(items: Optional[List[str]]) -> dict:
    params = {}
    for item in items or []:
        if "=" not in item:
            raise CLIError(f"--param expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


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


def _atomic_write(path: Path, write) -> None:
    from hashlearn.io.persist import atomic_write

    atomic_write(path, write)


def _atomic_write_all(items) -> None:
    """Write several files: each to a temporary file first, then all renamed (none if a write fails)."""
    staged = []
    try:
        for path, write in items:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise


def _write_json(path: Optional[Path], payload) -> None:
    if path is None:
        return
    data = json.dumps(payload, indent=2, default=_json_default).encode()
    _atomic_write(path, lambda fh: fh.write(data))
    err_console.print(f"[dim]wrote {path}[/dim]")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _load_object(path: Path):
    from hashlearn.io import load

    return load(path)
