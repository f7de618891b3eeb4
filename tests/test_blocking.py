"""Entity blocking: blockers against brute-force definitions, metrics, input handling and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashlearn.apps.blocking import (
    BLOCKING_METHODS,
    EmbeddingBlocker,
    MinHashBlocker,
    NeuralBlocker,
    SimHashBlocker,
    SortedNeighbourhoodBlocker,
    StandardBlocker,
    UnionBlocker,
    blocking_metrics,
    get_blocker_class,
    list_blockers,
    make_blocker,
    perturb_record,
    prepare_table,
    read_table,
    read_truth,
    run_blocking,
    write_pairs,
)
from hashlearn.cli import main
from hashlearn.errors import DataFileError, HashlearnError, UnknownMethodError, ValidationError
from hashlearn.hashing.minhash import MinHash

WORDS = ["anna", "bert", "carl", "dora", "emil", "fred", "gina", "hugo", "ines", "jack", "kurt", "lena",
         "mona", "nils", "olga", "paul", "rosa", "sven", "tina", "ulla"]
STREETS = ["main street", "high road", "park lane", "mill way", "oak avenue", "elm court"]


def _typo(s, rng):
    if len(s) < 3:
        return s
    i = int(rng.integers(len(s) - 1))
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :]


def _tables(n=120, seed=0):
    """A linkage problem: right = noisy copies of the first half of left plus unrelated records."""
    rng = np.random.default_rng(seed)
    left = pd.DataFrame({
        "name": [f"{rng.choice(WORDS)} {rng.choice(WORDS)}son" for _ in range(n)],
        "street": [f"{rng.integers(1, 99)} {rng.choice(STREETS)}" for _ in range(n)],
        "city": [str(rng.choice(["berlin", "bonn", "koeln", "essen"])) for _ in range(n)],
    }, index=[f"L{i}" for i in range(n)])
    m = n // 2
    right = pd.DataFrame({
        "name": [_typo(left.name.iloc[i], rng) for i in range(m)] + [f"{rng.choice(WORDS)} x" for _ in range(m)],
        "street": [left.street.iloc[i] for i in range(m)] + [f"{rng.integers(1, 99)} {rng.choice(STREETS)}" for _ in range(m)],
        "city": [left.city.iloc[i] for i in range(m)] + ["bonn"] * m,
    }, index=[f"R{i}" for i in range(n)])
    truth = np.stack([np.arange(m), np.arange(m)], axis=1)
    return left, right, truth


def _hash_embedder(dim=64):
    """A deterministic cheap text embedder: hashed character 3-grams, random-projected."""
    proj = np.random.default_rng(123).standard_normal((4096, dim)).astype(np.float32)

    def encode(texts):
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            t = f"  {t} "
            idx = [hash_stable(t[j : j + 3]) % 4096 for j in range(len(t) - 2)]
            if idx:
                out[i] = proj[idx].sum(axis=0)
        return out

    class E:
        def encode(self, texts):
            return encode(list(texts))

    return E()


def hash_stable(s):
    h = 2166136261
    for c in s.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def _pairset(p):
    return set(map(tuple, np.asarray(p).tolist()))


# -- records ---------------------------------------------------------------------------------------
def test_prepare_table_counts_missing_and_empty_records():
    df = pd.DataFrame({"a": ["X ", None, "", np.nan], "b": ["y", "", None, 3.0]}, index=["1", "2", "3", "4"])
    t = prepare_table(df, fields=["a", "b"])
    assert t.n_missing == {"a": 3, "b": 2}
    assert t.texts() == ["x y", "", "", "3"]
    assert t.n_empty == 2
    assert prepare_table(df, fields="a,b", lowercase=False).texts()[0] == "X y"


@pytest.mark.parametrize("kwargs, msg", [
    ({"fields": ["nope"]}, "missing field"),
    ({"id_col": "zz"}, "no id column"),
    ({"fields": []}, "no fields"),
])
def test_prepare_table_errors_name_the_problem(kwargs, msg):
    df = pd.DataFrame({"a": ["x"], "b": ["y"]})
    with pytest.raises(ValidationError, match=msg):
        prepare_table(df, **kwargs)


def test_prepare_table_rejects_empty_duplicates_and_bad_bytes():
    with pytest.raises(ValidationError, match="no records"):
        prepare_table(pd.DataFrame({"a": []}))
    with pytest.raises(ValidationError, match="duplicate ids"):
        prepare_table(pd.DataFrame({"id": ["1", "1"], "a": ["x", "y"]}), id_col="id")
    with pytest.raises(ValidationError, match="not UTF-8"):
        prepare_table(pd.DataFrame({"a": [b"\xff\xfe"]}))


def test_read_table_non_utf8_and_missing(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b"id,name\n1,caf\xe9\n")
    with pytest.raises(DataFileError, match="not valid utf-8"):
        read_table(p)
    with pytest.raises(DataFileError, match="no such file"):
        read_table(tmp_path / "none.csv")
    q = tmp_path / "ok.csv"
    q.write_text("id|name\n007|x\n008|\n")
    df = read_table(q, sep="|")
    assert df["id"].tolist() == ["007", "008"] and df["name"].tolist() == ["x", ""]


def test_read_truth_header_unknown_ids_and_dedup(tmp_path):
    left = prepare_table(pd.DataFrame({"id": ["a", "b", "c"], "v": ["x", "y", "z"]}), id_col="id")
    right = prepare_table(pd.DataFrame({"id": ["p", "q"], "v": ["x", "y"]}), id_col="id")
    f = tmp_path / "gt.csv"
    f.write_text("D1,D2\na,q\nc,p\na,q\n")
    assert read_truth(f, left, right).tolist() == [[0, 1], [2, 0]]
    f.write_text("a,q\n")  # no header
    assert read_truth(f, left, right).tolist() == [[0, 1]]
    f.write_text("a,q\nzz,p\nb,yy\n")
    with pytest.raises(ValidationError, match="2 of 3 true links name ids"):
        read_truth(f, left, right)
    f.write_text("c,a\na,a\n")  # dedup: ordered, self pairs dropped
    assert read_truth(f, left).tolist() == [[0, 2]]
    f.write_text("onlyone\n")
    with pytest.raises(DataFileError, match="two columns"):
        read_truth(f, left, right)


# -- classic blockers vs brute force ---------------------------------------------------------------
@pytest.mark.parametrize("dedup", [False, True])
def test_standard_blocking_equals_brute_force(dedup):
    left, right, _ = _tables(80, seed=1)
    L = prepare_table(left)
    R = None if dedup else prepare_table(right)
    got = _pairset(StandardBlocker(on="city").candidate_pairs(L, R))
    other = L if dedup else R
    lk, rk = L.texts(["city"]), other.texts(["city"])
    want = {(i, j) for i in range(len(L)) for j in range(len(other))
            if lk[i] and lk[i] == rk[j] and (not dedup or i < j)}
    assert got == want and len(want) > 0


@pytest.mark.parametrize("dedup", [False, True])
@pytest.mark.parametrize("window", [1, 3, 5])
def test_sorted_neighbourhood_equals_definition(dedup, window):
    left, right, _ = _tables(60, seed=2)
    L = prepare_table(left)
    R = None if dedup else prepare_table(right)
    other = L if dedup else R
    got = _pairset(SortedNeighbourhoodBlocker(on="name", window=window).candidate_pairs(L, R))
    lk, rk = L.texts(["name"]), other.texts(["name"])
    keys = sorted(set(lk) | set(rk))
    rank = {k: i for i, k in enumerate(keys)}
    want = {(i, j) for i in range(len(L)) for j in range(len(other))
            if abs(rank[lk[i]] - rank[rk[j]]) <= window // 2 and (not dedup or i < j)}
    assert got == want


def test_classic_blockers_match_recordlinkage():
    import recordlinkage as rl  # a core dependency: never skipped
    left, right, _ = _tables(80, seed=3)
    L, R = prepare_table(left, lowercase=False), prepare_table(right, lowercase=False)
    for ours, theirs in [(StandardBlocker(on="city"), rl.index.Block("city")),
                         (SortedNeighbourhoodBlocker(on="name", window=3), rl.index.SortedNeighbourhood("name", window=3))]:
        mi = theirs.index(left, right)
        want = {(left.index.get_loc(a), right.index.get_loc(b)) for a, b in mi}
        assert _pairset(ours.candidate_pairs(L, R)) == want


def test_sorted_neighbourhood_rejects_even_window():
    L = prepare_table(pd.DataFrame({"a": ["x", "y"]}))
    with pytest.raises(ValidationError, match="odd"):
        SortedNeighbourhoodBlocker(window=2).candidate_pairs(L)


# -- MinHash ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dedup", [False, True])
def test_minhash_blocker_equals_band_sharing_brute_force(dedup):
    left, right, _ = _tables(100, seed=4)
    L = prepare_table(left)
    R = None if dedup else prepare_table(right)
    b = MinHashBlocker(0.5, n_perm=64, max_bucket=None, random_state=7)
    got = _pairset(b.candidate_pairs(L, R))
    bands, rows = b.banding()
    mh = MinHash(64, shingle=3, random_state=7).fit()
    sl = mh.transform(L.texts())
    sr = sl if dedup else mh.transform(R.texts())
    want = set()
    for i in range(sl.shape[0]):
        for j in range(sr.shape[0]):
            if dedup and j <= i:
                continue
            if any(np.array_equal(sl[i, k * rows:(k + 1) * rows], sr[j, k * rows:(k + 1) * rows]) for k in range(bands)):
                want.add((i, j))
    assert got == want and len(want) > 0


def test_minhash_blocker_finds_noisy_copies_and_filters():
    left, right, truth = _tables(200, seed=5)
    L, R = prepare_table(left), prepare_table(right)
    base = MinHashBlocker(0.3, random_state=0)
    pairs = base.candidate_pairs(L, R)
    m = blocking_metrics(pairs, truth, len(L), len(R))
    assert m["pair_completeness"] >= 0.95
    top = MinHashBlocker(0.3, max_per_record=1, random_state=0).candidate_pairs(L, R)
    assert np.bincount(top[:, 0]).max() <= 1 and _pairset(top) <= _pairset(pairs)
    ms = MinHashBlocker(0.3, min_similarity=0.6, random_state=0)
    filt = ms.candidate_pairs(L, R)
    sig_l, sig_r = ms.sketch(L), ms.sketch(R)
    est = np.mean(sig_l[pairs[:, 0]] == sig_r[pairs[:, 1]], axis=1)
    assert _pairset(filt) == _pairset(pairs[est >= 0.6])


def test_minhash_word_tokens_and_empty_records_never_paired():
    df = pd.DataFrame({"a": ["red apple pie", "apple pie red", "", None, "blue sky"]})
    L = prepare_table(df)
    pairs = MinHashBlocker(0.5, q=0, random_state=0).candidate_pairs(L)
    assert _pairset(pairs) == {(0, 1)}  # same word set; the empty records 2, 3 are not paired
    assert L.n_empty == 2


def test_febrl4_minhash_meets_the_blocking_target():
    from hashlearn.datasets import load_dataset

    ds = load_dataset("febrl4")
    L, R = prepare_table(ds.left), prepare_table(ds.right)
    run = run_blocking(MinHashBlocker(0.4, n_perm=128, random_state=0), L, R, truth=ds.true_link_positions)
    assert run.metrics["pair_completeness"] >= 0.99
    assert run.metrics["reduction_ratio"] >= 0.9995


# -- embedding blockers ----------------------------------------------------------------------------
@pytest.mark.parametrize("dedup", [False, True])
def test_embedding_blocker_equals_brute_force_knn(dedup):
    left, right, _ = _tables(50, seed=6)
    L = prepare_table(left)
    R = None if dedup else prepare_table(right.iloc[:40])
    E = _hash_embedder()
    k = 3
    got = _pairset(EmbeddingBlocker(k, embedder=E).candidate_pairs(L, R))
    XL = E.encode(L.texts())
    XL /= np.linalg.norm(XL, axis=1, keepdims=True)
    if dedup:
        S = XL @ XL.T
        np.fill_diagonal(S, -np.inf)
        want = set()
        for i in range(S.shape[0]):
            for j in np.argsort(-S[i], kind="stable")[:k]:
                want.add((min(i, j), max(i, j)))
    else:
        XR = E.encode(R.texts())
        XR /= np.linalg.norm(XR, axis=1, keepdims=True)
        S = XR @ XL.T  # right is the smaller table: k per right record
        want = {(int(j), i) for i in range(S.shape[0]) for j in np.argsort(-S[i], kind="stable")[:k]}
        assert len(got) == k * len(R)
    # ties may pick different ids at equal score: compare scores of the k-th neighbours instead of ids
    assert len(got ^ want) <= 2


def test_simhash_blocker_pairs_identical_records_and_respects_k():
    left, right, truth = _tables(80, seed=7)
    right.iloc[: len(truth)] = left.iloc[: len(truth)].values  # exact copies
    L, R = prepare_table(left), prepare_table(right)
    E = _hash_embedder()
    pairs = SimHashBlocker(8, bits_per_table=10, embedder=E).candidate_pairs(L, R)
    assert _pairset(map(tuple, truth)) <= _pairset(pairs)
    pk = SimHashBlocker(8, bits_per_table=6, k=2, embedder=E).candidate_pairs(L, R)
    assert np.bincount(pk[:, 0]).max() <= 2
    assert _pairset(map(tuple, truth)) <= _pairset(pk)


def test_perturb_record_is_seeded_and_noisy():
    vals = ["john smith", "12 main street", "springfield"]
    a = perturb_record(vals, np.random.default_rng(1))
    assert a == perturb_record(vals, np.random.default_rng(1))
    outs = {perturb_record(vals, np.random.default_rng(s)) for s in range(20)}
    assert len(outs) > 5


def test_neural_blocker_trains_and_hashes():
    pytest.importorskip("torch")
    left, right, truth = _tables(120, seed=8)
    L, R = prepare_table(left), prepare_table(right)
    E = _hash_embedder()
    nb = NeuralBlocker(5, n_bits=64, epochs=4, lr=3e-3, batch_size=32, hidden=64, embedder=E, random_state=0)
    run = run_blocking(nb, L, R, truth=truth)
    assert len(nb.losses_) == 4 and nb.losses_[-1] < nb.losses_[0]
    assert run.pairs.shape[0] == 5 * len(L) and np.bincount(run.pairs[:, 0]).max() == 5
    assert run.metrics["pair_completeness"] >= 0.9
    losses = nb.losses_
    nb.k = 2  # same tables: the trained projection is reused, not retrained
    p2 = nb.candidate_pairs(L, R)
    assert nb.losses_ is losses and p2.shape[0] == 2 * len(L)
    X = E.encode(L.texts())
    codes = nb.codes(X)
    assert codes.dtype == np.uint64 and codes.shape == (len(L), 1)
    # supervised: labelled pairs as positives
    sup = NeuralBlocker(5, n_bits=64, epochs=2, hidden=64, embedder=E, train_pairs=truth[:40], random_state=0)
    run2 = run_blocking(sup, L, R, truth=truth)
    assert run2.metrics["pair_completeness"] >= 0.9
    with pytest.raises(ValidationError, match="train_pairs"):
        NeuralBlocker(2, embedder=E, train_pairs=np.array([[0, 10_000], [1, 1]])).candidate_pairs(L, R)


def test_neural_training_leaves_global_torch_state_alone_and_is_seeded():
    torch = pytest.importorskip("torch", reason="the neural blocker trains with torch")
    left, right, _ = _tables(40, seed=13)
    L, R = prepare_table(left), prepare_table(right)
    kw = dict(n_bits=64, epochs=2, batch_size=16, hidden=32, lr=3e-3, embedder=_hash_embedder(), random_state=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # one thread: equal runs give equal floats, and the test stays fast
        torch.manual_seed(1234)
        state = torch.get_rng_state()
        a = NeuralBlocker(3, **kw).fit(L, R)
        assert torch.equal(torch.get_rng_state(), state)
        torch.rand(7)  # the global generator moves on; a refit must not care
        b = NeuralBlocker(3, **kw).fit(L, R)
        c = NeuralBlocker(3, **{**kw, "random_state": 6}).fit(L, R)
        pa, pb = a.candidate_pairs(L, R), b.candidate_pairs(L, R)
    finally:
        torch.set_num_threads(threads)
    assert a.losses_ == b.losses_ and np.array_equal(a.hyperplanes_, b.hyperplanes_)
    assert all(torch.equal(p, q) for p, q in zip(a.net_.parameters(), b.net_.parameters()))
    np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(c.hyperplanes_, a.hyperplanes_) and c.losses_ != a.losses_


def test_neural_training_restores_the_torch_thread_count():
    torch = pytest.importorskip("torch", reason="the neural blocker trains with torch")
    from hashlearn.apps.blocking.training import limit_torch_threads

    left, right, _ = _tables(20, seed=14)
    L, R = prepare_table(left), prepare_table(right)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        with pytest.raises(RuntimeError, match="inside"):
            with limit_torch_threads(2):
                assert torch.get_num_threads() == 2
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 4
        NeuralBlocker(2, n_bits=64, epochs=1, hidden=16, embedder=_hash_embedder(), random_state=0).fit(L, R)
        assert torch.get_num_threads() == 4
        torch.set_num_threads(1)
        with limit_torch_threads(2):
            assert torch.get_num_threads() == 1  # never raised
    finally:
        torch.set_num_threads(threads)


def test_neural_projection_starts_as_torch_linear_seeded_the_same():
    # the local generator reproduces torch.nn.Linear's own initialisation after torch.manual_seed(seed),
    # which is what training used before it stopped seeding the global generator (results unchanged)
    torch = pytest.importorskip("torch", reason="the neural blocker trains with torch")
    from hashlearn.apps.blocking.training import _projection_net

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        ref = torch.nn.Linear(24, 16)
    net = _projection_net(24, 16, torch.Generator().manual_seed(5))
    assert torch.equal(net[0].weight, ref.weight) and torch.equal(net[0].bias, ref.bias)
    assert not net[2].weight.any() and not net[2].bias.any()


# -- union, registry, metrics ----------------------------------------------------------------------
def test_union_is_the_set_union_with_first_blocker_credited():
    left, right, _ = _tables(80, seed=9)
    L, R = prepare_table(left), prepare_table(right)
    a, b = StandardBlocker(on="city"), MinHashBlocker(0.4, random_state=0)
    pa, pb = _pairset(a.candidate_pairs(L, R)), _pairset(b.candidate_pairs(L, R))
    u = UnionBlocker([a, b])
    labelled = list(u.iter_labelled(L, R))
    got = [tuple(p) for chunk, _ in labelled for p in chunk.tolist()]
    assert len(got) == len(set(got)) and set(got) == pa | pb
    from_b = {tuple(p) for chunk, lab in labelled if lab == "minhash" for p in chunk.tolist()}
    assert from_b == pb - pa
    assert u.last_sources_ == {"standard": len(pa), "minhash": len(pb - pa)}


def test_make_blocker_names_and_defaults():
    assert list_blockers() == list(BLOCKING_METHODS) == ["standard", "sortedneighbourhood", "minhash", "simhash",
                                                         "embedding", "neural"]
    for name in list_blockers():
        b = make_blocker(name)
        assert b.name == name and type(b) is get_blocker_class(name) and isinstance(b, BLOCKING_METHODS[name])
    assert make_blocker("minhash", threshold=0.3).threshold == 0.3
    mh = make_blocker("minhash", threshold=None, k=None, window=None)  # None keeps each method's default
    assert type(mh) is MinHashBlocker and mh.threshold == 0.5 and mh.random_state == 0
    assert make_blocker("minhash", random_state=7).random_state == 7
    assert type(make_blocker("standard", random_state=7)) is StandardBlocker  # deterministic: no seed to take
    assert type(make_blocker("sortedneighborhood")) is SortedNeighbourhoodBlocker
    assert type(make_blocker(" SN ", window=5)) is SortedNeighbourhoodBlocker


def test_make_blocker_refuses_unknown_parameters_naming_the_accepted_ones():
    with pytest.raises(ValidationError, match=r"^minhash does not accept parameter\(s\) thresold; no blocker does") as ei:
        make_blocker("minhash", thresold=0.9)
    assert "threshold" in str(ei.value) and isinstance(ei.value, HashlearnError)
    with pytest.raises(ValidationError, match="thresold"):
        make_blocker("minhash", thresold=None)  # a misspelt name is refused even without a value
    accepted = "bands, fields, max_bucket, max_per_record, min_similarity, n_perm, q, random_state, rows, threshold"
    with pytest.raises(ValidationError, match=rf"^minhash does not accept parameter\(s\) k; it accepts {accepted}$"):
        make_blocker("minhash", k=5)
    with pytest.raises(ValidationError, match=r"standard does not accept parameter\(s\) k, window; it accepts key, on"):
        make_blocker("standard", window=3, k=2)


def test_make_blocker_unknown_methods_list_the_known_ones():
    known = "known: standard, sortedneighbourhood, minhash, simhash, embedding, neural, union:a\\+b"
    with pytest.raises(UnknownMethodError, match=f"unknown blocking method 'bogus'; {known}"):
        make_blocker("bogus")
    with pytest.raises(UnknownMethodError, match=f"unknown blocking method 'bogus'; {known}"):
        make_blocker("union:minhash+bogus")
    with pytest.raises(UnknownMethodError, match="at least two"):
        make_blocker("union:minhash")
    with pytest.raises(UnknownMethodError, match=known):
        get_blocker_class("")


def test_make_blocker_union_passes_each_part_only_what_it_accepts():
    u = make_blocker("union:standard+minhash+sn", threshold=0.3, on=["city"], window=5, k=None, random_state=4)
    std, mh, sn = u.blockers
    assert type(u) is UnionBlocker and [type(b) for b in u.blockers] == [StandardBlocker, MinHashBlocker,
                                                                         SortedNeighbourhoodBlocker]
    assert std.on == sn.on == ["city"] and sn.window == 5 and mh.threshold == 0.3 and mh.random_state == 4
    assert vars(std) == {"on": ["city"], "key": None}
    with pytest.raises(ValidationError, match=r"^union:standard\+minhash does not accept parameter\(s\) n_tables; "
                                              r"no part accepts them \(standard accepts key, on; minhash accepts "):
        make_blocker("union:standard+minhash", n_tables=4, threshold=0.3)


def test_blocking_metrics_by_hand():
    m = blocking_metrics(np.array([[0, 1], [1, 0], [0, 1]]), np.array([[0, 1], [2, 2]]), 3, 4)
    assert m == {"pair_completeness": 0.5, "reduction_ratio": 1 - 2 / 12, "pairs_quality": 0.5,
                 "n_candidates": 2, "n_true_links": 2, "n_found": 1}
    d = blocking_metrics(np.array([[1, 0], [0, 2]]), np.array([[0, 1]]), 4)
    assert d["pair_completeness"] == 1.0 and d["reduction_ratio"] == 1 - 2 / 6
    e = blocking_metrics(np.empty((0, 2)), np.empty((0, 2)), 3, 3)
    assert e["pair_completeness"] == 1.0 and e["pairs_quality"] == 0.0


def test_iter_candidates_streams_chunks_without_duplicates(monkeypatch):
    import hashlearn.apps.blocking.pairs as pairs

    monkeypatch.setattr(pairs, "_CHUNK", 50)
    left, right, _ = _tables(80, seed=10)
    L, R = prepare_table(left), prepare_table(right)
    chunks = list(StandardBlocker(on="city").iter_candidates(L, R))
    assert len(chunks) > 3
    allp = np.concatenate(chunks)
    assert len(_pairset(allp)) == allp.shape[0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_pairs_round_trip(tmp_path, suffix):
    left, right, _ = _tables(40, seed=11)
    L, R = prepare_table(left), prepare_table(right)
    pairs = StandardBlocker(on="city").candidate_pairs(L, R)
    out = tmp_path / f"pairs{suffix}"
    n = write_pairs(out, [(pairs[:10], "a"), (pairs[10:], "b")], L, R)
    df = pd.read_csv(out, dtype=str) if suffix == ".csv" else pd.read_parquet(out)
    assert n == len(df) == pairs.shape[0]
    assert list(df.columns) == ["left_id", "right_id", "blocker"]
    assert df.left_id.tolist() == L.ids[pairs[:, 0]].tolist() and df.blocker.iloc[-1] == "b"


# -- CLI -------------------------------------------------------------------------------------------
def _write_problem(tmp_path, sep="|"):
    left, right, truth = _tables(100, seed=12)
    lp, rp, gp = tmp_path / "left.csv", tmp_path / "right.csv", tmp_path / "gt.csv"
    left.rename_axis("id").reset_index().to_csv(lp, sep=sep, index=False)
    right.rename_axis("id").reset_index().to_csv(rp, sep=sep, index=False)
    pd.DataFrame({"D1": left.index[truth[:, 0]], "D2": right.index[truth[:, 1]]}).to_csv(gp, sep=sep, index=False)
    return lp, rp, gp, truth


def test_cli_block_contract(tmp_path):
    lp, rp, gp, truth = _write_problem(tmp_path)
    out, js = tmp_path / "pairs.csv", tmp_path / "m.json"
    code = main(["block", str(lp), str(rp), "--sep", "|", "--id-col", "id", "--fields", "name,street",
                 "--method", "minhash", "--threshold", "0.3", "-o", str(out), "--truth", str(gp),
                 "--json", str(js), "--quiet"])
    assert code == 0
    summary = json.loads(js.read_text())
    for key in ("pair_completeness", "reduction_ratio", "pairs_quality", "n_candidates", "seconds"):
        assert key in summary
    pairs = pd.read_csv(out, dtype=str)
    assert len(pairs) == summary["n_candidates"]
    found = set(zip(pairs.left_id, pairs.right_id)) & {(f"L{i}", f"R{i}") for i in truth[:, 0]}
    assert summary["pair_completeness"] == len(found) / len(truth) >= 0.9


def test_cli_block_union_dedup_and_parquet(tmp_path):
    lp, _, _, _ = _write_problem(tmp_path, sep=",")
    out = tmp_path / "p.parquet"
    assert main(["block", str(lp), "--id-col", "id", "--method", "union:standard+sortedneighbourhood",
                 "--on", "city", "-o", str(out), "--quiet"]) == 0
    df = pd.read_parquet(out)
    assert set(df.blocker) <= {"standard", "sortedneighbourhood"} and len(df) > 0
    assert (df.left_id != df.right_id).all()


@pytest.mark.parametrize("args, msg", [
    (["--fields", "nope"], "missing field"),
    (["--method", "bogus"], "unknown blocking method"),
    (["--method", "minhash", "--k", "5"], "-k does not apply to -m minhash; its options: --threshold, --n-perm"),
    (["--method", "standard", "--on", "city", "--window", "5"], "--window does not apply to -m standard; its options: --on"),
    (["--method", "union:standard+minhash", "--epochs", "2"], "--epochs does not apply to -m union:standard+minhash"),
    (["--threshold", "1.5"], "--threshold"),
])
def test_cli_block_errors(tmp_path, capsys, args, msg):
    lp, rp, _, _ = _write_problem(tmp_path)
    code = main(["block", str(lp), str(rp), "--sep", "|", "--id-col", "id", "--quiet", *args])
    assert code == 2 and msg in capsys.readouterr().err


def test_cli_block_truth_with_unknown_ids_and_bad_encoding(tmp_path, capsys):
    lp, rp, gp, _ = _write_problem(tmp_path)
    gp.write_text("D1|D2\nL1|R1\nL999|R2\n")
    assert main(["block", str(lp), str(rp), "--sep", "|", "--id-col", "id", "--truth", str(gp), "--quiet"]) == 2
    assert "name ids that are not in the tables" in capsys.readouterr().err
    lp.write_bytes(lp.read_bytes() + b"zz|caf\xe9|x|y\n")
    assert main(["block", str(lp), str(rp), "--sep", "|", "--id-col", "id", "--quiet"]) == 2
    assert "not valid utf-8" in capsys.readouterr().err


def test_cli_block_subprocess(tmp_path):
    lp, rp, gp, _ = _write_problem(tmp_path)
    js = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "hashlearn", "block", str(lp), str(rp), "--sep", "|",
                           "--id-col", "id", "--method", "standard", "--on", "city", "--truth", str(gp),
                           "--json", str(js)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pair_completeness" in proc.stdout
    assert json.loads(js.read_text())["pair_completeness"] == 1.0  # copies keep their city


# -- benchmark data (optional) ---------------------------------------------------------------------
ER = Path(__file__).resolve().parents[2] / "shared" / "data" / "er"


def test_dblp_acm_minhash_baseline():
    gt = ER / "dblp-acm" / "gt.csv"
    if not gt.exists():
        pytest.skip(f"benchmark data missing: {gt}")
    L = prepare_table(read_table(ER / "dblp-acm" / "dblp.csv", sep="%"), id_col="id", fields="title,authors")
    R = prepare_table(read_table(ER / "dblp-acm" / "acm.csv", sep="%"), id_col="id", fields="title,authors")
    truth = read_truth(gt, L, R, sep="%")
    assert truth.shape == (2224, 2)
    run = run_blocking(MinHashBlocker(0.3, max_per_record=5, random_state=0), L, R, truth=truth)
    assert run.metrics["pair_completeness"] >= 0.95
