"""Targeted attacks on deep hashers: ProS-GAN, and the baselines P2P, DHTA and random noise; t-mAP.

A *targeted* attack perturbs a query image ``x`` within an L∞ ball of radius ``eps`` (pixel units, data
in [0, 1]) so that its hash code retrieves database items of an attacker-chosen target label ``t``.
Its success is the targeted mAP (:func:`targeted_map`): the mAP of the attacked query's Hamming ranking
with "relevant" meaning "has label t".

* :class:`ProSGAN` — "Prototype-supervised Adversarial Network for Targeted Attack of Deep Hashing"
  (Wang et al., CVPR 2021): a prototype network maps a label to a target code prototype; a generator
  maps ``(x, t)`` to a bounded perturbation in one forward pass, trained with the Hamming loss to the
  prototype, a reconstruction loss and a discriminator (adversarial) loss.
* :func:`pgd_code_attack` — iterative sign-gradient (PGD) attack toward given target codes: P2P (one
  random target-class item's code, Bai et al., "Targeted Attack for Deep Hashing based Retrieval",
  ECCV 2020) and DHTA (the component-wise majority code of ``n_anchor`` target-class items, same paper)
  differ only in the target code (:func:`p2p_codes`, :func:`dhta_codes`).
* :func:`adversarial_finetune` — the defence: fine-tune the hasher on generator examples mixed with
  clean ones (ProS-GAN's adversarial training).

The attacked model is a fitted deep hasher of :mod:`hashlearn.hashing.deep` (``torch_module()`` gives
the network, inputs standardised with ``input_mean_`` / ``input_scale_``).
"""

from __future__ import annotations

import copy

import numpy as np

from ..errors import NotFittedError, ValidationError
from ..hashing.base import check_random_state
from ._common import check_eps, check_images, check_targets, import_torch, torch_generator, torch_threads

__all__ = ["HasherFunction", "targeted_map", "retrieval_map", "p2p_codes", "dhta_codes", "pgd_code_attack",
           "noise_attack", "ProSGAN", "adversarial_finetune"]


# --------------------------------------------------------------------------------------------------
# the attacked hasher as a differentiable function of the pixels
# --------------------------------------------------------------------------------------------------


class HasherFunction:
    """A fitted deep hasher as ``h(x)``: pixels (n, d) float32 torch tensor → continuous codes (n, n_bits).

    ``scale`` is the median ``|h|`` over ``X_ref`` (the database): the attack losses use ``tanh(h / scale)``
    so that every attack sees codes on the same scale. The network's weights are frozen.
    """

    def __init__(self, hasher, X_ref=None):
        torch = import_torch()
        if not hasattr(hasher, "weights_"):
            raise NotFittedError(f"{type(hasher).__name__} is not fitted: call fit(X, y) before attacking it")
        self.hasher = hasher
        self.net = hasher.torch_module()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.mean = torch.from_numpy(np.asarray(hasher.input_mean_, dtype=np.float32))
        self.inv_scale = torch.from_numpy(1.0 / np.asarray(hasher.input_scale_, dtype=np.float32))
        self.n_bits = int(hasher.n_bits_)
        self.scale = 1.0
        if X_ref is not None:
            self.scale = float(max(np.median(np.abs(self.codes(X_ref, binary=False))), 1e-3))

    def __call__(self, x):
        return self.net((x - self.mean) * self.inv_scale)

    def codes(self, X, *, binary: bool = True, batch: int = 2048) -> np.ndarray:
        """Codes of numpy pixels: ±1 int8 (binary) or the continuous ``h`` float32, (n, n_bits)."""
        torch = import_torch()
        out = []
        with torch.no_grad():
            for s in range(0, X.shape[0], batch):
                out.append(self(torch.from_numpy(np.ascontiguousarray(X[s : s + batch], dtype=np.float32))).numpy())
        h = np.concatenate(out) if out else np.zeros((0, self.n_bits), np.float32)
        return np.where(h > 0, 1, -1).astype(np.int8) if binary else h


