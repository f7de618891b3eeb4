"""Base of the deep supervised hashers: validation, the training loop, early stopping, encoding.

torch is imported inside ``fit`` and ``transform`` only (``pip install 'hashlearn[deep]'``), so importing
this package (the registry does) never needs it.
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np

from ..._torch import require_torch, torch_threads
from ...codes import pack
from ...errors import ValidationError
from .._validation import check_int_param, check_real_param
from ..base import BaseHasher
from ..supervised._labels import LabelledFitMixin

__all__ = ["DeepHasher", "store_params"]

_ROTATIONS = (None, "householder", "linear")
_ENCODE_BATCH = 2048


def store_params(estimator, params: dict) -> None:
    """Set each constructor argument in ``params`` (the constructor's ``locals()``) as an attribute of the same name.

    scikit-learn's convention: ``__init__`` stores its arguments unchanged and does nothing else.
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _import_torch():
    return require_torch("the deep hashers")



class DeepHasher(LabelledFitMixin, BaseHasher):
    """Deep supervised hasher: ``fit(X, y)`` trains a network end to end, ``transform`` packs ``h(x) > 0``.

    The network (:class:`._nets.HashNet`) is an MLP on feature vectors, or a small CNN (two 3×3
    convolution + max-pool stages, 16 and 32 channels, then ``hidden`` units) when ``input_shape =
    (C, H, W)`` is given and ``X`` holds the images flattened in C order (``X`` stays 2-D, so
    scikit-learn tools keep working). It ends in a linear hash layer of ``n_bits`` units, optionally
    followed by a learnable rotation (``rotation="householder"``: a product of Householder reflections,
    exactly orthogonal; ``"linear"``: an unconstrained linear layer) and, with ``csce=True``, by
    CSCE-Net's pieces (cross-scale context gate, per-sample dynamic sign thresholds).

    Training: Adam, mini-batches drawn with a ``torch.Generator`` seeded from ``random_state``, weights
    initialised from the same generator (no global seeding: the caller's torch random state is left
    as it was), at most ``n_threads`` torch threads (restored afterwards). With
    ``validation_fraction > 0``, that share of the labelled rows is held out; after each epoch the mAP of
    their codes against the other training codes is measured, training stops after ``patience``
    epochs without improvement and the best epoch's weights are kept. Subclasses define the loss
    (``_loss``) and optional training-only modules.

    Attributes (common)
    -------------------
    weights_ : dict of str → ndarray
        The network's parameters (``state_dict`` as float32 arrays); rebuilt into a torch module to encode.
    input_mean_, input_scale_ : ndarray of shape (n_features_in_,), float32
        Standardisation of the inputs (MLP); zeros and ones for images (``input_shape`` given).
    loss_history_ : ndarray of shape (n_epochs_run,), float64
        Mean training loss per epoch.
    val_map_history_ : ndarray of shape (n_epochs_run,), float64
        Validation mAP per epoch (empty without validation).
    best_epoch_ : int
        Epoch (1-based) whose weights are kept.
    classes_, multilabel_, n_bits_, n_features_in_
    """

    _min_samples = 2
    _pairwise = False  # whether the method takes the distance option

    # -- estimator contract ---------------------------------------------------------------------------
    def _fit_labelled(self, X, Y, rng) -> None:
        self._check_shape(X.shape[1])
        self._train(X, Y, rng)

    def embed(self, X) -> np.ndarray:
        """Continuous codes ``h(x)`` (n_samples, n_bits_) float32 before the sign; bits are ``h > 0``.

        Differentiable in the input through the torch network (see :meth:`torch_module`), which is what
        attacks on the codes need.
        """
        return self.margins(X).astype(np.float32, copy=False)

    def torch_module(self):
        """The trained network as a torch module in eval mode, mapping standardised inputs to ``h``.

        Inputs must be standardised as ``(X - input_mean_) / input_scale_`` first.
        """
        self._check_fitted()
        return self._net()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

    # -- parameters ---------------------------------------------------------------------------------
    def _check_params(self) -> None:
        super()._check_params()
        for name in ("hidden", "epochs", "batch_size", "n_threads"):
            check_int_param(getattr(self, name), name, min_val=1)
        check_int_param(self.patience, "patience", min_val=1)
        check_real_param(self.lr, "lr", min_val=0, include_boundaries="neither")
        check_real_param(self.weight_decay, "weight_decay", min_val=0)
        check_real_param(self.validation_fraction, "validation_fraction", min_val=0, max_val=0.5,
                         include_boundaries="left")
        if self.rotation not in _ROTATIONS:
            raise ValidationError(f"rotation must be None, 'householder' or 'linear', got {self.rotation!r}")
        if not isinstance(self.csce, (bool, np.bool_)):
            raise ValidationError(f"csce must be True or False, got {self.csce!r}")
        if self._pairwise and self.distance not in ("inner", "euclidean", "cosine", "snr"):
            raise ValidationError(f"distance must be 'inner', 'euclidean', 'cosine' or 'snr', got {self.distance!r}")
        if self.input_shape is not None:
            shape = self.input_shape
            if (not isinstance(shape, (tuple, list)) or len(shape) != 3
                    or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in shape)):
                raise ValidationError(f"input_shape must be (channels, height, width) of positive integers, got {shape!r}")
            if shape[1] < 4 or shape[2] < 4:
                raise ValidationError(f"input_shape {tuple(shape)}: the CNN pools twice by 2, so height and width "
                                      f"must be at least 4")

    def _check_shape(self, d: int) -> None:
        if self.input_shape is not None:
            need = int(np.prod(self.input_shape))
            if need != d:
                raise ValidationError(f"X has {d} features but input_shape {tuple(self.input_shape)} needs "
                                      f"{'×'.join(str(v) for v in self.input_shape)} = {need}")

    # -- training -------------------------------------------------------------------------------------
    def _standardise_fit(self, X):
        if self.input_shape is None:
            mean = X.mean(axis=0)
            scale = X.std(axis=0)
            scale = np.where(scale > 1e-8, scale, 1.0)
        else:
            mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        self.input_mean_ = mean.astype(np.float32)
        self.input_scale_ = scale.astype(np.float32)

    def _make_net(self, torch):
        from ._nets import HashNet

        # torch's layers draw their default initialisation from the global generator: build them inside
        # fork_rng so the caller's random state is left as it was (the weights are then re-drawn from our
        # torch.Generator, or loaded)
        with torch.random.fork_rng(devices=[]):
            return HashNet(self.n_features_in_, self.n_bits_, input_shape=self.input_shape,
                           hidden=int(self.hidden), rotation=self.rotation, csce=bool(self.csce))

    def _train(self, X, Y, rng):
        torch = _import_torch()
        from ._nets import init_weights

        self._standardise_fit(X)
        Z = (X - self.input_mean_) / self.input_scale_
        n = Z.shape[0]
        n_val = int(round(float(self.validation_fraction) * n)) if n >= 20 else 0
        perm = rng.permutation(n)
        val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        with torch_threads(self.n_threads):
            net = self._make_net(torch)
            with torch.random.fork_rng(devices=[]):
                heads = self._make_heads(torch, Y.shape[1])
            init_weights(net, gen)
            if heads is not None:
                init_weights(heads, gen)
            params = list(net.parameters()) + (list(heads.parameters()) if heads is not None else [])
            opt = torch.optim.Adam(params, lr=float(self.lr), weight_decay=float(self.weight_decay))
            Zt, Yt = torch.from_numpy(np.ascontiguousarray(Z[tr])), torch.from_numpy(Y[tr])
            state = self._init_state(torch, Yt, gen)
            losses, val_maps = [], []
            best = (-np.inf, 0, None)
            bs = min(int(self.batch_size), tr.shape[0])
            stale = 0
            with self._progress() as advance:
                for epoch in range(int(self.epochs)):
                    net.train()
                    order = torch.randperm(tr.shape[0], generator=gen)
                    total, count = 0.0, 0
                    for s in range(0, tr.shape[0], bs):
                        idx = order[s : s + bs]
                        if idx.shape[0] < 2 and tr.shape[0] >= 2:
                            continue  # a batch of one row gives no pairs
                        h = net(Zt[idx])
                        loss = self._loss(torch, h, idx, Yt, state, heads)
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        state["step"] += 1
                        total += float(loss.detach())
                        count += 1
                    losses.append(total / max(count, 1))
                    score = None
                    if n_val:
                        score = self._val_map(torch, net, Z[val], Y[val], Zt, Y[tr])
                        val_maps.append(score)
                        if score > best[0] + 1e-6:
                            best, stale = (score, epoch + 1, self._state_numpy(net)), 0
                        else:
                            stale += 1
                    advance(epoch + 1, losses[-1], score)
                    if n_val and stale >= int(self.patience):
                        break
            if best[2] is None:
                best = (np.nan, len(losses), self._state_numpy(net))
        self.weights_ = best[2]
        self.best_epoch_ = int(best[1])
        self.loss_history_ = np.asarray(losses, dtype=np.float64)
        self.val_map_history_ = np.asarray(val_maps, dtype=np.float64)

    def _val_map(self, torch, net, Zv, Yv, Zt, Ytr) -> float:
        from ...metrics import hamming_ranking, mean_average_precision, relevance_from_labels

        net.eval()
        with torch.no_grad():
            cv = np.concatenate([net(torch.from_numpy(np.ascontiguousarray(Zv[s : s + _ENCODE_BATCH]))).numpy()
                                 for s in range(0, Zv.shape[0], _ENCODE_BATCH)]) > 0
            ct = np.concatenate([net(Zt[s : s + _ENCODE_BATCH]).numpy()
                                 for s in range(0, Zt.shape[0], _ENCODE_BATCH)]) > 0
        from ...codes import hamming_distances

        D = hamming_distances(pack(cv), pack(ct), n_bits=self.n_bits_)
        lq = Yv if self.multilabel_ else np.argmax(Yv, axis=1)
        lb = Ytr if self.multilabel_ else np.argmax(Ytr, axis=1)
        return float(mean_average_precision(relevance_from_labels(lq, lb, hamming_ranking(D))))

    @staticmethod
    def _state_numpy(net) -> dict:
        return {k: v.detach().numpy().astype(np.float32, copy=True) for k, v in net.state_dict().items()}

    @contextlib.contextmanager
    def _progress(self):
        if not self.verbose:
            yield lambda *a: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} epochs"), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(type(self).__name__, total=int(self.epochs))

            def advance(epoch, loss, score):
                extra = "" if score is None else f" val mAP {score:.3f}"
                bar.update(task, completed=epoch, description=f"{type(self).__name__} loss {loss:.4f}{extra}")

            yield advance

    # -- hooks of the methods --------------------------------------------------------------------------
    def _make_heads(self, torch, n_classes):
        return None

    def _init_state(self, torch, Yt, gen) -> dict:
        return {"step": 0}

    def _loss(self, torch, h, idx, Yt, state, heads):
        raise NotImplementedError

    # -- encoding -------------------------------------------------------------------------------------
    def _net(self):
        """A torch module rebuilt from ``weights_`` (milliseconds; not cached, so encoding changes no state)."""
        torch = _import_torch()
        net = self._make_net(torch)
        net.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in self.weights_.items()})
        net.eval()
        return net

    def _project(self, X: np.ndarray) -> np.ndarray:
        torch = _import_torch()
        net = self._net()
        Z = ((X - self.input_mean_) / self.input_scale_).astype(np.float32)
        out = np.empty((Z.shape[0], self.n_bits_), dtype=np.float32)
        with torch_threads(self.n_threads), torch.no_grad():
            for s in range(0, Z.shape[0], _ENCODE_BATCH):
                out[s : s + _ENCODE_BATCH] = net(torch.from_numpy(np.ascontiguousarray(Z[s : s + _ENCODE_BATCH]))).numpy()
        return out
