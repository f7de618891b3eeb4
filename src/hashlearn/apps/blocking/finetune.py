"""The language model itself, fine-tuned: a trainable copy of the top transformer layers of a
sentence-transformers encoder (all-MiniLM-L6-v2 by default) over the frozen lower layers.

:class:`TopLayerEncoder` runs the frozen bottom of the model once per record (no gradient) and keeps the
hidden states of layer ``L - n_layers`` (one ``(tokens, hidden)`` array per record); the top ``n_layers``
layers are copied (the embedder's shared model is never modified), trained, and followed by the model's
own mean pooling and L2 normalisation. With the copied layers untouched, :meth:`TopLayerEncoder.encode`
reproduces the frozen model's sentence embeddings (up to float rounding), so "frozen" and "fine-tuned"
are measured by the same code.

The copied layers always run in eval mode: no dropout, so training draws nothing from torch's global
random generator. Only BERT-family encoders (``bert``, ``roberta``, ``xlm-roberta`` with mean or CLS
pooling) are supported; anything else raises :class:`~hashlearn.errors.IncompatibleError`.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from ...errors import IncompatibleError

__all__ = ["TopLayerEncoder", "sentence_transformer_of"]

_SUPPORTED = ("bert", "roberta", "xlm-roberta")


def sentence_transformer_of(embedder):
    """The ``sentence_transformers.SentenceTransformer`` behind ``embedder`` (a
    :class:`hashlearn.embed.Embedder` with a model name, or the model itself);
    :class:`IncompatibleError` for anything else (a callable embedder has no layers to fine-tune)."""
    if type(embedder).__name__ == "SentenceTransformer":
        return embedder
    backend = getattr(embedder, "_backend", None)
    model = getattr(embedder, "model", None)
    if backend is None or callable(model):
        raise IncompatibleError(
            f"encoder='finetune' needs a sentence-transformers model to fine-tune, got an embedder of type "
            f"{type(embedder).__name__}" + (" wrapping a callable" if callable(model) else "")
            + "; use encoder='projection' (a trained projection over any embedder's vectors)")
    return backend()


def _pooling_mode(st) -> str:
    pool = st[1] if len(st) > 1 else None
    mode = getattr(pool, "pooling_mode", None)
    if mode is None and pool is not None:
        mode = "mean" if getattr(pool, "pooling_mode_mean_tokens", False) else (
            "cls" if getattr(pool, "pooling_mode_cls_token", False) else None)
    if mode not in ("mean", "cls"):
        raise IncompatibleError(f"encoder='finetune' supports mean or CLS pooling, the model pools with {mode!r}")
    return mode


class TopLayerEncoder:
    """Frozen lower layers (run once per text) and a trainable copy of the top ``n_layers`` layers.

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        A BERT-family sentence encoder (``Transformer`` -> ``Pooling`` [-> ``Normalize``]).
    n_layers : int
        Top layers to train (1 .. number of layers).

    Attributes
    ----------
    layers : torch.nn.ModuleList
        The trainable copies (their parameters are what an optimiser updates).
    dim : int
        Sentence embedding dimension.

    References
    ----------
    R. Wang et al., "Neural Locality Sensitive Hashing for Entity Blocking", SIAM SDM 2024 (NLSHBlock:
    a pre-trained language model fine-tuned for blocking); N. Reimers and I. Gurevych, "Sentence-BERT",
    EMNLP 2019 (mean pooling).
    """

    def __init__(self, model, n_layers: int):
        import torch

        self._st = model
        self._auto = model[0].auto_model
        kind = getattr(self._auto.config, "model_type", None)
        if kind not in _SUPPORTED or not hasattr(getattr(self._auto, "encoder", None), "layer"):
            raise IncompatibleError(f"encoder='finetune' supports {', '.join(_SUPPORTED)} models, got {kind!r}")
        n_total = len(self._auto.encoder.layer)
        if not 1 <= n_layers <= n_total:
            raise IncompatibleError(f"n_layers must be in 1..{n_total} for this model, got {n_layers}")
        self.n_layers = n_layers
        self.split = n_total - n_layers
        self.pooling = _pooling_mode(model)
        self.layers = torch.nn.ModuleList(copy.deepcopy(self._auto.encoder.layer[i]) for i in range(self.split, n_total))
        self.layers.eval()
        for p in self.layers.parameters():
            p.requires_grad_(True)
        self.dim = int(self._auto.config.hidden_size)
        self.max_length = int(getattr(model, "max_seq_length", None) or 512)

    # -- frozen bottom ---------------------------------------------------------------------------------
    def bottom_states(self, texts: Sequence[str], batch_size: int = 64, progress=None) -> list:
        """Hidden states after the frozen layers: one float32 tensor ``(tokens, hidden)`` per text.

        Texts are tokenised as the sentence-transformers model does (its ``max_seq_length``) and run in
        batches of similar length; ``progress(n)`` is called after each batch with its size.
        """
        import torch

        tok = self._st[0].tokenizer
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = [None] * len(texts)
        with torch.no_grad():
            for s in range(0, len(texts), batch_size):
                idx = order[s : s + batch_size]
                feats = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                            return_tensors="pt")
                hs = self._auto(**feats, output_hidden_states=True).hidden_states[self.split]
                lens = feats["attention_mask"].sum(1).tolist()
                for row, i in enumerate(idx):
                    out[i] = hs[row, : lens[row]].clone()
                if progress is not None:
                    progress(len(idx))
        return out

    # -- trainable top ---------------------------------------------------------------------------------
    def forward(self, states: list):
        """Unit sentence vectors ``(len(states), dim)`` (a torch tensor that carries gradients) of bottom
        states (from :meth:`bottom_states`), through the trainable top layers and the pooling."""
        import torch

        lens = torch.tensor([s.shape[0] for s in states])
        x = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
        mask = (torch.arange(x.shape[1])[None, :] < lens[:, None]).to(x.dtype)
        ext = (1.0 - mask[:, None, None, :]) * torch.finfo(x.dtype).min
        for layer in self.layers:
            o = layer(x, ext)
            x = o[0] if isinstance(o, tuple) else o
        if self.pooling == "cls":
            pooled = x[:, 0]
        else:
            pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
        return torch.nn.functional.normalize(pooled, dim=1)

    def encode(self, states: list, batch_size: int = 256) -> np.ndarray:
        """:meth:`forward` without gradients, in batches: ``(n, dim)`` float32 unit rows."""
        import torch

        if not states:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([s.shape[0] for s in states], kind="stable")
        out = np.empty((len(states), self.dim), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(states), batch_size):
                idx = order[s : s + batch_size]
                out[idx] = self.forward([states[i] for i in idx]).numpy()
        return out

    def state(self) -> dict:
        """A copy of the trainable weights (to restore with :meth:`load_state`)."""
        return {k: v.detach().clone() for k, v in self.layers.state_dict().items()}

    def load_state(self, state: dict) -> None:
        self.layers.load_state_dict(state)
