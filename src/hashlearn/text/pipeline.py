"""The text retrieval pipeline: embeddings → codes → search → rescoring, and BEIR evaluation.

Functions here do the I/O-free orchestration used by the CLI (``hashlearn text index|search|eval``)
and by ``bench/text_scifact.py``:

* :func:`load_embeddings` — precomputed ``corpus.npy`` / ``queries.npy`` with ``.ids`` files,
  aligned to the corpus and query ids (missing ids are an error naming one of them);
* :func:`make_pseudo_queries` — pseudo-queries from the documents (title, first sentence, random span,
  Contriever-style random crops) for the self-supervised ``bpr`` mode;
* :func:`fit_encoder` — fit any codes spec, ``bpr`` with train-split pairs and/or pseudo-queries;
* :func:`evaluate_codes` — build a :class:`~hashlearn.text.index.TextIndex`, time the search of every
  query, compute BEIR metrics; :func:`evaluate_run` for BM25 / fused results.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from ..errors import DataFileError, ValidationError
from .index import TextIndex, make_encoder, needs_queries
from .metrics import beir_metrics

__all__ = ["load_embeddings", "make_pseudo_queries", "training_pairs", "fit_encoder", "evaluate_codes",
           "evaluate_run", "PSEUDO_STRATEGIES"]

PSEUDO_STRATEGIES = ("title", "first_sentence", "span", "crop")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFileError(f"{path}: no such file (each .npy needs a .ids file, one id per line)")
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n\r") for line in fh if line.strip()]


def load_embeddings(folder, name: str, wanted_ids) -> np.ndarray:
    """Rows of ``folder/<name>.npy`` in the order of ``wanted_ids`` (ids from ``folder/<name>.ids``).

    Raises :class:`DataFileError` when the files disagree in length or an id is missing.
    """
    from ..io.readers import read_npy

    folder = Path(folder)
    ids = _read_ids(folder / f"{name}.ids")
    X = np.asarray(read_npy(folder / f"{name}.npy", mmap=True))
    if X.ndim != 2 or X.shape[0] != len(ids):
        raise DataFileError(f"{folder / (name + '.npy')}: shape {X.shape} does not match {len(ids)} ids in {name}.ids")
    row = {i: r for r, i in enumerate(ids)}
    missing = [i for i in wanted_ids if i not in row]
    if missing:
        raise DataFileError(f"{folder}: {len(missing)} {name} ids have no embedding (e.g. {missing[0]!r})")
    out = np.ascontiguousarray(X[[row[i] for i in wanted_ids]], dtype=np.float32)
    if not np.isfinite(out).all():
        raise DataFileError(f"{folder / (name + '.npy')}: contains NaN or infinite values")
    return out


def make_pseudo_queries(titles, texts, *, strategy: str = "title", span_words: tuple = (8, 24),
                        crop_ratio: tuple = (0.1, 0.5), per_doc: int = 1,
                        random_state=None) -> tuple[list[str], np.ndarray]:
    """Pseudo-queries made from the documents themselves (offline stand-in for GenQ / GPL queries).

    Parameters
    ----------
    titles, texts : lists of str (same length)
    strategy : {"title", "first_sentence", "span", "crop"}
        ``title``: the title (documents without one: their first sentence); ``first_sentence``;
        ``span``: a random run of ``span_words`` words of the text; ``crop``: an independent random crop
        of the text as in Contriever ("Unsupervised Dense Information Retrieval with Contrastive
        Learning", Izacard et al., 2021): ``crop_ratio`` (uniform) of its words, at least
        ``span_words[0]`` and at most ``span_words[1]`` words — the label-free (crop, document) pairs.
    per_doc : int, default 1
        Queries drawn per document (``span`` and ``crop``; ``title``/``first_sentence`` give one).

    Returns
    -------
    queries : list of str; doc_rows : int64 (n_pseudo,) — the document each query came from.
    Documents yielding no text (empty) yield no query.
    """
    if strategy not in PSEUDO_STRATEGIES:
        raise ValidationError(f"pseudo-query strategy must be one of {', '.join(PSEUDO_STRATEGIES)}; got {strategy!r}")
    if len(titles) != len(texts):
        raise ValidationError(f"got {len(titles)} titles but {len(texts)} texts")
    if not isinstance(per_doc, int) or per_doc < 1:
        raise ValidationError(f"per_doc must be a positive integer, got {per_doc!r}")
    lo, hi = crop_ratio
    if not 0 < lo <= hi <= 1:
        raise ValidationError(f"crop_ratio must satisfy 0 < low <= high <= 1, got {crop_ratio!r}")
    rng = np.random.default_rng(random_state)
    queries, rows = [], []
    repeats = per_doc if strategy in ("span", "crop") else 1
    for i, (title, text) in enumerate(zip(titles, texts)):
        for _ in range(repeats):
            q = _pseudo_query(strategy, title, text, span_words, crop_ratio, rng)
            if q:
                queries.append(q)
                rows.append(i)
    return queries, np.asarray(rows, dtype=np.int64)


def _pseudo_query(strategy, title, text, span_words, crop_ratio, rng) -> str:
    if strategy == "title":
        return (title or "").strip() or _first_sentence(text)
    if strategy == "first_sentence":
        return _first_sentence(text) or (title or "").strip()
    words = text.split()
    if not words:
        return ""
    lo, hi = span_words
    if strategy == "span":
        length = int(rng.integers(lo, hi + 1))
    else:  # crop: a share of the document, clipped to [lo, hi] words and to the document
        length = min(max(int(round(rng.uniform(*crop_ratio) * len(words))), lo), hi)
    length = min(length, len(words))
    start = int(rng.integers(0, max(1, len(words) - length + 1)))
    return " ".join(words[start:start + length])


def _first_sentence(text: str) -> str:
    text = (text or "").strip()
    return _SENTENCE.split(text, maxsplit=1)[0].strip() if text else ""


def training_pairs(qrels: dict, query_ids, doc_ids) -> tuple[np.ndarray, dict]:
    """``(m, 2)`` int64 ``(query row, doc row)`` pairs of the positive judgements, and counts of what was skipped."""
    qrow = {q: i for i, q in enumerate(query_ids)}
    drow = {d: i for i, d in enumerate(doc_ids)}
    pairs, unknown_q, unknown_d = [], 0, 0
    for q, rel in qrels.items():
        for d, s in rel.items():
            if s <= 0:
                continue
            if q not in qrow:
                unknown_q += 1
            elif d not in drow:
                unknown_d += 1
            else:
                pairs.append((qrow[q], drow[d]))
    if not pairs:
        raise ValidationError("the training split has no usable (query, document) pair")
    return np.asarray(pairs, dtype=np.int64), {"pairs": len(pairs), "unknown_queries": unknown_q,
                                               "unknown_documents": unknown_d}


def fit_encoder(spec: str, X: np.ndarray, *, queries=None, pairs=None, pseudo_queries=None, pseudo_docs=None,
                random_state=0, params: dict | None = None):
    """A fitted encoder for a codes spec (``None`` for ``float``); codes trained with queries (``bpr``,
    ``jpq``, ``repconc``: :func:`~hashlearn.text.index.needs_queries`) take the supervision arguments."""
    encoder = make_encoder(spec, X.shape[1], random_state=random_state, **(params or {}))
    if encoder is None:
        return None
    if needs_queries(spec):
        supervision = {k: v for k, v in (("queries", queries), ("pairs", pairs), ("pseudo_queries", pseudo_queries),
                                         ("pseudo_docs", pseudo_docs)) if v is not None}
        return encoder.fit(X, **supervision)
    return encoder.fit(X)


def evaluate_codes(encoder, X, Qe, query_ids, doc_ids, qrels, *, codes: str, rescore: str = "none",
                   candidates: int = 100, asymmetric: bool = False, k: int = 100, repeats: int = 3) -> tuple[dict, tuple]:
    """Index ``X`` with ``encoder``, search ``Qe``, return ``(row, (scores, positions))``.

    ``row`` holds ``ndcg@10``, ``recall@100`` (and @10, MRR), ``bytes_per_doc`` (the searched part),
    ``rescore_bytes_per_doc``, ``total_bytes_per_doc`` and ``queries_per_s`` (query codes + first
    stage + rescoring, best of ``repeats`` runs; query embedding not included).
    """
    index = TextIndex(encoder, rescore=rescore, candidates=candidates, asymmetric=asymmetric, codes=codes)
    index.add(X, doc_ids)
    kk = min(k, index.ntotal)
    best = np.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        scores, pos = index.search(Qe, kk)
        best = min(best, time.perf_counter() - t0)
    if kk < k:
        pad = k - kk
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        pos = np.pad(pos, ((0, 0), (0, pad)), constant_values=-1)
    row = {"codes": codes, "rescore": index.rescore, "candidates": candidates if index.rescore != "none" else None,
           "asymmetric": index.asymmetric, "bits": index.n_bits}
    row.update(beir_metrics(pos, query_ids, doc_ids, qrels))
    mem = index.bytes_per_doc()
    row.update({"bytes_per_doc": mem["searched"], "rescore_bytes_per_doc": mem["rescore"],
                "total_bytes_per_doc": mem["total"], "queries_per_s": len(query_ids) / best,
                "search_seconds": best})
    for attr in ("dev_score_", "init_dev_score_", "best_epoch_"):
        if hasattr(encoder, attr):
            row[f"bpr_{attr.rstrip('_')}"] = getattr(encoder, attr)
    return row, (scores, pos)


def evaluate_run(name: str, scores, pos, query_ids, doc_ids, qrels, *, seconds: float | None = None,
                 bytes_per_doc=None) -> dict:
    """A result row for an externally computed run (BM25, a fusion)."""
    row = {"codes": name, "rescore": None, "bits": None}
    row.update(beir_metrics(pos, query_ids, doc_ids, qrels))
    row.update({"bytes_per_doc": bytes_per_doc, "queries_per_s": (len(query_ids) / seconds) if seconds else None,
                "search_seconds": seconds})
    return row
