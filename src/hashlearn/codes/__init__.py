"""Packed binary codes and Hamming-space kernels. Imports nothing else from hashlearn."""

from .bits import check_codes, from_bytes, n_words, pack, to_bytes, unpack

__all__ = ["pack", "unpack", "n_words", "check_codes", "to_bytes", "from_bytes"]
