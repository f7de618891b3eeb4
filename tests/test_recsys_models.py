"""hashlearn.recsys models (torch): BPR two-tower MF over compressed tables, HistoryCTR with SDIM /
target attention / mean pooling, the serving path, unknown ids and persistence. Small synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the recsys models need torch (the [deep] extra)")

from hashlearn.errors import IncompatibleError, NotFittedError, ValidationError  # noqa: E402
from hashlearn.io import persist  # noqa: E402
from hashlearn.recsys import (BPRMF, FullTable, GraphHash, Interactions, RandomHash, leave_last_out,  # noqa: E402
                              ranking_metrics)
from hashlearn.recsys.ctr import HistoryCTR, Timeline  # noqa: E402
from hashlearn.recsys.interactions import temporal_split  # noqa: E402


def planted(rng, n_blocks=4, users_per=25, items_per=20, n_per_user=24):
    """Each user interacts mostly with its block's items, in random time order."""
    n_u = n_blocks * users_per
    user, item, t = [], [], []
    for u in range(n_u):
        b = u // users_per
        own = rng.choice(items_per, size=n_per_user - 4, replace=False) + b * items_per
        other = rng.integers(0, n_blocks * items_per, size=4)
        its = np.r_[own, other]
        user += [u] * its.size
        item += its.tolist()
        t += rng.permutation(its.size).tolist()
    return Interactions.from_arrays(user, item, None, t, duplicates="first")


def test_bprmf_learns_planted_blocks_and_beats_hashing(rng):
    inter = planted(rng)
    split = leave_last_out(inter, n_test=2)
    full = BPRMF(dim=8, epochs=25, lr=0.05, random_state=0).fit(split.train)
    m_full = ranking_metrics(full.score_all, split.train, split.test, k=10)
    assert m_full["auc"] > 0.75 and full.loss_[-1] < full.loss_[0]
    hashed = BPRMF(RandomHash(budget=0.1, random_state=0), dim=8, epochs=25, lr=0.05,
                   random_state=0).fit(split.train)
    graph = BPRMF(GraphHash(budget=0.1, random_state=0), dim=8, epochs=25, lr=0.05,
                  random_state=0).fit(split.train)
    m_hash = ranking_metrics(hashed.score_all, split.train, split.test, k=10)
    m_graph = ranking_metrics(graph.score_all, split.train, split.test, k=10)
    # clusters keep the block structure the hashing trick destroys
    assert m_graph["auc"] > m_hash["auc"] + 0.05
    # same seed, same model
    again = BPRMF(dim=8, epochs=25, lr=0.05, random_state=0).fit(split.train)
    np.testing.assert_array_equal(again.item_table_, full.item_table_)


def test_bprmf_serving_unknown_ids_and_recommend(rng):
    inter = planted(rng)
    model = BPRMF(dim=8, epochs=3, random_state=0).fit(inter)
    with pytest.raises(NotFittedError):
        BPRMF().score([0], [0])
    s = model.score(np.array([0, 999]), np.array([1, 5000]))
    assert np.isfinite(s).all()
    assert model.compressor_.unknown_counts_ == {"users": 1, "items": 1}
    # the fallback rows are the mean user / item embedding
    np.testing.assert_allclose(model.user_embeddings([999])[0], model.user_embeddings(inter.user_ids).mean(0),
                               rtol=1e-5, atol=1e-6)
    rec = model.recommend(inter.user_ids[:3], k=5, exclude=inter)
    assert rec.shape == (3, 5)
    for r, u in enumerate(inter.user_ids[:3]):
        assert not set(rec[r]) & set(inter.item[inter.user == u].tolist())
    with pytest.raises(ValidationError, match="k=1000 exceeds"):
        model.recommend([0], k=1000)
    with pytest.raises(ValidationError, match="epochs"):
        BPRMF(epochs=0).fit(inter)


def test_bprmf_prefitted_compressor_and_persistence(tmp_path, rng):
    inter = planted(rng)
    comp = FullTable().fit(inter)
    model = BPRMF(comp, dim=4, epochs=2, random_state=0).fit(inter)
    assert model.compressor_ is comp
    other = Interactions.from_arrays([1], [2])
    with pytest.raises(IncompatibleError, match="fitted on"):
        BPRMF(comp, epochs=1).fit(other)
    back = persist.load(persist.save(model, tmp_path / "mf.hl"))
    np.testing.assert_allclose(back.score_all(inter.user_ids[:4]), model.score_all(inter.user_ids[:4]))


