""":func:`read_vectors`: read a matrix of vectors, choosing the reader from the file extension."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.errors import DataFileError

from .files import extension
from .hdf5 import read_hdf5_dataset
from .npy import read_npy
from .tables import read_table_vectors
from .texmex import read_bvecs, read_fvecs, read_ivecs
from .validation import validate_matrix

__all__ = ["read_vectors", "SUPPORTED_EXTENSIONS"]

# extension -> reader (keyword arguments pass through read_vectors)
_READERS = {
    ".npy": read_npy,
    ".fvecs": read_fvecs,
    ".ivecs": read_ivecs,
    ".bvecs": read_bvecs,
    ".h5": read_hdf5_dataset,
    ".hdf5": read_hdf5_dataset,
    ".csv": read_table_vectors,
    ".parquet": read_table_vectors,
    ".pq": read_table_vectors,
}

#: File extensions understood by :func:`read_vectors` (lower case).
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_READERS)


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
    ext = extension(p)
    reader = _READERS.get(ext)
    if reader is None:
        raise DataFileError(
            f"{p}: unsupported file extension '{ext or '(none)'}'; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    X = reader(p, **kw)
    if validate:
        validate_matrix(X, str(p))
    return X
