"""Write-ahead log: length + CRC framed records, fsync per appended batch, replay up to a torn tail.

Record layout (little-endian)::

    uint32  payload length L
    uint32  CRC-32 of (the 4 length bytes + payload)
    L bytes payload: uint64 sequence number, uint8 operation, then the operation's body

A record is acknowledged only after :meth:`WriteAheadLog.append` returned, i.e. after its bytes were
written and ``fsync`` ed. A crash can leave at most one partially written record at the end of the
log (a *torn tail*); :func:`read_records` stops at the first record whose frame is incomplete or whose
checksum does not match and reports where and why it stopped, so recovery keeps every acknowledged
record and nothing after the damage.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

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
    good_bytes: int = 0
    file_bytes: int = 0
    stop_reason: str | None = None  # None: the log ended cleanly

    @property
    def torn_bytes(self) -> int:
        return self.file_bytes - self.good_bytes

    def as_dict(self) -> dict:
        return {
            "path": Path(self.path).name,
            "records": self.records,
            "good_bytes": self.good_bytes,
            "discarded_bytes": self.torn_bytes,
            "stop_reason": self.stop_reason,
        }


def read_records(path) -> tuple[list[tuple[int, int, memoryview]], ReplayReport]:
    """All intact records of a log file, in order, as ``(seq, op, body)``, and a :class:`ReplayReport`.

    Reading stops at the first incomplete frame, impossible length or checksum mismatch; the report
    says at which byte and why. Sequence numbers must increase; a record that breaks the order also
    stops the reading (it cannot have been written by :class:`WriteAheadLog`).
    """
    path = Path(path)
    data = path.read_bytes()
    report = ReplayReport(str(path), file_bytes=len(data))
    out = []
    pos, last_seq = 0, -1
    view = memoryview(data)
    while pos < len(data):
        if len(data) - pos < _FRAME.size:
            report.stop_reason = f"incomplete record header at byte {pos} ({len(data) - pos} bytes)"
            break
        length, crc = _FRAME.unpack_from(data, pos)
        if length < _SEQ.size or length > MAX_RECORD_BYTES:
            report.stop_reason = f"impossible record length {length} at byte {pos}"
            break
        end = pos + _FRAME.size + length
        if end > len(data):
            report.stop_reason = f"record at byte {pos} is cut short ({len(data) - pos - _FRAME.size} of {length} bytes)"
            break
        payload = view[pos + _FRAME.size : end]
        if _crc(data[pos : pos + 4], payload) != crc:
            report.stop_reason = f"checksum mismatch in record at byte {pos}"
            break
        seq, op = _SEQ.unpack_from(payload, 0)
        if seq <= last_seq:
            report.stop_reason = f"sequence number {seq} at byte {pos} does not follow {last_seq}"
            break
        out.append((seq, op, payload[_SEQ.size :]))
        last_seq = seq
        pos = end
        report.records += 1
        report.good_bytes = pos
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

    def __init__(self, path, *, truncate_to: int | None = None, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
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
