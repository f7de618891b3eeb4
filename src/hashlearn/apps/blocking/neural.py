"""Neural LSH blocking (NLSHBlock): the sentence encoder fine-tuned with an LSH-based loss on pairs mined
without labels, hyperplane hashing of its vectors, and a label-free guard that falls back to the frozen
model when training made things worse."""

from __future__ import annotations

from functools import partial

import numpy as np

from ...errors import IncompatibleError, NotFittedError, ValidationError
from .base import Blocker
from .embedding import _EmbeddingMixin, _knn_both_ways
from .pairs import check_int, chunks
from .perturb import perturb_record

__all__ = ["NeuralBlocker", "perturb_record"]

_ENCODERS = ("auto", "finetune", "projection")
_POSITIVES = ("auto", "mined", "perturbed", "labelled")
_LOSSES = ("auto", "nlsh", "infonce")


def _hamming_knn_pairs(Q, D, k: int, q_ok: np.ndarray, d_ok: np.ndarray, exclude_self: bool = False, *,
                       n_bits: int, rerank: bool, shortlist: int) -> np.ndarray:
    """``k`` nearest records in Hamming distance of the codes (shortlist ``shortlist * k`` re-ranked by the
    cosine of the vectors when ``rerank``). ``Q`` and ``D`` are ``(unit vectors, codes)`` pairs."""
    from ...codes import knn_search

    (UQ, CQ), (UD, CD) = Q, D
    qi, di = np.flatnonzero(q_ok), np.flatnonzero(d_ok)
    short = min(di.size, (shortlist * k if rerank else k) + int(exclude_self))
    _, I = knn_search(CQ[qi], CD[di], short, n_bits=n_bits)
    I = np.where(I >= 0, di[np.maximum(I, 0)], -1)
    if exclude_self:
        I = np.where(I == qi[:, None], -1, I)
    if rerank:
        sims = np.einsum("qd,qkd->qk", UQ[qi], UD[np.maximum(I, 0)])
        sims[I < 0] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")
    else:
        order = np.argsort(I < 0, axis=1, kind="stable")
    I = np.take_along_axis(I, order, axis=1)[:, :k]
    a, b = np.repeat(qi, I.shape[1]), I.ravel()
    return np.stack([a[b >= 0], b[b >= 0]], axis=1).astype(np.int64)


def _is_model_embedder(embedder) -> bool:
    """True for the default embedder or a :class:`hashlearn.embed.Embedder` naming a model (not a callable)."""
    return embedder is None or (hasattr(embedder, "_backend") and not callable(getattr(embedder, "model", None)))


def _choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValidationError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


