"""Web-noise handling: out-of-distribution images with random labels plus in-distribution label flips.

A web-crawled training set mixes three kinds of rows: clean rows, in-distribution (ID) rows whose label is
wrong, and out-of-distribution (OOD) rows that belong to no class but still carry one of the labels.
:func:`inject_web_noise` builds such a set from a clean one and a pool of OOD images (the benchmark puts
Omniglot characters with random digit labels into MNIST), :func:`detection_auc` scores a noise detector
against the true flags, :func:`web_noise_scores` is the detector, and :class:`WebNoiseClassifier` trains a
classifier head on fixed (self-supervised) features in one of three ways:

- ``all``: every row with its given label;
- ``discard``: rows flagged as noisy are dropped;
- ``unlabelled``: flagged rows judged in-distribution are kept *without their given labels* and enter
  training with a pseudo-label (the out-of-fold prediction of a linear head on the self-supervised
  features, when confident), flagged OOD rows are dropped.

The detector follows the two signals of "An accurate detection is not all you need to combat label noise in
web-noisy datasets" (Albert, Valmadre, Arazo, Krishna, O'Connor, McGuinness, ECCV 2024): in a contrastive
feature space, ID and OOD rows are nearly linearly separable, so a hyperplane estimated by iterated
self-labelling detects OOD rows; and a small-loss signal (the out-of-fold probability a linear head on the
noisy labels gives the given label) detects the label flips the hyperplane cannot see. A row is clean when
it is both ID and its label is the one a linear head on the noisy labels would pick:
``noise score = 1 − p(ID | x) · p(given label | x) / max_c p(c | x)``. The
paper's point — that an accurate detection alone is not enough, and that the detected rows still carry
information — is what the ``unlabelled`` strategy uses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..params import check_int_param, check_real_param
from ._common import check_features, check_fitted, forward_in_batches, optimise, require_torch, torch_local_state

__all__ = ["WebNoise", "inject_web_noise", "detection_auc", "web_noise_scores", "WebNoiseClassifier",
           "NOISE_STRATEGIES"]

NOISE_STRATEGIES = ("all", "discard", "unlabelled")


@dataclass
class WebNoise:
    """A training set with injected web noise (rows shuffled).

    ``images`` (n, ...) float32; ``labels`` int64 (n,) the given (noisy) labels; ``clean_labels`` int64 (n,)
    the true class of ID rows and -1 for OOD rows; ``is_ood``, ``is_flipped`` bool (n,) (disjoint).
    """

    images: np.ndarray
    labels: np.ndarray
    clean_labels: np.ndarray
    is_ood: np.ndarray
    is_flipped: np.ndarray

    @property
    def is_noisy(self) -> np.ndarray:
        """bool (n,): OOD or flipped."""
        return self.is_ood | self.is_flipped


def _check_fractions(ood_fraction, flip_fraction) -> tuple[float, float]:
    ood = check_real_param(ood_fraction, "ood_fraction", min_val=0, max_val=1, include_boundaries="left")
    flip = check_real_param(flip_fraction, "flip_fraction", min_val=0, max_val=1, include_boundaries="left")
    if ood + flip >= 1:
        raise ValidationError(f"ood_fraction + flip_fraction must be < 1 (some rows must stay clean), got "
                              f"{ood:g} + {flip:g} = {ood + flip:g}")
    return ood, flip


def inject_web_noise(x_in, y_in, x_ood, *, ood_fraction: float = 0.2, flip_fraction: float = 0.2,
                     n_classes: int | None = None, random_state=None) -> WebNoise:
    """A training set of ``len(x_in)`` rows: ``ood_fraction`` of them OOD images, ``flip_fraction`` ID flips.

    ``round(ood_fraction·n)`` rows are drawn without replacement from ``x_ood`` and get a label drawn
    uniformly from the ``n_classes`` classes; they replace as many randomly chosen ID rows. Of the remaining
    ID rows, ``round(flip_fraction·n)`` get a label drawn uniformly among the *other* classes. The rows are
    then shuffled.

    Parameters
    ----------
    x_in : array (n, ...) — in-distribution images/features (converted to float32)
    y_in : int array (n,) — their labels, 0..n_classes-1
    x_ood : array (m, ...) — OOD pool, same trailing shape as ``x_in``, m >= round(ood_fraction·n)
    ood_fraction, flip_fraction : float in [0, 1), summing to < 1
    n_classes : int >= 2, default ``max(y_in) + 1``
    random_state : int, Generator or None

    Returns
    -------
    WebNoise
    """
    ood, flip = _check_fractions(ood_fraction, flip_fraction)
    x_in, x_ood, y_in = np.asarray(x_in, np.float32), np.asarray(x_ood, np.float32), np.asarray(y_in)
    n = x_in.shape[0]
    if y_in.ndim != 1 or y_in.shape[0] != n:
        raise ValidationError(f"y_in must hold one label per row of x_in ({n} rows), got shape {y_in.shape}")
    if n == 0:
        raise ValidationError("x_in is empty")
    if y_in.dtype.kind not in "iu" or y_in.min() < 0:
        raise ValidationError("y_in must hold non-negative integer labels")
    if x_ood.shape[1:] != x_in.shape[1:]:
        raise ValidationError(f"x_ood rows have shape {x_ood.shape[1:]} but x_in rows {x_in.shape[1:]}")
    k = int(y_in.max()) + 1 if n_classes is None else check_int_param(n_classes, "n_classes", min_val=2)
    if k < 2 or y_in.max() >= k:
        raise ValidationError(f"labels must lie in 0..n_classes-1 with n_classes >= 2, got n_classes={k} and "
                              f"largest label {int(y_in.max())}")
    n_ood, n_flip = int(round(ood * n)), int(round(flip * n))
    if n_ood > x_ood.shape[0]:
        raise ValidationError(f"ood_fraction={ood:g} of {n} rows needs {n_ood} OOD images, x_ood has "
                              f"{x_ood.shape[0]}")
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.permutation(n)[n_ood:])  # the ID rows that stay
    clean = y_in[keep].astype(np.int64)
    given = clean.copy()
    pos = rng.choice(keep.size, size=n_flip, replace=False)  # flipped rows among the kept ones
    given[pos] = (given[pos] + rng.integers(1, k, size=pos.size)) % k  # uniform over the other classes
    is_flip = np.zeros(keep.size, bool)
    is_flip[pos] = True
    images = np.concatenate([x_in[keep], x_ood[rng.choice(x_ood.shape[0], n_ood, replace=False)]])
    labels = np.concatenate([given, rng.integers(0, k, size=n_ood)])
    clean = np.concatenate([clean, np.full(n_ood, -1, np.int64)])
    is_ood = np.concatenate([np.zeros(keep.size, bool), np.ones(n_ood, bool)])
    is_flip = np.concatenate([is_flip, np.zeros(n_ood, bool)])
    shuffle = rng.permutation(n)
    return WebNoise(images[shuffle], labels[shuffle].astype(np.int64), clean[shuffle], is_ood[shuffle],
                    is_flip[shuffle])


def detection_auc(scores, flags) -> float:
    """Area under the ROC curve of ``scores`` (higher = more likely noisy) against the bool ``flags``.

    The Mann–Whitney statistic: the probability that a random flagged row scores above a random unflagged
    one, ties counted one half (equal to scikit-learn's ``roc_auc_score``). Needs both kinds of rows.
    """
    from scipy.stats import rankdata

    s, f = np.asarray(scores, np.float64).ravel(), np.asarray(flags).ravel()
    if s.size != f.size:
        raise ValidationError(f"scores has {s.size} values but flags has {f.size}")
    if not np.isfinite(s).all():
        raise ValidationError("scores contain NaN or infinite values")
    f = f.astype(bool)
    n_pos, n_neg = int(f.sum()), int((~f).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValidationError(f"the AUC needs flagged and unflagged rows, got {n_pos} flagged of {f.size}")
    ranks = rankdata(s)
    return float((ranks[f].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _scaled(F: np.ndarray) -> np.ndarray:
    mu = F.mean(0)
    sd = float(np.sqrt(np.mean((F - mu) ** 2))) or 1.0
    return (F - mu) / sd


def _logreg(C: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=300, random_state=seed)


def web_noise_scores(features, labels, *, n_folds: int = 2, ood_init: float = 0.1, ood_iters: int = 3,
                     C: float = 1.0, random_state=None) -> dict:
    """Noise scores of rows from fixed features and their given labels (linear separation + small loss).

    1. Small loss: a logistic-regression head fitted on the given labels of ``n_folds − 1`` folds scores the
       held-out fold; ``p_label`` = the out-of-fold probability of the given label.
    2. Linear separation of OOD rows: the ``ood_init`` fraction of rows with the lowest out-of-fold top
       probability seed the OOD side; a logistic regression (balanced classes) separates them from the
       rest, the rows with p(OOD) > 0.5 become the new OOD side, ``ood_iters`` times; ``p_ood`` is the
       last p(OOD).
    3. ``score = 1 − (1 − p_ood) · p_label / p_top``, where ``p_top`` is the out-of-fold top probability: a
       row whose given label is the head's first choice counts as label-clean whatever the head's
       confidence (with 40 % noise even clean rows rarely get p_label above 0.75, so ``p_label`` alone
       flags many hard clean rows).

    Parameters
    ----------
    features : float (n, d); labels : int (n,), classes 0..k-1, each class in every training fold
    n_folds : int >= 2; ood_init : float in (0, 0.5); ood_iters : int >= 1; C : logistic-regression C

    Returns
    -------
    dict with ``score``, ``p_ood``, ``p_label`` float64 (n,), ``pseudo`` int64 (n,) the out-of-fold predicted
    class and ``p_pseudo`` float64 (n,) its probability
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold

    F = _scaled(check_features(features, "features").astype(np.float64))
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != F.shape[0]:
        raise ValidationError(f"labels must hold one label per row of features ({F.shape[0]}), got shape {y.shape}")
    n_folds = check_int_param(n_folds, "n_folds", min_val=2)
    frac = check_real_param(ood_init, "ood_init", min_val=0, max_val=0.5, include_boundaries="neither")
    iters = check_int_param(ood_iters, "ood_iters", min_val=1)
    C = check_real_param(C, "C", min_val=0, include_boundaries="neither")
    seed = int(np.random.default_rng(random_state).integers(2**31 - 1))
    y = y.astype(np.int64)
    classes = np.unique(y)
    p_label, p_top, pseudo = np.zeros(y.size), np.zeros(y.size), np.zeros(y.size, np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for tr, te in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(F, y):
            clf = _logreg(C, seed).fit(F[tr], y[tr])
            P = clf.predict_proba(F[te])
            col = np.searchsorted(clf.classes_, y[te])
            p_label[te] = P[np.arange(te.size), np.minimum(col, P.shape[1] - 1)] * np.isin(y[te], clf.classes_)
            p_top[te] = P.max(1)
            pseudo[te] = clf.classes_[P.argmax(1)]
        ood = p_top <= np.quantile(p_top, frac)
        p_ood = ood.astype(np.float64)
        for _ in range(iters):
            if ood.all() or not ood.any():
                break
            sep = _logreg(C, seed).set_params(class_weight="balanced").fit(F, ood)
            p_ood = sep.predict_proba(F)[:, 1]
            ood = p_ood > 0.5
    if classes.size < 2:
        raise ValidationError("labels hold a single class")
    agree = p_label / np.maximum(p_top, 1e-12)  # 1 when the given label is the head's top class
    return {"score": 1 - (1 - p_ood) * agree, "p_ood": p_ood, "p_label": p_label, "pseudo": pseudo,
            "p_pseudo": p_top}


def _head(torch, d: int, hidden: int, k: int):
    nn = torch.nn
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, k))


