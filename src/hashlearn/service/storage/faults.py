"""Fault injection for tests: make the storage layer's disk operations fail on demand.

Enabled only by the environment variable ``HASHLEARN_SERVICE_FAULT_FILE`` (read once, when a
:class:`~.store.Storage` is created): while the file it names exists, every write of the storage layer
(log appends, new log segments, snapshots, collection configs) fails with the ``errno`` named in the
file (``ENOSPC`` if it is empty), before touching the disk; ``EIO`` also fails reads of snapshots and
logs. Deleting the file ends the fault. Nothing is injected when the variable is unset, which is the
normal case (tests and ``bench/service_faults.py`` set it).
"""

from __future__ import annotations

import errno
import os

__all__ = ["FaultInjector", "ENV_FAULT_FILE"]

ENV_FAULT_FILE = "HASHLEARN_SERVICE_FAULT_FILE"


class FaultInjector:
    """``check(op, what)`` raises the injected ``OSError`` while the fault file exists."""

    def __init__(self, flag_path: str | None = None):
        self.flag_path = flag_path or None

    @classmethod
    def from_env(cls) -> "FaultInjector":
        return cls(os.environ.get(ENV_FAULT_FILE))

    def check(self, op: str, what: str) -> None:
        if self.flag_path is None:
            return
        try:
            with open(self.flag_path) as fh:
                name = fh.read().strip() or "ENOSPC"
        except OSError:
            return
        code = getattr(errno, name, errno.ENOSPC)
        if op == "read" and code != errno.EIO:
            return
        raise OSError(code, os.strerror(code), what)


NO_FAULTS = FaultInjector(None)
