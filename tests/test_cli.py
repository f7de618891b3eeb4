"""End-to-end tests of the ``hashlearn`` command line.

Most tests call :func:`hashlearn.cli.main` in-process (fast; output captured with ``capsys``); a few
run ``python -m hashlearn`` in a subprocess to check the real exit status and that no traceback
reaches the user. Inputs are small real data: scikit-learn's digits (1797 x 64), written to ``.npy``
and ``.fvecs`` files.

Contract under test (cli.py's docstring and the README): bad input gives exit code 2 and one line
``error: ...`` on stderr naming the problem, never a traceback; output files are written atomically,
so a failed command leaves files on disk as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hashlearn
from hashlearn.cli import main
from hashlearn.io import read_header

N_QUERIES = 100


# -- helpers ---------------------------------------------------------------------------------------
def run(capsys, *argv):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()  # drop anything printed before
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *needles):
    """Exit code 2, exactly one non-empty stderr line starting with 'error:', naming every needle."""
    assert rc == 2, f"exit code {rc}, stderr: {err!r}"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def write_fvecs(path: Path, X: np.ndarray) -> None:
    """TEXMEX .fvecs written by hand (int32 dimension + float32 values per record)."""
    X = np.ascontiguousarray(X, dtype="<f4")
    n, d = X.shape
    rec = np.empty((n, d + 1), dtype="<f4")
    rec[:, 0] = np.array([d], dtype="<i4").view("<f4")[0]
    rec[:, 1:] = X
    rec.tofile(path)


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Digits split into base/queries, plus a model, its codes and an index built through the CLI."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("cli")
    X = load_digits().data.astype(np.float32)
    xq, xb = X[:N_QUERIES], X[N_QUERIES:]
    d = {"root": root, "xb": xb, "xq": xq}
    for name, arr in (("base.npy", xb), ("queries.npy", xq)):
        np.save(root / name, arr)
        d[name] = root / name
    write_fvecs(root / "base.fvecs", xb)
    d["base.fvecs"] = root / "base.fvecs"
    d["model.hlx"] = root / "model.hlx"
    d["codes.npy"] = root / "codes.npy"
    d["qcodes.npy"] = root / "qcodes.npy"
    d["index.hlx"] = root / "index.hlx"
    assert main(["fit", str(d["base.fvecs"]), "-m", "simhash", "-b", "64", "-o", str(d["model.hlx"])]) == 0
    assert main(["encode", str(d["model.hlx"]), str(d["base.npy"]), "-o", str(d["codes.npy"])]) == 0
    assert main(["encode", str(d["model.hlx"]), str(d["queries.npy"]), "-o", str(d["qcodes.npy"])]) == 0
    assert main(["index", "build", str(d["base.fvecs"]), "--hasher", str(d["model.hlx"]), "--index", "mih",
                 "--rerank", "50", "-o", str(d["index.hlx"])]) == 0
    return d


@pytest.fixture
def work(tmp_path, data):
    """A fresh folder holding copies of the shared inputs, for tests that write or damage files."""
    for name in ("base.npy", "queries.npy", "model.hlx", "codes.npy", "index.hlx"):
        shutil.copy(data[name], tmp_path / name)
    return tmp_path


# -- happy paths -----------------------------------------------------------------------------------
def test_methods_lists_every_registered_method(capsys):
    rc, out, err = run(capsys, "methods")
    assert rc == 0
    names = hashlearn.list_methods()
    assert len(names) >= 4
    for name in names:
        assert name in out
        assert hashlearn.hashing.get_hasher_class(name).__name__ in out


def test_fit_saves_the_same_hasher_as_the_python_api(data):
    model = hashlearn.load(data["model.hlx"])
    assert type(model).__name__ == "SimHash"
    assert model.n_features_in_ == 64 and model.code_bits == 64
    expected = hashlearn.make_hasher("simhash", n_bits=64, random_state=0).fit(data["xb"])
    np.testing.assert_array_equal(model.transform(data["xq"]), expected.transform(data["xq"]))


def test_fit_passes_params_and_seed(capsys, tmp_path, data):
    rc, out, err = run(capsys, "fit", data["base.npy"], "-m", "e2lsh", "-b", "16", "--seed", "3",
                       "-p", "bucket_width=4.5", "-o", tmp_path / "m.hlx")
    assert rc == 0, err
    assert "fitted e2lsh (16 bits) on 1697 x 64" in out
    model = hashlearn.load(tmp_path / "m.hlx")
    assert type(model).__name__ == "E2LSH"
    assert model.code_bits == 16 and model.bucket_width == 4.5 and model.random_state == 3


def test_encode_writes_packed_uint64_codes(data):
    codes = np.load(data["codes.npy"])
    assert codes.dtype == np.uint64
    assert codes.shape == (data["xb"].shape[0], 1)
    expected = hashlearn.load(data["model.hlx"]).transform(data["xb"])
    np.testing.assert_array_equal(codes, expected)
    assert np.unique(codes).size > 100  # real codes, not a constant


def test_encode_words_per_code_follow_the_bit_count(capsys, tmp_path, data):
    assert run(capsys, "fit", data["base.npy"], "-m", "simhash", "-b", "100", "-o", tmp_path / "m.hlx")[0] == 0
    rc, out, err = run(capsys, "encode", tmp_path / "m.hlx", data["queries.npy"], "-o", tmp_path / "c.npy")
    assert rc == 0, err
    assert "100-bit" in out
    codes = np.load(tmp_path / "c.npy")
    assert codes.shape == (N_QUERIES, 2) and codes.dtype == np.uint64
    assert not np.any(codes[:, 1] >> np.uint64(36))  # padding bits 100..127 are zero


BUILDS = {
    # name: (build options, queries file key, expected index class, expected attributes)
    "model-mih-rerank": (["--hasher", "@model", "--index", "mih", "--rerank", "50"], "queries.npy",
                         "HashIndex", {"rerank": 50, "index": "mih"}),
    "method-flat": (["--method", "simhash", "-b", "32"], "queries.npy", "HashIndex", {"rerank": 0, "index": "flat"}),
    "codes-flat": (["--packed"], "qcodes.npy", "BinaryIndex", {"n_bits": 64}),
    "codes-mih": (["--packed", "--index", "mih"], "qcodes.npy", "MultiIndexHashing", {"n_bits": 64}),
}


@pytest.mark.parametrize("name", list(BUILDS))
def test_index_build_then_search_matches_the_python_api(capsys, tmp_path, data, name):
    options, qkey, cls, attrs = BUILDS[name]
    options = [str(data["model.hlx"]) if o == "@model" else o for o in options]
    source = data["codes.npy"] if "--packed" in options else data["base.npy"]
    index_path = tmp_path / "index.hlx"
    rc, out, err = run(capsys, "index", "build", source, *options, "-o", index_path)
    assert rc == 0, err
    assert f"built {cls} with {data['xb'].shape[0]} entries" in out

    index = hashlearn.load(index_path)
    assert type(index).__name__ == cls and index.ntotal == data["xb"].shape[0]
    for key, value in attrs.items():
        assert getattr(index, key) == value

    k = 7
    rc, out, err = run(capsys, "search", index_path, data[qkey], "-k", k,
                       "-o", tmp_path / "res.npz", "--json", tmp_path / "res.json")
    assert rc == 0, err
    assert f"{N_QUERIES} queries, k={k}" in out
    queries = np.load(data[qkey])
    D_api, I_api = hashlearn.load(index_path).search(queries, k)
    with np.load(tmp_path / "res.npz") as res:
        np.testing.assert_array_equal(res["I"], I_api)
        np.testing.assert_array_equal(res["D"], D_api)
        assert res["I"].shape == (N_QUERIES, k) and res["I"].dtype == np.int64
    payload = json.loads((tmp_path / "res.json").read_text())
    assert payload["k"] == k
    np.testing.assert_array_equal(np.asarray(payload["I"]), I_api)
    np.testing.assert_array_equal(np.asarray(payload["D"], dtype=D_api.dtype), D_api)
    assert (I_api >= 0).all() and (np.diff(D_api, axis=1) >= 0).all()
    # the first rows of the printed table are the first results
    assert " ".join(map(str, I_api[0])) in out


def test_rerank_index_finds_database_vectors_themselves(capsys, tmp_path, data):
    np.save(tmp_path / "self.npy", data["xb"][:20])
    rc, out, err = run(capsys, "search", data["index.hlx"], tmp_path / "self.npy", "-k", "3", "-o", tmp_path / "r.npz")
    assert rc == 0, err
    with np.load(tmp_path / "r.npz") as res:
        assert res["D"].dtype == np.float32  # re-ranked: exact squared L2, not Hamming
        np.testing.assert_array_equal(res["D"][:, 0], 0)
        # digits has exact duplicates; the row itself must be among the distance-0 hits
        for row in range(20):
            assert row in res["I"][row][res["D"][row] == 0]


def test_search_with_mmap_gives_the_same_results(capsys, tmp_path, data):
    for flag, name in (([], "a.npz"), (["--mmap"], "b.npz")):
        assert run(capsys, "search", data["index.hlx"], data["queries.npy"], "-k", 5, *flag,
                   "-o", tmp_path / name)[0] == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        np.testing.assert_array_equal(a["I"], b["I"])
        np.testing.assert_array_equal(a["D"], b["D"])


def test_info_describes_class_and_arrays(capsys, data):
    rc, out, err = run(capsys, "info", data["index.hlx"])
    assert rc == 0, err
    assert "HashIndex" in out and "SimHash" in out and "MultiIndexHashing" in out
    assert f"{data['index.hlx'].stat().st_size:,} bytes" in out
    assert "vectors: array <f4 (1697, 64)" in out
    assert "codes: array <u8 (1697, 1)" in out
    assert "rerank: 50" in out

    rc, out, err = run(capsys, "info", data["model.hlx"])
    assert rc == 0, err
    assert "SimHash" in out and "projections_: array <f4 (64, 64)" in out
    assert "HashIndex" not in out


ROW_KEYS = {"method", "bits", "map", "recall_at_10", "qps", "bytes_per_vector"}


def check_rows(rows):
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert 0 < row["map"] <= 1 and 0 <= row["recall_at_10"] <= 1
        assert row["qps"] > 0
        assert row["bytes_per_vector"] == row["bits"] / 8


def test_eval_writes_json_rows(capsys, tmp_path):
    out_json = tmp_path / "out.json"
    rc, out, err = run(capsys, "eval", "-m", "simhash", "-b", "32", "--dataset", "digits",
                       "--n-queries", N_QUERIES, "--json", out_json)
    assert rc == 0, err
    payload = json.loads(out_json.read_text())
    assert payload["dataset"] == "digits"
    assert [(r["method"], r["bits"]) for r in payload["rows"]] == [("simhash", 32)]
    check_rows(payload["rows"])
    assert "simhash" in out and "mAP" in out


def test_bench_hashing_covers_every_method_and_bit_width(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    rc, out, err = run(capsys, "bench", "hashing", "--dataset", "digits", "--bits", "16,32",
                       "--method", "simhash,faiss-lsh", "--n-queries", N_QUERIES, "--json", out_json)
    assert rc == 0, err
    payload = json.loads(out_json.read_text())
    got = sorted((r["method"], r["bits"]) for r in payload["rows"])
    assert got == [("faiss-lsh", 16), ("faiss-lsh", 32), ("simhash", 16), ("simhash", 32)]
    assert payload["skipped"] == []
    assert {r["method"]: r["peer"] for r in payload["rows"]} == {"simhash": False, "faiss-lsh": True}
    check_rows(payload["rows"])


def test_demo_on_digits(capsys, tmp_path):
    out_json = tmp_path / "demo.json"
    rc, out, err = run(capsys, "demo", "--dataset", "digits", "--n-queries", N_QUERIES, "--bits", "32",
                       "--json", out_json)
    assert rc == 0, err
    assert "faiss-lsh" in out
    assert f"{1797 - N_QUERIES} database / {N_QUERIES} queries" in out
    rows = json.loads(out_json.read_text())["rows"]
    assert sorted(r["method"] for r in rows) == ["crosspolytope", "e2lsh", "faiss-lsh", "itq", "simhash"]
    assert {r["bits"] for r in rows} == {32}
    check_rows(rows)


# -- bad input: exit code 2, one line, no traceback ------------------------------------------------
@pytest.fixture
def bad(tmp_path):
    """Malformed input files."""
    np.save(tmp_path / "nan.npy", np.array([[1, 2], [np.nan, 3]], dtype=np.float32))
    np.save(tmp_path / "flat.npy", np.arange(64, dtype=np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 64), dtype=np.float32))
    np.save(tmp_path / "empty_codes.npy", np.zeros((0, 1), dtype=np.uint64))
    np.save(tmp_path / "q32.npy", np.ones((3, 32), dtype=np.float32))
    (tmp_path / "junk.npy").write_bytes(b"this is not a numpy file\n")
    return tmp_path


def test_missing_data_file(capsys, bad):
    rc, out, err = run(capsys, "fit", bad / "nope.npy", "-m", "simhash", "-o", bad / "m.hlx")
    assert_one_line_error(rc, err, "nope.npy", "no such file")
    assert not (bad / "m.hlx").exists()


def test_nan_in_data(capsys, bad):
    rc, out, err = run(capsys, "fit", bad / "nan.npy", "-m", "simhash", "-o", bad / "m.hlx")
    assert_one_line_error(rc, err, "nan.npy", "NaN", "row 1")
    assert not (bad / "m.hlx").exists()


def test_one_dimensional_npy(capsys, bad):
    rc, out, err = run(capsys, "fit", bad / "flat.npy", "-m", "simhash", "-o", bad / "m.hlx")
    assert_one_line_error(rc, err, "flat.npy", "2-D", "(64,)")


def test_query_dimension_differs_from_the_model(capsys, bad, data):
    rc, out, err = run(capsys, "search", data["index.hlx"], bad / "q32.npy")
    assert_one_line_error(rc, err, "32 features", "64")
    rc, out, err = run(capsys, "encode", data["model.hlx"], bad / "q32.npy", "-o", bad / "c.npy")
    assert_one_line_error(rc, err, "32 features", "64")
    assert not (bad / "c.npy").exists()


def test_k_larger_than_the_database(capsys, data):
    rc, out, err = run(capsys, "search", data["index.hlx"], data["queries.npy"], "-k", "5000")
    assert_one_line_error(rc, err, "k=5000", "larger than the database", "1697")


@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_not_positive(capsys, data, k):
    rc, out, err = run(capsys, "search", data["index.hlx"], data["queries.npy"], "-k", k)
    assert_one_line_error(rc, err, f"k must be >= 1, got {k}")


def test_empty_database(capsys, bad, data):
    rc, out, err = run(capsys, "index", "build", bad / "empty.npy", "--method", "simhash", "-o", bad / "i.hlx")
    assert_one_line_error(rc, err, "empty.npy", "empty")
    rc, out, err = run(capsys, "index", "build", bad / "empty.npy", "--hasher", data["model.hlx"], "-o", bad / "i.hlx")
    assert_one_line_error(rc, err, "empty.npy", "empty")
    rc, out, err = run(capsys, "index", "build", bad / "empty_codes.npy", "--packed", "-o", bad / "i.hlx")
    assert_one_line_error(rc, err, "empty_codes.npy", "no vectors")
    assert not (bad / "i.hlx").exists()


@pytest.mark.parametrize("argv", [
    ["fit", "{base}", "-m", "nosuch", "-o", "{tmp}/m.hlx"],
    ["index", "build", "{base}", "-m", "nosuch", "-o", "{tmp}/i.hlx"],
    ["eval", "-m", "nosuch", "--dataset", "digits"],
    ["bench", "hashing", "--dataset", "digits", "--method", "simhash,nosuch"],
    ["demo", "--dataset", "digits", "--method", "nosuch"],
], ids=["fit", "index-build", "eval", "bench", "demo"])
def test_unknown_method_lists_the_known_ones(capsys, tmp_path, data, argv):
    argv = [a.format(base=data["base.npy"], tmp=tmp_path) for a in argv]
    rc, out, err = run(capsys, *argv)
    assert_one_line_error(rc, err, "'nosuch'", *hashlearn.list_methods())
    assert list(tmp_path.iterdir()) == []


def _flip(path: Path, offset: int) -> None:
    buf = bytearray(path.read_bytes())
    buf[offset] ^= 0x5A
    path.write_bytes(bytes(buf))


@pytest.mark.parametrize("where", ["array", "header"])
def test_corrupt_index_is_a_checksum_error(capsys, work, where):
    index = work / "index.hlx"
    header = read_header(index)
    if where == "array":
        biggest = max(header["arrays"], key=lambda a: a["nbytes"])
        offset = biggest["offset"] + biggest["nbytes"] // 2
    else:
        offset = 24 + 10  # inside the JSON header
    _flip(index, offset)
    rc, out, err = run(capsys, "search", index, work / "queries.npy")
    assert_one_line_error(rc, err, "index.hlx", "checksum mismatch", "corrupt")
    rc, out, err = run(capsys, "index", "build", work / "base.npy", "--hasher", index, "-o", work / "x.hlx")
    assert_one_line_error(rc, err, "index.hlx")
    assert not (work / "x.hlx").exists()


@pytest.mark.parametrize("keep, needle", [(0.5, "truncated"), (10, "not a hashlearn file"), (0, "not a hashlearn file")])
def test_truncated_index(capsys, work, keep, needle):
    index = work / "index.hlx"
    raw = index.read_bytes()
    index.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    rc, out, err = run(capsys, "search", index, work / "queries.npy")
    assert_one_line_error(rc, err, "index.hlx", needle)
    rc, out, err = run(capsys, "info", index)
    assert_one_line_error(rc, err, "index.hlx", needle)


def test_foreign_file_as_index_or_model(capsys, work):
    for argv in (["search", work / "queries.npy", work / "queries.npy"],
                 ["info", work / "queries.npy"],
                 ["encode", work / "queries.npy", work / "base.npy", "-o", work / "c.npy"]):
        rc, out, err = run(capsys, *argv)
        assert_one_line_error(rc, err, "queries.npy", "not a hashlearn file")
    assert not (work / "c.npy").exists()


def test_wrong_kind_of_hashlearn_file(capsys, work):
    rc, out, err = run(capsys, "search", work / "model.hlx", work / "queries.npy")
    assert_one_line_error(rc, err, "model.hlx", "SimHash", "not an index")
    rc, out, err = run(capsys, "encode", work / "index.hlx", work / "base.npy", "-o", work / "c.npy")
    assert_one_line_error(rc, err, "index.hlx", "fitted hasher")


@pytest.mark.parametrize("param, needle", [("center", "--param expects KEY=VALUE, got 'center'"),
                                           ("nosuchparam=1", "nosuchparam")])
def test_bad_param(capsys, tmp_path, data, param, needle):
    rc, out, err = run(capsys, "fit", data["base.npy"], "-m", "simhash", "-p", param, "-o", tmp_path / "m.hlx")
    assert_one_line_error(rc, err, needle)
    rc, out, err = run(capsys, "index", "build", data["base.npy"], "-m", "simhash", "-p", param, "-o", tmp_path / "i.hlx")
    assert_one_line_error(rc, err, needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bits, needle", [("a,b", "comma-separated list of integers, got 'a,b'"),
                                          ("32,0", "from 1 to 4096, got '32,0'")])
def test_bad_bits(capsys, bits, needle):
    for argv in (["eval", "-m", "simhash", "-b", bits, "--dataset", "digits"],
                 ["bench", "hashing", "--dataset", "digits", "--bits", bits, "--method", "simhash"],
                 ["demo", "--dataset", "digits", "--bits", bits]):
        rc, out, err = run(capsys, *argv)
        assert_one_line_error(rc, err, "--bits", needle)


def test_set_hasher_is_refused_for_vectors(capsys, tmp_path, data):
    rc, out, err = run(capsys, "fit", data["base.npy"], "-m", "minhash", "-o", tmp_path / "m.hlx")
    assert_one_line_error(rc, err, "minhash", "sets")


def test_cross_modal_hasher_is_refused_for_one_matrix(capsys, tmp_path, data):
    rc, out, err = run(capsys, "fit", data["base.npy"], "-m", "rreh", "-o", tmp_path / "m.hlx")
    assert_one_line_error(rc, err, "rreh", "cross-modal", "bench crossmodal")


def test_set_hasher_is_refused_by_eval_before_any_work(capsys):
    # BUG: _resolve_methods accepts 'minhash'; eval computes the ground truth, starts the progress
    # bar and only then fails, so stderr holds progress lines besides the error.
    rc, out, err = run(capsys, "eval", "-m", "minhash", "-b", "32", "--dataset", "digits", "--n-queries", N_QUERIES)
    assert_one_line_error(rc, err, "minhash", "sets")


def test_empty_method_list_is_an_error(capsys):
    # BUG: '-m ","' resolves to no method at all; eval prints an empty table and exits 0.
    rc, out, err = run(capsys, "eval", "-m", ",", "--dataset", "digits", "--n-queries", N_QUERIES)
    assert_one_line_error(rc, err, "method")


def test_unknown_index_kind_with_codes(capsys, tmp_path, data):
    # BUG: with --codes any --kind other than 'flat' silently builds a MultiIndexHashing.
    rc, out, err = run(capsys, "index", "build", data["codes.npy"], "--packed", "--index", "zzz", "-o", tmp_path / "i.hlx")
    assert_one_line_error(rc, err, "zzz")
    assert not (tmp_path / "i.hlx").exists()


@pytest.mark.parametrize("role", ["codes", "ids", "query-codes"])
def test_unreadable_npy_error_names_the_file(capsys, bad, data, role):
    # BUG: --codes / --ids / code-index queries go through np.load directly; a file that is not a
    # .npy gives numpy's "This file contains pickled (object) data ..." without the file name.
    junk = bad / "junk.npy"
    if role == "codes":
        argv = ["index", "build", junk, "--packed", "-o", bad / "i.hlx"]
    elif role == "ids":
        argv = ["index", "build", data["base.npy"], "-m", "simhash", "--ids", junk, "-o", bad / "i.hlx"]
    else:
        assert main(["index", "build", str(data["codes.npy"]), "--packed", "-o", str(bad / "c.hlx")]) == 0
        argv = ["search", bad / "c.hlx", junk]
    rc, out, err = run(capsys, *argv)
    assert_one_line_error(rc, err, "junk.npy")
    assert not (bad / "i.hlx").exists()


@pytest.mark.parametrize("argv, needle", [
    (["search", "{index}", "{queries}", "-k", "abc"], "'-k'"),
    (["fit", "{base}"], "method"),
    (["frobnicate"], "frobnicate"),
], ids=["bad-int", "missing-option", "unknown-command"])
def test_usage_errors_exit_2_without_traceback(capsys, data, argv, needle):
    # BUG: typer >= 0.22 raises its own vendored click exceptions (typer._click), which main()'s
    # `isinstance(exc, click.exceptions.ClickException)` does not recognise, so they escape main().
    argv = [a.format(index=data["index.hlx"], queries=data["queries.npy"], base=data["base.npy"]) for a in argv]
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert "Traceback" not in err
    assert needle in err


# -- failed commands leave files on disk as they were ----------------------------------------------
def test_failed_search_keeps_existing_output(capsys, work, bad):
    out_npz = work / "out.npz"
    out_npz.write_bytes(b"previous results")
    before = snapshot(work)
    for argv in (["search", work / "index.hlx", bad / "q32.npy", "-o", out_npz],
                 ["search", work / "index.hlx", work / "queries.npy", "-k", "99999", "-o", out_npz],
                 ["search", work / "index.hlx", bad / "nan.npy", "-o", out_npz, "--json", work / "out.json"]):
        rc, out, err = run(capsys, *argv)
        assert_one_line_error(rc, err)
        assert snapshot(work) == before


def test_search_failing_on_json_output_keeps_npz_output(capsys, work):
    # BUG: search writes -o before --json; when the JSON write fails (here: the path is a folder)
    # the command exits 2 but the .npz has already been replaced.
    out_npz = work / "out.npz"
    out_npz.write_bytes(b"previous results")
    (work / "adir").mkdir()
    rc, out, err = run(capsys, "search", work / "index.hlx", work / "queries.npy", "-o", out_npz, "--json", work / "adir")
    assert_one_line_error(rc, err, "adir")
    assert out_npz.read_bytes() == b"previous results"


def test_failed_index_build_keeps_existing_index(capsys, work, bad):
    existing = work / "existing.hlx"
    shutil.copy(work / "index.hlx", existing)
    before = snapshot(work)
    for argv in (["index", "build", bad / "nan.npy", "-m", "simhash", "-o", existing],
                 ["index", "build", bad / "empty.npy", "-m", "simhash", "-o", existing],
                 ["index", "build", work / "base.npy", "-m", "nosuch", "-o", existing],
                 ["index", "build", bad / "q32.npy", "--hasher", work / "model.hlx", "-o", existing]):
        rc, out, err = run(capsys, *argv)
        assert_one_line_error(rc, err)
        assert snapshot(work) == before


def test_index_build_failing_while_writing_keeps_existing_index(capsys, work, monkeypatch):
    existing = work / "existing.hlx"
    shutil.copy(work / "index.hlx", existing)
    before = snapshot(work)

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    rc, out, err = run(capsys, "index", "build", work / "base.npy", "-m", "simhash", "-b", "32", "-o", existing)
    assert_one_line_error(rc, err, "No space left on device")
    assert snapshot(work) == before  # same bytes, and no temporary file left behind


def test_encode_failing_midway_leaves_no_partial_file(capsys, work, monkeypatch):
    real_save = np.save

    def save_half_then_fail(fh, arr, *args, **kwargs):
        real_save(fh, arr[: len(arr) // 2])  # some bytes reach the disk ...
        raise OSError(28, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(np, "save", save_half_then_fail)
    before = snapshot(work)
    rc, out, err = run(capsys, "encode", work / "model.hlx", work / "base.npy", "-o", work / "new_codes.npy")
    assert_one_line_error(rc, err, "No space left on device")
    assert not (work / "new_codes.npy").exists()
    assert snapshot(work) == before  # no temporary file either

    # and an existing codes file is not touched
    rc, out, err = run(capsys, "encode", work / "model.hlx", work / "base.npy", "-o", work / "codes.npy")
    assert rc == 2
    assert snapshot(work) == before


# -- real subprocesses -----------------------------------------------------------------------------
def _cli_command():
    exe = shutil.which("hashlearn")
    return [exe] if exe else [sys.executable, "-m", "hashlearn"]


@pytest.fixture(scope="module")
def subprocess_runs(data, tmp_path_factory):
    """Start the subprocess cases at once (each pays the full import time) and collect the results."""
    root = tmp_path_factory.mktemp("subprocess")
    corrupt = root / "corrupt.hlx"
    shutil.copy(data["index.hlx"], corrupt)
    biggest = max(read_header(corrupt)["arrays"], key=lambda a: a["nbytes"])
    _flip(corrupt, biggest["offset"] + 1)
    env = dict(os.environ, NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    cases = {
        "search": [sys.executable, "-m", "hashlearn", "search", data["index.hlx"], data["queries.npy"], "-k", "5",
                   "--json", root / "res.json"],
        "corrupt": _cli_command() + ["search", corrupt, data["queries.npy"]],
        "usage": [sys.executable, "-m", "hashlearn", "search", data["index.hlx"], data["queries.npy"], "-k", "abc"],
    }
    procs = {
        name: subprocess.Popen([str(a) for a in argv], cwd=root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for name, argv in cases.items()
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, err)
    results["root"] = root
    return results


def test_subprocess_search(subprocess_runs, data):
    rc, out, err = subprocess_runs["search"]
    assert rc == 0, err
    assert "Traceback" not in err
    assert f"{N_QUERIES} queries, k=5" in out
    payload = json.loads((subprocess_runs["root"] / "res.json").read_text())
    D, I = hashlearn.load(data["index.hlx"]).search(data["xq"], 5)
    np.testing.assert_array_equal(np.asarray(payload["I"]), I)
    np.testing.assert_array_equal(np.asarray(payload["D"], dtype=D.dtype), D)


def test_subprocess_corrupt_index(subprocess_runs):
    rc, out, err = subprocess_runs["corrupt"]
    assert_one_line_error(rc, err, "corrupt.hlx", "checksum mismatch")
    assert out == ""


def test_subprocess_usage_error(subprocess_runs):
    rc, out, err = subprocess_runs["usage"]
    assert rc == 2, err[-2000:]
    assert "Traceback" not in err
    assert "Invalid value for '--k'" in err


# -- the real demo ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_demo_mnist5000(tmp_path, capsys, record_property):
    t0 = time.perf_counter()
    proc = subprocess.run(_cli_command() + ["demo", "--json", str(tmp_path / "demo.json")], cwd=tmp_path,
                          env=dict(os.environ, NO_COLOR="1"), capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    record_property("demo_seconds", round(seconds, 1))
    with capsys.disabled():
        print(f"\n[test_real_demo_mnist5000] 'hashlearn demo' took {seconds:.1f} s (exit {proc.returncode})")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "mnist5000: 4000 database / 1000 queries, d=784" in proc.stdout
    table_rows = set()
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 3 and cells[2].isdigit():
            table_rows.add((cells[1], int(cells[2])))
    expected = {(m, b) for m in ("itq", "simhash", "crosspolytope", "e2lsh", "faiss-lsh") for b in (32, 64)}
    assert table_rows == expected
    rows = json.loads((tmp_path / "demo.json").read_text())["rows"]
    assert {(r["method"], r["bits"]) for r in rows} == expected
    check_rows(rows)


# -- bench hashing: tables per bit width, plots, radius precision, encode speed --------------------
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bench_hashing_tables_plots_and_new_columns(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    plots = tmp_path / "plots"
    rc, out, err = run(capsys, "bench", "hashing", "--dataset", "digits", "--bits", "16,32",
                       "--method", "simhash,sph,faiss-lsh,faiss-itq", "--n-queries", N_QUERIES,
                       "--json", out_json, "--plots", plots)
    assert rc == 0, err
    # one table per bit width, each holding only its own rows
    for b in (16, 32):
        assert f"digits: hashing protocol, {b} bits" in out
    assert "P(r≤2)" in out and "encode vec/s" in out
    tables = out.split("digits: hashing protocol, ")[1:]
    assert len(tables) == 2
    for b, text in zip((16, 32), tables):
        bits_cells = {line.split("│")[2].strip() for line in text.splitlines()
                      if line.count("│") > 3 and line.split("│")[2].strip().isdigit()}
        assert bits_cells == {str(b)}
    # PNGs: real files written by matplotlib
    names = {"map_vs_bits.png", "recall100_vs_bits.png", "pr_16.png", "pr_32.png"}
    assert {p.name for p in plots.iterdir()} == names
    for name in names:
        blob = (plots / name).read_bytes()
        assert blob[:8] == PNG_MAGIC, name
        assert len(blob) > 10_000, (name, len(blob))
        assert str(plots / name) in out.replace("\n", "")
    payload = json.loads(out_json.read_text())
    assert sorted(Path(p).name for p in payload["plots"]) == sorted(names)
    rows = payload["rows"]
    assert sorted((r["method"], r["bits"]) for r in rows) == sorted(
        (m, b) for m in ("simhash", "sph", "faiss-lsh", "faiss-itq") for b in (16, 32))
    check_rows(rows)
    for r in rows:
        assert 0 <= r["precision_radius2"] <= 1
        assert r["encode_per_s"] > 0
        curve = r["pr_curve"]
        assert curve["radius"] == list(range(r["bits"] + 1))
        assert len(curve["precision"]) == len(curve["recall"]) == r["bits"] + 1
        assert all(0 <= v <= 1 for v in curve["precision"] + curve["recall"])
        assert curve["recall"][-1] == pytest.approx(1.0)  # radius = bits returns the whole database
        assert curve["precision"][2] == pytest.approx(r["precision_radius2"])


def test_bench_hashing_skips_what_cannot_run_at_a_bit_width(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    rc, out, err = run(capsys, "bench", "hashing", "--dataset", "digits", "--bits", "32,128",
                       "--method", "pcah,simhash,faiss-itq", "--n-queries", N_QUERIES, "--json", out_json,
                       "--plots", tmp_path / "plots")
    assert rc == 0, err
    assert "Traceback" not in err
    payload = json.loads(out_json.read_text())
    assert sorted((r["method"], r["bits"]) for r in payload["rows"]) == [
        ("faiss-itq", 32), ("pcah", 32), ("simhash", 32), ("simhash", 128)]
    skipped = payload["skipped"]
    assert [s.split(":")[0] for s in skipped] == ["pcah@128", "faiss-itq@128"]
    assert all("64" in s for s in skipped)  # the reason names the dimension
    assert "skipped" in err and "pcah@128" in err
    assert (tmp_path / "plots" / "pr_128.png").read_bytes()[:8] == PNG_MAGIC


def test_bench_hashing_plots_default_beside_json(capsys, tmp_path):
    out_json = tmp_path / "res" / "bench.json"
    rc, out, err = run(capsys, "bench", "hashing", "--dataset", "digits", "--bits", "16",
                       "--method", "simhash", "--n-queries", N_QUERIES, "--json", out_json)
    assert rc == 0, err
    assert (tmp_path / "res" / "plots" / "digits" / "pr_16.png").is_file()


def test_bench_hashing_plots_path_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "plots"
    target.write_text("not a folder")
    rc, out, err = run(capsys, "bench", "hashing", "--dataset", "digits", "--bits", "16",
                       "--method", "simhash", "--n-queries", N_QUERIES, "--plots", target)
    assert_one_line_error(rc, err, str(target), "--plots")
    assert target.read_text() == "not a folder"
