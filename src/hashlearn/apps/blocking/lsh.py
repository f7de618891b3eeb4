"""Locality-sensitive hashing blockers: MinHash LSH over record text, SimHash over text embeddings."""

from __future__ import annotations

import re

import numpy as np

from ...errors import ValidationError
from .base import Blocker
from .embedding import _EmbeddingMixin
from .pairs import check_int, chunks, normalize_dedup
from .records import RecordTable

__all__ = ["MinHashBlocker", "SimHashBlocker"]

_WORD = re.compile(r"\w+", re.UNICODE)


def _top_per_left(pairs: np.ndarray, score: np.ndarray, m: int) -> np.ndarray:
    """Mask of the ``m`` best-scoring pairs of each left record (ties: the earlier pair)."""
    order = np.lexsort((-score, pairs[:, 0]))  # by left record, best first
    first = np.r_[True, pairs[order[1:], 0] != pairs[order[:-1], 0]]
    starts = np.maximum.accumulate(np.where(first, np.arange(order.shape[0]), 0))
    rank = np.arange(order.shape[0]) - starts
    top = np.zeros(pairs.shape[0], dtype=bool)
    top[order[rank < m]] = True
    return top


def _estimated_jaccard(pairs: np.ndarray, sl: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """Fraction of equal MinHash values of each pair (in blocks of about 4M values)."""
    est = np.empty(pairs.shape[0], dtype=np.float32)
    step = max(1, (1 << 22) // sl.shape[1])
    for s in range(0, pairs.shape[0], step):
        p = pairs[s : s + step]
        est[s : s + step] = np.mean(sl[p[:, 0]] == sr[p[:, 1]], axis=1)
    return est


class MinHashBlocker(Blocker):
    """MinHash LSH blocking over character q-grams (or word tokens) of the record text.

    Every record's text (the prepared fields joined by spaces) is sketched with
    :class:`~hashlearn.hashing.minhash.MinHash`; records sharing one of ``bands`` bands of ``rows`` values
    become candidates (``band_candidates``). ``(bands, rows)`` come from ``threshold``
    (:func:`~hashlearn.hashing.minhash.optimal_bands`) unless given.

    An optional filter then keeps only candidates whose Jaccard similarity, *estimated from the same
    signatures* (no access to the records), is at least ``min_similarity``, and/or the ``max_per_record``
    best partners of each record (per left record; in deduplication per record). With a low banding
    threshold this trades the LSH's S-curve for a sharper cut at the same cost.

    Parameters
    ----------
    threshold : float in (0, 1), default 0.5
        Jaccard threshold for the banding.
    n_perm : int, default 128
    q : int, default 3
        Character q-grams; ``0``: word tokens (runs of letters and digits).
    bands, rows : int, optional
        Override the banding.
    max_bucket : int or None, default 1000
        Bucket cap of the banding (see :func:`~hashlearn.hashing.minhash.band_candidates`).
    min_similarity : float, optional
        Drop candidates whose estimated Jaccard is below this.
    max_per_record : int, optional
        Keep the best ``max_per_record`` candidates of each (left) record by estimated Jaccard.
    fields : list of str, optional
        Fields whose text is sketched (default: all prepared fields).
    random_state : int or None, default 0

    References
    ----------
    A. Z. Broder, "On the resemblance and containment of documents", 1997; A. Rajaraman and
    J. D. Ullman, "Mining of Massive Datasets", ch. 3 (LSH banding), 2011.
    """

    name = "minhash"

    def __init__(self, threshold=0.5, *, n_perm=128, q=3, bands=None, rows=None, max_bucket=1000,
                 min_similarity=None, max_per_record=None, fields=None, random_state=0):
        self.threshold = threshold
        self.n_perm = n_perm
        self.q = q
        self.bands = bands
        self.rows = rows
        self.max_bucket = max_bucket
        self.min_similarity = min_similarity
        self.max_per_record = max_per_record
        self.fields = fields
        self.random_state = random_state

    def banding(self) -> tuple[int, int]:
        """``(bands, rows)`` used."""
        from ...hashing.minhash import optimal_bands

        if self.bands is not None and self.rows is not None:
            return check_int("bands", self.bands), check_int("rows", self.rows)
        return optimal_bands(self.threshold, check_int("n_perm", self.n_perm))

    def sketch(self, table: RecordTable) -> np.ndarray:
        """MinHash signatures (n, n_perm) uint64 of the records' texts."""
        from ...hashing.minhash import MinHash

        if not hasattr(self, "minhash_"):
            self.minhash_ = MinHash(self.n_perm, shingle=self.q or None, random_state=self.random_state).fit()
        texts = table.texts(self.fields)
        if not self.q:
            return self.minhash_.transform([_WORD.findall(t) for t in texts])
        return self.minhash_.transform(texts)

    def _check_params(self) -> None:
        check_int("q", self.q, 0)
        v = self.min_similarity
        if v is not None and not 0.0 <= float(v) <= 1.0:
            raise ValidationError(f"min_similarity must be in [0, 1], got {v!r}")

    def _candidates(self, left, right):
        from ...hashing.minhash import band_candidates, band_candidates_between

        self._check_params()
        if hasattr(self, "minhash_"):
            del self.minhash_
        bands, rows = self.banding()
        sl = self.sketch(left)
        if right is None:
            pairs = band_candidates(sl, bands, rows, max_bucket=self.max_bucket)
            sr = sl
        else:
            sr = self.sketch(right)
            pairs = band_candidates_between(sl, sr, bands, rows, max_bucket=self.max_bucket)
        if self.min_similarity is not None or self.max_per_record is not None:
            pairs = self._filter(pairs, sl, sr)
        yield from chunks(pairs)

    def _filter(self, pairs, sl, sr):
        est = _estimated_jaccard(pairs, sl, sr)
        keep = np.ones(pairs.shape[0], dtype=bool)
        if self.min_similarity is not None:
            keep &= est >= float(self.min_similarity)
        if self.max_per_record is not None:
            keep &= _top_per_left(pairs, est, check_int("max_per_record", self.max_per_record))
        return pairs[keep]


class SimHashBlocker(_EmbeddingMixin, Blocker):
    """Multi-table hyperplane LSH (SimHash) over sentence embeddings: records sharing a bucket in any of
    ``n_tables`` tables of ``bits_per_table`` random-hyperplane bits are candidates.

    Parameters
    ----------
    n_tables : int, default 16
    bits_per_table : int, default 12
    n_probes : int, default 1
        Buckets probed per table (query-directed multi-probe).
    k : int, optional
        Keep only the ``k`` most cosine-similar candidates of each record (exact re-ranking of the LSH
        candidates); ``None`` keeps all bucket mates.
    embedder, fields : see :class:`~hashlearn.apps.blocking.EmbeddingBlocker`
    random_state : int or None, default 0

    References
    ----------
    M. S. Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002.
    """

    name = "simhash"

    def __init__(self, n_tables=16, *, bits_per_table=12, n_probes=1, k=None, embedder=None, fields=None,
                 random_state=0):
        self.n_tables = n_tables
        self.bits_per_table = bits_per_table
        self.n_probes = n_probes
        self.k = k
        self.embedder = embedder
        self.fields = fields
        self.random_state = random_state

    def _index(self, X: np.ndarray, rows: np.ndarray):
        from ...index.tables import MultiTableLSH

        index = MultiTableLSH("simhash", n_tables=self.n_tables, bits_per_table=self.bits_per_table,
                              n_probes=self.n_probes, metric="cosine", random_state=self.random_state)
        index.fit(X[rows])
        index.add(X[rows], ids=rows)
        return index

    def _query(self, index, Xq: np.ndarray, q: np.ndarray, dedup: bool) -> np.ndarray:
        """Candidate pairs of the query records ``q`` (rows of ``Xq``)."""
        if self.k is not None:
            _, I = index.search(Xq, check_int("k", self.k) + int(dedup))
            a, b = np.repeat(q, I.shape[1]), I.ravel()
            pairs = np.stack([a[b >= 0], b[b >= 0]], axis=1)
        else:
            lims, ids = index.candidates(Xq)
            pairs = np.stack([np.repeat(q, np.diff(lims)), ids], axis=1)
        return (normalize_dedup(pairs) if dedup else pairs).astype(np.int64)

    def _candidates(self, left, right):
        XL, okL, XR, okR = self._embed_both(left, right)
        if not okR.any() or not okL.any():
            return
        index = self._index(XR, np.flatnonzero(okR))
        qs = np.flatnonzero(okL)
        for s in range(0, qs.size, 4096):
            q = qs[s : s + 4096]
            yield self._query(index, XL[q], q, right is None)
