"""A collection's content in memory: the library's :class:`~hashlearn.HashIndex` (codes, ids, vectors,
hasher) plus JSON payloads and their inverted index. Saved whole as the collection's snapshot.

There is one storage path: upserts, deletes, searches and re-ranking are the ``HashIndex``'s own, so a
collection and a ``HashIndex`` given the same data return identical ids and distances.
"""

from __future__ import annotations

import json

import numpy as np

from ...index.hashindex import HashIndex
from ...io.persist import persistable
from .config import CollectionConfig

__all__ = ["ServiceCollectionState"]


@persistable
class ServiceCollectionState:
    """Everything a collection holds; saved as its snapshot.

    ``index`` keeps every vector (its ``rerank`` is the collection's default number of candidates) and
    stores vectors before the hasher is fitted (``fit_on_add=False``): an untrained collection accepts
    upserts, and training encodes what is there. Payloads are kept by id, with an inverted index of
    their scalar fields for filters. Writes are split in two: ``prepare_*`` does every computation that
    can fail (encoding), ``apply_*`` only assigns, so that a write logged to disk is always applied.
    """

    def __init__(self, config: CollectionConfig):
        self.config = config
        self.index = HashIndex(config.make_hasher(), rerank=config.rerank_candidates, metric=config.metric,
                               fit_on_add=False)
        self.payloads: dict[int, object] = {}
        self.inverted: dict[tuple, set[int]] = {}  # (key, tag, value) of scalar payload fields -> ids
        self.seq = 0

    @property
    def trained(self) -> bool:
        return hasattr(self.index.hasher, "n_features_in_")

    @property
    def n(self) -> int:
        return self.index.ntotal

    @property
    def code_bits(self) -> int | None:
        return int(self.index.hasher.code_bits) if self.trained else None

    # -- writes: prepare (may fail) then apply (assignments only) ---------------------------------------
    def prepare_upsert(self, X: np.ndarray):
        """Codes of X under the current hasher (None while untrained)."""
        return self.index.encode(X) if self.trained else None

    def apply_upsert(self, seq: int, ids: np.ndarray, X: np.ndarray, payloads, codes) -> None:
        self.index.remove(ids)
        for i in ids.tolist():
            self._drop_payload(i)
        self.index.add(X, ids, codes=codes)
        if payloads is not None:
            for i, p in zip(ids.tolist(), payloads):
                if p is not None:
                    self._set_payload(i, p)
        self.seq = seq

    def apply_delete(self, seq: int, ids: np.ndarray) -> int:
        n = self.index.remove(ids)
        for i in ids.tolist():
            self._drop_payload(i)
        self.seq = seq
        return n

    def prepare_hasher(self, hasher) -> np.ndarray:
        """Codes of every stored vector under ``hasher``, in row order."""
        V = self.index.vectors
        if not V.shape[0]:
            return np.zeros((0, (hasher.code_bits + 63) // 64), np.uint64)
        return hasher.transform(V)

    def apply_hasher(self, seq: int, hasher, codes) -> None:
        self.index.set_hasher(hasher, codes=codes)
        self.seq = seq

    # -- payloads ------------------------------------------------------------------------------------
    def _set_payload(self, i: int, p: dict) -> None:
        self.payloads[i] = p
        for key, value in p.items():
            term = _term(key, value)
            if term is not None:
                self.inverted.setdefault(term, set()).add(i)

    def _drop_payload(self, i: int) -> None:
        p = self.payloads.pop(i, None)
        if p:
            for key, value in p.items():
                term = _term(key, value)
                ids = self.inverted.get(term) if term is not None else None
                if ids is not None:
                    ids.discard(i)
                    if not ids:
                        del self.inverted[term]

    def matching(self, filter: dict) -> np.ndarray:
        """Ids (increasing) of the points whose payload has ``payload[key] == value`` for every item.

        Scalar values (string, number, boolean, null) are looked up in an inverted index; a list or
        object value is checked on the remaining candidates. ``1`` and ``true`` are different values.
        """
        candidates = None
        rest = {}
        for key, value in filter.items():
            term = _term(key, value)
            if term is None:
                rest[key] = value
                continue
            ids = self.inverted.get(term, set())
            candidates = set(ids) if candidates is None else candidates & ids
            if not candidates:
                return np.zeros(0, np.int64)
        if candidates is None:
            candidates = self.payloads.keys()
        if rest:
            candidates = [i for i in candidates if all(
                k in self.payloads[i] and _json_equal(self.payloads[i][k], v) for k, v in rest.items())]
        out = np.fromiter(candidates, np.int64)
        out.sort()
        return out

    # -- persistence ---------------------------------------------------------------------------------
    def _get_state(self) -> dict:
        pay_ids = np.fromiter(self.payloads.keys(), np.int64, len(self.payloads))
        pay_json = json.dumps(list(self.payloads.values()), separators=(",", ":")).encode()
        return {
            "config": self.config.as_dict(),
            "index": self.index,
            "payload_ids": pay_ids,
            "payloads_json": np.frombuffer(pay_json, np.uint8),
            "seq": self.seq,
        }

    @classmethod
    def _from_state(cls, state: dict) -> "ServiceCollectionState":
        obj = cls(CollectionConfig.from_dict(state["config"]))
        if "index" in state:
            index = state["index"]
            if not isinstance(index, HashIndex) or index.fit_on_add or not index.rerank:
                raise ValueError("snapshot index is not a collection's HashIndex")
            obj.index = index
        else:  # a snapshot written before collections used HashIndex
            obj._load_arrays(state)
        if obj.trained and obj.index.hasher.n_features_in_ != obj.config.dim:
            raise ValueError("snapshot hasher does not match the collection's dimension")
        values = json.loads(bytes(state["payloads_json"]).decode())
        pay_ids = state["payload_ids"]
        if not isinstance(values, list) or len(values) != pay_ids.shape[0]:
            raise ValueError("snapshot payloads do not match their ids")
        for i, p in zip(pay_ids.tolist(), values):
            obj._set_payload(i, p)
        obj.seq = int(state["seq"])
        return obj

    def _load_arrays(self, state: dict) -> None:
        ids, vectors = np.ascontiguousarray(state["ids"]), np.ascontiguousarray(state["vectors"], np.float32)
        if state["code_bits"] is not None:
            self.index.set_hasher(state["hasher"])
            self.index.add(vectors, ids, codes=np.ascontiguousarray(state["codes"]))
        else:
            self.index.add(vectors, ids)


def _term(key: str, value):
    """Inverted-index key of a scalar payload field; None for lists and objects. Booleans are tagged
    apart from numbers (JSON ``true`` is not ``1``); ``1`` and ``1.0`` are the same JSON number."""
    if isinstance(value, bool):
        return (key, "b", value)
    if value is None or isinstance(value, (int, float, str)):
        return (key, "v", value)
    return None


def _json_equal(a, b) -> bool:
    # JSON equality without Python's 1 == True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b
