"""Readers and writers for vector data files, and input validation.

Supported formats
-----------------
* TEXMEX ``.fvecs`` / ``.ivecs`` / ``.bvecs`` (the SIFT1M / GIST1M / SIFT1B format): every record is a
  little-endian ``int32`` dimension ``d`` followed by ``d`` values (``float32`` / ``int32`` / ``uint8``).
* NumPy ``.npy``.
* HDF5 files in the `ann-benchmarks <https://github.com/erikbern/ann-benchmarks>`_ layout
  (datasets ``train``, ``test``, ``neighbors``, ``distances`` and a ``distance`` attribute).
* CSV and Parquet tables, either one numeric column per dimension or one column holding whole vectors.

Every reader raises :class:`~hashlearn.errors.DataFileError` when a file is missing, unreadable or
malformed, and :func:`check_vectors` / :func:`read_vectors` raise :class:`~hashlearn.errors.ValidationError`
for bad arrays (NaN/inf, wrong ndim, non-numeric dtype, empty). Messages always start with the file (or
array) name, followed by the problem, e.g. ``"base.fvecs: record 3 declares dimension 129 but record 0
declares 128"`` or ``"x.npy: contains NaN at row 17 (column 2)"``.

The low-level readers (``read_fvecs``, ``read_npy``, ``read_ann_hdf5``, ``read_table_vectors``) check the
*structure* of the file only and return the values as stored; :func:`read_vectors` additionally checks
the values (finite, 2-D, non-empty) unless ``validate=False``.

Only numpy is imported at module level; h5py, pandas and pyarrow are imported when first needed.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.errors import DataFileError, ValidationError

__all__ = [
    "read_fvecs",
    "read_ivecs",
    "read_bvecs",
    "write_fvecs",
    "write_ivecs",
    "write_bvecs",
    "read_npy",
    "read_ann_hdf5",
    "read_table_vectors",
    "read_vectors",
    "read_labels",
    "check_vectors",
    "SUPPORTED_EXTENSIONS",
]

#: File extensions understood by :func:`read_vectors` (lower case).
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".npy",
    ".fvecs",
    ".ivecs",
    ".bvecs",
    ".h5",
    ".hdf5",
    ".csv",
    ".parquet",
    ".pq",
)

_LABEL_EXTENSIONS: tuple[str, ...] = (".npy", ".ivecs", ".csv", ".txt")

# Value dtype of each TEXMEX flavour (always little-endian on disk).
_VECS_DTYPES = {
    "fvecs": np.dtype("<f4"),
    "ivecs": np.dtype("<i4"),
    "bvecs": np.dtype("u1"),
}

# Elements scanned per chunk by the finiteness check and records per chunk in header checks / writers.
_CHUNK_ELEMS = 1 << 22
_HEADER_CHUNK_ROWS = 1 << 20

_ANN_KEYS = ("train", "test", "neighbors", "distances")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _existing_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a :class:`Path`, raising DataFileError unless it is an existing regular file."""
    try:
        p = Path(os.fspath(path))
    except TypeError as exc:
        raise DataFileError(f"{path!r}: not a valid file path ({exc})") from None
    if not p.exists():
        raise DataFileError(f"{p}: no such file")
    if not p.is_file():
        raise DataFileError(f"{p}: not a regular file")
    return p


def _ext(p: Path) -> str:
    return p.suffix.lower()


def _describe_kind(dtype: np.dtype) -> str | None:
    """Return a description of why ``dtype`` is not a numeric dtype, or None if it is numeric."""
    kind = dtype.kind
    if kind in "biuf":
        return None
    if kind == "O":
        return "has dtype object; expected a numeric array (are there strings, None or ragged rows?)"
    if kind in "US":
        return f"has string dtype {dtype}; expected a numeric array"
    if kind == "c":
        return f"has complex dtype {dtype}; expected a real numeric array"
    if kind == "V":
        return f"has structured/void dtype {dtype}; expected a plain numeric array"
    if kind in "mM":
        return f"has datetime/timedelta dtype {dtype}; expected a numeric array"
    return f"has unsupported dtype {dtype}; expected a numeric array"


