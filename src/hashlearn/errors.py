"""Exceptions raised by hashlearn.

Every failure the library reports on purpose is a subclass of :class:`HashlearnError`, so callers can
catch one type. Subclasses also derive from the matching built-in (``ValueError``, ``KeyError``, ...)
so code written against the usual Python conventions keeps working.

This module imports nothing, so every layer may use it.
"""

from __future__ import annotations


class HashlearnError(Exception):
    """Base class of every error hashlearn raises on purpose."""


class ValidationError(HashlearnError, ValueError):
    """Input has the wrong shape, dtype, dimension, or contains NaN/inf, or is empty."""


class NotFittedError(HashlearnError, AttributeError):
    """An estimator was used before ``fit``."""


class UnknownMethodError(HashlearnError, KeyError):
    """A method name is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class IncompatibleError(HashlearnError, ValueError):
    """Two objects that cannot be mixed (different bits, hasher, seed) were combined."""


class FileFormatError(HashlearnError, OSError):
    """A file is not a hashlearn file, has an unsupported version, or is corrupt or truncated."""


class DataFileError(HashlearnError, OSError):
    """A data file (.npy, .fvecs, HDF5, CSV, ...) is missing, unreadable or malformed."""
