"""Interpretable latent directions of a generative model with a Householder projector.

* :class:`VAE` — a small MLP variational autoencoder of 28×28 images (the generative model);
* :class:`LatentDirections` — ``k`` orthonormal latent directions ``P = (H_1 ⋯ H_m)[:, :k]``
  (:class:`~hashlearn.represent._nets.HouseholderProjector`, the deep hashers' ``rotation="householder"``
  layer) learned so that the change each direction causes is recognisable: a reconstructor sees
  ``G(z)`` and ``G(z + ε p_j)`` and must tell ``j`` (cross-entropy) and ``ε`` (L1), as in Voynov & Babenko's
  unsupervised discovery, with orthogonality given by construction instead of a penalty;
* :func:`image_attributes` — measurable attributes of digit images (ink mass ≈ stroke width, slant, width,
  height), :func:`attribute_change` — the mean change of each attribute (and of a classifier's prediction)
  along each direction.

References: Y. Song, J. Zhang, N. Sebe, W. Wang, "Householder Projector for Unsupervised Latent Semantics
Discovery", ICCV 2023; A. Voynov, A. Babenko, "Unsupervised Discovery of Interpretable Directions in the GAN
Latent Space", ICML 2020; D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..params import check_int_param, check_real_param
from ._common import check_fitted, check_images, mlp, require_torch, seed_of, torch_local_state

__all__ = ["VAE", "LatentDirections", "image_attributes", "attribute_change", "ATTRIBUTES", "random_orthogonal"]

#: Attributes measured by :func:`image_attributes`, then the classifier's prediction (``class``).
ATTRIBUTES = ("ink", "slant", "width", "height", "class")


def image_attributes(images) -> np.ndarray:
    """float64 (n, 4): ink mass (mean intensity, grows with stroke width), slant (shear ``μ_xy / μ_yy`` of the
    intensity's second moments; > 0 leans right), width ``√μ_xx`` and height ``√μ_yy`` (pixels) of images
    float (n, h, w) in [0, 1]."""
    X = np.asarray(images, dtype=np.float64)
    if X.ndim != 3:
        raise ValidationError(f"images must be (n, h, w), got shape {X.shape}")
    n, h, w = X.shape
    mass = X.sum((1, 2)) + 1e-9
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cx = (X * xs).sum((1, 2)) / mass
    cy = (X * ys).sum((1, 2)) / mass
    dx = xs[None] - cx[:, None, None]
    dy = cy[:, None, None] - ys[None]  # up is positive: a right-leaning stroke has positive shear
    mxx = (X * dx * dx).sum((1, 2)) / mass
    myy = (X * dy * dy).sum((1, 2)) / mass
    mxy = (X * dx * dy).sum((1, 2)) / mass
    return np.stack([mass / (h * w), mxy / np.maximum(myy, 1e-9), np.sqrt(mxx), np.sqrt(myy)], axis=1)


def random_orthogonal(dim: int, k: int, rng) -> np.ndarray:
    """(k, dim) orthonormal rows, uniformly (Haar) distributed: QR of a Gaussian matrix with signs fixed."""
    rng = np.random.default_rng(rng)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * np.sign(np.diag(r)))[:, :k].T


def attribute_change(decode, directions, Z, classify=None, shift: float = 3.0, scale=None) -> np.ndarray:
    """Mean absolute change float64 (k, 5) of each attribute of :data:`ATTRIBUTES` along each direction.

    For every latent row ``z`` of Z (n, d) and ``s ∈ {−shift, +shift}``: images ``G(z)`` and ``G(z + s·p_j)``
    (``decode`` maps (m, d) → (m, h, w) float in [0, 1]); the four image attributes' absolute changes are
    divided by ``scale`` (their sd over ``G(Z)`` by default, so 1 = one sd); the ``class`` column is the
    total-variation distance ``½‖q(G(z + s p)) − q(G(z))‖₁`` of the classifier's probabilities
    (``classify`` maps images → (m, classes); NaN without a classifier).
    """
    P = np.asarray(directions, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    if P.ndim != 2 or Z.ndim != 2 or P.shape[1] != Z.shape[1]:
        raise ValidationError(f"directions (k, d) and Z (n, d) do not match: {P.shape}, {Z.shape}")
    base = decode(Z)
    a0 = image_attributes(base)
    sd = np.asarray(scale, dtype=np.float64) if scale is not None else np.maximum(a0.std(0), 1e-12)
    q0 = classify(base) if classify is not None else None
    out = np.zeros((P.shape[0], len(ATTRIBUTES)))
    for j, p in enumerate(P):
        parts, cls = [], []
        for s in (-shift, shift):
            moved = decode(Z + s * p)
            parts.append(np.abs(image_attributes(moved) - a0) / sd)
            if classify is not None:
                cls.append(0.5 * np.abs(classify(moved) - q0).sum(1))
        out[j, :4] = np.mean(np.concatenate(parts), axis=0)
        out[j, 4] = np.mean(np.concatenate(cls)) if cls else np.nan
    return out


class VAE(BaseEstimator):
    """A small MLP VAE of images (n, h, w) in [0, 1] (Bernoulli decoder, N(0, I) prior).

    Parameters
    ----------
    latent : int, default 16 ; hidden : int, default 400 ; epochs : int, default 10 ; batch_size : int, 128
    lr : float, default 1e-3 ; n_threads : int, default 1 ; random_state : int, Generator or None

    Attributes
    ----------
    state_ : dict of float32 arrays ; loss_ : float64 (steps,) — negative ELBO per image ; image_shape_ : (h, w)
    """

    def __init__(self, latent: int = 16, *, hidden: int = 400, epochs: int = 10, batch_size: int = 128,
                 lr: float = 1e-3, n_threads: int = 1, random_state=None):
        self.latent = latent
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.n_threads = n_threads
        self.random_state = random_state

    def _module(self, torch, d: int):
        from ._nets import TinyVAE

        return TinyVAE(int(self.latent), int(self.hidden), d)

    def fit(self, images, y=None):
        """Train on images float (n, h, w) in [0, 1] (uint8 is scaled); ``y`` ignored."""
        X = check_images(images)
        check_int_param(self.latent, "latent", min_val=1)
        check_int_param(self.hidden, "hidden", min_val=1)
        epochs = check_int_param(self.epochs, "epochs", min_val=1)
        bs = check_int_param(self.batch_size, "batch_size", min_val=1)
        if bs > X.shape[0]:
            raise ValidationError(f"batch_size={bs} is more than the {X.shape[0]} images")
        lr = check_real_param(self.lr, "lr", min_val=0, include_boundaries="neither")
        torch = require_torch("VAE")
        seed = seed_of(self.random_state)
        losses = []
        with torch_local_state(torch, seed, check_int_param(self.n_threads, "n_threads", min_val=1)):
            gen = torch.Generator().manual_seed(seed)
            net = self._module(torch, X.shape[1] * X.shape[2])
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            Xt = torch.from_numpy(X.reshape(X.shape[0], -1))
            for _ in range(epochs):
                order = torch.randperm(X.shape[0], generator=gen)
                for i in range(0, X.shape[0] - bs + 1, bs):
                    loss = net.loss(Xt[order[i:i + bs]], gen)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
            self.state_ = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        self.loss_ = np.asarray(losses)
        self.image_shape_ = tuple(X.shape[1:])
        return self

    def module(self):
        """The trained torch module (eval mode)."""
        check_fitted(self, "state_")
        torch = require_torch("VAE")
        net = self._module(torch, int(np.prod(self.image_shape_)))
        net.load_state_dict({k: torch.from_numpy(v) for k, v in self.state_.items()})
        return net.eval()

    def transform(self, images) -> np.ndarray:
        """Posterior means float32 (n, latent)."""
        torch = require_torch("VAE")
        X = check_images(images, min_rows=1)
        net = self.module()
        with torch.no_grad():
            return net.encode(torch.from_numpy(X.reshape(X.shape[0], -1)))[0].numpy()

    def decode(self, Z) -> np.ndarray:
        """Images float32 (n, h, w) in [0, 1] of latent rows Z (n, latent)."""
        torch = require_torch("VAE")
        net = self.module()
        with torch.no_grad():
            out = net.decode(torch.from_numpy(np.asarray(Z, dtype=np.float32)))
        return out.numpy().reshape(-1, *self.image_shape_)


class LatentDirections(BaseEstimator):
    """``n_directions`` orthonormal latent directions of a decoder, learned through a Householder projector.

    Each step draws ``z ~ N(0, I)``, a direction index ``j`` and a shift ``ε`` (|ε| in
    [``min_shift``, ``max_shift``], random sign), decodes ``G(z)`` and ``G(z + ε p_j)``, and trains a
    reconstructor (MLP on the image pair) to predict ``j`` (cross-entropy) and ``ε`` (L1, weight
    ``shift_weight``); the directions ``p_j`` are the columns of a product of ``n_reflections`` Householder
    reflections, so they stay exactly orthonormal. Directions whose changes are easy to tell apart are
    directions that each change something distinct in the image.

    Parameters
    ----------
    n_directions : int, default 10 ; n_reflections : int or None — default the latent size (any orthogonal)
    init : "random" (default: Householder vectors from N(0, I)) or "pca" — start from the top principal
        directions of latent codes ``Z`` given to :meth:`fit` (needs ``n_reflections`` = latent size)
    steps : int, default 3000 ; batch_size : int, default 64 ; lr : float, default 1e-3
    min_shift, max_shift : float, default 0.5, 4.0 ; shift_weight : float, default 0.25 ; hidden : int, 512
    n_threads : int, default 1 ; random_state : int, Generator or None

    Attributes
    ----------
    directions_ : float64 (n_directions, latent) orthonormal rows ; loss_ : float64 (steps,) ;
    accuracy_ : float — the reconstructor's direction accuracy over the last 10 % of steps
    """

    def __init__(self, n_directions: int = 10, *, n_reflections=None, init: str = "random", steps: int = 3000, batch_size: int = 64,
                 lr: float = 1e-3, min_shift: float = 0.5, max_shift: float = 4.0, shift_weight: float = 0.25,
                 hidden: int = 512, n_threads: int = 1, random_state=None):
        self.n_directions = n_directions
        self.n_reflections = n_reflections
        self.init = init
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.min_shift = min_shift
        self.max_shift = max_shift
        self.shift_weight = shift_weight
        self.hidden = hidden
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, vae: VAE, Z=None):
        """Learn directions in the latent space of a fitted :class:`VAE` (its decoder is frozen); ``Z`` float
        (n, latent): latent codes whose principal directions start the search when ``init="pca"``."""
        check_fitted(vae, "state_")
        torch = require_torch("LatentDirections")
        from ._nets import HouseholderProjector

        d = int(vae.latent)
        k = check_int_param(self.n_directions, "n_directions", min_val=1, max_val=d)
        m = d if self.n_reflections is None else check_int_param(self.n_reflections, "n_reflections", min_val=1)
        steps = check_int_param(self.steps, "steps", min_val=1)
        bs = check_int_param(self.batch_size, "batch_size", min_val=2)
        lo = check_real_param(self.min_shift, "min_shift", min_val=0)
        hi = check_real_param(self.max_shift, "max_shift", min_val=lo, include_boundaries="neither")
        w = check_real_param(self.shift_weight, "shift_weight", min_val=0)
        if self.init not in ("random", "pca"):
            raise ValidationError(f"init must be 'random' or 'pca', got {self.init!r}")
        if self.init == "pca":
            Z = np.asarray(Z, dtype=np.float64) if Z is not None else None
            if Z is None or Z.ndim != 2 or Z.shape[1] != d or Z.shape[0] < k or m != d:
                raise ValidationError(f"init='pca' needs latent codes Z (n >= {k}, {d}) and n_reflections = {d}")
            from sklearn.decomposition import PCA

            start = PCA(k).fit(Z).components_
        seed = seed_of(self.random_state)
        F = torch.nn.functional
        losses, hits = [], []
        with torch_local_state(torch, seed, check_int_param(self.n_threads, "n_threads", min_val=1)):
            gen = torch.Generator().manual_seed(seed)
            decoder = vae.module().dec.requires_grad_(False)
            proj = HouseholderProjector(d, k, m)
            proj.reset(gen)
            if self.init == "pca":
                proj.set_directions(start)
            n_pix = int(np.prod(vae.image_shape_))
            rec = mlp(torch, [2 * n_pix, check_int_param(self.hidden, "hidden", min_val=1), k + 1])
            opt = torch.optim.Adam(list(proj.parameters()) + list(rec.parameters()), lr=check_real_param(
                self.lr, "lr", min_val=0, include_boundaries="neither"))
            for _ in range(steps):
                z = torch.randn(bs, d, generator=gen)
                j = torch.randint(k, (bs,), generator=gen)
                eps = (lo + (hi - lo) * torch.rand(bs, generator=gen)) * (
                    torch.randint(2, (bs,), generator=gen) * 2 - 1)
                moved = z + eps[:, None] * proj.directions()[j]
                out = rec(torch.cat([decoder(z), decoder(moved)], dim=1))
                loss = F.cross_entropy(out[:, :k], j) + w * (out[:, k] - eps).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                hits.append(float((out[:, :k].argmax(1) == j).float().mean()))
            with torch.no_grad():
                self.directions_ = proj.directions().double().numpy().copy()
        self.loss_ = np.asarray(losses)
        self.accuracy_ = float(np.mean(hits[-max(1, steps // 10):]))
        return self
