"""The recsys benchmark as a library function: ``run(part, data_dir) -> list[dict]`` and ``plot(rows, dir)``.

Parts (all on a MovieLens folder the user supplies; nothing is shipped):

``compress``
    Implicit feedback (rating ≥ 4), per-user leave-last-out; :class:`~hashlearn.recsys.mf.BPRMF` over
    ``full``, ``random``, ``double``, ``graphhash`` and ``semantic`` tables at each budget; recall@20,
    nDCG@20 and AUC over the whole catalogue (tie-aware), on all test users and on those whose held-out
    item is cold (≤ 5 training interactions).
``semantic``
    The official folds (100K layout; seed s uses fold u{s % 5 + 1}), implicit; items embedded by
    unique IDs (``full``), the hashing trick with as many rows as items (``random``), semantic IDs
    (``semantic``: :data:`SEMANTIC_PARAMS`; ``semantic-all-prefixes``: rows for all three prefixes;
    ``semantic-fixed``: squeezed to as many rows as items). Users keep one row each.
``sdim``
    Explicit ratings, label rating ≥ 4, per-user temporal split (last 20 %); :class:`HistoryCTR` with
    ``sdim``, ``attention-full``, ``attention-last50`` and ``mean`` pooling; test AUC, AUC on the users with
    the longest histories, and serving time per 1,000 predictions on the 50 longest histories
    (interleaved, best of ``repeat``).

Rows carry ``part``, ``method``, ``seed``, ``budget`` (the requested row budget; None where a method
keeps every row it needs, see ``item_rows``), ``recall@20``, ``ndcg@20``, ``auc``, ``ms_per_1k``,
``cold`` and the counts behind them; :func:`summarize` averages over seeds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import UnknownMethodError, ValidationError

__all__ = ["PARTS", "run", "summarize", "plot", "BUDGETS"]

PARTS = ("compress", "semantic", "sdim")
BUDGETS = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64)
MF_PARAMS = dict(dim=32, epochs=30, lr=0.01, l2=1e-4, batch_size=1024)
CTR_PARAMS = dict(dim=32, epochs=2, lr=0.002, batch_size=256, user_embedding=False)
#: Semantic-ID variant: 3-level codes, rows for the (c1) and (c1, c2) prefixes plus the item's own
#: (c1, c2, c3, s) row — chosen over all three prefixes on folds u1 and u2 (the report uses u3..u5).
SEMANTIC_PARAMS = dict(n_levels=3, n_codes=16, prefix_levels=(1, 2))
SDIM_METHODS = {"sdim": dict(pooling="sdim"), "attention-full": dict(pooling="attention"),
                "attention-last50": dict(pooling="attention", max_history=50), "mean": dict(pooling="mean")}


def _progress(enabled: bool):
    if not enabled:
        return lambda msg: None
    from rich.console import Console

    console = Console(stderr=True)
    return lambda msg: console.log(msg)


def _metric_rows(base: dict, model, train, test, cold_mask) -> list[dict]:
    from .evaluate import ranking_metrics

    rows = []
    for cold, mask in ((False, None), (True, cold_mask)):
        m = ranking_metrics(model.score_all, train, test, k=20, items=mask)
        rows.append({**base, "cold": cold, "recall@20": m["recall"], "ndcg@20": m["ndcg"], "auc": m["auc"],
                     "n_users": m["n_users"], "n_positives": m["n_positives"]})
    return rows


def _fit_mf(comp, train, seed, features, n_threads):
    from .mf import BPRMF

    t0 = time.perf_counter()
    model = BPRMF(comp, random_state=seed, n_threads=n_threads, **MF_PARAMS).fit(train, item_features=features)
    return model, time.perf_counter() - t0


def _features(ds, cache_dir):
    from .semantic import item_content_embeddings

    return item_content_embeddings(ds.item_texts(), cache_dir=cache_dir)


def _compress(ds, seeds, budgets, cache_dir, log, n_threads, methods=None):
    from .compress import make_compressor
    from .evaluate import cold_items
    from .interactions import leave_last_out

    split = leave_last_out(ds.interactions.implicit(4.0))
    train, test = split.train, split.test
    cold = cold_items(train, 5)
    methods = methods or ("random", "double", "graphhash", "semantic")
    features = _features(ds, cache_dir) if "semantic" in methods else None
    n_full = train.n_users + train.n_items
    rows = []
    for seed in seeds:
        plan = [("full", 1.0, {})] + [(m, b, {"budget": b, "random_state": seed,
                                               **(SEMANTIC_PARAMS if m == "semantic" else {})})
                                      for b in budgets for m in methods]
        for method, budget, params in plan:
            model, secs = _fit_mf(make_compressor(method, **params), train, seed, features, n_threads)
            comp = model.compressor_
            base = {"part": "compress", "method": method, "seed": seed, "budget": budget,
                    "rows": comp.n_user_rows_ + comp.n_item_rows_ - 2, "rows_fraction": comp.budget_,
                    "fit_s": secs, "n_full_rows": n_full}
            if method == "graphhash":
                base["resolution"] = comp.resolution_
                base["clusters"] = [comp.n_user_clusters_, comp.n_item_clusters_]
            new = _metric_rows(base, model, train, test, cold)
            rows += new
            log(f"compress seed={seed} {method} budget={budget:.4g}: recall@20 {new[0]['recall@20']:.4f} "
                f"(cold {new[1]['recall@20']:.4f}) in {secs:.1f}s")
    return rows


def _semantic(ds, seeds, cache_dir, log, n_threads):
    from .compress import FullTable, RandomHash
    from .evaluate import cold_items
    from .movielens import movielens_fold
    from .semantic import SemanticIDs

    if ds.layout != "100k":
        raise ValidationError("the semantic part uses the official u1..u5 folds of the MovieLens 100K layout")
    features = _features(ds, cache_dir)
    rows = []
    for seed in seeds:
        fold = int(seed) % 5 + 1
        base_tr, base_te = movielens_fold(ds.path, fold, dataset=ds)
        train, test = base_tr.implicit(4.0), base_te.implicit(4.0)
        cold = cold_items(train, 5)
        plan = {"full": FullTable(), "random": RandomHash(budget=1.0, hash_users=False, random_state=seed),
                "semantic": SemanticIDs(random_state=seed, **SEMANTIC_PARAMS),
                "semantic-all-prefixes": SemanticIDs(random_state=seed, n_levels=3, n_codes=16),
                "semantic-fixed": SemanticIDs(budget=1.0, random_state=seed, **SEMANTIC_PARAMS)}
        for method, comp in plan.items():
            model, secs = _fit_mf(comp, train, seed, features, n_threads)
            c = model.compressor_
            base = {"part": "semantic", "method": method, "seed": seed, "fold": f"u{fold}",
                    "budget": c.budget, "item_rows": c.n_item_rows_ - 1,
                    "item_rows_fraction": (c.n_item_rows_ - 1) / train.n_items,
                    "fit_s": secs, "n_cold_items": int(cold.sum())}
            new = _metric_rows(base, model, train, test, cold)
            rows += new
            log(f"semantic u{fold} {method}: recall@20 {new[0]['recall@20']:.4f} auc {new[0]['auc']:.4f} | "
                f"cold recall@20 {new[1]['recall@20']:.4f} auc {new[1]['auc']:.4f}")
    return rows


def _serving_pairs(train, rng, n_users=50, per_user=20):
    counts = train.user_counts()
    longest = np.argsort(-counts, kind="stable")[:n_users]
    users = np.repeat(train.user_ids[longest], per_user)
    items = train.item_ids[rng.integers(0, train.n_items, users.size)]
    return users, items, int(counts[longest].min()), int(counts[longest].max())


def _time_serving(models: dict, states: dict, users, items, repeat: int, batch: int = 100) -> dict:
    """Best and median ms per 1,000 predictions of each model, interleaved (a, b, c, a, b, c, ...)."""
    times = {name: [] for name in models}
    for r in range(repeat + 1):
        for name, model in models.items():
            t0 = time.perf_counter()
            for s in range(0, users.size, batch):
                model.predict_serving(states[name], users[s:s + batch], items[s:s + batch])
            if r:  # the first round warms up
                times[name].append((time.perf_counter() - t0) * 1000.0 * 1000.0 / users.size)
    return {n: (float(np.min(t)), float(np.median(t))) for n, t in times.items()}


def _sdim_methods(sdim_bits) -> dict:
    methods = dict(SDIM_METHODS)
    for b in sdim_bits:
        if int(b) != 3:
            methods[f"sdim-tau{int(b)}"] = dict(pooling="sdim", hash_bits=int(b))
    return methods


def _sdim(ds, seeds, log, n_threads, repeat, epochs, sdim_bits=(3,)):
    from sklearn.metrics import roc_auc_score

    from .ctr import HistoryCTR
    from .interactions import temporal_split

    split = temporal_split(ds.interactions, test_fraction=0.2)
    train, test = split.train, split.test
    y = test.rating >= 4.0
    counts = train.user_counts()
    long_users = counts >= np.quantile(counts[counts > 0], 0.9)
    long_mask = long_users[test.user_index()]
    params = dict(CTR_PARAMS, **({"epochs": epochs} if epochs else {}))
    rows = []
    for seed in seeds:
        models, states, fit_s, state_ms = {}, {}, {}, {}
        for method, kw in _sdim_methods(sdim_bits).items():
            t0 = time.perf_counter()
            models[method] = HistoryCTR(random_state=seed, n_threads=n_threads, **params, **kw).fit(train)
            fit_s[method] = time.perf_counter() - t0
            t0 = time.perf_counter()
            states[method] = models[method].serving_state(train)
            state_ms[method] = (time.perf_counter() - t0) * 1000.0
        users, items, lo, hi = _serving_pairs(train, np.random.default_rng(seed))
        serve = _time_serving(models, states, users, items, repeat)
        # serving path and batch path must agree on the same histories
        for method, model in models.items():
            p = model.predict_proba(test, context=train)
            auc = float(roc_auc_score(y, p))
            auc_long = float(roc_auc_score(y[long_mask], p[long_mask]))
            rows.append({"part": "sdim", "method": method, "seed": seed, "cold": False, "auc": auc,
                         "auc_longest": auc_long, "ms_per_1k": serve[method][0], "ms_per_1k_median": serve[method][1],
                         "fit_s": fit_s[method], "state_ms": state_ms[method], "n_test": int(y.size),
                         "n_test_longest": int(long_mask.sum()), "serving_history_len": [lo, hi],
                         "final_loss": model.loss_[-1]})
            log(f"sdim seed={seed} {method}: auc {auc:.4f} (longest {auc_long:.4f}), "
                f"{serve[method][0]:.1f} ms/1k, fit {fit_s[method]:.0f}s")
    return rows


def run(part: str, data_dir, *, seeds=(0, 1, 2), budgets=BUDGETS, cache_dir=None, n_threads: int = 1,
        repeat: int = 5, epochs: int | None = None, methods=None, sdim_bits=(3,),
        progress: bool = True) -> list[dict]:
    """Run one part of the recsys benchmark on the MovieLens folder ``data_dir``.

    Parameters
    ----------
    part : {"compress", "semantic", "sdim"}
    data_dir : str or Path
        A MovieLens folder (100K or 1M layout; ``semantic`` needs 100K's official folds).
    seeds : sequence of int
        Training seeds (``semantic``: seed s uses fold u{s % 5 + 1}).
    budgets : sequence of float
        Row budgets of the ``compress`` part.
    cache_dir : path, optional
        Cache of the item-text embeddings (all-MiniLM-L6-v2); keep it outside any repository.
    n_threads : int
        torch threads per model.
    repeat : int
        Timed rounds of the ``sdim`` serving measurement.
    epochs : int, optional
        Override the ``sdim`` training epochs.
    methods : sequence of str, optional
        ``compress`` methods besides ``full`` (default: random, double, graphhash, semantic).
    sdim_bits : sequence of int
        SimHash bits per function of the ``sdim`` rows (3 is the ``sdim`` row; others are extra
        ``sdim-tau<b>`` rows).
    progress : bool

    Returns
    -------
    list of dict rows (see the module docstring).
    """
    from .movielens import load_movielens

    if part not in PARTS:
        raise UnknownMethodError(f"unknown recsys bench part {part!r}; choose one of {', '.join(PARTS)}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValidationError("seeds is empty")
    log = _progress(progress)
    ds = load_movielens(data_dir)
    if part == "compress":
        return _compress(ds, seeds, tuple(budgets), cache_dir, log, n_threads, methods)
    if part == "semantic":
        return _semantic(ds, seeds, cache_dir, log, n_threads)
    return _sdim(ds, seeds, log, n_threads, repeat, epochs, tuple(sdim_bits))


_KEYS = ("recall@20", "ndcg@20", "auc", "auc_longest", "ms_per_1k", "fit_s")


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of each (part, method, budget, cold) group."""
    groups: dict = {}
    for r in rows:
        key = (r["part"], r["method"], round(float(r.get("budget") or 0), 6), bool(r.get("cold")))
        groups.setdefault(key, []).append(r)
    out = []
    for (part, method, budget, cold), rs in groups.items():
        s = {"part": part, "method": method, "budget": rs[0].get("budget"), "cold": cold, "n_seeds": len(rs)}
        for k in ("rows", "item_rows", "n_users", "n_positives", "n_test_longest"):
            if k in rs[0]:  # equal over seeds except where the split or the codes change with the seed
                s[k] = float(np.mean([r[k] for r in rs]))
        for k in _KEYS:
            vals = [r[k] for r in rs if r.get(k) is not None and np.isfinite(r[k])]
            if vals:
                s[k] = float(np.mean(vals))
                s[k + "_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        out.append(s)
    return out


def plot(rows: list[dict], out_dir) -> list[Path]:
    """PNG figures of the parts present in ``rows`` into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..metrics.plotstyle import method_styles

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    styles = method_styles(s["method"] for s in summary)
    paths = []
    comp = [s for s in summary if s["part"] == "compress"]
    if comp:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, cold in zip(axes, (False, True)):
            full = [s for s in comp if s["method"] == "full" and s["cold"] == cold]
            for method in ("random", "double", "graphhash", "semantic"):
                pts = sorted((s["budget"], s["recall@20"], s["recall@20_sd"]) for s in comp
                             if s["method"] == method and s["cold"] == cold)
                if pts:
                    b, m, e = map(np.asarray, zip(*pts))
                    ax.errorbar(b, m, yerr=e, capsize=3, label=method, **styles[method])
            if full:
                ax.axhline(full[0]["recall@20"], color="k", ls="--", label="full table")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("rows as a fraction of the full table")
            ax.set_ylabel("recall@20")
            ax.set_title("cold items (≤5 training interactions)" if cold else "all test users")
            ax.legend(fontsize=8)
        fig.suptitle("BPR-MF over compressed ID tables (MovieLens, leave-last-out)")
        fig.tight_layout()
        paths.append(out_dir / "recsys_compress.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    sem = [s for s in summary if s["part"] == "semantic"]
    if sem:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        methods = [m for m in ("full", "random", "semantic", "semantic-all-prefixes", "semantic-fixed")
                   if any(s["method"] == m for s in sem)]
        for ax, metric in zip(axes, ("recall@20", "auc")):
            x = np.arange(len(methods))
            for k, cold in enumerate((False, True)):
                vals = [next(s for s in sem if s["method"] == m and s["cold"] == cold) for m in methods]
                ax.bar(x + (k - 0.5) * 0.38, [v[metric] for v in vals], 0.38, yerr=[v[metric + "_sd"] for v in vals],
                       capsize=3, label="cold items" if cold else "all")
            ax.set_xticks(x, methods, rotation=15, fontsize=8)
            ax.set_ylabel(metric)
            ax.legend(fontsize=8)
        fig.suptitle("Item IDs: unique vs random hash vs semantic IDs (MovieLens 100K folds)")
        fig.tight_layout()
        paths.append(out_dir / "recsys_semantic.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    sd = [s for s in summary if s["part"] == "sdim"]
    if sd:
        fig, ax = plt.subplots(figsize=(6, 4))
        for s in sd:
            ax.errorbar(s["ms_per_1k"], s["auc"], yerr=s["auc_sd"], capsize=3, label=s["method"], **styles[s["method"]])
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("serving ms per 1,000 predictions (50 longest histories)")
        ax.set_ylabel("test AUC")
        ax.legend(fontsize=8)
        ax.set_title("Long-history pooling: SDIM vs target attention")
        fig.tight_layout()
        paths.append(out_dir / "recsys_sdim.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
