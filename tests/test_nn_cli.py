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
