"""TEXMEX ``.fvecs`` / ``.ivecs`` / ``.bvecs`` (the SIFT1M / GIST1M / SIFT1B format), read and written.

Every record is a little-endian ``int32`` dimension ``d`` followed by ``d`` values (``float32`` /
``int32`` / ``uint8``). Readers memory-map by default; writers replace the file atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.errors import DataFileError, ValidationError

from .files import existing_file
from .validation import describe_kind, first_nonfinite, nonfinite_message

__all__ = ["read_fvecs", "read_ivecs", "read_bvecs", "write_fvecs", "write_ivecs", "write_bvecs"]

# Value dtype of each TEXMEX flavour (always little-endian on disk).
_VECS_DTYPES = {
    "fvecs": np.dtype("<f4"),
    "ivecs": np.dtype("<i4"),
    "bvecs": np.dtype("u1"),
}

# Records per chunk in header checks; elements per chunk in writers.
_HEADER_CHUNK_ROWS = 1 << 20
_WRITE_CHUNK_ELEMS = 1 << 22


# -- reading ---------------------------------------------------------------------------------------
def _read_int32_at(p: Path, offset: int) -> int:
    with open(p, "rb") as fh:
        fh.seek(offset)
        return int(np.frombuffer(fh.read(4), dtype="<i4")[0])


def _record_layout(p: Path, kind: str, vdt: np.dtype) -> tuple[int, int, int]:
    """``(size in bytes, dimension d, bytes per record)`` from the first record's header."""
    size = p.stat().st_size
    if size == 0:
        raise DataFileError(f"{p}: file is empty (no records)")
    if size < 4:
        raise DataFileError(f"{p}: truncated: {size} bytes is too short for the 4-byte dimension of record 0")
    d = _read_int32_at(p, 0)
    if d <= 0:
        raise DataFileError(
            f"{p}: record 0 declares invalid dimension {d} (expected a positive int32); "
            f"is this really a .{kind} file?"
        )
    rec = 4 + d * vdt.itemsize
    if rec > size:
        raise DataFileError(
            f"{p}: truncated: record 0 declares dimension {d} ({rec} bytes per record) "
            f"but the file has only {size} bytes"
        )
    return size, d, rec


def _check_record_headers(p: Path, raw: np.ndarray, d: int) -> None:
    """Every record of the ``(n, rec)`` byte view declares dimension ``d`` (scanned in chunks)."""
    n = raw.shape[0]
    for start in range(0, n, _HEADER_CHUNK_ROWS):
        heads = np.ascontiguousarray(raw[start : start + _HEADER_CHUNK_ROWS, :4]).view("<i4").ravel()
        bad = np.flatnonzero(heads != d)
        if bad.size:
            i = int(bad[0])
            raise DataFileError(f"{p}: record {start + i} declares dimension {int(heads[i])} but record 0 declares {d}")


def _refuse_tail(p: Path, kind: str, vdt: np.dtype, size: int, d: int, rec: int) -> None:
    """A file whose size is not a whole number of records: name the record that does not fit."""
    n = size // rec
    tail = size - n * rec
    if tail >= 4:
        d_last = _read_int32_at(p, n * rec)
        if d_last != d and 4 + d_last * vdt.itemsize == tail:
            raise DataFileError(f"{p}: record {n} declares dimension {d_last} but record 0 declares {d}")
    raise DataFileError(
        f"{p}: truncated: file size {size} bytes is not a multiple of the record size "
        f"{rec} bytes (dimension {d}); record {n} is incomplete ({tail} trailing bytes)"
    )


def _read_vecs(path: str | os.PathLike, kind: str, mmap: bool, check_headers: bool) -> np.ndarray:
    p = existing_file(path)
    vdt = _VECS_DTYPES[kind]
    try:
        size, d, rec = _record_layout(p, kind, vdt)
        n = size // rec
        raw = np.memmap(p, dtype=np.uint8, mode="r", shape=(n, rec))
        if check_headers:
            _check_record_headers(p, raw, d)
        if size != n * rec:
            _refuse_tail(p, kind, vdt, size, d, rec)
        # Reinterpret the mapped bytes as (n, header + d) values and drop the header column.
        if kind == "bvecs":
            view = raw[:, 4:]
        else:
            del raw
            view = np.memmap(p, dtype=vdt, mode="r", shape=(n, d + 1))[:, 1:]
        if mmap:
            return view
        # One copy straight from the page cache into a new native-endian C-contiguous array.
        return np.array(view, dtype=vdt.newbyteorder("="), order="C", subok=False)
    except DataFileError:
        raise
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{p}: cannot read .{kind} file ({exc})") from None


def read_fvecs(path: str | os.PathLike, mmap: bool = True, *, check_headers: bool = True) -> np.ndarray:
    """Read a TEXMEX ``.fvecs`` file (records of int32 ``d`` followed by ``d`` float32 values).

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    mmap : bool, default True
        If True, return a read-only view of a :class:`numpy.memmap` (not C-contiguous: the dimension
        headers are skipped by striding); nothing but the headers is read. If False, read the file
        into a new C-contiguous array.
    check_headers : bool, default True
        Check that every record declares the same dimension. This touches every page of the file
        (the headers are spread over it); pass False to skip it for huge files you trust.

    Returns
    -------
    X : ndarray, shape (n, d), dtype float32

    Raises
    ------
    DataFileError
        If the file is missing, empty or unreadable, declares a non-positive dimension, has records
        of different dimensions (the message names the first offending record), or is truncated
        (its size is not a multiple of the record size ``4 + 4 d``).
    """
    return _read_vecs(path, "fvecs", mmap, check_headers)


