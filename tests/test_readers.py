"""Tests for hashlearn.io.readers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hashlearn.errors import DataFileError, ValidationError
from hashlearn.io.readers import (
    SUPPORTED_EXTENSIONS,
    check_vectors,
    read_ann_hdf5,
    read_bvecs,
    read_fvecs,
    read_ivecs,
    read_labels,
    read_npy,
    read_table,
    read_table_vectors,
    read_vectors,
    table_columns,
    write_bvecs,
    write_fvecs,
    write_ivecs,
)

RNG = np.random.default_rng(1234)


def _raw_records(records: list[tuple[int, np.ndarray]]) -> bytes:
    """Hand-build a *vecs file: each record is (declared dim, values array with the on-disk dtype)."""
    out = b""
    for d, vals in records:
        out += np.array([d], dtype="<i4").tobytes() + vals.tobytes()
    return out


# ------------------------------------------------------------------------------------------------
# TEXMEX formats
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [True, False])
def test_fvecs_round_trip(tmp_path, mmap):
    X = RNG.standard_normal((37, 13)).astype(np.float32)
    p = tmp_path / "base.fvecs"
    write_fvecs(p, X)
    assert p.stat().st_size == 37 * (4 + 13 * 4)
    Y = read_fvecs(p, mmap=mmap)
    assert Y.dtype == np.float32
    assert Y.shape == (37, 13)
    np.testing.assert_array_equal(Y, X)
    if mmap:
        assert isinstance(Y, np.memmap)
    else:
        assert not isinstance(Y, np.memmap)
        assert Y.flags.c_contiguous


@pytest.mark.parametrize("mmap", [True, False])
def test_ivecs_round_trip(tmp_path, mmap):
    X = RNG.integers(-(2**31), 2**31 - 1, size=(20, 7), dtype=np.int64).astype(np.int32)
    p = tmp_path / "gt.ivecs"
    write_ivecs(p, X)
    Y = read_ivecs(p, mmap=mmap)
    assert Y.dtype == np.int32
    np.testing.assert_array_equal(Y, X)


@pytest.mark.parametrize("mmap", [True, False])
def test_bvecs_round_trip(tmp_path, mmap):
    X = RNG.integers(0, 256, size=(25, 9)).astype(np.uint8)
    p = tmp_path / "b.bvecs"
    write_bvecs(p, X)
    assert p.stat().st_size == 25 * (4 + 9)
    Y = read_bvecs(p, mmap=mmap)
    assert Y.dtype == np.uint8
    np.testing.assert_array_equal(Y, X)


def test_fvecs_on_disk_layout_matches_texmex(tmp_path):
    # Independent of write_fvecs: hand-built bytes must read back as the values.
    vals = [np.array([1.5, -2.0, 3.25], "<f4"), np.array([0.0, 7.0, -1.0], "<f4")]
    p = tmp_path / "h.fvecs"
    p.write_bytes(_raw_records([(3, v) for v in vals]))
    np.testing.assert_array_equal(read_fvecs(p), np.stack(vals))
    # and write_fvecs produces those exact bytes
    q = tmp_path / "w.fvecs"
    write_fvecs(q, np.stack(vals))
    assert q.read_bytes() == p.read_bytes()


@settings(max_examples=25, deadline=None)
@given(
    X=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_fvecs_round_trip_property(tmp_path_factory, X):
    p = tmp_path_factory.mktemp("hyp") / "x.fvecs"
    write_fvecs(p, X)
    np.testing.assert_array_equal(read_fvecs(p, mmap=False), X)


def test_truncated_fvecs(tmp_path):
    X = RNG.standard_normal((10, 8)).astype(np.float32)
    p = tmp_path / "base.fvecs"
    write_fvecs(p, X)
    data = p.read_bytes()
    p.write_bytes(data[:-5])  # cut the last record short
    with pytest.raises(DataFileError, match=r"base\.fvecs: truncated.*record 9 is incomplete"):
        read_fvecs(p)


def test_fvecs_shorter_than_one_record(tmp_path):
    p = tmp_path / "tiny.fvecs"
    p.write_bytes(np.array([128], "<i4").tobytes() + b"\0" * 12)
    with pytest.raises(DataFileError, match=r"tiny\.fvecs: truncated: record 0 declares dimension 128"):
        read_fvecs(p)


def test_inconsistent_record_dimensions(tmp_path):
    f = lambda n: np.arange(n, dtype="<f4")  # noqa: E731
    p = tmp_path / "base.fvecs"
    # records 0..2 have d=4, record 3 declares 5: the first bad header is at record 3
    p.write_bytes(_raw_records([(4, f(4)), (4, f(4)), (4, f(4)), (5, f(5)), (4, f(4)), (4, f(4))]))
    with pytest.raises(DataFileError, match=r"base\.fvecs: record 3 declares dimension 5 but record 0 declares 4"):
        read_fvecs(p)


def test_inconsistent_dimension_in_last_record(tmp_path):
    p = tmp_path / "tail.ivecs"
    p.write_bytes(_raw_records([(4, np.arange(4, dtype="<i4"))] * 3 + [(2, np.arange(2, dtype="<i4"))]))
    with pytest.raises(DataFileError, match=r"record 3 declares dimension 2 but record 0 declares 4"):
        read_ivecs(p)


def test_inconsistent_bvecs_dimensions(tmp_path):
    p = tmp_path / "b.bvecs"
    p.write_bytes(_raw_records([(3, np.arange(3, dtype="u1")), (2, np.arange(3, dtype="u1"))]))
    with pytest.raises(DataFileError, match=r"record 1 declares dimension 2 but record 0 declares 3"):
        read_bvecs(p)


def test_check_headers_false_skips_the_scan(tmp_path):
    p = tmp_path / "base.fvecs"
    f = np.arange(4, dtype="<f4")
    p.write_bytes(_raw_records([(4, f), (9, f)]))
    with pytest.raises(DataFileError):
        read_fvecs(p)
    assert read_fvecs(p, check_headers=False).shape == (2, 4)


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b"", r"empty\.fvecs: file is empty"),
        (b"\x01\x00", r"empty\.fvecs: truncated: 2 bytes"),
        (np.array([-3, 0], "<i4").tobytes(), r"empty\.fvecs: record 0 declares invalid dimension -3"),
    ],
)
def test_malformed_fvecs(tmp_path, content, pattern):
    p = tmp_path / "empty.fvecs"
    p.write_bytes(content)
    with pytest.raises(DataFileError, match=pattern):
        read_fvecs(p)


@pytest.mark.parametrize(
    "reader, filename",
    [
        (read_fvecs, "nope.fvecs"),
        (read_ivecs, "nope.ivecs"),
        (read_bvecs, "nope.bvecs"),
        (read_npy, "nope.npy"),
        (read_ann_hdf5, "nope.hdf5"),
        (read_table_vectors, "nope.csv"),
        (read_vectors, "nope.parquet"),
        (read_labels, "nope.npy"),
    ],
)
def test_missing_file(tmp_path, reader, filename):
    with pytest.raises(DataFileError, match=rf"{filename.replace('.', '[.]')}: no such file"):
        reader(tmp_path / filename)


def test_directory_is_not_a_file(tmp_path):
    d = tmp_path / "dir.npy"
    d.mkdir()
    with pytest.raises(DataFileError, match="not a regular file"):
        read_npy(d)


@pytest.mark.parametrize(
    "writer, X, pattern",
    [
        (write_bvecs, np.array([[0, 256]]), r"outside \[0, 255\] at row 0"),
        (write_bvecs, np.array([[1, 2], [-1, 0]]), r"outside \[0, 255\] at row 1"),
        (write_ivecs, np.array([[1.0, 2.5]]), "non-integer values at row 0"),
        (write_ivecs, np.array([[2.0**40]]), r"outside \[-2147483648, 2147483647\]"),
        (write_fvecs, np.zeros((0, 3)), "cannot write an empty array"),
        (write_fvecs, np.zeros(3), "must be 2-D"),
        (write_fvecs, np.array([["a"]]), "string dtype"),
    ],
)
def test_writers_reject_bad_input(tmp_path, writer, X, pattern):
    with pytest.raises(ValidationError, match=pattern):
        writer(tmp_path / "out.vecs", X)


def test_write_to_missing_directory(tmp_path):
    with pytest.raises(DataFileError, match="cannot write"):
        write_fvecs(tmp_path / "no" / "such" / "dir.fvecs", np.ones((2, 2)))


# ------------------------------------------------------------------------------------------------
# .npy
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [True, False])
def test_npy_round_trip(tmp_path, mmap):
    X = RNG.standard_normal((11, 5))  # float64 kept as stored
    p = tmp_path / "x.npy"
    np.save(p, X)
    Y = read_npy(p, mmap=mmap)
    assert Y.dtype == np.float64
    assert isinstance(Y, np.memmap) is mmap
    np.testing.assert_array_equal(Y, X)


@pytest.mark.parametrize("mmap", [True, False])
def test_npy_object_array_refused_without_an_unsafe_hint(tmp_path, mmap):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match=r"obj\.npy: holds an array of Python objects") as info:
        read_npy(p, mmap=mmap)
    assert "allow_pickle" not in str(info.value) and "pickle.load" not in str(info.value)


@pytest.mark.parametrize(("content", "kind"), [
    (b"1.0,2.0\n3.0,4.0\n", "text"),
    (b"PK\x03\x04 zip bytes", "zip archive"),
    (b"", "empty"),
    (b"\x00\x01\x02\xff binary", "other binary"),
])
def test_file_named_npy_that_is_not_npy_is_named_for_what_it_is(tmp_path, content, kind):
    p = tmp_path / "renamed.npy"
    p.write_bytes(content)
    with pytest.raises(DataFileError, match=rf"renamed\.npy: not a \.npy file.*{kind}") as info:
        read_npy(p)
    assert "pickle" not in str(info.value)


@pytest.mark.parametrize("mmap", [True, False])
def test_npy_truncated_or_garbage(tmp_path, mmap):
    p = tmp_path / "t.npy"
    np.save(p, np.ones((100, 10)))
    p.write_bytes(p.read_bytes()[:-50])
    with pytest.raises(DataFileError, match=r"t\.npy: not a valid or complete \.npy file"):
        read_npy(p, mmap=mmap)
    g = tmp_path / "g.npy"
    g.write_bytes(b"hello world, not numpy")
    with pytest.raises(DataFileError, match=r"g\.npy"):
        read_npy(g, mmap=mmap)


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------


def test_read_vectors_nan_names_file_and_row(tmp_path):
    X = np.ones((30, 4), dtype=np.float32)
    X[17, 2] = np.nan
    X[20, 0] = np.inf
    p = tmp_path / "x.npy"
    np.save(p, X)
    with pytest.raises(ValidationError, match=r"x\.npy: contains NaN at row 17 \(column 2\)"):
        read_vectors(p)
    assert read_vectors(p, validate=False).shape == (30, 4)


def test_read_vectors_nan_in_fvecs(tmp_path):
    X = np.zeros((9, 3), dtype=np.float32)
    X[6, 1] = -np.inf
    p = tmp_path / "q.fvecs"
    write_fvecs(p, X)
    with pytest.raises(ValidationError, match=r"q\.fvecs: contains -inf at row 6 \(column 1\)"):
        read_vectors(p)


def test_check_vectors_chunked_scan_finds_first_bad_row(monkeypatch):
    import hashlearn.io.readers.validation as validation

    monkeypatch.setattr(validation, "_CHUNK_ELEMS", 16)  # 4 rows of d=4 per chunk
    X = np.zeros((50, 4))
    X[37, 3] = np.inf
    X[45, 0] = np.nan
    with pytest.raises(ValidationError, match=r"^xb: contains \+inf at row 37 \(column 3\)$"):
        check_vectors(X, name="xb")


def test_check_vectors_no_copy_when_already_right():
    X = np.ones((5, 3), dtype=np.float32)
    assert check_vectors(X) is X
    Y = check_vectors(X.T)  # not C-contiguous -> copy
    assert Y is not X and Y.flags.c_contiguous and Y.dtype == np.float32
    np.testing.assert_array_equal(Y, X.T)


def test_check_vectors_converts():
    X = [[1, 2], [3, 4]]
    Y = check_vectors(X)
    assert Y.dtype == np.float32 and Y.flags.c_contiguous
    np.testing.assert_array_equal(Y, np.array(X, dtype=np.float32))
    Z = check_vectors(np.array(X, dtype=np.int16), dtype=None)
    assert Z.dtype == np.int16
    B = check_vectors(np.array([[True, False]]))
    np.testing.assert_array_equal(B, [[1.0, 0.0]])


@pytest.mark.parametrize(
    "X, pattern",
    [
        (np.array([[1, None]], dtype=object), r"^X: has dtype object"),
        (np.array([["1", "2"]]), r"^X: has string dtype"),
        (np.array([[1 + 2j]]), r"^X: has complex dtype"),
        (np.ones(4), r"^X: expected a 2-D array .* ndim=1 with shape \(4,\).*reshape"),
        (np.ones((2, 2, 2)), r"^X: expected a 2-D array .* ndim=3"),
        (np.ones((0, 4)), r"^X: is empty \(shape \(0, 4\)\)"),
        (np.ones((3, 0)), r"^X: is empty"),
        ([[1.0, 2.0], [3.0]], r"^X: cannot be converted"),
        (np.array([[1.0, 1e39]]), r"^X: value 1e\+39 at row 0 \(column 1\) overflows float32"),
    ],
)
def test_check_vectors_errors(X, pattern):
    with pytest.raises(ValidationError, match=pattern):
        check_vectors(X)


def test_check_vectors_allow_empty():
    Y = check_vectors(np.ones((0, 4)), allow_empty=True)
    assert Y.shape == (0, 4) and Y.dtype == np.float32


def test_check_vectors_rejects_non_numeric_target():
    with pytest.raises(ValidationError, match="requested dtype"):
        check_vectors(np.ones((2, 2)), dtype=object)


# ------------------------------------------------------------------------------------------------
# dispatch
# ------------------------------------------------------------------------------------------------


def test_unknown_extension_lists_supported(tmp_path):
    p = tmp_path / "data.xyz"
    p.write_text("1 2 3")
    with pytest.raises(DataFileError, match=r"data\.xyz: unsupported file extension '\.xyz'") as ei:
        read_vectors(p)
    for ext in SUPPORTED_EXTENSIONS:
        assert ext in str(ei.value)
    with pytest.raises(DataFileError, match=r"\(none\)"):
        read_vectors(tmp_path / "noext")


def test_read_vectors_dispatch(tmp_path):
    X = RNG.standard_normal((6, 4)).astype(np.float32)
    write_fvecs(tmp_path / "a.FVECS", X)
    np.testing.assert_array_equal(read_vectors(tmp_path / "a.FVECS"), X)
    write_ivecs(tmp_path / "a.ivecs", np.arange(24).reshape(6, 4))
    assert read_vectors(tmp_path / "a.ivecs").dtype == np.int32
    write_bvecs(tmp_path / "a.bvecs", np.arange(24).reshape(6, 4))
    assert read_vectors(tmp_path / "a.bvecs", mmap=False).dtype == np.uint8
    np.save(tmp_path / "a.npy", X)
    np.testing.assert_array_equal(read_vectors(str(tmp_path / "a.npy")), X)
    with pytest.raises(TypeError):
        read_vectors(tmp_path / "a.npy", key="train")  # irrelevant keyword is not ignored


def test_read_vectors_rejects_1d_and_empty(tmp_path):
    np.save(tmp_path / "v.npy", np.ones(5))
    with pytest.raises(ValidationError, match=r"v\.npy: expected a 2-D array"):
        read_vectors(tmp_path / "v.npy")
    np.save(tmp_path / "e.npy", np.ones((0, 5)))
    with pytest.raises(ValidationError, match=r"e\.npy: is empty"):
        read_vectors(tmp_path / "e.npy")


# ------------------------------------------------------------------------------------------------
# HDF5 (ann-benchmarks layout)
# ------------------------------------------------------------------------------------------------


def _write_ann(path, train, test, neighbors, distances, distance="euclidean"):
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["distance"] = distance
        f.attrs["type"] = "dense"
        f.attrs["point_type"] = "float"
        f.attrs["dimension"] = train.shape[1]
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=neighbors)
        f.create_dataset("distances", data=distances)


def _ann_arrays():
    train = RNG.standard_normal((40, 6)).astype(np.float32)
    test = RNG.standard_normal((5, 6)).astype(np.float32)
    d2 = ((test[:, None, :] - train[None, :, :]) ** 2).sum(-1)
    nb = np.argsort(d2, axis=1)[:, :10].astype(np.int32)
    dist = np.sqrt(np.take_along_axis(d2, nb, axis=1)).astype(np.float32)
    return train, test, nb, dist


def test_ann_hdf5_round_trip(tmp_path):
    train, test, nb, dist = _ann_arrays()
    p = tmp_path / "toy-6-euclidean.hdf5"
    _write_ann(p, train, test, nb, dist)
    data = read_ann_hdf5(p)
    assert set(data) == {"train", "test", "neighbors", "distances", "distance"}
    assert data["distance"] == "euclidean"
    np.testing.assert_array_equal(data["train"], train)
    np.testing.assert_array_equal(data["test"], test)
    np.testing.assert_array_equal(data["neighbors"], nb)
    np.testing.assert_array_equal(data["distances"], dist)
    np.testing.assert_array_equal(read_vectors(p), train)
    np.testing.assert_array_equal(read_vectors(p, key="test"), test)
    with pytest.raises(DataFileError, match=r"no dataset 'nope'.*'train'"):
        read_vectors(p, key="nope")


def test_ann_hdf5_partial_and_bytes_attribute(tmp_path):
    import h5py

    p = tmp_path / "part.h5"
    train = np.arange(12, dtype=np.float32).reshape(4, 3)
    with h5py.File(p, "w") as f:
        f.create_dataset("train", data=train)
        f.attrs["distance"] = np.bytes_(b"angular")
    data = read_ann_hdf5(p)
    assert set(data) == {"train", "distance"}
    assert data["distance"] == "angular"
    q = tmp_path / "nodist.h5"
    with h5py.File(q, "w") as f:
        f.create_dataset("test", data=train)
    assert read_ann_hdf5(q)["distance"] is None


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda f: f.__delitem__("test") or f.create_dataset("test", data=np.ones((5, 7))),
         r"'train' has dimension 6 but 'test' has dimension 7"),
        (lambda f: f.__delitem__("neighbors") or f.create_dataset("neighbors", data=np.zeros((4, 10), np.int32)),
         r"'neighbors' has 4 rows but 'test' has 5"),
        (lambda f: f.__delitem__("neighbors") or f.create_dataset("neighbors", data=np.full((5, 10), 40, np.int32)),
         r"'neighbors' row 0 holds ids outside \[0, 40\)"),
        (lambda f: f.__delitem__("distances") or f.create_dataset("distances", data=np.ones((5, 3))),
         r"'distances' has shape \(5, 3\) but 'neighbors' has \(5, 10\)"),
        (lambda f: f.attrs.__setitem__("type", "sparse"), "sparse ann-benchmarks layout"),
    ],
)
def test_ann_hdf5_inconsistent(tmp_path, mutate, pattern):
    import h5py

    p = tmp_path / "bad.hdf5"
    _write_ann(p, *_ann_arrays())
    with h5py.File(p, "a") as f:
        mutate(f)
    with pytest.raises(DataFileError, match=pattern):
        read_ann_hdf5(p)


def test_ann_hdf5_without_known_datasets(tmp_path):
    import h5py

    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("grp/vectors", data=np.ones((2, 2)))
    with pytest.raises(DataFileError, match=r"none of the ann-benchmarks datasets.*grp/vectors"):
        read_ann_hdf5(p)


def test_not_hdf5(tmp_path):
    p = tmp_path / "fake.hdf5"
    p.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DataFileError, match=r"fake\.hdf5: not an HDF5 file"):
        read_ann_hdf5(p)
    with pytest.raises(DataFileError, match=r"fake\.hdf5: not an HDF5 file"):
        read_vectors(p)


# ------------------------------------------------------------------------------------------------
# CSV / Parquet
# ------------------------------------------------------------------------------------------------


def _frame(X):
    import pandas as pd

    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    df.insert(0, "id", [f"item{i}" for i in range(len(X))])  # non-numeric column to skip
    return df


def test_csv_numeric_columns_round_trip(tmp_path):
    X = RNG.standard_normal((50, 5)).astype(np.float32)
    p = tmp_path / "vec.csv"
    _frame(X).to_csv(p, index=False)
    Y = read_table_vectors(p)  # all numeric columns, 'id' skipped
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, X)
    Z = read_table_vectors(p, columns=["f3", "f1"])
    np.testing.assert_array_equal(Z, X[:, [3, 1]])
    np.testing.assert_array_equal(read_vectors(p, columns=["f0"]), X[:, :1])


def test_parquet_numeric_columns_round_trip(tmp_path):
    X = RNG.standard_normal((50, 5)).astype(np.float32)
    for name in ("vec.parquet", "vec.pq"):
        p = tmp_path / name
        _frame(X).to_parquet(p, index=False)
        np.testing.assert_array_equal(read_table_vectors(p), X)
        np.testing.assert_array_equal(read_vectors(p, columns=["f4", "f0"]), X[:, [4, 0]])


@pytest.mark.parametrize("style", ["space", "comma", "json"])
def test_csv_vector_column_round_trip(tmp_path, style):
    import pandas as pd

    X = RNG.standard_normal((20, 6)).astype(np.float32)
    fmt = {
        "space": lambda r: " ".join(repr(float(v)) for v in r),
        "comma": lambda r: ",".join(repr(float(v)) for v in r),
        "json": lambda r: json.dumps([float(v) for v in r]),
    }[style]
    p = tmp_path / "emb.csv"
    pd.DataFrame({"id": range(20), "emb": [fmt(r) for r in X]}).to_csv(p, index=False)
    Y = read_table_vectors(p, vector_column="emb")
    assert Y.dtype == np.float32 and Y.shape == (20, 6)
    np.testing.assert_array_equal(Y, X)


def test_csv_single_text_column_autodetected(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text('v\n"1 2 3"\n"4 5 6"\n')
    np.testing.assert_array_equal(read_table_vectors(p), [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("fixed", [False, True])
def test_parquet_list_column_round_trip(tmp_path, fixed):
    import pyarrow as pa
    import pyarrow.parquet as pq

    X = RNG.standard_normal((30, 8)).astype(np.float32)
    typ = pa.list_(pa.float32(), 8) if fixed else pa.list_(pa.float32())
    col = pa.array([list(r) for r in X], type=typ)
    p = tmp_path / "emb.parquet"
    pq.write_table(pa.table({"id": pa.array(range(30)), "emb": col}), p, row_group_size=7)
    Y = read_table_vectors(p, vector_column="emb")
    np.testing.assert_array_equal(Y, X)
    np.testing.assert_array_equal(read_vectors(p, vector_column="emb"), X)


def test_parquet_string_vector_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "s.parquet"
    pq.write_table(pa.table({"v": ["[1, 2]", "[3, 4.5]"]}), p)
    np.testing.assert_array_equal(read_table_vectors(p), [[1, 2], [3, 4.5]])


def test_table_errors(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2], "v": ["1 2 3", "1 2"]}).to_csv(p, index=False)
    with pytest.raises(DataFileError, match=r"t\.csv: column 'v' row 1 has 2 values but row 0 has 3"):
        read_table_vectors(p, vector_column="v")
    with pytest.raises(DataFileError, match=r"column\(s\) \['zz'\] not found; available columns: \['a', 'v'\]"):
        read_table_vectors(p, columns=["a", "zz"])
    with pytest.raises(DataFileError, match=r"column 'v' is not numeric"):
        read_table_vectors(p, columns=["v"])
    with pytest.raises(ValidationError, match="not both"):
        read_table_vectors(p, columns=["a"], vector_column="v")

    q = tmp_path / "bad.csv"
    pd.DataFrame({"v": ["1 2", "3 x"]}).to_csv(q, index=False)
    with pytest.raises(DataFileError, match=r"column 'v' row 1: cannot parse 'x' as a number"):
        read_table_vectors(q, vector_column="v")
    e = tmp_path / "emptycell.csv"
    e.write_text('v\n"1 2"\n""\n')
    with pytest.raises(DataFileError, match=r"column 'v' row 1 is empty"):
        read_table_vectors(e, vector_column="v")

    r = tmp_path / "ragged.parquet"
    pq.write_table(pa.table({"v": pa.array([[1.0, 2.0], [1.0, 2.0], [3.0]])}), r)
    with pytest.raises(DataFileError, match=r"column 'v' row 2 has 1 values but row 0 has 2"):
        read_table_vectors(r, vector_column="v")
    nl = tmp_path / "null.parquet"
    pq.write_table(pa.table({"v": pa.array([[1.0], None])}), nl)
    with pytest.raises(DataFileError, match=r"column 'v' row 1 is null"):
        read_table_vectors(nl, vector_column="v")
    s = tmp_path / "strs.parquet"
    pq.write_table(pa.table({"a": ["x"], "b": ["y"]}), s)
    with pytest.raises(DataFileError, match="no numeric columns"):
        read_table_vectors(s)
    with pytest.raises(DataFileError, match=r"column 'a' is not numeric \(type string\)"):
        read_table_vectors(s, columns=["a"])
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataFileError, match=r"junk\.parquet: not a valid Parquet file"):
        read_table_vectors(junk)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match=r"empty\.csv: CSV file is empty"):
        read_table_vectors(empty)


@pytest.mark.parametrize("sep", [",", "||"])
def test_read_table_names_the_byte_and_line_of_a_bad_encoding(tmp_path, sep):
    p = tmp_path / "t.csv"
    body = f"id{sep}name\n".encode() + f"1{sep}caf\u00e9\n".encode() * 300_000  # 2-byte characters, 4 MiB
    bad = len(body) + len(f"2{sep}caf".encode())
    p.write_bytes(body + f"2{sep}caf".encode() + b"\xe9\n")
    with pytest.raises(DataFileError, match=rf"t\.csv: not valid utf-8 \(invalid continuation byte at byte {bad}, "
                                            rf"line 300002\); re-encode the file as UTF-8"):
        read_table(p, sep=sep, text=True)
    p.write_bytes(body)
    df = read_table(p, sep=sep, text=True)
    assert df.shape == (300_000, 2) and df["id"].iloc[0] == "1" and df["name"].iloc[-1] == "caf\u00e9"


def test_read_table_text_and_typed_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id;x;name\n007;0.1;a\n008;;\n")
    text = read_table(p, sep=";", text=True)
    assert text.to_dict("list") == {"id": ["007", "008"], "x": ["0.1", ""], "name": ["a", ""]}
    typed = read_table(p, sep=";", columns=["x", "id"])
    assert list(typed.columns) == ["id", "x"] and typed["id"].tolist() == [7, 8] and np.isnan(typed["x"].iloc[1])
    assert table_columns(p, sep=";") == ["id", "x", "name"]
    with pytest.raises(DataFileError, match=r"column\(s\) \['zz'\] not found; available columns: \['id', 'x', 'name'\]"):
        read_table(p, sep=";", columns=["zz"])
    q = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["007", None], "n": [1, 2]}).to_parquet(q)
    assert read_table(q, text=True).to_dict("list") == {"id": ["007", None], "n": [1, 2]}


def test_csv_missing_cell_is_nan_and_read_vectors_reports_row(tmp_path):
    p = tmp_path / "holes.csv"
    p.write_text("a,b\n1,2\n3,\n5,6\n")
    Y = read_table_vectors(p)
    assert np.isnan(Y[1, 1]) and Y[2, 1] == 6
    with pytest.raises(ValidationError, match=r"holes\.csv: contains NaN at row 1 \(column 1\)"):
        read_vectors(p)


# ------------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------------


def test_read_labels_formats(tmp_path):
    y = RNG.integers(0, 10, size=40)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "y2.npy", y.reshape(-1, 1).astype(np.float64))
    write_ivecs(tmp_path / "y.ivecs", y.reshape(-1, 1))
    (tmp_path / "y.csv").write_text("\n".join(map(str, y)) + "\n")
    (tmp_path / "yh.csv").write_text("label\n" + "\n".join(map(str, y)) + "\n")
    (tmp_path / "y.txt").write_text("\n".join(map(str, y)) + "\n")
    (tmp_path / "multi.csv").write_text("id,label\n" + "\n".join(f"x{i},{v}" for i, v in enumerate(y)))
    for name in ("y.npy", "y2.npy", "y.ivecs", "y.csv", "yh.csv", "y.txt"):
        out = read_labels(tmp_path / name)
        assert out.dtype == np.int64 and out.shape == (40,), name
        np.testing.assert_array_equal(out, y, err_msg=name)
    np.testing.assert_array_equal(read_labels(tmp_path / "multi.csv", column="label"), y)
    with pytest.raises(DataFileError, match="expected a single column of labels, found 2"):
        read_labels(tmp_path / "multi.csv")


def test_read_labels_errors(tmp_path):
    np.save(tmp_path / "f.npy", np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValidationError, match=r"f\.npy: contains NaN at row 1"):
        read_labels(tmp_path / "f.npy")
    np.save(tmp_path / "h.npy", np.array([1.0, 2.5]))
    with pytest.raises(ValidationError, match=r"label 2\.5 at row 1 is not an integer"):
        read_labels(tmp_path / "h.npy")
    np.save(tmp_path / "m.npy", np.ones((3, 2)))
    with pytest.raises(DataFileError, match=r"labels must have shape \(n,\) or \(n, 1\)"):
        read_labels(tmp_path / "m.npy")
    write_ivecs(tmp_path / "w.ivecs", np.ones((3, 2)))
    with pytest.raises(DataFileError, match="found dimension 2"):
        read_labels(tmp_path / "w.ivecs")
    (tmp_path / "bad.csv").write_text("1\n2\nthree\n4\n")
    with pytest.raises(DataFileError, match=r"bad\.csv: row 2: cannot parse 'three'"):
        read_labels(tmp_path / "bad.csv")
    (tmp_path / "y.json").write_text("[1, 2]")
    with pytest.raises(DataFileError, match=r"unsupported label file extension '\.json'"):
        read_labels(tmp_path / "y.json")


def test_failed_write_leaves_existing_file_intact(tmp_path, monkeypatch):
    import os

    import hashlearn.io.persist as persist
    from hashlearn.io.readers import read_fvecs, write_fvecs

    path = tmp_path / "base.fvecs"
    good = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_fvecs(path, good)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(persist.os, "replace", failing_replace)
    with pytest.raises(DataFileError, match="base.fvecs"):
        write_fvecs(path, good * 2)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["base.fvecs"]
    np.testing.assert_array_equal(read_fvecs(path, mmap=False), good)
