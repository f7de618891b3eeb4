"""``hashlearn text eval``: one BEIR evaluation over several codes, rescoring modes, BM25 and hybrids.

:func:`beir_eval` returns a JSON-ready dict ``{"rows": [...], "report": {...}}``; each row holds
``ndcg@10``, ``recall@100``, ``bytes_per_doc`` (the searched part), ``queries_per_s`` and more (see
:func:`hashlearn.text.pipeline.evaluate_codes`). The ``bpr`` codes are trained on ``train_split``
(queries and qrels of that split only; a dev split is carved from it for early stopping) and/or on
pseudo-queries from the corpus — never on the evaluated split.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import ValidationError
from .beir import load_beir, read_qrels
from .index import RESCORE_MODES, parse_codes
from .pipeline import (
    evaluate_codes,
    evaluate_run,
    fit_encoder,
    load_embeddings,
    make_pseudo_queries,
    training_pairs,
)

__all__ = ["beir_eval"]


def beir_eval(folder, *, codes=("float", "sign"), rescore=("none",), candidates: int = 100,
              asymmetric: bool = False, split: str = "test", train_split: str | None = None,
              pseudo: str = "auto", embeddings=None, model: str = "all-MiniLM-L6-v2", cache_dir=None,
              bm25: bool = False, hybrid: bool = False, hybrid_weight: float = 0.5, seed: int = 0,
              bpr_params: dict | None = None, batch_size: int = 64, show_progress: bool = True,
              log=None) -> dict:
    """Evaluate codes on a BEIR folder; see the module docstring.

    Parameters
    ----------
    folder : path of the BEIR dataset
    codes : list of codes specs (``float``, ``sign``, ``msign``, ``METHOD:BITS``, ``bpr:BITS``)
    rescore : list of modes among ``none``, ``asym``, ``float``, ``int8`` (applied to binary codes)
    pseudo : ``auto`` (= ``title``: titles, or first sentences, as pseudo-queries, alongside the train
        split if any), ``none`` or a strategy of :data:`~hashlearn.text.pipeline.PSEUDO_STRATEGIES`;
        pseudo-queries are embedded with ``model`` (also when ``embeddings`` are given: use the same model)
    embeddings : folder with ``corpus.npy``/``queries.npy`` + ``.ids`` (else embed with ``model``)
    bm25, hybrid : add BM25, and BM25 + dense fusions (RRF and score interpolation) of each dense row
    """
    log = log or (lambda msg: None)
    codes = list(codes)
    rescore = list(rescore)
    for spec in codes:
        parse_codes(spec)
    for mode in rescore:
        if mode not in RESCORE_MODES:
            raise ValidationError(f"rescore must be among {', '.join(RESCORE_MODES)}; got {mode!r}")
    if train_split is not None and train_split == split:
        raise ValidationError(f"the train split and the evaluated split are both {split!r}: training on the "
                              "test queries is not allowed")
    data = load_beir(folder, split)
    corpus = data.corpus
    qids, qtexts = data.judged_queries()
    if not qids:
        raise ValidationError(f"{folder}: no query of split {split!r} has a positive judgement")
    report = dict(data.report)
    report["queries_evaluated"] = len(qids)
    needs_bpr = any(parse_codes(s)[0] == "bpr" for s in codes)

    # -- embeddings --------------------------------------------------------------------------------
    embedder = None
    qid_text = dict(zip(data.query_ids, data.query_texts))
    train_qrels, train_qids = None, []
    if needs_bpr and train_split is not None:
        train_qrels = read_qrels(Path(folder) / "qrels" / f"{train_split}.tsv")
        overlap = set(train_qrels) & set(qids)
        if overlap:
            raise ValidationError(f"{len(overlap)} queries are judged in both {train_split!r} and {split!r} "
                                  f"(e.g. {sorted(overlap)[0]!r}); refusing to train on evaluated queries")
        train_qids = [q for q in train_qrels if q in qid_text]
    if embeddings is not None:
        X = load_embeddings(embeddings, "corpus", corpus.ids)
        Qe = load_embeddings(embeddings, "queries", qids)
        Qtrain = load_embeddings(embeddings, "queries", train_qids) if train_qids else None
        report["embeddings"] = str(embeddings)
    else:
        from ..embed import Embedder

        embedder = Embedder(model, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress)
        t0 = time.perf_counter()
        X = embedder.encode(corpus.full_texts)
        report["embed_corpus_seconds"] = time.perf_counter() - t0
        report["embed_docs_per_s"] = len(corpus) / max(report["embed_corpus_seconds"], 1e-9)
        t0 = time.perf_counter()
        Qe = embedder.encode(qtexts)
        report["embed_queries_per_s"] = len(qtexts) / max(time.perf_counter() - t0, 1e-9)
        Qtrain = embedder.encode([qid_text[q] for q in train_qids]) if train_qids else None
        report["model"] = embedder.model_id
    report["dim"] = int(X.shape[1])

    supervision = {}
    if needs_bpr:
        if train_qids:
            pairs, counts = training_pairs(train_qrels, train_qids, corpus.ids)
            supervision.update(queries=Qtrain, pairs=pairs)
            report["train"] = {"split": train_split, "queries": len(train_qids), **counts}
        strategy = "title" if pseudo == "auto" else pseudo
        if strategy != "none":
            ptexts, prows = make_pseudo_queries(corpus.titles, corpus.texts, strategy=strategy, random_state=seed)
            if embedder is None:
                from ..embed import Embedder

                embedder = Embedder(model, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress)
            log(f"embedding {len(ptexts)} pseudo-queries ({strategy})")
            supervision.update(pseudo_queries=embedder.encode(ptexts), pseudo_docs=prows)
            report["pseudo_queries"] = {"strategy": strategy, "count": len(ptexts)}
        if not supervision:
            raise ValidationError("bpr codes need --train-split or pseudo-queries (--pseudo title|first_sentence|span)")

    # -- dense rows ---------------------------------------------------------------------------------
    rows, runs = [], []
    for spec in codes:
        name, _ = parse_codes(spec)
        log(f"fitting {spec}")
        t0 = time.perf_counter()
        encoder = fit_encoder(spec, X, random_state=seed, params=bpr_params if name == "bpr" else None,
                              **(supervision if name == "bpr" else {}))
        fit_s = time.perf_counter() - t0
        modes = ["none"] if encoder is None else rescore
        for mode in modes:
            log(f"searching {spec} rescore={mode}")
            row, run = evaluate_codes(encoder, X, Qe, qids, corpus.ids, data.qrels, codes=spec, rescore=mode,
                                      candidates=candidates, asymmetric=asymmetric)
            row["fit_seconds"] = fit_s
            rows.append(row)
            runs.append((row, run))

    # -- BM25 and hybrids ---------------------------------------------------------------------------
    if bm25 or hybrid:
        from .lexical import BM25, reciprocal_rank_fusion, score_fusion

        log("BM25")
        bm = BM25().fit(corpus.full_texts)
        t0 = time.perf_counter()
        bs, bp = bm.search(qtexts, k=100)
        bm_s = time.perf_counter() - t0
        rows.append(evaluate_run("bm25", bs, bp, qids, corpus.ids, data.qrels, seconds=bm_s))
        if hybrid:
            for row, (ds, dp) in runs:
                label = row["codes"] + (f"+{row['rescore']}" if row["rescore"] not in (None, "none") else "")
                t0 = time.perf_counter()
                rs, rp = reciprocal_rank_fusion([bp, dp], k=100)
                r_s = time.perf_counter() - t0
                hr = evaluate_run(f"hybrid-rrf(bm25, {label})", rs, rp, qids, corpus.ids, data.qrels,
                                  seconds=bm_s + row["search_seconds"] + r_s,
                                  bytes_per_doc=row["bytes_per_doc"])
                rows.append(hr)
                t0 = time.perf_counter()
                ss, sp = score_fusion([(bs, bp), (ds, dp)], k=100, weights=[hybrid_weight, 1 - hybrid_weight])
                s_s = time.perf_counter() - t0
                rows.append(evaluate_run(f"hybrid-score(bm25, {label}, w={hybrid_weight})", ss, sp, qids,
                                         corpus.ids, data.qrels, seconds=bm_s + row["search_seconds"] + s_s,
                                         bytes_per_doc=row["bytes_per_doc"]))
    out = {"dataset": str(folder), "split": split, "rows": rows, "report": report}
    if rows:
        for key in ("ndcg@10", "recall@100", "bytes_per_doc", "queries_per_s"):
            out[key] = rows[0][key]
    return out
