"""Functional hashing: one key for candidates that compute the same function, and a cache built on it.

A search loop (evolution, random search, AutoML) often proposes candidates that are written
differently but compute the same thing: ``x*(y+1)`` and ``x*y + x``, a network with an extra identity
layer, a lambda and a ``def``. Evaluating such a candidate again (fitting it, training it) is wasted
work. :class:`FunctionalHasher` runs a candidate on a fixed, seeded set of probe inputs and hashes its
outputs, quantised to a tolerance, so equivalent candidates share a key; :class:`EvaluationCache`
looks the key up before calling the expensive evaluation.

What a candidate can be
-----------------------
* an :class:`Expr` (the small arithmetic expression tree of :mod:`.expr`),
* a Python callable (called on the probe columns, the probe matrix, or probe by probe: ``call``),
* a ``torch.nn.Module``: a deep copy is re-initialised with fixed, seeded weights (parameter by
  parameter, in registration order, so that architectures that differ only by parameter-free layers
  get the same weights) and run in float64, eval mode, without gradients. torch is imported only when
  such a candidate is hashed.

Quantisation and boundaries
---------------------------
Outputs are quantised to cells of width ``max(atol, rtol·|v|)`` with seeded offsets, and a lookup also
tries the neighbouring cells of near-boundary coordinates, so float noise does not split equal
candidates; NaN, ±inf and failures get keys of their own. :mod:`.hasher` gives the details.

References
----------
R. Gillard et al., "Unified Functional Hashing in Automatic Machine Learning", 2023.

E. Real, A. Aggarwal, Y. Huang, Q. V. Le, "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019 (the search loop of :func:`regularized_evolution`).

Modules
-------
:mod:`.expr` (expression trees), :mod:`.mutation` (random trees, mutations, equivalent rewrites),
:mod:`.hasher` (:class:`FunctionalHasher`), :mod:`.cache` (:class:`EvaluationCache`), :mod:`.evolution`
(:func:`regularized_evolution`), :mod:`.tasks` (regression tasks and fitness), :mod:`.benchmarks`
(:func:`hash_error_rates`, :func:`cache_benchmark`).
"""

from __future__ import annotations

from .benchmarks import cache_benchmark, hash_error_rates
from .cache import EvaluationCache
from .evolution import EvolutionResult, regularized_evolution
from .expr import Expr
from .hasher import Fingerprint, FunctionalHasher
from .mutation import equivalent_rewrite, mutate_expr, random_expr
from .tasks import FEYNMAN_EQUATIONS, LinearScaledMSE, feynman_dataset, regression_task

__all__ = [
    "Expr",
    "Fingerprint",
    "FunctionalHasher",
    "EvaluationCache",
    "LinearScaledMSE",
    "EvolutionResult",
    "random_expr",
    "mutate_expr",
    "equivalent_rewrite",
    "regularized_evolution",
    "feynman_dataset",
    "FEYNMAN_EQUATIONS",
    "regression_task",
    "hash_error_rates",
    "cache_benchmark",
]
