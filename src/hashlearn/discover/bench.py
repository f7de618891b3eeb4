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

__all__ = ["run", "summarize", "plot", "PARTS", "markdown", "label_curves"]

PARTS = ("ncd", "gcd", "fewshot", "lls", "labels", "noise")
NCD_DATASETS = ("Pendigits", "Satimage")
#: Hyper-parameter names of the TabularNCD code's ``hyperparameters.json`` → TabularNCD parameters.
_HP_NAMES = {"dropout": "dropout", "lr_classif": "lr_classif", "lr_cluster": "lr_cluster", "w1": "w1", "w2": "w2",
             "cosine_topk": "topk_percent", "k_neighbors": "k_neighbors", "p_m": "p_m", "alpha": "alpha",
             "epochs": "epochs", "batch_size": "batch_size"}
_METRICS = ("acc", "ci95", "nmi", "ari", "acc_unlab", "all", "old", "new", "auc", "auc_ood", "auc_flip",
            "k_estimated", "fit_s")


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


def _lls(data_dir: Path, seeds, log, alphas=(10.0, 1.0, 0.3, 0.1), n_domains: int = 20, n_rows: int = 10000,
         dim: int = 50) -> list[dict]:
    """MNIST rows spread over ``n_domains`` domains, class proportions Dirichlet(alpha) (smaller: stronger shift)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from ..metrics.clustering import clustering_scores
    from .data import load_mnist_idx
    from .lls import LatentLabelShift

    images, labels = load_mnist_idx(data_dir, "train")
    n_classes = int(np.unique(labels).size)
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        sub = rng.choice(labels.size, size=min(n_rows, labels.size), replace=False)
        Z = PCA(dim, random_state=seed).fit_transform(images[sub].reshape(sub.size, -1).astype(np.float32) / 255.0)
        Y = labels[sub]
        t = time.perf_counter()
        km = KMeans(n_classes, n_init=10, random_state=seed).fit_predict(Z)
        km_s = time.perf_counter() - t
        for alpha in alphas:
            P = rng.dirichlet(np.full(n_classes, alpha), size=n_domains)  # p(y | d), one row per domain
            p_d_given_y = P / P.sum(0, keepdims=True)  # equal-sized domains a priori
            u = rng.random(Y.size)[:, None]
            dom = (np.cumsum(p_d_given_y[:, Y].T, axis=1) < u).sum(1).clip(0, n_domains - 1)
            base = {"part": "lls", "dataset": f"mnist-{n_rows // 1000}k-pca{dim}", "alpha": alpha,
                    "seed": int(seed), "n_domains": n_domains}
            rows.append({**base, "method": "kmeans", **clustering_scores(Y, km), "fit_s": km_s})
            t = time.perf_counter()
            model = LatentLabelShift(n_classes, random_state=seed).fit(Z, dom)
            rows.append({**base, "method": "lls", **clustering_scores(Y, model.labels_),
                         "fit_s": time.perf_counter() - t})
            log(f"lls seed {seed} alpha {alpha}: kmeans {rows[-2]['acc']:.3f}, lls {rows[-1]['acc']:.3f}")
    return rows


def _labels(data_dir: Path, seeds, log, n_labels=None, pca_dim: int = 50, itq_bits: int = 64,
            contrastive_steps: int = 3000, progress: bool = False) -> list[dict]:
    """Linear-head accuracy vs labels on MNIST for raw pixels, PCA, ITQ bits and a contrastive encoder.

    Every representation is fitted once (``random_state=seeds[0]``) on all training images without their
    labels; the balanced labelled subsets vary with the seed. Scored on the 10,000 test images.
    """
    from sklearn.decomposition import PCA

    from ..hashing import make_hasher
    from .data import load_mnist_idx
    from .labels import DEFAULT_N_LABELS, ContrastiveEncoder, itq_bits as unpack, label_efficiency

    xtr, ytr = load_mnist_idx(data_dir, "train")
    xte, yte = load_mnist_idx(data_dir, "test")
    Xtr, Xte = xtr.astype(np.float32) / 255.0, xte.astype(np.float32) / 255.0
    Rtr, Rte = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
    seed = int(seeds[0])
    feats, fit_s = {"raw": (Rtr, Rte)}, {"raw": 0.0}
    t = time.perf_counter()
    pca = PCA(min(pca_dim, *Rtr.shape), random_state=seed).fit(Rtr)
    feats["pca"], fit_s["pca"] = (pca.transform(Rtr), pca.transform(Rte)), time.perf_counter() - t
    t = time.perf_counter()
    itq = make_hasher("itq", n_bits=itq_bits, random_state=seed).fit(Rtr)
    feats["itq"] = (unpack(itq.transform(Rtr), itq_bits), unpack(itq.transform(Rte), itq_bits))
    fit_s["itq"] = time.perf_counter() - t
    t = time.perf_counter()
    enc = ContrastiveEncoder(steps=contrastive_steps, random_state=seed).fit(Xtr, progress=progress)
    feats["contrastive"] = (enc.transform(Xtr), enc.transform(Xte))
    fit_s["contrastive"] = time.perf_counter() - t
    log(f"labels: representations fitted ({', '.join(f'{k} {v:.0f} s' for k, v in fit_s.items())}); "
        f"contrastive loss {enc.loss_[:50].mean():.3f} -> {enc.loss_[-50:].mean():.3f}")
    sizes = [k for k in (n_labels or DEFAULT_N_LABELS) if k is None or k <= len(ytr)]
    rows = label_efficiency(feats, ytr, yte, n_labels=sizes, seeds=seeds, dataset=f"mnist-{len(ytr) // 1000}k",
                            log=log)
    for r in rows:
        r["repr_fit_s"] = fit_s[r["method"]]
        r["repr"] = {"raw": "784 pixels", "pca": f"PCA {pca.n_components_}", "itq": f"ITQ {itq_bits} bits",
                     "contrastive": f"SimCLR MLP {enc.dim}-d, {contrastive_steps} steps"}[r["method"]]
    return rows


def _omniglot_28(images: np.ndarray) -> np.ndarray:
    """105×105 bool drawings (ink False) → 28×28 float32 in [0, 1], ink = 1 (bilinear resize)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray((~im).astype(np.uint8) * 255).resize((28, 28), Image.BILINEAR))
                     for im in images]).astype(np.float32) / 255.0


