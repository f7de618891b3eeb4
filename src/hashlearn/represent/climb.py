"""CLIMB: search data-mixture weights over the clusters of a corpus with proxy models and a predictor.

* :class:`NGramLM` — a character n-gram language model with interpolated absolute discounting (the proxy);
* :func:`sample_mixture` — draw documents of each cluster up to its share of a token budget;
* :func:`mixture_search` — the iterative bootstrap: sample mixtures, score them, fit a predictor from weights
  to score, sample the next mixtures among the predictor's best, repeat;
* :class:`ClimbMixture` — k-means on document embeddings + :func:`mixture_search` with an n-gram proxy
  scored by its perplexity on a target set.

Tokens here are characters (the proxy is a character model), so ``budget_tokens`` counts characters.

References: S. Diao et al., "CLIMB: CLustering-based Iterative Data Mixture Bootstrapping for Language Model
Pre-training", 2025; H. Ney, U. Essen, R. Kneser, "On structuring probabilistic dependences in stochastic
language modelling", 1994 (absolute discounting).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..params import check_int_param, check_real_param
from ._common import check_fitted

__all__ = ["NGramLM", "WordVocab", "encode_chars", "sample_mixture", "mixture_search", "ClimbMixture", "N_SYMBOLS"]

#: Alphabet of :func:`encode_chars`: 128 ASCII codes and one symbol for every other character.
N_SYMBOLS = 129


def encode_chars(text: str) -> np.ndarray:
    """int64 symbols of ``text``: ASCII code points as themselves, every other character as 128."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    codes[codes > 127] = 128
    return codes


class WordVocab:
    """A closed word vocabulary: the ``max_size`` most frequent lower-cased words (``\\w+``) or punctuation marks
    of the texts it is fitted on; ids ``0..V−1``, ``V`` = unknown word, ``V+1`` = document boundary."""

    _TOKEN = r"\w+|[^\w\s]"

    def __init__(self, max_size: int = 20000):
        self.max_size = check_int_param(max_size, "max_size", min_val=1)

    def tokens(self, text: str) -> list[str]:
        import re

        return re.findall(self._TOKEN, text.lower())

    def fit(self, texts) -> "WordVocab":
        from collections import Counter

        counts = Counter(w for t in texts for w in self.tokens(t))
        self.index_ = {w: i for i, (w, _) in enumerate(counts.most_common(self.max_size))}
        return self

    @property
    def n_symbols(self) -> int:
        return len(self.index_) + 2

    def encode(self, text: str) -> np.ndarray:
        unk = len(self.index_)
        return np.asarray([self.index_.get(w, unk) for w in self.tokens(text)], dtype=np.int64)


