"""Two-view and multi-view datasets for the cross-modal benchmarks and tests.

* :func:`make_planted_views` — synthetic: views are different random linear maps of shared clusters.
* :func:`load_wiki` / :func:`load_mfeat` — the Wiki image–text benchmark and the UCI multiple-features
  digits, read from the ``.mat`` files the user gives (they are not shipped with hashlearn).
* :func:`mnist_two_view` — MNIST-5000 as two views: raw pixels and histograms of oriented gradients.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataFileError, ValidationError
from ..hashing.base import check_random_state

__all__ = ["make_planted_views", "load_wiki", "load_mfeat", "mnist_two_view", "gradient_histograms"]


def make_planted_views(n: int = 600, *, n_clusters: int = 6, latent_dim: int = 8, dims=(40, 24),
                       noise: float = 0.3, random_state=None):
    """Views that are different random linear maps of the same clustered latent points.

    Returns
    -------
    views : list of float32 arrays, view ``v`` of shape (n, dims[v])
    labels : int64 array (n,) — the cluster of each item (the relevance for retrieval)
    """
    rng = check_random_state(random_state)
    centers = rng.normal(scale=3.0, size=(n_clusters, latent_dim))
    labels = rng.integers(0, n_clusters, size=n)
    Y = centers[labels] + rng.normal(size=(n, latent_dim))
    views = []
    for d in dims:
        W = rng.normal(size=(latent_dim, d))
        views.append((Y @ W + noise * np.sqrt(latent_dim) * rng.normal(size=(n, d))).astype(np.float32))
    return views, labels.astype(np.int64)


def _loadmat(path):
    import scipy.io as sio

    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        return sio.loadmat(str(path))
    except Exception as exc:  # scipy raises several types on a corrupt file
        raise DataFileError(f"{path}: not a readable .mat file ({exc})") from None


def load_wiki(path):
    """The Wiki image–text benchmark (Rasiwasia et al., ACM MM 2010) from ``wiki_data.mat``.

    Returns a dict with ``I_tr`` (2173, 128) SIFT bag-of-words, ``T_tr`` (2173, 10) LDA topics,
    ``I_te``/``T_te`` (693, ·), labels ``y_tr``/``y_te`` (int64, 1..10); views float32.
    """
    d = _loadmat(path)
    need = ("I_tr", "T_tr", "I_te", "T_te", "L_tr", "L_te")
    missing = [k for k in need if k not in d]
    if missing:
        raise DataFileError(f"{path}: missing variable(s) {', '.join(missing)} (expected the Wiki .mat layout)")
    out = {k: np.ascontiguousarray(d[k], dtype=np.float32) for k in ("I_tr", "T_tr", "I_te", "T_te")}
    out["y_tr"] = np.asarray(d["L_tr"]).ravel().astype(np.int64)
    out["y_te"] = np.asarray(d["L_te"]).ravel().astype(np.int64)
    return out


MFEAT_VIEWS = ("pix", "fou", "fac", "zer", "kar", "mor")


def load_mfeat(path):
    """UCI multiple-features handwritten digits, 6 views of 2,000 digits, from ``handwritten.mat``.

    Returns ``(views, labels)``: a list of 6 float32 arrays (pix 240, fou 76, fac 216, zer 47, kar 64,
    mor 6 columns) and int64 labels 0..9.
    """
    d = _loadmat(path)
    if "X" not in d or "Y" not in d:
        raise DataFileError(f"{path}: missing variable X or Y (expected the multi-view .mat layout)")
    X = d["X"]
    views = [np.ascontiguousarray(X[0, v], dtype=np.float32) for v in range(X.shape[1])]
    y = np.asarray(d["Y"]).ravel().astype(np.int64)
    return views, y - y.min()


def gradient_histograms(images: np.ndarray, side: int = 28, cells: int = 4, bins: int = 9) -> np.ndarray:
    """Histograms of oriented gradients (unsigned, ``bins`` orientations) on a ``cells × cells`` grid.

    ``images`` (n, side*side) → (n, cells*cells*bins) float32, each histogram L2-normalised per image.
    """
    imgs = np.asarray(images, dtype=np.float32).reshape(-1, side, side)
    gy, gx = np.gradient(imgs, axis=(1, 2))
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    b = np.minimum((ang / np.pi * bins).astype(np.int64), bins - 1)
    cell = side // cells
    out = np.zeros((imgs.shape[0], cells, cells, bins), dtype=np.float32)
    for i in range(cells):
        for j in range(cells):
            m = mag[:, i * cell : (i + 1) * cell, j * cell : (j + 1) * cell].reshape(len(imgs), -1)
            bb = b[:, i * cell : (i + 1) * cell, j * cell : (j + 1) * cell].reshape(len(imgs), -1)
            for k in range(bins):
                out[:, i, j, k] = (m * (bb == k)).sum(axis=1)
    out = out.reshape(len(imgs), -1)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-6
    return out


def mnist_two_view():
    """MNIST-5000 (see :func:`hashlearn.datasets.load_dataset`) as two views: pixels (784) and HOG (144)."""
    from ..datasets.loaders import _mnist5000_raw

    X, y = _mnist5000_raw()
    X = (np.asarray(X, dtype=np.float64) / 255.0).astype(np.float32)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or X.shape[1] != 784:
        raise ValidationError(f"expected MNIST-5000 rows of 784 pixels, got {X.shape}")
    return [X, gradient_histograms(X)], y
