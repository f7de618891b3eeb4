"""Random expression trees, their mutations (the moves of the search) and equivalent rewrites (the
written-differently-but-equal candidates a functional hash must not split)."""

from __future__ import annotations

import math

import numpy as np

from .expr import BINARY_OPERATORS, UNARY_OPERATORS, Expr

__all__ = ["random_expr", "mutate_expr", "equivalent_rewrite"]

_CONSTANTS = (0.5, 1.0, 2.0, 3.0, math.pi)


def random_expr(rng: np.random.Generator, n_vars: int, max_depth: int = 3, *, p_leaf: float = 0.3,
                p_const: float = 0.25) -> Expr:
    """A random expression tree (grow method) over ``n_vars`` variables, depth at most ``max_depth``."""
    if max_depth <= 0 or rng.random() < p_leaf:
        if rng.random() < p_const:
            return Expr.const(float(_CONSTANTS[rng.integers(len(_CONSTANTS))]))
        return Expr.var(int(rng.integers(n_vars)))
    if rng.random() < 0.7:
        op = BINARY_OPERATORS[rng.integers(len(BINARY_OPERATORS))]
        return Expr(op, (random_expr(rng, n_vars, max_depth - 1, p_leaf=p_leaf, p_const=p_const),
                         random_expr(rng, n_vars, max_depth - 1, p_leaf=p_leaf, p_const=p_const)))
    op = UNARY_OPERATORS[rng.integers(len(UNARY_OPERATORS))]
    return Expr(op, (random_expr(rng, n_vars, max_depth - 1, p_leaf=p_leaf, p_const=p_const),))


def _wrap(node: Expr, rng: np.random.Generator, n_vars: int) -> Expr:
    """``node`` under a random unary operator, or beside a small random tree under a binary one."""
    if rng.random() < 0.5:
        return Expr(UNARY_OPERATORS[rng.integers(len(UNARY_OPERATORS))], (node,))
    other = random_expr(rng, n_vars, max_depth=1)
    op = BINARY_OPERATORS[rng.integers(len(BINARY_OPERATORS))]
    return Expr(op, (node, other) if rng.random() < 0.5 else (other, node))


def _mutated_node(node: Expr, kind: int, rng: np.random.Generator, n_vars: int) -> Expr:
    """The replacement of ``node`` for mutation ``kind`` (0 to 4; see :func:`mutate_expr`)."""
    if kind == 0:  # new random subtree
        return random_expr(rng, n_vars, max_depth=2)
    if kind == 1 and not node.is_leaf:  # same-arity operator change
        ops = UNARY_OPERATORS if node.op in UNARY_OPERATORS else BINARY_OPERATORS
        return Expr(ops[rng.integers(len(ops))], node.children)
    if kind == 2 and node.is_leaf or kind == 1:  # leaf change
        return random_expr(rng, n_vars, max_depth=0)
    if kind == 3:  # wrap in an operator
        return _wrap(node, rng, n_vars)
    if node.children:  # hoist a child
        return node.children[rng.integers(len(node.children))]
    return random_expr(rng, n_vars, 0)  # (a leaf cannot hoist: leaf change)


def mutate_expr(expr: Expr, rng: np.random.Generator, n_vars: int, *, max_size: int = 25) -> Expr:
    """One random mutation: replace a subtree, change an operator, change a leaf, wrap a node in an
    operator, or hoist a child. Retries (up to 20 times) until the result has at most ``max_size`` nodes.
    """
    for _ in range(20):
        paths = expr.paths()
        path = paths[rng.integers(len(paths))]
        kind = rng.integers(5)
        child = expr.replace(path, _mutated_node(expr.at(path), kind, rng, n_vars))
        if child.size() <= max_size:
            return child
    return expr


# -- identities, each None where it does not apply -------------------------------------------------
def _commute(a: Expr):
    return Expr(a.op, (a.children[1], a.children[0])) if a.op in ("add", "mul") else None


def _times_tenth_times_ten(a: Expr):
    return Expr("mul", (Expr("mul", (a, Expr.const(0.1))), Expr.const(10.0)))


def _plus_one_minus_one(a: Expr):
    return Expr("sub", (Expr("add", (a, Expr.const(1.0))), Expr.const(1.0)))


def _times_three_over_three(a: Expr):
    return Expr("div", (Expr("mul", (a, Expr.const(3.0))), Expr.const(3.0)))


def _distribute(a: Expr):
    if a.op != "mul" or a.children[1].op != "add":
        return None
    x, (b, c) = a.children[0], a.children[1].children
    return Expr("add", (Expr("mul", (x, b)), Expr("mul", (x, c))))


def _minus_as_plus_negation(a: Expr):
    return Expr("add", (a.children[0], Expr("neg", (a.children[1],)))) if a.op == "sub" else None


def _square_as_product(a: Expr):
    return Expr("mul", (a.children[0], a.children[0])) if a.op == "square" else None


def _quotient_as_product(a: Expr):
    return Expr("mul", (a.children[0], Expr("inv", (a.children[1],)))) if a.op == "div" else None


_REWRITES = (_commute, _times_tenth_times_ten, _plus_one_minus_one, _times_three_over_three, _distribute,
             _minus_as_plus_negation, _square_as_product, _quotient_as_product)


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
        new = _REWRITES[rng.integers(len(_REWRITES))](a)
        if new is None:
            new = Expr("mul", (Expr.const(1.0), a))
        expr = expr.replace(path, new)
    return expr
