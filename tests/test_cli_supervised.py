"""``hashlearn bench hashing --supervised``: in-process runs on digits and on a tiny MNIST folder."""

from __future__ import annotations

import json

import pytest

from hashlearn.cli import main

from test_evaluate_supervised import make_fake_mnist


def run(capsys, *argv):
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, err, *needles):
    assert rc == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_supervised_digits_table_json_and_plots(capsys, tmp_path):
    rc, out, err = run(capsys, "bench", "hashing", "--supervised", "--dataset", "digits", "--labels", "500",
                       "--n-queries", "200", "-b", "16", "-m", "sdh,ksh,itq", "-p", "sdh.n_anchors=150",
                       "-p", "ksh.n_anchors=80", "-p", "ksh.max_iter=30", "--json", tmp_path / "r.json")
    assert rc == 0, err
    assert "digits: 1,597 database / 200 queries (20 per class) / 500 labelled training items" in out
    for col in ("mAP", "P@100", "P@1000", "P(r≤2)", "labels"):
        assert col in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["protocol"] == "supervised" and data["n_labels"] == 500 and data["n_queries"] == 200
    rows = {r["method"]: r for r in data["rows"]}
    assert set(rows) == {"sdh", "ksh", "itq"}
    assert rows["sdh"]["supervised"] and not rows["itq"]["supervised"]
    assert rows["sdh"]["map"] > rows["itq"]["map"] and len(rows["sdh"]["pr_curve"]["precision"]) == 17
    assert sorted(p.split("/")[-1] for p in data["plots"]) == ["map_vs_bits.png", "pr_16.png"]
    assert (tmp_path / "plots" / "digits_supervised" / "map_vs_bits.png").stat().st_size > 1000


def test_supervised_mnist_from_a_data_dir(capsys, tmp_path):
    make_fake_mnist(tmp_path)
    rc, out, err = run(capsys, "bench", "hashing", "--supervised", "--dataset", "mnist", "--data-dir", tmp_path,
                       "--labels", "200", "--n-queries", "50", "-b", "8", "-m", "sdh,simhash",
                       "-p", "sdh.n_anchors=50", "--plots", tmp_path / "p", "--json", tmp_path / "m.json")
    assert rc == 0, err
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["n_database"] == 450 and data["n_queries"] == 50
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["sdh"]["map"] > 0.9  # the planted square gives the class away


def test_supervised_errors_are_one_line(capsys, tmp_path):
    rc, _, err = run(capsys, "bench", "hashing", "--supervised", "--dataset", "digits", "--labels", "lots")
    one_line_error(rc, err, "--labels", "number of labelled training images", "'lots'")
    rc, _, err = run(capsys, "bench", "hashing", "--supervised", "--dataset", "mnist", "--data-dir",
                     tmp_path / "none", "-m", "sdh", "-b", "8")
    one_line_error(rc, err, "missing the MNIST file")
    rc, _, err = run(capsys, "bench", "hashing", "--supervised", "--dataset", "cifar", "-m", "sdh", "-b", "8")
    one_line_error(rc, err, "unknown dataset 'cifar'")


def test_supervised_methods_are_kept_out_of_the_unsupervised_protocol(capsys, tmp_path):
    rc, _, err = run(capsys, "bench", "hashing", "--dataset", "digits", "-m", "ksh", "-b", "8")
    one_line_error(rc, err, "ksh is a supervised hasher", "--supervised")
    rc, _, err = run(capsys, "fit", tmp_path / "x.npy", "-m", "sdh", "-o", tmp_path / "m.hlx")
    one_line_error(rc, err, "sdh is a supervised hasher")
    rc, _, err = run(capsys, "bench", "hashing", "--dataset", "digits", "--data-dir", tmp_path, "-m", "itq")
    one_line_error(rc, err, "--data-dir is used by --supervised only")


@pytest.mark.parametrize("flag", ["--supervised", "--labels", "--data-dir"])
def test_help_documents_the_supervised_options(capsys, flag):
    rc, out, _ = run(capsys, "bench", "hashing", "--help")
    assert rc == 0 and flag in out
    assert "number of labelled" in out.replace("\n", " ").replace("│", " ").replace("  ", " ") or flag != "--labels"
