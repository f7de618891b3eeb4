"""CLI commands of ``hashlearn.text``, added to the main app by :func:`register`.

``hashlearn text index``  corpus.jsonl → a saved :class:`~hashlearn.text.index.TextIndex` (streamed in batches)
``hashlearn text search`` an index + query text(s) → ranked document ids
``hashlearn text eval``   BEIR folder → nDCG@10, Recall@100, bytes/doc, queries/s per codes × rescoring
``hashlearn text topics`` corpus + keyword-defined topics → each topic's documents (Lbl2Vec-style)
``hashlearn text keyphrases`` corpus → keyphrases per document (+ an expanded corpus for BM25)
``hashlearn text adapt``  corpus → an encoder adapted to it without labels (Contriever-style), for ``--model``
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ._common import CONTEXT, SEED_HELP

text_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT,
                       help="Text retrieval on compact codes (needs the dependencies of the 'text' extra).")

CODES_HELP = "Codes: float, or a registry method METHOD[:BITS] of kind vector or embedding (sign, msign, itq:256, bpr:128)."
CANDIDATES_HELP = "First-stage candidates rescored per query."
ASYMMETRIC_HELP = "First stage: float query x binary documents."
EMBEDDINGS_HELP = "Folder with precomputed corpus.npy/queries.npy and their .ids files."
MODEL_HELP = "Embedding model: a sentence-transformers name or folder (e.g. one written by 'text adapt')."
BUDGET_HELP = "Time budget of each trained head (bpr and other codes that take one), in minutes."
PSEUDO_HELP = "Pseudo-queries of query-trained codes: auto, none, title, first_sentence, span, crop."
CACHE_HELP = "Embedding cache folder (default ~/.cache/hashlearn/embeddings)."


def _split_list(text: str, what: str) -> list[str]:
    from ._common import CLIError

    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise CLIError(f"{what}: nothing given (got {text!r})")
    return items


def _params(items):
    from ._common import _parse_params

    return _parse_params(items)


def _budget_params(specs, minutes: float) -> dict:
    """``{method: {"max_train_minutes": minutes, "show_progress": True}}`` for the codes of ``specs`` whose
    estimator takes a time budget (the query-trained heads: ``bpr`` ...)."""
    from ._common import CLIError

    from hashlearn.registry import get_method_class
    from hashlearn.text.index import needs_queries, parse_codes

    if not minutes > 0:
        raise CLIError(f"--max-train-minutes must be > 0, got {minutes}")
    out = {}
    for spec in specs:
        name, _ = parse_codes(spec)
        if name == "float" or not needs_queries(spec):
            continue
        names = get_method_class(name)._get_param_names()
        params = {k: v for k, v in (("max_train_minutes", minutes), ("show_progress", True)) if k in names}
        if params:
            out[name] = params
    return out


@text_app.command("eval")
def eval_cmd(
    beir: Path = typer.Option(..., "--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."),
    codes: str = typer.Option("float,sign", "--codes", help=CODES_HELP + " Comma-separated."),
    rescore: str = typer.Option("none", "--rescore", help="Rescoring modes, comma-separated: none, asym, float, int8."),
    candidates: int = typer.Option(100, "--candidates", help=CANDIDATES_HELP),
    asymmetric: bool = typer.Option(False, "--asymmetric", help=ASYMMETRIC_HELP),
    split: str = typer.Option("test", "--split", help="The qrels split evaluated."),
    train_split: Optional[str] = typer.Option(None, "--train-split", help="The qrels split that trains bpr codes."),
    pseudo: str = typer.Option("auto", "--pseudo", help=PSEUDO_HELP),
    max_train_minutes: float = typer.Option(10.0, "--max-train-minutes", help=BUDGET_HELP),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=EMBEDDINGS_HELP),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", help=MODEL_HELP),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=CACHE_HELP),
    bm25: bool = typer.Option(False, "--bm25", help="Add BM25 (bm25s)."),
    hybrid: bool = typer.Option(False, "--hybrid", help="Add BM25 + dense fusions (RRF, score interpolation)."),
    hybrid_weight: float = typer.Option(0.5, "--hybrid-weight", help="BM25 weight of the score interpolation."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help="bpr parameter KEY=VALUE (JSON value); repeatable."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
):
    """Evaluate codes on a BEIR dataset (nDCG@10, Recall@100, bytes per document, queries/s)."""
    from rich.table import Table

    from ._common import CLIError, _check_output, _write_json, console, err_console

    from hashlearn.text.evaluation import beir_eval

    _check_output(json_path)
    if not beir.is_dir():
        raise CLIError(f"{beir}: not a folder (expected a BEIR dataset)")
    if candidates < 1:
        raise CLIError(f"--candidates must be >= 1, got {candidates}")
    cache = cache_dir if cache_dir is not None else Path.home() / ".cache" / "hashlearn" / "embeddings"
    code_list = _split_list(codes, "--codes")
    result = beir_eval(
        beir, codes=code_list, rescore=_split_list(rescore, "--rescore"), candidates=candidates,
        asymmetric=asymmetric, split=split, train_split=train_split, pseudo=pseudo, embeddings=embeddings,
        model=model, cache_dir=cache, bm25=bm25, hybrid=hybrid, hybrid_weight=hybrid_weight, seed=seed,
        bpr_params=_params(param), method_params=_budget_params(code_list, max_train_minutes),
        log=lambda m: err_console.print(f"[dim]{m}[/dim]", highlight=False),
    )
    rep = result["report"]
    table = Table(title=f"{beir.name}: {rep['queries_evaluated']} judged {split} queries, {rep['corpus']['kept']} documents")
    for col in ("codes", "rescore", "nDCG@10", "R@100", "bytes/doc", "+rescore B", "queries/s"):
        table.add_column(col, justify="left" if col in ("codes", "rescore") else "right")
    for r in result["rows"]:
        table.add_row(
            str(r["codes"]) + (" (asym)" if r.get("asymmetric") else ""), str(r.get("rescore") or "-"),
            f"{r['ndcg@10']:.4f}", f"{r['recall@100']:.4f}",
            "-" if r.get("bytes_per_doc") is None else str(r["bytes_per_doc"]),
            str(r.get("rescore_bytes_per_doc") or "-"),
            "-" if not r.get("queries_per_s") else f"{r['queries_per_s']:,.0f}",
        )
    table.caption = ("bytes/doc: the searched part (codes, or float vectors); +rescore B: extra stored per document; "
                     "queries/s: search only (query embedding excluded)")
    console.print(table)
    notes = []
    if rep.get("queries_without_qrels"):
        notes.append(f"{rep['queries_without_qrels']} queries have no {split} qrels (not evaluated)")
    c = rep["corpus"]
    for key, label in (("empty_documents", "empty documents skipped"), ("duplicate_ids", "duplicate ids skipped"),
                       ("non_utf8_lines", "lines with non-UTF-8 bytes (replaced)")):
        if c.get(key):
            notes.append(f"{c[key]} {label}")
    if rep.get("qrels_unknown_documents"):
        notes.append(f"{rep['qrels_unknown_documents']} judgements name unknown documents")
    for note in notes:
        err_console.print(f"[yellow]note[/yellow] {note}", highlight=False)
    _write_json(json_path, result)


@text_app.command("index")
def index_cmd(
    corpus: Path = typer.Argument(..., metavar="CORPUS", help="corpus.jsonl (BEIR format: _id, title, text)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the index (.hlx)."),
    codes: str = typer.Option("sign", "--codes", help=CODES_HELP + " Query-trained codes (bpr, jpq, repconc) learn from pseudo-queries."),
    pseudo: str = typer.Option("title", "--pseudo", help=PSEUDO_HELP.replace("auto, ", "") + " For query-trained codes."),
    max_train_minutes: float = typer.Option(10.0, "--max-train-minutes", help=BUDGET_HELP),
    rescore: str = typer.Option("none", "--rescore", help="Rescoring stored with the index: none, asym, float or int8."),
    candidates: int = typer.Option(100, "--candidates", help=CANDIDATES_HELP),
    asymmetric: bool = typer.Option(False, "--asymmetric", help=ASYMMETRIC_HELP),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", help=MODEL_HELP),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=EMBEDDINGS_HELP + " Skips embedding."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=CACHE_HELP),
    batch_docs: int = typer.Option(20000, "--batch-docs", help="Documents per streamed batch."),
    fit_docs: int = typer.Option(50000, "--fit-docs", help="Documents the codes are fitted on (the first ones)."),
    duplicates: str = typer.Option("error", "--duplicates", help="Repeated document ids: error, or first (keep the first)."),
    snippet_chars: int = typer.Option(160, "--snippet-chars",
                                      help="Characters of title + text kept per document to show with results (0: none)."),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
):
    """Embed (or load) a corpus, encode it and save a text index; the corpus is streamed in batches."""
    from ._common import CLIError, _check_output, console, err_console, save_object

    from hashlearn.text.beir import ReadReport, iter_corpus
    from hashlearn.text.index import needs_queries, parse_codes

    _check_output(output)
    parse_codes(codes)
    trained = needs_queries(codes)
    if trained:
        from hashlearn.text.pipeline import PSEUDO_STRATEGIES

        if pseudo not in PSEUDO_STRATEGIES:
            raise CLIError(f"{codes} codes are trained with pseudo-queries from the corpus: --pseudo must be one of "
                           f"{', '.join(PSEUDO_STRATEGIES)}, got {pseudo!r}")
    if batch_docs < 1 or fit_docs < 1 or snippet_chars < 0:
        raise CLIError("--batch-docs and --fit-docs must be >= 1 and --snippet-chars >= 0")
    report = ReadReport()
    docs = iter_corpus(corpus, duplicates=duplicates, report=report)
    embedder = None
    if embeddings is None:
        from hashlearn.embed import Embedder

        cache = cache_dir if cache_dir is not None else Path.home() / ".cache" / "hashlearn" / "embeddings"
        embedder = Embedder(model, cache_dir=cache, show_progress=True)

    def batches():
        ids, texts, snippets, parts = [], [], [], []
        for d in docs:
            ids.append(d.id)
            texts.append(d.full_text)
            snippets.append(_snippet(d.title, d.text, snippet_chars))
            parts.append((d.title, d.text) if trained and index is None else None)
            if len(ids) >= batch_docs:
                yield ids, texts, snippets if snippet_chars else None, parts
                ids, texts, snippets, parts = [], [], [], []
        if ids:
            yield ids, texts, snippets if snippet_chars else None, parts

    def vectors(ids, texts):
        if embedder is not None:
            return embedder.encode(texts)
        from hashlearn.text.pipeline import load_embeddings

        return load_embeddings(embeddings, "corpus", ids)

    def train(pending):
        """Training arguments of query-trained codes: pseudo-queries from the fitted documents."""
        if not trained:
            return {"fit": {}}
        from hashlearn.embed import Embedder
        from hashlearn.text.pipeline import make_pseudo_queries

        titles = [t for p in pending for t, _ in p[3]]
        bodies = [x for p in pending for _, x in p[3]]
        qtexts, rows = make_pseudo_queries(titles, bodies, strategy=pseudo, random_state=seed)
        if not qtexts:
            raise CLIError(f"{corpus}: the documents give no {pseudo} pseudo-query to train {codes} codes")
        err_console.print(f"training {codes} on {len(qtexts)} {pseudo} pseudo-queries", highlight=False)
        enc = embedder or Embedder(model, cache_dir=cache_dir, show_progress=True)
        return {"fit": {"pseudo_queries": enc.encode(qtexts), "pseudo_docs": rows},
                "params": _budget_params([codes], max_train_minutes).get(parse_codes(codes)[0], {})}

    index, pending = None, []
    for ids, texts, snippets, parts in batches():
        X = vectors(ids, texts)
        if index is None:
            pending.append((ids, X, snippets, parts))
            if sum(len(p[0]) for p in pending) < fit_docs:
                continue
            index = _start_index(pending, codes, rescore, candidates, asymmetric, model, seed, train(pending))
            pending = []
        else:
            index.add(X, ids, snippets)
    if index is None:
        if not pending:
            raise CLIError(f"{corpus}: no usable document ({report.summary()})")
        index = _start_index(pending, codes, rescore, candidates, asymmetric, model, seed, train(pending))
    save_object(index, output)
    err_console.print(report.summary(), highlight=False)
    mem = index.bytes_per_doc()
    console.print(f"indexed {index.ntotal} documents with {codes} codes ({mem['searched']} B/doc searched, "
                  f"{mem['rescore']} B/doc for rescoring)")


def _snippet(title: str, text: str, n: int) -> str:
    """Title and the start of the text, at most ``n`` characters, cut at a word boundary."""
    joined = " — ".join(t.strip() for t in (title, text) if t and t.strip())
    if len(joined) <= n:
        return joined
    cut = joined[:n].rsplit(" ", 1)[0]
    return (cut if len(cut) > n // 2 else joined[:n]) + "…"


def _start_index(pending, codes, rescore, candidates, asymmetric, model, seed, training):
    import numpy as np

    from hashlearn.text.index import TextIndex, make_encoder

    X = np.concatenate([p[1] for p in pending])
    enc = make_encoder(codes, X.shape[1], random_state=seed, **training.get("params", {}))
    if enc is not None:
        enc.fit(X, **training["fit"])
    index = TextIndex(enc, rescore=rescore, candidates=candidates, asymmetric=asymmetric, codes=codes, model=model)
    for ids, Xb, snippets, _ in pending:
        index.add(Xb, ids, snippets)
    return index


@text_app.command("search")
def search_cmd(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index saved by 'hashlearn text index'."),
    query: Optional[List[str]] = typer.Argument(None, metavar="QUERY", help="Query text(s)."),
    queries: Optional[Path] = typer.Option(None, "--queries", help="queries.jsonl (BEIR format) instead of QUERY texts."),
    k: int = typer.Option(10, "--k", "-k", help="Results per query."),
    rescore: Optional[str] = typer.Option(None, "--rescore", help="Override the index's rescoring: none, asym, float, int8."),
    candidates: Optional[int] = typer.Option(None, "--candidates", help=CANDIDATES_HELP + " Default: the index's."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache query embeddings in this folder."),
    json_path: Optional[Path] = typer.Option(None, "--json",
                                             help="Write {query_id: [{id, score, snippet}, ...]} as JSON."),
):
    """Search a text index with query texts; prints the top documents."""
    from rich.table import Table

    from ._common import CLIError, _check_output, _write_json, console

    from hashlearn.io import load
    from hashlearn.text.index import TextIndex

    _check_output(json_path)
    index = load(index_path)
    if not isinstance(index, TextIndex):
        raise CLIError(f"{index_path} holds a {type(index).__name__}, not a text index")
    if k < 1:
        raise CLIError(f"k must be >= 1, got {k}")
    if queries is not None:
        from hashlearn.text.beir import read_queries

        qids, qtexts, _ = read_queries(queries)
    elif query:
        qids, qtexts = [str(i) for i in range(len(query))], list(query)
    else:
        raise CLIError("give query texts or --queries FILE")
    if any(not t.strip() for t in qtexts):
        raise CLIError("empty query text")
    from hashlearn.embed import Embedder

    emb = Embedder(index.model or "all-MiniLM-L6-v2", cache_dir=cache_dir, show_progress=False)
    Q = emb.encode(qtexts, use_cache=cache_dir is not None)
    scores, pos = index.search(Q, min(k, index.ntotal), rescore=rescore, candidates=candidates)
    snippets = index.snippets
    results = {qid: [{"id": index.doc_ids[p], "score": float(s),
                      "snippet": None if snippets is None else snippets[p]}
                     for s, p in zip(srow, prow) if p >= 0]
               for qid, srow, prow in zip(qids, scores, pos)}
    shown = list(zip(qids, qtexts))[:20]
    for qid, text in shown:
        table = Table(title=f"{text[:70]}", title_justify="left", caption=None)
        table.add_column("#", justify="right")
        table.add_column("id")
        table.add_column("score", justify="right")
        table.add_column("document" if snippets is not None else "document (index built without snippets)")
        for rank, hit in enumerate(results[qid][:k], 1):
            table.add_row(str(rank), hit["id"], f"{hit['score']:.4g}", hit["snippet"] or "")
        console.print(table)
    if len(qids) > len(shown):
        console.print(f"({len(qids) - len(shown)} more queries: see --json)")
    _write_json(json_path, results)


def _corpus_and_vectors(corpus_path, embeddings, model, cache_dir):
    """The corpus, its document embeddings (precomputed or embedded) and the embedder's encode function."""
    from ._common import CLIError

    from hashlearn.embed import Embedder
    from hashlearn.text.beir import read_corpus
    from hashlearn.text.pipeline import load_embeddings

    if not corpus_path.is_file():
        raise CLIError(f"{corpus_path}: no such corpus file")
    corpus = read_corpus(corpus_path)
    if len(corpus) == 0:
        raise CLIError(f"{corpus_path}: no documents")
    emb = Embedder(model, cache_dir=cache_dir, show_progress=False)
    X = (load_embeddings(embeddings, "corpus", corpus.ids) if embeddings is not None
         else emb.encode(corpus.full_texts, use_cache=cache_dir is not None))
    return corpus, X, emb


