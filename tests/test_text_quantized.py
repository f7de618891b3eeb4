"""Quantized codes in the text pipeline: ``pq:M``, ``opq:M``, ``rq:M``, ``jpq:M``, ``repconc:M`` in
TextIndex (ADC over inner-product tables), persistence, bad input, and ``beir_eval`` with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hashlearn
from hashlearn.errors import FileFormatError, HashlearnError, IncompatibleError, UnknownMethodError, ValidationError
from hashlearn.io import persist
from hashlearn.text.index import TextIndex, is_quantizer, make_encoder, needs_queries, parse_codes


def _docs(n=400, d=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = (X[:30] + 0.3 * rng.normal(size=(30, d))).astype(np.float32)
    return X, Q


FAST = {"opq": {"opq_iter": 4}}  # small problems: fewer OPQ rotations (the results are still checked exactly)


def _index(spec, X, **kw):
    enc = make_encoder(spec, X.shape[1], random_state=0, nbits=4, **FAST.get(spec.split(":")[0], {})).fit(X)
    idx = TextIndex(enc, codes=spec, **kw)
    idx.add(X, [f"d{i}" for i in range(X.shape[0])])
    return idx


# -- specs through the one registry ------------------------------------------------------------------
def test_quantizers_are_registered_and_parsed_as_bytes():
    assert {"pq", "opq", "rq", "jpq", "repconc", "balanced-kmeans"} <= set(hashlearn.list_methods("quantizer"))
    assert parse_codes("pq:16") == ("pq", 16) and parse_codes("RepCONC:8") == ("repconc", 8)
    assert make_encoder("pq:16", 384).M == 16 and make_encoder("opq:8", 384).M == 8
    assert make_encoder("rq:12", 384).levels == 12 and make_encoder("jpq:16", 384).M == 16
    assert needs_queries("jpq:16") and needs_queries("repconc:16") and needs_queries("bpr:64")
    assert not needs_queries("pq:16") and not needs_queries("float") and not needs_queries("itq:64")


@pytest.mark.parametrize("spec, message", [
    ("pq", "give the bytes per document as pq:BYTES"),
    ("balanced-kmeans:16", "one list id per vector"),
    ("pq:0", "M must be an integer"),
    ("pq:x", "is not an integer"),
])
def test_bad_quantized_specs_are_refused(spec, message):
    with pytest.raises(ValidationError, match=message):
        parse_codes(spec)


def test_unknown_quantizer_names_the_known_ones():
    with pytest.raises(UnknownMethodError, match="pq"):
        parse_codes("pqx:16")


# -- search = brute force over the reconstructions ----------------------------------------------------
@pytest.mark.parametrize("spec", ["pq:4", "opq:4", "rq:3"])
def test_adc_search_equals_inner_products_with_the_reconstructions(spec):
    X, Q = _docs()
    idx = _index(spec, X)
    assert is_quantizer(idx.encoder) and idx.quantized
    assert idx.codes_.dtype == np.uint8 and idx.codes_.shape == (400, int(spec.split(":")[1]))
    assert idx.bytes_per_doc() == {"searched": int(spec.split(":")[1]), "rescore": 0, "total": int(spec.split(":")[1])}
    S = Q @ idx.encoder.decode(idx.codes_).T  # exact reference scores
    scores, pos = idx.search(Q, k=10)
    ref = np.sort(S, axis=1)[:, ::-1][:, :10]
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-5)  # tie-aware: compare the scores
    np.testing.assert_allclose(np.take_along_axis(S, pos, 1), scores, rtol=1e-4, atol=1e-5)
    # float rescoring of the ADC candidates = exact float scores of those candidates
    idx_f = _index(spec, X, rescore="float", candidates=50)
    s2, p2 = idx_f.search(Q, k=5)
    np.testing.assert_allclose(s2, np.take_along_axis(Q @ X.T, p2, 1), rtol=1e-5, atol=1e-6)
    assert idx_f.bytes_per_doc()["rescore"] == 4 * X.shape[1]


def test_more_bytes_rank_closer_to_float():
    X, Q = _docs(n=600, d=32)
    exact = np.argsort(-(Q @ X.T), axis=1)[:, :10]

    def overlap(spec):
        _, pos = _index(spec, X).search(Q, k=10)
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(pos, exact)])

    assert overlap("pq:16") > overlap("pq:2") + 0.1


def test_k_larger_than_the_index_pads():
    X, Q = _docs(n=300)
    idx = _index("pq:4", X)
    small = TextIndex(idx.encoder, codes="pq:4")
    small.add(X[:3], ["a", "b", "c"])
    scores, pos = small.search(Q[:2], k=5)
    assert (pos[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all() and (pos[:, :3] >= 0).all()


# -- persistence and fingerprints -------------------------------------------------------------------
def test_round_trip_and_codes_of_another_codebook_refused(tmp_path):
    X, Q = _docs()
    idx = _index("opq:4", X, rescore="int8")
    path = tmp_path / "idx.hlx"
    hashlearn.save(idx, path)
    again = hashlearn.load(path)
    for a, b in zip(idx.search(Q, 7), again.search(Q, 7)):
        np.testing.assert_array_equal(a, b)
    # a file whose codes were made by another codebook (fingerprint in the state differs) is refused
    state = idx._get_state()
    other = make_encoder("opq:4", X.shape[1], random_state=1, nbits=4, opq_iter=4).fit(X)
    state["params"] = dict(state["params"], encoder=other)
    with pytest.raises(FileFormatError, match="fingerprint"):
        TextIndex._from_state(state)
    # codes of another codebook cannot be searched with this quantizer
    with pytest.raises(IncompatibleError, match="another codebook"):
        idx.encoder.search(Q, other.encode(X), 3)


# -- bad input ---------------------------------------------------------------------------------------
def test_bad_input_to_quantized_text_indexes():
    X, Q = _docs()
    with pytest.raises(ValidationError, match="asym"):
        _index("pq:4", X, rescore="asym")
    idx = _index("pq:4", X)
    with pytest.raises(ValidationError, match="asym"):
        idx.search(Q, 3, rescore="asym")
    with pytest.raises(ValidationError, match="not fitted"):
        TextIndex(make_encoder("pq:4", 16), codes="pq:4")
    with pytest.raises(HashlearnError, match="16"):
        idx.add(np.zeros((2, 8), np.float32), ["x", "y"])  # another dimension
    bad = X[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValidationError, match="(?i)nan|finite"):
        idx.add(bad, ["x", "y"])
    with pytest.raises(ValidationError, match="(?i)nan|finite"):
        idx.search(np.full((1, 16), np.nan, np.float32), 3)
    with pytest.raises(ValidationError, match="multiple of M = 5"):
        make_encoder("pq:5", 16).fit(X)  # d not divisible by the bytes: refused with the numbers
    with pytest.raises(ValidationError, match="3 vectors for 16 centroids"):
        make_encoder("pq:4", 16, nbits=4).fit(X[:3])
    with pytest.raises(ValidationError, match="training queries"):
        make_encoder("jpq:4", 16).fit(X)


# -- beir_eval with quantized codes ------------------------------------------------------------------
def _write_jsonl(path: Path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _beir(folder: Path, n_docs=300, n_queries=120, d=16, seed=0):
    """A synthetic BEIR folder: query j is a noisy copy of its one relevant document."""
    rng = np.random.default_rng(seed)
    (folder / "qrels").mkdir(parents=True)
    doc_ids = [f"d{i}" for i in range(n_docs)]
    _write_jsonl(folder / "corpus.jsonl", [{"_id": i, "title": f"t {i}", "text": f"text {i}."} for i in doc_ids])
    rel = rng.choice(n_docs, size=n_queries, replace=False)
    _write_jsonl(folder / "queries.jsonl", [{"_id": f"q{j}", "text": f"query {j}"} for j in range(n_queries)])
    half = n_queries // 2
    for name, rows in (("train", range(half)), ("test", range(half, n_queries))):
        (folder / "qrels" / f"{name}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"q{j}\t{doc_ids[rel[j]]}\t1\n" for j in rows))
    X = rng.normal(size=(n_docs, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = X[rel] + 0.4 * rng.normal(size=(n_queries, d)).astype(np.float32)
    emb = folder / "emb"
    emb.mkdir()
    np.save(emb / "corpus.npy", X)
    (emb / "corpus.ids").write_text("\n".join(doc_ids) + "\n")
    np.save(emb / "queries.npy", Q.astype(np.float32))
    (emb / "queries.ids").write_text("\n".join(f"q{j}" for j in range(n_queries)) + "\n")
    return emb


def test_beir_eval_rows_for_quantized_codes(tmp_path):
    from hashlearn.text.evaluation import beir_eval

    emb = _beir(tmp_path / "beir")
    res = beir_eval(tmp_path / "beir", codes=["float", "pq:4", "rq:2"], rescore=["none", "asym", "float"],
                    embeddings=emb, show_progress=False)
    rows = {(r["codes"], r["rescore"]): r for r in res["rows"]}
    assert set(rows) == {("float", "none"), ("pq:4", "none"), ("pq:4", "float"), ("rq:2", "none"), ("rq:2", "float")}
    assert rows[("pq:4", "none")]["bytes_per_doc"] == 4 and rows[("rq:2", "none")]["bytes_per_doc"] == 2
    assert rows[("pq:4", "float")]["ndcg@10"] >= rows[("pq:4", "none")]["ndcg@10"] - 1e-9


@pytest.mark.slow
def test_beir_eval_trains_jpq_and_repconc_on_the_train_split_only(tmp_path):
    pytest.importorskip("torch", reason="jpq/repconc train with torch (pip install 'hashlearn[deep]')")
    from hashlearn.text.evaluation import beir_eval

    emb = _beir(tmp_path / "beir")
    small = {"nbits": 4, "epochs": 3, "opq_iter": 3, "n_threads": 1}
    res = beir_eval(tmp_path / "beir", codes=["jpq:4", "repconc:4"], embeddings=emb, train_split="train",
                    pseudo="none", method_params={"jpq": small, "repconc": small}, show_progress=False)
    assert [r["codes"] for r in res["rows"]] == ["jpq:4", "repconc:4"]
    assert res["report"]["train"]["pairs"] == 60 and all(r["bytes_per_doc"] == 4 for r in res["rows"])
    with pytest.raises(ValidationError, match="jpq:4 codes need --train-split or pseudo"):
        beir_eval(tmp_path / "beir", codes=["jpq:4"], embeddings=emb, pseudo="none", show_progress=False)
    with pytest.raises(ValidationError, match="both 'test'"):
        beir_eval(tmp_path / "beir", codes=["jpq:4"], embeddings=emb, train_split="test", show_progress=False)
