"""The interaction table every recsys component takes, and the splits used to evaluate on it.

:class:`Interactions` holds one row per (user, item) event — raw integer ids, a rating and a time —
together with the *catalogues* of user and item ids (every id the application knows, including items
nobody has rated yet). Compressors map catalogue ids to embedding rows; splits keep the catalogues, so
a model trained on a split still has a row for an item that only appears in the test part.

* :meth:`Interactions.implicit` — implicit feedback: keep the events with rating ≥ a threshold.
* :func:`leave_last_out` — per-user temporal split: each user's last event(s) are the test set.
* :func:`temporal_split` — per-user temporal split: each user's last fraction of events.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import ValidationError

__all__ = ["Interactions", "Split", "leave_last_out", "temporal_split", "deduplicate"]

_DUPLICATE_POLICIES = ("last", "first", "error")


def _int_ids(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValidationError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _catalogue(ids, present: np.ndarray, name: str) -> np.ndarray:
    if ids is None:
        return np.unique(present)
    cat = _int_ids(ids, name)
    cat_sorted = np.unique(cat)
    if cat_sorted.size != cat.size:
        raise ValidationError(f"{name} has {cat.size - cat_sorted.size} repeated id(s)")
    missing = np.setdiff1d(present, cat_sorted)
    if missing.size:
        raise ValidationError(
            f"{missing.size} id(s) in the events are not in {name} (first: {int(missing[0])})"
        )
    return cat_sorted


@dataclass(frozen=True, eq=False)
class Interactions:
    """Events (user, item, rating, timestamp) plus the catalogues of known user and item ids.

    Build one with :meth:`from_arrays` (validated); the MovieLens readers return one too.

    Attributes
    ----------
    user, item : int64 arrays of shape (n,)
        Raw ids of each event.
    rating : float32 array (n,)
        The rating (1.0 for implicit events that carry none).
    timestamp : int64 array (n,)
        Event time (any monotone clock); ties keep the input order.
    user_ids, item_ids : int64 arrays, sorted, unique
        The catalogues: every user / item id known to the application, a superset of the ids in
        the events.
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, user, item, rating=None, timestamp=None, *, user_ids=None, item_ids=None,
                    duplicates: str = "last") -> "Interactions":
        """Validated events from parallel arrays (a ratings table's columns).

        Parameters
        ----------
        user, item : array-like of int, shape (n,)
        rating : array-like of float (n,), optional — 1.0 everywhere when omitted.
        timestamp : array-like of int (n,), optional — the input order when omitted.
        user_ids, item_ids : array-like of int, optional
            Catalogues; default: the ids present in the events.
        duplicates : {"last", "first", "error"}, default "last"
            What to do with repeated (user, item) pairs: keep the latest (by timestamp, then input
            order), keep the earliest, or raise :class:`~hashlearn.errors.ValidationError`.
        """
        user = _int_ids(user, "user")
        item = _int_ids(item, "item")
        n = user.size
        if item.size != n:
            raise ValidationError(f"user has {n} entries but item has {item.size}")
        rating = np.ones(n, np.float32) if rating is None else np.asarray(rating, dtype=np.float32)
        timestamp = np.arange(n, dtype=np.int64) if timestamp is None else _int_ids(timestamp, "timestamp")
        for name, arr in (("rating", rating), ("timestamp", timestamp)):
            if arr.shape != (n,):
                raise ValidationError(f"{name} has shape {arr.shape}, expected ({n},)")
        if not np.all(np.isfinite(rating)):
            raise ValidationError(f"rating has {int(np.sum(~np.isfinite(rating)))} non-finite value(s)")
        keep, _ = deduplicate(user, item, timestamp, policy=duplicates)
        user, item, rating, timestamp = user[keep], item[keep], rating[keep], timestamp[keep]
        return cls(user, item, rating, timestamp,
                   _catalogue(user_ids, np.unique(user), "user_ids"),
                   _catalogue(item_ids, np.unique(item), "item_ids"))

    # -- basic views -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.user.size)

    @property
    def n_users(self) -> int:
        """Number of users in the catalogue."""
        return int(self.user_ids.size)

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue."""
        return int(self.item_ids.size)

    def user_index(self) -> np.ndarray:
        """Position of each event's user in :attr:`user_ids` (int64, shape (n,))."""
        return np.searchsorted(self.user_ids, self.user).astype(np.int64)

    def item_index(self) -> np.ndarray:
        """Position of each event's item in :attr:`item_ids` (int64, shape (n,))."""
        return np.searchsorted(self.item_ids, self.item).astype(np.int64)

    def item_counts(self) -> np.ndarray:
        """Number of events of each catalogue item (int64, shape (n_items,))."""
        return np.bincount(self.item_index(), minlength=self.n_items).astype(np.int64)

    def user_counts(self) -> np.ndarray:
        """Number of events of each catalogue user (int64, shape (n_users,))."""
        return np.bincount(self.user_index(), minlength=self.n_users).astype(np.int64)

    def select(self, rows) -> "Interactions":
        """The events at ``rows`` (a boolean mask or integer positions), catalogues unchanged."""
        rows = np.asarray(rows)
        return Interactions(self.user[rows], self.item[rows], self.rating[rows], self.timestamp[rows],
                            self.user_ids, self.item_ids)

    def implicit(self, threshold: float = 4.0) -> "Interactions":
        """Implicit feedback: the events whose rating is ≥ ``threshold`` (catalogues unchanged)."""
        if not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
            raise ValidationError(f"threshold must be a finite number, got {threshold!r}")
        return self.select(self.rating >= threshold)

    def chronological(self) -> np.ndarray:
        """Event positions sorted by (user, timestamp, input position) — a stable per-user timeline."""
        return np.lexsort((np.arange(len(self)), self.timestamp, self.user))

    def pairs(self) -> np.ndarray:
        """(n, 2) int64 array of catalogue positions ``[user_index, item_index]``."""
        return np.stack([self.user_index(), self.item_index()], axis=1)


