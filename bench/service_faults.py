"""Fault injection against ``hashlearn serve``: acknowledged writes lost must be 0.

Scenarios (each against a real server process on loopback):

* ``kill9``: a client streams upserts (batches of 20) and deletes; the server gets SIGKILL at a random
  moment, is restarted, and every acknowledged write is checked (vector and payload bit-exact, deletes
  still deleted); the request in flight must be applied wholly or not at all. ``--rounds`` times.
* ``disk_full``: the server runs under RLIMIT_FSIZE (SIGXFSZ ignored), so log appends fail with EFBIG
  as on a full disk: the failed writes must be answered 507 and not acknowledged, the server must keep
  serving, and a restart without the limit must show exactly the acknowledged writes.
* ``truncated_snapshot``: after a write stream and a kill, the newest snapshot is cut in half; restart.
* ``corrupt_log_tail``: after a kill, a partial record of random bytes is appended to the log; restart.
* ``hasher_upload``: while a client streams writes, a SimHash file whose projections have 128 columns
  for n_bits=16 is uploaded (must be refused, nothing logged), then a valid hasher; kill -9; restart.
* ``full_disk_restart``: the data directory is on a small tmpfs (when this runs as root and the mount
  works; otherwise the storage layer's fault hook, ``HASHLEARN_SERVICE_FAULT_FILE``, fails every write
  with ENOSPC — the section says which). Writes, training, the disk fills (a filler file), writes until
  507, kill -9, restart *while still full* (must open with every acknowledged write); then the newest
  snapshot is damaged and the server restarted, still full: recovery needs to write, so the collection
  must stay closed with every file kept; space is freed, restart: every acknowledged write is there.
* ``bit_flip``: after a write stream and a kill, one bit is flipped inside an upsert record in the
  middle of the last log segment; restart. Only the writes of that record may be missing (they are
  counted apart, and must be reported in ``problems``); every other acknowledged write must be there.
* ``second_server``: while the first server takes writes, a second one is started on the same data
  directory: it must refuse to start; kill -9 of the first, restart: 0 lost.

The Markdown section ``service-faults`` of ``bench/sections/service.md`` is written from the results
(``--no-section`` for a trial run).

Usage::

    python bench/service_faults.py --rounds 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine_info, machine_summary, update_markdown_section, write_json  # noqa: E402

KEY = "fault-write-key-0123"
H = {"Authorization": f"Bearer {KEY}"}
DIM = 16


class Stream(threading.Thread):
    """Upserts (and every 5th request a delete) until the server goes away or ``stop`` is set."""

    def __init__(self, url, acked, next_id, seed):
        super().__init__(daemon=True)
        self.url, self.acked, self.next_id = url, acked, next_id
        self.rng = np.random.default_rng(seed)
        self.deleted: set[int] = set()
        self.in_flight = None
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self):
        import httpx

        with httpx.Client(base_url=self.url, timeout=60) as c:
            b = 0
            while not self.stop.is_set():
                if b % 5 == 4 and len(self.acked) > 10:
                    op = ("delete", sorted(self.acked)[:10])
                    body = {"ids": op[1]}
                    path = "/collections/f/points/delete"
                else:
                    ids = list(range(self.next_id, self.next_id + 20))
                    X = self.rng.normal(size=(20, DIM)).astype(np.float32)
                    payloads = [{"b": b, "i": i} for i in ids]
                    op = ("upsert", ids, X, payloads)
                    body = {"ids": ids, "vectors": X.tolist(), "payloads": payloads}
                    path = "/collections/f/points"
                self.in_flight = op
                try:
                    r = c.post(path, json=body, headers=H)
                except httpx.HTTPError:
                    return
                self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    if op[0] == "upsert":
                        self.acked.update({i: (x, p) for i, x, p in zip(op[1], op[2], op[3])})
                        self.next_id += 20
                    else:
                        for i in op[1]:
                            self.acked.pop(i)
                            self.deleted.add(i)
                elif op[0] == "upsert":
                    self.next_id += 20  # refused: never reuse its ids
                self.in_flight = None
                b += 1


def dump(url):
    import httpx

    with httpx.Client(base_url=url, timeout=120) as c:
        stats = c.get("/collections/f/stats", headers=H).json()
        ids = []
        while True:
            page = c.get("/collections/f/ids", params={"offset": len(ids), "limit": 5000}, headers=H).json()
            ids += page["ids"]
            if len(ids) >= page["total"] or not page["ids"]:
                break
        points = {}
        for s in range(0, len(ids), 2000):
            for p in c.post("/collections/f/points/get", json={"ids": ids[s:s + 2000]}, headers=H).json()["points"]:
                points[p["id"]] = (np.asarray(p["vector"], np.float32), p["payload"])
        return stats, points


def verify(acked, deleted, in_flight, stats, points) -> dict:
    """Compare the server's content with what was acknowledged; settle the in-flight request."""
    in_flight_outcome = None
    if in_flight is not None and in_flight[0] == "delete":
        gone = set(in_flight[1]) - set(points)
        in_flight_outcome = "applied" if gone == set(in_flight[1]) else ("not applied" if not gone else "PARTIAL")
        for i in gone:
            acked.pop(i, None)
            deleted.add(i)
    lost = [i for i in acked if i not in points]
    wrong = [i for i in acked if i in points and not (np.array_equal(points[i][0], acked[i][0]) and points[i][1] == acked[i][1])]
    extra = set(points) - set(acked)
    if in_flight is not None and in_flight[0] == "upsert":
        if extra == set(in_flight[1]):
            in_flight_outcome = "applied"
            for i in extra:
                acked[i] = points[i]
            extra = set()
        else:
            in_flight_outcome = "not applied" if not (extra & set(in_flight[1])) else "PARTIAL"
    resurrected = deleted & set(points)
    return {"acked_points": len(acked), "lost_acked": len(lost), "wrong_content": len(wrong),
            "unexpected_points": len(extra), "resurrected_deletes": len(resurrected),
            "in_flight": in_flight_outcome, "server_points": stats["points"],
            "recovery": {k: stats["recovery"].get(k) for k in ("snapshot", "skipped_snapshots", "replayed_records",
                                                                "problems", "action", "seconds")},
            "discarded_tail_bytes": sum(s["discarded_bytes"] for s in stats["recovery"].get("segments", []))}


