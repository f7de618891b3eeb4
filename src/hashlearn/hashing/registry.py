"""The method registry lives in :mod:`hashlearn.registry`; these names are kept for the hashers."""

from __future__ import annotations

from ..registry import get_method_class as get_hasher_class
from ..registry import list_methods, register
from ..registry import make_method as make_hasher

__all__ = ["register", "make_hasher", "get_hasher_class", "list_methods"]
