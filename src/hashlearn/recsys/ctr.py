"""CTR prediction from a user's behaviour history: embeddings + MLP, with four ways to pool the history.

The model scores (user, target item) events: ``MLP([e_user, e_target, v, e_target ⊙ v])`` where ``v``
pools the embeddings of the items the user interacted with before the event:

``sdim``
    SDIM (Cao et al. 2022): ``n_hashes`` SimHash functions of ``hash_bits`` bits each over item
    embeddings; the behaviours whose signature equals the target's are gathered under every function
    and averaged, each weighted by the number of functions under which it collides (so the weight of a
    behaviour estimates the SimHash collision probability ``(1 - θ/π)^hash_bits`` with the target, a
    kernel that plays the role of attention). No attention at serving time: a user's history is kept
    as bucket sums and counts per (function, signature), and a prediction costs ``n_hashes``
    look-ups whatever the history length.
``attention``
    DIN-like target attention: an MLP scores ``[e_b, e_t, e_b - e_t, e_b ⊙ e_t]`` per behaviour,
    softmax over the history. ``max_history=50`` gives the usual "last 50 behaviours" variant.
``mean``
    Mean of the behaviour embeddings.

Labels are ``rating >= threshold``. User and item embeddings go through any compressor of
:mod:`hashlearn.recsys.compress`. Needs torch (the ``[deep]`` extra), imported when training/predicting.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import NotFittedError, ValidationError
from ..hashing.base import PersistableEstimatorMixin, check_random_state
from ..io.persist import persistable
from ._torch import check_positive_float, check_positive_int, padded_rows, torch_generator, torch_threads
from .compress import check_interactions
from .interactions import Interactions
from .mf import fit_compressor

__all__ = ["HistoryCTR", "POOLINGS", "Timeline"]

POOLINGS = ("sdim", "attention", "mean")


class Timeline:
    """Per-user chronological behaviour sequences (catalogue positions) of an :class:`Interactions`.

    ``seq`` holds every user's behaviours in time order (all events, or those where ``behaviour`` is
    True), ``start[u]`` where user ``u``'s run begins and ``pos[e]`` the number of behaviours of the
    user strictly before event ``e`` (so its history is ``seq[start[u] + pos[e] - L : start[u] + pos[e]]``).
    """

    def __init__(self, inter: Interactions, behaviour: np.ndarray | None = None):
        order = inter.chronological()
        users = inter.user_index()
        beh = np.ones(len(inter), bool) if behaviour is None else np.asarray(behaviour, bool)
        u_sorted, b_sorted = users[order], beh[order]
        self.seq = inter.item_index()[order][b_sorted]
        self.start = np.searchsorted(u_sorted[b_sorted], np.arange(inter.n_users + 1)).astype(np.int64)
        # behaviours of the user before each event: running count minus the user's count at its start
        run = np.cumsum(b_sorted) - b_sorted
        first = np.searchsorted(u_sorted, u_sorted)  # index of the user's first event in time order
        before = run - run[first]
        pos = np.empty(len(inter), np.int64)
        pos[order] = before
        self.pos = pos
        self.user = users
        self.item = inter.item_index()

    def histories(self, events: np.ndarray, max_len: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(B, L) item positions (-1 padding) of the histories of ``events`` (oldest first), and lengths."""
        lengths = self.pos[events]
        if max_len is not None:
            lengths = np.minimum(lengths, max_len)
        L = max(int(lengths.max()) if lengths.size else 0, 1)
        first = self.start[self.user[events]] + self.pos[events] - lengths
        idx = first[:, None] + np.arange(L)[None, :]
        valid = np.arange(L)[None, :] < lengths[:, None]
        hist = np.where(valid, self.seq[np.minimum(idx, self.seq.size - 1)], -1)
        return hist, lengths


