"""Lbl2Vec-style topic retrieval and keyphrase extraction/expansion (hashlearn.text.topics / .keyphrases).

Synthetic data and callable embedders only: fast, no model download.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.text.keyphrases import KeyphraseExtractor, candidate_phrases, expand_documents
from hashlearn.text.topics import TopicRetriever


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _topic_problem(seed=0, n_topics=4, per_topic=40, d=16):
    rng = np.random.default_rng(seed)
    centers = _unit(rng.standard_normal((n_topics, d)))
    labels = np.repeat(np.arange(n_topics), per_topic)
    docs = centers[labels] + 0.35 * rng.standard_normal((len(labels), d))
    # keyword vectors: off-centre (a shared "generic" direction + noise), as single words are
    generic = _unit(rng.standard_normal((1, d)))[0]
    words = {}
    for t in range(n_topics):
        for j in range(3):
            words[f"t{t}w{j}"] = centers[t] + 0.9 * generic + 0.6 * rng.standard_normal(d)
    topics = {f"topic{t}": [f"t{t}w{j}" for j in range(3)] for t in range(n_topics)}
    embed = lambda ws: np.stack([words[w] for w in ws]).astype(np.float32)  # noqa: E731
    return docs.astype(np.float32), labels, topics, embed, words


def _precision_at(tr, docs, labels, k):
    _, rows = tr.retrieve(docs, k=k)
    return np.mean([np.mean(labels[r] == t) for t, r in enumerate(rows)])


def test_label_vectors_match_brute_force():
    docs, labels, topics, embed, words = _topic_problem()
    tr = TopicRetriever(embed, n_neighbors=7, n_iter=1).fit(docs, topics)
    D = _unit(docs)
    for t, (name, kws) in enumerate(topics.items()):
        kv = _unit(np.mean(_unit(np.stack([words[w] for w in kws])), axis=0, keepdims=True))[0]
        np.testing.assert_allclose(tr.keyword_vectors_[t], kv, atol=1e-5)
        near = np.argsort(-(D @ kv))[:7]
        np.testing.assert_allclose(tr.label_vectors_[t], _unit(D[near].mean(axis=0, keepdims=True))[0], atol=1e-5)
    S = tr.scores(docs)
    np.testing.assert_allclose(S, D @ tr.label_vectors_.T, atol=1e-5)
    sc, rows = tr.retrieve(docs, k=5)
    for t in range(len(topics)):
        np.testing.assert_array_equal(rows[t], np.lexsort((np.arange(len(D)), -S[:, t]))[:5])
        np.testing.assert_allclose(sc[t], S[rows[t], t], atol=1e-6)
    assert tr.topic_names_ == list(topics) and tr.predict(docs).shape == (len(docs),)


def test_refinement_beats_keyword_vectors():
    docs, labels, topics, embed, _ = _topic_problem(seed=1)
    raw = TopicRetriever(embed, n_iter=0).fit(docs, topics)
    refined = TopicRetriever(embed, n_neighbors=15, n_iter=2).fit(docs, topics)
    p_raw, p_ref = _precision_at(raw, docs, labels, 30), _precision_at(refined, docs, labels, 30)
    assert p_ref > p_raw + 0.1 and p_ref > 0.8, (p_raw, p_ref)
    acc = np.mean(refined.predict(docs) == labels)
    assert acc > np.mean(raw.predict(docs) == labels) and acc > 0.8, acc
    np.testing.assert_allclose(raw.label_vectors_, raw.keyword_vectors_)  # n_iter=0: keywords only
    # keyword_weight=1 keeps the keyword vector whatever the neighbours say
    kept = TopicRetriever(embed, n_neighbors=5, keyword_weight=1.0).fit(docs, topics)
    np.testing.assert_allclose(kept.label_vectors_, kept.keyword_vectors_, atol=1e-6)


def test_min_similarity_falls_back_to_keywords_and_joined_mode():
    docs, _, topics, embed, words = _topic_problem(seed=2)
    tr = TopicRetriever(embed, n_neighbors=5, min_similarity=1.01).fit(docs, topics)  # nobody qualifies
    np.testing.assert_allclose(tr.label_vectors_, tr.keyword_vectors_, atol=1e-6)
    calls = []

    def joined_embed(texts):
        calls.append(list(texts))
        return np.stack([np.sum([words[w] for w in t.split()], axis=0) for t in texts]).astype(np.float32)

    TopicRetriever(joined_embed, keyword_mode="joined", n_iter=0).fit(docs, topics)
    assert calls[0] == [" ".join(k) for k in topics.values()]


def test_topic_retriever_bad_input():
    docs, _, topics, embed, _ = _topic_problem()
    with pytest.raises(NotFittedError):
        TopicRetriever(embed).scores(docs)
    with pytest.raises(ValidationError, match="non-empty dict"):
        TopicRetriever(embed).fit(docs, {})
    with pytest.raises(ValidationError, match="has no keyword"):
        TopicRetriever(embed).fit(docs, {"a": ["  "]})
    with pytest.raises(ValidationError, match="to match the documents"):
        TopicRetriever(lambda ws: np.ones((len(ws), 3), np.float32)).fit(docs, topics)
    with pytest.raises(ValidationError, match="NaN"):
        TopicRetriever(lambda ws: np.full((len(ws), 16), np.nan, np.float32)).fit(docs, topics)
    with pytest.raises(ValidationError, match="callable"):
        TopicRetriever("minilm").fit(docs, topics)
    with pytest.raises(ValidationError, match="n_neighbors"):
        TopicRetriever(embed, n_neighbors=0).fit(docs, topics)
    with pytest.raises(ValidationError, match="keyword_weight"):
        TopicRetriever(embed, keyword_weight=2.0).fit(docs, topics)
    with pytest.raises(ValidationError, match="keyword_mode"):
        TopicRetriever(embed, keyword_mode="sum").fit(docs, topics)
    bad = docs.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValidationError):
        TopicRetriever(embed).fit(bad, topics)
    tr = TopicRetriever(embed).fit(docs, topics)
    with pytest.raises(ValidationError):
        tr.scores(docs[:, :5])
    with pytest.raises(ValidationError, match="k must be"):
        tr.retrieve(docs, k=0)


# -- keyphrases ---------------------------------------------------------------------------------------------
_DOCS = [
    "Protein folding in yeast cells. Protein folding is assisted by chaperones in yeast.",
    "Deep learning for image classification; convolutional networks classify images.",
    "The cat sat on the mat.",
    "",
]


def _bow_embedder():
    vocab = {}

    def embed(texts):
        out = np.zeros((len(texts), 128), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(".", " ").replace(";", " ").replace(",", " ").split():
                out[i, vocab.setdefault(w, len(vocab)) % 128] += 1.0
        return out

    return embed


def test_candidate_phrases_rules_and_tfidf_order():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    cands = candidate_phrases(_DOCS, max_words=3, n_candidates=50)
    assert len(cands) == len(_DOCS) and cands[3] == []
    for c in cands:
        for p in c:
            words = p.split()
            assert 1 <= len(words) <= 3
            assert words[0] not in ENGLISH_STOP_WORDS and words[-1] not in ENGLISH_STOP_WORDS
    assert "protein folding" in cands[0] and "yeast" in cands[0]
    assert cands[0].index("protein folding") < cands[0].index("cells")  # repeated phrase ranks above a single one
    assert all("in yeast" != p for p in cands[0])  # stop word at an end
    assert len(candidate_phrases(_DOCS, n_candidates=2)[0]) == 2
    # document frequencies from another collection: a word common there drops
    ref = ["yeast " * 3] * 20 + ["protein"]
    top = candidate_phrases(["yeast protein"], max_words=1, n_candidates=2, df_texts=ref)[0]
    assert top[0] == "protein"


def test_keyphrase_extractor_mmr_matches_brute_force():
    embed = _bow_embedder()
    kx = KeyphraseExtractor(embed, top_n=3, diversity=0.0, n_candidates=8)
    got = kx.extract(_DOCS)
    assert got[3] == [] and len(got[0]) == 3
    cands = candidate_phrases(_DOCS, n_candidates=8)
    for i in range(3):
        D = _unit(embed([_DOCS[i]]))[0]
        C = _unit(embed(cands[i]))
        rel = C @ D
        order = sorted(range(len(cands[i])), key=lambda j: -rel[j])
        # diversity 0 = relevance order (ties may swap, so compare the relevance values)
        np.testing.assert_allclose(sorted(rel[[cands[i].index(p) for p in got[i]]], reverse=True),
                                   rel[order[:3]], atol=1e-6)
    # full diversity picks phrases that share nothing with the first one where it can
    div = KeyphraseExtractor(embed, top_n=2, diversity=1.0, n_candidates=8).extract(_DOCS[:1])[0]
    assert len(div) == 2 and not set(div[0].split()) & set(div[1].split())
    # precomputed document embeddings give the same result
    same = kx.extract(_DOCS, doc_embeddings=embed(_DOCS))
    assert same == got


def test_expand_documents_and_bad_input():
    out = expand_documents(["a b", "c"], [["x y"], []], repeat=2)
    assert out == ["a b ; x y ; x y", "c"]
    assert expand_documents(["a"], [["k"]], repeat=0) == ["a"]
    with pytest.raises(ValidationError, match="keyphrase lists"):
        expand_documents(["a"], [])
    with pytest.raises(ValidationError, match="repeat"):
        expand_documents(["a"], [["k"]], repeat=-1)
    with pytest.raises(ValidationError, match="not a single str"):
        candidate_phrases("one text")
    with pytest.raises(ValidationError, match="not str"):
        candidate_phrases(["ok", 3])
    with pytest.raises(ValidationError, match="no texts"):
        KeyphraseExtractor(_bow_embedder()).extract([])
    with pytest.raises(ValidationError, match="top_n"):
        KeyphraseExtractor(_bow_embedder(), top_n=0).extract(_DOCS)
    with pytest.raises(ValidationError, match="diversity"):
        KeyphraseExtractor(_bow_embedder(), diversity=1.5).extract(_DOCS)
    with pytest.raises(ValidationError, match="returned shape"):
        KeyphraseExtractor(lambda t: np.ones((1, 4), np.float32)).extract(_DOCS)
    with pytest.raises(ValidationError, match="doc_embeddings"):
        KeyphraseExtractor(_bow_embedder()).extract(_DOCS, doc_embeddings=np.ones((2, 128)))


# -- CLI ----------------------------------------------------------------------------------------------------
class _FakeEmbedder:
    """Stands in for hashlearn.embed.Embedder in the CLI: hashed bag of words, 64 dims."""

    def __init__(self, model=None, **kwargs):
        self.vocab = {}

    def encode(self, texts, use_cache=True):
        out = np.zeros((len(texts), 64), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(".", " ").replace(";", " ").split():
                out[i, self.vocab.setdefault(w, len(self.vocab)) % 64] += 1.0
        return out + 1e-3


def _write_corpus(path):
    import json

    docs = [("d1", "Yeast", "protein folding in yeast cells"), ("d2", "Yeast 2", "yeast protein chaperones"),
            ("d3", "Vision", "image classification with networks"), ("d4", "Vision 2", "convolutional image networks")]
    path.write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))


def test_cli_topics_and_keyphrases(tmp_path, monkeypatch, capsys):
    import json

    import hashlearn.embed
    from hashlearn.cli import main

    monkeypatch.setattr(hashlearn.embed, "Embedder", _FakeEmbedder)
    corpus = tmp_path / "corpus.jsonl"
    _write_corpus(corpus)
    out = tmp_path / "topics.json"
    rc = main(["text", "topics", str(corpus), "--topic", "bio=yeast,protein", "--topic", "cv=image,networks",
               "-k", "2", "--n-neighbors", "2", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert {d for d, _ in res["bio"]} == {"d1", "d2"} and {d for d, _ in res["cv"]} == {"d3", "d4"}
    kp, exp = tmp_path / "kp.json", tmp_path / "expanded.jsonl"
    rc = main(["text", "keyphrases", str(corpus), "--top-n", "2", "--json", str(kp), "--expanded", str(exp)])
    assert rc == 0
    phrases = json.loads(kp.read_text())
    assert set(phrases) == {"d1", "d2", "d3", "d4"} and all(1 <= len(v) <= 2 for v in phrases.values())
    rows = [json.loads(line) for line in exp.read_text().splitlines()]
    assert [r["_id"] for r in rows] == ["d1", "d2", "d3", "d4"]
    assert all(p in rows[0]["text"] for p in phrases["d1"])
    assert main(["text", "topics", str(corpus), "--topic", "nokeywords"]) == 2
    assert "NAME=kw1,kw2" in capsys.readouterr().err
    assert main(["text", "topics", str(corpus), "-t", "a=x", "-t", "a=y"]) == 2
    assert "duplicate topic" in capsys.readouterr().err
    assert main(["text", "keyphrases", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such corpus" in capsys.readouterr().err
