"""Storage engine of the service: collections held in memory, made durable by a write-ahead log
plus periodic snapshots.

Layout of a data directory::

    DIR/collections/NAME/config.json                 creation parameters (written once, atomically)
    DIR/collections/NAME/snapshot-<seq>.hlrn         state after record <seq> (hashlearn.io.save)
    DIR/collections/NAME/wal-<first seq>.log         records after the snapshot that started it

Durability. A write (upsert, delete, new hasher) is validated, appended to the log and fsync'ed, and
only then applied in memory and acknowledged. Every few records (or bytes) the state is saved as a
snapshot through :func:`hashlearn.io.save` (atomic, checksummed) and a new log segment is started. The
two newest snapshots and the log since the older of them are kept, so a damaged newest snapshot is
survivable. On start each collection loads its newest readable snapshot and replays the log after
it; replay stops at a torn or corrupt tail, which is cut off, and :attr:`Collection.recovery` says
what was recovered.

Consistency. Writers are serialised by a mutex; the in-memory structures change only under the write
side of a readers-writer lock, and searches hold the read side, so a search sees the state before or
after a batch, never half of it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codes import MISSING_DISTANCE, knn_search
from ..errors import HashlearnError, ValidationError
from ..hashing import get_hasher_class, make_hasher
from ..io.persist import atomic_write, load, persistable, save
from .wal import WriteAheadLog, read_records

__all__ = [
    "Storage",
    "Collection",
    "CollectionConfig",
    "RWLock",
    "NotFound",
    "Conflict",
    "NotTrained",
    "check_collection_name",
]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
OP_UPSERT, OP_DELETE, OP_SET_HASHER = 1, 2, 3
_U32x2 = struct.Struct("<II")
MAX_ID = 2**63 - 1
MAX_PAYLOAD_BYTES = 16384
METRICS = ("l2", "ip", "cosine")


class NotFound(HashlearnError, KeyError):
    """A collection or point does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Conflict(HashlearnError):
    """The request conflicts with the current state (collection exists, was deleted meanwhile, ...)."""


class NotTrained(Conflict):
    """The collection's hasher is not fitted yet: train it (or upload a fitted hasher) first."""


def check_collection_name(name: str) -> str:
    """Collection names: 1-64 characters of letters, digits, ``_`` and ``-``, not starting with ``_``/``-``
    (so never a path, ``..`` or a hidden file)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


class RWLock:
    """Readers-writer lock that prefers writers (a waiting writer blocks new readers)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    def acquire_read(self):
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1

    def release_read(self):
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    def acquire_write(self):
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True

    def release_write(self):
        with self._cond:
            self._writer = False
            self._cond.notify_all()

    class _Ctx:
        def __init__(self, enter, leave):
            self._enter, self._leave = enter, leave

        def __enter__(self):
            self._enter()

        def __exit__(self, *exc):
            self._leave()

    def read(self):
        return self._Ctx(self.acquire_read, self.release_read)

    def write(self):
        return self._Ctx(self.acquire_write, self.release_write)


@dataclass(frozen=True)
class CollectionConfig:
    """Creation parameters of a collection (immutable)."""

    name: str
    dim: int
    method: str = "simhash"
    n_bits: int = 64
    params: dict | None = None
    random_state: int = 0
    metric: str = "l2"
    rerank_candidates: int = 100

    def validate(self) -> "CollectionConfig":
        check_collection_name(self.name)
        for field_name, lo, hi in (("dim", 1, 65536), ("n_bits", 1, 4096), ("rerank_candidates", 1, 100000)):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValidationError(f"{field_name} must be an integer in [{lo}, {hi}], got {value!r}")
        if self.metric not in METRICS:
            raise ValidationError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, int) or self.random_state < 0:
            raise ValidationError(f"random_state must be a non-negative integer, got {self.random_state!r}")
        cls = get_hasher_class(self.method)
        if getattr(cls, "input_kind", "vector") != "vector":
            raise ValidationError(
                f"method {self.method!r} is not a vector hasher (its kind is {cls.input_kind!r}); "
                "collections need a vector hasher"
            )
        try:
            self.make_hasher()
        except TypeError as exc:
            raise ValidationError(str(exc)) from None
        return self

    def make_hasher(self):
        hasher = make_hasher(self.method, n_bits=self.n_bits, random_state=self.random_state, **(self.params or {}))
        if hasattr(hasher, "_check_params"):
            hasher._check_params()
        return hasher

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "method": self.method,
            "n_bits": self.n_bits,
            "params": dict(self.params or {}),
            "random_state": self.random_state,
            "metric": self.metric,
            "rerank_candidates": self.rerank_candidates,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CollectionConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# -- in-memory state -----------------------------------------------------------------------------
