"""Multi-vector retrieval (hashlearn.text.multivector): MaxSim against a brute force, CRISP pruning,
CUR search on score matrices of known rank."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn.errors import ValidationError
from hashlearn.text.multivector import CRISP, CURSearch, TokenVectors, encode_tokens, maxsim_scores


def random_tokens(rng, n, d=8, lo=1, hi=12):
    lengths = rng.integers(lo, hi, size=n)
    V = rng.normal(size=(lengths.sum(), d)).astype(np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    return TokenVectors(V, np.concatenate([[0], np.cumsum(lengths)]))


def brute_maxsim(q: TokenVectors, d: TokenVectors):
    out = np.empty((len(q), len(d)))
    for i in range(len(q)):
        Q = q.vectors[q.offsets[i] : q.offsets[i + 1]].astype(np.float64)
        for j in range(len(d)):
            D = d.vectors[d.offsets[j] : d.offsets[j + 1]].astype(np.float64)
            out[i, j] = (Q @ D.T).max(1).sum()
    return out


def test_maxsim_equals_brute_force(rng, monkeypatch):
    from hashlearn.text import multivector

    q, d = random_tokens(rng, 7), random_tokens(rng, 40)
    ref = brute_maxsim(q, d)
    np.testing.assert_allclose(maxsim_scores(q, d), ref, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(multivector, "_BLOCK_PAIRS", 50)  # many small document blocks
    np.testing.assert_allclose(maxsim_scores(q, d), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maxsim_scores(q, d, doc_rows=[5, 2]), ref[:, [5, 2]], rtol=1e-5, atol=1e-5)


def test_crisp_keeps_fraction_and_centroids(rng):
    d = random_tokens(rng, 30, lo=8, hi=40)
    pruned = CRISP(fraction=0.25, random_state=0).transform(d)
    assert len(pruned) == 30
    np.testing.assert_array_equal(pruned.lengths, np.ceil(0.25 * d.lengths).astype(int))
    np.testing.assert_allclose(np.linalg.norm(pruned.vectors, axis=1), 1.0, rtol=1e-5)
    fixed = CRISP(4, random_state=0).transform(d)
    assert (fixed.lengths == np.minimum(4, d.lengths)).all()
    # keeping every vector leaves the scores unchanged
    full = CRISP(fraction=1.0, random_state=0).transform(d)
    q = random_tokens(rng, 3)
    np.testing.assert_allclose(maxsim_scores(q, full), maxsim_scores(q, d), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValidationError, match="exactly one"):
        CRISP().transform(d)


def test_cur_search_is_exact_for_low_rank_scores(rng):
    U = rng.normal(size=(60, 5))
    V = rng.normal(size=(5, 500))
    anchor_scores = U[:40] @ V
    cur = CURSearch(20, random_state=0).fit(anchor_scores)
    for i in range(40, 60):
        exact = U[i] @ V
        np.testing.assert_allclose(cur.approximate(exact[cur.anchor_items_]), exact, rtol=1e-4, atol=1e-4)
        calls = []

        def score(items, exact=exact):
            calls.append(len(items))
            return exact[items]

        s, items = cur.search(score, 10, budget=50)
        assert sum(calls) <= 50
        np.testing.assert_array_equal(items, np.argsort(-exact, kind="stable")[:10])
    with pytest.raises(ValidationError, match="budget"):
        cur.search(lambda items: np.zeros(len(items)), 10, budget=10)


def test_encode_tokens_normalises_and_flattens():
    torch = pytest.importorskip("torch", reason="encode_tokens handles torch tensors")

    class Fake:
        def encode(self, texts, **kw):
            return [torch.full((len(t), 3), 2.0) for t in texts]

    tv = encode_tokens(["ab", "abcd"], model=Fake(), dtype=np.float32)
    assert tv.lengths.tolist() == [2, 4] and tv.vectors.shape == (6, 3)
    np.testing.assert_allclose(np.linalg.norm(tv.vectors, axis=1), 1.0, rtol=1e-6)
