"""Markdown tables, target checks and plots of :func:`hashlearn.quantize.bench.run` rows.

:func:`summarize` turns the rows of one run into a Markdown section (tables of flat scans, IVF-PQ,
balanced lists and the ADC scan, then one line per target of issue 14 with the measured figures);
:func:`plot` draws recall@10 against bytes and IVF-PQ queries/s against recall@10 into PNG files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["summarize", "plot", "flat_table", "ivf_table", "balanced_table", "adc_table"]


def _verdict(diff: float) -> str:
    """The issue's "within 0.01 of faiss" read both ways: better than faiss by more is said so."""
    if abs(diff) <= 0.01:
        return "within 0.01"
    return "better than faiss by more than 0.01" if diff > 0 else "NOT within 0.01"


def _fmt(v, digits: int = 3) -> str:
    """3 significant digits, thousands separators for large values, "—" for missing ones."""
    if v is None:
        return "—"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,}"
    v = float(v)
    if not np.isfinite(v):
        return "—"
    if v == 0:
        return "0"
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}" if abs(v) >= 1e-3 else f"{v:.2e}"


def _pm(row, key):
    sd = row.get(key + "_sd")
    return f"{row[key]:.3f}" + (f" ± {sd:.3f}" if sd else "")


def flat_table(rows) -> tuple[str, list[str]]:
    flat = [r for r in rows if r["method"] in ("pq", "opq", "rq")]
    lines = ["| method | bytes | impl | recall@1 | recall@10 | recall@100 | 10-recall@10 | queries/s | train s | MSE |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    checks = []
    for r in flat:
        b = f"{r['bytes']}" + (f" + {r['extra_bytes']}" if r.get("extra_bytes") else "")
        lines.append(f"| {r['method']} | {b} | {r['impl']} | {_pm(r, 'recall@1')} | {_pm(r, 'recall@10')} | "
                     f"{_pm(r, 'recall@100')} | {_pm(r, '10-recall@10')} | {_fmt(r['queries_per_s'])} | "
                     f"{r['train_s']:.1f} | {_fmt(r['quantization_mse'])} |")
    by = {(r["method"], r["bytes"], r["impl"]): r for r in flat}
    for (method, B, impl), r in sorted(by.items()):
        if impl != "hashlearn" or method not in ("pq", "opq") or (method, B, "faiss") not in by:
            continue
        f = by[(method, B, "faiss")]
        diff = r["recall@10"] - f["recall@10"]
        checks.append(f"{method} {B} bytes: recall@10 {r['recall@10']:.3f} vs faiss {f['recall@10']:.3f} "
                      f"(difference {diff:+.4f}: {_verdict(diff)}; "
                      f"queries/s ratio {r['queries_per_s'] / f['queries_per_s']:.2f})")
    return "\n".join(lines), checks


def ivf_table(rows) -> tuple[str, list[str]]:
    ivf = [r for r in rows if r["method"] == "ivf-pq"]
    lines = ["| bytes | impl | best queries/s at recall@10 ≥ 0.9 | nlist | nprobe | recall@10 | best recall@10 anywhere |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    checks = []
    for B in sorted({r["bytes"] for r in ivf}):
        best = {}
        for impl in ("hashlearn", "faiss"):
            mine = [r for r in ivf if r["bytes"] == B and r["impl"] == impl]
            ok = [r for r in mine if r["recall@10"] >= 0.9]
            top = max(mine, key=lambda r: r["recall@10"])
            if ok:
                b = max(ok, key=lambda r: r["queries_per_s"])
                best[impl] = b
                lines.append(f"| {B} | {impl} | {_fmt(b['queries_per_s'])} | {b['nlist']} | {b['nprobe']} | "
                             f"{b['recall@10']:.3f} | {top['recall@10']:.3f} |")
            else:
                lines.append(f"| {B} | {impl} | — (never reaches 0.9) | | | | {top['recall@10']:.3f} |")
        if len(best) == 2:
            ratio = best["hashlearn"]["queries_per_s"] / best["faiss"]["queries_per_s"]
            checks.append(f"IVF-PQ {B} bytes: best queries/s at recall@10 ≥ 0.9, hashlearn / faiss = {ratio:.2f} "
                          f"({'meets' if ratio >= 1 else 'misses'} the ≥ 1.0 target)")
    return "\n".join(lines), checks


def balanced_table(rows) -> tuple[str, list[str]]:
    bal = [r for r in rows if r["method"].startswith("ivf-pq/")]
    if not bal:
        return "", []
    lines = ["| lists | nlist | largest/mean list | coarse MSE | nprobe | recall@10 | p50 ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in bal:
        lines.append(f"| {r['method'].split('/')[1]} | {r['nlist']} | {r['largest_list_over_mean']:.3f} | "
                     f"{_fmt(r['coarse_mse'])} | {r['nprobe']} | {r['recall@10']:.3f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    km = [r for r in bal if r["method"].endswith("/kmeans")]
    bk = [r for r in bal if r["method"].endswith("/balanced-kmeans")]
    checks = []
    if km and bk:
        ratio = bk[0]["largest_list_over_mean"]
        err = bk[0]["coarse_mse"] / km[0]["coarse_mse"] - 1
        checks.append(f"balanced lists: largest/mean {ratio:.3f} ({'≤' if ratio <= 1.05 else '>'} 1.05), coarse "
                      f"quantization error {100 * err:+.1f}% vs k-means ({'≤' if err <= 0.02 else '>'} 2%; k-means "
                      f"largest/mean {km[0]['largest_list_over_mean']:.3f})")
        for target in (0.9, 0.95):
            a = [r for r in km if r["recall@10"] >= target]
            b = [r for r in bk if r["recall@10"] >= target]
            if a and b:
                a0, b0 = a[0], b[0]
                checks.append(f"at recall@10 ≥ {target} (smallest nprobe reaching it: k-means {a0['nprobe']}, balanced "
                              f"{b0['nprobe']}): p99 {a0['p99_ms']:.3f} ms vs {b0['p99_ms']:.3f} ms "
                              f"({'balanced lower' if b0['p99_ms'] < a0['p99_ms'] else 'balanced NOT lower'})")
    return "\n".join(lines), checks


def adc_table(rows) -> tuple[str, list[str]]:
    adc = [r for r in rows if r["method"] == "adc-scan"]
    if not adc:
        return "", []
    lines = ["| queries | impl | queries/s | codes scanned/s | ids equal to faiss |", "|---|---|---:|---:|---:|"]
    checks = []
    for batch in ("all", "one"):
        pair = {r["impl"]: r for r in adc if r["batch"] == batch}
        for impl, r in pair.items():
            lines.append(f"| {'batch of ' + str(r['nq']) if batch == 'all' else 'one at a time'} | {impl} | "
                         f"{_fmt(r['queries_per_s'])} | {_fmt(r['codes_per_s'])} | {r['ids_equal_to_faiss']:.4f} |")
        if len(pair) == 2:
            ratio = pair["hashlearn"]["queries_per_s"] / pair["faiss"]["queries_per_s"]
            checks.append(f"ADC scan, {pair['faiss']['n']:,} codes × {pair['faiss']['bytes']} bytes, 1 thread, queries "
                          f"{'in one batch' if batch == 'all' else 'one at a time'}: hashlearn / faiss IndexPQ = {ratio:.2f} "
                          f"({'meets' if ratio >= 1 else 'misses'} the ≥ 1.0 target)")
    return "\n".join(lines), checks



def summarize(rows, *, dataset: str | None = None) -> str:
    """Markdown of one run's rows: the tables, then the issue-14 targets as measured (computed here)."""
    rows = list(rows)
    name = dataset or (rows[0].get("dataset") if rows else "")
    parts, checks = [f"### {name}", ""], []
    sections = (
        ("Flat (exhaustive ADC) scans:", flat_table),
        ("IVF-PQ (nlist ∈ two sizes, nprobe swept; hashlearn IVFIndex vs faiss IndexIVFPQ):", ivf_table),
        ("IVF-PQ on k-means vs balanced k-means lists (hashlearn only; latency = one query per call):", balanced_table),
        ("ADC scan throughput (1M codes, hashlearn `adc_search` vs faiss `IndexPQ.search`, same codebooks and "
         "codes):", adc_table),
    )
    for title, fn in sections:
        table, found = fn(rows)
        if table and table.count("\n") > 1:
            parts += [title, "", table, ""]
        checks += found
    if checks:
        parts += ["Targets of issue 14, as measured above:", ""] + [f"- {c}" for c in checks] + [""]
    return "\n".join(parts).rstrip() + "\n"


def plot(rows, directory, *, dataset: str | None = None) -> list[Path]:
    """PNG of recall@10 vs bytes (flat scans) and IVF-PQ queries/s vs recall@10; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(rows)
    name = dataset or (rows[0].get("dataset") if rows else "run")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, marker in (("pq", "o"), ("opq", "s"), ("rq", "^")):
        for impl, style in (("hashlearn", "-"), ("faiss", "--")):
            pts = sorted((r["bytes"], r["recall@10"]) for r in rows if r["method"] == method and r["impl"] == impl)
            if pts:
                axes[0].plot(*zip(*pts), style, marker=marker, label=f"{method} {impl}")
    sizes = sorted({r["bytes"] for r in rows if r["method"] in ("pq", "opq", "rq")})
    axes[0].set(xscale="log", xlabel="bytes per vector", ylabel="recall@10", title=f"{name}: flat scans")
    if sizes:
        axes[0].set_xticks(sizes)
        axes[0].get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axes[0].legend(fontsize=7)
    ivf = [r for r in rows if r["method"] == "ivf-pq"]
    for B in sorted({r["bytes"] for r in ivf}):
        for impl, style in (("hashlearn", "-"), ("faiss", "--")):
            for nlist in sorted({r["nlist"] for r in ivf}):
                pts = [(r["recall@10"], r["queries_per_s"]) for r in ivf
                       if r["bytes"] == B and r["impl"] == impl and r["nlist"] == nlist]
                if pts:
                    axes[1].plot(*zip(*pts), style, marker=".", label=f"{B} B, nlist {nlist}, {impl}")
    axes[1].set(yscale="log", xlabel="recall@10", ylabel="queries/s", title=f"{name}: IVF-PQ, nprobe swept")
    axes[1].axvline(0.9, color="grey", lw=0.5)
    if ivf:
        axes[1].legend(fontsize=5, ncol=2)
    fig.tight_layout()
    path = directory / f"quantize_{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
