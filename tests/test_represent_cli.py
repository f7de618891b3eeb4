"""``hashlearn bench represent`` on tiny synthetic data (--quick) and bad input (exit code 2)."""

import gzip
import json

import numpy as np
import pytest

pytest.importorskip("torch")

from hashlearn.cli import main  # noqa: E402


def _idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", 240), ("t10k", 60)):
        _idx(d / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(d / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return d


@pytest.mark.parametrize("part, metric", [("mcr2", "nmi"), ("householder", "attribute_change"), ("gsimclr", "acc")])
def test_bench_represent_quick(tiny_mnist, tmp_path, part, metric):
    out = tmp_path / "out.json"
    rc = main(["bench", "represent", "--part", part, "--data-dir", str(tiny_mnist), "--quick", "--repeats", "1",
               "--json", str(out), "--plots", str(tmp_path / "plots"), "-q"])
    assert rc == 0
    payload = json.loads(out.read_text())
    methods = {r["method"] for r in payload["rows"]}
    assert all(r["part"] == part and metric in r for r in payload["rows"])
    expected = {"mcr2": {"mcr2", "kmeans", "spectral"}, "householder": {"householder", "pca"},
                "gsimclr": {"gsimclr", "simclr"}}[part]
    assert expected <= methods
    assert any(p.suffix == ".png" for p in (tmp_path / "plots").iterdir())


def test_bench_represent_bad_input(tmp_path, capsys):
    assert main(["bench", "represent", "--part", "nope", "--data-dir", str(tmp_path)]) == 2
    assert "--part must be one of" in capsys.readouterr().err
    assert main(["bench", "represent", "--part", "mcr2", "--data-dir", str(tmp_path / "missing")]) == 2
    assert main(["bench", "represent", "--part", "mcr2", "--data-dir", str(tmp_path), "-q"]) == 2  # no idx files
    assert "no such file" in capsys.readouterr().err


def test_bench_represent_climb_more_clusters_than_posts(tmp_path, capsys):
    for split in ("20news-bydate-train", "20news-bydate-test"):
        g = tmp_path / split / "sci.space"
        g.mkdir(parents=True)
        (g / "1").write_bytes(b"Subject: orbit\n\nThe rocket reached orbit \xe9.")  # not UTF-8: replaced, counted
        (g / "2").write_bytes(b"From: x\n\n")  # empty post: skipped, counted
    rc = main(["bench", "represent", "--part", "climb", "--data-dir", str(tmp_path), "--quick", "-q"])
    assert rc == 2
    assert "n_clusters=2 is more than the 1 documents" in capsys.readouterr().err