def _fewshot(data_dir: Path, seeds, log, episodes: int = 600, train_episodes: int = 2000,
             settings=((5, 1), (5, 5), (20, 1), (20, 5)), n_query: int = 15, progress: bool = False) -> list[dict]:
    from sklearn.decomposition import PCA

    from .data import load_omniglot
    from .encoders import ProtoNetEncoder
    from .fewshot import FEWSHOT_METHODS, fewshot_predict, sample_episode

    xb, yb = load_omniglot(data_dir, "background")
    xe, ye = load_omniglot(data_dir, "evaluation")
    Xb, Xe = _omniglot_28(xb), _omniglot_28(xe)
    rows = []
    for seed in seeds:
        encoders = {}
        t = time.perf_counter()
        pca = PCA(64, random_state=seed).fit(Xb.reshape(len(Xb), -1))
        encoders["pca64"] = (pca.transform(Xe.reshape(len(Xe), -1)), time.perf_counter() - t)
        t = time.perf_counter()
        enc = ProtoNetEncoder(32, episodes=train_episodes, random_state=seed).fit(Xb, yb, progress=progress)
        encoders["protonet"] = (enc.transform(Xe), time.perf_counter() - t)
        log(f"fewshot seed {seed}: protonet trained in {encoders['protonet'][1]:.0f} s")
        for name, (F, fit_s) in encoders.items():
            for way, shot in settings:
                rng = np.random.default_rng([seed, way, shot])
                acc = {m: [] for m in FEWSHOT_METHODS}
                for _ in range(episodes):
                    s, q = sample_episode(ye, way, shot, n_query, rng)
                    yq = np.repeat(np.arange(way), n_query)
                    for m in acc:
                        acc[m].append(float(np.mean(fewshot_predict(F[s], F[q.ravel()], method=m) == yq)))
                for m, vals in acc.items():
                    rows.append({"part": "fewshot", "dataset": "omniglot-eval", "encoder": name, "method": m,
                                 "ways": way, "shots": shot, "seed": int(seed), "episodes": episodes,
                                 "acc": float(np.mean(vals)),
                                 "ci95": float(1.96 * np.std(vals, ddof=1) / np.sqrt(len(vals))), "fit_s": fit_s})
                log(f"fewshot {name} {way}-way {shot}-shot: " +
                    ", ".join(f"{r['method']} {r['acc']:.3f}" for r in rows[-len(acc):]))
    return rows


