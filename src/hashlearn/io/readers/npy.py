"""NumPy ``.npy`` files (pickled object arrays are refused)."""

from __future__ import annotations

import os

import numpy as np

from hashlearn.errors import DataFileError

from .files import existing_file

__all__ = ["read_npy"]

_NPY_MAGIC = b"\x93NUMPY"


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
        :func:`~hashlearn.io.readers.read_vectors` / :func:`~hashlearn.io.readers.check_vectors`).

    Raises
    ------
    DataFileError
        If the file is missing, not a valid ``.npy`` file, truncated, or holds an object array.
    """
    p = existing_file(path)
    _check_npy_magic(p)
    try:
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        if "allow_pickle" in str(exc) or "Python objects" in str(exc):
            raise DataFileError(f"{p}: holds an array of Python objects (stored pickled); hashlearn reads only "
                                f"numeric arrays, e.g. saved with np.save(path, X.astype(np.float32))") from None
        raise DataFileError(f"{p}: not a valid or complete .npy file ({exc})") from None


def _check_npy_magic(path) -> None:
    """Refuse a file that is not ``.npy`` at all, naming what it looks like instead."""
    with open(path, "rb") as fh:
        head = fh.read(len(_NPY_MAGIC))
    if head == _NPY_MAGIC:
        return
    if head.startswith(b"PK"):
        kind = "a zip archive (an .npz file? load one of its arrays and save it with np.save)"
    elif not head:
        kind = "empty"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        kind = "text (a CSV or text file named .npy?)"
    else:
        kind = "some other binary format"
    raise DataFileError(f"{path}: not a .npy file: it does not start with NumPy's magic bytes; it is {kind}")
