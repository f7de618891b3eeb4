"""Fault injection against ``hashlearn serve``: acknowledged writes lost must be 0.

Scenarios (each against a real server process on loopback, data on the local disk):

* ``kill9``: a client streams upserts (batches of 20) and deletes; the server gets SIGKILL at a random
  moment, is restarted, and every acknowledged write is checked (vector and payload bit-exact, deletes
  still deleted); the request in flight must be applied wholly or not at all. ``--rounds`` times.
* ``disk_full``: the server runs under RLIMIT_FSIZE (SIGXFSZ ignored), so log appends fail with EFBIG
  as on a full disk: the failed writes must be answered 507 and not acknowledged, the server must keep
  serving, and a restart without the limit must show exactly the acknowledged writes.
* ``truncated_snapshot``: after a write stream and a kill, the newest snapshot is cut in half; restart.
* ``corrupt_log_tail``: after a kill, a partial record of random bytes is appended to the log; restart.

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
from common import machine_info, write_json  # noqa: E402

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "out" / "service_faults")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "service_faults.json")
    args = ap.parse_args(argv)
    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    keys = args.workdir / "keys.txt"
    keys.write_text(f"{KEY} write\n")
    t0 = time.time()
    results = {"command": "python " + " ".join([sys.argv[0]] + sys.argv[1:]), "machine": machine_info(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results["kill9"] = kill9(args.workdir, keys, args.rounds, args.seed)
    results["disk_full"] = disk_full(args.workdir, keys, 400_000)
    results["truncated_snapshot"] = damaged(args.workdir, keys, "truncated_snapshot")
    results["corrupt_log_tail"] = damaged(args.workdir, keys, "corrupt_log_tail")
    results["seconds"] = time.time() - t0
    write_json(args.out, results)
    k = results["kill9"]
    print(f"kill -9: {len(k)} rounds, {sum(r['lost_acked'] for r in k)} acknowledged writes lost, "
          f"{sum(r['wrong_content'] for r in k)} wrong, {sum(r['unexpected_points'] for r in k)} unexpected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
