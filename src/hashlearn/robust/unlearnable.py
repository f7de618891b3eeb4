"""Unlearnable clusters: label-agnostic, cluster-wise universal perturbations that make a training set
useless to a model trained on it.

"Unlearnable Clusters: Towards Label-agnostic Unlearnable Examples" (Zhang et al., CVPR 2023): cluster
the images with k-means on a surrogate's features (no labels), then give each cluster ``k`` one
universal perturbation ``δ_k`` (L∞ ≤ ``eps``) optimised so that the surrogate's features of the
perturbed images of cluster ``k`` match the centre of another cluster, ``(k + offset) mod K`` (the
paper's KL divergence between softmax-normalised features and the shifted centre). A model trained on
the perturbed images latches onto the per-cluster patterns and generalises poorly to clean images.

Departures from the paper, stated: the surrogate is PCA of the pixels fitted on the images themselves
(label-free; the paper uses a pretrained CLIP / ResNet); ``δ_k`` is optimised directly as ``eps ·
tanh(w_k)`` with Adam instead of through a generator fed fixed noise (the generator only parametrises
the same universal perturbation).
"""

from __future__ import annotations

import numpy as np

from ..errors import NotFittedError, ValidationError
from ..hashing.base import check_random_state
from ._common import check_eps, check_images, import_torch, torch_generator, torch_threads

__all__ = ["UnlearnableClusters", "train_classifier", "classifier_accuracy"]


class UnlearnableClusters:
    """Cluster-wise universal perturbations, fitted without labels.

    Parameters
    ----------
    n_clusters : int, default 10
    eps : float, default 0.3
        L∞ budget in pixel units (data in [0, 1]); every ``|δ_k| <= eps`` and perturbed pixels are
        clipped to [0, 1].
    n_components : int, default 50
        PCA dimensions of the surrogate features.
    steps : int, default 200
        Adam steps per cluster (each on a batch of ``batch_size`` images of the cluster).
    lr : float, default 0.05
    temperature : float, default 1.0
        Features are divided by it before the softmax of the KL loss.
    target_offset : int, default 1
        Cluster ``k``'s images are pushed toward the centre of cluster ``(k + target_offset) mod K``.
    batch_size : int, default 256
    n_threads : int, default 1
    random_state : int, Generator or None

    Attributes
    ----------
    labels_ : ndarray (n,) int64 — k-means cluster of each fitted image (computed without labels)
    perturbations_ : ndarray (n_clusters, d) float32 — ``δ_k``
    components_, mean_ : PCA surrogate; cluster_centers_ : (n_clusters, n_components)
    kl_history_ : ndarray (n_clusters,) — final KL loss per cluster

    References
    ----------
    J. Zhang, X. Ma, Q. Yi, J. Sang, Y.-G. Jiang, Y. Wang and C. Xu, "Unlearnable Clusters: Towards
    Label-agnostic Unlearnable Examples", CVPR 2023.
    """

    def __init__(self, n_clusters=10, *, eps=0.3, n_components=50, steps=200, lr=0.05, temperature=1.0,
                 target_offset=1, batch_size=256, n_threads=1, random_state=None):
        self.n_clusters = n_clusters
        self.eps = eps
        self.n_components = n_components
        self.steps = steps
        self.lr = lr
        self.temperature = temperature
        self.target_offset = target_offset
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y=None, clusters=None):
        """Cluster ``X`` (n, d) in [0, 1] on surrogate features and optimise one perturbation per cluster.

        ``y`` is ignored (the method is label-agnostic); it is accepted for the scikit-learn signature.
        ``clusters`` (n,) ints in ``[0, n_clusters)`` replaces k-means by given groups (e.g. the class labels,
        as a control that shows what perfectly label-aligned clusters would do); centres are then the
        groups' mean features.
        """
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        from ..params import check_int_param, check_real_param

        eps = check_eps(self.eps)
        X = check_images(X)
        k = check_int_param(self.n_clusters, "n_clusters", min_val=2)
        if X.shape[0] < k:
            raise ValidationError(f"n_clusters={k} needs at least {k} images, got {X.shape[0]}")
        nc = check_int_param(self.n_components, "n_components", min_val=1, max_val=min(X.shape))
        check_int_param(self.steps, "steps", min_val=1)
        check_real_param(self.temperature, "temperature", min_val=0, include_boundaries="neither")
        rng = check_random_state(self.random_state)
        pca = PCA(nc, random_state=int(rng.integers(2**31))).fit(X)
        F = pca.transform(X).astype(np.float32)
        if clusters is None:
            km = KMeans(k, n_init=4, random_state=int(rng.integers(2**31))).fit(F)
            centers, labels = km.cluster_centers_, km.labels_
        else:
            labels = np.asarray(clusters, dtype=np.int64)
            if labels.shape != (X.shape[0],) or labels.min() < 0 or labels.max() >= k:
                raise ValidationError(f"clusters must be {X.shape[0]} integers in [0, {k}), got shape {labels.shape}")
            centers = np.stack([F[labels == c].mean(0) if np.any(labels == c) else np.zeros(nc) for c in range(k)])
        self.mean_ = pca.mean_.astype(np.float32)
        self.components_ = pca.components_.astype(np.float32)
        self.cluster_centers_ = np.asarray(centers, dtype=np.float32)
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.perturbations_, self.kl_history_ = self._optimise(X, eps, rng)
        return self

    def _features(self, torch, x):
        return (x - torch.from_numpy(self.mean_)) @ torch.from_numpy(self.components_).T

    def _optimise(self, X, eps, rng):
        torch = import_torch()
        gen = torch_generator(rng)
        k = self.cluster_centers_.shape[0]
        T = float(self.temperature)
        deltas, kls = np.zeros((k, X.shape[1]), np.float32), np.zeros(k)
        with torch_threads(self.n_threads):
            for c in range(k):
                members = torch.from_numpy(X[self.labels_ == c])
                target = torch.softmax(torch.from_numpy(self.cluster_centers_[(c + int(self.target_offset)) % k]) / T,
                                       dim=0)
                w = torch.zeros(X.shape[1], requires_grad=True)
                opt = torch.optim.Adam([w], lr=float(self.lr))
                for _ in range(int(self.steps)):
                    pick = torch.randint(0, members.shape[0], (min(int(self.batch_size), members.shape[0]),),
                                         generator=gen)
                    x = (members[pick] + eps * torch.tanh(w)).clamp(0.0, 1.0)
                    logp = torch.log_softmax(self._features(torch, x) / T, dim=1)
                    loss = torch.nn.functional.kl_div(logp, target.expand_as(logp), reduction="batchmean")
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                deltas[c] = (eps * torch.tanh(w)).detach().numpy()
                kls[c] = float(loss.detach())
        return deltas, kls

    def predict(self, X) -> np.ndarray:
        """Cluster of each image (n,) int64: nearest centre in the surrogate's feature space."""
        if not hasattr(self, "perturbations_"):
            raise NotFittedError("UnlearnableClusters is not fitted: call fit(X) first")
        X = check_images(X)
        F = (X - self.mean_) @ self.components_.T
        d2 = (F * F).sum(1)[:, None] - 2 * F @ self.cluster_centers_.T + (self.cluster_centers_ ** 2).sum(1)[None]
        return np.argmin(d2, axis=1).astype(np.int64)

    def transform(self, X, clusters=None) -> np.ndarray:
        """``clip(x + δ_cluster(x), 0, 1)`` (n, d) float32; ``clusters`` defaults to :meth:`predict`."""
        X = check_images(X)
        c = self.predict(X) if clusters is None else np.asarray(clusters, dtype=np.int64)
        if c.shape != (X.shape[0],):
            raise ValidationError(f"clusters must have shape ({X.shape[0]},), got {c.shape}")
        return np.clip(X + self.perturbations_[c], 0.0, 1.0).astype(np.float32)

    def fit_transform(self, X, y=None) -> np.ndarray:
        """``fit(X)`` then perturb ``X`` with its fitted clusters (``labels_``)."""
        return self.fit(X).transform(X, self.labels_)


