"""Readers of the benchmark data of :mod:`hashlearn.discover`: TabularNCD CSV splits, MNIST idx files,
Omniglot ``.npz`` archives. Each raises :class:`~hashlearn.errors.DataFileError` naming the missing
or malformed file.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFileError

__all__ = ["NCDSplit", "load_tabular_ncd", "load_mnist_idx", "load_omniglot", "TABULAR_NOVEL"]

#: Novel classes of the TabularNCD code's splits (class list shuffled with numpy seed 0, last n taken);
#: see ``tabularncd/SOURCE.txt``.
TABULAR_NOVEL = {"Pendigits": (0, 3, 5, 6, 7), "Satimage": (1, 4, 5)}


@dataclass
class NCDSplit:
    """A novel-class-discovery split: labelled known-class rows, unlabelled rows, and a test set.

    ``x_lab``/``y_lab``: training rows of the known classes (labels given); ``x_unlab``/``y_unlab``:
    training rows of the novel classes (labels only for evaluation); ``x_test``/``y_test``: all
    classes. Features float32 (n, d), labels int64 (n,).
    """

    name: str
    x_lab: np.ndarray
    y_lab: np.ndarray
    x_unlab: np.ndarray
    y_unlab: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    known: tuple
    novel: tuple


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    if not path.is_file():
        raise DataFileError(f"{path}: no such file (a TabularNCD treated split)")
    df = pd.read_csv(path)
    if "classes" not in df.columns:
        raise DataFileError(f"{path}: no 'classes' column (columns: {list(df.columns)[:5]}...)")
    y = df["classes"].to_numpy(np.int64)
    x = df.drop(columns=["classes"]).to_numpy(np.float32)
    return x, y


def load_tabular_ncd(root, name: str) -> NCDSplit:
    """One TabularNCD data set (``Pendigits`` or ``Satimage``) from ``root/<name>/treated_{train,test}.csv``."""
    if name not in TABULAR_NOVEL:
        raise DataFileError(f"unknown TabularNCD data set {name!r}; available: {', '.join(TABULAR_NOVEL)}")
    folder = Path(root) / name
    x_tr, y_tr = _read_csv(folder / "treated_train.csv")
    x_te, y_te = _read_csv(folder / "treated_test.csv")
    novel = TABULAR_NOVEL[name]
    known = tuple(int(c) for c in np.unique(y_tr) if c not in novel)
    is_novel = np.isin(y_tr, novel)
    return NCDSplit(name, x_tr[~is_novel], y_tr[~is_novel], x_tr[is_novel], y_tr[is_novel], x_te, y_te,
                    known, tuple(novel))


def _read_idx(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataFileError(f"{path}: no such file (an MNIST idx file)")
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DataFileError(f"{path}: not an idx file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataFileError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes), file holds {body.size}")
    return body.reshape(shape)


def load_mnist_idx(root, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST from an idx folder: (images uint8 (n, 28, 28), labels int64 (n,)); ``split`` train or t10k/test."""
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}[split]
    root = Path(root)
    out = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        plain = root / f"{prefix}-{kind}"
        out.append(_read_idx(plain if plain.is_file() else root / f"{prefix}-{kind}.gz"))
    x, y = out
    if x.shape[0] != y.shape[0]:
        raise DataFileError(f"{root}: {x.shape[0]} {prefix} images but {y.shape[0]} labels")
    return x, y.astype(np.int64)


def load_omniglot(root, part: str = "background") -> tuple[np.ndarray, np.ndarray]:
    """Omniglot drawings ``(images bool (n, 105, 105), character labels int64 (n,))``, part background/evaluation."""
    path = Path(root) / "full_npz_bitsandscraps" / f"images_{part}.npz"
    if not path.is_file():
        raise DataFileError(f"{path}: no such file (Omniglot {part} archive)")
    with np.load(path) as z:
        if "images" not in z or "labels" not in z:
            raise DataFileError(f"{path}: expected arrays 'images' and 'labels', found {list(z.keys())}")
        images, labels = np.asarray(z["images"]), np.asarray(z["labels"]).astype(np.int64)
    if images.ndim == 4:  # (characters, drawings, h, w) with labels (characters, drawings)
        images = images.reshape(-1, *images.shape[2:])
        labels = labels.reshape(-1)
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(f"{path}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels
