"""Thin driver of hashlearn.represent.bench: run a part to JSON, or write bench/sections/represent.md from JSONs.

    python bench/represent.py run --part mcr2 --data-dir ../shared/data/mnist --json bench/out/represent_mcr2.json
    python bench/represent.py section bench/out/represent_*.json --plots bench/plots/represent
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path

from hashlearn.represent import bench


def _run(args):
    rows = bench.run(args.part, args.data_dir, seeds=tuple(range(args.seed, args.seed + args.repeats)), progress=True,
                     plots=args.plots)
    payload = {"part": args.part, "rows": rows, "summary": bench.summarize(rows),
               "command": f"python bench/represent.py run --part {args.part} --data-dir {args.data_dir} "
                          f"--seed {args.seed} --repeats {args.repeats} --json {args.json}",
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 torch thread "
                          "(through /work/notes/heavy), no GPU"}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(payload, indent=1, default=str))
    if args.plots:
        bench.plot(rows, args.plots)


def _section(args):  # written once the runs are in
    raise SystemExit("section: not written yet")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--part", required=True, choices=bench.PARTS)
    r.add_argument("--data-dir", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--json", required=True)
    r.add_argument("--plots", default=None)
    s = sub.add_parser("section")
    s.add_argument("jsons", nargs="+")
    s.add_argument("--plots", default="bench/plots/represent")
    s.add_argument("--out", default="bench/sections/represent.md")
    args = ap.parse_args()
    _run(args) if args.cmd == "run" else _section(args)


if __name__ == "__main__":
    main()
