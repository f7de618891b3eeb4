"""hashlearn as a service: persistent, crash-safe collections over HTTP (extra ``[service]``).

:class:`Storage` (write-ahead log + snapshots) works without any web framework; :func:`create_app`
(FastAPI) and ``hashlearn serve`` put it on the network. Importing this package does not import
FastAPI. See ``docs/service.md`` for the rules a client sees (keys, limits, distances, recovery).
"""

from .storage import (Collection, CollectionConfig, Conflict, DataDirInUse, Limits, NotFound, NotTrained, Storage,
                      Unavailable, check_collection_name)
from .wal import WriteAheadLog, read_records

__all__ = ["Storage", "Collection", "CollectionConfig", "Limits", "NotFound", "Conflict", "NotTrained", "Unavailable",
           "DataDirInUse", "check_collection_name", "WriteAheadLog", "read_records", "create_app", "load_api_keys"]


def __getattr__(name):
    if name in ("create_app", "load_api_keys"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
