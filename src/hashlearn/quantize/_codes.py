"""Quantizer codes that remember which codebook produced them.

A quantizer's :meth:`encode` returns :class:`QuantizedCodes`: a plain ``uint8`` array of shape
``(n, M)`` (one byte per sub-quantizer) that also carries the quantizer's ``fingerprint``. Slices and
copies keep the fingerprint; arithmetic results do not (they are no longer codes). Code consumers
(``decode``, the ADC/SDC scans, indexes) refuse codes whose fingerprint differs from the quantizer's,
so codes of one codebook are never decoded or scored with another. Plain ``uint8`` arrays (e.g. read
back from a file) carry no fingerprint and are accepted after a shape and range check.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import IncompatibleError, ValidationError

__all__ = ["QuantizedCodes", "codebook_fingerprint", "check_quantized_codes"]


class QuantizedCodes(np.ndarray):
    """``uint8`` codes ``(n, M)`` with the ``fingerprint`` (str) of the codebook that produced them."""

    fingerprint: str | None

    def __new__(cls, codes: np.ndarray, fingerprint: str | None):
        obj = np.ascontiguousarray(codes, dtype=np.uint8).view(cls)
        obj.fingerprint = fingerprint
        return obj

    def __array_finalize__(self, obj) -> None:
        self.fingerprint = getattr(obj, "fingerprint", None)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # Results of ufuncs (sums, comparisons, ...) are not codes: hand back plain arrays / scalars.
        arr = np.asarray(arr).view(np.ndarray)
        return arr[()] if return_scalar else arr

    def __reduce__(self):  # pickling (e.g. to worker processes) keeps the fingerprint
        base = super().__reduce__()
        return base[0], base[1], (base[2], self.fingerprint)

    def __setstate__(self, state) -> None:
        base, self.fingerprint = state
        super().__setstate__(base)


def codebook_fingerprint(kind: str, params: dict, arrays) -> str:
    """16 hex digits identifying a trained codebook: its kind, shape parameters and every array's bytes."""
    h = hashlib.blake2b(digest_size=8)
    h.update(kind.encode())
    h.update(repr(sorted(params.items())).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def check_quantized_codes(codes, *, n_codes: int, n_values: int, fingerprint: str, owner: str,
                          name: str = "codes") -> np.ndarray:
    """Validate codes for a quantizer: 2-D ``(n, n_codes)`` integers below ``n_values``, same fingerprint.

    Returns a C-contiguous plain ``uint8`` array (no copy when the input already is one).

    Raises
    ------
    IncompatibleError
        The codes carry a fingerprint other than ``fingerprint`` (another codebook produced them).
    ValidationError
        Wrong shape, dtype or out-of-range values.
    """
    fp = getattr(codes, "fingerprint", None)
    if fp is not None and fp != fingerprint:
        raise IncompatibleError(
            f"{name} were produced by a codebook with fingerprint {fp}, but this {owner} has fingerprint "
            f"{fingerprint}: codes of another codebook cannot be decoded or searched with this one"
        )
    arr = np.asarray(codes)
    if arr.ndim == 1 and arr.shape[0] == n_codes:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_codes:
        raise ValidationError(f"{name} must have shape (n, {n_codes}) for this {owner}, got {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu":
            raise ValidationError(f"{name} must be integer codes (uint8), got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= n_values):
            raise ValidationError(f"{name} values must lie in [0, {n_values - 1}], got [{arr.min()}, {arr.max()}]")
        arr = arr.astype(np.uint8)
    arr = np.ascontiguousarray(arr).view(np.ndarray)
    if n_values < 256 and arr.size:
        top = int(arr.max())
        if top >= n_values:
            raise ValidationError(f"{name} contain the value {top}, but this {owner}'s codes lie in [0, {n_values - 1}]")
    return arr