@persistable
class ServiceCollectionState:
    """Everything a collection holds; saved as its snapshot.

    Row ``i`` of ``ids``, ``vectors`` and ``codes`` describe the same point (insertion order; a delete
    moves the last row into the freed one, and snapshots sort the rows by id again). Codes are packed
    uint64 rows (:mod:`hashlearn.codes` layout), searched with :func:`hashlearn.codes.knn_search`. A dict
    maps ids to rows, so upserts, replacements and deletes cost O(batch), not O(collection).
    """

    def __init__(self, config: CollectionConfig):
        self.config = config
        self.hasher = config.make_hasher()
        self.code_bits: int | None = None
        self.n = 0
        self._ids = np.zeros(0, np.int64)
        self._vectors = np.zeros((0, config.dim), np.float32)
        self._codes = np.zeros((0, 0), np.uint64)
        self.pos: dict[int, int] = {}
        self.ids_increasing = True
        self.payloads: dict[int, object] = {}
        self.inverted: dict[tuple, set[int]] = {}  # (key, value) of scalar payload fields -> ids
        self.seq = 0

    # views
    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.n]

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self.n]

    @property
    def codes(self) -> np.ndarray:
        return self._codes[: self.n]

    @property
    def trained(self) -> bool:
        return self.code_bits is not None

    def positions(self, ids) -> np.ndarray:
        """Rows of ``ids`` (int64 array of the same shape); -1 for ids not stored."""
        ids = np.asarray(ids, np.int64)
        get = self.pos.get
        return np.fromiter((get(i, -1) for i in ids.ravel().tolist()), np.int64, ids.size).reshape(ids.shape)

    # mutations (called under the collection's write lock)
    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= self._ids.shape[0]:
            return
        cap = max(need, int(self._ids.shape[0] * 1.5), 1024)
        ids = np.zeros(cap, np.int64)
        ids[: self.n] = self.ids
        vectors = np.zeros((cap, self.config.dim), np.float32)
        vectors[: self.n] = self.vectors
        codes = np.zeros((cap, self._codes.shape[1]), np.uint64)
        codes[: self.n] = self.codes
        self._ids, self._vectors, self._codes = ids, vectors, codes

    def _remove(self, ids: np.ndarray) -> int:
        """Remove the stored ``ids`` in O(len(ids)): each freed row takes the current last row.

        Row order then no longer follows the ids (searches break distance ties by id explicitly, see
        :meth:`Collection.search`) until :meth:`sort_rows_by_id` restores it at the next snapshot.
        """
        pos = self.pos
        rows = sorted({pos[i] for i in ids.tolist() if i in pos}, reverse=True)
        for r in rows:  # descending, so the last row is never one still to be removed
            last = self.n - 1
            del pos[int(self._ids[r])]
            if r != last:
                moved = int(self._ids[last])
                self._ids[r] = moved
                self._vectors[r] = self._vectors[last]
                self._codes[r] = self._codes[last]
                pos[moved] = r
                self.ids_increasing = False
            self.n = last
        if self.n < 2:
            self.ids_increasing = True
        for i in ids.tolist():
            self._drop_payload(i)
        return len(rows)

    def sort_rows_by_id(self) -> None:
        """Reorder the rows by increasing id (O(n log n)); searches then use the faster row-order ties."""
        if self.ids_increasing:
            return
        order = np.argsort(self.ids, kind="stable")
        n = self.n
        self._ids[:n] = self.ids[order]
        self._vectors[:n] = self.vectors[order]
        self._codes[:n] = self.codes[order]
        self.pos = dict(zip(self._ids[:n].tolist(), range(n)))
        self.ids_increasing = True

    def _set_payload(self, i: int, p: dict) -> None:
        self.payloads[i] = p
        for key, value in p.items():
            term = _term(key, value)
            if term is not None:
                self.inverted.setdefault(term, set()).add(i)

    def _drop_payload(self, i: int) -> None:
        p = self.payloads.pop(i, None)
        if p:
            for key, value in p.items():
                term = _term(key, value)
                ids = self.inverted.get(term) if term is not None else None
                if ids is not None:
                    ids.discard(i)
                    if not ids:
                        del self.inverted[term]

    def matching(self, filter: dict) -> np.ndarray:
        """Rows (increasing) of the points whose payload has ``payload[key] == value`` for every item.

        Scalar values (string, number, boolean, null) are looked up in an inverted index; a list or
        object value is checked on the remaining candidates. ``1`` and ``true`` are different values.
        """
        candidates = None
        rest = {}
        for key, value in filter.items():
            term = _term(key, value)
            if term is None:
                rest[key] = value
                continue
            ids = self.inverted.get(term, set())
            candidates = set(ids) if candidates is None else candidates & ids
            if not candidates:
                return np.zeros(0, np.int64)
        if candidates is None:
            candidates = self.payloads.keys()
        if rest:
            candidates = [i for i in candidates if all(
                k in self.payloads[i] and _json_equal(self.payloads[i][k], v) for k, v in rest.items())]
        rows = np.fromiter((self.pos[i] for i in candidates), np.int64)
        rows.sort()
        return rows

    def apply_upsert(self, seq: int, ids: np.ndarray, X: np.ndarray, payloads, codes=None) -> None:
        self._remove(ids)
        m = ids.shape[0]
        if self.trained and codes is None:
            codes = self.hasher.transform(X)
        self._reserve(m)
        lo, hi = self.n, self.n + m
        if self.n and ids[0] <= self._ids[self.n - 1] or (m > 1 and np.any(np.diff(ids) <= 0)):
            self.ids_increasing = False
        self._ids[lo:hi] = ids
        self._vectors[lo:hi] = X
        if self.trained:
            self._codes[lo:hi] = codes
        self.pos.update(zip(ids.tolist(), range(lo, hi)))
        self.n = hi
        if payloads is not None:
            for i, p in zip(ids.tolist(), payloads):
                if p is not None:
                    self._set_payload(i, p)
        self.seq = seq

    def apply_delete(self, seq: int, ids: np.ndarray) -> int:
        n = self._remove(ids)
        self.seq = seq
        return n

    def apply_hasher(self, seq: int, hasher, codes=None) -> None:
        if codes is None:
            codes = hasher.transform(self.vectors) if self.n else None
        bits = int(hasher.code_bits)
        buf = np.zeros((self._ids.shape[0], (bits + 63) // 64), np.uint64)
        if self.n:
            buf[: self.n] = codes
        self.hasher, self.code_bits, self._codes = hasher, bits, buf
        self.seq = seq

    # persistence
    def _get_state(self) -> dict:
        pay_ids = np.fromiter(self.payloads.keys(), np.int64, len(self.payloads))
        pay_json = json.dumps(list(self.payloads.values()), separators=(",", ":")).encode()
        return {
            "config": self.config.as_dict(),
            "hasher": self.hasher,
            "code_bits": self.code_bits,
            "ids": self.ids,
            "vectors": self.vectors,
            "codes": self.codes,
            "payload_ids": pay_ids,
            "payloads_json": np.frombuffer(pay_json, np.uint8),
            "seq": self.seq,
        }

    @classmethod
    def _from_state(cls, state: dict) -> "ServiceCollectionState":
        obj = cls(CollectionConfig.from_dict(state["config"]))
        obj.hasher, obj.code_bits = state["hasher"], state["code_bits"]
        ids, vectors, codes = (np.ascontiguousarray(state[k]) for k in ("ids", "vectors", "codes"))
        n = ids.shape[0]
        if ids.ndim != 1 or vectors.shape != (n, obj.config.dim) or codes.shape[0] != n:
            raise ValueError("snapshot ids, vectors and codes do not match")
        if obj.code_bits is not None and codes.shape[1] != (obj.code_bits + 63) // 64:
            raise ValueError("snapshot codes do not match code_bits")
        obj._ids, obj._vectors, obj._codes, obj.n = ids.copy(), vectors.copy(), codes.copy(), n
        obj.pos = dict(zip(ids.tolist(), range(n)))
        if len(obj.pos) != n:
            raise ValueError("snapshot ids are not unique")
        obj.ids_increasing = bool(n < 2 or np.all(np.diff(ids) > 0))
        values = json.loads(bytes(state["payloads_json"]).decode())
        for i, p in zip(state["payload_ids"].tolist(), values):
            obj._set_payload(i, p)
        obj.seq = int(state["seq"])
        return obj


# -- record bodies ---------------------------------------------------------------------------------
def _encode_upsert(ids: np.ndarray, X: np.ndarray, payloads) -> bytes:
    tail = b"" if payloads is None else json.dumps(payloads, separators=(",", ":")).encode()
    return _U32x2.pack(ids.shape[0], X.shape[1]) + ids.astype("<i8").tobytes() + X.astype("<f4").tobytes() + tail


def _decode_upsert(body: memoryview):
    n, d = _U32x2.unpack_from(body, 0)
    pos = _U32x2.size
    ids = np.frombuffer(body, "<i8", n, pos).astype(np.int64)
    pos += 8 * n
    X = np.frombuffer(body, "<f4", n * d, pos).astype(np.float32).reshape(n, d)
    pos += 4 * n * d
    tail = bytes(body[pos:])
    payloads = json.loads(tail) if tail else None
    return ids, X, payloads


def _encode_delete(ids: np.ndarray) -> bytes:
    return struct.pack("<I", ids.shape[0]) + ids.astype("<i8").tobytes()


def _decode_delete(body: memoryview) -> np.ndarray:
    (n,) = struct.unpack_from("<I", body, 0)
    return np.frombuffer(body, "<i8", n, 4).astype(np.int64)


def _hasher_to_bytes(hasher, folder: Path) -> bytes:
    fd, tmp = tempfile.mkstemp(prefix=".hasher.", suffix=".tmp", dir=str(folder))
    os.close(fd)
    try:
        save(hasher, tmp)
        return Path(tmp).read_bytes()
    finally:
        _unlink(tmp)


def hasher_from_bytes(data: bytes, folder: Path, dim: int):
    """Load a fitted vector hasher from hashlearn-file bytes (checked: class, fitted, dimension)."""
    fd, tmp = tempfile.mkstemp(prefix=".upload.", suffix=".tmp", dir=str(folder))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        obj = load(tmp)
    finally:
        _unlink(tmp)
    if getattr(type(obj), "input_kind", None) != "vector" or not hasattr(obj, "transform"):
        raise ValidationError(f"the uploaded file holds a {type(obj).__name__}, not a vector hasher")
    if not hasattr(obj, "n_features_in_"):
        raise ValidationError("the uploaded hasher is not fitted")
    if obj.n_features_in_ != dim:
        raise ValidationError(f"the uploaded hasher was fitted on {obj.n_features_in_}-dimensional vectors, the collection has dim {dim}")
    return obj


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- validation of request data ------------------------------------------------------------------
def check_vectors(vectors, dim: int, name: str = "vectors", max_rows: int | None = None) -> np.ndarray:
    """(n, dim) finite float32 matrix from nested lists or an array; errors name the problem."""
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


# -- a collection ------------------------------------------------------------------------------------
class Collection:
    """One collection: state in memory, log and snapshots on disk. Thread-safe.

    Use :meth:`Storage.create` / :meth:`Storage.get` rather than the constructor.
    """

    def __init__(self, folder: Path, config: CollectionConfig, *, snapshot_records: int = 1000,
                 snapshot_bytes: int = 256 << 20, fsync: bool = True):
        self.folder = Path(folder)
        self.config = config
        self.snapshot_records = snapshot_records
        self.snapshot_bytes = snapshot_bytes
        self.fsync = fsync
        self._lock = RWLock()
        self._writer = threading.Lock()
        self.closed = False
        self.state = ServiceCollectionState(config)
        self.wal: WriteAheadLog | None = None
        self.recovery: dict = {}
        self._records_since_snapshot = 0
        self.last_snapshot_seq = 0
        self.last_snapshot_error: str | None = None

    # -- files --
    def _snapshots(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.folder.glob("snapshot-*.hlrn"):
            try:
                out.append((int(p.stem.split("-")[1]), p))
            except ValueError:
                continue
        return sorted(out)

    def _segments(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.folder.glob("wal-*.log"):
            try:
                out.append((int(p.stem.split("-")[1]), p))
            except ValueError:
                continue
        return sorted(out)

    # -- recovery --
    def open(self) -> "Collection":
        """Load the newest readable snapshot, replay the log after it, cut a torn tail; fill :attr:`recovery`."""
        t0 = time.perf_counter()
        report = {"snapshot": None, "skipped_snapshots": [], "replayed_records": 0, "segments": [], "problems": []}
        for _ in self.folder.glob(".*.tmp"):  # leftovers of interrupted atomic writes
            _unlink(_)
        state = None
        for seq, path in reversed(self._snapshots()):
            try:
                loaded = load(path)
                if not isinstance(loaded, ServiceCollectionState) or loaded.seq != seq:
                    raise HashlearnError(f"{path.name}: not a snapshot of this collection")
                state = loaded
                report["snapshot"] = {"file": path.name, "seq": seq, "points": loaded.n}
                break
            except (HashlearnError, OSError, ValueError) as exc:
                report["skipped_snapshots"].append({"file": path.name, "error": str(exc)})
        if state is None:
            state = ServiceCollectionState(self.config)
            if report["skipped_snapshots"] and (not self._segments() or self._segments()[0][0] != 1):
                report["problems"].append("no readable snapshot and the log does not start at record 1: data was lost")
        state.config = self.config
        segments = self._segments()
        tail_truncate = None
        damaged = bool(report["skipped_snapshots"])
        stop = False
        for i, (first, path) in enumerate(segments):
            records, rep = read_records(path)
            report["segments"].append(rep.as_dict())
            for seq, op, body in records:
                if seq <= state.seq:
                    continue
                if seq != state.seq + 1:
                    report["problems"].append(f"{path.name}: record {seq} follows {state.seq}; later records ignored")
                    stop = True
                    break
                try:
                    self._apply_record(state, seq, op, body)
                except Exception as exc:  # a record that passed its CRC but cannot be applied
                    report["problems"].append(f"{path.name}: record {seq} could not be applied ({exc})")
                    stop = True
                    break
                report["replayed_records"] += 1
            if not stop and rep.stop_reason is not None:
                if i == len(segments) - 1:
                    tail_truncate = rep.good_bytes
                else:
                    report["problems"].append(f"{path.name}: {rep.stop_reason}, before the last log segment; later records ignored")
                    stop = True
            if stop:
                damaged = True
                break
        self.state = state
        self.last_snapshot_seq = report["snapshot"]["seq"] if report["snapshot"] else 0
        report["points"] = state.n
        report["seq"] = state.seq
        if damaged:
            # Start over from a clean base: a fresh snapshot of what was recovered, a new log; the
            # damaged files are kept aside (renamed damaged-*) for inspection, out of recovery's way.
            stamp = time.strftime("%Y%m%dT%H%M%S")
            old_files = [p for _, p in segments] + [self.folder / s["file"] for s in report["skipped_snapshots"]]
            for p in old_files:
                if p.exists():
                    os.replace(p, self.folder / f"damaged-{stamp}-{p.name}")
            self._snapshot_locked(force=True)
            report["action"] = ("wrote a fresh snapshot of the recovered state and started a new log; "
                                "damaged files renamed damaged-*")
        else:
            if segments:
                self.wal = WriteAheadLog(segments[-1][1], truncate_to=tail_truncate, fsync=self.fsync)
                self._records_since_snapshot = self.state.seq - self.last_snapshot_seq
            else:
                self.wal = WriteAheadLog(self.folder / f"wal-{state.seq + 1:016d}.log", fsync=self.fsync)
            if tail_truncate is not None:
                report["action"] = f"cut the torn log tail at byte {tail_truncate}"
        report["seconds"] = round(time.perf_counter() - t0, 3)
        self.recovery = report
        return self

    def _apply_record(self, state: ServiceCollectionState, seq: int, op: int, body) -> None:
        if op == OP_UPSERT:
            ids, X, payloads = _decode_upsert(body)
            state.apply_upsert(seq, ids, X, payloads)
        elif op == OP_DELETE:
            state.apply_delete(seq, _decode_delete(body))
        elif op == OP_SET_HASHER:
            state.apply_hasher(seq, hasher_from_bytes(bytes(body), self.folder, self.config.dim))
        else:
            raise ValueError(f"unknown operation {op}")

    # -- snapshots --
    def snapshot(self) -> dict:
        """Save the current state and start a new log segment; returns what was written."""
        with self._writer:
            self._check_open()
            return self._snapshot_locked(force=True)

    def _snapshot_locked(self, force: bool = False) -> dict:
        seq = self.state.seq
        path = self.folder / f"snapshot-{seq:016d}.hlrn"
        t0 = time.perf_counter()
        if force or not path.exists():
            if not self.state.ids_increasing:
                # deletes swap rows (O(batch)); put them back in id order while the state is written
                # out anyway, so searches return to the cheaper tie rule
                with self._lock.write():
                    self.state.sort_rows_by_id()
            with self._lock.read():
                save(self.state, path)
        if self.wal is not None:
            self.wal.close()
        self.wal = WriteAheadLog(self.folder / f"wal-{seq + 1:016d}.log", fsync=self.fsync)
        self.last_snapshot_seq = seq
        self._records_since_snapshot = 0
        # keep the two newest snapshots and the log after the older one
        snaps = self._snapshots()
        keep_from = snaps[-2][0] if len(snaps) >= 2 else 0
        for s, p in snaps[:-2]:
            _unlink(p)
        segs = self._segments()
        for (first, p), nxt in zip(segs, segs[1:]):
            if nxt[0] <= keep_from + 1 and p != self.wal.path:
                _unlink(p)
        return {"seq": seq, "file": path.name, "seconds": round(time.perf_counter() - t0, 3)}

    def _after_write(self) -> None:
        self._records_since_snapshot += 1
        if self._records_since_snapshot >= self.snapshot_records or self.wal.size >= self.snapshot_bytes:
            # The write is already durable in the log: a snapshot that fails (disk full) is reported
            # in stats and retried after the next write, never turned into a failed write.
            try:
                self._snapshot_locked()
                self.last_snapshot_error = None
            except OSError as exc:
                self.last_snapshot_error = f"{type(exc).__name__}: {exc}"

    def _check_open(self) -> None:
        if self.closed:
            raise NotFound(f"collection {self.config.name!r} was deleted")

    # -- writes --
    def upsert(self, ids, vectors, payloads=None, *, max_rows: int | None = None) -> dict:
        """Insert or replace points; returns once the batch is durable. Payloads: JSON values or None."""
        X = check_vectors(vectors, self.config.dim, max_rows=max_rows)
        ids = check_ids(ids, n=X.shape[0])
        if payloads is not None:
            if not isinstance(payloads, (list, tuple)) or len(payloads) != X.shape[0]:
                raise ValidationError(f"payloads must be a list of {X.shape[0]} objects (or null entries)")
            for i, p in enumerate(payloads):
                if p is not None and not isinstance(p, dict):
                    raise ValidationError(f"payloads[{i}] must be a JSON object or null, got {type(p).__name__}")
                try:
                    size = len(json.dumps(p, allow_nan=False))
                except (TypeError, ValueError) as exc:
                    raise ValidationError(f"payloads[{i}] is not plain JSON ({exc})") from None
                if size > MAX_PAYLOAD_BYTES:
                    raise ValidationError(f"payloads[{i}] is {size} bytes of JSON, more than the limit of {MAX_PAYLOAD_BYTES}")
            payloads = list(payloads)
        body = _encode_upsert(ids, X, payloads)
        with self._writer:
            self._check_open()
            codes = self.state.hasher.transform(X) if self.state.trained else None
            seq = self.state.seq + 1
            self.wal.append(seq, OP_UPSERT, body)
            with self._lock.write():
                self.state.apply_upsert(seq, ids, X, payloads, codes)
            self._after_write()
            return {"seq": seq, "upserted": int(ids.shape[0])}

    def delete(self, ids) -> dict:
        ids = check_ids(ids, unique=False)
        with self._writer:
            self._check_open()
            seq = self.state.seq + 1
            self.wal.append(seq, OP_DELETE, _encode_delete(ids))
            with self._lock.write():
                n = self.state.apply_delete(seq, ids)
            self._after_write()
            return {"seq": seq, "deleted": n}

    def set_hasher(self, hasher) -> dict:
        """Use a fitted hasher (re-encodes every stored vector); durable before it returns."""
        with self._writer:
            self._check_open()
            body = _hasher_to_bytes(hasher, self.folder)
            codes = hasher.transform(self.state.vectors) if self.state.n else None
            seq = self.state.seq + 1
            self.wal.append(seq, OP_SET_HASHER, body)
            with self._lock.write():
                self.state.apply_hasher(seq, hasher, codes)
            self._after_write()
            return {"seq": seq, "trained": True, "points_encoded": self.state.n}

    def train(self, vectors, *, max_rows: int | None = None) -> dict:
        """Fit a fresh hasher (the collection's method and parameters) on ``vectors`` and use it."""
        X = check_vectors(vectors, self.config.dim, max_rows=max_rows)
        hasher = self.config.make_hasher()
        try:
            hasher.fit(X)
        except (ValueError, TypeError, ArithmeticError, IndexError, KeyError) as exc:
            # the method's parameters came from the client: a failure to fit is a client error
            raise ValidationError(f"training {self.config.method} failed: {exc}") from None
        out = self.set_hasher(hasher)
        out["train_vectors"] = int(X.shape[0])
        return out

    # -- reads --
    def get(self, point_id: int) -> dict:
        with self._lock.read():
            st = self.state
            pos = int(st.positions(np.array([point_id]))[0])
            if pos < 0:
                raise NotFound(f"point {point_id} is not in collection {self.config.name!r}")
            return {"id": int(point_id), "vector": st.vectors[pos].tolist(), "payload": st.payloads.get(int(point_id))}

    def list_ids(self, offset: int = 0, limit: int = 1000) -> dict:
        """Stored ids in increasing order, ``limit`` of them from ``offset`` (for paging through a collection)."""
        with self._lock.read():
            ids = self.state.ids
            sel = ids if self.state.ids_increasing else np.sort(ids)
            return {"ids": sel[offset: offset + limit].tolist(), "total": int(ids.shape[0])}

    def get_many(self, ids) -> list[dict | None]:
        """Points by id (None for ids not stored), read from one consistent state."""
        ids = check_ids(ids, unique=False)
        with self._lock.read():
            st = self.state
            pos = st.positions(ids)
            return [None if p < 0 else {"id": int(i), "vector": st.vectors[p].tolist(), "payload": st.payloads.get(int(i))}
                    for i, p in zip(ids.tolist(), pos.tolist())]

    def search(self, vectors, k: int = 10, *, rerank: bool = False, candidates: int | None = None,
               filter: dict | None = None, max_rows: int | None = None):
        """Top-k per query: (D, I) with ``I = -1`` past the available results.

        Without ``rerank``, D holds Hamming distances (int); with it, the best ``candidates`` Hamming
        matches are re-scored with the collection metric (squared L2, -inner product, 1 - cosine).
        ``filter`` keeps only points whose payload has every given key equal to the given value.
        """
        Xq = check_vectors(vectors, self.config.dim, max_rows=max_rows)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 10000:
            raise ValidationError(f"k must be an integer in [1, 10000], got {k!r}")
        cand = self.config.rerank_candidates if candidates is None else candidates
        if isinstance(cand, bool) or not isinstance(cand, (int, np.integer)) or not 1 <= cand <= 100000:
            raise ValidationError(f"candidates must be an integer in [1, 100000], got {cand!r}")
        if filter is not None and not isinstance(filter, dict):
            raise ValidationError("filter must be a JSON object of key: value pairs")
        with self._lock.read():
            st = self.state
            if not st.trained:
                raise NotTrained(f"collection {self.config.name!r} is not trained: POST /collections/{self.config.name}/train first")
            qcodes = st.hasher.transform(Xq)
            kk = max(k, cand) if rerank else k
            codes, ids = st.codes, st.ids
            if filter:
                rows = st.matching(filter)
                codes, ids = codes[rows], ids[rows]
            # One thread for a few queries: the server's concurrency comes from concurrent requests,
            # and small parallel regions only add wake-up latency on a busy machine.
            threads = 1 if Xq.shape[0] < 8 else None
            if ids.shape[0] == 0:
                D = np.full((Xq.shape[0], kk), MISSING_DISTANCE, np.int32)
                I = np.full((Xq.shape[0], kk), -1, np.int64)
            else:
                # ties by smaller id; by row (faster) where rows are in id order
                tie = None if st.ids_increasing else ids
                D, P = knn_search(qcodes, codes, kk, n_bits=st.code_bits, tie_ids=tie, n_threads=threads)
                I = np.where(P >= 0, ids[np.maximum(P, 0)], -1)
            if not rerank:
                return D[:, :k], I[:, :k]
            return self._rerank(st, Xq, I, k)

    def _rerank(self, st, Xq, cand, k):
        valid = cand >= 0
        pos = st.positions(np.where(valid, cand, 0))
        V = st.vectors[np.maximum(pos, 0)].astype(np.float64)
        q = Xq.astype(np.float64)
        metric = self.config.metric
        if metric == "l2":
            dist = ((V - q[:, None, :]) ** 2).sum(-1)
        elif metric == "ip":
            dist = -np.einsum("qcd,qd->qc", V, q)
        else:
            qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
            dist = 1 - np.einsum("qcd,qd->qc", V, qn) / np.maximum(np.linalg.norm(V, axis=2), 1e-30)
        dist = np.where(valid, dist, np.inf)
        order = np.lexsort((np.where(valid, cand, np.iinfo(np.int64).max), dist), axis=1)[:, :k]
        return np.take_along_axis(dist, order, 1), np.take_along_axis(cand, order, 1)

    def describe(self) -> dict:
        with self._lock.read():
            st = self.state
            return {
                **self.config.as_dict(),
                "points": st.n,
                "trained": st.trained,
                "code_bits": st.code_bits,
            }

    def stats(self) -> dict:
        out = self.describe()
        out.update({
            "seq": self.state.seq,
            "last_snapshot_seq": self.last_snapshot_seq,
            "last_snapshot_error": self.last_snapshot_error,
            "log_bytes": self.wal.size if self.wal else 0,
            "payloads": len(self.state.payloads),
            "memory_bytes": int(self.state._vectors.nbytes + self.state._codes.nbytes + self.state._ids.nbytes),
            "recovery": self.recovery,
        })
        return out

    def close(self, *, snapshot: bool = False) -> None:
        with self._writer:
            if self.closed:
                return
            if snapshot and self.wal is not None and self.state.seq != self.last_snapshot_seq:
                self._snapshot_locked()
            if self.wal is not None:
                self.wal.close()
            self.closed = True


def _term(key: str, value):
    """Inverted-index key of a scalar payload field; None for lists and objects. Booleans are tagged
    apart from numbers (JSON ``true`` is not ``1``); ``1`` and ``1.0`` are the same JSON number."""
    if isinstance(value, bool):
        return (key, "b", value)
    if value is None or isinstance(value, (int, float, str)):
        return (key, "v", value)
    return None


def _json_equal(a, b) -> bool:
    # JSON equality without Python's 1 == True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# -- the data directory ------------------------------------------------------------------------------
class Storage:
    """All collections of a data directory.

    Parameters
    ----------
    data_dir : path, created if missing
    snapshot_records, snapshot_bytes : a snapshot is taken after this many log records or bytes
    fsync : bool, default True (False only to measure the cost of durability)

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from hashlearn.service import CollectionConfig, Storage
    >>> storage = Storage(tempfile.mkdtemp())
    >>> coll = storage.create(CollectionConfig(name="docs", dim=4, n_bits=16))
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> _ = coll.train(X)
    >>> coll.upsert(list(range(50)), X, [{"even": i % 2 == 0} for i in range(50)])["upserted"]
    50
    >>> D, I = coll.search(X[:1], 3)
    >>> int(I[0, 0]), int(D[0, 0])
    (0, 0)
    >>> coll.get(0)["payload"]
    {'even': True}
    """

    def __init__(self, data_dir, *, snapshot_records: int = 1000, snapshot_bytes: int = 256 << 20, fsync: bool = True):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self.snapshot_records = snapshot_records
        self.snapshot_bytes = snapshot_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self.recovery: dict = {}
        self._open_all()

    def _open_all(self) -> None:
        for p in sorted(self.root.iterdir()):
            if p.name.startswith("."):
                shutil.rmtree(p, ignore_errors=True)  # interrupted create or delete
                continue
            if not p.is_dir() or not NAME_RE.match(p.name):
                continue
            try:
                config = CollectionConfig.from_dict(json.loads((p / "config.json").read_text()))
                coll = Collection(p, config, snapshot_records=self.snapshot_records,
                                  snapshot_bytes=self.snapshot_bytes, fsync=self.fsync).open()
            except (OSError, ValueError, TypeError, HashlearnError) as exc:
                self.recovery[p.name] = {"problems": [f"collection could not be opened: {exc}"]}
                continue
            self._collections[p.name] = coll
            self.recovery[p.name] = coll.recovery

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def get(self, name: str) -> Collection:
        check_collection_name(name)
        with self._lock:
            coll = self._collections.get(name)
        if coll is None:
            raise NotFound(f"collection {name!r} does not exist")
        return coll

    def create(self, config: CollectionConfig) -> Collection:
        config.validate()
        with self._lock:
            if config.name in self._collections or (self.root / config.name).exists():
                raise Conflict(f"collection {config.name!r} already exists")
            tmp = self.root / f".create-{config.name}-{uuid.uuid4().hex}"
            tmp.mkdir()
            try:
                data = json.dumps(config.as_dict(), indent=2).encode()
                atomic_write(tmp / "config.json", lambda fh: fh.write(data))
                os.rename(tmp, self.root / config.name)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            coll = Collection(self.root / config.name, config, snapshot_records=self.snapshot_records,
                              snapshot_bytes=self.snapshot_bytes, fsync=self.fsync).open()
            self._collections[config.name] = coll
            return coll

    def delete(self, name: str) -> None:
        check_collection_name(name)
        with self._lock:
            coll = self._collections.pop(name, None)
            if coll is None:
                raise NotFound(f"collection {name!r} does not exist")
            coll.close()
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex}"
            os.rename(self.root / name, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def close(self, *, snapshot: bool = True) -> None:
        with self._lock:
            for coll in self._collections.values():
                try:
                    coll.close(snapshot=snapshot)
                except OSError:
                    pass
