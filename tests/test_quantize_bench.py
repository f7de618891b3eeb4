"""The quantizer benchmark library (hashlearn.quantize.bench) on small data: row schema, recall
definition, data loading errors. The real runs are bench/quantize.py's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashlearn.errors import DataFileError, ValidationError
from hashlearn.quantize import bench

SIFT = Path(__file__).resolve().parents[2] / "shared" / "data" / "sift10k"

REQUIRED = {"method", "impl", "bytes", "recall@1", "recall@10", "recall@100", "queries_per_s", "train_s"}


def test_recall_at_counts_the_true_nearest_neighbour():
    gt = np.array([[3, 1], [7, 2]])
    I = np.array([[5, 3, 9], [1, 2, 7]])
    assert bench.recall_at(I, gt, 1) == 0.0
    assert bench.recall_at(I, gt, 2) == 0.5
    assert bench.recall_at(I, gt, 3) == 1.0


def _row(method, impl, B, r10, qps, **extra):
    return {"dataset": "toy", "method": method, "impl": impl, "bytes": B, "recall@1": r10 / 2, "recall@10": r10,
            "recall@100": 1.0, "10-recall@10": r10, "queries_per_s": qps, "train_s": 1.0, "quantization_mse": 2.0,
            **extra}


def test_summarize_computes_the_target_lines_from_the_rows(tmp_path):
    rows = [_row("pq", "hashlearn", 8, 0.90, 2000), _row("pq", "faiss", 8, 0.92, 1000),
            _row("ivf-pq", "hashlearn", 8, 0.95, 500, nlist=16, nprobe=4),
            _row("ivf-pq", "faiss", 8, 0.91, 1000, nlist=16, nprobe=2)]
    text = bench.summarize(rows)
    assert "### toy" in text and "| pq | 8 | hashlearn |" in text
    assert "recall@10 0.900 vs faiss 0.920 (difference -0.0200: NOT within 0.01; queries/s ratio 2.00)" in text
    assert "hashlearn / faiss = 0.50 (misses the ≥ 1.0 target)" in text
    paths = bench.plot(rows, tmp_path)
    assert [p.name for p in paths] == ["quantize_toy.png"] and paths[0].stat().st_size > 1000


def test_run_rows_on_small_synthetic_data(monkeypatch):
    small = bench.synthetic(n=3000, d=16, nq=40)
    monkeypatch.setattr(bench, "synthetic", lambda *a, **k: small)
    rows = bench.run("synthetic", [4], methods=("pq", "ivf-pq"), seeds=(0, 1), repeat=1,
                     log=lambda msg: None)
    assert rows and all(REQUIRED <= set(r) for r in rows)
    assert {r["impl"] for r in rows} == {"hashlearn", "faiss"}
    pq = {r["impl"]: r for r in rows if r["method"] == "pq"}
    assert pq["hashlearn"]["seeds"] == 2 and 0 <= pq["hashlearn"]["recall@10_sd"] < 0.5
    # same code size, same data: our PQ is close to faiss' (loose: 40 queries)
    assert abs(pq["hashlearn"]["recall@10"] - pq["faiss"]["recall@10"]) < 0.2
    assert all(r["recall@1"] <= r["recall@10"] <= r["recall@100"] for r in rows)
    ivf = [r for r in rows if r["method"] == "ivf-pq"]
    assert {r["nprobe"] for r in ivf} >= {1, 2} and all(r["nprobe"] <= r["nlist"] for r in ivf)


def test_bad_arguments_and_missing_files(tmp_path):
    with pytest.raises(ValidationError, match="dataset must be one of"):
        bench.run("mnist", [8], log=lambda m: None)
    with pytest.raises(DataFileError, match="siftsmall_base.fvecs"):
        bench.run("sift10k", [8], tmp_path, log=lambda m: None)
    with pytest.raises(ValidationError, match="needs data_dir"):
        bench.load_dataset("scifact-minilm")
    with pytest.raises(ValidationError, match="unknown benchmark method"):
        bench.run("synthetic", [8], methods=("lsh",), log=lambda m: None)


@pytest.mark.skipif(not (SIFT / "siftsmall_base.fvecs").is_file(), reason=f"needs {SIFT / 'siftsmall_base.fvecs'}")
def test_sift10k_loads_with_exact_ground_truth():
    xt, xb, xq, gt = bench.load_dataset("sift10k", SIFT)
    assert xb.shape == (10000, 128) and xq.shape == (100, 128) and gt.shape == (100, 100)
    d = ((xq[:5, None, :].astype(np.float64) - xb[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(np.argmin(d, 1), gt[:5, 0])
