"""One collection: its state in memory, its log and snapshots on disk. Thread-safe.

Durability. A write (upsert, delete, new hasher) is validated and prepared (every computation that can
fail: encoding), appended to the log and fsync'ed, and only then applied in memory (assignments only)
and acknowledged. Every few records (or bytes) the state is saved as a snapshot (atomic, checksummed)
and a new log segment is started; the two newest snapshots and the log since the older one are kept.
If applying a logged write fails anyway (out of memory), its sequence number is consumed — never
reused — and the collection turns read-only until a restart replays the log.

Consistency. Writers are serialised by a mutex; the in-memory structures change only under the write
side of a readers-writer lock, and searches hold the read side, so a search sees the state before or
after a batch, never half of it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from ...codes.search import thread_limit
from ...errors import ValidationError
from ...io.persist import save
from ..wal import WriteAheadLog
from .config import CollectionConfig
from .errors import NotFound, NotTrained, Unavailable
from .faults import NO_FAULTS
from .lock import RWLock
from .records import OP_DELETE, OP_SET_HASHER, OP_UPSERT, encode_delete, encode_hasher, encode_upsert
from .recovery import public_message, recover
from .state import ServiceCollectionState
from .validation import check_filter, check_ids, check_payloads, check_vectors

__all__ = ["Collection", "Limits"]


class Limits:
    """Per-request limits of a server (all configurable, see ``hashlearn serve --help``).

    max_rows : vectors per upsert or train request; ids per delete or get
    max_queries : query vectors per search
    max_k : results per query
    max_candidates : Hamming candidates re-ranked per query (also caps a collection's default)
    max_rerank_work : ``nq × candidates × dim`` of one re-ranked search (candidates counted after capping
        them at the number of points searched)
    max_bits : code length of a collection or an uploaded hasher
    """

    def __init__(self, *, max_rows: int = 10000, max_queries: int = 1000, max_k: int = 10000,
                 max_candidates: int = 10000, max_rerank_work: int = 200_000_000, max_bits: int | None = None):
        from ...registry import MAX_BITS

        self.max_rows, self.max_queries, self.max_k = max_rows, max_queries, max_k
        self.max_candidates, self.max_rerank_work = max_candidates, max_rerank_work
        self.max_bits = MAX_BITS if max_bits is None else max_bits

    def as_dict(self) -> dict:
        return dict(vars(self))


def _int_in(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValidationError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


class Collection:
    """Use :meth:`Storage.create` / :meth:`Storage.get` rather than the constructor."""

    def __init__(self, folder: Path, config: CollectionConfig, *, snapshot_records: int = 1000,
                 snapshot_bytes: int = 256 << 20, fsync: bool = True, faults=NO_FAULTS, limits: Limits | None = None):
        self.folder = Path(folder)
        self.config = config
        self.snapshot_records = snapshot_records
        self.snapshot_bytes = snapshot_bytes
        self.fsync = fsync
        self.faults = faults
        self.limits = limits or Limits()
        self._lock = RWLock()
        self._writer = threading.Lock()
        self.closed = False
        self.read_only: str | None = None
        self.state = ServiceCollectionState(config)
        self.wal: WriteAheadLog | None = None
        self.recovery: dict = {}
        self.records_since_snapshot = 0
        self.last_snapshot_seq = 0
        self.last_snapshot_error: str | None = None

    @property
    def max_bits(self) -> int:
        return self.limits.max_bits

    # -- files -------------------------------------------------------------------------------------
    def _numbered(self, pattern: str) -> list[tuple[int, Path]]:
        out = []
        for p in self.folder.glob(pattern):
            try:
                out.append((int(p.stem.split("-")[1]), p))
            except (ValueError, IndexError):
                continue
        return sorted(out)

    def snapshots(self) -> list[tuple[int, Path]]:
        return self._numbered("snapshot-*.hlrn")

    def segments(self) -> list[tuple[int, Path]]:
        return self._numbered("wal-*.log")

    def open(self) -> "Collection":
        """Recover the state from the folder (see :mod:`.recovery`); raises Unavailable if it cannot."""
        self.recovery = recover(self)
        return self

    # -- snapshots ---------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Save the current state and start a new log segment; returns what was written."""
        with self._writer:
            self._check_writable()
            return self.write_snapshot(force=True)

    def write_snapshot(self, force: bool = False, before_replace=None, prune: bool = True) -> dict:
        """(Under the writer mutex.) Snapshot, new log segment, old files pruned.

        The snapshot is written completely under a temporary name first; ``before_replace(path)`` runs
        only once that succeeded, just before it takes its final name (recovery sets a damaged file of
        that name aside there).
        """
        seq = self.state.seq
        path = self.folder / f"snapshot-{seq:016d}.hlrn"
        t0 = time.perf_counter()
        if force or not path.exists():
            # removals swap rows (O(batch)); restore id order while the state is written out anyway,
            # so searches return to the cheaper tie rule
            with self._lock.write():
                self.state.index.reorder_by_id()
            self.faults.check("write", str(path))
            tmp = self.folder / f".{path.name}.fresh.tmp"
            try:
                with self._lock.read():
                    save(self.state, tmp)
                if before_replace is not None:
                    before_replace(path)
                os.replace(tmp, path)
            except BaseException:
                _unlink(tmp)
                raise
        new_log = self.folder / f"wal-{seq + 1:016d}.log"
        if self.wal is not None:
            self.wal.close()
        # An existing segment of that name holds no record after `seq` (all are applied): start it empty.
        self.wal = WriteAheadLog(new_log, truncate_to=0 if new_log.exists() else None, fsync=self.fsync,
                                 faults=self.faults)
        self.last_snapshot_seq = seq
        self.records_since_snapshot = 0
        if prune:
            self._prune()
        return {"seq": seq, "file": path.name, "seconds": round(time.perf_counter() - t0, 3)}

    def _prune(self) -> None:
        """Keep the two newest snapshots and the log after the older one."""
        snaps = self.snapshots()
        keep_from = snaps[-2][0] if len(snaps) >= 2 else 0
        for _, p in snaps[:-2]:
            _unlink(p)
        segs = self.segments()
        for (_first, p), nxt in zip(segs, segs[1:]):
            if nxt[0] <= keep_from + 1 and p != self.wal.path:
                _unlink(p)

    def _after_write(self) -> None:
        self.records_since_snapshot += 1
        if self.records_since_snapshot >= self.snapshot_records or self.wal.size >= self.snapshot_bytes:
            # The write is already durable in the log: a snapshot that fails (disk full) is reported
            # in stats and retried after the next write, never turned into a failed write.
            try:
                self.write_snapshot()
                self.last_snapshot_error = None
            except OSError as exc:
                self.last_snapshot_error = public_message(exc, self.folder)

    # -- writes ------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise NotFound(f"collection {self.config.name!r} was deleted")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise Unavailable(f"collection {self.config.name!r} is read-only: {self.read_only}")

    def _log_and_apply(self, op: int, body: bytes, apply) -> int:
        """(Under the writer mutex, after every check.) Append, fsync, apply; returns the sequence number.

        An OSError from the append changes nothing (the log cuts the partial record). A failure of
        ``apply`` after the record is on disk consumes its number and makes the collection read-only.
        """
        seq = self.state.seq + 1
        self.wal.append(seq, op, body)
        try:
            with self._lock.write():
                apply(seq)
        except BaseException as exc:
            self.state.seq = seq  # never reuse a number that is in the log
            self.read_only = (f"write {seq} is in the log but could not be applied in memory "
                              f"({type(exc).__name__}: {exc}); restart the server to replay it")
            raise Unavailable(f"collection {self.config.name!r} is now read-only: {self.read_only}") from exc
        self._after_write()
        return seq

    def upsert(self, ids, vectors, payloads=None) -> dict:
        """Insert or replace points; returns once the batch is durable. Payloads: JSON objects or None."""
        X = check_vectors(vectors, self.config.dim, max_rows=self.limits.max_rows)
        ids = check_ids(ids, n=X.shape[0])
        payloads = check_payloads(payloads, X.shape[0])
        body = encode_upsert(ids, X, payloads)
        with self._writer:
            self._check_writable()
            codes = self.state.prepare_upsert(X)
            seq = self._log_and_apply(OP_UPSERT, body, lambda s: self.state.apply_upsert(s, ids, X, payloads, codes))
            return {"seq": seq, "upserted": int(ids.shape[0])}

    def delete(self, ids) -> dict:
        ids = check_ids(ids, unique=False)
        if ids.shape[0] > self.limits.max_rows:
            raise ValidationError(f"ids has {ids.shape[0]} entries, more than the limit of {self.limits.max_rows} per request")
        out = {}
        with self._writer:
            self._check_writable()

            def apply(s):
                out["deleted"] = self.state.apply_delete(s, ids)

            seq = self._log_and_apply(OP_DELETE, encode_delete(ids), apply)
            return {"seq": seq, "deleted": out["deleted"]}

    def set_hasher(self, hasher) -> dict:
        """Use a fitted hasher (re-encodes every stored vector); durable before it returns.

        The hasher is checked completely, and every stored vector encoded with it, before anything is
        logged: a hasher that fails does so with nothing changed.
        """
        from .validation import check_hasher

        check_hasher(hasher, self.config.dim, max_bits=self.max_bits)
        body = encode_hasher(hasher)
        with self._writer:
            self._check_writable()
            codes = self.state.prepare_hasher(hasher)
            from ...codes import check_codes

            codes = check_codes(codes, hasher.code_bits)
            seq = self._log_and_apply(OP_SET_HASHER, body, lambda s: self.state.apply_hasher(s, hasher, codes))
            return {"seq": seq, "trained": True, "code_bits": int(hasher.code_bits), "points_encoded": self.state.n}

    def train(self, vectors) -> dict:
        """Fit a fresh hasher (the collection's method and parameters) on ``vectors`` and use it."""
        X = check_vectors(vectors, self.config.dim, max_rows=self.limits.max_rows)
        hasher = self.config.make_hasher()
        try:
            hasher.fit(X)
        except (ValueError, TypeError, ArithmeticError, IndexError, KeyError) as exc:
            # the method's parameters came from the client: a failure to fit is a client error
            raise ValidationError(f"training {self.config.method} failed: {exc}") from None
        if hasher.code_bits != self.config.n_bits:
            raise ValidationError(f"training {self.config.method} on {X.shape[0]} vectors gave {hasher.code_bits}-bit "
                                  f"codes, the collection has n_bits={self.config.n_bits} (more training vectors?)")
        out = self.set_hasher(hasher)
        out["train_vectors"] = int(X.shape[0])
        return out

    # -- reads -------------------------------------------------------------------------------------
    def _point(self, i: int, row: int) -> dict:
        st = self.state
        return {"id": int(i), "vector": st.index.vectors[row].tolist(), "payload": st.payloads.get(int(i))}

    def get(self, point_id: int) -> dict:
        with self._lock.read():
            row = int(self.state.index.rows(np.array([point_id], np.int64))[0])
            if row < 0:
                raise NotFound(f"point {point_id} is not in collection {self.config.name!r}")
            return self._point(point_id, row)

    def get_many(self, ids) -> list[dict | None]:
        """Points by id (None for ids not stored), read from one consistent state."""
        ids = check_ids(ids, unique=False)
        if ids.shape[0] > self.limits.max_rows:
            raise ValidationError(f"ids has {ids.shape[0]} entries, more than the limit of {self.limits.max_rows} per request")
        with self._lock.read():
            rows = self.state.index.rows(ids)
            return [None if r < 0 else self._point(i, r) for i, r in zip(ids.tolist(), rows.tolist())]

    def list_ids(self, offset: int = 0, limit: int = 1000) -> dict:
        """Stored ids in increasing order, ``limit`` of them from ``offset`` (for paging through a collection)."""
        with self._lock.read():
            ids = self.state.index.ids
            sel = ids if self.state.index.ids_in_order else np.sort(ids)
            return {"ids": sel[offset: offset + limit].tolist(), "total": int(ids.shape[0])}

    def search(self, vectors, k: int = 10, *, rerank: bool = False, candidates: int | None = None,
               filter: dict | None = None):
        """Top-k per query: ``(D, I, metric)`` with ``I = -1`` past the available results.

        Without ``rerank``, D holds Hamming distances (int32) and ``metric`` is ``"hamming"``; with it,
        the best ``candidates`` Hamming matches are re-scored with the collection metric (squared L2,
        -inner product, 1 - cosine; float32) and ``metric`` is that metric. ``filter`` keeps only points
        whose payload has every given key equal to the given value. The work is the library's
        :meth:`hashlearn.HashIndex.search`, so results equal a ``HashIndex`` holding the same data.
        """
        lim = self.limits
        Xq = check_vectors(vectors, self.config.dim, max_rows=lim.max_queries)
        k = _int_in(k, "k", 1, lim.max_k)
        cand = self.config.rerank_candidates if candidates is None else candidates
        cand = _int_in(cand, "candidates", 1, lim.max_candidates)
        filter = check_filter(filter)
        with self._lock.read():
            st = self.state
            if not st.trained:
                raise NotTrained(f"collection {self.config.name!r} is not trained: POST /collections/"
                                 f"{self.config.name}/train first (or upload a fitted hasher)")
            subset = st.matching(filter) if filter else None
            n = st.n if subset is None else subset.shape[0]
            if rerank:
                work = Xq.shape[0] * min(max(k, cand), n) * self.config.dim
                if work > lim.max_rerank_work:
                    raise ValidationError(
                        f"this re-ranked search would score {Xq.shape[0]} queries x {min(max(k, cand), n)} candidates "
                        f"x {self.config.dim} dimensions = {work:,} values, more than the limit of "
                        f"{lim.max_rerank_work:,} per request: send fewer queries or fewer candidates")
            # One thread for a few queries: the server's concurrency comes from concurrent requests,
            # and small parallel regions only add wake-up latency on a busy machine.
            with thread_limit(1 if Xq.shape[0] < 8 else None):
                D, I = st.index.search(Xq, k, rerank=cand if rerank else 0, subset=subset)
            return D, I, (self.config.metric if rerank else "hamming")

    def describe(self) -> dict:
        with self._lock.read():
            st = self.state
            out = {**self.config.as_dict(), "points": st.n, "trained": st.trained, "code_bits": st.code_bits}
            if self.read_only:
                out["read_only"] = self.read_only
            return out

    def stats(self) -> dict:
        out = self.describe()
        out.update({
            "seq": self.state.seq,
            "last_snapshot_seq": self.last_snapshot_seq,
            "last_snapshot_error": self.last_snapshot_error,
            "log_bytes": self.wal.size if self.wal else 0,
            "payloads": len(self.state.payloads),
            "memory_bytes": self.state.index.nbytes,
            "recovery": self.recovery,
        })
        return out

    def close(self, *, snapshot: bool = False) -> None:
        with self._writer:
            if self.closed:
                return
            if snapshot and self.wal is not None and not self.read_only and self.state.seq != self.last_snapshot_seq:
                self.write_snapshot()
            if self.wal is not None:
                self.wal.close()
            self.closed = True


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
