"""Product quantizers trained for a ranking task: JPQ and RepCONC (torch, CPU).

Both start from OPQ codes of frozen document embeddings and train, with a listwise ranking loss on
(query, relevant document) pairs, the PQ centroids and a linear map of the query embeddings; the
score of a document is the inner product of the mapped query with the document's reconstruction, so
search is an ADC scan with inner-product tables (no rescoring).

* ``JPQ`` keeps every document's code fixed (the OPQ assignment) and learns what the codes mean.
* ``RepCONC`` also re-assigns documents after each epoch, under the uniform-clustering constraint
  (every centroid of a sub-space gets the same number of documents: Sinkhorn + capacity repair,
  :mod:`hashlearn.quantize.balanced`), and keeps centroids near their documents with an MSE term,
  so no centroid falls out of use.

Without labelled pairs both train on pseudo-queries (e.g. document titles) against their own
document plus distillation from the float model's ranking, as :class:`hashlearn.text.bpr.BPRHasher`
does. Early stopping uses a dev split carved from the training queries (never test queries).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ValidationError
from ..hashing.base import check_random_state, check_vectors_array
from ..params import check_int_param
from ..registry import register
from ._kmeans import squared_distances
from ._sinkhorn import sinkhorn_column_potentials
from .balanced import _repair_capacity
from .base import BaseQuantizer
from .pq import OPQ

__all__ = ["JPQ", "RepCONC", "TRAINED_QUANTIZERS"]


def _balanced_codes(Xr: np.ndarray, books: np.ndarray, g0: np.ndarray | None, reg: float = 0.02):
    """Per sub-space, the assignment ``argmin_k ||x_m - c_mk||^2 - g_mk`` with potentials ``g`` that
    equalise cluster sizes (Sinkhorn at ``reg`` x the median nearest distance, then capacity repair)."""
    M, K, dsub = books.shape
    n = Xr.shape[0]
    codes = np.empty((n, M), np.uint8)
    G = np.zeros((M, K), np.float64) if g0 is None else np.array(g0, dtype=np.float64, copy=True)
    cap = 1.05 * n / K
    for m in range(M):
        C = squared_distances(Xr[:, m * dsub : (m + 1) * dsub], books[m])
        scale = float(np.median(C.min(1))) or float(C.mean()) or 1.0
        g, _, _ = sinkhorn_column_potentials(C, reg * scale, g0=G[m], max_iter=200, tol=1e-3)
        G[m] = _repair_capacity(C, g, cap, step=1e-4 * scale)
        codes[:, m] = np.argmin(C - G[m][None, :].astype(np.float32), axis=1)
    return codes, G


class _TrainedPQ(BaseQuantizer):
    """Shared training loop of :class:`JPQ` and :class:`RepCONC` (see the module docstring)."""

    uniform = False
    metric = "ip"

    def __init__(self, M: int = 16, *, nbits: int = 8, epochs: int = 30, batch_size: int = 64, lr: float = 1e-3,
                 query_lr: float = 1e-4, temperature: float = 0.05, distill_weight: float = 1.0,
                 distill_temperature: float = 0.02, mse_weight: float = 0.0, opq_iter: int = 20,
                 dev_fraction: float = 0.2, patience: int = 5, n_threads: int = 2, random_state=None,
                 verbose: bool = False):
        self.M = M
        self.nbits = nbits
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.query_lr = query_lr
        self.temperature = temperature
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature
        self.mse_weight = mse_weight
        self.opq_iter = opq_iter
        self.dev_fraction = dev_fraction
        self.patience = patience
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    @property
    def n_codes(self) -> int:
        return int(self.M)

    # -- validation ---------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_int_param(self.M, "M", min_val=1, max_val=4096)
        check_int_param(self.nbits, "nbits", min_val=1, max_val=8)
        for name in ("epochs", "batch_size", "n_threads"):
            check_int_param(getattr(self, name), name, min_val=1)
        check_int_param(self.opq_iter, "opq_iter", min_val=0)
        check_int_param(self.patience, "patience", min_val=1)
        for name in ("lr", "query_lr", "temperature", "distill_temperature"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
                raise ValidationError(f"{name} must be a positive number, got {v!r}")
        for name in ("distill_weight", "mse_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
                raise ValidationError(f"{name} must be a number >= 0, got {v!r}")
        if not 0 < float(self.dev_fraction) < 1:
            raise ValidationError(f"dev_fraction must lie in (0, 1), got {self.dev_fraction!r}")

    @staticmethod
    def _check_pairs(queries, pairs, n: int, d: int, qname: str, pname: str):
        if queries is None and pairs is None:
            return None, None
        if queries is None or pairs is None:
            raise ValidationError(f"give both {qname} and {pname}, or neither")
        Q = check_vectors_array(queries, name=qname)
        if Q.shape[1] != d:
            raise ValidationError(f"{qname} have {Q.shape[1]} features but the documents have {d}")
        P = np.asarray(pairs)
        if P.ndim == 1 and qname == "pseudo_queries":
            P = np.stack([np.arange(P.shape[0]), P], axis=1)
        if P.ndim != 2 or P.shape[1] != 2 or P.dtype.kind not in "iu" or P.shape[0] == 0:
            raise ValidationError(f"{pname} must be a non-empty integer array (m, 2) of (query row, document row)")
        P = P.astype(np.int64)
        if P[:, 0].min() < 0 or P[:, 0].max() >= Q.shape[0] or P[:, 1].min() < 0 or P[:, 1].max() >= n:
            raise ValidationError(f"{pname} refer to rows outside {qname} ({Q.shape[0]}) or the documents ({n})")
        return Q, P

    # -- fitting ------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, queries=None, pairs=None, pseudo_queries=None, pseudo_docs=None):
        """Train on document embeddings ``X`` (n, d) and training queries.

        Parameters
        ----------
        X : array (n, d) float — document embeddings (frozen)
        queries : array (m, d), optional — training query embeddings, with ``pairs`` (k, 2) int
            ``(query row, document row)`` of relevant documents
        pseudo_queries : array (p, d), optional — self-supervised queries, with ``pseudo_docs`` (p,)
            the document each was made from

        Returns
        -------
        self
        """
        for attr in ("n_features_in_", "fingerprint_"):
            self.__dict__.pop(attr, None)
        self._check_params()
        X = check_vectors_array(X, name="X (documents)")
        n, d = X.shape
        if d % int(self.M):
            raise ValidationError(f"{type(self).__name__} needs d divisible by M: d = {d}, M = {self.M}")
        self._check_train(X)
        Q, P = self._check_pairs(queries, pairs, n, d, "queries", "pairs")
        T, TP = self._check_pairs(pseudo_queries, pseudo_docs, n, d, "pseudo_queries", "pseudo_docs")
        if Q is None and T is None:
            raise ValidationError(f"{type(self).__name__} needs training queries: queries + pairs and/or "
                                  "pseudo_queries + pseudo_docs")
        if Q is None:  # self-supervised: the pseudo-queries are the training queries
            Q, P = T, TP
        rng = check_random_state(self.random_state)
        init = OPQ(int(self.M), nbits=int(self.nbits), opq_iter=int(self.opq_iter),
                   random_state=int(rng.integers(0, 2**31 - 1))).fit(X)
        self._train(X, Q, P, init, rng)
        self.n_features_in_ = d
        self.fingerprint_ = self._fingerprint()
        return self

    def _dev_split(self, Q, P, rng):
        qrows = np.unique(P[:, 0])
        n_dev = max(1, int(round(float(self.dev_fraction) * qrows.shape[0])))
        if qrows.shape[0] - n_dev < 1:
            raise ValidationError(f"too few training queries ({qrows.shape[0]}) for a dev split")
        dev = np.zeros(Q.shape[0], bool)
        dev[rng.choice(qrows, size=n_dev, replace=False)] = True
        return P[~dev[P[:, 0]]], P[dev[P[:, 0]]]

    def _train(self, X, Q, P, init: OPQ, rng) -> None:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(int(self.n_threads))
        try:
            self._train_torch(torch, X, Q, P, init, rng)
        finally:
            torch.set_num_threads(previous)

    def _train_torch(self, torch, X, Q, P, init: OPQ, rng) -> None:
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
        R = init.rotation_.astype(np.float32)
        Xr = np.ascontiguousarray(X @ R)
        books0 = init.codebooks_.copy()
        M, K, dsub = books0.shape
        G = None
        if self.uniform:
            codes, G = _balanced_codes(Xr, books0, None)
        else:
            codes = init.encode(X).view(np.ndarray)
        train_pairs, dev_pairs = self._dev_split(Q, P, rng)
        C = torch.nn.Parameter(torch.from_numpy(books0.copy()))
        W = torch.nn.Parameter(torch.from_numpy(R.copy()))
        opt = torch.optim.Adam([{"params": [C], "lr": float(self.lr)}, {"params": [W], "lr": float(self.query_lr)}])
        Xt = torch.from_numpy(X)
        Xrt = torch.from_numpy(Xr)
        Qt = torch.from_numpy(Q)
        positives = {}
        for q, doc in train_pairs:
            positives.setdefault(int(q), []).append(int(doc))
        train_q = np.array(sorted(positives), dtype=np.int64)
        dev_rel = {}
        for q, doc in dev_pairs:
            dev_rel.setdefault(int(q), set()).add(int(doc))
        m_idx = torch.arange(M)[None, :]

        def reconstruct(codes_t):
            return C[m_idx, codes_t].reshape(codes_t.shape[0], M * dsub)

        def dev_score(codes_np):
            with torch.no_grad():
                rec = reconstruct(torch.from_numpy(codes_np.astype(np.int64)))
                rows = np.array(sorted(dev_rel), dtype=np.int64)
                scores = (Qt[rows] @ W) @ rec.T
                top = torch.topk(scores, 10, dim=1).indices.numpy()
            return _ndcg10(top, [dev_rel[int(r)] for r in rows])

        state = {"C": C.detach().clone(), "W": W.detach().clone(), "codes": codes.copy(), "G": None if G is None else G.copy()}
        best = dev_score(codes)
        self.init_dev_score_ = best
        self.best_epoch_ = -1
        history = []
        bad = 0
        for epoch in range(int(self.epochs)):
            codes_t = torch.from_numpy(codes.astype(np.int64))
            order = rng.permutation(train_q)
            total = 0.0
            for s in range(0, order.shape[0], int(self.batch_size)):
                batch = order[s : s + int(self.batch_size)]
                rec = reconstruct(codes_t)
                qv = Qt[batch] @ W
                logits = qv @ rec.T / float(self.temperature)
                loss = _listwise(torch, logits, [positives[int(q)] for q in batch], gen)
                if float(self.distill_weight) > 0:
                    with torch.no_grad():
                        target = torch.softmax((Qt[batch] @ Xt.T) / float(self.distill_temperature), dim=1)
                    loss = loss + float(self.distill_weight) * torch.nn.functional.kl_div(
                        torch.log_softmax(logits, dim=1), target, reduction="batchmean")
                if float(self.mse_weight) > 0:
                    loss = loss + float(self.mse_weight) * ((rec - Xrt) ** 2).sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * batch.shape[0]
            if self.uniform:
                codes, G = _balanced_codes(Xr, C.detach().numpy(), G)
            score = dev_score(codes)
            history.append((total / max(1, train_q.shape[0]), score))
            if self.verbose:
                print(f"{type(self).__name__} epoch {epoch}: loss {history[-1][0]:.4f}, dev nDCG@10 {score:.4f}")
            if score > best:
                best, bad, self.best_epoch_ = score, 0, epoch
                state = {"C": C.detach().clone(), "W": W.detach().clone(), "codes": codes.copy(),
                         "G": None if G is None else G.copy()}
            else:
                bad += 1
                if bad >= int(self.patience):
                    break
        self.dev_score_ = float(best)
        self.history_ = np.asarray(history, dtype=np.float64).reshape(-1, 2)
        self.rotation_ = R
        self.codebooks_ = state["C"].numpy().astype(np.float32)
        self.query_map_ = state["W"].numpy().astype(np.float32)
        if self.uniform:
            self.assign_codebooks_ = self.codebooks_.copy()
            self.assign_bias_ = state["G"].astype(np.float32)
        else:
            self.assign_codebooks_ = books0
            self.assign_bias_ = np.zeros((M, K), np.float32)

    # -- quantizer hooks -----------------------------------------------------------------------------
    def _encode(self, X: np.ndarray) -> np.ndarray:
        Xr = X @ self.rotation_
        M, K, dsub = self.assign_codebooks_.shape
        out = np.empty((X.shape[0], M), np.uint8)
        for s in range(0, X.shape[0], 16384):
            part = Xr[s : s + 16384]
            for m in range(M):
                D = squared_distances(part[:, m * dsub : (m + 1) * dsub], self.assign_codebooks_[m])
                out[s : s + part.shape[0], m] = np.argmin(D - self.assign_bias_[m][None, :], axis=1)
        return out

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        M, _, dsub = self.codebooks_.shape
        rec = self.codebooks_[np.arange(M)[None, :], codes].reshape(codes.shape[0], M * dsub)
        return rec @ self.rotation_.T

    def _distance_tables(self, Q: np.ndarray) -> np.ndarray:
        """Negative inner-product tables: ``-<q W, reconstruction>`` is the sum of the looked-up entries."""
        M, _, dsub = self.codebooks_.shape
        qv = (Q @ self.query_map_).reshape(Q.shape[0], M, dsub)
        return np.ascontiguousarray(-np.einsum("qmd,mkd->qmk", qv, self.codebooks_), dtype=np.float32)

    def _ip_tables(self, Q: np.ndarray) -> np.ndarray:
        return self._distance_tables(Q)

    def distance_tables(self, Q) -> np.ndarray:
        """ADC tables (nq, M, ksub) of NEGATIVE inner products (this quantizer ranks by inner product):
        ``-score(q, c) = sum_m tables[q, m, c[m]]``, where score is ``<q @ query_map_, reconstruction>``."""
        return super().distance_tables(Q)

    def score(self, Q, codes) -> np.ndarray:
        """Inner-product scores (nq, n) of the queries against the codes' reconstructions (larger is better)."""
        self._check_fitted()
        Q = check_vectors_array(Q, name="Q", n_features=self.n_features_in_)
        codes = self.check_codes(codes)
        M, _, dsub = self.codebooks_.shape
        rec = self.codebooks_[np.arange(M)[None, :], codes].reshape(codes.shape[0], M * dsub)
        return (Q @ self.query_map_) @ rec.T

    def _codebook_arrays(self) -> list[np.ndarray]:
        return [self.rotation_, self.codebooks_, self.query_map_, self.assign_codebooks_, self.assign_bias_]


