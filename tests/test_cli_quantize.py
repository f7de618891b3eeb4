"""``hashlearn bench quantize``: the CLI over hashlearn.quantize.bench, on a tiny TEXMEX-format folder."""

from __future__ import annotations

import json

import numpy as np

from hashlearn.cli import main
from hashlearn.io.readers import write_fvecs, write_ivecs


def _tiny_sift(folder, rng):
    xb = rng.normal(size=(1200, 16)).astype(np.float32)
    xq = rng.normal(size=(15, 16)).astype(np.float32)
    d = ((xq[:, None, :] - xb[None, :, :]) ** 2).sum(-1)
    folder.mkdir()
    write_fvecs(folder / "siftsmall_base.fvecs", xb)
    write_fvecs(folder / "siftsmall_query.fvecs", xq)
    write_ivecs(folder / "siftsmall_groundtruth.ivecs", np.argsort(d, axis=1, kind="stable")[:, :100].astype(np.int32))


def test_bench_quantize_rows_json_and_plots(tmp_path, capsys):
    rng = np.random.default_rng(0)
    _tiny_sift(tmp_path / "sift", rng)
    out = tmp_path / "q.json"
    rc = main(["bench", "quantize", "--dataset", "sift10k", "--data-dir", str(tmp_path / "sift"), "--bytes", "4",
               "-m", "pq", "--json", str(out), "--plots", str(tmp_path / "plots")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = json.loads(out.read_text())
    assert {(r["method"], r["impl"], r["bytes"]) for r in rows} == {("pq", "hashlearn", 4), ("pq", "faiss", 4)}
    for r in rows:
        assert {"recall@1", "recall@10", "recall@100", "queries_per_s", "train_s"} <= set(r)
        assert 0.0 <= r["recall@1"] <= r["recall@10"] <= r["recall@100"] <= 1.0
    assert "| pq |" in captured.out
    assert any(p.suffix == ".png" for p in (tmp_path / "plots").iterdir())


def test_bench_quantize_bad_input(tmp_path, capsys):
    for args, message in ((["--dataset", "glove"], "--dataset must be one of"),
                          (["--bytes", "8,x"], "--bytes must be comma-separated integers"),
                          (["--bytes", "0"], "--bytes must be positive"),
                          (["-m", "pq,lopq"], "--method: unknown lopq"),
                          (["--dataset", "sift10k", "--data-dir", str(tmp_path / "nope")], "is not a folder")):
        assert main(["bench", "quantize", *args]) == 2
        assert message in capsys.readouterr().err
