"""DMVEH: supervised deep multi-view hashing with view-stability weights and fusion in Hamming space.

Also the contract of the *supervised* cross-modal hashers (``dmveh``, ``prompthash``, ``dlch``):

* :class:`SupervisedCrossModalMixin` — the class flag ``requires_labels = True`` (read by the
  cross-modal benchmark, :func:`hashlearn.crossmodal.evaluate.run_protocol`, to pass labels only to the
  methods that declare it) and scikit-learn's ``target_tags.required`` (read by
  :func:`hashlearn.hashing.is_supervised`);
* :func:`check_view_labels` — labels of every view's rows: one array for aligned views, or one array
  per view (semi-paired data).

torch is imported inside ``fit`` and the encoders only (extra ``[deep]``).
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np
from sklearn.base import BaseEstimator

from ..codes import pack
from ..errors import ValidationError
from ..hashing._validation import check_int_param, check_real_param
from ..hashing.base import FittedStateMixin, PersistableEstimatorMixin, check_random_state
from ..hashing.registry import register
from ..hashing.supervised._labels import check_supervision
from .base import check_pairs, check_views

__all__ = ["DeepMultiViewEnhancementHashing", "SupervisedCrossModalMixin", "check_view_labels", "epoch_progress"]


class SupervisedCrossModalMixin:
    """Marks a cross-modal hasher whose ``fit(views, y, pairs=None)`` needs labels ``y``.

    ``requires_labels`` is the flag the benchmark reads (no list of supervised methods is kept by
    hand); ``__sklearn_tags__`` sets ``target_tags.required`` so that
    :func:`hashlearn.hashing.is_supervised` says the same.
    """

    requires_labels = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _check_labelled_pair(self, views, y, pairs):
        """Boundary checks of ``fit(views, y, pairs)`` for two views, before anything is learned.

        Returns ``(views, pairs, Ys, classes, multilabel, rng)``: the checked views, the (n_pairs, 2) pairs,
        one 0/1 label matrix per view, the classes, whether rows may carry several labels, and the
        numpy Generator from ``random_state``.
        """
        self._check_params()
        views = check_views(views, n_views=2)
        rows = [v.shape[0] for v in views]
        pairs = check_pairs(pairs, rows)
        Ys, classes, multi = check_view_labels(y, rows, who=type(self).__name__)
        return views, pairs, Ys, classes, multi, check_random_state(self.random_state)


def _is_per_view(y, n_views: int) -> bool:
    return (isinstance(y, (list, tuple)) and len(y) == n_views
            and all(not isinstance(e, (str, bytes)) and np.ndim(e) >= 1 for e in y))


def check_view_labels(y, n_rows, *, who: str):
    """Labels of the rows of every view, as 0/1 label matrices over one set of classes.

    Parameters
    ----------
    y : array-like of shape (n,) or (n, n_classes), or a list with one such array per view
        One array: the views are aligned (every view has ``n`` rows, row ``i`` the same item). A list
        of ``len(n_rows)`` arrays: ``y[v]`` labels the rows of view ``v`` (semi-paired data, where
        views have different rows). Class labels or 0/1 label matrices (multi-label). Give a label
        matrix as an array: a list of ``len(n_rows)`` lists is read as one label array per view.
    n_rows : sequence of int
        Rows of each view.
    who : str
        Estimator name for the messages.

    Returns
    -------
    Y : list of float32 arrays, ``Y[v]`` of shape (n_rows[v], n_classes)
    classes : ndarray (n_classes,)
    multilabel : bool
    """
    n_rows = [int(n) for n in n_rows]
    if y is None:
        raise ValidationError(f"{who} is supervised: fit(views, y) needs labels y (one array of {n_rows[0]} labels "
                              f"for aligned views, or one array per view)")
    if _is_per_view(y, len(n_rows)):
        parts = [np.asarray(e) for e in y]
        for v, (e, n) in enumerate(zip(parts, n_rows)):
            if e.shape[0] != n:
                raise ValidationError(f"y[{v}] has {e.shape[0]} labels but view {v} has {n} rows")
        if len({e.ndim if not (e.ndim == 2 and e.shape[1] == 1) else 1 for e in parts}) != 1 or (
                parts[0].ndim == 2 and len({e.shape[1] for e in parts}) != 1):
            raise ValidationError(f"y[0] and y[1] must be the same kind of labels, got shapes "
                                  f"{[e.shape for e in parts]}")
        Y, classes, multi = check_supervision(np.concatenate(parts), sum(n_rows), who=who)
        return np.split(Y, np.cumsum(n_rows)[:-1]), classes, multi
    if len(set(n_rows)) != 1:
        raise ValidationError(f"views have different rows {n_rows}: give the labels as a list of one array per view")
    arr = np.asarray(y)
    if arr.ndim >= 1 and arr.shape[0] != n_rows[0]:
        raise ValidationError(f"y has {arr.shape[0]} labels but the views have {n_rows[0]} rows")
    Y, classes, multi = check_supervision(arr, n_rows[0], who=who)
    return [Y] * len(n_rows), classes, multi


@register("dmveh", kind="crossmodal")
class DeepMultiViewEnhancementHashing(SupervisedCrossModalMixin, PersistableEstimatorMixin, FittedStateMixin,
                                      BaseEstimator):
    r"""Deep Multi-View Enhancement Hashing (DMVEH, after Yan et al. 2020): one code per item from all its views.

    Every view ``v`` has an MLP ``h_v(x) = tanh(W_3 relu(W_2 relu(W_1 x)))`` into the same ``r``-bit
    space. Training (Adam, mini-batches from a ``torch.Generator``) minimises, with each class's hash
    centre ``c`` (Hadamard rows, as CSQ) and the view weights ``α`` (on the simplex)::

        Σ_v α_v BCE((h_v + 1)/2, (c + 1)/2)  +  BCE((f + 1)/2, (c + 1)/2)  +  λ Σ_v mean((|h_v| - 1)²),
        f = Σ_v α_v h_v                                               (the enhanced, fused code)

    *View-stability evaluation*: after each epoch, each view's stability ``s_v`` is the fraction of its
    training codes ``sgn(h_v)`` within Hamming distance ``r/4`` of their centre; the weights are
    ``α ∝ exp(s_v / τ)`` (stable views count more; ``τ → ∞`` gives uniform weights). *Fusion in
    Hamming space*: an item with all its views is encoded by the weighted bit vote
    ``sgn(Σ_v α_v sgn(h_v))`` (:meth:`transform_fused`); one view alone by ``sgn(h_v)``
    (:meth:`transform`, the same Hamming space).

    This is a compact reading of the paper (its view-relation matrix is reduced to the learned weights
    ``α``; its backbones are CNNs on images, here MLPs on pre-extracted views), on CPU.

    Parameters
    ----------
    n_bits : int, default 64
    hidden : int, default 256
    epochs : int, default 60
    batch_size : int, default 128
    lr : float, default 1e-3
    tau : float, default 0.1
        Temperature of the view weights.
    quant_weight : float, default 1e-3
    n_threads : int, default 2
    verbose : bool, default False
        Progress bar (stderr) while training.
    random_state : int, Generator or None

    Attributes
    ----------
    weights_ : list (per view) of dict str → ndarray
        Each view's MLP parameters.
    input_mean_, input_scale_ : list of (d_v,) float32
    view_weights_ : (n_views,) float64
    view_stability_ : (n_views,) float64 — last epoch's ``s_v``
    centers_ : (n_classes, n_bits) float32
    loss_history_ : (epochs,) float64
    classes_ : ndarray
    n_features_in_ : list of int

    References
    ----------
    C. Yan, B. Gong, Y. Wei and Y. Gao, "Deep Multi-View Enhancement Hashing for Image Retrieval",
    IEEE TPAMI 43(4), 2021 (arXiv 2020); L. Yuan et al., "Central Similarity Quantization", CVPR 2020
    (hash centres).
    """

    _FIT_CALL = "fit(views, y)"
    _n_views = None  # two or more aligned views

    def __init__(self, n_bits=64, *, hidden=256, epochs=60, batch_size=128, lr=1e-3, tau=0.1, quant_weight=1e-3,
                 n_threads=2, verbose=False, random_state=None):
        self.n_bits = n_bits
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.tau = tau
        self.quant_weight = quant_weight
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    def _check_params(self):
        for name in ("n_bits", "hidden", "epochs", "batch_size", "n_threads"):
            check_int_param(getattr(self, name), name, min_val=1)
        for name in ("lr", "tau"):
            check_real_param(getattr(self, name), name, min_val=0, include_boundaries="neither")
        check_real_param(self.quant_weight, "quant_weight", min_val=0)

    def fit(self, views, y=None, pairs=None):
        """Train one encoder per view on aligned views with labels.

        Parameters
        ----------
        views : list of array-like, view ``v`` of shape (n, d_v)
            At least two views, row ``i`` of every view the same item.
        y : array-like of shape (n,) or (n, n_classes), or a list of one array per view
            Class labels or a 0/1 label matrix (per view: see :func:`check_view_labels`).
        pairs : None or (n_pairs, 2) int array / bool mask (two views only)
            Semi-paired data: only the paired rows are used (DMVEH fuses the views of an item, so it
            needs items with every view); their labels are those of view 0's rows.

        Returns
        -------
        self
        """
        from ..hashing.deep.base import _import_torch
        from ..hashing.deep.hashers import _hash_centers

        self._clear_fitted()
        self._check_params()
        views = check_views(views, n_views=None)
        rows = [v.shape[0] for v in views]
        if pairs is not None:
            if len(views) != 2:
                raise ValidationError(f"pairs are for two views; DMVEH with {len(views)} views needs aligned views")
            p = check_pairs(pairs, rows)
            Ys, classes, _ = check_view_labels(y, rows, who="DeepMultiViewEnhancementHashing")
            views = [views[0][p[:, 0]], views[1][p[:, 1]]]
            Y = np.ascontiguousarray(Ys[0][p[:, 0]])
        else:
            if len(set(rows)) != 1:
                raise ValidationError(f"DMVEH needs aligned views (the same rows in every view), got rows {rows}")
            Y, classes, _ = check_supervision(y, rows[0], who="DeepMultiViewEnhancementHashing")
        rng = check_random_state(self.random_state)
        torch = _import_torch()
        try:
            self._train(torch, views, Y, rng, _hash_centers)
            self.classes_ = classes
            self.n_features_in_ = [int(v.shape[1]) for v in views]
        except BaseException:
            self._clear_fitted()
            raise
        return self

    def _make_nets(self, torch, dims):
        with torch.random.fork_rng(devices=[]):  # default layer init draws from the global generator
            return torch.nn.ModuleList([
                torch.nn.Sequential(torch.nn.Linear(d, int(self.hidden)), torch.nn.ReLU(),
                                    torch.nn.Linear(int(self.hidden), int(self.hidden)), torch.nn.ReLU(),
                                    torch.nn.Linear(int(self.hidden), int(self.n_bits)))
                for d in dims])

    def _train(self, torch, views, Y, rng, _hash_centers):
        from .._torch import torch_threads
        from ..hashing.deep._nets import init_weights

        r = int(self.n_bits)
        self.input_mean_ = [v.mean(axis=0).astype(np.float32) for v in views]
        self.input_scale_ = [np.where(v.std(axis=0) > 1e-8, v.std(axis=0), 1.0).astype(np.float32) for v in views]
        Z = [torch.from_numpy(((v - m) / s).astype(np.float32)) for v, m, s in zip(views, self.input_mean_,
                                                                                  self.input_scale_)]
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        self.centers_ = _hash_centers(Y.shape[1], r, rng)
        targets = torch.where(torch.from_numpy(Y) @ torch.from_numpy(self.centers_) >= 0, 1.0, -1.0)
        n_views, n = len(views), Z[0].shape[0]
        alpha = np.full(n_views, 1.0 / n_views)
        losses = []
        with torch_threads(self.n_threads):
            nets = self._make_nets(torch, [z.shape[1] for z in Z])
            init_weights(nets, gen)
            opt = torch.optim.Adam(nets.parameters(), lr=float(self.lr))
            bs = min(int(self.batch_size), n)
            bce = torch.nn.functional.binary_cross_entropy
            with epoch_progress(bool(self.verbose), type(self).__name__, int(self.epochs)) as advance:
                for epoch in range(int(self.epochs)):
                    nets.train()
                    order = torch.randperm(n, generator=gen)
                    a = torch.from_numpy(alpha.astype(np.float32))
                    total, count = 0.0, 0
                    for s in range(0, n, bs):
                        idx = order[s : s + bs]
                        t01 = (targets[idx] + 1) / 2
                        hs = [torch.tanh(net(z[idx])) for net, z in zip(nets, Z)]
                        fused = sum(a[v] * hs[v] for v in range(n_views))
                        loss = bce((fused + 1) / 2, t01)
                        for v, h in enumerate(hs):
                            loss = (loss + a[v] * bce((h + 1) / 2, t01)
                                    + float(self.quant_weight) * ((h.abs() - 1) ** 2).mean())
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        total += float(loss.detach())
                        count += 1
                    losses.append(total / max(count, 1))
                    nets.eval()
                    with torch.no_grad():  # view stability: codes within r/4 bits of their centre
                        stab = np.array([float(((torch.sign(torch.tanh(net(z))) != targets).sum(1) <= r / 4)
                                               .float().mean()) for net, z in zip(nets, Z)])
                    w = np.exp((stab - stab.max()) / float(self.tau))
                    alpha = w / w.sum()
                    advance(epoch + 1, losses[-1])
        self.weights_ = [{k: v.detach().numpy().astype(np.float32, copy=True) for k, v in net.state_dict().items()}
                         for net in nets]
        self.view_weights_ = alpha
        self.view_stability_ = stab
        self.loss_history_ = np.asarray(losses)

    # -- encoding -------------------------------------------------------------------------------------
    def _codes(self, X, view):
        from .._torch import torch_threads
        from ..hashing.deep.base import _import_torch

        torch = _import_torch()
        nets = self._make_nets(torch, self.n_features_in_)
        net = nets[view]
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.weights_[view].items()})
        net.eval()
        Z = ((X - self.input_mean_[view]) / self.input_scale_[view]).astype(np.float32)
        with torch_threads(self.n_threads), torch.no_grad():
            return torch.tanh(net(torch.from_numpy(Z))).numpy()

    def _check_view(self, view) -> int:
        n = len(self.n_features_in_)
        if isinstance(view, bool) or not isinstance(view, numbers.Integral) or not 0 <= view < n:
            raise ValidationError(f"view must be an integer in [0, {n - 1}], got {view!r}")
        return int(view)

    def margins(self, X, view: int = 0) -> np.ndarray:
        """Continuous codes ``h_v(x)`` (n, n_bits) of rows of one view; positive entries are 1 bits."""
        from ..hashing.base import check_vectors_array

        self._check_fitted()
        view = self._check_view(view)
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_[view])
        return self._codes(X, view)

    def transform(self, X, view: int = 0) -> np.ndarray:
        """Packed codes of rows of one view (the shared Hamming space)."""
        return pack(self.margins(X, view) > 0)

    def transform_fused(self, views) -> np.ndarray:
        """One packed code per item from all its views: the ``view_weights_``-weighted vote of their bits."""
        self._check_fitted()
        views = check_views(views, n_views=None, n_features=self.n_features_in_)
        if len(views) != len(self.n_features_in_) or len({v.shape[0] for v in views}) != 1:
            raise ValidationError(f"transform_fused needs the {len(self.n_features_in_)} views with the same rows, "
                                  f"got {len(views)} views with rows {[v.shape[0] for v in views]}")
        vote = sum(w * np.where(self._codes(X, v) > 0, 1.0, -1.0) for v, (w, X) in
                   enumerate(zip(self.view_weights_, views)))
        return pack(vote > 0)

    @property
    def code_bits(self) -> int:
        return int(self.n_bits)


@contextlib.contextmanager
def epoch_progress(verbose: bool, name: str, total: int):
    """Inside: ``advance(epoch, loss)`` updating a progress bar on stderr (a no-op unless ``verbose``)."""
    if not verbose:
        yield lambda *a: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} epochs"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(name, total=int(total))
        yield lambda epoch, loss: bar.update(task, completed=epoch, description=f"{name} loss {loss:.4f}")