@text_app.command("topics")
def topics_cmd(
    corpus_path: Path = typer.Argument(..., metavar="CORPUS", help="corpus.jsonl (BEIR format)."),
    topic: List[str] = typer.Option(..., "--topic", "-t", help="NAME=KEYWORD,KEYWORD,...; repeatable."),
    k: int = typer.Option(10, "--k", "-k", help="Documents per topic."),
    n_neighbors: int = typer.Option(20, "--n-neighbors", help="Documents averaged into each refined label vector."),
    keyword_weight: float = typer.Option(0.5, "--keyword-weight", help="Share of the keyword vector kept in the label vector."),
    n_iter: int = typer.Option(1, "--n-iter", help="Refinement rounds (0: keyword vectors only)."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=EMBEDDINGS_HELP),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", help=MODEL_HELP),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=CACHE_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write each topic's documents (id, score) as JSON."),
):
    """Lbl2Vec-style topic retrieval: the documents of each keyword-defined topic."""
    from rich.table import Table

    from ._common import CLIError, _check_output, _write_json, console

    from hashlearn.text.topics import TopicRetriever

    _check_output(json_path)
    topics = {}
    for item in topic:
        name, sep, kws = item.partition("=")
        if not sep or not name.strip():
            raise CLIError(f"--topic must be NAME=kw1,kw2 (got {item!r})")
        if name.strip() in topics:
            raise CLIError(f"duplicate topic name {name.strip()!r}")
        topics[name.strip()] = _split_list(kws, f"--topic {name.strip()}")
    if k < 1:
        raise CLIError(f"k must be >= 1, got {k}")
    corpus, X, emb = _corpus_and_vectors(corpus_path, embeddings, model, cache_dir)
    tr = TopicRetriever(emb.encode, n_neighbors=n_neighbors, keyword_weight=keyword_weight, n_iter=n_iter)
    scores, rows = tr.fit(X, topics).retrieve(X, k=k)
    results = {name: [[corpus.ids[r], float(s)] for s, r in zip(srow, rrow)]
               for name, srow, rrow in zip(tr.topic_names_, scores, rows)}
    table = Table(title=f"{len(topics)} topics, {len(corpus)} documents")
    table.add_column("topic")
    table.add_column("top documents (id:cosine)")
    for name, hits in results.items():
        table.add_row(name, " ".join(f"{d}:{s:.3f}" for d, s in hits[:10]))
    console.print(table)
    _write_json(json_path, results)


