"""Path checks shared by every reader: the file exists and is a regular file; its extension."""

from __future__ import annotations

import os
from pathlib import Path

from hashlearn.errors import DataFileError

__all__ = ["existing_file", "extension"]


def existing_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a :class:`Path`, raising DataFileError unless it is an existing regular file."""
    try:
        p = Path(os.fspath(path))
    except TypeError as exc:
        raise DataFileError(f"{path!r}: not a valid file path ({exc})") from None
    if not p.exists():
        raise DataFileError(f"{p}: no such file")
    if not p.is_file():
        raise DataFileError(f"{p}: not a regular file")
    return p


def extension(p: Path) -> str:
    """The file's extension in lower case (``".csv"``; ``""`` when it has none)."""
    return p.suffix.lower()
