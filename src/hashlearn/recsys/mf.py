"""Two-tower matrix factorisation trained with the BPR loss over any compressed embedding table.

A user (item) is embedded as the sum of the rows its compressor gives it; the score of a pair is the
dot product. Training samples one uniformly random negative item per observed (user, item) pair.
Needs torch (the ``[deep]`` extra), imported only in :meth:`BPRMF.fit`; scoring is numpy.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone

from ..errors import IncompatibleError, NotFittedError, ValidationError
from ..hashing.base import PersistableEstimatorMixin, check_random_state
from ..io.persist import persistable
from ._torch import check_positive_float, check_positive_int, padded_rows, torch_generator, torch_threads
from .compress import BaseCompressor, FullTable, check_interactions

__all__ = ["BPRMF", "fit_compressor"]


def fit_compressor(compressor, interactions, item_features=None) -> BaseCompressor:
    """``compressor`` fitted on ``interactions`` (a clone, unless it is already fitted on the same
    catalogues — then it is used as is). None means :class:`FullTable`."""
    if compressor is None:
        compressor = FullTable()
    if not isinstance(compressor, BaseCompressor):
        raise ValidationError(f"compressor must be a hashlearn.recsys compressor, got {type(compressor).__name__}")
    if hasattr(compressor, "user_rows_"):
        same = (np.array_equal(compressor.user_ids_, interactions.user_ids)
                and np.array_equal(compressor.item_ids_, interactions.item_ids))
        if not same:
            raise IncompatibleError(
                f"the compressor was fitted on {compressor.user_ids_.size} users / {compressor.item_ids_.size} "
                f"items, the interactions have {interactions.n_users} / {interactions.n_items} in their catalogues"
            )
        return compressor
    return clone(compressor).fit(interactions, item_features=item_features)


def _table_sums(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sum of ``table`` rows per line of ``rows`` (n, k); -1 entries add nothing."""
    out = np.zeros((rows.shape[0], table.shape[1]), np.float32)
    for j in range(rows.shape[1]):
        r = rows[:, j]
        ok = r >= 0
        out[ok] += table[r[ok]]
    return out


