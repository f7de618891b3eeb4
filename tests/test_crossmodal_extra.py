"""IMH, multi-view fusion (mvh), the bench CLI and the shared-data smoke tests of hashlearn.crossmodal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hashlearn
from hashlearn.cli import main
from hashlearn.codes import hamming_distances, unpack
from hashlearn.crossmodal import MultiViewHashing
from hashlearn.crossmodal.data import make_planted_views
from hashlearn.errors import ValidationError
from hashlearn.metrics import hamming_ranking, mean_average_precision, relevance_from_labels

WIKI = Path("/work/shared/data/wiki/wiki_data.mat")


def self_map(q, db, yq, ydb, nb):
    rank = hamming_ranking(hamming_distances(q, db, n_bits=nb))
    return mean_average_precision(relevance_from_labels(yq, ydb, rank))


@pytest.fixture(scope="module")
def planted():
    return make_planted_views(400, n_clusters=5, latent_dim=6, dims=(30, 20), noise=0.2, random_state=1)


def test_imh_retrieves_planted_views_and_round_trips(planted, tmp_path):
    views, y = planted
    rows1 = np.arange(0, 400, 2)  # view 1 has only every other item
    pairs = np.stack([np.arange(0, 400, 4), np.arange(0, 200, 2)], axis=1)  # 100 pairs
    model = hashlearn.make_hasher("imh", n_bits=8, random_state=0, lam=10.0).fit([views[0], views[1][rows1]], pairs)
    q = model.transform(views[0], view=0)
    db = model.transform(views[1], view=1)
    # measured 0.87 here (0.59 without the eigenvalue weighting); random codes give about 0.2
    assert self_map(q, db, y, y, 8) > 0.8
    loaded = hashlearn.load(hashlearn.save(model, tmp_path / "imh.hl"))
    np.testing.assert_array_equal(loaded.transform(views[1], view=1), db)


def test_imh_eigenvalue_weighting_keeps_more_bits_useful(planted):
    """With more bits than the data's latent dimensions (24 vs 6), unweighted IMH spreads noise
    directions over every bit (measured mAP 0.25); weighting direction k by λ_1/λ_k keeps it at 0.87."""
    views, y = planted
    rows1 = np.arange(0, 400, 2)
    pairs = np.stack([np.arange(0, 400, 4), np.arange(0, 200, 2)], axis=1)
    got = {}
    for p in (0.0, 1.0):
        m = hashlearn.make_hasher("imh", n_bits=24, random_state=0, eigen_power=p).fit([views[0], views[1][rows1]], pairs)
        got[p] = self_map(m.transform(views[0], view=0), m.transform(views[1], view=1), y, y, 24)
    assert got[1.0] > 0.8 and got[1.0] > got[0.0] + 0.3
    with pytest.raises(ValidationError, match="eigen_power must be >= 0"):
        hashlearn.make_hasher("imh", n_bits=8, eigen_power=-1.0).fit([views[0], views[1][rows1]], pairs)


# -- multi-view fusion ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_views():
    views, y = make_planted_views(450, n_clusters=5, latent_dim=6, dims=(30, 20, 12), noise=0.3, random_state=2)
    rng = np.random.default_rng(0)
    views.append(rng.normal(size=(450, 25)).astype(np.float32))  # a view carrying no information
    return views, y


def test_mvh_fused_codes_objective_and_view_stability(three_views, tmp_path):
    views, y = three_views
    model = MultiViewHashing(n_bits=16, n_anchors=80, tau=0.05, random_state=0).fit(views)
    obj = model.objective_
    assert np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1]))
    w = model.view_weights_
    np.testing.assert_allclose(w.sum(), 1.0)
    assert np.argmin(w) == 3 and w[3] < 0.5 * w[:3].min()  # the noise view is the least stable
    assert model.view_agreement_[3] < model.view_agreement_[:3].min()
    fused = model.transform_fused(views)
    assert fused.shape == (450, 1) and fused.dtype == np.uint64
    fused_map = self_map(fused, fused, y, y, 16)
    assert fused_map > 0.75  # measured 0.80 (two of the five planted clusters overlap in some bits)
    noise_codes = model.transform(views[3], view=3)
    assert fused_map > self_map(noise_codes, noise_codes, y, y, 16) + 0.3
    # one view alone encodes into the same Hamming space
    single = model.transform(views[0], view=0)
    assert (unpack(single, 16) == unpack(fused, 16)).mean() > 0.8
    loaded = hashlearn.load(hashlearn.save(model, tmp_path / "mvh.hl"))
    np.testing.assert_array_equal(loaded.transform_fused(views), fused)
    np.testing.assert_allclose(loaded.view_weights_, w)


def test_mvh_uniform_weights_with_infinite_tau(three_views):
    views, _ = three_views
    model = MultiViewHashing(n_bits=8, n_anchors=50, tau=float("inf"), n_iter=3, random_state=0).fit(views)
    np.testing.assert_allclose(model.view_weights_, 0.25)


def test_mvh_validation(three_views):
    views, _ = three_views
    with pytest.raises(ValidationError, match="aligned views"):
        MultiViewHashing(n_bits=8).fit([views[0], views[1][:-1], views[2]])
    with pytest.raises(ValidationError, match="aligned views"):
        MultiViewHashing(n_bits=8).fit(views[:3], pairs=np.array([[0, 0]]))
    model = MultiViewHashing(n_bits=8, n_anchors=50, n_iter=2, random_state=0).fit(views[:3])
    with pytest.raises(ValidationError, match="expected 3 views, got 2"):
        model.transform_fused(views[:2])
    with pytest.raises(ValidationError, match="tau"):
        MultiViewHashing(n_bits=8, tau=0).fit(views[:3])


# -- CLI ----------------------------------------------------------------------------------------------------
def test_cli_bench_crossmodal_planted(tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = main(["bench", "crossmodal", "--dataset", "planted", "--bits", "8", "--paired", "0.3,1.0",
               "--method", "cmfh,rreh", "--param", "rreh.n_iter=5", "--json", str(out),
               "--plots", str(tmp_path / "plots")])
    assert rc == 0
    res = json.loads(out.read_text())
    assert {(r["method"], r["paired"]) for r in res["rows"]} == {(m, p) for m in ("cmfh", "rreh") for p in (0.3, 1.0)}
    for r in res["rows"]:
        assert 0 < r["map_q0_db1"] <= 1 and 0 < r["map_q1_db0"] <= 1
        assert r["n_pairs"] == round(r["paired"] * 900) and r["n_only0"] + r["n_only1"] == 900 - r["n_pairs"]
    assert res["params"] == {"rreh": {"n_iter": 5}}
    assert (tmp_path / "plots" / "crossmodal_planted_8bits.png").stat().st_size > 1000
    assert "view0→view1" in capsys.readouterr().out


def test_bench_cli_repeats_average_over_seeds(tmp_path, capsys):
    out = tmp_path / "xm.json"
    rc = main(["bench", "crossmodal", "--dataset", "planted", "--bits", "8", "--paired", "0.3",
               "--method", "cca-itq,rreh", "--param", "rreh.n_iter=5", "--repeats", "2", "--seed", "3",
               "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["seeds"] == [3, 4]
    assert sorted((r["method"], r["seed"]) for r in res["rows"]) == [
        ("cca-itq", 3), ("cca-itq", 4), ("rreh", 3), ("rreh", 4)]
    by = {(r["method"], r["seed"]): r for r in res["rows"]}
    assert by[("rreh", 3)]["map_q0_db1"] != by[("rreh", 4)]["map_q0_db1"]  # a new split and model per seed
    for s in res["summary"]:
        vals = [by[(s["method"], seed)]["map_q0_db1"] for seed in (3, 4)]
        assert s["map_q0_db1"] == pytest.approx(np.mean(vals)) and s["map_q0_db1_sd"] == pytest.approx(np.std(vals))
        assert s["n_seeds"] == 2
    wins = {s["method"]: s["wins_map_q0_db1"] for s in res["summary"]}
    assert wins == {m: sum(by[(m, seed)]["map_q0_db1"] >= max(by[(o, seed)]["map_q0_db1"] for o in ("cca-itq", "rreh"))
                           for seed in (3, 4)) for m in ("cca-itq", "rreh")}
    assert "mean ± sd of 2 seeds" in capsys.readouterr().out


def test_mean_rows_by_hand():
    from hashlearn.crossmodal.evaluate import mean_rows

    base = {"dataset": "d", "bits": 8, "paired": 0.5, "n_pairs": 5, "n_only0": 1, "n_only1": 1, "fit_s": 1.0}
    rows = [dict(base, method="a", seed=0, map_q0_db1=0.2, map_q1_db0=0.5),
            dict(base, method="b", seed=0, map_q0_db1=0.3, map_q1_db0=0.5),
            dict(base, method="a", seed=1, map_q0_db1=0.4, map_q1_db0=0.1),
            dict(base, method="b", seed=1, map_q0_db1=0.1, map_q1_db0=0.2)]
    got = {r["method"]: r for r in mean_rows(rows)}
    assert got["a"]["map_q0_db1"] == pytest.approx(0.3) and got["a"]["map_q0_db1_sd"] == pytest.approx(0.1)
    assert got["b"]["map_q1_db0"] == pytest.approx(0.35) and got["b"]["map_q1_db0_sd"] == pytest.approx(0.15)
    assert (got["a"]["wins_map_q0_db1"], got["b"]["wins_map_q0_db1"]) == (1, 1)
    assert (got["a"]["wins_map_q1_db0"], got["b"]["wins_map_q1_db0"]) == (1, 2)  # a tie counts for both


@pytest.mark.parametrize(
    "args, message",
    [
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--paired", "1.5"], "--paired fractions must be in (0, 1]"),
        (["--method", "itq"], "method 'itq' hashes float vectors, so it cannot be used here; usable: cca-itq"),
        (["--method", "nope"], "unknown method 'nope'"),
        (["--dataset", "wiki"], "dataset wiki needs --data-file wiki_data.mat: the Wiki image-text benchmark"),
        (["--dataset", "wiki", "--data-file", "/nonexistent.mat"], "/nonexistent.mat: no such file"),
        (["--param", "cmfh.mu=2", "--method", "rreh"], "method 'cmfh' is not among --method"),
        (["--dataset", "other"], "unknown dataset 'other'"),
    ],
)
def test_cli_bench_crossmodal_errors(args, message, capsys):
    base = ["bench", "crossmodal", "--dataset", "planted", "--bits", "8", "--paired", "1.0", "--method", "rreh"]
    assert main(base + args) == 2
    assert message in capsys.readouterr().err.replace("\n", "")


def test_cli_subprocess_help():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "hashlearn", "bench", "crossmodal", "--help"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "--paired" in proc.stdout


def test_import_does_not_load_torch():
    code = "import hashlearn, sys; hashlearn.make_hasher('deep-xm', n_bits=8); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# -- shared data (skipped where absent) -------------------------------------------------------------------
def test_wiki_rreh_beats_chance_with_30_percent_pairs():
    if not WIKI.is_file():
        pytest.skip(f"{WIKI} not present (shared benchmark data)")
    from hashlearn.crossmodal.evaluate import load_crossmodal_dataset, run_protocol

    data = load_crossmodal_dataset("wiki", WIKI)
    rows = run_protocol(data, ["rreh"], [16], [0.3])
    # chance level for 10 balanced-ish classes is about 0.12; the measured value is about 0.22
    assert rows[0]["map_q0_db1"] > 0.18 and rows[0]["map_q1_db0"] > 0.16


def test_deep_xm_planted_alignment_and_round_trip(planted, tmp_path):
    pytest.importorskip("torch")
    views, y = planted
    model = hashlearn.make_hasher("deep-xm", n_bits=16, random_state=0, hidden=64, epochs=30, batch_size=100,
                                  n_threads=1)
    model.fit(views)
    assert model.loss_[-1] < model.loss_[0]
    q = model.transform(views[0], view=0)
    db = model.transform(views[1], view=1)
    assert self_map(q, db, y, y, 16) > 0.85
    fused = model.transform_fused(views)
    assert self_map(fused, fused, y, y, 16) > 0.85
    loaded = hashlearn.load(hashlearn.save(model, tmp_path / "deep.hl"))
    np.testing.assert_array_equal(loaded.transform(views[1], view=1), db)
    np.testing.assert_array_equal(loaded.transform_fused(views), fused)


def test_deep_xm_neighbours_match_brute_force():
    from hashlearn.crossmodal.deep import _neighbours

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(60, 5)).astype(np.float32)
    Z[7] = Z[3]  # a duplicate row: its neighbour list must still exclude the row itself
    got = _neighbours(Z, 4)
    D = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    for i in range(len(Z)):
        assert i not in got[i]
        assert set(got[i]) == set(np.argsort(D[i], kind="stable")[:4]) or np.allclose(
            np.sort(D[i][got[i]]), np.sort(D[i])[:4])
    assert 7 in got[3] and 3 in got[7]


def test_deep_xm_affinity_term_uses_unpaired_rows(planted):
    """With affinity_weight > 0 the unpaired rows change the model (and with it = 0 they do not)."""
    pytest.importorskip("torch")
    views, y = planted
    pairs = np.stack([np.arange(0, 200), np.arange(0, 200)], axis=1)  # 200 of 600 items paired
    kw = dict(n_bits=16, random_state=0, hidden=64, epochs=5, batch_size=100, n_threads=1)
    other = [views[0].copy(), views[1].copy()]
    other[1][200:] = other[1][200:][::-1]  # unpaired rows of view 1 changed, paired rows identical

    def codes(vs, a):
        m = hashlearn.make_hasher("deep-xm", affinity_weight=a, **kw).fit(vs, pairs)
        return m.transform(views[0], view=0)

    np.testing.assert_array_equal(codes(views, 0.0), codes(other, 0.0))
    a, b = codes(views, 1.0), codes([views[0][:300], views[1]], 1.0)  # fewer unpaired rows of view 0
    assert not np.array_equal(a, b)
    with pytest.raises(ValidationError, match="affinity_weight must be >= 0"):
        hashlearn.make_hasher("deep-xm", affinity_weight=-1.0).fit(views)
