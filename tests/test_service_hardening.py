"""Regression tests for the service hardening issue (#13), each against a real ``hashlearn serve``
process, as an attacker or a careless operator would meet it.

Acknowledged writes lost (1-4): a bad hasher upload, a restart on a full disk, a flipped byte in the
log, a second server on the same data directory. Denial of service by a read key (5, 6). Answers of
500 (7-10): each class of the adversarial probe is a case here and must get a 4xx naming the problem.
Smaller (11-13): names with a newline, /health without a key, incomplete bodies, ambiguous framing.

The full disk is simulated by the storage layer's fault hook: the server runs with
``HASHLEARN_SERVICE_FAULT_FILE`` pointing at a file that the test creates (writes then fail with
ENOSPC before touching the disk) and deletes (the disk has room again).
"""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from hashlearn.hashing import make_hasher  # noqa: E402
from hashlearn.io.persist import dumps  # noqa: E402
from hashlearn.service.process import ServerProcess  # noqa: E402
from hashlearn.service.wal import read_records  # noqa: E402

WKEY, RKEY = "hard-write-key-0123", "hard-read-key-0123"
W = {"Authorization": f"Bearer {WKEY}"}
R = {"Authorization": f"Bearer {RKEY}"}
DIM = 6
FAULT_ENV = "HASHLEARN_SERVICE_FAULT_FILE"


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text(f"{WKEY} write\n{RKEY} read\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, keyfile):
    data = tmp_path_factory.mktemp("hard") / "data"
    srv = ServerProcess(data, keyfile, extra_args=["--body-timeout", "2", "--max-rerank-work", "2000000"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _points(c, name, ids, rng):
    X = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    r = c.post(f"/collections/{name}/points", json={"ids": list(ids), "vectors": X.tolist()}, headers=W)
    assert r.status_code == 200, r.text
    return dict(zip(ids, X))


def _all_ids(c, name):
    return set(c.get(f"/collections/{name}/ids", params={"limit": 100000}, headers=R).json()["ids"])


# -- hostile hasher files ----------------------------------------------------------------------------------
_PREFIX = struct.Struct("<8sIIQ")


def _rewrite(data: bytes, mutate, raw_text=None) -> bytes:
    """A hashlearn file with its header changed and every CRC, offset and size made consistent again."""
    magic, version, _crc, hlen = _PREFIX.unpack_from(data)
    header = json.loads(data[_PREFIX.size:_PREFIX.size + hlen])
    blobs = [data[d["offset"]:d["offset"] + d["nbytes"]] for d in header["arrays"]]
    mutate(header)

    def encode(h):
        text = json.dumps(h, separators=(",", ":"))
        return (text.replace(json.dumps(raw_text[0]), raw_text[1]) if raw_text else text).encode()

    for _ in range(8):
        hbytes = encode(header)
        start = -(-(_PREFIX.size + len(hbytes)) // 64) * 64
        offset, body = start, b""
        for d, blob in zip(header["arrays"], blobs):
            d["offset"] = offset
            end = -(-(offset + len(blob)) // 64) * 64
            body += blob + b"\0" * (end - offset - len(blob))
            offset = end
        if header["file_size"] == offset:
            break
        header["file_size"] = offset
    hbytes = encode(header)
    return _PREFIX.pack(magic, version, zlib.crc32(hbytes), len(hbytes)) + hbytes + \
        b"\0" * (start - _PREFIX.size - len(hbytes)) + body


def _fitted(h):
    return h["object"]["state"]["__dict__"]["fitted"]["__dict__"]


def _params(h):
    return h["object"]["state"]["__dict__"]["params"]["__dict__"]


def _simhash_bytes(n_bits=16, **attrs) -> bytes:
    hasher = make_hasher("simhash", n_bits=n_bits, random_state=0).fit(np.random.default_rng(0).normal(size=(30, DIM)))
    for key, value in attrs.items():
        setattr(hasher, key, value)
    return dumps(hasher)


def _hostile_hashers():
    good = _simhash_bytes()
    deep = '{"__dict__":{"a":' * 200_000 + "1" + "}}" * 200_000
    return {
        "projections with 128 columns for n_bits=16": _simhash_bytes(projections_=np.ones((DIM, 128), np.float32)),
        "1-D projections": _simhash_bytes(projections_=np.ones(DIM * 16, np.float32)),
        "projections of the wrong dimension": _simhash_bytes(projections_=np.ones((DIM + 1, 16), np.float32)),
        "header nested 200k deep, valid CRC": _rewrite(good, lambda h: _fitted(h).update(x_="P"), ("P", deep)),
        "fitted.code_bits (a property)": _rewrite(good, lambda h: _fitted(h).update(code_bits=3)),
        "fitted.transform = 1": _rewrite(good, lambda h: _fitted(h).update(transform=1)),
        "params.transform = 1": _rewrite(good, lambda h: _params(h).update(transform=1)),
        '{"__array__": true}': _rewrite(good, lambda h: _fitted(h).update(projections_={"__array__": True})),
        "n_bits = -5": _rewrite(good, lambda h: _params(h).update(n_bits=-5)),
        "an unknown class": _rewrite(good, lambda h: h["object"].update({"class": "os.system"})),
        "a set hasher": dumps(make_hasher("minhash", random_state=0).fit([["a", "b"], ["b", "c"]])),
        "not a hashlearn file": b"HASHLRN\0 but nothing else",
    }


# == acknowledged writes lost ==============================================================================
@pytest.mark.slow
def test_1_bad_hasher_upload_then_kill_loses_nothing(tmp_path, keyfile):
    """A SimHash file whose projections have 128 columns for n_bits=16 used to be logged, fail, and let
    the next upserts reuse its sequence number: after kill -9 those acknowledged ids were gone."""
    rng = np.random.default_rng(1)
    srv = ServerProcess(tmp_path / "data", keyfile).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert c.put("/collections/u", json={"dim": DIM, "n_bits": 16}, headers=W).status_code == 201
            acked = _points(c, "u", [1, 2], rng)
            seq = c.get("/collections/u/stats", headers=R).json()["seq"]
            r = c.put("/collections/u/hasher", content=_simhash_bytes(projections_=np.ones((DIM, 128), np.float32)),
                      headers=W)
            assert r.status_code == 422 and "SimHash" in r.json()["detail"], r.text
            assert c.get("/collections/u/stats", headers=R).json()["seq"] == seq  # nothing logged
            acked.update(_points(c, "u", [3, 4], rng))
        srv.kill()
        srv.start()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            stats = c.get("/collections/u/stats", headers=R).json()
            assert _all_ids(c, "u") == set(acked) and not stats["recovery"]["problems"], stats["recovery"]
    finally:
        srv.stop()


@pytest.mark.slow
def test_2_restart_on_a_full_disk_keeps_every_file(tmp_path, keyfile):
    """Writes on a full disk answer 507; a restart while it is still full must neither declare the
    collection damaged nor rename its logs. If recovery needs to write (here: the newest snapshot is
    damaged), the collection stays closed with the reason in /health and every file is kept, and it
    opens with every acknowledged write once there is room again."""
    rng = np.random.default_rng(2)
    flag = tmp_path / "disk-full"
    srv = ServerProcess(tmp_path / "data", keyfile, extra_args=["--snapshot-records", "3"], env={FAULT_ENV: str(flag)})
    srv.start()
    acked = {}
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert c.put("/collections/f", json={"dim": DIM, "method": "itq", "n_bits": 4}, headers=W).status_code == 201
            for b in range(4):
                acked.update(_points(c, "f", range(b * 10, b * 10 + 10), rng))
            r = c.post("/collections/f/train", json={"vectors": rng.normal(size=(40, DIM)).tolist()}, headers=W)
            assert r.status_code == 200
            acked.update(_points(c, "f", range(100, 110), rng))
            flag.write_text("ENOSPC")
            r = c.post("/collections/f/points", json={"ids": [500], "vectors": [[0.0] * DIM]}, headers=W)
            assert r.status_code == 507 and "refused by the disk" in r.json()["detail"]
            assert c.post("/collections/f/train", json={"vectors": [[1.0] * DIM] * 10}, headers=W).status_code == 507
        srv.kill()
        srv.start()  # still full: nothing to write, so it opens fully
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            rec = c.get("/collections/f/stats", headers=R).json()["recovery"]
            assert _all_ids(c, "f") == set(acked) and not rec["problems"]
        srv.kill()
        folder = tmp_path / "data" / "collections" / "f"
        newest = sorted(folder.glob("snapshot-*.hlrn"))[-1]
        newest.write_bytes(newest.read_bytes()[:200])  # recovery will need a fresh snapshot ...
        files = {p.name: p.stat().st_size for p in folder.iterdir()}
        srv.start()  # ... on a full disk
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            r = c.get("/collections/f/stats", headers=R)
            assert r.status_code == 503 and "every file is kept" in r.json()["detail"]
            health = c.get("/health", headers=R).json()
            assert "No space left" in health["unavailable"]["f"]
        assert {p.name: p.stat().st_size for p in folder.iterdir()} == files
        srv.kill()
        flag.unlink()
        srv.start()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert _all_ids(c, "f") == set(acked)
            points = c.post("/collections/f/points/get", json={"ids": sorted(acked)}, headers=R).json()["points"]
            for p in points:
                np.testing.assert_array_equal(np.float32(p["vector"]), acked[p["id"]])
    finally:
        srv.stop()


@pytest.mark.slow
def test_3_flipped_byte_loses_only_its_own_record(tmp_path, keyfile):
    """A bit flip in the middle of the log used to cut the log there and report nothing."""
    rng = np.random.default_rng(3)
    srv = ServerProcess(tmp_path / "data", keyfile).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            c.put("/collections/b", json={"dim": DIM, "n_bits": 16}, headers=W)
            batches = [list(range(b * 10, b * 10 + 10)) for b in range(40)]
            for ids in batches:
                _points(c, "b", ids, rng)
        srv.kill()
        wal = sorted((tmp_path / "data" / "collections" / "b").glob("wal-*.log"))[-1]
        records, _ = read_records(wal)
        data, pos, victim = bytearray(wal.read_bytes()), 0, None
        for i, (seq, op, body) in enumerate(records):
            if i == 12:
                victim = (seq, pos)
            pos += 17 + len(body)
        data[victim[1] + 40] ^= 0x04
        wal.write_bytes(bytes(data))
        srv.start()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            lost_ids = set(batches[victim[0] - 2])  # record 1 is the hasher, record 2 the first batch
            assert _all_ids(c, "b") == set(range(400)) - lost_ids
            rec = c.get("/collections/b/stats", headers=R).json()["recovery"]
            assert rec["lost_records"] == 1 and any(f"record {victim[0]} missing" in p for p in rec["problems"])
            assert "fresh snapshot" in rec["action"]
            health = c.get("/health", headers=R).json()
            assert str(tmp_path) not in json.dumps(health) and health["recovery"]["b"]["problems"]
            assert set(c.get("/health").json()) == {"status", "version"}  # without a key: liveness only
        assert list(wal.parent.glob(f"damaged-*-{wal.name}"))  # kept for inspection
    finally:
        srv.stop()


def test_4_second_server_on_the_same_data_directory_is_refused(server, client):
    second = ServerProcess(server.data_dir, server.api_keys, log_path=server.data_dir.parent / "second.log")
    with pytest.raises(RuntimeError, match="in use by another hashlearn server"):
        second.start(timeout=60)
    assert client.get("/health").status_code == 200  # the first one goes on serving


# == denial of service by a read key ========================================================================
def test_5_candidates_capped_and_rerank_work_bounded(client):
    rng = np.random.default_rng(5)
    client.put("/collections/dos", json={"dim": DIM, "n_bits": 16}, headers=W)
    client.post("/collections/dos/train", json={"vectors": rng.normal(size=(20, DIM)).tolist()}, headers=W)
    _points(client, "dos", range(100), rng)
    Q = rng.normal(size=(1000, DIM)).tolist()
    t0 = time.perf_counter()
    r = client.post("/collections/dos/search", json={"vectors": Q, "rerank": True, "candidates": 10000}, headers=R)
    assert r.status_code == 200 and time.perf_counter() - t0 < 20  # 1000 x 100 points, not x 10,000
    assert len(r.json()["ids"][0]) == 10
    r = client.post("/collections/dos/search", json={"vectors": Q[:50], "rerank": True, "candidates": 100000}, headers=R)
    assert r.status_code == 422 and "from 1 to 10000" in r.json()["detail"]
    _points(client, "dos", range(100, 2100), rng)  # 1000 x 2000 x 6 = 12M values > 2M (this server's limit)
    r = client.post("/collections/dos/search", json={"vectors": Q, "rerank": True, "candidates": 10000}, headers=R)
    assert r.status_code == 422 and "more than the limit of 2,000,000" in r.json()["detail"]


def _raw(server, request: bytes, *, timeout: float) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes (or ``timeout``); returns (answer, seconds)."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return out, time.perf_counter() - t0


def test_6_key_checked_before_the_body_is_read(server):
    head = (b"POST /collections/dos/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52000000\r\n\r\n")
    answer, seconds = _raw(server, head + b'{"ids": [1], "vectors": [[', timeout=10)
    assert answer.startswith(b"HTTP/1.1 401") and seconds < 5, (answer[:200], seconds)
    assert b"missing API key" in answer


# == answers of 500 =========================================================================================
def test_7_rerank_search_on_a_trained_empty_collection(client):
    client.put("/collections/empty", json={"dim": DIM, "method": "itq", "n_bits": 4}, headers=W)
    X = np.random.default_rng(7).normal(size=(30, DIM)).tolist()
    assert client.post("/collections/empty/train", json={"vectors": X}, headers=W).status_code == 200
    r = client.post("/collections/empty/search", json={"vectors": [[0.1] * DIM], "rerank": True}, headers=R)
    assert r.status_code == 200 and r.json() == {"ids": [[]], "distances": [[]], "metric": "l2"}


def test_8_payloads_that_reads_could_not_return_are_refused(client):
    client.put("/collections/pay", json={"dim": DIM, "n_bits": 16}, headers=W)
    deep = {"a": 1}
    for _ in range(300):
        deep = {"a": deep}
    cases = [
        (json.dumps({"ids": [1], "vectors": [[0.0] * DIM], "payloads": [deep]}).encode(), "nested deeper than 32"),
        (b'{"ids": [1], "vectors": [[0,0,0,0,0,0]], "payloads": [{"a": "\\ud800"}]}', "lone surrogate"),
        (b'{"ids": [1], "vectors": [[0,0,0,0,0,0]], "payloads": [{"\\udc00": 1}]}', "lone surrogate"),
        (b'{"ids": [1], "vectors": [[0,0,0,0,0,0]], "payloads": [{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
         "nested too deeply"),
        (b'{"ids": [1], "vectors": [[0,0,0,0,0,0]], "payloads": [{"a": ' + b"9" * 5000 + b"}]}", "digits"),
    ]
    for body, needle in cases:
        r = client.post("/collections/pay/points", content=body, headers={**W, "content-type": "application/json"})
        assert r.status_code == 422 and needle in r.json()["detail"], (body[:80], r.status_code, r.text[:300])
    assert client.get("/collections/pay/stats", headers=R).json()["points"] == 0
    ok = {"ids": [1], "vectors": [[0.0] * DIM], "payloads": [{"t": "caf\u00e9 \u2603", "n": [1, {"x": None}]}]}
    assert client.post("/collections/pay/points", json=ok, headers=W).status_code == 200
    assert client.get("/collections/pay/points/1", headers=R).json()["payload"] == ok["payloads"][0]
    assert client.post("/collections/pay/search", json={"vectors": [[0.0] * DIM]}, headers=R).status_code == 200


def test_9_hostile_hasher_uploads_are_refused_before_anything_changes(client):
    client.put("/collections/hh", json={"dim": DIM, "n_bits": 16}, headers=W)
    _points(client, "hh", range(20), np.random.default_rng(9))
    before = client.get("/collections/hh/stats", headers=R).json()
    for what, data in _hostile_hashers().items():
        r = client.put("/collections/hh/hasher", content=data, headers={**W, "content-type": "application/octet-stream"})
        assert r.status_code == 422, (what, r.status_code, r.text[:300])
        assert "/tmp" not in r.json()["detail"] and "Traceback" not in r.text, (what, r.text)
    after = client.get("/collections/hh/stats", headers=R).json()
    assert (after["seq"], after["code_bits"], after["points"]) == (before["seq"], before["code_bits"], before["points"])
    r = client.post("/collections/hh/search", json={"vectors": [[0.0] * DIM], "k": 3}, headers=R)
    assert r.status_code == 200 and len(r.json()["ids"][0]) == 3


# == smaller ================================================================================================
def test_11_name_with_a_final_newline_is_refused(client, server):
    r = client.put("/collections/abc%0A", json={"dim": 3}, headers=W)
    assert r.status_code == 422 and "invalid collection name" in r.json()["detail"]
    assert not any("\n" in p.name for p in (server.data_dir / "collections").iterdir())


def test_12_health_without_a_key_is_liveness_only(client):
    bare = client.get("/health")
    assert bare.status_code == 200 and set(bare.json()) == {"status", "version"}
    assert set(client.get("/health", headers={"Authorization": "Bearer not-a-key-0000"}).json()) == {"status", "version"}
    full = client.get("/health", headers=R).json()
    assert {"collections", "recovery", "unavailable"} <= set(full)


def test_13_incomplete_body_and_ambiguous_framing(server):
    auth = f"Authorization: Bearer {WKEY}\r\n".encode()
    head = b"POST /collections/pay/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth
    answer, seconds = _raw(server, head + b"Content-Length: 1000\r\n\r\n{\"ids\"", timeout=15)
    assert answer.startswith(b"HTTP/1.1 408") and seconds < 12, (answer[:200], seconds)  # then closed
    both = head + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n0\r\n\r\n"
    answer, _ = _raw(server, both, timeout=10)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
