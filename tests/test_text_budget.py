"""Training time that scales: the ``bpr`` head's time budget and per-epoch pair sampling.

A toy retrieval problem where plain sign bits fail (every embedding shares a large offset, so the signs
barely depend on the document) and a learned head does not: a tiny budget must stop training, and the
stopped head must still be usable and beat sign bits on held-out queries.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from hashlearn.codes import unpack
from hashlearn.errors import ValidationError
from hashlearn.text.codes import SignCodes

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="bpr trains with torch (pip install 'hashlearn[deep]')")


def toy(n_docs=300, d=32, n_queries=240, seed=0):
    """Documents = offset + signal; queries = a relevant document + noise (train and held-out halves)."""
    rng = np.random.default_rng(seed)
    offset = 3.0 * np.ones(d, np.float32)
    signal = rng.standard_normal((n_docs, d)).astype(np.float32)
    X = offset + signal
    rel = rng.integers(0, n_docs, n_queries)
    Q = offset + signal[rel] + 0.3 * rng.standard_normal((n_queries, d)).astype(np.float32)
    half = n_queries // 2
    pairs = np.stack([np.arange(half), rel[:half]], axis=1)
    return X, Q[:half], pairs, Q[half:], rel[half:]


def hit_rate(codes_q, codes_d, bits, rel, k=10) -> float:
    """Share of held-out queries whose relevant document is in the Hamming top-k (ties: lower row first)."""
    bq, bd = unpack(codes_q, bits).astype(np.int32) * 2 - 1, unpack(codes_d, bits).astype(np.int32) * 2 - 1
    scores = bq @ bd.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([r in row for r, row in zip(rel, top)]))


@needs_torch
def test_tiny_budget_stops_training_and_head_still_beats_sign_bits():
    from hashlearn.text.bpr import BPRHasher

    X, Q, pairs, Qt, relt = toy()
    h = BPRHasher(n_bits=32, epochs=500, batch_size=16, patience=1000, max_train_minutes=1e-4,
                  distill_weight=0.0, lr=1e-2, random_state=0).fit(X, queries=Q, pairs=pairs)
    assert h.stop_reason_ == "time budget"
    assert 1 <= len(h.history_) < 500
    assert h.train_seconds_ < 30
    learned = hit_rate(h.transform(Qt), h.transform(X), 32, relt)
    sign = SignCodes().fit(X)
    plain = hit_rate(sign.transform(Qt), sign.transform(X), 32, relt)
    assert learned > 2 * plain and learned > plain + 0.1, (learned, plain)  # one batch of 16 pairs suffices


@needs_torch
def test_no_budget_runs_every_epoch_and_budget_none_is_accepted():
    from hashlearn.text.bpr import BPRHasher

    X, Q, pairs, _, _ = toy(n_docs=120, n_queries=80)
    h = BPRHasher(n_bits=16, epochs=3, patience=10, max_train_minutes=None, random_state=0).fit(
        X, queries=Q, pairs=pairs)
    assert h.stop_reason_ == "epochs" and len(h.history_) == 3


@needs_torch
def test_pairs_per_epoch_samples_that_many_pairs(monkeypatch):
    from hashlearn.text import bpr

    X, Q, pairs, _, _ = toy(n_docs=200, n_queries=240)  # 120 training pairs, 24 of them held out for dev
    seen = []
    original = bpr._HeadTrainer.listwise

    def counting(self, qv, targets, *args, **kwargs):
        seen.append(len(targets))
        return original(self, qv, targets, *args, **kwargs)

    monkeypatch.setattr(bpr._HeadTrainer, "listwise", counting)
    h = bpr.BPRHasher(n_bits=16, epochs=4, batch_size=8, pairs_per_epoch=24, patience=10, max_train_minutes=None,
                      random_state=0).fit(X, queries=Q, pairs=pairs)
    assert len(h.history_) == 4
    assert sum(seen) == 4 * 24 and len(seen) == 4 * 3  # 24 pairs per epoch, in 3 batches of 8
    seen.clear()
    bpr.BPRHasher(n_bits=16, epochs=2, batch_size=8, pairs_per_epoch=None, patience=10, max_train_minutes=None,
                  random_state=0).fit(X, queries=Q, pairs=pairs)
    assert sum(seen) == 2 * (120 - 24)  # without a cap: every training pair, each epoch


@needs_torch
def test_self_supervised_mode_obeys_the_budget_too():
    from hashlearn.text.bpr import BPRHasher

    X, _, _, _, _ = toy(n_docs=200)
    rng = np.random.default_rng(1)
    T = X + 0.3 * rng.standard_normal(X.shape).astype(np.float32)
    h = BPRHasher(n_bits=16, epochs=400, batch_size=16, patience=1000, max_train_minutes=1e-4,
                  random_state=0).fit(X, pseudo_queries=T, pseudo_docs=np.arange(len(X)))
    assert h.stop_reason_ == "time budget" and len(h.history_) < 400
    assert h.transform(X).shape == (200, 1)


@pytest.mark.parametrize("params, message", [
    ({"max_train_minutes": 0}, "max_train_minutes"),
    ({"max_train_minutes": -1.0}, "max_train_minutes"),
    ({"pairs_per_epoch": 0}, "pairs_per_epoch"),
    ({"max_dev_queries": 0}, "max_dev_queries"),
])
@needs_torch
def test_bad_budget_parameters(params, message):
    from hashlearn.text.bpr import BPRHasher

    X, Q, pairs, _, _ = toy(n_docs=60, n_queries=40)
    with pytest.raises(ValidationError, match=message):
        BPRHasher(n_bits=8, **params).fit(X, queries=Q, pairs=pairs)


def test_dev_ndcg_in_blocks_equals_a_full_stable_sort():
    from hashlearn.metrics import ndcg_at_k
    from hashlearn.text.bpr import _dev_ndcg

    rng = np.random.default_rng(0)
    zq, zd = rng.standard_normal((70, 8)), rng.standard_normal((300, 8))  # 8 bits: many tied scores
    rel = [set(rng.choice(300, 3, replace=False).tolist()) for _ in range(70)]
    bq, bd = np.sign(zq), np.sign(zd)
    top = np.argsort(-(bq @ bd.T), axis=1, kind="stable")[:, :10]
    gains = np.array([[float(d in r) for d in row] for row, r in zip(top, rel)])
    ideal = np.zeros((70, 3))
    ideal[:, :3] = 1.0
    expected = float(ndcg_at_k(gains, 10, ideal_gains=ideal).mean())
    assert _dev_ndcg(zq, zd, rel, block=16) == pytest.approx(expected, abs=1e-12)


def test_crop_pseudo_queries_are_spans_of_their_document():
    from hashlearn.text.pipeline import make_pseudo_queries

    texts = [" ".join(f"w{i}_{j}" for j in range(n)) for i, n in enumerate((40, 100, 5, 0))]
    qs, rows = make_pseudo_queries(["t"] * 4, texts, strategy="crop", per_doc=3, span_words=(4, 30),
                                   crop_ratio=(0.1, 0.5), random_state=0)
    assert rows.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # the empty document gives none
    for q, r in zip(qs, rows):
        words = q.split()
        n = len(texts[r].split())
        assert min(4, n) <= len(words) <= min(30, max(4, round(0.5 * n)))
        assert f" {q} " in f" {texts[r]} "  # a contiguous crop of its own document
    again, _ = make_pseudo_queries(["t"] * 4, texts, strategy="crop", per_doc=3, span_words=(4, 30), random_state=0)
    assert again == qs
    with pytest.raises(ValidationError, match="per_doc"):
        make_pseudo_queries(["t"], ["a b c"], strategy="crop", per_doc=0)
    with pytest.raises(ValidationError, match="crop_ratio"):
        make_pseudo_queries(["t"], ["a b c"], strategy="crop", crop_ratio=(0.6, 0.2))


@needs_torch
def test_cli_eval_takes_a_budget_and_crop_pseudo_queries(tmp_path):
    """``text eval --max-train-minutes --pseudo crop`` trains bpr within the budget (synthetic BEIR folder)."""
    from hashlearn.cli import main

    from test_text import make_beir

    folder = tmp_path / "beir"
    info = make_beir(folder)
    out = tmp_path / "r.json"
    rc = main(["text", "eval", "--beir", str(folder), "--embeddings", str(info["emb"]), "--codes", "bpr:16",
               "--train-split", "train", "--pseudo", "none", "--max-train-minutes", "0.001", "--json", str(out)])
    assert rc == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["codes"] == "bpr:16" and 0 <= row["ndcg@10"] <= 1
    assert main(["text", "eval", "--beir", str(folder), "--embeddings", str(info["emb"]), "--codes", "bpr:16",
                 "--train-split", "train", "--max-train-minutes", "0"]) == 2
