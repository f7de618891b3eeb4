"""`hashlearn bench discover`: bad input exits 2 with one line; a tiny MNIST-style folder runs end to end."""

import gzip
import json

import numpy as np

from hashlearn.cli import main


def _write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def _tiny_mnist(folder, n=400):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), n // 10)
    templates = rng.integers(0, 256, (10, 28, 28))
    images = np.clip(templates[labels] + rng.normal(0, 30, (n, 28, 28)), 0, 255)
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte.gz", images)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    return folder


def test_bad_part_and_missing_folder(tmp_path, capsys):
    assert main(["bench", "discover", "--part", "nope", "--data-dir", str(tmp_path)]) == 2
    assert "--part must be one of ncd, gcd, fewshot, lls, got 'nope'" in capsys.readouterr().err
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
