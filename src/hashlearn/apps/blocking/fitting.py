"""Fitting :class:`~hashlearn.apps.blocking.NeuralBlocker`: encoder, training pairs, triplets, training,
guard. The blocker holds the parameters; :func:`fit_neural` sets its fitted attributes.

Records are addressed by *ids*: the non-empty records of the left table are ``0 .. nL-1``, those of the
right table ``nL .. nL+nR-1`` (in deduplication the one table only); perturbed copies, when used, come
after them.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ...errors import ValidationError
from .guard import GuardReport, guard_check
from .mining import code_token_pairs, hard_negatives, mutual_nearest_pairs, split_pairs
from .pairs import check_int
from .perturb import perturb_record

__all__ = ["fit_neural"]

log = logging.getLogger(__name__)


# -- encoders ----------------------------------------------------------------------------------------
class _FinetuneModel:
    """Fine-tuned top layers of the language model over cached bottom states, one per id."""

    def __init__(self, nb, texts: list):
        from .finetune import TopLayerEncoder, sentence_transformer_of

        self.enc = TopLayerEncoder(sentence_transformer_of(nb._embedder()), check_int("n_layers", nb.n_layers))
        self.progress = bool(nb.progress)
        self.states = self._bottom(texts, "MiniLM frozen layers")

    def _bottom(self, texts, desc):
        from tqdm.auto import tqdm

        with tqdm(total=len(texts), desc=desc, disable=not self.progress, leave=False, unit="rec") as bar:
            return self.enc.bottom_states(texts, progress=bar.update)

    def add_texts(self, texts: list) -> np.ndarray:
        start = len(self.states)
        self.states += self._bottom(texts, "perturbed copies")
        return np.arange(start, len(self.states))

    def encode(self, ids: np.ndarray) -> np.ndarray:
        return self.enc.encode([self.states[i] for i in ids])

    def forward(self, ids: np.ndarray):
        return self.enc.forward([self.states[i] for i in ids])

    def parameters(self):
        return self.enc.layers.parameters()

    def state(self):
        return self.enc.state()

    def load_state(self, state) -> None:
        self.enc.load_state(state)

    def publish(self, nb) -> None:
        nb.encoder_model_ = self.enc


class _ProjectionModel:
    """Residual projection ``x + W2 gelu(W1 x)`` over frozen embeddings, one row per id."""

    def __init__(self, nb, texts: list):
        import torch

        from .training import _projection_net

        self.nb = nb
        self.X = np.asarray(nb._embedder().encode(texts), dtype=np.float32) if texts else np.zeros((0, 1), np.float32)
        self.net = _projection_net(self.X.shape[1], check_int("hidden", nb.hidden),
                                   torch.Generator().manual_seed(int(nb.random_state or 0)))

    def add_texts(self, texts: list) -> np.ndarray:
        start = self.X.shape[0]
        self.X = np.concatenate([self.X, np.asarray(self.nb._embedder().encode(texts), dtype=np.float32)])
        return np.arange(start, self.X.shape[0])

    def forward(self, ids: np.ndarray):
        import torch

        x = torch.from_numpy(self.X[ids])
        return torch.nn.functional.normalize(x + self.net(x), dim=1)

    def encode(self, ids: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.forward(ids).numpy() if ids.size else np.zeros((0, self.X.shape[1]), np.float32)

    def parameters(self):
        return self.net.parameters()

    def state(self):
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def load_state(self, state) -> None:
        self.net.load_state_dict(state)

    def publish(self, nb) -> None:
        nb.net_ = self.net.eval()


# -- training pairs ----------------------------------------------------------------------------------
def _labelled(nb, left, right, okL, okR, nL):
    """``train_pairs`` (positions) as id pairs; pairs touching an empty record are dropped."""
    tp = np.asarray(nb.train_pairs)
    nR = len(left) if right is None else len(right)
    if tp.ndim != 2 or tp.shape[1] != 2 or tp.dtype.kind not in "iu":
        raise ValidationError(f"train_pairs must be an (m, 2) integer array, got {tp.dtype} {tp.shape}")
    if tp.size and (tp.min() < 0 or tp[:, 0].max() >= len(left) or tp[:, 1].max() >= nR):
        raise ValidationError(f"train_pairs holds positions outside the tables ({len(left)} x {nR} records)")
    okr = okL if right is None else okR
    tp = tp[okL[tp[:, 0]] & okr[tp[:, 1]]]
    if tp.shape[0] < 2:
        raise ValidationError("train_pairs needs at least 2 pairs of non-empty records")
    mapL = np.cumsum(okL) - 1
    mapR = mapL if right is None else np.cumsum(okR) - 1 + nL
    return np.stack([mapL[tp[:, 0]], mapR[tp[:, 1]]], axis=1).astype(np.int64)


def _mined(nb, ZL0, ZR0, tL, tR, dedup: bool):
    """Mutual nearest neighbours with a margin, united with rare code-token pairs (id pairs, sources)."""
    nL = ZL0.shape[0]
    nn, _ = mutual_nearest_pairs(ZL0, None if dedup else ZR0, margin=float(nb.margin))
    code = code_token_pairs(tL, None if dedup else tR)
    shift = 0 if dedup else nL
    both = np.concatenate([nn, code]) + np.array([0, shift])
    pairs = np.unique(both, axis=0)
    return pairs.astype(np.int64), {"mutual_nn": int(nn.shape[0]), "code_tokens": int(code.shape[0]),
                                    "union": int(pairs.shape[0])}


def _triplets(Z0: np.ndarray, pairs: np.ndarray, exclude: np.ndarray, left_ids: np.ndarray,
              right_ids: np.ndarray, m: int, dedup: bool):
    """Both directions of every pair as (anchor, positive, negatives); the negatives of an anchor are its
    nearest records of its partner's table under the frozen vectors, every pair of ``exclude`` (all
    positives, held-out ones included) excepted."""
    a = np.concatenate([pairs[:, 0], pairs[:, 1]])
    p = np.concatenate([pairs[:, 1], pairs[:, 0]])
    n = np.full((a.shape[0], m), -1, dtype=np.int64)
    if dedup:
        n[:] = _hard_negatives(Z0, a, exclude, left_ids, m)
        return a, p, n
    for own, other in ((left_ids, right_ids), (right_ids, left_ids)):
        sel = np.flatnonzero(np.isin(a, own))
        if sel.size:
            n[sel] = _hard_negatives(Z0, a[sel], exclude, other, m)
    return a, p, n


def _hard_negatives(Z0, anchors, pairs, pool, m):
    """``m`` nearest ids of ``pool`` per anchor under ``Z0``, the anchor and its partners in ``pairs``
    excepted."""
    partners: dict = {}
    for x, y in pairs:
        partners.setdefault(int(x), set()).add(int(y))
        partners.setdefault(int(y), set()).add(int(x))
    pos_in_pool = {int(v): i for i, v in enumerate(pool)}
    excl = [(t, pos_in_pool[q]) for t, a in enumerate(anchors) for q in partners.get(int(a), ()) | {int(a)}
            if q in pos_in_pool]
    neg = hard_negatives(Z0[anchors], Z0[pool], np.arange(anchors.shape[0]),
                         np.array(excl, dtype=np.int64).reshape(-1, 2), m)
    return np.where(neg >= 0, pool[np.maximum(neg, 0)], -1)


# -- the fit -----------------------------------------------------------------------------------------
def _perturbed_texts(nb, table, ok, rng):
    cols = [table.values[f] for f in (nb.fields if nb.fields is not None else table.fields)]
    return [perturb_record([c[i] for c in cols], rng) for i in np.flatnonzero(ok)]


def _split(nb, pairs, rng):
    if not nb.guard:
        return pairs, np.empty((0, 2), dtype=np.int64)
    return split_pairs(pairs, float(nb.guard_fraction), rng)


def _hyperplanes(d: int, n_bits: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((d, n_bits)).astype(np.float32)


def fit_neural(nb, left, right) -> None:
    """Fit ``nb`` (a NeuralBlocker whose choices are resolved) on the tables; see its docstring."""
    t0 = time.perf_counter()
    dedup = right is None
    tL = left.texts(nb.fields)
    tR = tL if dedup else right.texts(nb.fields)
    okL = np.array([bool(t) for t in tL], dtype=bool)
    okR = okL if dedup else np.array([bool(t) for t in tR], dtype=bool)
    iL, iR = np.flatnonzero(okL), np.flatnonzero(okR)
    texts = [tL[i] for i in iL] + ([] if dedup else [tR[i] for i in iR])
    nL = iL.size
    left_ids = np.arange(nL)
    right_ids = left_ids if dedup else np.arange(nL, nL + iR.size)
    model = (_FinetuneModel if nb.encoder_ == "finetune" else _ProjectionModel)(nb, texts)
    seed = int(nb.random_state or 0)
    rng = np.random.default_rng(seed)
    Z0 = model.encode(np.arange(len(texts)))
    mined, sources = _mined(nb, Z0[left_ids], Z0[right_ids], [tL[i] for i in iL], [tR[i] for i in iR], dedup)
    if nb.positives_ == "labelled":
        train, held = _split(nb, _labelled(nb, left, right, okL, okR, nL), rng)
        sources = {"labelled": int(train.shape[0] + held.shape[0])}
    elif nb.positives_ == "mined":
        train, held = _split(nb, mined, rng)
    else:
        copies = _perturbed_texts(nb, left, okL, rng) + ([] if dedup else _perturbed_texts(nb, right, okR, rng))
        ids = model.add_texts(copies)
        train = np.stack([np.arange(len(texts)), ids], axis=1)
        held = mined if nb.guard else np.empty((0, 2), dtype=np.int64)
        sources = {**sources, "perturbed": int(ids.size)}
        Z0 = np.concatenate([Z0, model.encode(ids)])
    sources["held_out"] = int(held.shape[0])
    if nb.max_pairs is not None and train.shape[0] > check_int("max_pairs", nb.max_pairs):
        train = train[np.sort(rng.choice(train.shape[0], int(nb.max_pairs), replace=False))]
    sources["trained_on"] = int(train.shape[0])
    initial = model.state()
    exclude = np.concatenate([train, held, mined])
    _train(nb, model, Z0, train, exclude, left_ids, right_ids, dedup, sources, seed)
    _guard_and_publish(nb, model, Z0, held, initial, left_ids, right_ids, dedup, (okL, okR, iL, iR))
    nb.mined_ = sources
    nb.train_seconds_ = time.perf_counter() - t0


def _train(nb, model, Z0, train, exclude, left_ids, right_ids, dedup, sources, seed) -> None:
    from .training import simhash_distance, train_projection, train_triplets

    d = Z0.shape[1]
    epochs = check_int("epochs", nb.epochs)
    if nb.loss_ == "infonce":
        bs = check_int("batch_size", 128 if nb.batch_size is None else nb.batch_size, 2)
        trained = train_projection(model.X[train[:, 0]], model.X[train[:, 1]], n_bits=check_int("n_bits", nb.n_bits),
                                   hidden=check_int("hidden", nb.hidden), epochs=epochs, batch_size=bs,
                                   lr=1e-4 if nb.lr is None else float(nb.lr), temperature=float(nb.temperature),
                                   seed=seed)
        model.net, nb.hyperplanes_, nb.losses_ = trained.net, trained.hyperplanes, trained.losses
        sources["triplets"] = int(train.shape[0])
        return
    import torch

    nb.hyperplanes_ = _hyperplanes(d, check_int("n_bits", nb.n_bits), seed)
    if train.shape[0] < 2:
        nb.losses_, nb.radius_ = [], float("nan")
        sources["triplets"] = 0
        return
    if nb.positives_ == "perturbed":  # copies live with their records: negatives from the record's own table
        a = train[:, 0]
        p = train[:, 1]
        n = np.full((a.size, check_int("n_negatives", nb.n_negatives, 0)), -1, dtype=np.int64)
        for ids in (left_ids, right_ids):
            sel = np.flatnonzero(np.isin(a, ids))
            if sel.size:
                n[sel] = _hard_negatives(Z0, a[sel], exclude, ids, n.shape[1])
    else:
        a, p, n = _triplets(Z0, train, exclude, left_ids, right_ids, check_int("n_negatives", nb.n_negatives, 0),
                            dedup)
    with torch.no_grad():
        dist = simhash_distance(torch.from_numpy(Z0[a]), torch.from_numpy(Z0[p])).numpy()
    nb.radius_ = float(np.median(dist)) if nb.radius is None else float(nb.radius)
    bs = check_int("batch_size", 32 if nb.batch_size is None else nb.batch_size, 1)
    lr = (3e-5 if nb.encoder_ == "finetune" else 1e-4) if nb.lr is None else float(nb.lr)
    nb.losses_ = train_triplets(model.forward, model.parameters(), a, p, n, radius=nb.radius_, c=float(nb.c),
                                epochs=epochs, batch_size=bs, lr=lr, seed=seed, progress=bool(nb.progress))
    sources["triplets"] = int(a.size)


def _guard_and_publish(nb, model, Z0, held, initial, left_ids, right_ids, dedup, masks) -> None:
    okL, okR, iL, iR = masks
    k = check_int("k", nb.k)
    Z1 = model.encode(np.arange(left_ids.size + (0 if dedup else right_ids.size)))
    frozen = (Z0[left_ids], Z0[right_ids])
    trained = (Z1[left_ids], Z1[right_ids])
    if not nb.guard:
        report = GuardReport(True, "guard off: trained model used without a check", 0, k=k)
    elif held.shape[0]:
        shift = 0 if dedup else left_ids.size
        report = guard_check(frozen, trained, held - np.array([0, shift]), k, dedup=dedup)
    else:
        report = guard_check(frozen, trained, held, k, dedup=dedup)
    if not report.kept:
        model.load_state(initial)
        Z1 = Z0[: Z1.shape[0]]
        log.warning("NeuralBlocker: %s", report.reason)
    nb.guard_ = report
    model.publish(nb)
    d = Z1.shape[1]
    UL = np.zeros((okL.shape[0], d), dtype=np.float32)
    UL[iL] = Z1[left_ids]
    if dedup:
        nb.vectors_ = (UL, okL, UL, okL)
        return
    UR = np.zeros((okR.shape[0], d), dtype=np.float32)
    UR[iR] = Z1[right_ids]
    nb.vectors_ = (UL, okL, UR, okR)
