"""Load test of ``hashlearn serve`` on loopback: searches/s and p50/p99 latency, errors counted.

For each collection size: the data directory is built in-process (Storage: train on a sample, upsert
in large batches, snapshot), then

1. in-process baseline: ``Collection.search`` called directly (no HTTP), one query at a time;
2. a real server (``python -m hashlearn serve``) is started on a free loopback port, and ``--clients``
   concurrent clients (asyncio + httpx, one connection each) send single-query searches (k=10) for
   ``--duration`` seconds, without and with rerank;
3. mixed: the same number of clients, a quarter of them upserting batches of 100 new points (acknowledged
   only once fsync'ed), the rest searching.

Every non-200 answer or transport error counts as an error. The Markdown section ``service-load`` of
``bench/sections/service.md`` is written from the run (``--no-section`` for a trial run). Usage::

    python bench/service_load.py --sizes 100000,1000000 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine_info, machine_summary, update_markdown_section, write_json  # noqa: E402

KEY = "bench-write-key-0123"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def build(data_dir: Path, n: int, dim: int, bits: int, seed: int = 0) -> dict:
    from hashlearn.service import CollectionConfig, Limits, Storage

    if data_dir.exists():
        shutil.rmtree(data_dir)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    st = Storage(data_dir, snapshot_records=10**9, snapshot_bytes=1 << 40, limits=Limits(max_rows=50000))
    coll = st.create(CollectionConfig(name="bench", dim=dim, n_bits=bits, method="simhash", rerank_candidates=100))
    centers = rng.normal(size=(256, dim)).astype(np.float32)
    coll.train(centers[rng.integers(0, 256, 10000)] + rng.normal(size=(10000, dim)).astype(np.float32))
    batch = 50000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        X = centers[rng.integers(0, 256, m)] + rng.normal(size=(m, dim)).astype(np.float32)
        coll.upsert(np.arange(start, start + m), X)
    t1 = time.perf_counter()
    st.close(snapshot=True)
    return {"build_seconds": t1 - t0, "snapshot_seconds": time.perf_counter() - t1,
            "disk_bytes": sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())}


def queries(n: int, dim: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32) * 1.2


def in_process(data_dir: Path, Q: np.ndarray, seconds: float) -> dict:
    from hashlearn.service import Storage

    t0 = time.perf_counter()
    st = Storage(data_dir)
    open_s = time.perf_counter() - t0
    coll = st.get("bench")
    out = {"open_seconds": open_s}
    for rerank in (False, True):
        lat = []
        coll.search(Q[:1], 10, rerank=rerank)
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end:
            t = time.perf_counter()
            coll.search(Q[i % len(Q)][None], 10, rerank=rerank)
            lat.append(time.perf_counter() - t)
            i += 1
        out["rerank" if rerank else "hamming"] = _summary(lat, seconds, 0)
    st.close(snapshot=False)
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(pid, coro_fn):
    """Run a load phase; add the server's and this client's CPU milliseconds per request."""
    import resource

    s0, c0 = _cpu_seconds(pid), resource.getrusage(resource.RUSAGE_SELF)
    res = asyncio.run(coro_fn())
    s1, c1 = _cpu_seconds(pid), resource.getrusage(resource.RUSAGE_SELF)
    n = res["search"]["requests"] + res.get("write", {}).get("requests", 0)
    res["server_cpu_ms_per_request"] = (s1 - s0) * 1000 / max(n, 1)
    res["client_cpu_ms_per_request"] = ((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)) * 1000 / max(n, 1)
    return res


def _summary(lat, seconds, errors) -> dict:
    lat = np.asarray(lat) * 1000
    return {"requests": int(lat.size), "per_second": lat.size / seconds,
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None, "errors": errors}


async def _load(url, Q, clients, seconds, rerank, writers=0, dim=None, id_base=10**9):
    import httpx

    stop_at = time.perf_counter() + seconds
    search_lat, write_lat = [], []
    errors = {"search": 0, "write": 0}
    messages = []

    async def searcher(c, offset):
        i = offset
        while time.perf_counter() < stop_at:
            body = {"vectors": [Q[i % len(Q)].tolist()], "k": 10, "rerank": rerank}
            t = time.perf_counter()
            try:
                r = await c.post("/collections/bench/search", json=body, headers=HEADERS)
                ok = r.status_code == 200 and len(r.json()["ids"][0]) == 10
                if not ok:
                    messages.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError as exc:
                ok = False
                messages.append(repr(exc))
            search_lat.append(time.perf_counter() - t) if ok else None
            errors["search"] += not ok
            i += clients

    async def writer(c, w):
        rng = np.random.default_rng(100 + w)
        b = 0
        while time.perf_counter() < stop_at:
            ids = list(range(id_base + w * 10**7 + b * 100, id_base + w * 10**7 + b * 100 + 100))
            body = {"ids": ids, "vectors": rng.normal(size=(100, dim)).astype(np.float32).tolist()}
            t = time.perf_counter()
            try:
                r = await c.post("/collections/bench/points", json=body, headers=HEADERS)
                ok = r.status_code == 200
                if not ok:
                    messages.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError as exc:
                ok = False
                messages.append(repr(exc))
            write_lat.append(time.perf_counter() - t) if ok else None
            errors["write"] += not ok
            b += 1

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    conns = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for _ in range(clients)]
    try:
        tasks = [writer(conns[w], w) for w in range(writers)]
        tasks += [searcher(conns[writers + s], s) for s in range(clients - writers)]
        await asyncio.gather(*tasks)
    finally:
        for c in conns:
            await c.aclose()
    out = {"search": _summary(search_lat, seconds, errors["search"])}
    if writers:
        out["write"] = _summary(write_lat, seconds, errors["write"])
        out["write"]["points_per_second"] = out["write"]["per_second"] * 100
    out["error_samples"] = messages[:5]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "out" / "service_load")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "service_load.json")
    ap.add_argument("--section", type=Path, default=Path(__file__).resolve().parent / "sections" / "service.md",
                    help="Markdown file whose service-load section is rewritten.")
    ap.add_argument("--no-section", action="store_true", help="Do not write the Markdown section (trial runs).")
    args = ap.parse_args(argv)
    from hashlearn.service.process import ServerProcess

    args.workdir.mkdir(parents=True, exist_ok=True)
    keys = args.workdir / "keys.txt"
    keys.write_text(f"{KEY} write\n")
    results = {"command": "python " + " ".join([sys.argv[0]] + sys.argv[1:]), "machine": machine_info(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": {k: str(v) for k, v in vars(args).items()},
               "sizes": {}}
    Q = queries(2000, args.dim)
    for n in [int(s) for s in args.sizes.split(",")]:
        data_dir = args.workdir / f"n{n}"
        row = {"build": build(data_dir, n, args.dim, args.bits)}
        print(f"[n={n}] built in {row['build']['build_seconds']:.1f}s", flush=True)
        row["in_process"] = in_process(data_dir, Q, min(10.0, args.duration / 3))
        print(f"[n={n}] in-process {json.dumps(row['in_process'])}", flush=True)
        t0 = time.perf_counter()
        srv = ServerProcess(data_dir, keys, env={"NUMBA_NUM_THREADS": "2"}).start(timeout=300)
        row["server_start_seconds"] = time.perf_counter() - t0
        try:
            for rerank in (False, True):
                asyncio.run(_load(srv.url, Q, args.clients, 3.0, rerank))  # warm-up (numba kernels, caches)
                res = _measured(srv.proc.pid, lambda: _load(srv.url, Q, args.clients, args.duration, rerank))
                row["http_rerank" if rerank else "http_hamming"] = res
                print(f"[n={n}] rerank={rerank} {json.dumps(res['search'])}", flush=True)
            res = _measured(srv.proc.pid, lambda: _load(srv.url, Q, args.clients, args.duration, False,
                                                        writers=max(1, args.clients // 4), dim=args.dim))
            row["http_mixed"] = res
            print(f"[n={n}] mixed {json.dumps({k: v for k, v in res.items() if k != 'error_samples'})}", flush=True)
        finally:
            srv.stop(timeout=300)
        results["sizes"][n] = row
        write_json(args.out, results)
        shutil.rmtree(data_dir, ignore_errors=True)
    results["load_end"] = load_average()
    write_json(args.out, results)
    print(markdown(results))
    if not args.no_section:
        print(f"wrote {update_markdown_section('service-load', section(results), args.section)}")
    return 0


def section(results) -> str:
    """The section: how it was measured, the table, and a reading whose figures come from ``results``."""
    a, rows = results["args"], results["sizes"].values()
    p50 = [r["in_process"][m]["p50_ms"] for r in rows for m in ("hamming", "rerank")]
    cpu = [r[k]["server_cpu_ms_per_request"] for r in rows for k in ("http_hamming", "http_rerank")]
    ccpu = [r[k]["client_cpu_ms_per_request"] for r in rows for k in ("http_hamming", "http_rerank")]
    rate = [r[k]["search"]["per_second"] for r in rows for k in ("http_hamming", "http_rerank")]
    ups = [r["http_mixed"]["write"]["points_per_second"] for r in rows]
    errors = sum(r[k]["search"]["errors"] for r in rows for k in ("http_hamming", "http_rerank", "http_mixed")) + \
        sum(r["http_mixed"]["write"]["errors"] for r in rows)
    built = ", ".join(f"{int(n) // 1000}k: {r['build']['build_seconds']:.1f} s" for n, r in results["sizes"].items())
    return "\n".join([
        "### Load: `hashlearn serve` on loopback",
        "",
        f"Command: `{results['command']}` ({results['date']}, load average {results['machine']['load_average_1_5_15'][0]} "
        f"at the start, {results['load_end'][0]} at the end). {machine_summary(results['machine'])}",
        "",
        f"One collection per size: SimHash {a['bits']} bits over clustered float32 vectors of dim {a['dim']} (256 centres "
        f"+ unit noise), built in-process ({built} incl. the log), then served by a real `python -m hashlearn serve` "
        f"process. {a['clients']} concurrent clients (asyncio + httpx, one keep-alive connection each), one query per "
        f"request, k = 10, {float(a['duration']):g} s per row after a 3 s warm-up; rerank re-scores the 100 best Hamming "
        "candidates with exact squared L2. Mixed rows: a quarter of the clients upsert batches of 100 new points "
        "(answered only after fsync) while the others search. Error = any non-200 answer or transport error. Peer in the "
        "same run: the same collection searched in-process (`Collection.search`, no HTTP), which shows what the HTTP "
        "layer costs. The client runs on the same machine.",
        "",
        markdown(results),
        "",
        f"Reading: the search itself is {min(p50):.2f}–{max(p50):.2f} ms (p50, in-process); over HTTP the server spends "
        f"{min(cpu):.1f}–{max(cpu):.1f} ms of CPU per search request (JSON parsing and validation, auth, FastAPI/uvicorn) "
        f"and the client {min(ccpu):.1f}–{max(ccpu):.1f} ms, so the loopback throughput ({min(rate):.0f}–{max(rate):.0f} "
        f"searches/s) is bounded by CPU, not by the index. Upserts: {min(ups):,.0f}–{max(ups):,.0f} points/s in fsync'ed "
        f"batches of 100 while searches continue. Errors over every row: {errors}.",
    ])


def markdown(results) -> str:
    lines = ["| vectors | mode | clients | searches/s | p50 ms | p99 ms | errors | server CPU ms/request | client CPU ms/request |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    clients = results["args"]["clients"]
    for n, row in results["sizes"].items():
        for key, label in (("http_hamming", "HTTP, Hamming top-10"), ("http_rerank", "HTTP, rerank 100 → top-10"),
                           ("http_mixed", "HTTP, mixed: searches while others upsert")):
            s = row[key]["search"]
            extra = ""
            if key == "http_mixed":
                w = row[key]["write"]
                extra = f" (+ {w['points_per_second']:.0f} points/s upserted in fsync'ed batches of 100, p50 {w['p50_ms']:.1f} ms, {w['errors']} errors)"
            lines.append(f"| {int(n):,} | {label}{extra} | {clients} | {s['per_second']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                         f"{s['errors']} | {row[key]['server_cpu_ms_per_request']:.2f} | {row[key]['client_cpu_ms_per_request']:.2f} |")
        for key, label in (("hamming", "in-process, Hamming"), ("rerank", "in-process, rerank")):
            s = row["in_process"][key]
            lines.append(f"| {int(n):,} | {label} (no HTTP, 1 caller) | 1 | {s['per_second']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | 0 | - | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
