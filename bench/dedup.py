"""Near-duplicate detection at scale: ``hashlearn dedup`` on up to 1,000,000 short texts.

Data: synthetic short texts (8-16 words drawn from a Zipf(1.1) vocabulary of 50,000 words); a fraction
``--dup-rate`` of them are near-duplicates of an earlier text (1-2 word substitutions, deletions or a
swap of adjacent words). The planted (copy, source) pairs give a recall; every reported pair is verified
by exact Jaccard, so precision w.r.t. the threshold is 1 by construction; recall is measured on the
planted pairs whose exact Jaccard is >= the threshold.

Parts:

* ``scale``  the CLI path (``hashlearn dedup texts.txt``: texts streamed from disk twice, never held in
             memory) in a fresh subprocess; its peak RSS is the child's ``VmHWM`` (whole run, incl. imports).
* ``peer``   on the first ``--peer-n`` texts, in one process, interleaved: our ``NearDuplicates`` vs
             ``datasketch.MinHashLSH`` (same permutations, threshold and shingles; datasketch gives
             candidates only, so its time is sketch + insert + query, without verification).

Usage::

    OMP_NUM_THREADS=2 python bench/dedup.py --n 1000000 --peer-n 50000 --json bench/out/dedup.json
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, machine_summary, markdown_table, write_json  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def make_corpus(n, dup_rate=0.1, seed=0, vocab=50_000):
    """(texts, planted) where planted[i] = source index of a planted near-duplicate i, else -1."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1)
    p = ranks ** -1.1
    p /= p.sum()
    words = np.array([f"w{i:x}" for i in range(vocab)])
    lens = rng.integers(8, 17, size=n)
    flat = rng.choice(vocab, size=int(lens.sum()), p=p)
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    texts = [" ".join(words[flat[s : s + m]]) for s, m in zip(starts, lens)]
    planted = np.full(n, -1, dtype=np.int64)
    dups = np.flatnonzero(rng.random(n) < dup_rate)
    dups = dups[dups > 0]
    for i in dups:
        src = int(rng.integers(0, i))
        w = texts[src].split()
        for _ in range(int(rng.integers(1, 3))):
            op, j = rng.integers(3), int(rng.integers(len(w)))
            if op == 0:
                w[j] = words[rng.choice(vocab, p=p)]
            elif op == 1 and len(w) > 4:
                del w[j]
            elif j + 1 < len(w):
                w[j], w[j + 1] = w[j + 1], w[j]
        texts[i] = " ".join(w)
        planted[i] = src
    return texts, planted


def planted_pairs(texts, planted, threshold, q):
    """Planted (copy, source) pairs whose exact q-gram Jaccard is >= threshold (the ones to find)."""
    from hashlearn.apps.dedup import exact_jaccard_pairs

    idx = np.flatnonzero(planted >= 0)
    pairs = np.stack([idx, planted[idx]], axis=1)
    J = exact_jaccard_pairs(texts, pairs, q=q)
    return pairs[J >= threshold], pairs.shape[0]


def planted_recall(labels, pairs):
    """Fraction of the given pairs whose two texts ended in the same cluster."""
    return float(np.mean(labels[pairs[:, 0]] == labels[pairs[:, 1]])) if pairs.size else 1.0


def run_scale(n, threshold, q, seed):
    texts, planted = make_corpus(n, seed=seed)
    targets, n_planted = planted_pairs(texts, planted, threshold, q)
    path = OUT / f"dedup_{n}.txt"
    path.write_text("\n".join(texts) + "\n")
    del texts
    out_json = OUT / f"dedup_{n}.json"
    clusters = OUT / f"dedup_{n}_clusters.csv"
    # Peak RSS is VmHWM of the child's own address space: ru_maxrss would not do, Linux carries the
    # (large) RSS of the forked parent, which holds the generated corpus, across execve into the child.
    code = ("import sys; from hashlearn.cli import main; "
            f"rc = main(['dedup', {str(path)!r}, '--threshold', '{threshold}', '--q', '{q}', '--json', "
            f"{str(out_json)!r}, '-o', {str(clusters)!r}, '--quiet']); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
            "print('PEAK_RSS_MIB', int(hwm) / 1024); sys.exit(rc)")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak = float(proc.stdout.split("PEAK_RSS_MIB")[1].split()[0])
    summary = json.loads(out_json.read_text())
    import pandas as pd

    cl = pd.read_csv(clusters)
    labels = np.arange(n)
    labels[cl.id.to_numpy()] = cl.cluster.to_numpy()
    row = {"n": n, "threshold": threshold, "q": q, "seconds (in-run)": summary["seconds"],
           "wall incl. start-up + writing": wall, "peak RSS MiB (whole process)": peak,
           "texts/s": summary["texts_per_second"], "clusters": summary["n_clusters"],
           "duplicates": summary["n_duplicates"], "candidates": summary["n_candidates"],
           "verified pairs": summary["n_verified_pairs"], "planted pairs (J >= t / all)": f"{len(targets)} / {n_planted}",
           "recall of planted pairs with J >= t": planted_recall(labels, targets),
           "file MiB": path.stat().st_size / 2**20}
    row.update({k: v for k, v in summary.items() if k.startswith("seconds_")})
    print(row, flush=True)
    return row