def _hamming_pm1(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Hamming distances between ±1 codes (n, r) and (m, r) → int32 (n, m)."""
    r = A.shape[1]
    return ((r - A.astype(np.int32) @ B.astype(np.int32).T) // 2).astype(np.int32)


def retrieval_map(query_codes, db_codes, relevant_labels, db_labels) -> float:
    """mAP of Hamming rankings (±1 codes) with relevant = "database label equals the query's relevant label".

    Parameters
    ----------
    query_codes : ndarray (n, r) of ±1; db_codes : ndarray (m, r) of ±1
    relevant_labels : ndarray (n,) int — the label counted as relevant for each query
    db_labels : ndarray (m,) int

    Ties in Hamming distance are broken by database index (:func:`hashlearn.metrics.hamming_ranking`);
    AP over the whole ranking, normalised by the relevant items retrieved (the hashing convention).
    """
    from ..metrics import hamming_ranking, mean_average_precision, relevance_from_labels

    D = _hamming_pm1(np.asarray(query_codes), np.asarray(db_codes))
    return float(mean_average_precision(relevance_from_labels(np.asarray(relevant_labels), np.asarray(db_labels),
                                                              hamming_ranking(D))))


def targeted_map(adv_codes, db_codes, targets, db_labels) -> float:
    """t-mAP: :func:`retrieval_map` of the attacked queries' codes with the *target* label as relevant."""
    targets = check_targets(targets, db_labels, n_queries=np.asarray(adv_codes).shape[0])
    return retrieval_map(adv_codes, db_codes, targets, db_labels)


# --------------------------------------------------------------------------------------------------
# iterative baselines
# --------------------------------------------------------------------------------------------------


def p2p_codes(targets, db_codes, db_labels, random_state=None) -> np.ndarray:
    """P2P target codes: for each target label the code of one random database item of that label (n, r) ±1."""
    rng = check_random_state(random_state)
    targets = check_targets(targets, db_labels)
    db_labels = np.asarray(db_labels)
    out = np.empty((targets.size, db_codes.shape[1]), dtype=np.int8)
    for i, t in enumerate(targets):
        pool = np.flatnonzero(db_labels == t)
        out[i] = db_codes[pool[rng.integers(pool.size)]]
    return out


def dhta_codes(targets, db_codes, db_labels, n_anchor: int = 9, random_state=None) -> np.ndarray:
    """DHTA target codes: the bit-wise majority (sign of the sum, ties → +1) of ``n_anchor`` random
    database items of the target label, drawn without replacement (all of them if fewer); (n, r) ±1."""
    rng = check_random_state(random_state)
    targets = check_targets(targets, db_labels)
    db_labels = np.asarray(db_labels)
    out = np.empty((targets.size, db_codes.shape[1]), dtype=np.int8)
    for i, t in enumerate(targets):
        pool = np.flatnonzero(db_labels == t)
        pick = rng.choice(pool, size=min(int(n_anchor), pool.size), replace=False)
        out[i] = np.where(db_codes[pick].astype(np.int32).sum(0) >= 0, 1, -1)
    return out


def _clip_straight_through(z):
    """``clip(z, 0, 1)`` forward, identity backward: a generator whose perturbation leaves [0, 1] on a pixel
    still learns which way that pixel should move (the plain clip's gradient is 0 there, and on MNIST's
    black background half of a random initial perturbation would never learn)."""
    return z + (z.clamp(0.0, 1.0) - z).detach()


def _hamming_loss(torch, h, target, scale):
    """Relaxed Hamming distance to the target codes: ``mean softplus(-b_t ⊙ h / scale)`` over bits and rows.

    Each disagreeing bit contributes about ``|h| / scale`` and each agreeing bit about 0, so the gradient
    does not vanish on bits that are far on the wrong side (it does with ``tanh(h)``, the papers' relaxation
    ``½ (1 - <b_t, tanh(h)> / r)``, when the hasher's outputs are large).
    """
    return torch.nn.functional.softplus(-target * h / scale).mean()


def pgd_code_attack(f: HasherFunction, X, target_codes, eps: float, *, n_iter: int = 100, step=None,
                    batch: int = 256, n_threads: int = 1) -> np.ndarray:
    """L∞ PGD toward target codes: ``n_iter`` steps ``δ ← Π(δ - step · sign(∇ L_ham))`` from ``δ = 0``.

    Parameters
    ----------
    f : HasherFunction
    X : ndarray (n, d) float32 in [0, 1] — clean queries
    target_codes : ndarray (n, r) of ±1 — from :func:`p2p_codes` or :func:`dhta_codes`
    eps : float in (0, 1] — L∞ budget; the projection Π keeps ``|δ| <= eps`` and ``x + δ`` in [0, 1]
    step : float, default ``2.5 eps / n_iter`` (Madry et al.'s rule)

    Returns
    -------
    X_adv : ndarray (n, d) float32
    """
    torch = import_torch()
    eps = check_eps(eps)
    X = check_images(X)
    T = np.asarray(target_codes, dtype=np.float32)
    if T.shape != (X.shape[0], f.n_bits):
        raise ValidationError(f"target_codes must have shape ({X.shape[0]}, {f.n_bits}), got {T.shape}")
    step = 2.5 * eps / int(n_iter) if step is None else float(step)
    out = np.empty_like(X)
    with torch_threads(n_threads):
        for s in range(0, X.shape[0], batch):
            x = torch.from_numpy(X[s : s + batch])
            t = torch.from_numpy(T[s : s + batch])
            delta = torch.zeros_like(x, requires_grad=True)
            for _ in range(int(n_iter)):
                loss = _hamming_loss(torch, f(x + delta), t, f.scale)
                (grad,) = torch.autograd.grad(loss, delta)
                with torch.no_grad():
                    delta -= step * grad.sign()
                    delta.clamp_(-eps, eps)
                    delta.copy_((x + delta).clamp(0.0, 1.0) - x)
            out[s : s + batch] = (x + delta.detach()).numpy()
    return out


def noise_attack(X, eps: float, random_state=None) -> np.ndarray:
    """Baseline: uniform noise in ``[-eps, eps]`` per pixel, clipped to [0, 1]."""
    eps = check_eps(eps)
    X = check_images(X)
    rng = check_random_state(random_state)
    return np.clip(X + rng.uniform(-eps, eps, size=X.shape).astype(np.float32), 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# ProS-GAN
# --------------------------------------------------------------------------------------------------


def _modules(torch, n_classes: int, n_bits: int, shape):
    nn = torch.nn
    c, h, w = shape

    class PrototypeNet(nn.Module):
        """Label (one-hot) → prototype code ``tanh(·)`` (r) and a classifier of the prototype (its label)."""

        def __init__(self):
            super().__init__()
            self.encode = nn.Sequential(nn.Linear(n_classes, 256), nn.ReLU(), nn.Linear(256, n_bits))
            self.classify = nn.Linear(n_bits, n_classes)

        def forward(self, onehot):
            p = torch.tanh(self.encode(onehot))
            return p, self.classify(p)

    class Generator(nn.Module):
        """``(x, t)`` → ``eps · tanh(·)``: an encoder–decoder on the image with the target's prototype code
        as an extra input map (the paper feeds the prototype's feature map), plus a learned full-resolution
        template per target label added before the ``tanh`` (zero at the start: a target-wide component
        that the encoder–decoder corrects per image; an addition to the paper's generator)."""

        def __init__(self, eps):
            super().__init__()
            self.eps = eps
            self.label_map = nn.Linear(n_bits, h * w)
            self.template = nn.Parameter(torch.zeros(n_classes, c * h * w))
            self.enc = nn.Sequential(nn.Conv2d(c + 1, 32, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())
            self.dec = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(32, c, 3, padding=1))

        def forward(self, x, proto, target):
            img = x.view(x.shape[0], c, h, w)
            m = self.label_map(proto).view(x.shape[0], 1, h, w)
            d = self.dec(self.enc(torch.cat([img, m], dim=1))).reshape(x.shape[0], -1) + self.template[target]
            return self.eps * torch.tanh(d)

    class Discriminator(nn.Module):
        """Real clean images vs generated adversarial ones (one logit)."""

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(c, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                     nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                     nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), 1))

        def forward(self, x):
            return self.net(x.view(x.shape[0], c, h, w)).squeeze(1)

    return PrototypeNet, Generator, Discriminator


