"""Benchmarks of :mod:`hashlearn.represent`: rows per (part, method, seed), summary, plots.

* ``mcr2`` — MNIST (10,000 training images): :class:`ManifoldClustering` on pixels vs k-means and spectral
  clustering on the same pixels, and k-means on the features MLC learned; accuracy (Hungarian), NMI, ARI and
  the clusters' subspace coherence;
* ``gsimclr`` — MNIST: G-SimCLR vs plain SimCLR at equal epochs and batch size; linear-evaluation accuracy;
* ``climb`` — 20 Newsgroups: CLIMB vs uniform and natural mixtures of MiniLM clusters at the same token
  budget; perplexity of a word-bigram proxy on held-out target posts and a downstream classifier's accuracy;
* ``householder`` — MNIST VAE: Householder-learned latent directions vs random orthogonal and PCA directions;
  the attribute each changes most (ink, slant, width, height, class) and by how much.

Every row carries ``load_start`` / ``load_end`` (1-minute load average) and ``fit_s``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..errors import ValidationError
from ._common import progress_logger

__all__ = ["run", "summarize", "plot", "markdown", "PARTS", "CLIMB_TARGETS", "quick_options"]

PARTS = ("mcr2", "gsimclr", "climb", "householder")
#: Target groups of the climb part: their test posts are the target set (half to search, half to report).
CLIMB_TARGETS = ("sci.space", "sci.med", "sci.electronics")
_METRICS = ("acc", "acc_100_labels", "nmi", "ari", "coherence", "perplexity", "downstream_acc", "attribute_change",
            "fit_s")

_DEFAULTS = {
    "mcr2": {"n_rows": 10000, "pretrain_steps": 800, "steps": 800},
    "gsimclr": {"n_rows": 10000, "n_test": 10000, "epochs": 5, "batch_size": 256},
    "climb": {"n_clusters": 16, "budget_tokens": 100_000, "order": 2, "rounds": (48, 32, 32), "search_draws": 2,
              "final_top": 10, "predictors": ("gbr", "ridge"), "draws": 3,
              "cache_dir": str(Path.home() / ".cache" / "hashlearn" / "represent")},
    "householder": {"n_rows": 20000, "vae_epochs": 10, "steps": 3000, "n_directions": 10, "n_random": 5,
                    "n_eval": 300, "shift": 3.0},
}


def quick_options(part: str) -> dict:
    """Smoke-test sizes (seconds on one core) for tiny data."""
    return {"mcr2": {"n_rows": 200, "pretrain_steps": 3, "steps": 3},
            "gsimclr": {"n_rows": 64, "n_test": 32, "epochs": 1, "batch_size": 16},
            "climb": {"n_clusters": 2, "budget_tokens": 200, "order": 2, "rounds": (3, 2), "search_draws": 1,
                      "final_top": 1, "predictors": ("gbr",), "draws": 1},
            "householder": {"n_rows": 64, "vae_epochs": 1, "steps": 3, "n_directions": 3, "n_random": 1,
                            "n_eval": 8}}[part]


def _load() -> float:
    return os.getloadavg()[0]


def _mnist(data_dir, n_rows: int, seed: int, split: str = "train"):
    from ..discover.data import load_mnist_idx

    x, y = load_mnist_idx(data_dir, split)
    n = min(n_rows, y.size)
    idx = np.sort(np.random.default_rng(seed).choice(y.size, n, replace=False)) if n < y.size else np.arange(n)
    return x[idx].astype(np.float32) / 255.0, y[idx]


def run(part: str, data_dir, seeds=(0, 1, 2), options: dict | None = None, progress: bool = False,
        plots=None) -> list[dict]:
    """Rows (list of dict) of one part; ``options`` override the part's defaults (see ``_DEFAULTS``).

    ``plots`` (a folder): the householder part writes its latent traversals there (they need the models)."""
    if part not in PARTS:
        raise ValidationError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    opts = {**_DEFAULTS[part], **(options or {})}
    log = progress_logger(progress)
    fn = {"mcr2": _mcr2, "gsimclr": _gsimclr, "climb": _climb, "householder": _householder}[part]
    opts["plots"] = plots
    return fn(Path(data_dir), list(seeds), opts, log)


# ---- mcr2 ------------------------------------------------------------------------------------------------

def _mcr2(data_dir, seeds, o, log) -> list[dict]:
    from sklearn.cluster import KMeans, SpectralClustering

    from ..metrics.clustering import clustering_scores
    from .mcr2 import ManifoldClustering, subspace_coherence

    X, Y = _mnist(data_dir, o["n_rows"], 0)
    R = X.reshape(len(X), -1)
    k = int(np.unique(Y).size)
    rows = []
    for seed in seeds:
        base = {"part": "mcr2", "dataset": f"mnist-{len(Y)}", "seed": int(seed), "features": "pixels",
                "load_start": _load()}
        t = time.perf_counter()
        km = KMeans(k, n_init=10, random_state=seed).fit_predict(R)
        rows.append({**base, "method": "kmeans", **clustering_scores(Y, km), "coherence": subspace_coherence(R, km),
                     "fit_s": time.perf_counter() - t})
        t = time.perf_counter()
        sp = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=10, assign_labels="cluster_qr",
                                random_state=seed).fit_predict(R)
        rows.append({**base, "method": "spectral", **clustering_scores(Y, sp), "coherence": subspace_coherence(R, sp),
                     "fit_s": time.perf_counter() - t})
        t = time.perf_counter()
        m = ManifoldClustering(k, image_shape=(28, 28), pretrain_steps=o["pretrain_steps"], steps=o["steps"],
                               random_state=seed).fit(R)
        fit_s = time.perf_counter() - t
        Z = m.transform(R)
        rows.append({**base, "method": "mcr2", **clustering_scores(Y, m.labels_),
                     "coherence": subspace_coherence(Z, m.labels_), "fit_s": fit_s,
                     "delta_r_start": float(np.mean(m.delta_r_[:20])), "delta_r_end": float(np.mean(m.delta_r_[-20:]))})
        t = time.perf_counter()
        kz = KMeans(k, n_init=10, random_state=seed).fit_predict(Z)
        rows.append({**base, "method": "kmeans-on-mcr2-features", "features": "MLC z (32-d)",
                     **clustering_scores(Y, kz), "coherence": subspace_coherence(Z, kz),
                     "fit_s": fit_s + time.perf_counter() - t})
        for r in rows[-4:]:
            r["load_end"] = _load()
        log(f"mcr2 seed {seed}: " + ", ".join(f"{r['method']} {r['acc']:.3f}" for r in rows[-4:]))
    return rows


# ---- gsimclr ---------------------------------------------------------------------------------------------

def _linear_eval(F, y, Ft, yt) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mu, sd = F.mean(0), F.std() + 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(max_iter=500).fit((F - mu) / sd, y)
    return float(clf.score((Ft - mu) / sd, yt))


def _few_label_eval(F, y, Ft, yt, seed: int, n_labels: int = 100, repeats: int = 5) -> float:
    """Mean linear-eval accuracy with ``n_labels`` class-balanced labels (``repeats`` label draws)."""
    from ..discover.labels import balanced_label_indices

    n = min(n_labels, y.size)
    accs = [_linear_eval(F[i], y[i], Ft, yt) for i in
            (balanced_label_indices(y, n, np.random.default_rng([seed, r])) for r in range(repeats))]
    return float(np.mean(accs))


def _gsimclr(data_dir, seeds, o, log) -> list[dict]:
    from ..metrics.clustering import cluster_accuracy
    from .gsimclr import GSimCLR

    X, Y = _mnist(data_dir, o["n_rows"], 0)
    Xt, Yt = _mnist(data_dir, o["n_test"], 0, "test")
    rows = []
    for seed in seeds:
        for guided in (True, False):
            t0 = _load()
            t = time.perf_counter()
            m = GSimCLR(guided, epochs=o["epochs"], batch_size=o["batch_size"], random_state=seed).fit(X)
            fit_s = time.perf_counter() - t
            F, Ft = m.transform(X), m.transform(Xt)
            acc = _linear_eval(F, Y, Ft, Yt)
            few = _few_label_eval(F, Y, Ft, Yt, seed)
            rows.append({"part": "gsimclr", "dataset": f"mnist-{len(Y)}", "method": "gsimclr" if guided else "simclr",
                         "seed": int(seed), "acc": acc, "acc_100_labels": few, "epochs": o["epochs"],
                         "batch_size": o["batch_size"],
                         "pseudo_acc": cluster_accuracy(Y, m.pseudo_labels_) if guided else None,
                         "loss_end": float(np.mean(m.loss_[-10:])), "fit_s": fit_s, "load_start": t0,
                         "load_end": _load()})
        log(f"gsimclr seed {seed}: gsimclr {rows[-2]['acc']:.4f} ({rows[-2]['acc_100_labels']:.4f} with 100 labels), "
            f"simclr {rows[-1]['acc']:.4f} ({rows[-1]['acc_100_labels']:.4f})")
    return rows


# ---- climb -----------------------------------------------------------------------------------------------

def _target_split(test, groups, seed: int = 0):
    missing = [g for g in groups if g not in test.groups]
    if missing:
        raise ValidationError(f"target groups {missing} are not in the corpus (groups: {', '.join(test.groups)})")
    idx = np.flatnonzero(np.isin(test.labels, [test.groups.index(g) for g in groups]))
    if idx.size < 2:
        raise ValidationError(f"the target groups have {idx.size} test posts: need at least 2")
    idx = np.random.default_rng(seed).permutation(idx)
    return idx[: idx.size // 2], idx[idx.size // 2:]


def _downstream(train, picked, test, idx) -> float:
    """Accuracy on the target test posts of a TF-IDF + multinomial naive Bayes classifier (all groups) trained
    on the posts the mixture drew."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB

    docs = np.unique(picked)
    if np.unique(train.labels[docs]).size < 2:
        return float(np.mean(train.labels[docs][0] == test.labels[idx]))
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2)
    clf = MultinomialNB(alpha=0.01).fit(vec.fit_transform([train.texts[i] for i in docs]), train.labels[docs])
    return float(np.mean(clf.predict(vec.transform([test.texts[i] for i in idx])) == test.labels[idx]))


