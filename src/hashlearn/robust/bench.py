"""Benchmarks of :mod:`hashlearn.robust` on MNIST (and a tabular VFL split): rows, plots, markdown.

``run("attack", mnist_dir)``: DPSH (32 bits, small CNN) trained on MNIST training images; targeted attacks
on test queries (none, uniform noise, P2P, DHTA, ProS-GAN) at one L∞ budget; then the hasher is
fine-tuned on ProS-GAN examples (adversarial training), the generator retrained against the defended
hasher, and every attack measured again. ``run("vfl", mnist_dir, tabular_dir=...)``: two parties (left /
right image halves; the two halves of the Pendigits columns) and a top, as real processes, with plain
float embeddings and with hash codes; the top's reconstruction and label-inference attacks.
``run("unlearnable", mnist_dir)``: unlearnable clusters at the stated budgets; a CNN and DPSH trained on
the perturbed vs the clean training images, evaluated on clean test images.

Every row carries ``part`` and ``method`` (attack: ``none|noise|p2p|dhta|prosgan``; vfl: ``plain|hashed``;
unlearnable: ``clean|perturbed``) and the issue's metrics (``t_map``, ``clean_map``, ``eps``; ``acc``,
``recon_mse``; ``test_acc``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..errors import ValidationError

__all__ = ["run", "PARTS", "SIZES", "COLUMNS", "markdown", "plot_grid"]

PARTS = ("attack", "vfl", "unlearnable")
#: Problem sizes: "full" for the benchmark, "tiny" for tests and smoke runs.
SIZES = {
    "full": {"n_train": 10000, "n_queries": 500, "n_test": 5000, "hasher_epochs": 15, "gan_epochs": 5,
             "pgd_iter": 100, "ft_epochs": 2, "vfl_epochs": 5, "vfl_test": 3000, "vfl_aux": 2000,
             "clf_epochs": 12, "uc_steps": 200},
    "tiny": {"n_train": 300, "n_queries": 20, "n_test": 200, "hasher_epochs": 2, "gan_epochs": 1,
             "pgd_iter": 5, "ft_epochs": 1, "vfl_epochs": 1, "vfl_test": 100, "vfl_aux": 60,
             "clf_epochs": 1, "uc_steps": 5},
}


def _log(enabled):
    if not enabled:
        return lambda msg: None
    from rich.console import Console

    console = Console(stderr=True)
    return lambda msg: console.log(msg)


def _load(mnist_dir):
    from ..evaluate_supervised import read_mnist

    return read_mnist(mnist_dir)


def _subsets(xtr, ytr, xte, yte, size, seed):
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.choice(xtr.shape[0], min(size["n_train"], xtr.shape[0]), replace=False))
    te = rng.permutation(xte.shape[0])
    return xtr[tr], ytr[tr], xte[te], yte[te]


def _load_avg() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:  # pragma: no cover
        return float("nan")


# --------------------------------------------------------------------------------------------------
# attack
# --------------------------------------------------------------------------------------------------


def _attack_rows(f, hasher_name, X, y, Xq, yq, targets, eps, size, seed, log):
    from .attack import ProSGAN, dhta_codes, noise_attack, p2p_codes, pgd_code_attack, retrieval_map, targeted_map

    db = f.codes(X)
    clean_map = retrieval_map(f.codes(Xq), db, yq, y)
    base = {"part": "attack", "model": hasher_name, "eps": eps, "clean_map": clean_map, "n_queries": int(len(yq)),
            "n_db": int(len(y)), "seed": seed}
    rows, adv = [], {}

    def add(method, Xa, seconds, **extra):
        adv[method] = Xa
        rows.append({**base, "method": method, "t_map": targeted_map(f.codes(Xa), db, targets, y),
                     "ms_per_query": 1000 * seconds / len(yq), "linf": float(np.abs(Xa - Xq).max()), **extra})
        log(f"attack {hasher_name} {method}: t-mAP {rows[-1]['t_map']:.3f}, {rows[-1]['ms_per_query']:.2f} ms/query")

    add("none", Xq, 0.0)
    t = time.perf_counter()
    Xn = noise_attack(Xq, eps, random_state=seed)
    add("noise", Xn, time.perf_counter() - t)
    for name, codes in (("p2p", p2p_codes(targets, db, y, random_state=seed)),
                        ("dhta", dhta_codes(targets, db, y, n_anchor=9, random_state=seed))):
        t = time.perf_counter()
        Xa = pgd_code_attack(f, Xq, codes, eps, n_iter=size["pgd_iter"])
        add(name, Xa, time.perf_counter() - t, n_iter=size["pgd_iter"])
    t = time.perf_counter()
    gan = ProSGAN(eps, epochs=size["gan_epochs"], random_state=seed).fit(f, X, y, db, y)
    fit_s = time.perf_counter() - t
    log(f"ProS-GAN fitted in {fit_s:.0f} s: prototype mAP {gan.prototype_map_:.3f}, losses per epoch "
        + "; ".join(", ".join(f"{k} {v:.3f}" for k, v in e.items()) for e in gan.loss_history_))
    t = time.perf_counter()
    Xa = gan.perturb(Xq, targets)
    add("prosgan", Xa, time.perf_counter() - t, fit_s=fit_s, prototype_map=gan.prototype_map_,
        gan_losses=gan.loss_history_, gan_epochs=gan.epochs, gan_lr=gan.lr, rec_weight=gan.rec_weight,
        adv_weight=gan.adv_weight)
    return rows, gan, adv


def _run_attack(mnist_dir, size, seed, eps, log, plots):
    from ..registry import make_method
    from ._common import random_targets
    from .attack import HasherFunction, adversarial_finetune

    X, y, Xte, yte = _subsets(*_load(mnist_dir), size, seed)
    Xq, yq = Xte[: size["n_queries"]], yte[: size["n_queries"]]
    targets = random_targets(yq, np.unique(y), random_state=seed)
    t = time.perf_counter()
    hasher = make_method("dpsh", n_bits=32, random_state=seed, input_shape=(1, 28, 28), epochs=size["hasher_epochs"],
                         validation_fraction=0.0, n_threads=1).fit(X, y)
    fit_s = time.perf_counter() - t
    log(f"DPSH 32 bits fitted on {len(y)} images in {fit_s:.0f} s")
    rows, gan, adv = _attack_rows(HasherFunction(hasher, X), "dpsh", X, y, Xq, yq, targets, eps, size, seed, log)
    t = time.perf_counter()
    defended = adversarial_finetune(hasher, gan, X, y, epochs=size["ft_epochs"], random_state=seed)
    ft_s = time.perf_counter() - t
    log(f"adversarial fine-tuning: {ft_s:.0f} s")
    rows2, _, _ = _attack_rows(HasherFunction(defended, X), "dpsh+advtrain", X, y, Xq, yq, targets, eps, size,
                               seed, log)
    for r in rows:
        r["hasher_fit_s"] = fit_s
    for r in rows2:
        r["advtrain_s"] = ft_s
    out = rows + rows2
    if plots is not None:
        sel = slice(0, 8)
        grid = [Xq[sel], np.clip(0.5 + (adv["prosgan"][sel] - Xq[sel]) / (2 * eps), 0, 1), adv["prosgan"][sel],
                np.clip(0.5 + (adv["p2p"][sel] - Xq[sel]) / (2 * eps), 0, 1), adv["p2p"][sel]]
        titles = ["clean query", "ProS-GAN δ (0.5 + δ/2ε)", "ProS-GAN x+δ", "P2P δ (0.5 + δ/2ε)", "P2P x+δ"]
        cols = [f"{a}→{b}" for a, b in zip(yq[sel], targets[sel])]
        out_path = plot_grid(grid, titles, cols, (28, 28), Path(plots) / f"attack_eps{eps:.3f}.png",
                             f"targeted attacks on DPSH 32 bits, ε = {eps:g} (label→target)")
        out[0]["plot"] = str(out_path)
    return out


# --------------------------------------------------------------------------------------------------
# vfl
# --------------------------------------------------------------------------------------------------


def _ssim_rows(a, b, shape):
    from skimage.metrics import structural_similarity

    return float(np.mean([structural_similarity(u.reshape(shape), v.reshape(shape), data_range=1.0)
                          for u, v in zip(a, b)]))


def _vfl_one(dataset, parties, y, parties_te, y_te, shape, size, seed, n_bits, log):
    from .vfl import label_inference_attack, reconstruction_attack, train_vfl

    n_aux = size["vfl_aux"]
    aux, test = np.arange(n_aux), np.arange(n_aux, len(y_te))
    rows, recs = [], {}
    for method in ("plain", "hashed"):
        t = time.perf_counter()
        res = train_vfl(parties, y, parties_te, y_te, hashed=method == "hashed", n_bits=n_bits,
                        epochs=size["vfl_epochs"], random_state=seed)
        wall = time.perf_counter() - t
        m0 = res["messages"][0]
        rec, mse = reconstruction_attack(m0, parties_te[0], aux, test, random_state=seed)
        recs[method] = rec
        row = {"part": "vfl", "dataset": dataset, "method": method, "acc": res["acc"], "recon_mse": mse,
               "label_acc": label_inference_attack(m0, y_te, aux, test),
               "chance": float(np.max(np.bincount(y_te[test])) / len(test)),
               "bits_per_row": res["bits_per_row"], "bytes_forward": res["bytes_forward"][0],
               "train_s": res["train_s"], "wall_s": wall, "n_bits": n_bits, "n_train": int(len(y)),
               "n_aux": int(n_aux), "n_eval": int(len(test)), "seed": seed}
        if shape is not None:
            row["recon_ssim"] = _ssim_rows(rec, parties_te[0][test], shape)
        rows.append(row)
        log(f"vfl {dataset} {method}: acc {row['acc']:.4f}, recon MSE {mse:.4f}, label inference "
            f"{row['label_acc']:.3f}, {row['bits_per_row']} bits/row")
    # baseline of the reconstruction: predicting the mean of the auxiliary rows
    mean_mse = float(np.mean((parties_te[0][aux].mean(0) - parties_te[0][test]) ** 2))
    for r in rows:
        r["mean_mse"] = mean_mse
    return rows, recs, test


def _run_vfl(mnist_dir, tabular_dir, size, seed, n_bits, log, plots):
    xtr, ytr, xte, yte = _subsets(*_load(mnist_dir), size, seed)
    xte, yte = xte[: size["vfl_test"]], yte[: size["vfl_test"]]

    def halves(X):
        im = X.reshape(-1, 28, 28)
        return [np.ascontiguousarray(im[:, :, :14].reshape(len(X), -1)),
                np.ascontiguousarray(im[:, :, 14:].reshape(len(X), -1))]

    rows, recs, test = _vfl_one("mnist", halves(xtr), ytr, halves(xte), yte, (28, 14), size, seed, n_bits, log)
    if plots is not None:
        sel = test[:8]
        left = halves(xte)[0]
        grid = [left[sel], recs["plain"][: len(sel)], recs["hashed"][: len(sel)]]
        path = plot_grid(grid, ["party 0's input (left half)", f"reconstructed from {n_bits} floats",
                                f"reconstructed from {n_bits} bits"], [str(v) for v in yte[sel]], (28, 14),
                         Path(plots) / f"vfl_reconstructions_{n_bits}.png", "VFL: the top's reconstruction of party 0's input")
        rows[0]["plot"] = str(path)
    if tabular_dir is not None and (Path(tabular_dir) / "Pendigits").is_dir():
        from ..discover.data import load_tabular_ncd

        s = load_tabular_ncd(tabular_dir, "Pendigits")
        X = np.vstack([s.x_lab, s.x_unlab])
        y = np.concatenate([s.y_lab, s.y_unlab])
        rng = np.random.default_rng(seed)
        te = rng.permutation(s.x_test.shape[0])
        Xt, yt = s.x_test[te], s.y_test[te]
        tab_size = dict(size, vfl_aux=min(size["vfl_aux"], len(yt) // 2))
        d = X.shape[1] // 2
        t_rows, _, _ = _vfl_one("pendigits", [X[:, :d], X[:, d:]], y, [Xt[:, :d], Xt[:, d:]], yt, None, tab_size,
                                seed, min(n_bits, 8), log)
        rows += t_rows
    return rows


# --------------------------------------------------------------------------------------------------
# unlearnable
# --------------------------------------------------------------------------------------------------


def _purity(clusters, y) -> float:
    return float(sum(np.bincount(y[clusters == c]).max() for c in np.unique(clusters)) / len(y))


def _hasher_map(X, y, Xq, yq, size, seed, X_db=None):
    from ..registry import make_method
    from .attack import HasherFunction, retrieval_map

    h = make_method("dpsh", n_bits=32, random_state=seed, input_shape=(1, 28, 28), epochs=size["hasher_epochs"],
                    validation_fraction=0.0, n_threads=1).fit(X, y)
    f = HasherFunction(h)
    return retrieval_map(f.codes(Xq), f.codes(X if X_db is None else X_db), yq, y)


def _run_unlearnable(mnist_dir, size, seed, eps_list, log, plots):
    from .unlearnable import UnlearnableClusters, classifier_accuracy, train_classifier

    X, y, Xte, yte = _subsets(*_load(mnist_dir), size, seed)
    Xte, yte = Xte[: size["n_test"]], yte[: size["n_test"]]
    Xq, yq = Xte[: size["n_queries"]], yte[: size["n_queries"]]
    rows = []
    t = time.perf_counter()
    clf = train_classifier(X, y, epochs=size["clf_epochs"], random_state=seed)
    base = {"part": "unlearnable", "n_train": int(len(y)), "n_test": int(len(yte)), "seed": seed}
    clean = {**base, "method": "clean", "eps": 0.0, "test_acc": classifier_accuracy(clf, Xte, yte),
             "train_s": time.perf_counter() - t, "map": _hasher_map(X, y, Xq, yq, size, seed)}
    rows.append(clean)
    log(f"unlearnable clean: test acc {clean['test_acc']:.4f}, DPSH mAP {clean['map']:.3f}")
    runs = [(eps, "kmeans") for eps in eps_list] + [(max(eps_list), "labels")]
    for eps, grouping in runs:
        t = time.perf_counter()
        uc = UnlearnableClusters(10, eps=eps, steps=size["uc_steps"], random_state=seed)
        # "labels": a control, not label-agnostic — the same method with the classes as clusters (purity 1)
        uc.fit(X, clusters=None if grouping == "kmeans" else np.searchsorted(np.unique(y), y))
        Xp = uc.transform(X, uc.labels_)
        uc_s = time.perf_counter() - t
        clf = train_classifier(Xp, y, epochs=size["clf_epochs"], random_state=seed)
        row = {**base, "method": "perturbed", "clusters": grouping, "eps": float(eps), "test_acc": classifier_accuracy(clf, Xte, yte),
               "train_acc": classifier_accuracy(clf, Xp, y), "uc_fit_s": uc_s,
               "cluster_purity": _purity(uc.labels_, y), "linf": float(np.abs(Xp - X).max()),
               # the hasher trained on the perturbed images, used on clean images (queries and database)
               "map": _hasher_map(Xp, y, Xq, yq, size, seed, X_db=X)}
        rows.append(row)
        log(f"unlearnable ε={eps:.3f} ({grouping}): test acc {row['test_acc']:.4f} (train {row['train_acc']:.3f}), DPSH mAP "
            f"{row['map']:.3f}, cluster purity {row['cluster_purity']:.3f}")
        if plots is not None:
            sel = [int(np.flatnonzero(uc.labels_ == c)[0]) for c in range(10)]
            grid = [np.clip(0.5 + uc.perturbations_ / (2 * eps), 0, 1), X[sel], Xp[sel]]
            path = plot_grid(grid, ["δ_k (0.5 + δ/2ε)", "clean image of cluster k", "perturbed"],
                             [f"k={c}" for c in range(10)], (28, 28),
                             Path(plots) / f"unlearnable_eps{eps:.3f}_{grouping}.png",
                             f"unlearnable clusters, ε = {eps:.3f} ("
                             + ("k-means on PCA features, no labels)" if grouping == "kmeans" else
                                "control: the classes as clusters)"))
            row["plot"] = str(path)
    return rows


# --------------------------------------------------------------------------------------------------
# entry point, plots, markdown
# --------------------------------------------------------------------------------------------------


def run(part: str, data_dir, *, tabular_dir=None, seed: int = 0, eps=None, n_bits: int = 32, size: str = "full",
        plots=None, progress: bool = False) -> list[dict]:
    """Run one part; returns its rows (each with ``load_start`` / ``load_end``, the 1-minute load average).

    Parameters
    ----------
    part : "attack", "vfl" or "unlearnable"
    data_dir : MNIST idx folder
    tabular_dir : TabularNCD folder for the tabular VFL split (vfl only; skipped when None or missing)
    eps : float (attack; default 0.1) or a sequence of floats (unlearnable; default (16/255, 0.3))
    n_bits : message width of each VFL party (floats or bits)
    size : "full" or "tiny" (see :data:`SIZES`)
    plots : folder for the PNG image grids, or None
    """
    from ._common import check_eps

    if part not in PARTS:
        raise ValidationError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if size not in SIZES:
        raise ValidationError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    sz = SIZES[size]
    log = _log(progress)
    if plots is not None:
        Path(plots).mkdir(parents=True, exist_ok=True)
    load0 = _load_avg()
    if part == "attack":
        eps = check_eps(0.1 if eps is None else eps)
        rows = _run_attack(data_dir, sz, seed, eps, log, plots)
    elif part == "vfl":
        rows = _run_vfl(data_dir, tabular_dir, sz, seed, int(n_bits), log, plots)
    else:
        eps_list = (16 / 255, 0.3) if eps is None else tuple(np.atleast_1d(eps).tolist())
        eps_list = tuple(check_eps(e) for e in eps_list)
        rows = _run_unlearnable(data_dir, sz, seed, eps_list, log, plots)
    load1 = _load_avg()
    for r in rows:
        r.update(load_start=load0, load_end=load1, size=size)
    return rows


def plot_grid(rows_of_images, row_titles, col_titles, shape, path, title) -> Path:
    """A grid of grey images (rows × columns), values in [0, 1]; saved as a small PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows_of_images), max(len(r) for r in rows_of_images)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.0 * n_cols + 1.6, 1.05 * n_rows + 0.4), squeeze=False)
    for i, imgs in enumerate(rows_of_images):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(np.asarray(imgs[j]).reshape(shape), cmap="gray", vmin=0, vmax=1)
            if i == 0 and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=7)
        axes[i][0].set_ylabel(row_titles[i], fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


COLUMNS = {
    "attack": ("model", "method", "eps", "t_map", "clean_map", "ms_per_query", "linf"),
    "vfl": ("dataset", "method", "acc", "recon_mse", "recon_ssim", "mean_mse", "label_acc", "chance",
            "bits_per_row", "train_s"),
    "unlearnable": ("method", "clusters", "eps", "test_acc", "train_acc", "map", "cluster_purity", "linf"),
}


def markdown(rows) -> str:
    """A markdown table of the rows of one part."""
    part = rows[0]["part"]
    cols = [c for c in COLUMNS[part] if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
