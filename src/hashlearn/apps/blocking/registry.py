"""Blocking methods by name: :func:`make_blocker`, :func:`list_blockers`, :func:`get_blocker_class`.

The CLI, the benchmarks and the tests find blockers here; nothing else lists them by hand.
"""

from __future__ import annotations

from ...errors import UnknownMethodError, ValidationError
from .base import Blocker
from .embedding import EmbeddingBlocker
from .lsh import MinHashBlocker, SimHashBlocker
from .neural import NeuralBlocker
from .rules import SortedNeighbourhoodBlocker, StandardBlocker
from .union import UnionBlocker

__all__ = ["BLOCKING_METHODS", "make_blocker", "list_blockers", "get_blocker_class"]

BLOCKING_METHODS: dict[str, type] = {
    "standard": StandardBlocker,
    "sortedneighbourhood": SortedNeighbourhoodBlocker,
    "minhash": MinHashBlocker,
    "simhash": SimHashBlocker,
    "embedding": EmbeddingBlocker,
    "neural": NeuralBlocker,
}
"""Blocking method name -> class (``union:a+b`` combines them)."""

_ALIASES = {"sortedneighborhood": "sortedneighbourhood", "sorted_neighbourhood": "sortedneighbourhood",
            "sn": "sortedneighbourhood"}
_UNION = "union:"


def list_blockers() -> list[str]:
    """Names of the blocking methods, in registry order (``union:a+b`` combines them)."""
    return list(BLOCKING_METHODS)


def _known() -> str:
    return f"known: {', '.join(BLOCKING_METHODS)}, union:a+b"


def get_blocker_class(name: str) -> type:
    """Class of blocking method ``name`` (aliases such as ``sn`` allowed); :class:`UnknownMethodError`
    listing the known names otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownMethodError(f"method must be a non-empty string; {_known()}")
    m = name.strip().lower()
    m = _ALIASES.get(m, m)
    if m not in BLOCKING_METHODS:
        raise UnknownMethodError(f"unknown blocking method {name!r}; {_known()}")
    return BLOCKING_METHODS[m]


def _union_parts(method: str) -> list[str]:
    parts = [p.strip() for p in method.strip()[len(_UNION):].split("+") if p.strip()]
    if len(parts) < 2:
        raise UnknownMethodError(f"a union names at least two methods, as union:minhash+embedding; got {method!r}")
    return parts


def _check_known_names(method: str, params: dict) -> None:
    """Every name must be a parameter of some blocker (even when its value is None)."""
    every = set().union(*(cls.param_names() for cls in BLOCKING_METHODS.values()))
    unknown = sorted(set(params) - every)
    if unknown:
        raise ValidationError(f"{method} does not accept parameter(s) {', '.join(unknown)}; no blocker does "
                              f"(blocker parameters: {', '.join(sorted(every))})")


def _split_params(classes: list[type], params: dict, random_state) -> list[dict]:
    """The parameters of each class: the non-None ``params`` it accepts, and ``random_state`` if it takes one."""
    out = []
    for cls in classes:
        accepted = set(cls.param_names())
        own = {k: v for k, v in params.items() if k in accepted and v is not None}
        if random_state is not None and "random_state" in accepted:
            own["random_state"] = random_state
        out.append(own)
    return out


def _refuse_unused(method: str, names: list[str], classes: list[type], params: dict) -> None:
    """A non-None parameter no class accepts is an error naming it and what each class accepts."""
    unused = sorted(k for k, v in params.items()
                    if v is not None and not any(k in cls.param_names() for cls in classes))
    if not unused:
        return
    if len(classes) == 1:
        accepted = f"it accepts {', '.join(classes[0].param_names())}"
    else:
        accepted = "; ".join(f"{n} accepts {', '.join(c.param_names())}" for n, c in zip(names, classes))
        accepted = f"no part accepts them ({accepted})"
    raise ValidationError(f"{method} does not accept parameter(s) {', '.join(unused)}; {accepted}")


def make_blocker(method: str, *, random_state=None, **params) -> Blocker:
    """A blocker by name, with the same strictness as :func:`hashlearn.hashing.registry.make_hasher`.

    Parameters
    ----------
    method : str
        One of :func:`list_blockers` (aliases ``sortedneighborhood``, ``sn``), or ``"union:a+b[+c...]"``.
    random_state : int or None, optional
        Passed to the methods that take one (``minhash``, ``simhash``, ``neural``); the deterministic
        methods have no use for it. None: each method's default.
    **params
        Constructor parameters (``threshold``, ``k``, ``on``, ``window``, ``embedder``, ...). A parameter
        given as None keeps the method's default, so one set of optional settings (a command line's)
        can be passed to any method; its name must still be a parameter of some blocker. In a union,
        each part receives the parameters it accepts.

    Returns
    -------
    Blocker

    Raises
    ------
    UnknownMethodError
        Unknown name (the message lists the known ones), or a union of fewer than two methods.
    ValidationError
        A parameter (not None) that the method does not accept -- in a union, that no part accepts --
        or a name no blocker takes; the message names it and lists the accepted ones.

    Examples
    --------
    >>> make_blocker("minhash", threshold=0.3, random_state=1)
    MinHashBlocker(threshold=0.3, n_perm=128, q=3, bands=None, rows=None, max_bucket=1000, min_similarity=None, max_per_record=None, fields=None, random_state=1)
    >>> [b.name for b in make_blocker("union:standard+minhash", on="city", threshold=0.3).blockers]
    ['standard', 'minhash']
    >>> make_blocker("minhash", thresold=0.9)
    Traceback (most recent call last):
    ...
    hashlearn.errors.ValidationError: minhash does not accept parameter(s) thresold; no blocker does ...
    """
    names = _union_parts(method) if isinstance(method, str) and method.strip().lower().startswith(_UNION) \
        else [method]
    classes = [get_blocker_class(n) for n in names]
    label = method.strip() if isinstance(method, str) else method
    _check_known_names(label, params)
    _refuse_unused(label, names, classes, params)
    blockers = [cls(**own) for cls, own in zip(classes, _split_params(classes, params, random_state))]
    return UnionBlocker(blockers) if len(blockers) > 1 else blockers[0]
