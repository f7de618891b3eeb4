"""Self-describing, checksummed, atomically written files for hashers and indexes.

Format (version 1)
------------------
::

    offset 0   8 bytes   magic b"HASHLRN\\0"
    offset 8   uint32    format version (little-endian)
    offset 12  uint32    CRC-32 of the header bytes
    offset 16  uint64    header length H in bytes
    offset 24  H bytes   header: UTF-8 JSON
    ...        padding to a 64-byte boundary, then each array's raw bytes (C order), 64-byte aligned

The header holds the library version, the object tree (class names, JSON parameters, references to
arrays) and, for every array, its dtype, shape, offset, length and CRC-32, plus the total file size so
a truncated file is detected before anything is read. Arrays can be memory-mapped (``mmap=True``):
large code arrays are then paged in on demand. No pickle is ever involved: loading only reconstructs
classes registered with :func:`persistable`, from JSON and raw numeric arrays.

Writes go to a temporary file in the destination folder, are fsync'ed, then atomically renamed over
the destination, so a failed or interrupted save never damages an existing file.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError, HashlearnError

__all__ = ["save", "load", "persistable", "read_header", "atomic_write", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"HASHLRN\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIIQ")
_ALIGN = 64
_MAX_HEADER = 64 * 1024 * 1024
_MMAP_MIN_BYTES = 1 << 20
_CRC_CHUNK = 1 << 24

_REGISTRY: dict[str, type] = {}


def persistable(cls):
    """Class decorator: allow ``cls`` to be saved and loaded.

    The class provides ``_get_state(self) -> dict`` (JSON values, numpy arrays and other persistable
    objects, nested in dicts/lists) and ``_from_state(cls, state) -> instance`` (a classmethod).
    """
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise TypeError(f"two persistable classes are named {name!r}")
    _REGISTRY[name] = cls
    return cls


def _crc32(buf) -> int:
    mv = memoryview(buf).cast("B")
    crc = 0
    for start in range(0, len(mv), _CRC_CHUNK):
        crc = zlib.crc32(mv[start : start + _CRC_CHUNK], crc)
    return crc & 0xFFFFFFFF


class _Encoder:
    """Turns an object tree into JSON with array references, collecting the arrays."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []

    def encode_object(self, obj) -> dict:
        cls = type(obj)
        if _REGISTRY.get(cls.__name__) is not cls:
            raise HashlearnError(f"cannot save objects of type {cls.__name__}: not a hashlearn persistable class")
        return {"class": cls.__name__, "state": self.encode_value(obj._get_state())}

    def encode_value(self, value):
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject or value.dtype.fields is not None:
                raise HashlearnError(f"cannot save an array of dtype {value.dtype}: only plain numeric arrays")
            self.arrays.append(np.ascontiguousarray(value))
            return {"__array__": len(self.arrays) - 1}
        if type(value).__name__ in _REGISTRY and _REGISTRY[type(value).__name__] is type(value):
            return {"__object__": self.encode_object(value)}
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise HashlearnError(f"state dict keys must be strings, got {key!r}")
            return {"__dict__": {k: self.encode_value(v) for k, v in value.items()}}
        if isinstance(value, (list, tuple)):
            return [self.encode_value(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise HashlearnError(f"cannot save a value of type {type(value).__name__} in object state")


class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays

    def decode_object(self, node, where: str):
        if not isinstance(node, dict) or "class" not in node or "state" not in node:
            raise FileFormatError(f"{where}: malformed object entry in header")
        cls = _REGISTRY.get(node["class"])
        if cls is None:
            raise FileFormatError(f"{where}: unknown object class {node['class']!r} (file from a newer hashlearn?)")
        return cls._from_state(self.decode_value(node["state"], where))

    def decode_value(self, value, where):
        if isinstance(value, dict):
            if "__array__" in value:
                idx = value["__array__"]
                if not isinstance(idx, int) or not 0 <= idx < len(self.arrays):
                    raise FileFormatError(f"{where}: header refers to missing array {idx!r}")
                return self.arrays[idx]
            if "__object__" in value:
                return self.decode_object(value["__object__"], where)
            if "__dict__" in value:
                return {k: self.decode_value(v, where) for k, v in value["__dict__"].items()}
            raise FileFormatError(f"{where}: malformed value in header")
        if isinstance(value, list):
            return [self.decode_value(v, where) for v in value]
        return value


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def save(obj, path) -> Path:
    """Save a hasher or index to ``path`` atomically.

    Parameters
    ----------
    obj : a hashlearn hasher or index (any class registered with :func:`persistable`)
    path : str or Path

    Returns
    -------
    Path of the written file. On any failure the previous content of ``path`` (if any) is intact.
    """
    from .. import __version__

    path = Path(path)
    enc = _Encoder()
    tree = enc.encode_object(obj)
    # Header size depends on offsets, offsets depend on header size: iterate until stable.
    descs = [
        {"dtype": a.dtype.str, "shape": list(a.shape), "nbytes": int(a.nbytes), "crc32": _crc32(a) if a.nbytes else 0}
        for a in enc.arrays
    ]
    data_start = 0
    for _ in range(8):
        offset = data_start
        for d in descs:
            d["offset"] = offset
            offset = _aligned(offset + d["nbytes"])
        header = {
            "format": "hashlearn",
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "object": tree,
            "arrays": descs,
            "file_size": offset if descs else data_start,
        }
        hbytes = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
        new_start = _aligned(_PREFIX.size + len(hbytes))
        if new_start == data_start:
            break
        data_start = new_start

    def write(fh) -> None:
        fh.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, _crc32(hbytes), len(hbytes)))
        fh.write(hbytes)
        for a, d in zip(enc.arrays, descs):
            fh.write(b"\0" * (d["offset"] - fh.tell()))
            if a.nbytes:
                fh.write(memoryview(a).cast("B"))
        fh.write(b"\0" * (header["file_size"] - fh.tell()))

    return atomic_write(path, write)