def run_peer(n, threshold, q, seed, repeat):
    from datasketch import MinHash, MinHashLSH

    from hashlearn.apps.dedup import NearDuplicates

    texts, planted = make_corpus(n, seed=seed)
    targets, _ = planted_pairs(texts, planted, threshold, q)
    nd = NearDuplicates(threshold, q=q, random_state=0)
    nd.run(texts[:1000])  # compile

    def ours():
        return nd.run(texts)

    def theirs():
        lsh = MinHashLSH(threshold=threshold, num_perm=128)
        sigs = []
        for i, t in enumerate(texts):
            m = MinHash(num_perm=128, seed=1)
            sh = {t[j : j + q].encode() for j in range(len(t) - q + 1)} if len(t) >= q else {t.encode()}
            m.update_batch(list(sh))
            lsh.insert(i, m)
            sigs.append(m)
        cand = 0
        for i, m in enumerate(sigs):
            cand += sum(1 for j in lsh.query(m) if j > i)
        return cand

    times = {"ours": [], "ds": []}
    for _ in range(repeat):
        for who, fn in (("ours", ours), ("ds", theirs)):
            gc.collect()
            t0 = time.perf_counter()
            res = fn()
            times[who].append(time.perf_counter() - t0)
            if who == "ours":
                r_ours = res
            else:
                cand_ds = res
    t_o, t_d = min(times["ours"]), min(times["ds"])
    rows = [
        {"n": n, "method": "hashlearn NearDuplicates (sketch+LSH+exact verify+clusters)", "seconds": t_o,
         "candidates": r_ours.n_candidates, "verified pairs": r_ours.pairs.shape[0],
         "recall of planted pairs with J >= t": planted_recall(r_ours.labels, targets), "speedup": t_d / t_o},
        {"n": n, "method": "datasketch MinHashLSH (sketch+insert+query, no verify)", "seconds": t_d,
         "candidates": cand_ds},
    ]
    for r in rows:
        print(r, flush=True)
    return rows


ER = Path(__file__).resolve().parents[2] / "shared" / "data" / "er"
REAL_SETS = {"dblp-acm": ("dblp", "acm", "%", ["title"]), "abt-buy": ("abt", "buy", "|", ["name"]),
             "amazon-google": ("amazon", "gp", "#", ["title"])}


def run_real(thresholds=(0.5, 0.6, 0.7, 0.8, 0.9), q=5):
    """Real duplicates: the two tables of each ER benchmark pooled into one list of titles / names, the
    benchmark's true matches as the duplicates to find. Against exact all-pairs Jaccard (every pair
    scored, no LSH) it gives the LSH recall of ``NearDuplicates``; against the true matches it says how
    far character-q-gram near-duplicate detection goes on real records."""
    from hashlearn.apps.blocking import prepare_table, read_table, read_truth
    from hashlearn.apps.dedup import NearDuplicates, exact_jaccard_pairs

    rows = []
    for name, (a, b, sep, fields) in REAL_SETS.items():
        d = ER / name
        if not (d / "gt.csv").exists():
            print(f"skip {name}: {d / 'gt.csv'} missing")
            continue
        dfl, dfr = read_table(d / f"{a}.csv", sep=sep), read_table(d / f"{b}.csv", sep=sep)
        L = prepare_table(dfl, id_col="id", name=a, fields=fields)
        R = prepare_table(dfr, id_col="id", name=b, fields=fields)
        truth = read_truth(d / "gt.csv", L, R, sep=sep)
        texts = L.texts() + R.texts()
        n = len(texts)
        T = {(int(i), int(len(L) + j)) for i, j in truth.tolist()}
        # exact Jaccard of every pair i < j, in chunks
        t0 = time.perf_counter()
        iu, ju = np.triu_indices(n, 1)
        J = np.empty(iu.size)
        for s in range(0, iu.size, 2_000_000):
            J[s:s + 2_000_000] = exact_jaccard_pairs(texts, np.stack([iu[s:s + 2_000_000], ju[s:s + 2_000_000]], 1), q=q)
        t_exact = time.perf_counter() - t0
        for t in thresholds:
            keep = J >= t
            E = set(zip(iu[keep].tolist(), ju[keep].tolist()))
            nd = NearDuplicates(t, q=q, random_state=0)
            t0 = time.perf_counter()
            res = nd.run(texts)
            secs = time.perf_counter() - t0
            F = set(map(tuple, res.pairs.tolist()))
            row = {"dataset": name, "records": n, "true matches": len(T), "threshold": t,
                   "exact pairs >= t": len(E), "found pairs": len(F),
                   "LSH recall vs exact": len(F & E) / len(E) if E else 1.0,
                   "found not >= t": len(F - E),
                   "precision vs true matches": len(F & T) / len(F) if F else float("nan"),
                   "recall of true matches": len(F & T) / len(T),
                   "exact: recall of true matches": len(E & T) / len(T),
                   "found non-matches in one table": sum((i < len(L)) == (j < len(L)) for i, j in F - T),
                   "found non-matches, identical text": sum(texts[i] == texts[j] for i, j in F - T),
                   "seconds": secs, "exact all-pairs seconds": t_exact}
            print(row, flush=True)
            rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--peer-n", type=int, default=50_000)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--q", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--part", choices=["scale", "peer", "all", "real"], default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    info = machine_info()
    print(machine_summary(info))
    res = {"machine": info, "argv": sys.argv}
    if args.part in ("peer", "all"):
        res["peer"] = run_peer(args.peer_n, args.threshold, args.q, args.seed, args.repeat)
        print(markdown_table(res["peer"], list(res["peer"][0].keys())))
    if args.part in ("scale", "all"):
        res["scale"] = [run_scale(args.n, args.threshold, args.q, args.seed)]
        print(markdown_table(res["scale"], list(res["scale"][0].keys())))
    if args.part == "real":
        res["real"] = run_real(q=args.q)
        print(markdown_table(res["real"], list(res["real"][0].keys())))
    if args.json:
        write_json(args.json, res)


if __name__ == "__main__":
    main()
