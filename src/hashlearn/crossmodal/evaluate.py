"""The cross-modal retrieval protocol: semi-paired training, image→text / text→image mAP by label.

Protocol (Wiki-style): queries are held-out items of one modality, the database is every training item
of the other modality encoded by its own hash function; relevant = same label (or a shared label for
multi-hot labels); mAP over the whole Hamming ranking (ties by database index). For a pairing ratio
``p`` the training items are split by :func:`~hashlearn.crossmodal.base.semi_paired_split`: ``p`` of
them keep both views, the rest keep one view only (half each). Every method sees the same split; the
paired-only baselines use only its paired part, RREH also uses the unpaired rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..codes import hamming_distances
from ..errors import ValidationError
from ..metrics import hamming_ranking, mean_average_precision, relevance_from_labels
from .base import semi_paired_split

__all__ = ["CrossModalData", "cross_modal_map", "run_protocol", "mean_rows", "load_crossmodal_dataset",
           "fit_method", "uses_labels"]


@dataclass
class CrossModalData:
    """Two aligned views of training items and of query items, with labels."""

    name: str
    train: list  # [X0 (n, d0), X1 (n, d1)], row i of both is item i
    test: list  # [Q0 (m, d0), Q1 (m, d1)]
    y_train: np.ndarray
    y_test: np.ndarray
    view_names: tuple = ("image", "text")


def cross_modal_map(q_codes, db_codes, y_q, y_db, n_bits: int) -> float:
    """mAP of Hamming ranking of ``db_codes`` for each query code, relevance = same label."""
    rank = hamming_ranking(hamming_distances(q_codes, db_codes, n_bits=n_bits))
    return float(mean_average_precision(relevance_from_labels(y_q, y_db, rank)))


def _split(name, views, y, n_queries, seed, view_names):
    n = views[0].shape[0]
    if not 1 <= n_queries < n:
        raise ValidationError(f"{name}: n_queries={n_queries} must be in [1, {n - 1}]")
    perm = np.random.default_rng(seed).permutation(n)
    q, t = np.sort(perm[:n_queries]), np.sort(perm[n_queries:])
    return CrossModalData(name, [v[t] for v in views], [v[q] for v in views], y[t], y[q], view_names)


def load_crossmodal_dataset(name: str, data_file=None, views=(0, 1), n_queries: int = 500, seed: int = 0,
                            n: int = 1200) -> CrossModalData:
    """``wiki`` (needs ``data_file`` = wiki_data.mat), ``mfeat`` (handwritten.mat; ``views`` picks two of
    pix, fou, fac, zer, kar, mor), ``mnist`` (MNIST-5000 pixels vs gradient histograms) or ``planted``
    (synthetic, ``n`` items)."""
    from . import data as D

    if name == "wiki":
        if data_file is None:
            raise ValidationError("dataset wiki needs the path of wiki_data.mat (--data-file)")
        w = D.load_wiki(data_file)
        return CrossModalData("wiki", [w["I_tr"], w["T_tr"]], [w["I_te"], w["T_te"]], w["y_tr"], w["y_te"])
    if name == "mfeat":
        if data_file is None:
            raise ValidationError("dataset mfeat needs the path of handwritten.mat (--data-file)")
        allv, y = D.load_mfeat(data_file)
        a, b = views
        for v in (a, b):
            if not 0 <= v < len(allv):
                raise ValidationError(f"mfeat view {v} does not exist: views are 0..{len(allv) - 1}")
        return _split(f"mfeat-{D.MFEAT_VIEWS[a]}-{D.MFEAT_VIEWS[b]}", [allv[a], allv[b]], y, n_queries, seed,
                      (D.MFEAT_VIEWS[a], D.MFEAT_VIEWS[b]))
    if name == "mnist":
        v, y = D.mnist_two_view()
        return _split("mnist5000-pix-hog", v, y, n_queries, seed, ("pixels", "hog"))
    if name == "planted":
        v, y = D.make_planted_views(n, random_state=seed)
        return _split("planted", v, y, min(n_queries, n // 4), seed, ("view0", "view1"))
    raise ValidationError(f"unknown dataset {name!r}: expected wiki, mfeat, mnist or planted")


def uses_labels(model) -> bool:
    """Whether ``model`` (an estimator or its class) declares that its ``fit`` takes labels."""
    cls = model if isinstance(model, type) else type(model)
    return bool(getattr(cls, "requires_labels", False))


def fit_method(model, views, pairs, labels):
    """``model.fit(views, pairs=pairs)``, plus ``y=labels`` (one label array per view) only for a model that
    declares ``requires_labels``."""
    if uses_labels(model):
        return model.fit(views, y=labels, pairs=pairs)
    return model.fit(views, pairs)


def run_protocol(data: CrossModalData, methods, bits, ratios, *, seed: int = 0, params=None, on_row=None):
    """Fit every (method, bits, ratio) on the same semi-paired split of ``data`` and measure mAP.

    Parameters
    ----------
    methods : list of registry names
    bits, ratios : lists of int / float in (0, 1]
    params : dict name -> dict of constructor parameters
    on_row : callable(row) called after each measurement (progress)

    Returns
    -------
    list of dict rows: dataset, method, bits, paired, n_pairs, n_only0, n_only1, map_q0_db1, map_q1_db0,
    fit_s, supervised (whether the method was given the training labels).
    """
    from ..hashing import make_hasher

    params = params or {}
    rows = []
    n = data.train[0].shape[0]
    for ratio in ratios:
        r0, r1, pairs = semi_paired_split(n, ratio, random_state=seed)
        fit_views = [data.train[0][r0], data.train[1][r1]]
        fit_labels = [data.y_train[r0], data.y_train[r1]]
        for nb in bits:
            for name in methods:
                model = make_hasher(name, n_bits=nb, random_state=seed, **params.get(name, {}))
                t0 = time.perf_counter()
                fit_method(model, fit_views, pairs, fit_labels)
                fit_s = time.perf_counter() - t0
                db = [model.transform(data.train[v], view=v) for v in range(2)]
                q = [model.transform(data.test[v], view=v) for v in range(2)]
                row = {
                    "dataset": data.name, "method": name, "bits": int(nb), "paired": float(ratio),
                    "n_pairs": int(pairs.shape[0]), "n_only0": int(len(r0) - len(pairs)),
                    "n_only1": int(len(r1) - len(pairs)),
                    "map_q0_db1": cross_modal_map(q[0], db[1], data.y_test, data.y_train, nb),
                    "map_q1_db0": cross_modal_map(q[1], db[0], data.y_test, data.y_train, nb),
                    "fit_s": fit_s, "supervised": uses_labels(model),
                }
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows


def mean_rows(rows):
    """Average the rows of repeated runs (different ``seed``) per (dataset, method, bits, paired).

    Returns one row per group with the mean of ``map_q0_db1``, ``map_q1_db0`` and ``fit_s``, their
    standard deviations (``*_sd``, population), ``n_seeds`` and ``wins_map_q0_db1`` / ``wins_map_q1_db0``: in how
    many seeds the method's mAP is the best of the methods run on that seed (ties count for all).
    """
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"], r["bits"], r["paired"]), []).append(r)
    best = {}
    for r in rows:
        key = (r["dataset"], r["bits"], r["paired"], r.get("seed", 0))
        for k in ("map_q0_db1", "map_q1_db0"):
            best[key + (k,)] = max(best.get(key + (k,), -np.inf), r[k])
    out = []
    for (ds, method, nb, p), rs in groups.items():
        row = {key: rs[0][key] for key in ("dataset", "method", "bits", "paired", "n_pairs", "n_only0", "n_only1")}
        for k in ("map_q0_db1", "map_q1_db0", "fit_s"):
            v = np.array([r[k] for r in rs], dtype=np.float64)
            row[k], row[f"{k}_sd"] = float(v.mean()), float(v.std())
        for k in ("map_q0_db1", "map_q1_db0"):
            row[f"wins_{k}"] = int(sum(r[k] >= best[(ds, nb, p, r.get("seed", 0), k)] for r in rs))
        row["n_seeds"] = len(rs)
        out.append(row)
    return out


def plot_rows(rows, folder, view_names=("image", "text")):
    """PNG plots of mAP vs pairing ratio, one file per (dataset, bits) with both directions (error bars:
    the ``*_sd`` columns of :func:`mean_rows` rows, when present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    from ..io.persist import atomic_write
    from ..metrics.plotstyle import method_styles

    folder = Path(folder)
    written = []
    styles = method_styles(sorted({r["method"] for r in rows}))  # one style per method in every figure
    for ds in sorted({r["dataset"] for r in rows}):
        for nb in sorted({r["bits"] for r in rows if r["dataset"] == ds}):
            sub = [r for r in rows if r["dataset"] == ds and r["bits"] == nb]
            fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
            for ax, key, title in ((axes[0], "map_q0_db1", f"{view_names[0]}→{view_names[1]}"),
                                   (axes[1], "map_q1_db0", f"{view_names[1]}→{view_names[0]}")):
                for m in sorted({r["method"] for r in sub}):
                    pts = sorted((r["paired"], r[key], r.get(f"{key}_sd", 0.0)) for r in sub if r["method"] == m)
                    ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], capsize=3,
                                label=m, **styles[m])
                ax.set_title(f"{ds}, {nb} bits: {title}")
                ax.set_xlabel("fraction of training items paired")
                ax.grid(alpha=0.3)
            axes[0].set_ylabel("mAP")
            axes[0].legend()
            fig.tight_layout()
            path = folder / f"crossmodal_{ds}_{nb}bits.png"
            atomic_write(path, lambda fh, fig=fig: fig.savefig(fh, format="png", dpi=110))
            plt.close(fig)
            written.append(path)
    return written
