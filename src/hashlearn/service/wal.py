"""Write-ahead log: length + CRC framed records, fsync per appended batch, replay up to a torn tail.

Record layout (little-endian)::

    uint32  payload length L
    uint32  CRC-32 of (the 4 length bytes + payload)
    L bytes payload: uint64 sequence number, uint8 operation, then the operation's body

A record is acknowledged only after :meth:`WriteAheadLog.append` returned, i.e. after its bytes were
written and ``fsync`` ed. A crash can leave at most one partially written record at the end of the
log: a *torn tail*, which was never acknowledged and is cut off. Damage anywhere else (a flipped bit,
a bad sector) is different: the records after it were acknowledged. :func:`read_records` therefore
does not stop at a bad frame; it resynchronises on the next intact one (a frame whose length fits,
whose sequence number follows, and whose CRC matches) and reports each damaged byte range, so
recovery keeps every intact record and can say exactly which were lost. Only damage that no intact
frame follows counts as a torn tail.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["WriteAheadLog", "read_records", "ReplayReport", "MAX_RECORD_BYTES"]

_FRAME = struct.Struct("<II")
_SEQ = struct.Struct("<QB")
MAX_RECORD_BYTES = 1 << 30


def _crc(length_bytes: bytes, payload) -> int:
    return zlib.crc32(payload, zlib.crc32(length_bytes)) & 0xFFFFFFFF


@dataclass
class ReplayReport:
    """What reading one log file found."""

    path: str
    records: int = 0
    good_bytes: int = 0  # end of the last intact record: where a torn tail starts
    file_bytes: int = 0
    stop_reason: str | None = None  # why the torn tail (if any) does not parse; None: the log ended cleanly
    damaged: list = field(default_factory=list)  # byte ranges skipped in the middle: {"start", "end", "reason"}

    @property
    def torn_bytes(self) -> int:
        return self.file_bytes - self.good_bytes

    @property
    def damaged_bytes(self) -> int:
        return sum(d["end"] - d["start"] for d in self.damaged)

    def as_dict(self) -> dict:
        return {
            "path": Path(self.path).name,
            "records": self.records,
            "good_bytes": self.good_bytes,
            "discarded_bytes": self.torn_bytes,
            "stop_reason": self.stop_reason,
            "damaged_ranges": [dict(d) for d in self.damaged],
        }


#: Largest sequence-number step a resynchronised frame may make (a sanity bound that makes random
#: bytes almost never pass for a frame before the CRC is even computed).
_MAX_SEQ_STEP = 1 << 32
_SCAN_CHUNK = 1 << 20


def _frame_at(data: bytes, view: memoryview, pos: int, last_seq: int):
    """``(seq, op, body, end)`` of the intact frame at ``pos``, or a string saying why there is none."""
    if len(data) - pos < _FRAME.size:
        return f"incomplete record header at byte {pos} ({len(data) - pos} bytes)"
    length, crc = _FRAME.unpack_from(data, pos)
    if length < _SEQ.size or length > MAX_RECORD_BYTES:
        return f"impossible record length {length} at byte {pos}"
    end = pos + _FRAME.size + length
    if end > len(data):
        return f"record at byte {pos} is cut short ({len(data) - pos - _FRAME.size} of {length} bytes)"
    payload = view[pos + _FRAME.size : end]
    if _crc(data[pos : pos + 4], payload) != crc:
        return f"checksum mismatch in record at byte {pos}"
    seq, op = _SEQ.unpack_from(payload, 0)
    if seq <= last_seq:
        return f"sequence number {seq} at byte {pos} does not follow {last_seq}"
    return seq, op, payload[_SEQ.size :], end


def _next_frame(data: bytes, view: memoryview, start: int, last_seq: int) -> int | None:
    """Offset of the first intact frame at or after ``start`` (None: none). Offsets are screened in
    blocks with numpy (length in range, sequence number plausible), and only those are CRC-checked."""
    size = len(data)
    buf = np.frombuffer(data, np.uint8)
    lo_seq, hi_seq = last_seq + 1, max(last_seq, 0) + _MAX_SEQ_STEP
    last_start = size - _FRAME.size - _SEQ.size  # a frame needs at least this many bytes after it
    for lo in range(start, last_start + 1, _SCAN_CHUNK):
        hi = min(last_start + 1, lo + _SCAN_CHUNK)
        n = hi - lo
        seg = buf[lo : hi + 16].astype(np.uint64)
        length = seg[0:n] | (seg[1 : n + 1] << 8) | (seg[2 : n + 2] << 16) | (seg[3 : n + 3] << 24)
        seq = np.zeros(n, np.uint64)
        for b in range(8):
            seq |= seg[8 + b : 8 + b + n] << np.uint64(8 * b)
        offsets = np.arange(lo, hi, dtype=np.int64)
        ok = (length >= _SEQ.size) & (length <= MAX_RECORD_BYTES) & (offsets + _FRAME.size + length.astype(np.int64) <= size)
        ok &= (seq >= np.uint64(max(lo_seq, 0))) & (seq <= np.uint64(hi_seq))
        for p in offsets[ok].tolist():
            if not isinstance(_frame_at(data, view, p, last_seq), str):
                return p
    return None


def read_records(path, *, faults=None) -> tuple[list[tuple[int, int, memoryview]], ReplayReport]:
    """All intact records of a log file, in order, as ``(seq, op, body)``, and a :class:`ReplayReport`.

    A frame that is incomplete, has an impossible length, a checksum mismatch or a sequence number that
    does not increase is skipped up to the next intact frame; the skipped range goes to
    ``report.damaged``. If no intact frame follows, the rest of the file is the torn tail
    (``report.stop_reason`` says why, ``report.good_bytes`` where it starts).
    """
    path = Path(path)
    if faults is not None:
        faults.check("read", str(path))
    data = path.read_bytes()
    report = ReplayReport(str(path), file_bytes=len(data))
    out = []
    pos, last_seq = 0, -1
    view = memoryview(data)
    while pos < len(data):
        frame = _frame_at(data, view, pos, last_seq)
        if isinstance(frame, str):
            nxt = _next_frame(data, view, pos + 1, last_seq)
            if nxt is None:
                report.stop_reason = frame
                break
            report.damaged.append({"start": pos, "end": nxt, "reason": frame})
            pos = nxt
            continue
        seq, op, body, end = frame
        out.append((seq, op, body))
        last_seq = seq
        pos = end
        report.records += 1
        report.good_bytes = pos
    if report.stop_reason is None:
        report.good_bytes = len(data)
    return out, report


class WriteAheadLog:
    """An append-only log file; :meth:`append` returns once the record is on stable storage.

    Parameters
    ----------
    path : path of the log file (created if missing)
    truncate_to : int, optional
        Cut the file to this many bytes first (used after recovery to drop a torn tail).
    fsync : bool, default True
        ``False`` only for benchmarks that want to measure the cost of durability.
    """

    def __init__(self, path, *, truncate_to: int | None = None, fsync: bool = True, faults=None):
        self.path = Path(path)
        self.fsync = fsync
        self.faults = faults
        if faults is not None and not self.path.exists():
            faults.check("write", str(self.path))
        self._fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        if truncate_to is not None:
            os.ftruncate(self._fd, truncate_to)
            os.fsync(self._fd)
        self.size = os.lseek(self._fd, 0, os.SEEK_END)
        self.records_written = 0

    def append(self, seq: int, op: int, body: bytes | memoryview) -> None:
        """Append one record and fsync. On failure (disk full, I/O error) the file is cut back to its
        previous length, so the log never keeps a partial record, and the error is re-raised."""
        payload = _SEQ.pack(seq, op) + bytes(body)
        if len(payload) > MAX_RECORD_BYTES:
            raise ValueError(f"record of {len(payload)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")
        if self.faults is not None:
            self.faults.check("write", str(self.path))
        length = struct.pack("<I", len(payload))
        frame = length + struct.pack("<I", _crc(length, payload)) + payload
        start = self.size
        try:
            written = 0
            while written < len(frame):
                written += os.pwrite(self._fd, frame[written:], start + written)
            if self.fsync:
                os.fdatasync(self._fd)
        except BaseException:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            raise
        self.size = start + len(frame)
        self.records_written += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
