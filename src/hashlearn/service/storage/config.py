"""A collection's creation parameters, and what its method needs: training, or nothing.

Whether a method learns from the data is found by behaviour, not by a list of names: two copies with
the collection's parameters and seed are fitted on two different small random samples; if they encode
probe vectors identically, the method is data-independent (SimHash, cross-polytope LSH ...) and the
collection is fitted at creation, so it is searchable at once. The same small experiment finds methods
that cannot learn more bits than the vectors have dimensions (PCA-based ones), so ``n_bits > dim`` is
refused when the collection is created, not at its first training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ...errors import UnknownMethodError, ValidationError
from .validation import check_collection_name

__all__ = ["CollectionConfig", "METRICS", "vector_methods"]

METRICS = ("l2", "ip", "cosine")
_PROBE_ROWS = 64


def vector_methods() -> list[str]:
    """The methods a collection can use: the registered vector hashers that learn without labels
    (a collection is filled with vectors only, so supervised hashers cannot be trained there)."""
    from ...hashing import is_supervised
    from ...registry import get_method_class, list_methods

    return [m for m in list_methods("vector") if not is_supervised(get_method_class(m))]


def _method_class(method: str):
    from ...registry import get_method_class, list_methods

    usable = vector_methods()
    if method in usable:
        return get_method_class(method)
    if isinstance(method, str) and method in list_methods():
        kind = get_method_class(method).input_kind
        raise ValidationError(f"method {method!r} is not a vector hasher (its kind is {kind!r}); "
                              f"a collection can use: {', '.join(usable)}")
    raise UnknownMethodError(f"unknown method {method!r}; a collection can use: {', '.join(usable)}")


@dataclass(frozen=True)
class CollectionConfig:
    """Creation parameters of a collection (immutable)."""

    name: str
    dim: int
    method: str = "simhash"
    n_bits: int = 64
    params: dict | None = None
    random_state: int = 0
    metric: str = "l2"
    rerank_candidates: int = 100

    def validate(self, *, max_bits: int | None = None, max_candidates: int = 100000,
                 max_dim: int = 65536) -> "CollectionConfig":
        """Check every field and the method's parameters; ``max_*``: the server's limits."""
        from ...registry import MAX_BITS

        max_bits = MAX_BITS if max_bits is None else max_bits
        check_collection_name(self.name)
        for field_name, lo, hi in (("dim", 1, max_dim), ("n_bits", 1, max_bits), ("rerank_candidates", 1, max_candidates)):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValidationError(f"{field_name} must be an integer from {lo} to {hi}, got {value!r}")
        if self.metric not in METRICS:
            raise ValidationError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, int) or self.random_state < 0:
            raise ValidationError(f"random_state must be a non-negative integer, got {self.random_state!r}")
        if not isinstance(self.params or {}, dict):
            raise ValidationError("params must be a JSON object of the method's parameters")
        _method_class(self.method)
        try:
            self.make_hasher()
        except TypeError as exc:
            raise ValidationError(str(exc)) from None
        if self.n_bits > self.dim:
            self._check_bits_fit_dimension()
        return self

    def make_hasher(self, *, n_bits: int | None = None):
        from ...registry import make_method

        hasher = make_method(self.method, n_bits=self.n_bits if n_bits is None else n_bits,
                             random_state=self.random_state, **(self.params or {}))
        if hasattr(hasher, "_check_params"):
            hasher._check_params()
        return hasher

    # -- what the method needs --------------------------------------------------------------------
    def _probe_fit(self, dim: int, n_bits: int, seed: int):
        """The method with these parameters fitted on a small random sample (None if that fails)."""
        X = np.random.default_rng(seed).standard_normal((_PROBE_ROWS, dim)).astype(np.float32)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.make_hasher(n_bits=n_bits).fit(X)
        except Exception:  # noqa: BLE001 - a probe that cannot run proves nothing
            return None

    def needs_training(self) -> bool:
        """False when the method learns nothing from the data (so the collection is fitted at creation)."""
        a, b = self._probe_fit(8, 4, 1), self._probe_fit(8, 4, 2)
        if a is None or b is None:
            return True
        probe = np.random.default_rng(3).standard_normal((16, 8)).astype(np.float32)
        try:
            return not np.array_equal(a.transform(probe), b.transform(probe))
        except Exception:  # noqa: BLE001
            return True

    def fit_without_data(self):
        """The fitted hasher of a data-independent method (see :meth:`needs_training`)."""
        X = np.random.default_rng(0).standard_normal((2, self.dim)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hasher = self.make_hasher().fit(X)
        if hasher.code_bits != self.n_bits:
            raise ValidationError(f"{self.method} made {hasher.code_bits}-bit codes for n_bits={self.n_bits}")
        return hasher

    def _check_bits_fit_dimension(self) -> None:
        """Refuse ``n_bits > dim`` for a method that learns at most one bit per dimension: on a small
        problem it fails (or learns fewer bits) with more bits than dimensions, and works without."""
        over = self._probe_fit(4, 8, 1)
        if over is not None and getattr(over, "code_bits", 8) >= 8:
            return
        if self._probe_fit(4, 4, 1) is None:
            return  # fails either way: not a dimension limit (e.g. too few probe rows for its anchors)
        raise ValidationError(
            f"{self.method} learns at most one bit per dimension: n_bits={self.n_bits} exceeds dim={self.dim}; "
            f"use n_bits <= {self.dim}, or a method without this limit (e.g. simhash)"
        )

    # -- serialisation -----------------------------------------------------------------------------
    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "method": self.method,
            "n_bits": self.n_bits,
            "params": dict(self.params or {}),
            "random_state": self.random_state,
            "metric": self.metric,
            "rerank_candidates": self.rerank_candidates,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CollectionConfig":
        if not isinstance(d, dict):
            raise ValidationError("a collection config must be a JSON object")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
