"""Storage engine of the service: write-ahead log framing, recovery, snapshots, search against
brute force, consistency under concurrent writes. In-process, no HTTP (see test_service_http.py)."""

from __future__ import annotations

import errno
import os
import threading

import numpy as np
import pytest

from hashlearn.codes import hamming_distances
from hashlearn.errors import ValidationError
from hashlearn.hashing import make_hasher
from hashlearn.io import save
from hashlearn.service import CollectionConfig, Conflict, NotFound, NotTrained, Storage, read_records
from hashlearn.service.storage import check_collection_name
from hashlearn.service.wal import WriteAheadLog

DIM = 8


def _storage(path, **kw):
    kw.setdefault("snapshot_records", 1000)
    return Storage(path, **kw)


def _filled(path, rng, n=200, train=True, **kw):
    st = _storage(path, **kw)
    coll = st.create(CollectionConfig(name="c", dim=DIM, n_bits=32))
    X = rng.normal(size=(n, DIM)).astype(np.float32)
    if train:
        coll.train(X)
    for start in range(0, n, 50):
        ids = list(range(start, min(n, start + 50)))
        coll.upsert(ids, X[ids], [{"g": i % 3, "tag": f"t{i}"} for i in ids])
    return st, coll, X


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


def test_wal_corrupt_byte_stops_replay(tmp_path):
    path = tmp_path / "wal.log"
    log = WriteAheadLog(path)
    for seq in range(1, 6):
        log.append(seq, 1, bytes([seq]) * 40)
    log.close()
    data = bytearray(path.read_bytes())
    rec = 8 + 9 + 40
    data[2 * rec + 20] ^= 0x55  # inside record 3
    path.write_bytes(bytes(data))
    records, rep = read_records(path)
    assert [s for s, _, _ in records] == [1, 2]
    assert "checksum mismatch" in rep.stop_reason and rep.good_bytes == 2 * rec


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
@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", "a b", ".hidden", "-x", "x" * 65, "é", "a\x00"])
def test_collection_names_refused(name):
    with pytest.raises(ValidationError, match="invalid collection name"):
        check_collection_name(name)


def test_create_validation_and_conflicts(tmp_path):
    st = _storage(tmp_path)
    with pytest.raises(ValidationError, match="dim"):
        st.create(CollectionConfig(name="a", dim=0))
    with pytest.raises(Exception, match="unknown method 'nope'"):
        st.create(CollectionConfig(name="a", dim=4, method="nope"))
    with pytest.raises(ValidationError, match="not a vector hasher"):
        st.create(CollectionConfig(name="a", dim=4, method="minhash"))
    with pytest.raises(ValidationError, match="does not accept parameter"):
        st.create(CollectionConfig(name="a", dim=4, params={"bogus": 1}))
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
    assert coll.stats()["points"] == 20 and coll.state.seq == 2  # nothing invalid was logged