def _build_net(torch, n_user_rows, n_item_rows, dim, hidden, att_hidden, n_hashes, hash_bits, gen):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.Wu = nn.Parameter(0.05 * torch.randn(n_user_rows + 1, dim, generator=gen))
            self.Wi = nn.Parameter(0.05 * torch.randn(n_item_rows + 1, dim, generator=gen))
            with torch.no_grad():
                self.Wu[-1].zero_()
                self.Wi[-1].zero_()
            self.att = nn.Sequential(nn.Linear(4 * dim, att_hidden), nn.ReLU(), nn.Linear(att_hidden, 1))
            layers, width = [], 4 * dim
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            layers.append(nn.Linear(width, 1))
            self.mlp = nn.Sequential(*layers)
            self.register_buffer("proj", torch.randn(dim, n_hashes * hash_bits, generator=gen))
            self.register_buffer("powers", 2 ** torch.arange(hash_bits))

        def codes(self, e):
            """SimHash signature of each row of ``e`` (..., d) → (..., n_hashes) int64."""
            bits = (e @ self.proj > 0).long().view(*e.shape[:-1], n_hashes, hash_bits)
            return (bits * self.powers).sum(-1)

    net = Net()
    for m in list(net.att) + list(net.mlp):
        if isinstance(m, nn.Linear):
            bound = 1.0 / np.sqrt(m.in_features)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=gen)
                m.bias.uniform_(-bound, bound, generator=gen)
    return net


