"""Records prepared for blocking: the chosen text fields of a table, cleaned, with missing cells counted."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...errors import ValidationError

__all__ = ["RecordTable", "prepare_table"]


@dataclass(eq=False, repr=False)
class RecordTable:
    """Text fields of a table of records, cleaned for blocking.

    Attributes
    ----------
    ids : ndarray of shape (n,), object
        Record ids as strings (the table's id column or index).
    fields : list of str
        The fields used for blocking, in order.
    values : dict of str to list of str
        Cleaned text of every field (missing cells are ``""``).
    n_missing : dict of str to int
        Missing or empty cells per field.
    name : str
        A label for messages (``"left"``, ``"right"`` or a file name).
    """

    ids: np.ndarray
    fields: list
    values: dict
    n_missing: dict
    name: str = "table"
    _texts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def texts(self, fields: Sequence[str] | None = None) -> list[str]:
        """One string per record: the non-empty values of ``fields`` (default: all) joined by spaces."""
        fields = list(self.fields if fields is None else fields)
        missing = [f for f in fields if f not in self.values]
        if missing:
            raise ValidationError(f"{self.name}: unknown field(s) {missing}; prepared fields are {self.fields}")
        key = tuple(fields)
        if key not in self._texts:
            cols = [self.values[f] for f in fields]
            self._texts[key] = [" ".join(v for v in vals if v) for vals in zip(*cols)]
        return self._texts[key]

    @property
    def n_empty(self) -> int:
        """Records whose blocking fields are all empty (they get no token/embedding candidates)."""
        return int(sum(1 for t in self.texts() if not t))

    def __repr__(self) -> str:
        return f"RecordTable({self.name!r}, n={len(self)}, fields={self.fields}, n_empty={self.n_empty})"


def _is_pandas_missing(v) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return False
    return v is pd.NA or v is pd.NaT


def _clean_cell(v) -> str:
    """A cell as stripped text; missing cells (None, NaN, NA, NaT) are ``""``, whole floats lose ``.0``."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ValidationError(f"a cell holds bytes that are not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if (isinstance(v, float) and v != v) or _is_pandas_missing(v):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # a float column read from CSV (7.0 -> "7")
    return str(v).strip()


def _record_ids(data, id_col: str | None, cols: list[str], name: str) -> np.ndarray:
    """Record ids as cleaned strings (the id column or the index); empty or duplicate ids are refused."""
    if id_col is not None and id_col not in cols:
        raise ValidationError(f"{name}: no id column {id_col!r}; columns are {cols}")
    raw = data[id_col] if id_col is not None else data.index.to_series()
    ids = np.array([_clean_cell(v) for v in raw], dtype=object)
    if any(i == "" for i in ids):
        raise ValidationError(f"{name}: {sum(i == '' for i in ids)} record(s) have an empty id")
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise ValidationError(f"{name}: duplicate ids, e.g. {uniq[counts > 1][:3].tolist()}")
    return ids


def _blocking_fields(fields, cols: list[str], id_col: str | None, name: str) -> list[str]:
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    if fields is None:
        fields = [c for c in cols if c != id_col]
    fields = list(fields)
    if not fields:
        raise ValidationError(f"{name}: no fields to block on")
    missing = [f for f in fields if f not in cols]
    if missing:
        raise ValidationError(f"{name}: missing field(s) {missing}; columns are {cols}")
    return fields


def _clean_field(data, f: str, name: str, lowercase: bool) -> list[str]:
    try:
        vals = [_clean_cell(v) for v in data[f].tolist()]
    except ValidationError as exc:
        raise ValidationError(f"{name}: field {f!r}: {exc}") from None
    return [v.lower() for v in vals] if lowercase else vals


def prepare_table(data, *, fields: Sequence[str] | str | None = None, id_col: str | None = None,
                  name: str = "table", lowercase: bool = True) -> RecordTable:
    """Select and clean the blocking fields of a table.

    Parameters
    ----------
    data : pandas.DataFrame, or path to a CSV/Parquet file (read with :func:`read_table`)
    fields : list of str or comma-separated str, optional
        Fields to block on; default: every column except ``id_col``.
    id_col : str, optional
        Column holding record ids; default: the DataFrame index.
    name : str
        Label used in messages.
    lowercase : bool, default True
        Lower-case all text (the token blockers are case sensitive otherwise).

    Returns
    -------
    RecordTable

    Raises
    ------
    ValidationError
        Unknown field or id column (the message lists the columns), an empty table, duplicate ids, or
        a cell holding bytes that are not UTF-8.
    """
    import pandas as pd

    if isinstance(data, (str, os.PathLike)):
        from .tables import read_table

        name = str(data) if name == "table" else name
        data = read_table(data)
    if not isinstance(data, pd.DataFrame):
        raise ValidationError(f"{name}: expected a pandas DataFrame or a file path, got {type(data).__name__}")
    if len(data) == 0:
        raise ValidationError(f"{name}: the table has no records")
    cols = [str(c) for c in data.columns]
    data = data.set_axis(cols, axis=1)
    ids = _record_ids(data, id_col, cols, name)
    fields = _blocking_fields(fields, cols, id_col, name)
    values = {f: _clean_field(data, f, name, lowercase) for f in fields}
    n_missing = {f: sum(1 for v in vals if not v) for f, vals in values.items()}
    return RecordTable(ids=ids, fields=fields, values=values, n_missing=n_missing, name=name)
