"""Packed binary codes and Hamming-space kernels. Imports nothing else from hashlearn.

Kernels (numba) compile on first use and are cached on disk, so later processes start fast.
"""

from .bits import check_codes, from_bytes, n_words, pack, to_bytes, unpack
from .search import (
    MISSING_DISTANCE,
    candidate_distances,
    hamming_distances,
    knn_search,
    range_search,
    thread_limit,
)

__all__ = [
    "pack",
    "unpack",
    "n_words",
    "check_codes",
    "to_bytes",
    "from_bytes",
    "hamming_distances",
    "knn_search",
    "range_search",
    "candidate_distances",
    "thread_limit",
    "MISSING_DISTANCE",
]

from .spherical import SPHERICAL_MISSING_DISTANCE, spherical_hamming_distances, spherical_knn_search  # noqa: E402

__all__ += ["spherical_hamming_distances", "spherical_knn_search", "SPHERICAL_MISSING_DISTANCE"]
