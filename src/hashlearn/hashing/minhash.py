"""MinHash signatures of sets (optionally b-bit) and LSH banding of signatures.

Everything is vectorised over tokens: tokens are hashed once to 64-bit integers by a fixed, process-
independent hash, then all permutations are applied with uint64 arithmetic modulo the Mersenne prime
``2**61 - 1`` (followed by a non-linear 64-bit mix, :func:`_mix61`) and reduced to per-record minima over the CSR layout (record id of every token). The
default path is one fused numba loop over (token, permutation); a pure-numpy path computing (tokens ×
permutations) blocks and ``np.minimum.reduceat`` gives identical values and serves as its reference.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import scipy.sparse as sp
from scipy.integrate import trapezoid
from sklearn.base import BaseEstimator

from ..errors import IncompatibleError, NotFittedError, ValidationError
from ._validation import check_int_param
from .base import PersistableEstimatorMixin, check_random_state
from .e2lsh import _GOLDEN, _M1, _M2, _combine_keys, _fmix64
from .registry import register

__all__ = ["MinHash", "record_token_hashes", "optimal_bands", "band_keys", "band_candidates", "band_candidates_between", "MERSENNE_61", "EMPTY_VALUE"]

MERSENNE_61 = (1 << 61) - 1
"""The prime modulus of the permutations; full MinHash values lie in ``[0, MERSENNE_61)``."""
EMPTY_VALUE = np.uint64(np.iinfo(np.uint64).max)
"""Value of every entry of the signature of an empty record (full MinHash)."""

_P = np.uint64(MERSENNE_61)
_LO32 = np.uint64(0xFFFFFFFF)
_LO29 = np.uint64((1 << 29) - 1)
_STR_SEED = np.uint64(0x5A0C3E1D7B2F9A41)
_INT_SEED = np.uint64(0xC2B2AE3D27D4EB4F)
_BAND_SEED = np.uint64(0x27D4EB2F165667C5)
_CHUNK_ELEMENTS = 1 << 21  # (tokens × permutations) computed at once


# -- arithmetic modulo 2**61 - 1 -------------------------------------------------------------------
def _mod61(s: np.ndarray) -> np.ndarray:
    """Reduce any uint64 values modulo ``2**61 - 1``: ``(s & p) + (s >> 61) <= p + 7``, then one subtraction."""
    s = (s & _P) + (s >> np.uint64(61))
    return np.where(s >= _P, s - _P, s)


def _mulmod61(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a * x mod (2**61 - 1)`` for uint64 ``a, x < 2**61`` (broadcast), exact, without 128-bit ints.

    With ``a = a1 2**32 + a0`` and ``x = x1 2**32 + x0``: ``a x = a1 x1 2**64 + (a1 x0 + a0 x1) 2**32 +
    a0 x0`` and ``2**61 ≡ 1``, so ``2**64 ≡ 8`` and ``m 2**32 ≡ (m >> 29) + (m & (2**29 - 1)) 2**32``.
    Every partial sum stays below ``2**63``.
    """
    a1, a0 = a >> np.uint64(32), a & _LO32
    x1, x0 = x >> np.uint64(32), x & _LO32
    mid = a1 * x0 + a0 * x1  # < 2**62
    lo = a0 * x0  # < 2**64
    s = ((a1 * x1) << np.uint64(3)) + (mid >> np.uint64(29)) + ((mid & _LO29) << np.uint64(32))
    s += (lo & _P) + (lo >> np.uint64(61))
    return _mod61(s)


def _mix61(v: np.ndarray) -> np.ndarray:
    """``fmix64(v) & (2**61 - 1)``: the non-linear output map applied after each linear permutation.

    A linear family ``(a x + b) mod p`` is only 2-universal, not min-wise independent: for some draws of
    ``(a, b)`` the minimum over a set is far from uniform, which inflates collision rates (measured on
    Abt-Buy's 1.16M cross pairs with one seed: the rate of 2-row band collisions was 1.58 × E[J²]).
    Mixing the value with a full-avalanche bijection before taking the minimum removes that structure
    (same data, mixed: 0.98 × E[J²]). The map is injective on ``[0, p)`` up to the 61-bit truncation.
    """
    return _fmix64(v) & _P


