"""IVFIndex against a brute-force reference over the probed lists, and against faiss.

The reference recomputes everything with numpy: the nprobe nearest centroids of each query, every
vector stored in those lists, its exact distance (squared L2 from the query to centroid + decoded
residual, or the Hamming distance of residual codes), then a stable sort by (distance, id).
"""

from __future__ import annotations

import numpy as np
import pytest

import hashlearn
from hashlearn import make_hasher
from hashlearn.errors import IncompatibleError, NotFittedError, ValidationError
from hashlearn.index.ivf import IVFIndex
from hashlearn.quantize import OPQ, PQ, RQ, BalancedKMeans


def clustered(rng, n, d=16, n_centers=30):
    centers = rng.normal(size=(n_centers, d)) * 3
    return (centers[rng.integers(0, n_centers, n)] + rng.normal(size=(n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return clustered(rng, 4000), clustered(rng, 30)


@pytest.fixture(scope="module")
def pq_index(data):
    X, _ = data
    index = IVFIndex("kmeans", PQ(4, nbits=6, random_state=0), nlist=20, nprobe=3, random_state=0)
    index.add(X, ids=np.arange(4000) * 7 + 5)
    return index


def reference_search(index, Q, k, nprobe, *, radius=None):
    C = index.centroids_.astype(np.float64)
    cd = ((Q[:, None, :].astype(np.float64) - C[None]) ** 2).sum(-1)
    if index.bias_ is not None:
        cd = cd - index.bias_[None, :]
    probes = np.argsort(cd, axis=1, kind="stable")[:, :nprobe]
    lists, ids, codes = index._lists, index._ids, index._codes
    out = []
    for i, q in enumerate(Q):
        rows = np.flatnonzero(np.isin(lists, probes[i]))
        if index._mode == 0:
            rec = index.centroids_[lists[rows]] + index.fine.decode(codes[rows])
            dist = ((rec.astype(np.float64) - q) ** 2).sum(1)
        else:
            qc = index.fine.transform(q[None, :] - index.centroids_[lists[rows]])
            dist = np.unpackbits((qc ^ codes[rows]).view(np.uint8), axis=1).sum(1).astype(np.float64)
        order = np.lexsort((ids[rows], dist))
        if radius is not None:
            order = order[dist[order] <= radius]
        else:
            order = order[:k]
        out.append((dist[order], ids[rows][order]))
    return out


def assert_matches_reference(D, I, ref, k, rtol=1e-4):
    for i, (dr, ir) in enumerate(ref):
        m = dr.shape[0]
        np.testing.assert_allclose(D[i, :m], dr, rtol=rtol, atol=1e-3)
        assert (I[i, m:] == -1).all() and np.isinf(D[i, m:]).all()
        # ids may swap only between float-rounding ties
        swapped = I[i, :m] != ir
        if swapped.any():
            assert np.allclose(D[i, :m][swapped], dr[swapped], rtol=rtol)


def test_pq_search_equals_brute_force_over_probed_lists(data, pq_index):
    _, Q = data
    for nprobe in (1, 3, 20):
        D, I = pq_index.search(Q, 15, nprobe=nprobe)
        assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == (30, 15)
        assert_matches_reference(D, I, reference_search(pq_index, Q, 15, nprobe), 15)


def test_range_search_equals_brute_force(data, pq_index):
    _, Q = data
    radius = 30.0
    lims, D, I = pq_index.range_search(Q, radius, nprobe=2)
    ref = reference_search(pq_index, Q, None, 2, radius=radius)
    for i, (dr, ir) in enumerate(ref):
        got = I[lims[i] : lims[i + 1]]
        close = np.abs(dr - radius) < 1e-3 * radius
        assert set(ir[~close]) <= set(got.tolist()) <= set(ir.tolist()) | set(ir[close])
        assert np.all(np.diff(D[lims[i] : lims[i + 1]]) >= 0)


def test_binary_fine_codes_use_hamming_on_residuals(data):
    X, Q = data
    index = IVFIndex("kmeans", make_hasher("itq", n_bits=16, random_state=0), nlist=10, nprobe=2, random_state=0)
    index.add(X)
    D, I = index.search(Q, 10)
    assert_matches_reference(D, I, reference_search(index, Q, 10, 2), 10, rtol=0)
    with pytest.raises(IncompatibleError, match="binary"):
        index.to_faiss()


@pytest.mark.parametrize("fine", ["pq", "opq", "rq"])
def test_to_faiss_gives_the_same_results_and_codes(data, fine):
    X, Q = data
    model = {"pq": PQ(4, random_state=0), "opq": OPQ(4, opq_iter=3, random_state=0), "rq": RQ(2, random_state=0)}[fine]
    index = IVFIndex("kmeans", model, nlist=16, nprobe=4, random_state=0)
    index.add(X)
    D, I = index.search(Q, 10)
    theirs = index.to_faiss()
    assert theirs.ntotal == 4000
    Df, If = theirs.search(Q, 10)
    assert (I == If).mean() > 0.99
    np.testing.assert_allclose(D, Df, rtol=1e-4, atol=1e-2)
    # faiss encoding the same vectors with our centroids and codebooks stores the same codes
    theirs.reset()
    theirs.add(X)
    Df2, If2 = theirs.search(Q, 10)
    assert (If2 == I).mean() > 0.99


def test_ids_add_remove_and_empty_lists(data):
    X, Q = data
    index = IVFIndex("kmeans", PQ(4, nbits=5, random_state=0), nlist=8, nprobe=8, random_state=0)
    index.train(X)
    D, I = index.search(Q, 4)  # trained but empty: every list is empty
    assert (I == -1).all() and np.isinf(D).all()
    index.add(X[:100], ids=np.arange(100) + 1000)
    with pytest.raises(ValidationError, match="id 1003 is already in the index"):
        index.add(X[:1], ids=[1003])
    assert index.remove([1000, 1001, 5]) == 2 and index.ntotal == 98
    D, I = index.search(X[:3], 98)
    assert not np.isin([1000, 1001], I).any() and (I >= 0).all()
    assert index.list_sizes().sum() == 98
    new = index.add(X[100:103])
    assert new.tolist() == [1100, 1101, 1102]
    index.reset()
    assert index.ntotal == 0 and (index.search(Q, 2)[1] == -1).all()


def test_bad_input(data):
    X, Q = data
    with pytest.raises(ValidationError, match=r"nprobe \(9\) cannot exceed nlist \(8\)"):
        IVFIndex("kmeans", PQ(4), nlist=8, nprobe=9)
    index = IVFIndex("kmeans", PQ(4, nbits=4, random_state=0), nlist=8, nprobe=2, random_state=0)
    with pytest.raises(NotFittedError, match="not trained"):
        index.search(Q, 3)
    with pytest.raises(ValidationError, match="got 5 for nlist = 8"):
        index.train(X[:5])
    index.add(X)
    with pytest.raises(ValidationError, match=r"nprobe \(20\) cannot exceed nlist \(8\)"):
        index.search(Q, 3, nprobe=20)
    bad = Q.copy()
    bad[1, 3] = np.inf
    with pytest.raises(ValidationError, match="row 1"):
        index.search(bad, 3)
    with pytest.raises(ValidationError, match="12 features"):
        index.search(Q[:, :12], 3)
    with pytest.raises(ValidationError, match="needs an empty index"):
        index.train(X)
    with pytest.raises(ValidationError, match="coarse"):
        IVFIndex("hnsw", PQ(4), nlist=8)
    with pytest.raises(ValidationError, match="fine"):
        IVFIndex("kmeans", BalancedKMeans(4), nlist=8)
    with pytest.raises(ValidationError, match="has 4 clusters but nlist is 8"):
        IVFIndex(BalancedKMeans(4), PQ(4), nlist=8)


def test_balanced_coarse_lists(data):
    X, Q = data
    plain = IVFIndex("kmeans", PQ(4, nbits=5, random_state=0), nlist=16, random_state=0)
    plain.add(X)
    balanced = IVFIndex("balanced-kmeans", PQ(4, nbits=5, random_state=0), nlist=16, nprobe=2, random_state=0)
    balanced.add(X)
    mean = 4000 / 16
    assert balanced.list_sizes().max() <= 1.1 * mean < plain.list_sizes().max()
    D, I = balanced.search(Q, 10)
    assert_matches_reference(D, I, reference_search(balanced, Q, 10, 2), 10)
    with pytest.raises(IncompatibleError, match="balanced"):
        balanced.to_faiss()


@pytest.mark.parametrize("stage", ["untrained", "empty", "filled", "removed"])
def test_persistence_round_trip_at_every_stage(tmp_path, data, stage):
    X, Q = data
    index = IVFIndex("kmeans", RQ(2, nbits=5, random_state=0), nlist=8, nprobe=3, random_state=0)
    if stage != "untrained":
        index.train(X)
    if stage in ("filled", "removed"):
        index.add(X)
    if stage == "removed":
        index.remove(np.arange(0, 4000, 3))
    loaded = hashlearn.load(hashlearn.save(index, tmp_path / "ivf.hl"))
    assert loaded.ntotal == index.ntotal and loaded.nprobe == 3
    if stage == "untrained":
        assert not loaded.is_trained
        return
    a, b = index.search(Q, 7), loaded.search(Q, 7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("fine", ["pq", "rq"])
def test_direct_tables_fallback_and_non_residual_codes(data, monkeypatch, fine):
    """Large indexes skip the precomputed tables (per-probe tables instead): same results; and codes
    of the vectors themselves (by_residual=False) are searched exactly too."""
    from hashlearn.index import ivf

    X, Q = data
    make = {"pq": lambda: PQ(4, nbits=5, random_state=0), "rq": lambda: RQ(2, nbits=5, random_state=0)}[fine]
    index = IVFIndex("kmeans", make(), nlist=12, nprobe=3, random_state=0)
    index.add(X)
    D1, I1 = index.search(Q, 10)
    monkeypatch.setattr(ivf, "_TABLE_BUDGET", 10)
    index._A = None
    D2, I2 = index.search(Q, 10)
    np.testing.assert_allclose(D1, D2, rtol=1e-4, atol=1e-2)
    assert (I1 == I2).mean() > 0.99
    monkeypatch.undo()
    flat = IVFIndex("kmeans", make(), nlist=12, nprobe=3, by_residual=False, random_state=0)
    flat.add(X)
    D, I = flat.search(Q, 10)
    C = flat.centroids_.astype(np.float64)
    probes = np.argsort(((Q[:, None, :] - C[None]) ** 2).sum(-1), axis=1, kind="stable")[:, :3]
    for i in range(len(Q)):
        rows = np.flatnonzero(np.isin(flat._lists, probes[i]))
        dist = ((flat.fine.decode(flat._codes[rows]).astype(np.float64) - Q[i]) ** 2).sum(1)
        np.testing.assert_allclose(D[i], np.sort(dist)[:10], rtol=1e-4, atol=1e-2)


def test_corrupt_or_mismatched_files_are_refused_and_a_failed_save_keeps_the_old_file(tmp_path, data, monkeypatch):
    X, Q = data
    index = IVFIndex("kmeans", PQ(4, nbits=5, random_state=0), nlist=8, nprobe=3, random_state=0)
    index.add(X)
    path = hashlearn.save(index, tmp_path / "ivf.hl")
    before = path.read_bytes()
    # a stored state whose codes do not match its lists is refused with a HashlearnError, not loaded
    state = index._get_state()
    state["lists"] = state["lists"][:-1]
    with pytest.raises(hashlearn.FileFormatError, match="do not match"):
        IVFIndex._from_state(state)
    state = index._get_state()
    state["lists"] = state["lists"].copy()
    state["lists"][0] = 99
    with pytest.raises(hashlearn.FileFormatError, match="out of range"):
        IVFIndex._from_state(state)
    # a save that fails half-way leaves the previous file as it was
    monkeypatch.setattr(IVFIndex, "_get_state", lambda self: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError, match="disk full"):
        hashlearn.save(index, path)
    assert path.read_bytes() == before
    monkeypatch.undo()
    D, I = hashlearn.load(path).search(Q, 5)
    np.testing.assert_array_equal(I, index.search(Q, 5)[1])
