"""DLCH: deep lifelong cross-modal hashing — class increments that never change the codes already stored.

torch is imported inside ``fit`` / ``partial_fit`` only; encoding is numpy.
"""

from __future__ import annotations

import copy

import numpy as np

from ..errors import ValidationError
from ..hashing.base import check_random_state
from ..hashing.registry import register
from ..params import check_int_param, check_param_groups
from .base import BaseCrossModalHasher, check_pairs, check_views
from .dmveh import SupervisedCrossModalMixin, _is_per_view, check_view_labels, epoch_progress
from .prompthash import standardiser

__all__ = ["DeepLifelongCrossModalHashing", "center_bank"]


def center_bank(n_bits: int, rng) -> np.ndarray:
    """Hash centres for classes yet to come, (n_centres, n_bits) float32 of ±1.

    Rows of a Hadamard matrix and their negatives (``2 n_bits`` centres, pairwise at Hamming distance
    ``n_bits / 2`` or ``n_bits``) when ``n_bits`` is a power of two, in an order drawn from ``rng``; else
    256 random ±1 rows. Class ``k`` (in order of arrival) owns row ``k``.
    """
    from scipy.linalg import hadamard

    r = int(n_bits)
    if r >= 2 and r & (r - 1) == 0:
        H = hadamard(r).astype(np.float32)
        bank = np.concatenate([H[1:], -H[1:], H[:1], -H[:1]])  # the all-ones row last: it unbalances bits
        return np.ascontiguousarray(np.concatenate([bank[rng.permutation(bank.shape[0] - 2)], bank[-2:]]))
    return np.where(rng.random((256, r)) < 0.5, -1.0, 1.0).astype(np.float32)


def _sign(A: np.ndarray) -> np.ndarray:
    return np.where(A >= 0, 1.0, -1.0).astype(np.float32)