def _share(flags: np.ndarray):
    """Mean of a bool array, ``None`` when it is empty."""
    return float(flags.mean()) if flags.size else None


def _noise(data_dir: Path, seeds, log, omniglot_dir=None, n_rows: int = 20000, ood_fraction: float = 0.2,
           flip_fraction: float = 0.2, contrastive_steps: int = 3000, head_steps: int = 3000,
           progress: bool = False) -> list[dict]:
    """Web noise on MNIST: Omniglot characters with random digit labels + label flips; heads on SimCLR features.

    Per seed: ``n_rows`` MNIST training images, ``ood_fraction`` of them replaced by Omniglot drawings
    (background + evaluation, 28×28, ink = 1 like MNIST) with uniform random labels, ``flip_fraction``
    given another label; a :class:`ContrastiveEncoder` fitted on these images (no labels); the noise scores
    of :func:`web_noise_scores`; heads trained on everything, after discarding the flagged rows, with the
    flagged ID rows as unlabelled data, and on the clean rows only (oracle). Scored on the 10,000 test images.
    """
    from .data import load_mnist_idx, load_omniglot
    from .labels import ContrastiveEncoder
    from .noise import WebNoiseClassifier, detection_auc, inject_web_noise, web_noise_scores

    if omniglot_dir is None:
        raise ValidationError("part noise needs the Omniglot folder (noise_options={'omniglot_dir': ...})")
    xtr, ytr = load_mnist_idx(data_dir, "train")
    xte, yte = load_mnist_idx(data_dir, "test")
    Xte = xte.astype(np.float32) / 255.0
    om = np.concatenate([load_omniglot(omniglot_dir, part)[0] for part in ("background", "evaluation")])
    pool = _omniglot_28(om)
    rows = []
    for seed in seeds:
        rng = np.random.default_rng([seed, 18])
        sub = rng.choice(ytr.size, size=min(n_rows, ytr.size), replace=False)
        web = inject_web_noise(xtr[sub].astype(np.float32) / 255.0, ytr[sub], pool, ood_fraction=ood_fraction,
                               flip_fraction=flip_fraction, n_classes=10, random_state=rng)
        t = time.perf_counter()
        enc = ContrastiveEncoder(steps=contrastive_steps, random_state=seed).fit(web.images, progress=progress)
        Ftr, Fte = enc.transform(web.images), enc.transform(Xte)
        enc_s = time.perf_counter() - t
        t = time.perf_counter()
        sc = web_noise_scores(Ftr, web.labels, random_state=seed)
        det_s = time.perf_counter() - t
        base = {"part": "noise", "dataset": f"mnist-{sub.size // 1000}k+omniglot", "seed": int(seed),
                "n_rows": int(sub.size), "ood_fraction": ood_fraction, "flip_fraction": flip_fraction,
                "head_steps": head_steps, "encoder_s": enc_s, "detect_s": det_s,
                "auc": detection_auc(sc["score"], web.is_noisy),
                "auc_ood": detection_auc(sc["p_ood"], web.is_ood),
                "auc_flip": detection_auc(1 - sc["p_label"][~web.is_ood], web.is_flipped[~web.is_ood])}
        clean = ~web.is_noisy
        for method, strategy, idx in (("all", "all", slice(None)), ("discard", "discard", slice(None)),
                                      ("detect+unlabelled", "unlabelled", slice(None)), ("oracle-clean", "all", clean)):
            t = time.perf_counter()
            clf = WebNoiseClassifier(strategy, steps=head_steps, random_state=seed)
            clf.fit(Ftr[idx], web.labels[idx], noise_scores=sc if strategy != "all" else None)
            row = {**base, "method": method, "acc": float(np.mean(clf.predict(Fte) == yte)),
                   "fit_s": time.perf_counter() - t}
            if strategy != "all":
                row.update(flagged=int(clf.flagged_.sum()), flag_precision=_share(web.is_noisy[clf.flagged_]),
                           flag_recall=_share(clf.flagged_[web.is_noisy]),
                           ood_flagged=int((sc["p_ood"] > 0.5).sum()),
                           ood_flag_precision=_share(web.is_ood[sc["p_ood"] > 0.5]),
                           pseudo_labelled=int(clf.pseudo_labelled_.sum()),
                           pseudo_acc=_share(sc["pseudo"][clf.pseudo_labelled_]
                                             == web.clean_labels[clf.pseudo_labelled_]))
            else:
                row["auc"] = row["auc_ood"] = row["auc_flip"] = None  # no detection in these rows
            rows.append(row)
        log(f"noise seed {seed}: AUC {base['auc']:.3f} (OOD {base['auc_ood']:.3f}, flips {base['auc_flip']:.3f}); "
            + ", ".join(f"{r['method']} {r['acc']:.3f}" for r in rows[-4:]))
    return rows


