"""Supervised and deep hashing on MNIST (issue 15): shallow supervised, deep hashers on raw pixels, baselines.

Protocol (hashlearn.evaluate_supervised; Liu et al. 2012, Xia et al. 2014): 1,000 queries (100 per class)
from MNIST's test images, the other 69,000 images the database, 5,000 labelled training images drawn
from the database; mAP over the whole database at 32 bits. Rows: KSH, SDH, COSDISH, LFH (labels); the
deep hashers (DPSH, HashNet, CSQ, GreedyHash, DSH) with the small CNN on raw pixels; LSH (SimHash), ITQ
and faiss' IndexLSH (the peer, same run) fitted on the same 5,000 images without labels. Ablations: the
SNR distance vs Euclidean in DPSH's and DSH's losses, the Householder rotation vs an unconstrained
linear layer (DPSH), CSCE-Net's context gate + dynamic thresholds on and off (CSQ).

Every fit runs on one thread (torch and BLAS); each row is appended to the JSON as it finishes, and
``--resume`` skips rows already there. Writes bench/sections/hashing_supervised.md and
bench/plots/hashing_supervised_{map,pr32}.png. ``--dmveh`` adds DMVEH on mfeat's six views (64 bits). ``--section`` / ``--title`` / ``--json`` write a
separate section (plots named after it), e.g. for a few new rows run with ``--only``.

    /work/notes/heavy python bench/hashing_supervised.py --data-dir ../shared/data/mnist \\
        --json bench/out/hashing_supervised.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine_info, machine_summary, markdown_table, now_iso, write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
DEEP_EPOCHS = 40

# (label, method, params, group)
ROWS = [
    ("ksh", "ksh", {}, "shallow supervised"),
    ("sdh", "sdh", {}, "shallow supervised"),
    ("cosdish", "cosdish", {}, "shallow supervised"),
    ("lfh", "lfh", {}, "shallow supervised"),
    ("lsh (simhash)", "simhash", {}, "unsupervised"),
    ("itq", "itq", {}, "unsupervised"),
    ("faiss-lsh", "faiss-lsh", {}, "peer"),
    ("dpsh", "dpsh", {}, "deep (CNN, raw pixels)"),
    ("hashnet", "hashnet", {}, "deep (CNN, raw pixels)"),
    ("csq", "csq", {}, "deep (CNN, raw pixels)"),
    ("greedyhash", "greedyhash", {}, "deep (CNN, raw pixels)"),
    ("dsh", "dsh", {"distance": "euclidean"}, "deep (CNN, raw pixels)"),
    ("dpsh distance=snr", "dpsh", {"distance": "snr"}, "ablation: distance"),
    ("dsh distance=snr", "dsh", {"distance": "snr"}, "ablation: distance"),
    ("dpsh distance=euclidean", "dpsh", {"distance": "euclidean"}, "ablation: distance"),
    ("hashnet distance=euclidean", "hashnet", {"distance": "euclidean"}, "ablation: distance"),
    ("hashnet distance=snr", "hashnet", {"distance": "snr"}, "ablation: distance"),
    ("dpsh rotation=householder", "dpsh", {"rotation": "householder"}, "ablation: rotation"),
    ("dpsh rotation=linear", "dpsh", {"rotation": "linear"}, "ablation: rotation"),
    ("csq rotation=householder", "csq", {"rotation": "householder"}, "ablation: rotation"),
    ("csq rotation=linear", "csq", {"rotation": "linear"}, "ablation: rotation"),
    ("csq csce=True", "csq", {"csce": True}, "ablation: CSCE"),
    ("dtsh", "dtsh", {}, "deep (CNN, raw pixels)"),
    ("dtsh distance=euclidean", "dtsh", {"distance": "euclidean"}, "ablation: distance (triplet loss)"),
    ("dtsh distance=snr", "dtsh", {"distance": "snr"}, "ablation: distance (triplet loss)"),
]


def _deep_methods() -> set:
    from hashlearn import list_methods
    from hashlearn.hashing import get_hasher_class
    from hashlearn.hashing.deep import DeepHasher

    return {n for n in list_methods("vector") if issubclass(get_hasher_class(n), DeepHasher)}


def run(args) -> dict:
    import torch

    from hashlearn.evaluate_supervised import evaluate_supervised_method, load_supervised_split

    out = Path(args.json)
    data = json.loads(out.read_text()) if args.resume and out.exists() else {"rows": []}
    done = {r["label"] for r in data["rows"]}
    data.update({"command": " ".join(sys.argv), "machine": machine_info(), "n_labels": args.labels,
                 "bits": args.bits, "deep_epochs": args.epochs, "title": args.title})
    data.setdefault("started", now_iso())
    data.setdefault("load_start", load_average())
    split = load_supervised_split("mnist", n_labels=args.labels, data_dir=args.data_dir, random_state=args.seed)
    data["split"] = split.describe()
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    deep_methods = _deep_methods()
    try:
        for label, method, params, group in ROWS:
            if label in done or (args.only and label not in args.only.split(",")):
                continue
            extra = dict(params)
            if method in deep_methods:
                extra.update({"epochs": args.epochs, "n_threads": 1, "verbose": True})
            t0 = time.perf_counter()
            row = evaluate_supervised_method(method, args.bits, split, random_state=args.seed, **extra).as_dict()
            row.update({"label": label, "group": group, "params": params, "wall_seconds": time.perf_counter() - t0,
                        "load": load_average(), "commit": data["machine"].get("git_commit"),
                        "dirty": data["machine"].get("git_dirty")})
            print(f"{label:28s} mAP {row['map']:.4f}  P@1000 {row['precision_at']['1000']:.4f}  "
                  f"fit {row['fit_seconds']:.1f} s", flush=True)
            data["rows"].append(row)
            data["load_end"] = load_average()
            data["finished"] = now_iso()
            write_json(out, data)
    finally:
        torch.set_num_threads(old)
    return data


def run_dmveh(args) -> dict:
    """DMVEH on mfeat's 6 views at 64 bits, on the split of bench/crossmodal.py's mvh part (500 random
    queries, seed 0; the other 1,500 digits are database and labelled training set)."""
    import torch

    from hashlearn import codes
    from hashlearn.crossmodal.data import MFEAT_VIEWS, load_mfeat
    from hashlearn.crossmodal.dmveh import DeepMultiViewEnhancementHashing
    from hashlearn.metrics import hamming_ranking, mean_average_precision, relevance_from_labels

    out = Path(args.json)
    data = json.loads(out.read_text())
    views, y = load_mfeat(Path(args.mfeat_dir) / "handwritten.mat")
    perm = np.random.default_rng(0).permutation(len(y))
    q, t = np.sort(perm[:500]), np.sort(perm[500:])

    def m_ap(a, b, bits):
        D = codes.hamming_distances(a, b, n_bits=bits)
        return float(mean_average_precision(relevance_from_labels(y[q], y[t], hamming_ranking(D))))

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load0 = load_average()
        t0 = time.perf_counter()
        m = DeepMultiViewEnhancementHashing(n_bits=64, n_threads=1, random_state=0).fit([v[t] for v in views], y[t])
        fit_s = time.perf_counter() - t0
        rows = [{"method": "dmveh (fused, 6 views)", "map": m_ap(m.transform_fused([v[q] for v in views]),
                                                             m.transform_fused([v[t] for v in views]), 64),
                 "fit_s": fit_s}]
        for i, v in enumerate(views):
            rows.append({"method": f"dmveh, view {MFEAT_VIEWS[i]} alone", "map": m_ap(m.transform(v[q], i),
                                                                                   m.transform(v[t], i), 64),
                         "weight": float(m.view_weights_[i])})
    finally:
        torch.set_num_threads(old)
    data["dmveh"] = {"rows": rows, "load": [load0, load_average()], "date": now_iso(), "command": " ".join(sys.argv),
                     "commit": machine_info().get("git_commit")}
    write_json(out, data)
    for r in rows:
        print(r, flush=True)
    return data


def plots(data: dict, folder: Path, prefix: str = "hashing_supervised") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = [r for r in data["rows"] if not r["group"].startswith("ablation")]
    written = []
    colours = {"shallow supervised": "tab:blue", "unsupervised": "tab:gray", "peer": "black",
               "deep (CNN, raw pixels)": "tab:red"}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    order = sorted(rows, key=lambda r: r["map"])
    ax.barh([r["label"] for r in order], [r["map"] for r in order], color=[colours[r["group"]] for r in order])
    for i, r in enumerate(order):
        ax.text(r["map"] + 0.005, i, f"{r['map']:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel(f"mAP over the whole database ({data['bits']} bits)")
    ax.set_title(data["split"], fontsize=8)
    fig.tight_layout()
    path = folder / f"{prefix}_map.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for r in rows:
        c = r["pr_curve"]
        ax.plot(c["recall"], c["precision"], label=r["label"], color=colours[r["group"]],
                linestyle="--" if r["group"] in ("unsupervised", "peer") else "-", linewidth=1.2)
    ax.set_xlabel("recall (Hamming ball radius 0..bits)")
    ax.set_ylabel("precision (same class = relevant)")
    ax.set_title(f"MNIST, {data['bits']} bits, {data['n_labels']:,} labels", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = folder / f"{prefix}_pr{data['bits']}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def _compare(a: float, b: float) -> str:
    if a < 0.2 and b < 0.2:
        return "both collapsed to a near-constant code"
    if abs(a - b) < 0.005:
        return "equal within 0.005 (one seed)"
    return "at least as good" if a >= b else "worse"


def section(data: dict, written) -> str:
    rank = {label: i for i, (label, *_rest) in enumerate(ROWS)}
    rows = sorted(data["rows"], key=lambda r: rank.get(r["label"], len(ROWS)))
    by = {r["label"]: r for r in rows}
    table_rows = [{"label": r["label"], "group": r["group"], "labels": "yes" if r["supervised"] else "no",
                   "map": r["map"], "p100": r["precision_at"]["100"], "p1000": r["precision_at"]["1000"],
                   "pr2": r["precision_radius2"], "fit": r["fit_seconds"], "enc": r["encode_per_s"]} for r in rows]
    cols = [("label", "method"), ("group", "group"), ("labels", "labels"), ("map", "mAP"), ("p100", "P@100"),
            ("p1000", "P@1000"), ("pr2", "P(r≤2)"), ("fit", "fit s (1 thread)"), ("enc", "encode vec/s")]
    lines = [f"## {data.get('title', 'Supervised and deep hashing on MNIST')} ({data['bits']} bits, {data['n_labels']:,} labels)", "",
             f"Command: `{data['command']}` (through `/work/notes/heavy`, one thread). Run {data['started']} → "
             f"{data.get('finished')}; load average at start {data['load_start']}, at end {data.get('load_end')}.",
             "", machine_summary(data["machine"]), "",
             "Rows by commit (a `--resume` pass reruns only missing rows): "
             + "; ".join(f"{c}: {', '.join(r['label'] for r in rows if r.get('commit', '?') == c)}"
                         for c in dict.fromkeys(r.get("commit", "?") for r in rows)) + ".", "",
             f"Protocol: {data['split']}; 1,000 queries = 100 per class from MNIST's test images; mAP over the "
             "whole database (Hamming ranking, ties by database index, same class = relevant). Supervised methods "
             f"see the {data['n_labels']:,} labels; LSH, ITQ and faiss' `IndexLSH` (the peer, same run) are fitted on the same "
             f"images without them. Deep hashers: the small CNN on raw pixels, at most {data['deep_epochs']} epochs, "
             "early stopping on 10% of the labelled images.", "", markdown_table(table_rows, cols), ""]
    shallow = [r for r in rows if r["group"] == "shallow supervised"]
    deep = [r for r in rows if r["group"].startswith("deep")]
    checks = []
    if shallow:
        best = max(shallow, key=lambda r: r["map"])
        ks = max((by[k]["map"] for k in ("ksh", "sdh") if k in by), default=float("nan"))
        checks.append(f"- KSH or SDH ≥ 0.85: best of the two {ks:.3f} → {'met' if ks >= 0.85 else 'missed'} "
                      f"(best shallow: {best['label']} {best['map']:.3f}; published KSH 0.897, Xia et al. 2014 "
                      "Table 2, full MNIST).")
    if deep:
        bd = max(deep, key=lambda r: r["map"])
        checks.append(f"- Best deep hasher ≥ 0.95: {bd['label']} {bd['map']:.3f} → "
                      f"{'met' if bd['map'] >= 0.95 else 'missed'}.")
        if shallow:
            worst_deep = min(r["map"] for r in deep)
            best_sh = max(r["map"] for r in shallow)
            checks.append(f"- Every deep hasher above every shallow one: lowest deep {worst_deep:.3f} vs best "
                          f"shallow {best_sh:.3f} → {'met' if worst_deep > best_sh else 'missed'}.")
        slow = max(deep, key=lambda r: r["fit_seconds"])
        checks.append(f"- Deep fit ≤ 5 min: slowest {slow['label']} {slow['fit_seconds']:.0f} s on one thread → "
                      f"{'met' if slow['fit_seconds'] <= 300 else 'missed'}.")
    for a, b, what in (("dpsh distance=snr", "dpsh distance=euclidean", "SNR vs Euclidean (DPSH)"),
                       ("dpsh distance=snr", "dpsh", "SNR vs inner product (DPSH, its default)"),
                       ("dsh distance=snr", "dsh", "SNR vs Euclidean (DSH)"),
                       ("hashnet distance=snr", "hashnet distance=euclidean", "SNR vs Euclidean (HashNet)"),
                       ("hashnet distance=snr", "hashnet", "SNR vs inner product (HashNet, its default)"),
                       ("dpsh rotation=householder", "dpsh rotation=linear", "Householder vs linear rotation (DPSH)"),
                       ("csq rotation=householder", "csq rotation=linear", "Householder vs linear rotation (CSQ)"),
                       ("csq rotation=householder", "csq", "Householder rotation vs none (CSQ)"),
                       ("csq csce=True", "csq", "CSCE context + dynamic thresholds vs none (CSQ)"),
                       ("dtsh distance=snr", "dtsh distance=euclidean", "SNR vs Euclidean (DTSH, triplet loss)"),
                       ("dtsh distance=snr", "dtsh", "SNR vs inner product (DTSH, its default)")):
        if a in by and b in by:
            checks.append(f"- {what}: {by[a]['map']:.3f} vs {by[b]['map']:.3f} ({_compare(by[a]['map'], by[b]['map'])}).")
    if all(k in by for k in ("itq", "faiss-lsh", "lsh (simhash)")):
        checks.append(f"- Baselines: ITQ {by['itq']['map']:.3f} (published 0.422, Xia et al. 2014), LSH "
                      f"{by['lsh (simhash)']['map']:.3f}, faiss IndexLSH {by['faiss-lsh']['map']:.3f} (published LSH 0.235).")
    lines += ["Targets of issue 15 (computed from this run):", "", *checks, ""]
    if "dmveh" in data:
        dm = data["dmveh"]
        fused = dm["rows"][0]
        single = max(dm["rows"][1:], key=lambda r: r["map"])
        lines += ["### DMVEH on mfeat's six views (64 bits)", "",
                  f"Command: `{dm['command']}` at {dm['date']} (commit {dm['commit']}), load {dm['load'][0]} → "
                  f"{dm['load'][1]}. Split of `bench/crossmodal.py mvh`: 500 random query digits (seed 0), the "
                  "other 1,500 the database and the labelled training set; mAP by label over the Hamming ranking.", "",
                  markdown_table([{"m": r["method"], "map": r["map"], "w": r.get("weight"), "fit": r.get("fit_s")}
                                  for r in dm["rows"]],
                                 [("m", "method"), ("map", "mAP"), ("w", "view weight"), ("fit", "fit s (1 thread)")]),
                  "", f"- Above the unsupervised multi-view `mvh` (0.908 at 64 bits, bench/sections/crossmodal.md, "
                  f"another day): {fused['map']:.3f} → {'met' if fused['map'] > 0.908 else 'missed'}.",
                  f"- Above the best single view (its own code of that view: {single['method']}, {single['map']:.3f}): "
                  f"{'met' if fused['map'] > single['map'] else 'missed'} (difference "
                  f"{fused['map'] - single['map']:+.3f}).", ""]
    lines += [f"![mAP]({Path('..') / 'plots' / p.name})" for p in written]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--labels", type=int, default=5000)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=DEEP_EPOCHS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated row labels to run")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--dmveh", action="store_true", help="run the DMVEH mfeat part only (adds to the JSON)")
    ap.add_argument("--mfeat-dir", default=str(HERE.parent.parent / "shared" / "data" / "mfeat"))
    ap.add_argument("--json", default=str(HERE / "out" / "hashing_supervised.json"))
    ap.add_argument("--section", default=str(HERE / "sections" / "hashing_supervised.md"))
    ap.add_argument("--title", default="Supervised and deep hashing on MNIST", help="heading of the section")
    args = ap.parse_args(argv)
    if args.dmveh:
        data = run_dmveh(args)
    else:
        data = json.loads(Path(args.json).read_text()) if args.render_only else run(args)
    written = plots(data, HERE / "plots", prefix=Path(args.section).stem)
    Path(args.section).write_text(section(data, written))
    print(f"wrote {args.section}")


if __name__ == "__main__":
    main()