def _listwise(torch, logits, positives, gen):
    """Cross-entropy of one sampled positive per query over every document, the query's other
    positives masked out."""
    rows, targets, mask_r, mask_c = [], [], [], []
    for i, docs in enumerate(positives):
        pick = docs[int(torch.randint(len(docs), (1,), generator=gen))] if len(docs) > 1 else docs[0]
        rows.append(i)
        targets.append(pick)
        for doc in docs:
            if doc != pick:
                mask_r.append(i)
                mask_c.append(doc)
    if mask_r:
        logits = logits.clone()
        logits[mask_r, mask_c] = float("-inf")
    return torch.nn.functional.cross_entropy(logits, torch.tensor(targets))


def _ndcg10(top: np.ndarray, relevant: list) -> float:
    """Mean nDCG@10 with binary relevance."""
    disc = 1.0 / np.log2(np.arange(2, 12))
    out = []
    for row, rel in zip(top, relevant):
        gains = np.array([1.0 if int(d) in rel else 0.0 for d in row[:10]])
        ideal = disc[: min(10, len(rel))].sum()
        out.append(float((gains * disc[: gains.shape[0]]).sum() / ideal) if ideal else 0.0)
    return float(np.mean(out)) if out else 0.0


@register("jpq", kind="quantizer")
class JPQ(_TrainedPQ):
    """JPQ: PQ centroids and a query-side linear map trained for ranking, document codes fixed.

    Parameters
    ----------
    M : int, default 16
        Sub-quantizers = bytes per document.
    nbits : int, default 8
    epochs, batch_size : int — passes over the training queries, queries per step
    lr, query_lr : float — Adam learning rates of the centroids and of the query map
    temperature : float — softmax temperature of the inner-product scores
    distill_weight, distill_temperature : float — KL to the float model's ranking (0 disables)
    mse_weight : float, default 0 — weight of the reconstruction error of the documents
    opq_iter : int — OPQ iterations of the initial codes
    dev_fraction, patience : early stopping on a dev split of the training queries (nDCG@10)
    n_threads : int — torch threads (restored afterwards)
    random_state, verbose

    Attributes
    ----------
    rotation_ : (d, d) OPQ rotation of the documents
    codebooks_ : (M, 2**nbits, d / M) trained centroids (what codes decode to)
    assign_codebooks_ : the OPQ centroids that assign documents to codes (fixed)
    assign_bias_ : (M, 2**nbits) zeros (no size constraint)
    query_map_ : (d, d) linear map of query embeddings (initialised to the rotation)
    best_epoch_, dev_score_, init_dev_score_, history_ : early-stopping record

    References
    ----------
    Zhan, Mao, Liu, Guo, Zhang & Ma, "Jointly Optimizing Query Encoder and Product Quantization to
    Improve Retrieval Performance", CIKM 2021; its use with frozen encoders in Thakur, Reimers & Lin,
    "Injecting Domain Adaptation with Learning-to-hash for Effective and Efficient Zero-shot Dense
    Retrieval", 2022.
    """

    uniform = False