class WebNoiseClassifier(BaseEstimator):
    """An MLP classifier head on fixed features, trained on web-noisy labels with one of three strategies.

    ``strategy``: ``all`` (every row with its given label), ``discard`` (rows with noise score above
    ``threshold`` dropped), ``unlabelled`` (flagged rows with p(OOD) <= 0.5 kept *without their given
    labels*: they take the out-of-fold prediction of the linear head of :func:`web_noise_scores` as a
    pseudo-label when its probability is at least ``confidence``, with weight ``unlabelled_weight`` in the
    loss; flagged OOD rows dropped). Scores come from :func:`web_noise_scores` unless ``fit`` gets them.

    Parameters
    ----------
    strategy : one of :data:`NOISE_STRATEGIES`, default ``unlabelled``
    hidden : int, default 256 — width of the two hidden layers
    steps : int, default 3000; batch_size : int, default 256; lr : float, default 1e-3 (Adam, cosine decay)
    threshold : float in (0, 1), default 0.5; confidence : float in [0, 1), default 0.5
    unlabelled_weight : float >= 0, default 1.0
    n_threads : int, default 1; random_state : int, Generator or None

    Attributes
    ----------
    classes_ : int64 (k,); noise_score_, p_ood_ : float64 (n,) (``None`` for ``all``); flagged_ : bool (n,);
    pseudo_labelled_ : bool (n,) rows trained on their pseudo-label; loss_ : float64 (steps,);
    state_ : dict of float32 arrays; mean_ (d,), scale_ : feature centring and scale

    References
    ----------
    P. Albert et al., "An accurate detection is not all you need to combat label noise in web-noisy
    datasets", ECCV 2024.
    """

    def __init__(self, strategy: str = "unlabelled", *, hidden: int = 256, steps: int = 3000, batch_size: int = 256,
                 lr: float = 1e-3, threshold: float = 0.5, confidence: float = 0.5, unlabelled_weight: float = 1.0,
                 n_threads: int = 1, random_state=None):
        self.strategy = strategy
        self.hidden = hidden
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.threshold = threshold
        self.confidence = confidence
        self.unlabelled_weight = unlabelled_weight
        self.n_threads = n_threads
        self.random_state = random_state

    def _check_params(self) -> dict:
        if self.strategy not in NOISE_STRATEGIES:
            raise ValidationError(f"strategy must be one of {', '.join(NOISE_STRATEGIES)}, got {self.strategy!r}")
        return {"hidden": check_int_param(self.hidden, "hidden", min_val=1),
                "steps": check_int_param(self.steps, "steps", min_val=1),
                "bs": check_int_param(self.batch_size, "batch_size", min_val=1),
                "lr": check_real_param(self.lr, "lr", min_val=0, include_boundaries="neither"),
                "thr": check_real_param(self.threshold, "threshold", min_val=0, max_val=1,
                                        include_boundaries="neither"),
                "conf": check_real_param(self.confidence, "confidence", min_val=0, max_val=1,
                                         include_boundaries="left"),
                "w": check_real_param(self.unlabelled_weight, "unlabelled_weight", min_val=0),
                "threads": check_int_param(self.n_threads, "n_threads", min_val=1)}

    def fit(self, X, y, *, noise_scores: dict | None = None, progress: bool = False):
        """Fit on features float (n, d) and given labels int (n,); ``noise_scores`` as
        :func:`web_noise_scores` returns (computed here when ``None`` and the strategy needs them)."""
        p = self._check_params()
        X = check_features(X, "X")
        y = np.asarray(y)
        if y.ndim != 1 or y.size != X.shape[0]:
            raise ValidationError(f"y must hold one label per row of X ({X.shape[0]}), got shape {y.shape}")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        seed = int(np.random.default_rng(self.random_state).integers(2**31 - 1))
        self.noise_score_ = self.p_ood_ = None
        target, weight = y_idx.astype(np.int64), np.ones(y.size)
        if self.strategy != "all":
            sc = noise_scores if noise_scores is not None else web_noise_scores(X, y, random_state=seed)
            if any(np.shape(sc.get(k)) != (y.size,) for k in ("score", "p_ood", "pseudo", "p_pseudo")):
                raise ValidationError(f"noise_scores must hold 'score', 'p_ood', 'pseudo' and 'p_pseudo' of {y.size} "
                                      "rows each (as web_noise_scores returns)")
            self.noise_score_, self.p_ood_ = np.asarray(sc["score"], float), np.asarray(sc["p_ood"], float)
            flagged = self.noise_score_ > p["thr"]
            weight[flagged] = 0.0
            if self.strategy == "unlabelled":
                use = (flagged & (self.p_ood_ <= 0.5) & (np.asarray(sc["p_pseudo"]) >= p["conf"])
                       & np.isin(sc["pseudo"], self.classes_))
                target[use] = np.searchsorted(self.classes_, np.asarray(sc["pseudo"])[use])
                weight[use] = p["w"]
        if not (weight > 0).any():
            raise ValidationError(f"every row is flagged as noisy (threshold {p['thr']:g}): nothing to train on")
        self.flagged_ = np.zeros(y.size, bool) if self.noise_score_ is None else self.noise_score_ > p["thr"]
        self.pseudo_labelled_ = self.flagged_ & (weight > 0)
        self.mean_ = X.mean(0)
        self.scale_ = float(np.sqrt(np.mean((X - self.mean_) ** 2))) or 1.0
        Z = ((X - self.mean_) / self.scale_).astype(np.float32)
        rows = weight > 0
        self._train(Z[rows], target[rows], weight[rows].astype(np.float32), p, seed, progress)
        return self

    def _train(self, Z, target, weight, p, seed, progress):
        torch = require_torch("WebNoiseClassifier")
        F = torch.nn.functional
        with torch_local_state(torch, seed, p["threads"]):
            gen = torch.Generator().manual_seed(seed)
            net = _head(torch, Z.shape[1], p["hidden"], self.classes_.size)
            opt = torch.optim.Adam(net.parameters(), lr=p["lr"])
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p["steps"])
            Zt, yt, wt = torch.from_numpy(Z), torch.from_numpy(target), torch.from_numpy(weight)
            bs = min(p["bs"], Z.shape[0])

            def step_loss():
                net.train()
                i = torch.randint(Z.shape[0], (bs,), generator=gen)
                return (F.cross_entropy(net(Zt[i]), yt[i], reduction="none") * wt[i]).sum() / wt[i].sum()

            self.loss_ = optimise(torch, opt, sched, p["steps"], step_loss, desc=f"head ({self.strategy})",
                                  progress=progress)
            self.state_ = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        self.n_features_in_ = Z.shape[1]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities float32 (n, k) of features float (n, d)."""
        check_fitted(self, "state_")
        X = check_features(X, "X", n_features=self.n_features_in_)
        torch = require_torch("WebNoiseClassifier")
        net = _head(torch, self.n_features_in_, int(self.hidden), self.classes_.size)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in self.state_.items()})
        Z = ((X - self.mean_) / self.scale_).astype(np.float32)
        logits = forward_in_batches(torch, net, Z, 4096, lambda b: b)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """Predicted labels (n,) of features float (n, d)."""
        return self.classes_[self.predict_proba(X).argmax(1)]