def read_ivecs(path: str | os.PathLike, mmap: bool = True, *, check_headers: bool = True) -> np.ndarray:
    """Read a TEXMEX ``.ivecs`` file (records of int32 ``d`` followed by ``d`` int32 values), e.g.
    ground-truth neighbour ids ``*_groundtruth.ivecs``.

    Parameters and errors as :func:`read_fvecs`; returns an ndarray of shape (n, d), dtype int32.
    """
    return _read_vecs(path, "ivecs", mmap, check_headers)


def read_bvecs(path: str | os.PathLike, mmap: bool = True, *, check_headers: bool = True) -> np.ndarray:
    """Read a TEXMEX ``.bvecs`` file (records of int32 ``d`` followed by ``d`` uint8 values), e.g. SIFT1B
    ``bigann_base.bvecs``.

    Parameters and errors as :func:`read_fvecs` (record size ``4 + d``); returns an ndarray of shape
    (n, d), dtype uint8.
    """
    return _read_vecs(path, "bvecs", mmap, check_headers)


# -- writing ---------------------------------------------------------------------------------------
def _check_integral_data(A: np.ndarray, name: str, kind: str, vdt: np.dtype) -> None:
    """Integer formats: float data must be finite and integral, and every value must fit ``vdt``."""
    if A.dtype.kind == "f":
        bad = first_nonfinite(A)
        if bad is not None:
            raise ValidationError(nonfinite_message(name + " (data to write)", *bad))
        frac = np.flatnonzero(np.any(A != np.round(A), axis=1))
        if frac.size:
            raise ValidationError(
                f"{name}: data to write has non-integer values at row {int(frac[0])}; .{kind} stores integers"
            )
    lo, hi = np.iinfo(vdt).min, np.iinfo(vdt).max
    if A.dtype.kind != "b":
        out_of_range = np.flatnonzero(np.any((A < lo) | (A > hi), axis=1))
        if out_of_range.size:
            raise ValidationError(
                f"{name}: data to write has values outside [{lo}, {hi}] at row "
                f"{int(out_of_range[0])}; .{kind} stores {vdt}"
            )


def _data_to_write(X: Any, name: str, kind: str, vdt: np.dtype) -> np.ndarray:
    A = np.asarray(X)
    problem = describe_kind(A.dtype)
    if problem is not None:
        raise ValidationError(f"{name}: data to write {problem}")
    if A.ndim != 2:
        raise ValidationError(f"{name}: data to write must be 2-D, got shape {A.shape}")
    n, d = A.shape
    if n == 0 or d == 0:
        raise ValidationError(f"{name}: cannot write an empty array (shape {A.shape}) as .{kind}")
    if d > np.iinfo(np.int32).max:
        raise ValidationError(f"{name}: dimension {d} does not fit in an int32 header")
    if vdt.kind in "iu":
        _check_integral_data(A, name, kind, vdt)
    return A


def _write_records(fh, A: np.ndarray, vdt: np.dtype) -> None:
    """Write ``A`` as records (int32 header + values) in chunks of about 4M elements."""
    n, d = A.shape
    rec = 4 + d * vdt.itemsize
    header = np.array([d], dtype="<i4").view(np.uint8)
    step = max(1, _WRITE_CHUNK_ELEMS // d)
    for start in range(0, n, step):
        blk = A[start : start + step]
        buf = np.empty((blk.shape[0], rec), dtype=np.uint8)
        buf[:, :4] = header
        with np.errstate(over="ignore", invalid="ignore"):
            vals = np.ascontiguousarray(blk, dtype=vdt)
        buf[:, 4:] = vals.view(np.uint8).reshape(blk.shape[0], -1)
        fh.write(memoryview(buf).cast("B"))


def _write_vecs(path: str | os.PathLike, X: Any, kind: str) -> None:
    from hashlearn.io.persist import atomic_write

    vdt = _VECS_DTYPES[kind]
    name = os.fspath(path)
    A = _data_to_write(X, name, kind, vdt)
    parent = Path(name).parent
    if not parent.is_dir():
        raise DataFileError(f"{name}: cannot write .{kind} file (folder {parent} does not exist)")
    try:
        atomic_write(name, lambda fh: _write_records(fh, A, vdt))  # a failed write leaves an existing file untouched
    except OSError as exc:
        raise DataFileError(f"{name}: cannot write .{kind} file ({exc})") from None


def write_fvecs(path: str | os.PathLike, X: Any) -> None:
    """Write a matrix as a TEXMEX ``.fvecs`` file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, replaced atomically (a failed write leaves an existing file intact).
    X : array_like, shape (n, d)
        Numeric data, converted to float32 (little-endian). Must be non-empty.

    Raises
    ------
    ValidationError
        If ``X`` is not a non-empty 2-D numeric array.
    DataFileError
        If the file cannot be written.
    """
    _write_vecs(path, X, "fvecs")


def write_ivecs(path: str | os.PathLike, X: Any) -> None:
    """Write a matrix as a TEXMEX ``.ivecs`` file of int32 values (floats must be finite and integral).

    Parameters and errors as :func:`write_fvecs`; values outside the int32 range or non-integral are a
    :class:`~hashlearn.errors.ValidationError`.
    """
    _write_vecs(path, X, "ivecs")


def write_bvecs(path: str | os.PathLike, X: Any) -> None:
    """Write a matrix as a TEXMEX ``.bvecs`` file of uint8 values in ``[0, 255]`` (floats must be finite
    and integral).

    Parameters and errors as :func:`write_fvecs`; values outside ``[0, 255]`` or non-integral are a
    :class:`~hashlearn.errors.ValidationError`.
    """
    _write_vecs(path, X, "bvecs")
