"""hashlearn: compact similarity search with hashing and clustering.

The public API is imported on first use (PEP 562), so ``import hashlearn`` and the command line start
fast; ``hashlearn.make_hasher``, ``hashlearn.HashIndex`` ... behave as ordinary attributes.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import (  # noqa: E402  (errors are light and needed by everything)
    DataFileError,
    FileFormatError,
    HashlearnError,
    IncompatibleError,
    NotFittedError,
    UnknownMethodError,
    ValidationError,
)

# public name -> (module, attribute)
_LAZY = {
    "codes": ("hashlearn.codes", None),
    "make_hasher": ("hashlearn.registry", "make_method"),
    "list_methods": ("hashlearn.registry", "list_methods"),
    "make_from_spec": ("hashlearn.registry", "make_from_spec"),
    "BinaryIndex": ("hashlearn.index", "BinaryIndex"),
    "MultiIndexHashing": ("hashlearn.index", "MultiIndexHashing"),
    "HashIndex": ("hashlearn.index", "HashIndex"),
    "MultiTableLSH": ("hashlearn.index", "MultiTableLSH"),
    "save": ("hashlearn.io.persist", "save"),
}

__all__ = [
    "__version__",
    *_LAZY,
    "load",
    "HashlearnError",
    "ValidationError",
    "NotFittedError",
    "UnknownMethodError",
    "IncompatibleError",
    "FileFormatError",
    "DataFileError",
]


def load(path, *, mmap: bool = False, verify: bool = True):
    """Load an object saved with :func:`hashlearn.save` (see :func:`hashlearn.io.persist.load`).

    Every package that defines saveable classes is imported first, so any hashlearn file loads.
    """
    from .io.persist import load as _load
    from .registry import load_persistable_providers

    load_persistable_providers()
    return _load(path, mmap=mmap, verify=verify)


def __getattr__(name: str):
    if name not in _LAZY:
        try:  # a subpackage used as an attribute (hashlearn.hashing.ITQ after a bare import hashlearn)
            return importlib.import_module(f"hashlearn.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hashlearn.{name}":
                raise
            raise AttributeError(f"module 'hashlearn' has no attribute {name!r}") from None
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