def test_search_matches_brute_force(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=300)
    coll.delete(list(range(0, 300, 7)))
    coll.upsert([5, 1000], rng.normal(size=(2, DIM)), [{"g": 1, "tag": "new"}, None])  # replace + insert
    live = np.sort(coll.state.ids)
    V = coll.state.vectors[coll.state.positions(live)]
    Q = rng.normal(size=(6, DIM)).astype(np.float32)
    hasher = coll.state.hasher
    ref = hamming_distances(hasher.transform(Q), hasher.transform(V))
    # Hamming top-k, ties by smaller id
    D, I = coll.search(Q, 10)
    for q in range(6):
        order = np.lexsort((live, ref[q]))[:10]
        assert I[q].tolist() == live[order].tolist() and D[q].tolist() == ref[q][order].tolist()
    # rerank: exact squared L2 over the best `candidates` Hamming matches
    D, I = coll.search(Q, 5, rerank=True, candidates=40)
    for q in range(6):
        cand = live[np.lexsort((live, ref[q]))[:40]]
        l2 = ((coll.state.vectors[coll.state.positions(cand)] - Q[q]) ** 2).sum(1)
        order = np.lexsort((cand, l2))[:5]
        assert I[q].tolist() == cand[order].tolist()
        np.testing.assert_allclose(D[q], l2[order], rtol=1e-6)
    # filter: top-k among the points whose payload matches
    D, I = coll.search(Q, 8, filter={"g": 1})
    match = np.array([i for i in live if (coll.state.payloads.get(int(i)) or {}).get("g") == 1])
    refm = hamming_distances(hasher.transform(Q), hasher.transform(coll.state.vectors[coll.state.positions(match)]))
    for q in range(6):
        order = np.lexsort((match, refm[q]))[:8]
        assert I[q].tolist() == match[order].tolist()
    D, I = coll.search(Q, 3, filter={"g": "no such value"})
    assert (I == -1).all()
    # several keys, a list value (checked by scan), booleans apart from numbers, after deletes/replacements
    coll.upsert([2000, 2001, 2002, 2003], rng.normal(size=(4, DIM)),
                [{"g": 1, "f": True, "l": [1, 2]}, {"g": 1, "f": 1, "l": [1, 2]}, {"g": 1, "f": True}, None])
    for flt, want in [({"g": 1, "f": True}, {2000, 2002}), ({"f": 1}, {2001}), ({"g": 1, "l": [1, 2]}, {2000, 2001}),
                      ({"l": [1, 2]}, {2000, 2001}), ({"f": True, "l": [2, 1]}, set())]:
        D, I = coll.search(Q[:1], 50, filter=flt)
        got = set(I[0][I[0] >= 0].tolist())
        assert got == want, (flt, got)
    coll.upsert([2000], rng.normal(size=(1, DIM)), [{"g": 2}])  # replacing drops the old payload's terms
    coll.delete([2002])
    D, I = coll.search(Q[:1], 50, filter={"f": True})
    assert set(I[0][I[0] >= 0].tolist()) == set()
    st2 = _storage(tmp_path)  # the inverted index is rebuilt on load
    D2, I2 = st2.get("c").search(Q, 8, filter={"g": 1})
    np.testing.assert_array_equal(I2, coll.search(Q, 8, filter={"g": 1})[1])
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
    state = coll.state
    assert sorted(state.ids.tolist()) == sorted(ref) and len(state.pos) == state.n == len(ref)
    for i, row in state.pos.items():
        assert state.ids[row] == i
        np.testing.assert_array_equal(state.vectors[row], ref[i])
    np.testing.assert_array_equal(state.codes, state.hasher.transform(state.vectors))
    assert not state.ids_increasing  # deletes in the middle moved rows
    live = np.array(sorted(ref))
    Q = rng.normal(size=(5, DIM)).astype(np.float32)
    dist = hamming_distances(state.hasher.transform(Q), state.hasher.transform(np.stack([ref[i] for i in live])))
    D, I = coll.search(Q, 15)
    for q in range(5):
        order = np.lexsort((live, dist[q]))[:15]
        assert I[q].tolist() == live[order].tolist()
    coll.snapshot()
    assert state.ids_increasing and np.all(np.diff(state.ids) > 0)
    D2, I2 = coll.search(Q, 15)
    np.testing.assert_array_equal(I2, I)
    np.testing.assert_array_equal(D2, D)
    st2 = _storage(tmp_path)  # recovery: the snapshot plus the log after it give the same state
    again = st2.get("c").state
    assert again.ids.tolist() == state.ids.tolist()
    np.testing.assert_array_equal(again.vectors, state.vectors)


def test_untrained_collection_stores_then_trains(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=100, train=False)
    with pytest.raises(NotTrained):
        coll.search(X[:1], 3)
    coll.train(X[:60])
    D, I = coll.search(X[:5], 1)
    assert (D[:, 0] == 0).all()  # every stored vector was encoded at training time


