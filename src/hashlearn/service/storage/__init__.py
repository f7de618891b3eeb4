"""Storage engine of the service: collections held in memory, made durable by a write-ahead log
plus periodic snapshots. Works without any web framework.

* :mod:`.store` — :class:`Storage`, the data directory (locked by one server at a time);
* :mod:`.collection` — :class:`Collection`, writes, reads and snapshots of one collection;
* :mod:`.recovery` — what a start does with snapshots and logs (torn tails, damage, full disks);
* :mod:`.state` — :class:`ServiceCollectionState`, a :class:`~hashlearn.HashIndex` plus payloads;
* :mod:`.records` — the log records' bodies; :mod:`.validation` — checks of client input;
* :mod:`.config` — :class:`CollectionConfig`; :mod:`.lock` — locks; :mod:`.faults` — fault injection
  for tests; :mod:`.errors` — the errors, each answered with one HTTP status.
"""

from .collection import Collection, Limits
from .config import CollectionConfig, vector_methods
from .errors import Conflict, DataDirInUse, NotFound, NotTrained, Unavailable
from .lock import RWLock
from .state import ServiceCollectionState
from .store import Storage
from .validation import MAX_ID, check_collection_name, hasher_from_bytes

__all__ = ["Storage", "Collection", "Limits", "CollectionConfig", "ServiceCollectionState", "RWLock", "NotFound",
           "Conflict", "NotTrained", "Unavailable", "DataDirInUse", "check_collection_name", "hasher_from_bytes",
           "vector_methods", "MAX_ID"]
