"""hashlearn.recsys.bench: the benchmark library function end to end on a small synthetic MovieLens folder."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the recsys benchmark trains torch models (the [deep] extra)")

from hashlearn.errors import UnknownMethodError  # noqa: E402
from hashlearn.recsys import bench  # noqa: E402
from test_recsys_data import write_100k  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    events = []
    for u in range(1, 31):
        items = rng.choice(np.arange(1, 61), size=10, replace=False)
        for t, i in enumerate(items):
            events.append((u, int(i), int(rng.integers(1, 6)), 1000 + 10 * u + t))
    path = write_100k(tmp_path / "ml", events=events)
    (path / "u.user").unlink()  # the helper's users / items files list fewer ids; catalogues come from u.data
    (path / "u.item").unlink()
    return path


def test_bench_compress_and_sdim_rows(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(bench.MF_PARAMS, "epochs", 2)
    rows = bench.run("compress", folder, seeds=[0], budgets=(1 / 2,), methods=("random", "graphhash"),
                     progress=False)
    assert {r["method"] for r in rows} == {"full", "random", "graphhash"}
    assert all({"recall@20", "ndcg@20", "auc", "cold", "budget"} <= set(r) for r in rows)
    assert sum(r["cold"] for r in rows) == len(rows) // 2
    full = next(r for r in rows if r["method"] == "full" and not r["cold"])
    assert full["budget"] == 1.0 and 0.0 <= full["recall@20"] <= 1.0
    sd = bench.run("sdim", folder, seeds=[0], repeat=1, epochs=1, sdim_bits=(3, 2), progress=False)
    assert {r["method"] for r in sd} == {"sdim", "attention-full", "attention-last50", "mean", "sdim-tau2"}
    assert all(r["ms_per_1k"] > 0 and 0 <= r["auc"] <= 1 for r in sd)
    summary = bench.summarize(rows + sd)
    assert all(s["n_seeds"] == 1 for s in summary)
    paths = bench.plot(rows + sd, tmp_path / "plots")
    assert [p.name for p in paths] == ["recsys_compress.png", "recsys_sdim.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    with pytest.raises(UnknownMethodError, match="unknown recsys bench part"):
        bench.run("nope", folder)


def test_cli_bench_recsys_sdim_writes_json_and_plots(folder, tmp_path, monkeypatch, capsys):
    import json

    from hashlearn.cli import main

    monkeypatch.setitem(bench.CTR_PARAMS, "epochs", 1)
    out = tmp_path / "r.json"
    assert main(["bench", "recsys", "--part", "sdim", "--data-dir", str(folder), "--repeats", "2", "--json", str(out),
                 "--plots", str(tmp_path / "plots"), "-q"]) == 0
    payload = json.loads(out.read_text())
    assert payload["part"] == "sdim" and {r["seed"] for r in payload["rows"]} == {0, 1}
    assert all(s["n_seeds"] == 2 for s in payload["summary"])
    assert (tmp_path / "plots" / "recsys_sdim.png").is_file()
    assert f"wrote {out}" in capsys.readouterr().err.replace("\n", "")
    assert main(["bench", "recsys", "--part", "nope", "--data-dir", str(folder)]) == 2