@numba.njit(cache=True)
def _minhash_kernel(x, rec, a, b, sig):  # pragma: no cover - compiled
    """Fused ``sig[rec[t], k] = min(sig[rec[t], k], mix((a_k x_t + b_k) mod p))``, same arithmetic as
    :func:`_mulmod61` and :func:`_mix61` (the numpy reference it is tested against)."""
    P = _P
    s3, s29, s32, s61 = np.uint64(3), np.uint64(29), np.uint64(32), np.uint64(61)
    s27, s30, s31 = np.uint64(27), np.uint64(30), np.uint64(31)
    m1, m2 = _M1, _M2
    lo32, lo29 = _LO32, _LO29
    k_perm = a.shape[0]
    a1 = a >> s32
    a0 = a & lo32
    for t in range(x.shape[0]):
        x1 = x[t] >> s32
        x0 = x[t] & lo32
        r = rec[t]
        for k in range(k_perm):
            mid = a1[k] * x0 + a0[k] * x1
            lo = a0[k] * x0
            v = ((a1[k] * x1) << s3) + (mid >> s29) + ((mid & lo29) << s32) + (lo & P) + (lo >> s61)
            v = (v & P) + (v >> s61)
            if v >= P:
                v -= P
            v += b[k]
            v = (v & P) + (v >> s61)
            if v >= P:
                v -= P
            # splitmix64 finaliser, as _fmix64, then the low 61 bits
            v = (v ^ (v >> s30)) * m1
            v = (v ^ (v >> s27)) * m2
            v = (v ^ (v >> s31)) & P
            if v < sig[r, k]:
                sig[r, k] = v


