"""hashlearn.recsys ID compression, residual k-means, semantic IDs and the tie-aware ranking metrics."""

from __future__ import annotations

import numpy as np
import pytest

import hashlearn.registry
from hashlearn.errors import NotFittedError, UnknownMethodError, ValidationError
from hashlearn.io import persist
from hashlearn.recsys import (DoubleHash, FullTable, GraphHash, Interactions, RandomHash, ResidualKMeans,
                              SemanticIDs, collision_suffix, compressor_names, make_compressor, ranking_metrics)
from hashlearn.recsys.evaluate import cold_items


def planted_blocks(rng, n_blocks=4, users_per=30, items_per=40, p_in=0.3, p_out=0.005, extra_items=3):
    """Users and items in planted communities; ``extra_items`` catalogue items have no events."""
    n_u, n_i = n_blocks * users_per, n_blocks * items_per
    bu, bi = np.repeat(np.arange(n_blocks), users_per), np.repeat(np.arange(n_blocks), items_per)
    p = np.where(bu[:, None] == bi[None, :], p_in, p_out)
    u, i = np.nonzero(rng.random((n_u, n_i)) < p)
    inter = Interactions.from_arrays(100 + u, 1000 + i, item_ids=1000 + np.arange(n_i + extra_items))
    return inter, bu, np.r_[bi, -np.ones(extra_items, int)]


def test_names_and_unknown_method():
    assert compressor_names() == ["double", "full", "graphhash", "random", "semantic"]
    assert compressor_names() == hashlearn.registry.list_methods("compressor")  # the one registry
    with pytest.raises(UnknownMethodError, match="unknown compressor 'nope'"):
        make_compressor("nope")
    with pytest.raises(UnknownMethodError, match="'itq' is a vector method"):
        make_compressor("itq")
    with pytest.raises(ValidationError, match="double does not accept parameter.s. bugdet; it accepts budget"):
        make_compressor("double", bugdet=0.5)


@pytest.mark.parametrize("name", ["random", "double", "graphhash"])
def test_budget_rows_and_shapes(rng, name):
    inter, _, _ = planted_blocks(rng)
    c = make_compressor(name, budget=0.125, random_state=0).fit(inter)
    n_u, n_i = inter.n_users, inter.n_items
    assert c.user_rows_.shape[0] == n_u and c.item_rows_.shape[0] == n_i
    assert c.n_user_rows_ == round(0.125 * n_u) + 1 and c.n_item_rows_ == round(0.125 * n_i) + 1
    for rows, n in ((c.user_rows_, c.n_user_rows_), (c.item_rows_, c.n_item_rows_)):
        assert rows.max() < n and (rows[:, 0] >= 0).all()
    assert c.budget_ == pytest.approx((c.n_user_rows_ + c.n_item_rows_ - 2) / (n_u + n_i))
    again = make_compressor(name, budget=0.125, random_state=0).fit(inter)
    np.testing.assert_array_equal(again.item_rows_, c.item_rows_)


def test_budget_larger_than_table_and_bad_values(rng):
    inter, _, _ = planted_blocks(rng)
    with pytest.raises(ValidationError, match=r"budget 2 asks for .* rows, more than the full table's"):
        RandomHash(budget=2.0).fit(inter)
    for bad in (0, -0.5, float("nan"), True):
        with pytest.raises(ValidationError, match="budget must be a fraction"):
            DoubleHash(budget=bad).fit(inter)
    with pytest.raises(ValidationError, match="budget 1 by definition"):
        FullTable(budget=0.5).fit(inter)
    with pytest.raises(ValidationError, match="empty"):
        FullTable().fit(np.zeros((0, 2), int))


