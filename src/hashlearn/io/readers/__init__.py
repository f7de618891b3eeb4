"""Readers and writers for vector data files, tables and labels, and input validation.

Supported formats
-----------------
* TEXMEX ``.fvecs`` / ``.ivecs`` / ``.bvecs`` (the SIFT1M / GIST1M / SIFT1B format): every record is a
  little-endian ``int32`` dimension ``d`` followed by ``d`` values (``float32`` / ``int32`` / ``uint8``)
  (:mod:`~hashlearn.io.readers.texmex`).
* NumPy ``.npy`` (:mod:`~hashlearn.io.readers.npy`).
* HDF5 files in the `ann-benchmarks <https://github.com/erikbern/ann-benchmarks>`_ layout
  (datasets ``train``, ``test``, ``neighbors``, ``distances`` and a ``distance`` attribute)
  (:mod:`~hashlearn.io.readers.hdf5`).
* CSV and Parquet tables: :func:`read_table` for any table (the one table reader of the library), and
  vectors stored either one numeric column per dimension or one column holding whole vectors
  (:mod:`~hashlearn.io.readers.tables`).
* Labels, one integer per vector (:mod:`~hashlearn.io.readers.labels`).

Every reader raises :class:`~hashlearn.errors.DataFileError` when a file is missing, unreadable or
malformed, and :func:`check_vectors` / :func:`read_vectors` raise :class:`~hashlearn.errors.ValidationError`
for bad arrays (NaN/inf, wrong ndim, non-numeric dtype, empty) (:mod:`~hashlearn.io.readers.validation`).
Messages always start with the file (or array) name, followed by the problem, e.g. ``"base.fvecs: record
3 declares dimension 129 but record 0 declares 128"`` or ``"x.npy: contains NaN at row 17 (column 2)"``.

The low-level readers (``read_fvecs``, ``read_npy``, ``read_ann_hdf5``, ``read_table_vectors``) check the
*structure* of the file only and return the values as stored; :func:`read_vectors` additionally checks
the values (finite, 2-D, non-empty) unless ``validate=False``.

Only numpy is imported at module level; h5py, pandas and pyarrow are imported when first needed.
"""

from __future__ import annotations

from .hdf5 import read_ann_hdf5
from .labels import read_labels
from .npy import read_npy
from .tables import _arrow_vector_column, read_table, read_table_vectors, table_columns  # noqa: F401
from .texmex import read_bvecs, read_fvecs, read_ivecs, write_bvecs, write_fvecs, write_ivecs
from .validation import check_vectors
from .vectors import SUPPORTED_EXTENSIONS, read_vectors

__all__ = [
    "read_fvecs",
    "read_ivecs",
    "read_bvecs",
    "write_fvecs",
    "write_ivecs",
    "write_bvecs",
    "read_npy",
    "read_ann_hdf5",
    "read_table",
    "table_columns",
    "read_table_vectors",
    "read_vectors",
    "read_labels",
    "check_vectors",
    "SUPPORTED_EXTENSIONS",
]
