"""MultiTableLSH: bucket lookup, query-directed multi-probe, exact re-ranking, persistence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import hashlearn
from hashlearn.codes import unpack
from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.index.tables import MultiTableLSH, probe_sequences

FAMILIES = ["simhash", "e2lsh", "crosspolytope"]
SMALL = dict(simhash=dict(bits_per_table=10), e2lsh=dict(bits_per_table=6), crosspolytope=dict(bits_per_table=10))


def _clustered(rng, n, d=24, n_clusters=10, nq=100, spread=3.0):
    centers = rng.normal(size=(n_clusters, d)) * spread
    xb = centers[rng.integers(0, n_clusters, n)] + rng.normal(size=(n, d))
    xq = centers[rng.integers(0, n_clusters, nq)] + rng.normal(size=(nq, d))
    return xb.astype(np.float32), xq.astype(np.float32)


def _distances(metric, xq, xb):
    xq, xb = xq.astype(np.float64), xb.astype(np.float64)
    if metric == "l2":
        return (xq**2).sum(1)[:, None] + (xb**2).sum(1)[None, :] - 2 * xq @ xb.T
    return 1 - (xq / np.linalg.norm(xq, axis=1, keepdims=True)) @ (xb / np.linalg.norm(xb, axis=1, keepdims=True)).T


def _sets(lims, ids):
    return [set(ids[lims[i] : lims[i + 1]].tolist()) for i in range(len(lims) - 1)]


@pytest.fixture(scope="module")
def data():
    return _clustered(np.random.default_rng(0), 3000)


@pytest.fixture(scope="module", params=FAMILIES)
def index(request, data):
    xb, _ = data
    idx = MultiTableLSH(request.param, n_tables=6, random_state=1, **SMALL[request.param]).fit(xb)
    idx.add(xb)
    return idx


# -- probing sequences ---------------------------------------------------------------------------------
@pytest.mark.parametrize("L, P", [(7, 20), (12, 5), (10, 2), (9, 64)])
def test_probe_sequences_match_brute_force_enumeration(L, P):
    rng = np.random.default_rng(L * P)
    m = 30
    costs = rng.random((m, L))
    costs[0, :3] = 0.5  # ties
    groups = rng.integers(0, 4, size=(m, L))
    sets, valid = probe_sequences(costs, groups, P)
    assert sets.shape == (m, P, L) and valid.shape == (m, P)
    for i in range(m):
        subsets = [s for k in range(L + 1) for s in itertools.combinations(range(L), k)
                   if len(set(groups[i, list(s)])) == len(s)]
        best = sorted(costs[i, list(s)].sum() for s in subsets)[:P]
        got = [costs[i, sets[i, p]].sum() for p in range(P) if valid[i, p]]
        assert len(got) == min(P, len(subsets))
        np.testing.assert_allclose(got, best, atol=1e-12)
        chosen = [tuple(np.flatnonzero(sets[i, p])) for p in range(P) if valid[i, p]]
        assert len(set(chosen)) == len(chosen) and chosen[0] == ()
        assert all(len(set(groups[i, list(c)])) == len(c) for c in chosen)  # no conflicting pair


# -- keys and candidates --------------------------------------------------------------------------------
def test_simhash_keys_are_the_code_bits(data):
    xb, _ = data
    idx = MultiTableLSH("simhash", n_tables=3, bits_per_table=7, random_state=0).fit(xb)
    keys = idx.hash_keys(xb[:50])
    bits = unpack(idx.hasher_.transform(xb[:50]), 21).reshape(50, 3, 7).astype(np.uint64)
    np.testing.assert_array_equal(keys, (bits << np.arange(7, dtype=np.uint64)).sum(axis=2))


def test_single_probe_candidates_equal_shared_bucket_brute_force(index, data):
    xb, xq = data
    kb, kq = index.hash_keys(xb), index.hash_keys(xq)
    lims, ids = index.candidates(xq, n_probes=1)
    assert lims.dtype == ids.dtype == np.int64 and lims.shape == (len(xq) + 1,)
    got = _sets(lims, ids)
    for i in range(len(xq)):
        expect = set(np.flatnonzero((kb == kq[i]).any(axis=1)).tolist())
        assert got[i] == expect
        seg = ids[lims[i] : lims[i + 1]]
        assert np.all(np.diff(seg) > 0)  # deduplicated, in index order
    assert 0 < lims[-1] < 0.5 * len(xq) * len(xb)  # candidates, not the whole database


def _second_probe_keys(index, xq):
    """Keys of the cheapest single perturbation per table, computed from the hashers' public outputs."""
    from hashlearn.hashing.e2lsh import _combine_keys

    h, T, per, nq = index.hasher_, index.n_tables, index.funcs_per_table_, len(xq)
    if index.hasher == "simhash":
        M = h.margins(xq).reshape(nq, T, per)
        flip = np.uint64(1) << np.argmin(np.abs(M), axis=2).astype(np.uint64)
        return index.hash_keys(xq) ^ flip
    if index.hasher == "e2lsh":
        pos = ((xq.astype(np.float32) @ h.projections_).astype(np.float64) + h.offsets_) / h.bucket_width_
        H = np.floor(pos).astype(np.int64).reshape(nq, T, per)
        frac = (pos - np.floor(pos)).reshape(nq, T, per)
        cost = np.concatenate([frac**2, (1 - frac) ** 2], axis=2)
        e = np.argmin(cost, axis=2)
        step = np.where(e >= per, 1, -1)
        coord = (e % per)[:, :, None]
        np.put_along_axis(H, coord, np.take_along_axis(H, coord, 2) + step[:, :, None], 2)
        return _combine_keys(H, index.table_seeds_)
    V, G = h.rank_vertices(xq, 2)
    V, G = V.reshape(nq, T, per, 2), G.reshape(nq, T, per, 2)
    j = np.argmin(G[..., 1], axis=2)
    vec = V[..., 0].copy()
    np.put_along_axis(vec, j[:, :, None], np.take_along_axis(V[..., 1], j[:, :, None], 2), 2)
    return _combine_keys(vec, index.table_seeds_)