@persistable
class HistoryCTR(PersistableEstimatorMixin, BaseEstimator):
    """CTR model (embeddings + MLP) over a pooled behaviour history: SDIM, target attention or mean.

    Parameters
    ----------
    compressor : BaseCompressor or None
        ID → rows for users and items (None: one row per ID).
    pooling : {"sdim", "attention", "mean"}, default "sdim"
    max_history : int or None, default None
        Keep only the last ``max_history`` behaviours (None: the whole history).
    dim : int, default 32
    n_hashes, hash_bits : int, default 48 and 3
        SDIM's number of SimHash functions and bits per function.
    sdim_norm : {"count", "l2"}, default "count"
        How SDIM aggregates: "count" — weighted mean of the behaviours, weight = number of functions
        under which a behaviour collides with the target; "l2" — per function, the L2-normalised sum
        of the colliding behaviours, then the mean over functions (the SDIM paper's normalisation).
    hidden : tuple of int, default (64, 32)
    att_hidden : int, default 32
    epochs : int, default 2
    lr : float, default 0.002 (Adam)
    batch_size : int, default 256
    l2 : float, default 1e-6
    threshold : float, default 4.0
        Label = rating >= threshold.
    behaviours : {"positive", "all"}, default "positive"
        Which earlier events form the history: the positive ones (rating >= threshold, the "clicks")
        or all of them.
    user_embedding : bool, default True
        Feed the user-ID embedding to the MLP; False leaves the pooled history as the only user
        feature (so the pooling is what the model's quality depends on).
    n_threads : int, default 1
    random_state : int, Generator or None

    Attributes
    ----------
    compressor_ : BaseCompressor (fitted)
    weights_ : dict of float32 arrays (the network's parameters and SimHash projections)
    loss_ : list of float (mean training loss per epoch)

    References
    ----------
    Cao, Zhou, Chen, Wang, Chen, Dai, Li, Chen, Yang, "Sampling Is All You Need on Modeling Long-Term
    User Behaviors for CTR Prediction", CIKM 2022 (SDIM). Zhou et al., "Deep Interest Network for
    Click-Through Rate Prediction", KDD 2018 (target attention). Charikar, "Similarity estimation
    techniques from rounding algorithms", STOC 2002 (SimHash).
    """

    def __init__(self, compressor=None, *, pooling: str = "sdim", max_history: int | None = None, dim: int = 32,
                 n_hashes: int = 48, hash_bits: int = 3, sdim_norm: str = "count", hidden=(64, 32), att_hidden: int = 32, epochs: int = 2,
                 lr: float = 0.002, batch_size: int = 256, l2: float = 1e-6, threshold: float = 4.0,
                 user_embedding: bool = True, behaviours: str = "positive", n_threads: int = 1,
                 random_state=None):
        self.compressor = compressor
        self.pooling = pooling
        self.max_history = max_history
        self.dim = dim
        self.n_hashes = n_hashes
        self.hash_bits = hash_bits
        self.sdim_norm = sdim_norm
        self.hidden = hidden
        self.att_hidden = att_hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.l2 = l2
        self.threshold = threshold
        self.user_embedding = user_embedding
        self.behaviours = behaviours
        self.n_threads = n_threads
        self.random_state = random_state

    # -- parameters --------------------------------------------------------------------------------
    def _check_params(self):
        if self.behaviours not in ("positive", "all"):
            raise ValidationError(f"behaviours must be 'positive' or 'all', got {self.behaviours!r}")
        if self.sdim_norm not in ("count", "l2"):
            raise ValidationError(f"sdim_norm must be 'count' or 'l2', got {self.sdim_norm!r}")
        if self.pooling not in POOLINGS:
            raise ValidationError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.max_history is not None:
            check_positive_int(self.max_history, "max_history")
        for name in ("dim", "n_hashes", "hash_bits", "att_hidden", "epochs", "batch_size", "n_threads"):
            check_positive_int(getattr(self, name), name)
        if self.hash_bits > 16:
            raise ValidationError(f"hash_bits must be at most 16, got {self.hash_bits}")
        for h in tuple(self.hidden):
            check_positive_int(h, "hidden layer width")
        check_positive_float(self.lr, "lr")
        check_positive_float(self.l2, "l2", allow_zero=True)
        if not isinstance(self.threshold, numbers.Real):
            raise ValidationError(f"threshold must be a number, got {self.threshold!r}")

    def _new_net(self, torch, gen, comp):
        return _build_net(torch, comp.n_user_rows_, comp.n_item_rows_, int(self.dim), tuple(self.hidden),
                          int(self.att_hidden), int(self.n_hashes), int(self.hash_bits), gen)

    # -- training ------------------------------------------------------------------------------------
    def fit(self, interactions, y=None, *, item_features=None):
        """Train on every event of ``interactions`` (history = the user's earlier events in it).

        Returns ``self``.
        """
        self._check_params()
        X = check_interactions(interactions)
        rng = check_random_state(self.random_state)
        comp = fit_compressor(self.compressor, X, item_features)
        tl = self._timeline(X)
        labels = (X.rating >= float(self.threshold)).astype(np.float32)
        with torch_threads(self.n_threads) as torch:
            gen = torch_generator(rng)
            net = self._new_net(torch, gen, comp)
            losses = self._train(torch, net, comp, tl, labels, rng)
            self.weights_ = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        self.compressor_ = comp
        self.loss_ = losses
        self._net = net
        return self

    def _timeline(self, inter: Interactions) -> Timeline:
        beh = None if self.behaviours == "all" else inter.rating >= float(self.threshold)
        return Timeline(inter, beh)

    def _batches(self, tl: Timeline, rng) -> list[np.ndarray]:
        """Events in batches of similar history length (little padding), batch order shuffled."""
        n = tl.pos.size
        lengths = tl.pos if self.max_history is None else np.minimum(tl.pos, int(self.max_history))
        order = np.lexsort((rng.random(n), lengths))
        bs = int(self.batch_size)
        batches = [order[s:s + bs] for s in range(0, n, bs)]
        return [batches[k] for k in rng.permutation(len(batches))]

    def _train(self, torch, net, comp, tl, labels, rng):
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        F = torch.nn.functional
        U = torch.from_numpy(padded_rows(comp.user_rows_, comp.n_user_rows_))
        I = torch.from_numpy(self._item_rows_table(comp))
        y_all = torch.from_numpy(labels)
        losses = []
        for _ in range(int(self.epochs)):
            total = 0.0
            for events in self._batches(tl, rng):
                hist, lengths = tl.histories(events, self.max_history)
                logits = self._forward(torch, net, U[tl.user[events]], I, events, tl, hist)
                y = y_all[events]
                loss = F.binary_cross_entropy_with_logits(logits, y)
                if self.l2:
                    loss = loss + float(self.l2) * (net.Wu.pow(2).sum() + net.Wi.pow(2).sum()) / events.size
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    net.Wu[-1].zero_()
                    net.Wi[-1].zero_()
                total += float(loss.detach()) * events.size
            losses.append(total / labels.size)
        return losses

    @staticmethod
    def _item_rows_table(comp) -> np.ndarray:
        """Item rows with two extra lines: the fallback item (index n_items) and padding (n_items + 1)."""
        rows = padded_rows(comp.item_rows_, comp.n_item_rows_)
        k = rows.shape[1]
        fallback = np.full((1, k), comp.n_item_rows_, np.int64)
        fallback[0, 0] = comp.item_fallback_row_
        pad = np.full((1, k), comp.n_item_rows_, np.int64)
        return np.vstack([rows, fallback, pad])

    def _forward(self, torch, net, user_rows, I, events, tl, hist):
        F = torch.nn.functional
        eu = F.embedding(user_rows, net.Wu).sum(1)
        if not self.user_embedding:
            eu = torch.zeros_like(eu)
        tgt = torch.from_numpy(tl.item[events])
        et = F.embedding(I[tgt], net.Wi).sum(1)
        h = torch.from_numpy(np.where(hist < 0, I.shape[0] - 1, hist))
        mask = torch.from_numpy(hist >= 0)
        eb = F.embedding(I[h], net.Wi).sum(2)  # (B, L, d)
        v = self._pool(torch, net, eb, et, mask, I, h, tgt)
        return net.mlp(torch.cat([eu, et, v, et * v], dim=1)).squeeze(1)

    def _pool(self, torch, net, eb, et, mask, I, h, tgt):
        m = mask.to(eb.dtype)
        if self.pooling == "mean":
            return (eb * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)
        if self.pooling == "attention":
            t = et[:, None, :].expand_as(eb)
            score = net.att(torch.cat([eb, t, eb - t, eb * t], dim=-1)).squeeze(-1)
            score = score.masked_fill(~mask, float("-inf"))
            w = torch.softmax(score, dim=1)
            w = torch.nan_to_num(w, nan=0.0)  # empty history: all -inf → zeros
            return (w[..., None] * eb).sum(1)
        # sdim: signatures of all items once per batch (no gradient through the sign)
        with torch.no_grad():
            all_codes = net.codes(torch.nn.functional.embedding(I, net.Wi).sum(1))  # (n_items + 2, m)
        cb, ct = all_codes[h], all_codes[tgt]  # (B, L, m), (B, m)
        match = ((cb == ct[:, None, :]) & mask[..., None]).to(eb.dtype)  # (B, L, m)
        if self.sdim_norm == "l2":
            per_hash = torch.einsum("blm,bld->bmd", match, eb)  # bucket sum under each function
            return torch.nn.functional.normalize(per_hash, dim=-1, eps=1e-12).mean(1)
        hits = match.sum(-1)  # (B, L) collisions
        w = hits / hits.sum(1, keepdim=True).clamp(min=1.0)
        return (w[..., None] * eb).sum(1)

    # -- prediction ----------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "weights_"):
            raise NotFittedError("this HistoryCTR is not fitted yet: call fit(interactions) first")

    def _get_net(self, torch):
        net = getattr(self, "_net", None)
        if net is None:
            gen = torch.Generator()
            net = self._new_net(torch, gen, self.compressor_)
            net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.weights_.items()})
            self._net = net
        return net

    def predict_proba(self, interactions: Interactions, *, context: Interactions | None = None,
                      batch_size: int = 512) -> np.ndarray:
        """Click probability (n,) float32 of each event of ``interactions``.

        The history of an event is its user's events in ``context`` and ``interactions`` that come
        before it in time (context first on ties). Both must share the model's catalogues; use
        :meth:`predict_ids` for raw ids with unknown-id fallback.
        """
        self._check_fitted()
        comp = self.compressor_
        for part in (interactions,) + ((context,) if context is not None else ()):
            if not isinstance(part, Interactions):
                raise ValidationError(f"expected Interactions, got {type(part).__name__}")
            if not (np.array_equal(part.item_ids, comp.item_ids_) and np.array_equal(part.user_ids, comp.user_ids_)):
                raise ValidationError("interactions must share the catalogues the model was fitted on")
        n = len(interactions)
        if context is not None and len(context):
            both = Interactions(*(np.r_[getattr(context, f), getattr(interactions, f)]
                                  for f in ("user", "item", "rating", "timestamp")),
                                interactions.user_ids, interactions.item_ids)
            offset = len(context)
        else:
            both, offset = interactions, 0
        tl = self._timeline(both)
        out = np.empty(n, np.float32)
        with torch_threads(self.n_threads) as torch:
            net = self._get_net(torch)
            U = torch.from_numpy(padded_rows(comp.user_rows_, comp.n_user_rows_))
            I = torch.from_numpy(self._item_rows_table(comp))
            with torch.inference_mode():
                for s in range(0, n, batch_size):
                    events = offset + np.arange(s, min(n, s + batch_size))
                    hist, _ = tl.histories(events, self.max_history)
                    logits = self._forward(torch, net, U[tl.user[events]], I, events, tl, hist)
                    out[s:s + events.size - 0] = torch.sigmoid(logits).numpy()
        return out

    # -- serving -------------------------------------------------------------------------------------
    def serving_state(self, history: Interactions) -> dict:
        """Per-user state precomputed from ``history`` (the users' behaviours so far).

        sdim: bucket sums and counts per (hash function, signature) — (n_users, n_hashes, 2**hash_bits,
        dim); mean: the mean behaviour embedding; attention: the item sequences. Embeddings of every
        catalogue user and item (plus fallback rows) are included.
        """
        self._check_fitted()
        comp = self.compressor_
        tl = self._timeline(history)
        with torch_threads(self.n_threads) as torch, torch.inference_mode():
            net = self._get_net(torch)
            U = torch.from_numpy(padded_rows(comp.user_rows_, comp.n_user_rows_))
            I = torch.from_numpy(self._item_rows_table(comp))
            F = torch.nn.functional
            user_emb = F.embedding(U, net.Wu).sum(1)
            fb = torch.full((1, U.shape[1]), comp.n_user_rows_, dtype=torch.long)
            fb[0, 0] = comp.user_fallback_row_
            user_emb = torch.cat([user_emb, F.embedding(fb, net.Wu).sum(1)])
            item_emb = F.embedding(I, net.Wi).sum(1)  # (n_items + 2, d): fallback, then zero padding
            state = {"user_emb": user_emb, "item_emb": item_emb, "pooling": self.pooling}
            n_users = history.n_users
            lengths = np.diff(tl.start)
            keep_from = tl.start[1:] - (lengths if self.max_history is None else
                                        np.minimum(lengths, int(self.max_history)))
            owner = np.repeat(np.arange(n_users), lengths)
            kept = np.arange(tl.seq.size) >= keep_from[owner]
            seq, own = tl.seq[kept], owner[kept]
            if self.pooling == "mean":
                sums = torch.zeros(n_users + 1, item_emb.shape[1])
                sums.index_add_(0, torch.from_numpy(own), item_emb[torch.from_numpy(seq)])
                cnt = torch.from_numpy(np.bincount(own, minlength=n_users + 1).astype(np.float32))
                state["mean"] = sums / cnt.clamp(min=1.0)[:, None]
            elif self.pooling == "sdim":
                m, K = int(self.n_hashes), 2 ** int(self.hash_bits)
                codes = net.codes(item_emb)[torch.from_numpy(seq)]  # (n_kept, m)
                flat = (torch.from_numpy(own)[:, None] * m + torch.arange(m)[None, :]) * K + codes
                sums = torch.zeros((n_users + 1) * m * K, item_emb.shape[1])
                sums.index_add_(0, flat.reshape(-1), item_emb[torch.from_numpy(seq)].repeat_interleave(m, 0))
                cnt = torch.zeros((n_users + 1) * m * K)
                cnt.index_add_(0, flat.reshape(-1), torch.ones(flat.numel()))
                state["bucket_sum"], state["bucket_count"] = sums, cnt
            else:
                starts = np.searchsorted(own, np.arange(n_users + 2))
                state["seq"], state["starts"] = seq, starts
        return state

    def predict_serving(self, state: dict, user_ids, item_ids) -> np.ndarray:
        """Click probability (n,) of raw (user, item) id pairs from a :meth:`serving_state`.

        Unknown ids get the fallback rows and are counted in ``compressor_.unknown_counts_``; a user
        without history gets an all-zero interest vector.
        """
        self._check_fitted()
        comp = self.compressor_
        user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
        if user_ids.shape != item_ids.shape or user_ids.ndim != 1:
            raise ValidationError(f"user_ids and item_ids must be 1-D of equal length, got {user_ids.shape} "
                                  f"and {item_ids.shape}")
        u = self._positions(user_ids, comp.user_ids_, "users")
        t = self._positions(item_ids, comp.item_ids_, "items")
        with torch_threads(self.n_threads) as torch, torch.inference_mode():
            net = self._get_net(torch)
            ut, tt = torch.from_numpy(u), torch.from_numpy(t)
            eu, et = state["user_emb"][ut], state["item_emb"][tt]
            if not self.user_embedding:
                eu = torch.zeros_like(eu)
            v = self._serve_pool(torch, net, state, u, ut, tt, et)
            logits = net.mlp(torch.cat([eu, et, v, et * v], dim=1)).squeeze(1)
            return torch.sigmoid(logits).numpy()

    def _positions(self, ids, catalogue, kind):
        if ids.size and ids.dtype.kind not in "iu":
            raise ValidationError(f"{kind} ids must be integers, got dtype {ids.dtype}")
        pos = np.searchsorted(catalogue, ids)
        pc = np.minimum(pos, catalogue.size - 1)
        known = catalogue[pc] == ids
        self.compressor_.unknown_counts_[kind] += int((~known).sum())
        return np.where(known, pc, catalogue.size).astype(np.int64)  # catalogue.size = fallback

    def _serve_pool(self, torch, net, state, u, ut, tt, et):
        if self.pooling == "mean":
            return state["mean"][ut]
        if self.pooling == "sdim":
            m, K = int(self.n_hashes), 2 ** int(self.hash_bits)
            codes = net.codes(et)  # (B, m)
            flat = (ut[:, None] * m + torch.arange(m)[None, :]) * K + codes
            if self.sdim_norm == "l2":
                return torch.nn.functional.normalize(state["bucket_sum"][flat], dim=-1, eps=1e-12).mean(1)
            sums = state["bucket_sum"][flat].sum(1)  # (B, d)
            cnt = state["bucket_count"][flat].sum(1, keepdim=True)
            return sums / cnt.clamp(min=1.0)
        starts, seq = state["starts"], state["seq"]
        lengths = starts[u + 1] - starts[u]
        L = max(int(lengths.max()) if lengths.size else 0, 1)
        idx = starts[u][:, None] + np.arange(L)[None, :]
        valid = np.arange(L)[None, :] < lengths[:, None]
        pad = state["item_emb"].shape[0] - 1
        hist = np.where(valid, seq[np.minimum(idx, max(seq.size - 1, 0))] if seq.size else pad, pad)
        eb = state["item_emb"][torch.from_numpy(hist)]
        mask = torch.from_numpy(valid)
        return self._pool(torch, net, eb, et, mask, None, None, None)
