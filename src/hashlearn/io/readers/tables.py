"""CSV and Parquet tables: one reader for every table the library reads, and vectors stored in tables.

:func:`read_table` is the only place that opens a CSV or Parquet file as a table (blocking's record
tables, instance selection's labelled tables, label files, vector tables); its errors name the file and
the separator, the byte of a bad encoding, or the missing column with the available ones.

:func:`read_table_vectors` reads vectors stored in a table, either one numeric column per dimension or
one column holding whole vectors (a Parquet list column, or text cells such as ``"[0.5, 1, 2]"``).
pandas and pyarrow are imported when first needed.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from hashlearn.errors import DataFileError, ValidationError

from .files import existing_file, extension

__all__ = ["read_table", "table_columns", "read_table_vectors"]

_PARQUET_EXTENSIONS = (".parquet", ".pq")


# -- any table -------------------------------------------------------------------------------------
def _is_parquet(p: Path) -> bool:
    return extension(p) in _PARQUET_EXTENSIONS


def missing_columns(wanted: Sequence[str], available: Sequence[str], p: Path) -> None:
    """DataFileError naming the columns of ``wanted`` that are not ``available`` (and listing those)."""
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataFileError(f"{p}: column(s) {missing} not found; available columns: {list(available)}")


def _decode_error_message(p: Path, encoding: str, exc: UnicodeDecodeError) -> str:
    """Where the file stops being valid ``encoding``: its byte offset and line (pandas reports an offset
    within the chunk it was decoding), found by decoding the file again in 1 MiB steps."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    offset, line = 0, 1
    with open(p, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            pending = len(decoder.getstate()[0])  # bytes of a character split across blocks
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as bad:
                line += block[: max(0, bad.start - pending)].count(b"\n")
                return (f"{p}: not valid {encoding} ({bad.reason} at byte {offset - pending + bad.start}, "
                        f"line {line}); re-encode the file as UTF-8")
            if not block:
                break
            offset += len(block)
            line += block.count(b"\n")
    return f"{p}: not valid {encoding} ({exc.reason}); re-encode the file as UTF-8"


def _read_csv(p: Path, *, sep: str, encoding: str, header: bool = True, text: bool = False, usecols=None,
              nrows: int | None = None):
    import pandas as pd

    import re

    one_char = len(sep) == 1
    kw = dict(sep=sep if one_char else re.escape(sep), encoding=encoding, header=0 if header else None,
              usecols=usecols, nrows=nrows, engine="c" if one_char else "python")
    if text:
        kw.update(dtype=str, keep_default_na=False, na_values=[])
    elif kw["engine"] == "c":
        kw["float_precision"] = "round_trip"  # numbers parsed exactly as Python's float() does
    try:
        return pd.read_csv(p, **kw)
    except UnicodeDecodeError as exc:
        raise DataFileError(_decode_error_message(p, encoding, exc)) from None
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{p}: CSV file is empty" + (" (no header)" if header else "")) from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise DataFileError(f"{p}: cannot read as a table with separator {sep!r} ({exc})") from None


def _read_parquet(p: Path, columns, text: bool):
    import pandas as pd
    import pyarrow as pa

    try:
        df = pd.read_parquet(p, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataFileError(f"{p}: not a valid Parquet file ({exc})") from None
    return df.astype(object).where(df.notna(), None) if text else df


def _parquet_schema(p: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(p)
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(f"{p}: not a valid Parquet file ({exc})") from None


def table_columns(path: str | os.PathLike, *, sep: str = ",", encoding: str = "utf-8") -> list[str]:
    """Column names of a CSV (its header row) or Parquet file (its schema), without reading the rows."""
    p = existing_file(path)
    if _is_parquet(p):
        return list(_parquet_schema(p).names)
    return [str(c) for c in _read_csv(p, sep=sep, encoding=encoding, nrows=0).columns]


def read_table(path: str | os.PathLike, *, sep: str = ",", text: bool = False, header: bool = True,
               columns: Sequence[str] | None = None, encoding: str = "utf-8"):
    """Read a CSV (any separator) or Parquet file as a DataFrame.

    A file ending in ``.parquet`` or ``.pq`` is read as Parquet, anything else as CSV.

    Parameters
    ----------
    path : str or os.PathLike
    sep : str, default ","
        CSV separator, taken literally (also when longer than one character: pandas would read that as a
        regular expression; it is escaped and read by pandas' Python engine).
    text : bool, default False
        CSV: read every cell as a string, with no type guessing (ids ``"007"`` stay ``"007"``) and empty
        cells as ``""``. Parquet: values as stored, as Python objects, missing cells ``None``.
        False: pandas' types (numbers parsed exactly, empty numeric cells NaN).
    header : bool, default True
        CSV: the first row names the columns; False numbers the columns from 0.
    columns : list of str, optional
        Read only these columns (in file order); an unknown one is an error listing the available ones.
    encoding : str, default "utf-8"

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataFileError
        Missing file, bytes that are not valid ``encoding`` (the message gives the byte offset), an empty
        CSV file, a file pandas cannot parse with ``sep``, an invalid Parquet file, or unknown
        ``columns``.
    """
    p = existing_file(path)
    if columns is not None:
        columns = list(columns)
        missing_columns(columns, table_columns(p, sep=sep, encoding=encoding), p)
        if not columns:
            raise DataFileError(f"{p}: columns=[] selects no column")
    if _is_parquet(p):
        return _read_parquet(p, columns, text)
    return _read_csv(p, sep=sep, encoding=encoding, header=header, text=text, usecols=columns)


# -- vectors in a table ----------------------------------------------------------------------------
def _check_lengths(lengths: np.ndarray, p: Path, col: str) -> None:
    if lengths.size == 0:
        return
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise DataFileError(f"{p}: column '{col}' row {int(empty[0])} is empty (no values)")
    bad = np.flatnonzero(lengths != lengths[0])
    if bad.size:
        i = int(bad[0])
        raise DataFileError(
            f"{p}: column '{col}' row {i} has {int(lengths[i])} values but row 0 has {int(lengths[0])}"
        )


def _first_unparsable(tokens, p: Path, col: str) -> DataFileError:
    for i, row in enumerate(tokens):
        for tok in row:
            try:
                float(tok)
            except ValueError:
                return DataFileError(f"{p}: column '{col}' row {i}: cannot parse {tok!r} as a number")
    raise AssertionError("np.array and float() disagree")  # pragma: no cover


def _parse_vector_strings(cells: list[str], p: Path, col: str) -> np.ndarray:
    """Parse cells such as ``"1 2 3"``, ``"1,2,3"`` or ``"[1.0, 2.0, 3.0]"`` into an (n, d) float32."""
    import pandas as pd

    n = len(cells)
    if n == 0:
        return np.empty((0, 0), dtype=np.float32)
    s = pd.Series(cells, dtype=object).astype(str).str.strip()
    s = s.str.replace(r"^\[", "", regex=True).str.replace(r"\]$", "", regex=True)
    tokens = s.str.replace(",", " ", regex=False).str.split()
    lengths = tokens.str.len().to_numpy()
    _check_lengths(lengths, p, col)
    d = int(lengths[0])
    try:
        vals = np.array(list(itertools.chain.from_iterable(tokens)), dtype=np.float32)
    except ValueError:
        raise _first_unparsable(tokens, p, col) from None
    return vals.reshape(n, d)


def _first_null_row(arr, p: Path, col: str) -> None:
    if arr.null_count:
        i = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataFileError(f"{p}: column '{col}' row {i} is null")


def _arrow_vector_column(arr, p: Path, col: str) -> np.ndarray:
    """Convert an Arrow list / fixed-size-list / string array into an (n, d) float32 matrix."""
    import pyarrow as pa

    typ = arr.type
    n = len(arr)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        _first_null_row(arr, p, col)
        return _parse_vector_strings(arr.to_pylist(), p, col)
    if not (pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)):
        raise DataFileError(f"{p}: column '{col}' has type {typ}; expected a list of numbers or a string column")
    if not _arrow_is_numeric(typ.value_type):
        raise DataFileError(f"{p}: column '{col}' holds lists of {typ.value_type}; expected numbers")
    _first_null_row(arr, p, col)
    if n == 0:
        d = typ.list_size if pa.types.is_fixed_size_list(typ) else 0
        return np.empty((0, d), dtype=np.float32)
    if pa.types.is_fixed_size_list(typ):
        lengths = np.full(n, typ.list_size, dtype=np.int64)
    else:
        lengths = arr.value_lengths().to_numpy(zero_copy_only=False)
    _check_lengths(lengths, p, col)
    d = int(lengths[0])
    values = arr.flatten().to_numpy(zero_copy_only=False)  # nulls inside lists become NaN
    return np.asarray(values, dtype=np.float32).reshape(n, d)


def _arrow_is_numeric(t) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _numeric_columns_matrix(df, columns: list[str], p: Path) -> np.ndarray:
    """The ``columns`` of a pandas frame as an (n, len(columns)) float32 matrix (NaN where missing)."""
    import pandas as pd

    out = np.empty((len(df), len(columns)), dtype=np.float32)
    for j, c in enumerate(columns):
        ser = df[c]
        if not pd.api.types.is_numeric_dtype(ser):
            coerced = pd.to_numeric(ser, errors="coerce")
            bad = np.flatnonzero((coerced.isna() & ser.notna()).to_numpy())
            where = f"; first non-numeric value {ser.iloc[int(bad[0])]!r} at row {int(bad[0])}" if bad.size else ""
            raise DataFileError(f"{p}: column '{c}' is not numeric (dtype {ser.dtype}){where}")
        out[:, j] = ser.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _read_csv_vectors(p: Path, columns, vector_column) -> np.ndarray:
    import pandas as pd

    if vector_column is not None:
        df = read_table(p, columns=[vector_column], text=True)
        return _parse_vector_strings(df[vector_column].tolist(), p, vector_column)
    df = read_table(p, columns=columns)
    df.columns = [str(c) for c in df.columns]
    if columns is None:
        columns = [c for c in df.columns
                   if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if not columns:
            if len(df.columns) == 1:
                col = df.columns[0]
                return _parse_vector_strings(read_table(p, text=True)[col].tolist(), p, col)
            raise DataFileError(f"{p}: no numeric columns among {list(df.columns)}; pass columns=[...] or "
                                f"vector_column=...")
    return _numeric_columns_matrix(df, list(columns), p)


def _read_arrow(p: Path, cols: list[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(p, columns=cols)
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(f"{p}: cannot read Parquet file ({exc})") from None


def _parquet_numeric_columns(p: Path, schema, columns) -> list[str] | None:
    """The numeric columns to read (checked), or None when the file's only column holds whole vectors."""
    available = list(schema.names)
    if columns is None:
        columns = [nm for nm in available if _arrow_is_numeric(schema.field(nm).type)]
        if not columns:
            if len(available) == 1:
                return None
            raise DataFileError(f"{p}: no numeric columns among {available}; pass columns=[...] or vector_column=...")
        return columns
    missing_columns(list(columns), available, p)
    if not columns:
        raise DataFileError(f"{p}: columns=[] selects no column")
    for c in columns:
        t = schema.field(c).type
        if not _arrow_is_numeric(t):
            raise DataFileError(f"{p}: column '{c}' is not numeric (type {t})")
    return list(columns)


def _read_parquet_vectors(p: Path, columns, vector_column) -> np.ndarray:
    schema = _parquet_schema(p)
    if vector_column is not None:
        missing_columns([vector_column], list(schema.names), p)
    elif (columns := _parquet_numeric_columns(p, schema, columns)) is None:
        vector_column = schema.names[0]
    if vector_column is not None:
        arr = _read_arrow(p, [vector_column]).column(vector_column).combine_chunks()
        return _arrow_vector_column(arr, p, vector_column)
    table = _read_arrow(p, columns)
    out = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    for j, c in enumerate(columns):
        out[:, j] = table.column(c).to_numpy()  # nulls become NaN (ints with nulls come back as float64)
    return out


def read_table_vectors(
    path: str | os.PathLike,
    columns: list[str] | None = None,
    vector_column: str | None = None,
) -> np.ndarray:
    """Read vectors from a CSV or Parquet table.

    Two layouts are understood:

    * one numeric column per dimension: ``columns`` selects them (in that order); when both
      ``columns`` and ``vector_column`` are None, every numeric (integer or float, not bool) column is
      used in file order -- other columns such as string ids are skipped;
    * one column holding whole vectors (``vector_column``): a Parquet ``list`` / ``large_list`` /
      ``fixed_size_list`` of numbers, or text cells of space- or comma-separated numbers, optionally
      in brackets as in JSON (``"0.5 1 2"``, ``"0.5,1,2"``, ``"[0.5, 1, 2]"``). When no numeric column
      exists and the table has exactly one column, that column is used as the vector column.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv``, ``.parquet`` or ``.pq`` file. CSV files must have a header row.
    columns : list of str, optional
        Numeric columns to use, one per dimension.
    vector_column : str, optional
        Column holding one vector per row. Mutually exclusive with ``columns``.

    Returns
    -------
    X : ndarray, shape (n_rows, d), dtype float32
        Missing numeric cells become NaN (not checked here; :func:`~hashlearn.io.readers.read_vectors`
        checks them).

    Raises
    ------
    DataFileError
        Missing / unparsable file, unknown column (the message lists the available ones),
        non-numeric column, null or empty vector cell, vectors of different lengths, or a token that
        is not a number. Row numbers in messages are 0-based data rows (the header is not counted).
    ValidationError
        If both ``columns`` and ``vector_column`` are given.
    """
    if columns is not None and vector_column is not None:
        raise ValidationError("read_table_vectors: pass either columns or vector_column, not both")
    if isinstance(columns, str):
        columns = [columns]
    p = existing_file(path)
    ext = extension(p)
    if ext == ".csv":
        return _read_csv_vectors(p, columns, vector_column)
    if ext in _PARQUET_EXTENSIONS:
        return _read_parquet_vectors(p, columns, vector_column)
    raise DataFileError(f"{p}: unsupported table extension '{ext}'; expected .csv, .parquet or .pq")
