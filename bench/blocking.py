"""Entity blocking: hashlearn's blockers vs datasketch.MinHashLSH and recordlinkage, in one run per dataset.

Sections (``--part``):

* ``febrl``  FEBRL 1-4 (recordlinkage's bundled data, true links included). Character 3-grams of all
             fields joined (lower-cased). Ours: ``MinHashBlocker`` (128 permutations) at thresholds 0.5 and
             0.4, plus a signature-filtered variant (band at 0.3, keep candidates whose *estimated* Jaccard
             is >= 0.35). Peer in the same run, interleaved: ``datasketch.MinHashLSH`` with the same
             permutations, threshold and the same shingle sets (its time includes Python shingling and
             sketching, which is what a user of it pays). Baselines: recordlinkage standard blocking on
             every single field (best PC among fields with RR >= 0.99) and sorted neighbourhood (window 3) on surname and
             given name. Time = best of ``--repeat`` runs; memory = tracemalloc peak of one extra untimed
             run (numpy and Python allocations; numba allocations go through numpy).
* ``er``     Abt-Buy, Amazon-Google, DBLP-ACM from ``../shared/data/er`` (skipped when missing).
             MinHash on all fields at threshold 0.2 (the issue's reference) and datasketch at the same
             setting; recordlinkage standard / sorted neighbourhood on the name field; frozen
             all-MiniLM-L6-v2 kNN (``embedding``) and the self-supervised ``neural`` blocker at k = 1, 5, 10
             candidates per record of the smaller table; a supervised ``neural`` variant trained on 30 % of
             the true matches, scored on the other 70 % only. Embeddings are cached in
             ``bench/out/emb`` (their one-off cost is reported separately).

Usage::

    OMP_NUM_THREADS=2 python bench/blocking.py --part febrl --repeat 3 --json bench/out/blocking_febrl.json
    OMP_NUM_THREADS=2 python bench/blocking.py --part er --json bench/out/blocking_er.json
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, machine_summary, markdown_table, write_json  # noqa: E402

from hashlearn.apps.blocking import (  # noqa: E402
    EmbeddingBlocker,
    MinHashBlocker,
    NeuralBlocker,
    blocking_metrics,
    prepare_table,
    read_table,
    read_truth,
)

OUT = Path(__file__).resolve().parent / "out"
ER = Path(__file__).resolve().parents[2] / "shared" / "data" / "er"


def _best_time(fn, repeat):
    times, res = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return min(times), res


def _peak_mib(fn):
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


# -- peers -----------------------------------------------------------------------------------------
def _shingle_sets(texts, q=3):
    out = []
    for t in texts:
        if len(t) >= q:
            out.append({t[i : i + q].encode("utf-8") for i in range(len(t) - q + 1)})
        else:
            out.append({t.encode("utf-8")} if t else set())
    return out


def datasketch_pairs(left_texts, right_texts, threshold, n_perm=128, q=3):
    """MinHashLSH candidates: shingle, sketch every record, insert the right table, query each left."""
    from datasketch import MinHash, MinHashLSH

    def sketch(texts):
        sigs = []
        for s in _shingle_sets(texts, q):
            m = MinHash(num_perm=n_perm, seed=1)
            if s:
                m.update_batch(list(s))
            sigs.append((m, bool(s)))
        return sigs

    lsh = MinHashLSH(threshold=threshold, num_perm=n_perm)
    L = sketch(left_texts)
    dedup = right_texts is None
    R = L if dedup else sketch(right_texts)
    for j, (m, ok) in enumerate(R):
        if ok:
            lsh.insert(j, m)
    out = []
    for i, (m, ok) in enumerate(L):
        if not ok:
            continue
        for j in lsh.query(m):
            if not dedup:
                out.append((i, j))
            elif i < j:
                out.append((i, j))
    return np.array(out, dtype=np.int64).reshape(-1, 2), (lsh.b, lsh.r)


def recordlinkage_pairs(kind, left_df, right_df, on, window=3):
    import recordlinkage as rl

    idx = rl.index.Block(on) if kind == "standard" else rl.index.SortedNeighbourhood(on, window=window)
    mi = idx.index(left_df) if right_df is None else idx.index(left_df, right_df)
    other = left_df if right_df is None else right_df
    a = left_df.index.get_indexer(mi.get_level_values(0))
    b = other.index.get_indexer(mi.get_level_values(1))
    p = np.stack([a, b], axis=1).astype(np.int64)
    return np.sort(p, axis=1) if right_df is None else p


def _row(dataset, method, params, pairs, truth, nl, nr, seconds, peak=None, extra=None):
    m = blocking_metrics(pairs, truth, nl, nr)
    small = min(nl, nr) if nr is not None else nl
    row = {"dataset": dataset, "method": method, "params": params, "PC": m["pair_completeness"],
           "RR": m["reduction_ratio"], "PQ": m["pairs_quality"], "candidates": m["n_candidates"],
           "cand/rec": m["n_candidates"] / small, "seconds": seconds,
           "cand/s": m["n_candidates"] / seconds if seconds else None, "peak MiB": peak}
    row.update(extra or {})
    print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return row


# -- FEBRL -----------------------------------------------------------------------------------------
def bench_febrl(names, repeat):
    from hashlearn.datasets import load_dataset

    rows = []
    for name in names:
        ds = load_dataset(name)
        dedup = ds.is_dedup
        L = prepare_table(ds.left, name="left")
        R = None if dedup else prepare_table(ds.right, name="right")
        nl, nr = len(L), (None if dedup else len(R))
        truth = ds.true_link_positions
        lt = L.texts()
        rt = None if dedup else R.texts()
        MinHashBlocker(0.5).candidate_pairs(L, R)  # compile / warm
        for thr in (0.5, 0.4):
            ours = MinHashBlocker(thr, n_perm=128, random_state=0)
            times = {"ours": [], "ds": []}
            for _ in range(repeat):  # interleaved
                for who in ("ours", "ds"):
                    gc.collect()
                    t0 = time.perf_counter()
                    res = ours.candidate_pairs(L, R) if who == "ours" else datasketch_pairs(lt, rt, thr)
                    times[who].append(time.perf_counter() - t0)
                    if who == "ours":
                        p_ours = res
                    else:
                        p_ds, ds_band = res
            pk_o = _peak_mib(lambda: ours.candidate_pairs(L, R))
            pk_d = _peak_mib(lambda: datasketch_pairs(lt, rt, thr))
            t_o, t_d = min(times["ours"]), min(times["ds"])
            rows.append(_row(name, "hashlearn minhash", f"t={thr}, 128 perm, b×r={ours.banding()}", p_ours, truth,
                             nl, nr, t_o, pk_o, {"speedup vs datasketch": t_d / t_o}))
            rows.append(_row(name, "datasketch MinHashLSH", f"t={thr}, 128 perm, b×r={ds_band}", p_ds, truth,
                             nl, nr, t_d, pk_d))
        filt = MinHashBlocker(0.3, n_perm=128, min_similarity=0.35, random_state=0)
        t, p = _best_time(lambda: filt.candidate_pairs(L, R), repeat)
        rows.append(_row(name, "hashlearn minhash + signature filter", "band t=0.3, est. J>=0.35", p, truth, nl, nr,
                         t, _peak_mib(lambda: filt.candidate_pairs(L, R))))
        # recordlinkage baselines
        left_df = ds.left
        right_df = None if dedup else ds.right
        best = None
        for col in left_df.columns:
            t, p = _best_time(lambda: recordlinkage_pairs("standard", left_df, right_df, col), 1)
            m = blocking_metrics(p, truth, nl, nr)
            score = (m["reduction_ratio"] >= 0.99, m["pair_completeness"])
            if best is None or score > best[0]:
                best = (score, col, p, t)
        rows.append(_row(name, "recordlinkage standard", f"on {best[1]} (best single field with RR >= 0.99)",
                         best[2], truth, nl, nr, best[3]))
        for col in ("surname", "given_name"):
            t, p = _best_time(lambda: recordlinkage_pairs("sn", left_df, right_df, col), 1)
            rows.append(_row(name, "recordlinkage sorted neighbourhood", f"on {col}, window 3", p, truth, nl, nr, t))
    return rows


# -- ER benchmarks ---------------------------------------------------------------------------------
ER_SETS = {
    "abt-buy": ("abt", "buy", "|", ["name"], "name"),
    "amazon-google": ("amazon", "gp", "#", ["title"], "title"),
    "dblp-acm": ("dblp", "acm", "%", ["title", "authors", "venue", "year"], "title"),
}


def _load_er(name):
    """(left frame, right frame, left table, right table, true matches) on all fields, or None if absent."""
    a, b, sep, fields, key = ER_SETS[name]
    d = ER / name
    if not (d / "gt.csv").exists():
        print(f"skip {name}: {d / 'gt.csv'} missing")
        return None
    dfl, dfr = read_table(d / f"{a}.csv", sep=sep), read_table(d / f"{b}.csv", sep=sep)
    Lall = prepare_table(dfl, id_col="id", name=a, fields=[c for c in dfl.columns if c != "id"])
    Rall = prepare_table(dfr, id_col="id", name=b, fields=[c for c in dfr.columns if c != "id"])
    return dfl, dfr, Lall, Rall, read_truth(d / "gt.csv", Lall, Rall, sep=sep)


def _er_embedder():
    """MiniLM with the benchmark's embedding cache; torch limited to the machine's 2 cores."""
    import torch

    torch.set_num_threads(2)
    from hashlearn.embed import Embedder

    return Embedder(cache_dir=OUT / "emb", show_progress=False)


def bench_er(names, epochs):
    E = _er_embedder()
    rows = []
    for name in names:
        loaded = _load_er(name)
        if loaded is None:
            continue
        dfl, dfr, Lall, Rall, truth = loaded
        a, b, sep, fields, key = ER_SETS[name]
        nl, nr = len(Lall), len(Rall)
        # minhash on all fields at 0.2 vs datasketch (the reference setting)
        mh = MinHashBlocker(0.2, n_perm=128, random_state=0)
        t, p = _best_time(lambda: mh.candidate_pairs(Lall, Rall), 1)
        rows.append(_row(name, "hashlearn minhash (all fields)", "t=0.2", p, truth, nl, nr, t))
        t, (p, band) = _best_time(lambda: datasketch_pairs(Lall.texts(), Rall.texts(), 0.2), 1)
        rows.append(_row(name, "datasketch MinHashLSH (all fields)", f"t=0.2, b×r={band}", p, truth, nl, nr, t))
        mk = MinHashBlocker(0.1, n_perm=128, max_per_record=10, random_state=0)
        t, p = _best_time(lambda: mk.candidate_pairs(Lall, Rall), 1)
        rows.append(_row(name, "hashlearn minhash top-10 (all fields)", "band t=0.1, best 10 per left by est. J",
                         p, truth, nl, nr, t))
        # recordlinkage on the key field (lower-cased, like ours)
        ldf = dfl.set_index("id").assign(**{key: lambda x: x[key].str.lower()})
        rdf = dfr.set_index("id").assign(**{key: lambda x: x[key].str.lower()})
        for kind, label in (("standard", "recordlinkage standard"), ("sn", "recordlinkage sorted neighbourhood")):
            t, p = _best_time(lambda: recordlinkage_pairs(kind, ldf, rdf, key), 1)
            rows.append(_row(name, label, f"on {key}" + (", window 3" if kind == "sn" else ""), p, truth, nl, nr, t))
        # embeddings
        L = prepare_table(dfl, id_col="id", name=a, fields=fields)
        R = prepare_table(dfr, id_col="id", name=b, fields=fields)
        t0 = time.perf_counter()
        E.encode(L.texts())
        E.encode(R.texts())
        emb_s = time.perf_counter() - t0
        print(f"{name}: embeddings ready in {emb_s:.1f} s (cached after the first run)", flush=True)
        for k in (1, 5, 10):
            blk = EmbeddingBlocker(k, embedder=E)
            t, p = _best_time(lambda: blk.candidate_pairs(L, R), 1)
            rows.append(_row(name, "embedding (frozen MiniLM kNN)", f"k={k}, fields={'+'.join(fields)}", p, truth,
                             nl, nr, t))
        nb = NeuralBlocker(1, n_bits=256, epochs=epochs, embedder=E, random_state=0)
        t_fit, _ = _best_time(lambda: nb.fit(L, R), 1)
        print(f"{name}: neural self-supervised training {t_fit:.1f} s (incl. embedding perturbed copies)", flush=True)
        for k in (1, 5, 10):
            nb.k = k
            t, p = _best_time(lambda: nb.candidate_pairs(L, R), 1)
            rows.append(_row(name, "neural (self-supervised)", f"k={k}, 256 bits, {epochs} epochs", p, truth, nl, nr,
                             t, extra={"train s": t_fit}))
        # supervised: 30 % of the matches for training, PC on the held-out 70 %
        rng = np.random.default_rng(0)
        perm = rng.permutation(truth.shape[0])
        n_tr = int(0.3 * truth.shape[0])
        train, test = truth[perm[:n_tr]], truth[perm[n_tr:]]
        ns = NeuralBlocker(1, n_bits=256, epochs=epochs, train_pairs=train, embedder=E, random_state=0)
        t_fit, _ = _best_time(lambda: ns.fit(L, R), 1)
        for k in (1, 5, 10):
            eb = EmbeddingBlocker(k, embedder=E)
            t, p = _best_time(lambda: eb.candidate_pairs(L, R), 1)
            rows.append(_row(name, "embedding (frozen), held-out 70 %", f"k={k}", p, test, nl, nr, t))
            ns.k = k
            t, p = _best_time(lambda: ns.candidate_pairs(L, R), 1)
            rows.append(_row(name, "neural (supervised, 30 % pairs), held-out 70 %", f"k={k}, {epochs} epochs", p,
                             test, nl, nr, t, extra={"train s": t_fit}))
    return rows


def bench_neural_ablation(names):
    """Where the neural blocker's PC goes: frozen exact kNN vs the same blocker untrained (lr 0: hashing of
    the frozen embeddings only) vs trained self-supervised, at 256 and 1,024 bits, k = 10."""
    E = _er_embedder()
    rows = []
    for name in names:
        loaded = _load_er(name)
        if loaded is None:
            continue
        dfl, dfr, Lall, Rall, truth = loaded
        a, b, sep, fields, key = ER_SETS[name]
        L = prepare_table(dfl, id_col="id", name=a, fields=fields)
        R = prepare_table(dfr, id_col="id", name=b, fields=fields)
        nl, nr = len(L), len(R)
        t, p = _best_time(lambda: EmbeddingBlocker(10, embedder=E).candidate_pairs(L, R), 1)
        rows.append(_row(name, "embedding (frozen MiniLM kNN)", "k=10", p, truth, nl, nr, t))
        for bits in (256, 1024):
            for label, lr in (("untrained (lr 0)", 0.0), ("self-supervised, 3 epochs", 1e-4)):
                nb = NeuralBlocker(10, n_bits=bits, lr=lr, embedder=E, random_state=0)
                t, p = _best_time(lambda: nb.candidate_pairs(L, R), 1)
                rows.append(_row(name, f"neural, {label}", f"k=10, {bits} bits", p, truth, nl, nr, t))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["febrl", "er", "all", "neural-ablation"], default="all")
    ap.add_argument("--febrl", default="febrl1,febrl2,febrl3,febrl4")
    ap.add_argument("--er", default="abt-buy,amazon-google,dblp-acm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    info = machine_info()
    print(machine_summary(info))
    rows = []
    if args.part in ("febrl", "all"):
        rows += bench_febrl(args.febrl.split(","), args.repeat)
    if args.part in ("er", "all"):
        rows += bench_er(args.er.split(","), args.epochs)
    if args.part == "neural-ablation":
        rows += bench_neural_ablation(args.er.split(","))
    cols = ["dataset", "method", "params", "PC", "RR", "PQ", "candidates", "cand/rec", "seconds", "cand/s",
            "peak MiB", "speedup vs datasketch"]
    print(markdown_table(rows, cols))
    if args.json:
        write_json(args.json, {"machine": info, "argv": sys.argv, "rows": rows})


if __name__ == "__main__":
    main()
