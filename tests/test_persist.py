"""hashlearn.save / hashlearn.load: round trips at every stage, memory mapping, corruption, foreign
files, no pickle, atomic writes and versioning."""

from __future__ import annotations

import json
import os
import pickle
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import hashlearn
from hashlearn import BinaryIndex, HashIndex, MultiIndexHashing
from hashlearn.codes import pack
from hashlearn.errors import FileFormatError, HashlearnError, NotFittedError
from hashlearn.io import persist

PREFIX = struct.Struct("<8sIIQ")  # magic, version, header CRC-32, header length (the documented layout)


# -- helpers -------------------------------------------------------------------------------------------
def codes_of(rng, n, n_bits, n_distinct=None):
    if n_distinct is None:
        bits = rng.integers(0, 2, size=(n, n_bits), dtype=np.uint8)
    else:
        protos = rng.integers(0, 2, size=(n_distinct, n_bits), dtype=np.uint8)
        bits = protos[rng.integers(0, n_distinct, size=n)]
        bits ^= (rng.random(bits.shape) < 0.05).astype(np.uint8)
    return pack(bits.reshape(n, n_bits))


def round_trip(obj, path, **kw):
    out = hashlearn.save(obj, path)
    assert Path(out) == Path(path)
    return hashlearn.load(path, **kw)


