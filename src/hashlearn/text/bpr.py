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
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator

from ..codes import pack
from ..errors import NotFittedError, ValidationError
from ..hashing.base import PersistableEstimatorMixin, check_random_state, check_vectors_array
from ..registry import register

__all__ = ["BPRHasher"]

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
        Share of the training queries held out for early stopping (by query, never by pair).
    patience : int, default 6
        Epochs without dev improvement before stopping.
    self_dev : {"agreement", "own_document"}, default "agreement"
        Dev check of the self-supervised mode (no ``pairs``): ``agreement`` scores held-out
        pseudo-queries' binary top-``dev_k`` against the float model's top-``dev_k`` (nDCG@k with the
        float top-k as the relevant set: the distillation target); ``own_document`` scores the
        pseudo-query's source document only (easy for titles, so it rarely moves).
    dev_k : int, default 10
        Size of the float top-k in the ``agreement`` check.
    n_threads : int, default 2
        torch threads.
    random_state : int, Generator or None
    verbose : bool, default False

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
        Mean training loss and dev score of each epoch.

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
                 n_threads: int = 2, random_state=None, verbose: bool = False):
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
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    method_name = "bpr"
    input_kind = "vector"

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

        for name in ("n_bits", "epochs", "batch_size", "n_threads", "patience", "dev_k"):
            positive_int(name)
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

        torch.set_num_threads(int(self.n_threads))
        rng.integers(2**31)  # reserved draw (a torch seed in earlier versions): keeps fitted heads reproducible
        n, b = X.shape[0], self.n_bits
        full = n <= self.max_full_corpus
        Xt = torch.from_numpy(X)

        # Split the queries (supervised) or the pseudo-queries (self-supervised) into train / dev.
        if P is not None:
            qs = np.unique(P[:, 0])
            rng.shuffle(qs)
            n_dev = int(round(len(qs) * self.dev_fraction))
            dev_q = set(qs[:n_dev].tolist())
            train_pairs = P[[q not in dev_q for q in P[:, 0]]]
            dev_pairs = P[[q in dev_q for q in P[:, 0]]]
            pseudo_train = np.arange(len(TD)) if TD is not None else None
            dev_queries, dev_rel = self._dev_from_pairs(Q, dev_pairs)
        else:
            train_pairs = None
            order = rng.permutation(len(TD))
            n_dev = min(int(round(len(TD) * self.dev_fraction)), 1000)
            dev_idx, pseudo_train = order[:n_dev], order[n_dev:]
            dev_queries = T[dev_idx]
            if self.self_dev == "agreement":
                # Distillation check: how well the binary ranking reproduces the float model's top-k.
                k = min(int(self.dev_k), n)
                sims = dev_queries @ X.T
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
                dev_rel = [set(r.tolist()) for r in top]
            else:
                dev_rel = [{int(d)} for d in TD[dev_idx]]
        positives = {}
        if train_pairs is not None:
            for q, dd in P:  # mask every positive of a query (train and dev pairs share no query)
                positives.setdefault(int(q), set()).add(int(dd))

        W = torch.tensor(W0, requires_grad=True)
        c = torch.tensor(c0, requires_grad=True)
        opt = _Adam([W, c], lr=float(self.lr))
        tau, tau_f = float(self.temperature), float(self.distill_temperature)
        F = torch.nn.functional

        def st_sign(z):
            s = torch.tanh(3.0 * z)
            return s + (torch.sign(z) - s).detach()

        def head_np():
            return W.detach().numpy().copy(), c.detach().numpy().copy()

        def dev_score(Wn, cn):
            if dev_queries is None or len(dev_queries) == 0:
                return float("nan")
            return _dev_ndcg(dev_queries @ Wn + cn, X @ Wn + cn, dev_rel)

        def candidate_set(qrows_vecs, must):
            if full:
                return None
            with torch.no_grad():
                sims = qrows_vecs @ Xt.T
                hard = torch.topk(sims, min(self.hard_negatives, n), dim=1).indices.reshape(-1).numpy()
            rand = rng.choice(n, size=min(self.random_negatives, n), replace=False)
            return np.unique(np.concatenate([np.asarray(must, np.int64), hard, rand]))

        def listwise(qv, targets, mask_rows=None, ce_weight=1.0):
            cand = candidate_set(qv, targets)
            Xc = Xt if cand is None else Xt[torch.from_numpy(cand)]
            if cand is not None:
                remap = {int(v): i for i, v in enumerate(cand)}
                targets = [remap[int(t)] for t in targets]
            D = st_sign(Xc @ W + c)
            loss = 0.0
            sides = ("binary", "float") if self.query_side == "both" else (self.query_side,)
            with torch.no_grad():
                teacher = torch.softmax(qv @ Xc.T / tau_f, dim=1) if self.distill_weight > 0 else None
            for side in sides:
                z = qv @ W + c
                qb = st_sign(z) if side == "binary" else z
                s = qb @ D.T / (b * tau) if side == "binary" else qb @ D.T / (np.sqrt(b) * tau)
                s_ce = s
                if mask_rows is not None:
                    m = torch.zeros_like(s, dtype=torch.bool)
                    for r, others in enumerate(mask_rows):
                        for o in others:
                            col = o if cand is None else remap.get(o)
                            if col is not None and col != targets[r]:
                                m[r, col] = True
                    s_ce = s.masked_fill(m, -1e4)
                if ce_weight > 0:
                    loss = loss + ce_weight * F.cross_entropy(s_ce, torch.as_tensor(targets))
                if teacher is not None:
                    loss = loss + self.distill_weight * F.kl_div(F.log_softmax(s, dim=1), teacher,
                                                                 reduction="batchmean")
            return loss

        Wn, cn = head_np()
        best = (dev_score(Wn, cn), -1, Wn, cn)
        self.init_dev_score_ = float(best[0])
        if self.verbose:
            print(f"bpr initial head: dev nDCG@10 {best[0]:.4f}", flush=True)
        history, since_best = [], 0
        bs = int(self.batch_size)
        for epoch in range(int(self.epochs)):
            if train_pairs is not None:
                perm = rng.permutation(len(train_pairs))
                n_batches = max(1, int(np.ceil(len(perm) / bs)))
            else:
                perm = None
                n_batches = max(1, int(np.ceil(len(pseudo_train) / bs)))
            pseudo_perm = rng.permutation(pseudo_train) if T is not None else None
            total = 0.0
            for bi in range(n_batches):
                loss = 0.0
                if perm is not None:
                    rows = train_pairs[perm[bi * bs:(bi + 1) * bs]]
                    qv = torch.from_numpy(Q[rows[:, 0]])
                    loss = loss + listwise(qv, rows[:, 1].tolist(), [positives[int(q)] for q in rows[:, 0]])
                if pseudo_perm is not None and self.pseudo_weight > 0:
                    take = pseudo_perm[(bi * bs) % max(len(pseudo_perm), 1):][:bs]
                    if len(take):
                        tv = torch.from_numpy(T[take])
                        loss = loss + self.pseudo_weight * listwise(tv, TD[take].tolist(),
                                                                    ce_weight=float(self.pseudo_ce_weight))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            Wn, cn = head_np()
            score = dev_score(Wn, cn)
            history.append((total / n_batches, score))
            if self.verbose:
                print(f"bpr epoch {epoch}: loss {total / n_batches:.4f} dev nDCG@10 {score:.4f}", flush=True)
            if np.isnan(score) or score > best[0]:
                best, since_best = (score, epoch, Wn, cn), 0
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        self.components_ = np.ascontiguousarray(best[2], dtype=np.float32)
        self.bias_ = np.ascontiguousarray(best[3], dtype=np.float32)
        self.best_epoch_ = int(best[1])
        self.dev_score_ = float(best[0])
        self.history_ = np.asarray(history, dtype=np.float64).reshape(-1, 2)

    @staticmethod
    def _dev_from_pairs(Q, dev_pairs):
        if len(dev_pairs) == 0:
            return None, None
        rows = np.unique(dev_pairs[:, 0])
        rel = [set(dev_pairs[dev_pairs[:, 0] == r, 1].tolist()) for r in rows]
        return Q[rows], rel


class _Adam:
    """Plain Adam (Kingma & Ba, 2015). torch.optim imports torch._dynamo on first use, which costs tens
    of seconds on a small machine; two parameter tensors do not need it."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        import torch

        self.params, self.lr, self.betas, self.eps, self.t = list(params), lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        import torch

        self.t += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                mhat = m / (1 - b1 ** self.t)
                vhat = v / (1 - b2 ** self.t)
                p.sub_(self.lr * mhat / (vhat.sqrt() + self.eps))


def _dev_ndcg(zq: np.ndarray, zd: np.ndarray, rel: list, k: int = 10) -> float:
    """nDCG@k (binary relevance) of the symmetric Hamming ranking of sign codes (ties: lower row first)."""
    bq, bd = np.where(zq > 0, 1.0, -1.0).astype(np.float32), np.where(zd > 0, 1.0, -1.0).astype(np.float32)
    scores = bq @ bd.T
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for row, positives in enumerate(rel):
        dcg = sum(disc[i] for i, dd in enumerate(top[row]) if int(dd) in positives)
        idcg = disc[: min(k, len(positives))].sum()
        total += dcg / idcg if idcg > 0 else 0.0
    return total / max(len(rel), 1)
