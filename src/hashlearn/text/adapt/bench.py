"""Zero-shot vs adapted encoder × codes on a BEIR folder, without labels for training or selection.

:func:`run` returns one row per (model, codes): ``model`` (``zero-shot`` | ``adapted``), ``codes``
(``float``, ``sign``, ``itq:BITS``, ``bpr:BITS`` trained on ``title`` or ``crop`` pseudo-queries),
``ndcg@10``, ``recall@100``, ``bytes_per_doc``, ``train_s`` (adaptation + codes training seconds),
``adapt_s``, ``fit_s``. The qrels of ``split`` are read only to score the rows.
"""

from __future__ import annotations

import time
from pathlib import Path

from ...errors import ValidationError

__all__ = ["run", "DEFAULT_BPR", "summarize"]

#: Label-free ``bpr`` settings per pseudo-query kind, fixed in advance (never tuned on qrels). Titles:
#: pure distillation from the float model (the self-supervised setting of bench/text_scifact.py); crops:
#: cross-entropy to the crop's own document + distillation, three crops per document.
DEFAULT_BPR = {
    "title": {"lr": 3e-4, "epochs": 6, "patience": 3, "pseudo_weight": 1.0, "pseudo_ce_weight": 0.0, "init": "itq"},
    "crop": {"lr": 1e-3, "epochs": 10, "patience": 3, "pseudo_weight": 1.0, "pseudo_ce_weight": 1.0, "init": "itq"},
}
_CROPS_PER_DOC = 3


def run(folder, *, adapted=None, model: str = "all-MiniLM-L6-v2", split: str = "test", bits: int = 128,
        pseudo=("title", "crop"), embeddings=None, adapt_params: dict | None = None,
        max_train_minutes: float = 10.0, seed: int = 0, cache_dir=None, show_progress: bool = True,
        log=None) -> list[dict]:
    """Rows for the zero-shot encoder ``model`` and the adapted one.

    Parameters
    ----------
    folder : BEIR folder
    adapted : model folder written by :func:`~hashlearn.text.adapt.adapt_corpus`; ``None``: adapt now
        (``adapt_params``, ``max_train_minutes``) into a temporary folder
    embeddings : folder of precomputed zero-shot ``corpus.npy``/``queries.npy`` (+ ``.ids``), optional
    max_train_minutes : budget of each trained ``bpr`` head (and of the adaptation when it runs here)
    """
    log = log or (lambda msg: None)
    from ..beir import load_beir

    data = load_beir(folder, split)
    qids, qtexts = data.judged_queries()
    if not qids:
        raise ValidationError(f"{folder}: no query of split {split!r} has a positive judgement")
    from .contrastive import check_adapter_params

    check_adapter_params(adapt_params or {})
    for kind in pseudo:
        if kind not in DEFAULT_BPR:
            raise ValidationError(f"pseudo must be among {', '.join(DEFAULT_BPR)}, got {kind!r}")
    rows = _model_rows("zero-shot", model, data, qids, qtexts, embeddings, 0.0, bits, pseudo, max_train_minutes,
                       seed, cache_dir, show_progress, log)
    adapt_s = 0.0
    if adapted is None:
        import tempfile

        from .contrastive import ContrastiveAdapter

        params = {"max_train_minutes": max_train_minutes, "random_state": seed, "show_progress": show_progress,
                  **(adapt_params or {})}
        log("adapting the encoder on the corpus (no labels)")
        adapter = ContrastiveAdapter(model, **params).fit(data.corpus.texts, data.corpus.titles)
        adapt_s = adapter.train_seconds_
        tmp = tempfile.TemporaryDirectory(prefix="hashlearn-adapted-")
        adapted = adapter.save(Path(tmp.name) / "model")
    else:
        import json

        from .contrastive import REPORT_NAME, check_model_folder

        check_model_folder(adapted)
        report = Path(adapted) / REPORT_NAME
        if report.is_file():
            adapt_s = float(json.loads(report.read_text(encoding="utf-8")).get("train_seconds", 0.0))
    rows += _model_rows("adapted", str(adapted), data, qids, qtexts, None, adapt_s, bits, pseudo, max_train_minutes,
                        seed, None, show_progress, log)
    return rows


def _model_rows(label, model, data, qids, qtexts, embeddings, adapt_s, bits, pseudo, minutes, seed, cache_dir,
                show_progress, log) -> list[dict]:
    """Rows of one encoder: float, sign, ITQ and label-free bpr codes."""
    from ...embed import Embedder
    from ..pipeline import evaluate_codes, fit_encoder, load_embeddings, make_pseudo_queries

    corpus = data.corpus
    # An adapted folder may be rewritten under the same path: never read its embeddings from a cache.
    emb = Embedder(model, cache_dir=cache_dir, show_progress=show_progress)
    if embeddings is not None:
        X = load_embeddings(embeddings, "corpus", corpus.ids)
        Qe = load_embeddings(embeddings, "queries", qids)
    else:
        log(f"{label}: embedding {len(corpus)} documents and {len(qids)} queries")
        X, Qe = emb.encode(corpus.full_texts, use_cache=cache_dir is not None), emb.encode(qtexts, use_cache=False)
    specs = [("float", None), ("sign", None), (f"itq:{bits}", None)] + [(f"bpr:{bits}", kind) for kind in pseudo]
    rows = []
    for spec, kind in specs:
        supervision, params = {}, None
        if kind is not None:
            ptexts, prows = make_pseudo_queries(corpus.titles, corpus.texts, strategy=kind, random_state=seed,
                                                per_doc=_CROPS_PER_DOC if kind == "crop" else 1)
            log(f"{label}: embedding {len(ptexts)} {kind} pseudo-queries")
            supervision = {"pseudo_queries": emb.encode(ptexts, use_cache=cache_dir is not None), "pseudo_docs": prows}
            params = {**DEFAULT_BPR[kind], "max_train_minutes": minutes, "show_progress": show_progress}
        log(f"{label}: fitting {spec}" + (f" on {kind} pseudo-queries" if kind else ""))
        t0 = time.perf_counter()
        enc = fit_encoder(spec, X, random_state=seed, params=params, **supervision)
        fit_s = time.perf_counter() - t0
        row, _ = evaluate_codes(enc, X, Qe, qids, corpus.ids, data.qrels, codes=spec, rescore="none", repeats=1)
        rows.append({"model": label, "codes": spec + (f" ({kind})" if kind else ""), "pseudo": kind,
                     "ndcg@10": row["ndcg@10"], "recall@100": row["recall@100"],
                     "bytes_per_doc": row["bytes_per_doc"], "train_s": adapt_s + fit_s, "adapt_s": adapt_s,
                     "fit_s": fit_s, **{k: row[k] for k in row if k.startswith("bpr_")}})
        log(f"{label} {rows[-1]['codes']}: nDCG@10 {row['ndcg@10']:.4f}, R@100 {row['recall@100']:.4f}")
    return rows


def summarize(rows) -> str:
    """A plain-text table of the rows."""
    lines = [f"{'model':<10} {'codes':<18} {'nDCG@10':>8} {'R@100':>7} {'B/doc':>6} {'train_s':>8}"]
    for r in rows:
        lines.append(f"{r['model']:<10} {r['codes']:<18} {r['ndcg@10']:>8.4f} {r['recall@100']:>7.4f} "
                     f"{r['bytes_per_doc']:>6} {r['train_s']:>8.1f}")
    return "\n".join(lines)