def run(part: str, data_dir, *, seeds=(0, 1, 2), n_threads: int = 1, progress: bool = True,
        fewshot_options: dict | None = None, labels_options: dict | None = None,
        noise_options: dict | None = None) -> list[dict]:
    """Rows of one part (one of :data:`PARTS`); every row has part, dataset, method, seed and its scores.

    ``labels_options`` (part ``labels``): keyword arguments of the label-efficiency run (``n_labels``,
    ``pca_dim``, ``itq_bits``, ``contrastive_steps``). ``noise_options`` (part ``noise``, ``data_dir`` an MNIST
    folder): ``omniglot_dir`` (required), ``n_rows``, ``ood_fraction``, ``flip_fraction``, ``contrastive_steps``,
    ``head_steps``.

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
        if part == "ncd":
            rows = _ncd(Path(data_dir), seeds, log)
        elif part == "gcd":
            rows = _gcd(Path(data_dir), seeds, log)
        elif part == "lls":
            rows = _lls(Path(data_dir), seeds, log)
        elif part == "labels":
            rows = _labels(Path(data_dir), seeds, log, progress=progress, **(labels_options or {}))
        elif part == "noise":
            rows = _noise(Path(data_dir), seeds, log, progress=progress, **(noise_options or {}))
        else:
            rows = _fewshot(Path(data_dir), seeds, log, progress=progress, **(fewshot_options or {}))
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
        key = (r["part"], r["dataset"], r["method"], r.get("encoder"), r.get("ways"), r.get("shots"), r.get("alpha"),
               r.get("n_labels"))
        groups.setdefault(key, []).append(r)
    out = []
    for (part, dataset, method, encoder, ways, shots, alpha, n_labels), rs in groups.items():
        s = {"part": part, "dataset": dataset if alpha is None else f"{dataset} α={alpha:g}", "method": method,
             "n_seeds": len(rs)}
        if n_labels is not None:
            s["n_labels"] = n_labels
        if encoder is not None:
            s.update(encoder=encoder, ways=ways, shots=shots)
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
    if any("n_labels" in s for s in summary):  # label efficiency: one line per number of labels
        methods = list(dict.fromkeys(s["method"] for s in summary))
        head = ("| labels | " + " | ".join(f"{m} acc (%)" for m in methods) + " |\n|---:|"
                + "---:|" * len(methods) + "\n")
        lines = []
        for n in sorted({s["n_labels"] for s in summary}):
            cells = []
            for m in methods:
                s = next((s for s in summary if s["method"] == m and s["n_labels"] == n), None)
                cells.append("-" if s is None else f"{100 * s['acc']:.1f} ± {100 * s['acc_sd']:.1f}")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        return head + "\n".join(lines) + "\n"
    if any("encoder" in s for s in summary):  # few-shot: one line per encoder, setting and method
        head = "| encoder | ways | shots | method | acc (%) | ci95 (%) |\n|---|---:|---:|---|---:|---:|\n"
        return head + "\n".join(f"| {s['encoder']} | {s['ways']} | {s['shots']} | {s['method']} | "
                                 f"{100 * s['acc']:.2f} | ±{100 * s['ci95']:.2f} |" for s in summary) + "\n"
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
                digits = 3 if scale == 1 else 1
                cells.append(f"{scale * s[m]:.{digits}f} ± {scale * s[m + '_sd']:.{digits}f}")
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
                                 ("gcd", ("all", "old", "new"), "GCD accuracy on the unlabelled rows"),
                                 ("lls", ("acc",), "Latent label shift, MNIST domains (Dirichlet α: lower = stronger)"),
                                 ("noise", ("acc",), "Web noise: test accuracy, heads on SimCLR features")):
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
    lab = [r for r in rows if r["part"] == "labels"]
    if lab:
        paths.append(_plot_labels(lab, out_dir / "discover_labels.png"))
    few = [s for s in summary if s["part"] == "fewshot"]
    if few:
        encoders = list(dict.fromkeys(s["encoder"] for s in few))
        fig, axes = plt.subplots(1, len(encoders), figsize=(5.5 * len(encoders), 4), squeeze=False)
        for ax, enc in zip(axes[0], encoders):
            sel = [s for s in few if s["encoder"] == enc]
            settings = list(dict.fromkeys((s["ways"], s["shots"]) for s in sel))
            methods = list(dict.fromkeys(s["method"] for s in sel))
            width = 0.8 / len(methods)
            x = np.arange(len(settings))
            for i, m in enumerate(methods):
                vals = [next(s for s in sel if s["method"] == m and (s["ways"], s["shots"]) == st) for st in settings]
                ax.bar(x + (i - (len(methods) - 1) / 2) * width, [100 * v["acc"] for v in vals], width,
                       yerr=[100 * v["ci95"] for v in vals], capsize=2, label=m)
            ax.set_xticks(x, [f"{w}-way {k}-shot" for w, k in settings], fontsize=8)
            ax.set_ylabel("query accuracy (%)")
            ax.set_title(f"Omniglot evaluation alphabets, encoder {enc}", fontsize=9)
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out_dir / "discover_fewshot.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def label_curves(rows: list[dict]) -> dict:
    """Fitted ``acc = a − b·n^−c`` per method of the label-efficiency rows (all seeds' points)."""
    from .labels import fit_label_curve

    out = {}
    for m in dict.fromkeys(r["method"] for r in rows if r["part"] == "labels"):
        rs = [r for r in rows if r["part"] == "labels" and r["method"] == m]
        out[m] = fit_label_curve([r["n_labels"] for r in rs], [r["acc"] for r in rs])
    return out


def _plot_labels(rows: list[dict], path: Path) -> Path:
    import matplotlib.pyplot as plt

    from .labels import label_curve

    summary = summarize(rows)
    curves = label_curves(rows)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ns = np.array(sorted({r["n_labels"] for r in rows}), dtype=float)
    grid = np.geomspace(ns.min(), ns.max(), 200)
    for m, fit in curves.items():
        sel = sorted((s for s in summary if s["method"] == m), key=lambda s: s["n_labels"])
        line = ax.errorbar([s["n_labels"] for s in sel], [100 * s["acc"] for s in sel],
                           yerr=[100 * s["acc_sd"] for s in sel], fmt="o", ms=4, capsize=2, label=m)
        ax.plot(grid, 100 * label_curve(grid, fit["a"], fit["b"], fit["c"]), "-", lw=1, color=line[0].get_color())
    ax.set_xscale("log")
    ax.set_xlabel("number of labels (balanced over classes)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Linear head vs labels, MNIST (lines: fitted a − b·n^−c)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
