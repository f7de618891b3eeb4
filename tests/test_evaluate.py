"""hashlearn.evaluate: the radius metrics and encode speed of an EvalRow agree with hashlearn.metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashlearn import codes as codes_mod
from hashlearn.datasets import load_dataset
from hashlearn.evaluate import GroundTruth, evaluate_codes, evaluate_method
from hashlearn.hashing import make_hasher
from hashlearn.metrics import precision_recall_by_radius, precision_within_radius, relevance_from_labels


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits", n_queries=100, random_state=0)
    return ds, GroundTruth.compute(ds, k=100)


@pytest.mark.parametrize("n_bits", [16, 32, 96])
def test_precision_radius2_matches_metrics_by_hand(digits, n_bits):
    ds, gt = digits
    hasher = make_hasher("simhash", n_bits=n_bits, random_state=1).fit(ds.xt)
    row = evaluate_codes("simhash", n_bits, hasher.transform, ds, gt)
    # by hand, on the same codes
    qc, dbc = hasher.transform(ds.xq), hasher.transform(ds.xb)
    d = codes_mod.hamming_distances(qc, dbc, n_bits=n_bits)
    rel = relevance_from_labels(ds.labels_q, ds.labels_b)
    assert row.precision_radius2 == pytest.approx(precision_within_radius(d, rel, radius=2), abs=1e-12)
    prec, rec = precision_recall_by_radius(d, rel, n_bits)
    np.testing.assert_allclose(row.pr_curve["precision"], prec)
    np.testing.assert_allclose(row.pr_curve["recall"], rec)
    np.testing.assert_array_equal(row.pr_curve["radius"], np.arange(n_bits + 1))
    assert row.encode_per_s > 0


def test_spherical_hasher_uses_plain_hamming_for_radius_metrics(digits):
    ds, gt = digits
    row = evaluate_method("sph", 32, ds, gt, random_state=0)
    # refit the same (seeded) hasher to recompute by hand
    hasher = make_hasher("sph", n_bits=32, random_state=0).fit(ds.xt)
    d = codes_mod.hamming_distances(hasher.transform(ds.xq), hasher.transform(ds.xb), n_bits=32)
    rel = relevance_from_labels(ds.labels_q, ds.labels_b)
    assert row.precision_radius2 == pytest.approx(precision_within_radius(d, rel, radius=2), abs=1e-12)


def test_row_dict_is_json_serialisable_with_and_without_curve(digits):
    ds, gt = digits
    row = evaluate_method("faiss-lsh", 16, ds, gt)
    d = row.as_dict()
    text = json.dumps(d)
    assert json.loads(text)["pr_curve"]["precision"][2] == pytest.approx(row.precision_radius2)
    assert "pr_curve" not in row.as_dict(curve=False)
    assert row.peer and row.encode_per_s > 0


def test_no_labels_gives_none(digits):
    ds, gt = digits
    import dataclasses

    nolab = dataclasses.replace(ds, labels_q=None, labels_b=None)
    row = evaluate_method("simhash", 16, nolab, gt)
    assert row.map is None and row.precision_radius2 is None and row.pr_curve is None
    assert 0 <= row.recall_at_100 <= 1 and row.encode_per_s > 0
