"""Supervised cross-modal contract: labels per view, the bench passes labels only where declared, DMVEH registered."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hashlearn
from hashlearn.cli import main
from hashlearn.crossmodal import check_view_labels
from hashlearn.crossmodal.data import make_planted_views
from hashlearn.crossmodal.evaluate import fit_method, load_crossmodal_dataset, run_protocol, uses_labels
from hashlearn.errors import ValidationError
from hashlearn.hashing import is_supervised
from hashlearn.io import persist

torch = pytest.importorskip("torch", reason="the supervised cross-modal hashers train with torch")

SMALL = {"dmveh": dict(epochs=15, hidden=32, n_threads=1),
         "prompthash": dict(epochs=8, hidden=32, embed_dim=16, n_threads=1),
         "dlch": dict(epochs=8, hidden=32, n_threads=1)}


@pytest.fixture(scope="module")
def planted():
    return make_planted_views(300, n_clusters=4, latent_dim=6, dims=(20, 12), noise=0.2, random_state=2)


def supervised_methods():
    return [m for m in hashlearn.list_methods("crossmodal") if uses_labels(hashlearn.registry.get_method_class(m))]


def test_supervised_methods_declare_labels_and_the_others_do_not():
    assert set(supervised_methods()) == {"dmveh", "prompthash", "dlch"}
    for name in hashlearn.list_methods("crossmodal"):
        cls = hashlearn.registry.get_method_class(name)
        assert is_supervised(cls) == uses_labels(cls)  # the flag and scikit-learn's tag agree


class _Recorder:
    requires_labels = False

    def fit(self, views, pairs=None, y=None):
        self.got = {"pairs": pairs, "y": y}
        return self


class _Supervised(_Recorder):
    requires_labels = True


def test_fit_method_passes_labels_only_to_methods_that_declare_them():
    views, pairs, labels = [np.zeros((3, 2))] * 2, np.array([[0, 0]]), [np.arange(3)] * 2
    assert fit_method(_Recorder(), views, pairs, labels).got == {"pairs": pairs, "y": None}
    got = fit_method(_Supervised(), views, pairs, labels).got
    assert got["pairs"] is pairs and got["y"] is labels


def test_run_protocol_fits_supervised_and_unsupervised_methods_on_the_same_split():
    data = load_crossmodal_dataset("planted", n=400, n_queries=100, seed=1)
    params = {"dmveh": {**SMALL["dmveh"], "epochs": 60}}
    rows = run_protocol(data, ["cca-itq", "dmveh"], [16], [0.5, 1.0], params=params)
    by = {(r["method"], r["paired"]): r for r in rows}
    assert [by[("cca-itq", p)]["supervised"] for p in (0.5, 1.0)] == [False, False]
    assert [by[("dmveh", p)]["supervised"] for p in (0.5, 1.0)] == [True, True]
    for p in (0.5, 1.0):
        assert by[("dmveh", p)]["n_pairs"] == by[("cca-itq", p)]["n_pairs"]
        assert min(by[("dmveh", p)]["map_q0_db1"], by[("dmveh", p)]["map_q1_db0"]) > 0.9


# -- labels of views ------------------------------------------------------------------------------------------
def test_check_view_labels_shared_and_per_view():
    Y, classes, multi = check_view_labels(np.array([3, 1, 3]), [3, 3], who="m")
    np.testing.assert_array_equal(classes, [1, 3])
    assert not multi and Y[0] is Y[1] and Y[0].tolist() == [[0, 1], [1, 0], [0, 1]]
    Y, classes, _ = check_view_labels([np.array([1, 2]), np.array([2, 5, 5])], [2, 3], who="m")
    np.testing.assert_array_equal(classes, [1, 2, 5])  # one set of classes over both views
    assert Y[0].shape == (2, 3) and Y[1].tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 1]]
    Y, _, multi = check_view_labels(np.array([[1, 0, 1], [0, 1, 0]]), [2, 2], who="m")
    assert multi and Y[0].shape == (2, 3)


@pytest.mark.parametrize("y, rows, message", [
    (None, [3, 3], "m is supervised: fit\\(views, y\\) needs labels y"),
    (np.arange(4), [3, 3], "y has 4 labels but the views have 3 rows"),
    (np.arange(3), [3, 4], "views have different rows \\[3, 4\\]: give the labels as a list"),
    ([np.arange(3), np.arange(5)], [3, 4], "y\\[1\\] has 5 labels but view 1 has 4 rows"),
    ([np.zeros(3), np.zeros(4)], [3, 4], "single class"),
])
def test_check_view_labels_errors(y, rows, message):
    with pytest.raises(ValidationError, match=message):
        check_view_labels(y, rows, who="m")


# -- every supervised method: fit with labels, errors, persistence ------------------------------------------------
@pytest.mark.parametrize("name", ["dmveh", "prompthash", "dlch"])
def test_supervised_method_round_trips_and_refuses_missing_or_bad_labels(name, planted):
    views, y = planted
    est = hashlearn.make_hasher(name, n_bits=16, random_state=0, **SMALL[name])
    with pytest.raises(ValidationError, match="needs labels y|requires y to be passed"):
        est.fit(views)
    with pytest.raises(ValidationError, match="y has 10 .*300 rows"):
        est.fit(views, y[:10])
    with pytest.raises(ValidationError, match="every row is paired, but view 0 has 300 rows and view 1 has 299|"
                                              "aligned views .* got rows \\[300, 299\\]"):
        est.fit([views[0], views[1][:-1]], y)
    est.fit(views, y)
    data = persist.dumps(est)
    loaded = persist.loads(data)
    assert persist.dumps(loaded) == data
    for v in (0, 1):
        np.testing.assert_array_equal(loaded.transform(views[v], view=v), est.transform(views[v], view=v))


def test_dmveh_with_pairs_trains_on_the_paired_rows(planted):
    from hashlearn.crossmodal.base import semi_paired_split

    views, y = planted
    r0, r1, pairs = semi_paired_split(300, 0.5, random_state=0)
    m = hashlearn.make_hasher("dmveh", n_bits=16, random_state=0, **SMALL["dmveh"])
    m.fit([views[0][r0], views[1][r1]], y=[y[r0], y[r1]], pairs=pairs)
    same = hashlearn.make_hasher("dmveh", n_bits=16, random_state=0, **SMALL["dmveh"])
    same.fit([views[0][r0][pairs[:, 0]], views[1][r1][pairs[:, 1]]], y[r0][pairs[:, 0]])
    np.testing.assert_array_equal(m.transform(views[1], view=1), same.transform(views[1], view=1))
    with pytest.raises(ValidationError, match="pairs are for two views"):
        m.fit([views[0], views[1], views[0]], y, pairs=pairs)


# -- CLI -----------------------------------------------------------------------------------------------------------
def test_cli_bench_passes_labels_to_supervised_methods(tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = main(["bench", "crossmodal", "--dataset", "planted", "--bits", "16", "--paired", "0.5", "--method",
               "cca-itq,dmveh", "--param", "dmveh.epochs=15", "--param", "dmveh.n_threads=1", "--json", str(out)])
    assert rc == 0
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["dmveh"]["supervised"] and not rows["cca-itq"]["supervised"]
    assert "dmveh (labels)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--method", "dmveh", "--param", "dmveh.epochs=0"], "epochs"),
    (["--method", "prompthash", "--param", "prompthash.nope=1"], "does not accept parameter(s) nope"),
])
def test_cli_bad_input_exits_2(args, message, capsys):
    base = ["bench", "crossmodal", "--dataset", "planted", "--bits", "8", "--paired", "1.0"]
    assert main(base + args) == 2
    assert message in capsys.readouterr().err.replace("\n", "")


def test_making_and_importing_the_supervised_methods_does_not_load_torch():
    import subprocess
    import sys

    code = ("import hashlearn, sys\n"
            "for m in ('dmveh', 'prompthash', 'dlch'): hashlearn.make_hasher(m, n_bits=8)\n"
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