def test_two_probes_add_the_cheapest_neighbouring_bucket(index, data):
    xb, xq = data
    kb, kq = index.hash_keys(xb), index.hash_keys(xq)
    k2 = _second_probe_keys(index, xq)
    assert np.all(k2 != kq)
    got = _sets(*index.candidates(xq, n_probes=2))
    for i in range(len(xq)):
        expect = set(np.flatnonzero(((kb == kq[i]) | (kb == k2[i])).any(axis=1)).tolist())
        assert got[i] == expect


def test_more_probes_give_supersets_and_recall_does_not_drop(index, data):
    xb, xq = data
    G = np.argsort(_distances(index.metric_, xq, xb), axis=1)[:, :10]
    prev_sets, prev_recall, sizes = None, -1.0, []
    for P in (1, 2, 4, 8, 16):
        lims, ids = index.candidates(xq, n_probes=P)
        sets = _sets(lims, ids)
        recall = np.mean([len(sets[i] & set(G[i].tolist())) / 10 for i in range(len(xq))])
        if prev_sets is not None:
            assert all(a <= b for a, b in zip(prev_sets, sets))
            assert recall >= prev_recall
        prev_sets, prev_recall = sets, recall
        sizes.append(lims[-1])
    assert sizes[-1] > sizes[0]  # probing does add buckets


