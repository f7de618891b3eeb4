"""One registry maps method names to estimator classes.

The CLI, benchmarks and service discover methods here; nothing else lists them by hand.
"""

from __future__ import annotations

from ..errors import UnknownMethodError
from ..io.persist import persistable

__all__ = ["register", "make_hasher", "get_hasher_class", "list_methods"]

_METHODS: dict[str, type] = {}


def register(name: str, *, kind: str = "vector"):
    """Class decorator registering an estimator under ``name``.

    ``kind`` is ``"vector"`` for hashers of float vectors, ``"set"`` for hashers of sets/token lists.
    """

    def deco(cls):
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method name {name!r} is already registered to {_METHODS[name].__name__}")
        cls.method_name = name
        cls.input_kind = kind
        _METHODS[name] = cls
        return persistable(cls)

    return deco


def get_hasher_class(name: str) -> type:
    """Class registered under ``name``; :class:`UnknownMethodError` lists the known names otherwise."""
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS))}"
        ) from None


def list_methods(kind: str | None = None) -> list[str]:
    """Registered method names (sorted), optionally only those of one input ``kind``."""
    return sorted(n for n, c in _METHODS.items() if kind is None or c.input_kind == kind)


def make_hasher(name: str, n_bits: int | None = None, random_state=None, **params):
    """Unfitted estimator for method ``name``.

    Parameters
    ----------
    name : str
        A registered method name (see :func:`list_methods`).
    n_bits : int, optional
        Code length in bits (omitted: the method's default).
    random_state : int, numpy Generator or None
    **params
        Method-specific parameters; unknown ones raise ``TypeError`` naming them.
    """
    cls = get_hasher_class(name)
    if n_bits is not None:
        params["n_bits"] = n_bits
    params["random_state"] = random_state
    valid = set(cls._get_param_names())
    unknown = sorted(set(params) - valid)
    if unknown:
        raise TypeError(f"{name} does not accept parameter(s) {', '.join(unknown)}; it accepts {', '.join(sorted(valid))}")
    return cls(**params)
