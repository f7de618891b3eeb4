"""Near-duplicate detection: texts (or vectors) in, clusters of near-duplicates out.

Pipeline (:class:`NearDuplicates`):

1. *Sketch, streamed.* Texts are read in chunks of ``chunk_size``; each chunk is MinHashed (character
   q-grams or word tokens) and only its ``bands`` LSH band keys are kept, so memory holds ``n × bands``
   uint64 keys, never the ``n × n_perm`` signatures nor the texts.
2. *Candidates.* Records sharing a band key are candidate pairs (within a band bucket each record is
   paired with the next ``max_bucket - 1`` members, which keeps large buckets of exact duplicates
   linear while still chaining them together).
3. *Verify, exactly.* A second pass over the texts computes the q-gram sets of the records that appear in
   a candidate pair only, and keeps the pairs whose exact Jaccard similarity is ``>= threshold``.
4. *Cluster.* Connected components of the verified pairs (union-find). A cluster is labelled by its
   smallest record index.

With ``metric="cosine"`` the input is an ``(n, d)`` float array (it may be a ``numpy.memmap``): SimHash
bits of random hyperplanes are banded the same way and candidates are verified by exact cosine.

Clusters are connected components, so two members of a cluster may be less similar than ``threshold``
(they are linked through others). Empty texts have no q-grams and are never clustered; they are
counted (:attr:`DedupResult.n_empty`).

Examples
--------
>>> texts = ["the quick brown fox jumps over the lazy dog", "the quick brown fox jumped over the lazy dog",
...          "completely different text here", "the quick brown fox jumps over the lazy dog!"]
>>> res = NearDuplicates(0.7, q=3, random_state=0).run(texts)
>>> res.labels.tolist()
[0, 0, 2, 0]
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numba
import numpy as np

from ..errors import DataFileError, ValidationError

__all__ = ["NearDuplicates", "DedupResult", "iter_text_file", "exact_jaccard_pairs"]

_GOLD = np.uint64(0x9E3779B97F4A7C15)


def iter_text_file(path, *, encoding: str = "utf-8") -> Iterator[str]:
    """Lines of a text file without their line ending, read lazily.

    Raises
    ------
    DataFileError
        Missing file, or bytes that are not valid ``encoding`` (the message names the line).
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: no such file")
    with open(p, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                yield raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataFileError(f"{p}: line {lineno} is not valid {encoding} ({exc.reason} at byte "
                                    f"{exc.start} of the line)") from None


@numba.njit(cache=True)
def _jaccard_kernel(indptr, tokens, a, b, out):  # pragma: no cover - compiled
    """Exact Jaccard of sorted unique token rows ``a[i]``, ``b[i]`` of a CSR (merge of sorted lists)."""
    for p in range(a.shape[0]):
        i0, i1 = indptr[a[p]], indptr[a[p] + 1]
        j0, j1 = indptr[b[p]], indptr[b[p] + 1]
        inter = 0
        i, j = i0, j0
        while i < i1 and j < j1:
            x, y = tokens[i], tokens[j]
            if x == y:
                inter += 1
                i += 1
                j += 1
            elif x < y:
                i += 1
            else:
                j += 1
        union = (i1 - i0) + (j1 - j0) - inter
        out[p] = inter / union if union > 0 else 0.0


def _sorted_unique_csr(hashes: np.ndarray, rec: np.ndarray, n: int):
    """CSR (indptr (n+1,), tokens) of the distinct token hashes of each record, sorted within records."""
    order = np.lexsort((hashes, rec))
    h, r = hashes[order], rec[order]
    keep = np.r_[True, (h[1:] != h[:-1]) | (r[1:] != r[:-1])] if h.size else np.zeros(0, bool)
    h, r = h[keep], r[keep]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    return indptr, h


def exact_jaccard_pairs(texts, pairs: np.ndarray, *, q: int | None = 5) -> np.ndarray:
    """Exact Jaccard similarity of the q-gram (or word, ``q=0``/``None``) sets of text pairs.

    Parameters
    ----------
    texts : sequence of str
    pairs : ndarray of shape (m, 2), int
    q : int or None, default 5

    Returns
    -------
    J : ndarray of shape (m,), float64 (0 for a pair of empty texts)

    Examples
    --------
    >>> exact_jaccard_pairs(["abcd", "abce"], np.array([[0, 1]]), q=2).tolist()  # {ab,bc,cd} vs {ab,bc,ce}
    [0.5]
    """
    from ..hashing.minhash import record_token_hashes

    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    tok, rec, n = record_token_hashes(_tokenize(list(texts), q), shingle=q or None)
    indptr, h = _sorted_unique_csr(tok, rec, n)
    out = np.empty(pairs.shape[0], dtype=np.float64)
    _jaccard_kernel(indptr, h, pairs[:, 0].copy(), pairs[:, 1].copy(), out)
    return out


def _tokenize(texts: list, q):
    if q:
        return texts
    import re

    word = re.compile(r"\w+", re.UNICODE)
    return [word.findall(t) for t in texts]


def _window_pairs(keys: np.ndarray, rows: np.ndarray, max_bucket: int | None) -> np.ndarray:
    """Codes-free pair list (i, j), i < j, of rows with equal keys, windowed inside large buckets."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    n = sk.shape[0]
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    sizes = np.diff(np.r_[starts, n])
    size_of = np.repeat(sizes, sizes)
    local = np.arange(n, dtype=np.int64) - np.repeat(starts, sizes)
    cnt = size_of - 1 - local
    if max_bucket is not None:
        cnt = np.minimum(cnt, int(max_bucket) - 1)
    total = int(cnt.sum())
    first = np.repeat(np.arange(n, dtype=np.int64), cnt)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    a = rows[order[first]]
    b = rows[order[first + within + 1]]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def _peak_rss_mib() -> float:
    import resource
    import sys

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


@dataclass(repr=False)
class DedupResult:
    """Output of :meth:`NearDuplicates.run`.

    Attributes
    ----------
    labels : ndarray of shape (n,), int64
        Cluster of every record: the smallest record index of its cluster (a singleton: itself).
    pairs : ndarray of shape (m, 2), int64
        Verified near-duplicate pairs ``i < j``.
    similarities : ndarray of shape (m,), float64
        Their exact similarity.
    n_candidates : int
        LSH candidate pairs before verification.
    n_empty : int
        Records without any token (never clustered).
    timings : dict
        Seconds per stage (sketch, candidates, verify, cluster).
    """

    labels: np.ndarray
    pairs: np.ndarray
    similarities: np.ndarray
    n_candidates: int
    n_empty: int
    timings: dict
    peak_rss_mib: float

    def cluster_sizes(self) -> np.ndarray:
        """Size of the cluster labelled ``c`` at index ``c`` (0 elsewhere), shape (n,)."""
        return np.bincount(self.labels, minlength=self.labels.shape[0])

    def clusters(self, min_size: int = 2) -> list[np.ndarray]:
        """Member indices of each cluster with at least ``min_size`` members, by smallest member."""
        order = np.argsort(self.labels, kind="stable")
        lab = self.labels[order]
        starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
        groups = np.split(order, starts[1:])
        return [g for g in groups if g.size >= min_size]

    def summary(self) -> dict:
        sizes = self.cluster_sizes()
        n = int(self.labels.shape[0])
        total = float(sum(self.timings.values()))
        return {
            "n_texts": n,
            "n_clusters": int((sizes >= 2).sum()),
            "n_duplicates": int(sizes[sizes >= 2].sum() - (sizes >= 2).sum()),
            "largest_cluster": int(sizes.max()) if n else 0,
            "n_candidates": int(self.n_candidates),
            "n_verified_pairs": int(self.pairs.shape[0]),
            "n_empty": int(self.n_empty),
            "seconds": total,
            "texts_per_second": n / total if total > 0 else float("inf"),
            "peak_rss_mib": self.peak_rss_mib,
            **{f"seconds_{k}": v for k, v in self.timings.items()},
        }


class NearDuplicates:
    """Cluster near-duplicate texts (MinHash LSH, exact Jaccard verification, union-find) or vectors
    (SimHash LSH, exact cosine verification), in bounded memory.

    Parameters
    ----------
    threshold : float in (0, 1], default 0.8
        Pairs with exact similarity ``>= threshold`` are near-duplicates.
    metric : {"jaccard", "cosine"}, default "jaccard"
        ``"jaccard"``: texts, compared as sets of q-grams. ``"cosine"``: rows of a float array.
    q : int, default 5
        Character q-grams (``0``: word tokens). Jaccard only.
    n_perm : int, default 128
        MinHash permutations (jaccard) or hyperplanes (cosine) available to the banding.
    bands, rows : int, optional
        Override the banding derived from ``threshold`` (:func:`optimal_bands` with a false-negative
        weight of 0.8: missing duplicates costs more than verifying a candidate).
    max_bucket : int or None, default 50
        Window inside a band bucket (see the module notes).
    chunk_size : int, default 100000
        Records sketched at a time.
    random_state : int or None, default 0

    References
    ----------
    A. Z. Broder, S. C. Glassman, M. S. Manasse and G. Zweig, "Syntactic clustering of the Web", WWW
    1997; M. S. Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002;
    M. Henzinger, "Finding near-duplicate web pages: a large-scale evaluation of algorithms", SIGIR 2006.
    """

    def __init__(self, threshold=0.8, *, metric="jaccard", q=5, n_perm=128, bands=None, rows=None,
                 max_bucket=50, chunk_size=100_000, random_state=0):
        self.threshold = threshold
        self.metric = metric
        self.q = q
        self.n_perm = n_perm
        self.bands = bands
        self.rows = rows
        self.max_bucket = max_bucket
        self.chunk_size = chunk_size
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------------------
    def _check(self):
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0.0 < float(t) <= 1.0:
            raise ValidationError(f"threshold must be in (0, 1], got {t!r}")
        if self.metric not in ("jaccard", "cosine"):
            raise ValidationError(f"metric must be 'jaccard' or 'cosine', got {self.metric!r}")
        for name, lo in (("n_perm", 1), ("chunk_size", 1), ("q", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
                raise ValidationError(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.max_bucket is not None and (not isinstance(self.max_bucket, numbers.Integral) or self.max_bucket < 2):
            raise ValidationError(f"max_bucket must be None or an integer >= 2, got {self.max_bucket!r}")

    def banding(self) -> tuple[int, int]:
        """``(bands, rows)`` used; for cosine the threshold is mapped to the per-bit collision
        probability ``1 - arccos(t) / pi`` of random hyperplanes."""
        from ..hashing.minhash import optimal_bands

        if self.bands is not None and self.rows is not None:
            return int(self.bands), int(self.rows)
        t = float(self.threshold)
        s = t if self.metric == "jaccard" else 1.0 - np.arccos(np.clip(t, -1, 1)) / np.pi
        s = min(s, 0.995)
        b, r = optimal_bands(s, int(self.n_perm), false_positive_weight=0.2, false_negative_weight=0.8)
        if self.metric == "cosine":
            r = min(r, 64)
        return b, r

    # -- sources -------------------------------------------------------------------------------------
    @staticmethod
    def _open(source) -> Iterable:
        if callable(source):
            return source()
        if isinstance(source, (str, bytes)):
            raise ValidationError("texts must be a sequence of strings (or a callable returning an iterator), "
                                  "got a single string")
        return source

    def _chunks(self, source) -> Iterator[list]:
        it = iter(self._open(source))
        n = int(self.chunk_size)
        pos = 0
        while True:
            chunk = []
            for t in it:
                if not isinstance(t, str):
                    raise ValidationError(f"texts must be strings; record {pos + len(chunk)} is "
                                          f"{type(t).__name__}")
                chunk.append(t)
                if len(chunk) == n:
                    break
            if not chunk:
                return
            pos += len(chunk)
            yield chunk

    # -- run -----------------------------------------------------------------------------------------
    def run(self, data, *, progress: Callable[[str], None] | None = None) -> DedupResult:
        """Find the clusters.

        Parameters
        ----------
        data : sequence of str, or a callable returning a fresh iterator of str (read twice, for
            streaming from disk); for ``metric="cosine"`` an (n, d) float array.
        progress : callable, optional
            Called with a short message after each chunk and stage.

        Returns
        -------
        DedupResult
        """
        self._check()
        say = progress or (lambda msg: None)
        if self.metric == "cosine":
            return self._run_cosine(data, say)
        return self._run_jaccard(data, say)

    def fit_predict(self, data) -> np.ndarray:
        """Cluster labels (smallest member index), shape (n,), int64."""
        return self.run(data).labels

    def _candidates(self, keys: np.ndarray, ok: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero(ok)
        n = keys.shape[0]
        codes = []
        for band in range(keys.shape[1]):
            p = _window_pairs(keys[rows, band], rows, self.max_bucket)
            if p.size:
                codes.append(np.unique(p[:, 0] * n + p[:, 1]))
        if not codes:
            return np.empty((0, 2), dtype=np.int64)
        u = np.unique(np.concatenate(codes))
        return np.stack([u // n, u % n], axis=1)

    def _finish(self, n, pairs, sims, n_cand, n_empty, timings, say) -> DedupResult:
        import scipy.sparse as sp
        from scipy.sparse.csgraph import connected_components

        t0 = time.perf_counter()
        keep = sims >= float(self.threshold) - 1e-12
        pairs, sims = pairs[keep], sims[keep]
        g = sp.coo_matrix((np.ones(pairs.shape[0], np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, comp = connected_components(g, directed=False)
        first = np.full(comp.max() + 1 if n else 0, n, dtype=np.int64)
        np.minimum.at(first, comp, np.arange(n, dtype=np.int64))
        labels = first[comp]
        timings["cluster"] = time.perf_counter() - t0
        say(f"clustered: {pairs.shape[0]} verified pairs")
        return DedupResult(labels, pairs, sims, n_cand, n_empty, timings, _peak_rss_mib())

    def _run_jaccard(self, data, say) -> DedupResult:
        bands, rows = self.banding()
        q = int(self.q) or None
        timings = {}
        t0 = time.perf_counter()
        keys, ok, n = self._sketch_texts(data, q, bands, rows, say)
        timings["sketch"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cand = self._candidates(keys, ok)
        del keys
        timings["candidates"] = time.perf_counter() - t0
        say(f"{cand.shape[0]} candidate pairs ({bands} bands x {rows} rows)")
        t0 = time.perf_counter()
        sims = self._jaccard_of_candidates(data, cand, n, q)
        timings["verify"] = time.perf_counter() - t0
        say(f"verified {cand.shape[0]} candidates")
        return self._finish(n, cand, sims, int(cand.shape[0]), int((~ok).sum()), timings, say)

    def _sketch_texts(self, data, q, bands: int, rows: int, say) -> tuple[np.ndarray, np.ndarray, int]:
        """First pass: band keys (n, bands) and non-empty flags (n,) of every text, chunk by chunk."""
        from ..hashing.minhash import EMPTY_VALUE, MinHash, band_keys

        mh = MinHash(int(self.n_perm), shingle=q, random_state=self.random_state).fit()
        key_parts, ok_parts = [], []
        n = 0
        for chunk in self._chunks(data):
            sig = mh.transform(_tokenize(chunk, q))
            key_parts.append(band_keys(sig, bands, rows))
            ok_parts.append(sig[:, 0] != EMPTY_VALUE)
            n += len(chunk)
            del sig
            say(f"sketched {n} texts")
        if n == 0:
            raise ValidationError("no texts to deduplicate (the input is empty)")
        return np.concatenate(key_parts), np.concatenate(ok_parts), n

    def _jaccard_of_candidates(self, data, cand: np.ndarray, n: int, q) -> np.ndarray:
        """Second pass: exact Jaccard of the candidate pairs, from the token sets of the texts involved."""
        from ..hashing.minhash import record_token_hashes

        involved = np.unique(cand.ravel())
        tok_parts, rec_parts = [], []
        pos = 0
        for chunk in self._chunks(data):
            lo, hi = np.searchsorted(involved, [pos, pos + len(chunk)])
            sel = involved[lo:hi]
            if sel.size:
                tok, rec, _ = record_token_hashes(_tokenize([chunk[i - pos] for i in sel], q), shingle=q)
                tok_parts.append(tok)
                rec_parts.append(rec + lo)
            pos += len(chunk)
        if pos != n:
            raise ValidationError(f"the source gave {n} texts on the first pass and {pos} on the second; "
                                  f"pass a list or a callable that returns the same texts each time")
        if tok_parts:
            indptr, toks = _sorted_unique_csr(np.concatenate(tok_parts), np.concatenate(rec_parts), involved.size)
        else:
            indptr, toks = np.zeros(1, np.int64), np.empty(0, np.uint64)
        sims = np.empty(cand.shape[0], dtype=np.float64)
        _jaccard_kernel(indptr, toks, np.searchsorted(involved, cand[:, 0]), np.searchsorted(involved, cand[:, 1]),
                        sims)
        return sims

    def _run_cosine(self, data, say) -> DedupResult:
        X = _check_cosine_input(data)
        bands, rows = self.banding()
        timings = {}
        t0 = time.perf_counter()
        keys, ok = self._hash_vectors(X, bands, rows, say)
        timings["sketch"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cand = self._candidates(keys, ok)
        del keys
        timings["candidates"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sims = _cosine_of_pairs(X, cand)
        timings["verify"] = time.perf_counter() - t0
        return self._finish(X.shape[0], cand, sims, int(cand.shape[0]), int((~ok).sum()), timings, say)

    def _hash_vectors(self, X, bands: int, rows: int, say) -> tuple[np.ndarray, np.ndarray]:
        """Band keys (n, bands) of random-hyperplane bits and non-zero flags (n,), chunk by chunk."""
        n, d = X.shape
        H = np.random.default_rng(self.random_state).standard_normal((d, bands * rows)).astype(np.float32)
        weights = (np.uint64(1) << np.arange(rows, dtype=np.uint64))
        keys = np.empty((n, bands), dtype=np.uint64)
        ok = np.empty(n, dtype=bool)
        step = int(self.chunk_size)
        for s in range(0, n, step):
            C = np.asarray(X[s : s + step], dtype=np.float32)
            if not np.isfinite(C).all():
                bad = s + int(np.flatnonzero(~np.isfinite(C).all(axis=1))[0])
                raise ValidationError(f"vectors contain NaN or inf (first at row {bad})")
            ok[s : s + step] = np.any(C != 0, axis=1)
            bits = (C @ H > 0).reshape(C.shape[0], bands, rows).astype(np.uint64)
            with np.errstate(over="ignore"):
                keys[s : s + step] = (bits * weights).sum(axis=2, dtype=np.uint64) * _GOLD + np.arange(bands, dtype=np.uint64)
            say(f"hashed {min(n, s + step)} vectors")
        return keys, ok


def _check_cosine_input(X):
    if not hasattr(X, "shape") or len(X.shape) != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValidationError(f"metric='cosine' needs a non-empty 2-D float array (n, d), got "
                              f"{getattr(X, 'shape', type(X).__name__)}")
    if np.dtype(X.dtype).kind not in "fiu":
        raise ValidationError(f"vectors must be numeric, got dtype {X.dtype}")
    return X


def _cosine_of_pairs(X, cand: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """Exact cosine similarity of the rows of each pair (0 where a row is zero), in blocks of pairs."""
    sims = np.empty(cand.shape[0], dtype=np.float64)
    for s in range(0, cand.shape[0], block):
        A = np.asarray(X[cand[s : s + block, 0]], dtype=np.float64)
        B = np.asarray(X[cand[s : s + block, 1]], dtype=np.float64)
        den = np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1)
        sims[s : s + block] = np.einsum("ij,ij->i", A, B) / np.where(den > 0, den, 1.0)
    return sims
