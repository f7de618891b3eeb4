"""Entity blocking: cheap candidate pairs for record linkage (two tables) and deduplication (one table).

A blocker proposes pairs of records that *may* match, so that an expensive matcher only compares those
instead of all ``n_left × n_right`` (or ``n (n - 1) / 2``) pairs. Candidates are produced in chunks
(:meth:`Blocker.iter_candidates`) and never through an ``n × n`` matrix; what a run keeps in memory is
proportional to the number of candidates (plus, for the embedding blockers, ``O(block × n)`` scores).

Methods (the names of :func:`make_blocker`, the CLI's ``--method``):

* ``standard`` -- records sharing the exact value of a blocking key (:class:`StandardBlocker`).
* ``sortedneighbourhood`` -- records whose keys are within a window in sorted order
  (:class:`SortedNeighbourhoodBlocker`).
* ``minhash`` -- MinHash LSH over character q-grams or word tokens (:class:`MinHashBlocker`).
* ``simhash`` -- multi-table hyperplane LSH over text embeddings (:class:`SimHashBlocker`).
* ``embedding`` -- ``k`` nearest neighbours over frozen text embeddings (:class:`EmbeddingBlocker`).
* ``neural`` -- hashing with a projection fine-tuned by an LSH-aware loss (:class:`NeuralBlocker`).
* ``union:a+b`` -- the union of several blockers (:class:`UnionBlocker`).

Records are prepared by :func:`prepare_table`: the chosen fields are read as text, missing cells
(``NaN``, ``None``, empty strings) become ``""`` and are *counted* (:attr:`RecordTable.n_missing`), and a
record whose chosen fields are all empty cannot be blocked by the token/embedding blockers; those are
counted in :attr:`RecordTable.n_empty` and reported, never dropped silently.

Pairs are ``(left position, right position)``; for deduplication both index the single table and
``left < right``. :func:`blocking_metrics` scores them against true links.

Examples
--------
>>> import pandas as pd
>>> left = pd.DataFrame({"name": ["john smith", "mary jones", "peter pan"]}, index=["a", "b", "c"])
>>> right = pd.DataFrame({"name": ["jon smith", "mary jone", "wendy darling"]}, index=["x", "y", "z"])
>>> L, R = prepare_table(left, fields=["name"]), prepare_table(right, fields=["name"])
>>> blocker = make_blocker("minhash", threshold=0.3, random_state=0)
>>> blocker.candidate_pairs(L, R).tolist()
[[0, 0], [1, 1]]
"""

from __future__ import annotations

import numbers
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import DataFileError, UnknownMethodError, ValidationError

__all__ = [
    "RecordTable",
    "prepare_table",
    "read_table",
    "read_truth",
    "Blocker",
    "StandardBlocker",
    "SortedNeighbourhoodBlocker",
    "MinHashBlocker",
    "SimHashBlocker",
    "EmbeddingBlocker",
    "NeuralBlocker",
    "UnionBlocker",
    "make_blocker",
    "BLOCKING_METHODS",
    "blocking_metrics",
    "BlockingRun",
    "run_blocking",
    "write_pairs",
]

_CHUNK = 1 << 18  # candidate pairs per yielded chunk


# ==================================================================================================
# records
# ==================================================================================================
@dataclass(eq=False, repr=False)
class RecordTable:
    """Text fields of a table of records, cleaned for blocking.

    Attributes
    ----------
    ids : ndarray of shape (n,), object
        Record ids as strings (the table's id column or index).
    fields : list of str
        The fields used for blocking, in order.
    values : dict of str to list of str
        Cleaned text of every field (missing cells are ``""``).
    n_missing : dict of str to int
        Missing or empty cells per field.
    name : str
        A label for messages (``"left"``, ``"right"`` or a file name).
    """

    ids: np.ndarray
    fields: list
    values: dict
    n_missing: dict
    name: str = "table"
    _texts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def texts(self, fields: Sequence[str] | None = None) -> list[str]:
        """One string per record: the non-empty values of ``fields`` (default: all) joined by spaces."""
        fields = list(self.fields if fields is None else fields)
        missing = [f for f in fields if f not in self.values]
        if missing:
            raise ValidationError(f"{self.name}: unknown field(s) {missing}; prepared fields are {self.fields}")
        key = tuple(fields)
        if key not in self._texts:
            cols = [self.values[f] for f in fields]
            self._texts[key] = [" ".join(v for v in vals if v) for vals in zip(*cols)]
        return self._texts[key]

    @property
    def n_empty(self) -> int:
        """Records whose blocking fields are all empty (they get no token/embedding candidates)."""
        return int(sum(1 for t in self.texts() if not t))

    def __repr__(self) -> str:
        return f"RecordTable({self.name!r}, n={len(self)}, fields={self.fields}, n_empty={self.n_empty})"