@persistable
class BPRMF(PersistableEstimatorMixin, BaseEstimator):
    """Matrix factorisation / two-tower retrieval with the BPR loss, over a compressed ID table.

    Parameters
    ----------
    compressor : BaseCompressor or None, default None (one row per ID)
        How IDs map to rows; an unfitted one is cloned and fitted on the training interactions.
    dim : int, default 32
    epochs : int, default 40
    lr : float, default 0.01 (Adam)
    batch_size : int, default 1024
    l2 : float, default 1e-4
        Weight of the squared norms of the batch's summed embeddings.
    n_threads : int, default 1
        torch threads during fit (restored afterwards).
    random_state : int, Generator or None

    Attributes
    ----------
    compressor_ : BaseCompressor (fitted)
    user_table_ : float32 (compressor_.n_user_rows_, dim)
    item_table_ : float32 (compressor_.n_item_rows_, dim)
        The fallback rows hold the mean user / item embedding.
    loss_ : list of float
        Mean training loss per epoch.

    References
    ----------
    Rendle, Freudenthaler, Gantner, Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from Implicit
    Feedback", UAI 2009.
    """

    def __init__(self, compressor=None, *, dim: int = 32, epochs: int = 40, lr: float = 0.01,
                 batch_size: int = 1024, l2: float = 1e-4, n_threads: int = 1, random_state=None):
        self.compressor = compressor
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.l2 = l2
        self.n_threads = n_threads
        self.random_state = random_state

    def _check_params(self):
        check_positive_int(self.dim, "dim")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.n_threads, "n_threads")
        check_positive_float(self.lr, "lr")
        check_positive_float(self.l2, "l2", allow_zero=True)

    def fit(self, interactions, y=None, *, item_features=None):
        """Train on the (user, item) pairs of ``interactions`` (implicit feedback; ratings ignored).

        ``item_features`` (n_items, d) is passed to the compressor (semantic IDs need it).
        Returns ``self``.
        """
        self._check_params()
        X = check_interactions(interactions)
        rng = check_random_state(self.random_state)
        comp = fit_compressor(self.compressor, X, item_features)
        pairs = np.unique(X.pairs(), axis=0)
        with torch_threads(self.n_threads) as torch:
            gen = torch_generator(rng)
            Wu, Wi, losses = self._train(torch, gen, comp, pairs, X.n_items)
        Wu[comp.user_fallback_row_] = 0.0
        Wi[comp.item_fallback_row_] = 0.0
        # the fallback rows: the mean embedding of the catalogue's users / items
        Wu[comp.user_fallback_row_] = _table_sums(Wu, comp.user_rows_).mean(0)
        Wi[comp.item_fallback_row_] = _table_sums(Wi, comp.item_rows_).mean(0)
        self.compressor_ = comp
        self.user_table_, self.item_table_ = Wu, Wi
        self.loss_ = losses
        return self

    def _train(self, torch, gen, comp, pairs, n_items):
        F = torch.nn.functional
        d = int(self.dim)
        pad_u, pad_i = comp.n_user_rows_, comp.n_item_rows_
        U = torch.from_numpy(padded_rows(comp.user_rows_, pad_u))
        I = torch.from_numpy(padded_rows(comp.item_rows_, pad_i))
        Wu = torch.nn.Parameter(0.1 * torch.randn(pad_u + 1, d, generator=gen))
        Wi = torch.nn.Parameter(0.1 * torch.randn(pad_i + 1, d, generator=gen))
        opt = torch.optim.Adam([Wu, Wi], lr=float(self.lr))
        P = torch.from_numpy(pairs)
        n, bs, l2 = P.shape[0], int(self.batch_size), float(self.l2)
        losses = []
        for _ in range(int(self.epochs)):
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, bs):
                b = P[perm[start:start + bs]]
                neg = torch.randint(0, n_items, (b.shape[0],), generator=gen)
                eu = F.embedding_bag(U[b[:, 0]], Wu, mode="sum", padding_idx=pad_u)
                ep = F.embedding_bag(I[b[:, 1]], Wi, mode="sum", padding_idx=pad_i)
                en = F.embedding_bag(I[neg], Wi, mode="sum", padding_idx=pad_i)
                x = (eu * (ep - en)).sum(1)
                reg = (eu.pow(2).sum(1) + ep.pow(2).sum(1) + en.pow(2).sum(1)).mean()
                loss = -F.logsigmoid(x).mean() + l2 * reg
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * b.shape[0]
            losses.append(total / n)
        Wu_np = Wu.detach().numpy()[:pad_u].copy()
        Wi_np = Wi.detach().numpy()[:pad_i].copy()
        return Wu_np, Wi_np, losses

    # -- scoring ---------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "user_table_"):
            raise NotFittedError("this BPRMF is not fitted yet: call fit(interactions) first")

    def user_embeddings(self, user_ids) -> np.ndarray:
        """Embeddings (n, dim) float32 of raw user ids (unknown ids: the fallback row, counted)."""
        self._check_fitted()
        return _table_sums(self.user_table_, self.compressor_.lookup_users(user_ids))

    def item_embeddings(self, item_ids=None) -> np.ndarray:
        """Embeddings (n, dim) of raw item ids; None: every catalogue item, in catalogue order."""
        self._check_fitted()
        rows = self.compressor_.item_rows_ if item_ids is None else self.compressor_.lookup_items(item_ids)
        return _table_sums(self.item_table_, rows)

    def score(self, user_ids, item_ids) -> np.ndarray:
        """Scores (n,) float32 of the pairs (user_ids[k], item_ids[k])."""
        u = self.user_embeddings(user_ids)
        v = self.item_embeddings(np.asarray(item_ids))
        if u.shape[0] != v.shape[0]:
            raise ValidationError(f"user_ids has {u.shape[0]} entries but item_ids has {v.shape[0]}")
        return (u * v).sum(1)

    def score_all(self, user_ids) -> np.ndarray:
        """Scores (n_users_given, n_items) of every catalogue item (``compressor_.item_ids_`` order)."""
        return self.user_embeddings(user_ids) @ self.item_embeddings().T

    def recommend(self, user_ids, k: int = 20, *, exclude=None) -> np.ndarray:
        """Top-``k`` raw item ids (n, k) per user, best first; ``exclude`` (Interactions) masks seen items."""
        k = check_positive_int(k, "k")
        S = self.score_all(user_ids)
        if k > S.shape[1]:
            raise ValidationError(f"k={k} exceeds the {S.shape[1]} catalogue items")
        if exclude is not None:
            uid = np.asarray(user_ids, dtype=np.int64)
            pos = {int(u): r for r, u in enumerate(uid)}
            for u, i in zip(exclude.user, exclude.item):
                r = pos.get(int(u))
                if r is not None:
                    j = np.searchsorted(self.compressor_.item_ids_, i)
                    if j < S.shape[1] and self.compressor_.item_ids_[j] == i:
                        S[r, j] = -np.inf
        top = np.argsort(-S, axis=1, kind="stable")[:, :k]
        return self.compressor_.item_ids_[top]
