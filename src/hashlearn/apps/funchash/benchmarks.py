"""Measurements of functional hashing, used by ``bench/funchash_evolution.py`` and ``hashlearn bench
funchash``: false splits and false collisions of the hash, and what the cache saves a search."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .cache import EvaluationCache
from .evolution import regularized_evolution
from .expr import Expr
from .hasher import FunctionalHasher
from .mutation import equivalent_rewrite, mutate_expr, random_expr
from .tasks import LinearScaledMSE, regression_task

__all__ = ["hash_error_rates", "cache_benchmark"]


@dataclass
class _Tally:
    equivalent_pairs: int = 0
    split_primary: int = 0
    split_lookup: int = 0
    noisy_split_primary: int = 0
    noisy_split_lookup: int = 0
    different_pairs: int = 0
    collisions: int = 0
    hash_seconds: float = 0.0
    n_hashed: int = 0


def _with_noise(e: Expr, u: np.ndarray, noise: float):
    """A callable with the outputs of ``e`` times ``1 + noise·u`` (one factor per probe)."""
    return lambda *cols: e.evaluate(np.stack(cols, axis=1)) * (1.0 + noise * u)


def _tally_equivalent(t: _Tally, h: FunctionalHasher, e: Expr, rng, n_probes: int, noise: float) -> None:
    """Count the splits of ``e`` against an equivalent rewrite and against a noisy copy of its outputs."""
    e2 = equivalent_rewrite(e, rng, n_rewrites=3)
    t0 = time.perf_counter()
    f1, f2 = h.fingerprint(e), h.fingerprint(e2)
    t.hash_seconds += time.perf_counter() - t0
    t.n_hashed += 2
    t.equivalent_pairs += 1
    t.split_primary += f1.key != f2.key
    t.split_lookup += f1.key not in f2.lookup_keys
    fn = h.fingerprint(_with_noise(e, rng.uniform(-1.0, 1.0, size=n_probes), noise))
    t.noisy_split_primary += f1.key != fn.key
    t.noisy_split_lookup += f1.key not in fn.lookup_keys


def _tally_different(t: _Tally, h: FunctionalHasher, e: Expr, rng, n_vars: int, Xc: np.ndarray, rtol: float,
                     atol: float) -> None:
    """Count a collision of ``e`` with a mutation of it, if the mutation computes another function on ``Xc``."""
    m = mutate_expr(e, rng, n_vars)
    with np.errstate(all="ignore"):
        a, b = e.evaluate(Xc), m.evaluate(Xc)
    if (np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True) | (a == b)).all():
        return  # the mutation did not change the function on the box: not a "different" pair
    t.different_pairs += 1
    t.collisions += h.fingerprint(e).key in h.fingerprint(m).lookup_keys


def hash_error_rates(n_pairs: int = 300, *, n_vars: int = 3, n_probes: int = 32, rtol: float = 1e-6,
                     atol: float = 1e-9, boundary: float = 1e-2, noise: float | None = None, low: float = 1.0,
                     high: float = 5.0, n_check: int = 4096, random_state=0) -> dict:
    """Measure false splits and false collisions of :class:`FunctionalHasher` on random expressions.

    * equivalent pairs: a random expression and :func:`equivalent_rewrite` of it (equal in real
      arithmetic, written differently). A *false split* is a pair whose keys differ; ``split_primary``
      counts different primary keys, ``split_lookup`` pairs that a cache lookup (primary + neighbour
      keys) would miss.
    * noisy pairs: a random expression and the same outputs multiplied by ``1 + noise·u``, ``u`` uniform
      in [-1, 1] per probe (evaluation noise: float32, another summation order). Default ``noise``:
      ``0.5 · boundary · rtol``, inside the neighbour-probing guarantee, so ``noisy_split_lookup``
      should be 0 while ``noisy_split_primary`` shows what probing the primary key alone would lose.
    * different pairs: a random expression and a mutation of it that differs from it (beyond
      ``rtol``/``atol``) somewhere on ``n_check`` fresh random points of the probe box. A *false
      collision* is such a pair found by a cache lookup.

    Returns a dict of counts and rates.
    """
    if noise is None:
        noise = 0.5 * boundary * rtol if boundary > 0 else 5e-4 * rtol
    rng = np.random.default_rng(random_state)
    h = FunctionalHasher(n_probes, n_features=n_vars, low=low, high=high, rtol=rtol, atol=atol,
                         boundary=boundary, random_state=random_state).fit()
    Xc = rng.uniform(low, high, size=(n_check, n_vars))
    t = _Tally()
    while t.equivalent_pairs < n_pairs or t.different_pairs < n_pairs:
        e = random_expr(rng, n_vars, max_depth=4, p_leaf=0.2)
        if e.size() < 3:
            continue
        if t.equivalent_pairs < n_pairs:
            _tally_equivalent(t, h, e, rng, n_probes, noise)
        if t.different_pairs < n_pairs:
            _tally_different(t, h, e, rng, n_vars, Xc, rtol, atol)
    eq, diff = t.equivalent_pairs, t.different_pairs
    return {
        "rtol": rtol, "atol": atol, "boundary": boundary, "n_probes": n_probes,
        "equivalent_pairs": eq, "split_primary": t.split_primary, "split_lookup": t.split_lookup,
        "split_primary_rate": t.split_primary / eq, "split_lookup_rate": t.split_lookup / eq,
        "noise": noise, "noisy_split_primary": t.noisy_split_primary, "noisy_split_lookup": t.noisy_split_lookup,
        "different_pairs": diff, "collisions": t.collisions, "collision_rate": t.collisions / diff,
        "hash_us_per_candidate": 1e6 * t.hash_seconds / max(1, t.n_hashed),
    }


_CACHES = ("none", "syntactic", "functional", "functional+check")


def _cached_fitness(cache: str, fitness: LinearScaledMSE, X: np.ndarray, *, n_probes: int, rtol: float,
                    atol: float, random_state):
    """``fitness`` behind the cache named ``cache`` (one of ``_CACHES``)."""
    if cache == "none":
        return fitness
    if cache == "syntactic":
        return EvaluationCache(fitness, str)
    h = FunctionalHasher(n_probes, n_features=X.shape[1], rtol=rtol, atol=atol, random_state=random_state).fit(X)
    return EvaluationCache(fitness, h, check=cache == "functional+check")


def _run_row(task: str, cache: str, f, res, cpu: float) -> dict:
    st = getattr(f, "stats", None)
    calls = len(res.history)
    row = {
        "task": task, "cache": cache, "seconds": res.seconds, "cpu_seconds": cpu, "calls": calls,
        "hits": st["hits"] if st else 0, "hit_rate": (st["hits"] / calls) if st else 0.0,
        "evaluations": st["evaluations"] if st else calls,
        "false_collisions": st["false_collisions"] if st and st["checked"] else None,
        "checked": st["checked"] if st else 0,
        "hash_seconds": st["hash_seconds"] if st else 0.0,
        "best_fitness": res.best_fitness, "best": str(res.best),
    }
    row["evaluations_saved"] = calls - row["evaluations"] if cache != "functional+check" else row["hits"]
    return row


def _compare_with_uncached(row: dict, res, cpu: float, base, base_cpu: float) -> None:
    row["speedup"] = base.seconds / res.seconds if res.seconds > 0 else None
    row["cpu_speedup"] = base_cpu / cpu if cpu > 0 else None
    row["same_history"] = bool(res.history.shape == base.history.shape and np.allclose(
        res.history, base.history, rtol=1e-6, atol=1e-12, equal_nan=True))


def cache_benchmark(task: str = "I.12.2", *, n_samples: int = 100_000, n_cycles: int = 1000,
                    population_size: int = 100, sample_size: int = 10, n_probes: int = 32,
                    rtol: float = 1e-6, atol: float = 1e-9, random_state=0, progress=None) -> list[dict]:
    """Run the same regularized evolution (same seed) without a cache, with a syntactic cache (key =
    the printed expression), with the functional cache, and with the functional cache in checking mode.

    Returns one dict per run: ``cache``, ``seconds``, ``speedup`` (wall time vs no cache), ``cpu_seconds``,
    ``cpu_speedup`` (process CPU time, less sensitive to other load), ``calls``, ``hits``,
    ``hit_rate``, ``evaluations``, ``evaluations_saved``, ``false_collisions`` (checking mode: hits whose
    full evaluation differs from the cached value), ``best_fitness``, ``best``, ``same_history``
    (fitness sequence equal to the uncached run within 1e-6 relative or 1e-12 absolute), ``hash_seconds``.
    """
    X, y = regression_task(task, n_samples, random_state)
    fitness = LinearScaledMSE(X, y)
    rows, base, base_cpu = [], None, None
    for cache in _CACHES:
        if progress is not None:
            progress(cache)
        f = _cached_fitness(cache, fitness, X, n_probes=n_probes, rtol=rtol, atol=atol, random_state=random_state)
        c0 = time.process_time()
        res = regularized_evolution(f, X.shape[1], population_size=population_size, sample_size=sample_size,
                                    n_cycles=n_cycles, random_state=random_state)
        cpu = time.process_time() - c0
        row = _run_row(task, cache, f, res, cpu)
        if base is None:
            base, base_cpu = res, cpu
            row["speedup"], row["cpu_speedup"], row["same_history"] = 1.0, 1.0, True
        else:
            _compare_with_uncached(row, res, cpu, base, base_cpu)
        rows.append(row)
    return rows
