"""The supervised protocol: the split (class-balanced queries from the test images, labelled training rows
from the database), the MNIST idx reader, and the metrics against a direct computation."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from hashlearn import codes as codes_mod
from hashlearn.errors import DataFileError, ValidationError
from hashlearn.evaluate_supervised import (
    MNIST_FILES,
    SupervisedSplit,
    _ranking_metrics,
    evaluate_supervised_method,
    load_supervised_split,
    read_mnist,
    run_supervised_protocol,
)
from hashlearn.metrics import (
    hamming_ranking,
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
    relevance_from_labels,
)

SHARED_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def make_fake_mnist(folder: Path, n_train: int = 300, n_test: int = 200, seed: int = 0) -> dict:
    """Four idx files in MNIST's layout: 28×28 digits whose class is the position of a bright square."""
    rng = np.random.default_rng(seed)
    out = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        rng.shuffle(y)
        x = rng.integers(0, 40, size=(n, 28, 28))
        for i, c in enumerate(y):
            r, col = divmod(int(c), 5)
            x[i, 4 + 10 * r : 10 + 10 * r, 2 + 5 * col : 6 + 5 * col] = 250
        _write_idx(folder / f"{part}-images-idx3-ubyte.gz", x)
        _write_idx(folder / f"{part}-labels-idx1-ubyte.gz", y)
        out[part] = (x, y)
    return out


@pytest.fixture
def fake_mnist(tmp_path):
    raw = make_fake_mnist(tmp_path)
    return tmp_path, raw


