"""HDF5 files in the `ann-benchmarks <https://github.com/erikbern/ann-benchmarks>`_ layout (datasets
``train``, ``test``, ``neighbors``, ``distances`` and a ``distance`` attribute). h5py is imported when
first needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.errors import DataFileError

from .files import existing_file

__all__ = ["read_ann_hdf5", "read_hdf5_dataset"]

_ANN_KEYS = ("train", "test", "neighbors", "distances")


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


def _read_dataset(p: Path, obj, key: str) -> np.ndarray:
    try:
        return obj[()]
    except (OSError, ValueError, TypeError) as exc:
        raise DataFileError(f"{p}: cannot read dataset '{key}' ({exc})") from None


def _load_ann_datasets(p: Path, f) -> dict[str, Any]:
    """The ann-benchmarks datasets present in the open file ``f``, plus its ``distance`` attribute."""
    import h5py

    if _decode_attr(f.attrs.get("type", "dense")) == "sparse":
        raise DataFileError(f"{p}: uses the sparse ann-benchmarks layout (type='sparse'), which is not supported")
    out: dict[str, Any] = {}
    for key in _ANN_KEYS:
        if key in f:
            obj = f[key]
            if not isinstance(obj, h5py.Dataset):
                raise DataFileError(f"{p}: '{key}' is a group; expected a dataset")
            out[key] = _read_dataset(p, obj, key)
    if not out:
        raise DataFileError(
            f"{p}: none of the ann-benchmarks datasets {list(_ANN_KEYS)} found; the file holds {_h5_dataset_names(f)}"
        )
    dist = f.attrs.get("distance")
    out["distance"] = None if dist is None else str(_decode_attr(dist))
    return out


def _check_neighbors(p: Path, out: dict[str, Any]) -> None:
    nb = out["neighbors"]
    if "test" in out and nb.shape[0] != out["test"].shape[0]:
        raise DataFileError(f"{p}: 'neighbors' has {nb.shape[0]} rows but 'test' has {out['test'].shape[0]}")
    if "distances" in out and out["distances"].shape != nb.shape:
        raise DataFileError(f"{p}: 'distances' has shape {out['distances'].shape} but 'neighbors' has {nb.shape}")
    if nb.dtype.kind not in "iu":
        raise DataFileError(f"{p}: 'neighbors' must hold integer ids, has dtype {nb.dtype}")
    if "train" in out and nb.size:
        n_train = out["train"].shape[0]
        bad = np.flatnonzero(np.any((nb < 0) | (nb >= n_train), axis=1))
        if bad.size:
            raise DataFileError(f"{p}: 'neighbors' row {int(bad[0])} holds ids outside [0, {n_train})")


def _check_ann_consistency(p: Path, out: dict[str, Any]) -> None:
    for key in _ANN_KEYS:
        if key in out and out[key].ndim != 2:
            raise DataFileError(f"{p}: dataset '{key}' must be 2-D, has shape {out[key].shape}")
    if "train" in out and "test" in out and out["train"].shape[1] != out["test"].shape[1]:
        raise DataFileError(
            f"{p}: 'train' has dimension {out['train'].shape[1]} but 'test' has dimension {out['test'].shape[1]}"
        )
    if "neighbors" in out:
        _check_neighbors(p, out)


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
    p = existing_file(path)
    with _open_h5(p) as f:
        out = _load_ann_datasets(p, f)
    _check_ann_consistency(p, out)
    return out


def read_hdf5_dataset(path: str | os.PathLike, key: str = "train") -> np.ndarray:
    """The dataset ``key`` of an HDF5 file, in memory with its stored dtype.

    Raises
    ------
    DataFileError
        Missing or non-HDF5 file, or no dataset ``key`` (the message lists the datasets it holds).
    """
    p = existing_file(path)
    import h5py

    with _open_h5(p) as f:
        obj = f.get(key)
        if not isinstance(obj, h5py.Dataset):
            raise DataFileError(f"{p}: no dataset '{key}'; the file holds {_h5_dataset_names(f)} (pass key=...)")
        return _read_dataset(p, obj, key)