def start(data, keys, **kw):
    from hashlearn.service.process import ServerProcess

    return ServerProcess(data, keys, **kw).start(timeout=300)


def create(url):
    import httpx

    rng = np.random.default_rng(0)
    with httpx.Client(base_url=url, timeout=60) as c:
        c.put("/collections/f", json={"dim": DIM, "n_bits": 32}, headers=H).raise_for_status()
        c.post("/collections/f/train", json={"vectors": rng.normal(size=(200, DIM)).tolist()}, headers=H).raise_for_status()


def kill9(work, keys, rounds, seed) -> list[dict]:
    rnd = random.Random(seed)
    data = work / "kill9"
    srv = start(data, keys, extra_args=["--snapshot-records", "25"])
    create(srv.url)
    acked, deleted, next_id, out = {}, set(), 0, []
    for r in range(rounds):
        s = Stream(srv.url, acked, next_id, seed + r)
        s.start()
        time.sleep(rnd.uniform(0.5, 3.0))
        srv.kill()
        s.join(60)
        deleted |= s.deleted
        next_id = s.next_id + 20
        t0 = time.perf_counter()
        srv.start(timeout=300)
        restart = time.perf_counter() - t0
        stats, points = dump(srv.url)
        res = verify(acked, deleted, s.in_flight, stats, points)
        res.update({"round": r, "restart_seconds": restart, "requests_answered": sum(s.statuses.values())})
        out.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "recovery"}), flush=True)
    srv.stop()
    return out


def disk_full(work, keys, limit) -> dict:
    data = work / "disk_full"

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    srv = start(data, keys, extra_args=["--snapshot-records", "1000000"], preexec_fn=small_files)
    create(srv.url)
    acked = {}
    s = Stream(srv.url, acked, 0, 99)
    s.start()
    deadline = time.time() + 120
    while time.time() < deadline and s.statuses.get(507, 0) < 20:
        time.sleep(0.2)
    s.stop.set()
    s.join(60)
    import httpx

    with httpx.Client(base_url=srv.url, timeout=60) as c:  # still serving
        alive = c.post("/collections/f/search", json={"vectors": [[0.0] * DIM], "k": 3}, headers=H).status_code
        points_while_full = c.get("/collections/f/stats", headers=H).json()["points"]
    srv.kill()
    srv = start(data, keys)
    stats, points = dump(srv.url)
    res = verify(acked, s.deleted, None, stats, points)
    srv.stop()
    res.update({"statuses": s.statuses, "search_while_full": alive, "points_while_full": points_while_full,
                "file_size_limit_bytes": limit})
    print(json.dumps({k: v for k, v in res.items() if k != "recovery"}), flush=True)
    return res


