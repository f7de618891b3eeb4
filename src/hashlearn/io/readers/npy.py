"""NumPy ``.npy`` files (pickled object arrays are refused)."""

from __future__ import annotations

import os

import numpy as np

from hashlearn.errors import DataFileError

from .files import existing_file

__all__ = ["read_npy"]


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
    try:
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        msg = str(exc)
        if "allow_pickle" in msg or "object" in msg.lower():
            raise DataFileError(f"{p}: holds a pickled object array, which is not supported ({exc})") from None
        raise DataFileError(f"{p}: not a valid or complete .npy file ({exc})") from None
