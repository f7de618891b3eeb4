"""Task-trained product quantizers (JPQ, RepCONC) on a small synthetic retrieval task."""

from __future__ import annotations

import numpy as np
import pytest

import hashlearn
from hashlearn.errors import IncompatibleError, ValidationError

torch = pytest.importorskip("torch", reason="JPQ/RepCONC train with torch (pip install 'hashlearn[deep]')")

from hashlearn.quantize.trained import JPQ, RepCONC  # noqa: E402


@pytest.fixture(scope="module")
def task():
    """Documents on the unit sphere; each query is a distorted view of one document (a fixed linear
    map plus noise), so a learned query map and task-trained centroids can beat plain OPQ codes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    A = np.eye(16) + 0.6 * rng.normal(size=(16, 16)) / 4
    docs = rng.integers(0, 600, size=400)
    Q = (X[docs] @ A + 0.05 * rng.normal(size=(400, 16))).astype(np.float32)
    pairs = np.stack([np.arange(400), docs], axis=1)
    return X, Q, pairs


def small(cls, **kw):
    params = dict(nbits=4, epochs=6, opq_iter=3, lr=3e-3, query_lr=3e-3, patience=3, n_threads=1, random_state=0)
    params.update(kw)
    return cls(4, **params)


@pytest.mark.parametrize("cls", [JPQ, RepCONC])
def test_training_improves_the_dev_ranking_and_search_is_consistent(task, cls):
    X, Q, pairs = task
    model = small(cls).fit(X, queries=Q, pairs=pairs)
    assert model.dev_score_ >= model.init_dev_score_ and model.history_.shape[1] == 2
    assert model.dev_score_ > model.init_dev_score_ + 0.01  # the training does something on this task
    codes = model.encode(X)
    assert codes.shape == (600, 4) and codes.dtype == np.uint8
    scores = model.score(Q[:20], codes)
    T = model.distance_tables(Q[:20])
    np.testing.assert_allclose(-T[:, np.arange(4)[None, :], codes].sum(-1), scores, rtol=1e-4, atol=1e-5)
    D, I = model.search(Q[:20], codes, 5)
    np.testing.assert_allclose(-D, np.sort(scores, axis=1)[:, ::-1][:, :5], rtol=1e-4, atol=1e-5)
    assert model.decode(codes).shape == (600, 16)


def test_jpq_keeps_the_opq_assignment_and_repconc_balances_it(task):
    X, Q, pairs = task
    jpq = small(JPQ).fit(X, queries=Q, pairs=pairs)
    assert not jpq.assign_bias_.any()
    assert not np.allclose(jpq.assign_codebooks_, jpq.codebooks_)  # assignment fixed, meaning trained
    rep = small(RepCONC).fit(X, queries=Q, pairs=pairs)
    codes = rep.encode(X)
    for m in range(4):
        counts = np.bincount(codes[:, m], minlength=16)
        assert counts.max() <= np.floor(1.05 * 600 / 16) and counts.min() > 0  # every centroid in use


def test_self_supervised_fallback_and_persistence(tmp_path, task):
    X, _, _ = task
    rng = np.random.default_rng(1)
    pseudo = (X[:300] + 0.1 * rng.normal(size=(300, 16))).astype(np.float32)
    model = small(JPQ, epochs=2).fit(X, pseudo_queries=pseudo, pseudo_docs=np.arange(300))
    codes = model.encode(X)
    loaded = hashlearn.load(hashlearn.save(model, tmp_path / "jpq.hl"))
    np.testing.assert_array_equal(loaded.encode(X), codes)
    np.testing.assert_allclose(loaded.score(X[:3], codes), model.score(X[:3], codes))
    other = small(JPQ, epochs=1, random_state=5).fit(X, pseudo_queries=pseudo, pseudo_docs=np.arange(300))
    with pytest.raises(IncompatibleError):
        other.decode(codes)


def test_bad_training_input(task):
    X, Q, pairs = task
    with pytest.raises(ValidationError, match="needs training queries"):
        small(JPQ).fit(X)
    with pytest.raises(ValidationError, match="outside"):
        small(JPQ).fit(X, queries=Q, pairs=pairs + 1000)
    with pytest.raises(ValidationError, match="give both"):
        small(JPQ).fit(X, queries=Q)
    with pytest.raises(ValidationError, match="d divisible by M"):
        JPQ(5).fit(X, queries=Q, pairs=pairs)
    with pytest.raises(ValidationError, match="lr"):
        small(JPQ, lr=0).fit(X, queries=Q, pairs=pairs)
