"""Seismic vs exhaustive scoring vs a plain inverted index, in Seismic's regime: many passages, long
weighted (expanded) queries.

Data (offline): BEIR SciFact (``/work/shared/data/scifact/``). Each abstract is split into passages of
``--sentences`` sentences (title prepended to the first one), giving ~tens of thousands of passages.
Documents are BM25-weighted term vectors (:func:`hashlearn.text.sparse.term_vectors`). Queries are the
1,109 SciFact claims expanded RM3-style: the query's BM25 top-``--fb-docs`` passages give a feedback
term distribution (score-weighted, L1-normalised passage vectors), whose ``--fb-terms`` heaviest terms are
mixed with the L1-normalised original query (weight ``--orig-weight``), giving ~30-60 weighted terms, as
learned-sparse queries have. Ground truth: exact top-10 of the expanded queries.

Queries are split: the first ``--dev`` (seeded shuffle) tune Seismic's parameters, the rest are the test set
on which every reported number is measured. All searches single-threaded (numba kernels / scipy).

Usage::

    OMP_NUM_THREADS=1 python bench/text_sparse.py            # sweep, JSON to bench/out/text_sparse.json
    python bench/text_sparse.py --markdown                     # bench/sections/text_sparse.md from the JSON
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_json  # noqa: E402

DATA = Path("/work/shared/data/scifact")
OUT = Path(__file__).resolve().parent / "out"
SECTION = Path(__file__).resolve().parent / "sections" / "text_sparse.md"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def _log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def passages(sentences_per_passage: int):
    texts = []
    for line in open(DATA / "corpus.jsonl", encoding="utf-8"):
        d = json.loads(line)
        sents = [s for s in _SENT.split(d.get("text", "")) if s.strip()]
        if not sents:
            sents = [""]
        for i in range(0, len(sents), sentences_per_passage):
            p = " ".join(sents[i:i + sentences_per_passage])
            texts.append((d.get("title", "") + " " + p) if i == 0 else p)
    return texts


def expanded_queries(D, Q0, fb_docs: int, fb_terms: int, orig_weight: float):
    """RM3-style pseudo-relevance feedback on the BM25 vectors (see the module docstring)."""
    import scipy.sparse as sp

    from hashlearn.text.sparse import exhaustive_search

    s, ids = exhaustive_search(D, Q0, fb_docs)
    Dn = sp.csr_matrix(D.multiply(1.0 / np.maximum(np.asarray(D.sum(axis=1)), 1e-12)))
    rows, cols, vals = [], [], []
    for qi in range(Q0.shape[0]):
        ok = ids[qi] >= 0
        if ok.any():
            w = s[qi][ok] / s[qi][ok].sum()
            fb = np.asarray(Dn[ids[qi][ok]].T @ w).ravel()
        else:
            fb = np.zeros(D.shape[1])
        top = np.argpartition(-fb, fb_terms)[:fb_terms]
        top = top[fb[top] > 0]
        q = np.zeros(D.shape[1])
        q0 = Q0[qi].toarray().ravel()
        if q0.sum() > 0:
            q += orig_weight * q0 / q0.sum()
        if fb[top].sum() > 0:
            q[top] += (1 - orig_weight) * fb[top] / fb[top].sum()
        nz = np.flatnonzero(q)
        rows += [qi] * len(nz)
        cols += nz.tolist()
        vals += q[nz].tolist()
    return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=Q0.shape)


def timed(fn, repeat=3):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def recall_at(ref, ids):
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (a >= 0).sum()) for a, b in zip(ref, ids)]))


def run(args):
    from hashlearn.text.sparse import (InvertedIndex, SeismicIndex, exhaustive_search, exhaustive_search_numba,
                                       term_vectors)

    t0 = time.perf_counter()
    texts = passages(args.sentences)
    qtexts = [json.loads(line)["text"] for line in open(DATA / "queries.jsonl", encoding="utf-8")]
    D, Q0, vocab = term_vectors(texts, qtexts)
    Q = expanded_queries(D, Q0, args.fb_docs, args.fb_terms, args.orig_weight)
    _log(f"{D.shape[0]} passages, V={D.shape[1]}, {D.nnz / D.shape[0]:.1f} terms/passage; queries "
         f"{Q0.nnz / Q0.shape[0]:.1f} -> {Q.nnz / Q.shape[0]:.1f} terms after expansion "
         f"({time.perf_counter() - t0:.1f} s)")
    perm = np.random.default_rng(0).permutation(Q.shape[0])
    dev, test = Q[np.sort(perm[:args.dev])], Q[np.sort(perm[args.dev:])]
    nt = test.shape[0]

    _, (ref_dev_s, ref_dev) = timed(lambda: exhaustive_search(D, dev, 10), 1)
    t_scipy, (ref_s, ref) = timed(lambda: exhaustive_search(D, test, 10))
    exhaustive_search_numba(D, test[:2], 10)
    t_fwd, (fs, fi) = timed(lambda: exhaustive_search_numba(D, test, 10))
    t0 = time.perf_counter()
    inv = InvertedIndex().fit(D)
    inv_build = time.perf_counter() - t0
    inv.search(test[:2], 10)
    t_inv, (_, ti) = timed(lambda: inv.search(test, 10))
    base = [{"method": "exhaustive, scipy CSR product (Q @ X.T, query blocks of 256)", "ms_per_query": 1e3 * t_scipy / nt,
             "recall@10": 1.0},
            {"method": "exhaustive, numba forward-index scan (every passage)", "ms_per_query": 1e3 * t_fwd / nt,
             "recall@10": recall_at(ref, fi)},
            {"method": "plain inverted index (exact, term-at-a-time)", "ms_per_query": 1e3 * t_inv / nt,
             "recall@10": recall_at(ref, ti), "build_s": inv_build,
             "memory_mb": (inv.post_ptr_.nbytes + inv.post_docs_.nbytes + inv.post_vals_.nbytes) / 2**20}]
    for r in base:
        _log(f"{r['method']}: {r['ms_per_query']:.3f} ms/q, recall {r['recall@10']:.4f}")

    SeismicIndex(posting_length=50, block_size=8, random_state=0).fit(D[:500]).search(dev[:2], 10)  # JIT warm-up
    rows = []
    for pl in args.posting_length:
        for bs in args.block_size:
            for en, cv in itertools.product(args.summary_energy, args.block_vectors):
                t0 = time.perf_counter()
                s = SeismicIndex(posting_length=pl, block_size=bs, summary_energy=en, copy_block_vectors=bool(cv),
                                 random_state=0).fit(D)
                build = time.perf_counter() - t0
                mem = sum(s.memory_bytes().values()) / 2**20
                s.search(dev[:2], 10)
                for qc, hf, bo in itertools.product(args.query_cut, args.heap_factor, args.block_order):
                        td, (_, di) = timed(lambda: s.search(dev, 10, query_cut=qc, heap_factor=hf, block_order=bo))
                        rows.append({"posting_length": pl, "block_size": bs, "summary_energy": en, "query_cut": qc,
                                     "heap_factor": hf, "block_order": bo, "block_vectors": cv, "dev_recall@10": recall_at(ref_dev, di),
                                     "dev_ms_per_query": 1e3 * td / dev.shape[0], "build_s": build,
                                     "memory_mb": mem, "_index": s})
                _log(f"seismic λ={pl} block={bs} α={en} block vectors={cv}: built {build:.1f} s, {mem:.1f} MB; dev "
                     + ", ".join(f"{r['block_order']}/qc{r['query_cut']}/hf{r['heap_factor']}: "
                                 f"{r['dev_ms_per_query']:.3f} ms r{r['dev_recall@10']:.3f}"
                                 for r in rows[-len(args.query_cut) * len(args.heap_factor) * len(args.block_order):]))
    # Pareto front on dev, then measure those configurations on test
    rows.sort(key=lambda r: r["dev_ms_per_query"])
    front, best_rec = [], -1.0
    for r in rows:
        if r["dev_recall@10"] > best_rec + 1e-9:
            front.append(r)
            best_rec = r["dev_recall@10"]
    # The machine is shared (load from other jobs): each front configuration is timed in 5 rounds
    # interleaved with the exhaustive scipy baseline and the plain inverted index; the speed-ups are ratios
    # of the best times of the same rounds. The baseline rows report the best over all rounds.
    best_scipy, best_inv = t_scipy, t_inv
    for r in front:
        s = r.pop("_index")
        kw = {"query_cut": r["query_cut"], "heap_factor": r["heap_factor"], "block_order": r["block_order"]}
        te = ti_ = ts = np.inf
        for _ in range(5):
            te = min(te, timed(lambda: exhaustive_search(D, test, 10), 1)[0])
            ti_ = min(ti_, timed(lambda: inv.search(test, 10), 1)[0])
            t, (_, si) = timed(lambda: s.search(test, 10, **kw), 1)
            ts = min(ts, t)
        best_scipy, best_inv = min(best_scipy, te), min(best_inv, ti_)
        r.update({"test_recall@10": recall_at(ref, si), "ms_per_query": 1e3 * ts / nt,
                  "exhaustive_ms_same_rounds": 1e3 * te / nt, "inverted_ms_same_rounds": 1e3 * ti_ / nt,
                  "speedup_vs_exhaustive": min(te, t_fwd) / ts, "speedup_vs_inverted": ti_ / ts})
        _log(f"test {r['block_order']} λ={r['posting_length']} b={r['block_size']} α={r['summary_energy']} "
             f"qc={r['query_cut']} hf={r['heap_factor']}: {r['ms_per_query']:.3f} ms/q recall "
             f"{r['test_recall@10']:.4f} x{r['speedup_vs_exhaustive']:.1f} vs exhaustive ({1e3 * te / nt:.3f} ms), "
             f"x{r['speedup_vs_inverted']:.1f} vs inverted ({1e3 * ti_ / nt:.3f} ms)")
    for r in rows:
        r.pop("_index", None)
    base[0]["ms_per_query"], base[2]["ms_per_query"] = 1e3 * best_scipy / nt, 1e3 * best_inv / nt
    meta = {"passages": D.shape[0], "vocabulary": D.shape[1], "nnz": int(D.nnz),
            "terms_per_passage": D.nnz / D.shape[0], "queries_dev": dev.shape[0], "queries_test": nt,
            "terms_per_query_original": Q0.nnz / Q0.shape[0], "terms_per_query": Q.nnz / Q.shape[0],
            "args": vars(args), "machine": machine_info(), "command": "OMP_NUM_THREADS=1 python bench/text_sparse.py "
            + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "forward_index_mb": (D.data.nbytes + D.indices.nbytes + D.indptr.nbytes) / 2**20}
    write_json(OUT / "text_sparse.json", {"meta": meta, "baselines": base, "sweep_dev": rows, "front": front})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=1, help="sentences per passage")
    p.add_argument("--fb-docs", type=int, default=10)
    p.add_argument("--fb-terms", type=int, default=40)
    p.add_argument("--orig-weight", type=float, default=0.5)
    p.add_argument("--dev", type=int, default=300, help="queries held out for tuning")
    p.add_argument("--posting-length", type=int, nargs="+", default=[500, 1000, 2000])
    p.add_argument("--block-size", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--summary-energy", type=float, nargs="+", default=[0.3, 0.5])
    p.add_argument("--query-cut", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--heap-factor", type=float, nargs="+", default=[0.7, 0.8, 0.9, 1.0])
    p.add_argument("--block-order", nargs="+", default=["bound", "list"], choices=["bound", "list"])
    p.add_argument("--block-vectors", type=int, nargs="+", default=[0, 1], choices=[0, 1],
                   help="SeismicIndex(copy_block_vectors=...): 1 = block-local copies of the document vectors")
    p.add_argument("--markdown", action="store_true", help="only render bench/sections/text_sparse.md")
    args = p.parse_args(argv)
    if args.markdown:
        markdown()
    else:
        run(args)
        markdown()


def markdown():
    res = json.loads((OUT / "text_sparse.json").read_text())
    m, base, front = res["meta"], res["baselines"], res["front"]
    mi = m["machine"]
    L = ["## Sparse retrieval: Seismic vs exhaustive scoring vs a plain inverted index (SciFact passages, "
         "expanded queries)", "",
         f"Command: `{m['command']}` (then `python bench/text_sparse.py --markdown`). Machine: 2-core x86_64, "
         f"24 GiB, no GPU ({mi.get('cpu_model', '')}; shared with other jobs, load average at start "
         f"{mi.get('load_average_1_5_15', '?')}). Date: {m['date']}. Every search single-threaded; best of 3 timed runs.", "",
         f"Data: BEIR SciFact abstracts split into {m['args']['sentences']}-sentence passages: "
         f"**{m['passages']:,} passages**, vocabulary {m['vocabulary']:,}, {m['terms_per_passage']:.1f} terms per "
         f"passage (BM25 weights, `term_vectors`). Queries: the 1,109 SciFact claims, "
         f"{m['terms_per_query_original']:.1f} terms each, expanded RM3-style (top-{m['args']['fb_docs']} BM25 "
         f"passages, {m['args']['fb_terms']} feedback terms, original weight {m['args']['orig_weight']}) to "
         f"**{m['terms_per_query']:.1f} weighted terms per query**. {m['queries_dev']} queries (seeded shuffle) "
         f"tune Seismic; all numbers below are on the other {m['queries_test']} (test). Recall@10 is against the "
         f"exact top-10 of the same vectors.", "",
         "| method | ms/query | recall@10 | build s | memory MB |", "|---|---:|---:|---:|---:|"]
    for r in base:
        L.append(f"| {r['method']} | {r['ms_per_query']:.3f} | {r['recall@10']:.4f} | "
                 f"{r.get('build_s', 0):.1f} | {r.get('memory_mb', m['forward_index_mb']):.1f} |")
    L += ["", "Exhaustive reference for the speed-ups: the faster exhaustive method (scipy; its CSR product "
          "`Q @ X.T` walks the query terms' rows of `X.T`, then a dense argpartition over all passages). The machine "
          "is shared with other jobs, so each Seismic configuration is timed in 5 rounds interleaved with the "
          "exhaustive and inverted-index baselines; speed-ups are ratios of best times within the same rounds "
          "(baseline rows above: best over all rounds). "
          "Recall of the exact rows below 1 comes from float32 summation order changing ties at rank 10.", "",
          "Seismic, recall/speed front (configurations chosen on the dev queries, measured on test):", "",
          "| λ (posting_length) | block_size | α (summary_energy) | query_cut | heap_factor | block order | block vectors | "
          "ms/query | recall@10 | exhaustive ms (same rounds) | × exhaustive | × inverted index | build s | memory MB |",
          "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(front, key=lambda r: r["test_recall@10"]):
        L.append(f"| {r['posting_length']} | {r['block_size']} | {r['summary_energy']} | {r['query_cut']} | "
                 f"{r['heap_factor']} | {r['block_order']} | {'copied' if r.get('block_vectors') else 'forward index'} | {r['ms_per_query']:.3f} | {r['test_recall@10']:.4f} | "
                 f"{r['exhaustive_ms_same_rounds']:.3f} | "
                 f"{r['speedup_vs_exhaustive']:.1f} | {r['speedup_vs_inverted']:.1f} | {r['build_s']:.1f} | "
                 f"{r['memory_mb']:.1f} |")
    ok = [r for r in front if r["test_recall@10"] >= 0.95]
    if ok:
        b = max(ok, key=lambda r: r["speedup_vs_exhaustive"])
        verdict = (f"Best at recall@10 ≥ 0.95 on test: {b['ms_per_query']:.3f} ms/query, recall "
                   f"{b['test_recall@10']:.4f}, **{b['speedup_vs_exhaustive']:.1f}× exhaustive** and "
                   f"{b['speedup_vs_inverted']:.1f}× the plain inverted index. Target (≥ 10× at ≥ 0.95): "
                   + ("**met**." if b["speedup_vs_exhaustive"] >= 10 else "**not met**."))
    else:
        verdict = "No configuration of the sweep reached recall@10 ≥ 0.95 on test: target **not met**."
    L += ["", verdict, "", _reading(front, base), "",
          "Design notes (what the index does; measured alternatives that were dropped are in the commit log): "
          "8-bit summaries with one scale per block, rounded up so they remain upper bounds (as the paper "
          "quantises), 16-bit term ids in summaries and forward index, per-posting vector ranges, no per-query "
          "re-sort of the (already sorted) query, and optionally `copy_block_vectors=True` (block-local copies "
          "of the document vectors, read sequentially when a block is opened; same results, more memory). Both "
          "index variants are in the grid ('block vectors' column).", "",
          f"Full dev sweep ({len(res['sweep_dev'])} settings): `bench/out/text_sparse.json`.", ""]
    for run in (2, 3):  # repeats of the front's neighbourhood, saved by hand as text_sparse_run<N>.json
        rep = OUT / f"text_sparse_run{run}.json"
        if not rep.exists():
            continue
        r2 = json.loads(rep.read_text())
        b2 = {x["method"]: x for x in r2["baselines"]}
        idle = ", no other engineers' jobs on the machine (ours on the second core)" if run == 3 else ""
        L += [f"Repeat run {run} ({r2['meta']['date']}{idle}, same data and split, only the front configuration's "
              f"neighbourhood): `{r2['meta']['command']}` (JSON `bench/out/text_sparse_run{run}.json`). Exact "
              "baselines in that run: "
              + ", ".join(f"{k.split(' (')[0]} {v['ms_per_query']:.3f} ms" for k, v in b2.items()) + ". Seismic "
              "(test): " + "; ".join(
                  f"hf {x['heap_factor']}, {'copied' if x.get('block_vectors') else 'forward-index'} vectors: "
                  f"{x['ms_per_query']:.3f} ms, recall {x['test_recall@10']:.4f}, "
                  f"{x['speedup_vs_exhaustive']:.1f}× exhaustive ({x['exhaustive_ms_same_rounds']:.3f} ms same rounds)"
                  for x in sorted(r2["front"], key=lambda x: x["test_recall@10"])) + ".", ""]
    bests = []
    for name in ["text_sparse.json", "text_sparse_run2.json", "text_sparse_run3.json"]:
        path = OUT / name
        if path.exists():
            ok = [x for x in json.loads(path.read_text())["front"] if x["test_recall@10"] >= 0.95]
            if ok:
                bests.append(max(x["speedup_vs_exhaustive"] for x in ok))
    if len(bests) > 1:
        L += [f"Best speed-up at recall@10 ≥ 0.95 in each of the {len(bests)} runs: "
              + ", ".join(f"{b:.1f}×" for b in bests) + f" (the target, 10×, is met in {sum(b >= 10 for b in bests)} "
              f"of {len(bests)}).", ""]
    SECTION.write_text("\n".join(L))
    print("\n".join(L))


def _reading(front: list, base: list) -> str:
    """A paragraph of figures computed from this run's front and baselines."""
    parts = []
    for lo, hi in ((0.95, 0.98), (0.98, 1.01)):
        band = [r["speedup_vs_exhaustive"] for r in front if lo <= r["test_recall@10"] < hi]
        if band:
            parts.append(f"{min(band):.1f}-{max(band):.1f}× exhaustive at recall@10 in [{lo:.2f}, {min(hi, 1.0):.2f}"
                         f"{')' if hi <= 1.0 else ']'} ({len(band)} configurations)")
    exh = [r["exhaustive_ms_same_rounds"] for r in front]
    text = "Reading: Seismic is " + ("; ".join(parts) if parts else "not within recall 0.95 in any configuration")
    if exh:
        spread = 100 * (max(exh) - min(exh)) / min(exh)
        text += (f". The exhaustive baseline itself costs {min(exh):.3f}-{max(exh):.3f} ms/query across the rounds "
                 f"(a {spread:.0f}% spread on this shared machine), so 10× means about "
                 f"{1000 * min(exh) / 10:.0f} µs/query and the ratio moves with the load")
    copied = [r["memory_mb"] for r in front if r.get("block_vectors")]
    fwd = [r["memory_mb"] for r in front if not r.get("block_vectors")]
    if copied and fwd:
        text += f"; block-local vector copies cost {min(copied) - min(fwd):+.0f} MB over the forward index"
    return text + "."


if __name__ == "__main__":
    main()