def _build(torch, gen, n_classes, n_bits, shape, eps):
    """The three networks, built inside ``fork_rng`` (the caller's random state is left as it was) and
    initialised from ``gen``."""
    from ..hashing.deep._nets import init_weights

    with torch.random.fork_rng(devices=[]):
        P, G, D = _modules(torch, n_classes, n_bits, shape)
        nets = (P(), G(eps), D())
    for net in nets:
        init_weights(net, gen)
    return nets


class ProSGAN:
    """ProS-GAN targeted attack on a deep hasher; one generator forward pass per query once trained.

    Parameters
    ----------
    eps : float, default 0.1
        L∞ budget in pixel units (data in [0, 1]); the generator's output is ``eps · tanh(·)``, so every
        perturbation satisfies ``|δ| <= eps``, and ``x + δ`` is clipped to [0, 1].
    epochs : int, default 3
        Generator epochs over the training images (a random target label per image and epoch).
    proto_steps : int, default 300
        Training steps of the prototype network.
    batch_size : int, default 32
    lr : float, default 3e-3
        Adam's learning rate (generator's networks, discriminator, prototype network); 1e-2 moved the
        codes faster at ε = 0.3 but diverged at ε = 0.2, 1e-3 was slow.
    template_lr : float, default 0.05
        Adam's learning rate of the generator's per-target templates.
    rec_weight : float, default 1.0
        Weight of the reconstruction loss ``mean((x' - x)²)``.
    adv_weight : float, default 0.0
        Weight of the generator's adversarial loss (fool the discriminator, which is trained all the
        same and whose loss is recorded). A departure from the paper: with 0.1 or 0.01 the discriminator,
        which separates perturbed MNIST digits easily, kept the generator from moving the codes at all
        (t-mAP at the no-attack level, one CPU thread, a few epochs).
    input_shape : tuple (C, H, W), default (1, 28, 28)
    n_threads : int, default 1
    random_state : int, Generator or None

    Attributes
    ----------
    prototypes_ : ndarray (n_classes, n_bits) int8 — sign of the prototype code of each class
    classes_ : ndarray (n_classes,) int64
    generator_ : torch module (eval mode)
    loss_history_ : list of dict — mean losses per generator epoch
    prototype_map_ : float — mAP of the prototypes as queries against the database with their own label

    References
    ----------
    X. Wang, Z. Zhang, B. Wu, F. Shen and G. Lu, "Prototype-supervised Adversarial Network for Targeted
    Attack of Deep Hashing", CVPR 2021.
    """

    def __init__(self, eps=0.1, *, epochs=3, proto_steps=300, batch_size=32, lr=3e-3, template_lr=0.05, rec_weight=1.0,
                 adv_weight=0.0, input_shape=(1, 28, 28), n_threads=1, random_state=None):
        self.eps = eps
        self.epochs = epochs
        self.proto_steps = proto_steps
        self.batch_size = batch_size
        self.lr = lr
        self.template_lr = template_lr
        self.rec_weight = rec_weight
        self.adv_weight = adv_weight
        self.input_shape = input_shape
        self.n_threads = n_threads
        self.random_state = random_state

    # -- training ----------------------------------------------------------------------------------
    def fit(self, hasher, X, y, db_codes=None, db_labels=None):
        """Train the prototype network on the database codes, then the generator on images ``X``.

        Parameters
        ----------
        hasher : fitted deep hasher (or a :class:`HasherFunction`)
        X : ndarray (n, d) float32 in [0, 1] — training images of the attacker (flattened)
        y : ndarray (n,) int — their labels (the classes a target may be drawn from)
        db_codes, db_labels : the database's ±1 codes (m, r) and labels (m,); default: the codes of X and y
        """
        torch = import_torch()
        from ..params import check_int_param

        eps = check_eps(self.eps)
        for name in ("epochs", "proto_steps", "batch_size"):
            check_int_param(getattr(self, name), name, min_val=1)
        X = check_images(X)
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (X.shape[0],):
            raise ValidationError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        f = hasher if isinstance(hasher, HasherFunction) else HasherFunction(hasher, X)
        if db_codes is None:
            db_codes, db_labels = f.codes(X), y
        rng = check_random_state(self.random_state)
        gen = torch_generator(rng)
        self.classes_ = np.unique(np.asarray(db_labels, dtype=np.int64))
        self.f_ = f
        with torch_threads(self.n_threads):
            pnet, gnet, dnet = _build(torch, gen, self.classes_.size, f.n_bits, tuple(self.input_shape), eps)
            self._fit_prototypes(torch, pnet, np.asarray(db_codes), np.asarray(db_labels), gen)
            self._fit_generator(torch, gnet, dnet, X, y, gen)
        return self

    def _onehot(self, torch, labels):
        idx = np.searchsorted(self.classes_, np.asarray(labels))
        return torch.nn.functional.one_hot(torch.from_numpy(idx), self.classes_.size).float()

    def _fit_prototypes(self, torch, pnet, db_codes, db_labels, gen):
        """Pairwise logistic loss of prototypes vs database codes + classification + quantisation."""
        opt = torch.optim.Adam(pnet.parameters(), lr=float(self.lr))
        B = torch.from_numpy(db_codes.astype(np.float32))
        L = torch.from_numpy(np.searchsorted(self.classes_, db_labels))
        onehot_all = torch.eye(self.classes_.size)
        r = B.shape[1]
        for _ in range(int(self.proto_steps)):
            pick = torch.randint(0, B.shape[0], (min(512, B.shape[0]),), generator=gen)
            p, logits = pnet(onehot_all)
            theta = (p @ B[pick].T) * (4.0 / r)  # inner product on a scale where ±r ↦ ±4
            S = (torch.arange(self.classes_.size)[:, None] == L[pick][None, :]).float()
            pair = (torch.nn.functional.softplus(theta) - S * theta).mean()
            cls = torch.nn.functional.cross_entropy(logits, torch.arange(self.classes_.size))
            quant = ((p - p.sign().detach()) ** 2).mean()
            loss = pair + cls + 0.1 * quant
            opt.zero_grad()
            loss.backward()
            opt.step()
        pnet.eval()
        with torch.no_grad():
            proto = pnet(onehot_all)[0]
        self.prototypes_ = np.where(proto.numpy() >= 0, 1, -1).astype(np.int8)
        self.prototype_map_ = retrieval_map(self.prototypes_, db_codes, self.classes_, db_labels)

    def _fit_generator(self, torch, gnet, dnet, X, y, gen):
        f = self.f_
        rest = [p for n, p in gnet.named_parameters() if n != "template"]
        opt_g = torch.optim.Adam([{"params": rest}, {"params": [gnet.template], "lr": float(self.template_lr)}],
                                 lr=float(self.lr), betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(dnet.parameters(), lr=float(self.lr), betas=(0.5, 0.999))
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        protos = torch.from_numpy(self.prototypes_.astype(np.float32))
        Xt = torch.from_numpy(X)
        ylab = np.searchsorted(self.classes_, y)
        k = self.classes_.size
        self.loss_history_ = []
        for _ in range(int(self.epochs)):
            order = torch.randperm(X.shape[0], generator=gen)
            # a random target label different from each image's own label
            shift = torch.randint(1, k, (X.shape[0],), generator=gen).numpy()
            tgt_all = (ylab + shift) % k
            sums, count = np.zeros(4), 0
            gnet.train()
            for s in range(0, X.shape[0], int(self.batch_size)):
                idx = order[s : s + int(self.batch_size)]
                x = Xt[idx]
                tl = torch.from_numpy(tgt_all[idx.numpy()])
                t = protos[tl]
                x_adv = _clip_straight_through(x + gnet(x, t, tl))
                # discriminator step: clean → 1, adversarial → 0
                d_loss = bce(dnet(x), torch.ones(x.shape[0])) + bce(dnet(x_adv.detach()), torch.zeros(x.shape[0]))
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                # generator step
                ham = _hamming_loss(torch, f(x_adv), t, f.scale)
                rec = ((x_adv - x) ** 2).mean()
                adv = bce(dnet(x_adv), torch.ones(x.shape[0]))
                g_loss = ham + float(self.rec_weight) * rec + float(self.adv_weight) * adv
                opt_g.zero_grad()
                g_loss.backward()
                opt_g.step()
                sums += [float(v.detach()) for v in (ham, rec, adv, d_loss)]
                count += 1
            self.loss_history_.append(dict(zip(("hamming", "reconstruction", "adversarial", "discriminator"),
                                               (sums / max(count, 1)).tolist())))
        gnet.eval()
        for p in gnet.parameters():
            p.requires_grad_(False)
        self.generator_ = gnet

    # -- attack ------------------------------------------------------------------------------------
    def perturb(self, X, targets, *, batch: int = 1024) -> np.ndarray:
        """Adversarial images ``clip(x + G(x, prototype(t)), 0, 1)`` (n, d) float32, one forward pass each."""
        torch = import_torch()
        if not hasattr(self, "generator_"):
            raise NotFittedError("ProSGAN is not fitted: call fit(hasher, X, y) first")
        X = check_images(X)
        targets = check_targets(targets, self.classes_, n_queries=X.shape[0])
        tl = torch.from_numpy(np.searchsorted(self.classes_, targets))
        protos = torch.from_numpy(self.prototypes_.astype(np.float32))[tl]
        out = np.empty_like(X)
        with torch_threads(self.n_threads), torch.no_grad():
            for s in range(0, X.shape[0], batch):
                x = torch.from_numpy(X[s : s + batch])
                out[s : s + batch] = (x + self.generator_(x, protos[s : s + batch], tl[s : s + batch])).clamp(0.0, 1.0).numpy()
        return out


# --------------------------------------------------------------------------------------------------
# defence
# --------------------------------------------------------------------------------------------------


def adversarial_finetune(hasher, attack: ProSGAN, X, y, *, epochs: int = 2, lr: float = 1e-4, batch_size: int = 64,
                         n_threads: int = 1, random_state=None):
    """A copy of ``hasher`` fine-tuned on clean images mixed with the generator's adversarial examples.

    Each mini-batch of ``batch_size`` clean images is joined by their adversarial versions (random
    targets, the generator frozen) labelled with their *true* labels; the hasher's own loss is applied
    to the joined batch (ProS-GAN's adversarial training, Sec. 3.5 of the paper). Returns a new fitted
    hasher; ``hasher`` is left as it was.
    """
    torch = import_torch()
    X = check_images(X)
    y = np.asarray(y, dtype=np.int64)
    rng = check_random_state(random_state)
    gen = torch_generator(rng)
    new = copy.deepcopy(hasher)
    classes = np.asarray(hasher.classes_)
    Y = np.zeros((y.size, classes.size), np.float32)
    Y[np.arange(y.size), np.searchsorted(classes, y)] = 1.0
    k = attack.classes_.size
    with torch_threads(n_threads):
        net = hasher.torch_module()
        net.train()
        for p in net.parameters():
            p.requires_grad_(True)
        opt = torch.optim.Adam(net.parameters(), lr=float(lr))
        mean = torch.from_numpy(np.asarray(hasher.input_mean_, np.float32))
        inv = torch.from_numpy(1.0 / np.asarray(hasher.input_scale_, np.float32))
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        protos = torch.from_numpy(attack.prototypes_.astype(np.float32))
        ylab = np.searchsorted(attack.classes_, y)
        for _ in range(int(epochs)):
            order = torch.randperm(X.shape[0], generator=gen)
            tgt = (ylab + torch.randint(1, k, (X.shape[0],), generator=gen).numpy()) % k
            for s in range(0, X.shape[0], int(batch_size)):
                idx = order[s : s + int(batch_size)]
                x = Xt[idx]
                with torch.no_grad():
                    tl = torch.from_numpy(tgt[idx.numpy()])
                    x_adv = (x + attack.generator_(x, protos[tl], tl)).clamp(0, 1)
                xb = torch.cat([x, x_adv])
                yb = torch.cat([Yt[idx], Yt[idx]])
                h = net((xb - mean) * inv)
                loss = new._loss(torch, h, torch.arange(xb.shape[0]), yb, {"step": 0}, None)
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
    new.weights_ = {k_: v.detach().numpy().astype(np.float32, copy=True) for k_, v in net.state_dict().items()}
    return new
