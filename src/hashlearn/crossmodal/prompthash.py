"""PromptHash: learnable class affinity prompts condition a gated cross-modal fusion (torch, only in ``fit``)."""

from __future__ import annotations


import numpy as np

from ..codes import pack
from ..errors import ValidationError
from ..hashing.registry import register
from ..params import check_param_groups
from .base import BaseCrossModalHasher, check_views
from .dmveh import SupervisedCrossModalMixin, epoch_progress

__all__ = ["PromptHash", "standardiser", "supcon"]


def standardiser(X: np.ndarray):
    """Per-feature mean (float32) and scale (float32, 1 where a feature is constant) of ``X`` (n, d)."""
    sd = X.std(axis=0)
    return X.mean(axis=0).astype(np.float32), np.where(sd > 1e-8, sd, 1.0).astype(np.float32)


def supcon(torch, a, b, S, T: float):
    """Supervised contrastive loss of anchors ``a`` (n, r) against candidates ``b`` (m, r).

    Cosine similarities / ``T``; the positives of anchor ``i`` are the candidates ``j`` with
    ``S[i, j] = 1`` (sharing a label: several for multi-label data), every candidate is in the
    denominator: ``mean_i [logsumexp_j l_ij - logsumexp_{j ∈ P(i)} l_ij]``. Anchors without a positive
    are skipped.
    """
    F = torch.nn.functional
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / T
    has = S.sum(1) > 0
    if not bool(has.any()):
        return logits.sum() * 0.0
    pos = torch.logsumexp(logits.masked_fill(S <= 0, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - pos)[has].mean()


def _softmax(A: np.ndarray) -> np.ndarray:
    A = A - A.max(axis=1, keepdims=True)
    np.exp(A, out=A)
    A /= A.sum(axis=1, keepdims=True)
    return A


def _unit(A: np.ndarray) -> np.ndarray:
    return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)


