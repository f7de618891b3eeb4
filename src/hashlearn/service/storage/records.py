"""Bodies of the write-ahead log's records (the frame around them is :mod:`hashlearn.service.wal`).

::

    OP_UPSERT      uint32 n, uint32 d, n int64 ids, n*d float32 vectors, then optional JSON payloads
    OP_DELETE      uint32 n, n int64 ids
    OP_SET_HASHER  the hasher as a hashlearn file (hashlearn.io.persist.dumps)

Decoding checks every length against the body, so a record that passed its CRC but does not parse
raises :class:`RecordError` instead of reading past its end.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from ...errors import HashlearnError

__all__ = ["OP_UPSERT", "OP_DELETE", "OP_SET_HASHER", "OP_NAMES", "RecordError", "encode_upsert", "decode_upsert",
           "encode_delete", "decode_delete", "encode_hasher"]

OP_UPSERT, OP_DELETE, OP_SET_HASHER = 1, 2, 3
OP_NAMES = {OP_UPSERT: "upsert", OP_DELETE: "delete", OP_SET_HASHER: "set hasher"}
_U32x2 = struct.Struct("<II")
_U32 = struct.Struct("<I")


class RecordError(HashlearnError):
    """A log record whose body does not parse."""


def encode_upsert(ids: np.ndarray, X: np.ndarray, payloads) -> bytes:
    tail = b"" if payloads is None else json.dumps(payloads, separators=(",", ":")).encode()
    return _U32x2.pack(ids.shape[0], X.shape[1]) + ids.astype("<i8").tobytes() + X.astype("<f4").tobytes() + tail


def decode_upsert(body, dim: int):
    if len(body) < _U32x2.size:
        raise RecordError(f"upsert record of {len(body)} bytes is too short")
    n, d = _U32x2.unpack_from(body, 0)
    if d != dim:
        raise RecordError(f"upsert record holds {d}-dimensional vectors, the collection has dim {dim}")
    pos = _U32x2.size
    if len(body) < pos + 8 * n + 4 * n * d:
        raise RecordError(f"upsert record of {len(body)} bytes is too short for {n} vectors of dim {d}")
    ids = np.frombuffer(body, "<i8", n, pos).astype(np.int64)
    pos += 8 * n
    X = np.frombuffer(body, "<f4", n * d, pos).astype(np.float32).reshape(n, d)
    pos += 4 * n * d
    tail = bytes(body[pos:])
    try:
        payloads = json.loads(tail) if tail else None
    except (ValueError, RecursionError) as exc:
        raise RecordError(f"upsert record payloads are not JSON ({exc})") from None
    if payloads is not None and (not isinstance(payloads, list) or len(payloads) != n):
        raise RecordError("upsert record payloads do not match its ids")
    return ids, X, payloads


def encode_delete(ids: np.ndarray) -> bytes:
    return _U32.pack(ids.shape[0]) + ids.astype("<i8").tobytes()


def decode_delete(body) -> np.ndarray:
    if len(body) < _U32.size:
        raise RecordError(f"delete record of {len(body)} bytes is too short")
    (n,) = _U32.unpack_from(body, 0)
    if len(body) != _U32.size + 8 * n:
        raise RecordError(f"delete record of {len(body)} bytes does not hold {n} ids")
    return np.frombuffer(body, "<i8", n, _U32.size).astype(np.int64)


def encode_hasher(hasher) -> bytes:
    from ...io.persist import dumps

    return dumps(hasher)
