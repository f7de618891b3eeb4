"""BPR-style learned binary codes for dense retrieval: a linear hash head trained with a ranking loss.

The head maps an embedding ``x`` (d) to ``b`` bits ``sign(x W + c)``; during training the sign is
replaced by a straight-through estimator (forward: sign, backward: the gradient of ``tanh``), as in
BPR ("Efficient Passage Retrieval with Hashing for Open-domain Question Answering", Yamada et al.,
2021) and its domain-adapted use in "Injecting Domain Adaptation with Learning-to-hash for Effective
and Efficient Zero-shot Dense Retrieval" (Thakur et al., 2022). The embedding model stays frozen: only
the head learns, on CPU, in seconds to minutes.

Training signal (all optional, at least one source of queries is needed):

* **supervised** pairs ``(query, relevant document)`` — e.g. a BEIR train split: a listwise
  cross-entropy over the Hamming similarities to the whole corpus (or, for large corpora, to the
  positives + hard negatives from the float model + random documents), other positives masked;
* **pseudo-queries** made from the documents themselves (title, first sentence or a random span vs the
  document; the GenQ / GPL idea with what runs offline), for the self-supervised mode;
* **distillation** from the float model: the KL divergence between the float similarities' softmax and
  the binary similarities' softmax, for every training query. This is what keeps the codes faithful to
  the embedding geometry where labels are few; the float model's top documents act as hard negatives.

Initialisation: ``"pca"`` (top-``b`` principal directions then a random rotation; identity at b = d),
``"itq"`` (PCA + the ITQ rotation of Gong & Lazebnik, 2011), ``"identity"`` (plain sign bits, b = d
only) or ``"random"``. Early stopping on a dev split carved from the training queries (never the
test queries): the returned head is the best epoch's.

Training time scales with a budget, not with the data: each epoch samples at most ``pairs_per_epoch``
training pairs (and as many pseudo-queries), and training stops when ``max_train_minutes`` are spent —
mid-epoch if need be; the partial epoch is scored on the dev split like a full one and the best head so
far is kept, so a stopped head is always usable. A progress bar (``show_progress``) shows the batches,
the ETA, the last dev score and the budget left.
"""

from __future__ import annotations

import numbers
import time

import numpy as np
from sklearn.base import BaseEstimator

from ..codes import pack
from ..metrics import ndcg_at_k
from ..errors import NotFittedError, ValidationError
from ..hashing.base import PersistableEstimatorMixin, check_random_state, check_vectors_array
from ..registry import register

__all__ = ["BPRHasher"]
__doctest_requires__ = ("torch",)  # the examples train a head (tests/test_doctests.py skips without it)

_INITS = ("pca", "itq", "identity", "random")
_QUERY_SIDES = ("binary", "float", "both")
_SELF_DEVS = ("agreement", "own_document")


