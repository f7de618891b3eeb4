"""Opening a collection after a start: newest readable snapshot, then every intact log record after it.

Rules (what the service promises about acknowledged writes):

* A torn tail — an incomplete last record that no intact record follows — was never acknowledged: it is
  cut off, and that is not a problem.
* Damage anywhere else is: the log is read past it (frames are CRC-checked, reading resynchronises on
  the next intact one), every intact record is applied, missing sequence numbers are reported as lost
  writes in ``problems``, a fresh snapshot of what was recovered is written *first*, and only then are
  the damaged files renamed ``damaged-*`` (kept for inspection, out of recovery's way).
* An environmental error (disk full, I/O error, too many open files, out of memory) is never taken for
  damage: the collection is not opened, no file is renamed, truncated or deleted, ``/health`` says why,
  and the next start opens it fully once the condition is gone.
* A record that passes its checksum but cannot be applied leaves the collection closed too, every file
  kept: that is a bug or foreign data, not something to repair by discarding writes.
"""

from __future__ import annotations

import os
import time

from ...errors import HashlearnError
from ...io.persist import load
from ..wal import WriteAheadLog, read_records
from .errors import Unavailable, is_environmental
from .records import OP_DELETE, OP_NAMES, OP_SET_HASHER, OP_UPSERT, RecordError, decode_delete, decode_upsert
from .state import ServiceCollectionState
from .validation import hasher_from_bytes

__all__ = ["recover", "apply_record", "public_message"]


def public_message(exc: BaseException, folder) -> str:
    """``exc`` as text without the absolute paths of the data directory."""
    text = f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) and not isinstance(exc, HashlearnError) else str(exc)
    for prefix in (str(folder) + os.sep, str(folder)):
        text = text.replace(prefix, "")
    return text


def apply_record(state: ServiceCollectionState, seq: int, op: int, body, *, max_bits: int) -> None:
    """Replay one logged write (the same prepare/apply steps as the live write)."""
    dim = state.config.dim
    if op == OP_UPSERT:
        ids, X, payloads = decode_upsert(body, dim)
        state.apply_upsert(seq, ids, X, payloads, state.prepare_upsert(X))
    elif op == OP_DELETE:
        state.apply_delete(seq, decode_delete(body))
    elif op == OP_SET_HASHER:
        hasher = hasher_from_bytes(bytes(body), dim, max_bits=max_bits, name=f"the hasher of record {seq}")
        state.apply_hasher(seq, hasher, state.prepare_hasher(hasher))
    else:
        raise RecordError(f"unknown operation {op}")


def _unavailable(coll, what: str, exc: BaseException) -> Unavailable:
    return Unavailable(f"collection {coll.config.name!r} was not opened: {what} failed "
                       f"({public_message(exc, coll.folder)}); every file is kept, and the next start opens it "
                       "once the cause is gone")


def _load_snapshot(coll, report: dict):
    """The newest snapshot that loads, or None; damaged ones are listed in ``report``."""
    for seq, path in reversed(coll.snapshots()):
        try:
            coll.faults.check("read", str(path))
            loaded = load(path)
            if not isinstance(loaded, ServiceCollectionState) or loaded.seq != seq:
                raise HashlearnError(f"{path.name}: not a snapshot of this collection")
            report["snapshot"] = {"file": path.name, "seq": seq, "points": loaded.n}
            return loaded
        except Exception as exc:  # noqa: BLE001 - classified right below
            if is_environmental(exc):
                raise _unavailable(coll, f"reading {path.name}", exc) from None
            report["skipped_snapshots"].append({"file": path.name, "error": public_message(exc, coll.folder)})
    return None