@pytest.mark.parametrize("positive_only", [False, True])
def test_timeline_histories_against_brute_force(rng, positive_only):
    inter = Interactions.from_arrays(rng.integers(0, 5, 60), rng.integers(0, 30, 60), rng.integers(1, 6, 60),
                                     rng.integers(0, 10, 60), duplicates="first")
    beh = inter.rating >= 4 if positive_only else np.ones(len(inter), bool)
    tl = Timeline(inter, beh if positive_only else None)
    events = np.arange(len(inter))
    hist, lengths = tl.histories(events, max_len=3)
    order = inter.chronological()
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    for e in events:
        same = np.flatnonzero((inter.user == inter.user[e]) & (rank < rank[e]) & beh)
        same = same[np.argsort(rank[same])][-3:]
        want = inter.item_index()[same].tolist()
        assert hist[e, :lengths[e]].tolist() == want and (hist[e, lengths[e]:] == -1).all()


def _ctr_data(rng, n_users=80, half=20, n_pref=12, n_other=4):
    """Label = the target is in the catalogue half the user prefers; only the history shows which."""
    user, item, rating, t = [], [], [], []
    for u in range(n_users):
        pref = u % 2
        its = np.r_[pref * half + rng.choice(half, n_pref, replace=False),
                    (1 - pref) * half + rng.choice(half, n_other, replace=False)]
        its = rng.permutation(its)
        user += [u] * its.size
        item += its.tolist()
        rating += [5 if (i >= half) == bool(pref) else 1 for i in its]
        t += list(range(its.size))
    return Interactions.from_arrays(user, item, rating, t, item_ids=np.arange(2 * half))


@pytest.mark.parametrize("pooling, max_history, norm", [("sdim", None, "count"), ("sdim", None, "l2"),
                                                        ("attention", None, "count"), ("attention", 5, "count"),
                                                        ("mean", None, "count")])
def test_history_ctr_learns_and_serving_matches_batch_path(rng, pooling, max_history, norm):
    from sklearn.metrics import roc_auc_score

    inter = _ctr_data(rng)
    split = temporal_split(inter, test_fraction=0.25)
    model = HistoryCTR(pooling=pooling, max_history=max_history, dim=8, n_hashes=16, hash_bits=2, sdim_norm=norm,
                       hidden=(16,), epochs=15, lr=0.01, batch_size=64, user_embedding=False,
                       random_state=0).fit(split.train)
    p = model.predict_proba(split.test, context=split.train)
    assert roc_auc_score(split.test.rating >= 4, p) > 0.85  # only the history tells the user's side
    # serving from precomputed per-user state = the batch path, for the next event of each user
    state = model.serving_state(split.train)
    last = Interactions.from_arrays(inter.user_ids, rng.integers(0, inter.n_items, inter.n_users), None,
                                    np.full(inter.n_users, 10_000), user_ids=inter.user_ids, item_ids=inter.item_ids)
    want = model.predict_proba(last, context=split.train)
    got = model.predict_serving(state, last.user, last.item)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_history_ctr_unknown_ids_empty_history_and_persistence(tmp_path, rng):
    inter = _ctr_data(rng, n_users=10)
    model = HistoryCTR(pooling="sdim", dim=4, n_hashes=8, hidden=(8,), epochs=1, random_state=0).fit(inter)
    state = model.serving_state(inter.select(inter.user != 3))  # user 3: empty history
    p = model.predict_serving(state, np.array([3, 999, 0]), np.array([1, 2, 12345]))
    assert p.shape == (3,) and np.isfinite(p).all()
    assert model.compressor_.unknown_counts_ == {"users": 1, "items": 1}
    back = persist.load(persist.save(model, tmp_path / "ctr.hl"))
    np.testing.assert_allclose(back.predict_proba(inter), model.predict_proba(inter), rtol=1e-5)
    with pytest.raises(ValidationError, match="pooling"):
        HistoryCTR(pooling="max").fit(inter)
    with pytest.raises(NotFittedError):
        HistoryCTR().serving_state(inter)


def test_torch_thread_count_restored(rng):
    before = torch.get_num_threads()
    HistoryCTR(dim=4, n_hashes=4, hidden=(4,), epochs=1, n_threads=1, random_state=0).fit(_ctr_data(rng, n_users=6))
    assert torch.get_num_threads() == before
