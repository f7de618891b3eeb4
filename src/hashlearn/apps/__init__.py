"""hashlearn.apps: applications built on the hashing layers.

* :mod:`hashlearn.apps.blocking` -- entity blocking (candidate pairs for record linkage / deduplication).
* :mod:`hashlearn.apps.dedup` -- near-duplicate clusters of texts or vectors, streamed.

Submodules are imported on first use, so ``import hashlearn.apps`` stays light.
"""

from __future__ import annotations

import importlib

__all__ = ["blocking", "dedup"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