def _climb(data_dir, seeds, o, log) -> list[dict]:
    from ..embed import Embedder
    from .climb import ClimbMixture
    from .data import embed_text, load_20newsgroups

    train, test = load_20newsgroups(data_dir, "train"), load_20newsgroups(data_dir, "test")
    if o["n_clusters"] > len(train.texts):
        raise ValidationError(f"n_clusters={o['n_clusters']} is more than the {len(train.texts)} documents")
    groups = o.get("targets", CLIMB_TARGETS)
    if not set(groups) <= set(test.groups):
        groups = test.groups[:1]  # tiny corpora: the first group is the target
    val, rep = _target_split(test, groups)
    t = time.perf_counter()
    E = Embedder(cache_dir=o["cache_dir"], show_progress=False).encode(embed_text(train))
    embed_s = time.perf_counter() - t
    log(f"climb: {len(train.texts)} posts embedded in {embed_s:.0f} s (cache {o['cache_dir']})")
    rows = []
    for seed in seeds:
        t0 = _load()
        found, fit_s = {}, {}
        for pred in o["predictors"]:
            t = time.perf_counter()
            m = ClimbMixture(o["n_clusters"], budget_tokens=o["budget_tokens"], order=o["order"], rounds=o["rounds"],
                             batch_tokens=min(1000, o["budget_tokens"]), draws=o["search_draws"],
                             final_top=o["final_top"], predictor=pred, random_state=seed)
            m.fit(E, train.texts, [test.texts[i] for i in val])
            name = "climb" if pred == "gbr" else f"climb-{pred}"
            found[name], fit_s[name] = m, time.perf_counter() - t
        m = found["climb"] if "climb" in found else next(iter(found.values()))
        docs = m.encode(train.texts)
        targets = [s for s in m.encode([test.texts[i] for i in rep]) if len(s)]
        k = m.natural_.size
        mixtures = [("uniform", np.full(k, 1.0 / k)), ("natural", m.natural_)]
        mixtures += [(name, fm.weights_) for name, fm in found.items()]
        for method, w in mixtures:
            ppl, acc = [], []
            for d in range(o["draws"]):
                lm, picked = m.proxy(docs, w, np.random.default_rng([seed, d, 7]))
                ppl.append(lm.perplexity(targets))
                acc.append(_downstream(train, picked, test, rep))
            rows.append({"part": "climb", "dataset": "20newsgroups", "method": method, "seed": int(seed),
                         "perplexity": float(np.mean(ppl)), "perplexity_draw_sd": float(np.std(ppl)),
                         "downstream_acc": float(np.mean(acc)), "budget_tokens": int(o["budget_tokens"]),
                         "weights": [round(float(v), 4) for v in w], "targets": list(groups),
                         "n_proxies": len(found[method].history_) * o["search_draws"] if method in found else 0,
                         "fit_s": fit_s.get(method, 0.0), "embed_s": embed_s,
                         "corpus_stats": {"train": train.stats, "test": test.stats},
                         "load_start": t0, "load_end": _load()})
            if method in found:
                rows[-1]["history"] = [(int(r), [round(float(v), 4) for v in hw], float(sc))
                                       for r, hw, sc in found[method].history_]
                rows[-1]["cluster_groups"] = _cluster_groups(m.labels_, train)
        log(f"climb seed {seed}: " + ", ".join(f"{r['method']} ppl {r['perplexity']:.1f}"
                                               for r in rows[-len(mixtures):]))
    return rows


