"""Hash families and learned hashers (scikit-learn estimators returning packed binary codes)."""

from .base import BaseHasher
from .registry import get_hasher_class, list_methods, make_hasher, register

__all__ = ["BaseHasher", "make_hasher", "get_hasher_class", "list_methods", "register"]
