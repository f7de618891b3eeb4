"""Label efficiency: accuracy of a linear head vs the number of labels, on fixed (pre-trained) features.

:func:`balanced_label_indices` draws a class-balanced labelled subset, :func:`label_efficiency` fits a
scikit-learn ``LogisticRegression`` head on that subset of each representation and scores it on a test set,
:func:`fit_label_curve` fits ``acc = a − b·n^−c`` to the accuracies, and :class:`ContrastiveEncoder` is a
small SimCLR-style MLP trained without labels (augmented views of the same image pulled together).

The question these answer is the one of "On the Provable Advantage of Unsupervised Pretraining" (Ge, Tang,
Fan, Jin, 2023): with plenty of unlabelled data, a representation learned without labels should cut the
number of labels the downstream (here linear) head needs, most visibly when labels are few.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..hashing.base import PersistableEstimatorMixin
from ..io import persistable
from ..params import check_int_param, check_real_param
from ._common import check_fitted, forward_in_batches, optimise, require_torch, torch_local_state

__all__ = ["balanced_label_indices", "fit_label_curve", "label_curve", "label_efficiency", "ContrastiveEncoder",
           "itq_bits", "DEFAULT_N_LABELS"]

#: Numbers of labels of the benchmark; ``None`` means all training rows.
DEFAULT_N_LABELS = (10, 20, 50, 100, 200, 500, 1000, 5000, None)


def balanced_label_indices(y, n_labels: int, rng) -> np.ndarray:
    """Indices (int64, sorted, ``n_labels`` distinct) of a class-balanced labelled subset of ``y``.

    Each class gets ``n_labels // k`` rows (k classes); the remainder goes one each to randomly chosen
    classes. With fewer labels than classes, ``n_labels`` distinct classes get one row each. A class
    with fewer rows than its quota gives all its rows and the shortfall is spread over the others.

    Parameters
    ----------
    y : int array (n,) — class labels
    n_labels : int — 1 <= n_labels <= n
    rng : numpy Generator (or seed for :func:`numpy.random.default_rng`)
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValidationError(f"y must be a non-empty 1-D array of labels, got shape {y.shape}")
    n_labels = check_int_param(n_labels, "n_labels", min_val=1)
    if n_labels > y.size:
        raise ValidationError(f"n_labels={n_labels} is more than the {y.size} rows that can be labelled")
    rng = np.random.default_rng(rng)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.full(classes.size, n_labels // classes.size)
    quota[rng.permutation(classes.size)[: n_labels % classes.size]] += 1
    while (quota > counts).any():  # spread the shortfall of small classes evenly over classes with room
        short = int(np.sum(np.maximum(quota - counts, 0)))
        quota = np.minimum(quota, counts)
        room = np.flatnonzero(quota < counts)
        quota[room] += short // room.size
        quota[rng.choice(room, size=short % room.size, replace=False)] += 1
    picks = [rng.choice(np.flatnonzero(y == c), size=int(q), replace=False) for c, q in zip(classes, quota) if q]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def label_curve(n, a: float, b: float, c: float):
    """``a − b·n^−c`` (the saturating power law of accuracy vs labels)."""
    return a - b * np.power(np.asarray(n, dtype=np.float64), -c)


def fit_label_curve(n_labels, acc) -> dict:
    """Least-squares fit of ``acc = a − b·n^−c`` (scipy ``curve_fit``); returns ``{"a", "b", "c", "rmse"}``.

    ``a`` is the accuracy the curve saturates at, ``c`` how fast it gets there. Needs at least 3 distinct
    numbers of labels. Bounds: ``a`` in [0, 1.5], ``b`` in [0, 100], ``c`` in [0, 3].
    """
    from scipy.optimize import curve_fit

    n = np.asarray(n_labels, dtype=np.float64).ravel()
    acc = np.asarray(acc, dtype=np.float64).ravel()
    if n.shape != acc.shape:
        raise ValidationError(f"n_labels has {n.size} values but acc has {acc.size}")
    if not (np.isfinite(n).all() and np.isfinite(acc).all()) or (n <= 0).any():
        raise ValidationError("n_labels must be positive and finite, acc finite")
    if np.unique(n).size < 3:
        raise ValidationError(f"fitting 3 parameters needs at least 3 distinct numbers of labels, got "
                              f"{np.unique(n).size}")
    p0 = (min(1.0, acc.max() + 0.01), max(1e-3, (acc.max() - acc.min()) * n.min() ** 0.5), 0.5)
    (a, b, c), _ = curve_fit(label_curve, n, acc, p0=p0, bounds=([0, 0, 0], [1.5, 100, 3]), maxfev=20000)
    rmse = float(np.sqrt(np.mean((label_curve(n, a, b, c) - acc) ** 2)))
    return {"a": float(a), "b": float(b), "c": float(c), "rmse": rmse}


def itq_bits(codes: np.ndarray, n_bits: int) -> np.ndarray:
    """Packed codes (uint64 words, as :meth:`ITQ.transform` returns) → float32 bits (n, n_bits) in {0, 1}."""
    codes = np.ascontiguousarray(codes)
    bits = np.unpackbits(codes.view(np.uint8).reshape(codes.shape[0], -1), axis=1, bitorder="little")
    return bits[:, :n_bits].astype(np.float32)


SCALINGS = ("global", "feature")


def _scale(F_train, F_test, scaling: str):
    """Centre on the training mean; divide by one overall sd (``global``) or by each feature's (``feature``)."""
    mu = F_train.mean(0)
    if scaling == "global":
        sd = np.sqrt(np.mean((F_train - mu) ** 2)) or 1.0
    else:
        sd = F_train.std(0)
        sd[sd < 1e-8] = 1.0
    return (F_train - mu) / sd, (F_test - mu) / sd


def label_efficiency(features: dict, y_train, y_test, *, n_labels=DEFAULT_N_LABELS, seeds=(0, 1, 2),
                     C: float = 1.0, max_iter: int = 300, scaling: str = "global", dataset: str = "data",
                     log=None) -> list[dict]:
    """Test accuracy of a logistic-regression head vs the number of labels, per representation.

    Parameters
    ----------
    features : dict name → (F_train float (n, d), F_test float (m, d)) — fixed representations; each is
        centred on the mean of its (unlabelled) training rows and scaled as ``scaling`` says.
    y_train : int (n,), y_test : int (m,)
    n_labels : iterable of int or None — labelled rows per fit (``None``: all n rows); each must be <= n
    seeds : the balanced subset of each (n_labels, seed) is shared by all representations
    C, max_iter : ``LogisticRegression`` parameters
    scaling : ``global`` (default) divides by one overall sd, which keeps the geometry (an L2-penalised
        linear head then gives the same answer on raw pixels and on any rotation of them); ``feature``
        standardises each column, which whitens PCA components and amplifies near-constant pixels.

    Returns
    -------
    rows : list of dict with part ``labels``, dataset, method (the feature name), n_labels, acc, seed, fit_s.
        With all rows labelled the subset does not depend on the seed: one fit, one row per seed.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if scaling not in SCALINGS:
        raise ValidationError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    n = y_train.size
    sizes = [n if k is None else check_int_param(k, "n_labels", min_val=1) for k in n_labels]
    too_many = [k for k in sizes if k > n]
    if too_many:
        raise ValidationError(f"n_labels {too_many} exceed the {n} training rows")
    for name, (Ftr, Fte) in features.items():
        if Ftr.shape[0] != n or Fte.shape[0] != y_test.size:
            raise ValidationError(f"features {name!r}: {Ftr.shape[0]} train / {Fte.shape[0]} test rows, labels "
                                  f"{n} / {y_test.size}")
    std = {name: _scale(np.asarray(Ftr, np.float64), np.asarray(Fte, np.float64), scaling)
           for name, (Ftr, Fte) in features.items()}
    rows = []
    for k in sizes:
        for i, seed in enumerate(seeds):
            idx = np.arange(n) if k == n else balanced_label_indices(y_train, k, np.random.default_rng([seed, k]))
            for name, (Ftr, Fte) in std.items():
                if k == n and i > 0:  # the full set is the same for every seed: reuse the fit
                    prev = next(r for r in rows if r["method"] == name and r["n_labels"] == n)
                    rows.append({**prev, "seed": int(seed)})
                    continue
                t = time.perf_counter()
                if np.unique(y_train[idx]).size < 2:
                    pred = np.full(y_test.size, y_train[idx][0])
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        clf = LogisticRegression(C=C, max_iter=max_iter).fit(Ftr[idx], y_train[idx])
                    pred = clf.predict(Fte)
                rows.append({"part": "labels", "dataset": dataset, "method": name, "n_labels": int(k),
                             "acc": float(np.mean(pred == y_test)), "seed": int(seed), "scaling": scaling,
                             "fit_s": time.perf_counter() - t})
            if log is not None:
                log(f"labels n={k} seed {seed}: " + ", ".join(f"{r['method']} {r['acc']:.3f}"
                                                             for r in rows[-len(std):]))
    return rows


def _mlp(torch, d_in: int, hidden: int, dim: int, proj: int):
    nn = torch.nn
    encoder = nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                            nn.Linear(hidden, dim))
    head = nn.Sequential(nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, proj))
    return encoder, head


def _augment(torch, x, gen, max_rot: float, max_shift: float, noise: float):
    """Random affine (rotation, scale 0.9–1.1, shift) and Gaussian noise of a batch (b, h, w) in [0, 1]."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen) * 2 - 1
    ang = u[:, 0] * max_rot * np.pi / 180
    scale = 1 + 0.1 * u[:, 1]
    cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * max_shift], 1),
                         torch.stack([sin, cos, u[:, 3] * max_shift], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, (b, 1, *x.shape[1:]), align_corners=False)
    out = torch.nn.functional.grid_sample(x[:, None], grid, align_corners=False)[:, 0]
    return (out + noise * torch.randn(out.shape, generator=gen)).clamp(0, 1)


