"""Storage engine of the service: write-ahead log framing, recovery, snapshots, search against
brute force, consistency under concurrent writes. In-process, no HTTP (see test_service_http.py)."""

from __future__ import annotations

import errno
import os
import threading

import numpy as np
import pytest

from hashlearn.codes import hamming_distances
from hashlearn.errors import UnknownMethodError, ValidationError
from hashlearn.hashing import make_hasher
from hashlearn.io import save
from hashlearn.service import CollectionConfig, Conflict, DataDirInUse, NotFound, NotTrained, Storage, Unavailable, read_records
from hashlearn.service.storage import check_collection_name, hasher_from_bytes
from hashlearn.service.storage.faults import FaultInjector
from hashlearn.service.wal import WriteAheadLog

DIM = 8


def _storage(path, **kw):
    kw.setdefault("snapshot_records", 1000)
    return Storage(path, **kw)


def _crash(st):
    """What a kill -9 leaves on disk: logs closed as they are, no last snapshot, the lock released."""
    st.close(snapshot=False)


def _filled(path, rng, n=200, train=True, **kw):
    """A collection of n points with payloads; ``train=False``: an ITQ collection never trained."""
    st = _storage(path, **kw)
    config = CollectionConfig(name="c", dim=DIM, n_bits=32) if train else CollectionConfig(name="c", dim=DIM, method="itq", n_bits=8)
    coll = st.create(config)
    X = rng.normal(size=(n, DIM)).astype(np.float32)
    if train:
        coll.train(X)
    for start in range(0, n, 50):
        ids = list(range(start, min(n, start + 50)))
        coll.upsert(ids, X[ids], [{"g": i % 3, "tag": f"t{i}"} for i in ids])
    return st, coll, X


def _live(coll):
    """(ids increasing, their vectors) of a collection."""
    index = coll.state.index
    ids = np.sort(index.ids)
    return ids, index.vectors[index.rows(ids)]


# -- write-ahead log ------------------------------------------------------------------------------
def test_wal_roundtrip_and_torn_tail_at_every_byte(tmp_path):
    path = tmp_path / "wal.log"
    log = WriteAheadLog(path)
    bodies = [os.urandom(n) for n in (0, 1, 17, 300)]
    for seq, body in enumerate(bodies, 1):
        log.append(seq, 1, body)
    log.close()
    records, rep = read_records(path)
    assert [bytes(b) for _, _, b in records] == bodies and [s for s, _, _ in records] == [1, 2, 3, 4]
    assert rep.stop_reason is None and rep.good_bytes == path.stat().st_size
    full = path.read_bytes()
    last_start = rep.good_bytes - (8 + 9 + 300)
    for cut in range(last_start, len(full)):  # every torn length of the last record
        path.write_bytes(full[:cut])
        records, rep = read_records(path)
        assert len(records) == 3, cut
        assert rep.good_bytes == last_start
        assert (rep.stop_reason is None) == (cut == last_start)


@pytest.mark.parametrize("where", [0, 3, 8, 20])  # length, CRC, sequence number, body of record 3
def test_wal_corrupt_record_is_skipped_and_reading_resumes(tmp_path, where):
    """A damaged record in the middle is not a torn tail: the reader resynchronises on the next intact
    frame, so only the damaged record is missing, and the damaged byte range is reported."""
    path = tmp_path / "wal.log"
    log = WriteAheadLog(path)
    for seq in range(1, 6):
        log.append(seq, 1, bytes([seq]) * 40)
    log.close()
    data = bytearray(path.read_bytes())
    rec = 8 + 9 + 40
    data[2 * rec + where] ^= 0x55  # inside record 3
    path.write_bytes(bytes(data))
    records, rep = read_records(path)
    assert [s for s, _, _ in records] == [1, 2, 4, 5]
    assert [bytes(b) for _, _, b in records][2] == bytes([4]) * 40
    assert rep.stop_reason is None and rep.good_bytes == len(data)
    assert [(d["start"], d["end"]) for d in rep.damaged] == [(2 * rec, 3 * rec)]
    data[4 * rec + 20] ^= 0x55  # the last record: nothing intact follows, so it is the torn tail
    path.write_bytes(bytes(data))
    records, rep = read_records(path)
    assert [s for s, _, _ in records] == [1, 2, 4] and "checksum mismatch" in rep.stop_reason
    assert rep.good_bytes == 4 * rec


