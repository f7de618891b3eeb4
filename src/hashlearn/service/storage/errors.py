"""Errors of the storage engine; the HTTP layer maps each to one status code (see ``service/app.py``)."""

from __future__ import annotations

import errno

from ...errors import HashlearnError

__all__ = ["NotFound", "Conflict", "NotTrained", "Unavailable", "DataDirInUse", "ENVIRONMENTAL_ERRNOS",
           "is_environmental"]


class NotFound(HashlearnError, KeyError):
    """A collection or point does not exist (404)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Conflict(HashlearnError):
    """The request conflicts with the current state: the collection exists, was deleted meanwhile ... (409)."""


class NotTrained(Conflict):
    """The collection's hasher is not fitted yet: train it (or upload a fitted hasher) first (409)."""


class Unavailable(HashlearnError):
    """The collection cannot serve this request now (503): it could not be opened because of the
    environment (disk full, I/O error ...), with every file kept, or it turned read-only after a
    logged write could not be applied in memory. The reason is in the message and in ``/health``."""


class DataDirInUse(HashlearnError):
    """Another process holds the data directory's lock."""


#: Errors of the machine, not of the data: recovery never treats them as damage (it refuses to open the
#: collection instead, keeping every file, and opens it fully once the condition is gone).
ENVIRONMENTAL_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EMFILE", "ENFILE", "ENOMEM", "EROFS",
                                      "EACCES", "EPERM", "EAGAIN", "EBUSY", "ENOLCK", "ETIMEDOUT", "ESTALE")
    if hasattr(errno, name)
)


def is_environmental(exc: BaseException) -> bool:
    """True for a failure of the machine (disk full, I/O error, too many open files, out of memory)."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, HashlearnError) and exc.errno in ENVIRONMENTAL_ERRNOS
