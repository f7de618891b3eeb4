"""Files of a blocking run: record tables and true links in, candidate pairs out.

Tables are read by the library's one table reader, :func:`hashlearn.io.readers.read_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ...errors import DataFileError, ValidationError
from ...io.readers import read_table as _read_any_table
from .records import RecordTable

__all__ = ["read_table", "read_truth", "write_pairs"]


def read_table(path, *, sep: str = ",", encoding: str = "utf-8"):
    """Read a CSV (any separator) or Parquet file of records, every CSV cell as text.

    No type guessing, so ids ``"007"`` stay ``"007"``; empty CSV cells are ``""`` (missing Parquet cells
    ``None``); :func:`prepare_table` treats both as missing. This is
    :func:`hashlearn.io.readers.read_table` with ``text=True``.

    Raises
    ------
    DataFileError
        Missing, unreadable, non-UTF-8 (the message gives the byte offset) or malformed file.
    """
    return _read_any_table(path, sep=sep, encoding=encoding, text=True)


def _positions(ids: list[str], pos: dict) -> np.ndarray:
    return np.array([pos.get(x, -1) for x in ids], dtype=np.int64)


def read_truth(path, left: RecordTable, right: RecordTable | None = None, *, sep: str = ",") -> np.ndarray:
    """True links of a two-column file (left id, right id; a header line is allowed) as positions.

    Returns
    -------
    pairs : ndarray of shape (m, 2), int64
        Positions in ``left`` and ``right`` (``left`` again for deduplication, then ``i < j``), unique.

    Raises
    ------
    DataFileError
        The file is unreadable or has fewer than two columns.
    ValidationError
        Some ids are not in the tables (the message counts them and shows a few).
    """
    p = Path(path)
    df = _read_any_table(p, sep=sep, text=True, header=False)
    if df.shape[1] < 2:
        raise DataFileError(f"{p}: a truth file needs two columns (left id, right id), found {df.shape[1]} "
                            f"with separator {sep!r}")
    lpos = {k: i for i, k in enumerate(left.ids)}
    rpos = lpos if right is None else {k: i for i, k in enumerate(right.ids)}
    a_ids = df.iloc[:, 0].astype(str).str.strip().tolist()
    b_ids = df.iloc[:, 1].astype(str).str.strip().tolist()
    if a_ids and (a_ids[0] not in lpos or b_ids[0] not in rpos):  # a header line
        a_ids, b_ids = a_ids[1:], b_ids[1:]
    a, b = _positions(a_ids, lpos), _positions(b_ids, rpos)
    bad = (a < 0) | (b < 0)
    if bad.any():
        ex = [f"({a_ids[i]}, {b_ids[i]})" for i in np.flatnonzero(bad)[:3]]
        raise ValidationError(f"{p}: {int(bad.sum())} of {len(a)} true links name ids that are not in the "
                              f"tables, e.g. {', '.join(ex)}")
    pairs = np.stack([a, b], axis=1)
    if right is None:
        pairs = np.sort(pairs, axis=1)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)


_PAIR_COLUMNS = ("left_id", "right_id", "blocker")


def _write_parquet_pairs(fh, chunks, left_ids: np.ndarray, right_ids: np.ndarray) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.string()) for c in _PAIR_COLUMNS])
    n = 0
    with pq.ParquetWriter(fh, schema) as w:
        for pairs, label in chunks:
            cols = (left_ids[pairs[:, 0]].astype(str), right_ids[pairs[:, 1]].astype(str), [label] * pairs.shape[0])
            w.write_table(pa.table(dict(zip(_PAIR_COLUMNS, cols)), schema=schema))
            n += pairs.shape[0]
    return n


def _write_csv_pairs(fh, chunks, left_ids: np.ndarray, right_ids: np.ndarray) -> int:
    import csv
    import io

    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    w = csv.writer(text)
    w.writerow(_PAIR_COLUMNS)
    n = 0
    for pairs, label in chunks:
        w.writerows(zip(left_ids[pairs[:, 0]], right_ids[pairs[:, 1]], [label] * pairs.shape[0]))
        n += pairs.shape[0]
    text.flush()
    text.detach()
    return n


def write_pairs(path, chunks: Sequence[tuple[np.ndarray, str]] | Iterator, left: RecordTable,
                right: RecordTable | None = None) -> int:
    """Write ``(pairs, blocker)`` chunks to CSV (``left_id,right_id,blocker``) or Parquet, atomically,
    one chunk at a time; returns the number of rows written."""
    from ...io.persist import atomic_write

    p = Path(path)
    writer = _write_parquet_pairs if p.suffix.lower() in (".parquet", ".pq") else _write_csv_pairs
    other = left if right is None else right
    written = []
    atomic_write(p, lambda fh: written.append(writer(fh, chunks, left.ids, other.ids)))
    return written[0]