def test_uploaded_hasher_is_used(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=50, train=False)
    hasher = make_hasher("itq", n_bits=8, random_state=3).fit(X)
    from hashlearn.service.storage import hasher_from_bytes

    save(hasher, tmp_path / "h.hlrn")
    loaded = hasher_from_bytes((tmp_path / "h.hlrn").read_bytes(), tmp_path, DIM)
    coll.set_hasher(loaded)
    np.testing.assert_array_equal(coll.state.codes, hasher.transform(coll.state.vectors))
    with pytest.raises(ValidationError, match="fitted on 8-dimensional"):
        hasher_from_bytes((tmp_path / "h.hlrn").read_bytes(), tmp_path, 9)
    with pytest.raises(Exception, match="not a hashlearn file"):
        hasher_from_bytes(b"garbage" * 10, tmp_path, DIM)
    # survives a restart (the hasher is in the log)
    st2 = _storage(tmp_path)
    np.testing.assert_array_equal(st2.get("c").state.codes, hasher.transform(coll.state.vectors))


# -- recovery -------------------------------------------------------------------------------------------
def _state(coll):
    ids = np.sort(coll.state.ids)
    return ids, coll.state.vectors[coll.state.positions(ids)], {i: coll.state.payloads.get(int(i)) for i in ids}


def _same(a, b):
    assert a[0].tolist() == b[0].tolist()
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


def test_restart_replays_log_and_snapshots(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=400, snapshot_records=3)
    coll.delete([1, 2, 3])
    before = _state(coll)
    Q = X[:4]
    D0, I0 = coll.search(Q, 5, rerank=True)
    # no close(): as after a crash
    files = sorted(p.name for p in (tmp_path / "collections" / "c").iterdir())
    assert sum(f.startswith("snapshot-") for f in files) == 2  # the two newest are kept
    st2 = _storage(tmp_path, snapshot_records=3)
    c2 = st2.get("c")
    _same(before, _state(c2))
    D1, I1 = c2.search(Q, 5, rerank=True)
    np.testing.assert_array_equal(I0, I1)
    rep = c2.recovery
    assert rep["snapshot"] is not None and not rep["problems"] and rep["points"] == 397


def test_torn_log_tail_is_cut_and_writes_continue(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=100)
    before = _state(coll)
    coll.upsert([500], X[:1])  # the record we tear
    wal = coll.wal.path
    coll.wal.close()
    size = wal.stat().st_size
    with open(wal, "r+b") as fh:
        fh.truncate(size - 5)
    st2 = _storage(tmp_path)
    c2 = st2.get("c")
    _same(before, _state(c2))
    seg = c2.recovery["segments"][-1]
    assert "cut short" in seg["stop_reason"] and seg["discarded_bytes"] > 0
    assert "cut the torn log tail" in c2.recovery["action"]
    c2.upsert([501], X[:1])
    st3 = _storage(tmp_path)
    assert 501 in st3.get("c").state.ids and 500 not in st3.get("c").state.ids
    assert not st3.get("c").recovery["problems"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_newest_snapshot_falls_back_to_previous(tmp_path, rng, damage):
    st, coll, X = _filled(tmp_path, rng, n=300, snapshot_records=2)
    before = _state(coll)
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
    assert rep["snapshot"]["file"] == snaps[0].name and rep["replayed_records"] >= 1
    assert "fresh snapshot" in rep["action"]
    # the damaged file is kept aside and the next start is clean
    assert list((tmp_path / "collections" / "c").glob("damaged-*"))
    st3 = _storage(tmp_path, snapshot_records=2)
    _same(before, _state(st3.get("c")))
    assert not st3.get("c").recovery["skipped_snapshots"]


def test_clean_close_leaves_snapshot(tmp_path, rng):
    st, coll, X = _filled(tmp_path, rng, n=60)
    before = _state(coll)
    st.close()
    st2 = _storage(tmp_path)
    assert st2.get("c").recovery["replayed_records"] == 0
    _same(before, _state(st2.get("c")))


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
                D, I = coll.search(q, 3000)
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
