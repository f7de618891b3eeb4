"""hashlearn: compact similarity search with hashing and clustering."""

__version__ = "0.1.0"

from . import codes  # noqa: E402
from .errors import (  # noqa: E402
    DataFileError,
    FileFormatError,
    HashlearnError,
    IncompatibleError,
    NotFittedError,
    UnknownMethodError,
    ValidationError,
)
from .hashing import list_methods, make_hasher  # noqa: E402
from . import crossmodal  # noqa: E402,F401  (registers the cross-modal methods)
from .index import BinaryIndex, HashIndex, MultiIndexHashing, MultiTableLSH  # noqa: E402
from .io import load, save  # noqa: E402

__all__ = [
    "__version__",
    "codes",
    "make_hasher",
    "list_methods",
    "BinaryIndex",
    "MultiIndexHashing",
    "HashIndex",
    "MultiTableLSH",
    "save",
    "load",
    "HashlearnError",
    "ValidationError",
    "NotFittedError",
    "UnknownMethodError",
    "IncompatibleError",
    "FileFormatError",
    "DataFileError",
]
