"""DPSH, HashNet, CSQ, GreedyHash, DSH and DTSH: the losses of six deep supervised hashers.

Every class shares the network, training loop, early stopping and encoding of
:class:`~hashlearn.hashing.deep.base.DeepHasher` and differs by its loss. The pairwise methods (DPSH,
HashNet, DSH) take every pair of a mini-batch, DTSH every triplet of it, with gradients through both codes of a pair (the online
pairs of the DSH paper), and the ``distance`` option (:func:`._nets.pair_scores`).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_real_param
from ..registry import register
from .base import DeepHasher, store_params

__all__ = ["DPSH", "HashNetHasher", "CSQ", "GreedyHash", "DSH", "DTSH"]

_COMMON_DOC = """
    n_bits : int, default 64
    input_shape : tuple (C, H, W) or None, default None
        Images given flattened: the small CNN backbone is used (else an MLP on the vectors).
    hidden : int, default 256
        Width of the backbone's last layer (and of the MLP's hidden layers).
    epochs : int, default 30
    batch_size : int, default 128
    lr : float, default 1e-3
        Adam's learning rate.
    weight_decay : float, default 1e-5
    rotation : {None, "householder", "linear"}, default None
        Learnable rotation after the hash layer: a product of Householder reflections (orthogonal) or an
        unconstrained linear layer (both start at an orthogonal / identity matrix).
    csce : bool, default False
        CSCE-Net's cross-scale context gate and per-sample dynamic sign thresholds.
    validation_fraction : float, default 0.1
        Share of the labelled rows held out for early stopping (0: none, train all ``epochs``).
    patience : int, default 10
        Epochs without a better validation mAP before stopping.
    n_threads : int, default 2
        torch threads while fitting and encoding (the previous setting is restored).
    verbose : bool, default False
        Show a progress bar (stderr) while training.
    random_state : int, numpy Generator or None, default None
        Seeds the weights, the validation split and the batches (through a ``torch.Generator``)."""


def _similarity(torch, Yb, Yt):
    return (Yb @ Yt.T > 0).to(Yb.dtype)


class _Pairwise(DeepHasher):
    """Pairwise methods: the pairs of a mini-batch with itself, gradients through both codes of a pair.

    An earlier version compared the batch with a bank of detached codes of every training row (as
    DeepHash-pytorch does with pretrained backbones); with the small CNN trained from scratch that bank
    lags the network, the gradient reaches one side of each pair only, and DPSH, DSH and HashNet with
    the Euclidean / SNR scores collapsed to a nearly constant code (dead ReLU units; bench mAP 0.10–0.16).
    """

    _pairwise = True

    @staticmethod
    def _batch_pairs(torch, u, idx, Yt):
        """The mini-batch against itself (gradients through both sides) and its similarity matrix."""
        return u, _similarity(torch, Yt[idx], Yt[idx])


def _balanced_mean(torch, loss, S):
    """Mean of ``loss`` with similar and dissimilar pairs weighing the same in total (HashNet's weights)."""
    n_pos, n_all = S.sum(), float(S.numel())
    w = torch.where(S > 0, n_all / n_pos.clamp_min(1.0), n_all / (n_all - n_pos).clamp_min(1.0))
    return (w * loss).sum() / w.sum()


@register("dpsh")
class DPSH(_Pairwise):
    __doc__ = r"""Deep Pairwise-Supervised Hashing (DPSH): a logistic likelihood of the pairwise labels.

    ``L = Σ_ij w_ij [log(1 + e^{Θ_ij}) - s_ij Θ_ij] + η Σ_i ||h_i - sgn(h_i)||²`` over the pairs of a
    mini-batch (gradients through both codes of a pair), with ``Θ_ij`` the pair score of the network's
    unbounded outputs ``h_i`` and ``h_j`` (``distance="inner"``: ``½ h_iᵀ h_j``, the paper's). One departure
    from the paper: the weights ``w_ij`` make similar and dissimilar pairs weigh the same in total
    (HashNet's weights; with 10 balanced classes only 10% of the pairs are similar). The outputs stay
    unbounded as in the paper: bounded by ``tanh``, the Euclidean score saturated the units and collapsed
    to one code on a small CNN.

    Parameters
    ----------""" + _COMMON_DOC + """
    distance : {"inner", "euclidean", "cosine", "snr"}, default "inner"
        Pair score (:func:`hashlearn.hashing.deep._nets.pair_scores`).
    quant_weight : float, default 0.1
        ``η``.

    References
    ----------
    W.-J. Li, S. Wang and W.-C. Kang, "Feature Learning based Deep Supervised Hashing with Pairwise
    Labels", IJCAI 2016.
    """

    def __init__(self, n_bits=64, *, input_shape=None, hidden=256, epochs=30, batch_size=128, lr=1e-3,
                 weight_decay=1e-5, rotation=None, csce=False, validation_fraction=0.1, patience=10, n_threads=2,
                 verbose=False, distance="inner", quant_weight=0.1, random_state=None):
        store_params(self, locals())

    def _check_params(self):
        super()._check_params()
        check_real_param(self.quant_weight, "quant_weight", min_val=0)

    def _loss(self, torch, h, idx, Yt, state, heads):
        from ._nets import pair_scores

        U, S = self._batch_pairs(torch, h, idx, Yt)
        theta = pair_scores(h, U, self.distance)  # softplus is stable: no clamp (it would stop the gradient)
        likelihood = _balanced_mean(torch, torch.nn.functional.softplus(theta) - S * theta, S)
        quant = ((h - torch.sign(h).detach()) ** 2).mean()
        return likelihood + float(self.quant_weight) * quant


@register("hashnet")
class HashNetHasher(_Pairwise):
    __doc__ = r"""HashNet: weighted pairwise cross-entropy on ``tanh(β z)`` with continuation (β grows).

    ``h = tanh(β z)`` with ``β = √(1 + 0.005 t)`` at step ``t`` (the sign is reached by continuation);
    the loss is the pairwise logistic loss over the pairs of a mini-batch with scores ``α · 2 Θ_ij``
    (``Θ`` as in DPSH), each pair weighted so that similar and dissimilar pairs weigh the same in total
    (the paper's imbalance weights).

    Parameters
    ----------""" + _COMMON_DOC + """
    distance : {"inner", "euclidean", "cosine", "snr"}, default "inner"
    alpha : float, default 0.1
        Scale of the pair scores (``10 / n_bits`` in the paper; 0.1 in DeepHash-pytorch).

    References
    ----------
    Z. Cao, M. Long, J. Wang and P. S. Yu, "HashNet: Deep Learning to Hash by Continuation", ICCV 2017.
    """

    def __init__(self, n_bits=64, *, input_shape=None, hidden=256, epochs=30, batch_size=128, lr=1e-3,
                 weight_decay=1e-5, rotation=None, csce=False, validation_fraction=0.1, patience=10, n_threads=2,
                 verbose=False, distance="inner", alpha=0.1, random_state=None):
        store_params(self, locals())

    def _check_params(self):
        super()._check_params()
        check_real_param(self.alpha, "alpha", min_val=0, include_boundaries="neither")

    def _loss(self, torch, h, idx, Yt, state, heads):
        from ._nets import pair_scores

        beta = float(np.sqrt(1.0 + 0.005 * state["step"]))
        u = torch.tanh(beta * h)
        U, S = self._batch_pairs(torch, u, idx, Yt)
        theta = float(self.alpha) * 2.0 * pair_scores(u, U, self.distance)
        return _balanced_mean(torch, torch.nn.functional.softplus(theta) - S * theta, S)


def _hash_centers(n_classes: int, r: int, rng) -> np.ndarray:
    """CSQ's hash centres: rows of a Hadamard matrix and their negatives where they suffice, else random ±1."""
    from scipy.linalg import hadamard

    if r & (r - 1) == 0 and n_classes <= 2 * r:
        H = hadamard(r).astype(np.float32)
        return np.concatenate([H, -H])[:n_classes]
    return np.where(rng.random((n_classes, r)) < 0.5, -1.0, 1.0).astype(np.float32)


@register("csq")
class CSQ(DeepHasher):
    __doc__ = r"""Central Similarity Quantization (CSQ): each class has a hash centre; codes are pulled to it.

    Centres are mutually far ±1 vectors (Hadamard rows, or random ones when ``n_bits`` is not a power
    of two or there are more than ``2·n_bits`` classes); a multi-label row's centre is the sign of the
    sum of its labels' centres. With ``h = tanh(z)``:
    ``L = BCE((h + 1)/2, (c + 1)/2) + λ mean((|h| - 1)²)``.

    Parameters
    ----------""" + _COMMON_DOC + """
    quant_weight : float, default 1e-4
        ``λ`` (the paper's value).

    Attributes
    ----------
    centers_ : ndarray of shape (n_classes, n_bits_), float32

    References
    ----------
    L. Yuan, T. Wang, X. Zhang, F. E. H. Tay, Z. Jie, W. Liu and J. Feng, "Central Similarity Quantization
    for Efficient Image and Video Retrieval", CVPR 2020.
    """

    def __init__(self, n_bits=64, *, input_shape=None, hidden=256, epochs=30, batch_size=128, lr=1e-3,
                 weight_decay=1e-5, rotation=None, csce=False, validation_fraction=0.1, patience=10, n_threads=2,
                 verbose=False, quant_weight=1e-4, random_state=None):
        store_params(self, locals())

    def _check_params(self):
        super()._check_params()
        check_real_param(self.quant_weight, "quant_weight", min_val=0)

    def _init_state(self, torch, Yt, gen):
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        self.centers_ = _hash_centers(Yt.shape[1], int(self.n_bits), rng)
        C = torch.from_numpy(self.centers_)
        targets = torch.where(Yt @ C >= 0, 1.0, -1.0)  # one label: its centre; several: sign of the sum
        return {"step": 0, "targets": targets}

    def _loss(self, torch, h, idx, Yt, state, heads):
        u = torch.tanh(h)
        t = state["targets"][idx]
        bce = torch.nn.functional.binary_cross_entropy((u + 1) / 2, (t + 1) / 2)
        return bce + float(self.quant_weight) * ((u.abs() - 1) ** 2).mean()


@register("greedyhash")
class GreedyHash(DeepHasher):
    __doc__ = r"""GreedyHash: the sign in the forward pass, its gradient passed straight through, codes that classify.

    ``b = sgn(z)`` forward, ``∂L/∂z = ∂L/∂b`` backward (the greedy principle); a linear classifier on ``b``
    is trained with cross-entropy (binary cross-entropy per label for a label matrix), plus the penalty
    ``α mean(| |z| - 1 |³)`` pulling ``z`` to ±1.

    Parameters
    ----------""" + _COMMON_DOC + """
    penalty_weight : float, default 0.1
        ``α``.

    References
    ----------
    S. Su, C. Zhang, K. Han and Y. Tian, "Greedy Hash: Towards Fast Optimization for Accurate Hash Coding
    in CNN", NeurIPS 2018.
    """

    def __init__(self, n_bits=64, *, input_shape=None, hidden=256, epochs=30, batch_size=128, lr=1e-3,
                 weight_decay=1e-5, rotation=None, csce=False, validation_fraction=0.1, patience=10, n_threads=2,
                 verbose=False, penalty_weight=0.1, random_state=None):
        store_params(self, locals())

    def _check_params(self):
        super()._check_params()
        check_real_param(self.penalty_weight, "penalty_weight", min_val=0)

    def _make_heads(self, torch, n_classes):
        return torch.nn.Linear(int(self.n_bits), n_classes)

    def _loss(self, torch, h, idx, Yt, state, heads):
        b = h + (torch.sign(h) - h).detach()  # straight-through sign
        logits = heads(b)
        y = Yt[idx]
        if self.multilabel_:
            cls = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        else:
            cls = torch.nn.functional.cross_entropy(logits, y.argmax(dim=1))
        return cls + float(self.penalty_weight) * ((h.abs() - 1).abs() ** 3).mean()


@register("dsh")
class DSH(_Pairwise):
    __doc__ = r"""Deep Supervised Hashing (DSH): a contrastive loss on relaxed codes with a margin.

    ``L = mean[½ s_ij D_ij + ½ (1 - s_ij) max(m - D_ij, 0)] + α mean(| |h| - 1 |)`` with ``m = 2 n_bits``
    (the paper's margin), over the pairs of a mini-batch (the paper's online pairs), and ``D_ij`` the squared
    Euclidean distance (``distance="euclidean"``), or ``2r - 4 Θ_ij`` for the other scores of
    :func:`hashlearn.hashing.deep._nets.pair_scores` (the same scale on ±1 codes; ``"snr"``: the SNR distance).

    Parameters
    ----------""" + _COMMON_DOC + """
    distance : {"euclidean", "cosine", "snr", "inner"}, default "euclidean"
    reg_weight : float, default 0.01
        ``α``.

    References
    ----------
    H. Liu, R. Wang, S. Shan and X. Chen, "Deep Supervised Hashing for Fast Image Retrieval", CVPR 2016.
    """

    def __init__(self, n_bits=64, *, input_shape=None, hidden=256, epochs=30, batch_size=128, lr=1e-3,
                 weight_decay=1e-5, rotation=None, csce=False, validation_fraction=0.1, patience=10, n_threads=2,
                 verbose=False, distance="euclidean", reg_weight=0.01, random_state=None):
        store_params(self, locals())

    def _check_params(self):
        super()._check_params()
        check_real_param(self.reg_weight, "reg_weight", min_val=0)

    def _loss(self, torch, h, idx, Yt, state, heads):
        from ._nets import pair_scores

        U, S = self._batch_pairs(torch, h, idx, Yt)
        r = h.shape[1]
        D = (2.0 * r - 4.0 * pair_scores(h, U, self.distance)).clamp_min(0.0)
        m = 2.0 * r
        contrast = (0.5 * S * D + 0.5 * (1 - S) * torch.relu(m - D)).mean()
        return contrast + float(self.reg_weight) * (h.abs() - 1).abs().mean()


@register("dtsh")
class DTSH(_Pairwise):
    __doc__ = r"""Deep Supervised Hashing with Triplet Labels (DTSH): a logistic likelihood of triplet orderings.

    For every triplet of a mini-batch with an anchor ``i``, a similar item ``j`` and a dissimilar item
    ``k`` (``s_ij = 1``, ``s_ik = 0``, ``j ≠ i``): ``L = mean log(1 + e^{-(Θ_ij - Θ_ik - α)})
    + λ mean ||h - sgn(h)||²``, with ``Θ`` the pair score of :func:`hashlearn.hashing.deep._nets.pair_scores`
    (``distance="inner"``: ``½ h_iᵀ h_j``, the paper's; ``"snr"``: the SNR distance in a triplet loss, as in
    Yuan et al. 2019). All in-batch triplets are used (``batch_size³`` scores at most: 2M for 128).

    Parameters
    ----------""" + _COMMON_DOC + """
    distance : {"inner", "euclidean", "cosine", "snr"}, default "inner"
    margin : float or None, default None
        ``α``: how much higher ``Θ_ij`` must be than ``Θ_ik``; None: ``n_bits / 8`` (scores lie in
        ``[-n_bits/2, n_bits/2]`` on ±1 codes, so the margin scales with them). 5 (DeepHash-pytorch's
        value) and ``λ = 1`` collapsed the small CNN to 1–2 codes on digits at 16 bits.
    quant_weight : float, default 0.1
        ``λ``.

    References
    ----------
    X. Wang, Y. Shi and K. M. Kitani, "Deep Supervised Hashing with Triplet Labels", ACCV 2016.
    """

    def __init__(self, n_bits=64, *, input_shape=None, hidden=256, epochs=30, batch_size=128, lr=1e-3,
                 weight_decay=1e-5, rotation=None, csce=False, validation_fraction=0.1, patience=10, n_threads=2,
                 verbose=False, distance="inner", margin=None, quant_weight=0.1, random_state=None):
        store_params(self, locals())

    def _check_params(self):
        super()._check_params()
        if self.margin is not None:
            check_real_param(self.margin, "margin", min_val=0)
        check_real_param(self.quant_weight, "quant_weight", min_val=0)

    def _loss(self, torch, h, idx, Yt, state, heads):
        from ._nets import pair_scores

        U, S = self._batch_pairs(torch, h, idx, Yt)
        theta = pair_scores(h, U, self.distance)
        positive = S * (1.0 - torch.eye(S.shape[0], dtype=S.dtype))
        valid = positive[:, :, None] * (1.0 - S)[:, None, :]  # (anchor, similar, dissimilar)
        alpha = h.shape[1] / 8.0 if self.margin is None else float(self.margin)
        margin = theta[:, :, None] - theta[:, None, :] - alpha
        triplet = (torch.nn.functional.softplus(-margin) * valid).sum() / valid.sum().clamp_min(1.0)
        quant = ((h - torch.sign(h).detach()) ** 2).mean()
        return triplet + float(self.quant_weight) * quant
