"""Validation of everything a client sends, before anything is logged: names, vectors, ids, payloads,
uploaded hashers. Each failure is a :class:`~hashlearn.errors.ValidationError` naming the problem."""

from __future__ import annotations

import json
import math
import re

import numpy as np

from ...errors import FileFormatError, ValidationError

__all__ = ["NAME_RE", "MAX_ID", "MAX_PAYLOAD_BYTES", "MAX_PAYLOAD_DEPTH", "check_collection_name", "check_vectors",
           "check_ids", "check_payloads", "hasher_from_bytes", "check_hasher"]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_ID = 2**63 - 1
MAX_PAYLOAD_BYTES = 16384
MAX_PAYLOAD_DEPTH = 32


def check_collection_name(name: str) -> str:
    """Collection names: 1-64 characters of letters, digits, ``_`` and ``-``, not starting with ``_``/``-``
    (so never a path, ``..``, a hidden file or a name with a newline)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValidationError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


def check_vectors(vectors, dim: int, name: str = "vectors", max_rows: int | None = None) -> np.ndarray:
    """(n, dim) finite float32 matrix from nested lists or an array; errors name the problem."""
    if max_rows is not None and isinstance(vectors, (list, tuple)) and len(vectors) > max_rows:
        raise ValidationError(f"{name} has {len(vectors)} rows, more than the limit of {max_rows} per request")
    try:
        X = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a list of equally long lists of numbers") from None
    if X.ndim != 2:
        raise ValidationError(f"{name} must be a list of vectors (2-D), got {X.ndim}-D data")
    if X.shape[0] == 0:
        raise ValidationError(f"{name} is empty")
    if max_rows is not None and X.shape[0] > max_rows:
        raise ValidationError(f"{name} has {X.shape[0]} rows, more than the limit of {max_rows} per request")
    if X.shape[1] != dim:
        raise ValidationError(f"{name} have dimension {X.shape[1]}, the collection has dim {dim}")
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValidationError(f"{name}[{r}][{c}] is {X[r, c]} (NaN and infinity are not allowed)")
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    if not np.isfinite(X32).all():
        r, c = np.argwhere(~np.isfinite(X32))[0]
        raise ValidationError(f"{name}[{r}][{c}] = {X[r, c]} does not fit in float32")
    return np.ascontiguousarray(X32)


def check_ids(ids, name: str = "ids", *, n: int | None = None, unique: bool = True) -> np.ndarray:
    if not isinstance(ids, (list, tuple, np.ndarray)):
        raise ValidationError(f"{name} must be a list of integers")
    for v in ids:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValidationError(f"{name} must be integers, got {v!r}")
        if not 0 <= v <= MAX_ID:
            raise ValidationError(f"{name} must be in [0, 2^63-1], got {v}")
    arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if arr.size == 0:
        raise ValidationError(f"{name} is empty")
    if n is not None and arr.shape[0] != n:
        raise ValidationError(f"{name} has {arr.shape[0]} entries but there are {n} vectors")
    if unique and np.unique(arr).shape[0] != arr.shape[0]:
        vals, counts = np.unique(arr, return_counts=True)
        raise ValidationError(f"{name} contains id {int(vals[counts > 1][0])} more than once")
    return arr


def _check_json_value(value, where: str) -> None:
    """Plain JSON that every later read can return: nesting at most MAX_PAYLOAD_DEPTH, strings that are
    valid Unicode (no lone surrogates), finite numbers (walked iteratively: no recursion limit)."""
    stack = [(value, where, 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise ValidationError(f"{path} is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise ValidationError(f"{path} has a key that is not a string")
                _check_text(key, f"a key of {path}")
                stack.append((item, f"{path}.{key}" if len(path) < 200 else path, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]" if len(path) < 200 else path, depth + 1) for i, item in enumerate(node))
        elif isinstance(node, str):
            _check_text(node, path)
        elif isinstance(node, bool) or node is None:
            pass
        elif isinstance(node, int):
            if node.bit_length() > 64:
                raise ValidationError(f"{path} is an integer beyond 64 bits")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValidationError(f"{path} is {node} (NaN and infinity are not JSON)")
        else:
            raise ValidationError(f"{path} is not a JSON value ({type(node).__name__})")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{where} is not valid Unicode (a lone surrogate at position {exc.start})") from None


def check_payloads(payloads, n: int):
    """``None`` or a list of ``n`` entries, each a JSON object (≤ MAX_PAYLOAD_BYTES, nesting ≤
    MAX_PAYLOAD_DEPTH, valid Unicode) or null. Returns the list (or None)."""
    if payloads is None:
        return None
    if not isinstance(payloads, (list, tuple)) or len(payloads) != n:
        raise ValidationError(f"payloads must be a list of {n} objects (or null entries)")
    for i, p in enumerate(payloads):
        if p is None:
            continue
        if not isinstance(p, dict):
            raise ValidationError(f"payloads[{i}] must be a JSON object or null, got {type(p).__name__}")
        _check_json_value(p, f"payloads[{i}]")
        size = len(json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValidationError(f"payloads[{i}] is {size} bytes of JSON, more than the limit of {MAX_PAYLOAD_BYTES}")
    return list(payloads)


def check_filter(filter) -> dict | None:
    if filter is None:
        return None
    if not isinstance(filter, dict):
        raise ValidationError("filter must be a JSON object of key: value pairs")
    _check_json_value(filter, "filter")
    return filter


def hasher_from_bytes(data: bytes, dim: int, *, max_bits: int, name: str = "the uploaded file"):
    """A fitted vector hasher from hashlearn-file bytes, checked completely (no temporary file).

    :func:`hashlearn.io.persist.loads` refuses malformed or hostile files (depth, state schema,
    parameters, a probe encoding to the declared width); :func:`check_hasher` adds what the
    collection needs (a vector hasher, fitted, of the collection's dimension, at most ``max_bits``).
    """
    from ...io.persist import loads

    try:
        obj = loads(data, name=name)
    except FileFormatError as exc:
        raise ValidationError(str(exc)) from None
    return check_hasher(obj, dim, max_bits=max_bits)


def check_hasher(obj, dim: int, *, max_bits: int):
    if getattr(type(obj), "input_kind", None) != "vector" or not callable(getattr(obj, "transform", None)):
        raise ValidationError(f"the uploaded file holds a {type(obj).__name__}, not a vector hasher")
    if not hasattr(obj, "n_features_in_"):
        raise ValidationError("the uploaded hasher is not fitted")
    if obj.n_features_in_ != dim:
        raise ValidationError(f"the uploaded hasher was fitted on {obj.n_features_in_}-dimensional vectors, "
                              f"the collection has dim {dim}")
    bits = obj.code_bits
    if not 1 <= bits <= max_bits:
        raise ValidationError(f"the uploaded hasher makes {bits}-bit codes; collections take 1 to {max_bits} bits")
    return obj