# -- token hashing ---------------------------------------------------------------------------------
def _hash_codepoints(cps: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Stable 64-bit hash of strings given as code points (T, L) with lengths (T,)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    h = np.full(lengths.shape[0], _STR_SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in range(cps.shape[1]):
            active = lengths > c
            if not active.any():
                break
            h = np.where(active, _fmix64(h ^ (cps[:, c].astype(np.uint64) + _GOLDEN)), h)
        return _fmix64(h ^ (lengths.astype(np.uint64) * _GOLDEN))


def _hash_strings(arr: np.ndarray) -> np.ndarray:
    """Stable 64-bit hashes of a 1-D numpy str (``U``) or bytes (``S``) array."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype.kind == "U":
        width = arr.dtype.itemsize // 4
        cps = arr.view(np.uint32).reshape(arr.shape[0], width)
    else:
        width = arr.dtype.itemsize
        cps = arr.view(np.uint8).reshape(arr.shape[0], width)
    str_len = getattr(getattr(np, "strings", None), "str_len", None) or np.char.str_len
    return _hash_codepoints(cps, str_len(arr))


def _hash_ints(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    v = v.astype(np.uint64) if v.dtype.kind == "u" else v.astype(np.int64).view(np.uint64)
    return _fmix64(_fmix64(v ^ _INT_SEED) + _GOLDEN)


def _shingle_tokens(records, q: int, n: int):
    """Character q-gram hashes of string records: (token_hashes (T,), record_ids (T,))."""
    try:
        text = "".join(records)
    except TypeError:
        raise ValidationError(f"with shingle={q} every record must be a str") from None
    lens = np.fromiter(map(len, records), dtype=np.int64, count=n)
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    starts = np.cumsum(lens) - lens
    cnt = np.where(lens >= q, lens - q + 1, (lens > 0).astype(np.int64))  # shorter than q: one shingle
    total = int(cnt.sum())
    rec = np.repeat(np.arange(n, dtype=np.int64), cnt)
    first = np.cumsum(cnt) - cnt
    pos = np.repeat(starts, cnt) + (np.arange(total, dtype=np.int64) - np.repeat(first, cnt))
    tlen = np.repeat(np.minimum(lens, q), cnt)
    if total == 0:
        return np.empty(0, np.uint64), rec
    idx = np.minimum(pos[:, None] + np.arange(q, dtype=np.int64)[None, :], cps.shape[0] - 1)
    return _hash_codepoints(cps[idx], tlen), rec


def _record_tokens(records, shingle):
    """Token hashes and their record ids: (hashes (T,) uint64, rec (T,) int64, n_records)."""
    if sp.issparse(records):
        X = sp.csr_matrix(records, copy=True)
        X.eliminate_zeros()
        n = X.shape[0]
        if n == 0:
            raise ValidationError("records is empty (0 rows)")
        rec = np.repeat(np.arange(n, dtype=np.int64), np.diff(X.indptr))
        return _hash_ints(X.indices), rec, n
    if isinstance(records, (str, bytes)) or not hasattr(records, "__len__"):
        raise ValidationError(
            f"records must be a sequence of token collections (or of strings with shingle set) or a scipy "
            f"sparse matrix, got {type(records).__name__}"
        )
    if isinstance(records, np.ndarray) and records.ndim == 0:
        raise ValidationError("records must be a sequence, got a 0-d array")
    n = len(records)
    if n == 0:
        raise ValidationError("records is empty (0 records)")
    if shingle is not None:
        return (*_shingle_tokens(list(records), int(shingle), n), n)
    types = set(map(type, records))
    if str in types or bytes in types or np.str_ in types:
        raise ValidationError(
            "a record is a single string: pass token collections, or set shingle=q for character q-grams"
        )
    try:
        lens = np.fromiter(map(len, records), dtype=np.int64, count=n)
    except TypeError:
        raise ValidationError("every record must be a collection of tokens (list, set, tuple, array)") from None
    rec = np.repeat(np.arange(n, dtype=np.int64), lens)
    flat = list(itertools.chain.from_iterable(records))
    if not flat:
        return np.empty(0, np.uint64), rec, n
    try:
        arr = np.asarray(flat)
    except (ValueError, TypeError):
        arr = np.asarray(flat, dtype=object)
    if arr.ndim != 1 or arr.shape[0] != rec.shape[0]:
        raise ValidationError("tokens must be scalars (strings or integers), not nested sequences")
    if arr.dtype.kind in "US":
        return _hash_strings(arr), rec, n
    if arr.dtype.kind in "biu":
        return _hash_ints(arr), rec, n
    raise ValidationError(f"tokens must be strings or integers, got dtype {arr.dtype}")


def record_token_hashes(records, shingle=None):
    """The 64-bit token hashes MinHash sketches, for exact set comparisons (e.g. verifying candidates).

    Parameters
    ----------
    records : same inputs as :meth:`MinHash.transform`
    shingle : int or None
        Character q-grams of string records, as ``MinHash(shingle=...)``.

    Returns
    -------
    hashes : ndarray of shape (T,), uint64
        Token hashes in record order (duplicates within a record kept).
    record_ids : ndarray of shape (T,), int64
        Record of every token, non-decreasing.
    n_records : int

    Examples
    --------
    >>> h, r, n = record_token_hashes(["abcd", "bcd"], shingle=3)
    >>> r.tolist(), n, bool(h[1] == h[2])
    ([0, 0, 1], 2, True)
    """
    if shingle is not None:
        check_int_param(shingle, "shingle", min_val=1)
    return _record_tokens(records, shingle)


# -- the estimator ---------------------------------------------------------------------------------
@register("minhash", kind="set")
class MinHash(PersistableEstimatorMixin, BaseEstimator):
    """MinHash signatures of sets: ``n_perm`` random permutations, the minimum hash of each record.

    Two records' signatures agree at one position with probability equal to their Jaccard similarity
    ``|A ∩ B| / |A ∪ B|``, so the fraction of agreeing positions estimates it (:meth:`jaccard`).

    Tokens (strings or integers) are first hashed to 64 bits by a fixed hash (splitmix64 mixing of the
    code points or integer value), identical in every process and independent of ``random_state``;
    then permutation ``k`` maps a token hash ``x`` (reduced modulo ``p = 2**61 - 1``) to
    ``mix((a_k x + b_k) mod p)`` with random ``a_k ∈ [1, p)``, ``b_k ∈ [0, p)`` drawn in ``fit`` and
    ``mix`` the splitmix64 finaliser truncated to 61 bits (:func:`_mix61`: it makes the minimum behave
    like that of a random permutation, which the linear map alone does not). A string
    token and an integer token are different tokens even if they print the same.

    Parameters
    ----------
    n_perm : int, default 128
        Number of permutations (signature length).
    n_bits : int or None, default None
        For :func:`hashlearn.make_hasher`, which passes a code length: when given it overrides
        ``n_perm``, as ``n_perm = n_bits`` for full MinHash and ``n_perm = n_bits // b_bits`` for b-bit
        MinHash (the signature then holds about ``n_bits`` bits of information).
    b_bits : int or None, default None
        b-bit minwise hashing: keep only the lowest ``b_bits`` (1 to 32) bits of every minimum.
    shingle : int or None, default None
        ``None``: each record is a collection of tokens (strings or integers). An int ``q``: each record is
        a string and its tokens are its character q-grams (a non-empty string shorter than ``q`` is one
        token; an empty string is an empty record).
    random_state : int, numpy Generator or None, default None
        Seed of the permutations, resolved in ``fit``. Signatures are comparable only between models
        with the same permutations.

    Attributes
    ----------
    n_perm_ : int
        The signature length actually used (see ``n_bits``).
    perm_a_, perm_b_ : ndarray of shape (n_perm_,), uint64
        Permutation coefficients.

    Notes
    -----
    Inputs of :meth:`transform`: a sequence of token collections, a sequence of strings (with
    ``shingle``), or a scipy sparse matrix whose row ``i`` has a nonzero in column ``j`` when token ``j``
    is in record ``i`` (column indices are hashed as integer tokens, so a row equals the record of its
    column indices). Duplicate tokens do not matter.

    Outputs: full signatures are uint64 in ``[0, 2**61 - 1)``; b-bit signatures are uint32 in
    ``[0, 2**b_bits)``. An empty record gets :data:`EMPTY_VALUE` (``2**64 - 1``) at every position, a
    value no token can produce (with ``b_bits``: ``2**b_bits - 1``, which tokens can produce). Two empty
    records therefore estimate Jaccard 1 and an empty record against a non-empty one estimates 0 (full
    MinHash); :func:`band_candidates` never pairs empty records.

    References
    ----------
    A. Z. Broder, "On the resemblance and containment of documents", Compression and Complexity of
    Sequences 1997. P. Li and A. C. König, "b-Bit Minwise Hashing", WWW 2010.

    Examples
    --------
    >>> mh = MinHash(n_perm=256, random_state=0).fit()
    >>> sig = mh.transform([["a", "b", "c", "d"], ["b", "c", "d", "e"]])
    >>> sig.shape, sig.dtype
    ((2, 256), dtype('uint64'))
    >>> round(float(mh.jaccard(sig[0], sig[1])), 1)  # true Jaccard 3/5
    0.6
    """

    def __init__(self, n_perm=128, *, n_bits=None, b_bits=None, shingle=None, random_state=None):
        self.n_perm = n_perm
        self.n_bits = n_bits
        self.b_bits = b_bits
        self.shingle = shingle
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------------------
    def _resolved_n_perm(self) -> int:
        check_int_param(self.n_perm, "n_perm", min_val=1)
        check_int_param(self.n_bits, "n_bits", min_val=1, allow_none=True)
        check_int_param(self.b_bits, "b_bits", min_val=1, max_val=32, allow_none=True)
        check_int_param(self.shingle, "shingle", min_val=1, allow_none=True)
        if self.n_bits is None:
            return int(self.n_perm)
        n = int(self.n_bits) // (int(self.b_bits) if self.b_bits else 1)
        if n < 1:
            raise ValidationError(f"n_bits={self.n_bits} is smaller than b_bits={self.b_bits}: no permutation left")
        return n

    # -- estimator API -------------------------------------------------------------------------------
    def fit(self, X=None, y=None):
        """Draw the permutations (MinHash needs no training data); returns ``self``.

        Parameters
        ----------
        X : records or None
            Ignored apart from being validated when given (same formats as :meth:`transform`).
        """
        n_perm = self._resolved_n_perm()
        rng = check_random_state(self.random_state)
        self.n_perm_ = n_perm
        self.perm_a_ = rng.integers(1, MERSENNE_61, size=n_perm, dtype=np.uint64)
        self.perm_b_ = rng.integers(0, MERSENNE_61, size=n_perm, dtype=np.uint64)
        if X is not None:
            _record_tokens(X, self.shingle)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "perm_a_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def transform(self, X) -> np.ndarray:
        """Signatures of records.

        Parameters
        ----------
        X : sequence of token collections, sequence of str (with ``shingle``), or sparse (n, n_tokens)

        Returns
        -------
        signatures : ndarray of shape (n, n_perm_)
            uint64 (full MinHash) or uint32 (``b_bits`` set). See the class notes for empty records.
        """
        self._check_fitted()
        tok, rec, n = _record_tokens(X, self.shingle)
        return self._signatures(tok, rec, n)

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    encode = transform

    def _signatures(self, tok: np.ndarray, rec: np.ndarray, n: int, *, compiled: bool = True) -> np.ndarray:
        k = self.n_perm_
        sig = np.full((n, k), EMPTY_VALUE, dtype=np.uint64)
        if tok.size and compiled:
            _minhash_kernel(_mod61(tok), rec, self.perm_a_, self.perm_b_, sig)
        elif tok.size:  # pure numpy: the same values, ~20x slower; kept as the tested reference
            x = _mod61(tok)
            a, b = self.perm_a_[None, :], self.perm_b_[None, :]
            step = max(1, _CHUNK_ELEMENTS // k)
            for t0 in range(0, tok.shape[0], step):
                xs = x[t0 : t0 + step, None]
                hv = _mix61(_mod61(_mulmod61(a, xs) + b))
                rc = rec[t0 : t0 + step]
                seg = np.flatnonzero(np.r_[True, rc[1:] != rc[:-1]])
                mins = np.minimum.reduceat(hv, seg, axis=0)
                rows = rc[seg]
                sig[rows] = np.minimum(sig[rows], mins)
        if self.b_bits:
            return (sig & np.uint64((1 << int(self.b_bits)) - 1)).astype(np.uint32)
        return sig

    def _check_signatures(self, sig, name) -> np.ndarray:
        sig = np.asarray(sig)
        want = np.uint32 if self.b_bits else np.uint64
        if sig.dtype != want:
            raise IncompatibleError(
                f"{name} must be {np.dtype(want).name} signatures of this model, got dtype {sig.dtype}"
            )
        if sig.ndim not in (1, 2) or sig.shape[-1] != self.n_perm_:
            raise IncompatibleError(
                f"expected {name} with {self.n_perm_} permutations, got shape {sig.shape}"
            )
        return sig

    def jaccard(self, sig_a, sig_b) -> np.ndarray:
        """Estimated Jaccard similarity of records from their signatures.

        Full MinHash: the fraction ``P`` of equal positions. b-bit MinHash: Li & König's correction for
        a large universe (here ``2**61 - 1``, so their ``r1, r2 → 0``), ``(P - 2**-b) / (1 - 2**-b)``,
        clipped to ``[0, 1]``.

        Parameters
        ----------
        sig_a, sig_b : ndarray of shape (n_perm_,) or (n, n_perm_)
            Signatures from this model (broadcast against each other).

        Returns
        -------
        J : float or ndarray of shape (n,), float64
        """
        self._check_fitted()
        a = self._check_signatures(sig_a, "sig_a")
        b = self._check_signatures(sig_b, "sig_b")
        P = np.mean(a == b, axis=-1)
        if self.b_bits:
            c = 2.0 ** -int(self.b_bits)
            P = np.clip((P - c) / (1.0 - c), 0.0, 1.0)
        return P


# -- banding ---------------------------------------------------------------------------------------
def _scurve(s: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Probability ``1 - (1 - s**r)**b`` that a pair of Jaccard ``s`` shares a band, accurately."""
    with np.errstate(divide="ignore"):
        return -np.expm1(b * np.log1p(-(s**r)))


def optimal_bands(threshold, n_perm, false_positive_weight=0.5, false_negative_weight=0.5):
    """Banding parameters ``(bands, rows)`` for a Jaccard threshold.

    Minimises ``wFP ∫_0^t P(s) ds + wFN ∫_t^1 (1 - P(s)) ds`` over all ``bands × rows <= n_perm``, where
    ``P(s) = 1 - (1 - s**rows)**bands`` is the probability that a pair of Jaccard similarity ``s`` shares
    at least one band (integrals by the trapezoid rule on 1025 points each).

    Parameters
    ----------
    threshold : float in (0, 1)
    n_perm : int
        Signature length.
    false_positive_weight, false_negative_weight : float, default 0.5
        Non-negative weights, not both zero.

    Returns
    -------
    bands, rows : int
    """
    t = float(threshold)
    if not 0.0 < t < 1.0:
        raise ValidationError(f"threshold must be in (0, 1), got {threshold!r}")
    check_int_param(n_perm, "n_perm", min_val=1)
    wfp, wfn = float(false_positive_weight), float(false_negative_weight)
    if not (wfp >= 0 and wfn >= 0 and wfp + wfn > 0 and np.isfinite(wfp + wfn)):
        raise ValidationError(f"weights must be non-negative and not both zero, got {wfp!r}, {wfn!r}")
    n_perm = int(n_perm)
    b = np.repeat(np.arange(1, n_perm + 1), n_perm // np.arange(1, n_perm + 1))
    r = np.concatenate([np.arange(1, n_perm // bb + 1) for bb in range(1, n_perm + 1)])
    s_fp = np.linspace(0.0, t, 1025)
    s_fn = np.linspace(t, 1.0, 1025)
    best, best_err = (1, 1), np.inf
    step = max(1, (1 << 21) // 1025)
    for i in range(0, b.shape[0], step):
        bb, rr = b[i : i + step, None].astype(np.float64), r[i : i + step, None].astype(np.float64)
        fp = trapezoid(_scurve(s_fp[None, :], bb, rr), s_fp, axis=1)
        fn = trapezoid(1.0 - _scurve(s_fn[None, :], bb, rr), s_fn, axis=1)
        err = wfp * fp + wfn * fn
        j = int(np.argmin(err))
        if err[j] < best_err:
            best_err, best = err[j], (int(b[i + j]), int(r[i + j]))
    return best


def _check_band_args(sig, bands, rows, name="signatures"):
    sig = np.asarray(sig)
    if sig.ndim != 2 or sig.dtype.kind not in "ui":
        raise ValidationError(f"{name} must be a 2-D integer (n, n_perm) array, got {sig.dtype} with shape {sig.shape}")
    check_int_param(bands, "bands", min_val=1)
    check_int_param(rows, "rows", min_val=1)
    if bands * rows > sig.shape[1]:
        raise IncompatibleError(
            f"bands × rows = {bands * rows} exceeds the {sig.shape[1]} permutations of {name}"
        )
    return sig


def _check_max_bucket(max_bucket):
    check_int_param(max_bucket, "max_bucket", min_val=2, allow_none=True)


def _band_keys(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """uint64 key of band ``band`` of every row (equal bands ⇒ equal keys; else collision ≈ 2**-64)."""
    with np.errstate(over="ignore"):
        seed = _BAND_SEED + np.uint64(band) * _GOLDEN
    return _combine_keys(sig[:, None, band * rows : (band + 1) * rows], np.array([seed]))[:, 0]


def band_keys(signatures, bands, rows) -> np.ndarray:
    """uint64 key of every band of every signature: the keys :func:`band_candidates` groups by.

    Two records share band ``k`` exactly when ``keys[i, k] == keys[j, k]`` (up to a ≈2**-64 chance of
    key collision). Lets a caller keep ``bands`` keys per record instead of ``n_perm`` values when
    signatures are computed in chunks.

    Parameters
    ----------
    signatures : ndarray of shape (n, n_perm), unsigned integer
    bands, rows : int

    Returns
    -------
    keys : ndarray of shape (n, bands), uint64

    Examples
    --------
    >>> sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9]], dtype=np.uint64)
    >>> k = band_keys(sig, 2, 2)
    >>> bool(k[0, 0] == k[1, 0]), bool(k[0, 1] == k[1, 1])
    (True, False)
    """
    sig = _check_band_args(signatures, bands, rows)
    out = np.empty((sig.shape[0], int(bands)), dtype=np.uint64)
    for band in range(int(bands)):
        out[:, band] = _band_keys(sig, band, int(rows))
    return out


def _non_empty_rows(sig: np.ndarray) -> np.ndarray:
    if sig.dtype == np.uint64:
        return np.flatnonzero(~np.all(sig == EMPTY_VALUE, axis=1))
    return np.arange(sig.shape[0])


def _runs(sorted_keys: np.ndarray):
    n = sorted_keys.shape[0]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if n else np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, n])
    return starts.astype(np.int64), sizes.astype(np.int64)


def _expand(counts: np.ndarray):
    """For counts c: (index repeated c_i times, 0..c_i-1 within each repeat)."""
    total = int(counts.sum())
    idx = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return idx, within


def _pairs_to_array(codes: list, n_right: int) -> np.ndarray:
    if not codes:
        return np.empty((0, 2), dtype=np.int64)
    u = np.unique(np.concatenate(codes))
    return np.stack([u // n_right, u % n_right], axis=1).astype(np.int64)


def band_candidates(signatures, bands, rows, *, max_bucket=1000) -> np.ndarray:
    """Candidate pairs: records whose signatures agree on all ``rows`` values of at least one band.

    Band ``k`` is columns ``[k rows, (k+1) rows)``. Each band's rows are hashed to a uint64 key, keys are
    sorted, and pairs are emitted within each run of equal keys, all vectorised; pairs found in several
    bands are reported once. These are candidates to verify, not matches: a pair of Jaccard ``s`` is a
    candidate with probability ``1 - (1 - s**rows)**bands`` (plus a ≈2**-64 chance of key collision).
    Rows whose uint64 signature is entirely :data:`EMPTY_VALUE` (empty records) are never paired.

    Parameters
    ----------
    signatures : ndarray of shape (n, n_perm), unsigned integer
    bands, rows : int
        ``bands × rows <= n_perm``; see :func:`optimal_bands`.
    max_bucket : int or None, default 1000
        Cap against quadratic blow-up. In a bucket (run of equal keys) of size ``s <= max_bucket`` all
        ``s (s-1) / 2`` pairs are emitted. In a larger bucket, whose members are ordered by record index,
        each record is paired only with the next ``max_bucket - 1`` members (a sliding window, as in
        sorted-neighbourhood blocking): every member keeps up to ``2 (max_bucket - 1)`` partners and a
        band emits at most ``n (max_bucket - 1)`` pairs. ``None`` disables the cap.

    Returns
    -------
    pairs : ndarray of shape (m, 2), int64
        Pairs ``(i, j)`` with ``i < j``, sorted lexicographically, without duplicates.
    """
    sig = _check_band_args(signatures, bands, rows)
    _check_max_bucket(max_bucket)
    n = sig.shape[0]
    keep = _non_empty_rows(sig)
    sub = sig[keep]
    codes = []
    for band in range(int(bands)):
        keys = _band_keys(sub, band, int(rows))
        order = np.argsort(keys, kind="stable")
        starts, sizes = _runs(keys[order])
        size_of = np.repeat(sizes, sizes)
        local = np.arange(order.shape[0], dtype=np.int64) - np.repeat(starts, sizes)
        cnt = size_of - 1 - local
        if max_bucket is not None:
            cnt = np.minimum(cnt, int(max_bucket) - 1)
        first, within = _expand(cnt)
        a = keep[order[first]]
        b = keep[order[first + within + 1]]
        if a.size:
            codes.append(np.unique(np.minimum(a, b) * n + np.maximum(a, b)))
    return _pairs_to_array(codes, n)


def band_candidates_between(sig_left, sig_right, bands, rows, *, max_bucket=1000) -> np.ndarray:
    """Candidate pairs across two tables: ``(i, j)`` where left ``i`` and right ``j`` share a band.

    Same banding as :func:`band_candidates` (both signature sets must come from the same MinHash model).

    Parameters
    ----------
    sig_left : ndarray of shape (n_left, n_perm)
    sig_right : ndarray of shape (n_right, n_perm)
    bands, rows : int
    max_bucket : int or None, default 1000
        In a bucket holding ``L`` left and ``R`` right records, each left record is paired with
        ``min(R, max_bucket)`` right records of the bucket: all of them when ``R <= max_bucket``, else a
        cyclic window starting at position ``floor(l R / L)`` for the ``l``-th left record, which spreads
        the pairs evenly over the right records. A band thus emits at most ``n_left × max_bucket`` pairs.
        ``None`` disables the cap.

    Returns
    -------
    pairs : ndarray of shape (m, 2), int64
        ``(left index, right index)``, sorted lexicographically, without duplicates.
    """
    L = _check_band_args(sig_left, bands, rows, "sig_left")
    R = _check_band_args(sig_right, bands, rows, "sig_right")
    if L.dtype != R.dtype or L.shape[1] != R.shape[1]:
        raise IncompatibleError(
            f"sig_left and sig_right differ ({L.dtype}, {L.shape[1]} permutations vs {R.dtype}, {R.shape[1]})"
        )
    _check_max_bucket(max_bucket)
    nr = R.shape[0]
    kl, kr = _non_empty_rows(L), _non_empty_rows(R)
    side = np.r_[np.zeros(kl.shape[0], np.int8), np.ones(kr.shape[0], np.int8)]
    src = np.r_[kl, kr].astype(np.int64)
    codes = []
    for band in range(int(bands)):
        keys = np.r_[_band_keys(L[kl], band, int(rows)), _band_keys(R[kr], band, int(rows))]
        order = np.lexsort((src, side, keys))
        sk, ss, si = keys[order], side[order], src[order]
        starts, sizes = _runs(sk)
        run_id = np.repeat(np.arange(starts.shape[0]), sizes)
        n_left = np.bincount(run_id, weights=(ss == 0), minlength=starts.shape[0]).astype(np.int64)
        n_right = sizes - n_left
        lp = np.flatnonzero(ss == 0)
        rid = run_id[lp]
        local = lp - starts[rid]
        Rr, Lr = n_right[rid], n_left[rid]
        cnt = Rr if max_bucket is None else np.minimum(Rr, int(max_bucket))
        first, within = _expand(cnt)
        if first.size == 0:
            continue
        R_rep = Rr[first]
        offset = (local[first] * R_rep) // Lr[first]
        right_pos = starts[rid[first]] + Lr[first] + (offset + within) % R_rep
        codes.append(np.unique(si[lp[first]] * nr + si[right_pos]))
    return _pairs_to_array(codes, nr)