def damaged(work, keys, kind) -> dict:
    data = work / kind
    srv = start(data, keys, extra_args=["--snapshot-records", "10"])
    create(srv.url)
    acked = {}
    s = Stream(srv.url, acked, 0, 7)
    s.start()
    time.sleep(2.5)
    srv.kill()
    s.join(60)
    folder = data / "collections" / "f"
    if kind == "truncated_snapshot":
        snap = sorted(folder.glob("snapshot-*.hlrn"))[-1]
        size = snap.stat().st_size
        os.truncate(snap, size // 2)
        what = f"{snap.name} cut from {size} to {size // 2} bytes"
    else:
        wal = sorted(folder.glob("wal-*.log"))[-1]
        garbage = (300).to_bytes(4, "little") + os.urandom(4) + os.urandom(120)  # a frame promising 300 bytes
        with open(wal, "ab") as fh:
            fh.write(garbage)
        what = f"{len(garbage)} random bytes (a torn frame) appended to {wal.name}"
    srv.start(timeout=300)
    stats, points = dump(srv.url)
    res = verify(acked, s.deleted, s.in_flight, stats, points)
    res["damage"] = what
    srv.stop()
    print(json.dumps(res), flush=True)
    return res


def _stream_for(url, acked, seconds, seed, next_id=0):
    s = Stream(url, acked, next_id, seed)
    s.start()
    time.sleep(seconds)
    return s


def _simhash_file(projections=None) -> bytes:
    from hashlearn.hashing import make_hasher
    from hashlearn.io.persist import dumps

    hasher = make_hasher("simhash", n_bits=16 if projections is not None else 32, random_state=1)
    hasher.fit(np.random.default_rng(0).normal(size=(50, DIM)))
    if projections is not None:
        hasher.projections_ = projections
    return dumps(hasher)


def hasher_upload(work, keys) -> dict:
    """A bad hasher upload in the middle of a write stream, then a good one, then kill -9."""
    import httpx

    data = work / "hasher_upload"
    srv = start(data, keys, extra_args=["--snapshot-records", "25"])
    create(srv.url)
    acked = {}
    s = _stream_for(srv.url, acked, 1.0, 11)
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        seq0 = c.get("/collections/f/stats", headers=H).json()["seq"]
        bad = c.put("/collections/f/hasher", content=_simhash_file(np.ones((DIM, 128), np.float32)), headers=H)
        time.sleep(0.5)
        good = c.put("/collections/f/hasher", content=_simhash_file(), headers=H)
        seq1 = c.get("/collections/f/stats", headers=H).json()["seq"]
    time.sleep(0.7)
    srv.kill()
    s.join(60)
    srv.start(timeout=300)
    stats, points = dump(srv.url)
    res = verify(acked, s.deleted, s.in_flight, stats, points)
    res.update({"bad_upload": {"status": bad.status_code, "detail": bad.json().get("detail", "")[:160]},
                "good_upload": good.status_code, "writes_between": seq1 - seq0, "code_bits_after": stats["code_bits"]})
    srv.stop()
    print(json.dumps({k: v for k, v in res.items() if k != "recovery"}), flush=True)
    return res


def _tmpfs(path: Path, mb: int) -> bool:
    """Mount a tmpfs of ``mb`` MiB at ``path`` (root only); False if that is not possible here."""
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def _fill(path: Path) -> int:
    """Write zeros into ``path`` until the file system is full; returns the bytes written."""
    written = 0
    block = b"\0" * (1 << 16)
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(block)
            except OSError:
                break
        while True:  # the last partial block
            try:
                n = fh.write(b"\0" * 512)
                if not n:
                    break
                written += n
            except OSError:
                break
    return written


def full_disk_restart(work, keys) -> dict:
    import subprocess

    import httpx

    mount = work / "full_disk_mount"
    real = _tmpfs(mount, 32)
    data, flag, filler = mount / "data", work / "full_disk_flag", mount / "filler"
    env = {} if real else {"HASHLEARN_SERVICE_FAULT_FILE": str(flag)}
    log = work / "full_disk.server.log"
    out = {"how": "tmpfs of 32 MiB (a real ENOSPC)" if real else
           "fault hook HASHLEARN_SERVICE_FAULT_FILE (writes fail with ENOSPC before touching the disk)"}
    try:
        srv = start(data, keys, extra_args=["--snapshot-records", "10"], env=env, log_path=log)
        rng = np.random.default_rng(5)
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            c.put("/collections/f", json={"dim": DIM, "method": "itq", "n_bits": 8}, headers=H).raise_for_status()
        acked = {}
        s = _stream_for(srv.url, acked, 1.0, 21)  # untrained: vectors are stored, encoded at training
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            out["train_before_full"] = c.post("/collections/f/train", json={"vectors": rng.normal(size=(300, DIM)).tolist()},
                                              headers=H).status_code
        time.sleep(0.5)
        if real:
            out["filler_bytes"] = _fill(filler)
        else:
            flag.write_text("ENOSPC")
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            out["train_while_full"] = c.post("/collections/f/train", json={"vectors": rng.normal(size=(300, DIM)).tolist()},
                                             headers=H).status_code
        deadline = time.time() + 60
        while time.time() < deadline and s.statuses.get(507, 0) < 5:
            time.sleep(0.1)
        srv.kill()
        s.join(60)
        out["statuses"] = dict(s.statuses)
        srv.start(timeout=300)  # still full
        stats, points = dump(srv.url)
        out["restart_while_full"] = verify(acked, s.deleted, s.in_flight, stats, points)
        srv.kill()
        folder = data / "collections" / "f"
        newest = sorted(folder.glob("snapshot-*.hlrn"))[-1]
        with open(newest, "r+b") as fh:  # damage it in place (no new blocks needed)
            fh.seek(100)
            fh.write(b"\xff" * 16)
        before = {p.name: p.stat().st_size for p in folder.iterdir()}
        srv.start(timeout=300)
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            r = c.get("/collections/f/stats", headers=H)
            health = c.get("/health", headers=H).json()
        out["damaged_snapshot_while_full"] = {
            "status": r.status_code, "detail": r.json().get("detail", "")[:240],
            "files_unchanged": before == {p.name: p.stat().st_size for p in folder.iterdir()},
            "in_health": "f" in health.get("unavailable", {})}
        srv.kill()
        if real:
            filler.unlink()
        else:
            flag.unlink()
        srv.start(timeout=300)
        stats, points = dump(srv.url)
        out["after_space_freed"] = verify(acked, set(), None, stats, points)
        srv.stop()
    finally:
        if real:
            subprocess.run(["umount", str(mount)], capture_output=True)
    print(json.dumps(out, default=str), flush=True)
    return out


def bit_flip(work, keys) -> dict:
    from hashlearn.service.storage.records import OP_UPSERT, decode_upsert
    from hashlearn.service.wal import read_records

    data = work / "bit_flip"
    srv = start(data, keys, extra_args=["--snapshot-records", "100000"])
    create(srv.url)
    acked = {}
    s = _stream_for(srv.url, acked, 2.5, 31)
    srv.kill()
    s.join(60)
    wal = sorted((data / "collections" / "f").glob("wal-*.log"))[-1]
    records, _ = read_records(wal)
    offsets, pos = [], 0
    for seq, op, body in records:
        offsets.append(pos)
        pos += 17 + len(body)
    target = len(records) // 4
    while records[target][1] != OP_UPSERT:
        target += 1
    seq, _, body = records[target]
    ids = decode_upsert(body, DIM)[0].tolist()
    raw = bytearray(wal.read_bytes())
    raw[offsets[target] + 17 + 8 * 4] ^= 0x10  # one bit of the record's ids
    wal.write_bytes(bytes(raw))
    srv.start(timeout=300)
    stats, points = dump(srv.url)
    in_record = set(ids) & set(acked)
    res = verify(acked, s.deleted, s.in_flight, stats, points)
    res["damage"] = f"bit 4 of byte {offsets[target] + 17 + 32} of {wal.name}: record {seq} (of {len(records)}), an upsert of {len(ids)} ids"
    res["ids_in_damaged_record"] = len(in_record)
    res["lost_outside_damaged_record"] = len([i for i in acked if i not in points and i not in in_record])
    res["lost_in_damaged_record"] = len([i for i in in_record if i not in points])
    res["reported"] = [p for p in stats["recovery"]["problems"]]
    srv.stop()
    print(json.dumps({k: v for k, v in res.items() if k != "recovery"}), flush=True)
    return res


def second_server(work, keys) -> dict:
    from hashlearn.service.process import ServerProcess

    data = work / "second_server"
    srv = start(data, keys, extra_args=["--snapshot-records", "25"])
    create(srv.url)
    acked = {}
    s = _stream_for(srv.url, acked, 0.5, 41)
    other = ServerProcess(data, keys, log_path=work / "second_server.other.log")
    try:
        other.start(timeout=120)
        refused, message = False, "the second server started"
        other.stop()
    except RuntimeError:
        refused = True
        message = next((line for line in other.log().splitlines() if "in use" in line), other.log()[-200:])
    time.sleep(0.5)
    srv.kill()
    s.join(60)
    srv.start(timeout=300)
    stats, points = dump(srv.url)
    res = verify(acked, s.deleted, s.in_flight, stats, points)
    res.update({"second_refused": refused, "message": message.replace(str(work), "<workdir>").strip()[:200]})
    srv.stop()
    print(json.dumps({k: v for k, v in res.items() if k != "recovery"}), flush=True)
    return res


def _recovered(rec: dict) -> str:
    parts = []
    snap = rec.get("snapshot")
    parts.append(f"snapshot seq {snap['seq']}" if snap else "no snapshot")
    parts.append(f"{rec.get('replayed_records', 0)} log records replayed")
    if rec.get("skipped_snapshots"):
        parts.append(f"{len(rec['skipped_snapshots'])} damaged snapshot(s) skipped")
    if rec.get("action"):
        parts.append(f"\"{rec['action']}\"")
    if rec.get("problems"):
        parts.append("problems: " + "; ".join(f"\"{p}\"" for p in rec["problems"]))
    return "; ".join(parts)


def section(results: dict) -> str:
    """The Markdown section, every figure taken from ``results``."""
    k = results["kill9"]
    row = "| {} | {} | {:,} | **{}** | {} | {} | {} | {} |"
    lines = [
        "### Faults: acknowledged writes lost must be 0",
        "",
        f"Command: `{results['command']}` ({results['date']}, {results['seconds']:.0f} s, load average "
        f"{results['load_start'][0]} at the start, {results['load_end'][0]} at the end). {machine_summary(results['machine'])}",
        "",
        "Each scenario runs a real server process; a client streams upserts (batches of 20 points of dim 16 with JSON "
        "payloads) and every 5th request a delete of 10 acknowledged ids; after the fault the server is restarted and "
        "every point is read back (`GET /collections/f/ids` + `POST /collections/f/points/get`) and compared bit for "
        "bit with what was acknowledged.",
        "",
        "| scenario | rounds | acknowledged points at the end | acknowledged writes lost | wrong vector/payload | "
        "points never acknowledged present | deleted points back | what the restart reported |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    in_flight = {o: sum(r["in_flight"] == o for r in k) for o in ("applied", "not applied", "PARTIAL")}
    lines.append(row.format(
        "`kill -9` at a random moment (0.5–3 s) of the write stream", len(k), k[-1]["acked_points"],
        sum(r["lost_acked"] for r in k), sum(r["wrong_content"] for r in k), sum(r["unexpected_points"] for r in k),
        sum(r["resurrected_deletes"] for r in k),
        f"in-flight request {in_flight['applied']}× applied whole, {in_flight['not applied']}× not applied, "
        f"{in_flight['PARTIAL']}× partial; recovery {min(r['recovery']['seconds'] for r in k):.2f}–"
        f"{max(r['recovery']['seconds'] for r in k):.2f} s"))
    d = results["disk_full"]
    lines.append(row.format(
        f"disk full (RLIMIT_FSIZE = {d['file_size_limit_bytes'] // 1000} kB: appends fail with EFBIG)", 1,
        d["acked_points"], d["lost_acked"], d["wrong_content"], d["unexpected_points"], d["resurrected_deletes"],
        f"{d['statuses'].get(200, 0)} writes answered 200, {d['statuses'].get(507, 0)} answered 507; searches while full: "
        f"{d['search_while_full']}; {_recovered(d['recovery'])}"))
    for key, what in (("truncated_snapshot", "newest snapshot truncated to half (after a kill)"),
                      ("corrupt_log_tail", "torn log tail: random bytes (a frame promising 300) appended (after a kill)")):
        r = results[key]
        lines.append(row.format(what, 1, r["acked_points"], r["lost_acked"], r["wrong_content"], r["unexpected_points"],
                                r["resurrected_deletes"], _recovered(r["recovery"])))
    h = results["hasher_upload"]
    lines.append(row.format(
        "hasher upload mid-stream: a SimHash whose projections have 128 columns for n_bits=16, then a valid one; kill -9",
        1, h["acked_points"], h["lost_acked"], h["wrong_content"], h["unexpected_points"], h["resurrected_deletes"],
        f"bad upload answered {h['bad_upload']['status']} (\"{h['bad_upload']['detail'][:110]}…\"), valid one "
        f"{h['good_upload']}; {_recovered(h['recovery'])}"))
    f = results["full_disk_restart"]
    w, a = f["restart_while_full"], f["after_space_freed"]
    ds = f["damaged_snapshot_while_full"]
    lines.append(row.format(
        f"full disk, restart while full ({f['how']})", 1, w["acked_points"], w["lost_acked"], w["wrong_content"],
        w["unexpected_points"], w["resurrected_deletes"],
        f"writes: {f['statuses'].get(200, 0)}× 200, {f['statuses'].get(507, 0)}× 507; training while full: "
        f"{f['train_while_full']}; {_recovered(w['recovery'])}"))
    lines.append(row.format(
        "… then the newest snapshot damaged, restart still full, then space freed and restart", 1, a["acked_points"],
        a["lost_acked"], a["wrong_content"], a["unexpected_points"], a["resurrected_deletes"],
        f"while full: collection not opened ({ds['status']}: \"{ds['detail'][:150]}…\"), files unchanged: "
        f"{ds['files_unchanged']}, listed in /health: {ds['in_health']}; after freeing: {_recovered(a['recovery'])}"))
    b = results["bit_flip"]
    lines.append(row.format(
        f"one bit flipped in the middle of the last log segment ({b['damage']})", 1, b["acked_points"],
        f"{b['lost_outside_damaged_record']} outside the damaged record",
        b["wrong_content"], b["unexpected_points"], b["resurrected_deletes"],
        f"the damaged record's {b['lost_in_damaged_record']} of {b['ids_in_damaged_record']} acknowledged ids are "
        f"missing and reported; {_recovered(b['recovery'])}"))
    s2 = results["second_server"]
    lines.append(row.format(
        "a second server started on the same data directory during writes; kill -9 of the first", 1,
        s2["acked_points"], s2["lost_acked"], s2["wrong_content"], s2["unexpected_points"], s2["resurrected_deletes"],
        f"second server refused: {s2['second_refused']} (\"{s2['message'][:120]}\"); {_recovered(s2['recovery'])}"))
    lost = (sum(r["lost_acked"] for r in k) + d["lost_acked"] + results["truncated_snapshot"]["lost_acked"]
            + results["corrupt_log_tail"]["lost_acked"] + h["lost_acked"] + w["lost_acked"] + a["lost_acked"]
            + b["lost_outside_damaged_record"] + s2["lost_acked"])
    lines += ["", f"Acknowledged writes lost over every scenario: **{lost}**"
              + (f", besides the {b['lost_in_damaged_record']} ids whose only copy was the record with the flipped bit "
                 "(reported in `problems`; no other copy of a write exists before the next snapshot)."
                 if b["lost_in_damaged_record"] else ".")]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "out" / "service_faults")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "service_faults.json")
    ap.add_argument("--section", type=Path, default=Path(__file__).resolve().parent / "sections" / "service.md",
                    help="Markdown file whose service-faults section is rewritten.")
    ap.add_argument("--no-section", action="store_true", help="Do not write the Markdown section (trial runs).")
    args = ap.parse_args(argv)
    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    keys = args.workdir / "keys.txt"
    keys.write_text(f"{KEY} write\n")
    t0 = time.time()
    results = {"command": "python " + " ".join([sys.argv[0]] + sys.argv[1:]), "machine": machine_info(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_start": load_average()}
    results["kill9"] = kill9(args.workdir, keys, args.rounds, args.seed)
    results["disk_full"] = disk_full(args.workdir, keys, 400_000)
    results["truncated_snapshot"] = damaged(args.workdir, keys, "truncated_snapshot")
    results["corrupt_log_tail"] = damaged(args.workdir, keys, "corrupt_log_tail")
    results["hasher_upload"] = hasher_upload(args.workdir, keys)
    results["full_disk_restart"] = full_disk_restart(args.workdir, keys)
    results["bit_flip"] = bit_flip(args.workdir, keys)
    results["second_server"] = second_server(args.workdir, keys)
    results["seconds"] = time.time() - t0
    results["load_end"] = load_average()
    write_json(args.out, results)
    if not args.no_section:
        print(f"wrote {update_markdown_section('service-faults', section(results), args.section)}")
    k = results["kill9"]
    print(f"kill -9: {len(k)} rounds, {sum(r['lost_acked'] for r in k)} acknowledged writes lost, "
          f"{sum(r['wrong_content'] for r in k)} wrong, {sum(r['unexpected_points'] for r in k)} unexpected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
