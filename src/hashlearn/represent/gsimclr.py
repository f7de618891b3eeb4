"""G-SimCLR: SimCLR whose negatives exclude images of the same pseudo-class.

A denoising autoencoder is trained on the images, k-means on its latent space gives pseudo-labels, and the
NT-Xent loss of SimCLR drops from each anchor's denominator the other images of its pseudo-class (both
views): they are probably the same class, so pushing them away is the false-negative effect the paper
removes. (The paper builds batches with distinct pseudo-labels; masking them gives the same loss for any
batch size.) ``guided=False`` is plain SimCLR with everything else equal.

References: S. Chakraborty, A. R. Gosthipaty, S. Paul, "G-SimCLR: Self-Supervised Contrastive Learning with
Guided Projection via Pseudo Labelling", ICDM Workshops 2020; T. Chen, S. Kornblith, M. Norouzi, G. Hinton,
"A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020; P. Vincent et al.,
"Extracting and Composing Robust Features with Denoising Autoencoders", ICML 2008.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..params import check_int_param, check_real_param
from ._common import check_fitted, check_images, mlp, require_torch, seed_of, torch_local_state

__all__ = ["nt_xent_mask", "GSimCLR"]


def nt_xent_mask(pseudo_labels=None, batch_size: int | None = None) -> np.ndarray:
    """bool (2b, 2b): entries excluded from the NT-Xent denominators of a batch of b images, two views each
    (rows/columns ``0..b−1`` first views, ``b..2b−1`` second views).

    Always the diagonal (an anchor against itself); with ``pseudo_labels`` int (b,), also every pair of
    different images with the same pseudo-label, in either view. The positive pair (i, i + b) is kept.
    """
    if pseudo_labels is None:
        b = check_int_param(batch_size, "batch_size", min_val=1)
        return np.eye(2 * b, dtype=bool)
    y = np.asarray(pseudo_labels)
    if y.ndim != 1 or y.size == 0:
        raise ValidationError(f"pseudo_labels must be a non-empty 1-D array, got shape {y.shape}")
    b = y.size
    same = y[:, None] == y[None, :]
    np.fill_diagonal(same, False)  # different images only: the partner view stays the positive
    mask = np.tile(same, (2, 2))
    mask[np.arange(2 * b), np.arange(2 * b)] = True
    return mask


def _dae_latent(torch, X, gen, latent: int, epochs: int, bs: int, noise: float, lr: float):
    """Train an MLP denoising autoencoder (784 → 512 → latent → 512 → 784) on X (n, d); latent codes (n, latent)."""
    enc, dec = mlp(torch, [X.shape[1], 512, latent]), mlp(torch, [latent, 512, X.shape[1]])
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=lr)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=gen)
        for i in range(0, X.shape[0] - bs + 1, bs):
            x = X[order[i:i + bs]]
            noisy = (x + noise * torch.randn(x.shape, generator=gen)).clamp(0, 1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(dec(enc(noisy)), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    enc.eval()
    with torch.no_grad():
        return np.concatenate([enc(X[i:i + 4096]).numpy() for i in range(0, X.shape[0], 4096)]), losses


class GSimCLR(BaseEstimator):
    """SimCLR with a small CNN on (n, 28, 28) images; with ``guided``, same-pseudo-class negatives are masked.

    Parameters
    ----------
    guided : bool, default True — False gives plain SimCLR
    n_pseudo : int, default 10 — k of the k-means on the DAE latent space
    dim : int, default 64 — representation size ; proj : int, default 32 — projection-head size
    epochs : int, default 5 ; batch_size : int, default 256 ; temperature : float, default 0.5
    lr : float, default 1e-3 (Adam, cosine-decayed)
    dae_latent : int, default 32 ; dae_epochs : int, default 5 ; dae_noise : float, default 0.3
    max_rot, max_shift, noise : augmentation (random affine + Gaussian noise), defaults 15, 0.12, 0.05
    n_threads : int, default 1 ; random_state : int, Generator or None

    Attributes
    ----------
    state_ : dict of float32 arrays — the encoder ; loss_ : float64 (steps,) ;
    pseudo_labels_ : int64 (n,) or None ; dae_loss_ : float64 (dae steps,) or None
    """

    def __init__(self, guided: bool = True, *, n_pseudo: int = 10, dim: int = 64, proj: int = 32, epochs: int = 5,
                 batch_size: int = 256, temperature: float = 0.5, lr: float = 1e-3, dae_latent: int = 32,
                 dae_epochs: int = 5, dae_noise: float = 0.3, max_rot: float = 15.0, max_shift: float = 0.12,
                 noise: float = 0.05, n_threads: int = 1, random_state=None):
        self.guided = guided
        self.n_pseudo = n_pseudo
        self.dim = dim
        self.proj = proj
        self.epochs = epochs
        self.batch_size = batch_size
        self.temperature = temperature
        self.lr = lr
        self.dae_latent = dae_latent
        self.dae_epochs = dae_epochs
        self.dae_noise = dae_noise
        self.max_rot = max_rot
        self.max_shift = max_shift
        self.noise = noise
        self.n_threads = n_threads
        self.random_state = random_state

    def _check(self, X) -> dict:
        if X.shape[1:] != (28, 28):
            raise ValidationError(f"GSimCLR's CNN takes 28×28 images, got {X.shape[1:]}")
        bs = check_int_param(self.batch_size, "batch_size", min_val=2)
        if bs > X.shape[0]:
            raise ValidationError(f"batch_size={bs} is more than the {X.shape[0]} images (less than one batch)")
        k = check_int_param(self.n_pseudo, "n_pseudo", min_val=1)
        if self.guided and k > X.shape[0]:
            raise ValidationError(f"n_pseudo={k} clusters is more than the {X.shape[0]} images")
        return {"bs": bs, "k": k, "epochs": check_int_param(self.epochs, "epochs", min_val=1),
                "tau": check_real_param(self.temperature, "temperature", min_val=0, include_boundaries="neither"),
                "lr": check_real_param(self.lr, "lr", min_val=0, include_boundaries="neither"),
                "dim": check_int_param(self.dim, "dim", min_val=1), "proj": check_int_param(self.proj, "proj",
                                                                                             min_val=1)}

    def _pseudo_labels(self, torch, Xt, gen, p, seed):
        from sklearn.cluster import KMeans

        lat, losses = _dae_latent(torch, Xt.flatten(1), gen, check_int_param(self.dae_latent, "dae_latent", min_val=1),
                                  check_int_param(self.dae_epochs, "dae_epochs", min_val=1), p["bs"],
                                  check_real_param(self.dae_noise, "dae_noise", min_val=0), p["lr"])
        labels = KMeans(p["k"], n_init=4, random_state=seed).fit_predict(lat).astype(np.int64)
        return labels, np.asarray(losses)

    def fit(self, images, y=None):
        """Train on images float (n, 28, 28) in [0, 1] (uint8 is scaled); ``y`` ignored (no labels used)."""
        from ..discover.labels import _augment
        from ._nets import small_cnn

        X = check_images(images)
        p = self._check(X)
        torch = require_torch("GSimCLR")
        F = torch.nn.functional
        seed = seed_of(self.random_state)
        with torch_local_state(torch, seed, check_int_param(self.n_threads, "n_threads", min_val=1)):
            gen = torch.Generator().manual_seed(seed)
            Xt = torch.from_numpy(X)
            self.pseudo_labels_, self.dae_loss_ = (self._pseudo_labels(torch, Xt, gen, p, seed) if self.guided
                                                   else (None, None))
            enc = small_cnn(p["dim"])
            head = mlp(torch, [p["dim"], p["dim"], p["proj"]])
            params = list(enc.parameters()) + list(head.parameters())
            steps_per_epoch = X.shape[0] // p["bs"]
            opt = torch.optim.Adam(params, lr=p["lr"])
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p["epochs"] * steps_per_epoch)
            b = p["bs"]
            target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
            losses = []
            for _ in range(p["epochs"]):
                order = torch.randperm(X.shape[0], generator=gen)
                for s in range(steps_per_epoch):
                    idx = order[s * b:(s + 1) * b]
                    views = torch.cat([_augment(torch, Xt[idx], gen, self.max_rot, self.max_shift, self.noise)
                                       for _ in range(2)])
                    z = F.normalize(head(enc(views[:, None])), dim=1)
                    pl = None if self.pseudo_labels_ is None else self.pseudo_labels_[idx.numpy()]
                    mask = torch.from_numpy(nt_xent_mask(pl, b))
                    loss = F.cross_entropy((z @ z.T / p["tau"]).masked_fill(mask, float("-inf")), target)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    losses.append(float(loss.detach()))
            self.state_ = {k: v.detach().numpy().copy() for k, v in enc.state_dict().items()}
        self.loss_ = np.asarray(losses)
        return self

    def transform(self, images, batch_size: int = 2048) -> np.ndarray:
        """Representations float32 (n, dim) (encoder output, before the projection head)."""
        from ._nets import small_cnn

        check_fitted(self, "state_")
        X = check_images(images, min_rows=1)
        torch = require_torch("GSimCLR")
        enc = small_cnn(int(self.dim))
        enc.load_state_dict({k: torch.from_numpy(v) for k, v in self.state_.items()})
        enc.eval()
        with torch.no_grad():
            return np.concatenate([enc(torch.from_numpy(X[i:i + batch_size])[:, None]).numpy()
                                   for i in range(0, X.shape[0], batch_size)]).astype(np.float32)
