"""The HTTP service, end to end: a real ``hashlearn serve`` process on a loopback port.

Auth (401/403), validation (4xx naming the problem), request limits (413), results against an
in-process reference, and crash safety: SIGKILL in the middle of a write stream, then every
acknowledged write must be there after restart, and nothing half-applied.
"""

from __future__ import annotations

import json
import resource
import signal
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from hashlearn.service import CollectionConfig, Storage  # noqa: E402
from hashlearn.service.process import ServerProcess  # noqa: E402

WKEY, RKEY = "write-key-0123456789", "read-key-0123456789"
W = {"Authorization": f"Bearer {WKEY}"}
R = {"Authorization": f"Bearer {RKEY}"}
DIM = 6


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text(f"# test keys\n{WKEY} write\n{RKEY} read\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, keyfile):
    data = tmp_path_factory.mktemp("srv") / "data"
    srv = ServerProcess(data, keyfile, extra_args=["--max-body-mb", "1", "--max-batch", "500", "--max-queries", "50",
                                                   "--snapshot-records", "7"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _create(client, name, **kw):
    body = {"dim": DIM, "n_bits": 32, **kw}
    r = client.put(f"/collections/{name}", json=body, headers=W)
    assert r.status_code == 201, r.text
    return r.json()


def test_health_and_openapi(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    assert "/collections/{name}/search" in schema["paths"]
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())


def test_auth_roles(client):
    assert client.get("/collections").status_code == 401
    assert client.get("/collections", headers={"Authorization": "Bearer wrong-key-123456"}).status_code == 401
    assert client.get("/collections", headers={"Authorization": "Basic abc"}).status_code in (401, 403)
    assert client.get("/collections", headers=R).status_code == 200
    r = client.put("/collections/ro", json={"dim": 3}, headers=R)
    assert r.status_code == 403 and "read role" in r.json()["detail"]
    assert client.put("/collections/ro", json={"dim": 3}).status_code == 401
    assert client.get("/collections/ro", headers=R).status_code == 404


def test_collection_lifecycle_and_names(client):
    d = _create(client, "life")  # simhash learns nothing from data: searchable at once
    assert d["trained"] is True and d["points"] == 0 and d["code_bits"] == 32
    r = client.post("/collections/life/search", json={"vectors": [[0.5] * DIM]}, headers=R)
    assert r.status_code == 200 and r.json() == {"ids": [[]], "distances": [[]], "metric": "hamming"}
    d = _create(client, "life-itq", method="itq", n_bits=4)
    assert d["trained"] is False
    assert client.delete("/collections/life-itq", headers=W).status_code == 200
    assert client.put("/collections/life", json={"dim": DIM}, headers=W).status_code == 409
    assert "life" in [c["name"] for c in client.get("/collections", headers=R).json()["collections"]]
    for bad in ["%2E%2E", "a.b", "-x", "x" * 65, "%2Fetc"]:
        r = client.put(f"/collections/{bad}", json={"dim": 3}, headers=W)
        assert r.status_code in (404, 422), (bad, r.status_code)
        if r.status_code == 422:
            assert "invalid collection name" in r.json()["detail"]
    r = client.put("/collections/m", json={"dim": 3, "method": "nope"}, headers=W)
    assert r.status_code == 422 and "unknown method 'nope'" in r.json()["detail"]
    # the list names only what a collection can use
    usable = r.json()["detail"].split("can use: ")[1].split(", ")
    assert "simhash" in usable and "itq" in usable and "minhash" not in usable and "rreh" not in usable
    r = client.put("/collections/m", json={"dim": 3, "method": "minhash"}, headers=W)
    assert r.status_code == 422 and "not a vector hasher" in r.json()["detail"]
    r = client.put("/collections/m", json={"dim": 3, "method": "itq", "n_bits": 8}, headers=W)
    assert r.status_code == 422 and "n_bits=8 exceeds dim=3" in r.json()["detail"]
    assert client.get("/collections/m", headers=R).status_code == 404
    r = client.put("/collections/m", json={"dim": 3, "bogus": 1}, headers=W)
    assert r.status_code == 422 and "bogus" in r.json()["detail"]
    assert client.delete("/collections/life", headers=W).status_code == 200
    assert client.get("/collections/life", headers=R).status_code == 404
    assert client.delete("/collections/life", headers=W).status_code == 404


def test_validation_answers_name_the_problem(client):
    _create(client, "val", method="itq", n_bits=4)
    X = np.random.default_rng(0).normal(size=(20, DIM))
    assert client.post("/collections/val/search", json={"vectors": X[:1].tolist()}, headers=R).status_code == 409
    assert client.post("/collections/val/train", json={"vectors": X.tolist()}, headers=W).status_code == 200
    ok = {"ids": [1], "vectors": X[:1].tolist()}
    cases = [
        (b'{"ids":[1],"vectors":[[NaN,0,0,0,0,0]]}', "is nan"),
        (b'{"ids":[1],"vectors":[[Infinity,0,0,0,0,0]]}', "is inf"),
        (b'{"ids":[1],"vectors":[[1e39,0,0,0,0,0]]}', "float32"),
        (json.dumps({"ids": [1], "vectors": [[1, 2, 3]]}).encode(), "dimension 3"),
        (json.dumps({"ids": [1], "vectors": [["a"] * DIM]}).encode(), "vectors.0.0"),
        (json.dumps({"ids": [True], "vectors": X[:1].tolist()}).encode(), "ids.0"),
        (json.dumps({"ids": ["1"], "vectors": X[:1].tolist()}).encode(), "ids.0"),
        (json.dumps({"ids": [-5], "vectors": X[:1].tolist()}).encode(), "2^63-1"),
        (json.dumps({"ids": [2**63], "vectors": X[:1].tolist()}).encode(), "2^63-1"),
        (json.dumps({"ids": [1, 1], "vectors": X[:2].tolist()}).encode(), "more than once"),
        (json.dumps({"ids": [1, 2], "vectors": X[:1].tolist()}).encode(), "2 entries"),
        (json.dumps({**ok, "extra": 1}).encode(), "extra"),
        (json.dumps({**ok, "payloads": [["x"]]}).encode(), "payloads"),
        (json.dumps({**ok, "payloads": [{"x": "y" * 20000}]}).encode(), "limit"),
        (json.dumps({"ids": list(range(501)), "vectors": [[0.0] * DIM] * 501}).encode(), "limit of 500"),
        (b"not json", "the request body is not valid JSON (Expecting value at position 0)"),
        (b'{"ids": [1], "vectors": [[1,', "not valid JSON"),
        (b"[]", "body"),
    ]
    for body, needle in cases:
        r = client.post("/collections/val/points", content=body, headers={**W, "content-type": "application/json"})
        assert r.status_code == 422, (body[:60], r.status_code, r.text)
        assert needle.lower() in r.json()["detail"].lower(), (needle, r.json()["detail"])
    for body, needle in [({"vectors": X[:1].tolist(), "k": 0}, "k"), ({"vectors": X[:1].tolist(), "k": 10**6}, "k"),
                         ({"vectors": [[0.0] * DIM] * 51}, "limit of 50"), ({"vectors": [[]]}, "dimension 0"),
                         ({"vectors": X[:1].tolist(), "filter": [1]}, "filter")]:
        r = client.post("/collections/val/search", json=body, headers=R)
        assert r.status_code == 422 and needle in r.json()["detail"], (body.get("k"), r.text)
    assert client.get("/collections/val/points/abc", headers=R).status_code == 422
    assert client.get("/collections/val/points/99", headers=R).status_code == 404
    # nothing invalid reached the collection
    assert client.get("/collections/val/stats", headers=R).json()["points"] == 0


def test_request_size_limit(client):
    _create(client, "big")
    big = b'{"ids":[1],"vectors":[[' + b"0.0," * 400000 + b'0.0]]}'
    r = client.post("/collections/big/points", content=big, headers={**W, "content-type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["detail"]

    def chunks():  # no content-length: the limit applies to the streamed bytes
        yield b'{"ids":[1],"vectors":[['
        for _ in range(100):
            yield b"0.0," * 5000
        yield b"0]]}"

    r = client.post("/collections/big/points", content=chunks(), headers={**W, "content-type": "application/json"})
    assert r.status_code == 413


def test_results_match_in_process_reference(client, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, DIM))
    _create(client, "ref", metric="l2", rerank_candidates=30)
    ref = Storage(tmp_path).create(CollectionConfig(name="ref", dim=DIM, n_bits=32, rerank_candidates=30))
    for start in range(0, 300, 100):
        ids = list(range(start, start + 100))
        payloads = [{"even": i % 2 == 0} for i in ids]
        r = client.post("/collections/ref/points", json={"ids": ids, "vectors": X[ids].tolist(), "payloads": payloads},
                        headers=W)
        assert r.status_code == 200 and r.json()["upserted"] == 100
        ref.upsert(ids, X[ids], payloads)
    assert client.post("/collections/ref/points/delete", json={"ids": [0, 5, 7777]}, headers=W).json()["deleted"] == 2
    ref.delete([0, 5])
    Q = rng.normal(size=(5, DIM))
    for kw in ({}, {"rerank": True}, {"filter": {"even": True}}, {"rerank": True, "candidates": 10}):
        r = client.post("/collections/ref/search", json={"vectors": Q.tolist(), "k": 7, **kw}, headers=R)
        assert r.status_code == 200, r.text
        got = r.json()
        D, I, metric = ref.search(Q, 7, rerank=kw.get("rerank", False), candidates=kw.get("candidates"),
                                  filter=kw.get("filter"))
        assert got["ids"] == I.tolist() and got["metric"] == metric == ("l2" if kw.get("rerank") else "hamming")
        np.testing.assert_array_equal(got["distances"], D.astype(float))
        if not kw.get("rerank"):  # Hamming distances are integers in the JSON
            assert all(type(d) is int for row in got["distances"] for d in row)
        if kw.get("rerank"):  # distances are the exact squared L2 of the returned points
            V = X[np.array(got["ids"])]
            np.testing.assert_allclose(got["distances"], ((V - Q[:, None, :].astype(np.float32)) ** 2).sum(-1), rtol=1e-4)
        if kw.get("filter"):
            assert all(i % 2 == 0 for row in got["ids"] for i in row)
    p = client.get("/collections/ref/points/42", headers=R).json()
    assert p["payload"] == {"even": True}
    np.testing.assert_allclose(p["vector"], X[42].astype(np.float32))


@pytest.mark.parametrize("method, n_bits", [("simhash", 32), ("itq", 5)])
def test_service_and_hashindex_rank_identically(client, tmp_path, method, n_bits):
    """One storage path: the same data through the HTTP service and through HashIndex gives identical
    ids and distances, Hamming and re-ranked L2, after replacements and deletes (which swap rows in the
    service's store) and across snapshots (every 7 writes here, which re-sort them)."""
    from threadpoolctl import threadpool_limits

    from hashlearn import HashIndex
    from hashlearn.hashing import make_hasher
    from hashlearn.io import save

    rng = np.random.default_rng(5)
    X = (rng.normal(size=(600, DIM)) * 3).astype(np.float32)
    X[300:320] = X[:20]  # exact duplicates: distance ties, broken by id on both sides
    Q = np.concatenate([X[:5], rng.normal(size=(15, DIM)).astype(np.float32)])
    name = f"same-{method}"
    _create(client, name, method=method, n_bits=n_bits, rerank_candidates=40)
    index = HashIndex(make_hasher(method, n_bits=n_bits, random_state=0), rerank=40)
    with threadpool_limits(1):  # the server runs single-threaded BLAS too
        if method == "simhash":  # fitted by the service at creation, from nothing but dim and seed
            index.train(X[:50])
        else:
            index.train(X[:200])
            save(index.hasher, tmp_path / "h.hlrn")
            r = client.put(f"/collections/{name}/hasher", content=(tmp_path / "h.hlrn").read_bytes(), headers=W)
            assert r.status_code == 200, r.text
        ids = rng.permutation(np.arange(10**6, 10**6 + 600))
        for lo in range(0, 600, 100):
            batch = ids[lo:lo + 100]
            r = client.post(f"/collections/{name}/points", json={"ids": batch.tolist(), "vectors": X[lo:lo + 100].tolist()},
                            headers=W)
            assert r.status_code == 200, r.text
            index.add(X[lo:lo + 100], batch)
        gone = ids[::7]
        assert client.post(f"/collections/{name}/points/delete", json={"ids": gone.tolist()}, headers=W).json()["deleted"] == len(gone)
        index.remove(gone)
        again = ids[1:200:5]  # replacements: new vectors for stored ids
        V = rng.normal(size=(len(again), DIM)).astype(np.float32)
        client.post(f"/collections/{name}/points", json={"ids": again.tolist(), "vectors": V.tolist()}, headers=W)
        index.remove(again)
        index.add(V, again)
        for k, rerank, cand in [(10, False, None), (10, True, None), (7, True, 15), (30, True, 400), (700, False, None)]:
            body = {"vectors": Q.tolist(), "k": k, "rerank": rerank}
            if cand:
                body["candidates"] = cand
            got = client.post(f"/collections/{name}/search", json=body, headers=R).json()
            D, I = index.search(Q, k, rerank=(cand or 40) if rerank else 0)
            assert got["metric"] == ("l2" if rerank else "hamming")
            for q in range(len(Q)):
                found = I[q] >= 0
                assert got["ids"][q] == I[q][found].tolist(), (k, rerank, q)
                assert got["distances"][q] == D[q][found].tolist(), (k, rerank, q)  # bit for bit


def test_upload_fitted_hasher(client, tmp_path):
    from hashlearn.hashing import make_hasher
    from hashlearn.io import save

    X = np.random.default_rng(2).normal(size=(100, DIM)).astype(np.float32)
    hasher = make_hasher("pcah", n_bits=4, random_state=0).fit(X)
    save(hasher, tmp_path / "h.hlrn")
    _create(client, "up", method="pcah", n_bits=4)
    r = client.put("/collections/up/hasher", content=(tmp_path / "h.hlrn").read_bytes(),
                   headers={**W, "content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert client.get("/collections/up", headers=R).json()["code_bits"] == 4
    r = client.put("/collections/up/hasher", content=b"not a hashlearn file",
                   headers={**W, "content-type": "application/octet-stream"})
    assert r.status_code == 422 and "not a hashlearn file" in r.json()["detail"]
    assert str(tmp_path) not in r.text


# -- crash safety ------------------------------------------------------------------------------------
class _Writer(threading.Thread):
    """Streams upserts (and some deletes) and remembers what was acknowledged."""

    def __init__(self, url, name, start_id, rng):
        super().__init__(daemon=True)
        self.url, self.name, self.next_id, self.rng = url, name, start_id, rng
        self.acked: dict[int, tuple] = {}  # id -> (vector, payload)
        self.acked_deleted: set[int] = set()
        self.in_flight: tuple | None = None
        self.error = None

    def run(self):
        with httpx.Client(base_url=self.url, timeout=30) as c:
            batch_no = 0
            while True:
                ids = list(range(self.next_id, self.next_id + 20))
                X = self.rng.normal(size=(20, DIM)).astype(np.float32)
                payloads = [{"batch": batch_no, "i": i} for i in ids]
                op = ("upsert", ids, X, payloads)
                if batch_no % 5 == 4 and self.acked:
                    victims = sorted(self.acked)[:10]
                    op = ("delete", victims)
                self.in_flight = op
                try:
                    if op[0] == "upsert":
                        r = c.post(f"/collections/{self.name}/points",
                                   json={"ids": ids, "vectors": X.tolist(), "payloads": payloads}, headers=W)
                    else:
                        r = c.post(f"/collections/{self.name}/points/delete", json={"ids": op[1]}, headers=W)
                except httpx.HTTPError:
                    return  # the server died with this request in flight
                if r.status_code != 200:
                    self.error = r.text
                    return
                if op[0] == "upsert":
                    for i, x, p in zip(ids, X, payloads):
                        self.acked[i] = (x, p)
                    self.next_id += 20
                else:
                    for i in op[1]:
                        self.acked.pop(i)
                        self.acked_deleted.add(i)
                self.in_flight = None
                batch_no += 1


def _dump(url, name):
    """Every point of the collection (via search with a huge k and get by id)."""
    with httpx.Client(base_url=url, timeout=60) as c:
        stats = c.get(f"/collections/{name}/stats", headers=R).json()
        page = c.get(f"/collections/{name}/ids", params={"offset": 0, "limit": 100000}, headers=R).json()
        ids = page["ids"]
        assert len(ids) == page["total"] == stats["points"]
        points = {}
        for start in range(0, len(ids), 500):
            got = c.post(f"/collections/{name}/points/get", json={"ids": ids[start:start + 500]}, headers=R).json()
            for p in got["points"]:
                points[p["id"]] = (np.asarray(p["vector"], np.float32), p["payload"])
        assert len(points) == stats["points"]
        return stats, points


@pytest.mark.slow
def test_sigkill_during_writes_loses_no_acknowledged_write(tmp_path, keyfile):
    rng = np.random.default_rng(7)
    srv = ServerProcess(tmp_path / "data", keyfile, extra_args=["--snapshot-records", "6"]).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert c.put("/collections/crash", json={"dim": DIM, "n_bits": 16}, headers=W).status_code == 201
            c.post("/collections/crash/train", json={"vectors": rng.normal(size=(50, DIM)).tolist()}, headers=W)
        acked, deleted, next_id = {}, set(), 0
        for round_no in range(2):
            writer = _Writer(srv.url, "crash", next_id, rng)
            writer.acked = dict(acked)
            writer.start()
            time.sleep(1.5 + 0.37 * round_no)
            srv.kill()  # SIGKILL, mid-stream
            writer.join(30)
            assert writer.error is None, writer.error
            assert len(writer.acked) > len(acked), "no write was acknowledged before the kill"
            acked, next_id = writer.acked, writer.next_id + 20
            deleted |= writer.acked_deleted
            in_flight = writer.in_flight
            srv.start()
            stats, points = _dump(srv.url, "crash")
            if in_flight is not None and in_flight[0] == "delete":
                # an unacknowledged delete is either wholly applied or not at all
                gone = set(in_flight[1]) - set(points)
                assert gone in (set(), set(in_flight[1])), sorted(gone)
                for i in gone:
                    acked.pop(i)
                    deleted.add(i)
            missing = [i for i in acked if i not in points]
            assert not missing, f"round {round_no}: {len(missing)} acknowledged points lost: {missing[:10]}"
            for i, (x, p) in acked.items():
                np.testing.assert_array_equal(points[i][0], x)
                assert points[i][1] == p
            extra = set(points) - set(acked)
            if in_flight is not None and in_flight[0] == "upsert":
                # the unacknowledged batch is either wholly there or wholly absent
                assert extra in (set(), set(in_flight[1])), (sorted(extra)[:5], in_flight[1][:3])
                for i in extra:
                    acked[i] = (points[i][0], points[i][1])
            else:
                assert not extra, sorted(extra)[:10]
            assert not (deleted & set(points)), "an acknowledged delete came back"
            assert not stats["recovery"]["problems"]
            assert stats["recovery"]["replayed_records"] + (stats["recovery"]["snapshot"] or {}).get("seq", 0) == stats["seq"]
    finally:
        srv.stop()


@pytest.mark.slow
def test_disk_full_refuses_writes_without_damage(tmp_path, keyfile):
    """A file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes writes fail with EFBIG, as a full disk."""
    limit = 100_000

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    rng = np.random.default_rng(3)
    srv = ServerProcess(tmp_path / "data", keyfile, extra_args=["--snapshot-records", "100000"],
                        preexec_fn=small_files).start()
    acked = {}
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            c.put("/collections/full", json={"dim": DIM, "n_bits": 16}, headers=W)
            c.post("/collections/full/train", json={"vectors": rng.normal(size=(50, DIM)).tolist()}, headers=W)
            statuses = []
            for b in range(60):
                ids = list(range(b * 100, b * 100 + 100))
                X = rng.normal(size=(100, DIM)).astype(np.float32)
                r = c.post("/collections/full/points", json={"ids": ids, "vectors": X.tolist()}, headers=W)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    acked.update(zip(ids, X))
                else:
                    assert r.status_code == 507 and "refused by the disk" in r.json()["detail"]
            assert 200 in statuses and 507 in statuses
            # reads still work and show exactly the acknowledged points
            assert c.get("/collections/full/stats", headers=R).json()["points"] == len(acked)
    finally:
        srv.kill()
    srv = ServerProcess(tmp_path / "data", keyfile).start()
    try:
        stats, points = _dump(srv.url, "full")
        assert set(points) == set(acked)
        for i, x in acked.items():
            np.testing.assert_array_equal(points[i][0], x)
        assert not stats["recovery"]["problems"]
    finally:
        srv.stop()


def test_clean_stop_writes_snapshot(tmp_path, keyfile):
    srv = ServerProcess(tmp_path / "data", keyfile).start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        c.put("/collections/s", json={"dim": 2}, headers=W)
        c.post("/collections/s/points", json={"ids": [1, 2], "vectors": [[1, 2], [3, 4]]}, headers=W)
    srv.stop()
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            st = c.get("/collections/s/stats", headers=R).json()
            assert st["points"] == 2 and st["recovery"]["replayed_records"] == 0
            assert "collection s: 2 points" in srv.log()
    finally:
        srv.stop()