def _current_umask() -> int:
    # /proc gives the umask without changing it (os.umask would, briefly, for every thread).
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _default_file_mode() -> int:
    """Mode of a newly created ordinary file (0o666 minus the umask); mkstemp would give 0o600."""
    return 0o666 & ~_current_umask()


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def atomic_write(path, write) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file beside ``path``, which is fsync'ed
    and renamed over ``path``. On failure ``path`` is untouched and the temporary file removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        os.fchmod(fd, _default_file_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def read_header(path) -> dict:
    """Read and verify the header of a hashlearn file; raise :class:`FileFormatError` if it is not one."""
    return _read_header(Path(path))[0]


def _read_header(path: Path) -> tuple[dict, int]:
    """The verified header and the offset where it ends."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            prefix = fh.read(_PREFIX.size)
            if len(prefix) < _PREFIX.size:
                raise FileFormatError(f"{path}: not a hashlearn file (only {len(prefix)} bytes)")
            magic, version, hcrc, hlen = _PREFIX.unpack(prefix)
            if magic != MAGIC:
                raise FileFormatError(f"{path}: not a hashlearn file (bad magic bytes {magic[:8]!r})")
            if version != FORMAT_VERSION:
                raise FileFormatError(
                    f"{path}: format version {version} is not supported (this hashlearn reads version {FORMAT_VERSION})"
                )
            if hlen > _MAX_HEADER or _PREFIX.size + hlen > size:
                raise FileFormatError(f"{path}: truncated or corrupt header (declares {hlen} bytes)")
            hbytes = fh.read(hlen)
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: is a directory, not a hashlearn file") from None
    if _crc32(hbytes) != hcrc:
        raise FileFormatError(f"{path}: header checksum mismatch (file is corrupt)")
    try:
        header = json.loads(hbytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{path}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != "hashlearn" or "object" not in header:
        raise FileFormatError(f"{path}: header does not describe a hashlearn object")
    if header.get("format_version") != version:
        raise FileFormatError(f"{path}: header says format version {header.get('format_version')} but the prefix says {version}")
    if header.get("file_size") != size:
        raise FileFormatError(
            f"{path}: file is {size} bytes but its header says {header.get('file_size')} (truncated or appended to)"
        )
    return header, _PREFIX.size + hlen


def _check_padding(fh, path: Path, start: int, end: int) -> None:
    """Alignment gaps must be zero: with the checksums, every byte of the file is then verified."""
    if end > start:
        fh.seek(start)
        if fh.read(end - start).strip(b"\0"):
            raise FileFormatError(f"{path}: non-zero bytes in padding at offset {start} (file is corrupt)")


def _read_arrays(path: Path, header: dict, mmap: bool, verify: bool, header_end: int) -> list[np.ndarray]:
    arrays = []
    cursor = header_end
    with open(path, "rb") as fh:
        for i, d in enumerate(header.get("arrays", [])):
            try:
                dtype = np.dtype(d["dtype"])
                shape = tuple(int(s) for s in d["shape"])
                offset, nbytes = int(d["offset"]), int(d["nbytes"])
            except (KeyError, TypeError, ValueError) as exc:
                raise FileFormatError(f"{path}: malformed array descriptor #{i} ({exc})") from None
            if dtype.hasobject or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes:
                raise FileFormatError(f"{path}: array #{i} descriptor is inconsistent")
            if offset + nbytes > header["file_size"] or offset < cursor:
                raise FileFormatError(f"{path}: array #{i} lies outside its place in the file")
            if verify:
                _check_padding(fh, path, cursor, offset)
            cursor = offset + nbytes
            if mmap and nbytes >= _MMAP_MIN_BYTES:
                arr = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            else:
                fh.seek(offset)
                buf = fh.read(nbytes)
                if len(buf) != nbytes:
                    raise FileFormatError(f"{path}: array #{i} is truncated")
                arr = np.frombuffer(buf, dtype=dtype).reshape(shape).copy()
            if verify and nbytes and _crc32(arr) != d.get("crc32"):
                raise FileFormatError(f"{path}: checksum mismatch in array #{i} (file is corrupt)")
            arrays.append(arr)
        if verify:
            _check_padding(fh, path, cursor, header["file_size"])
    return arrays


def load(path, *, mmap: bool = False, verify: bool = True) -> Any:
    """Load a hasher or index saved with :func:`save`.

    Parameters
    ----------
    path : str or Path
    mmap : bool, default False
        Memory-map large arrays (read-only) instead of reading them into memory.
    verify : bool, default True
        Check every array's CRC-32 (one pass over the data).

    Raises
    ------
    FileFormatError
        Missing, foreign, truncated or corrupt file, or an unknown class.
    """
    path = Path(path)
    header, header_end = _read_header(path)
    arrays = _read_arrays(path, header, mmap, verify, header_end)
    try:
        return _Decoder(arrays).decode_object(header["object"], str(path))
    except FileFormatError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: object state is inconsistent ({exc})") from None
