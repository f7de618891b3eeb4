"""hashlearn.text.grank: click model, nDCG, robust aggregation, gossip messages and the network simulation.

Synthetic candidate sets: relevance depends on a hidden mix of features that the static ranker (dense
feature alone) only partly follows, so learning from clicks has something to find.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn.errors import FileFormatError, ValidationError
from hashlearn.text.grank import (FEATURE_NAMES, SCENARIOS, CandidateSet, Peer, PositionBiasedClicks, aggregate, ndcg10,
                                  run_scenarios, simulate, static_weights)


def synthetic(n_queries=200, C=30, seed=0) -> CandidateSet:
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n_queries, C, len(FEATURE_NAMES))).astype(np.float32)
    true_w = np.array([1.0, 1.5, 0.0, 0.0, 0.5, 0.0])
    utility = F @ true_w + 0.3 * rng.standard_normal((n_queries, C))
    grades = np.zeros((n_queries, C), np.float32)
    top = np.argsort(-utility, axis=1)[:, :2]
    np.put_along_axis(grades, top, 1.0, axis=1)
    ideal = np.full(n_queries, 1 + 1 / np.log2(3))
    return CandidateSet(F, np.ones((n_queries, C), bool), grades, ideal, [f"q{i}" for i in range(n_queries)])


def brute_ndcg10(w, cands):
    out = []
    for q in range(len(cands)):
        s = cands.features[q] @ w
        order = sorted(range(len(s)), key=lambda j: (-s[j], j))[:10]
        dcg = sum(cands.grades[q][j] / np.log2(r + 2) for r, j in enumerate(order))
        out.append(dcg / cands.ideal_dcg10[q])
    return np.array(out)


def test_ndcg10_matches_brute_force_and_perfect_ranking_scores_one():
    c = synthetic(n_queries=20)
    w = np.random.default_rng(1).standard_normal(len(FEATURE_NAMES))
    assert ndcg10(w, c) == pytest.approx(brute_ndcg10(w, c))
    perfect = CandidateSet(c.grades[:, :, None].repeat(len(FEATURE_NAMES), 2), c.valid, c.grades, c.ideal_dcg10,
                           c.query_ids)
    assert ndcg10(np.ones(len(FEATURE_NAMES)), perfect) == pytest.approx(1.0)


def test_click_model_is_position_biased_and_follows_relevance():
    rng = np.random.default_rng(0)
    model = PositionBiasedClicks(eta=1.0, click_relevant=1.0, click_irrelevant=0.0)
    grades = np.ones(10)
    rates = np.mean([model.clicks(grades, rng) for _ in range(20000)], axis=0)
    assert rates == pytest.approx(1.0 / np.arange(1, 11), abs=0.02)  # examination 1/rank, all relevant
    assert not np.any([model.clicks(np.zeros(10), rng) for _ in range(200)])  # never on irrelevant ones


def test_robust_aggregation_resists_one_outlier():
    honest = [np.array([1.0, 2.0, 3.0]) + 0.01 * i for i in range(4)]
    bad = np.array([-100.0, 500.0, -100.0])
    assert aggregate(honest + [bad], "median") == pytest.approx(np.median(np.array(honest + [bad]), axis=0))
    assert np.abs(aggregate(honest + [bad], "median") - honest[0]).max() < 0.1
    assert np.abs(aggregate(honest + [bad], "trimmed", trim=0.2) - honest[0]).max() < 0.1
    assert np.abs(aggregate(honest + [bad], "mean") - honest[0]).max() > 10
    with pytest.raises(ValidationError, match="aggregation"):
        aggregate(honest, "max")


def test_gossip_messages_round_trip_and_malformed_ones_are_refused():
    a, b = Peer(0, [1.0, 2.0, 3.0]), Peer(1, [0.0, 0.0, 0.0], aggregation="mean")
    msg = a.message(round_=7)
    assert len(msg) == 14 + 3 * 4
    b.receive(msg)
    b.merge()
    assert b.w == pytest.approx([0.5, 1.0, 1.5])
    liar = Peer(2, [1.0, 0.0, 0.0], poisoned=True, poison_scale=10.0)
    c = Peer(3, [0.0, 0.0, 0.0])
    c.receive(liar.message(0))
    assert c.inbox[0] == pytest.approx([-10.0, 0.0, 0.0])
    with pytest.raises(FileFormatError, match="malformed"):
        c.receive(msg[:-4])
    with pytest.raises(FileFormatError, match="shorter"):
        c.receive(b"GRK")


def test_a_peer_learns_from_clicks_to_beat_the_static_ranker():
    train, evaluation = synthetic(seed=0), synthetic(seed=1)
    rng = np.random.default_rng(0)
    p = Peer(0, static_weights(), rng=0)
    clicks = PositionBiasedClicks()
    for _ in range(400):
        q = int(rng.integers(len(train)))
        order = p.present(train.features[q], train.valid[q])
        p.learn(train.features[q], order, clicks.clicks(train.grades[q][order], rng))
    assert ndcg10(p.w, evaluation).mean() > 1.2 * ndcg10(static_weights(), evaluation).mean()


def test_network_simulation_gossip_churn_and_poisoning():
    train, evaluation = synthetic(seed=0), synthetic(seed=1)
    common = dict(n_peers=6, queries_per_peer=120, eval_every=40, random_state=0)
    static = ndcg10(static_weights(), evaluation).mean()
    res = simulate(train, evaluation, **common)
    assert res["steps"] == [0, 40, 80, 120] and res["ndcg"].shape == (4, 6)
    assert res["ndcg"][0] == pytest.approx(static)  # every peer starts from the static ranker
    assert res["bytes"][-1] == 6 * 3 * 12 * (14 + 4 * len(FEATURE_NAMES))  # 12 rounds, fanout 3
    clean_gain = res["ndcg"][-1].mean() - static
    assert clean_gain > 0.05
    local = simulate(train, evaluation, gossip=False, **common)
    assert local["bytes"][-1] == 0
    churn = simulate(train, evaluation, churn=0.3, **common)
    assert min(churn["online"]) < 6
    bad_mean = simulate(train, evaluation, n_poisoned=1, aggregation="mean", **common)
    bad_median = simulate(train, evaluation, n_poisoned=1, aggregation="median", **common)
    assert np.isnan(bad_mean["ndcg"][:, 0]).all()  # the poisoned peer is not scored
    assert np.nanmean(bad_mean["ndcg"][-1]) < static  # a -10x liar wrecks plain averaging
    assert np.nanmean(bad_median["ndcg"][-1]) - static > 0.9 * clean_gain * 0.8
    with pytest.raises(ValidationError):
        simulate(train, evaluation, n_peers=1)
    with pytest.raises(ValidationError, match="aggregation"):
        simulate(train, evaluation, aggregation="vote")


def test_run_scenarios_rows():
    train, evaluation = synthetic(seed=0), synthetic(seed=1)
    rows = run_scenarios(train, evaluation, scenarios={"gossip (mean)": {}, "local only": {"gossip": False}},
                         n_peers=4, queries_per_peer=40, eval_every=20, random_state=0)
    assert [r["scenario"] for r in rows] == ["static zero-shot", "gossip (mean)", "local only"]
    assert rows[0]["final_ndcg@10"] == pytest.approx(ndcg10(static_weights(), evaluation).mean())
    for r in rows[1:]:
        assert r["gain"] == pytest.approx(r["final_ndcg@10"] / rows[0]["final_ndcg@10"] - 1)
        assert len(r["mean_curve"]) == len(r["steps"]) == 3


def test_build_candidates_features_and_grades():
    from hashlearn.text.beir import Corpus
    from hashlearn.text.grank import build_candidates

    rng = np.random.default_rng(0)
    corpus = Corpus.from_documents([])
    corpus.ids, corpus.titles = [f"d{i}" for i in range(30)], [f"title {i}" for i in range(30)]
    corpus.texts = [f"text number {i} " * (i + 1) for i in range(30)]
    X = rng.standard_normal((30, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = X[:3] + 0.01
    bm_pos = np.tile(np.arange(29, 19, -1), (3, 1))
    bm_s = np.tile(np.linspace(10, 1, 10), (3, 1))
    c = build_candidates(X, Q, ["a", "b", "c"], ["title 0", "x", "y"], corpus, {"a": {"d0": 1, "d29": 2}},
                         bm25_scores=bm_s, bm25_pos=bm_pos, k_dense=5, k_bm25=5)
    assert c.features.shape == (3, 10, len(FEATURE_NAMES)) and (c.valid.sum(axis=1) >= 5).all()
    assert c.grades[0].sum() == 3 and c.grades[1:].sum() == 0  # d0 (dense top) and d29 (BM25 top) found
    assert c.ideal_dcg10[0] == pytest.approx(2 + 1 / np.log2(3))
    for q in range(3):  # standardised within each query's candidates; padding is zero
        assert np.allclose(c.features[q][c.valid[q]].mean(axis=0), 0, atol=1e-5)
        assert not c.features[q][~c.valid[q]].any()
    # the static ranker orders by the dense feature: its top document is the query's nearest one (d0)
    top = np.argmax(np.where(c.valid[0], c.features[0] @ static_weights(), -np.inf))
    assert c.grades[0, top] == 1


def test_cli_bench_grank_on_a_synthetic_beir_folder(tmp_path, capsys):
    pytest.importorskip("bm25s", reason="the BM25 feature runs on bm25s (pip install 'hashlearn[text]')")
    import json

    from hashlearn.cli import main

    from test_text import make_beir

    folder = tmp_path / "beir"
    info = make_beir(folder)
    out = tmp_path / "g.json"
    assert main(["bench", "grank", "--beir", str(folder), "--embeddings", str(info["emb"]), "-p", "n_peers=4",
                 "-p", "queries_per_peer=30", "-p", "eval_every=10", "--json", str(out), "--plots",
                 str(tmp_path / "plots"), "-q"]) == 0
    rows = json.loads(out.read_text())
    assert rows[0]["scenario"] == "static zero-shot" and len(rows) == 1 + len(SCENARIOS)
    assert all(0 <= r["final_ndcg@10"] <= 1 for r in rows)
    assert (tmp_path / "plots" / "grank.png").stat().st_size > 0
    assert main(["bench", "grank", "--beir", str(folder), "--embeddings", str(info["emb"]), "-p", "churn=0.5"]) == 2
    assert "unknown simulation parameter(s) churn" in capsys.readouterr().err


def test_trimmed_and_clipped_aggregation_with_few_models():
    own, other = np.array([1.0, 2.0, 3.0]), np.array([1.1, 2.1, 2.9])
    bad = np.array([-100.0, 500.0, -100.0])
    # trimmed drops at least one value per side from three on (scipy would trim none of 4 at 20 %)
    M = np.sort(np.array([own, other, other, bad]), axis=0)
    assert aggregate([own, other, other, bad], "trimmed") == pytest.approx(M[1:-1].mean(axis=0))
    assert np.abs(aggregate([own, other, other, bad], "trimmed") - own).max() < 0.2
    # clipped: honest neighbours close to the own model are followed exactly (distance <= radius) ...
    assert aggregate([own, other], "clipped", clip_ratio=0.5) == pytest.approx(other)
    # ... a single liar moves the own model by at most clip_ratio * ||own||
    moved = aggregate([own, bad], "clipped", clip_ratio=0.5)
    assert np.linalg.norm(moved - own) == pytest.approx(0.5 * np.linalg.norm(own))
    assert aggregate([own], "clipped") == pytest.approx(own)


@pytest.mark.slow
def test_ray_peers_are_processes_and_give_the_local_numbers():
    ray = pytest.importorskip("ray", reason="the Ray backend needs ray (extra [distributed])")
    import os

    from hashlearn.text.grank.network import RayNetwork

    train, evaluation = synthetic(seed=0), synthetic(seed=1)
    common = dict(n_peers=4, queries_per_peer=60, eval_every=20, gossip_every=10, churn=0.3, n_poisoned=1,
                  aggregation="clipped", random_state=3)
    local = simulate(train, evaluation, **common)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        peers = [Peer(i, static_weights(), rng=i) for i in range(2)]
        net = RayNetwork(peers, train, PositionBiasedClicks())
        pids = ray.get([a.__ray_call__.remote(lambda self: os.getpid()) for a in net.actors])
        assert len(set(pids)) == 2 and os.getpid() not in pids  # one worker process per peer
        net.close()
        remote = simulate(train, evaluation, backend="ray", **common)
        assert ray.is_initialized()  # a runtime the caller started is left running
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(remote["ndcg"], local["ndcg"])
    assert remote["bytes"] == local["bytes"] and remote["online"] == local["online"]
    with pytest.raises(ValidationError, match="backend must be one of local, ray"):
        simulate(train, evaluation, backend="mpi")
