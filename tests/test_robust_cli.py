"""`hashlearn bench robust`: bad input exits 2 with one line; tiny MNIST-style folders run end to end."""

import gzip
import json

import numpy as np
import pytest

pytest.importorskip("torch")

from hashlearn.cli import main


def _write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    templates = rng.integers(0, 256, (10, 28, 28))
    for prefix, m in (("train", 300), ("t10k", 200)):
        labels = np.repeat(np.arange(10), m // 10)
        images = np.clip(templates[labels] + rng.normal(0, 30, (m, 28, 28)), 0, 255)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def _one_line_error(capsys, text):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert text in err, err


@pytest.mark.parametrize("args, text", [
    (["--part", "nope"], "--part must be one of attack, vfl, unlearnable, got 'nope'"),
    (["--part", "attack", "--eps", "0"], "--eps must be in (0, 1]"),
    (["--part", "attack", "--eps", "1.5"], "--eps must be in (0, 1]"),
    (["--part", "unlearnable", "--eps", "0.1", "--eps", "-0.2"], "--eps must be in (0, 1]"),
    (["--part", "attack", "--eps", "0.1", "--eps", "0.2"], "the attack part takes one budget"),
    (["--part", "vfl", "--eps", "0.1"], "--eps applies to the attack and unlearnable parts"),
    (["--part", "attack", "--size", "huge"], "--size must be one of full, tiny"),
])
def test_bad_input_exits_2_with_one_line(tiny_mnist, capsys, args, text):
    assert main(["bench", "robust", "--data-dir", str(tiny_mnist), "-q", *args]) == 2
    _one_line_error(capsys, text)


def test_missing_folder_and_file(tmp_path, capsys):
    assert main(["bench", "robust", "--part", "attack", "--data-dir", str(tmp_path / "none"), "-q"]) == 2
    _one_line_error(capsys, "is not a folder")
    assert main(["bench", "robust", "--part", "attack", "--data-dir", str(tmp_path), "-q"]) == 2
    _one_line_error(capsys, "missing the MNIST file")


@pytest.mark.slow
@pytest.mark.parametrize("part", ["attack", "unlearnable"])
def test_tiny_run_writes_rows_and_plots(tiny_mnist, tmp_path, part):
    out, plots = tmp_path / "out.json", tmp_path / "plots"
    assert main(["bench", "robust", "--part", part, "--size", "tiny", "--data-dir", str(tiny_mnist), "--json",
                 str(out), "--plots", str(plots), "-q"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["part"] for r in rows} == {part}
    if part == "attack":
        assert {r["method"] for r in rows} == {"prosgan", "none", "noise", "p2p", "dhta"}
        assert all({"t_map", "clean_map", "eps"} <= set(r) for r in rows)
        assert all(r["linf"] <= r["eps"] + 1e-6 for r in rows)
        assert len(list(plots.glob("attack_eps*.png"))) == 1
    else:
        assert {r["method"] for r in rows} == {"clean", "perturbed"}
        assert all("test_acc" in r for r in rows)
        assert len(list(plots.glob("unlearnable_eps*.png"))) == 3