def test_search_is_exact_knn_among_candidates(index, data):
    xb, xq = data
    k = 7
    D, I = index.search(xq, k, n_probes=3)
    assert D.shape == I.shape == (len(xq), k) and D.dtype == np.float32 and I.dtype == np.int64
    lims, ids = index.candidates(xq, n_probes=3)
    full = _distances(index.metric_, xq, xb)
    for i in range(len(xq)):
        cand = ids[lims[i] : lims[i + 1]]
        dc = np.sort(full[i, cand])[:k]
        m = len(dc)
        np.testing.assert_allclose(D[i, :m], dc, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(full[i, I[i, :m]], D[i, :m], rtol=1e-4, atol=1e-4)  # ties may swap ids
        assert set(I[i, :m].tolist()) <= set(cand.tolist()) and len(set(I[i, :m].tolist())) == m
        assert np.all(I[i, m:] == -1) and np.all(np.isinf(D[i, m:]))
        assert np.all(np.diff(D[i, :m]) >= 0)


@pytest.mark.parametrize("family", FAMILIES)
def test_recall_of_true_10nn_on_clustered_data(family):
    # measured on this data (3000 points, 100 queries, 30 clusters), 16 tables, recall@10 and scanned
    # fraction of the database at 1 / 4 / 16 probes:
    #   simhash (14 bits)       0.71 / 0.96 / 0.997   1.8% / 3.8% / 7.1%
    #   e2lsh (10 functions)    0.74 / 0.97 / 0.998   3.3% / 8.3% / 18%
    #   crosspolytope (12 bits) 0.95 / 0.998 / 1.0   3.7% / 6.9% / 14%
    xb, xq = _clustered(np.random.default_rng(7), 3000, n_clusters=30, spread=2.0)
    params = dict(simhash=dict(bits_per_table=14), e2lsh=dict(bits_per_table=10),
                  crosspolytope=dict(bits_per_table=12))[family]
    idx = MultiTableLSH(family, n_tables=16, random_state=0, **params).fit(xb)
    idx.add(xb)
    G = np.argsort(_distances(idx.metric_, xq, xb), axis=1)[:, :10]
    recalls = []
    for P in (1, 16):
        _, I = idx.search(xq, 10, n_probes=P)
        recalls.append(np.mean([len(set(I[i].tolist()) & set(G[i].tolist())) / 10 for i in range(len(xq))]))
    lims, _ = idx.candidates(xq, n_probes=16)
    assert recalls[1] >= 0.95, recalls
    assert recalls[1] > recalls[0] or recalls[0] == 1.0
    assert lims[-1] / (len(xq) * len(xb)) < 0.25  # while scanning a small part of the database


# -- building, ids, padding ------------------------------------------------------------------------------
def test_add_in_batches_with_ids_and_padding(data):
    xb, xq = data
    one = MultiTableLSH("e2lsh", n_tables=4, bits_per_table=6, random_state=3).fit(xb)
    one.add(xb)
    two = MultiTableLSH("e2lsh", n_tables=4, bits_per_table=6, random_state=3).fit(xb)
    two.add(xb[:1000])
    two.add(xb[1000:])
    assert two.ntotal == len(xb)
    for P in (1, 5):
        for a, b in zip(one.candidates(xq, n_probes=P), two.candidates(xq, n_probes=P)):
            np.testing.assert_array_equal(a, b)
    custom = MultiTableLSH("e2lsh", n_tables=4, bits_per_table=6, random_state=3).fit(xb)
    custom.add(xb, ids=np.arange(len(xb)) * 10 + 5)
    np.testing.assert_array_equal(custom.search(xq, 5)[1], np.where(one.search(xq, 5)[1] >= 0,
                                                                    one.search(xq, 5)[1] * 10 + 5, -1))
    with pytest.raises(ValidationError, match="unique"):
        custom.add(xb[:2], ids=[5, 6])
    with pytest.raises(ValidationError):
        custom.add(xb[:2], ids=[-3, 7])
    # fewer candidates than k: -1 / inf padding; an empty index returns only padding
    D, I = one.search(xq[:5], 2000)
    assert np.all((I == -1) == np.isinf(D)) and np.any(I == -1)
    empty = MultiTableLSH("simhash", n_tables=2, bits_per_table=4, random_state=0).fit(xb)
    D, I = empty.search(xq[:3], 4)
    assert np.all(I == -1) and np.all(np.isinf(D))
    lims, ids = empty.candidates(xq[:3])
    assert lims.tolist() == [0, 0, 0, 0] and ids.size == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_persistence_round_trip_at_every_stage(family, data, tmp_path):
    xb, xq = data
    unfitted = MultiTableLSH(family, n_tables=3, n_probes=4, random_state=2, **SMALL[family])
    back = hashlearn.load(hashlearn.save(unfitted, tmp_path / "u.hl"))
    assert back.hasher == family and back.n_probes == 4 and not hasattr(back, "hasher_")
    idx = MultiTableLSH(family, n_tables=3, n_probes=4, random_state=2, **SMALL[family]).fit(xb)
    back = hashlearn.load(hashlearn.save(idx, tmp_path / "f.hl"))
    assert back.ntotal == 0
    np.testing.assert_array_equal(back.hash_keys(xq), idx.hash_keys(xq))
    idx.add(xb[:2000])
    back = hashlearn.load(hashlearn.save(idx, tmp_path / "a.hl"))
    for a, b in zip(idx.search(xq, 5), back.search(xq, 5)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(idx.candidates(xq, n_probes=6), back.candidates(xq, n_probes=6)):
        np.testing.assert_array_equal(a, b)
    back.add(xb[2000:])  # a loaded index keeps growing like the original
    idx.add(xb[2000:])
    np.testing.assert_array_equal(idx.search(xq, 5)[1], back.search(xq, 5)[1])


def test_hasher_params_and_metric():
    rng = np.random.default_rng(4)
    xb = rng.normal(size=(200, 9)).astype(np.float32)
    idx = MultiTableLSH("crosspolytope", n_tables=2, bits_per_table=7, last_dim=4, random_state=0).fit(xb)
    assert idx.hasher_.last_dim_ == 4 and idx.funcs_per_table_ == 3 and idx.hasher_.n_hashes_ == 6
    e2 = MultiTableLSH("e2lsh", n_tables=2, bits_per_table=3, bucket_width=2.5, metric="cosine",
                       random_state=0).fit(xb)
    assert e2.hasher_.bucket_width_ == 2.5 and e2.metric_ == "cosine"
    assert MultiTableLSH("e2lsh").metric_ == "l2" and MultiTableLSH().metric_ == "cosine"


def test_constructor_only_stores_parameters():
    idx = MultiTableLSH("e2lsh", n_tables=3, bits_per_table=4, bucket_width=2.0, random_state=0)
    assert vars(idx) == dict(hasher="e2lsh", n_tables=3, bits_per_table=4, n_probes=1, metric=None,
                             random_state=0, hasher_params={"bucket_width": 2.0})
    assert idx.ntotal == 0 and idx.d is None and "ntotal=0" in repr(idx)


def test_bad_input_raises(data):
    xb, xq = data
    with pytest.raises(NotFittedError):
        MultiTableLSH().add(xb)
    with pytest.raises(NotFittedError):
        MultiTableLSH().search(xq, 3)
    with pytest.raises(ValidationError, match="hasher"):
        MultiTableLSH("nope").fit(xb)
    with pytest.raises(ValidationError, match="64"):
        MultiTableLSH("simhash", bits_per_table=65).fit(xb)
    with pytest.raises(ValidationError):
        MultiTableLSH(n_tables=0).fit(xb)
    with pytest.raises(ValidationError):
        MultiTableLSH(metric="hamming").fit(xb)
    idx = MultiTableLSH(n_tables=2, bits_per_table=8, random_state=0).fit(xb)
    idx.add(xb[:100])
    bad = xq[:4].copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValidationError, match="row 1"):
        idx.search(bad, 3)
    with pytest.raises(ValidationError, match="24"):
        idx.candidates(xq[:, :10])
    with pytest.raises(ValidationError):
        idx.add(xb[:3, :5])
    with pytest.raises(ValidationError):
        idx.search(xq, 0)
    with pytest.raises(ValidationError):
        idx.candidates(xq, n_probes=0)