def test_full_and_hashing_trick_properties(rng):
    inter, _, _ = planted_blocks(rng)
    full = FullTable().fit(inter)
    assert full.user_rows_.ravel().tolist() == list(range(inter.n_users)) and full.budget_ == 1.0
    rnd = RandomHash(budget=0.25, random_state=1).fit(inter)
    counts = np.bincount(rnd.item_rows_.ravel(), minlength=rnd.n_item_rows_ - 1)
    assert counts.sum() == inter.n_items and counts.max() < 4 * inter.n_items / (rnd.n_item_rows_ - 1)
    users_full = RandomHash(budget=0.25, hash_users=False, random_state=1).fit(inter)
    assert users_full.n_user_rows_ == inter.n_users + 1
    dbl = DoubleHash(budget=0.25, random_state=1).fit(inter)
    half = (dbl.n_item_rows_ - 1) // 2
    assert (dbl.item_rows_[:, 0] < half).all() and (dbl.item_rows_[:, 1] >= half).all()
    # two ids share their whole embedding far less often than under the hashing trick
    pairs_full = len({tuple(r) for r in dbl.item_rows_.tolist()})
    assert pairs_full > len(set(rnd.item_rows_.ravel().tolist()))


def test_unknown_ids_get_fallback_row_and_are_counted(rng):
    inter, _, _ = planted_blocks(rng)
    c = RandomHash(budget=0.25, random_state=0).fit(inter)
    with pytest.raises(NotFittedError):
        RandomHash().lookup_items([1])
    rows = c.lookup_items(np.array([1000, 5, 1001, 7]))
    assert rows[1, 0] == rows[3, 0] == c.item_fallback_row_
    assert rows[0, 0] == c.item_rows_[0, 0] and c.unknown_counts_ == {"users": 0, "items": 2}
    c.lookup_users([100, -3])
    assert c.unknown_counts_["users"] == 1
    with pytest.raises(ValidationError, match="1-D integer"):
        c.lookup_users(np.array([[1]]))


@pytest.mark.parametrize("backend", ["networkx", "igraph"])
def test_graphhash_recovers_planted_communities(rng, backend):
    if backend == "igraph":
        pytest.importorskip("igraph", reason="python-igraph not installed")
    inter, bu, bi = planted_blocks(rng, users_per=40)  # 160 users, 163 items: 4 rows per table
    c = GraphHash(budget=0.025, backend=backend, random_state=0).fit(inter)
    assert c.backend_ == backend and c.n_isolated_ == 3
    ur, ir = c.user_rows_[:, 0], c.item_rows_[:, 0]

    def majority(rows, blocks):
        out = []
        for b in range(4):
            vals, counts = np.unique(rows[blocks == b], return_counts=True)
            assert counts.max() >= 0.9 * counts.sum()  # a planted block stays (almost) whole
            out.append(int(vals[np.argmax(counts)]))
        assert len(set(out)) == 4  # and different blocks land in different rows
        return out

    majority(ur, bu)
    majority(ir[:-3], bi[:-3])
    # items without events get the fallback row
    assert (ir[-3:] == c.item_fallback_row_).all()
    # one shared clustering: a user block and its item block share a row index
    shared = GraphHash(budget=0.025, backend=backend, per_table=False, random_state=0).fit(inter)
    assert majority(shared.user_rows_[:, 0], bu) == majority(shared.item_rows_[:-3, 0], bi[:-3])