def _clean_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ValidationError(f"a cell holds bytes that are not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if isinstance(v, float) and v != v:
        return ""
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # a float column read from CSV (7.0 -> "7")
    return str(v).strip()


def prepare_table(data, *, fields: Sequence[str] | str | None = None, id_col: str | None = None,
                  name: str = "table", lowercase: bool = True) -> RecordTable:
    """Select and clean the blocking fields of a table.

    Parameters
    ----------
    data : pandas.DataFrame, or path to a CSV/Parquet file (read with :func:`read_table`)
    fields : list of str or comma-separated str, optional
        Fields to block on; default: every column except ``id_col``.
    id_col : str, optional
        Column holding record ids; default: the DataFrame index.
    name : str
        Label used in messages.
    lowercase : bool, default True
        Lower-case all text (the token blockers are case sensitive otherwise).

    Returns
    -------
    RecordTable

    Raises
    ------
    ValidationError
        Unknown field or id column (the message lists the columns), an empty table, duplicate ids, or
        a cell holding bytes that are not UTF-8.
    """
    import pandas as pd

    if isinstance(data, (str, os.PathLike)):
        name = str(data) if name == "table" else name
        data = read_table(data)
    if not isinstance(data, pd.DataFrame):
        raise ValidationError(f"{name}: expected a pandas DataFrame or a file path, got {type(data).__name__}")
    if len(data) == 0:
        raise ValidationError(f"{name}: the table has no records")
    cols = [str(c) for c in data.columns]
    data = data.set_axis(cols, axis=1)
    if id_col is not None:
        if id_col not in cols:
            raise ValidationError(f"{name}: no id column {id_col!r}; columns are {cols}")
        ids = data[id_col]
    else:
        ids = data.index.to_series()
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    if fields is None:
        fields = [c for c in cols if c != id_col]
    fields = list(fields)
    if not fields:
        raise ValidationError(f"{name}: no fields to block on")
    missing = [f for f in fields if f not in cols]
    if missing:
        raise ValidationError(f"{name}: missing field(s) {missing}; columns are {cols}")
    ids = np.array([_clean_cell(v) for v in ids], dtype=object)
    if any(i == "" for i in ids):
        raise ValidationError(f"{name}: {sum(i == '' for i in ids)} record(s) have an empty id")
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise ValidationError(f"{name}: duplicate ids, e.g. {uniq[counts > 1][:3].tolist()}")
    values, n_missing = {}, {}
    for f in fields:
        try:
            vals = [_clean_cell(v) for v in data[f].tolist()]
        except ValidationError as exc:
            raise ValidationError(f"{name}: field {f!r}: {exc}") from None
        if lowercase:
            vals = [v.lower() for v in vals]
        values[f] = vals
        n_missing[f] = sum(1 for v in vals if not v)
    return RecordTable(ids=ids, fields=fields, values=values, n_missing=n_missing, name=name)


def read_table(path, *, sep: str = ",", encoding: str = "utf-8"):
    """Read a CSV (any single-character separator) or Parquet file as strings.

    Every column is read as text (no type guessing, so ids ``"007"`` stay ``"007"``); empty cells stay
    missing. Non-UTF-8 bytes are an error naming the file and byte offset.

    Raises
    ------
    DataFileError
        Missing, unreadable, non-UTF-8 or malformed file.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: no such file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(p)
            return df.astype(object).where(df.notna(), None)
        return pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, na_values=[], encoding=encoding,
                           engine="python" if len(sep) != 1 else "c")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{p}: not valid {encoding} ({exc.reason} at byte {exc.start}); "
                            f"re-encode the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise DataFileError(f"{p}: cannot read as a table with separator {sep!r}: {exc}") from None


def read_truth(path, left: RecordTable, right: RecordTable | None = None, *, sep: str = ",") -> np.ndarray:
    """True links of a two-column file (left id, right id; a header line is allowed) as positions.

    Returns
    -------
    pairs : ndarray of shape (m, 2), int64
        Positions in ``left`` and ``right`` (``left`` again for deduplication, then ``i < j``), unique.

    Raises
    ------
    DataFileError
        The file is unreadable or has fewer than two columns.
    ValidationError
        Some ids are not in the tables (the message counts them and shows a few).
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: no such file")
    try:
        df = pd.read_csv(p, sep=sep, header=None, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{p}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataFileError(f"{p}: cannot read the truth file with separator {sep!r}: {exc}") from None
    if df.shape[1] < 2:
        raise DataFileError(f"{p}: a truth file needs two columns (left id, right id), found {df.shape[1]} "
                            f"with separator {sep!r}")
    other = left if right is None else right
    lpos = {k: i for i, k in enumerate(left.ids)}
    rpos = lpos if right is None else {k: i for i, k in enumerate(other.ids)}
    a_ids = df.iloc[:, 0].str.strip().tolist()
    b_ids = df.iloc[:, 1].str.strip().tolist()
    if a_ids and (a_ids[0] not in lpos or b_ids[0] not in rpos):  # a header line
        a_ids, b_ids = a_ids[1:], b_ids[1:]
    a = np.array([lpos.get(x, -1) for x in a_ids], dtype=np.int64)
    b = np.array([rpos.get(x, -1) for x in b_ids], dtype=np.int64)
    bad = (a < 0) | (b < 0)
    if bad.any():
        ex = [f"({a_ids[i]}, {b_ids[i]})" for i in np.flatnonzero(bad)[:3]]
        raise ValidationError(f"{p}: {int(bad.sum())} of {len(a)} true links name ids that are not in the "
                              f"tables, e.g. {', '.join(ex)}")
    pairs = np.stack([a, b], axis=1)
    if right is None:
        pairs = np.sort(pairs, axis=1)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)


# ==================================================================================================
# pair helpers
# ==================================================================================================
def _check_int(name, value, lo=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValidationError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _chunks(pairs: np.ndarray, size: int = _CHUNK) -> Iterator[np.ndarray]:
    for s in range(0, pairs.shape[0], size):
        yield pairs[s : s + size]


def _unique_pairs(pairs: np.ndarray, n_right: int) -> np.ndarray:
    if pairs.shape[0] == 0:
        return pairs.reshape(0, 2).astype(np.int64)
    codes = np.unique(pairs[:, 0].astype(np.int64) * n_right + pairs[:, 1])
    return np.stack([codes // n_right, codes % n_right], axis=1)


def _group_pairs(gl: np.ndarray, gr: np.ndarray, dedup: bool) -> Iterator[np.ndarray]:
    """All pairs (i, j) with ``gl[i] == gr[j] >= 0`` (``i < j`` when ``dedup``), in chunks.

    Groups are expanded by sorting; a group of ``a`` left and ``b`` right records gives ``a b`` pairs
    (``a (a-1)/2`` for dedup). Chunks hold whole groups, about ``_CHUNK`` pairs each.
    """
    il = np.flatnonzero(gl >= 0)
    ir = np.flatnonzero(gr >= 0)
    ol = il[np.argsort(gl[il], kind="stable")]
    orr = ir[np.argsort(gr[ir], kind="stable")]
    kl, kr = gl[ol], gr[orr]
    ukeys = np.intersect1d(kl, kr)
    if ukeys.size == 0:
        return
    ls, le = np.searchsorted(kl, ukeys, "left"), np.searchsorted(kl, ukeys, "right")
    rs, re_ = np.searchsorted(kr, ukeys, "left"), np.searchsorted(kr, ukeys, "right")
    na, nb = le - ls, re_ - rs
    sizes = na * nb
    cs = np.cumsum(sizes)
    start, G = 0, ukeys.size
    while start < G:
        base = int(cs[start - 1]) if start else 0
        stop = max(int(np.searchsorted(cs, base + _CHUNK, "right")), start + 1)
        sl = slice(start, stop)
        start = stop
        cnt = sizes[sl]
        g = np.repeat(np.arange(cnt.shape[0]), cnt)
        w = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        nbg = nb[sl][g]
        a = ol[ls[sl][g] + w // nbg]
        b = orr[rs[sl][g] + w % nbg]
        if dedup:
            keep = a < b
            a, b = a[keep], b[keep]
        if a.size:
            yield np.stack([a, b], axis=1).astype(np.int64)


def _normalize_dedup(pairs: np.ndarray) -> np.ndarray:
    pairs = np.sort(pairs, axis=1)
    return pairs[pairs[:, 0] != pairs[:, 1]]


# ==================================================================================================
# blockers
# ==================================================================================================
class Blocker:
    """Base class: a blocker proposes candidate pairs of records.

    Subclasses implement :meth:`_candidates` (yielding ``(m, 2)`` int64 position arrays; for
    deduplication pairs ``i < j``). :meth:`iter_candidates` removes duplicates across chunks.
    """

    name = "blocker"

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
        if right is not None and left.fields != right.fields and not getattr(self, "_allow_field_mismatch", False):
            if len(left.fields) != len(right.fields):
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

    def candidate_pairs(self, left: RecordTable, right: RecordTable | None = None) -> np.ndarray:
        """All candidate pairs as one sorted ``(m, 2)`` int64 array (see :meth:`iter_candidates`)."""
        chunks = list(self.iter_candidates(left, right))
        if not chunks:
            return np.empty((0, 2), dtype=np.int64)
        n_right = len(left if right is None else right)
        return _unique_pairs(np.concatenate(chunks), n_right)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_"))
        return f"{type(self).__name__}({params})"


def _key_codes(left: RecordTable, right: RecordTable | None, on, transform=None):
    """Integer codes of the blocking key (joined values of ``on``); -1 for an empty key."""
    on = [on] if isinstance(on, str) else list(on)

    def keys(t):
        vals = t.texts(on)
        return [transform(v) if (transform and v) else v for v in vals]

    kl = keys(left)
    kr = kl if right is None else keys(right)
    allk = np.array(kl + ([] if right is None else kr), dtype=object)
    uniq, inv = np.unique(allk.astype(str), return_inverse=True)
    empty = np.flatnonzero(uniq == "")
    inv = inv.astype(np.int64)
    if empty.size:
        inv[inv == empty[0]] = -1
    gl = inv[: len(kl)]
    gr = gl if right is None else inv[len(kl):]
    return gl, gr, uniq


class StandardBlocker(Blocker):
    """Standard blocking: pair the records whose blocking key is exactly equal.

    Parameters
    ----------
    on : str or list of str, optional
        Field(s) forming the key (values joined by spaces); default: the first prepared field.
    key : callable, optional
        Applied to each non-empty key string (e.g. ``lambda s: s[:3]`` for a prefix, a phonetic code).

    Records with an empty key are never paired. References: I. P. Fellegi and A. B. Sunter, "A Theory for
    Record Linkage", JASA 1969; P. Christen, "A Survey of Indexing Techniques for Scalable Record Linkage
    and Deduplication", IEEE TKDE 2012.
    """

    name = "standard"

    def __init__(self, on=None, *, key: Callable | None = None):
        self.on = on
        self.key = key

    def _candidates(self, left, right):
        on = self.on if self.on is not None else left.fields[:1]
        gl, gr, _ = _key_codes(left, right, on, self.key)
        yield from _group_pairs(gl, gr, dedup=right is None)


class SortedNeighbourhoodBlocker(Blocker):
    """Sorted neighbourhood: sort the distinct keys; pair records whose key ranks differ by at most
    ``window // 2`` (the semantics of ``recordlinkage.index.SortedNeighbourhood``).

    Parameters
    ----------
    on : str or list of str, optional
        Sorting key field(s); default: the first prepared field.
    window : int, default 3
        Odd window size over the sorted distinct keys of both tables.

    References: M. A. Hernández and S. J. Stolfo, "The Merge/Purge Problem for Large Databases",
    SIGMOD 1995.
    """

    name = "sortedneighbourhood"

    def __init__(self, on=None, *, window: int = 3):
        self.on = on
        self.window = window

    def _candidates(self, left, right):
        w = _check_int("window", self.window)
        if w % 2 == 0:
            raise ValidationError(f"window must be odd, got {w}")
        on = self.on if self.on is not None else left.fields[:1]
        gl, gr, _ = _key_codes(left, right, on)  # codes are ranks of the sorted distinct keys
        for off in range(-(w // 2), w // 2 + 1):
            shifted = np.where(gl >= 0, gl + off, -1)
            if right is None and off < 0:
                continue  # symmetric: offsets > 0 and the i < j half of offset 0 cover every pair
            if right is None and off > 0:
                for ch in _group_pairs(shifted, gr, dedup=False):
                    yield _normalize_dedup(ch)
            else:
                yield from _group_pairs(shifted, gr, dedup=right is None)


class MinHashBlocker(Blocker):
    """MinHash LSH blocking over character q-grams (or word tokens) of the record text.

    Every record's text (the prepared fields joined by spaces) is sketched with :class:`MinHash`;
    records sharing one of ``bands`` bands of ``rows`` values become candidates (``band_candidates``).
    ``(bands, rows)`` come from ``threshold`` (:func:`optimal_bands`) unless given.

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
        Bucket cap of the banding (see :func:`band_candidates`).
    min_similarity : float, optional
        Drop candidates whose estimated Jaccard is below this.
    max_per_record : int, optional
        Keep the best ``max_per_record`` candidates of each (left) record by estimated Jaccard.
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
        from ..hashing.minhash import optimal_bands

        if self.bands is not None and self.rows is not None:
            return _check_int("bands", self.bands), _check_int("rows", self.rows)
        return optimal_bands(self.threshold, _check_int("n_perm", self.n_perm))

    def sketch(self, table: RecordTable) -> np.ndarray:
        """MinHash signatures (n, n_perm) uint64 of the records' texts."""
        from ..hashing.minhash import MinHash

        if not hasattr(self, "minhash_"):
            self.minhash_ = MinHash(self.n_perm, shingle=self.q or None, random_state=self.random_state).fit()
        texts = table.texts(self.fields)
        if not self.q:
            return self.minhash_.transform([_WORD.findall(t) for t in texts])
        return self.minhash_.transform(texts)

    def _candidates(self, left, right):
        from ..hashing.minhash import band_candidates, band_candidates_between

        _check_int("q", self.q, 0)
        for nm in ("min_similarity",):
            v = getattr(self, nm)
            if v is not None and not 0.0 <= float(v) <= 1.0:
                raise ValidationError(f"{nm} must be in [0, 1], got {v!r}")
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
        yield from _chunks(pairs)

    def _filter(self, pairs, sl, sr):
        est = np.empty(pairs.shape[0], dtype=np.float32)
        step = max(1, (1 << 22) // sl.shape[1])
        for s in range(0, pairs.shape[0], step):
            p = pairs[s : s + step]
            est[s : s + step] = np.mean(sl[p[:, 0]] == sr[p[:, 1]], axis=1)
        keep = np.ones(pairs.shape[0], dtype=bool)
        if self.min_similarity is not None:
            keep &= est >= float(self.min_similarity)
        if self.max_per_record is not None:
            m = _check_int("max_per_record", self.max_per_record)
            order = np.lexsort((-est, pairs[:, 0]))  # by left record, best first
            first = np.r_[True, pairs[order[1:], 0] != pairs[order[:-1], 0]]
            starts = np.maximum.accumulate(np.where(first, np.arange(order.shape[0]), 0))
            rank = np.arange(order.shape[0]) - starts
            top = np.zeros(pairs.shape[0], dtype=bool)
            top[order[rank < m]] = True
            keep &= top
        return pairs[keep]


_WORD = re.compile(r"\w+", re.UNICODE)


# -- embedding-based -------------------------------------------------------------------------------
def _default_embedder():
    from ..embed import Embedder

    return Embedder(show_progress=False)


class _EmbeddingMixin:
    """Shared: embed the records' texts (rows of empty records are left at zero and never paired)."""

    def _embed(self, table: RecordTable) -> tuple[np.ndarray, np.ndarray]:
        emb = self.embedder if self.embedder is not None else _default_embedder()
        texts = table.texts(self.fields)
        ok = np.array([bool(t) for t in texts])
        X = np.zeros((len(texts), 0), dtype=np.float32)
        idx = np.flatnonzero(ok)
        if idx.size:
            V = np.asarray(emb.encode([texts[i] for i in idx]), dtype=np.float32)
            X = np.zeros((len(texts), V.shape[1]), dtype=np.float32)
            X[idx] = V
        return X, ok


def _set_torch_threads(n: int = 2) -> None:
    import torch

    if torch.get_num_threads() > n:
        torch.set_num_threads(n)


def _knn_cosine_pairs(Q: np.ndarray, D: np.ndarray, k: int, q_ok: np.ndarray, d_ok: np.ndarray,
                      exclude_self: bool = False, block: int = 1024) -> np.ndarray:
    """(i, j) for the ``k`` most cosine-similar rows ``D[j]`` of each valid ``Q[i]`` (exact, blocked)."""
    Qn = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
    Dn = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)
    valid_d = np.flatnonzero(d_ok)
    Dv = Dn[valid_d]
    kk = min(k + int(exclude_self), valid_d.size)
    out = []
    if kk == 0:
        return np.empty((0, 2), dtype=np.int64)
    for s in range(0, Q.shape[0], block):
        rows = np.arange(s, min(s + block, Q.shape[0]))
        rows = rows[q_ok[rows]]
        if rows.size == 0:
            continue
        S = Qn[rows] @ Dv.T
        if exclude_self:
            pos = np.searchsorted(valid_d, rows)
            hit = (pos < valid_d.size) & (valid_d[np.minimum(pos, valid_d.size - 1)] == rows)
            S[np.flatnonzero(hit), pos[hit]] = -np.inf
        top = np.argpartition(-S, kk - 1, axis=1)[:, :kk] if kk < Dv.shape[0] else np.tile(np.arange(Dv.shape[0]), (rows.size, 1))
        sc = np.take_along_axis(S, top, axis=1)
        o = np.argsort(-sc, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(top, o, axis=1)
        sc = np.take_along_axis(sc, o, axis=1)
        keep = np.isfinite(sc)
        out.append(np.stack([np.repeat(rows, top.shape[1])[keep.ravel()], valid_d[top.ravel()[keep.ravel()]]], axis=1))
    return np.concatenate(out).astype(np.int64) if out else np.empty((0, 2), dtype=np.int64)


def _knn_both_ways(XL, XR, okL, okR, k, dedup, scorer=_knn_cosine_pairs):
    """k candidates per record of the smaller table (linkage) or per record (dedup)."""
    if dedup:
        return _normalize_dedup(scorer(XL, XL, k, okL, okL, exclude_self=True))
    if XL.shape[0] <= XR.shape[0]:
        return scorer(XL, XR, k, okL, okR)
    p = scorer(XR, XL, k, okR, okL)
    return p[:, ::-1].copy()


class EmbeddingBlocker(_EmbeddingMixin, Blocker):
    """Nearest-neighbour blocking over frozen sentence embeddings (default all-MiniLM-L6-v2).

    Each record of the smaller table (every record, in deduplication) is paired with its ``k`` most
    cosine-similar records of the other table, found exactly (blocked matrix products), so a run gives
    at most ``k × min(n_left, n_right)`` candidates.

    Parameters
    ----------
    k : int, default 10
    embedder : object with ``encode(list[str]) -> (n, d)``, optional
        Default: :class:`hashlearn.embed.Embedder` (all-MiniLM-L6-v2, offline).
    fields : list of str, optional
        Fields to embed (default: all prepared fields).

    References
    ----------
    N. Reimers and I. Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks", 2019;
    S. Thirumuruganathan et al., "Deep Learning for Blocking in Entity Matching: A Design Space
    Exploration", VLDB 2021.
    """

    name = "embedding"

    def __init__(self, k=10, *, embedder=None, fields=None):
        self.k = k
        self.embedder = embedder
        self.fields = fields

    def _candidates(self, left, right):
        k = _check_int("k", self.k)
        XL, okL = self._embed(left)
        XR, okR = (XL, okL) if right is None else self._embed(right)
        yield from _chunks(_knn_both_ways(XL, XR, okL, okR, k, right is None))


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
    embedder, fields : see :class:`EmbeddingBlocker`
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

    def _candidates(self, left, right):
        from ..index.tables import MultiTableLSH

        XL, okL = self._embed(left)
        XR, okR = (XL, okL) if right is None else self._embed(right)
        if not okR.any() or not okL.any():
            return
        index = MultiTableLSH("simhash", n_tables=self.n_tables, bits_per_table=self.bits_per_table,
                              n_probes=self.n_probes, metric="cosine", random_state=self.random_state)
        db = np.flatnonzero(okR)
        index.fit(XR[db])
        index.add(XR[db], ids=db)
        qs = np.flatnonzero(okL)
        for s in range(0, qs.size, 4096):
            q = qs[s : s + 4096]
            if self.k is not None:
                _, I = index.search(XL[q], _check_int("k", self.k) + int(right is None))
                a = np.repeat(q, I.shape[1])
                b = I.ravel()
                keep = b >= 0
                pairs = np.stack([a[keep], b[keep]], axis=1)
            else:
                lims, ids = index.candidates(XL[q])
                pairs = np.stack([np.repeat(q, np.diff(lims)), ids], axis=1)
            if right is None:
                pairs = _normalize_dedup(pairs)
            yield pairs.astype(np.int64)


# -- neural LSH blocking ---------------------------------------------------------------------------
_TYPO_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def perturb_record(values: Sequence[str], rng: np.random.Generator, *, p_drop=0.15, p_typo=0.1,
                   p_swap=0.2, p_field_drop=0.1) -> str:
    """A noisy copy of a record (list of field values) as one text: word drops, typos (insert, delete,
    substitute, transpose a character), two fields swapped, a field dropped. Used as a self-supervised
    positive for :class:`NeuralBlocker`.

    Examples
    --------
    >>> t = perturb_record(["john smith", "12 main street"], np.random.default_rng(0))
    >>> isinstance(t, str) and len(t) > 0
    True
    """
    vals = [v for v in values]
    if len(vals) > 1 and rng.random() < p_swap:
        i, j = rng.choice(len(vals), 2, replace=False)
        vals[i], vals[j] = vals[j], vals[i]
    out = []
    for v in vals:
        if not v or (len(vals) > 1 and rng.random() < p_field_drop):
            continue
        words = v.split()
        kept = [w for w in words if rng.random() >= p_drop] or words[:1]
        noisy = []
        for w in kept:
            if len(w) > 1 and rng.random() < p_typo:
                pos = int(rng.integers(len(w)))
                op = int(rng.integers(4))
                c = _TYPO_CHARS[int(rng.integers(len(_TYPO_CHARS)))]
                if op == 0:
                    w = w[:pos] + c + w[pos:]
                elif op == 1:
                    w = w[:pos] + w[pos + 1 :]
                elif op == 2:
                    w = w[:pos] + c + w[pos + 1 :]
                elif pos + 1 < len(w):
                    w = w[:pos] + w[pos + 1] + w[pos] + w[pos + 2 :]
            noisy.append(w)
        out.append(" ".join(noisy))
    text = " ".join(o for o in out if o)
    return text or " ".join(v for v in values if v)


class NeuralBlocker(_EmbeddingMixin, Blocker):
    """Neural LSH blocking in the spirit of NLSHBlock: a projection fine-tuned on top of frozen sentence
    embeddings with an LSH-aware loss, then hyperplane hashing of the projected vectors.

    Model: ``u = x + W2 gelu(W1 x)`` (a residual MLP, ``W2`` initialised at zero, so training starts
    from the frozen embeddings), hashed by ``n_bits`` fixed random hyperplanes ``R``:
    ``code = sign(u R)``. Loss on a batch of positive pairs ``(a_i, b_i)`` with in-batch negatives:
    InfoNCE on the cosine of ``u`` plus InfoNCE on the *relaxed Hamming agreement*
    ``mean(tanh(β u_a R) tanh(β u_b R))``, which is the expected per-bit collision rate of the LSH
    family up to an affine map, so matches are pushed to collide on the hyperplanes actually used and
    non-matches to split.

    Positives: the labelled matches ``train_pairs`` (positions ``(left, right)``) when given; otherwise
    self-supervised: each record against a perturbed copy of itself (:func:`perturb_record`: word drops,
    typos, swapped or dropped fields), both embedded by the same frozen model.

    Candidates: the ``k`` nearest records in Hamming distance of the codes (shortlist of ``4 k``),
    re-ranked by the cosine of the projected vectors when ``rerank``; ``k`` per record of the smaller
    table as in :class:`EmbeddingBlocker`.

    Parameters
    ----------
    k : int, default 10
    n_bits : int, default 256
    train_pairs : ndarray of shape (m, 2), optional
    epochs : int, default 3
    batch_size : int, default 128
    lr : float, default 1e-4
        A gentle fine-tune: the frozen embeddings are already good; on Abt-Buy (self-supervised, k=5)
        3 epochs at 1e-4 raised PC from 0.917 (untrained) to 0.927, while 10 epochs at 1e-3 lowered it
        to 0.897.
    temperature : float, default 0.05
    hidden : int, default 512
    rerank : bool, default True
    embedder, fields : see :class:`EmbeddingBlocker`
    random_state : int, default 0

    Attributes
    ----------
    losses_ : list of float
        Mean training loss per epoch.
    fitted_on_ : tuple
        Identity of the tables trained on: :meth:`iter_candidates` on the same tables reuses the trained
        projection (so ``k`` can be changed after :meth:`fit`); on other tables it trains again.

    References
    ----------
    "Neural Locality Sensitive Hashing for Entity Blocking" (NLSHBlock), SIAM SDM 2024; M. S. Charikar,
    "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002.
    """

    name = "neural"

    def __init__(self, k=10, *, n_bits=256, train_pairs=None, epochs=3, batch_size=128, lr=1e-4,
                 temperature=0.05, hidden=512, rerank=True, embedder=None, fields=None, random_state=0):
        self.k = k
        self.n_bits = n_bits
        self.train_pairs = train_pairs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.temperature = temperature
        self.hidden = hidden
        self.rerank = rerank
        self.embedder = embedder
        self.fields = fields
        self.random_state = random_state

    # training ---------------------------------------------------------------------------------------
    def _positives(self, left, right, XL, okL, XR, okR):
        if self.train_pairs is not None:
            tp = np.asarray(self.train_pairs)
            nR = XL.shape[0] if right is None else XR.shape[0]
            if tp.ndim != 2 or tp.shape[1] != 2 or tp.dtype.kind not in "iu":
                raise ValidationError(f"train_pairs must be an (m, 2) integer array, got {tp.dtype} {tp.shape}")
            if tp.size and (tp.min() < 0 or tp[:, 0].max() >= XL.shape[0] or tp[:, 1].max() >= nR):
                raise ValidationError("train_pairs holds positions outside the tables")
            ok = okL[tp[:, 0]] & (okL if right is None else okR)[tp[:, 1]]
            tp = tp[ok]
            if tp.shape[0] < 2:
                raise ValidationError("train_pairs needs at least 2 pairs of non-empty records")
            return XL[tp[:, 0]], (XL if right is None else XR)[tp[:, 1]]
        rng = np.random.default_rng(self.random_state)
        tables = [(left, XL, okL)] + ([] if right is None else [(right, XR, okR)])
        A, texts = [], []
        for t, X, ok in tables:
            fields = self.fields if self.fields is not None else t.fields
            cols = [t.values[f] for f in fields]
            for i in np.flatnonzero(ok):
                texts.append(perturb_record([c[i] for c in cols], rng))
            A.append(X[ok])
        emb = self.embedder if self.embedder is not None else _default_embedder()
        B = np.asarray(emb.encode(texts), dtype=np.float32)
        return np.concatenate(A), B

    def _train(self, A: np.ndarray, B: np.ndarray):
        import torch

        _set_torch_threads(2)
        torch.manual_seed(int(self.random_state or 0))
        d = A.shape[1]
        g = torch.Generator().manual_seed(int(self.random_state or 0))
        self.hyperplanes_ = torch.randn(d, _check_int("n_bits", self.n_bits), generator=g).numpy()
        net = torch.nn.Sequential(torch.nn.Linear(d, _check_int("hidden", self.hidden)), torch.nn.GELU(),
                                  torch.nn.Linear(self.hidden, d))
        torch.nn.init.zeros_(net[2].weight)
        torch.nn.init.zeros_(net[2].bias)
        opt = torch.optim.AdamW(net.parameters(), lr=float(self.lr), weight_decay=1e-4)
        R = torch.from_numpy(self.hyperplanes_) / np.sqrt(d)
        At, Bt = torch.from_numpy(A), torch.from_numpy(B)
        T = float(self.temperature)
        bs = _check_int("batch_size", self.batch_size, 2)
        self.losses_ = []
        n = At.shape[0]
        for _ in range(_check_int("epochs", self.epochs)):
            perm = torch.randperm(n, generator=g)
            tot, cnt = 0.0, 0
            for s in range(0, n, bs):
                idx = perm[s : s + bs]
                if idx.numel() < 2:
                    continue
                ua = At[idx] + net(At[idx])
                ub = Bt[idx] + net(Bt[idx])
                za = torch.nn.functional.normalize(ua, dim=1)
                zb = torch.nn.functional.normalize(ub, dim=1)
                labels = torch.arange(idx.numel())
                cos = za @ zb.T / T
                ba = torch.tanh(8.0 * (za @ R))
                bb = torch.tanh(8.0 * (zb @ R))
                ham = (ba @ bb.T) / R.shape[1] / T
                loss = 0.0
                for S in (cos, ham):
                    loss = loss + 0.5 * (torch.nn.functional.cross_entropy(S, labels)
                                         + torch.nn.functional.cross_entropy(S.T, labels))
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * idx.numel()
                cnt += idx.numel()
            self.losses_.append(tot / max(cnt, 1))
        self.net_ = net.eval()

    def project(self, X: np.ndarray) -> np.ndarray:
        """Projected (L2-normalised) vectors ``u`` of frozen embeddings ``X`` (n, d) float32."""
        import torch

        if not hasattr(self, "net_"):
            from ..errors import NotFittedError

            raise NotFittedError("NeuralBlocker is not trained yet: call fit() or iter_candidates() first")
        with torch.no_grad():
            Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            U = torch.nn.functional.normalize(Xt + self.net_(Xt), dim=1).numpy()
        return U

    def codes(self, X: np.ndarray) -> np.ndarray:
        """Packed uint64 hash codes (n, ceil(n_bits / 64)) of frozen embeddings ``X``."""
        from ..codes import pack

        return pack(self.project(X) @ self.hyperplanes_ > 0)

    def fit(self, left: RecordTable, right: RecordTable | None = None):
        """Train the projection on the tables (self-supervised or from ``train_pairs``); returns self."""
        XL, okL = self._embed(left)
        XR, okR = (XL, okL) if right is None else self._embed(right)
        self._fit_arrays(left, right, XL, okL, XR, okR)
        return self

    def _fit_arrays(self, left, right, XL, okL, XR, okR):
        A, B = self._positives(left, right, XL, okL, XR, okR)
        self._train(A, B)
        self.fitted_on_ = self._tables_key(left, right)

    @staticmethod
    def _tables_key(left, right):
        return (id(left), len(left), None if right is None else (id(right), len(right)))

    def _candidates(self, left, right):
        k = _check_int("k", self.k)
        XL, okL = self._embed(left)
        XR, okR = (XL, okL) if right is None else self._embed(right)
        if not okL.any() or not okR.any():
            return
        if getattr(self, "fitted_on_", None) != self._tables_key(left, right):
            self._fit_arrays(left, right, XL, okL, XR, okR)
        UL = self.project(XL)
        UR = UL if right is None else self.project(XR)
        CL = self.codes(XL)
        CR = CL if right is None else self.codes(XR)

        def scorer(Q, D, kk, q_ok, d_ok, exclude_self=False):
            from ..codes import knn_search

            qi, di = np.flatnonzero(q_ok), np.flatnonzero(d_ok)
            cq, cd = (CL, CR) if Q is UL else (CR, CL)
            short = min(di.size, (4 * kk if self.rerank else kk) + int(exclude_self))
            _, I = knn_search(cq[qi], cd[di], short, n_bits=int(self.n_bits))
            I = np.where(I >= 0, di[np.maximum(I, 0)], -1)
            if exclude_self:
                I = np.where(I == qi[:, None], -1, I)
            if self.rerank:
                sims = np.einsum("qd,qkd->qk", Q[qi], D[np.maximum(I, 0)])
                sims[I < 0] = -np.inf
                o = np.argsort(-sims, axis=1, kind="stable")
                I = np.take_along_axis(I, o, axis=1)
            else:
                I = np.take_along_axis(I, np.argsort(I < 0, axis=1, kind="stable"), axis=1)
            I = I[:, :kk]
            a = np.repeat(qi, I.shape[1])
            b = I.ravel()
            keep = b >= 0
            return np.stack([a[keep], b[keep]], axis=1).astype(np.int64)

        yield from _chunks(_knn_both_ways(UL, UR, okL, okR, k, right is None, scorer=scorer))


# -- union -----------------------------------------------------------------------------------------
class UnionBlocker(Blocker):
    """The union of several blockers' candidates; each pair is credited to the first blocker (in order)
    that proposed it (:attr:`last_sources_` after a run: pairs per blocker).

    Parameters
    ----------
    blockers : list of Blocker
    """

    name = "union"

    def __init__(self, blockers):
        self.blockers = blockers

    def iter_labelled(self, left, right=None) -> Iterator[tuple[np.ndarray, str]]:
        """``(pairs, blocker name)`` chunks, no pair twice across blockers."""
        if not self.blockers:
            raise ValidationError("a union needs at least one blocker")
        n_right = len(left if right is None else right)
        seen = np.empty(0, dtype=np.int64)
        self.last_sources_ = {}
        for b in self.blockers:
            label = getattr(b, "name", type(b).__name__)
            self.last_sources_.setdefault(label, 0)
            for chunk in b.iter_candidates(left, right):
                codes = chunk[:, 0] * n_right + chunk[:, 1]
                codes = codes[~np.isin(codes, seen)]
                if codes.size == 0:
                    continue
                seen = np.union1d(seen, codes)
                self.last_sources_[label] += int(codes.size)
                yield np.stack([codes // n_right, codes % n_right], axis=1), label

    def _candidates(self, left, right):
        for chunk, _ in self.iter_labelled(left, right):
            yield chunk


# ==================================================================================================
# registry
# ==================================================================================================
BLOCKING_METHODS = {
    "standard": StandardBlocker,
    "sortedneighbourhood": SortedNeighbourhoodBlocker,
    "minhash": MinHashBlocker,
    "simhash": SimHashBlocker,
    "embedding": EmbeddingBlocker,
    "neural": NeuralBlocker,
}
"""Blocking method name -> class (``union:a+b`` combines them)."""

_PARAM_ALIASES = {"sortedneighborhood": "sortedneighbourhood", "sorted_neighbourhood": "sortedneighbourhood",
                  "sn": "sortedneighbourhood"}


def make_blocker(method: str, **params) -> Blocker:
    """A blocker by name; parameters a method does not take are ignored (so one set of CLI options can
    drive every method of a union).

    Parameters
    ----------
    method : str
        One of :data:`BLOCKING_METHODS`, or ``"union:a+b[+c...]"``.
    **params
        Constructor parameters (``threshold``, ``k``, ``on``, ``window``, ``embedder``, ...).

    Raises
    ------
    UnknownMethodError
        Unknown name (the message lists the known ones).
    """
    import inspect

    if not isinstance(method, str) or not method.strip():
        raise UnknownMethodError(f"method must be a non-empty string; known: {', '.join(BLOCKING_METHODS)}, union:a+b")
    m = method.strip().lower()
    if m.startswith("union:"):
        parts = [p.strip() for p in m[len("union:"):].split("+") if p.strip()]
        if len(parts) < 2:
            raise UnknownMethodError(f"a union names at least two methods, as union:minhash+embedding; got {method!r}")
        return UnionBlocker([make_blocker(p, **params) for p in parts])
    m = _PARAM_ALIASES.get(m, m)
    if m not in BLOCKING_METHODS:
        raise UnknownMethodError(f"unknown blocking method {method!r}; known: {', '.join(BLOCKING_METHODS)}, union:a+b")
    cls = BLOCKING_METHODS[m]
    sig = inspect.signature(cls.__init__)
    accepted = {k: v for k, v in params.items() if k in sig.parameters and v is not None}
    return cls(**accepted)


# ==================================================================================================
# metrics and runs
# ==================================================================================================
def blocking_metrics(pairs: np.ndarray, truth: np.ndarray, n_left: int, n_right: int | None = None) -> dict:
    """Pair completeness, reduction ratio and pairs quality of candidate pairs.

    Parameters
    ----------
    pairs : ndarray of shape (m, 2), int
        Candidates (positions); duplicates are counted once. For deduplication (``n_right=None``) the
        order within a pair does not matter.
    truth : ndarray of shape (t, 2), int
        True links, positions.
    n_left, n_right : int
        Table sizes; ``n_right=None`` for deduplication (``n_left (n_left - 1) / 2`` possible pairs).

    Returns
    -------
    dict with ``pair_completeness`` (true links found / true links; 1.0 when there are none),
    ``reduction_ratio`` (1 - candidates / possible pairs), ``pairs_quality`` (true links found /
    candidates; 0.0 when there are no candidates), ``n_candidates``, ``n_true_links``, ``n_found``.

    Examples
    --------
    >>> m = blocking_metrics(np.array([[0, 0], [1, 2]]), np.array([[0, 0], [1, 1]]), 3, 3)
    >>> m["pair_completeness"], round(m["reduction_ratio"], 4), m["pairs_quality"]
    (0.5, 0.7778, 0.5)
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.int64).reshape(-1, 2)
    dedup = n_right is None
    nr = n_left if dedup else int(n_right)
    if dedup:
        pairs = _normalize_dedup(pairs)
        truth = _normalize_dedup(truth)
        total = n_left * (n_left - 1) // 2
    else:
        total = int(n_left) * nr
    pc = np.unique(pairs[:, 0] * nr + pairs[:, 1])
    tc = np.unique(truth[:, 0] * nr + truth[:, 1])
    found = int(np.isin(tc, pc, assume_unique=True).sum())
    return {
        "pair_completeness": found / tc.size if tc.size else 1.0,
        "reduction_ratio": 1.0 - pc.size / total if total else 1.0,
        "pairs_quality": found / pc.size if pc.size else 0.0,
        "n_candidates": int(pc.size),
        "n_true_links": int(tc.size),
        "n_found": found,
    }


def _peak_rss_mib() -> float:
    import resource
    import sys

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


@dataclass(repr=False)
class BlockingRun:
    """Result of :func:`run_blocking`: candidates, the blocker of each, timings and metrics."""

    pairs: np.ndarray
    sources: np.ndarray
    seconds: float
    metrics: dict
    n_left: int
    n_right: int | None
    skipped: dict

    @property
    def candidates_per_second(self) -> float:
        return self.pairs.shape[0] / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict:
        """JSON-able summary: metrics (when truth was given), ``n_candidates``, ``seconds``, etc."""
        out = {"n_candidates": int(self.pairs.shape[0]), "seconds": self.seconds,
               "candidates_per_second": self.candidates_per_second, "peak_rss_mib": _peak_rss_mib(),
               "n_left": self.n_left, "n_right": self.n_right, "skipped": self.skipped}
        labels, counts = np.unique(self.sources, return_counts=True)
        out["pairs_by_blocker"] = {str(a): int(b) for a, b in zip(labels, counts)}
        out.update(self.metrics)
        return out


def run_blocking(blocker: Blocker, left: RecordTable, right: RecordTable | None = None, *,
                 truth: np.ndarray | None = None, on_chunk: Callable | None = None) -> BlockingRun:
    """Run a blocker, timing it and scoring against ``truth``; ``on_chunk(pairs, label)`` sees each chunk
    (to stream them to a file) before it is kept.

    Returns
    -------
    BlockingRun
    """
    t0 = time.perf_counter()
    it = blocker.iter_labelled(left, right) if isinstance(blocker, UnionBlocker) else (
        (c, blocker.name) for c in blocker.iter_candidates(left, right))
    chunks, labels = [], []
    for chunk, label in it:
        if on_chunk is not None:
            on_chunk(chunk, label)
        chunks.append(chunk)
        labels.append(np.full(chunk.shape[0], label, dtype=object))
    seconds = time.perf_counter() - t0
    pairs = np.concatenate(chunks) if chunks else np.empty((0, 2), dtype=np.int64)
    sources = np.concatenate(labels) if labels else np.empty(0, dtype=object)
    nl, nr = len(left), (None if right is None else len(right))
    metrics = blocking_metrics(pairs, truth, nl, nr) if truth is not None else {}
    skipped = {"empty_left": left.n_empty, "missing_cells_left": dict(left.n_missing)}
    if right is not None:
        skipped.update({"empty_right": right.n_empty, "missing_cells_right": dict(right.n_missing)})
    return BlockingRun(pairs, sources, seconds, metrics, nl, nr, skipped)


def write_pairs(path, chunks: Sequence[tuple[np.ndarray, str]] | Iterator, left: RecordTable,
                right: RecordTable | None = None) -> int:
    """Write ``(pairs, blocker)`` chunks to CSV (``left_id,right_id,blocker``) or Parquet, atomically,
    one chunk at a time; returns the number of rows written."""
    from ..io.persist import atomic_write

    other = left if right is None else right
    p = Path(path)
    n = [0]

    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("left_id", pa.string()), ("right_id", pa.string()), ("blocker", pa.string())])

        def write(fh):
            with pq.ParquetWriter(fh, schema) as w:
                for pairs, label in chunks:
                    w.write_table(pa.table({"left_id": left.ids[pairs[:, 0]].astype(str),
                                            "right_id": other.ids[pairs[:, 1]].astype(str),
                                            "blocker": [label] * pairs.shape[0]}, schema=schema))
                    n[0] += pairs.shape[0]
    else:
        import csv
        import io

        def write(fh):
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            w = csv.writer(text)
            w.writerow(["left_id", "right_id", "blocker"])
            for pairs, label in chunks:
                w.writerows(zip(left.ids[pairs[:, 0]], other.ids[pairs[:, 1]], [label] * pairs.shape[0]))
                n[0] += pairs.shape[0]
            text.flush()
            text.detach()

    atomic_write(p, write)
    return n[0]
