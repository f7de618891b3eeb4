"""All collections of a data directory.

Layout::

    DIR/.hashlearn.lock                              held (flock) by the one server using DIR
    DIR/collections/NAME/config.json                 creation parameters (written once, atomically)
    DIR/collections/NAME/snapshot-<seq>.hlrn         state after record <seq> (hashlearn.io.save)
    DIR/collections/NAME/wal-<first seq>.log         records after the snapshot that started it
    DIR/collections/NAME/damaged-<time>-<file>       files set aside by a recovery (kept, never read)
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from pathlib import Path

from ...errors import HashlearnError
from ...io.persist import atomic_write
from .collection import Collection, Limits
from .config import CollectionConfig
from .errors import Conflict, NotFound, Unavailable
from .faults import FaultInjector
from .lock import DataDirLock
from .recovery import public_message
from .validation import NAME_RE, check_collection_name

__all__ = ["Storage"]


class Storage:
    """All collections of a data directory (locked for this object's life).

    Parameters
    ----------
    data_dir : path, created if missing
    snapshot_records, snapshot_bytes : a snapshot is taken after this many log records or bytes
    fsync : bool, default True (False only to measure the cost of durability)
    limits : :class:`~.collection.Limits`, optional (the server's per-request limits)

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from hashlearn.service import CollectionConfig, Storage
    >>> storage = Storage(tempfile.mkdtemp())
    >>> coll = storage.create(CollectionConfig(name="docs", dim=4, method="itq", n_bits=4))
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> _ = coll.train(X)
    >>> coll.upsert(list(range(50)), X, [{"even": i % 2 == 0} for i in range(50)])["upserted"]
    50
    >>> D, I, metric = coll.search(X[:1], 3)
    >>> int(I[0, 0]), int(D[0, 0]), metric
    (0, 0, 'hamming')
    >>> coll.get(0)["payload"]
    {'even': True}
    >>> storage.close()
    """

    def __init__(self, data_dir, *, snapshot_records: int = 1000, snapshot_bytes: int = 256 << 20, fsync: bool = True,
                 limits: Limits | None = None, faults: FaultInjector | None = None):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self._dir_lock = DataDirLock(self.data_dir)
        self.snapshot_records = snapshot_records
        self.snapshot_bytes = snapshot_bytes
        self.fsync = fsync
        self.limits = limits or Limits()
        self.faults = faults if faults is not None else FaultInjector.from_env()
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self.unavailable: dict[str, str] = {}
        self.recovery: dict = {}
        try:
            self._open_all()
        except BaseException:
            self._dir_lock.release()
            raise

    def _collection(self, folder: Path, config: CollectionConfig) -> Collection:
        return Collection(folder, config, snapshot_records=self.snapshot_records, snapshot_bytes=self.snapshot_bytes,
                          fsync=self.fsync, faults=self.faults, limits=self.limits)

    def _open_all(self) -> None:
        for p in sorted(self.root.iterdir()):
            if p.name.startswith("."):
                shutil.rmtree(p, ignore_errors=True)  # interrupted create or delete
                continue
            if not p.is_dir() or not NAME_RE.fullmatch(p.name):
                continue
            try:
                config = CollectionConfig.from_dict(json.loads((p / "config.json").read_text()))
                coll = self._collection(p, config).open()
            except (OSError, ValueError, TypeError, HashlearnError) as exc:
                reason = public_message(exc, p)
                self.unavailable[p.name] = reason
                self.recovery[p.name] = {"problems": [reason], "unavailable": True}
                continue
            self._collections[p.name] = coll
            self.recovery[p.name] = coll.recovery

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def get(self, name: str) -> Collection:
        check_collection_name(name)
        with self._lock:
            coll = self._collections.get(name)
            reason = self.unavailable.get(name)
        if coll is None:
            if reason is not None:
                raise Unavailable(reason if reason.startswith(f"collection {name!r}") else
                                  f"collection {name!r} is unavailable: {reason}")
            raise NotFound(f"collection {name!r} does not exist")
        return coll

    def create(self, config: CollectionConfig) -> Collection:
        """Create a collection; a data-independent method (e.g. simhash) is fitted now, so the new
        collection is searchable at once, and that fitted hasher is the first record of its log."""
        lim = self.limits
        config.validate(max_bits=lim.max_bits, max_candidates=lim.max_candidates)
        hasher = None if config.needs_training() else config.fit_without_data()
        with self._lock:
            if config.name in self._collections or config.name in self.unavailable or (self.root / config.name).exists():
                raise Conflict(f"collection {config.name!r} already exists")
            tmp = self.root / f".create-{config.name}-{uuid.uuid4().hex}"
            try:
                self.faults.check("write", str(tmp))
                tmp.mkdir()
                data = json.dumps(config.as_dict(), indent=2).encode()
                atomic_write(tmp / "config.json", lambda fh: fh.write(data))
                coll = self._collection(tmp, config).open()
                if hasher is not None:
                    coll.set_hasher(hasher)
                coll.close()
                os.rename(tmp, self.root / config.name)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            coll = self._collection(self.root / config.name, config).open()
            self._collections[config.name] = coll
            self.recovery[config.name] = coll.recovery
            return coll

    def delete(self, name: str) -> None:
        check_collection_name(name)
        with self._lock:
            if name in self.unavailable:
                raise Unavailable(f"collection {name!r} is unavailable ({self.unavailable[name]}); it can be deleted "
                                  "once it opens, or its folder removed by hand while the server is stopped")
            coll = self._collections.pop(name, None)
            if coll is None:
                raise NotFound(f"collection {name!r} does not exist")
            coll.close()
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex}"
            os.rename(self.root / name, trash)
            self.recovery.pop(name, None)
        shutil.rmtree(trash, ignore_errors=True)

    def close(self, *, snapshot: bool = True) -> None:
        """Close every collection (with a last snapshot unless ``snapshot=False``) and release the lock."""
        with self._lock:
            for coll in self._collections.values():
                try:
                    coll.close(snapshot=snapshot)
                except OSError:
                    pass
            self._collections.clear()
            self._dir_lock.release()
