"""Ray-sharded index: exact merge (unit, no Ray) and identical results to one HashIndex (local Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn import HashIndex, make_hasher
from hashlearn.codes import MISSING_DISTANCE
from hashlearn.distributed import ShardedIndex, merge_topk
from hashlearn.errors import DataFileError, IncompatibleError, NotFittedError, ValidationError
from hashlearn.index.ivf import IVFIndex
from hashlearn.quantize import PQ, RQ, BalancedKMeans


def test_merge_topk_is_exact_topk_of_union(rng):
    for trial in range(20):
        n, k, shards = rng.integers(1, 60), int(rng.integers(1, 12)), int(rng.integers(1, 5))
        D = rng.integers(0, 6, size=(3, n)).astype(np.int32)  # many ties
        ids = rng.permutation(1000)[:n]
        owner = rng.integers(0, shards, size=n)
        Dp, Ip = [], []
        for s in range(shards):
            m = owner == s
            d, i = D[:, m], np.broadcast_to(ids[m], (3, m.sum()))
            order = np.lexsort((i, d), axis=1)[:, :k]
            dd, ii = np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)
            pad = k - dd.shape[1]
            Dp.append(np.pad(dd, ((0, 0), (0, pad)), constant_values=MISSING_DISTANCE))
            Ip.append(np.pad(ii, ((0, 0), (0, pad)), constant_values=-1))
        Dm, Im = merge_topk(Dp, Ip, k)
        order = np.lexsort((np.broadcast_to(ids, D.shape), D), axis=1)[:, :k]
        ref_I = np.take_along_axis(np.broadcast_to(ids, D.shape), order, 1)
        got = min(k, n)
        assert (Im[:, :got] == ref_I).all() and (Im[:, got:] == -1).all()
        assert (Dm[:, :got] == np.take_along_axis(D, order, 1)).all()


def test_validation_without_ray():
    # every argument is checked before ray is imported: these errors need no ray installed
    h = make_hasher("simhash", n_bits=16)
    with pytest.raises(NotFittedError, match="fitted hasher"):
        ShardedIndex(h).build(np.zeros((4, 3)))
    h.fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValidationError, match="n_shards"):
        ShardedIndex(h, n_shards=0).build(np.zeros((4, 3)))
    with pytest.raises(ValidationError, match="metric"):
        ShardedIndex(h, metric="hamming").build(np.zeros((4, 3)))
    with pytest.raises(ValidationError, match="data is empty"):
        ShardedIndex(h).build(np.zeros((0, 3)))
    with pytest.raises(ValidationError, match="5 features but the model was fitted on 3"):
        ShardedIndex(h).build(np.zeros((4, 5)))
    with pytest.raises(DataFileError, match="no such file"):
        ShardedIndex(h).build("/nonexistent/x.npy")
    with pytest.raises(NotFittedError, match="build"):
        ShardedIndex(h).search(np.zeros((1, 3)), 1)


def test_quantizer_and_ivf_models_are_checked_without_ray():
    X = np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)
    with pytest.raises(NotFittedError, match="fitted PQ"):
        ShardedIndex(PQ(2, nbits=4)).build(X)
    with pytest.raises(NotFittedError, match="trained IVFIndex"):
        ShardedIndex(IVFIndex("kmeans", PQ(2, nbits=4), nlist=4)).build(X)
    ivf = IVFIndex("kmeans", PQ(2, nbits=4, random_state=0), nlist=4, random_state=0)
    ivf.add(X)
    with pytest.raises(ValidationError, match="empty trained IVFIndex.*holds 600"):
        ShardedIndex(ivf).build(X)
    pq = PQ(2, nbits=4, random_state=0).fit(X)
    with pytest.raises(ValidationError, match="rerank applies to binary"):
        ShardedIndex(pq, rerank=10).build(X)
    with pytest.raises(ValidationError, match="list ids"):
        ShardedIndex(BalancedKMeans(4, random_state=0).fit(X)).build(X)
    with pytest.raises(ValidationError, match="6 features but the model was fitted on 8"):
        ShardedIndex(pq).build(np.zeros((5, 6), np.float32))


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.slow
def test_sharded_identical_to_single_index(ray_local, tmp_path):
    """.npy source, 2 shards, Hamming and re-ranked search; then a rebuild from Parquet."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12000, 24)).astype(np.float32)
    X[6000:6100] = X[:100]  # exact duplicates: distance ties across shards
    np.save(tmp_path / "x.npy", X)
    Q = np.concatenate([rng.normal(size=(20, 24)), X[:5]]).astype(np.float32)
    hasher = make_hasher("itq", n_bits=16, random_state=0).fit(X[:2000])
    single = HashIndex(hasher, rerank=64)
    single.add(X)
    index = ShardedIndex(hasher, n_shards=2, rerank=64, chunk_rows=2500).build(tmp_path / "x.npy")
    try:
        assert index.ntotal == 12000 and sorted(index.shard_sizes()) == [5000, 7000]
        for k in (1, 10, 100):
            D, I = index.search(Q, k, rerank=0)
            D0, I0 = single.search(Q, k, rerank=0)
            np.testing.assert_array_equal(I, I0)
            np.testing.assert_array_equal(D, D0)
        D, I = index.search(Q, 10)
        D0, I0 = single.search(Q, 10)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(D, D0)
        with pytest.raises(ValidationError, match="5 features but the model was fitted on 24"):
            index.search(np.zeros((1, 5)), 3)
        with pytest.raises(DataFileError, match="no such file"):
            index.build(tmp_path / "missing.npy")

        # Parquet (a list column, several row groups per chunk), rebuilt on the same actors
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        Y = rng.normal(size=(3000, 8)).astype(np.float32)
        table = pa.table({"id": np.arange(3000), "emb": pa.array(list(Y), type=pa.list_(pa.float32()))})
        pq.write_table(table, tmp_path / "y.parquet", row_group_size=700)
        index.hasher = make_hasher("simhash", n_bits=32, random_state=0).fit(Y)
        index.rerank, index.chunk_rows = 0, 1000
        index.build(tmp_path / "y.parquet", vector_column="emb")
        single = HashIndex(index.hasher)
        single.add(Y)
        assert index.ntotal == 3000
        D, I = index.search(Y[:30], 7)
        D0, I0 = single.search(Y[:30], 7)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(D, D0)
    finally:
        index.close()


