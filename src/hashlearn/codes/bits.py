"""Packed binary codes: conversion between bit matrices and contiguous uint64 words.

Bit order (stable, part of the public contract)
-----------------------------------------------
A code of ``n_bits`` bits occupies ``n_words = ceil(n_bits / 64)`` uint64 words. Bit ``j`` of a code
is bit ``j % 64`` (least significant first) of word ``j // 64``. Words are stored little-endian, so
viewed as bytes, bit ``j`` is bit ``j % 8`` of byte ``j // 8``: the layout of faiss' binary indexes,
which makes the first ``n_bits / 8`` bytes of each row a valid faiss binary code. Padding bits (from
``n_bits`` up to ``64 * n_words``) are always zero.
"""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError

__all__ = ["n_words", "pack", "unpack", "check_codes", "to_bytes", "from_bytes"]


def n_words(n_bits: int) -> int:
    """Number of uint64 words holding ``n_bits`` bits."""
    n_bits = int(n_bits)
    if n_bits < 1:
        raise ValidationError(f"n_bits must be a positive integer, got {n_bits}")
    return (n_bits + 63) // 64


def _as_bool_bits(bits: np.ndarray) -> np.ndarray:
    """Map a {0,1}, {-1,+1} or bool matrix to bool; reject anything else with a clear message."""
    if bits.dtype == np.bool_:
        return bits
    if not (np.issubdtype(bits.dtype, np.integer) or np.issubdtype(bits.dtype, np.floating)):
        raise ValidationError(f"bits must be bool, integer or float, got dtype {bits.dtype}")
    if bits.size == 0:
        return bits.astype(bool)
    lo, hi = bits.min(), bits.max()
    if np.isnan(lo) if np.issubdtype(bits.dtype, np.floating) else False:
        raise ValidationError("bits contains NaN")
    if lo >= 0:
        if hi > 1 or not np.all((bits == 0) | (bits == 1)):
            raise ValidationError("bits must contain only {0, 1} or only {-1, +1}; found other values")
        return bits.astype(bool)
    if not np.all((bits == -1) | (bits == 1)):
        raise ValidationError("bits must contain only {0, 1} or only {-1, +1}; found other values")
    return bits > 0


def pack(bits) -> np.ndarray:
    """Pack a bit matrix into uint64 words.

    Parameters
    ----------
    bits : array-like of shape (n, n_bits)
        bool, {0, 1} or {-1, +1} entries (-1 maps to 0). A 1-D array is treated as one row.

    Returns
    -------
    codes : ndarray of shape (n, ceil(n_bits / 64)), dtype uint64, C-contiguous
        Bit ``j`` of row ``i`` is bit ``j % 64`` of ``codes[i, j // 64]``; padding bits are zero.
    """
    bits = np.asarray(bits)
    if bits.ndim == 1:
        bits = bits[None, :]
    if bits.ndim != 2:
        raise ValidationError(f"bits must be a 2-D (n, n_bits) matrix, got {bits.ndim} dimensions")
    n, nb = bits.shape
    if nb == 0:
        raise ValidationError("bits has zero columns: a code needs at least one bit")
    as_bytes = np.packbits(_as_bool_bits(bits), axis=1, bitorder="little")
    nw = n_words(nb)
    if as_bytes.shape[1] != nw * 8:
        padded = np.zeros((n, nw * 8), dtype=np.uint8)
        padded[:, : as_bytes.shape[1]] = as_bytes
        as_bytes = padded
    return np.ascontiguousarray(as_bytes).view("<u8").astype(np.uint64, copy=False)


def unpack(codes, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack`.

    Parameters
    ----------
    codes : ndarray of shape (n, ceil(n_bits / 64)), dtype uint64
    n_bits : int

    Returns
    -------
    bits : ndarray of shape (n, n_bits), dtype uint8, entries 0/1
    """
    codes = check_codes(codes, n_bits)
    as_bytes = np.ascontiguousarray(codes).astype("<u8", copy=False).view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, count=n_bits, bitorder="little")


def check_codes(codes, n_bits: int, name: str = "codes") -> np.ndarray:
    """Validate packed codes for ``n_bits`` bits; return a C-contiguous (n, n_words) uint64 view.

    A 1-D array of ``n_words`` words is taken as one code. Raises ``ValueError`` naming the problem
    (dtype, number of words, non-zero padding bits).
    """
    nw = n_words(n_bits)
    codes = np.asarray(codes)
    if codes.dtype != np.uint64:
        raise ValidationError(f"{name} must be packed uint64 words (see hashlearn.codes.pack), got dtype {codes.dtype}")
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.ndim != 2 or codes.shape[1] != nw:
        raise ValidationError(
            f"{name} for {n_bits} bits must have shape (n, {nw}), got shape {codes.shape}"
        )
    pad = 64 * nw - n_bits
    if pad and codes.shape[0]:
        mask = np.uint64(((1 << pad) - 1) << (64 - pad))
        if np.any(codes[:, -1] & mask):
            raise ValidationError(f"{name} has non-zero padding bits beyond bit {n_bits}: codes of a longer length?")
    return np.ascontiguousarray(codes)


def to_bytes(codes, n_bits: int) -> np.ndarray:
    """Codes as (n, ceil(n_bits / 8)) uint8 rows in faiss' binary layout."""
    codes = check_codes(codes, n_bits)
    return np.ascontiguousarray(codes.astype("<u8", copy=False).view(np.uint8)[:, : (n_bits + 7) // 8])


def from_bytes(code_bytes, n_bits: int) -> np.ndarray:
    """Inverse of :func:`to_bytes`: (n, ceil(n_bits / 8)) uint8 rows → packed uint64 codes."""
    code_bytes = np.asarray(code_bytes)
    nbytes = (n_bits + 7) // 8
    if code_bytes.dtype != np.uint8 or code_bytes.ndim != 2 or code_bytes.shape[1] != nbytes:
        raise ValidationError(f"expected (n, {nbytes}) uint8 bytes for {n_bits} bits, got {code_bytes.dtype} {code_bytes.shape}")
    nw = n_words(n_bits)
    out = np.zeros((code_bytes.shape[0], nw * 8), dtype=np.uint8)
    out[:, :nbytes] = code_bytes
    codes = out.view("<u8").astype(np.uint64, copy=False)
    return check_codes(codes, n_bits)
