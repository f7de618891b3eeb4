"""Locks: a readers-writer lock for a collection's memory, an exclusive lock for a data directory."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .errors import DataDirInUse

__all__ = ["RWLock", "DataDirLock", "LOCK_FILE"]

LOCK_FILE = ".hashlearn.lock"


class RWLock:
    """Readers-writer lock that prefers writers (a waiting writer blocks new readers)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    def acquire_read(self):
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1

    def release_read(self):
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    def acquire_write(self):
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True

    def release_write(self):
        with self._cond:
            self._writer = False
            self._cond.notify_all()

    class _Ctx:
        def __init__(self, enter, leave):
            self._enter, self._leave = enter, leave

        def __enter__(self):
            self._enter()

        def __exit__(self, *exc):
            self._leave()

    def read(self):
        return self._Ctx(self.acquire_read, self.release_read)

    def write(self):
        return self._Ctx(self.acquire_write, self.release_write)


class DataDirLock:
    """Exclusive lock on a data directory for the life of a :class:`~.store.Storage`.

    ``fcntl.flock`` on ``DIR/.hashlearn.lock``: a second server (or a second ``Storage`` in the same
    process) on the same directory is refused, so recovery and snapshots never run under a live
    server. The kernel drops the lock when the process dies, so a ``kill -9`` leaves nothing to clean.
    The holder's pid is written into the file (best effort, for the message).
    """

    def __init__(self, data_dir):
        import fcntl

        self.path = Path(data_dir) / LOCK_FILE
        self._fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            try:
                holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip()
            except OSError:
                pass
            os.close(self._fd)
            self._fd = -1
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise DataDirInUse(
                f"data directory {Path(data_dir)} is in use by another hashlearn server{who}: "
                "stop it first, or serve another --data-dir"
            ) from None
        try:  # a full disk must not stop a start: the pid is only for the message above
            pid = f"{os.getpid()}\n".encode()
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, pid, 0)
        except OSError:
            pass

    def release(self) -> None:
        if self._fd >= 0:
            import fcntl

            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.release()
        except Exception:
            pass
