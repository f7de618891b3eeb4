"""Near-duplicate detection: exact verification, clusters vs brute force, streaming, errors, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.sparse.csgraph import connected_components
import scipy.sparse as sp

from hashlearn.apps.dedup import NearDuplicates, exact_jaccard_pairs, iter_text_file
from hashlearn.cli import main
from hashlearn.errors import DataFileError, ValidationError

VOCAB = [f"w{i}" for i in range(300)]


def _corpus(n_base=150, n_dup=100, seed=0):
    """Random sentences plus edited copies (one word replaced / dropped) of some of them."""
    rng = np.random.default_rng(seed)
    base = [" ".join(rng.choice(VOCAB, size=int(rng.integers(10, 16)))) for _ in range(n_base)]
    texts = list(base)
    for _ in range(n_dup):
        words = texts[int(rng.integers(len(texts)))].split()
        i = int(rng.integers(len(words)))
        if rng.random() < 0.5:
            words[i] = str(rng.choice(VOCAB))
        else:
            del words[i]
        texts.append(" ".join(words))
    return texts


def _shingles(t, q):
    return {t[i : i + q] for i in range(len(t) - q + 1)} if len(t) >= q else ({t} if t else set())


def _brute_pairs(texts, q, t):
    sets = [_shingles(x, q) for x in texts]
    out = {}
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            u = len(sets[i] | sets[j])
            if u and len(sets[i] & sets[j]) / u >= t:
                out[(i, j)] = len(sets[i] & sets[j]) / u
    return out


def test_exact_jaccard_matches_python_sets():
    texts = _corpus(30, 20, seed=1) + ["", "ab"]
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(texts), size=(200, 2))
    pairs[0] = [len(texts) - 2, len(texts) - 2]
    got = exact_jaccard_pairs(texts, pairs, q=4)
    for (i, j), g in zip(pairs.tolist(), got):
        a, b = _shingles(texts[i], 4), _shingles(texts[j], 4)
        want = len(a & b) / len(a | b) if (a | b) else 0.0
        assert g == pytest.approx(want)
    words = exact_jaccard_pairs(["a b c", "c b d"], np.array([[0, 1]]), q=0)
    assert words.tolist() == [0.5]


def test_clusters_match_brute_force():
    texts = _corpus(seed=2)
    t = 0.7
    res = NearDuplicates(t, q=5, random_state=0).run(texts)
    brute = _brute_pairs(texts, 5, t)
    got = {tuple(p): s for p, s in zip(res.pairs.tolist(), res.similarities)}
    assert set(got) <= set(brute)  # verified pairs are true near-duplicates, with exact similarities
    for p, s in got.items():
        assert s == pytest.approx(brute[p])
    assert len(got) >= 0.95 * len(brute) and len(brute) > 50
    # labels are the connected components of the verified pairs, named by their smallest member
    n = len(texts)
    g = sp.coo_matrix((np.ones(len(got)), tuple(np.array(list(got)).T)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    for c in np.unique(comp):
        members = np.flatnonzero(comp == c)
        assert (res.labels[members] == members.min()).all()
    s = res.summary()
    assert s["n_texts"] == n and s["n_verified_pairs"] == len(got) and s["n_candidates"] >= len(got)
    assert sum(len(c) for c in res.clusters()) == s["n_duplicates"] + s["n_clusters"]


def test_streaming_source_and_chunks_give_the_same_result():
    texts = _corpus(80, 60, seed=3)
    full = NearDuplicates(0.6, q=4, random_state=1).run(texts)
    streamed = NearDuplicates(0.6, q=4, chunk_size=17, random_state=1).run(lambda: iter(texts))
    np.testing.assert_array_equal(full.labels, streamed.labels)
    np.testing.assert_array_equal(full.pairs, streamed.pairs)
    msgs = []
    NearDuplicates(0.6, q=4, chunk_size=50).run(texts, progress=msgs.append)
    assert any("sketched 100" in m for m in msgs)


def test_word_tokens_and_empty_texts():
    texts = ["a b c d", "d c b a", "", "a b c d e", "", "zz yy"]
    res = NearDuplicates(0.75, q=0, bands=32, rows=4, random_state=0).run(texts)  # P(miss J=0.8) ~ 1e-7
    assert res.labels.tolist() == [0, 0, 2, 0, 4, 5]
    assert res.n_empty == 2


def test_exact_duplicates_in_a_huge_bucket_are_chained():
    texts = ["the same text over and over"] * 500 + ["something else entirely"]
    res = NearDuplicates(0.9, max_bucket=5).run(texts)
    assert (res.labels[:500] == 0).all() and res.labels[500] == 500
    assert res.n_candidates < 500 * 5  # windowed, not 500 choose 2


def test_cosine_metric_matches_brute_force():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 32)).astype(np.float32)
    X[200:260] = X[:60] + 0.05 * rng.standard_normal((60, 32)).astype(np.float32)
    X[299] = 0.0
    t = 0.95
    res = NearDuplicates(t, metric="cosine", n_perm=256, random_state=0).run(X)
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    S = Xn @ Xn.T
    brute = {(i, j) for i in range(300) for j in range(i + 1, 300) if S[i, j] >= t}
    got = set(map(tuple, res.pairs.tolist()))
    assert got <= brute and len(got) >= 0.95 * len(brute) and len(brute) >= 60
    assert res.n_empty == 1 and res.labels[299] == 299


@pytest.mark.parametrize("kwargs, data, msg", [
    ({"threshold": 0.0}, ["a"], "threshold"),
    ({"metric": "l1"}, ["a"], "metric"),
    ({"q": -1}, ["a"], "q must be"),
    ({}, [], "empty"),
    ({}, ["ok", 3], "record 1 is int"),
    ({}, "a single string", "single string"),
    ({"metric": "cosine"}, np.zeros((0, 3)), "non-empty 2-D"),
    ({"metric": "cosine"}, np.array([[1.0, np.nan]]), "NaN"),
])
def test_bad_input(kwargs, data, msg):
    with pytest.raises(ValidationError, match=msg):
        NearDuplicates(**kwargs).run(data)


def test_source_that_changes_between_passes_is_an_error():
    calls = []

    def source():
        calls.append(1)
        return iter(["abc def ghi", "abc def ghj"] * (3 if len(calls) == 1 else 2))

    with pytest.raises(ValidationError, match="first pass"):
        NearDuplicates(0.5, q=3).run(source)


def test_iter_text_file_reports_bad_line(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"one\r\ntwo\nthr\xffee\n")
    it = iter_text_file(p)
    assert [next(it), next(it)] == ["one", "two"]
    with pytest.raises(DataFileError, match="line 3"):
        next(it)
    with pytest.raises(DataFileError, match="no such file"):
        list(iter_text_file(tmp_path / "missing.txt"))


def test_cli_dedup_text_file_and_table(tmp_path):
    texts = _corpus(60, 40, seed=5)
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n")
    out, js = tmp_path / "clusters.csv", tmp_path / "d.json"
    assert main(["dedup", str(src), "--threshold", "0.7", "-o", str(out), "--json", str(js), "--quiet"]) == 0
    summary = json.loads(js.read_text())
    expect = NearDuplicates(0.7).run(texts)
    assert summary["n_clusters"] == expect.summary()["n_clusters"] > 0
    df = pd.read_csv(out)
    assert len(df) == summary["n_duplicates"] + summary["n_clusters"]
    np.testing.assert_array_equal(df.cluster.to_numpy(), expect.labels[df.id.to_numpy()])
    table = tmp_path / "t.csv"
    pd.DataFrame({"key": [f"k{i}" for i in range(len(texts))], "body": texts}).to_csv(table, index=False)
    out2 = tmp_path / "c2.csv"
    assert main(["dedup", str(table), "--column", "body", "--id-col", "key", "--threshold", "0.7",
                 "-o", str(out2), "--quiet"]) == 0
    df2 = pd.read_csv(out2)
    assert df2.id.str.startswith("k").all() and len(df2) == len(df)


def test_cli_dedup_errors(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("a,b\nx,y\n")
    assert main(["dedup", str(table), "--quiet"]) == 2
    assert "--column" in capsys.readouterr().err
    assert main(["dedup", str(tmp_path / "none.txt"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\n")
    assert main(["dedup", str(bad), "--quiet"]) == 2
    assert "line 2" in capsys.readouterr().err