@register("repconc", kind="quantizer")
class RepCONC(_TrainedPQ):
    """RepCONC: JPQ plus document re-assignment under a uniform-clustering constraint.

    After each epoch every document is re-assigned to centroids with equal-size clusters per
    sub-space (Sinkhorn potentials + capacity repair), so every centroid stays in use; ``mse_weight``
    keeps centroids near their documents. Parameters and attributes as :class:`JPQ`, with
    ``assign_codebooks_ = codebooks_`` and ``assign_bias_`` the per-sub-space potentials.

    References
    ----------
    Zhan, Mao, Liu, Guo, Zhang & Ma, "Learning Discrete Representations via Constrained Clustering for
    Effective and Efficient Dense Retrieval", WSDM 2022.
    """

    uniform = True

    def __init__(self, M: int = 16, *, nbits: int = 8, epochs: int = 30, batch_size: int = 64, lr: float = 1e-3,
                 query_lr: float = 1e-4, temperature: float = 0.05, distill_weight: float = 1.0,
                 distill_temperature: float = 0.02, mse_weight: float = 0.1, opq_iter: int = 20,
                 dev_fraction: float = 0.2, patience: int = 5, n_threads: int = 2, random_state=None,
                 verbose: bool = False):
        super().__init__(M, nbits=nbits, epochs=epochs, batch_size=batch_size, lr=lr, query_lr=query_lr,
                         temperature=temperature, distill_weight=distill_weight,
                         distill_temperature=distill_temperature, mse_weight=mse_weight, opq_iter=opq_iter,
                         dev_fraction=dev_fraction, patience=patience, n_threads=n_threads,
                         random_state=random_state, verbose=verbose)


TRAINED_QUANTIZERS: dict[str, type] = {"jpq": JPQ, "repconc": RepCONC}
"""Task-trained quantizers by method name (they need training queries: registry kind "embedding")."""