def assert_same_code_index(a, b, q):
    assert type(a) is type(b)
    assert (a.n_bits, a.ntotal, a.n_threads) == (b.n_bits, b.ntotal, b.n_threads)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.codes.dtype == b.codes.dtype == np.uint64 and a.ids.dtype == b.ids.dtype == np.int64
    for k in (1, 7, a.ntotal + 3):
        for x, y in zip(a.search(q, k), b.search(q, k)):
            np.testing.assert_array_equal(x, y)
    for r in (0, a.n_bits // 4):
        for x, y in zip(a.range_search(q, r), b.range_search(q, r)):
            np.testing.assert_array_equal(x, y)


def header_of(path):
    raw = Path(path).read_bytes()
    magic, version, crc, hlen = PREFIX.unpack(raw[: PREFIX.size])
    header = json.loads(raw[PREFIX.size : PREFIX.size + hlen])
    return raw, hlen, header


def data_start(hlen):
    return (PREFIX.size + hlen + 63) // 64 * 64


def flip(path, offset, out=None):
    raw = bytearray(Path(path).read_bytes())
    raw[offset] ^= 0x5A
    out = Path(out or path)
    out.write_bytes(bytes(raw))
    return out


def rewrite_header(path, mutate, out, raw_text=None):
    """Re-serialise a valid file with a mutated header (CRC, offsets and file size kept consistent).
    ``raw_text``: (placeholder, text) replaced in the serialised header (for JSON json.dumps cannot make)."""
    raw, hlen, header = header_of(path)
    blobs = [raw[d["offset"] : d["offset"] + d["nbytes"]] for d in header["arrays"]]
    mutate(header)

    def dumps(h):
        text = json.dumps(h, separators=(",", ":"))
        return (text.replace(json.dumps(raw_text[0]), raw_text[1]) if raw_text else text).encode()

    for _ in range(8):
        hbytes = dumps(header)
        start = data_start(len(hbytes))
        offset, body = start, b""
        for d, blob in zip(header["arrays"], blobs):
            d["offset"] = offset  # absolute file offsets, 64-byte aligned
            body += blob + b"\0" * ((offset + len(blob) + 63) // 64 * 64 - offset - len(blob))
            offset = (offset + len(blob) + 63) // 64 * 64
        if header.get("file_size") == offset:
            break
        header["file_size"] = offset
    hbytes = dumps(header)
    prefix = PREFIX.pack(b"HASHLRN\0", 1, zlib.crc32(hbytes), len(hbytes))
    Path(out).write_bytes(prefix + hbytes + b"\0" * (start - PREFIX.size - len(hbytes)) + body)
    return Path(out)


@pytest.fixture
def filled_binary_index():
    rng = np.random.default_rng(0)
    index = BinaryIndex(100, n_threads=1)
    index.add(codes_of(rng, 300, 100, n_distinct=10), rng.choice(10**6, 300, replace=False))
    return index


def _vectors(seed, n, d=12):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32)


# -- round trips: binary indexes -----------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [7, 64, 100, 256])
def test_binary_index_round_trip_every_stage(tmp_path, n_bits):
    rng = np.random.default_rng(n_bits)
    q = codes_of(rng, 6, n_bits)
    index = BinaryIndex(n_bits, n_threads=2)
    assert_same_code_index(index, round_trip(index, tmp_path / "empty.hl"), q)  # empty
    c1 = codes_of(rng, 200, n_bits, n_distinct=8)
    index.add(c1, rng.permutation(200) + 50)  # non-monotone ids
    loaded = round_trip(index, tmp_path / "filled.hl")
    assert_same_code_index(index, loaded, q)
    # the loaded index keeps living like the original: default ids continue, tie order by id
    for obj in (index, loaded):
        np.testing.assert_array_equal(obj.add(codes_of(np.random.default_rng(1), 30, n_bits)), np.arange(250, 280))
        assert obj.remove(np.arange(60, 90)) == 30
        obj.add(codes_of(np.random.default_rng(2), 10, n_bits, n_distinct=2), np.arange(10))
    assert_same_code_index(index, loaded, q)
    assert_same_code_index(index, round_trip(index, tmp_path / "after_remove.hl"), q)


def test_binary_index_round_trip_keeps_id_order_flag(tmp_path):
    """Saved with increasing ids, loaded, then given smaller ids: ties must still follow the ids."""
    rng = np.random.default_rng(3)
    codes = codes_of(rng, 40, 16, n_distinct=2)
    index = BinaryIndex(16)
    index.add(codes, np.arange(100, 140))
    loaded = round_trip(index, tmp_path / "a.hl")
    for obj in (index, loaded):
        obj.add(codes, np.arange(40))
    assert_same_code_index(index, loaded, codes_of(rng, 5, 16))
    D, I = loaded.search(codes[:1], 1)
    assert I[0, 0] < 40


@pytest.mark.parametrize("n_sub, budget", [(None, None), (4, float("inf")), (None, 0), (5, 12.5)])
def test_mih_round_trip_every_stage(tmp_path, n_sub, budget):
    rng = np.random.default_rng(4)
    n_bits = 60
    q = codes_of(rng, 8, n_bits)
    index = MultiIndexHashing(n_bits, n_sub, probe_budget=budget)
    loaded = round_trip(index, tmp_path / "empty.hl")
    assert (loaded.n_substrings, loaded.probe_budget) == (n_sub, budget)
    assert_same_code_index(index, loaded, q)
    index.add(codes_of(rng, 300, n_bits, n_distinct=12), rng.permutation(300))
    index.search(q, 3)  # tables built before saving: not part of the file, rebuilt after loading
    loaded = round_trip(index, tmp_path / "filled.hl")
    assert (loaded.n_substrings, loaded.probe_budget) == (n_sub, budget)
    assert_same_code_index(index, loaded, q)
    for obj in (index, loaded):
        obj.remove(np.arange(0, 300, 3))
        obj.add(codes_of(np.random.default_rng(5), 50, n_bits, n_distinct=3))
    assert_same_code_index(index, loaded, q)
    # and equal to the exhaustive index over the same content
    flat = BinaryIndex(n_bits)
    flat.add(loaded.codes, loaded.ids)
    for x, y in zip(loaded.search(q, 20), flat.search(q, 20)):
        np.testing.assert_array_equal(x, y)


# -- round trips: HashIndex ----------------------------------------------------------------------------
def assert_same_hashindex(a, b, Xq):
    assert type(b) is HashIndex
    assert (a.rerank, a.metric, a.index, a.n_threads, a.ntotal) == (b.rerank, b.metric, b.index, b.n_threads, b.ntotal)
    assert a._fitted() == b._fitted()
    if not a._fitted():
        with pytest.raises(NotFittedError):
            b.search(Xq, 3)
        return
    np.testing.assert_array_equal(a.hasher.transform(Xq), b.hasher.transform(Xq))
    np.testing.assert_array_equal(a.vectors, b.vectors)
    if a.ntotal:
        np.testing.assert_array_equal(a.code_index.ids, b.code_index.ids)
        for k in (1, 10):
            Da, Ia = a.search(Xq, k)
            Db, Ib = b.search(Xq, k)
            np.testing.assert_array_equal(Da, Db)
            np.testing.assert_array_equal(Ia, Ib)


@pytest.mark.parametrize("rerank", [0, 30])
@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_hashindex_round_trip_every_stage(tmp_path, rerank, kind):
    X, X2, Xq = _vectors(0, 400), _vectors(1, 50), _vectors(2, 15)
    hasher = hashlearn.make_hasher("simhash", n_bits=64, random_state=0)
    index = HashIndex(hasher, rerank=rerank, metric="cosine", index=kind, n_threads=1)
    loaded = round_trip(index, tmp_path / "unfitted.hl")  # empty, hasher not fitted
    assert_same_hashindex(index, loaded, Xq)
    for obj in (index, loaded):  # both fit their hasher on the first add, identically (same seed)
        obj.add(X[:100])
    assert_same_hashindex(index, loaded, Xq)
    index.add(X[100:], ids=np.arange(1000, 1300)[::-1])
    loaded = round_trip(index, tmp_path / "filled.hl")  # fitted and filled
    assert_same_hashindex(index, loaded, Xq)
    for obj in (index, loaded):
        assert obj.remove(np.arange(1000, 1100)) == 100
        obj.add(X2)
    assert_same_hashindex(index, loaded, Xq)


def test_hashindex_round_trip_trained_but_empty(tmp_path):
    X, Xq = _vectors(3, 200), _vectors(4, 5)
    index = HashIndex(hashlearn.make_hasher("simhash", n_bits=64, random_state=0), rerank=0)
    index.train(X)
    loaded = round_trip(index, tmp_path / "trained.hl")
    assert loaded._fitted() and loaded.ntotal == 0
    np.testing.assert_array_equal(loaded.hasher.transform(Xq), index.hasher.transform(Xq))
    for obj in (index, loaded):
        obj.add(X)
    assert_same_hashindex(index, loaded, Xq)


def test_hashindex_round_trip_vectors_before_training_and_after_swaps(tmp_path):
    """Stored-but-not-encoded vectors (fit_on_add=False) and rows moved by removals survive a round
    trip: the loaded index continues exactly as the original."""
    X, Xq = _vectors(11, 300), _vectors(12, 6)
    index = HashIndex(hashlearn.make_hasher("itq", n_bits=8, random_state=0), rerank=30, fit_on_add=False)
    index.add(X[:200], np.arange(200)[::-1])
    index.remove(np.arange(0, 200, 5))
    loaded = round_trip(index, tmp_path / "pending.hl")
    assert loaded.ntotal == index.ntotal and not loaded._fitted()
    np.testing.assert_array_equal(loaded.ids, index.ids)
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    for obj in (index, loaded):
        obj.train(X)
        obj.add(X[200:], np.arange(200, 300))
        obj.remove(np.arange(1, 300, 7))
    assert_same_hashindex(index, loaded, Xq)
    again = round_trip(loaded, tmp_path / "swapped.hl")
    assert not again._store.ids_increasing
    assert_same_hashindex(index, again, Xq)
    D, I = again.search(Xq, 10)
    for obj in (again, index):
        obj.reorder_by_id()
        assert obj._store.ids_increasing
    assert_same_hashindex(index, again, Xq)
    for a, b in zip(again.search(Xq, 10), (D, I)):  # row order changes no result
        np.testing.assert_array_equal(a, b)


# -- round trips: every registered hasher --------------------------------------------------------------
def _hasher_data(name, seed):
    rng = np.random.default_rng(seed)
    if hashlearn.hashing.get_hasher_class(name).input_kind == "set":
        return [[f"t{int(t)}" for t in rng.integers(0, 50, size=rng.integers(1, 12))] for _ in range(30)]
    return rng.normal(size=(300, 24)).astype(np.float32)  # n_bits <= d, as PCA-based hashers need


# Model-size knobs shrunk where a hasher has them, so that every fit is quick (the round trip is tested,
# not the quality of the model).
_SMALL = {"n_anchors": 32, "n_bases": 32, "max_iter": 10, "n_iter": 10, "sample_size": 300, "epochs": 2,
          "hidden": 16}


def _small_hasher(name):
    hasher = hashlearn.make_hasher(name, n_bits=16, random_state=7)
    params = hasher.get_params()
    return hasher.set_params(**{k: v for k, v in _SMALL.items() if k in params})


def _fit_for(hasher):
    """``fit(hasher, data)``; supervised hashers get 4 classes of labels (the round trip is tested)."""
    if hashlearn.hashing.is_supervised(hasher):
        return lambda h, data: h.fit(data, np.arange(len(data)) % 4)
    return lambda h, data: h.fit(data)


def _assert_same_value(a, b, key):
    """Equal values, recursing into dicts, lists and tuples (a deep hasher's state holds arrays)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), key
        for k in a:
            _assert_same_value(a[k], b[k], f"{key}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), key
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_value(x, y, f"{key}[{i}]")
    elif isinstance(a, np.ndarray) or hasattr(a, "numpy"):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=key)
    else:
        assert a == b, key


def _assert_same_fitted_attributes(a, b):
    fa = {k: v for k, v in vars(a).items() if k.endswith("_") and not k.startswith("_")}
    fb = {k: v for k, v in vars(b).items() if k.endswith("_") and not k.startswith("_")}
    assert fa.keys() == fb.keys()
    for key in fa:
        if isinstance(fa[key], np.ndarray):
            assert isinstance(fb[key], np.ndarray), key
            assert fa[key].dtype == fb[key].dtype and fa[key].shape == fb[key].shape, key
            np.testing.assert_array_equal(fa[key], fb[key], err_msg=key)
        else:
            _assert_same_value(fa[key], fb[key], key)


@pytest.mark.parametrize("name", hashlearn.list_methods("vector") + hashlearn.list_methods("set"))
def test_every_registered_hasher_round_trips(tmp_path, name):
    assert len(hashlearn.list_methods()) >= 4
    hasher = _small_hasher(name)
    loaded = round_trip(hasher, tmp_path / "unfitted.hl")
    assert type(loaded) is type(hasher)
    assert loaded.get_params() == hasher.get_params()
    data, other = _hasher_data(name, 0), _hasher_data(name, 1)
    with pytest.raises(NotFittedError):
        loaded.transform(data)
    fit = _fit_for(hasher)
    fit(hasher, data)
    loaded = round_trip(hasher, tmp_path / "fitted.hl")
    assert type(loaded) is type(hasher)
    assert loaded.get_params() == hasher.get_params()
    _assert_same_fitted_attributes(hasher, loaded)
    for X in (data, other):
        a, b = hasher.transform(X), loaded.transform(X)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    # a loaded, unfitted hasher fits to the same model (the seed is stored)
    refit = fit(round_trip(_small_hasher(name), tmp_path / "u2.hl"), data)
    np.testing.assert_array_equal(refit.transform(other), hasher.transform(other))


# -- memory mapping ------------------------------------------------------------------------------------
N_BIG = 140_000  # 140k one-word codes: 1.07 MiB of codes and of ids, above the 1 MiB mmap threshold


@pytest.fixture(scope="module")
def big_codes():
    rng = np.random.default_rng(11)
    return codes_of(rng, N_BIG, 64, n_distinct=500), rng.permutation(N_BIG) * 2


@pytest.mark.parametrize("cls", [BinaryIndex, MultiIndexHashing])
def test_mmap_load_search_and_copy_on_grow(tmp_path, big_codes, cls):
    codes, ids = big_codes
    assert codes.nbytes > 1 << 20 and ids.nbytes > 1 << 20
    index = cls(64)
    index.add(codes, ids)
    path = tmp_path / "big.hl"
    hashlearn.save(index, path)
    before = path.read_bytes()
    loaded = hashlearn.load(path, mmap=True)
    assert isinstance(loaded.codes, np.memmap) and isinstance(loaded.ids, np.memmap)
    assert not loaded.codes.flags.writeable
    in_memory = hashlearn.load(path)
    assert not isinstance(in_memory.codes, np.memmap)
    q = np.concatenate([codes[:20], codes_of(np.random.default_rng(0), 5, 64)])
    for obj in (loaded, in_memory):
        for k in (1, 25):
            for x, y in zip(obj.search(q, k), index.search(q, k)):
                np.testing.assert_array_equal(x, y)
        for x, y in zip(obj.range_search(q, 3), index.range_search(q, 3)):
            np.testing.assert_array_equal(x, y)
    # growing a mapped index copies it; the file is never written through
    extra = codes_of(np.random.default_rng(1), 100, 64)
    for obj in (index, loaded):
        obj.add(extra, np.arange(1, 200, 2))
    assert not isinstance(loaded.codes, np.memmap)
    assert loaded.ntotal == N_BIG + 100
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.ids, index.ids)
    for x, y in zip(loaded.search(q, 10), index.search(q, 10)):
        np.testing.assert_array_equal(x, y)
    assert loaded.remove(ids[:10]) == 10
    del loaded
    assert path.read_bytes() == before


def test_mmap_small_arrays_are_read_into_memory(tmp_path, filled_binary_index):
    loaded = round_trip(filled_binary_index, tmp_path / "small.hl", mmap=True)
    assert not isinstance(loaded.codes, np.memmap) and not isinstance(loaded.ids, np.memmap)
    loaded.add(codes_of(np.random.default_rng(0), 1, 100), [10**7])  # writable


def test_mmap_hashindex_with_rerank_vectors(tmp_path):
    X = _vectors(5, 25_000, d=16)  # 1.5 MiB of float32 vectors
    Xq = _vectors(6, 10, d=16)
    index = HashIndex(hashlearn.make_hasher("simhash", n_bits=64, random_state=0), rerank=50)
    index.add(X)
    path = tmp_path / "hi.hl"
    hashlearn.save(index, path)
    loaded = hashlearn.load(path, mmap=True)
    assert isinstance(loaded.vectors, np.memmap)
    assert_same_hashindex(index, loaded, Xq)
    X2 = _vectors(7, 20, d=16)
    for obj in (index, loaded):
        obj.add(X2)
        obj.remove(np.arange(0, 25_000, 7))
    assert_same_hashindex(index, loaded, Xq)


# -- corruption, truncation, foreign files ------------------------------------------------------------
def _assert_rejected(path, match=None, **kw):
    with pytest.raises(FileFormatError) as exc:
        hashlearn.load(path, **kw)
    assert str(path) in str(exc.value)
    if match:
        assert match in str(exc.value).lower()
    return exc.value


def test_flipped_header_byte_is_detected(tmp_path, filled_binary_index):
    path = hashlearn.save(filled_binary_index, tmp_path / "good.hl")
    raw, hlen, header = header_of(path)
    offsets = [0, 3, 7, 8, 11, 12, 15, 16, 20, 23]  # magic, version, CRC, header length
    offsets += [PREFIX.size + int(f * (hlen - 1)) for f in np.linspace(0, 1, 9)]  # the JSON header
    for i, off in enumerate(offsets):
        _assert_rejected(flip(path, off, tmp_path / f"bad{i}.hl"))
        _assert_rejected(tmp_path / f"bad{i}.hl", mmap=True)
    assert hashlearn.load(path).ntotal == 300  # the original is fine


def test_flipped_array_byte_is_detected_by_checksum(tmp_path, filled_binary_index):
    path = hashlearn.save(filled_binary_index, tmp_path / "good.hl")
    raw, hlen, header = header_of(path)
    arrays = [d for d in header["arrays"] if d["nbytes"]]
    assert len(arrays) >= 2  # codes and ids
    for i, d in enumerate(arrays):
        for where in (0, d["nbytes"] // 2, d["nbytes"] - 1):
            bad = flip(path, d["offset"] + where, tmp_path / f"bad{i}_{where}.hl")
            _assert_rejected(bad, match="checksum")
            _assert_rejected(bad, match="checksum", mmap=True)
            # the checksum is what catches it: without verification the altered data loads
            unverified = hashlearn.load(bad, verify=False)
            assert not (
                np.array_equal(unverified.codes, filled_binary_index.codes)
                and np.array_equal(unverified.ids, filled_binary_index.ids)
            )


def test_every_single_byte_flip_is_detected(tmp_path):
    """Prefix, header, alignment padding and array data: no byte of a file goes unchecked."""
    index = BinaryIndex(100)
    index.add(codes_of(np.random.default_rng(1), 6, 100), np.arange(12, 0, -2))
    path = hashlearn.save(index, tmp_path / "small.hl")
    raw, hlen, header = header_of(path)
    assert data_start(hlen) > PREFIX.size + hlen  # there is padding after the header
    bad = tmp_path / "bad.hl"
    for off in range(len(raw)):
        corrupted = bytearray(raw)
        corrupted[off] ^= 0x01
        bad.write_bytes(bytes(corrupted))
        with pytest.raises(FileFormatError):
            hashlearn.load(bad)


def test_truncated_and_extended_files_are_rejected(tmp_path, filled_binary_index):
    path = hashlearn.save(filled_binary_index, tmp_path / "good.hl")
    raw, hlen, header = header_of(path)
    size = len(raw)
    assert header["file_size"] == size
    cuts = [0, 1, 8, 23, PREFIX.size, PREFIX.size + hlen // 2, PREFIX.size + hlen, data_start(hlen),
            data_start(hlen) + 1, (data_start(hlen) + size) // 2, size - 1]
    for cut in sorted(set(cuts)):
        bad = tmp_path / f"cut{cut}.hl"
        bad.write_bytes(raw[:cut])
        _assert_rejected(bad)
    for junk in (b"\0", b"junk", b"\0" * 64, raw):
        bad = tmp_path / "extended.hl"
        bad.write_bytes(raw + junk)
        _assert_rejected(bad)


def test_foreign_files_are_rejected_with_their_path(tmp_path):
    npy = tmp_path / "codes.npy"
    np.save(npy, np.zeros((3, 2), np.uint64))
    empty = tmp_path / "empty.hl"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(b"\x01" + np.random.default_rng(0).bytes(4095))
    text = tmp_path / "notes.txt"
    text.write_text("HASHLRN is not enough\n" * 10)
    almost = tmp_path / "almost.hl"
    almost.write_bytes(b"HASHLRN\0" + b"\xff" * 4)  # right magic, short prefix
    folder = tmp_path / "folder.hl"
    folder.mkdir()
    missing = tmp_path / "missing" / "nothing.hl"
    for path in (npy, empty, noise, text, almost, folder, missing):
        _assert_rejected(path)
        _assert_rejected(str(path))
        with pytest.raises(HashlearnError):
            hashlearn.load(path)
        with pytest.raises(OSError):  # FileFormatError is also an OSError
            hashlearn.load(path)


class _Touch:
    """Unpickling this object creates a file: evidence that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickles_are_never_unpickled(tmp_path, filled_binary_index):
    probe = tmp_path / "probe_marker"
    pickle.loads(pickle.dumps(_Touch(probe)))
    assert probe.exists()  # the payload works when unpickled ...
    marker = tmp_path / "marker"
    for i, payload in enumerate([pickle.dumps(_Touch(marker)), pickle.dumps({"x": _Touch(marker)}, protocol=2)]):
        path = tmp_path / f"evil{i}.hl"
        path.write_bytes(payload)
        _assert_rejected(path)
        _assert_rejected(path, mmap=True)
    # ... also behind a valid hashlearn prefix
    good = hashlearn.save(filled_binary_index, tmp_path / "good.hl")
    raw, hlen, _ = header_of(good)
    evil = tmp_path / "evil_body.hl"
    evil.write_bytes(raw[: data_start(hlen)] + pickle.dumps(_Touch(marker)).ljust(len(raw) - data_start(hlen), b"."))
    _assert_rejected(evil)
    assert not marker.exists()


def test_header_naming_unknown_class_or_object_dtype_is_rejected(tmp_path, filled_binary_index):
    good = hashlearn.save(filled_binary_index, tmp_path / "good.hl")
    # the rewriting helper itself produces loadable files
    same = rewrite_header(good, lambda h: None, tmp_path / "same.hl")
    assert_same_code_index(hashlearn.load(same), filled_binary_index, filled_binary_index.codes[:3])

    def unknown_class(h):
        h["object"]["class"] = "os.system"

    def object_dtype(h):
        h["arrays"][0]["dtype"] = "|O"
        h["arrays"][0]["shape"] = [h["arrays"][0]["nbytes"] // 8]

    def wrong_shape(h):
        h["arrays"][0]["shape"] = [1, 1]

    def missing_array(h):
        h["object"]["state"]["__dict__"]["store"]["__dict__"]["codes"] = {"__array__": 99}

    def inconsistent_state(h):  # codes and ids of different lengths
        h["arrays"][1]["shape"] = [h["arrays"][1]["shape"][0] // 2]
        h["arrays"][1]["nbytes"] //= 2

    for mutate in (unknown_class, object_dtype, wrong_shape, missing_array, inconsistent_state):
        bad = rewrite_header(good, mutate, tmp_path / f"{mutate.__name__}.hl")
        _assert_rejected(bad)


# -- versions ------------------------------------------------------------------------------------------
def test_newer_format_version_is_rejected(tmp_path, filled_binary_index, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(persist, "FORMAT_VERSION", 2)
        path = hashlearn.save(filled_binary_index, tmp_path / "v2.hl")
    assert header_of(path)[2]["format_version"] == 2
    err = _assert_rejected(path)
    assert "version 2" in str(err)
    # a version field edited in place (the header CRC does not cover it)
    good = hashlearn.save(filled_binary_index, tmp_path / "good.hl")
    raw = bytearray(good.read_bytes())
    raw[8:12] = struct.pack("<I", 999)
    bumped = tmp_path / "v999.hl"
    bumped.write_bytes(bytes(raw))
    assert "999" in str(_assert_rejected(bumped))


def test_header_records_format_and_library_version(tmp_path, filled_binary_index):
    path = hashlearn.save(filled_binary_index, tmp_path / "a.hl")
    raw, hlen, header = header_of(path)
    assert raw[:8] == b"HASHLRN\0"
    assert PREFIX.unpack(raw[:24])[1] == 1
    assert header["format"] == "hashlearn" and header["format_version"] == 1
    assert header["library_version"] == hashlearn.__version__
    assert header["file_size"] == len(raw)
    assert all(d["offset"] % 64 == 0 and d["offset"] >= data_start(hlen) for d in header["arrays"])
    checked = persist.read_header(path)
    assert {k: v for k, v in checked.items() if not k.startswith("_")} == header


# -- atomic writes -------------------------------------------------------------------------------------
def _listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


class _FailingFile:
    """Wraps a binary file; write() fails once `budget` bytes have been written (a full disk)."""

    def __init__(self, fh, budget, exc):
        self.fh, self.budget, self.exc = fh, budget, exc

    def write(self, data):
        n = memoryview(data).nbytes
        if n > self.budget:
            raise self.exc
        self.budget -= n
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.fh.__exit__(*exc)


def _failure_modes(monkeypatch, mode, size):
    real_fdopen = os.fdopen
    if mode == "replace":
        def boom(*a, **k):
            raise OSError("simulated rename failure")
        monkeypatch.setattr(os, "replace", boom)
        return OSError
    if mode == "fsync":
        def interrupted(*a, **k):
            raise KeyboardInterrupt
        monkeypatch.setattr(os, "fsync", interrupted)
        return KeyboardInterrupt
    budget = {"write_header": 10, "write_arrays": size // 2}[mode]
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: _FailingFile(real_fdopen(*a, **k), budget, OSError(28, "No space left on device")))
    return OSError


@pytest.mark.parametrize("mode", ["replace", "fsync", "write_header", "write_arrays"])
def test_failed_save_leaves_old_file_intact_and_no_temp_file(tmp_path, filled_binary_index, monkeypatch, mode):
    path = hashlearn.save(filled_binary_index, tmp_path / "index.hl")
    before = path.read_bytes()
    assert _listing(tmp_path) == ["index.hl"]  # a successful save leaves no temporary file
    replacement = BinaryIndex(100)
    replacement.add(codes_of(np.random.default_rng(9), 5000, 100))
    with monkeypatch.context() as m:
        expected = _failure_modes(m, mode, 5000 * 16)
        with pytest.raises(expected):
            hashlearn.save(replacement, path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["index.hl"]
    assert_same_code_index(hashlearn.load(path), filled_binary_index, filled_binary_index.codes[:4])
    # a failed save to a new name creates nothing
    with monkeypatch.context() as m:
        _failure_modes(m, mode, 5000 * 16)
        with pytest.raises(expected):
            hashlearn.save(replacement, tmp_path / "new.hl")
    assert _listing(tmp_path) == ["index.hl"]
    # and once the failure is gone, saving over the old file works
    hashlearn.save(replacement, path)
    assert hashlearn.load(path).ntotal == 5000
    assert _listing(tmp_path) == ["index.hl"]


def test_saved_file_has_ordinary_permissions(tmp_path, filled_binary_index):
    """A saved file is readable like any file the user creates (mode 0o666 & ~umask), not the 0o600 of
    the temporary file it is renamed from."""
    old = os.umask(0o022)
    try:
        path = hashlearn.save(filled_binary_index, tmp_path / "index.hl")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    finally:
        os.umask(old)
    assert plain.stat().st_mode & 0o777 == 0o644
    assert path.stat().st_mode & 0o777 == 0o644


def test_save_creates_missing_parent_folders(tmp_path, filled_binary_index):
    path = tmp_path / "a" / "b" / "index.hl"
    hashlearn.save(filled_binary_index, path)
    assert hashlearn.load(path).ntotal == 300


# -- unsupported objects -------------------------------------------------------------------------------
class _SubIndex(BinaryIndex):
    pass


@pytest.mark.parametrize(
    "obj",
    [{"a": 1}, [1, 2], object(), np.zeros(3), "text", None, _SubIndex(8)],
    ids=["dict", "list", "object", "ndarray", "str", "None", "unregistered-subclass"],
)
def test_saving_unsupported_objects_raises(tmp_path, obj):
    path = tmp_path / "x.hl"
    with pytest.raises(HashlearnError):
        hashlearn.save(obj, path)
    assert not path.exists()
    assert _listing(tmp_path) == []


# -- files that are well formed but hostile: refused with FileFormatError, never a crash ------------------
@pytest.fixture
def simhash_file(tmp_path):
    X = _vectors(8, 50, d=6)
    hasher = hashlearn.make_hasher("simhash", n_bits=16, random_state=0).fit(X)
    return hashlearn.save(hasher, tmp_path / "simhash.hl")


def _fitted(h):
    return h["object"]["state"]["__dict__"]["fitted"]["__dict__"]


def _params(h):
    return h["object"]["state"]["__dict__"]["params"]["__dict__"]


@pytest.mark.parametrize("mutate, needle", [
    (lambda h: _fitted(h).update(code_bits=3), "code_bits"),  # a property of the class
    (lambda h: _fitted(h).update(transform=1), "transform"),  # a method
    (lambda h: _params(h).update(transform=1), "no parameter 'transform'"),
    (lambda h: _params(h).update(n_bits=-5), "n_bits"),
    (lambda h: _fitted(h).update(projections_={"__array__": True}), "missing array True"),
    (lambda h: _fitted(h).update(projections_="abc"), "cannot encode"),
    (lambda h: _fitted(h).update(n_features_in_=-2), "n_features_in_"),
    (lambda h: h["object"]["state"]["__dict__"].update(extra=1), "params, fitted"),
    (lambda h: h["object"].update(more=1), "malformed object entry"),
    (lambda h: h["object"].update({"class": 5}), "malformed object entry"),
])
def test_hostile_state_is_refused(tmp_path, simhash_file, mutate, needle):
    bad = rewrite_header(simhash_file, mutate, tmp_path / "bad.hl")
    err = _assert_rejected(bad)
    assert needle in str(err), str(err)
    with pytest.raises(FileFormatError):
        persist.loads(bad.read_bytes())


def test_deep_nesting_is_refused(tmp_path, simhash_file):
    deep = '{"__dict__":{"a":' * 200_000 + "1" + "}}" * 200_000  # valid JSON, CRC made consistent
    bad = rewrite_header(simhash_file, lambda h: _fitted(h).update(x_="PLACEHOLDER"), tmp_path / "deep.hl",
                         raw_text=("PLACEHOLDER", deep))
    assert "nested" in str(_assert_rejected(bad))
    tree = '{"__dict__":{"a":' * (persist.MAX_DEPTH + 5) + "1" + "}}" * (persist.MAX_DEPTH + 5)
    bad = rewrite_header(simhash_file, lambda h: _fitted(h).update(x_="PLACEHOLDER"), tmp_path / "tree.hl",
                         raw_text=("PLACEHOLDER", tree))
    assert f"deeper than {persist.MAX_DEPTH}" in str(_assert_rejected(bad))


@pytest.mark.parametrize("shape", [(6, 128), (128,), (5, 16), (6, 16, 1)])
def test_arrays_that_do_not_match_n_bits_or_dim_are_refused(tmp_path, shape):
    """A SimHash whose projections do not match its n_bits (16) and dimension (6) saves, but does not
    load: the probe encoding shows codes of the wrong width, or fails."""
    hasher = hashlearn.make_hasher("simhash", n_bits=16, random_state=0).fit(_vectors(9, 40, d=6))
    hasher.projections_ = np.ones(shape, np.float32)
    path = hashlearn.save(hasher, tmp_path / "bad.hl")
    err = _assert_rejected(path)
    assert "SimHash" in str(err)


def test_dumps_loads_round_trip_without_files(tmp_path):
    X = _vectors(10, 100)
    index = HashIndex(hashlearn.make_hasher("itq", n_bits=8, random_state=0), rerank=20)
    index.add(X)
    data = persist.dumps(index)
    assert data == hashlearn.save(index, tmp_path / "same.hl").read_bytes()
    again = persist.loads(data)
    for a, b in zip(index.search(X[:5], 4), again.search(X[:5], 4)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileFormatError, match="<bytes>: not a hashlearn file"):
        persist.loads(b"nope")


# -- every registered method, every kind: the load checks accept what save writes -----------------------
def _fit_recipe(name):
    """Fit a small model of any registered kind (vector and set kinds: see the test above)."""
    kind = hashlearn.registry.get_method_class(name).input_kind
    rng = np.random.default_rng(0)
    A = rng.normal(size=(120, 10)).astype(np.float32)
    if kind == "crossmodal":
        if name == "deep-xm":
            pytest.importorskip("torch", reason="deep-xm needs torch")
        est = hashlearn.registry.make_method(name, n_bits=8, random_state=0)
        est.set_params(**{k: v for k, v in {"epochs": 2}.items() if k in est.get_params()})
        B = (A[:, :8] + 0.1 * rng.normal(size=(120, 8))).astype(np.float32)
        if hashlearn.hashing.is_supervised(est):  # dmveh, dlch, prompthash: labels, torch to train
            pytest.importorskip("torch", reason=f"{name} trains with torch")
            return est.fit([A, B], np.arange(120) % 4)
        return est.fit([A, B])
    if name == "bpr":
        pytest.skip("bpr trains on queries (its round trips are in tests/test_text.py)")
    if kind == "quantizer":
        if name in ("jpq", "repconc"):
            pytest.importorskip("torch", reason=f"{name} trains with torch")
        accepted = hashlearn.registry.get_method_class(name)._get_param_names()
        small = {"M": 4, "nbits": 4, "n_clusters": 8, "levels": 2, "epochs": 1, "random_state": 0}
        est = hashlearn.registry.make_method(name, **{k: v for k, v in small.items() if k in accepted})
        X = rng.normal(size=(600, 16)).astype(np.float32)
        if name in ("jpq", "repconc"):  # task-trained: pseudo-queries = noisy copies of their documents
            docs = rng.choice(600, size=200, replace=False)
            return est.fit(X, pseudo_queries=X[docs] + 0.1 * rng.normal(size=(200, 16)).astype(np.float32),
                           pseudo_docs=docs)
        return est.fit(X)
    if kind == "compressor":
        from hashlearn.recsys import Interactions

        u, i = np.nonzero(rng.random((40, 60)) < 0.15)
        inter = Interactions.from_arrays(u, i)
        features = rng.normal(size=(inter.n_items, 8)).astype(np.float32)  # item content (semantic IDs)
        return hashlearn.registry.make_method(name, random_state=0).fit(inter, item_features=features)
    if kind == "embedding":
        return hashlearn.registry.make_method(name, random_state=0).fit(A) if "random_state" in \
            hashlearn.registry.get_method_class(name)._get_param_names() else hashlearn.registry.make_method(name).fit(A)
    pytest.skip(f"{kind} methods are covered by test_every_registered_hasher_round_trips")


@pytest.mark.parametrize("name", [m for m in hashlearn.list_methods() if m not in hashlearn.list_methods("vector")
                                  + hashlearn.list_methods("set")])
def test_every_other_registered_method_round_trips(name):
    est = _fit_recipe(name)
    data = persist.dumps(est)
    loaded = persist.loads(data)
    assert type(loaded) is type(est)
    assert persist.dumps(loaded) == data  # the same state, bit for bit (nested objects included)
    unfitted = persist.loads(persist.dumps(hashlearn.registry.get_method_class(name)()))
    assert not hasattr(unfitted, "n_features_in_")


def test_atomic_write_many_is_all_or_none_with_the_usual_file_mode(tmp_path):
    from hashlearn.io.persist import atomic_write_many

    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    a.write_bytes(b"old a")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_many([(a, lambda fh: fh.write(b"new a")), (b, boom)])
    assert a.read_bytes() == b"old a" and not b.exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.txt"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert atomic_write_many([(a, lambda fh: fh.write(b"A")), (b, lambda fh: fh.write(b"B"))]) == [a, b]
    assert (a.read_bytes(), b.read_bytes()) == (b"A", b"B")
    assert stat.S_IMODE(b.stat().st_mode) == 0o666 & ~umask
