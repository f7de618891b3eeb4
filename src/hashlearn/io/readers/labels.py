"""Label files: one integer label per vector (``.npy``, ``.ivecs``, or a one-column ``.csv`` / ``.txt``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashlearn.errors import DataFileError, ValidationError

from .files import existing_file, extension
from .npy import read_npy
from .tables import read_table
from .texmex import read_ivecs

__all__ = ["read_labels"]

_LABEL_EXTENSIONS: tuple[str, ...] = (".npy", ".ivecs", ".csv", ".txt")


def _to_int_labels(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind != "f":
        raise ValidationError(f"{name}: labels have dtype {arr.dtype}; expected integers")
    fin = np.isfinite(arr)
    if not fin.all():
        i = int(np.flatnonzero(~fin)[0])
        what = "NaN" if np.isnan(arr[i]) else "inf"
        raise ValidationError(f"{name}: contains {what} at row {i}")
    frac = np.flatnonzero(arr != np.round(arr))
    if frac.size:
        i = int(frac[0])
        raise ValidationError(f"{name}: label {float(arr[i])!r} at row {i} is not an integer")
    return arr.astype(np.int64)


def _label_cells(p: Path, column: str | None):
    """The label cells (strings) of a CSV / text file, without a header row."""
    import pandas as pd

    if column is not None:
        return read_table(p, text=True, columns=[column])[column]
    df = read_table(p, text=True, header=False)
    if df.shape[1] != 1:
        raise DataFileError(f"{p}: expected a single column of labels, found {df.shape[1]} columns (pass column=...)")
    cells = df[0]
    if len(cells) and pd.isna(pd.to_numeric(cells.iloc[:1].str.strip(), errors="coerce")).all():
        cells = cells.iloc[1:]  # header row
    return cells


def _read_label_table(p: Path, column: str | None) -> np.ndarray:
    import pandas as pd

    cells = _label_cells(p, column).str.strip().reset_index(drop=True)
    values = pd.to_numeric(cells, errors="coerce")
    bad = np.flatnonzero((values.isna() & ~cells.str.lower().isin(["nan", "inf", "-inf"])).to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataFileError(f"{p}: row {i}: cannot parse {cells.iloc[i]!r} as an integer label")
    return values.to_numpy()


def _read_label_array(p: Path, column: str | None) -> np.ndarray:
    ext = extension(p)
    if ext == ".npy":
        arr = read_npy(p, mmap=False)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise DataFileError(f"{p}: labels must have shape (n,) or (n, 1), got {arr.shape}")
        return arr
    if ext == ".ivecs":
        arr = read_ivecs(p, mmap=False)
        if arr.shape[1] != 1:
            raise DataFileError(f"{p}: expected one label per record (dimension 1), found dimension {arr.shape[1]}")
        return arr[:, 0]
    if ext in (".csv", ".txt"):
        return _read_label_table(p, column)
    raise DataFileError(
        f"{p}: unsupported label file extension '{ext or '(none)'}'; supported: {', '.join(_LABEL_EXTENSIONS)}"
    )


def read_labels(path: str | os.PathLike, column: str | None = None) -> np.ndarray:
    """Read one integer label per vector.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy`` (shape (n,) or (n, 1)), ``.ivecs`` (dimension 1), or ``.csv`` / ``.txt`` with a
        single column (a non-numeric first row is taken as a header).
    column : str, optional
        For CSV files with a header and several columns: the column holding the labels.

    Returns
    -------
    labels : ndarray, shape (n,), dtype int64

    Raises
    ------
    DataFileError
        Missing / malformed file, unsupported extension, more than one column (without
        ``column``), an unparsable cell (rows in messages are 0-based and do not count a header),
        or no labels at all.
    ValidationError
        NaN/inf or non-integer values (the message names the row).
    """
    p = existing_file(path)
    arr = _read_label_array(p, column)
    if arr.shape[0] == 0:
        raise DataFileError(f"{p}: holds no labels")
    if arr.dtype.kind not in "iubf":
        raise DataFileError(f"{p}: labels have dtype {arr.dtype}; expected integers")
    return _to_int_labels(np.asarray(arr), str(p))