def test_graphhash_residual_and_params(rng):
    inter, _, _ = planted_blocks(rng)
    c = GraphHash(budget=0.25, residual=0.5, random_state=0).fit(inter)
    R = c.n_item_rows_ - 1
    assert c.item_rows_.shape[1] == 2 and (c.item_rows_[:-3, 1] >= R - R // 2).all()
    assert (c.item_rows_[-3:, 1] == -1).all()
    with pytest.raises(ValidationError, match="residual"):
        GraphHash(residual=1.0).fit(inter)
    with pytest.raises(ValidationError, match="algorithm"):
        GraphHash(algorithm="spectral").fit(inter)
    with pytest.raises(ValidationError, match="leiden"):
        GraphHash(algorithm="leiden", backend="networkx").fit(inter)


def test_residual_kmeans_against_reference(rng):
    X = rng.normal(size=(300, 6)).astype(np.float32)
    rq = ResidualKMeans(n_levels=3, n_clusters=8, random_state=0).fit(X)
    codes = rq.transform(X)
    assert codes.shape == (300, 3) and codes.max() < 8
    # greedy encoding = nearest centroid of the residual at each level (brute force)
    R = X.astype(np.float64)
    for level, C in enumerate(rq.codebooks_):
        want = np.argmin(((R[:, None, :] - C[None].astype(np.float64)) ** 2).sum(-1), axis=1)
        np.testing.assert_array_equal(codes[:, level], want)
        R = R - C[want]
    # each level lowers the reconstruction error
    assert rq.inertia_[0] > rq.inertia_[1] > rq.inertia_[2]
    err = ((X - rq.inverse_transform(codes)) ** 2).sum(1).mean()
    assert err == pytest.approx(rq.inertia_[-1], rel=1e-3)
    with pytest.raises(ValidationError, match="5 features"):
        rq.transform(X[:, :5])


def test_collision_suffix():
    codes = np.array([[1, 2], [0, 0], [1, 2], [1, 2], [0, 1], [0, 0]])
    assert collision_suffix(codes).tolist() == [0, 0, 1, 2, 0, 1]
    full = np.c_[codes, collision_suffix(codes)]
    assert len({tuple(r) for r in full.tolist()}) == len(codes)


def _content(rng, inter, bi, d=16):
    centers = rng.normal(size=(5, d)) * 3
    return (centers[np.where(bi >= 0, bi, 4)] + rng.normal(size=(inter.n_items, d))).astype(np.float32)


def test_semantic_ids_prefix_rows(rng):
    inter, _, bi = planted_blocks(rng)
    F = _content(rng, inter, bi)
    with pytest.raises(ValidationError, match="need item_features"):
        SemanticIDs().fit(inter)
    with pytest.raises(ValidationError, match="catalogue has"):
        SemanticIDs().fit(inter, item_features=F[:-1])
    sem = SemanticIDs(n_levels=3, n_codes=4, random_state=0).fit(inter, item_features=F)
    rows = sem.item_rows_
    assert rows.shape == (inter.n_items, 4) and sem.exact_levels_ == 4
    # rows are shared exactly by items sharing the prefix; the suffix row is unique per item
    for level in range(3):
        key = [tuple(c) for c in sem.codes_[:, : level + 1].tolist()]
        for a in range(0, inter.n_items, 7):
            same = np.array([k == key[a] for k in key])
            assert (rows[:, level] == rows[a, level]).tolist() == same.tolist()
    assert np.unique(rows[:, 3]).size == inter.n_items
    assert sem.n_item_rows_ - 1 == sum(sem.level_rows_)
    # under a budget the table has exactly the budget's rows
    small = SemanticIDs(budget=0.25, n_codes=4, random_state=0).fit(inter, item_features=F)
    assert small.n_item_rows_ - 1 == round(0.25 * inter.n_items) and small.exact_levels_ < 4
    assert small.item_rows_.max() < small.n_item_rows_ - 1
    # a brand-new item with the content of a known one gets its prefix rows, no suffix row
    new = sem.lookup_new_items(F[:2])
    np.testing.assert_array_equal(new[:, :3], rows[:2, :3])
    assert (new[:, 3] == -1).all()
    # rows for the (c1) and (c1, c2) prefixes only, plus the item's own row
    two = SemanticIDs(n_levels=3, n_codes=4, prefix_levels=(1, 2), random_state=0).fit(inter, item_features=F)
    assert two.item_rows_.shape == (inter.n_items, 3)
    np.testing.assert_array_equal(two.codes_, sem.codes_)
    np.testing.assert_array_equal(two.item_rows_[:, :2], rows[:, :2])
    with pytest.raises(ValidationError, match="prefix_levels"):
        SemanticIDs(prefix_levels=(4,)).fit(inter, item_features=F)


def test_persistence_round_trip(tmp_path, rng):
    inter, _, bi = planted_blocks(rng)
    F = _content(rng, inter, bi)
    for c in (RandomHash(budget=0.25, random_state=0).fit(inter), GraphHash(budget=0.1, random_state=0).fit(inter),
              SemanticIDs(n_codes=4, random_state=0).fit(inter, item_features=F)):
        path = persist.save(c, tmp_path / f"{c.method_name}.hl")
        back = persist.load(path)
        np.testing.assert_array_equal(back.item_rows_, c.item_rows_)
        np.testing.assert_array_equal(back.lookup_users(inter.user_ids[:5]), c.lookup_users(inter.user_ids[:5]))
        if isinstance(c, SemanticIDs):
            np.testing.assert_array_equal(back.lookup_new_items(F[:3]), c.lookup_new_items(F[:3]))


def _brute_metrics(S, train, test, k, mask=None):
    """Expected metrics under random tie order, by enumerating orders (small cases)."""
    rec, ndcg, aucs = [], [], []
    tr_u, tr_i, te_u, te_i = train.user_index(), train.item_index(), test.user_index(), test.item_index()
    for u in np.unique(te_u):
        cand = np.setdiff1d(np.arange(S.shape[1]), tr_i[tr_u == u])
        pos = np.intersect1d(np.unique(te_i[te_u == u]), cand)
        if mask is not None:
            cand = np.setdiff1d(cand, pos[~mask[pos]])
            pos = pos[mask[pos]]
        if pos.size == 0:
            continue
        r_sum, d_sum, trials = 0.0, 0.0, 4000
        g = np.random.default_rng(0)
        for _ in range(trials):
            order = cand[np.lexsort((g.random(cand.size), -S[u, cand]))][:k]
            hits = np.isin(order, pos)
            r_sum += hits.sum() / pos.size
            d_sum += (hits / np.log2(np.arange(2, order.size + 2))).sum() / (1 / np.log2(np.arange(2, min(pos.size, k) + 2))).sum()
        rec.append(r_sum / trials)
        ndcg.append(d_sum / trials)
        neg = np.setdiff1d(cand, pos)
        aucs.append(np.mean([(S[u, neg] < S[u, p]).mean() + 0.5 * (S[u, neg] == S[u, p]).mean() for p in pos]))
    return np.mean(rec), np.mean(ndcg), np.mean(aucs)


def test_ranking_metrics_tie_aware_against_brute_force(rng):
    n_u, n_i = 6, 15
    S = rng.integers(0, 4, size=(n_u, n_i)).astype(np.float64)  # many ties
    tr = Interactions.from_arrays(rng.integers(0, n_u, 30), rng.integers(0, n_i, 30), user_ids=np.arange(n_u),
                                  item_ids=np.arange(n_i), duplicates="first")
    te = Interactions.from_arrays(rng.integers(0, n_u, 20), rng.integers(0, n_i, 20), user_ids=np.arange(n_u),
                                  item_ids=np.arange(n_i), duplicates="first")
    mask = np.arange(n_i) % 2 == 0
    for m in (None, mask):
        got = ranking_metrics(lambda users: S[users], tr, te, k=4, items=m)
        want = _brute_metrics(S, tr, te, 4, m)
        assert got["recall"] == pytest.approx(want[0], abs=0.02)
        assert got["ndcg"] == pytest.approx(want[1], abs=0.02)
        assert got["auc"] == pytest.approx(want[2], abs=1e-9)
    with pytest.raises(ValidationError, match="k must be"):
        ranking_metrics(lambda users: S[users], tr, te, k=0)
    assert cold_items(tr, 1).shape == (n_i,)