def _cnn(torch, shape, n_classes):
    nn = torch.nn
    c, h, w = shape
    return nn.Sequential(nn.Unflatten(1, (c, h, w)), nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * (h // 4) * (w // 4), 128), nn.ReLU(), nn.Linear(128, n_classes))


def train_classifier(X, y, *, input_shape=(1, 28, 28), epochs: int = 5, batch_size: int = 128, lr: float = 1e-3,
                     n_threads: int = 1, random_state=None):
    """A small CNN (two 3×3 conv + pool stages, 16 and 32 channels, 128 hidden units) trained with Adam and
    cross-entropy; returns ``(module in eval mode, classes)``."""
    torch = import_torch()
    from ..hashing.deep._nets import init_weights

    X = check_images(X)
    y = np.asarray(y, dtype=np.int64)
    classes = np.unique(y)
    rng = check_random_state(random_state)
    gen = torch_generator(rng)
    with torch_threads(n_threads):
        with torch.random.fork_rng(devices=[]):
            net = _cnn(torch, tuple(input_shape), classes.size)
        init_weights(net, gen)
        opt = torch.optim.Adam(net.parameters(), lr=float(lr))
        Xt, yt = torch.from_numpy(X), torch.from_numpy(np.searchsorted(classes, y))
        for _ in range(int(epochs)):
            order = torch.randperm(X.shape[0], generator=gen)
            for s in range(0, X.shape[0], int(batch_size)):
                idx = order[s : s + int(batch_size)]
                loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
    return net, classes


def classifier_accuracy(model, X, y, *, n_threads: int = 1) -> float:
    """Accuracy of ``(module, classes)`` from :func:`train_classifier` on images ``X`` with labels ``y``."""
    torch = import_torch()
    net, classes = model
    X = check_images(X)
    with torch_threads(n_threads), torch.no_grad():
        pred = np.concatenate([net(torch.from_numpy(X[s : s + 2048])).argmax(1).numpy()
                               for s in range(0, X.shape[0], 2048)])
    return float(np.mean(classes[pred] == np.asarray(y)))