@text_app.command("keyphrases")
def keyphrases_cmd(
    corpus_path: Path = typer.Argument(..., metavar="CORPUS", help="corpus.jsonl (BEIR format)."),
    top_n: int = typer.Option(5, "--top-n", help="Keyphrases per document."),
    diversity: float = typer.Option(0.5, "--diversity", help="MMR diversity in [0, 1]."),
    candidates: int = typer.Option(10, "--phrase-candidates", help="tf-idf pre-selected phrases embedded per document."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=EMBEDDINGS_HELP),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", help=MODEL_HELP),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=CACHE_HELP),
    expanded: Optional[Path] = typer.Option(None, "--expanded", help="Write a corpus.jsonl with the keyphrases appended to the text."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write {doc_id: [keyphrase, ...]} as JSON."),
):
    """KeyBERT-style keyphrases of each document (embedding-ranked n-grams + MMR); optional expanded corpus."""
    import json

    from ._common import CLIError, _check_output, _write_json, console, write_outputs

    from hashlearn.text.keyphrases import KeyphraseExtractor, expand_documents

    _check_output(json_path)
    _check_output(expanded)
    if top_n < 1 or candidates < 1:
        raise CLIError(f"--top-n and --phrase-candidates must be >= 1 (got {top_n}, {candidates})")
    corpus, X, emb = _corpus_and_vectors(corpus_path, embeddings, model, cache_dir)
    kps = KeyphraseExtractor(emb.encode, top_n=top_n, diversity=diversity, n_candidates=candidates).extract(
        corpus.full_texts, doc_embeddings=X)
    for i in range(min(5, len(corpus))):
        console.print(f"{corpus.ids[i]}: {'; '.join(kps[i])}", highlight=False)
    _write_json(json_path, dict(zip(corpus.ids, kps)))
    if expanded is not None:
        texts = expand_documents(corpus.texts, kps)

        def write(f):
            for did, title, text in zip(corpus.ids, corpus.titles, texts):
                f.write((json.dumps({"_id": did, "title": title, "text": text}) + "\n").encode())

        write_outputs([(expanded, write)])


ADAPT_PARAMS_HELP = ("Adaptation parameter KEY=VALUE (JSON value), repeatable: batch_size, lr, queue_size, momentum, "
                     "temperature, max_crop_tokens, min_crop_tokens, holdout_docs, n_distractors, patience, n_threads, "
                     "checkpoint_dir (default OUTPUT.checkpoints) ...")


@text_app.command("adapt")
def adapt_cmd(
    corpus: Path = typer.Argument(..., metavar="CORPUS", help="corpus.jsonl (BEIR format: _id, title, text); no labels needed."),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write (replaced atomically if it exists)."),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", help="Encoder to adapt: a name or a model folder."),
    epochs: int = typer.Option(3, "--epochs", help="Passes over the documents (one crop pair each)."),
    max_train_minutes: float = typer.Option(10.0, "--max-train-minutes", help="Training time budget in minutes."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help=ADAPT_PARAMS_HELP),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the adaptation report as JSON."),
):
    """Adapt an encoder to a corpus without labels (Contriever-style crops, in-batch + queue negatives).

    The result is a sentence-transformers folder: pass it as --model to every text command."""
    from ._common import _check_output, _write_json, console

    from hashlearn.text.adapt import adapt_corpus

    _check_output(json_path)
    params = _params(param)
    params.setdefault("checkpoint_dir", str(output.with_name(output.name + ".checkpoints")))
    report = adapt_corpus(corpus, output, model=model, epochs=epochs, max_train_minutes=max_train_minutes,
                          random_state=seed, **params)
    kept = "the zero-shot encoder (no epoch beat it)" if report["best_epoch"] < 0 else f"epoch {report['best_epoch']}"
    console.print(f"label-free check (held-out nDCG@10): zero-shot {report['zero_shot_score']:.4f}, adapted "
                  f"{report['score']:.4f}; kept {kept}; stopped: {report['stop_reason']}; trained "
                  f"{report['train_seconds']:.0f} s; saved to {output} (use --model {output})", highlight=False)
    _write_json(json_path, report)


def register(app, bench_app) -> None:
    """Add this package's commands to the hashlearn typer app (and its bench group)."""
    app.add_typer(text_app, name="text")
