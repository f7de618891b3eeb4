"""``hashlearn text eval``: one BEIR evaluation over several codes, rescoring modes, BM25 and hybrids.

:func:`beir_eval` returns a JSON-ready dict ``{"rows": [...], "report": {...}}``; each row holds
``ndcg@10``, ``recall@100``, ``bytes_per_doc`` (the searched part), ``queries_per_s`` and more (see
:func:`hashlearn.text.pipeline.evaluate_codes`). Codes trained with queries (``bpr``, ``jpq``,
``repconc``: :func:`~hashlearn.text.index.needs_queries`) are trained on ``train_split`` (queries and
qrels of that split only; a dev split is carved from it for early stopping) and/or on pseudo-queries
from the corpus — never on the evaluated split.

The steps, one function each: :func:`_embeddings` (corpus, evaluated and training queries),
:func:`_supervision` (train-split pairs and pseudo-queries), :func:`_dense_rows` (fit and search each
codes spec), :func:`_lexical_rows` (BM25 and its fusions with each dense row).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import ValidationError
from .beir import load_beir, read_qrels
from .index import RESCORE_MODES, is_quantizer, make_encoder, needs_queries, parse_codes
from .pipeline import evaluate_codes, evaluate_run, load_embeddings, make_pseudo_queries, training_pairs

__all__ = ["beir_eval"]


def beir_eval(folder, *, codes=("float", "sign"), rescore=("none",), candidates: int = 100,
              asymmetric: bool = False, split: str = "test", train_split: str | None = None,
              pseudo: str = "auto", embeddings=None, model: str = "all-MiniLM-L6-v2", cache_dir=None,
              bm25: bool = False, hybrid: bool = False, hybrid_weight: float = 0.5, seed: int = 0,
              bpr_params: dict | None = None, method_params: dict | None = None, batch_size: int = 64,
              show_progress: bool = True, log=None) -> dict:
    """Evaluate codes on a BEIR folder; see the module docstring.

    Parameters
    ----------
    folder : path of the BEIR dataset
    codes : list of codes specs (``float``, ``sign``, ``msign``, ``METHOD:BITS``, ``bpr:BITS``,
        ``pq:BYTES``, ``opq:BYTES``, ``rq:BYTES``, ``jpq:BYTES``, ``repconc:BYTES``)
    rescore : list of modes among ``none``, ``asym``, ``float``, ``int8`` (applied to binary codes;
        quantized codes take ``none``, ``float`` and ``int8``)
    pseudo : ``auto`` (= ``title``: titles, or first sentences, as pseudo-queries, alongside the train
        split if any), ``none`` or a strategy of :data:`~hashlearn.text.pipeline.PSEUDO_STRATEGIES`;
        pseudo-queries are embedded with ``model`` (also when ``embeddings`` are given: use the same model)
    embeddings : folder with ``corpus.npy``/``queries.npy`` + ``.ids`` (else embed with ``model``)
    bm25, hybrid : add BM25, and BM25 + dense fusions (RRF and score interpolation) of each dense row
    bpr_params : extra constructor parameters of the ``bpr`` codes
    method_params : ``{method name: {parameter: value}}``, extra constructor parameters of other codes
        (e.g. ``{"jpq": {"epochs": 10}}``)
    """
    log = log or (lambda msg: None)
    codes, rescore = _check_arguments(codes, rescore, split, train_split)
    data = load_beir(folder, split)
    qids, qtexts = data.judged_queries()
    if not qids:
        raise ValidationError(f"{folder}: no query of split {split!r} has a positive judgement")
    report = dict(data.report)
    report["queries_evaluated"] = len(qids)
    supervised = [s for s in codes if needs_queries(s)]
    embedder = _LazyEmbedder(model, batch_size, cache_dir, show_progress)
    train_qrels, train_qids = (None, [])
    if supervised and train_split is not None:
        train_qrels, train_qids = _train_queries(folder, data, qids, split, train_split)
    X, Qe, Qtrain = _embeddings(data, qids, qtexts, train_qids, embeddings, embedder, report)
    supervision = {}
    if supervised:
        supervision = _supervision(data, train_qrels, train_qids, Qtrain, train_split, pseudo, seed, embedder,
                                   report, log)
        if not supervision:
            raise ValidationError(f"{', '.join(supervised)} codes need --train-split or pseudo-queries "
                                  "(--pseudo title|first_sentence|span)")
    params = dict(method_params or {})
    if bpr_params:
        params["bpr"] = {**params.get("bpr", {}), **bpr_params}
    rows, runs = _dense_rows(codes, rescore, X, Qe, qids, data, supervision, seed=seed, params=params,
                             candidates=candidates, asymmetric=asymmetric, log=log)
    if bm25 or hybrid:
        rows += _lexical_rows(data, qids, qtexts, runs, hybrid=hybrid, hybrid_weight=hybrid_weight, log=log)
    out = {"dataset": str(folder), "split": split, "rows": rows, "report": report}
    if rows:
        for key in ("ndcg@10", "recall@100", "bytes_per_doc", "queries_per_s"):
            out[key] = rows[0][key]
    return out


def _check_arguments(codes, rescore, split, train_split) -> tuple[list, list]:
    codes, rescore = list(codes), list(rescore)
    for spec in codes:
        parse_codes(spec)
    for mode in rescore:
        if mode not in RESCORE_MODES:
            raise ValidationError(f"rescore must be among {', '.join(RESCORE_MODES)}; got {mode!r}")
    if train_split is not None and train_split == split:
        raise ValidationError(f"the train split and the evaluated split are both {split!r}: training on the "
                              "test queries is not allowed")
    return codes, rescore


class _LazyEmbedder:
    """The query/document embedder, created on first use (not at all when embeddings are given)."""

    def __init__(self, model, batch_size, cache_dir, show_progress):
        self._args = (model, batch_size, cache_dir, show_progress)
        self._embedder = None

    def get(self):
        if self._embedder is None:
            from ..embed import Embedder

            model, batch_size, cache_dir, show_progress = self._args
            self._embedder = Embedder(model, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress)
        return self._embedder


def _train_queries(folder, data, qids, split, train_split) -> tuple[dict, list]:
    """Judgements of the train split and its query ids that have a text; refuses any evaluated query."""
    train_qrels = read_qrels(Path(folder) / "qrels" / f"{train_split}.tsv")
    overlap = set(train_qrels) & set(qids)
    if overlap:
        raise ValidationError(f"{len(overlap)} queries are judged in both {train_split!r} and {split!r} "
                              f"(e.g. {sorted(overlap)[0]!r}); refusing to train on evaluated queries")
    known = set(data.query_ids)
    return train_qrels, [q for q in train_qrels if q in known]


def _embeddings(data, qids, qtexts, train_qids, embeddings, embedder: _LazyEmbedder, report: dict):
    """(corpus (n, d), evaluated queries (nq, d), training queries or None), loaded or embedded."""
    corpus = data.corpus
    if embeddings is not None:
        X = load_embeddings(embeddings, "corpus", corpus.ids)
        Qe = load_embeddings(embeddings, "queries", qids)
        Qtrain = load_embeddings(embeddings, "queries", train_qids) if train_qids else None
        report["embeddings"] = str(embeddings)
    else:
        emb = embedder.get()
        t0 = time.perf_counter()
        X = emb.encode(corpus.full_texts)
        report["embed_corpus_seconds"] = time.perf_counter() - t0
        report["embed_docs_per_s"] = len(corpus) / max(report["embed_corpus_seconds"], 1e-9)
        t0 = time.perf_counter()
        Qe = emb.encode(qtexts)
        report["embed_queries_per_s"] = len(qtexts) / max(time.perf_counter() - t0, 1e-9)
        qid_text = dict(zip(data.query_ids, data.query_texts))
        Qtrain = emb.encode([qid_text[q] for q in train_qids]) if train_qids else None
        report["model"] = emb.model_id
    report["dim"] = int(X.shape[1])
    return X, Qe, Qtrain


def _supervision(data, train_qrels, train_qids, Qtrain, train_split, pseudo, seed, embedder: _LazyEmbedder,
                 report: dict, log) -> dict:
    """Training signal of the query-trained codes: train-split (query, document) pairs and/or pseudo-queries."""
    corpus = data.corpus
    supervision = {}
    if train_qids:
        pairs, counts = training_pairs(train_qrels, train_qids, corpus.ids)
        supervision.update(queries=Qtrain, pairs=pairs)
        report["train"] = {"split": train_split, "queries": len(train_qids), **counts}
    strategy = "title" if pseudo == "auto" else pseudo
    if strategy != "none":
        ptexts, prows = make_pseudo_queries(corpus.titles, corpus.texts, strategy=strategy, random_state=seed)
        log(f"embedding {len(ptexts)} pseudo-queries ({strategy})")
        supervision.update(pseudo_queries=embedder.get().encode(ptexts), pseudo_docs=prows)
        report["pseudo_queries"] = {"strategy": strategy, "count": len(ptexts)}
    return supervision


def _fit_codes(spec: str, X, *, seed: int, params: dict | None, supervision: dict):
    """Fitted encoder of a codes spec (None for ``float``); query-trained codes get ``supervision``."""
    encoder = make_encoder(spec, X.shape[1], random_state=seed, **(params or {}))
    if encoder is None:
        return None
    return encoder.fit(X, **supervision) if needs_queries(spec) else encoder.fit(X)


def _dense_rows(codes, rescore, X, Qe, qids, data, supervision, *, seed, params: dict, candidates, asymmetric,
                log) -> tuple[list, list]:
    """One row per (codes spec, rescoring mode), and the runs ``(row, (scores, positions))`` for fusion."""
    rows, runs = [], []
    for spec in codes:
        name, _ = parse_codes(spec)
        log(f"fitting {spec}")
        t0 = time.perf_counter()
        encoder = _fit_codes(spec, X, seed=seed, params=params.get(name),
                             supervision=supervision if needs_queries(spec) else {})
        fit_s = time.perf_counter() - t0
        if encoder is None:
            modes = ["none"]
        elif is_quantizer(encoder):  # ADC is already asymmetric: 'asym' rescoring is for binary codes
            modes = [m for m in rescore if m != "asym"] or ["none"]
        else:
            modes = rescore
        for mode in modes:
            log(f"searching {spec} rescore={mode}")
            row, run = evaluate_codes(encoder, X, Qe, qids, data.corpus.ids, data.qrels, codes=spec, rescore=mode,
                                      candidates=candidates, asymmetric=asymmetric)
            row["fit_seconds"] = fit_s
            rows.append(row)
            runs.append((row, run))
    return rows, runs


def _lexical_rows(data, qids, qtexts, runs, *, hybrid: bool, hybrid_weight: float, log) -> list:
    """BM25, and with ``hybrid`` its RRF and score fusions with each dense run."""
    from .lexical import BM25, reciprocal_rank_fusion, score_fusion

    corpus = data.corpus
    log("BM25")
    bm = BM25().fit(corpus.full_texts)
    t0 = time.perf_counter()
    bs, bp = bm.search(qtexts, k=100)
    bm_s = time.perf_counter() - t0
    rows = [evaluate_run("bm25", bs, bp, qids, corpus.ids, data.qrels, seconds=bm_s)]
    if not hybrid:
        return rows
    for row, (ds, dp) in runs:
        label = row["codes"] + (f"+{row['rescore']}" if row["rescore"] not in (None, "none") else "")
        t0 = time.perf_counter()
        rs, rp = reciprocal_rank_fusion([bp, dp], k=100)
        r_s = time.perf_counter() - t0
        rows.append(evaluate_run(f"hybrid-rrf(bm25, {label})", rs, rp, qids, corpus.ids, data.qrels,
                                 seconds=bm_s + row["search_seconds"] + r_s, bytes_per_doc=row["bytes_per_doc"]))
        t0 = time.perf_counter()
        ss, sp = score_fusion([(bs, bp), (ds, dp)], k=100, weights=[hybrid_weight, 1 - hybrid_weight])
        s_s = time.perf_counter() - t0
        rows.append(evaluate_run(f"hybrid-score(bm25, {label}, w={hybrid_weight})", ss, sp, qids, corpus.ids,
                                 data.qrels, seconds=bm_s + row["search_seconds"] + s_s,
                                 bytes_per_doc=row["bytes_per_doc"]))
    return rows
