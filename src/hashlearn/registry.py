"""One registry maps method names to the estimators that turn data into codes.

Every code producer registers here with :func:`register` — vector hashers (``itq``, ``simhash`` ...),
set hashers (``minhash``), cross-modal hashers (``rreh`` ...), codes for text embeddings (``sign``,
``msign``, ``bpr``) and quantizers — so the CLI, the benchmarks and the service discover methods here
and never list them by hand. ``METHOD:BITS`` specs (``itq:256``) are parsed in one place,
:func:`parse_spec`, and turned into an unfitted estimator by :func:`make_from_spec`.

Kinds (``cls.input_kind``):

``vector``      float vectors → packed uint64 codes (``fit(X)``, ``transform(X)``)
``set``         sets / token lists → MinHash signatures
``crossmodal``  several views → one Hamming space (``fit(views, pairs)``)
``embedding``   codes for dense text embeddings that need more than ``fit(X)`` or fix the width
                (``sign``/``msign``: one bit per dimension; ``bpr``: trained with queries)
``quantizer``   float vectors → uint8 product / residual codes
``compressor``  user / item IDs → rows of a smaller embedding table (recommenders: ``fit(interactions)``)

Providers register on import. The lower layers (``hashing``, ``crossmodal`` ...) import only
:func:`register` from here; :func:`list_methods` and :func:`get_method_class` import the providers on
first use, so the registry is complete whatever the caller imported before.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import UnknownMethodError, ValidationError

__all__ = [
    "MAX_BITS",
    "KINDS",
    "MethodSpec",
    "register",
    "get_method_class",
    "list_methods",
    "make_method",
    "parse_spec",
    "make_from_spec",
    "check_n_bits",
    "load_persistable_providers",
]

#: The longest code any command or the service accepts, in bits (one limit, one message).
MAX_BITS = 4096

KINDS = ("vector", "set", "crossmodal", "embedding", "quantizer", "compressor")
_KIND_TEXT = {
    "vector": "hashes float vectors",
    "set": "hashes sets, not vectors",
    "crossmodal": "is cross-modal: it fits several views (use 'hashlearn bench crossmodal' or the Python API)",
    "embedding": "makes codes for dense text embeddings",
    "quantizer": "quantizes vectors into uint8 codes",
    "compressor": "compresses the user/item ID tables of a recommender (hashlearn.recsys; fit(interactions))",
}

# Modules whose import registers methods (imported lazily by the lookups below). A provider that
# cannot be imported (a missing optional dependency at import time) is skipped.
_PROVIDERS = (
    "hashlearn.hashing",
    "hashlearn.hashing.deep",
    "hashlearn.crossmodal",
    "hashlearn.text.codes",
    "hashlearn.quantize",
    "hashlearn.recsys",
)

# Packages that define saveable classes besides the method providers (indexes, text indexes, ...).
_PERSISTABLE_PROVIDERS = (
    "hashlearn.index",
    "hashlearn.text",
    "hashlearn.recsys",
)

_METHODS: dict[str, type] = {}
_loaded = False


def register(name: str, *, kind: str = "vector"):
    """Class decorator registering an estimator under ``name`` (see the module docstring for ``kind``).

    The class also becomes persistable with :func:`hashlearn.save` / :func:`hashlearn.load`.
    """
    from .io.persist import persistable

    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")

    def deco(cls):
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValidationError(f"method name {name!r} is already registered to {_METHODS[name].__name__}")
        cls.method_name = name
        cls.input_kind = kind
        _METHODS[name] = cls
        return persistable(cls)

    return deco


def _import_optional(modules) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (exc.name == module or module.startswith(exc.name + ".")):
                raise  # a provider that exists but fails to import is a bug, not a missing provider


def _load_providers() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        _import_optional(_PROVIDERS)


def load_persistable_providers() -> None:
    """Import every package that defines saveable classes, so that any hashlearn file can be loaded."""
    _load_providers()
    _import_optional(_PERSISTABLE_PROVIDERS)


def get_method_class(name: str) -> type:
    """Class registered under ``name``; :class:`UnknownMethodError` lists the known names otherwise."""
    if name not in _METHODS:
        _load_providers()
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {', '.join(list_methods())}") from None


def list_methods(kind: str | None = None) -> list[str]:
    """Registered method names (sorted), optionally only those of one ``kind``."""
    _load_providers()
    if kind is not None and kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return sorted(n for n, c in _METHODS.items() if kind is None or c.input_kind == kind)


def check_n_bits(n_bits, *, what: str = "n_bits") -> int:
    """``n_bits`` as an int in ``[1, MAX_BITS]``; a :class:`ValidationError` naming the limit otherwise."""
    import numbers

    if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral) or not 1 <= n_bits <= MAX_BITS:
        raise ValidationError(f"{what} must be an integer from 1 to {MAX_BITS}, got {n_bits!r}")
    return int(n_bits)


def make_method(name: str, n_bits: int | None = None, random_state=None, **params):
    """Unfitted estimator for method ``name``.

    Parameters
    ----------
    name : str
        A registered method name (see :func:`list_methods`).
    n_bits : int, optional
        Code length in bits (omitted: the method's default); at most :data:`MAX_BITS`.
    random_state : int, numpy Generator or None
    **params
        Method-specific parameters; an unknown one raises :class:`ValidationError` naming it and the
        accepted ones.
    """
    cls = get_method_class(name)
    valid = set(cls._get_param_names()) if hasattr(cls, "_get_param_names") else set(cls().get_params())
    size_param = getattr(cls, "size_param", None)
    if n_bits is not None and "n_bits" not in valid and size_param in valid:
        # quantizers: the number after ':' is their size parameter (pq:16 -> M=16 bytes, rq:4 -> levels=4)
        params[size_param] = check_n_bits(n_bits, what=f"{name}: {size_param}")
    elif n_bits is not None:
        if "n_bits" not in valid:
            raise ValidationError(f"{name} takes no code length (its width is fixed by the data); drop the bits")
        params["n_bits"] = check_n_bits(n_bits)
    if "random_state" in valid:
        params["random_state"] = random_state
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValidationError(
            f"{name} does not accept parameter(s) {', '.join(unknown)}; it accepts {', '.join(sorted(valid)) or 'none'}"
        )
    return cls(**params)


@dataclass(frozen=True)
class MethodSpec:
    """A parsed ``METHOD[:BITS]`` spec; ``n_bits`` is None where the spec gives none."""

    name: str
    n_bits: int | None = None

    def __str__(self) -> str:
        return self.name if self.n_bits is None else f"{self.name}:{self.n_bits}"


def parse_spec(spec: str, *, kinds=None, allow=(), require_bits: bool = False,
               fixed_width_bits: bool = False) -> MethodSpec:
    """Parse ``"itq:256"`` → ``MethodSpec("itq", 256)`` and check the method exists.

    Parameters
    ----------
    spec : str
        ``METHOD`` or ``METHOD:BITS``; the name is case-insensitive.
    kinds : iterable of str, optional
        Accepted kinds (default: all); a method of another kind is refused naming the accepted ones.
    allow : iterable of str
        Extra names that are not registry methods but that the caller handles (e.g. ``"float"``).
    require_bits : bool
        Refuse a spec without ``:BITS`` for registry methods that take a code length.
    fixed_width_bits : bool
        Accept ``:BITS`` for methods whose width is fixed by the data (``sign:384``); the caller checks
        it against the data.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError(f"expected a method spec METHOD or METHOD:BITS (e.g. itq:256), got {spec!r}")
    name, sep, bits = spec.strip().partition(":")
    name = name.strip().lower()
    cls = None if name in allow else get_method_class(name)
    size_param = getattr(cls, "size_param", None)
    what = "bits" if cls is None or cls.input_kind != "quantizer" else (size_param or "size")
    n_bits = None
    if sep:
        try:
            n_bits = int(bits)
        except ValueError:
            raise ValidationError(f"{spec!r}: the {what} after ':' ({bits!r}) is not an integer") from None
        check_n_bits(n_bits, what=f"{spec!r}: {what}")
    if cls is None:
        return MethodSpec(name, n_bits)
    if kinds is not None and cls.input_kind not in tuple(kinds):
        accepted = sorted(n for k in kinds for n in list_methods(k)) + sorted(allow)
        raise ValidationError(
            f"method {name!r} {_KIND_TEXT[cls.input_kind]}, so it cannot be used here; usable: {', '.join(accepted)}"
        )
    takes_bits = "n_bits" in cls._get_param_names() if hasattr(cls, "_get_param_names") else False
    if n_bits is not None and not (takes_bits or size_param) and not fixed_width_bits:
        if cls.input_kind == "quantizer":
            raise ValidationError(f"{spec!r}: {name} takes no size after ':' (set its parameters instead)")
        raise ValidationError(f"{spec!r}: {name} takes no code length (its width is fixed by the data)")
    if require_bits and takes_bits and n_bits is None:
        raise ValidationError(f"{spec!r}: give the code length as {name}:BITS (e.g. {name}:128)")
    return MethodSpec(name, n_bits)


def make_from_spec(spec: str | MethodSpec, *, random_state=None, kinds=None, **params):
    """Unfitted estimator for a ``METHOD[:BITS]`` spec (see :func:`parse_spec`, :func:`make_method`)."""
    parsed = spec if isinstance(spec, MethodSpec) else parse_spec(spec, kinds=kinds)
    return make_method(parsed.name, n_bits=parsed.n_bits, random_state=random_state, **params)