class NGramLM:
    """n-gram LM over integer symbols, interpolated absolute discounting down to the uniform distribution.

    ``P_o(c | h) = max(C(h c) − D, 0) / C(h) + D · N₁₊(h ·) / C(h) · P_{o−1}(c | h')`` for a context ``h`` of
    ``o − 1`` symbols seen in training (``h'`` drops its oldest symbol), ``P_{o−1}(c | h')`` when ``h`` was
    never seen, and ``P_0 = 1 / n_symbols``. Sequences are padded on the left with ``order − 1`` symbols
    ``pad``. A ``str`` is read as characters (:func:`encode_chars`, the default ``n_symbols=129, pad=10``).

    Parameters
    ----------
    order : int, default 5 ; discount : float in (0, 1), default 0.75
    n_symbols : int, default 129 ; pad : int, default 10 (newline)
    """

    def __init__(self, order: int = 5, discount: float = 0.75, n_symbols: int = N_SYMBOLS, pad: int = 10):
        self.order = check_int_param(order, "order", min_val=1)
        self.discount = check_real_param(discount, "discount", min_val=0, max_val=1, include_boundaries="neither")
        self.n_symbols = check_int_param(n_symbols, "n_symbols", min_val=2)
        if float(self.n_symbols) ** self.order >= 2**62:
            raise ValidationError(f"order={self.order} with {self.n_symbols} symbols overflows the 64-bit n-gram codes")
        self.pad = check_int_param(pad, "pad", min_val=0, max_val=self.n_symbols - 1)

    def _codes(self, ids: np.ndarray, o: int) -> np.ndarray:
        """Code of the o-gram ending at each position (positions ≥ order − 1 of the padded sequence)."""
        n = ids.size - (self.order - 1)
        code = np.zeros(n, dtype=np.int64)
        for j in range(o - 1, -1, -1):  # oldest symbol first, so that code // n_symbols is the context
            code = code * self.n_symbols + ids[self.order - 1 - j: self.order - 1 - j + n]
        return code

    def _pad(self, seq) -> np.ndarray:
        ids = encode_chars(seq) if isinstance(seq, str) else np.asarray(seq, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_symbols):
            raise ValidationError(f"symbols must be in 0..{self.n_symbols - 1}, got {ids.min()}..{ids.max()}")
        return np.concatenate([np.full(self.order - 1, self.pad, dtype=np.int64), ids])

    def fit(self, seq) -> "NGramLM":
        """Count the n-grams of ``seq`` (str or int sequence, at least one symbol)."""
        ids = self._pad(seq)
        if ids.size <= self.order - 1:
            raise ValidationError("NGramLM.fit needs a non-empty sequence")
        self.tables_ = []
        for o in range(1, self.order + 1):
            grams, counts = np.unique(self._codes(ids, o), return_counts=True)
            ctx, first = np.unique(grams // self.n_symbols, return_index=True)
            ctx_total = np.add.reduceat(counts, first)
            ctx_types = np.diff(np.append(first, grams.size))
            self.tables_.append((grams, counts, ctx, ctx_total, ctx_types))
        return self

    @staticmethod
    def _lookup(keys, values, query):
        pos = np.clip(np.searchsorted(keys, query), 0, max(keys.size - 1, 0))
        hit = keys[pos] == query if keys.size else np.zeros(query.size, dtype=bool)
        return np.where(hit, values[pos] if keys.size else 0, 0)

    def log_prob(self, seq) -> np.ndarray:
        """Natural-log probability float64 (len(seq),) of each symbol given the ones before it."""
        if not hasattr(self, "tables_"):
            raise ValidationError("NGramLM is not fitted: call fit first")
        ids = self._pad(seq)
        p = np.full(ids.size - (self.order - 1), 1.0 / self.n_symbols)
        D = self.discount
        for o, (grams, counts, ctx, ctx_total, ctx_types) in enumerate(self.tables_, start=1):
            code = self._codes(ids, o)
            c_hw = self._lookup(grams, counts, code)
            c_h = self._lookup(ctx, ctx_total, code // self.n_symbols)
            t_h = self._lookup(ctx, ctx_types, code // self.n_symbols)
            safe = np.maximum(c_h, 1)
            p = np.where(c_h > 0, np.maximum(c_hw - D, 0) / safe + D * t_h / safe * p, p)
        return np.log(p)

    def perplexity(self, seqs) -> float:
        """``exp(−mean log P)`` over every symbol of ``seqs`` (one str / int sequence, or a list of them)."""
        single = isinstance(seqs, str) or (isinstance(seqs, np.ndarray) and seqs.ndim == 1) or (
            isinstance(seqs, (list, tuple)) and all(isinstance(s, (int, np.integer)) for s in seqs))
        seqs = [seqs] if single else list(seqs)
        lps = [self.log_prob(s) for s in seqs if len(s)]
        if not lps:
            raise ValidationError("perplexity needs at least one non-empty sequence")
        return float(np.exp(-np.concatenate(lps).mean()))


def _allocate(weights: np.ndarray, n_batches: int) -> np.ndarray:
    """Integer batches per cluster summing to ``n_batches`` (largest remainder)."""
    raw = weights * n_batches
    out = np.floor(raw).astype(np.int64)
    out[np.argsort(-(raw - out), kind="stable")[: n_batches - out.sum()]] += 1
    return out


def sample_mixture(texts, labels, weights, budget_tokens: int, rng, batch_tokens: int = 1000):
    """Training sequence of ``budget_tokens`` tokens drawn by cluster: ``(text or ids, doc indices int64)``.

    ``texts`` are str (tokens = characters, pieces joined with newlines) or int arrays (tokens = ids).

    The budget is cut into ``budget_tokens // batch_tokens`` batches of ``batch_tokens`` tokens, given
    to the clusters in proportion to ``weights`` (largest remainder); each cluster's documents are taken in
    a random order (cycling if its share is larger than the cluster) until its tokens are used up, the
    last one cut. A budget smaller than one batch, weights that are not a distribution over the clusters,
    or weight on a cluster without documents raise :class:`ValidationError`.
    """
    labels = np.asarray(labels)
    w = np.asarray(weights, dtype=np.float64)
    budget_tokens = check_int_param(budget_tokens, "budget_tokens", min_val=1)
    batch_tokens = check_int_param(batch_tokens, "batch_tokens", min_val=1)
    if budget_tokens < batch_tokens:
        raise ValidationError(f"budget_tokens={budget_tokens} is smaller than one batch (batch_tokens="
                              f"{batch_tokens}): the proxy would see no full batch")
    if w.ndim != 1 or (w < 0).any() or not np.isfinite(w).all() or abs(w.sum() - 1) > 1e-6:
        raise ValidationError(f"weights must be a non-negative vector summing to 1, got {np.round(w, 4).tolist()}")
    if len(texts) != labels.size:
        raise ValidationError(f"{len(texts)} texts but {labels.size} labels")
    rng = np.random.default_rng(rng)
    pieces, docs = [], []
    for c, n_b in enumerate(_allocate(w, budget_tokens // batch_tokens)):
        members = np.flatnonzero(labels == c)
        if n_b == 0:
            continue
        if members.size == 0 or not any(len(texts[i]) for i in members):
            raise ValidationError(f"cluster {c} has weight {w[c]:.3f} but no (non-empty) document")
        left, order = int(n_b) * batch_tokens, rng.permutation(members)
        i = 0
        while left > 0:
            t = texts[order[i % order.size]][:left]
            if len(t):
                pieces.append(t)
                docs.append(order[i % order.size])
                left -= len(t)
            i += 1
    joined = "\n".join(pieces) if all(isinstance(t, str) for t in pieces) else np.concatenate(pieces)
    return joined, np.asarray(docs, dtype=np.int64)


def _predictor(kind: str, seed: int):
    if kind == "gbr":
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8,
                                         random_state=seed)
    if kind == "ridge":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=np.logspace(-4, 2, 13))
    raise ValidationError(f"predictor must be 'gbr' or 'ridge', got {kind!r}")


def _candidates(rng, k: int, n: int, alpha: float, best: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Half global Dirichlet(alpha · k · prior) draws, half local Dirichlet draws around the best mixtures."""
    glob = rng.dirichlet(alpha * k * prior + 1e-3, size=n // 2)
    conc = 50.0
    local = np.vstack([rng.dirichlet(conc * b + 0.05, size=max(1, (n - n // 2) // len(best))) for b in best])
    return np.vstack([glob, local])


def mixture_search(objective, n_clusters: int, *, rounds=(16, 12, 12), n_candidates: int = 4000,
                   alpha: float = 1.0, prior=None, predictor: str = "gbr", top: int = 5, final_top: int = 1,
                   random_state=None) -> dict:
    """CLIMB's iterative bootstrap: minimise ``objective(weights) -> float`` over mixtures of ``n_clusters``.

    Round 1 scores ``rounds[0]`` Dirichlet(``alpha·k·prior``) mixtures (``prior`` default uniform). Every later
    round fits the predictor (``gbr``: gradient boosting, as the paper's LightGBM; ``ridge``) on all scored
    mixtures, draws ``n_candidates`` candidates (half global, half near the ``top`` best scored), and scores
    the ``rounds[r]`` candidates with the lowest prediction. The result is the candidate (or scored mixture)
    with the lowest prediction of the predictor refitted on everything (``final_top`` > 1: the mean of the
    ``final_top`` lowest, which damps the winner's curse of a noisy objective).

    Returns dict: ``weights`` (k,) the chosen mixture, ``history`` list of (round, weights, score),
    ``best_scored`` (weights, score) the best mixture actually scored.
    """
    k = check_int_param(n_clusters, "n_clusters", min_val=1)
    rounds = [check_int_param(r, "rounds", min_val=1) for r in rounds]
    if not rounds:
        raise ValidationError("rounds must list at least one round")
    rng = np.random.default_rng(random_state)
    seed = int(rng.integers(2**31 - 1))
    prior = np.full(k, 1.0 / k) if prior is None else np.asarray(prior, dtype=np.float64)
    if prior.shape != (k,) or (prior < 0).any() or prior.sum() <= 0:
        raise ValidationError(f"prior must be {k} non-negative weights, got {np.round(prior, 4).tolist()}")
    prior = prior / prior.sum()
    W = rng.dirichlet(alpha * k * prior + 1e-3, size=rounds[0])
    history = [(0, w, float(objective(w))) for w in W]
    model = None
    for r, m in enumerate(rounds[1:], start=1):
        model = _fit_predictor(history, predictor, seed)
        best = np.stack([h[1] for h in sorted(history, key=lambda h: h[2])[:top]])
        cand = _candidates(rng, k, n_candidates, alpha, best, prior)
        for w in cand[np.argsort(model.predict(cand))[:m]]:
            history.append((r, w, float(objective(w))))
    model = _fit_predictor(history, predictor, seed)
    best = np.stack([h[1] for h in sorted(history, key=lambda h: h[2])[:top]])
    pool = np.vstack([_candidates(rng, k, n_candidates, alpha, best, prior), np.stack([h[1] for h in history])])
    final_top = check_int_param(final_top, "final_top", min_val=1)
    chosen = pool[np.argsort(model.predict(pool))[:final_top]].mean(0)
    b = min(history, key=lambda h: h[2])
    return {"weights": chosen / chosen.sum(), "history": history, "best_scored": (b[1], b[2])}


def _fit_predictor(history, kind: str, seed: int):
    X = np.stack([h[1] for h in history])
    y = np.asarray([h[2] for h in history])
    return _predictor(kind, seed).fit(X, y)


class ClimbMixture(BaseEstimator):
    """Cluster a corpus by its embeddings, then find the cluster mixture whose proxy model fits a target best.

    ``fit(embeddings, texts, target_texts)``: k-means (``n_clusters``) on the embeddings, then
    :func:`mixture_search` where a mixture's score is the perplexity on ``target_texts`` of an
    :class:`NGramLM` (``order``) trained on ``budget_tokens`` tokens drawn with :func:`sample_mixture`.

    Parameters
    ----------
    n_clusters : int, default 16 ; budget_tokens : int, default 100000 ; batch_tokens : int, default 1000
    order : int, default 3 ; unit : "word" (default; a :class:`WordVocab` of ``vocab_size`` words fitted on
        the corpus) or "char" ; vocab_size : int, default 20000 ; draws : int, default 1 — proxies (fresh
        draws) averaged per scored mixture ; final_top : int, default 1 (see :func:`mixture_search`)
    rounds : tuple, default (16, 12, 12) ; n_candidates : int, default 4000
    alpha : float, default 1.0 ; predictor : "gbr" or "ridge" ; cluster_seed : int, default 0 — k-means seed
        (kept fixed across search seeds so that the weights of different seeds are comparable)
    random_state : int, Generator or None — the search and the document draws

    Attributes
    ----------
    labels_ : int64 (n,) cluster of each document ; natural_ : float64 (k,) share of characters per cluster (the natural mixture) ;
    weights_ : float64 (k,) the mixture found ; history_ : list of (round, weights, perplexity)
    """

    def __init__(self, n_clusters: int = 16, *, budget_tokens: int = 100_000, batch_tokens: int = 1000,
                 order: int = 3, rounds=(16, 12, 12), n_candidates: int = 4000, alpha: float = 1.0,
                 predictor: str = "gbr", unit: str = "word", vocab_size: int = 20000, draws: int = 1,
                 final_top: int = 1, cluster_seed: int = 0, random_state=None):
        self.n_clusters = n_clusters
        self.draws = draws
        self.final_top = final_top
        self.unit = unit
        self.vocab_size = vocab_size
        self.budget_tokens = budget_tokens
        self.batch_tokens = batch_tokens
        self.order = order
        self.rounds = rounds
        self.n_candidates = n_candidates
        self.alpha = alpha
        self.predictor = predictor
        self.cluster_seed = cluster_seed
        self.random_state = random_state

    def _check(self, embeddings, texts, target_texts):
        E = np.asarray(embeddings, dtype=np.float32)
        if E.ndim != 2 or E.shape[0] != len(texts) or not np.isfinite(E).all():
            raise ValidationError(f"embeddings must be finite (n, d) with one row per text ({len(texts)}), got "
                                  f"shape {E.shape}")
        k = check_int_param(self.n_clusters, "n_clusters", min_val=1)
        if k > E.shape[0]:
            raise ValidationError(f"n_clusters={k} is more than the {E.shape[0]} documents")
        if not any(len(t) for t in target_texts):
            raise ValidationError("target_texts holds no non-empty text")
        if check_int_param(self.budget_tokens, "budget_tokens", min_val=1) < check_int_param(
                self.batch_tokens, "batch_tokens", min_val=1):
            raise ValidationError(f"budget_tokens={self.budget_tokens} is smaller than one batch "
                                  f"(batch_tokens={self.batch_tokens})")
        return E, k

    def fit(self, embeddings, texts, target_texts):
        """Cluster ``texts`` (list of str) by ``embeddings`` float (n, d) and search the mixture (module doc)."""
        from sklearn.cluster import KMeans

        texts = list(texts)
        E, k = self._check(embeddings, texts, target_texts)
        if self.unit not in ("word", "char"):
            raise ValidationError(f"unit must be 'word' or 'char', got {self.unit!r}")
        self.vocab_ = WordVocab(self.vocab_size).fit(texts) if self.unit == "word" else None
        self.labels_ = KMeans(k, n_init=4, random_state=self.cluster_seed).fit_predict(E).astype(np.int64)
        sizes = np.bincount(self.labels_, weights=[len(t) for t in texts], minlength=k)
        self.natural_ = sizes / sizes.sum()
        rng = np.random.default_rng(self.random_state)
        docs = self.encode(texts)
        targets = [t for t in self.encode(target_texts) if len(t)]

        draws = check_int_param(self.draws, "draws", min_val=1)

        def objective(w):
            return float(np.mean([self.proxy_perplexity(docs, w, targets, rng) for _ in range(draws)]))

        out = mixture_search(objective, k, rounds=self.rounds, n_candidates=self.n_candidates,
                             alpha=check_real_param(self.alpha, "alpha", min_val=0, include_boundaries="neither"),
                             prior=self.natural_, predictor=self.predictor, final_top=self.final_top,
                             random_state=rng)
        self.weights_, self.history_, self.best_scored_ = out["weights"], out["history"], out["best_scored"]
        return self

    def encode(self, texts) -> list:
        """Token sequences of ``texts``: word-id arrays (``unit="word"``) or the texts themselves (characters)."""
        check_fitted(self, "labels_")
        return [self.vocab_.encode(t) for t in texts] if self.vocab_ is not None else list(texts)

    def proxy(self, docs, weights, rng) -> tuple:
        """``(NGramLM, doc indices)``: the proxy trained on a ``budget_tokens`` draw of ``weights`` from ``docs``
        (the output of :meth:`encode` for the fitted corpus)."""
        check_fitted(self, "labels_")
        seq, picked = sample_mixture(docs, self.labels_, weights, self.budget_tokens, rng, self.batch_tokens)
        if self.vocab_ is not None:
            lm = NGramLM(self.order, n_symbols=self.vocab_.n_symbols, pad=self.vocab_.n_symbols - 1)
        else:
            lm = NGramLM(self.order)
        return lm.fit(seq), picked

    def proxy_perplexity(self, docs, weights, targets, rng) -> float:
        """Perplexity on ``targets`` (encoded) of the proxy trained on a ``budget_tokens`` draw of ``weights``."""
        return self.proxy(docs, weights, rng)[0].perplexity(targets)
