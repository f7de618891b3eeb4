"""A dense text index on compact codes: Hamming (or asymmetric) first stage, optional rescoring.

Codes (``spec`` strings as the CLI takes them):

``float``
    the uncompressed embeddings (4·d bytes per document), exact inner-product search;
``sign``
    one bit per dimension, ``x > 0`` (d/8 bytes); ``msign``: the same after subtracting the corpus mean;
``METHOD:BITS``
    any vector hasher of :mod:`hashlearn.hashing` (``itq:256``, ``pcah:128``, ``simhash:384`` ...) or
    ``bpr:BITS`` (:class:`~hashlearn.text.bpr.BPRHasher`, needs training queries);
``QUANTIZER:BYTES``
    a quantizer of :mod:`hashlearn.quantize` with BYTES one-byte sub-codes per document: ``pq:16``,
    ``opq:16``, ``rq:16`` (16 levels), and the task-trained ``jpq:16`` and ``repconc:16`` (need training
    queries, as ``bpr``). Searched by an asymmetric (ADC) scan of inner-product tables: the score of a
    document is the inner product of the float query (for ``jpq``/``repconc``: the mapped query) with
    the document's reconstruction, so no extra memory per document.

Search (binary codes): the first stage ranks every document by Hamming distance between binary codes (symmetric), or,
with ``asymmetric=True``, by the inner product of the query's real-valued projection with the
document's ±1 code (float query × binary document; no extra memory per document). The top
``candidates`` are then optionally rescored with

* ``asym``: float query projection × binary document (no extra memory; binary codes only),
* ``float``: the stored float vectors (4·d bytes per document more),
* ``int8``: int8 scalar-quantised vectors, one scale per dimension (d bytes per document more).

Scores returned are similarities (larger is better): ``bits - hamming`` for the Hamming stage, the
inner product otherwise. Ties are broken by the smaller position (insertion order).
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

from ..codes import knn_search, n_words, unpack
from ..errors import FileFormatError, IncompatibleError, ValidationError
from ..hashing.base import check_vectors_array
from ..io.persist import persistable
from ..registry import get_method_class, make_method, parse_spec
from .codes import SignCodes

__all__ = ["SignCodes", "TextIndex", "parse_codes", "make_encoder", "needs_queries", "is_quantizer",
           "RESCORE_MODES"]

RESCORE_MODES = ("none", "asym", "float", "int8")
#: Registry kinds usable as text codes (besides ``float``).
CODE_KINDS = ("vector", "embedding", "quantizer")
_BLOCK = 32768


def parse_codes(spec: str) -> tuple[str, int | None]:
    """``"itq:256"`` → ``("itq", 256)``; ``"float"``/``"sign"`` → ``(name, None)``.

    ``float`` (the uncompressed vectors) or any registry method of kind ``vector`` or ``embedding``
    (:func:`hashlearn.registry.parse_spec`); errors name the problem.
    """
    parsed = parse_spec(spec, kinds=CODE_KINDS, allow=("float",), require_bits=True, fixed_width_bits=True)
    if parsed.name == "float" and parsed.n_bits is not None:
        raise ValidationError("codes 'float' takes no bit count")
    if parsed.name != "float":
        cls = get_method_class(parsed.name)
        if cls.input_kind == "quantizer":
            if cls.size_param is None:
                raise ValidationError(f"codes {spec!r}: {parsed.name} gives one list id per vector, not codes for "
                                      "documents; use pq:BYTES, opq:BYTES, rq:BYTES, jpq:BYTES or repconc:BYTES")
            if parsed.n_bits is None:
                raise ValidationError(f"codes {spec!r}: give the bytes per document as {parsed.name}:BYTES "
                                      f"(e.g. {parsed.name}:16)")
    return parsed.name, parsed.n_bits


def needs_queries(spec: str) -> bool:
    """Whether the codes of ``spec`` are trained with queries (``bpr``, ``jpq``, ``repconc``): their
    ``fit`` takes ``queries``/``pairs`` and/or ``pseudo_queries``/``pseudo_docs``."""
    name, _ = parse_codes(spec)
    if name == "float":
        return False
    return "queries" in inspect.signature(get_method_class(name).fit).parameters


def is_quantizer(encoder) -> bool:
    """Whether ``encoder`` makes uint8 product/residual codes (searched by ADC), not packed bits."""
    return getattr(type(encoder), "input_kind", None) == "quantizer"


def make_encoder(spec: str, dim: int, *, random_state=None, **params):
    """Unfitted encoder for a codes spec (``None`` for ``float``); checks the bit count against ``dim``."""
    name, n_bits = parse_codes(spec)
    if name == "float":
        return None
    cls = get_method_class(name)
    if cls.input_kind == "quantizer":  # QUANTIZER:BYTES, one byte per sub-code
        params.setdefault(cls.size_param, n_bits)
        return make_method(name, random_state=random_state, **params)
    if "n_bits" not in cls._get_param_names():
        if n_bits is not None and n_bits != dim:
            raise ValidationError(f"codes {spec!r}: {name} codes have one bit per dimension ({dim}), got {n_bits}")
        n_bits = None
    return make_method(name, n_bits=n_bits, random_state=random_state, **params)


def _topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``k`` per row, descending, ties → smaller column first."""
    n = scores.shape[1]
    k = min(k, n)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(part, order, axis=1)


