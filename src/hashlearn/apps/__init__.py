"""hashlearn.apps: applications built on the hashing layers.

* :mod:`hashlearn.apps.blocking` -- entity blocking (candidate pairs for record linkage / deduplication).
* :mod:`hashlearn.apps.dedup` -- near-duplicate clusters of texts or vectors, streamed.
* :mod:`hashlearn.apps.funchash` -- functional-equivalence hashing and an evaluation cache for search loops.
* :mod:`hashlearn.apps.selection` -- hashed instance selection (single-level, multi-level, multi-view).

Submodules are imported on first use, so ``import hashlearn.apps`` stays light.
"""

from __future__ import annotations

import importlib

__all__ = ["blocking", "dedup", "funchash", "selection"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
