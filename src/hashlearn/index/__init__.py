"""Indexes over binary codes (flat, multi-index hashing, LSH tables) and over float vectors (HashIndex)."""

from .flat import BinaryIndex
from .hashindex import HashIndex
from .mih import MultiIndexHashing
from .tables import MultiTableLSH

__all__ = ["BinaryIndex", "MultiIndexHashing", "HashIndex", "MultiTableLSH"]