@register("bpr", kind="embedding")
class BPRHasher(PersistableEstimatorMixin, BaseEstimator):
    """Learned-to-hash head for text embeddings, trained with a ranking loss and a straight-through sign.

    Parameters
    ----------
    n_bits : int, default 128
        Code length ``b``.
    init : {"pca", "itq", "identity", "random"}, default "pca"
    epochs : int, default 30
        Passes over the training pairs (pseudo-queries are sampled alongside, one batch per batch).
    batch_size : int, default 64
    lr : float, default 1e-3
        Adam learning rate.
    temperature : float, default 0.05
        Softmax temperature of the binary similarity ``<b_q, b_d> / b``.
    distill_weight : float, default 1.0
        Weight of the distillation term (KL to the float model's ranking); 0 disables it.
    distill_temperature : float, default 0.02
        Temperature of the float model's cosine similarities in the distillation target.
    pseudo_weight : float, default 0.5
        Weight of the pseudo-query loss (cross-entropy to its own document + distillation).
    pseudo_ce_weight : float, default 1.0
        Weight of the cross-entropy part inside the pseudo-query loss; 0 = pure distillation from the
        float model on the pseudo-queries (the self-supervised setting of the SciFact benchmark).
    query_side : {"binary", "both", "float"}, default "binary"
        How queries are scored in training: binary codes (symmetric Hamming search), float
        projections (asymmetric search: float query × binary document), or the sum of both losses.
    max_full_corpus : int, default 50_000
        Up to this many documents the softmax runs over the whole corpus; above, over the batch's
        positives, the float model's ``hard_negatives`` nearest documents of each query and
        ``random_negatives`` random documents.
    hard_negatives : int, default 30
    random_negatives : int, default 2048
    dev_fraction : float, default 0.2
        Share of the training queries held out for early stopping (by query, never by pair), at most
        ``max_dev_queries`` of them.
    patience : int, default 6
        Epochs without dev improvement before stopping.
    self_dev : {"agreement", "own_document"}, default "agreement"
        Dev check of the self-supervised mode (no ``pairs``): ``agreement`` scores held-out
        pseudo-queries' binary top-``dev_k`` against the float model's top-``dev_k`` (nDCG@k with the
        float top-k as the relevant set: the distillation target); ``own_document`` scores the
        pseudo-query's source document only (easy for titles, so it rarely moves).
    dev_k : int, default 10
        Size of the float top-k in the ``agreement`` check.
    pairs_per_epoch : int or None, default 20_000
        Training pairs (and pseudo-queries) sampled without replacement in each epoch; ``None``: all.
    max_train_minutes : float or None, default 10.0
        Time budget of the epochs (initialisation excluded); ``None``: no budget.
    max_dev_queries : int, default 1000
        Cap on the dev queries (the rest of the queries train).
    n_threads : int, default 2
        torch threads.
    random_state : int, Generator or None
    verbose : bool, default False
        Print one line per epoch.
    show_progress : bool, default False
        A tqdm progress bar over the batches, with ETA, last dev score and budget left.

    Attributes
    ----------
    components_ : ndarray (n_features_in_, n_bits) float32
    bias_ : ndarray (n_bits,) float32
    n_features_in_ : int
    best_epoch_ : int
        Epoch (0-based) whose head was kept; -1 if the initial head was best.
    dev_score_ : float
        nDCG@10 (symmetric Hamming ranking, binary relevance) of the kept head on the dev split
        (self-supervised, ``self_dev="agreement"``: relevance = the float model's top ``dev_k``).
    init_dev_score_ : float
        The same for the initial head (plain sign bits or PCA/ITQ codes).
    history_ : ndarray (n_epochs_run, 2) float64
        Mean training loss and dev score of each epoch (the last one may be cut short by the budget).
    stop_reason_ : str
        ``"epochs"`` (all ran), ``"patience"`` (early stopping) or ``"time budget"``.
    train_seconds_ : float
        Time spent in the epochs (dev checks included).

    References
    ----------
    Yamada, Asai, Hajishirzi, "Efficient Passage Retrieval with Hashing for Open-domain Question
    Answering", ACL 2021. Thakur, Reimers, Lin, "Injecting Domain Adaptation with Learning-to-hash for
    Effective and Efficient Zero-shot Dense Retrieval", ReNeuIR 2023 (arXiv 2022). Wang, Thakur,
    Reimers, Gurevych, "GPL: Generative Pseudo Labeling for Unsupervised Domain Adaptation of Dense
    Retrieval", NAACL 2022.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 16)).astype(np.float32)
    >>> Q = X[:50] + 0.1 * rng.standard_normal((50, 16)).astype(np.float32)
    >>> pairs = np.stack([np.arange(50), np.arange(50)], axis=1)
    >>> h = BPRHasher(n_bits=16, epochs=2, random_state=0).fit(X, queries=Q, pairs=pairs)
    >>> h.transform(X).shape
    (200, 1)
    """

    def __init__(self, n_bits: int = 128, *, init: str = "pca", epochs: int = 30, batch_size: int = 64,
                 lr: float = 1e-3, temperature: float = 0.05, distill_weight: float = 1.0,
                 distill_temperature: float = 0.02, pseudo_weight: float = 0.5, pseudo_ce_weight: float = 1.0,
                 query_side: str = "binary",
                 max_full_corpus: int = 50_000, hard_negatives: int = 30, random_negatives: int = 2048,
                 dev_fraction: float = 0.2, patience: int = 6, self_dev: str = "agreement", dev_k: int = 10,
                 pairs_per_epoch: int | None = 20_000, max_train_minutes: float | None = 10.0,
                 max_dev_queries: int = 1000, n_threads: int = 2, random_state=None, verbose: bool = False,
                 show_progress: bool = False):
        self.n_bits = n_bits
        self.init = init
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.temperature = temperature
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature
        self.pseudo_weight = pseudo_weight
        self.pseudo_ce_weight = pseudo_ce_weight
        self.query_side = query_side
        self.max_full_corpus = max_full_corpus
        self.hard_negatives = hard_negatives
        self.random_negatives = random_negatives
        self.dev_fraction = dev_fraction
        self.patience = patience
        self.self_dev = self_dev
        self.dev_k = dev_k
        self.pairs_per_epoch = pairs_per_epoch
        self.max_train_minutes = max_train_minutes
        self.max_dev_queries = max_dev_queries
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.show_progress = show_progress


    # -- public API -----------------------------------------------------------------------------------
    @property
    def code_bits(self) -> int:
        return int(self.n_bits)

    def fit(self, X, y=None, *, queries=None, pairs=None, pseudo_queries=None, pseudo_docs=None):
        """Learn the hash head.

        Parameters
        ----------
        X : array (n_docs, d) float
            Document embeddings.
        queries : array (n_queries, d), optional
            Training query embeddings, with ``pairs``.
        pairs : int array (m, 2), optional
            ``(query row, document row)`` of each relevant pair.
        pseudo_queries : array (n_pseudo, d), optional
            Pseudo-query embeddings made from the documents, with ``pseudo_docs``.
        pseudo_docs : int array (n_pseudo,), optional
            The document row each pseudo-query was made from.

        Returns
        -------
        self
        """
        self._check_params()
        X = check_vectors_array(X, name="X (documents)")
        n, d = X.shape
        if self.n_bits > d and self.init in ("pca", "itq", "identity"):
            raise ValidationError(f"init={self.init!r} needs n_bits <= the embedding dimension: n_bits={self.n_bits}, "
                                  f"d={d}; use init='random'")
        if self.init == "identity" and self.n_bits != d:
            raise ValidationError(f"init='identity' needs n_bits == d, got n_bits={self.n_bits}, d={d}")
        Q, P = self._check_supervision(queries, pairs, n, d, "queries", "pairs")
        T, TD = self._check_pseudo(pseudo_queries, pseudo_docs, n, d)
        if Q is None and T is None:
            raise ValidationError("BPRHasher needs training queries: give queries + pairs (supervised) and/or "
                                  "pseudo_queries + pseudo_docs (self-supervised)")
        rng = check_random_state(self.random_state)
        W0, c0 = self._initial_head(X, rng)
        self.n_features_in_ = int(d)
        try:
            self._train(X, Q, P, T, TD, W0, c0, rng)
        except BaseException:
            del self.n_features_in_
            raise
        return self

    def margins(self, X) -> np.ndarray:
        """Real-valued projections ``X W + c`` (n, n_bits) float32; their signs are the bits."""
        self._check_fitted()
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_)
        return X @ self.components_ + self.bias_

    def transform(self, X) -> np.ndarray:
        """Packed codes (n, ceil(n_bits / 64)) uint64 of embeddings ``X`` (n, d)."""
        return pack(self.margins(X) > 0)

    encode = transform

    # -- validation -----------------------------------------------------------------------------------
    def _check_params(self) -> None:
        def positive_int(name):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")

        for name in ("n_bits", "epochs", "batch_size", "n_threads", "patience", "dev_k", "max_dev_queries"):
            positive_int(name)
        if self.pairs_per_epoch is not None:
            positive_int("pairs_per_epoch")
        if self.max_train_minutes is not None and not float(self.max_train_minutes) > 0:
            raise ValidationError(f"max_train_minutes must be > 0 or None, got {self.max_train_minutes!r}")
        if self.init not in _INITS:
            raise ValidationError(f"init must be one of {', '.join(_INITS)}; got {self.init!r}")
        if self.self_dev not in _SELF_DEVS:
            raise ValidationError(f"self_dev must be one of {', '.join(_SELF_DEVS)}; got {self.self_dev!r}")
        if self.query_side not in _QUERY_SIDES:
            raise ValidationError(f"query_side must be one of {', '.join(_QUERY_SIDES)}; got {self.query_side!r}")
        for name in ("lr", "temperature", "distill_temperature"):
            if not float(getattr(self, name)) > 0:
                raise ValidationError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("distill_weight", "pseudo_weight", "pseudo_ce_weight"):
            if float(getattr(self, name)) < 0:
                raise ValidationError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.dev_fraction) < 1.0:
            raise ValidationError(f"dev_fraction must be in [0, 1), got {self.dev_fraction!r}")

    @staticmethod
    def _check_supervision(queries, pairs, n, d, qname, pname):
        if queries is None and pairs is None:
            return None, None
        if queries is None or pairs is None:
            raise ValidationError(f"give both {qname} and {pname}, or neither")
        Q = check_vectors_array(queries, name=qname, n_features=d)
        P = np.asarray(pairs)
        if P.ndim != 2 or P.shape[1] != 2 or P.shape[0] == 0 or not np.issubdtype(P.dtype, np.integer):
            raise ValidationError(f"{pname} must be a non-empty integer array of shape (m, 2), got "
                                  f"{P.dtype} {P.shape}")
        if P[:, 0].min() < 0 or P[:, 0].max() >= Q.shape[0]:
            raise ValidationError(f"{pname}[:, 0] must index {qname} (0..{Q.shape[0] - 1})")
        if P[:, 1].min() < 0 or P[:, 1].max() >= n:
            raise ValidationError(f"{pname}[:, 1] must index the documents (0..{n - 1})")
        return Q, P.astype(np.int64)

    @staticmethod
    def _check_pseudo(pseudo_queries, pseudo_docs, n, d):
        if pseudo_queries is None and pseudo_docs is None:
            return None, None
        if pseudo_queries is None or pseudo_docs is None:
            raise ValidationError("give both pseudo_queries and pseudo_docs, or neither")
        T = check_vectors_array(pseudo_queries, name="pseudo_queries", n_features=d)
        TD = np.asarray(pseudo_docs)
        if TD.shape != (T.shape[0],) or not np.issubdtype(TD.dtype, np.integer):
            raise ValidationError(f"pseudo_docs must be an integer array of shape ({T.shape[0]},), got "
                                  f"{TD.dtype} {TD.shape}")
        if TD.min() < 0 or TD.max() >= n:
            raise ValidationError(f"pseudo_docs must index the documents (0..{n - 1})")
        return T, TD.astype(np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError("this BPRHasher is not fitted yet: call fit(X, queries=..., pairs=...) first")

    # -- initialisation -------------------------------------------------------------------------------
    def _initial_head(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        d, b = X.shape[1], self.n_bits
        if self.init == "identity":
            return np.eye(d, dtype=np.float32), np.zeros(b, np.float32)
        if self.init == "random":
            G = rng.standard_normal((d, b))
            W = np.linalg.qr(G)[0] if b <= d else G / np.sqrt(d)
            return W.astype(np.float32), np.zeros(b, np.float32)
        mean = X.mean(axis=0, dtype=np.float64)
        if b == d and self.init == "pca":
            # Full width: PCA + rotation spans everything; plain sign bits are the natural start.
            return np.eye(d, dtype=np.float32), np.zeros(b, np.float32)
        from ..hashing import make_hasher

        if self.init == "itq":
            itq = make_hasher("itq", n_bits=b, random_state=int(rng.integers(2**31))).fit(X)
            return self._affine_from_hasher(itq, X)
        cov = np.cov((X - mean).T)
        _, V = np.linalg.eigh(cov)
        V = V[:, ::-1][:, :b]
        R = np.linalg.qr(rng.standard_normal((b, b)))[0]
        W = (V @ R).astype(np.float32)
        return W, (-(mean @ W)).astype(np.float32)

    @staticmethod
    def _affine_from_hasher(hasher, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The affine map ``x W + c`` equal to a linear hasher's margins (recovered by probing)."""
        d = X.shape[1]
        c = hasher.margins(np.zeros((1, d), np.float32))[0]
        W = hasher.margins(np.eye(d, dtype=np.float32)) - c
        return W.astype(np.float32), c.astype(np.float32)

    # -- training -------------------------------------------------------------------------------------
    def _train(self, X, Q, P, T, TD, W0, c0, rng):
        import torch

        old_threads = torch.get_num_threads()
        torch.set_num_threads(int(self.n_threads))
        try:
            rng.integers(2**31)  # reserved draw (a torch seed in earlier versions): keeps fitted heads reproducible
            split = self._dev_split(X, Q, P, T, TD, rng)
            trainer = _HeadTrainer(self, X, W0, c0, rng)
            self._run_epochs(trainer, split, Q, T, TD, rng)
        finally:
            torch.set_num_threads(old_threads)

    def _dev_split(self, X, Q, P, T, TD, rng) -> dict:
        """Split the queries (supervised) or the pseudo-queries (self-supervised) into train / dev."""
        n = X.shape[0]
        if P is not None:
            qs = np.unique(P[:, 0])
            rng.shuffle(qs)
            n_dev = min(int(round(len(qs) * self.dev_fraction)), int(self.max_dev_queries))
            dev_q = set(qs[:n_dev].tolist())
            dev_queries, dev_rel = self._dev_from_pairs(Q, P[[q in dev_q for q in P[:, 0]]])
            positives = {}
            for q, dd in P:  # mask every positive of a query (train and dev pairs share no query)
                positives.setdefault(int(q), set()).add(int(dd))
            return {"train_pairs": P[[q not in dev_q for q in P[:, 0]]], "positives": positives,
                    "pseudo_train": np.arange(len(TD)) if TD is not None else None,
                    "dev_queries": dev_queries, "dev_rel": dev_rel}
        order = rng.permutation(len(TD))
        n_dev = min(int(round(len(TD) * self.dev_fraction)), int(self.max_dev_queries))
        dev_idx, pseudo_train = order[:n_dev], order[n_dev:]
        dev_queries = T[dev_idx]
        if self.self_dev == "agreement":
            # Distillation check: how well the binary ranking reproduces the float model's top-k.
            k = min(int(self.dev_k), n)
            top = np.argpartition(-(dev_queries @ X.T), k - 1, axis=1)[:, :k]
            dev_rel = [set(r.tolist()) for r in top]
        else:
            dev_rel = [{int(d)} for d in TD[dev_idx]]
        return {"train_pairs": None, "positives": {}, "pseudo_train": pseudo_train,
                "dev_queries": dev_queries, "dev_rel": dev_rel}

    def _run_epochs(self, trainer, split, Q, T, TD, rng) -> None:
        """Epochs of listwise training with early stopping on the dev score and a time budget; keeps the best head."""
        from tqdm.auto import tqdm

        dev_score = trainer.dev_scorer(split["dev_queries"], split["dev_rel"])
        Wn, cn = trainer.head()
        best = (dev_score(Wn, cn), -1, Wn, cn)
        self.init_dev_score_ = float(best[0])
        if self.verbose:
            print(f"bpr initial head: dev nDCG@10 {best[0]:.4f}", flush=True)
        start = time.monotonic()
        budget = None if self.max_train_minutes is None else float(self.max_train_minutes) * 60.0
        deadline = None if budget is None else start + budget
        per_epoch = trainer.batches_per_epoch(split)
        bar = tqdm(total=per_epoch * int(self.epochs), desc=f"bpr:{self.n_bits}", unit="batch",
                   disable=not self.show_progress, leave=False)
        history, since_best, reason = [], 0, "epochs"
        try:
            for epoch in range(int(self.epochs)):
                loss, go_on = trainer.epoch(split, Q, T, TD, rng, deadline=deadline, on_batch=bar.update)
                Wn, cn = trainer.head()
                score = dev_score(Wn, cn)
                history.append((loss, score))
                if self.show_progress:
                    left = "" if deadline is None else f"{max(0.0, deadline - time.monotonic()) / 60:.1f}m"
                    bar.set_postfix(dev=f"{score:.4f}", budget_left=left)
                if self.verbose:
                    print(f"bpr epoch {epoch}: loss {loss:.4f} dev nDCG@10 {score:.4f}", flush=True)
                if np.isnan(score) or score > best[0]:
                    best, since_best = (score, epoch, Wn, cn), 0
                else:
                    since_best += 1
                if not go_on:
                    reason = "time budget"
                    break
                if since_best >= self.patience:
                    reason = "patience"
                    break
        finally:
            bar.close()
        self.components_ = np.ascontiguousarray(best[2], dtype=np.float32)
        self.bias_ = np.ascontiguousarray(best[3], dtype=np.float32)
        self.best_epoch_ = int(best[1])
        self.dev_score_ = float(best[0])
        self.history_ = np.asarray(history, dtype=np.float64).reshape(-1, 2)
        self.stop_reason_ = reason
        self.train_seconds_ = time.monotonic() - start

    @staticmethod
    def _dev_from_pairs(Q, dev_pairs):
        if len(dev_pairs) == 0:
            return None, None
        rows = np.unique(dev_pairs[:, 0])
        rel = [set(dev_pairs[dev_pairs[:, 0] == r, 1].tolist()) for r in rows]
        return Q[rows], rel


class _HeadTrainer:
    """The torch side of :class:`BPRHasher`'s training: the head ``(W, c)``, its optimiser and the loss."""

    def __init__(self, params: BPRHasher, X: np.ndarray, W0, c0, rng):
        import torch

        self.p, self.X, self.rng = params, X, rng
        self.n, self.b = X.shape[0], params.n_bits
        self.full = self.n <= params.max_full_corpus
        self.Xt = torch.from_numpy(X)
        self.W = torch.tensor(W0, requires_grad=True)
        self.c = torch.tensor(c0, requires_grad=True)
        self.opt = torch.optim.Adam([self.W, self.c], lr=float(params.lr))
        self.tau, self.tau_f = float(params.temperature), float(params.distill_temperature)

    def head(self) -> tuple[np.ndarray, np.ndarray]:
        return self.W.detach().numpy().copy(), self.c.detach().numpy().copy()

    def dev_scorer(self, dev_queries, dev_rel):
        def score(Wn, cn):
            if dev_queries is None or len(dev_queries) == 0:
                return float("nan")
            return _dev_ndcg(dev_queries @ Wn + cn, self.X @ Wn + cn, dev_rel)

        return score

    @staticmethod
    def st_sign(z):
        """Sign with a straight-through gradient (of tanh(3z))."""
        import torch

        s = torch.tanh(3.0 * z)
        return s + (torch.sign(z) - s).detach()

    def candidate_set(self, qv, must):
        """All documents (small corpora), else the positives, hard negatives and random documents."""
        import torch

        if self.full:
            return None
        with torch.no_grad():
            hard = torch.topk(qv @ self.Xt.T, min(self.p.hard_negatives, self.n), dim=1).indices.reshape(-1).numpy()
        rand = self.rng.choice(self.n, size=min(self.p.random_negatives, self.n), replace=False)
        return np.unique(np.concatenate([np.asarray(must, np.int64), hard, rand]))

    def _positive_mask(self, s, mask_rows, targets, cand, remap):
        import torch

        m = torch.zeros_like(s, dtype=torch.bool)
        for r, others in enumerate(mask_rows):
            for o in others:
                col = o if cand is None else remap.get(o)
                if col is not None and col != targets[r]:
                    m[r, col] = True
        return m

    def listwise(self, qv, targets, mask_rows=None, ce_weight=1.0):
        """Cross-entropy to the target documents (other positives masked) + distillation from the floats."""
        import torch

        F = torch.nn.functional
        cand = self.candidate_set(qv, targets)
        Xc = self.Xt if cand is None else self.Xt[torch.from_numpy(cand)]
        remap = None
        if cand is not None:
            remap = {int(v): i for i, v in enumerate(cand)}
            targets = [remap[int(t)] for t in targets]
        D = self.st_sign(Xc @ self.W + self.c)
        loss = 0.0
        sides = ("binary", "float") if self.p.query_side == "both" else (self.p.query_side,)
        with torch.no_grad():
            teacher = torch.softmax(qv @ Xc.T / self.tau_f, dim=1) if self.p.distill_weight > 0 else None
        for side in sides:
            z = qv @ self.W + self.c
            if side == "binary":
                s = self.st_sign(z) @ D.T / (self.b * self.tau)
            else:
                s = z @ D.T / (np.sqrt(self.b) * self.tau)
            s_ce = s if mask_rows is None else s.masked_fill(self._positive_mask(s, mask_rows, targets, cand, remap), -1e4)
            if ce_weight > 0:
                loss = loss + ce_weight * F.cross_entropy(s_ce, torch.as_tensor(targets))
            if teacher is not None:
                loss = loss + self.p.distill_weight * F.kl_div(F.log_softmax(s, dim=1), teacher, reduction="batchmean")
        return loss

    def _epoch_samples(self, split, T, rng) -> tuple:
        """This epoch's training pairs (a sample of at most ``pairs_per_epoch``) and pseudo-queries."""
        cap = self.p.pairs_per_epoch
        train_pairs, pseudo_train = split["train_pairs"], split["pseudo_train"]
        perm = None
        if train_pairs is not None:
            perm = rng.permutation(len(train_pairs))[:cap]
        pseudo_perm = None
        if T is not None and pseudo_train is not None:
            pseudo_perm = rng.permutation(pseudo_train)[:cap]
        return perm, pseudo_perm

    def batches_per_epoch(self, split) -> int:
        cap = self.p.pairs_per_epoch
        n = len(split["train_pairs"]) if split["train_pairs"] is not None else len(split["pseudo_train"])
        n = n if cap is None else min(n, int(cap))
        return max(1, int(np.ceil(n / int(self.p.batch_size))))

    def epoch(self, split, Q, T, TD, rng, *, deadline=None, on_batch=None) -> tuple[float, bool]:
        """One pass over this epoch's sample of training pairs (or pseudo-queries).

        Returns the mean batch loss and whether training may go on (``False``: ``deadline``, a
        ``time.monotonic()`` value, passed after a batch — possibly the last one of the epoch)."""
        import torch

        bs = int(self.p.batch_size)
        train_pairs = split["train_pairs"]
        perm, pseudo_perm = self._epoch_samples(split, T, rng)
        n_batches = self.batches_per_epoch(split)
        total, done = 0.0, 0
        for bi in range(n_batches):
            loss = 0.0
            if perm is not None:
                rows = train_pairs[perm[bi * bs:(bi + 1) * bs]]
                qv = torch.from_numpy(Q[rows[:, 0]])
                loss = loss + self.listwise(qv, rows[:, 1].tolist(), [split["positives"][int(q)] for q in rows[:, 0]])
            if pseudo_perm is not None and self.p.pseudo_weight > 0:
                take = pseudo_perm[(bi * bs) % max(len(pseudo_perm), 1):][:bs]
                if len(take):
                    loss = loss + self.p.pseudo_weight * self.listwise(
                        torch.from_numpy(T[take]), TD[take].tolist(), ce_weight=float(self.p.pseudo_ce_weight))
            if not isinstance(loss, float):
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                total += float(loss.detach())
            done += 1
            if on_batch is not None:
                on_batch(1)
            if deadline is not None and time.monotonic() > deadline:
                return total / done, False
        return total / max(done, 1), True


def _dev_ndcg(zq: np.ndarray, zd: np.ndarray, rel: list, k: int = 10, block: int = 256) -> float:
    """nDCG@k (binary relevance) of the symmetric Hamming ranking of sign codes (ties: lower row first).

    Queries are scored in blocks of ``block`` with a partial top-k, so large corpora need no
    (n_queries, n_docs) matrix and no full sort."""
    if not len(rel):
        return 0.0
    bq, bd = np.where(zq > 0, 1.0, -1.0).astype(np.float32), np.where(zd > 0, 1.0, -1.0).astype(np.float32)
    k = min(k, bd.shape[0])
    n = bd.shape[0]
    tiebreak = np.arange(n - 1, -1, -1, dtype=np.int64)  # equal scores: the lower row ranks first
    tops = []
    for lo in range(0, len(bq), block):
        # Scores are exact integers (sums of +-1), so score * n + tiebreak is a unique sort key.
        key = np.rint(bq[lo:lo + block] @ bd.T).astype(np.int64) * n + tiebreak
        part = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), key.shape)
        order = np.argsort(-np.take_along_axis(key, part, axis=1), axis=1)
        tops.append(np.take_along_axis(part, order, axis=1))
    top = np.concatenate(tops)
    gains = np.array([[float(int(d) in positives) for d in row] for row, positives in zip(top, rel)]).reshape(-1, k)
    ideal = np.zeros((len(rel), max([len(r) for r in rel] + [1])))
    for row, positives in enumerate(rel):
        ideal[row, : len(positives)] = 1.0
    return float(ndcg_at_k(gains, k, ideal_gains=ideal).mean())
