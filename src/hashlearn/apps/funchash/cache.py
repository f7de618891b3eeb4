"""An evaluation cache keyed by functional hash: evaluate a candidate only if no functionally equal one
was evaluated before."""

from __future__ import annotations

import numbers
import time
from collections import OrderedDict

import numpy as np

from ...errors import ValidationError
from .hasher import FunctionalHasher

__all__ = ["EvaluationCache"]


class EvaluationCache:
    """Memoise an expensive ``evaluate(candidate)`` by functional key.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(candidate) -> value`` (e.g. a fitness); called only on a cache miss. If it raises,
        the exception propagates and nothing is cached.
    hasher : FunctionalHasher or callable
        A fitted :class:`FunctionalHasher`, or any ``key(candidate) -> hashable`` (e.g. ``str`` for a
        purely syntactic cache, the usual baseline).
    check : bool, default False
        Checking mode: on every hit, also evaluate the candidate and compare with the cached value;
        differences beyond ``check_rtol``/``check_atol`` are counted as false collisions. The cached
        value is still returned, so a checked search follows the same trajectory as an unchecked one.
    check_rtol, check_atol : float, default 1e-6, 1e-9
        Tolerance of the check (NaN equals NaN; ±inf equal themselves).
    max_size : int or None, default None
        Keep at most this many entries (least recently used evicted first).

    Attributes
    ----------
    stats : dict
        ``calls``, ``hits``, ``evaluations`` (misses + checks), ``checked``, ``false_collisions``,
        ``neighbour_hits`` (hits found only through a near-boundary neighbour key), ``errors``
        (candidates whose probing failed), ``hash_seconds``, ``eval_seconds``.
    false_collision_examples : list of (candidate, cached value, true value)
        Up to 20 examples found in checking mode.

    Examples
    --------
    >>> h = FunctionalHasher(n_features=1).fit()
    >>> cache = EvaluationCache(lambda f: float(np.sum(f(np.arange(3.0)))), h)
    >>> cache(lambda x: 2 * x), cache(lambda x: x + x), cache.stats["hits"]
    (6.0, 6.0, 1)
    """

    def __init__(self, evaluate, hasher, *, check=False, check_rtol=1e-6, check_atol=1e-9, max_size=None):
        if not callable(evaluate):
            raise ValidationError(f"evaluate must be callable, got {type(evaluate).__name__}")
        if not callable(hasher):
            raise ValidationError(f"hasher must be a FunctionalHasher or a callable, got {type(hasher).__name__}")
        if isinstance(hasher, FunctionalHasher):
            hasher._check_fitted()
        if max_size is not None and (not isinstance(max_size, numbers.Integral) or max_size < 1):
            raise ValidationError(f"max_size must be a positive integer or None, got {max_size!r}")
        self.evaluate = evaluate
        self.hasher = hasher
        self.check = bool(check)
        self.check_rtol = float(check_rtol)
        self.check_atol = float(check_atol)
        self.max_size = max_size
        self._store: OrderedDict = OrderedDict()
        self.false_collision_examples: list = []
        self.stats = dict(calls=0, hits=0, evaluations=0, checked=0, false_collisions=0, neighbour_hits=0,
                          errors=0, hash_seconds=0.0, eval_seconds=0.0)

    def __len__(self) -> int:
        return len(self._store)

    @property
    def hit_rate(self) -> float:
        """Hits / calls (0 before the first call)."""
        return self.stats["hits"] / self.stats["calls"] if self.stats["calls"] else 0.0

    def _keys(self, candidate) -> tuple:
        if isinstance(self.hasher, FunctionalHasher):
            fp = self.hasher.fingerprint(candidate)
            if fp.error is not None:
                self.stats["errors"] += 1
            return fp.lookup_keys
        return (self.hasher(candidate),)

    def lookup(self, candidate):
        """``(found, value, key)`` without evaluating; ``key`` is where a miss would be stored."""
        t0 = time.perf_counter()
        keys = self._keys(candidate)
        self.stats["hash_seconds"] += time.perf_counter() - t0
        for i, k in enumerate(keys):
            if k in self._store:
                self._store.move_to_end(k)
                if i:
                    self.stats["neighbour_hits"] += 1
                return True, self._store[k], k
        return False, None, keys[0]

    def _evaluate(self, candidate):
        t0 = time.perf_counter()
        try:
            return self.evaluate(candidate)
        finally:
            self.stats["eval_seconds"] += time.perf_counter() - t0
            self.stats["evaluations"] += 1

    def __call__(self, candidate):
        """The value of ``candidate``: cached if a functionally equal one was evaluated before."""
        self.stats["calls"] += 1
        found, value, key = self.lookup(candidate)
        if found:
            self.stats["hits"] += 1
            if self.check:
                true = self._evaluate(candidate)
                self.stats["checked"] += 1
                if not _values_equal(value, true, self.check_rtol, self.check_atol):
                    self.stats["false_collisions"] += 1
                    if len(self.false_collision_examples) < 20:
                        self.false_collision_examples.append((candidate, value, true))
            return value
        value = self._evaluate(candidate)
        self._store[key] = value
        if self.max_size is not None and len(self._store) > self.max_size:
            self._store.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every entry (the statistics are kept)."""
        self._store.clear()


def _values_equal(a, b, rtol, atol) -> bool:
    try:
        x = np.asarray(a, dtype=np.float64)
        y = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return a == b
    if x.shape != y.shape:
        return False
    return bool(np.all(np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True) | (x == y)))