@register("dlch", kind="crossmodal")
class DeepLifelongCrossModalHashing(SupervisedCrossModalMixin, BaseCrossModalHasher):
    r"""Deep lifelong cross-modal hashing (DLCH): learn new classes without re-encoding the database.

    Each modality ``v`` has an MLP ``h_v(x) = tanh(W_2 relu(W_1 x + b_1) + b_2)`` on standardised
    features. Class ``k`` owns a fixed hash centre ``c_k`` (:func:`center_bank`; a new class takes the
    next free centre), an item with labels ``y`` (multi-label allowed) the target ``t = sgn(Σ_k y_k c_k)``.
    A session trains (Adam) on its labelled batch::

        Σ_v BCE((h_v + 1)/2, (t + 1)/2)                                    centre loss, every row of each view
        + p · mean_ij [log(1 + e^{θ_ij}) - S_ij θ_ij],  θ = ½ h_0 h_1ᵀ  cross-modal likelihood (pairs)
        + q · Σ_v mean((|h_v| - 1)²)                                       quantisation

    :meth:`partial_fit` (a *class increment*: the batch must hold at least one new class) trains the same
    functions further on the new batch only, plus:

    * the **lifelong hashing loss** ``l · Σ_v mean_ij [log(1 + e^{φ_ij}) - S_ij φ_ij]``,
      ``φ = ½ h_v Bᵀ``, between the new rows and the *stored codes* ``B`` of earlier items
      (:attr:`memory_codes_`, up to ``code_memory`` per class and view, with their labels): the updated
      functions must send new items near the old codes of their shared classes and away from the others,
      while the old codes themselves never change;
    * **distillation** ``d · Σ_v mean ||h_v(x) - h_v^{old}(x)||²`` on the exemplars (``replay_per_class``
      stored pairs per old class; 0 = exemplar-free), plus a BCE pull of the exemplars to their stored
      codes, and ``d · mean ||relu(W_1 x) - relu(W_1^{old} x)||²`` on the new rows' hidden features: old
      classes keep being encoded where their stored codes are.

    Old database codes are never recomputed: encode only the new items after an increment and keep the
    others (:meth:`transform` of an old item would give a code near, not necessarily equal to, its
    stored code). The model stores codes and exemplars of earlier sessions in its fitted state, so it
    grows with the number of classes, not with the number of items.

    A compact reading of the paper's deep, multi-label part on pre-extracted features (its backbones are
    CNN / bag-of-words networks trained end to end).

    Parameters
    ----------
    n_bits : int, default 32
    hidden : int, default 512
    epochs : int, default 60
        Epochs of :meth:`fit`.
    increment_epochs : int or None, default 20
        Epochs of :meth:`partial_fit` (None: ``epochs``). Fewer epochs forget less and learn the new
        classes less (on Wiki, 15 → 30 epochs: old-class mAP drop 8 → 12 points, new-class mAP
        0.36 / 0.62 → 0.36 / 0.76 image→text / text→image; bench/sections/crossmodal_supervised.md).
    batch_size : int, default 128
    lr : float, default 1e-3
        Learning rate of :meth:`fit`; increments use ``increment_lr``.
    increment_lr : float, default 1e-3
    weight_decay : float, default 1e-4
    pair_weight : float, default 0.1
    quant_weight : float, default 0.1
    lifelong_weight : float, default 0.1
    distill_weight : float, default 1.0
    code_memory : int, default 50
        Stored codes per class and view for the lifelong loss.
    replay_per_class : int, default 20
        Stored exemplar pairs (raw features) per class for distillation (0: exemplar-free, as the
        paper; on the benchmarks it forgets far more).
    n_threads : int, default 2
    verbose : bool, default False
    random_state : int, Generator or None

    Attributes
    ----------
    input_mean_, input_scale_ : list of (d_v,) float32 — fixed by the first session
    layers_ : list (per view) of [W1, b1, W2, b2] float32
    center_bank_ : (n_centres, n_bits) float32 — ``centers_ = center_bank_[:n_classes]``
    classes_ : ndarray (n_classes,) — in order of arrival
    multilabel_ : bool
    memory_codes_ : list (per view) of (m_v, n_bits) int8 ±1 — stored codes of earlier items
    memory_labels_ : list (per view) of (m_v, n_classes) float32
    exemplars_ : list (per view) of (e, d_v) float32; exemplar_labels_ (e, n_classes) float32;
    exemplar_codes_ : list (per view) of (e, n_bits) int8
    session_classes_ : list of int — classes added by each session
    loss_ : (epochs of the last session,) float64
    n_features_in_ : list of int

    References
    ----------
    L. Xu, H. Li, B. Zheng, W. Li and J. Lv, "Deep Lifelong Cross-modal Hashing", arXiv 2304.13357, 2023;
    L. Yuan et al., "Central Similarity Quantization", CVPR 2020 (hash centres); Z. Li and D. Hoiem,
    "Learning without Forgetting", ECCV 2016 (distillation); Q.-Y. Jiang and W.-J. Li, "Deep Cross-Modal
    Hashing", CVPR 2017 (pairwise likelihood).
    """

    _FIT_CALL = "fit(views, y)"

    def __init__(self, n_bits: int = 32, *, hidden: int = 512, epochs: int = 60, increment_epochs=20,
                 batch_size: int = 128, lr: float = 1e-3, increment_lr: float = 1e-3, weight_decay: float = 1e-4,
                 pair_weight: float = 0.1, quant_weight: float = 0.1, lifelong_weight: float = 0.1,
                 distill_weight: float = 1.0, code_memory: int = 50, replay_per_class: int = 20,
                 n_threads: int = 2, verbose: bool = False, random_state=None):
        self.n_bits = n_bits
        self.hidden = hidden
        self.epochs = epochs
        self.increment_epochs = increment_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.increment_lr = increment_lr
        self.weight_decay = weight_decay
        self.pair_weight = pair_weight
        self.quant_weight = quant_weight
        self.lifelong_weight = lifelong_weight
        self.distill_weight = distill_weight
        self.code_memory = code_memory
        self.replay_per_class = replay_per_class
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    def _check_params(self):
        super()._check_params()
        check_param_groups(self, positive_ints=("hidden", "epochs", "batch_size", "n_threads", "code_memory"),
                           positive_reals=("lr", "increment_lr"),
                           non_negative_reals=("weight_decay", "pair_weight", "quant_weight", "lifelong_weight",
                                               "distill_weight"))
        check_int_param(self.increment_epochs, "increment_epochs", min_val=1, allow_none=True)
        check_int_param(self.replay_per_class, "replay_per_class", min_val=0)

    @property
    def centers_(self) -> np.ndarray:
        """Hash centres of the classes seen so far, (n_classes, n_bits) float32."""
        self._check_fitted()
        return self.center_bank_[: len(self.classes_)]

    # -- the first session -------------------------------------------------------------------------------
    def fit(self, views, y=None, pairs=None):
        """First session: learn the hash functions of both modalities from labelled views.

        Parameters
        ----------
        views : list of 2 array-like, view ``v`` of shape (n_v, d_v)
        y : array-like (n,) or (n, n_classes), or a list of one such array per view
            Class labels or a 0/1 label matrix (multi-label).
        pairs : None, (n_pairs, 2) int array or bool mask — as in :meth:`BaseCrossModalHasher.fit`

        Returns
        -------
        self
        """
        views, pairs, Ys, classes, multi, rng = self._check_labelled_pair(views, y, pairs)
        self._clear_fitted()
        try:
            self.n_features_in_ = [int(v.shape[1]) for v in views]
            self.input_mean_, self.input_scale_ = map(list, zip(*(standardiser(X) for X in views)))
            self.center_bank_ = center_bank(int(self.n_bits), rng)
            if len(classes) > self.center_bank_.shape[0]:
                raise ValidationError(f"{len(classes)} classes need more hash centres than {self.n_bits} bits give "
                                      f"({self.center_bank_.shape[0]}); use more bits")
            self.classes_ = np.asarray(classes)
            self.multilabel_ = bool(multi)
            self.session_classes_ = [int(len(classes))]
            self._session(views, [np.asarray(Y, np.float32) for Y in Ys], pairs, rng, teacher=None)
        except BaseException:
            self._clear_fitted()
            raise
        return self

    # -- class increments --------------------------------------------------------------------------------
    def partial_fit(self, views, y=None, pairs=None):
        """A class increment: update the hash functions with a batch that brings new classes.

        Parameters
        ----------
        views, pairs : as in :meth:`fit`, for the new batch only.
        y : labels of the batch. Class labels: at least one class not seen before (items of known classes
            may come too). A label matrix: its first ``len(classes_)`` columns are the known classes, the
            extra columns (at least one) the new ones.

        Returns
        -------
        self

        Notes
        -----
        On an unfitted model this is :meth:`fit`. Codes already stored for earlier items stay valid: do not
        re-encode them (the lifelong and distillation losses keep the updated functions consistent with
        them). Only the new batch (plus the small stored memory) is trained on, for
        ``increment_epochs`` epochs.
        """
        if not self._is_fitted():
            return self.fit(views, y, pairs)
        self._check_params()
        views = check_views(views, n_views=2, n_features=self.n_features_in_)
        rows = [v.shape[0] for v in views]
        pairs = check_pairs(pairs, rows)
        Ys, new_classes = self._increment_labels(y, rows)
        n_old = len(self.classes_)
        if n_old + len(new_classes) > self.center_bank_.shape[0]:
            raise ValidationError(f"{n_old + len(new_classes)} classes need more hash centres than {self.n_bits} bits "
                                  f"give ({self.center_bank_.shape[0]})")
        rng = check_random_state(self.random_state)
        rng = np.random.default_rng([int(rng.integers(2**31 - 1)), len(self.session_classes_)])
        backup = {k: copy.deepcopy(v) for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        try:
            teacher = [[w.copy() for w in layer] for layer in self.layers_]
            self.classes_ = np.concatenate([self.classes_, np.asarray(new_classes)]) \
                if not self.multilabel_ else np.arange(n_old + len(new_classes))
            grow = len(new_classes)
            self.memory_labels_ = [np.pad(L, ((0, 0), (0, grow))) for L in self.memory_labels_]
            self.exemplar_labels_ = np.pad(self.exemplar_labels_, ((0, 0), (0, grow)))
            self.session_classes_ = [*self.session_classes_, grow]
            self._session(views, Ys, pairs, rng, teacher=teacher)
        except BaseException:
            self._clear_fitted()
            for k, v in backup.items():
                setattr(self, k, v)
            raise
        return self

    def _increment_labels(self, y, rows):
        """Label matrices of an increment over the old + new classes, and the new classes."""
        n_old = len(self.classes_)
        if y is None:
            raise ValidationError("partial_fit needs the labels y of the new batch")
        parts = [np.asarray(e) for e in y] if _is_per_view(y, 2) else [np.asarray(y)] * 2
        if parts[0] is parts[1] and rows[0] != rows[1]:
            raise ValidationError(f"views have different rows {rows}: give the labels as a list of one array per view")
        for v, (e, n) in enumerate(zip(parts, rows)):
            if e.shape[0] != n:
                raise ValidationError(f"labels of view {v} have {e.shape[0]} rows but view {v} has {n} rows")
        if self.multilabel_:
            if any(e.ndim != 2 for e in parts):
                raise ValidationError("this model was fitted on a label matrix: give the increment's labels as a 0/1 "
                                      f"matrix with the {n_old} known classes first")
            width = parts[0].shape[1]
            if any(e.shape[1] != width for e in parts) or width <= n_old:
                raise ValidationError(f"a class increment must add classes: the label matrix has {width} columns, "
                                      f"the model knows {n_old} classes")
            Ys, _, _ = check_view_labels(parts if parts[0] is not parts[1] else parts[0], rows,
                                         who=type(self).__name__)
            if Ys[0].shape[1] != width:  # check_supervision reads a 1-column matrix as class labels
                raise ValidationError(f"expected a 0/1 label matrix with {width} columns")
            if not any(Y[:, n_old:].any() for Y in Ys):
                raise ValidationError(f"the increment holds no item of the {width - n_old} new classes")
            return [np.asarray(Y, np.float32) for Y in Ys], list(range(n_old, width))
        if any(e.ndim != 1 for e in parts):
            raise ValidationError("this model was fitted on class labels: give the increment's labels as a 1-D array")
        allv = np.concatenate(parts)
        if allv.dtype.kind == "f" and not np.all(np.isfinite(allv)):
            raise ValidationError("y holds NaN or infinity")
        known = set(self.classes_.tolist())
        new = sorted(set(allv.tolist()) - known)
        if not new:
            raise ValidationError(f"a class increment needs at least one new class; every label of the batch is one "
                                  f"of the {len(known)} known classes")
        index = {c: i for i, c in enumerate([*self.classes_.tolist(), *new])}
        Ys = []
        for e in parts:
            Y = np.zeros((e.shape[0], len(index)), dtype=np.float32)
            Y[np.arange(e.shape[0]), [index[c] for c in e.tolist()]] = 1.0
            Ys.append(Y)
        return Ys, new

    # -- one training session ------------------------------------------------------------------------------
    def _session(self, views, Ys, pairs, rng, teacher):
        from .._torch import torch_threads
        from ..hashing.deep.base import _import_torch

        torch = _import_torch()
        F = torch.nn.functional
        C = self.center_bank_[: Ys[0].shape[1]]
        Z = [torch.from_numpy(self._standardise(X, v)) for v, X in enumerate(views)]
        Yt = [torch.from_numpy(Y) for Y in Ys]
        targets = [torch.from_numpy(_sign(Y @ C)) for Y in Ys]
        P = torch.from_numpy(pairs)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        incremental = teacher is not None
        epochs = int(self.epochs if not incremental or self.increment_epochs is None else self.increment_epochs)
        bs = int(self.batch_size)
        pw, qw, lw, dw = (float(self.pair_weight), float(self.quant_weight), float(self.lifelong_weight),
                          float(self.distill_weight))
        with torch_threads(self.n_threads):
            nets = self._make_nets(torch, gen)
            if incremental:
                self._load(torch, nets, self.layers_)
                old = self._make_nets(torch, gen)
                self._load(torch, old, teacher)
                old.requires_grad_(False)
                mem_B = [torch.from_numpy(B.astype(np.float32)) for B in self.memory_codes_]
                mem_Y = [torch.from_numpy(L) for L in self.memory_labels_]
                ex_Z = [torch.from_numpy(self._standardise(X, v)) for v, X in enumerate(self.exemplars_)]
                ex_B = [torch.from_numpy(B.astype(np.float32)) for B in self.exemplar_codes_]
                with torch.no_grad():
                    ex_T = [torch.tanh(old[v](ex_Z[v])) for v in range(2)]
            opt = torch.optim.Adam(nets.parameters(), lr=float(self.increment_lr if incremental else self.lr),
                                   weight_decay=float(self.weight_decay))
            bce = F.binary_cross_entropy
            steps = max(1, -(-max(z.shape[0] for z in Z) // bs))
            losses = []
            with epoch_progress(bool(self.verbose), type(self).__name__, epochs) as advance:
                for epoch in range(epochs):
                    orders = [torch.randperm(z.shape[0], generator=gen) for z in Z]
                    porder = torch.randperm(P.shape[0], generator=gen)
                    total = 0.0
                    for s in range(steps):
                        loss = 0.0
                        for v in range(2):
                            idx = orders[v][(s * bs) % Z[v].shape[0]:][:bs]
                            h = torch.tanh(nets[v](Z[v][idx]))
                            loss = loss + bce((h + 1) / 2, (targets[v][idx] + 1) / 2) + qw * ((h.abs() - 1) ** 2).mean()
                            if incremental:
                                loss = loss + self._lifelong_terms(torch, nets, old, v, Z[v][idx], h, Yt[v][idx],
                                                                   mem_B, mem_Y, ex_Z, ex_B, ex_T, gen, lw, dw)
                        pidx = porder[(s * bs) % P.shape[0]:][:bs]
                        h0, h1 = torch.tanh(nets[0](Z[0][P[pidx, 0]])), torch.tanh(nets[1](Z[1][P[pidx, 1]]))
                        Yp = Yt[0][P[pidx, 0]]
                        theta = 0.5 * h0 @ h1.T
                        loss = loss + pw * (F.softplus(theta) - (Yp @ Yp.T > 0).float() * theta).mean()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        total += float(loss.detach())
                    losses.append(total / steps)
                    advance(epoch + 1, losses[-1])
            self.layers_ = [[w.detach().numpy().astype(np.float32, copy=True)
                             for w in (net[0].weight.T, net[0].bias, net[2].weight.T, net[2].bias)] for net in nets]
        self.loss_ = np.asarray(losses, dtype=np.float64)
        self._remember(views, Ys, pairs, rng)

    @staticmethod
    def _lifelong_terms(torch, nets, old, v, z, h, Yb, mem_B, mem_Y, ex_Z, ex_B, ex_T, gen, lw, dw):
        """Lifelong hashing loss against stored codes and distillation (exemplars + hidden features)."""
        F = torch.nn.functional
        loss = 0.0
        if mem_B[v].shape[0]:
            phi = 0.5 * h @ mem_B[v].T
            loss = loss + lw * (F.softplus(phi) - (Yb @ mem_Y[v].T > 0).float() * phi).mean()
        loss = loss + dw * ((torch.relu(nets[v][0](z)) - torch.relu(old[v][0](z))) ** 2).mean()
        if ex_Z[v].shape[0]:
            take = torch.randint(0, ex_Z[v].shape[0], (min(h.shape[0], ex_Z[v].shape[0]),), generator=gen)
            he = torch.tanh(nets[v](ex_Z[v][take]))
            loss = loss + dw * (((he - ex_T[v][take]) ** 2).mean()
                                + F.binary_cross_entropy((he + 1) / 2, (ex_B[v][take] + 1) / 2))
        return loss

    def _remember(self, views, Ys, pairs, rng):
        """Store codes of this session's rows (per class and view) and exemplar pairs of its classes."""
        per = int(self.code_memory)
        first = not hasattr(self, "memory_codes_")
        if first:
            n_cls = Ys[0].shape[1]
            self.memory_codes_ = [np.zeros((0, int(self.n_bits)), np.int8) for _ in range(2)]
            self.memory_labels_ = [np.zeros((0, n_cls), np.float32) for _ in range(2)]
            self.exemplars_ = [np.zeros((0, d), np.float32) for d in self.n_features_in_]
            self.exemplar_labels_ = np.zeros((0, n_cls), np.float32)
            self.exemplar_codes_ = [np.zeros((0, int(self.n_bits)), np.int8) for _ in range(2)]
        new_cols = range(Ys[0].shape[1] - self.session_classes_[-1], Ys[0].shape[1])
        for v in range(2):
            codes = np.where(self._project(views[v], v) > 0, 1, -1).astype(np.int8)
            keep = self._per_class(Ys[v], new_cols, per, rng)
            self.memory_codes_[v] = np.concatenate([self.memory_codes_[v], codes[keep]])
            self.memory_labels_[v] = np.concatenate([self.memory_labels_[v], Ys[v][keep]])
        k = int(self.replay_per_class)
        if k:
            keep = pairs[self._per_class(Ys[0][pairs[:, 0]], new_cols, k, rng)]
            for v in range(2):
                X = views[v][keep[:, v]]
                self.exemplars_[v] = np.concatenate([self.exemplars_[v], X])
                self.exemplar_codes_[v] = np.concatenate(
                    [self.exemplar_codes_[v], np.where(self._project(X, v) > 0, 1, -1).astype(np.int8)])
            self.exemplar_labels_ = np.concatenate([self.exemplar_labels_, Ys[0][keep[:, 0]]])

    @staticmethod
    def _per_class(Y, cols, k, rng) -> np.ndarray:
        """Sorted rows: up to ``k`` random rows holding each class in ``cols``."""
        chosen = set()
        for c in cols:
            rows = np.flatnonzero(Y[:, c] > 0)
            chosen.update(rng.permutation(rows)[:k].tolist())
        return np.asarray(sorted(chosen), dtype=np.int64)

    # -- networks ----------------------------------------------------------------------------------------
    def _make_nets(self, torch, gen):
        from ..hashing.deep._nets import init_weights

        nn = torch.nn
        with torch.random.fork_rng(devices=[]):  # default init draws globally; replaced from ``gen``
            nets = nn.ModuleList([nn.Sequential(nn.Linear(d, int(self.hidden)), nn.ReLU(),
                                                nn.Linear(int(self.hidden), int(self.n_bits)))
                                  for d in self.n_features_in_])
        init_weights(nets, gen)
        return nets

    @staticmethod
    def _load(torch, nets, layers):
        with torch.no_grad():
            for net, (W1, b1, W2, b2) in zip(nets, layers):
                net[0].weight.copy_(torch.from_numpy(W1.T))
                net[0].bias.copy_(torch.from_numpy(b1))
                net[2].weight.copy_(torch.from_numpy(W2.T))
                net[2].bias.copy_(torch.from_numpy(b2))

    def _standardise(self, X, view):
        return ((X - self.input_mean_[view]) / self.input_scale_[view]).astype(np.float32)

    def _project(self, X, view):
        W1, b1, W2, b2 = self.layers_[view]
        return np.tanh(np.maximum(self._standardise(X, view) @ W1 + b1, 0.0) @ W2 + b2)
