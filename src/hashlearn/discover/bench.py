"""Benchmarks of :mod:`hashlearn.discover`: rows per (part, dataset, method, seed), summary, plots.

``run("ncd", data_dir)``: TabularNCD vs k-means on the TabularNCD splits (Pendigits, Satimage), scored
on the test rows of the novel classes (the protocol of the paper's ``Clustering.py`` baselines; its
k-means numbers are reproduced on these rows). ``run("gcd", data_dir)``: GMMDiscovery vs k-means on
MNIST (an idx folder), classes 0–4 known, half of their training rows labelled, scored on the
unlabelled rows (All/Old/New, Vaze et al.'s protocol).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ..errors import ValidationError

__all__ = ["run", "summarize", "plot", "PARTS", "markdown"]

PARTS = ("ncd", "gcd")
NCD_DATASETS = ("Pendigits", "Satimage")
#: Hyper-parameter names of the TabularNCD code's ``hyperparameters.json`` → TabularNCD parameters.
_HP_NAMES = {"dropout": "dropout", "lr_classif": "lr_classif", "lr_cluster": "lr_cluster", "w1": "w1", "w2": "w2",
             "cosine_topk": "topk_percent", "k_neighbors": "k_neighbors", "p_m": "p_m", "alpha": "alpha",
             "epochs": "epochs", "batch_size": "batch_size"}
_METRICS = ("acc", "nmi", "ari", "acc_unlab", "all", "old", "new", "k_estimated", "fit_s")


def _progress(enabled: bool):
    if not enabled:
        return lambda msg: None
    from rich.console import Console

    console = Console(stderr=True)
    return lambda msg: console.log(msg)


def _ncd_params(folder: Path) -> dict:
    path = folder / "hyperparameters.json"
    if not path.is_file():
        return {}
    hp = json.loads(path.read_text())
    return {ours: hp[theirs] for theirs, ours in _HP_NAMES.items() if theirs in hp}


def _ncd(data_dir: Path, seeds, log, datasets=NCD_DATASETS) -> list[dict]:
    from sklearn.cluster import KMeans

    from ..metrics.clustering import clustering_scores
    from .data import load_tabular_ncd
    from .tabular_ncd import TabularNCD

    rows = []
    for name in datasets:
        s = load_tabular_ncd(data_dir, name)
        params = _ncd_params(Path(data_dir) / name)
        X = np.vstack([s.x_lab, s.x_unlab])
        y = np.concatenate([s.y_lab, np.full(s.y_unlab.size, -1)])
        te = np.isin(s.y_test, s.novel)
        xt, yt = s.x_test[te], s.y_test[te]
        k = len(s.novel)
        for seed in seeds:
            base = {"part": "ncd", "dataset": name, "seed": int(seed), "n_novel": k, "n_test_novel": int(te.sum())}
            t = time.perf_counter()
            km = KMeans(k, n_init=10, random_state=seed).fit(xt)
            rows.append({**base, "method": "kmeans", **clustering_scores(yt, km.labels_),
                         "fit_s": time.perf_counter() - t, "k_estimated": None, "acc_unlab": None})
            for method, n_novel in (("tabularncd", k), ("tabularncd-estk", None)):
                t = time.perf_counter()
                model = TabularNCD(n_novel, **params, random_state=seed).fit(X, y)
                fit_s = time.perf_counter() - t
                scores = clustering_scores(yt, model.predict_novel(xt))
                acc_unlab = clustering_scores(s.y_unlab, model.predict_novel(s.x_unlab))["acc"]
                rows.append({**base, "method": method, **scores, "fit_s": fit_s, "acc_unlab": acc_unlab,
                             "k_estimated": None if n_novel is not None else model.n_novel_})
            log(f"ncd {name} seed {seed}: " + ", ".join(f"{r['method']} {r['acc']:.3f}" for r in rows[-3:]))
    return rows


def _gcd(data_dir: Path, seeds, log, known=(0, 1, 2, 3, 4), n_rows: int = 10000, dim: int = 30,
         labelled_fraction: float = 0.5) -> list[dict]:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from ..metrics.clustering import gcd_accuracy
    from .data import load_mnist_idx
    from .gmm import GMMDiscovery

    images, labels = load_mnist_idx(data_dir, "train")
    classes = np.unique(labels)
    missing = sorted(set(known) - set(classes.tolist()))
    if missing:
        raise ValidationError(f"known classes {missing} are not among the data's classes {classes.tolist()}")
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        sub = rng.choice(labels.size, size=min(n_rows, labels.size), replace=False)
        X = images[sub].reshape(sub.size, -1).astype(np.float32) / 255.0
        Y = labels[sub]
        lab = np.isin(Y, known) & (rng.random(sub.size) < labelled_fraction)
        y = np.where(lab, Y, -1)
        Z = PCA(dim, random_state=seed).fit_transform(X)
        unl = ~lab
        base = {"part": "gcd", "dataset": f"mnist-{n_rows // 1000}k-pca{dim}", "seed": int(seed),
                "n_classes": int(classes.size), "n_unlabelled": int(unl.sum())}
        t = time.perf_counter()
        pred = KMeans(classes.size, n_init=10, random_state=seed).fit_predict(Z[unl])
        rows.append({**base, "method": "kmeans", **gcd_accuracy(Y[unl], pred, known), "k_estimated": None,
                     "fit_s": time.perf_counter() - t})
        for method, n_novel in (("gmm", classes.size - len(known)), ("gmm-estk", None)):
            t = time.perf_counter()
            model = GMMDiscovery(n_novel, random_state=seed).fit(Z, y)
            fit_s = time.perf_counter() - t
            rows.append({**base, "method": method, **gcd_accuracy(Y[unl], model.predict(Z[unl]), known),
                         "k_estimated": None if n_novel is not None else len(known) + model.n_novel_,
                         "fit_s": fit_s})
        log(f"gcd seed {seed}: " + ", ".join(f"{r['method']} all {r['all']:.3f}" for r in rows[-3:]))
    return rows


def run(part: str, data_dir, *, seeds=(0, 1, 2), n_threads: int = 1, progress: bool = True) -> list[dict]:
    """Rows of one part (``ncd`` or ``gcd``); every row has part, dataset, method, seed and its scores.

    The load average at start and end is added to every row (``load_start``, ``load_end``).
    """
    if part not in PARTS:
        raise ValidationError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    import torch

    log = _progress(progress)
    load0 = os.getloadavg()[0]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(n_threads)
        rows = _ncd(Path(data_dir), seeds, log) if part == "ncd" else _gcd(Path(data_dir), seeds, log)
    finally:
        torch.set_num_threads(old)
    load1 = os.getloadavg()[0]
    for r in rows:
        r["load_start"], r["load_end"] = load0, load1
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of each (part, dataset, method)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["part"], r["dataset"], r["method"]), []).append(r)
    out = []
    for (part, dataset, method), rs in groups.items():
        s = {"part": part, "dataset": dataset, "method": method, "n_seeds": len(rs)}
        for k in _METRICS:
            vals = [float(r[k]) for r in rs if r.get(k) is not None and np.isfinite(r[k])]
            if vals:
                s[k] = float(np.mean(vals))
                s[k + "_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        if any(r.get("k_estimated") is not None for r in rs):
            s["k_values"] = [r["k_estimated"] for r in rs]
        out.append(s)
    return out


def markdown(summary: list[dict]) -> str:
    """A Markdown table of a summary (cells mean ± sd over seeds, accuracies in %)."""
    metrics = [m for m in _METRICS if any(m in s for s in summary)]
    head = "| dataset | method | " + " | ".join(metrics) + " |\n|---|---|" + "---:|" * len(metrics) + "\n"
    lines = []
    for s in summary:
        cells = []
        for m in metrics:
            if m not in s:
                cells.append("-")
            elif m == "k_estimated":
                cells.append(f"{s[m]:.1f} ({', '.join(str(v) for v in s['k_values'])})")
            elif m == "fit_s":
                cells.append(f"{s[m]:.1f}")
            else:
                scale = 1 if m in ("nmi", "ari") else 100
                cells.append(f"{scale * s[m]:.{3 if scale == 1 else 1}f} ± {scale * s[m + '_sd']:.{3 if scale == 1 else 1}f}")
        lines.append(f"| {s['dataset']} | {s['method']} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def plot(rows: list[dict], out_dir) -> list[Path]:
    """Bar charts (mean ± sd over seeds) of the parts present in ``rows``; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    paths = []
    for part, metrics, title in (("ncd", ("acc",), "Novel-class accuracy on the test rows of the novel classes"),
                                 ("gcd", ("all", "old", "new"), "GCD accuracy on the unlabelled rows")):
        sel = [s for s in summary if s["part"] == part]
        if not sel:
            continue
        datasets = list(dict.fromkeys(s["dataset"] for s in sel))
        methods = list(dict.fromkeys(s["method"] for s in sel))
        groups = [(d, m) for d in datasets for m in metrics]
        fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(groups) + 1), 4))
        width = 0.8 / len(methods)
        x = np.arange(len(groups))
        for i, method in enumerate(methods):
            vals, errs = [], []
            for d, m in groups:
                s = next((s for s in sel if s["dataset"] == d and s["method"] == method), {})
                vals.append(100 * s.get(m, np.nan))
                errs.append(100 * s.get(m + "_sd", 0.0))
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, vals, width, yerr=errs, capsize=3, label=method)
        ax.set_xticks(x, [f"{d}\n{m}" if len(metrics) > 1 else d for d, m in groups], fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out_dir / f"discover_{part}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