@register("prompthash", kind="crossmodal")
class PromptHash(SupervisedCrossModalMixin, BaseCrossModalHasher):
    r"""PromptHash: affinity-prompted collaborative cross-modal hashing, on pre-extracted features.

    One learnable *affinity prompt* ``P_k`` (a ``d``-vector) per class conditions both modalities and
    their fusion. For modality ``v`` (an MLP ``e_v`` on standardised features)::

        a_v(x) = softmax_k(cos(e_v(x), P_k) / τ_p)        affinity of the item to each class prompt
        ẽ_v(x) = e_v(x) + Σ_k a_v(x)_k P_k                  prompt-conditioned feature
        h_v(x) = tanh(W_h ẽ_v(x) + b_h)                    relaxed code (hash layer shared by both modalities)
        g = σ(W_g [ẽ_0; ẽ_1] + b_g),  f = g ⊙ ẽ_0 + (1 - g) ⊙ ẽ_1,  h_f = tanh(W_h f + b_h)   gated fusion

    The prompts' own codes ``c_k = tanh(W_h P_k + b_h)`` are class anchors in the Hamming space. Trained
    with Adam on labelled pairs (``S_ij = 1`` when items ``i, j`` share a label; multi-label allowed)::

        SupCon(h_0, h_1; S) + SupCon(h_1, h_0; S)                            cross-modal contrast
        + SupCon(h_f, h_0; S) + SupCon(h_f, h_1; S)                          collaborative fusion
        + a · Σ_{u ∈ {h_0, h_1, h_f}} CE(cos(u, c) / T, ȳ)                    prompt affinity (intra / inter class)
        + a · Σ_v CE(a_v, ȳ)                                                 prompt selection
        + q · Σ_u mean((|u| - 1)²)                                           quantisation

    (``ȳ``: the item's labels normalised to sum 1; SupCon: :func:`supcon` at temperature ``T``). With
    semi-paired data the per-view terms (affinity, selection, quantisation and a within-view SupCon)
    also run on batches of all rows of each view, paired or not. No labels are needed to encode: the
    prompts are selected by the affinity ``a_v``. Codes ``sgn(h_v(x))`` (:meth:`transform`), or from
    both views of an item ``sgn(h_f)`` (:meth:`transform_fused`). Encoding is numpy only.

    Adaptation: the paper builds the prompts from CLIP text tokens ("an image containing {class}")
    and fuses with a gated state-space/Transformer block; here the inputs are fixed feature vectors,
    the prompts are free vectors in the embedding space and the fusion is one gate.

    Parameters
    ----------
    n_bits : int, default 32
    hidden : int, default 512
        Width of each modality's hidden layer.
    embed_dim : int, default 256
        ``d``, dimension of the embedding space of the features and of the prompts.
    epochs : int, default 40
    batch_size : int, default 128
    lr : float, default 1e-3
    weight_decay : float, default 1e-4
    temperature : float, default 0.3
        ``T`` of the contrastive and affinity terms.
    prompt_temperature : float, default 0.1
        ``τ_p`` of the prompt selection.
    affinity_weight : float, default 1.0
    quant_weight : float, default 0.1
    n_threads : int, default 2
        torch threads during ``fit`` (restored afterwards).
    verbose : bool, default False
        Progress bar (stderr) while training.
    random_state : int, Generator or None
        Seeds the weights and the batches (``torch.Generator``; torch's global generator is untouched).

    Attributes
    ----------
    input_mean_, input_scale_ : list (per view) of (d_v,) float32
    layers_ : list (per view) of [W1 (d_v, hidden), b1, W2 (hidden, d), b2] float32
    prompts_ : (n_classes, d) float32 — the affinity prompts
    hash_layer_ : [W_h (d, n_bits), b_h (n_bits,)] float32
    gate_ : [W_g (2d, d), b_g (d,)] float32
    classes_ : ndarray (n_classes,)
    multilabel_ : bool
    loss_ : (epochs,) float64 — mean training loss per epoch
    n_features_in_ : list of int

    References
    ----------
    Q. Zou, S. Cheng and J. Chen, "PromptHash: Affinity-Prompted Collaborative Cross-Modal Learning for
    Adaptive Hashing Retrieval", CVPR 2025 (arXiv 2503.16064); P. Khosla et al., "Supervised Contrastive
    Learning", NeurIPS 2020.
    """

    _FIT_CALL = "fit(views, y)"

    def __init__(self, n_bits: int = 32, *, hidden: int = 512, embed_dim: int = 256, epochs: int = 40,
                 batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 1e-4, temperature: float = 0.3,
                 prompt_temperature: float = 0.1, affinity_weight: float = 1.0, quant_weight: float = 0.1,
                 n_threads: int = 2, verbose: bool = False, random_state=None):
        self.n_bits = n_bits
        self.hidden = hidden
        self.embed_dim = embed_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.prompt_temperature = prompt_temperature
        self.affinity_weight = affinity_weight
        self.quant_weight = quant_weight
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    def _check_params(self):
        super()._check_params()
        check_param_groups(self, positive_ints=("hidden", "embed_dim", "epochs", "batch_size", "n_threads"),
                           positive_reals=("lr", "temperature", "prompt_temperature"),
                           non_negative_reals=("weight_decay", "affinity_weight", "quant_weight"))

    # -- fit ----------------------------------------------------------------------------------------------
    def fit(self, views, y=None, pairs=None):
        """Learn the prompts, the encoders, the gate and the hash layer from labelled views.

        Parameters
        ----------
        views : list of 2 array-like, view ``v`` of shape (n_v, d_v)
        y : array-like (n,) or (n, n_classes), or a list of one such array per view
            Class labels or a 0/1 label matrix (see :func:`~hashlearn.crossmodal.check_view_labels`).
        pairs : None, (n_pairs, 2) int array or bool mask
            As in :meth:`BaseCrossModalHasher.fit` (None: every row paired).

        Returns
        -------
        self
        """
        views, pairs, Ys, classes, multi, rng = self._check_labelled_pair(views, y, pairs)
        self._clear_fitted()
        try:
            self.n_features_in_ = [int(v.shape[1]) for v in views]
            self.classes_ = classes
            self.multilabel_ = bool(multi)
            self._train(views, Ys, pairs, rng)
        except BaseException:
            self._clear_fitted()
            raise
        return self

    def _make_modules(self, torch, gen, n_classes):
        nn = torch.nn
        from ..hashing.deep._nets import init_weights

        d, hdim, r = int(self.embed_dim), int(self.hidden), int(self.n_bits)
        with torch.random.fork_rng(devices=[]):  # default init draws globally; replaced from ``gen`` below
            mods = nn.ModuleDict({
                "enc0": nn.Sequential(nn.Linear(self.n_features_in_[0], hdim), nn.ReLU(), nn.Linear(hdim, d)),
                "enc1": nn.Sequential(nn.Linear(self.n_features_in_[1], hdim), nn.ReLU(), nn.Linear(hdim, d)),
                "hash": nn.Linear(d, r), "gate": nn.Linear(2 * d, d)})
        init_weights(mods, gen)
        prompts = nn.Parameter(torch.randn(n_classes, d, generator=gen) / np.sqrt(d))
        return mods, prompts

    def _train(self, views, Ys, pairs, rng):
        from .._torch import torch_threads
        from ..hashing.deep.base import _import_torch

        torch = _import_torch()
        F = torch.nn.functional
        self.input_mean_, self.input_scale_ = [], []
        for X in views:
            m, s = standardiser(X)
            self.input_mean_.append(m)
            self.input_scale_.append(s)
        Z = [torch.from_numpy(self._standardise(X, v)) for v, X in enumerate(views)]
        Yt = [torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float32)) for Y in Ys]
        P = torch.from_numpy(pairs)
        unpaired = len(pairs) < max(len(views[0]), len(views[1]))
        T, Tp = float(self.temperature), float(self.prompt_temperature)
        a_w, q_w = float(self.affinity_weight), float(self.quant_weight)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        with torch_threads(self.n_threads):
            mods, prompts = self._make_modules(torch, gen, Yt[0].shape[1])
            opt = torch.optim.Adam(list(mods.parameters()) + [prompts], lr=float(self.lr),
                                   weight_decay=float(self.weight_decay))

            def encode(z, v):
                e = mods[f"enc{v}"](z)
                att = torch.softmax(F.normalize(e, dim=1) @ F.normalize(prompts, dim=1).T / Tp, dim=1)
                return e + att @ prompts, att

            def per_item(h, att_or_none, ybar, anchors):
                loss = a_w * F.cross_entropy(F.normalize(h, dim=1) @ F.normalize(anchors, dim=1).T / T, ybar)
                if att_or_none is not None:
                    loss = loss - a_w * (ybar * torch.log(att_or_none + 1e-8)).sum(1).mean()
                return loss + q_w * ((h.abs() - 1) ** 2).mean()

            def norm_labels(Y):
                return Y / Y.sum(1, keepdim=True)

            n, bs = P.shape[0], min(int(self.batch_size), P.shape[0])
            losses = []
            with epoch_progress(bool(self.verbose), type(self).__name__, int(self.epochs)) as advance:
                for epoch in range(int(self.epochs)):
                    order = torch.randperm(n, generator=gen)
                    total, count = 0.0, 0
                    for s in range(0, n, bs):
                        idx = order[s : s + bs]
                        if idx.shape[0] < 2:
                            continue
                        Yb = Yt[0][P[idx, 0]]
                        S = (Yb @ Yb.T > 0).float()
                        ybar = norm_labels(Yb)
                        (e0, a0), (e1, a1) = encode(Z[0][P[idx, 0]], 0), encode(Z[1][P[idx, 1]], 1)
                        h0, h1 = torch.tanh(mods["hash"](e0)), torch.tanh(mods["hash"](e1))
                        g = torch.sigmoid(mods["gate"](torch.cat([e0, e1], dim=1)))
                        hf = torch.tanh(mods["hash"](g * e0 + (1 - g) * e1))
                        anchors = torch.tanh(mods["hash"](prompts))
                        loss = (supcon(torch, h0, h1, S, T) + supcon(torch, h1, h0, S, T)
                                + supcon(torch, hf, h0, S, T) + supcon(torch, hf, h1, S, T)
                                + per_item(h0, a0, ybar, anchors) + per_item(h1, a1, ybar, anchors)
                                + per_item(hf, None, ybar, anchors))
                        if unpaired:  # every row of each view, paired or not: the per-view terms
                            for v in range(2):
                                rows = torch.randint(0, Z[v].shape[0], (bs,), generator=gen)
                                Yv = Yt[v][rows]
                                ev, av = encode(Z[v][rows], v)
                                hv = torch.tanh(mods["hash"](ev))
                                loss = loss + per_item(hv, av, norm_labels(Yv), anchors) + supcon(
                                    torch, hv, hv, (Yv @ Yv.T > 0).float(), T)
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        total += float(loss.detach())
                        count += 1
                    losses.append(total / max(count, 1))
                    advance(epoch + 1, losses[-1])
        as_np = lambda t: t.detach().numpy().astype(np.float32, copy=True)  # noqa: E731
        self.layers_ = [[as_np(mods[f"enc{v}"][0].weight.T), as_np(mods[f"enc{v}"][0].bias),
                         as_np(mods[f"enc{v}"][2].weight.T), as_np(mods[f"enc{v}"][2].bias)] for v in range(2)]
        self.prompts_ = as_np(prompts)
        self.hash_layer_ = [as_np(mods["hash"].weight.T), as_np(mods["hash"].bias)]
        self.gate_ = [as_np(mods["gate"].weight.T), as_np(mods["gate"].bias)]
        self.loss_ = np.asarray(losses, dtype=np.float64)

    # -- encoding (numpy) -------------------------------------------------------------------------------
    def _standardise(self, X, view):
        return ((X - self.input_mean_[view]) / self.input_scale_[view]).astype(np.float32)

    def _conditioned(self, X, view):
        """Prompt-conditioned features ``ẽ_v`` (n, d) and prompt affinities ``a_v`` (n, n_classes)."""
        W1, b1, W2, b2 = self.layers_[view]
        e = np.maximum(self._standardise(X, view) @ W1 + b1, 0.0) @ W2 + b2
        att = _softmax(_unit(e) @ _unit(self.prompts_).T / float(self.prompt_temperature))
        return e + att @ self.prompts_, att

    def _project(self, X, view):
        W, b = self.hash_layer_
        return np.tanh(self._conditioned(X, view)[0] @ W + b)

    def prompt_affinity(self, X, view: int = 0) -> np.ndarray:
        """Affinity ``a_v`` (n, n_classes) float32 of rows of modality ``view`` to the class prompts."""
        from ..hashing.base import check_vectors_array

        self._check_fitted()
        view = self._check_view(view)
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_[view])
        return self._conditioned(X, view)[1]

    def transform_fused(self, views) -> np.ndarray:
        """One packed code per item from both of its views (aligned rows), through the learned gate."""
        self._check_fitted()
        views = check_views(views, n_views=2, n_features=self.n_features_in_)
        if views[0].shape[0] != views[1].shape[0]:
            raise ValidationError(f"views must have the same number of rows, got {[v.shape[0] for v in views]}")
        e0, e1 = (self._conditioned(X, v)[0] for v, X in enumerate(views))
        A, c = self.gate_
        g = 1.0 / (1.0 + np.exp(-(np.hstack([e0, e1]) @ A + c)))
        W, b = self.hash_layer_
        return pack((g * e0 + (1 - g) * e1) @ W + b > 0)
