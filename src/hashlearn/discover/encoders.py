"""A small convolutional encoder for few-shot episodes, trained with the prototypical loss (torch)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..params import check_int_param, check_real_param
from ._common import check_fitted, forward_in_batches, optimise, require_torch, torch_local_state
from .fewshot import sample_episode

__all__ = ["ProtoNetEncoder"]


def _conv_net(torch, channels: int, n_blocks: int):
    nn = torch.nn
    layers, prev = [], 1
    for _ in range(n_blocks):
        layers += [nn.Conv2d(prev, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
        prev = channels
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


class ProtoNetEncoder(BaseEstimator):
    """Conv-4 style image encoder trained episodically with the prototypical-network loss.

    ``n_blocks`` blocks of 3×3 convolution, batch norm, ReLU and 2×2 max-pooling map a (h, w) image
    to a vector. Training draws ``train_way``-way ``train_shot``-shot episodes (``n_query`` queries per
    class) from the labelled images and minimises the cross-entropy of the softmax over negative
    squared distances to the class prototypes (support means).

    Parameters
    ----------
    channels : int, default 32
    n_blocks : int, default 4
    episodes : int, default 2000
    train_way : int, default 20
    train_shot : int, default 1
    n_query : int, default 5
    lr : float, default 1e-3
        Adam learning rate, halved every ``episodes // 4`` episodes.
    n_threads : int, default 1
    random_state : int, Generator or None

    Attributes
    ----------
    state_ : dict of float32 arrays — the network's weights (torch state dict as numpy)
    loss_ : float64 (episodes,) — training loss per episode
    image_shape_ : tuple (h, w)

    References
    ----------
    J. Snell, K. Swersky, R. Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017;
    O. Vinyals et al., "Matching Networks for One Shot Learning", 2016 (the Conv-4 backbone).
    """

    def __init__(self, channels: int = 32, *, n_blocks: int = 4, episodes: int = 2000, train_way: int = 20,
                 train_shot: int = 1, n_query: int = 5, lr: float = 1e-3, n_threads: int = 1, random_state=None):
        self.channels = channels
        self.n_blocks = n_blocks
        self.episodes = episodes
        self.train_way = train_way
        self.train_shot = train_shot
        self.n_query = n_query
        self.lr = lr
        self.n_threads = n_threads
        self.random_state = random_state

    @staticmethod
    def _check_images(images) -> np.ndarray:
        X = np.asarray(images, dtype=np.float32)
        if X.ndim != 3 or X.shape[0] == 0:
            raise ValidationError(f"images must be an array (n, h, w) with n >= 1, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValidationError("images contain NaN or infinite values")
        return X

    def fit(self, images, labels, *, progress: bool = False):
        """Train on ``images`` float (n, h, w) with class ``labels`` int (n,); returns self."""
        from sklearn.utils import check_random_state

        X = self._check_images(images)
        y = np.asarray(labels)
        if y.shape != (X.shape[0],):
            raise ValidationError(f"labels must have {X.shape[0]} entries, got shape {y.shape}")
        channels = check_int_param(self.channels, "channels", min_val=1)
        n_blocks = check_int_param(self.n_blocks, "n_blocks", min_val=1)
        episodes = check_int_param(self.episodes, "episodes", min_val=1)
        way = check_int_param(self.train_way, "train_way", min_val=2)
        shot = check_int_param(self.train_shot, "train_shot", min_val=1)
        n_query = check_int_param(self.n_query, "n_query", min_val=1)
        lr = check_real_param(self.lr, "lr", min_val=0, include_boundaries="neither")
        torch = require_torch("ProtoNetEncoder")
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        rng = np.random.default_rng(seed)
        sample_episode(y, way, shot, n_query, rng)  # validates the episode shape against the data up front
        with torch_local_state(torch, seed, check_int_param(self.n_threads, "n_threads", min_val=1)):
            net = _conv_net(torch, channels, n_blocks)
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, episodes // 4), gamma=0.5)
            Xt = torch.from_numpy(X)
            target = torch.from_numpy(np.repeat(np.arange(way), n_query))

            def episode_loss():
                s, q = sample_episode(y, way, shot, n_query, rng)
                f = net(Xt[np.concatenate([s.ravel(), q.ravel()])][:, None])
                fs, fq = f[: s.size].reshape(way, shot, -1).mean(1), f[s.size:]
                return torch.nn.functional.cross_entropy(-torch.cdist(fq, fs) ** 2, target)

            net.train()
            self.loss_ = optimise(torch, opt, sched, episodes, episode_loss, desc="protonet", progress=progress)
            self.state_ = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        self.image_shape_ = tuple(X.shape[1:])
        return self

    def transform(self, images, batch_size: int = 1024) -> np.ndarray:
        """Features float32 (n, channels · (h / 2**n_blocks) · (w / 2**n_blocks)) of images (n, h, w)."""
        check_fitted(self, "state_")
        X = self._check_images(images)
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValidationError(f"images are {X.shape[1:]} but the encoder was trained on {self.image_shape_}")
        torch = require_torch("ProtoNetEncoder")
        net = _conv_net(torch, int(self.channels), int(self.n_blocks))
        net.load_state_dict({k: torch.from_numpy(v) for k, v in self.state_.items()})
        return forward_in_batches(torch, net, X, batch_size, lambda b: b[:, None])
