"""The blocker contract: :class:`Blocker` proposes candidate pairs of records, in chunks, never twice."""

from __future__ import annotations

import inspect
from typing import Iterator

import numpy as np

from ...errors import ValidationError
from .pairs import unique_pairs
from .records import RecordTable

__all__ = ["Blocker"]


class Blocker:
    """Base class: a blocker proposes candidate pairs of records.

    Subclasses implement :meth:`_candidates` (yielding ``(m, 2)`` int64 position arrays; for
    deduplication pairs ``i < j``). :meth:`iter_candidates` removes duplicates across chunks.
    Constructors only store their parameters, under the same names (:meth:`param_names` lists them).
    """

    name = "blocker"

    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameter names, sorted."""
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def _candidates(self, left: RecordTable, right: RecordTable | None) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def iter_candidates(self, left: RecordTable, right: RecordTable | None = None) -> Iterator[np.ndarray]:
        """Candidate pairs in chunks.

        Parameters
        ----------
        left : RecordTable
        right : RecordTable or None
            ``None``: deduplication of ``left``.

        Yields
        ------
        pairs : ndarray of shape (m, 2), int64
            ``(left position, right position)``; for deduplication ``i < j``. No pair is yielded twice.
        """
        if not isinstance(left, RecordTable) or (right is not None and not isinstance(right, RecordTable)):
            raise ValidationError("blockers take RecordTable inputs: use prepare_table() first")
        if right is not None and len(left.fields) != len(right.fields):
            raise ValidationError(f"left has fields {left.fields} but right has {right.fields}")
        n_right = len(left if right is None else right)
        seen = np.empty(0, dtype=np.int64)
        for chunk in self._candidates(left, right):
            if chunk.shape[0] == 0:
                continue
            codes = np.unique(chunk[:, 0] * n_right + chunk[:, 1])
            if seen.size:
                codes = codes[~np.isin(codes, seen, assume_unique=True)]
            if codes.size == 0:
                continue
            seen = np.union1d(seen, codes)
            yield np.stack([codes // n_right, codes % n_right], axis=1)

    def iter_labelled(self, left: RecordTable, right: RecordTable | None = None) -> Iterator[tuple[np.ndarray, str]]:
        """``(pairs, blocker name)`` chunks: :meth:`iter_candidates`, each chunk credited to this blocker."""
        for chunk in self.iter_candidates(left, right):
            yield chunk, self.name

    def candidate_pairs(self, left: RecordTable, right: RecordTable | None = None) -> np.ndarray:
        """All candidate pairs as one sorted ``(m, 2)`` int64 array (see :meth:`iter_candidates`)."""
        chunks = list(self.iter_candidates(left, right))
        if not chunks:
            return np.empty((0, 2), dtype=np.int64)
        n_right = len(left if right is None else right)
        return unique_pairs(np.concatenate(chunks), n_right)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_"))
        return f"{type(self).__name__}({params})"