class NeuralBlocker(_EmbeddingMixin, Blocker):
    """Neural LSH blocking (NLSHBlock): a sentence encoder fine-tuned with an LSH-based loss, then
    hyperplane hashing (SimHash) of its vectors, ``k`` candidates per record of the smaller table.

    **Encoder** (``encoder``). ``"finetune"``: the language model itself -- the top ``n_layers``
    transformer layers of all-MiniLM-L6-v2 (or the embedder's sentence-transformers model) are copied and
    trained, the lower layers stay frozen and run once per record
    (:class:`~hashlearn.apps.blocking.finetune.TopLayerEncoder`). ``"projection"``: a residual MLP
    ``u = x + W2 gelu(W1 x)`` over frozen embeddings of any embedder (``W2`` starts at zero). ``"auto"``:
    finetune when the embedder is a sentence-transformers model (the default one included), projection
    for a callable embedder.

    **Training signal without labels** (``positives="mined"``, the default for finetune): pairs of the two
    tables that look like matches -- mutual nearest neighbours of the frozen model whose similarity beats
    both records' second best by ``margin``, and records sharing a rare code-like token (a model number
    found in exactly one record of each table) -- with ``n_negatives`` hard negatives per anchor from the
    same block: its nearest records of the other table under the frozen model, its mined partners
    excepted (:mod:`~hashlearn.apps.blocking.mining`). ``"perturbed"``: each record against a noisy copy
    of itself (:func:`perturb_record`), negatives from its own table's nearest records. ``"labelled"``:
    the matches in ``train_pairs`` (supervised mode; the default when they are given).

    **Loss** (``loss="nlsh"``): NLSHBlock's ``max(R, d(a, p)) - min(c R, d(a, n))`` on triplets, where
    ``d`` is the SimHash collision distance ``angle / pi`` (the expected fraction of differing code
    bits), ``R`` the collision radius (default: the median ``d`` of the training positives under the
    frozen model) and ``c`` the gap factor. ``"infonce"`` (projection only; its default): InfoNCE with
    in-batch negatives on the cosine and on the relaxed Hamming agreement.

    **Guard** (``guard=True``). A fraction ``guard_fraction`` of the mined (or labelled) pairs is held
    out of training; after training, the partners' ranks are compared under the frozen and the trained
    model (:func:`~hashlearn.apps.blocking.guard.guard_check`). If recall at ``k`` or the mean reciprocal
    rank got worse beyond the tolerances, the blocker falls back to the frozen model and says so
    (``guard_``: verdict, figures, reason; a warning is logged). With perturbed positives, all mined
    mutual nearest neighbours serve as held-out evidence.

    Candidates: the ``shortlist * k`` nearest codes in Hamming distance, re-ranked by the cosine of the
    vectors when ``rerank``; ``k`` per record of the smaller table as in
    :class:`~hashlearn.apps.blocking.EmbeddingBlocker` (every record in deduplication).

    Training draws from local generators seeded with ``random_state`` (the global torch RNG is left
    untouched; the fine-tuned layers run without dropout) and uses at most 2 torch threads, restoring
    the thread count afterwards.

    Parameters
    ----------
    k : int, default 10
    n_bits : int, default 512
    train_pairs : ndarray of shape (m, 2), optional
        Labelled matches (positions ``(left, right)``).
    encoder : {"auto", "finetune", "projection"}, default "auto"
    n_layers : int, default 2
        Top transformer layers fine-tuned (finetune).
    positives : {"auto", "mined", "perturbed", "labelled"}, default "auto"
    loss : {"auto", "nlsh", "infonce"}, default "auto"
    margin : float, default 0.05
        Mutual-nearest-neighbour margin of mined positives.
    n_negatives : int, default 4
    max_pairs : int or None, default 1000
        At most this many training pairs (a seeded random subset; bounds the training time). None: all.
    radius : float, optional
        Collision radius ``R`` of the NLSH loss (default: median frozen distance of the positives).
    c : float, default 1.5
    guard : bool, default True
    guard_fraction : float, default 0.2
    epochs : int, default 2
    batch_size : int, optional
        Triplets (nlsh, default 32) or pairs (infonce, default 128) per step.
    lr : float, optional
        Default 3e-5 for finetune, 1e-4 for projection.
    temperature : float, default 0.05
        InfoNCE only.
    hidden : int, default 512
        Projection only.
    rerank : bool, default True
    shortlist : int, default 10
    embedder, fields : see :class:`~hashlearn.apps.blocking.EmbeddingBlocker`
    progress : bool, default True
        Progress bars while encoding and training.
    random_state : int, default 0

    Attributes
    ----------
    encoder_, positives_, loss_ : str
        The resolved choices.
    losses_ : list of float
        Mean training loss per epoch.
    guard_ : GuardReport
        The guard's verdict (``guard_.kept``), figures and reason.
    mined_ : dict
        Training pairs by source (``mutual_nn``, ``code_tokens``, ``labelled``, ``perturbed``), the
        held-out count and the triplets trained on.
    radius_ : float
        The collision radius used (nlsh).
    hyperplanes_ : ndarray of shape (d, n_bits), float32
    net_ : torch.nn.Module
        Projection only: the trained residual branch ``x -> W2 gelu(W1 x)``.
    encoder_model_ : TopLayerEncoder
        Finetune only: the fine-tuned top layers (the frozen ones when the guard fell back).
    vectors_ : tuple
        ``(UL, okL, UR, okR)``: unit vectors of the tables trained on (zero rows for empty records) and
        the masks of non-empty records; what :meth:`iter_candidates` hashes.
    fitted_on_ : tuple
        Identity of the tables trained on: :meth:`iter_candidates` on the same tables reuses the
        trained model (so ``k`` can be changed after :meth:`fit`); on other tables it trains again.

    References
    ----------
    R. Wang et al., "Neural Locality Sensitive Hashing for Entity Blocking" (NLSHBlock), SIAM SDM 2024;
    M. S. Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002.
    """

    name = "neural"

    def __init__(self, k=10, *, n_bits=512, train_pairs=None, encoder="auto", n_layers=2, positives="auto",
                 loss="auto", margin=0.05, n_negatives=4, max_pairs=1000, radius=None, c=1.5, guard=True,
                 guard_fraction=0.2,
                 epochs=2, batch_size=None, lr=None, temperature=0.05, hidden=512, rerank=True, shortlist=10,
                 embedder=None, fields=None, progress=True, random_state=0):
        self.k = k
        self.n_bits = n_bits
        self.train_pairs = train_pairs
        self.encoder = encoder
        self.n_layers = n_layers
        self.positives = positives
        self.loss = loss
        self.margin = margin
        self.n_negatives = n_negatives
        self.max_pairs = max_pairs
        self.radius = radius
        self.c = c
        self.guard = guard
        self.guard_fraction = guard_fraction
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.temperature = temperature
        self.hidden = hidden
        self.rerank = rerank
        self.shortlist = shortlist
        self.embedder = embedder
        self.fields = fields
        self.progress = progress
        self.random_state = random_state

    # -- choices ---------------------------------------------------------------------------------------
    def _resolve(self) -> None:
        enc = _choice("encoder", self.encoder, _ENCODERS)
        pos = _choice("positives", self.positives, _POSITIVES)
        loss = _choice("loss", self.loss, _LOSSES)
        if enc == "auto":
            enc = "finetune" if _is_model_embedder(self.embedder) else "projection"
        if pos == "auto":
            pos = "labelled" if self.train_pairs is not None else ("mined" if enc == "finetune" else "perturbed")
        if pos == "labelled" and self.train_pairs is None:
            raise ValidationError("positives='labelled' needs train_pairs")
        if loss == "auto":
            loss = "nlsh" if enc == "finetune" else "infonce"
        if loss == "infonce" and enc == "finetune":
            raise IncompatibleError("loss='infonce' trains the projection only; encoder='finetune' uses loss='nlsh'")
        self.encoder_, self.positives_, self.loss_ = enc, pos, loss
        gf = float(self.guard_fraction)
        if not 0.0 <= gf < 1.0:
            raise ValidationError(f"guard_fraction must be in [0, 1), got {self.guard_fraction!r}")
        if float(self.c) <= 1.0:
            raise ValidationError(f"c must be > 1 (negatives pushed beyond c R), got {self.c!r}")

    # -- fitting ---------------------------------------------------------------------------------------
    def fit(self, left, right=None):
        """Train on the tables (without labels, or from ``train_pairs``), guard, and return self."""
        self._resolve()
        from .fitting import fit_neural

        fit_neural(self, left, right)
        self.fitted_on_ = self._tables_key(left, right)
        return self

    @staticmethod
    def _tables_key(left, right):
        return (id(left), len(left), None if right is None else (id(right), len(right)))

    # -- vectors and codes -----------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "hyperplanes_"):
            raise NotFittedError("NeuralBlocker is not trained yet: call fit() or iter_candidates() first")

    def project(self, X: np.ndarray) -> np.ndarray:
        """Projected (L2-normalised) vectors ``u`` of frozen embeddings ``X`` (n, d) float32 (projection
        encoder; the frozen vectors, normalised, when the guard fell back)."""
        import torch

        self._check_fitted()
        if self.encoder_ != "projection":
            raise IncompatibleError("project() maps frozen embeddings (encoder='projection'); "
                                    "this blocker fine-tuned the encoder: use encode_texts()")
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        if not self.guard_.kept:
            return torch.nn.functional.normalize(Xt, dim=1).numpy()
        with torch.no_grad():
            return torch.nn.functional.normalize(Xt + self.net_(Xt), dim=1).numpy()

    def encode_texts(self, texts) -> np.ndarray:
        """Unit vectors ``(n, d)`` float32 of texts under the trained model (the frozen one when the guard
        fell back); rows of empty texts are zero."""
        self._check_fitted()
        texts = list(texts)
        ok = np.array([bool(t) for t in texts], dtype=bool)
        d = self.hyperplanes_.shape[0]
        out = np.zeros((len(texts), d), dtype=np.float32)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return out
        sub = [texts[i] for i in idx]
        if self.encoder_ == "finetune":
            m = self.encoder_model_
            out[idx] = m.encode(m.bottom_states(sub))
        else:
            out[idx] = self.project(np.asarray(self._embedder().encode(sub), dtype=np.float32))
        return out

    def _codes_of(self, U: np.ndarray) -> np.ndarray:
        from ...codes import pack

        return pack(U @ self.hyperplanes_ > 0)

    def codes(self, X: np.ndarray) -> np.ndarray:
        """Packed uint64 hash codes (n, ceil(n_bits / 64)) of frozen embeddings ``X`` (projection encoder)."""
        return self._codes_of(self.project(X))

    def _candidates(self, left, right):
        k = check_int("k", self.k)
        if getattr(self, "fitted_on_", None) != self._tables_key(left, right):
            self.fit(left, right)
        UL, okL, UR, okR = self.vectors_
        if not okL.any() or not okR.any():
            return
        L = (UL, self._codes_of(UL))
        R = L if right is None else (UR, self._codes_of(UR))
        scorer = partial(_hamming_knn_pairs, n_bits=int(self.n_bits), rerank=self.rerank,
                         shortlist=check_int("shortlist", self.shortlist))
        yield from chunks(_knn_both_ways(L, R, okL, okR, k, right is None, scorer=scorer))

    def report(self) -> dict:
        """What training did, JSON-able: the resolved choices, pairs mined, losses and the guard's verdict."""
        self._check_fitted()
        return {"encoder": self.encoder_, "positives": self.positives_, "loss": self.loss_,
                "mined": dict(self.mined_), "losses": list(self.losses_),
                "radius": getattr(self, "radius_", None), "guard": self.guard_.as_dict(),
                "train_seconds": getattr(self, "train_seconds_", None)}

