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

Loading trusts nothing in the file: the header's nesting depth is bounded, every array reference and
object entry is checked, the state of a scikit-learn style estimator may only hold its constructor
parameters and public fitted attributes (``name_``, never a method or property of the class), a
fitted estimator's parameters are validated again, and a fitted vector hasher must encode a probe
batch to codes of its declared width. Whatever a file holds, :func:`load` either returns a working
object or raises :class:`~hashlearn.errors.FileFormatError`. :func:`dumps` / :func:`loads` do the
same with bytes in memory (no temporary file).
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError, HashlearnError

__all__ = ["save", "load", "dumps", "loads", "persistable", "read_header", "atomic_write", "atomic_write_many", "MAGIC", "FORMAT_VERSION",
           "MAX_DEPTH"]

MAGIC = b"HASHLRN\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIIQ")
_ALIGN = 64
_MAX_HEADER = 64 * 1024 * 1024
_MMAP_MIN_BYTES = 1 << 20
_CRC_CHUNK = 1 << 24
#: Deepest nesting of objects, dicts and lists a file's object tree may have (ours need fewer than 20).
MAX_DEPTH = 64

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
    """Rebuilds the object tree of a header, checking every node (see the module docstring)."""

    def __init__(self, arrays, where: str):
        self.arrays = arrays
        self.where = where

    def fail(self, message: str):
        raise FileFormatError(f"{self.where}: {message}")

    def decode_object(self, node, depth: int = 0):
        if not isinstance(node, dict) or set(node) != {"class", "state"} or not isinstance(node["class"], str):
            self.fail("malformed object entry in header")
        cls = _REGISTRY.get(node["class"])
        if cls is None:
            self.fail(f"unknown object class {node['class']!r} (file from a newer hashlearn?)")
        state = self.decode_value(node["state"], depth + 1)
        _check_estimator_state(cls, state, self.fail)
        try:
            obj = cls._from_state(state)
        except (FileFormatError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the state makes _from_state do, it is the file's fault
            self.fail(f"cannot rebuild a {cls.__name__} from the file's state ({type(exc).__name__}: {exc})")
        _check_loaded(obj, self.fail)
        return obj

    def decode_value(self, value, depth: int):
        if depth > MAX_DEPTH:
            self.fail(f"object tree nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            if len(value) != 1:
                self.fail("malformed value in header")
            (tag, inner), = value.items()
            if tag == "__array__":
                if type(inner) is not int or not 0 <= inner < len(self.arrays):
                    self.fail(f"header refers to missing array {inner!r}")
                return self.arrays[inner]
            if tag == "__object__":
                return self.decode_object(inner, depth + 1)
            if tag == "__dict__" and isinstance(inner, dict):
                return {k: self.decode_value(v, depth + 1) for k, v in inner.items()}
            self.fail("malformed value in header")
        if isinstance(value, list):
            return [self.decode_value(v, depth + 1) for v in value]
        return value


def _check_estimator_state(cls, state, fail) -> None:
    """The state of a scikit-learn style estimator (PersistableEstimatorMixin: ``{"params", "fitted"}``)
    may only name constructor parameters and public fitted attributes that the class does not define
    itself (a file must not replace a method or a property such as ``code_bits``)."""
    if not hasattr(cls, "_get_param_names") or not (isinstance(state, dict) and "params" in state):
        return
    if set(state) != {"params", "fitted"} or not isinstance(state["params"], dict) or not isinstance(state["fitted"], dict):
        fail(f"the state of a {cls.__name__} must be {{params, fitted}} mappings")
    allowed = set(cls._get_param_names())
    unknown = sorted(set(state["params"]) - allowed)
    if unknown:
        fail(f"{cls.__name__} has no parameter {unknown[0]!r} (its parameters: {', '.join(sorted(allowed))})")
    for key in state["fitted"]:
        if not (key.endswith("_") and not key.startswith("_") and key.isidentifier()):
            fail(f"fitted.{key} is not a fitted attribute (those are public names ending in '_')")
        if hasattr(cls, key):
            fail(f"fitted.{key} would replace {cls.__name__}.{key}, which the class defines itself")


def _check_loaded(obj, fail) -> None:
    """A fitted estimator's parameters are valid, and a fitted vector hasher really encodes vectors to
    codes of its declared width (what a search would do first)."""
    fitted = hasattr(obj, "n_features_in_")
    if not fitted:
        return
    try:
        for check in ("_check_params", "_validate_params"):
            if check == "_validate_params" and not getattr(obj, "_parameter_constraints", None):
                continue
            if callable(getattr(obj, check, None)):
                getattr(obj, check)()
    except (MemoryError, FileFormatError):
        raise
    except Exception as exc:  # noqa: BLE001
        fail(f"the {type(obj).__name__} in the file has invalid parameters ({exc})")
    if getattr(type(obj), "input_kind", None) != "vector" or not callable(getattr(obj, "transform", None)):
        return
    d, bits = getattr(obj, "n_features_in_", None), getattr(obj, "code_bits", None)
    for name, value in (("n_features_in_", d), ("code_bits", bits)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            fail(f"the {type(obj).__name__} in the file has {name} = {value!r}, not a positive integer")
    probe = np.random.default_rng(0).standard_normal((3, int(d))).astype(np.float32)
    words = (int(bits) + 63) // 64
    try:
        codes = obj.transform(probe)
        again = obj.transform(probe)
    except (MemoryError, FileFormatError):
        raise
    except Exception as exc:  # noqa: BLE001
        fail(f"the {type(obj).__name__} in the file cannot encode {d}-dimensional vectors ({type(exc).__name__}: {exc})")
    if not (isinstance(codes, np.ndarray) and codes.dtype == np.uint64 and codes.shape == (3, words)):
        shape = getattr(codes, "shape", None)
        fail(f"the {type(obj).__name__} in the file encodes to {getattr(codes, 'dtype', type(codes).__name__)} of shape "
             f"{shape}, not the (n, {words}) uint64 codes of its {bits} bits (arrays that do not match n_bits?)")
    pad = 64 * words - int(bits)
    if pad and np.any(codes[:, -1] >> np.uint64(64 - pad)):
        fail(f"the {type(obj).__name__} in the file sets bits beyond its {bits} bits")
    if not np.array_equal(codes, again):
        fail(f"the {type(obj).__name__} in the file encodes the same vector to different codes")


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _encode(obj) -> tuple[bytes, list, list, int]:
    """(header bytes, arrays, their descriptors, file size) of ``obj``."""
    from .. import __version__

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
    return hbytes, enc.arrays, descs, header["file_size"]


def _writer(obj):
    hbytes, arrays, descs, file_size = _encode(obj)

    def write(fh) -> None:
        start = fh.tell()
        fh.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, _crc32(hbytes), len(hbytes)))
        fh.write(hbytes)
        for a, d in zip(arrays, descs):
            fh.write(b"\0" * (d["offset"] - (fh.tell() - start)))
            if a.nbytes:
                fh.write(memoryview(a).cast("B"))
        fh.write(b"\0" * (file_size - (fh.tell() - start)))

    return write


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
    return atomic_write(Path(path), _writer(obj))


def dumps(obj) -> bytes:
    """The bytes :func:`save` would write for ``obj`` (the same format), without a file."""
    buf = io.BytesIO()
    _writer(obj)(buf)
    return buf.getvalue()


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
    return atomic_write_many([(path, write)])[0]


def atomic_write_many(items) -> list[Path]:
    """Write several files all or none: ``[(path, write)]``.

    Each ``write(fh)`` fills a temporary file beside its path (mode 0o666 minus the umask, as a plain
    ``open`` gives; ``mkstemp`` alone would give 0o600); once every one succeeded they are fsync'ed and
    renamed over their paths. If any ``write`` fails, no path is touched and the temporary files are
    removed. Returns the paths written.
    """
    staged = []
    try:
        for path, write in items:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
            staged.append((tmp, path))
            os.fchmod(fd, _default_file_mode())
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    for folder in {path.parent for _, path in staged}:
        _fsync_dir(folder)
    return [path for _, path in staged]


def read_header(path) -> dict:
    """Read and verify the header of a hashlearn file; raise :class:`FileFormatError` if it is not one."""
    path = Path(path)
    with _open(path) as fh:
        return _read_header(fh, _size(path, fh), str(path))[0]


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: is a directory, not a hashlearn file") from None


def _size(path: Path, fh) -> int:
    return os.fstat(fh.fileno()).st_size


def _read_header(fh, size: int, where: str) -> tuple[dict, int]:
    """The verified header (``fh`` at offset 0) and the offset where it ends."""
    prefix = fh.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        raise FileFormatError(f"{where}: not a hashlearn file (only {len(prefix)} bytes)")
    magic, version, hcrc, hlen = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise FileFormatError(f"{where}: not a hashlearn file (bad magic bytes {magic[:8]!r})")
    if version != FORMAT_VERSION:
        raise FileFormatError(
            f"{where}: format version {version} is not supported (this hashlearn reads version {FORMAT_VERSION})"
        )
    if hlen > _MAX_HEADER or _PREFIX.size + hlen > size:
        raise FileFormatError(f"{where}: truncated or corrupt header (declares {hlen} bytes)")
    hbytes = fh.read(hlen)
    if _crc32(hbytes) != hcrc:
        raise FileFormatError(f"{where}: header checksum mismatch (file is corrupt)")
    try:
        header = json.loads(hbytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{where}: header is not valid JSON ({exc})") from None
    except RecursionError:
        raise FileFormatError(f"{where}: header JSON is nested too deeply") from None
    if not isinstance(header, dict) or header.get("format") != "hashlearn" or "object" not in header:
        raise FileFormatError(f"{where}: header does not describe a hashlearn object")
    if header.get("format_version") != version:
        raise FileFormatError(f"{where}: header says format version {header.get('format_version')} but the prefix says {version}")
    if header.get("file_size") != size:
        raise FileFormatError(
            f"{where}: file is {size} bytes but its header says {header.get('file_size')} (truncated or appended to)"
        )
    if not isinstance(header.get("arrays", []), list):
        raise FileFormatError(f"{where}: malformed array list in header")
    return header, _PREFIX.size + hlen


def _check_padding(fh, where: str, start: int, end: int) -> None:
    """Alignment gaps must be zero: with the checksums, every byte of the file is then verified."""
    if end > start:
        fh.seek(start)
        if fh.read(end - start).strip(b"\0"):
            raise FileFormatError(f"{where}: non-zero bytes in padding at offset {start} (file is corrupt)")


def _read_arrays(fh, where: str, header: dict, mmap_path, verify: bool, header_end: int) -> list[np.ndarray]:
    arrays = []
    cursor = header_end
    for i, d in enumerate(header.get("arrays", [])):
        try:
            dtype = np.dtype(d["dtype"])
            shape = tuple(int(s) for s in d["shape"])
            offset, nbytes = int(d["offset"]), int(d["nbytes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{where}: malformed array descriptor #{i} ({exc})") from None
        if dtype.hasobject or dtype.fields is not None or any(s < 0 for s in shape) \
                or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes:
            raise FileFormatError(f"{where}: array #{i} descriptor is inconsistent")
        if offset + nbytes > header["file_size"] or offset < cursor:
            raise FileFormatError(f"{where}: array #{i} lies outside its place in the file")
        if verify:
            _check_padding(fh, where, cursor, offset)
        cursor = offset + nbytes
        if mmap_path is not None and nbytes >= _MMAP_MIN_BYTES:
            arr = np.memmap(mmap_path, dtype=dtype, mode="r", offset=offset, shape=shape)
        else:
            fh.seek(offset)
            buf = fh.read(nbytes)
            if len(buf) != nbytes:
                raise FileFormatError(f"{where}: array #{i} is truncated")
            arr = np.frombuffer(buf, dtype=dtype).reshape(shape).copy()
        if verify and nbytes and _crc32(arr) != d.get("crc32"):
            raise FileFormatError(f"{where}: checksum mismatch in array #{i} (file is corrupt)")
        arrays.append(arr)
    if verify:
        _check_padding(fh, where, cursor, header["file_size"])
    return arrays


def _load(fh, size: int, where: str, mmap_path, verify: bool):
    header, header_end = _read_header(fh, size, where)
    arrays = _read_arrays(fh, where, header, mmap_path, verify, header_end)
    try:
        return _Decoder(arrays, where).decode_object(header["object"])
    except RecursionError:
        raise FileFormatError(f"{where}: object tree nested too deeply") from None


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
        Missing, foreign, truncated or corrupt file, an unknown class, or an object the file's state
        cannot make into a working one (see the module docstring).
    """
    path = Path(path)
    with _open(path) as fh:
        return _load(fh, _size(path, fh), str(path), path if mmap else None, verify)


def loads(data: bytes, *, name: str = "<bytes>", verify: bool = True) -> Any:
    """Load an object from the bytes of a hashlearn file (as :func:`dumps` returns them); checked as
    :func:`load` checks files. ``name`` labels the data in error messages."""
    data = bytes(data)
    return _load(io.BytesIO(data), len(data), name, None, verify)
