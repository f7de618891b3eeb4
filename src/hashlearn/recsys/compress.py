"""ID compression for embedding tables: one interface, ``fit(interactions)`` → rows per user and item.

A recommender's user and item embedding tables have one row per ID. A *compressor* maps each catalogue
ID to one or more rows of a smaller table; a model embeds an ID as the **sum** of its rows. Every
compressor here has the same fitted attributes:

``user_rows_`` / ``item_rows_``
    int64 arrays of shape (n_users, k_u) / (n_items, k_i): the rows of each catalogue ID, ``-1`` for
    padding (an ID with fewer rows than the widest one).
``n_user_rows_`` / ``n_item_rows_``
    Table sizes, **including** one fallback row each (``user_fallback_row_`` / ``item_fallback_row_``)
    that unknown IDs get at serving time (:meth:`lookup_users` / :meth:`lookup_items` count them in
    ``unknown_counts_``).
``budget_``
    Rows of both tables, fallback rows excluded, as a fraction of the full tables' rows
    (``n_users + n_items``).

Methods: ``full`` (:class:`FullTable`), ``random`` (:class:`RandomHash`, the hashing trick), ``double``
(:class:`DoubleHash`), ``graphhash`` (:class:`~hashlearn.recsys.graphhash.GraphHash`) and ``semantic``
(:class:`~hashlearn.recsys.semantic.SemanticIDs`); :func:`make_compressor` builds one by name.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import NotFittedError, UnknownMethodError, ValidationError
from ..hashing.base import PersistableEstimatorMixin, check_random_state
from ..hashing.e2lsh import _fmix64
from ..registry import register
from .interactions import Interactions

__all__ = ["BaseCompressor", "FullTable", "RandomHash", "DoubleHash", "make_compressor",
           "compressor_names", "hash_ids", "check_interactions"]


def check_interactions(interactions) -> Interactions:
    """Accept an :class:`Interactions` or an (n, 2) integer array of raw (user, item) ids."""
    if isinstance(interactions, Interactions):
        if len(interactions) == 0:
            raise ValidationError("interactions is empty: nothing to fit on")
        return interactions
    arr = np.asarray(interactions)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValidationError(
            f"interactions must be an Interactions or an (n, 2) array of (user, item) ids, got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValidationError("interactions is empty: nothing to fit on")
    return Interactions.from_arrays(arr[:, 0], arr[:, 1])


def hash_ids(ids: np.ndarray, seed: int, n_buckets: int) -> np.ndarray:
    """Bucket in ``[0, n_buckets)`` of each int64 id under a seeded splitmix64 hash (int64 array)."""
    z = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = _fmix64(z ^ _fmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))
    return (z % np.uint64(n_buckets)).astype(np.int64)


def _check_budget(budget, n_ids: int, *, allow_none: bool = False) -> float | None:
    if budget is None and allow_none:
        return None
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or not np.isfinite(budget) or budget <= 0:
        raise ValidationError(f"budget must be a fraction in (0, 1] of the full table's rows, got {budget!r}")
    if budget > 1:
        raise ValidationError(
            f"budget {budget:g} asks for {int(round(budget * n_ids)):,} rows, more than the full table's "
            f"{n_ids:,} rows (one per user and item); use a fraction in (0, 1]"
        )
    return float(budget)


def table_rows(budget: float, n_ids: int) -> int:
    """Rows of one table under ``budget``: ``round(budget * n_ids)``, at least 1."""
    return max(1, int(round(budget * n_ids)))


class BaseCompressor(PersistableEstimatorMixin, BaseEstimator):
    """Shared logic: validation, catalogues, fallback rows, serving-time lookup.

    Subclasses implement ``_assign(X, rng, item_features)`` returning
    ``(user_rows, n_user_rows, item_rows, n_item_rows)`` — row arrays (n, k) with ``-1`` padding and the
    table sizes without the fallback row (which the base class appends).
    """

    method_name = "base"

    def fit(self, interactions, y=None, *, item_features=None):
        """Assign rows to every catalogue user and item.

        Parameters
        ----------
        interactions : Interactions or (n, 2) int array of raw (user, item) ids
            The training events; their catalogues are the IDs that get rows.
        y : ignored
        item_features : float array (n_items, d), optional
            Content features of the catalogue items in ``interactions.item_ids`` order (needed by
            ``semantic``, ignored by the others).

        Returns
        -------
        self
        """
        X = check_interactions(interactions)
        self._check_params(X)
        rng = check_random_state(self.random_state)
        u_rows, n_u, i_rows, n_i = self._assign(X, rng, item_features)
        self.user_ids_ = X.user_ids.copy()
        self.item_ids_ = X.item_ids.copy()
        self.user_rows_ = np.ascontiguousarray(u_rows, dtype=np.int64)
        self.item_rows_ = np.ascontiguousarray(i_rows, dtype=np.int64)
        self.user_fallback_row_ = int(n_u)
        self.item_fallback_row_ = int(n_i)
        self.n_user_rows_ = int(n_u) + 1
        self.n_item_rows_ = int(n_i) + 1
        self.budget_ = float(n_u + n_i) / float(X.n_users + X.n_items)
        self.unknown_counts_ = {"users": 0, "items": 0}
        return self

    # -- hooks ---------------------------------------------------------------------------------------
    def _check_params(self, X: Interactions) -> None:
        _check_budget(self.budget, X.n_users + X.n_items)

    def _assign(self, X, rng, item_features):
        raise NotImplementedError

    # -- serving -------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "user_rows_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(interactions) first")

    def _lookup(self, ids, catalogue, rows, fallback, kind: str) -> np.ndarray:
        self._check_fitted()
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValidationError(f"{kind} ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
        ids = ids.astype(np.int64, copy=False)
        pos = np.searchsorted(catalogue, ids)
        pos_c = np.minimum(pos, max(catalogue.size - 1, 0))
        known = (pos < catalogue.size) & (catalogue[pos_c] == ids)
        out = rows[pos_c].copy()
        if not known.all():
            out[~known] = -1
            out[~known, 0] = fallback
            self.unknown_counts_[kind] += int((~known).sum())
        return out

    def lookup_users(self, ids) -> np.ndarray:
        """Rows (n, k_u) of raw user ``ids``; an unknown id gets the fallback row (and is counted)."""
        self._check_fitted()
        return self._lookup(ids, self.user_ids_, self.user_rows_, self.user_fallback_row_, "users")

    def lookup_items(self, ids) -> np.ndarray:
        """Rows (n, k_i) of raw item ``ids``; an unknown id gets the fallback row (and is counted)."""
        self._check_fitted()
        return self._lookup(ids, self.item_ids_, self.item_rows_, self.item_fallback_row_, "items")

    @property
    def n_params_rows(self) -> int:
        """Rows of both tables including the two fallback rows."""
        self._check_fitted()
        return self.n_user_rows_ + self.n_item_rows_


@register("full", kind="compressor")
class FullTable(BaseCompressor):
    """One row per ID (the uncompressed baseline); ``budget`` must be 1.

    Parameters
    ----------
    budget : float, default 1.0
        Must be 1.0 (kept so every compressor takes the same arguments).
    random_state : ignored

    Examples
    --------
    >>> c = FullTable().fit(np.array([[1, 10], [2, 10], [2, 30]]))
    >>> c.item_rows_.ravel().tolist(), c.n_item_rows_
    ([0, 1], 3)
    """


    def __init__(self, budget: float = 1.0, *, random_state=None):
        self.budget = budget
        self.random_state = random_state

    def _check_params(self, X):
        b = _check_budget(self.budget, X.n_users + X.n_items)
        if b != 1.0:
            raise ValidationError(f"the full table has budget 1 by definition, got budget={b:g}")

    def _assign(self, X, rng, item_features):
        return (np.arange(X.n_users)[:, None], X.n_users, np.arange(X.n_items)[:, None], X.n_items)


@register("random", kind="compressor")
class RandomHash(BaseCompressor):
    """The hashing trick: each ID goes to one row chosen by a seeded hash of its raw id.

    Each table keeps ``round(budget * n)`` rows; unrelated IDs that hash together share a row.

    Parameters
    ----------
    budget : float in (0, 1], default 0.25
        Rows as a fraction of the full table's rows (per table).
    hash_users : bool, default True
        False: users keep one row each and only items are hashed.
    random_state : int, Generator or None
        Seeds the hash function (resolved at fit).

    References
    ----------
    Weinberger, Dasgupta, Langford, Smola, Attenberg, "Feature Hashing for Large Scale Multitask
    Learning", ICML 2009.
    """


    def __init__(self, budget: float = 0.25, *, hash_users: bool = True, random_state=None):
        self.budget = budget
        self.hash_users = hash_users
        self.random_state = random_state

    def _assign(self, X, rng, item_features):
        seeds = rng.integers(0, 2**62, size=2)
        ni = table_rows(self.budget, X.n_items)
        items = hash_ids(X.item_ids, int(seeds[1]), ni)[:, None]
        if not self.hash_users:
            return np.arange(X.n_users)[:, None], X.n_users, items, ni
        nu = table_rows(self.budget, X.n_users)
        return hash_ids(X.user_ids, int(seeds[0]), nu)[:, None], nu, items, ni


@register("double", kind="compressor")
class DoubleHash(BaseCompressor):
    """Double hashing: two independent hashes into two half tables; an ID is the sum of its two rows.

    Two IDs share their whole embedding only if both hashes collide (probability about ``4 / R²``
    instead of ``1 / R`` for the hashing trick at the same ``R`` rows).

    Parameters
    ----------
    budget : float in (0, 1], default 0.25
        Rows as a fraction of the full table's rows (per table; each half gets half of them).
    random_state : int, Generator or None

    References
    ----------
    Zhang, Liu, Zhu, Xu, Jiang, Zhou, Ma, Chen, Chen, Yang, "Model Size Reduction Using Frequency
    Based Double Hashing for Recommender Systems", RecSys 2020.
    """


    def __init__(self, budget: float = 0.25, *, random_state=None):
        self.budget = budget
        self.random_state = random_state

    @staticmethod
    def _two(ids, seeds, n_rows):
        if n_rows < 2:
            return hash_ids(ids, int(seeds[0]), 1)[:, None], 1
        a = n_rows // 2
        b = n_rows - a
        return np.stack([hash_ids(ids, int(seeds[0]), a), a + hash_ids(ids, int(seeds[1]), b)], axis=1), n_rows

    def _assign(self, X, rng, item_features):
        seeds = rng.integers(0, 2**62, size=4)
        u, nu = self._two(X.user_ids, seeds[:2], table_rows(self.budget, X.n_users))
        i, ni = self._two(X.item_ids, seeds[2:], table_rows(self.budget, X.n_items))
        return u, nu, i, ni


def compressor_names() -> list[str]:
    """Names accepted by :func:`make_compressor`: the registry's methods of kind ``compressor``."""
    from ..registry import list_methods

    return list_methods("compressor")


def make_compressor(name: str, **params) -> BaseCompressor:
    """An unfitted compressor by name (``full``, ``random``, ``double``, ``graphhash``, ``semantic``).

    The one registry (:func:`hashlearn.registry.make_method`) builds it: an unknown name or parameter is
    an error naming the accepted ones.
    """
    from ..registry import get_method_class, make_method

    if name not in compressor_names():
        cls = None
        try:
            cls = get_method_class(name)
        except UnknownMethodError:
            pass
        kind = f" ({name!r} is a {cls.input_kind} method)" if cls is not None else ""
        raise UnknownMethodError(f"unknown compressor {name!r}{kind}; choose one of {', '.join(compressor_names())}")
    return make_method(name, random_state=params.pop("random_state", None), **params)
