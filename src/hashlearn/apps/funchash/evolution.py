"""Regularized (aging) evolution: the search loop of the functional-hashing demo."""

from __future__ import annotations

import math
import numbers
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from ...errors import ValidationError
from .expr import Expr
from .mutation import mutate_expr, random_expr

__all__ = ["EvolutionResult", "regularized_evolution"]


@dataclass
class EvolutionResult:
    """Outcome of :func:`regularized_evolution`.

    Attributes
    ----------
    best : Expr or other candidate
        Best candidate seen (lowest fitness).
    best_fitness : float
    history : ndarray of shape (n_candidates,), float64
        Fitness of every candidate in the order they were evaluated (initial population first).
    best_so_far : ndarray of shape (n_candidates,), float64
        Running minimum of ``history``.
    seconds : float
        Wall time of the whole search.
    """

    best: Expr
    best_fitness: float
    history: np.ndarray
    best_so_far: np.ndarray
    seconds: float


class _Recorder:
    """``fitness`` as the search sees it: NaN counts as ``inf``; every value is recorded and the best
    candidate (the first of equal fitness) kept."""

    def __init__(self, fitness: Callable):
        self.fitness = fitness
        self.history: list[float] = []
        self.best = None
        self.best_fitness = math.inf

    def __call__(self, candidate) -> float:
        f = float(self.fitness(candidate))
        if math.isnan(f):
            f = math.inf
        self.history.append(f)
        if self.best is None or f < self.best_fitness:
            self.best, self.best_fitness = candidate, f
        return f


def _check_search_params(population_size, sample_size, n_cycles, n_vars, needs_n_vars: bool) -> None:
    checks = [("population_size", population_size), ("sample_size", sample_size)]
    if needs_n_vars:
        checks.append(("n_vars", n_vars))
    for name, v in checks:
        if not isinstance(v, numbers.Integral) or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v!r}")
    if not isinstance(n_cycles, numbers.Integral) or n_cycles < 0:
        raise ValidationError(f"n_cycles must be a non-negative integer, got {n_cycles!r}")
    if sample_size > population_size:
        raise ValidationError(f"sample_size ({sample_size}) must not exceed population_size ({population_size})")


def _tournament_parent(population: deque, idx: np.ndarray, tie_rtol: float, tie_atol: float):
    """The first sampled individual whose fitness ties with the best of the sample."""
    fits = [population[i][1] for i in idx]
    best = min(fits)
    limit = best + tie_rtol * abs(best) + tie_atol if math.isfinite(best) else best
    return population[idx[next(j for j, f in enumerate(fits) if f <= limit)]][0]


def regularized_evolution(fitness: Callable, n_vars: int | None = None, *, population_size: int = 100,
                          sample_size: int = 10, n_cycles: int = 1000, init_depth: int = 3,
                          max_size: int = 25, tie_rtol: float = 1e-6, tie_atol: float = 1e-12,
                          init: Callable | None = None,
                          mutate: Callable | None = None, random_state=0) -> EvolutionResult:
    """Regularized (aging) evolution minimising ``fitness`` over expression trees.

    Each cycle samples ``sample_size`` individuals of the population at random, mutates the fittest
    (lowest ``fitness``) and adds the child, removing the *oldest* individual (not the worst). Fitness
    values within ``tie_atol + tie_rtol·|best|`` of the best in the sample count as ties, won by the first
    sampled: equivalent candidates whose fitness differs only by float noise then never change the
    search, so a run with an :class:`~hashlearn.apps.funchash.EvaluationCache` follows the same trajectory
    as one without.

    Parameters
    ----------
    fitness : callable
        ``fitness(candidate) -> float``, lower is better (e.g.
        :class:`~hashlearn.apps.funchash.LinearScaledMSE`, possibly wrapped in an
        :class:`~hashlearn.apps.funchash.EvaluationCache`). NaN is treated as ``inf``.
    n_vars : int, optional
        Number of input variables of the expression trees (needed unless ``init`` and ``mutate`` are
        given).
    population_size, sample_size, n_cycles : int
        Population size P, tournament size S, number of children C.
    init_depth, max_size : int
        Depth of the random initial trees; maximum size (nodes) of a mutated child.
    tie_rtol, tie_atol : float, default 1e-6, 1e-12
        Tolerances of tournament ties (both 0: strict minimum).
    init, mutate : callable, optional
        ``init(rng) -> candidate`` and ``mutate(candidate, rng) -> candidate`` for other search spaces
        (e.g. neural architectures); default: random expression trees and :func:`mutate_expr`.
    random_state : int or None
        Seed: equal seeds and equal fitness values give the same search.

    Returns
    -------
    EvolutionResult

    References
    ----------
    E. Real, A. Aggarwal, Y. Huang, Q. V. Le, "Regularized Evolution for Image Classifier Architecture
    Search", AAAI 2019.
    """
    _check_search_params(population_size, sample_size, n_cycles, n_vars, init is None or mutate is None)
    if init is None:
        init = partial(random_expr, n_vars=n_vars, max_depth=init_depth)
    if mutate is None:
        mutate = partial(mutate_expr, n_vars=n_vars, max_size=max_size)
    rng = np.random.default_rng(random_state)
    t0 = time.perf_counter()
    score = _Recorder(fitness)
    population: deque = deque()
    for _ in range(population_size):
        e = init(rng)
        population.append((e, score(e)))
    for _ in range(n_cycles):
        idx = rng.choice(len(population), size=sample_size, replace=False)
        child = mutate(_tournament_parent(population, idx, tie_rtol, tie_atol), rng)
        population.append((child, score(child)))
        population.popleft()
    h = np.asarray(score.history, dtype=np.float64)
    return EvolutionResult(best=score.best, best_fitness=score.best_fitness, history=h,
                           best_so_far=np.minimum.accumulate(h), seconds=time.perf_counter() - t0)
