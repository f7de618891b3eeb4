"""Arithmetic expression trees: the small candidate language of the functional-hashing demo."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import ValidationError

__all__ = ["Expr", "UNARY_OPERATORS", "BINARY_OPERATORS"]

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


def _binary_operator(op: str, swap: bool = False):
    """The method behind ``a <op> b`` (or the reflected ``b <op> a`` when ``swap``)."""

    def method(self, other):
        return self._bin(op, other, swap)

    method.__name__ = f"__{'r' if swap else ''}{op}__"
    return method


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

    __add__, __radd__ = _binary_operator("add"), _binary_operator("add", swap=True)
    __sub__, __rsub__ = _binary_operator("sub"), _binary_operator("sub", swap=True)
    __mul__, __rmul__ = _binary_operator("mul"), _binary_operator("mul", swap=True)
    __truediv__, __rtruediv__ = _binary_operator("div"), _binary_operator("div", swap=True)

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


#: Operator names, sorted (the draws of :mod:`~hashlearn.apps.funchash.mutation` index these tuples).
UNARY_OPERATORS = tuple(sorted(_UNARY))
BINARY_OPERATORS = tuple(sorted(_BINARY))
