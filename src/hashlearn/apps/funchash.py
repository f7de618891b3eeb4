"""Functional hashing: one key for candidates that compute the same function, and a cache built on it.

A search loop (evolution, random search, AutoML) often proposes candidates that are written
differently but compute the same thing: ``x*(y+1)`` and ``x*y + x``, a network with an extra identity
layer, a lambda and a ``def``. Evaluating such a candidate again (fitting it, training it) is wasted
work. :class:`FunctionalHasher` runs a candidate on a fixed, seeded set of probe inputs and hashes its
outputs, quantised to a tolerance, so equivalent candidates share a key; :class:`EvaluationCache`
looks the key up before calling the expensive evaluation.

What a candidate can be
-----------------------
* an :class:`Expr` (the small arithmetic expression tree of this module),
* a Python callable (called on the probe columns, the probe matrix, or probe by probe: ``call``),
* a ``torch.nn.Module``: a deep copy is re-initialised with fixed, seeded weights (parameter by
  parameter, in registration order, so that architectures that differ only by parameter-free layers
  get the same weights) and run in float64, eval mode, without gradients. torch is imported only when
  such a candidate is hashed.

Quantisation and boundaries
---------------------------
Each output ``v`` is mapped to ``t = sign(v) · log1p(|v| · rtol / atol) / rtol``: one unit of ``t`` is
``rtol·|v|`` for large ``|v|`` and ``atol`` near zero, so "equal within ``max(atol, rtol·|v|)``" becomes
"within one cell". The cell index is ``floor(t + offset)`` with a seeded random offset per output
position, so cell boundaries do not sit on round numbers (``1.0``, ``0.5``) that search spaces produce
all the time. Two values that differ by float noise can still straddle a boundary (a *false split*):
a coordinate whose ``t`` lies within ``boundary`` cells of a boundary is *ambiguous*, and a lookup also
probes the keys with up to ``max_flips`` ambiguous coordinates moved to the neighbouring cell. Hence two
outputs closer than ``boundary`` cells in every coordinate always find each other (when at most
``max_flips`` coordinates are ambiguous). Keys are 128-bit BLAKE2b digests of the cell indices.

NaN, +inf and -inf get their own cells; a candidate that raises (or returns something that is not
numeric) gets the key of its exception type, so all candidates failing the same way share one key
(``on_error="raise"`` re-raises instead). Floating-point warnings are silenced during probing.

References
----------
R. Gillard et al., "Unified Functional Hashing in Automatic Machine Learning", 2023.

E. Real, A. Aggarwal, Y. Huang, Q. V. Le, "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019 (the search loop of :func:`regularized_evolution`).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import numbers
import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import NotFittedError, ValidationError

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

# -------------------------------------------------------------------------------------------------
# expression trees
# -------------------------------------------------------------------------------------------------

_UNARY: dict[str, Callable] = {
    "neg": np.negative,
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "square": np.square,
    "inv": np.reciprocal,
}
_BINARY: dict[str, Callable] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_CONSTANTS = (0.5, 1.0, 2.0, 3.0, math.pi)


@dataclass(frozen=True)
class Expr:
    """An arithmetic expression tree: a variable, a constant, or an operator applied to sub-trees.

    Build one with :meth:`var`, :meth:`const` and the Python operators (``+ - * /``, unary ``-``) or
    :meth:`apply` for the unary functions (``sin cos exp log sqrt square inv neg``). Trees are
    immutable and hashable (structurally); :meth:`evaluate` is vectorised over rows.

    Parameters
    ----------
    op : str
        ``"var"``, ``"const"``, a unary operator or a binary operator (``add sub mul div``).
    children : tuple of Expr
        Operands (empty for leaves).
    value : int or float
        The variable index (``op="var"``) or the constant (``op="const"``).

    Examples
    --------
    >>> import numpy as np
    >>> x, y = Expr.var(0), Expr.var(1)
    >>> e = x * (y + 1.0)
    >>> str(e)
    '(x0 * (x1 + 1))'
    >>> e.evaluate(np.array([[2.0, 3.0]])).tolist()
    [8.0]
    """

    op: str
    children: tuple = ()
    value: float = 0.0

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def var(index: int) -> "Expr":
        """The input column ``index``."""
        if not isinstance(index, numbers.Integral) or index < 0:
            raise ValidationError(f"variable index must be a non-negative integer, got {index!r}")
        return Expr("var", (), int(index))

    @staticmethod
    def const(value: float) -> "Expr":
        """A constant."""
        if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise ValidationError(f"constant must be a finite real number, got {value!r}")
        return Expr("const", (), float(value))

    @staticmethod
    def apply(op: str, *children: "Expr") -> "Expr":
        """``op`` applied to ``children``; the number of children must match the operator's arity."""
        arity = 1 if op in _UNARY else 2 if op in _BINARY else None
        if arity is None:
            raise ValidationError(
                f"unknown operator {op!r}; known: {', '.join(sorted(_UNARY) + sorted(_BINARY))}"
            )
        if len(children) != arity:
            raise ValidationError(f"operator {op!r} takes {arity} operand(s), got {len(children)}")
        kids = tuple(c if isinstance(c, Expr) else Expr.const(c) for c in children)
        return Expr(op, kids, 0.0)

    def _bin(self, op, other, swap=False):
        other = other if isinstance(other, Expr) else Expr.const(other)
        return Expr.apply(op, other, self) if swap else Expr.apply(op, self, other)

    def __add__(self, o):
        return self._bin("add", o)

    def __radd__(self, o):
        return self._bin("add", o, True)

    def __sub__(self, o):
        return self._bin("sub", o)

    def __rsub__(self, o):
        return self._bin("sub", o, True)

    def __mul__(self, o):
        return self._bin("mul", o)

    def __rmul__(self, o):
        return self._bin("mul", o, True)

    def __truediv__(self, o):
        return self._bin("div", o)

    def __rtruediv__(self, o):
        return self._bin("div", o, True)

    def __neg__(self):
        return Expr.apply("neg", self)

    # -- inspection --------------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        return not self.children

    def size(self) -> int:
        """Number of nodes."""
        return 1 + sum(c.size() for c in self.children)

    def depth(self) -> int:
        """Length of the longest root-to-leaf path (a leaf has depth 0)."""
        return 0 if not self.children else 1 + max(c.depth() for c in self.children)

    def n_vars(self) -> int:
        """1 + the largest variable index used (0 for a constant expression)."""
        if self.op == "var":
            return int(self.value) + 1
        return max((c.n_vars() for c in self.children), default=0)

    def paths(self) -> list[tuple[int, ...]]:
        """Paths (tuples of child positions) of every node, pre-order; ``()`` is the root."""
        out = [()]
        for i, c in enumerate(self.children):
            out += [(i, *p) for p in c.paths()]
        return out

    def at(self, path: tuple[int, ...]) -> "Expr":
        node = self
        for i in path:
            node = node.children[i]
        return node

    def replace(self, path: tuple[int, ...], new: "Expr") -> "Expr":
        """A copy with the node at ``path`` replaced by ``new``."""
        if not path:
            return new
        kids = list(self.children)
        kids[path[0]] = kids[path[0]].replace(path[1:], new)
        return Expr(self.op, tuple(kids), self.value)

    def __str__(self) -> str:
        if self.op == "var":
            return f"x{int(self.value)}"
        if self.op == "const":
            return f"{self.value:g}"
        if self.op in _INFIX:
            a, b = self.children
            return f"({a} {_INFIX[self.op]} {b})"
        return f"{self.op}({self.children[0]})"

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, X) -> np.ndarray:
        """Values on the rows of ``X`` (n, n_columns): a float64 array of shape (n,).

        Floating-point errors are not raised: division by zero gives ±inf, ``log(-1)`` NaN, as numpy
        does. Raises :class:`ValidationError` if ``X`` has fewer columns than the variables used.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValidationError(f"X must be 2-D (n, n_columns), got shape {X.shape}")
        try:
            with np.errstate(all="ignore"):
                out = self._eval(X)
        except IndexError:
            raise ValidationError(f"expression uses x{self.n_vars() - 1} but X has {X.shape[1]} columns") from None
        if np.ndim(out) == 0:
            return np.full(X.shape[0], out, dtype=np.float64)
        return out if out.base is None and out is not X else np.array(out, dtype=np.float64)

    def _eval(self, X):
        if self.op == "var":
            return X[:, int(self.value)]
        if self.op == "const":
            return np.float64(self.value)
        if self.op in _UNARY:
            return _UNARY[self.op](self.children[0]._eval(X))
        return _BINARY[self.op](self.children[0]._eval(X), self.children[1]._eval(X))

    __call__ = evaluate


# -------------------------------------------------------------------------------------------------
# the functional hash
# -------------------------------------------------------------------------------------------------

_NAN_CELL = np.iinfo(np.int64).min
_POSINF_CELL = np.iinfo(np.int64).max
_NEGINF_CELL = np.iinfo(np.int64).min + 1


@dataclass(frozen=True)
class Fingerprint:
    """What :meth:`FunctionalHasher.fingerprint` computes for one candidate.

    Attributes
    ----------
    key : str
        32 hex digits; equal for candidates with equal quantised outputs.
    neighbours : tuple of str
        Keys of the same outputs with ambiguous (near-boundary) coordinates moved to the adjacent cell;
        a lookup should try them after ``key``.
    values : ndarray of shape (n_outputs,), float64, or None
        The raw probe outputs, flattened (None when the candidate failed).
    error : str or None
        The exception type name when the candidate raised or returned something non-numeric.
    n_ambiguous : int
        Number of near-boundary coordinates (only ``max_flips`` of them are probed).
    """

    key: str
    neighbours: tuple = ()
    values: np.ndarray | None = field(default=None, compare=False)
    error: str | None = None
    n_ambiguous: int = 0

    @property
    def lookup_keys(self) -> tuple:
        return (self.key, *self.neighbours)


class FunctionalHasher:
    """Hash a candidate function by its outputs on fixed, seeded probe inputs.

    Parameters
    ----------
    n_probes : int, default 32
        Number of probe inputs.
    n_features : int or tuple of int, default 1
        Shape of one probe input: the number of variables of an expression or callable, or the input
        shape of a torch module (e.g. ``(3, 8, 8)``). Ignored when ``fit`` receives data.
    low, high : float, default -2.0, 2.0
        Probes are drawn uniformly in ``[low, high)`` (per coordinate) when ``fit`` gets no data.
    rtol, atol : float, default 1e-6, 1e-9
        Width of a quantisation cell: ``rtol·|v|`` for large outputs, ``atol`` near zero.
    boundary : float, default 1e-2
        Fraction of a cell: a coordinate this close to a cell boundary is ambiguous and its neighbour
        cell is probed too (0 disables neighbour probing). Outputs that differ by less than this
        fraction of the tolerance (float noise) are always found; about ``2·boundary`` of the
        coordinates are ambiguous.
    max_flips : int, default 4
        At most this many ambiguous coordinates (the closest to a boundary) are flipped, i.e. at most
        ``2**max_flips - 1`` neighbour keys.
    call : {"columns", "matrix", "rows"}, default "columns"
        How a plain callable is called: ``f(x0, x1, ...)`` on the probe columns (vectorised), ``f(X)``
        on the probe matrix, or ``f(*row)`` once per probe (scalar code, e.g. the ``math`` module).
    on_error : {"key", "raise"}, default "key"
        ``"key"``: a candidate that raises gets the key of its exception type; ``"raise"``: re-raise.
    reinit : bool, default True
        Re-initialise torch modules with fixed seeded weights (on a copy) before probing. With False
        the module's own weights are used (then "same function" means same architecture *and* weights).
    random_state : int or None, default 0
        Seed of the probes, the cell offsets and the torch initialisation.

    Attributes
    ----------
    probes_ : ndarray of shape (n_probes, *input_shape), float64
        The probe inputs.
    seed_ : int
        Seed derived at fit time for the cell offsets and torch weights.

    References
    ----------
    R. Gillard et al., "Unified Functional Hashing in Automatic Machine Learning", 2023.

    Examples
    --------
    >>> h = FunctionalHasher(n_features=2, random_state=0).fit()
    >>> h.hash(lambda x, y: x * (y + 1)) == h.hash(lambda x, y: x * y + x)
    True
    >>> h.hash(lambda x, y: x * (y + 1)) == h.hash(lambda x, y: x * y + y)
    False
    """

    def __init__(self, n_probes=32, *, n_features=1, low=-2.0, high=2.0, rtol=1e-6, atol=1e-9,
                 boundary=1e-2, max_flips=4, call="columns", on_error="key", reinit=True, random_state=0):
        self.n_probes = n_probes
        self.n_features = n_features
        self.low = low
        self.high = high
        self.rtol = rtol
        self.atol = atol
        self.boundary = boundary
        self.max_flips = max_flips
        self.call = call
        self.on_error = on_error
        self.reinit = reinit
        self.random_state = random_state

    # -- sklearn-style plumbing --------------------------------------------------------------------
    def get_params(self, deep=False) -> dict:
        return {k: getattr(self, k) for k in (
            "n_probes", "n_features", "low", "high", "rtol", "atol", "boundary", "max_flips", "call",
            "on_error", "reinit", "random_state")}

    def __repr__(self) -> str:
        return f"FunctionalHasher({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _check_params(self) -> None:
        if not isinstance(self.n_probes, numbers.Integral) or self.n_probes < 1:
            raise ValidationError(f"n_probes must be a positive integer, got {self.n_probes!r}")
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or not (v > 0 and math.isfinite(v)):
                raise ValidationError(f"{name} must be a positive finite number, got {v!r}")
        if not isinstance(self.boundary, numbers.Real) or not 0 <= self.boundary < 0.5:
            raise ValidationError(f"boundary must be in [0, 0.5), got {self.boundary!r}")
        if not isinstance(self.max_flips, numbers.Integral) or not 0 <= self.max_flips <= 16:
            raise ValidationError(f"max_flips must be an integer in [0, 16], got {self.max_flips!r}")
        if self.call not in ("columns", "matrix", "rows"):
            raise ValidationError(f"call must be 'columns', 'matrix' or 'rows', got {self.call!r}")
        if self.on_error not in ("key", "raise"):
            raise ValidationError(f"on_error must be 'key' or 'raise', got {self.on_error!r}")
        if not (isinstance(self.low, numbers.Real) and isinstance(self.high, numbers.Real)
                and math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValidationError(f"need finite low < high, got low={self.low!r}, high={self.high!r}")
        if self.random_state is not None and not isinstance(self.random_state, numbers.Integral):
            raise ValidationError(f"random_state must be an int or None, got {type(self.random_state).__name__}")

    def _input_shape(self) -> tuple:
        nf = self.n_features
        shape = (nf,) if isinstance(nf, numbers.Integral) else tuple(nf) if isinstance(nf, (tuple, list)) else None
        if not shape or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape):
            raise ValidationError(f"n_features must be a positive int or a tuple of them, got {nf!r}")
        return tuple(int(s) for s in shape)

    def fit(self, X=None, y=None):
        """Draw the probes; with data ``X`` (n, d), uniformly in the bounding box of its rows.

        Parameters
        ----------
        X : array-like of shape (n, d), optional
            Example inputs (finite). Probes are drawn in the box ``[min(X), max(X)]`` per column, so
            "equivalent" means equivalent on the region the data occupies.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        if X is None:
            shape = self._input_shape()
            probes = rng.uniform(float(self.low), float(self.high), size=(int(self.n_probes), *shape))
        else:
            from ..io.readers import check_vectors

            X = check_vectors(X, name="X", dtype=np.float64)
            lo, hi = X.min(axis=0), X.max(axis=0)
            probes = lo + (hi - lo) * rng.random((int(self.n_probes), X.shape[1]))
        self.probes_ = np.ascontiguousarray(probes, dtype=np.float64)
        self.seed_ = int(rng.integers(0, 2**62))
        self._offsets: dict[int, np.ndarray] = {}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "probes_"):
            raise NotFittedError("this FunctionalHasher is not fitted yet: call fit() first")

    # -- probing -----------------------------------------------------------------------------------
    def outputs(self, candidate) -> np.ndarray:
        """Outputs of ``candidate`` on the probes, as float64 of shape (n_probes, ...).

        Raises whatever the candidate raises; a non-numeric result raises ``TypeError``.
        """
        self._check_fitted()
        P = self.probes_
        with np.errstate(all="ignore"):
            if isinstance(candidate, Expr):
                if P.ndim != 2:
                    raise ValidationError(f"expressions need 2-D probes, these have shape {P.shape}")
                out = candidate.evaluate(P)
            elif _is_torch_module(candidate):
                out = self._torch_outputs(candidate)
            elif callable(candidate):
                out = self._call(candidate, P)
            else:
                raise ValidationError(
                    f"a candidate must be an Expr, a callable or a torch module, got {type(candidate).__name__}"
                )
        return _as_float_output(out, P.shape[0])

    def _call(self, f, P):
        if self.call == "matrix":
            return f(P)
        if self.call == "columns":
            cols = P.reshape(P.shape[0], -1).T
            return f(*cols)
        return np.array([np.asarray(f(*np.ravel(row)), dtype=np.float64) for row in P])

    def _torch_outputs(self, module):
        import torch

        m = copy.deepcopy(module).double()
        if self.reinit:
            _fixed_init(m, self.seed_)
        m.eval()
        with torch.no_grad():
            out = m(torch.from_numpy(self.probes_.copy()))
        if isinstance(out, (tuple, list)):
            out = torch.cat([o.reshape(o.shape[0], -1) for o in out], dim=1)
        return out.detach().cpu().numpy()

    # -- quantisation ------------------------------------------------------------------------------
    def _cell_offsets(self, m: int) -> np.ndarray:
        off = self._offsets.get(m)
        if off is None:
            off = np.random.default_rng([self.seed_, m]).random(m)
            self._offsets[m] = off
        return off

    def quantize(self, values) -> tuple[np.ndarray, np.ndarray]:
        """Cell indices (int64) and positions within the cell in [0, 1) of flattened ``values``."""
        self._check_fitted()
        v = np.ascontiguousarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(v)
        rtol, atol = float(self.rtol), float(self.atol)
        with np.errstate(all="ignore"):
            a = np.abs(v)
            # log1p(a * rtol / atol) without overflow for huge a
            logs = np.where(a > 1e250, np.log(a) + math.log(rtol / atol), np.log1p(a * (rtol / atol)))
            t = np.sign(v) * logs / rtol + self._cell_offsets(v.size)
        all_finite = bool(finite.all())
        if not all_finite:
            t = np.where(finite, t, 0.5)
        cells = np.floor(t)
        frac = t - cells
        cells = cells.astype(np.int64)
        if not all_finite:
            cells[np.isnan(v)] = _NAN_CELL
            cells[np.isposinf(v)] = _POSINF_CELL
            cells[np.isneginf(v)] = _NEGINF_CELL
            frac[~finite] = 0.5
        return cells, frac

    def fingerprint(self, candidate) -> Fingerprint:
        """Key, neighbour keys and raw outputs of ``candidate`` (see :class:`Fingerprint`)."""
        self._check_fitted()
        try:
            out = self.outputs(candidate)
        except ValidationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the candidate's own failure is part of its hash
            if self.on_error == "raise":
                raise
            name = type(exc).__name__
            return Fingerprint(key=_digest(b"error:" + name.encode()), error=name)
        cells, frac = self.quantize(out)
        header = np.array(out.shape, dtype=np.int64).tobytes()
        key = _digest(header + cells.tobytes())
        neighbours: tuple = ()
        n_amb = 0
        if self.boundary > 0 and self.max_flips > 0:
            b = float(self.boundary)
            low = frac < b
            high = frac > 1.0 - b
            amb = np.flatnonzero(low | high)
            n_amb = int(amb.size)
            if n_amb:
                closeness = np.minimum(frac[amb], 1.0 - frac[amb])
                amb = amb[np.argsort(closeness, kind="stable")[: int(self.max_flips)]]
                step = np.where(low[amb], -1, 1).astype(np.int64)
                keys = []
                for r in range(1, amb.size + 1):
                    for subset in itertools.combinations(range(amb.size), r):
                        c = cells.copy()
                        idx = list(subset)
                        c[amb[idx]] += step[idx]
                        keys.append(_digest(header + c.tobytes()))
                neighbours = tuple(keys)
        return Fingerprint(key=key, neighbours=neighbours, values=out.ravel(), n_ambiguous=n_amb)

    def hash(self, candidate) -> str:
        """The key of ``candidate``: 32 hex digits."""
        return self.fingerprint(candidate).key

    __call__ = hash


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _is_torch_module(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _fixed_init(module, seed: int) -> None:
    """Overwrite every parameter, in registration order, with seeded uniform(±1/sqrt(fan_in)) values."""
    import torch

    rng = np.random.default_rng([seed, 7])
    with torch.no_grad():
        for p in module.parameters():
            shape = tuple(p.shape)
            fan_in = int(np.prod(shape[1:])) if len(shape) >= 2 else max(1, shape[0] if shape else 1)
            bound = 1.0 / math.sqrt(fan_in)
            vals = rng.uniform(-bound, bound, size=shape)
            p.copy_(torch.from_numpy(vals).to(p.dtype))


def _as_float_output(out, n_probes: int) -> np.ndarray:
    if _is_torch_tensor(out):
        out = out.detach().cpu().numpy()
    arr = np.asarray(out)
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise TypeError(f"candidate returned non-numeric output of dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        arr = np.stack([arr.real, arr.imag], axis=-1)
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 0:  # a constant function
        arr = np.full((n_probes,), float(arr))
    elif arr.shape[0] != n_probes:
        raise TypeError(f"candidate returned {arr.shape[0]} rows for {n_probes} probes")
    return arr


def _is_torch_tensor(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


# -------------------------------------------------------------------------------------------------
# the evaluation cache
# -------------------------------------------------------------------------------------------------


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


# -------------------------------------------------------------------------------------------------
# symbolic regression by regularized evolution (the demo search loop)
# -------------------------------------------------------------------------------------------------

FEYNMAN_EQUATIONS: dict[str, tuple[int, Callable, str]] = {
    # name: (n_vars, f, formula) -- from the AI Feynman database (Udrescu & Tegmark, Science Advances
    # 2020), variables sampled uniformly in [1, 5] as in that paper.
    "I.12.2": (4, lambda q1, q2, eps, r: q1 * q2 / (4 * np.pi * eps * r**2), "q1*q2/(4*pi*epsilon*r^2)"),
    "I.14.3": (3, lambda m, g, z: m * g * z, "m*g*z"),
    "I.18.4": (4, lambda m1, m2, r1, r2: (m1 * r1 + m2 * r2) / (m1 + m2), "(m1*r1+m2*r2)/(m1+m2)"),
    "II.3.24": (2, lambda p, r: p / (4 * np.pi * r**2), "Pwr/(4*pi*r^2)"),
    "I.34.27": (2, lambda h, w: h / (2 * np.pi) * w, "h/(2*pi)*omega"),
}


def feynman_dataset(name: str = "I.12.2", n_samples: int = 10_000, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X`` (n_samples, n_vars) float64 drawn in [1, 5] and the equation's exact outputs ``y``.

    Equations from S.-M. Udrescu, M. Tegmark, "AI Feynman: a physics-inspired method for symbolic
    regression", Science Advances 2020 (its table of Feynman equations, same sampling range).
    """
    if name not in FEYNMAN_EQUATIONS:
        raise ValidationError(f"unknown Feynman equation {name!r}; known: {', '.join(FEYNMAN_EQUATIONS)}")
    if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValidationError(f"n_samples must be a positive integer, got {n_samples!r}")
    n_vars, f, _ = FEYNMAN_EQUATIONS[name]
    X = np.random.default_rng(random_state).uniform(1.0, 5.0, size=(int(n_samples), n_vars))
    return X, f(*X.T)


class LinearScaledMSE:
    """Fitness of an expression: normalised MSE after the best affine rescaling ``a + b·f(X)``.

    Linear scaling (M. Keijzer, "Improving Symbolic Regression with Interval Arithmetic and Linear
    Scaling", EuroGP 2003) lets the search ignore scale and offset constants. Returns
    ``mean((y - a - b f)^2) / var(y)`` (lower is better); ``inf`` when ``f`` has a non-finite value.

    Parameters
    ----------
    X : array-like of shape (n, n_vars)
    y : array-like of shape (n,)
    repeats : int, default 1
        Evaluate this many times (a stand-in for a costlier evaluation, e.g. training; the result
        does not change).
    """

    def __init__(self, X, y, *, repeats=1):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        if self.X.ndim != 2 or self.y.shape != (self.X.shape[0],) or self.X.shape[0] < 2:
            raise ValidationError(f"need X (n, d) and y (n,) with n >= 2, got {self.X.shape} and {self.y.shape}")
        if not (np.all(np.isfinite(self.X)) and np.all(np.isfinite(self.y))):
            raise ValidationError("X and y must be finite")
        self.repeats = int(repeats)
        self._var = float(np.var(self.y)) or 1.0

    def __call__(self, expr: Expr) -> float:
        for _ in range(self.repeats):
            f = expr.evaluate(self.X)
            if not np.all(np.isfinite(f)):
                return math.inf
            fc = f - f.mean()
            denom = float(fc @ fc)
            yc = self.y - self.y.mean()
            b = float(fc @ yc) / denom if denom > 1e-12 * f.size else 0.0
            resid = yc - b * fc
            value = float(resid @ resid) / f.size / self._var
        return value


def random_expr(rng: np.random.Generator, n_vars: int, max_depth: int = 3, *, p_leaf: float = 0.3,
                p_const: float = 0.25) -> Expr:
    """A random expression tree (grow method) over ``n_vars`` variables, depth at most ``max_depth``."""
    if max_depth <= 0 or rng.random() < p_leaf:
        if rng.random() < p_const:
            return Expr.const(float(_CONSTANTS[rng.integers(len(_CONSTANTS))]))
        return Expr.var(int(rng.integers(n_vars)))
    if rng.random() < 0.7:
        op = _BINARY_OPS[rng.integers(len(_BINARY_OPS))]
        return Expr(op, (random_expr(rng, n_vars, max_depth - 1, p_leaf=p_leaf, p_const=p_const),
                         random_expr(rng, n_vars, max_depth - 1, p_leaf=p_leaf, p_const=p_const)))
    op = _UNARY_OPS[rng.integers(len(_UNARY_OPS))]
    return Expr(op, (random_expr(rng, n_vars, max_depth - 1, p_leaf=p_leaf, p_const=p_const),))


_BINARY_OPS = tuple(sorted(_BINARY))
_UNARY_OPS = tuple(sorted(_UNARY))


def mutate_expr(expr: Expr, rng: np.random.Generator, n_vars: int, *, max_size: int = 25) -> Expr:
    """One random mutation: replace a subtree, change an operator, change a leaf, wrap a node in an
    operator, or hoist a child. Retries (up to 20 times) until the result has at most ``max_size`` nodes.
    """
    for _ in range(20):
        paths = expr.paths()
        path = paths[rng.integers(len(paths))]
        node = expr.at(path)
        kind = rng.integers(5)
        if kind == 0:  # new random subtree
            new = random_expr(rng, n_vars, max_depth=2)
        elif kind == 1 and not node.is_leaf:  # same-arity operator change
            ops = _UNARY_OPS if node.op in _UNARY else _BINARY_OPS
            new = Expr(ops[rng.integers(len(ops))], node.children)
        elif kind == 2 and node.is_leaf or kind == 1:  # leaf change
            new = random_expr(rng, n_vars, max_depth=0)
        elif kind == 3:  # wrap in an operator
            if rng.random() < 0.5:
                new = Expr(_UNARY_OPS[rng.integers(len(_UNARY_OPS))], (node,))
            else:
                other = random_expr(rng, n_vars, max_depth=1)
                op = _BINARY_OPS[rng.integers(len(_BINARY_OPS))]
                new = Expr(op, (node, other) if rng.random() < 0.5 else (other, node))
        else:  # hoist a child (or leaf change for leaves)
            new = node.children[rng.integers(len(node.children))] if node.children else random_expr(rng, n_vars, 0)
        child = expr.replace(path, new)
        if child.size() <= max_size:
            return child
    return expr


def equivalent_rewrite(expr: Expr, rng: np.random.Generator, n_rewrites: int = 3) -> Expr:
    """An algebraically equal expression written differently (for measuring false splits).

    Applies ``n_rewrites`` identities at random nodes: commutativity of ``+``/``*``, ``a → (a + 1) - 1``,
    ``a → (a·3)/3``, ``a → (a·0.1)·10``, ``a·(b + c) → a·b + a·c``, ``a - b → a + (-b)``,
    ``square(a) → a·a``, ``a/b → a·inv(b)``, ``a → 1·a``. They hold exactly in real arithmetic; in
    floating point most of them change the last bits, which the hash's tolerance must absorb.
    """
    for _ in range(n_rewrites):
        paths = expr.paths()
        path = paths[rng.integers(len(paths))]
        a = expr.at(path)
        r = rng.integers(8)
        if r == 0 and a.op in ("add", "mul"):
            new = Expr(a.op, (a.children[1], a.children[0]))
        elif r == 1:
            new = Expr("mul", (Expr("mul", (a, Expr.const(0.1))), Expr.const(10.0)))
        elif r == 2:
            new = Expr("sub", (Expr("add", (a, Expr.const(1.0))), Expr.const(1.0)))
        elif r == 3:
            new = Expr("div", (Expr("mul", (a, Expr.const(3.0))), Expr.const(3.0)))
        elif r == 4 and a.op == "mul" and a.children[1].op == "add":
            x, (b, c) = a.children[0], a.children[1].children
            new = Expr("add", (Expr("mul", (x, b)), Expr("mul", (x, c))))
        elif r == 5 and a.op == "sub":
            new = Expr("add", (a.children[0], Expr("neg", (a.children[1],))))
        elif r == 6 and a.op == "square":
            new = Expr("mul", (a.children[0], a.children[0]))
        elif r == 7 and a.op == "div":
            new = Expr("mul", (a.children[0], Expr("inv", (a.children[1],))))
        else:
            new = Expr("mul", (Expr.const(1.0), a))
        expr = expr.replace(path, new)
    return expr


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
    search, so a run with an :class:`EvaluationCache` follows the same trajectory as one without.

    Parameters
    ----------
    fitness : callable
        ``fitness(candidate) -> float``, lower is better (e.g. :class:`LinearScaledMSE`, possibly
        wrapped in an :class:`EvaluationCache`). NaN is treated as ``inf``.
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
    checks = [("population_size", population_size), ("sample_size", sample_size)]
    if init is None or mutate is None:
        checks.append(("n_vars", n_vars))
    for name, v in checks:
        if not isinstance(v, numbers.Integral) or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v!r}")
    if init is None:
        def init(rng):
            return random_expr(rng, n_vars, init_depth)
    if mutate is None:
        def mutate(e, rng):
            return mutate_expr(e, rng, n_vars, max_size=max_size)
    if not isinstance(n_cycles, numbers.Integral) or n_cycles < 0:
        raise ValidationError(f"n_cycles must be a non-negative integer, got {n_cycles!r}")
    if sample_size > population_size:
        raise ValidationError(f"sample_size ({sample_size}) must not exceed population_size ({population_size})")
    rng = np.random.default_rng(random_state)
    t0 = time.perf_counter()
    history: list[float] = []
    population: deque = deque()
    best, best_fit = None, math.inf

    def score(e):
        nonlocal best, best_fit
        f = float(fitness(e))
        if math.isnan(f):
            f = math.inf
        history.append(f)
        if best is None or f < best_fit:
            best, best_fit = e, f
        return f

    for _ in range(population_size):
        e = init(rng)
        population.append((e, score(e)))
    for _ in range(n_cycles):
        idx = rng.choice(len(population), size=sample_size, replace=False)
        fits = [population[i][1] for i in idx]
        best_in_sample = min(fits)
        limit = best_in_sample + tie_rtol * abs(best_in_sample) + tie_atol if math.isfinite(best_in_sample) \
            else best_in_sample
        parent = population[idx[next(j for j, f in enumerate(fits) if f <= limit)]][0]
        child = mutate(parent, rng)
        population.append((child, score(child)))
        population.popleft()
    h = np.asarray(history, dtype=np.float64)
    return EvolutionResult(best=best, best_fitness=best_fit, history=h, best_so_far=np.minimum.accumulate(h),
                           seconds=time.perf_counter() - t0)


# -------------------------------------------------------------------------------------------------
# measurements (used by the benchmark and ``hashlearn bench funchash``)
# -------------------------------------------------------------------------------------------------


def regression_task(name: str = "I.12.2", n_samples: int = 100_000, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a symbolic-regression task: a Feynman equation (see :data:`FEYNMAN_EQUATIONS`) or
    ``"diabetes"`` (scikit-learn's diabetes data, 442 patients, 10 standardised features; ``n_samples``
    is ignored)."""
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        X, y = load_diabetes(return_X_y=True)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        return X.astype(np.float64), y.astype(np.float64)
    return feynman_dataset(name, n_samples, random_state)


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
    eq = split_primary = split_lookup = 0
    noisy_primary = noisy_lookup = 0
    diff = collide = 0
    t_hash = 0.0
    n_hashed = 0
    while eq < n_pairs or diff < n_pairs:
        e = random_expr(rng, n_vars, max_depth=4, p_leaf=0.2)
        if e.size() < 3:
            continue
        if eq < n_pairs:
            e2 = equivalent_rewrite(e, rng, n_rewrites=3)
            t0 = time.perf_counter()
            f1, f2 = h.fingerprint(e), h.fingerprint(e2)
            t_hash += time.perf_counter() - t0
            n_hashed += 2
            eq += 1
            split_primary += f1.key != f2.key
            split_lookup += f1.key not in f2.lookup_keys
            u = rng.uniform(-1.0, 1.0, size=n_probes)
            fn = h.fingerprint(lambda *cols, e=e, u=u: e.evaluate(np.stack(cols, axis=1)) * (1.0 + noise * u))
            noisy_primary += f1.key != fn.key
            noisy_lookup += f1.key not in fn.lookup_keys
        if diff < n_pairs:
            m = mutate_expr(e, rng, n_vars)
            with np.errstate(all="ignore"):
                a, b = e.evaluate(Xc), m.evaluate(Xc)
            same = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True) | (a == b)
            if same.all():
                continue  # the mutation did not change the function on the box: not a "different" pair
            diff += 1
            f1, f2 = h.fingerprint(e), h.fingerprint(m)
            collide += f1.key in f2.lookup_keys
    return {
        "rtol": rtol, "atol": atol, "boundary": boundary, "n_probes": n_probes,
        "equivalent_pairs": eq, "split_primary": split_primary, "split_lookup": split_lookup,
        "split_primary_rate": split_primary / eq, "split_lookup_rate": split_lookup / eq,
        "noise": noise, "noisy_split_primary": noisy_primary, "noisy_split_lookup": noisy_lookup,
        "different_pairs": diff, "collisions": collide, "collision_rate": collide / diff,
        "hash_us_per_candidate": 1e6 * t_hash / max(1, n_hashed),
    }


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
    n_vars = X.shape[1]

    def hasher():
        return FunctionalHasher(n_probes, n_features=n_vars, rtol=rtol, atol=atol, random_state=random_state).fit(X)

    runs = [
        ("none", lambda: fitness),
        ("syntactic", lambda: EvaluationCache(fitness, str)),
        ("functional", lambda: EvaluationCache(fitness, hasher())),
        ("functional+check", lambda: EvaluationCache(fitness, hasher(), check=True)),
    ]
    rows, base, base_cpu = [], None, None
    for name, make in runs:
        if progress is not None:
            progress(name)
        f = make()
        c0 = time.process_time()
        res = regularized_evolution(f, n_vars, population_size=population_size, sample_size=sample_size,
                                    n_cycles=n_cycles, random_state=random_state)
        cpu = time.process_time() - c0
        st = getattr(f, "stats", None)
        calls = len(res.history)
        row = {
            "task": task, "cache": name, "seconds": res.seconds, "cpu_seconds": cpu, "calls": calls,
            "hits": st["hits"] if st else 0, "hit_rate": (st["hits"] / calls) if st else 0.0,
            "evaluations": st["evaluations"] if st else calls,
            "false_collisions": st["false_collisions"] if st and st["checked"] else None,
            "checked": st["checked"] if st else 0,
            "hash_seconds": st["hash_seconds"] if st else 0.0,
            "best_fitness": res.best_fitness, "best": str(res.best),
        }
        row["evaluations_saved"] = calls - row["evaluations"] if name != "functional+check" else row["hits"]
        if base is None:
            base = res
            row["speedup"], row["cpu_speedup"], row["same_history"] = 1.0, 1.0, True
            base_cpu = cpu
        else:
            row["speedup"] = base.seconds / res.seconds if res.seconds > 0 else None
            row["cpu_speedup"] = base_cpu / cpu if cpu > 0 else None
            row["same_history"] = bool(res.history.shape == base.history.shape and np.allclose(
                res.history, base.history, rtol=1e-6, atol=1e-12, equal_nan=True))
        rows.append(row)
    return rows