@persistable
class ContrastiveEncoder(PersistableEstimatorMixin, BaseEstimator):
    """A SimCLR-style MLP image encoder trained without labels (NT-Xent loss on two augmented views).

    Each step draws ``batch_size`` images, makes two views of each (random rotation up to ``max_rot``
    degrees, scale 0.9–1.1, shift up to ``max_shift`` of the half-width, Gaussian noise), maps them
    through an MLP encoder (d → hidden → dim) and a projection head (dim → proj), and minimises the
    normalised-temperature cross-entropy that picks each view's partner among the 2·batch_size − 1 others.
    :meth:`transform` returns the encoder output (before the projection head), as SimCLR does.
    Saveable with :func:`hashlearn.io.save` / :func:`hashlearn.io.load`.

    Parameters
    ----------
    dim : int, default 128 — representation size
    hidden : int, default 512
    proj : int, default 64
    steps : int, default 1500
    batch_size : int, default 256
    temperature : float, default 0.2
    lr : float, default 1e-3 — Adam, cosine-decayed to 0
    max_rot : float, default 15
    max_shift : float, default 0.12
    noise : float, default 0.05
    n_threads : int, default 1
    random_state : int, Generator or None

    Attributes
    ----------
    state_ : dict of float32 arrays — the encoder's weights
    loss_ : float64 (steps,) — training loss per step
    image_shape_ : tuple (h, w)

    References
    ----------
    T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple Framework for Contrastive Learning of Visual
    Representations" (SimCLR), ICML 2020.
    """

    def __init__(self, dim: int = 128, *, hidden: int = 512, proj: int = 64, steps: int = 1500,
                 batch_size: int = 256, temperature: float = 0.2, lr: float = 1e-3, max_rot: float = 15.0,
                 max_shift: float = 0.12, noise: float = 0.05, n_threads: int = 1, random_state=None):
        self.dim = dim
        self.hidden = hidden
        self.proj = proj
        self.steps = steps
        self.batch_size = batch_size
        self.temperature = temperature
        self.lr = lr
        self.max_rot = max_rot
        self.max_shift = max_shift
        self.noise = noise
        self.n_threads = n_threads
        self.random_state = random_state

    @staticmethod
    def _check_images(images) -> np.ndarray:
        X = np.asarray(images, dtype=np.float32)
        if X.ndim != 3 or X.shape[0] < 2:
            raise ValidationError(f"images must be an array (n, h, w) with n >= 2, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValidationError("images contain NaN or infinite values")
        return X

    def fit(self, images, y=None, *, progress: bool = False):
        """Train on ``images`` float (n, h, w) in [0, 1] (``y`` ignored: no labels used); returns self."""
        from sklearn.utils import check_random_state

        X = self._check_images(images)
        dim = check_int_param(self.dim, "dim", min_val=1)
        hidden = check_int_param(self.hidden, "hidden", min_val=1)
        proj = check_int_param(self.proj, "proj", min_val=1)
        steps = check_int_param(self.steps, "steps", min_val=1)
        bs = min(check_int_param(self.batch_size, "batch_size", min_val=2), X.shape[0])
        tau = check_real_param(self.temperature, "temperature", min_val=0, include_boundaries="neither")
        lr = check_real_param(self.lr, "lr", min_val=0, include_boundaries="neither")
        torch = require_torch("ContrastiveEncoder")
        F = torch.nn.functional
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        with torch_local_state(torch, seed, check_int_param(self.n_threads, "n_threads", min_val=1)):
            gen = torch.Generator().manual_seed(seed)
            enc, head = _mlp(torch, X.shape[1] * X.shape[2], hidden, dim, proj)
            opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            Xt = torch.from_numpy(X)
            target = torch.cat([torch.arange(bs, 2 * bs), torch.arange(bs)])
            mask = torch.eye(2 * bs, dtype=torch.bool)

            def nt_xent_loss():
                batch = Xt[torch.randperm(X.shape[0], generator=gen)[:bs]]
                views = torch.cat([_augment(torch, batch, gen, self.max_rot, self.max_shift, self.noise)
                                   for _ in range(2)])
                z = F.normalize(head(enc(views.flatten(1))), dim=1)
                return F.cross_entropy((z @ z.T / tau).masked_fill(mask, float("-inf")), target)

            self.loss_ = optimise(torch, opt, sched, steps, nt_xent_loss, desc="simclr", progress=progress)
            self.state_ = {k: v.detach().numpy().copy() for k, v in enc.state_dict().items()}
        self.image_shape_ = tuple(X.shape[1:])
        return self

    def transform(self, images, batch_size: int = 4096) -> np.ndarray:
        """Representations float32 (n, dim) of images float (n, h, w) in [0, 1]."""
        check_fitted(self, "state_")
        X = self._check_images(images)
        if tuple(X.shape[1:]) != tuple(self.image_shape_):
            raise ValidationError(f"images are {X.shape[1:]} but the encoder was trained on "
                                  f"{tuple(self.image_shape_)}")
        torch = require_torch("ContrastiveEncoder")
        enc, _ = _mlp(torch, X.shape[1] * X.shape[2], int(self.hidden), int(self.dim), int(self.proj))
        enc.load_state_dict({k: torch.from_numpy(v) for k, v in self.state_.items()})
        return forward_in_batches(torch, enc, X, batch_size, lambda b: b.flatten(1))
