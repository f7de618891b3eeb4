"""Recommender benchmark: compressed ID tables (GraphHash ...), semantic IDs, SDIM — on MovieLens.

A thin wrapper around :func:`hashlearn.recsys.bench.run` (the library function the CLI can call):
writes every row to ``--json``, PNG plots to ``--plots`` and the Markdown section
``bench/sections/recsys.md`` (one block per part, between ``<!-- recsys-<part>:start/end -->``).

Usage::

    OMP_NUM_THREADS=1 python bench/recsys.py --part compress --data-dir ../shared/data/movielens/ml-100k \\
        --json bench/out/recsys_compress.json --plots bench/out/plots

MovieLens is research-only data: it is read from ``--data-dir`` and never copied; the item-text
embedding cache (``--cache-dir``, default ``~/.cache/hashlearn/recsys``) stays outside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (command_line, load_average, machine_info, machine_summary, markdown_table,  # noqa: E402
                    now_iso, update_markdown_section, write_json)

SECTION = Path(__file__).resolve().parent / "sections" / "recsys.md"
SECTION_HEADER = "## Recommender systems: compressed ID tables, semantic IDs, SDIM (issue 17)\n"


def _pm(s, key, digits=4):
    if key not in s:
        return "—"
    return f"{s[key]:.{digits}f} ± {s.get(key + '_sd', 0.0):.{digits}f}"


def _find(summary, method, cold=False, budget=None):
    for s in summary:
        if s["method"] == method and s["cold"] == cold and (budget is None or abs(s["budget"] - budget) < 1e-9):
            return s
    return None


def _compress_text(summary):
    rows = []
    for s in sorted(summary, key=lambda s: (s["cold"], -s["budget"], s["method"])):
        rows.append({"method": s["method"], "budget": f"1/{round(1 / s['budget'])}" if s["budget"] < 1 else "1",
                     "rows": round(s["rows"]), "cold": s["cold"], "recall@20": _pm(s, "recall@20"),
                     "ndcg@20": _pm(s, "ndcg@20"), "auc": _pm(s, "auc"), "users": round(s["n_users"]),
                     "fit s": f"{s['fit_s']:.1f}"})
    table = markdown_table(rows, ["method", "budget", "rows", "cold", "recall@20", "ndcg@20", "auc", "users", "fit s"])
    lines = []
    g, r, d = (_find(summary, m, False, 1 / 16) for m in ("graphhash", "random", "double"))
    if g and r and d:
        lines.append(f"- Target, GraphHash at 1/16 of the rows: recall@20 {g['recall@20']:.4f} vs the hashing trick "
                     f"{r['recall@20']:.4f} (**{g['recall@20'] / r['recall@20']:.2f}×**, target ≥ 1.2×) and double "
                     f"hashing {d['recall@20']:.4f} ({'met' if g['recall@20'] >= d['recall@20'] else 'not met'}: "
                     "target ≥ double hashing).")
    full = _find(summary, "full")
    if full:
        curve = sorted((s["budget"], s["recall@20"]) for s in summary if s["method"] == "graphhash" and not s["cold"])
        pts = ", ".join(f"1/{round(1 / b)}: {v / full['recall@20']:.2f}" for b, v in reversed(curve))
        lines.append(f"- GraphHash recall@20 as a fraction of the full table's ({full['recall@20']:.4f}): {pts}.")
    return table, "\n".join(lines)


def _semantic_text(summary):
    rows = [{"method": s["method"], "item rows": round(s["item_rows"]), "cold": s["cold"],
             "recall@20": _pm(s, "recall@20"), "ndcg@20": _pm(s, "ndcg@20"), "auc": _pm(s, "auc"),
             "users": round(s["n_users"]), "positives": round(s["n_positives"])}
            for s in sorted(summary, key=lambda s: (s["cold"], s["method"]))]
    table = markdown_table(rows, ["method", "item rows", "cold", "recall@20", "ndcg@20", "auc", "users", "positives"])
    lines = []
    sem, full, rnd = _find(summary, "semantic"), _find(summary, "full"), _find(summary, "random")
    semc, fullc, rndc = _find(summary, "semantic", True), _find(summary, "full", True), _find(summary, "random", True)
    if sem and full and rnd and semc and fullc and rndc:
        lines.append(f"- Target, cold items: semantic recall@20 {semc['recall@20']:.4f} vs random hash "
                     f"{rndc['recall@20']:.4f} and unique IDs {fullc['recall@20']:.4f}; AUC {semc['auc']:.4f} vs "
                     f"{rndc['auc']:.4f} and {fullc['auc']:.4f}.")
        rel = (sem["recall@20"] - full["recall@20"]) / full["recall@20"]
        lines.append(f"- Target, overall within 1% of unique IDs: recall@20 {sem['recall@20']:.4f} vs "
                     f"{full['recall@20']:.4f} ({100 * rel:+.1f}%), AUC {sem['auc']:.4f} vs {full['auc']:.4f}.")
    return table, "\n".join(lines)


def _sdim_text(summary):
    rows = [{"method": s["method"], "auc": _pm(s, "auc"), "auc (longest 10% users)": _pm(s, "auc_longest"),
             "ms / 1k": f"{s['ms_per_1k']:.1f}", "fit s": f"{s['fit_s']:.0f}", "seeds": s["n_seeds"]}
            for s in sorted(summary, key=lambda s: -s["auc"])]
    table = markdown_table(rows, ["method", "auc", "auc (longest 10% users)", "ms / 1k", "fit s", "seeds"])
    lines = []
    sd, att, l50, mean = (_find(summary, m) for m in ("sdim", "attention-full", "attention-last50", "mean"))
    if sd and att and l50 and mean:
        lines.append(f"- Target, AUC within 0.005 of full-history attention: SDIM {sd['auc']:.4f} vs "
                     f"{att['auc']:.4f} (Δ {sd['auc'] - att['auc']:+.4f}); above mean pooling ({mean['auc']:.4f}): "
                     f"{'yes' if sd['auc'] > mean['auc'] else 'no'}; above last-50 attention ({l50['auc']:.4f}): "
                     f"{'yes' if sd['auc'] > l50['auc'] else 'no'}.")
        lines.append(f"- Target, serving time on the longest histories: SDIM {sd['ms_per_1k']:.1f} ms per 1,000 "
                     f"predictions vs full attention {att['ms_per_1k']:.1f} ms (**{att['ms_per_1k'] / sd['ms_per_1k']:.1f}× "
                     f"less**, target ≥ 3×); last-50 attention {l50['ms_per_1k']:.1f} ms, mean {mean['ms_per_1k']:.1f} ms.")
    return table, "\n".join(lines)


PROTOCOL = {
    "compress": "Implicit feedback (rating ≥ 4), per-user leave-last-out (the last positive of each user is the test "
                "item), BPR two-tower MF (dim 32, 30 epochs, Adam 0.01, l2 1e-4, one uniform negative) over each "
                "table. Recall@20, nDCG@20 and AUC rank the held-out item against every catalogue item the user "
                "has not trained on; tied scores (shared rows) count at their expected rank. `cold` rows keep the "
                "users whose held-out item has ≤ 5 training interactions. `budget` = rows per table / IDs "
                "(users and items compressed alike; semantic IDs hash users with the hashing trick).",
    "semantic": "Official MovieLens 100K folds (seed s → fold u{s mod 5 + 1}), implicit (rating ≥ 4), same BPR-MF; "
                "users keep one row each, only the item table differs. Item content: all-MiniLM-L6-v2 of "
                "\"title. Genres: ...\" (hashlearn.embed, offline). Semantic IDs: residual k-means, 3 levels × 16 "
                "codes + collision suffix; `semantic` embeds an item as rows (c1) + (c1,c2) + its own (c1,c2,c3,s), "
                "a choice made on folds u1–u2 against `semantic-all-prefixes` (which adds the (c1,c2,c3) row); "
                "`semantic-fixed` squeezes `semantic` into as many rows as items. `cold` = test positives of items "
                "with ≤ 5 training interactions (other test items removed from the candidates).",
    "sdim": "Explicit ratings; label = rating ≥ 4; per-user temporal split (each user's last 20% of events are "
            "the test set). History = the user's earlier positive events. HistoryCTR: item embeddings (dim 32) "
            "+ MLP(64, 32) over [target, interest, target ⊙ interest], no user-ID embedding (the pooled history "
            "is the only user signal), 2 epochs, Adam 0.002. SDIM: 48 SimHash functions × τ bits (τ = 3 for "
            "`sdim`), collision-count weighted average. Serving: per-user state precomputed from the training "
            "history (SDIM bucket sums, the mean, or the sequence for attention), then 1,000 predictions "
            "(50 users with the longest histories × 20 random items) in batches of 100, one torch thread, "
            "methods interleaved, best of `repeat` rounds.",
}


def louvain_timing(data_dir, repeat: int = 3) -> tuple[list[dict], str]:
    """igraph vs networkx Louvain on the training graph of the compress part, interleaved, and a whole
    GraphHash fit at 1/16 with each backend."""
    from common import Interleaved

    from hashlearn.recsys import GraphHash, leave_last_out, load_movielens
    from hashlearn.recsys.graphhash import bipartite_communities

    train = leave_last_out(load_movielens(data_dir).interactions.implicit(4.0)).train
    pairs = np.unique(train.pairs(), axis=0)
    edges = np.stack([pairs[:, 0], train.n_users + pairs[:, 1]], axis=1)
    n = train.n_users + train.n_items
    fns = {f"louvain γ=1 ({b})": (lambda b=b: bipartite_communities(n, edges, resolution=1.0, backend=b))
           for b in ("igraph", "networkx")}
    fns.update({f"GraphHash fit 1/16 ({b})": (lambda b=b: GraphHash(budget=1 / 16, backend=b, random_state=0).fit(train))
                for b in ("igraph", "networkx")})
    timings, last = Interleaved(repeat=repeat, warmup=1).run(fns)
    rows = [{"what": k, "best s": t["best"], "median s": t["median"]} for k, t in timings.items()]
    ratio = timings["GraphHash fit 1/16 (networkx)"]["best"] / timings["GraphHash fit 1/16 (igraph)"]["best"]
    text = (f"Graph: {n:,} nodes, {edges.shape[0]:,} edges (MovieLens 100K implicit, leave-last-out train). "
            f"A GraphHash fit runs {len(last['GraphHash fit 1/16 (igraph)'].search_)} clusterings while searching "
            f"the resolution; igraph is {ratio:.1f}× faster than networkx for the whole fit.")
    return rows, text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", required=True, choices=["compress", "semantic", "sdim"])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plots", type=Path)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "hashlearn" / "recsys")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sdim-bits", default="3")
    ap.add_argument("--no-section", action="store_true", help="do not rewrite bench/sections/recsys.md")
    ap.add_argument("--louvain-timing", action="store_true",
                    help="also time igraph vs networkx Louvain (block recsys-louvain of the section)")
    args = ap.parse_args(argv)

    import torch

    from hashlearn.recsys import bench

    seeds = [int(s) for s in args.seeds.split(",")]
    info = machine_info()
    load0 = load_average()
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = bench.run(args.part, args.data_dir, seeds=seeds, cache_dir=args.cache_dir, n_threads=1,
                         repeat=args.repeat, sdim_bits=[int(b) for b in args.sdim_bits.split(",")])
    finally:
        torch.set_num_threads(old)
    load1 = load_average()
    summary = bench.summarize(rows)
    out = {"command": command_line(), "date": now_iso(), "machine": info, "load_start": load0, "load_end": load1,
           "torch": torch.__version__, "rows": rows, "summary": summary}
    if args.json:
        write_json(args.json, out)
    plots = bench.plot(rows, args.plots) if args.plots else []
    table, targets = {"compress": _compress_text, "semantic": _semantic_text, "sdim": _sdim_text}[args.part](summary)
    body = "\n".join([
        f"### Part `{args.part}`", "",
        f"Command: `{command_line()}`", "",
        f"Date {out['date']}; {machine_summary(info)} torch {torch.__version__} (1 thread). Load average "
        f"(1/5/15 min) at start {load0}, at end {load1}. Seeds {seeds}; table cells are mean ± sd over seeds.", "",
        PROTOCOL[args.part], "",
        table, "",
        targets, "",
        *(f"![{p.stem}]({p})" for p in plots),
    ])
    print(table)
    print(targets)
    blocks = [(f"recsys-{args.part}", body)]
    if args.louvain_timing:
        l0 = load_average()
        lrows, ltext = louvain_timing(args.data_dir)
        ltable = markdown_table(lrows, ["what", "best s", "median s"])
        print(ltable)
        print(ltext)
        out["louvain_timing"] = lrows
        if args.json:
            write_json(args.json, out)
        blocks.append(("recsys-louvain", "\n".join([
            "### Louvain backends: python-igraph vs networkx", "",
            f"Command: `{command_line()}` (the `--louvain-timing` block); load average {l0} → {load_average()}; "
            "interleaved, 1 warm-up, best and median of 3.", "", ltable, "", ltext])))
    if not args.no_section:
        if not SECTION.exists():
            SECTION.parent.mkdir(parents=True, exist_ok=True)
            SECTION.write_text(SECTION_HEADER)
        for name, text in blocks:
            update_markdown_section(name, text, path=SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