@pytest.mark.slow
def test_sharded_quantizers_and_ivf_identical_to_one_index(ray_local):
    """Train once on a sample, shard the codes over 3 actors, merge: the same (D, I) as one index."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6000, 16)).astype(np.float32)
    X[3000:3050] = X[:50]  # exact duplicates: equal codes, distance ties across shards
    Q = np.concatenate([rng.normal(size=(15, 16)), X[:5]]).astype(np.float32)
    sample = X[:2000]
    models = {
        "pq": PQ(4, nbits=6, random_state=0).fit(sample),
        "rq": RQ(3, nbits=5, random_state=0).fit(sample),
    }
    for name, model in models.items():
        index = ShardedIndex(model, n_shards=3, chunk_rows=700).build(X)
        try:
            assert index.ntotal == 6000 and sum(index.shard_sizes()) == 6000
            for k in (1, 10, 60):
                D, I = index.search(Q, k)
                D0, I0 = model.search(Q, model.encode(X), k)
                np.testing.assert_array_equal(I, I0, err_msg=name)
                np.testing.assert_array_equal(D, D0, err_msg=name)
        finally:
            index.close()
    for coarse in ("kmeans", "balanced-kmeans"):
        ivf = IVFIndex(coarse, PQ(4, nbits=6, random_state=0), nlist=16, nprobe=3, random_state=0).train(sample)
        single = IVFIndex(coarse, ivf.fine, nlist=16, nprobe=3, random_state=0)
        single.centroids_, single.bias_ = ivf.centroids_, ivf.bias_
        single._clear()
        single.add(X)
        index = ShardedIndex(ivf, n_shards=2, chunk_rows=1000).build(X)
        try:
            for nprobe in (None, 1, 16):
                D, I = index.search(Q, 10, nprobe=nprobe)
                D0, I0 = single.search(Q, 10, nprobe=nprobe)
                np.testing.assert_array_equal(I, I0, err_msg=f"{coarse} nprobe={nprobe}")
                np.testing.assert_array_equal(D, D0, err_msg=f"{coarse} nprobe={nprobe}")
            with pytest.raises(ValidationError, match="nprobe \\(17\\) cannot exceed nlist \\(16\\)"):
                index.search(Q, 3, nprobe=17)
        finally:
            index.close()
    pq = models["pq"]
    index = ShardedIndex(pq, n_shards=2).build(X[:100])
    try:
        with pytest.raises(ValidationError, match="nprobe applies to IVF"):
            index.search(Q, 3, nprobe=2)
        other = PQ(4, nbits=6, random_state=1).fit(sample)
        with pytest.raises(IncompatibleError, match="another codebook"):
            pq.search(Q, other.encode(X[:10]), 3)  # codes of another codebook are refused
    finally:
        index.close()
