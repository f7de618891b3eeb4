"""Thin driver of hashlearn.discover.bench: run a part to JSON, or write bench/sections/discover.md from JSONs.

    python bench/discover.py run --part ncd --data-dir ../shared/data/tabularncd --repeats 5 --json /tmp/ncd.json
    python bench/discover.py section /tmp/ncd.json /tmp/gcd.json --plots bench/plots --out bench/sections/discover.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path

from hashlearn.discover import bench

PAPER = {  # "A Method for Discovering Novel Classes in Tabular Data" (TabularNCD), README results table (SOURCE.txt)
    "Pendigits": "k-means 82.5 ± 0.0, TabularNCD 85.6 ± 0.8 (ACC %), NMI 0.72 → 0.76, ARI 0.63 → 0.71",
    "Satimage": "k-means 69.2 ± 0.2, TabularNCD 91.4 ± 5.0 (ACC %), NMI 0.30 → 0.71, ARI 0.28 → 0.79",
}


def _run(args):
    rows = bench.run(args.part, args.data_dir, seeds=tuple(range(args.seed, args.seed + args.repeats)))
    payload = {"part": args.part, "rows": rows, "summary": bench.summarize(rows),
               "command": f"python bench/discover.py run --part {args.part} --data-dir {args.data_dir} "
                          f"--seed {args.seed} --repeats {args.repeats}",
               "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 torch thread"}
    Path(args.json).write_text(json.dumps(payload, indent=1))


def _section(args):
    parts = [json.loads(Path(p).read_text()) for p in args.jsons]
    out = ["## Discovering categories (`hashlearn.discover`)\n"]
    for p in parts:
        rows = p["rows"]
        loads = (min(r["load_start"] for r in rows), max(r["load_end"] for r in rows))
        out.append(f"### part `{p['part']}`\n")
        out.append(f"Command: `{p['command']}` (equivalently `hashlearn bench discover --part {p['part']} ...`); "
                   f"run {p['date']} on {p['machine']}; load average {loads[0]:.2f} at start, {loads[1]:.2f} at end. "
                   "The peer (k-means) is measured in the same run on the same rows and seeds.\n")
        out.append(bench.markdown(p["summary"]))
        if p["part"] == "ncd":
            out.append("Scored on the test rows of the novel classes (the paper's `Clustering.py` protocol; "
                       "`acc_unlab` is the same model on the unlabelled training rows). Published numbers, "
                       "TabularNCD README results table as quoted in `tabularncd/SOURCE.txt`:\n")
            for name, text in PAPER.items():
                out.append(f"- {name}: {text}")
            out.append("")
        if args.plots:
            for path in bench.plot(rows, args.plots):
                out.append(f"![{p['part']}](../plots/{Path(path).name})\n")
    Path(args.out).write_text("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--part", required=True, choices=bench.PARTS)
    r.add_argument("--data-dir", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--json", required=True)
    s = sub.add_parser("section")
    s.add_argument("jsons", nargs="+")
    s.add_argument("--plots", default=None)
    s.add_argument("--out", default="bench/sections/discover.md")
    args = ap.parse_args()
    _run(args) if args.cmd == "run" else _section(args)


if __name__ == "__main__":
    main()