def _cluster_groups(labels, corpus) -> list:
    """Per cluster: (majority group, its share of the cluster's posts)."""
    out = []
    for c in range(int(labels.max()) + 1):
        counts = np.bincount(corpus.labels[labels == c], minlength=len(corpus.groups))
        out.append((corpus.groups[int(counts.argmax())], round(float(counts.max() / max(counts.sum(), 1)), 3)))
    return out


# ---- householder -----------------------------------------------------------------------------------------

def _householder(data_dir, seeds, o, log) -> list[dict]:
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from .householder import ATTRIBUTES, VAE, LatentDirections, attribute_change, random_orthogonal

    X, Y = _mnist(data_dir, o["n_rows"], 0)
    Xt, _ = _mnist(data_dir, o["n_eval"], 1, "test")
    rows = []
    for seed in seeds:
        t0, t = _load(), time.perf_counter()
        vae = VAE(16, epochs=o["vae_epochs"], batch_size=min(128, len(X)), random_state=seed).fit(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            n_clf = min(len(X), 10000)
            clf = MLPClassifier((256,), max_iter=30, random_state=seed).fit(X[:n_clf].reshape(n_clf, -1), Y[:n_clf])
        ld = LatentDirections(o["n_directions"], steps=o["steps"], random_state=seed).fit(vae)
        fit_s = time.perf_counter() - t
        Zfit = vae.transform(X[:5000])
        ld_pca = LatentDirections(o["n_directions"], init="pca", steps=o["steps"], random_state=seed).fit(vae, Zfit)
        Z = vae.transform(Xt)
        d, k = Z.shape[1], o["n_directions"]

        def classify(images):
            return clf.predict_proba(images.reshape(len(images), -1))

        rng = np.random.default_rng([seed, 11])
        pca = PCA(k, random_state=seed).fit(Zfit).components_
        rand = np.concatenate([attribute_change(vae.decode, random_orthogonal(d, k, rng), Z, classify, o["shift"])
                               for _ in range(o["n_random"])])
        meas = {name: attribute_change(vae.decode, D, Z, classify, o["shift"]) for name, D in
                (("householder", ld.directions_), ("householder-pca-init", ld_pca.directions_), ("pca", pca),
                 ("random-heldout", random_orthogonal(d, k, rng)))}
        r_mean, r_p90 = rand.mean(0), np.quantile(rand, 0.9, axis=0)
        for method, A in meas.items():
            assign = np.argmax(A / r_mean, axis=1)
            for j, a in enumerate(assign):
                rows.append({"part": "householder", "dataset": f"mnist-vae16-{len(X)}", "method": method,
                             "seed": int(seed), "direction": j, "attribute": ATTRIBUTES[a],
                             "attribute_change": float(A[j, a]), "random_mean": float(r_mean[a]),
                             "random_p90": float(r_p90[a]), "beats_random_mean": bool(A[j, a] > r_mean[a]),
                             "beats_random_p90": bool(A[j, a] > r_p90[a]),
                             "changes": {n: round(float(v), 4) for n, v in zip(ATTRIBUTES, A[j])},
                             "reconstructor_acc": {"householder": ld.accuracy_, "householder-pca-init":
                                                   ld_pca.accuracy_}.get(method),
                             "fit_s": fit_s, "load_start": t0, "load_end": _load()})
        if seed == seeds[0] and o.get("plots") is not None:
            _plot_traversals(Path(o["plots"]), vae, Z[:1], {"householder": ld.directions_,
                                                            "householder-pca-init": ld_pca.directions_, "pca": pca,
                                                            "random": random_orthogonal(d, k, rng)})
        hh = [r for r in rows if r["seed"] == seed and r["method"] == "householder"]
        log(f"householder seed {seed}: {sum(r['beats_random_p90'] for r in hh)} of {len(hh)} directions beat the "
            f"random p90 ({sum(r['beats_random_mean'] for r in hh)} the random mean); reconstructor acc "
            f"{ld.accuracy_:.3f}")
    return rows


# ---- summary, markdown, plots ----------------------------------------------------------------------------

def summarize(rows: list[dict]) -> list[dict]:
    """Mean and sd (over seeds; householder: over seeds and directions) of each metric per (part, dataset,
    method); householder adds counts of directions beating random, climb the mean weights."""
    out = []
    keys = list(dict.fromkeys((r["part"], r["dataset"], r["method"]) for r in rows))
    for part, dataset, method in keys:
        rs = [r for r in rows if (r["part"], r["dataset"], r["method"]) == (part, dataset, method)]
        s = {"part": part, "dataset": dataset, "method": method, "n": len(rs)}
        for m in _METRICS:
            vals = [r[m] for r in rs if r.get(m) is not None]
            if vals:
                s[m], s[m + "_sd"] = float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        if part == "householder":
            seeds = sorted({r["seed"] for r in rs})
            s["beats_random_mean"] = float(np.mean([sum(r["beats_random_mean"] for r in rs if r["seed"] == q)
                                                    for q in seeds]))
            s["beats_random_p90"] = float(np.mean([sum(r["beats_random_p90"] for r in rs if r["seed"] == q)
                                                   for q in seeds]))
            s["n_directions"] = len(rs) // len(seeds)
        if part == "climb":
            W = np.asarray([r["weights"] for r in rs])
            s["weights_mean"] = [round(float(v), 3) for v in W.mean(0)]
            s["budget_tokens"] = rs[0]["budget_tokens"]
            if len(W) > 1:
                s["weights_l1_between_seeds"] = float(np.mean([np.abs(a - b).sum() for i, a in enumerate(W)
                                                               for b in W[i + 1:]]))
        out.append(s)
    return out


def markdown(summary: list[dict]) -> str:
    """A markdown table of the summary (mean ± sd)."""
    metrics = [m for m in _METRICS if any(m in s for s in summary)]
    extra = [m for m in ("beats_random_mean", "beats_random_p90") if any(m in s for s in summary)]
    head = "| dataset | method | " + " | ".join(metrics + extra) + " |"
    lines = [head, "|" + "---|" * (2 + len(metrics) + len(extra))]
    for s in summary:
        cells = [f"{s[m]:.4g} ± {s[m + '_sd']:.2g}" if m in s else "-" for m in metrics]
        cells += [f"{s[m]:.1f} / {s['n_directions']}" if m in s else "-" for m in extra]
        lines.append(f"| {s['dataset']} | {s['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], folder) -> list[Path]:
    """PNG plots of the rows' part into ``folder``; returns the paths written (householder traversals are
    written by :func:`run` with ``plots``, as they need the models)."""
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    part = rows[0]["part"] if rows else None
    if part == "climb":
        return _plot_climb(rows, folder)
    if part in ("mcr2", "gsimclr"):
        return _plot_bars(rows, folder, part)
    return []


def _plot_bars(rows, folder, part) -> list[Path]:
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    vals = [[r["acc"] for r in rows if r["method"] == m] for m in methods]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(range(len(methods)), [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], color="tab:blue")
    for i, v in enumerate(vals):
        ax.plot([i] * len(v), v, "k.", ms=4)
    ax.set_xticks(range(len(methods)), methods, fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{part}: accuracy per method (dots: seeds)")
    fig.tight_layout()
    path = folder / f"{part}_acc.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]


def _plot_climb(rows, folder) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    last = [r for r in rows if "history" in r and r["method"] == "climb"]
    if last:
        hist = last[0]["history"]
        W = np.asarray([h[1] for h in hist])
        rounds = np.asarray([h[0] for h in hist])
        k = W.shape[1]
        fig, axes = plt.subplots(1, int(rounds.max()) + 2, figsize=(3 * (rounds.max() + 2), 3))
        for r, ax in enumerate(axes[:-1]):
            ax.imshow(W[rounds == r], aspect="auto", cmap="viridis", vmin=0, vmax=max(0.3, W.max()))
            ax.set_title(f"round {r + 1}: {int((rounds == r).sum())} mixtures", fontsize=8)
            ax.set_xlabel("cluster")
            ax.set_ylabel("mixture (colour = weight)", fontsize=7)
        names = [g[0].split(".")[-1][:6] for g in last[0]["cluster_groups"]]
        ws = {m: next(r["weights"] for r in rows if r["method"] == m and r["seed"] == last[0]["seed"])
              for m in ("natural", "climb")}
        ax = axes[-1]
        ax.barh(np.arange(k) - 0.2, ws["natural"], 0.4, label="natural")
        ax.barh(np.arange(k) + 0.2, ws["climb"], 0.4, label="climb")
        ax.set_yticks(range(k), names, fontsize=6)
        ax.legend(fontsize=6)
        ax.set_title("final weights", fontsize=8)
        fig.tight_layout()
        paths.append(folder / "climb_rounds.png")
        fig.savefig(paths[-1], dpi=80)
        plt.close(fig)
    seeds = sorted({r["seed"] for r in rows if r["method"] == "climb"})
    fig, ax = plt.subplots(figsize=(7, 3))
    for i, s in enumerate(seeds):
        w = next(r["weights"] for r in rows if r["method"] == "climb" and r["seed"] == s)
        ax.bar(np.arange(len(w)) + (i - len(seeds) / 2) * 0.25, w, 0.25, label=f"seed {s}")
    nat = next(r["weights"] for r in rows if r["method"] == "natural")
    ax.plot(range(len(nat)), nat, "k_", ms=12, label="natural")
    ax.set_xlabel("cluster")
    ax.set_ylabel("weight")
    ax.legend(fontsize=7)
    ax.set_title("CLIMB mixture per seed")
    fig.tight_layout()
    paths.append(folder / "climb_weights.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    return paths


def _plot_traversals(folder, vae, z, directions: dict, shifts=(-3, -2, -1, 0, 1, 2, 3)) -> list[Path]:
    """One image grid per set of directions: row = direction, column = shift of the latent ``z`` (1, d)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, D in directions.items():
        grid = np.stack([vae.decode(z + s * d[None])[0] for d in D for s in shifts])
        k, m = len(D), len(shifts)
        tile = grid.reshape(k, m, 28, 28).transpose(0, 2, 1, 3).reshape(k * 28, m * 28)
        fig, ax = plt.subplots(figsize=(m * 0.45 + 0.6, k * 0.45 + 0.4))
        ax.imshow(tile, cmap="gray_r")
        ax.set_xticks([28 * i + 14 for i in range(m)], [str(s) for s in shifts], fontsize=6)
        ax.set_yticks([28 * i + 14 for i in range(k)], [str(i) for i in range(k)], fontsize=6)
        ax.set_title(f"{name} directions", fontsize=8)
        fig.tight_layout()
        paths.append(folder / f"traversal_{name}.png")
        fig.savefig(paths[-1], dpi=80)
        plt.close(fig)
    return paths
