"""Reading data files and saving/loading hashlearn objects."""

from .persist import load, persistable, read_header, save

__all__ = ["save", "load", "persistable", "read_header"]
