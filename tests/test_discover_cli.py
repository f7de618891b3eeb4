"""`hashlearn bench discover`: bad input exits 2 with one line; a tiny MNIST-style folder runs end to end."""

import gzip
import json

import numpy as np

from hashlearn.cli import main


def _write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def _tiny_mnist(folder, n=400, n_test=0):
    rng = np.random.default_rng(0)
    templates = rng.integers(0, 256, (10, 28, 28))
    folder.mkdir()
    for prefix, m in (("train", n), ("t10k", n_test)):
        if m:
            labels = np.repeat(np.arange(10), m // 10)
            images = np.clip(templates[labels] + rng.normal(0, 30, (m, 28, 28)), 0, 255)
            _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
            _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def test_bad_part_and_missing_folder(tmp_path, capsys):
    assert main(["bench", "discover", "--part", "nope", "--data-dir", str(tmp_path)]) == 2
    assert "--part must be one of ncd, gcd, fewshot, lls, labels, noise, got 'nope'" in capsys.readouterr().err
    assert main(["bench", "discover", "--part", "gcd", "--data-dir", str(tmp_path / "none")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_missing_idx_file_names_it(tmp_path, capsys):
    assert main(["bench", "discover", "--part", "gcd", "--data-dir", str(tmp_path), "-q"]) == 2
    assert "train-images-idx3-ubyte.gz: no such file" in capsys.readouterr().err


def test_gcd_on_a_tiny_folder(tmp_path):
    data = _tiny_mnist(tmp_path / "mnist")
    out = tmp_path / "gcd.json"
    assert main(["bench", "discover", "--part", "gcd", "--data-dir", str(data), "--repeats", "1", "-q",
                 "--json", str(out), "--plots", str(tmp_path / "plots")]) == 0
    payload = json.loads(out.read_text())
    methods = {r["method"] for r in payload["rows"]}
    assert methods == {"kmeans", "gmm", "gmm-estk"}
    for r in payload["rows"]:
        assert r["part"] == "gcd" and {"dataset", "all", "old", "new", "k_estimated"} <= set(r)
    # separated templates: the GMM anchored on classes 0-4 finds them all
    assert next(r for r in payload["rows"] if r["method"] == "gmm")["all"] > 0.9
    assert (tmp_path / "plots" / "discover_gcd.png").is_file()


def test_labels_on_a_tiny_folder(tmp_path):
    data = _tiny_mnist(tmp_path / "mnist", n=300, n_test=100)
    out = tmp_path / "labels.json"
    assert main(["bench", "discover", "--part", "labels", "--data-dir", str(data), "--repeats", "2", "-q",
                 "--contrastive-steps", "20", "--json", str(out), "--plots", str(tmp_path / "plots")]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["method"] for r in rows} == {"raw", "pca", "itq", "contrastive"}
    assert {r["n_labels"] for r in rows} == {10, 20, 50, 100, 200, 300}  # sizes above the 300 rows are dropped
    for r in rows:
        assert r["part"] == "labels" and {"dataset", "acc", "seed"} <= set(r)
    # well-separated templates: raw pixels with all labels classify the test rows
    assert next(r for r in rows if r["method"] == "raw" and r["n_labels"] == 300)["acc"] > 0.9
    assert (tmp_path / "plots" / "discover_labels.png").is_file()
