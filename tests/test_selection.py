"""Hashed instance selection (hashlearn.apps.selection): representatives against brute force, the
invariants linking the three modes, the evaluation protocol, bad input and the CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.datasets import load_iris, load_wine
from typer.testing import CliRunner

from hashlearn.apps.selection import (
    HashedInstanceSelector,
    _representatives,
    evaluate_selection,
    load_classification_dataset,
    read_labelled_table,
    stratified_random_subset,
)
from hashlearn.errors import DataFileError, NotFittedError, UnknownMethodError, ValidationError


@pytest.fixture(scope="module")
def wine():
    return load_wine(return_X_y=True)


def test_representatives_match_brute_force(rng):
    Z = rng.normal(size=(300, 5))
    y = rng.integers(0, 3, size=300)
    buckets = rng.integers(0, 12, size=300)
    rows = np.arange(300)
    for k in (1, 2):
        sel = HashedInstanceSelector(per_bucket=k)
        got, n_groups = _representatives(Z, y, buckets, rows, sel, rng)
        expected, groups = [], 0
        for b in np.unique(buckets):
            for c in np.unique(y):
                m = np.flatnonzero((buckets == b) & (y == c))
                if m.size == 0:
                    continue
                groups += 1
                d = ((Z[m] - Z[m].mean(axis=0)) ** 2).sum(axis=1)
                expected += list(m[np.argsort(d, kind="stable")[:k]])
        assert n_groups == groups
        np.testing.assert_array_equal(np.sort(got), np.sort(expected))


def test_single_level_invariants(wine):
    X, y = wine
    sel = HashedInstanceSelector(6, random_state=0).fit(X, y)
    idx = sel.sample_indices_
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < len(X)
    assert set(y[idx]) == set(y)  # every class kept
    assert idx.size == sel.n_buckets_  # one representative per (bucket, class) group
    assert sel.reduction_rate_ == pytest.approx(1 - idx.size / len(X))
    assert sel.get_support().sum() == idx.size and sel.get_support().shape == (len(X),)
    # reproducible; another seed cuts differently
    np.testing.assert_array_equal(HashedInstanceSelector(6, random_state=0).fit(X, y).sample_indices_, idx)
    assert not np.array_equal(HashedInstanceSelector(6, random_state=1).fit(X, y).sample_indices_, idx)
    # more bits, smaller buckets, a larger subset; per_bucket >= n keeps everything
    assert HashedInstanceSelector(10, random_state=0).fit(X, y).sample_indices_.size > idx.size
    assert HashedInstanceSelector(2, per_bucket=len(X), random_state=0).fit(X, y).reduction_rate_ == 0.0


def test_duplicates_collapse_to_one_representative(rng):
    centres = rng.normal(size=(5, 4)) * 10
    X = np.repeat(centres, 20, axis=0)
    y = np.repeat([0, 0, 1, 1, 2], 20)
    for mode in ("single", "multi_level", "multi_view"):
        sel = HashedInstanceSelector(8, mode=mode, random_state=0).fit(X, y)
        reps = X[sel.sample_indices_]
        # identical rows always share a bucket: at most one representative per distinct row
        assert len(np.unique(reps, axis=0)) == reps.shape[0] <= 5
        assert set(y[sel.sample_indices_]) == {0, 1, 2}


def test_multi_level_never_keeps_more_than_its_finest_level(wine):
    X, y = wine
    for seed in range(3):
        ml = HashedInstanceSelector(3, mode="multi_level", n_levels=3, random_state=seed).fit(X, y)
        finest = HashedInstanceSelector(12, mode="single", random_state=seed).fit(X, y)  # same cuts
        assert ml.sample_indices_.size <= finest.sample_indices_.size
        assert set(y[ml.sample_indices_]) == set(y)


def test_multi_level_spends_samples_on_the_class_boundary(rng):
    # two classes split by x0 = 0: far from the boundary buckets are pure and get one representative
    X = rng.uniform(-1, 1, size=(4000, 2))
    y = (X[:, 0] > 0).astype(int)
    sel = HashedInstanceSelector(4, mode="multi_level", n_levels=3, random_state=0).fit(X, y)
    d = np.abs(X[sel.sample_indices_, 0])
    near, far = np.mean(d < 0.2), np.mean(d > 0.8)  # each band is 10% of the area
    assert near > 2 * far


def test_multi_view_is_a_union_of_views(wine):
    X, y = wine
    one = HashedInstanceSelector(5, mode="multi_view", n_views=1, random_state=3).fit(X, y)
    single = HashedInstanceSelector(5, mode="single", random_state=3).fit(X, y)
    np.testing.assert_array_equal(one.sample_indices_, single.sample_indices_)
    three = HashedInstanceSelector(5, mode="multi_view", n_views=3, random_state=3).fit(X, y)
    assert set(one.sample_indices_) <= set(three.sample_indices_)
    sub = HashedInstanceSelector(5, mode="multi_view", n_views=3, view_features=0.3, random_state=3).fit(X, y)
    assert 0 < sub.sample_indices_.size < len(X)


def test_degenerate_inputs(rng):
    X = rng.normal(size=(40, 3))
    one_class = HashedInstanceSelector(3, random_state=0).fit(X, np.zeros(40, int))
    assert 1 <= one_class.sample_indices_.size <= 8  # at most one per bucket of 3 cuts
    single = HashedInstanceSelector(4, mode="multi_level", random_state=0).fit(X[:1], [7])
    assert single.sample_indices_.tolist() == [0] and single.reduction_rate_ == 0.0
    const = HashedInstanceSelector(4, random_state=0).fit(np.ones((10, 2)), np.arange(10) % 2)
    assert sorted(const.sample_indices_.tolist()) == [0, 1]  # identical rows: one bucket, one per class


def test_random_representatives_and_string_labels(wine):
    X, y = wine
    names = np.array(["a", "b", "c"])[y]
    a = HashedInstanceSelector(6, random_state=0).fit(X, y)
    b = HashedInstanceSelector(6, random_state=0).fit(X, names)
    np.testing.assert_array_equal(a.sample_indices_, b.sample_indices_)
    r = HashedInstanceSelector(6, representative="random", random_state=0).fit(X, y)
    assert r.sample_indices_.size == a.sample_indices_.size  # same groups, other members


def test_fit_resample_keeps_pandas_rows(wine):
    X, y = wine
    df = pd.DataFrame(X)
    ys = pd.Series(y)
    Xs, ys_ = HashedInstanceSelector(6, random_state=0).fit_resample(df, ys)
    assert isinstance(Xs, pd.DataFrame) and list(Xs.index) == list(ys_.index)
    np.testing.assert_array_equal(Xs.to_numpy(), X[Xs.index])


def test_stratified_random_subset(rng):
    y = np.repeat([0, 1, 2], [100, 50, 10])
    idx = stratified_random_subset(y, 32, random_state=0)
    assert idx.size == 32 and np.unique(idx).size == 32
    counts = np.bincount(y[idx], minlength=3)
    assert np.all(np.abs(counts - 32 * np.array([100, 50, 10]) / 160) <= 1.5) and counts.min() >= 1
    assert np.bincount(y[stratified_random_subset(y, 3, random_state=0)]).tolist() == [1, 1, 1]
    assert stratified_random_subset(y, 160, random_state=0).size == 160
    with pytest.raises(ValidationError):
        stratified_random_subset(y, 0)


def test_protocol_subset_keeps_most_of_the_accuracy(wine):
    X, y = wine
    rows = evaluate_selection(X, y, HashedInstanceSelector(6, mode="multi_level", n_levels=2, random_state=0),
                              n_splits=3, n_random=2)
    assert [r["classifier"] for r in rows] == ["1-NN", "logreg"]
    for r in rows:
        assert 0.3 < r["reduction_rate"] < 1
        assert r["subset_size"] == pytest.approx(r["n_train"] * (1 - r["reduction_rate"]), rel=1e-2)
        assert r["acc_full"] > 0.9
        assert r["acc_subset"] > r["acc_full"] - 0.1
        assert 0.5 < r["acc_random"] <= 1


def test_bad_input(wine):
    X, y = wine
    with pytest.raises(ValidationError, match="NaN"):
        HashedInstanceSelector().fit(np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), y)
    with pytest.raises(ValidationError, match="y must have shape"):
        HashedInstanceSelector().fit(X, y[:-1])
    with pytest.raises(ValidationError, match="empty"):
        HashedInstanceSelector().fit(np.empty((0, 3)), np.empty(0))
    for bad in (dict(mode="tree"), dict(n_bits=0), dict(per_bucket=0), dict(representative="max"),
                dict(view_features=0.0), dict(mode="multi_level", n_bits=512, n_levels=5)):
        with pytest.raises(ValidationError):
            HashedInstanceSelector(**bad).fit(X, y)
    with pytest.raises(NotFittedError):
        HashedInstanceSelector().get_support()
    with pytest.raises(UnknownMethodError, match="known: iris"):
        load_classification_dataset("covtype")


def test_read_labelled_table_reads_numbers_exactly(tmp_path, rng):
    X = rng.standard_normal((60, 3))  # full-precision floats: pandas' default CSV parser is off by an ulp
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=np.arange(60) % 3)
    df.to_csv(tmp_path / "t.csv", sep=";", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    for name, sep in (("t.csv", ";"), ("t.parquet", None)):
        got, Xr, y = read_labelled_table(tmp_path / name, "label", sep)
        np.testing.assert_array_equal(Xr, X)
        np.testing.assert_array_equal(y, np.arange(60) % 3)
        assert list(got.columns) == ["a", "b", "c", "label"]
    (tmp_path / "bad.csv").write_bytes(b"a,label\n1.5,caf\xe9\n")
    with pytest.raises(DataFileError, match=r"bad\.csv: not valid utf-8 \(invalid continuation byte at byte 15, line 2\)"):
        read_labelled_table(tmp_path / "bad.csv", "label")
    (tmp_path / "holes.csv").write_text("a,b,label\n1,2,x\n3,,y\n")
    with pytest.raises(ValidationError, match=r"holes\.csv: 1 row\(s\) have NaN/inf or empty feature cells "
                                              r"\(first: data row 2\)"):
        read_labelled_table(tmp_path / "holes.csv", "label")


def test_bundled_datasets():
    X, y = load_classification_dataset("iris")
    Xr, yr = load_iris(return_X_y=True)
    np.testing.assert_array_equal(X, Xr)
    np.testing.assert_array_equal(y, yr)


# -- command line ------------------------------------------------------------------------------------
@pytest.fixture
def cli():
    app = typer.Typer()
    bench = typer.Typer()
    app.add_typer(bench, name="bench")
    from hashlearn.cli import funchash as funchash_cli
    from hashlearn.cli import selection as selection_cli

    selection_cli.register(app, bench)
    funchash_cli.register(app, bench)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
def wine_csv(tmp_path, wine):
    X, y = wine
    df = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    df["kind"] = np.array(["red", "white", "rose"])[y]
    p = tmp_path / "wine.csv"
    df.to_csv(p, index=False)
    return p, df


def test_cli_select_writes_rows_and_json(cli, wine_csv, tmp_path, wine):
    path, df = wine_csv
    out, js = tmp_path / "subset.csv", tmp_path / "s.json"
    r = cli("select", str(path), "--label-col", "kind", "--bits", "6", "-o", str(out), "--json", str(js))
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out)
    summary = json.loads(js.read_text())
    ref = HashedInstanceSelector(6, random_state=0).fit(*wine).sample_indices_
    assert len(got) == summary["n_selected"] == ref.size
    pd.testing.assert_frame_equal(got, df.iloc[ref].reset_index(drop=True))
    assert summary["reduction_rate"] == pytest.approx(1 - ref.size / len(df))
    pq = tmp_path / "wine.parquet"
    df.to_parquet(pq)
    r = cli("select", str(pq), "--label-col", "kind", "--bits", "6", "-o", str(tmp_path / "from_pq.csv"))
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "from_pq.csv"), got)
    r = cli("select", str(path), "--label-col", "kind", "--indices-only", "-o", str(tmp_path / "i.npy"),
            "--mode", "multi_view")
    assert r.exit_code == 0, r.output
    idx = np.load(tmp_path / "i.npy")
    np.testing.assert_array_equal(idx, HashedInstanceSelector(8, mode="multi_view", random_state=0)
                                  .fit(*wine).sample_indices_)


def test_cli_select_evaluate_on_bundled_data(cli):
    r = cli("select", "iris", "--bits", "4", "--evaluate")
    assert r.exit_code == 0, r.output
    assert "1-NN" in r.output and "reduction rate" in r.output


def test_cli_select_bad_input(cli, tmp_path, wine_csv):
    path, df = wine_csv
    cases = []
    r = cli("select", str(path), "--label-col", "nope")
    cases.append((r, "no label column 'nope'"))
    bad = df.copy()
    bad["c3"] = bad["c3"].astype(object)
    bad.loc[4, "c3"] = "x"
    bad.to_csv(tmp_path / "text.csv", index=False)
    cases.append((cli("select", str(tmp_path / "text.csv"), "--label-col", "kind"), "not numeric: c3"))
    nan = df.copy()
    nan.loc[[2, 9], "c1"] = np.nan
    nan.to_csv(tmp_path / "nan.csv", index=False)
    cases.append((cli("select", str(tmp_path / "nan.csv"), "--label-col", "kind"), "2 row(s) have NaN"))
    cases.append((cli("select", str(tmp_path / "missing.csv")), "no such file"))
    cases.append((cli("select", str(path), "--label-col", "kind", "-o", str(tmp_path)), "is a directory"))
    cases.append((cli("select", str(path), "--label-col", "kind", "--mode", "deep"), "mode must be one of"))
    for r, msg in cases:
        assert r.exit_code != 0 and r.exception is not None
        assert msg in str(r.exception), (msg, r.exception)
    assert not (tmp_path / "missing.csv").exists()


def test_cli_bench_selection(cli, tmp_path):
    js = tmp_path / "b.json"
    r = cli("bench", "selection", "--dataset", "iris", "--mode", "single,multi_level", "--bits", "4",
            "--folds", "2", "--random-subsets", "1", "--json", str(js))
    assert r.exit_code == 0, r.output
    rows = json.loads(js.read_text())
    assert {(x["mode"], x["classifier"]) for x in rows} == {(m, c) for m in ("single", "multi_level")
                                                             for c in ("1-NN", "logreg")}
    r = cli("bench", "selection", "--mode", "best")
    assert r.exit_code != 0 and "unknown mode" in str(r.exception)


def test_cli_bench_funchash(cli, tmp_path):
    js = tmp_path / "f.json"
    r = cli("bench", "funchash", "--task", "I.14.3", "--samples", "500", "--cycles", "60", "--population", "20",
            "--tournament", "4", "--pairs", "10", "--json", str(js))
    assert r.exit_code == 0, r.output
    out = json.loads(js.read_text())
    runs = {x["cache"]: x for x in out["evolution"]}
    assert set(runs) == {"none", "syntactic", "functional", "functional+check"}
    assert runs["none"]["evaluations"] == 80 and runs["functional+check"]["false_collisions"] == 0
    assert runs["functional"]["evaluations"] == 80 - runs["functional"]["hits"]
    assert runs["functional"]["hits"] == runs["functional+check"]["hits"]
    assert out["hash_error_rates"]["equivalent_pairs"] == 10
    r = cli("bench", "funchash", "--task", "X.1")
    assert r.exit_code != 0 and "unknown task" in str(r.exception)


def test_subprocess_no_heavy_imports_and_cli_exit_codes(tmp_path):
    # A fresh interpreter: importing the modules loads no heavy dependency, and through the main CLI's
    # error handling a good command exits 0 and a bad one exits 2 with a one-line message.
    js = tmp_path / "s.json"
    code = (
        "import sys, hashlearn.apps.funchash as f, hashlearn.apps.selection as s\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'fastapi', 'ray') if m in sys.modules)\n"
        "from hashlearn.cli import app, bench_app, main\n"
        f"ok = main(['select', 'iris', '--bits', '4', '--json', {str(js)!r}])\n"
        "bad = main(['select', 'missing.csv'])\n"
        "print('RESULT', heavy, ok, bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "RESULT [] 0 2" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "error: missing.csv: no such file"
    assert json.loads(js.read_text())["n_samples"] == 150