def _merge(best_v, best_i, v, i, k):
    if best_v is None:
        return v, i
    allv, alli = np.concatenate([best_v, v], 1), np.concatenate([best_i, i], 1)
    order = np.lexsort((alli, -allv), axis=1)[:, :k]
    return np.take_along_axis(allv, order, 1), np.take_along_axis(alli, order, 1)


def _signs(codes: np.ndarray, n_bits: int) -> np.ndarray:
    return unpack(codes, n_bits).astype(np.float32) * 2.0 - 1.0


@persistable
class TextIndex:
    """Documents' compact codes (+ optional rescoring vectors) with their string ids.

    Parameters
    ----------
    encoder : fitted encoder or None
        ``None`` stores float vectors (the ``float`` baseline); else an object with ``transform``
        (packed codes), ``margins`` and ``code_bits`` — :class:`SignCodes`, a registry hasher or
        :class:`~hashlearn.text.bpr.BPRHasher` —, or a quantizer of :mod:`hashlearn.quantize`
        (uint8 codes searched by ADC over inner-product tables), already fitted.
    rescore : {"none", "asym", "float", "int8"}, default "none"
        Default rescoring of the first-stage candidates; ``float``/``int8`` also decide what is
        stored. ``asym`` applies to binary codes only (quantized codes are already scored
        asymmetrically).
    candidates : int, default 100
        First-stage candidates rescored per query.
    asymmetric : bool, default False
        First stage = float query projection × binary documents over the whole index (quantized
        codes are always searched this way: the flag has no effect on them).
    codes : str, default ""
        The codes spec, kept for reports.
    model : str, default ""
        Name of the embedding model the vectors come from (queries must use the same).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((100, 16)).astype(np.float32)
    >>> idx = TextIndex(SignCodes().fit(X), rescore="float", candidates=20)
    >>> idx.add(X, [f"d{i}" for i in range(100)])
    >>> scores, pos = idx.search(X[:3], k=1)
    >>> [idx.doc_ids[p] for p in pos[:, 0]]
    ['d0', 'd1', 'd2']
    """

    def __init__(self, encoder=None, *, rescore: str = "none", candidates: int = 100, asymmetric: bool = False,
                 codes: str = "", model: str = ""):
        if rescore not in RESCORE_MODES:
            raise ValidationError(f"rescore must be one of {', '.join(RESCORE_MODES)}; got {rescore!r}")
        if not isinstance(candidates, numbers.Integral) or candidates < 1:
            raise ValidationError(f"candidates must be a positive integer, got {candidates!r}")
        if encoder is None and (rescore != "none" or asymmetric):
            rescore, asymmetric = "none", False  # float vectors are searched exactly: nothing to rescore
        if encoder is not None and not hasattr(encoder, "transform"):
            raise ValidationError(f"encoder must have transform/margins, got {type(encoder).__name__}")
        if is_quantizer(encoder):
            if not hasattr(encoder, "fingerprint_"):
                raise ValidationError(f"the {type(encoder).__name__} quantizer is not fitted: fit it first")
            if rescore == "asym":
                raise ValidationError("rescore 'asym' applies to binary codes; quantized codes are already "
                                      "scored asymmetrically (use none, float or int8)")
        self.encoder = encoder
        self.rescore = rescore
        self.candidates = int(candidates)
        self.asymmetric = bool(asymmetric)
        self.codes = codes or ("float" if encoder is None else type(encoder).__name__)
        self.model = model
        self.doc_ids: list[str] = []
        self.snippets: list[str] | None = None  # the start of each document's text, when given to add()
        self._id_set: set[str] = set()
        self.dim = None
        self.codes_ = None
        self.vectors_ = None
        self.int8_ = None
        self.int8_scale_ = None

    # -- building ----------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return len(self.doc_ids)

    @property
    def quantized(self) -> bool:
        """Whether the documents are stored as quantizer codes (uint8, ADC search)."""
        return is_quantizer(self.encoder)

    @property
    def n_bits(self) -> int | None:
        if self.encoder is None:
            return None
        return 8 * int(self.encoder.code_size) if self.quantized else int(self.encoder.code_bits)

    def add(self, X, ids, snippets=None) -> None:
        """Append documents: embeddings ``X`` (n, d) float and ``ids`` (n distinct new strings).

        ``snippets`` (n strings, optional): a short text shown with search results (title and the start
        of the text); give them with every batch or with none.
        """
        X = check_vectors_array(X, name="document embeddings", n_features=self.dim)
        ids = [str(i) for i in ids]
        if len(ids) != X.shape[0]:
            raise ValidationError(f"got {X.shape[0]} embeddings but {len(ids)} ids")
        fresh = set(ids)
        if len(fresh) != len(ids):
            seen, dup = set(), None
            for i in ids:
                if i in seen:
                    dup = i
                    break
                seen.add(i)
            raise ValidationError(f"duplicate document id {dup!r} in the batch")
        clash = fresh & self._id_set
        if clash:
            raise ValidationError(f"document id {sorted(clash)[0]!r} is already in the index ({len(clash)} clash)")
        if snippets is not None:
            snippets = [str(t) for t in snippets]
            if len(snippets) != len(ids):
                raise ValidationError(f"got {len(ids)} ids but {len(snippets)} snippets")
        if (snippets is None) != (self.snippets is None) and self.ntotal:
            raise ValidationError("give snippets with every batch or with none (the index "
                                  + ("has" if self.snippets is not None else "has no") + " snippets)")
        enc_dim = getattr(self.encoder, "n_features_in_", None)
        if enc_dim is not None and enc_dim != X.shape[1]:
            raise IncompatibleError(f"embeddings have {X.shape[1]} dimensions but the encoder was fitted on {enc_dim}")
        self.dim = int(X.shape[1])

        def append(old, new):
            return new if old is None else np.concatenate([old, new])

        if self.quantized:  # plain uint8 rows; the codebook's fingerprint is checked at load
            self.codes_ = append(self.codes_, np.asarray(self.encoder.encode(X)).view(np.ndarray))
        elif self.encoder is not None:
            self.codes_ = append(self.codes_, self.encoder.transform(X))
        if self.encoder is None or self.rescore == "float":
            self.vectors_ = append(self.vectors_, X)
        if self.rescore == "int8":
            if self.int8_scale_ is None:
                self.int8_scale_ = np.maximum(np.abs(X).max(axis=0), 1e-12).astype(np.float32) / 127.0
            q = np.clip(np.rint(X / self.int8_scale_), -127, 127).astype(np.int8)
            self.int8_ = append(self.int8_, q)
        self.doc_ids.extend(ids)
        self._id_set.update(ids)
        if snippets is not None:
            self.snippets = (self.snippets or []) + snippets

    # -- memory ------------------------------------------------------------------------------------
    def bytes_per_doc(self) -> dict:
        """Bytes per document: ``searched`` (first stage), ``rescore`` (extra stored data), ``total``."""
        d = self.dim or 0
        if self.encoder is None:
            searched = 4 * d
        elif self.quantized:
            searched = int(self.encoder.code_size)
        else:
            searched = 8 * n_words(self.n_bits)
        extra = {"float": 4 * d, "int8": d}.get(self.rescore, 0) if self.encoder is not None else 0
        return {"searched": searched, "rescore": extra, "total": searched + extra}

    # -- search ------------------------------------------------------------------------------------
    def search(self, Q, k: int = 10, *, rescore: str | None = None, candidates: int | None = None,
               asymmetric: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` documents of each query embedding.

        Parameters
        ----------
        Q : array (nq, d) float
        k : int
        rescore, candidates, asymmetric : optional
            Override the index defaults for this search.

        Returns
        -------
        scores : float32 (nq, k) — similarities, descending; ``-inf`` where fewer than ``k`` exist
        positions : int64 (nq, k) — rows of :attr:`doc_ids`; -1 where fewer than ``k`` exist
        """
        if self.ntotal == 0:
            raise ValidationError("the index is empty: add documents first")
        Q = check_vectors_array(Q, name="query embeddings", n_features=self.dim)
        if not isinstance(k, numbers.Integral) or k < 1:
            raise ValidationError(f"k must be a positive integer, got {k!r}")
        rescore = self.rescore if rescore is None else rescore
        candidates = self.candidates if candidates is None else int(candidates)
        asymmetric = self.asymmetric if asymmetric is None else bool(asymmetric)
        if rescore not in RESCORE_MODES:
            raise ValidationError(f"rescore must be one of {', '.join(RESCORE_MODES)}; got {rescore!r}")
        if self.quantized and rescore == "asym":
            raise ValidationError("rescore 'asym' applies to binary codes; quantized codes are already scored "
                                  "asymmetrically (use none, float or int8)")
        if self.encoder is None:
            scores, pos = self._dense_topk(Q, k)
        else:
            if rescore == "float" and self.vectors_ is None:
                raise ValidationError("this index stores no float vectors: build it with rescore='float'")
            if rescore == "int8" and self.int8_ is None:
                raise ValidationError("this index stores no int8 vectors: build it with rescore='int8'")
            first_k = k if rescore == "none" else max(k, candidates)
            if self.quantized:
                scores, pos = self._adc_topk(Q, min(first_k, self.ntotal))
            elif asymmetric:
                scores, pos = self._asym_topk(Q, first_k)
            else:
                D, pos = knn_search(self.encoder.transform(Q), self.codes_, min(first_k, self.ntotal),
                                    n_bits=self.n_bits)
                scores = np.where(pos >= 0, self.n_bits - D, -np.inf).astype(np.float32)
            if rescore != "none":
                scores, pos = self._rescore(Q, pos, rescore)
            scores, pos = scores[:, :k], pos[:, :k]
        return _pad(scores, pos, k)

    def _dense_topk(self, Q, k):
        best_v = best_i = None
        for start in range(0, self.ntotal, _BLOCK):
            block = self.vectors_[start:start + _BLOCK]
            v, i = _topk(Q @ block.T, k)
            best_v, best_i = _merge(best_v, best_i, v, i + start, k)
        return best_v.astype(np.float32), best_i.astype(np.int64)

    def _adc_topk(self, Q, k):
        """Largest inner products ``<q, reconstruction>`` by an ADC scan (ties → smaller position)."""
        from ..quantize import adc_search

        D, pos = adc_search(self.encoder.inner_product_tables(Q), self.codes_, k)
        return np.where(pos >= 0, -D, -np.inf).astype(np.float32), pos

    def _asym_topk(self, Q, k):
        Z = self.encoder.margins(Q).astype(np.float32)
        best_v = best_i = None
        for start in range(0, self.ntotal, _BLOCK):
            S = _signs(self.codes_[start:start + _BLOCK], self.n_bits)
            v, i = _topk(Z @ S.T, k)
            best_v, best_i = _merge(best_v, best_i, v, i + start, k)
        return best_v.astype(np.float32), best_i.astype(np.int64)

    def _rescore(self, Q, pos, mode):
        valid = pos >= 0
        safe = np.where(valid, pos, 0)
        if mode == "float":
            cand = self.vectors_[safe]                               # (nq, c, d)
            s = np.einsum("qd,qcd->qc", Q, cand)
        elif mode == "int8":
            cand = self.int8_[safe].astype(np.float32)
            s = np.einsum("qd,qcd->qc", Q * self.int8_scale_, cand)
        else:  # asym
            Z = self.encoder.margins(Q).astype(np.float32)
            s = np.einsum("qb,qcb->qc", Z, _signs(self.codes_[safe.ravel()], self.n_bits).reshape(
                safe.shape + (self.n_bits,)))
        s = np.where(valid, s, -np.inf).astype(np.float32)
        order = np.lexsort((np.where(valid, pos, np.iinfo(np.int64).max), -s), axis=1)
        return np.take_along_axis(s, order, 1), np.take_along_axis(pos, order, 1)

    # -- persistence ---------------------------------------------------------------------------------
    def _get_state(self) -> dict:
        return {
            "params": {"encoder": self.encoder, "rescore": self.rescore, "candidates": self.candidates,
                       "asymmetric": self.asymmetric, "codes": self.codes,
                       "model": self.model},
            "dim": self.dim, "doc_ids": list(self.doc_ids), "snippets": self.snippets,
            "codes_": self.codes_, "vectors_": self.vectors_, "int8_": self.int8_, "int8_scale_": self.int8_scale_,
            "codes_fingerprint": getattr(self.encoder, "fingerprint_", None) if self.quantized else None,
        }

    @classmethod
    def _from_state(cls, state: dict):
        obj = cls(**state["params"])
        if obj.quantized:
            stored = state.get("codes_fingerprint")
            if stored != obj.encoder.fingerprint_:
                raise FileFormatError(f"the stored codes were made by a codebook with fingerprint {stored}, but the "
                                      f"stored {type(obj.encoder).__name__} has fingerprint {obj.encoder.fingerprint_}")
            codes = state["codes_"]
            if codes is not None and (codes.dtype != np.uint8 or codes.ndim != 2
                                      or codes.shape[1] != obj.encoder.n_codes):
                raise FileFormatError(f"the stored codes have shape {codes.shape} and dtype {codes.dtype}; "
                                      f"expected (n, {obj.encoder.n_codes}) uint8")
        obj.dim = state["dim"]
        obj.doc_ids = list(state["doc_ids"])
        obj._id_set = set(obj.doc_ids)
        obj.snippets = None if state.get("snippets") is None else list(state["snippets"])
        for key in ("codes_", "vectors_", "int8_", "int8_scale_"):
            setattr(obj, key, state[key])
        return obj


def _pad(scores, pos, k):
    nq, have = pos.shape
    if have >= k:
        return scores[:, :k], pos[:, :k]
    s = np.full((nq, k), -np.inf, np.float32)
    p = np.full((nq, k), -1, np.int64)
    s[:, :have], p[:, :have] = scores, pos
    return s, p