def deduplicate(user: np.ndarray, item: np.ndarray, timestamp: np.ndarray, *, policy: str = "last",
                where=None) -> tuple[np.ndarray, int]:
    """Positions to keep when (user, item) pairs repeat, and how many were dropped.

    ``policy`` "last" keeps the latest event (timestamp, then position), "first" the earliest,
    "error" raises :class:`ValidationError` naming the first repeated pair (``where(pos)`` may turn a
    position into a location such as a file line).
    """
    if policy not in _DUPLICATE_POLICIES:
        raise ValidationError(f"duplicates must be one of {', '.join(_DUPLICATE_POLICIES)}, got {policy!r}")
    n = user.size
    order = np.lexsort((np.arange(n), timestamp, item, user))
    u, i = user[order], item[order]
    same_next = (u[1:] == u[:-1]) & (i[1:] == i[:-1])
    n_dup = int(same_next.sum())
    if n_dup == 0:
        return np.arange(n), 0
    if policy == "error":
        k = int(np.flatnonzero(same_next)[0])
        a, b = sorted((int(order[k]), int(order[k + 1])))
        loc = (lambda p: f"position {p}") if where is None else where
        raise ValidationError(
            f"duplicate rating of user {int(u[k])} for item {int(i[k])} at {loc(a)} and {loc(b)} "
            f"({n_dup} repeated pair(s) in all; use duplicates='last' or 'first')"
        )
    if policy == "last":
        keep_sorted = np.r_[~same_next, True]
    else:
        keep_sorted = np.r_[True, ~same_next]
    return np.sort(order[keep_sorted]), n_dup


@dataclass(frozen=True, eq=False)
class Split:
    """A train / validation / test split of one :class:`Interactions` (validation may be empty)."""

    train: Interactions
    valid: Interactions
    test: Interactions


def leave_last_out(interactions: Interactions, *, n_test: int = 1, n_valid: int = 0,
                   min_train: int = 1) -> Split:
    """Per-user temporal split: each user's last ``n_test`` events are the test set.

    The ``n_valid`` events before them form the validation set, the rest the training set. Time ties
    keep the input order. Users with fewer than ``min_train + n_valid + n_test`` events stay entirely
    in the training set.

    Parameters
    ----------
    interactions : Interactions
    n_test, n_valid, min_train : int

    Returns
    -------
    Split with the three parts; catalogues are kept.
    """
    if not isinstance(interactions, Interactions):
        raise ValidationError(f"expected Interactions, got {type(interactions).__name__}")
    for name, v, lo in (("n_test", n_test, 1), ("n_valid", n_valid, 0), ("min_train", min_train, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValidationError(f"{name} must be an integer >= {lo}, got {v!r}")
    order = interactions.chronological()
    users = interactions.user[order]
    starts = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1]
    lengths = np.diff(np.r_[starts, users.size])
    # position of each event from the end of its user's timeline (0 = last)
    from_end = np.repeat(starts + lengths, lengths) - np.arange(users.size) - 1
    eligible = np.repeat(lengths >= min_train + n_valid + n_test, lengths)
    part = np.zeros(users.size, np.int8)
    part[eligible & (from_end < n_test)] = 2
    part[eligible & (from_end >= n_test) & (from_end < n_test + n_valid)] = 1
    return Split(*(interactions.select(np.sort(order[part == p])) for p in (0, 1, 2)))


def temporal_split(interactions: Interactions, *, test_fraction: float = 0.2) -> Split:
    """Per-user temporal split: the last ``ceil(test_fraction * n_u)`` events of each user are the test
    set (users with a single event stay in training); validation is empty.

    Parameters
    ----------
    interactions : Interactions
    test_fraction : float in (0, 1)
    """
    if not isinstance(interactions, Interactions):
        raise ValidationError(f"expected Interactions, got {type(interactions).__name__}")
    f = test_fraction
    if isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0 < f < 1:
        raise ValidationError(f"test_fraction must be in (0, 1), got {f!r}")
    order = interactions.chronological()
    users = interactions.user[order]
    starts = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1]
    lengths = np.diff(np.r_[starts, users.size])
    n_test = np.where(lengths > 1, np.minimum(np.ceil(f * lengths).astype(np.int64), lengths - 1), 0)
    from_end = np.repeat(starts + lengths, lengths) - np.arange(users.size) - 1
    test = from_end < np.repeat(n_test, lengths)
    empty = interactions.select(np.zeros(len(interactions), bool))
    return Split(interactions.select(np.sort(order[~test])), empty, interactions.select(np.sort(order[test])))