def test_wal_failed_append_leaves_no_partial_record(tmp_path, monkeypatch):
    path = tmp_path / "wal.log"
    log = WriteAheadLog(path)
    log.append(1, 1, b"a" * 100)
    size = path.stat().st_size
    real_pwrite = os.pwrite

    def half_then_full(fd, data, offset):
        real_pwrite(fd, data[: len(data) // 2], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", half_then_full)
    with pytest.raises(OSError):
        log.append(2, 1, b"b" * 100)
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    assert path.stat().st_size == size
    log.append(2, 1, b"c" * 100)
    records, rep = read_records(path)
    assert [bytes(b)[:1] for _, _, b in records] == [b"a", b"c"] and rep.stop_reason is None


# -- collections --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", "a b", ".hidden", "-x", "x" * 65, "é", "a\x00", "abc\n", "a\nb"])
def test_collection_names_refused(name):
    with pytest.raises(ValidationError, match="invalid collection name"):
        check_collection_name(name)


def test_create_validation_and_conflicts(tmp_path):
    st = _storage(tmp_path)
    with pytest.raises(ValidationError, match="dim"):
        st.create(CollectionConfig(name="a", dim=0))
    with pytest.raises(UnknownMethodError, match="unknown method 'nope'; a collection can use: agh") as exc:
        st.create(CollectionConfig(name="a", dim=4, method="nope"))
    assert "minhash" not in str(exc.value) and "rreh" not in str(exc.value)
    with pytest.raises(ValidationError, match="not a vector hasher"):
        st.create(CollectionConfig(name="a", dim=4, method="minhash"))
    with pytest.raises(ValidationError, match="does not accept parameter"):
        st.create(CollectionConfig(name="a", dim=4, params={"bogus": 1}))
    for method in ("itq", "pcah", "kmh"):  # one bit per dimension at most: refused at creation
        with pytest.raises(ValidationError, match="n_bits=16 exceeds dim=4"):
            st.create(CollectionConfig(name="a", dim=4, method=method, n_bits=16))
    st.create(CollectionConfig(name="sh", dim=4, method="sh", n_bits=16))  # no such limit
    st.delete("sh")
    st.create(CollectionConfig(name="a", dim=4))
    with pytest.raises(Conflict, match="already exists"):
        st.create(CollectionConfig(name="a", dim=4))
    assert st.names() == ["a"]
    st.delete("a")
    with pytest.raises(NotFound):
        st.get("a")
    assert not any(p.name == "a" for p in (tmp_path / "collections").iterdir())


def test_input_validation_names_the_problem(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=20)
    with pytest.raises(ValidationError, match="dimension 3"):
        coll.upsert([1], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValidationError, match=r"vectors\[0\]\[2\] is nan"):
        coll.upsert([1], [[0, 0, np.nan] + [0] * (DIM - 3)])
    with pytest.raises(ValidationError, match="does not fit in float32"):
        coll.upsert([1], [[1e300] * DIM])
    with pytest.raises(ValidationError, match="more than once"):
        coll.upsert([1, 1], X[:2])
    with pytest.raises(ValidationError, match="must be integers"):
        coll.upsert(["1"], X[:1])
    with pytest.raises(ValidationError, match=r"\[0, 2\^63-1\]"):
        coll.upsert([-1], X[:1])
    with pytest.raises(ValidationError, match="2 entries but there are 1"):
        coll.upsert([1, 2], X[:1])
    with pytest.raises(ValidationError, match="empty"):
        coll.search(np.zeros((0, DIM)), 3)
    with pytest.raises(ValidationError, match="k must be"):
        coll.search(X[:1], 0)
    with pytest.raises(ValidationError, match=r"payloads\[0\] must be a JSON object"):
        coll.upsert([1], X[:1], ["x"])
    deep = {"a": 1}
    for _ in range(40):
        deep = {"a": deep}
    with pytest.raises(ValidationError, match="nested deeper than 32"):
        coll.upsert([1], X[:1], [deep])
    with pytest.raises(ValidationError, match="lone surrogate"):
        coll.upsert([1], X[:1], [{"a": "\ud800"}])
    with pytest.raises(ValidationError, match="lone surrogate"):
        coll.upsert([1], X[:1], [{"\udfff": 1}])
    with pytest.raises(ValidationError, match="beyond 64 bits"):
        coll.upsert([1], X[:1], [{"a": 2**70}])
    assert coll.stats()["points"] == 20 and coll.state.seq == 3  # create (its hasher), train, upsert: nothing invalid was logged


def test_search_matches_brute_force(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=300)
    coll.delete(list(range(0, 300, 7)))
    coll.upsert([5, 1000], rng.normal(size=(2, DIM)), [{"g": 1, "tag": "new"}, None])  # replace + insert
    live, V = _live(coll)
    Q = rng.normal(size=(6, DIM)).astype(np.float32)
    hasher = coll.state.index.hasher
    ref = hamming_distances(hasher.transform(Q), hasher.transform(V))
    # Hamming top-k, ties by smaller id
    D, I, metric = coll.search(Q, 10)
    assert metric == "hamming" and D.dtype == np.int32
    for q in range(6):
        order = np.lexsort((live, ref[q]))[:10]
        assert I[q].tolist() == live[order].tolist() and D[q].tolist() == ref[q][order].tolist()
    # rerank: exact squared L2 over the best `candidates` Hamming matches
    D, I, metric = coll.search(Q, 5, rerank=True, candidates=40)
    assert metric == "l2"
    for q in range(6):
        cand = live[np.lexsort((live, ref[q]))[:40]]
        l2 = ((V[np.searchsorted(live, cand)] - Q[q]) ** 2).sum(1)
        order = np.lexsort((cand, l2))[:5]
        assert I[q].tolist() == cand[order].tolist()
        np.testing.assert_allclose(D[q], l2[order], rtol=1e-6)
    # filter: top-k among the points whose payload matches
    D, I, _ = coll.search(Q, 8, filter={"g": 1})
    match = np.array([i for i in live if (coll.state.payloads.get(int(i)) or {}).get("g") == 1])
    refm = hamming_distances(hasher.transform(Q), hasher.transform(V[np.searchsorted(live, match)]))
    for q in range(6):
        order = np.lexsort((match, refm[q]))[:8]
        assert I[q].tolist() == match[order].tolist()
    D, I, _ = coll.search(Q, 3, filter={"g": "no such value"})
    assert (I == -1).all()
    # several keys, a list value (checked by scan), booleans apart from numbers, after deletes/replacements
    coll.upsert([2000, 2001, 2002, 2003], rng.normal(size=(4, DIM)),
                [{"g": 1, "f": True, "l": [1, 2]}, {"g": 1, "f": 1, "l": [1, 2]}, {"g": 1, "f": True}, None])
    for flt, want in [({"g": 1, "f": True}, {2000, 2002}), ({"f": 1}, {2001}), ({"g": 1, "l": [1, 2]}, {2000, 2001}),
                      ({"l": [1, 2]}, {2000, 2001}), ({"f": True, "l": [2, 1]}, set())]:
        D, I, _ = coll.search(Q[:1], 50, filter=flt)
        got = set(I[0][I[0] >= 0].tolist())
        assert got == want, (flt, got)
    coll.upsert([2000], rng.normal(size=(1, DIM)), [{"g": 2}])  # replacing drops the old payload's terms
    coll.delete([2002])
    D, I, _ = coll.search(Q[:1], 50, filter={"f": True})
    assert set(I[0][I[0] >= 0].tolist()) == set()
    before = coll.search(Q, 8, filter={"g": 1})[1]
    _crash(st)
    st2 = _storage(tmp_path)  # the inverted index is rebuilt on load
    np.testing.assert_array_equal(st2.get("c").search(Q, 8, filter={"g": 1})[1], before)
    coll = st2.get("c")
    got = coll.get(5)
    assert got["payload"] == {"g": 1, "tag": "new"}
    with pytest.raises(NotFound):
        coll.get(7)


def test_deletes_swap_rows_and_snapshots_restore_id_order(tmp_path, rng):
    """Random upserts, replacements and deletes against a dict reference: every id maps to its last
    vector, searches break ties by id whatever the row order, and a snapshot sorts the rows by id."""
    st, coll, X = _filled(tmp_path, rng, n=200)
    ref = {i: X[i] for i in range(200)}
    next_id = 200
    for _ in range(40):
        op = rng.integers(3)
        if op == 0 and ref:
            dead = rng.choice(sorted(ref), size=min(len(ref), int(rng.integers(1, 12))), replace=False)
            assert coll.delete(dead.tolist())["deleted"] == len(dead)
            for i in dead.tolist():
                del ref[i]
        else:
            old = rng.choice(sorted(ref), size=min(len(ref), 3), replace=False).tolist() if op == 1 and ref else []
            ids = old + list(range(next_id, next_id + 4))
            next_id += 4
            V = rng.normal(size=(len(ids), DIM)).astype(np.float32)
            coll.upsert(ids, V)
            ref.update(zip(ids, V))
    index = coll.state.index
    assert sorted(index.ids.tolist()) == sorted(ref) and index.ntotal == len(ref)
    for row, i in enumerate(index.ids.tolist()):
        assert index.rows([i])[0] == row
        np.testing.assert_array_equal(index.vectors[row], ref[i])
    np.testing.assert_array_equal(index.codes, index.hasher.transform(index.vectors))
    assert not index.ids_in_order  # deletes in the middle moved rows
    live = np.array(sorted(ref))
    Q = rng.normal(size=(5, DIM)).astype(np.float32)
    dist = hamming_distances(index.hasher.transform(Q), index.hasher.transform(np.stack([ref[i] for i in live])))
    D, I, _ = coll.search(Q, 15)
    for q in range(5):
        order = np.lexsort((live, dist[q]))[:15]
        assert I[q].tolist() == live[order].tolist()
    coll.snapshot()
    assert index.ids_in_order and np.all(np.diff(index.ids) > 0)
    D2, I2, _ = coll.search(Q, 15)
    np.testing.assert_array_equal(I2, I)
    np.testing.assert_array_equal(D2, D)
    ids_before, vectors_before = index.ids.copy(), index.vectors.copy()
    _crash(st)
    st2 = _storage(tmp_path)  # recovery: the snapshot plus the log after it give the same state
    again = st2.get("c").state.index
    assert again.ids.tolist() == ids_before.tolist()
    np.testing.assert_array_equal(again.vectors, vectors_before)


def test_simhash_is_searchable_at_creation_and_itq_after_training(tmp_path, rng):
    st = _storage(tmp_path)
    coll = st.create(CollectionConfig(name="s", dim=DIM, n_bits=16))
    assert coll.describe()["trained"] and coll.state.seq == 1  # the fitted hasher is record 1 of the log
    X = rng.normal(size=(30, DIM)).astype(np.float32)
    coll.upsert(list(range(30)), X)
    D, I, _ = coll.search(X[:3], 1)
    assert I[:, 0].tolist() == [0, 1, 2]
    centred = st.create(CollectionConfig(name="centred", dim=DIM, n_bits=16, params={"center": True}))
    assert not centred.describe()["trained"]  # learns a mean from data: needs training


def test_untrained_collection_stores_then_trains(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=100, train=False)
    with pytest.raises(NotTrained):
        coll.search(X[:1], 3)
    coll.train(X[:60])
    D, I, _ = coll.search(X[:5], 1)
    assert (D[:, 0] == 0).all()  # every stored vector was encoded at training time


def test_uploaded_hasher_is_used(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=50, train=False)
    hasher = make_hasher("itq", n_bits=8, random_state=3).fit(X)
    save(hasher, tmp_path / "h.hlrn")
    loaded = hasher_from_bytes((tmp_path / "h.hlrn").read_bytes(), DIM, max_bits=4096)
    coll.set_hasher(loaded)
    index = coll.state.index
    np.testing.assert_array_equal(index.codes, hasher.transform(index.vectors))
    with pytest.raises(ValidationError, match="fitted on 8-dimensional"):
        hasher_from_bytes((tmp_path / "h.hlrn").read_bytes(), 9, max_bits=4096)
    with pytest.raises(ValidationError, match="1 to 4 bits"):
        hasher_from_bytes((tmp_path / "h.hlrn").read_bytes(), DIM, max_bits=4)
    with pytest.raises(ValidationError, match="not a hashlearn file"):
        hasher_from_bytes(b"garbage" * 10, DIM, max_bits=4096)
    codes = index.codes.copy()
    _crash(st)
    st2 = _storage(tmp_path)  # survives a restart (the hasher is in the log)
    np.testing.assert_array_equal(st2.get("c").state.index.codes, codes)


def test_bad_hasher_changes_nothing_and_never_reuses_a_sequence_number(tmp_path, rng):
    """Issue 13.1: a hasher whose arrays do not match its n_bits used to be logged, fail to apply, and
    leave the sequence number to be reused. Now it is refused before anything is logged."""
    st, coll, X = _filled(tmp_path, rng, n=50)
    bad = make_hasher("simhash", n_bits=16, random_state=0).fit(X)
    bad.projections_ = np.ones((DIM, 128), np.float32)
    seq, log_size = coll.state.seq, coll.wal.size
    with pytest.raises(ValidationError):
        coll.set_hasher(bad)
    save(bad, tmp_path / "bad.hlrn")
    with pytest.raises(ValidationError, match="SimHash"):
        hasher_from_bytes((tmp_path / "bad.hlrn").read_bytes(), DIM, max_bits=4096)
    assert (coll.state.seq, coll.wal.size) == (seq, log_size)
    coll.upsert([1000], X[:1])
    # a failure after the record is on disk (here: out of memory while applying) consumes the number
    real = coll.state.apply_upsert

    def boom(*a, **k):
        raise MemoryError("simulated")

    coll.state.apply_upsert = boom
    with pytest.raises(Unavailable, match="read-only"):
        coll.upsert([1001], X[:1])
    coll.state.apply_upsert = real
    assert coll.state.seq == seq + 2 and "restart the server" in coll.describe()["read_only"]
    with pytest.raises(Unavailable, match="read-only"):
        coll.upsert([1002], X[:1])
    _crash(st)
    st2 = _storage(tmp_path)  # the restart replays the logged write
    c2 = st2.get("c")
    assert {1000, 1001} <= set(c2.state.index.ids.tolist()) and not c2.recovery["problems"]
    assert c2.state.seq == seq + 2


# -- recovery -------------------------------------------------------------------------------------------
def _state(coll):
    ids, V = _live(coll)
    return ids, V, {i: coll.state.payloads.get(int(i)) for i in ids}


def _same(a, b):
    assert a[0].tolist() == b[0].tolist()
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


def test_restart_replays_log_and_snapshots(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=400, snapshot_records=3)
    coll.delete([1, 2, 3])
    before = _state(coll)
    Q = X[:4]
    D0, I0, _ = coll.search(Q, 5, rerank=True)
    files = sorted(p.name for p in (tmp_path / "collections" / "c").iterdir())
    assert sum(f.startswith("snapshot-") for f in files) == 2  # the two newest are kept
    _crash(st)
    st2 = _storage(tmp_path, snapshot_records=3)
    c2 = st2.get("c")
    _same(before, _state(c2))
    D1, I1, _ = c2.search(Q, 5, rerank=True)
    np.testing.assert_array_equal(I0, I1)
    rep = c2.recovery
    assert rep["snapshot"] is not None and not rep["problems"] and rep["points"] == 397


def test_data_directory_is_locked(tmp_path, rng):
    st = _storage(tmp_path)
    with pytest.raises(DataDirInUse, match=f"in use by another hashlearn server \\(pid {os.getpid()}\\)"):
        _storage(tmp_path)
    st.close()
    _storage(tmp_path).close()  # free again


def test_torn_log_tail_is_cut_and_writes_continue(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=100)
    before = _state(coll)
    coll.upsert([500], X[:1])  # the record we tear
    wal = coll.wal.path
    _crash(st)
    size = wal.stat().st_size
    with open(wal, "r+b") as fh:
        fh.truncate(size - 5)
    st2 = _storage(tmp_path)
    c2 = st2.get("c")
    _same(before, _state(c2))
    seg = c2.recovery["segments"][-1]
    assert "cut short" in seg["stop_reason"] and seg["discarded_bytes"] > 0
    assert "cut the torn log tail" in c2.recovery["action"] and not c2.recovery["problems"]
    c2.upsert([501], X[:1])
    _crash(st2)
    st3 = _storage(tmp_path)
    assert 501 in st3.get("c").state.index.ids and 500 not in st3.get("c").state.index.ids
    assert not st3.get("c").recovery["problems"]


def test_flipped_byte_in_the_middle_of_the_log_loses_only_that_record(tmp_path, rng):
    """Issue 13.3: one flipped byte used to cut the log there (every later acknowledged write gone,
    'cut the torn log tail', no problem reported). Now every intact record is replayed, the loss is
    reported, and the damaged segment is kept."""
    st, coll, X = _filled(tmp_path, rng, n=20)
    for b in range(12):  # records 4..15 (after create, train, upsert), one point each, ids 100..111
        coll.upsert([100 + b], X[b:b + 1], [{"b": b}])
    seg_path = coll.wal.path
    _crash(st)
    records, _ = read_records(seg_path)
    data = bytearray(seg_path.read_bytes())
    pos = 0
    for seq, op, body in records:  # find record 10 (id 106)
        start = pos
        pos += 8 + 9 + len(body)
        if seq == 10:
            break
    data[start + 30] ^= 0x01
    seg_path.write_bytes(bytes(data))
    st2 = _storage(tmp_path)
    c2 = st2.get("c")
    ids = set(c2.state.index.ids.tolist())
    assert set(range(100, 112)) - ids == {106}
    rep = c2.recovery
    assert any("record 10 missing" in p for p in rep["problems"]), rep["problems"]
    assert any("damaged" in p for p in rep["problems"]) and rep["lost_records"] == 1
    assert "fresh snapshot" in rep["action"]
    assert any(p.name.endswith(seg_path.name) for p in (tmp_path / "collections" / "c").glob("damaged-*"))
    c2.upsert([999], X[:1])
    _crash(st2)
    st3 = _storage(tmp_path)  # clean from now on
    assert not st3.get("c").recovery["problems"] and 999 in st3.get("c").state.index.ids


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_newest_snapshot_falls_back_to_previous(tmp_path, rng, damage):
    st, coll, X = _filled(tmp_path, rng, n=300, snapshot_records=2)
    before = _state(coll)
    _crash(st)
    snaps = sorted((tmp_path / "collections" / "c").glob("snapshot-*.hlrn"))
    assert len(snaps) == 2
    newest = snaps[-1]
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        newest.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[-100] ^= 0xFF
        newest.write_bytes(bytes(data))
    st2 = _storage(tmp_path, snapshot_records=2)
    c2 = st2.get("c")
    _same(before, _state(c2))
    rep = c2.recovery
    assert rep["skipped_snapshots"] and rep["skipped_snapshots"][0]["file"] == newest.name
    assert str(tmp_path) not in str(rep)  # file names, never absolute paths
    assert rep["snapshot"]["file"] == snaps[0].name and rep["replayed_records"] >= 1
    assert "fresh snapshot" in rep["action"]
    # the damaged file is kept aside and the next start is clean
    assert list((tmp_path / "collections" / "c").glob("damaged-*"))
    _crash(st2)
    st3 = _storage(tmp_path, snapshot_records=2)
    _same(before, _state(st3.get("c")))
    assert not st3.get("c").recovery["skipped_snapshots"]


def test_environmental_errors_never_count_as_damage(tmp_path, rng):
    """Issue 13.2: a recovery that needs to write on a full disk, or cannot read, must not rename or
    drop anything: the collection stays closed (with the reason) and opens fully once the disk is back."""
    flag = tmp_path / "fault"
    st, coll, X = _filled(tmp_path / "d", rng, n=300, snapshot_records=2)
    before = _state(coll)
    _crash(st)
    folder = tmp_path / "d" / "collections" / "c"
    newest = sorted(folder.glob("snapshot-*.hlrn"))[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # recovery must write a fresh snapshot ...
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    for fault in ("ENOSPC", "EIO"):  # ... but the disk is full / failing
        flag.write_text(fault)
        st2 = _storage(tmp_path / "d", faults=FaultInjector(str(flag)))
        assert st2.names() == [] and "c" in st2.unavailable
        reason = st2.unavailable["c"]
        assert "every file is kept" in reason and ("No space left" in reason or "Input/output" in reason)
        with pytest.raises(Unavailable, match="was not opened"):
            st2.get("c")
        with pytest.raises(Unavailable):
            st2.delete("c")
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == files  # nothing renamed, cut or added
        st2.close()
    flag.unlink()
    st3 = _storage(tmp_path / "d", faults=FaultInjector(str(flag)))
    _same(before, _state(st3.get("c")))
    assert "fresh snapshot" in st3.get("c").recovery["action"]


def test_full_disk_during_writes_then_restart_still_full(tmp_path, rng):
    """Writes on a full disk fail (nothing acknowledged, nothing half-applied); a restart while the
    disk is still full replays the log without writing anything and loses nothing."""
    flag = tmp_path / "fault"
    faults = FaultInjector(str(flag))
    st = _storage(tmp_path / "d", faults=faults, snapshot_records=4)
    coll = st.create(CollectionConfig(name="c", dim=DIM, method="itq", n_bits=8))
    X = rng.normal(size=(100, DIM)).astype(np.float32)
    coll.upsert(list(range(50)), X[:50])
    coll.train(X)
    coll.upsert(list(range(50, 60)), X[50:60])
    flag.write_text("ENOSPC")
    with pytest.raises(OSError, match="No space left"):
        coll.upsert([70], X[:1])
    with pytest.raises(OSError):
        coll.train(X)
    assert coll.stats()["points"] == 60
    before = _state(coll)
    _crash(st)
    st2 = _storage(tmp_path / "d", faults=faults)  # the disk is still full
    _same(before, _state(st2.get("c")))
    assert not st2.get("c").recovery["problems"]
    with pytest.raises(OSError):
        st2.get("c").upsert([71], X[:1])
    flag.unlink()
    st2.get("c").upsert([71], X[:1])


def test_clean_close_leaves_snapshot(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=60)
    before = _state(coll)
    st.close()
    st2 = _storage(tmp_path)
    assert st2.get("c").recovery["replayed_records"] == 0
    _same(before, _state(st2.get("c")))


# -- limits -------------------------------------------------------------------------------------------------
def test_rerank_candidates_are_capped_and_work_is_bounded(tmp_path, rng):
    """Issue 13.5: candidates beyond the collection size cost nothing more; over the configured limits
    a search is refused naming the limit; re-ranking a trained empty collection answers no results."""
    from hashlearn.service import Limits

    st = _storage(tmp_path, limits=Limits(max_candidates=5000, max_rerank_work=200_000))
    coll = st.create(CollectionConfig(name="c", dim=DIM, n_bits=16))
    Q = rng.normal(size=(100, DIM)).astype(np.float32)
    D, I, _ = coll.search(Q, 5, rerank=True, candidates=5000)  # trained and empty (issue 13.7)
    assert (I == -1).all() and D.shape == (100, 5)
    coll.upsert(list(range(100)), rng.normal(size=(100, DIM)))
    D, I, _ = coll.search(Q, 5, rerank=True, candidates=5000)  # 100 x min(5000, 100) x 8 = 80,000
    full = coll.search(Q, 5, rerank=True, candidates=100)
    np.testing.assert_array_equal(I, full[1])
    with pytest.raises(ValidationError, match="candidates must be an integer from 1 to 5000"):
        coll.search(Q, 5, rerank=True, candidates=5001)
    coll.upsert(list(range(100, 400)), rng.normal(size=(300, DIM)))
    with pytest.raises(ValidationError, match="100 queries x 400 candidates x 8 dimensions = 320,000 values, more "
                                              "than the limit of 200,000"):
        coll.search(Q, 5, rerank=True, candidates=5000)
    coll.search(Q, 5, candidates=5000)  # without rerank the candidates cost nothing


# -- concurrency -------------------------------------------------------------------------------------------
def test_searches_see_whole_batches(tmp_path, rng):
    st = _storage(tmp_path, fsync=False)
    coll = st.create(CollectionConfig(name="c", dim=DIM, n_bits=16))
    X = rng.normal(size=(2000, DIM)).astype(np.float32)
    coll.train(X)
    batch = 25
    stop = threading.Event()
    seen, errors = [], []

    def reader():
        q = X[:1]
        while not stop.is_set():
            try:
                D, I, _ = coll.search(q, 3000)
                seen.append(int((I[0] >= 0).sum()))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(0, 2000, batch):
        ids = list(range(start, start + batch))
        coll.upsert(ids, X[ids])
        if start % 200 == 0:
            coll.delete(ids[:batch])  # a whole batch disappears at once
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(seen) > 5
    assert all(n % batch == 0 for n in seen), sorted(set(n % batch for n in seen))