def test_read_mnist_matches_the_written_arrays(fake_mnist):
    folder, raw = fake_mnist
    xtr, ytr, xte, yte = read_mnist(folder)
    assert xtr.shape == (300, 784) and xtr.dtype == np.float32 and xte.shape == (200, 784)
    np.testing.assert_allclose(xtr, raw["train"][0].reshape(300, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yte, raw["t10k"][1])
    assert ytr.dtype == np.int64


def test_read_mnist_names_missing_and_damaged_files(fake_mnist):
    folder, _ = fake_mnist
    (folder / MNIST_FILES[3]).unlink()
    with pytest.raises(DataFileError, match="missing the MNIST file t10k-labels-idx1-ubyte.gz"):
        read_mnist(folder)
    with gzip.open(folder / MNIST_FILES[3], "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (500).to_bytes(4, "big") + bytes(10))
    with pytest.raises(DataFileError, match=r"header says \[500\] \(500 bytes\) but the file holds 10 bytes"):
        read_mnist(folder)


def test_mnist_split_follows_the_protocol(fake_mnist):
    folder, raw = fake_mnist
    split = load_supervised_split("mnist", n_labels=120, n_queries=50, data_dir=folder, random_state=1)
    assert split.xq.shape == (50, 784) and np.bincount(split.yq).tolist() == [5] * 10  # 5 per class
    assert split.xb.shape == (300 + 150, 784)  # all training images + the test images that are not queries
    assert split.image_shape == (1, 28, 28)
    assert split.ids_t.shape == (120,) and np.unique(split.ids_t).shape == (120,)
    np.testing.assert_array_equal(split.xt, split.xb[split.ids_t])
    # queries come from the test images and never appear in the database
    test_rows = {r.tobytes() for r in (raw["t10k"][0].reshape(200, -1) / 255.0).astype(np.float32)}
    assert all(q.tobytes() in test_rows for q in split.xq)
    db_rows = {r.tobytes() for r in split.xb}
    assert not any(q.tobytes() in db_rows for q in split.xq)
    again = load_supervised_split("mnist", n_labels=120, n_queries=50, data_dir=folder, random_state=1)
    np.testing.assert_array_equal(again.ids_t, split.ids_t)
    np.testing.assert_array_equal(again.xq, split.xq)


def test_split_errors_name_the_numbers(fake_mnist):
    folder, _ = fake_mnist
    with pytest.raises(ValidationError, match="n_queries=55 is not a multiple of its 10 classes"):
        load_supervised_split("mnist", n_labels=10, n_queries=55, data_dir=folder)
    with pytest.raises(ValidationError, match="class 0 has 20 candidate queries, fewer than the 30 per class"):
        load_supervised_split("mnist", n_labels=10, n_queries=300, data_dir=folder)
    with pytest.raises(ValidationError, match="n_labels=1000 exceeds the 450 database items"):
        load_supervised_split("mnist", n_labels=1000, n_queries=50, data_dir=folder)
    with pytest.raises(ValidationError, match="unknown dataset 'cifar'.*mnist, digits, mfeat"):
        load_supervised_split("cifar")
    with pytest.raises(DataFileError, match="missing the MNIST file"):
        load_supervised_split("mnist", data_dir=folder / "nowhere")


def test_ranking_metrics_equal_the_direct_computation():
    rng = np.random.default_rng(0)
    nq, nb, bits = 230, 500, 12  # more queries than one block: the blocked sums must agree
    q = codes_mod.pack(rng.random((nq, bits)) < 0.5)
    db = codes_mod.pack(rng.random((nb, bits)) < 0.5)
    yq, yb = rng.integers(0, 4, nq), rng.integers(0, 4, nb)
    m_ap, p_at, p2, curve = _ranking_metrics(q, db, yq, yb, bits, (10, 100, 1000))
    ham = codes_mod.hamming_distances(q, db, n_bits=bits)
    rel = relevance_from_labels(yq, yb, hamming_ranking(ham))
    assert m_ap == pytest.approx(mean_average_precision(rel), rel=1e-12)
    assert set(p_at) == {10, 100}  # k larger than the database is left out
    assert p_at[100] == pytest.approx(float(np.mean(precision_at_k(rel, 100))), rel=1e-12)
    assert p2 == pytest.approx(precision_within_radius(ham, relevance_from_labels(yq, yb), 2), rel=1e-12)
    assert curve["recall"][-1] == pytest.approx(1.0) and np.all(np.diff(curve["recall"]) >= -1e-12)


def test_digits_rows_supervised_beats_unsupervised_and_faiss_is_a_peer():
    pytest.importorskip("faiss", reason="faiss-cpu is the peer of the protocol")
    split, rows, skipped = run_supervised_protocol(
        "digits", ["sdh", "itq", "faiss-lsh", "pcah"], [16, 128], n_labels=600, n_queries=300, seed=0,
        params={"sdh": {"n_anchors": 200}})
    assert isinstance(split, SupervisedSplit) and split.xq.shape[0] == 300 and split.ids_t.shape == (600,)
    by = {(r["method"], r["bits"]): r for r in rows}
    assert by[("sdh", 16)]["supervised"] and not by[("itq", 16)]["supervised"] and by[("faiss-lsh", 16)]["peer"]
    assert by[("sdh", 16)]["map"] > by[("itq", 16)]["map"] + 0.2
    assert by[("sdh", 16)]["n_labels"] == 600
    assert any(s.startswith("pcah@128: pcah learns only 64 bits") for s in skipped), skipped  # d = 64


def test_a_method_with_input_shape_gets_the_image_shape():
    from hashlearn.hashing import SDH

    class Recorder(SDH):
        def __init__(self, n_bits=64, *, n_anchors=100, input_shape=None, random_state=None):
            super().__init__(n_bits, n_anchors=n_anchors, random_state=random_state)
            self.input_shape = input_shape

    import hashlearn.hashing as hashing_pkg

    split = load_supervised_split("digits", n_labels=300, n_queries=100)
    original = hashing_pkg.make_hasher
    try:
        hashing_pkg.make_hasher = lambda name, **kw: Recorder(**kw)
        seen = {}
        orig_fit = Recorder.fit

        def fit(self, X, y=None):
            seen["shape"] = self.input_shape
            return orig_fit(self, X, y)

        Recorder.fit = fit
        evaluate_supervised_method("recorder", 8, split)
    finally:
        hashing_pkg.make_hasher = original
    assert seen["shape"] == (1, 8, 8)


@pytest.mark.slow
def test_real_mnist_split_has_the_published_shape():
    if not (SHARED_MNIST / MNIST_FILES[0]).exists():
        pytest.skip(f"needs {SHARED_MNIST / MNIST_FILES[0]} (the shared MNIST idx files)")
    split = load_supervised_split("mnist", n_labels=5000, data_dir=SHARED_MNIST)
    assert split.xb.shape == (69000, 784) and split.xq.shape == (1000, 784) and split.ids_t.shape == (5000,)
    assert np.bincount(split.yq).tolist() == [100] * 10