def _first_nonfinite(X: np.ndarray) -> tuple[int, int, float] | None:
    """Locate the first non-finite entry of a 2-D float array, scanning in row chunks.

    Returns ``(row, column, value)`` or ``None`` when every entry is finite. Integer and bool arrays are
    always finite and are not scanned.
    """
    if X.dtype.kind not in "fc" or X.size == 0:
        return None
    n, d = X.shape
    step = max(1, _CHUNK_ELEMS // max(d, 1))
    for start in range(0, n, step):
        blk = X[start : start + step]
        fin = np.isfinite(blk)
        if not fin.all():
            r = int(np.flatnonzero(~fin.all(axis=1))[0])
            c = int(np.flatnonzero(~fin[r])[0])
            return start + r, c, float(blk[r, c])
    return None


def _nonfinite_message(name: str, row: int, col: int, value: float) -> str:
    what = "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
    return f"{name}: contains {what} at row {row} (column {col})"


def _validate_matrix(X: np.ndarray, name: str, allow_empty: bool = False) -> None:
    """Check numeric dtype, ndim == 2, non-empty and finite; raise ValidationError naming ``name``."""
    problem = _describe_kind(X.dtype)
    if problem is not None:
        raise ValidationError(f"{name}: {problem}")
    if X.ndim != 2:
        hint = " (use X.reshape(1, -1) for a single vector)" if X.ndim == 1 else ""
        raise ValidationError(
            f"{name}: expected a 2-D array of shape (n_samples, n_features), "
            f"got ndim={X.ndim} with shape {X.shape}{hint}"
        )
    if not allow_empty and (X.shape[0] == 0 or X.shape[1] == 0):
        raise ValidationError(f"{name}: is empty (shape {X.shape})")
    bad = _first_nonfinite(X)
    if bad is not None:
        raise ValidationError(_nonfinite_message(name, *bad))


# --------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------


def check_vectors(
    X: Any,
    name: str = "X",
    dtype: Any = np.float32,
    allow_empty: bool = False,
) -> np.ndarray:
    """Validate a matrix of vectors and return it as a C-contiguous array of ``dtype``.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
        Numeric (bool, integer or floating) data. Lists, memory maps and DataFrames are accepted.
    name : str, default "X"
        Name used at the start of error messages (e.g. a file name or ``"xq"``).
    dtype : numpy dtype or None, default np.float32
        Dtype of the result. ``None`` keeps the input's (numeric) dtype.
    allow_empty : bool, default False
        If False, an array with zero rows or zero columns is an error.

    Returns
    -------
    X : ndarray, shape (n_samples, n_features), dtype ``dtype``
        C-contiguous. The input object itself is returned (no copy) when it already is a C-contiguous
        ndarray of the requested dtype.

    Raises
    ------
    ValidationError
        If ``X`` cannot be converted to an array, has a non-numeric dtype (object, strings, complex,
        ...), is not 2-D, is empty (unless ``allow_empty``), or contains NaN/inf (the message gives
        the first bad row and column). A finite float64 value that overflows ``dtype`` (e.g. 1e39 to
        float32) is also reported.

    Notes
    -----
    The finiteness check is a single pass of :func:`numpy.isfinite` over row chunks of about 4M
    elements, so it needs no full-size temporary. Integer inputs are not scanned.
    """
    try:
        A = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{name}: cannot be converted to a numeric array ({exc})") from None
    _validate_matrix(A, name, allow_empty=allow_empty)  # dtype kind, ndim, empty, finite (input)
    target = A.dtype if dtype is None else np.dtype(dtype)
    if target.kind not in "biuf":
        raise ValidationError(f"{name}: requested dtype {target} is not a real numeric dtype")
    if A.dtype == target and A.flags.c_contiguous:
        return A
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(A, dtype=target)
    if target.kind == "f" and A.dtype.kind == "f" and target.itemsize < A.dtype.itemsize:
        bad = _first_nonfinite(out)
        if bad is not None:
            r, c, _ = bad
            raise ValidationError(
                f"{name}: value {float(A[r, c])!r} at row {r} (column {c}) overflows {target}"
            )
    return out


# --------------------------------------------------------------------------------------------------
# TEXMEX .fvecs / .ivecs / .bvecs
# --------------------------------------------------------------------------------------------------


def _read_vecs(path: str | os.PathLike, kind: str, mmap: bool, check_headers: bool) -> np.ndarray:
    p = _existing_file(path)
    vdt = _VECS_DTYPES[kind]
    try:
        size = p.stat().st_size
        if size == 0:
            raise DataFileError(f"{p}: file is empty (no records)")
        if size < 4:
            raise DataFileError(
                f"{p}: truncated: {size} bytes is too short for the 4-byte dimension of record 0"
            )
        with open(p, "rb") as fh:
            d = int(np.frombuffer(fh.read(4), dtype="<i4")[0])
        if d <= 0:
            raise DataFileError(
                f"{p}: record 0 declares invalid dimension {d} (expected a positive int32); "
                f"is this really a .{kind} file?"
            )
        rec = 4 + d * vdt.itemsize  # bytes per record
        if rec > size:
            raise DataFileError(
                f"{p}: truncated: record 0 declares dimension {d} ({rec} bytes per record) "
                f"but the file has only {size} bytes"
            )
        n = size // rec
        tail = size - n * rec
        raw = np.memmap(p, dtype=np.uint8, mode="r", shape=(n, rec))
        if check_headers:
            for start in range(0, n, _HEADER_CHUNK_ROWS):
                heads = np.ascontiguousarray(raw[start : start + _HEADER_CHUNK_ROWS, :4])
                heads = heads.view("<i4").ravel()
                bad = np.flatnonzero(heads != d)
                if bad.size:
                    i = int(bad[0])
                    raise DataFileError(
                        f"{p}: record {start + i} declares dimension {int(heads[i])} "
                        f"but record 0 declares {d}"
                    )
        if tail:
            if tail >= 4:
                with open(p, "rb") as fh:
                    fh.seek(n * rec)
                    d_last = int(np.frombuffer(fh.read(4), dtype="<i4")[0])
                if d_last != d and 4 + d_last * vdt.itemsize == tail:
                    raise DataFileError(
                        f"{p}: record {n} declares dimension {d_last} but record 0 declares {d}"
                    )
            raise DataFileError(
                f"{p}: truncated: file size {size} bytes is not a multiple of the record size "
                f"{rec} bytes (dimension {d}); record {n} is incomplete ({tail} trailing bytes)"
            )
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
    """Read a TEXMEX ``.ivecs`` file (records of int32 ``d`` followed by ``d`` int32 values).

    Parameters
    ----------
    path : str or os.PathLike
        File to read (e.g. ground-truth neighbour ids ``*_groundtruth.ivecs``).
    mmap : bool, default True
        Memory-map (strided read-only view) instead of reading into memory; see :func:`read_fvecs`.
    check_headers : bool, default True
        Check that every record declares the same dimension.

    Returns
    -------
    X : ndarray, shape (n, d), dtype int32

    Raises
    ------
    DataFileError
        Missing, empty, unreadable, inconsistent or truncated file; see :func:`read_fvecs`.
    """
    return _read_vecs(path, "ivecs", mmap, check_headers)


def read_bvecs(path: str | os.PathLike, mmap: bool = True, *, check_headers: bool = True) -> np.ndarray:
    """Read a TEXMEX ``.bvecs`` file (records of int32 ``d`` followed by ``d`` uint8 values).

    Parameters
    ----------
    path : str or os.PathLike
        File to read (e.g. SIFT1B ``bigann_base.bvecs``).
    mmap : bool, default True
        Memory-map (strided read-only view) instead of reading into memory; see :func:`read_fvecs`.
    check_headers : bool, default True
        Check that every record declares the same dimension.

    Returns
    -------
    X : ndarray, shape (n, d), dtype uint8

    Raises
    ------
    DataFileError
        Missing, empty, unreadable, inconsistent or truncated file (record size ``4 + d``).
    """
    return _read_vecs(path, "bvecs", mmap, check_headers)


def _write_vecs(path: str | os.PathLike, X: Any, kind: str) -> None:
    vdt = _VECS_DTYPES[kind]
    name = os.fspath(path)
    A = np.asarray(X)
    problem = _describe_kind(A.dtype)
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
        if A.dtype.kind == "f":
            bad = _first_nonfinite(A)
            if bad is not None:
                raise ValidationError(_nonfinite_message(name + " (data to write)", *bad))
            frac = np.flatnonzero(np.any(A != np.round(A), axis=1))
            if frac.size:
                raise ValidationError(
                    f"{name}: data to write has non-integer values at row {int(frac[0])}; "
                    f".{kind} stores integers"
                )
        lo, hi = np.iinfo(vdt).min, np.iinfo(vdt).max
        if A.dtype.kind != "b":
            out_of_range = np.flatnonzero(np.any((A < lo) | (A > hi), axis=1))
            if out_of_range.size:
                raise ValidationError(
                    f"{name}: data to write has values outside [{lo}, {hi}] at row "
                    f"{int(out_of_range[0])}; .{kind} stores {vdt}"
                )
    rec = 4 + d * vdt.itemsize
    header = np.array([d], dtype="<i4").view(np.uint8)
    step = max(1, _CHUNK_ELEMS // d)
    def write(fh) -> None:
        for start in range(0, n, step):
            blk = A[start : start + step]
            buf = np.empty((blk.shape[0], rec), dtype=np.uint8)
            buf[:, :4] = header
            with np.errstate(over="ignore", invalid="ignore"):
                vals = np.ascontiguousarray(blk, dtype=vdt)
            buf[:, 4:] = vals.view(np.uint8).reshape(blk.shape[0], -1)
            fh.write(memoryview(buf).cast("B"))

    from hashlearn.io.persist import atomic_write

    parent = Path(name).parent
    if not parent.is_dir():
        raise DataFileError(f"{name}: cannot write .{kind} file (folder {parent} does not exist)")
    try:
        atomic_write(name, write)  # a failed write leaves an existing file untouched
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
    """Write a matrix as a TEXMEX ``.ivecs`` file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, replaced atomically (a failed write leaves an existing file intact).
    X : array_like, shape (n, d)
        Integer-valued data in the int32 range (floats must be finite and integral).

    Raises
    ------
    ValidationError
        If ``X`` is not a non-empty 2-D numeric array, or has non-integer / out-of-range values.
    DataFileError
        If the file cannot be written.
    """
    _write_vecs(path, X, "ivecs")


def write_bvecs(path: str | os.PathLike, X: Any) -> None:
    """Write a matrix as a TEXMEX ``.bvecs`` file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, replaced atomically (a failed write leaves an existing file intact).
    X : array_like, shape (n, d)
        Integer-valued data in ``[0, 255]`` (floats must be finite and integral).

    Raises
    ------
    ValidationError
        If ``X`` is not a non-empty 2-D numeric array, or has non-integer / out-of-range values.
    DataFileError
        If the file cannot be written.
    """
    _write_vecs(path, X, "bvecs")


# --------------------------------------------------------------------------------------------------
# .npy
# --------------------------------------------------------------------------------------------------


def read_npy(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Read a NumPy ``.npy`` file (pickled object arrays are refused).

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    mmap : bool, default True
        If True, memory-map the file read-only (``mmap_mode="r"``); otherwise load it into memory.

    Returns
    -------
    X : ndarray
        The stored array, with its stored shape and dtype (no validation of the values; see
        :func:`read_vectors` / :func:`check_vectors`).

    Raises
    ------
    DataFileError
        If the file is missing, not a valid ``.npy`` file, truncated, or holds an object array.
    """
    p = _existing_file(path)
    try:
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        msg = str(exc)
        if "allow_pickle" in msg or "object" in msg.lower():
            raise DataFileError(
                f"{p}: holds a pickled object array, which is not supported ({exc})"
            ) from None
        raise DataFileError(f"{p}: not a valid or complete .npy file ({exc})") from None


# --------------------------------------------------------------------------------------------------
# HDF5 (ann-benchmarks layout)
# --------------------------------------------------------------------------------------------------


def _open_h5(p: Path):
    import h5py

    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise DataFileError(f"{p}: not an HDF5 file or unreadable ({exc})") from None


def _h5_dataset_names(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda nm, obj: names.append(nm) if isinstance(obj, h5py.Dataset) else None)
    return names


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _decode_attr(value.item())
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_ann_hdf5(path: str | os.PathLike) -> dict[str, Any]:
    """Read an HDF5 file in the ann-benchmarks layout.

    Parameters
    ----------
    path : str or os.PathLike
        HDF5 file with some of the datasets ``train``, ``test``, ``neighbors``, ``distances`` at the
        root, and optionally a ``distance`` attribute (e.g. ``"euclidean"``, ``"angular"``).

    Returns
    -------
    data : dict
        Holds the datasets that exist, loaded in memory with their stored dtypes:

        * ``"train"`` : ndarray, shape (n_train, d) -- the database (usually float32);
        * ``"test"`` : ndarray, shape (n_test, d) -- the queries;
        * ``"neighbors"`` : ndarray, shape (n_test, k) -- true neighbour ids into ``train`` (int);
        * ``"distances"`` : ndarray, shape (n_test, k) -- the matching distances;

        plus ``"distance"`` : str or None, the file's ``distance`` attribute (None when absent).

    Raises
    ------
    DataFileError
        If the file is missing or not HDF5, holds none of the four datasets, uses the sparse
        (``type="sparse"``) ann-benchmarks layout, or is inconsistent (``train``/``test`` of
        different dimensions, ``neighbors`` rows not matching ``test``, ``distances`` shape not
        matching ``neighbors``, neighbour ids outside ``[0, n_train)``).
    """
    p = _existing_file(path)
    import h5py

    with _open_h5(p) as f:
        kind = _decode_attr(f.attrs.get("type", "dense"))
        if kind == "sparse":
            raise DataFileError(
                f"{p}: uses the sparse ann-benchmarks layout (type='sparse'), which is not supported"
            )
        out: dict[str, Any] = {}
        for key in _ANN_KEYS:
            if key in f:
                obj = f[key]
                if not isinstance(obj, h5py.Dataset):
                    raise DataFileError(f"{p}: '{key}' is a group; expected a dataset")
                try:
                    out[key] = obj[()]
                except (OSError, ValueError, TypeError) as exc:
                    raise DataFileError(f"{p}: cannot read dataset '{key}' ({exc})") from None
        if not out:
            raise DataFileError(
                f"{p}: none of the ann-benchmarks datasets {list(_ANN_KEYS)} found; "
                f"the file holds {_h5_dataset_names(f)}"
            )
        dist = f.attrs.get("distance")
        out["distance"] = None if dist is None else str(_decode_attr(dist))

    for key in _ANN_KEYS:
        if key in out and out[key].ndim != 2:
            raise DataFileError(f"{p}: dataset '{key}' must be 2-D, has shape {out[key].shape}")
    if "train" in out and "test" in out and out["train"].shape[1] != out["test"].shape[1]:
        raise DataFileError(
            f"{p}: 'train' has dimension {out['train'].shape[1]} but 'test' has dimension "
            f"{out['test'].shape[1]}"
        )
    if "neighbors" in out:
        nb = out["neighbors"]
        if "test" in out and nb.shape[0] != out["test"].shape[0]:
            raise DataFileError(
                f"{p}: 'neighbors' has {nb.shape[0]} rows but 'test' has {out['test'].shape[0]}"
            )
        if "distances" in out and out["distances"].shape != nb.shape:
            raise DataFileError(
                f"{p}: 'distances' has shape {out['distances'].shape} but 'neighbors' has {nb.shape}"
            )
        if nb.dtype.kind not in "iu":
            raise DataFileError(f"{p}: 'neighbors' must hold integer ids, has dtype {nb.dtype}")
        if "train" in out and nb.size:
            n_train = out["train"].shape[0]
            bad = np.flatnonzero(np.any((nb < 0) | (nb >= n_train), axis=1))
            if bad.size:
                raise DataFileError(
                    f"{p}: 'neighbors' row {int(bad[0])} holds ids outside [0, {n_train})"
                )
    return out


def _read_hdf5_key(path: str | os.PathLike, key: str = "train") -> np.ndarray:
    p = _existing_file(path)
    import h5py

    with _open_h5(p) as f:
        obj = f.get(key)
        if not isinstance(obj, h5py.Dataset):
            raise DataFileError(
                f"{p}: no dataset '{key}'; the file holds {_h5_dataset_names(f)} (pass key=...)"
            )
        try:
            return obj[()]
        except (OSError, ValueError, TypeError) as exc:
            raise DataFileError(f"{p}: cannot read dataset '{key}' ({exc})") from None


# --------------------------------------------------------------------------------------------------
# CSV / Parquet
# --------------------------------------------------------------------------------------------------


def _table_format(p: Path) -> str:
    ext = _ext(p)
    if ext == ".csv":
        return "csv"
    if ext in (".parquet", ".pq"):
        return "parquet"
    raise DataFileError(f"{p}: unsupported table extension '{ext}'; expected .csv, .parquet or .pq")


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
    flat = list(itertools.chain.from_iterable(tokens))
    try:
        vals = np.array(flat, dtype=np.float32)
    except ValueError:
        for i, row in enumerate(tokens):
            for tok in row:
                try:
                    float(tok)
                except ValueError:
                    raise DataFileError(
                        f"{p}: column '{col}' row {i}: cannot parse {tok!r} as a number"
                    ) from None
        raise  # pragma: no cover - np.array and float() disagree
    return vals.reshape(n, d)


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


def _arrow_vector_column(arr, p: Path, col: str) -> np.ndarray:
    """Convert an Arrow list / fixed-size-list / string array into an (n, d) float32 matrix."""
    import pyarrow as pa

    typ = arr.type
    n = len(arr)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        if arr.null_count:
            i = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataFileError(f"{p}: column '{col}' row {i} is null")
        return _parse_vector_strings(arr.to_pylist(), p, col)
    if not (pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)):
        raise DataFileError(
            f"{p}: column '{col}' has type {typ}; expected a list of numbers or a string column"
        )
    vtype = typ.value_type
    if not (pa.types.is_integer(vtype) or pa.types.is_floating(vtype)):
        raise DataFileError(f"{p}: column '{col}' holds lists of {vtype}; expected numbers")
    if arr.null_count:
        i = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataFileError(f"{p}: column '{col}' row {i} is null")
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
        Missing numeric cells become NaN (not checked here; :func:`read_vectors` checks them).

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
    p = _existing_file(path)
    fmt = _table_format(p)
    if fmt == "csv":
        return _read_csv_vectors(p, columns, vector_column)
    return _read_parquet_vectors(p, columns, vector_column)


def _missing_columns(wanted: list[str], available: list[str], p: Path) -> None:
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataFileError(f"{p}: column(s) {missing} not found; available columns: {available}")


def _read_csv_vectors(p: Path, columns, vector_column) -> np.ndarray:
    import pandas as pd

    def _read(**kw):
        try:
            return pd.read_csv(p, **kw)
        except pd.errors.EmptyDataError:
            raise DataFileError(f"{p}: CSV file is empty (no header)") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
            raise DataFileError(f"{p}: cannot parse CSV ({exc})") from None

    available = [str(c) for c in _read(nrows=0).columns]
    if vector_column is not None:
        _missing_columns([vector_column], available, p)
        df = _read(usecols=[vector_column], dtype=str, keep_default_na=False)
        return _parse_vector_strings(df[vector_column].tolist(), p, vector_column)

    if columns is not None:
        _missing_columns(list(columns), available, p)
        if not columns:
            raise DataFileError(f"{p}: columns=[] selects no column")
    df = _read(usecols=list(columns) if columns is not None else None, float_precision="round_trip")
    df.columns = [str(c) for c in df.columns]
    if columns is None:
        numeric = [
            c for c in df.columns
            if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        ]
        if not numeric:
            if len(df.columns) == 1:
                col = df.columns[0]
                df1 = _read(dtype=str, keep_default_na=False)
                return _parse_vector_strings(df1[col].tolist(), p, col)
            raise DataFileError(
                f"{p}: no numeric columns among {list(df.columns)}; pass columns=[...] or "
                f"vector_column=..."
            )
        columns = numeric
    out = np.empty((len(df), len(columns)), dtype=np.float32)
    for j, c in enumerate(columns):
        ser = df[c]
        if not pd.api.types.is_numeric_dtype(ser):
            coerced = pd.to_numeric(ser, errors="coerce")
            bad = np.flatnonzero((coerced.isna() & ser.notna()).to_numpy())
            where = ""
            if bad.size:
                i = int(bad[0])
                where = f"; first non-numeric value {ser.iloc[i]!r} at row {i}"
            raise DataFileError(f"{p}: column '{c}' is not numeric (dtype {ser.dtype}){where}")
        out[:, j] = ser.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _read_parquet_vectors(p: Path, columns, vector_column) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(p)
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(f"{p}: not a valid Parquet file ({exc})") from None
    available = list(schema.names)

    def _read(cols):
        try:
            return pq.read_table(p, columns=cols)
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(f"{p}: cannot read Parquet file ({exc})") from None

    def _is_num(t) -> bool:
        return pa.types.is_integer(t) or pa.types.is_floating(t)

    if vector_column is not None:
        _missing_columns([vector_column], available, p)
        arr = _read([vector_column]).column(vector_column).combine_chunks()
        return _arrow_vector_column(arr, p, vector_column)

    if columns is None:
        columns = [nm for nm in available if _is_num(schema.field(nm).type)]
        if not columns:
            if len(available) == 1:
                col = available[0]
                arr = _read([col]).column(col).combine_chunks()
                return _arrow_vector_column(arr, p, col)
            raise DataFileError(
                f"{p}: no numeric columns among {available}; pass columns=[...] or vector_column=..."
            )
    else:
        _missing_columns(list(columns), available, p)
        if not columns:
            raise DataFileError(f"{p}: columns=[] selects no column")
        for c in columns:
            t = schema.field(c).type
            if not _is_num(t):
                raise DataFileError(f"{p}: column '{c}' is not numeric (type {t})")
    table = _read(list(columns))
    out = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    for j, c in enumerate(columns):
        col = table.column(c)
        vals = col.to_numpy()  # nulls become NaN (ints with nulls come back as float64)
        out[:, j] = vals
    return out


# --------------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------------


def read_vectors(path: str | os.PathLike, *, validate: bool = True, **kw: Any) -> np.ndarray:
    """Read a matrix of vectors, choosing the reader from the file extension.

    ========================  ==================================================  ===================
    extension                 reader (keyword arguments passed through ``kw``)    dtype
    ========================  ==================================================  ===================
    ``.npy``                  :func:`read_npy` (``mmap``)                         as stored
    ``.fvecs``                :func:`read_fvecs` (``mmap``, ``check_headers``)    float32
    ``.ivecs``                :func:`read_ivecs` (``mmap``, ``check_headers``)    int32
    ``.bvecs``                :func:`read_bvecs` (``mmap``, ``check_headers``)    uint8
    ``.h5`` / ``.hdf5``       dataset ``key`` (default ``"train"``)               as stored
    ``.csv``                  :func:`read_table_vectors` (``columns``,            float32
                              ``vector_column``)
    ``.parquet`` / ``.pq``    :func:`read_table_vectors`                          float32
    ========================  ==================================================  ===================

    Parameters
    ----------
    path : str or os.PathLike
        File to read (extension matched case-insensitively).
    validate : bool, default True
        Check that the result is a non-empty 2-D numeric array without NaN/inf (one chunked pass over
        float data; integer data is not scanned). The array is *not* converted or copied; use
        :func:`check_vectors` for a C-contiguous float32 copy.
    **kw
        Passed to the reader; a keyword the reader does not take raises ``TypeError``.

    Returns
    -------
    X : ndarray, shape (n, d)
        Possibly a read-only memory map (``.npy``, ``*vecs`` with ``mmap=True``).

    Raises
    ------
    DataFileError
        Unknown extension (the message lists the supported ones), or any reader error.
    ValidationError
        If ``validate`` and the data is not 2-D, is empty, is non-numeric or contains NaN/inf (the
        message names the file and the first bad row).
    """
    p = Path(os.fspath(path))
    ext = _ext(p)
    if ext == ".npy":
        X = read_npy(p, **kw)
    elif ext == ".fvecs":
        X = read_fvecs(p, **kw)
    elif ext == ".ivecs":
        X = read_ivecs(p, **kw)
    elif ext == ".bvecs":
        X = read_bvecs(p, **kw)
    elif ext in (".h5", ".hdf5"):
        X = _read_hdf5_key(p, **kw)
    elif ext in (".csv", ".parquet", ".pq"):
        X = read_table_vectors(p, **kw)
    else:
        raise DataFileError(
            f"{p}: unsupported file extension '{ext or '(none)'}'; supported: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if validate:
        _validate_matrix(X, str(p))
    return X


# --------------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------------


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
    p = _existing_file(path)
    ext = _ext(p)
    if ext == ".npy":
        arr = read_npy(p, mmap=False)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise DataFileError(f"{p}: labels must have shape (n,) or (n, 1), got {arr.shape}")
    elif ext == ".ivecs":
        arr = read_ivecs(p, mmap=False)
        if arr.shape[1] != 1:
            raise DataFileError(
                f"{p}: expected one label per record (dimension 1), found dimension {arr.shape[1]}"
            )
        arr = arr[:, 0]
    elif ext in (".csv", ".txt"):
        arr = _read_label_table(p, column)
    else:
        raise DataFileError(
            f"{p}: unsupported label file extension '{ext or '(none)'}'; supported: "
            f"{', '.join(_LABEL_EXTENSIONS)}"
        )
    if arr.shape[0] == 0:
        raise DataFileError(f"{p}: holds no labels")
    if arr.dtype.kind not in "iubf":
        raise DataFileError(f"{p}: labels have dtype {arr.dtype}; expected integers")
    return _to_int_labels(np.asarray(arr), str(p))


def _read_label_table(p: Path, column: str | None) -> np.ndarray:
    import pandas as pd

    try:
        if column is not None:
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
            _missing_columns([column], [str(c) for c in df.columns], p)
            cells = df[column]
        else:
            df = pd.read_csv(p, header=None, dtype=str, keep_default_na=False)
            if df.shape[1] != 1:
                raise DataFileError(
                    f"{p}: expected a single column of labels, found {df.shape[1]} columns "
                    f"(pass column=...)"
                )
            cells = df[0]
            if len(cells) and pd.isna(pd.to_numeric(cells.iloc[:1].str.strip(), errors="coerce")).all():
                cells = cells.iloc[1:]  # header row
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{p}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(f"{p}: cannot parse labels ({exc})") from None
    cells = cells.str.strip().reset_index(drop=True)
    values = pd.to_numeric(cells, errors="coerce")
    bad = np.flatnonzero((values.isna() & ~cells.str.lower().isin(["nan", "inf", "-inf"])).to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataFileError(
            f"{p}: row {i}: cannot parse {cells.iloc[i]!r} as an integer label"
        )
    return values.to_numpy()
