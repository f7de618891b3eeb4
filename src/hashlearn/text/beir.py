"""Reading corpora, queries and relevance judgements in the BEIR format, with every anomaly counted.

BEIR layout (Thakur et al., "BEIR: A Heterogeneous Benchmark for Zero-shot Evaluation of Information
Retrieval Models", 2021)::

    DIR/corpus.jsonl     {"_id": ..., "title": ..., "text": ...} per line
    DIR/queries.jsonl    {"_id": ..., "text": ...} per line
    DIR/qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score   (one header line)

Handling of bad input (decided here, reported in :class:`ReadReport`, never silent):

* **non-UTF-8 bytes**: decoded with U+FFFD replacement characters; the lines are counted
  (``errors="strict"`` raises :class:`~hashlearn.errors.DataFileError` naming the line instead);
* **malformed lines** (not JSON, not an object, no ``_id``): :class:`DataFileError` naming file and line;
* **duplicate ids**: :class:`DataFileError` naming the id and both lines (``duplicates="first"`` keeps
  the first occurrence and counts the others);
* **empty documents** (no title and no text after stripping): skipped and counted, their ids kept in
  the report (an empty text has no meaning for BM25 nor for an embedding model);
* **queries without qrels**: not evaluated (as in BEIR) and counted; qrels naming an unknown query or
  document are counted too.

Corpora larger than memory: :func:`iter_corpus` streams documents one at a time (constant memory);
the indexing pipeline consumes it in batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import DataFileError, ValidationError

__all__ = ["Document", "ReadReport", "Corpus", "BeirData", "iter_corpus", "read_corpus", "read_queries",
           "read_qrels", "load_beir"]

_MAX_LISTED = 20


@dataclass
class Document:
    """One document: ``id``, ``title``, ``text``; :attr:`full_text` is ``title + " " + text``."""

    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        return f"{self.title} {self.text}".strip() if self.title else self.text.strip()


@dataclass
class ReadReport:
    """What reading a file met: counts of lines, kept records and every kind of anomaly."""

    path: str = ""
    lines: int = 0
    kept: int = 0
    blank_lines: int = 0
    non_utf8_lines: int = 0
    duplicate_ids: int = 0
    empty_documents: int = 0
    empty_ids: list = field(default_factory=list)
    duplicate_examples: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(vars(self))

    def summary(self) -> str:
        parts = [f"{self.kept} kept of {self.lines} lines"]
        for name in ("blank_lines", "non_utf8_lines", "duplicate_ids", "empty_documents"):
            value = getattr(self, name)
            if value:
                parts.append(f"{value} {name.replace('_', ' ')}")
        return f"{self.path}: " + ", ".join(parts)


def _iter_json_lines(path: Path, errors: str, report: ReadReport) -> Iterator[tuple[int, dict]]:
    if errors not in ("replace", "strict"):
        raise ValidationError(f"errors must be 'replace' or 'strict', got {errors!r}")
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    report.path = str(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            report.lines += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if errors == "strict":
                    raise DataFileError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
                report.non_utf8_lines += 1
                line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                report.blank_lines += 1
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}:{lineno}: not a JSON line ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataFileError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            if "_id" not in obj:
                raise DataFileError(f"{path}:{lineno}: record has no '_id' field")
            yield lineno, obj


def _field(obj: dict, name: str, path: Path, lineno: int) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataFileError(f"{path}:{lineno}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def iter_corpus(path, *, errors: str = "replace", duplicates: str = "error",
                report: ReadReport | None = None) -> Iterator[Document]:
    """Stream the documents of a BEIR ``corpus.jsonl`` one at a time (constant memory but the id set).

    Parameters
    ----------
    path : str or Path
    errors : {"replace", "strict"}
        Non-UTF-8 bytes: replaced (and counted) or an error.
    duplicates : {"error", "first"}
        A repeated ``_id``: an error naming both lines, or keep the first one (and count).
    report : ReadReport, optional
        Filled while iterating (counts of lines, kept, anomalies).
    """
    if duplicates not in ("error", "first"):
        raise ValidationError(f"duplicates must be 'error' or 'first', got {duplicates!r}")
    report = report if report is not None else ReadReport()
    path = Path(path)
    seen: dict[str, int] = {}
    for lineno, obj in _iter_json_lines(path, errors, report):
        doc_id = str(obj["_id"])
        if doc_id in seen:
            if duplicates == "error":
                raise DataFileError(f"{path}:{lineno}: duplicate document id {doc_id!r} (first seen on line "
                                    f"{seen[doc_id]}); pass duplicates='first' to keep the first one")
            report.duplicate_ids += 1
            if len(report.duplicate_examples) < _MAX_LISTED:
                report.duplicate_examples.append(doc_id)
            continue
        seen[doc_id] = lineno
        doc = Document(doc_id, _field(obj, "title", path, lineno), _field(obj, "text", path, lineno))
        if not doc.full_text:
            report.empty_documents += 1
            if len(report.empty_ids) < _MAX_LISTED:
                report.empty_ids.append(doc_id)
            continue
        report.kept += 1
        yield doc


@dataclass
class Corpus:
    """Documents in memory: parallel lists ``ids``, ``titles``, ``texts`` and the read report."""

    ids: list
    titles: list
    texts: list
    report: ReadReport

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def full_texts(self) -> list[str]:
        return [f"{t} {x}".strip() if t else x.strip() for t, x in zip(self.titles, self.texts)]

    @classmethod
    def from_documents(cls, docs, report: ReadReport | None = None) -> "Corpus":
        ids, titles, texts = [], [], []
        for d in docs:
            ids.append(d.id)
            titles.append(d.title)
            texts.append(d.text)
        return cls(ids, titles, texts, report or ReadReport(kept=len(ids), lines=len(ids)))


def read_corpus(path, *, errors: str = "replace", duplicates: str = "error") -> Corpus:
    """Read a whole ``corpus.jsonl`` (see :func:`iter_corpus` for the handling of bad input)."""
    report = ReadReport()
    corpus = Corpus.from_documents(iter_corpus(path, errors=errors, duplicates=duplicates, report=report), report)
    if len(corpus) == 0:
        raise DataFileError(f"{path}: no usable document ({report.summary()})")
    return corpus


def read_queries(path, *, errors: str = "replace") -> tuple[list[str], list[str], ReadReport]:
    """``(ids, texts, report)`` of a BEIR ``queries.jsonl``; duplicate ids and empty queries are errors."""
    report = ReadReport()
    path = Path(path)
    ids, texts, seen = [], [], {}
    for lineno, obj in _iter_json_lines(path, errors, report):
        qid = str(obj["_id"])
        if qid in seen:
            raise DataFileError(f"{path}:{lineno}: duplicate query id {qid!r} (first seen on line {seen[qid]})")
        seen[qid] = lineno
        text = _field(obj, "text", path, lineno).strip()
        if not text:
            report.empty_documents += 1
            if len(report.empty_ids) < _MAX_LISTED:
                report.empty_ids.append(qid)
            continue
        ids.append(qid)
        texts.append(text)
        report.kept += 1
    return ids, texts, report


def read_qrels(path) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: score}}`` from a BEIR qrels TSV (header line optional)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n\r").split("\t")
            if not line.strip():
                continue
            if lineno == 1 and parts[0].lower() in ("query-id", "query_id", "qid"):
                continue
            if len(parts) != 3:
                raise DataFileError(f"{path}:{lineno}: expected 3 tab-separated fields, got {len(parts)}")
            try:
                score = int(float(parts[2]))
            except ValueError:
                raise DataFileError(f"{path}:{lineno}: relevance score {parts[2]!r} is not a number") from None
            qrels.setdefault(parts[0], {})[parts[1]] = score
    if not qrels:
        raise DataFileError(f"{path}: no judgements")
    return qrels


@dataclass
class BeirData:
    """A BEIR dataset: corpus, queries, and the qrels of the evaluated split (plus counts of anomalies)."""

    corpus: Corpus
    query_ids: list
    query_texts: list
    qrels: dict
    split: str
    report: dict

    def judged_queries(self) -> tuple[list[str], list[str]]:
        """Ids and texts of the queries that have at least one positive judgement in :attr:`qrels`."""
        ids, texts = [], []
        for qid, text in zip(self.query_ids, self.query_texts):
            if any(s > 0 for s in self.qrels.get(qid, {}).values()):
                ids.append(qid)
                texts.append(text)
        return ids, texts


def load_beir(folder, split: str = "test", *, errors: str = "replace", duplicates: str = "error") -> BeirData:
    """Load ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` of a BEIR folder.

    The returned :attr:`BeirData.report` counts queries without judgements, judgements that name an
    unknown query or document, and the per-file read reports.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder (expected a BEIR dataset with corpus.jsonl, queries.jsonl, qrels/)")
    corpus = read_corpus(folder / "corpus.jsonl", errors=errors, duplicates=duplicates)
    qids, qtexts, qreport = read_queries(folder / "queries.jsonl", errors=errors)
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    doc_set, query_set = set(corpus.ids), set(qids)
    unknown_q = sorted(q for q in qrels if q not in query_set)
    unknown_d = sum(1 for rel in qrels.values() for d in rel if d not in doc_set)
    report = {
        "corpus": corpus.report.as_dict(),
        "queries": qreport.as_dict(),
        "split": split,
        "queries_total": len(qids),
        "queries_judged": sum(1 for q in qids if any(s > 0 for s in qrels.get(q, {}).values())),
        "queries_without_qrels": sum(1 for q in qids if q not in qrels),
        "qrels_unknown_queries": len(unknown_q),
        "qrels_unknown_documents": unknown_d,
    }
    return BeirData(corpus, qids, qtexts, qrels, split, report)
