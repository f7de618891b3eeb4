"""Benchmark datasets: similarity-search vectors and record-linkage tables.

See :mod:`hashlearn.datasets.loaders`.
"""

from hashlearn.datasets.loaders import (
    Dataset,
    LinkageDataset,
    available_datasets,
    load_dataset,
    load_digits_dataset,
    load_febrl,
    load_mnist5000,
    load_vectors_dataset,
)

__all__ = [
    "Dataset",
    "LinkageDataset",
    "available_datasets",
    "load_dataset",
    "load_digits_dataset",
    "load_febrl",
    "load_mnist5000",
    "load_vectors_dataset",
]
