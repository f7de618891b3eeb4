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
PAPER_ACC = {"Pendigits": 85.6, "Satimage": 91.4}


def _find(summary, **kw):
    return next((s for s in summary if all(s.get(k) == v for k, v in kw.items())), None)


def _findings(p) -> list[str]:
    """Sentences computed from the run's summary (no typed-in figures except the quoted paper numbers)."""
    summ, out = p["summary"], []
    if p["part"] == "ncd":
        for name, paper in PAPER_ACC.items():
            km, ncd = _find(summ, dataset=name, method="kmeans"), _find(summ, dataset=name, method="tabularncd")
            if km and ncd:
                out.append(f"- {name}: TabularNCD {100 * ncd['acc']:.1f} % vs k-means {100 * km['acc']:.1f} % "
                           f"({100 * (ncd['acc'] - km['acc']):+.1f} points); paper {paper} % "
                           f"(our mean is {100 * ncd['acc'] - paper:+.1f} points from it).")
    elif p["part"] == "gcd":
        km = _find(summ, method="kmeans")
        for m in ("gmm", "gmm-estk"):
            g = _find(summ, method=m)
            if km and g:
                ks = f", estimated K {g['k_values']}" if "k_values" in g else ""
                out.append(f"- {m}: All {100 * g['all']:.1f} % vs k-means {100 * km['all']:.1f} % "
                           f"({100 * (g['all'] - km['all']):+.1f} points){ks}.")
    elif p["part"] == "lls":
        for s in summ:
            if s["method"] == "lls":
                km = _find(summ, dataset=s["dataset"], method="kmeans")
                out.append(f"- {s['dataset']}: LatentLabelShift {100 * s['acc']:.1f} % vs k-means "
                           f"{100 * km['acc']:.1f} % ({100 * (s['acc'] - km['acc']):+.1f} points).")
    elif p["part"] == "fewshot":
        out.append("- Published: Prototypical Networks (Snell et al., 2017, Table 1) report 98.8 % 5-way 1-shot and "
                   "96.0 % 20-way 1-shot on Omniglot with a 64-channel Conv-4 and 28×28 inputs (rotation-augmented "
                   "classes).")
        for enc in dict.fromkeys(s["encoder"] for s in summ):
            for w, k in dict.fromkeys((s["ways"], s["shots"]) for s in summ if s["encoder"] == enc):
                base = _find(summ, encoder=enc, ways=w, shots=k, method="prototypes")
                parts = [f"{s['method']} {100 * (s['acc'] - base['acc']):+.2f}" for s in summ
                         if s["encoder"] == enc and (s["ways"], s["shots"]) == (w, k) and s["method"] != "prototypes"]
                out.append(f"- {enc} {w}-way {k}-shot: prototypes {100 * base['acc']:.2f} %; "
                           f"transductive methods vs prototypes (points): {', '.join(parts)}.")
    return out


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
                   f"run {p['date']} on {p['machine']}; load average {loads[0]:.2f} at start, {loads[1]:.2f} at end "
                   "(other agents' jobs shared the 2 cores). "
                   + ("The inductive baseline (prototypes) runs on the same encoder and episodes; 600 episodes "
                      "per setting, 15 queries per class, 95 % intervals over episodes. Encoders fitted on the 964 "
                      "background characters (28×28): PCA to 64 dimensions, and a 4-block 32-channel ConvNet "
                      "trained 2,000 20-way 1-shot prototypical episodes on 1 CPU thread (`fit_s` in the JSON).\n"
                      if p["part"] == "fewshot" else
                      "The peer (k-means) is measured in the same run on the same rows and seeds.\n"))
        out.append(bench.markdown(p["summary"]))
        out.extend(_findings(p) + [""])
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
