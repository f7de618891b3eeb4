"""Bad input against ``hashlearn serve``: schemathesis on the server's own OpenAPI schema, then the
hostile classes of the adversarial probe (issue 13) re-run by hand. Answers of 500 must be 0.

1. ``schemathesis run`` (phases examples, coverage, fuzzing, stateful; check ``not_a_server_error``)
   twice against a live server: once with generated collection names (mostly 404s), once with every
   ``{name}`` set to an existing, trained collection holding points (and the one DELETE operation, the
   collection's deletion, left out), so that upsert, search, get, train and hasher uploads are reached. Every request and answer is recorded (HAR) and counted here.
2. The hostile classes: auth probes, re-ranked search on a trained empty collection, payloads nested
   256-949 deep and lone surrogates, hostile hasher files (the set in ``tests/test_service_hardening.py``),
   names with a newline, more candidates than points, bodies that stop arriving, ambiguous framing,
   huge numbers, non-UTF-8 and too-deep JSON bodies.

The server's log is searched for tracebacks. The Markdown section ``service-fuzz`` of
``bench/sections/service.md`` is written from the run (``--no-section`` for a trial run).

    python bench/service_fuzz.py [--examples 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from common import command_line, load_average, machine_info, machine_summary, now_iso, update_markdown_section  # noqa: E402

WKEY, RKEY = "fuzz-write-key-0123", "fuzz-read-key-0123"
W = {"Authorization": f"Bearer {WKEY}"}
R = {"Authorization": f"Bearer {RKEY}"}
DIM = 6


def schemathesis_run(url: str, workdir: Path, tag: str, examples: int, seed: int, fixed_name: str | None) -> dict:
    """One schemathesis CLI run; returns the status histogram of every request it made."""
    har = workdir / f"{tag}.har"
    cmd = ["schemathesis"]
    if fixed_name:
        config = workdir / f"{tag}.toml"
        config.write_text(f'[parameters]\n"path.name" = "{fixed_name}"\n')
        cmd += ["--config-file", str(config)]
    cmd += ["run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {WKEY}", "--checks", "not_a_server_error",
            "-n", str(examples), "--seed", str(seed), "--wait-for-schema", "60", "--report", "har",
            "--report-har-path", str(har), "--workers", "1"]
    if fixed_name:  # keep the target: its deletion would turn the rest of the run into 404s
        cmd += ["--exclude-method", "DELETE"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - t0
    statuses = collections.Counter()
    operations = set()
    if har.exists():
        for entry in json.loads(har.read_text())["log"]["entries"]:
            statuses[entry["response"]["status"]] += 1
            operations.add((entry["request"]["method"], entry["request"]["url"].split("?")[0]))
    summary = [line for line in proc.stdout.splitlines() if line.strip()][-12:]
    return {"command": " ".join(c if " " not in c else repr(c) for c in cmd[: cmd.index("run")] + ["run", "URL/openapi.json"]
                                + cmd[cmd.index("run") + 2:]).replace(str(workdir) + "/", ""),
            "exit_code": proc.returncode, "seconds": seconds, "requests": sum(statuses.values()),
            "statuses": dict(sorted(statuses.items())), "server_errors": sum(v for k, v in statuses.items() if k >= 500),
            "summary": summary}


def _raw(port: int, data: bytes, timeout: float) -> int:
    """Status of a raw HTTP exchange (0: no answer before the timeout or the connection closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n" in out:
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    try:
        return int(out.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def hostile_classes(srv) -> dict:
    """Each class of the probe: {class: {"statuses": {code: count}, "expected": ..., "ok": bool}}."""
    import httpx

    from test_service_hardening import _hostile_hashers

    rng = np.random.default_rng(0)
    out = {}

    def record(name, statuses, expected):
        hist = collections.Counter(statuses)
        out[name] = {"requests": len(statuses), "statuses": dict(sorted(hist.items())), "expected": sorted(expected),
                     "server_errors": sum(v for k, v in hist.items() if k >= 500),
                     "ok": set(hist) <= set(expected)}

    with httpx.Client(base_url=srv.url, timeout=120) as c:
        c.put("/collections/h", json={"dim": DIM, "n_bits": 16}, headers=W).raise_for_status()
        c.post("/collections/h/points", json={"ids": list(range(100)), "vectors": rng.normal(size=(100, DIM)).tolist()},
               headers=W).raise_for_status()
        c.put("/collections/e", json={"dim": DIM, "method": "itq", "n_bits": 4}, headers=W).raise_for_status()
        c.post("/collections/e/train", json={"vectors": rng.normal(size=(40, DIM)).tolist()}, headers=W).raise_for_status()
        json_h = {"content-type": "application/json"}

        # auth: no key, wrong keys, other schemes, read key on every write route
        writes = [("PUT", "/collections/x", {"dim": 3}), ("DELETE", "/collections/h", None),
                  ("POST", "/collections/h/points", {"ids": [1], "vectors": [[0.0] * DIM]}),
                  ("POST", "/collections/h/points/delete", {"ids": [1]}), ("POST", "/collections/h/train",
                                                                            {"vectors": [[0.0] * DIM]}),
                  ("PUT", "/collections/h/hasher", None), ("POST", "/collections/h/snapshot", None)]
        reads = [("GET", "/collections", None), ("GET", "/collections/h", None), ("GET", "/collections/h/stats", None),
                 ("GET", "/collections/h/ids", None), ("GET", "/methods", None),
                 ("POST", "/collections/h/search", {"vectors": [[0.0] * DIM]})]
        bad_auth = [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                    {"Authorization": f"Bearer {WKEY}x"}, {"Authorization": f"Bearer {WKEY[:-1]}"},
                    {"Authorization": f"bearer  {WKEY[:8]}"}, {"Authorization": "Bearer " + "a" * 10000}]
        st = [c.request(m, p, json=b, headers=h).status_code for m, p, b in writes + reads for h in bad_auth]
        record("auth: no key, unknown keys, other schemes (every route)", st, {401})
        st = [c.request(m, p, json=b, headers=R).status_code for m, p, b in writes]
        record("auth: read key on every write route", st, {403})

        st = [c.post("/collections/e/search", json={"vectors": [[0.1] * DIM], "rerank": rr, "k": k}, headers=R).status_code
              for rr in (True, False) for k in (1, 10, 10000)]
        record("search (re-ranked and not) on a trained, empty collection", st, {200})

        st = []
        for depth in (33, 256, 500, 949, 2000, 20000):
            body = '{"ids": [7], "vectors": [[0,0,0,0,0,0]], "payloads": [' + '{"a":' * depth + "1" + "}" * depth + "]}"
            st.append(c.post("/collections/h/points", content=body.encode(), headers={**W, **json_h}).status_code)
        for text in ('"\\ud800"', '"a\\udfff"', '{"\\ud800": 1}', '["x", "\\udbff\\udfff\\ud800"]'):
            body = '{"ids": [7], "vectors": [[0,0,0,0,0,0]], "payloads": [{"a": ' + text + "}]}"
            st.append(c.post("/collections/h/points", content=body.encode(), headers={**W, **json_h}).status_code)
        body = '{"ids": [7], "vectors": [[0,0,0,0,0,0]], "payloads": [{"\\ud800": 1}]}'
        st.append(c.post("/collections/h/points", content=body.encode(), headers={**W, **json_h}).status_code)
        record("payloads nested 33-20,000 deep, lone surrogates in values and keys", st, {422})
        reads_after = [c.post("/collections/h/points/get", json={"ids": [7]}, headers=R).status_code,
                       c.post("/collections/h/search", json={"vectors": [[0.0] * DIM], "k": 100}, headers=R).status_code]
        record("reads after those payloads", reads_after, {200})

        st = [c.put("/collections/h/hasher", content=data, headers={**W, "content-type": "application/octet-stream"}).status_code
              for data in _hostile_hashers().values()]
        record(f"hostile hasher files ({len(st)} kinds, incl. a 200k-deep header)", st, {422})
        st = [c.post("/collections/h/search", json={"vectors": [[0.0] * DIM]}, headers=R).status_code]
        record("search after the hostile uploads", st, {200})

        st = [c.put(f"/collections/{n}", json={"dim": 3}, headers=W).status_code
              for n in ("abc%0A", "abc%0D", "%2E%2E", "a%2Fb", "%00", "x" * 65, "-a", "_a", "%E2%98%83", "a%20b")]
        record("collection names: newline, dot-dot, slash, NUL, too long, unicode", st, {404, 422})

        Q = rng.normal(size=(100, DIM)).tolist()
        t0 = time.perf_counter()
        st = [c.post("/collections/h/search", json={"vectors": Q, "rerank": True, "candidates": cand}, headers=R).status_code
              for cand in (100, 10000, 100000, 10**9)]
        record("re-ranked search asking up to 10^9 candidates of a 100-point collection", st, {200, 422})
        out["re-ranked search asking up to 10^9 candidates of a 100-point collection"]["seconds"] = round(
            time.perf_counter() - t0, 2)

        big = [b'{"ids": [1], "vectors": [[1e400,0,0,0,0,0]]}', b'{"ids": [' + b"9" * 5000 + b'], "vectors": [[0,0,0,0,0,0]]}',
               b'{"ids": [1], "vectors": [[0,0,0,0,0,0]], "payloads": [{"a": ' + b"9" * 5000 + b"}]}",
               b"\xff\xfe{}", b"[" * 100000, b'{"ids": [1], "vectors": [[' + b"0," * 5 + b"0]]" + b"}" * 3,
               b"", b"null", b'{"ids": 5, "vectors": "x"}']
        st = [c.post("/collections/h/points", content=b, headers={**W, **json_h}).status_code for b in big]
        st += [c.post("/collections/h/search", content=b, headers={**W, **json_h}).status_code for b in big]
        record("malformed bodies: huge numbers, non-UTF-8, 100k-deep JSON, wrong types", st, {422})

    head = (f"POST /collections/h/points HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WKEY}\r\n"
            "Content-Type: application/json\r\n").encode()
    st = [_raw(srv.port, head + b"Content-Length: 1000\r\n\r\n{\"ids\"", 15),
          _raw(srv.port, head + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n0\r\n\r\n", 15),
          _raw(srv.port, b"POST /collections/h/points HTTP/1.1\r\nHost: x\r\nContent-Length: 52000000\r\n\r\n{", 15)]
    record("an incomplete body, Content-Length with Transfer-Encoding, 52 MB without a key", st, {408, 400, 401, 413})
    return out


def section(results: dict) -> str:
    runs = results["schemathesis"]
    hostile = results["hostile"]
    total_500 = sum(r["server_errors"] for r in runs) + sum(h["server_errors"] for h in hostile.values())
    lines = [
        "### Bad input: schemathesis and the hostile classes of the probe",
        "",
        f"Command: `{results['command']}` ({results['date']}, {results['seconds']:.0f} s, load average "
        f"{results['load_start'][0]} at the start). {machine_summary(results['machine'])} Server: `python -m hashlearn serve "
        f"{' '.join(results['server_args'])}` (a real process on loopback). schemathesis {results['schemathesis_version']}.",
        "",
        "| run | command (after `schemathesis`) | requests | answers by status | 5xx | exit code |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r, what in zip(runs, ("generated collection names", "every `{name}` = an existing trained collection, "
                                                            "no DELETE")):
        lines.append(f"| {what} | `{r['command'].replace('schemathesis ', '', 1)}` | {r['requests']:,} | "
                     + ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()) + f" | **{r['server_errors']}** | {r['exit_code']} |")
    lines += ["", "| hostile class (issue 13) | requests | answers by status | expected | 5xx |", "|---|---:|---|---|---:|"]
    for name, h in hostile.items():
        extra = f" ({h['seconds']} s for all)" if "seconds" in h else ""
        lines.append(f"| {name}{extra} | {h['requests']} | " + ", ".join(f"{k}: {v}" for k, v in h["statuses"].items())
                     + f" | {', '.join(map(str, h['expected']))}{'' if h['ok'] else ' (**not met**)'} | **{h['server_errors']}** |")
    lines += ["", f"Answers of 500 (or any 5xx) over both: **{total_500}**; server tracebacks in the log: "
                  f"**{results['tracebacks']}**. The test suite runs a bounded schemathesis pass in-process on every CI run "
                  "(`tests/test_service_fuzz.py`) and each hostile class as a regression test against a real server "
                  "(`tests/test_service_hardening.py`)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100, help="schemathesis examples per operation.")
    ap.add_argument("--seed", type=int, default=1, help="schemathesis seed.")
    ap.add_argument("--workdir", type=Path, default=BENCH / "out" / "service_fuzz", help="Scratch folder.")
    ap.add_argument("--section", type=Path, default=BENCH / "sections" / "service.md",
                    help="Markdown file whose service-fuzz section is rewritten.")
    ap.add_argument("--no-section", action="store_true", help="Do not write the Markdown section (trial runs).")
    args = ap.parse_args(argv)
    import schemathesis

    from hashlearn.service.process import ServerProcess

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    keys = args.workdir / "keys.txt"
    keys.write_text(f"{WKEY} write\n{RKEY} read\n")
    server_args = ["--max-body-mb", "8", "--max-batch", "500", "--max-queries", "100", "--body-timeout", "5"]
    t0 = time.time()
    results = {"command": command_line(), "date": now_iso(), "machine": machine_info(), "load_start": load_average(),
               "server_args": ["--data-dir", "data", "--api-keys", "keys.txt", *server_args],
               "schemathesis_version": getattr(schemathesis, "__version__", "?")}
    srv = ServerProcess(args.workdir / "data", keys, extra_args=server_args).start(timeout=300)
    try:
        import httpx

        rng = np.random.default_rng(0)
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            c.put("/collections/fuzz", json={"dim": 3, "n_bits": 16}, headers=W).raise_for_status()
            c.post("/collections/fuzz/points", json={"ids": list(range(50)), "vectors": rng.normal(size=(50, 3)).tolist(),
                                                     "payloads": [{"g": i % 2} for i in range(50)]}, headers=W).raise_for_status()
        runs = []
        for tag, name in (("generated", None), ("fixed", "fuzz")):
            runs.append(schemathesis_run(srv.url, args.workdir, tag, args.examples, args.seed, name))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "summary"}), flush=True)
        results["schemathesis"] = runs
        results["hostile"] = hostile_classes(srv)
        for name, h in results["hostile"].items():
            print(f"{name}: {h['statuses']} expected {h['expected']}", flush=True)
    finally:
        srv.stop()
    results["tracebacks"] = srv.log().count("Traceback")
    results["seconds"] = time.time() - t0
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    total = sum(r["server_errors"] for r in results["schemathesis"]) + sum(
        h["server_errors"] for h in results["hostile"].values())
    print(f"5xx answers: {total}; tracebacks in the server log: {results['tracebacks']}")
    if not args.no_section:
        print(f"wrote {update_markdown_section('service-fuzz', section(results), args.section)}")
    return 0 if total == 0 and all(h["ok"] for h in results["hostile"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
