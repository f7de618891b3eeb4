"""``hashlearn bench attention``: in-process CLI runs on a tiny grid, bad input, rows and plots."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="hashlearn.nn needs torch (pip install 'hashlearn[deep]')")

from hashlearn.cli import main  # noqa: E402
from hashlearn.nn import bench  # noqa: E402


def test_bench_attention_speed_tiny_grid(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "SPEED_GRID", ((1200, 1, False), (1200, 2, True), (512, 1, False)))
    out = tmp_path / "rows.json"
    assert main(["bench", "attention", "--part", "speed", "--json", str(out), "--plots", str(tmp_path)]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert len(rows) == 6 and {r["method"] for r in rows} == {"sdpa", "hyper"}
    for r in rows:
        assert {"part", "method", "n", "causal", "ms", "rel_error"} <= set(r) and r["ms"] > 0
        if r["method"] == "sdpa":
            assert r["rel_error"] == 0.0 and r["speedup"] == 1.0
    short = [r for r in rows if r["n"] == 512 and r["method"] == "hyper"][0]
    assert short["rel_error"] < 1e-5  # below min_seq_len: the exact fallback
    long = [r for r in rows if r["n"] == 1200 and r["method"] == "hyper" and not r["causal"]][0]
    assert long["rel_error"] > 1e-3  # approximated: the error is measured, not assumed
    assert (tmp_path / "nn_speed.png").stat().st_size > 0
    assert "hyper" in capsys.readouterr().out


def test_bench_attention_bad_part(capsys):
    assert main(["bench", "attention", "--part", "nope"]) == 2
    assert "--part must be one of speed" in capsys.readouterr().err


def test_bench_attention_moe_tiny_text(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40)
    from hashlearn.nn.moe_bench import moe_rows

    rows = moe_rows(data, steps=5, batch=64, progress=False)
    held = {r["method"]: r for r in rows if r["step"] == "heldout"}
    assert set(held) == {"moe", "lsh-moe-h1", "lsh-moe-h2"} and all(r["loss"] > 0 for r in rows)
    steps = [r for r in rows if r["method"] == "moe" and r["step"] != "heldout"]
    assert len(steps) == 5 and steps[0]["bytes"] == 2 * 64 * 64 * 4  # every token: both ways, d 64, float32
    comp = [r for r in rows if r["method"] == "lsh-moe-h1" and r["step"] != "heldout"]
    assert all(c["bytes"] <= s["bytes"] for c, s in zip(comp, steps))
    assert main(["bench", "attention", "--part", "moe", "--data-dir", str(tmp_path)]) == 2  # no input.txt there
    assert "input.txt" in capsys.readouterr().err


def test_bench_moe_missing_data_raises(tmp_path):
    from hashlearn.errors import DataFileError
    from hashlearn.nn.moe_bench import load_chars

    with pytest.raises(DataFileError, match="input.txt"):
        load_chars(tmp_path)


def test_bench_attention_option_not_for_part(capsys):
    assert main(["bench", "attention", "--part", "speed", "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "--steps does not apply to part speed" in err and len(err.strip().splitlines()) == 1


def test_bench_attention_real_missing_data(tmp_path, capsys):
    assert main(["bench", "attention", "--part", "real", "--data-dir", str(tmp_path)]) == 2
    assert "part real cannot run" in capsys.readouterr().err


def test_bench_attention_lm_tiny_text(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)
    out = tmp_path / "lm.json"
    assert main(["bench", "attention", "--part", "lm", "--data-dir", str(data), "--steps", "2", "--context", "32",
                 "--block-size", "8", "--sample-size", "8", "--min-seq-len", "16", "--json", str(out),
                 "--plots", str(tmp_path)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["layers"] for r in rows] == ["none", "half", "all", "all"]
    assert all(r["n"] == 32 and r["steps"] == 2 and r["perplexity"] > 1 for r in rows)
    assert rows[1]["block_size"] == 8 and rows[1]["min_seq_len"] == 16
    assert (tmp_path / "nn_lm.png").stat().st_size > 0
    assert "perplexity" in capsys.readouterr().out