def _replay(coll, state, segments, report: dict) -> tuple[bool, int | None]:
    """Apply every intact record after the snapshot. Returns (damaged, byte where the torn tail of the
    last segment starts or None)."""
    damaged, tail = False, None
    for i, (_first, path) in enumerate(segments):
        try:
            records, rep = read_records(path, faults=coll.faults)
        except OSError as exc:
            raise _unavailable(coll, f"reading {path.name}", exc) from None
        report["segments"].append(rep.as_dict())
        for rng in rep.damaged:
            damaged = True
            report["problems"].append(f"{path.name}: bytes {rng['start']}-{rng['end']} are damaged ({rng['reason']}); "
                                      "reading resumed at the next intact record")
        for seq, op, body in records:
            if seq <= state.seq:
                continue
            if seq != state.seq + 1:
                damaged = True
                lost = f"record {state.seq + 1}" if seq == state.seq + 2 else f"records {state.seq + 1}-{seq - 1}"
                report["problems"].append(f"{lost} missing before {path.name} record {seq}: "
                                          "those acknowledged writes are lost")
                report["lost_records"] += seq - state.seq - 1
            try:
                apply_record(state, seq, op, body, max_bits=coll.max_bits)
            except Exception as exc:  # noqa: BLE001
                what = f"replaying record {seq} ({OP_NAMES.get(op, op)}) of {path.name}"
                if is_environmental(exc):
                    raise _unavailable(coll, what, exc) from None
                raise Unavailable(f"collection {coll.config.name!r} was not opened: {what} passed its checksum but "
                                  f"cannot be applied ({public_message(exc, coll.folder)}); every file is kept") from None
            report["replayed_records"] += 1
        if rep.stop_reason is not None:
            if i == len(segments) - 1:
                tail = rep.good_bytes
            else:
                report["notes"].append(f"{path.name}: {rep.stop_reason} (an unfinished record before a later segment)")
    return damaged, tail


def recover(coll) -> dict:
    """Fill ``coll.state`` / ``coll.wal`` from the folder; return the recovery report (see the module
    docstring). Raises :class:`Unavailable` when the collection cannot be opened now."""
    t0 = time.perf_counter()
    report = {"snapshot": None, "skipped_snapshots": [], "replayed_records": 0, "lost_records": 0, "segments": [],
              "problems": [], "notes": []}
    for leftover in coll.folder.glob(".*.tmp"):  # interrupted atomic writes
        try:
            os.unlink(leftover)
        except OSError:
            pass
    state = _load_snapshot(coll, report) or ServiceCollectionState(coll.config)
    state.config = coll.config
    segments = coll.segments()
    damaged, tail = _replay(coll, state, segments, report)
    damaged = damaged or bool(report["skipped_snapshots"])
    if report["skipped_snapshots"] and state.seq == 0 and not segments:
        report["problems"].append("no readable snapshot and no log: the collection's content was lost")
    coll.state = state
    coll.last_snapshot_seq = report["snapshot"]["seq"] if report["snapshot"] else 0
    try:
        if damaged:
            _restart_clean(coll, segments, report)
        else:
            _reopen_log(coll, segments, tail, report)
    except OSError as exc:
        coll.wal = None
        raise _unavailable(coll, "writing the recovered state", exc) from None
    report["points"] = state.n
    report["seq"] = state.seq
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def _restart_clean(coll, segments, report: dict) -> None:
    """A fresh snapshot of what was recovered and a new log, then the damaged files set aside."""
    stamp = time.strftime("%Y%m%dT%H%M%S")

    def set_aside(p):
        if p.exists():
            os.replace(p, coll.folder / f"damaged-{stamp}-{p.name}")

    # An OSError while writing leaves every old file where it was; a damaged snapshot that has the
    # fresh one's name is set aside only once the fresh one is complete.
    coll.write_snapshot(force=True, before_replace=set_aside, prune=False)  # (damaged files are kept)
    old = [p for _, p in segments] + [coll.folder / s["file"] for s in report["skipped_snapshots"]]
    fresh = coll.folder / f"snapshot-{coll.state.seq:016d}.hlrn"
    for p in old:
        if p not in (coll.wal.path, fresh):
            set_aside(p)
    report["action"] = ("wrote a fresh snapshot of the recovered state and started a new log; damaged files "
                        "renamed damaged-*")


def _reopen_log(coll, segments, tail, report: dict) -> None:
    if segments:
        coll.wal = WriteAheadLog(segments[-1][1], truncate_to=tail, fsync=coll.fsync, faults=coll.faults)
        coll.records_since_snapshot = coll.state.seq - coll.last_snapshot_seq
    else:
        coll.wal = WriteAheadLog(coll.folder / f"wal-{coll.state.seq + 1:016d}.log", fsync=coll.fsync, faults=coll.faults)
    if tail is not None:
        report["action"] = f"cut the torn log tail at byte {tail}"
