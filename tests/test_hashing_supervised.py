"""Shallow supervised hashers (KSH, SDH, COSDISH, LFH): invariants, quality against LSH/ITQ, bad input.

Quality is checked on scikit-learn's digits (shipped with scikit-learn): 1,000 labelled training
images, 297 queries, 1,500 database images, mAP over the full Hamming ranking with same-label
relevance; LSH (SimHash) and ITQ fitted on the same training images are the baselines.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import hashlearn
from hashlearn import codes as codes_mod
from hashlearn.errors import HashlearnError, NotFittedError, ValidationError
from hashlearn.hashing import COSDISH, KSH, LFH, SDH, make_hasher
from hashlearn.hashing.supervised import PairwiseLabels, check_supervision
from hashlearn.hashing.supervised.cosdish import maximize_bqp
from hashlearn.hashing.supervised.sdh import dcc_codes
from hashlearn.metrics import hamming_ranking, mean_average_precision, relevance_from_labels

SUPERVISED = ("ksh", "sdh", "cosdish", "lfh")
# small, fast settings (each fit well under a second on one core at 1,000 training rows)
SMALL = {"ksh": {"n_anchors": 100, "max_iter": 50}, "sdh": {"n_anchors": 200},
         "cosdish": {"n_anchors": 200, "n_iter": 10, "n_columns": 500}, "lfh": {"n_anchors": 200, "n_epochs": 8}}


def small(name, n_bits=16, random_state=0, **extra):
    return make_hasher(name, n_bits=n_bits, random_state=random_state, **{**SMALL[name], **extra})


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    perm = np.random.default_rng(0).permutation(X.shape[0])
    q, b = perm[:297], perm[297:]
    return {"xq": X[q], "yq": y[q], "xb": X[b], "yb": y[b], "xt": X[b[:1000]], "yt": y[b[:1000]]}


def _map(hasher, d, n_bits):
    D = codes_mod.hamming_distances(hasher.transform(d["xq"]), hasher.transform(d["xb"]), n_bits=n_bits)
    return mean_average_precision(relevance_from_labels(d["yq"], d["yb"], hamming_ranking(D)))


@pytest.fixture(scope="module")
def fitted(digits):
    return {name: small(name).fit(digits["xt"], digits["yt"]) for name in SUPERVISED}


# -- registry and output ------------------------------------------------------------------------------
def test_registered_as_vector_hashers_that_need_labels():
    from hashlearn.hashing import get_hasher_class, is_supervised

    for name, cls in zip(SUPERVISED, (KSH, SDH, COSDISH, LFH)):
        assert get_hasher_class(name) is cls and cls.input_kind == "vector"
        assert is_supervised(cls) and is_supervised(cls())
    assert not is_supervised(get_hasher_class("itq"))


@pytest.mark.parametrize("name", SUPERVISED)
def test_codes_are_packed_bits_matching_the_margins(name, fitted, digits):
    h = fitted[name]
    c = h.transform(digits["xq"])
    assert c.dtype == np.uint64 and c.shape == (digits["xq"].shape[0], 1) and c.flags.c_contiguous
    bits = codes_mod.unpack(c, 16)
    assert set(np.unique(bits)) <= {0, 1}
    np.testing.assert_array_equal(bits.astype(bool), h.margins(digits["xq"]) > 0)
    assert int(c[:, 0].max()) < 2**16  # padding bits beyond n_bits are 0
    assert 0.1 < bits.mean() < 0.9  # not a constant code
    assert h.code_bits == 16 and h.n_features_in_ == 64 and h.projection_.shape == (h.n_anchors_, 16)


@pytest.mark.parametrize("name", SUPERVISED)
def test_same_seed_same_codes_other_seed_other_model(name, digits):
    X, y = digits["xt"][:400], digits["yt"][:400]
    a = small(name, random_state=3).fit(X, y).transform(digits["xq"])
    b = small(name, random_state=3).fit(X, y).transform(digits["xq"])
    np.testing.assert_array_equal(a, b)
    c = small(name, random_state=4).fit(X, y).transform(digits["xq"])
    assert not np.array_equal(a, c)  # other anchors (and initial codes)


@pytest.mark.parametrize("name", SUPERVISED)
def test_save_load_round_trip(name, fitted, digits, tmp_path):
    h = fitted[name]
    loaded = hashlearn.load(hashlearn.save(h, tmp_path / f"{name}.hl"))
    assert type(loaded) is type(h) and loaded.get_params() == h.get_params()
    np.testing.assert_array_equal(loaded.transform(digits["xq"]), h.transform(digits["xq"]))
    np.testing.assert_array_equal(loaded.classes_, h.classes_)


# -- quality -------------------------------------------------------------------------------------------
def test_supervised_codes_clearly_beat_lsh_and_itq(fitted, digits):
    base = {m: _map(make_hasher(m, n_bits=16, random_state=0).fit(digits["xt"]), digits, 16)
            for m in ("simhash", "itq")}
    got = {name: _map(h, digits, 16) for name, h in fitted.items()}
    best_unsup = max(base.values())
    assert best_unsup < 0.7, base  # what unsupervised 16-bit codes reach on digits (ITQ about 0.61)
    for name in ("ksh", "sdh"):
        assert got[name] > best_unsup + 0.25, (got, base)
    for name in ("cosdish", "lfh"):
        assert got[name] > best_unsup + 0.15, (got, base)


def test_multilabel_matrix_gives_the_same_model_as_one_hot_labels(digits):
    X, y = digits["xt"][:300], digits["yt"][:300]
    onehot = np.eye(10, dtype=np.int64)[y]
    for name in ("ksh", "sdh"):
        a = small(name).fit(X, y)
        b = small(name).fit(X, onehot)
        assert b.multilabel_ and not a.multilabel_
        np.testing.assert_allclose(a.projection_, b.projection_, rtol=1e-6, atol=1e-8)


def test_true_multilabel_supervision_is_used():
    # two binary attributes; rows sharing any attribute are similar
    rng = np.random.default_rng(0)
    Y = rng.integers(0, 2, size=(240, 2))
    Y[Y.sum(axis=1) == 0, 0] = 1
    X = Y @ rng.normal(size=(2, 6)) * 2.0 + 0.3 * rng.normal(size=(240, 6))
    h = small("sdh", n_bits=8, n_anchors=60).fit(X, Y)
    B = codes_mod.unpack(h.transform(X), 8).astype(float) * 2 - 1
    S = (Y @ Y.T > 0)
    inner = B @ B.T
    assert inner[S].mean() > inner[~S].mean() + 2.0  # similar pairs agree on more bits


# -- algorithm pieces against brute force --------------------------------------------------------------
@pytest.mark.parametrize("multi", [False, True])
def test_pairwise_labels_products_match_the_dense_matrix(multi):
    rng = np.random.default_rng(1)
    if multi:
        Y = rng.integers(0, 2, size=(3000, 4)).astype(np.float32)
        Y[Y.sum(axis=1) == 0, 1] = 1
    else:
        Y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 3000)]
    S = (Y.astype(float) @ Y.T.astype(float) > 0).astype(float)
    pairs = PairwiseLabels(Y)
    assert pairs.single == (not multi)
    V = rng.normal(size=(3000, 3))
    np.testing.assert_allclose(pairs.matvec(V), S @ V, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(pairs.signed_matvec(V), (2 * S - 1) @ V, rtol=1e-10, atol=1e-8)
    rows, cols = np.arange(10, 50), np.arange(2000, 2100)
    np.testing.assert_array_equal(pairs.block(rows, cols), S[np.ix_(rows, cols)])


def test_dcc_never_raises_the_objective_and_each_bit_is_optimal():
    rng = np.random.default_rng(2)
    n, r, c = 40, 5, 3
    W, Q = rng.normal(size=(r, c)), rng.normal(size=(n, r))

    def objective(B):
        return float(np.sum((B @ W) ** 2) - 2 * np.sum(B * Q))

    B0 = np.where(rng.normal(size=(n, r)) > 0, 1.0, -1.0)
    B = dcc_codes(B0.copy(), Q, W, n_sweeps=50)
    assert objective(B) <= objective(B0) + 1e-9
    for k in range(r):  # converged: no single column update (the closed form per bit) improves
        for i in range(n):
            flipped = B.copy()
            flipped[i, k] = -flipped[i, k]
            assert objective(flipped) >= objective(B) - 1e-9


def test_greedy_bqp_reaches_a_one_flip_optimum_and_never_goes_down():
    rng = np.random.default_rng(3)
    q = 10
    A = rng.normal(size=(q, q))
    A = A + A.T
    p = rng.normal(size=q)

    def f(b):
        return float(b @ A @ b + p @ b)

    best = max(f(np.array(b, dtype=float)) for b in itertools.product([-1.0, 1.0], repeat=q))
    b0 = np.where(rng.normal(size=q) > 0, 1.0, -1.0)
    b = maximize_bqp(A, p, b0, max_flips=100)
    assert f(b) >= f(b0) - 1e-9 and f(b) <= best + 1e-9
    for i in range(q):
        flipped = b.copy()
        flipped[i] = -flipped[i]
        assert f(flipped) <= f(b) + 1e-9


def test_fitting_histories(fitted):
    lfh = fitted["lfh"]
    assert np.all(np.diff(lfh.loss_history_) <= 1e-12)  # backtracked block steps: monotone
    sdh = fitted["sdh"]
    assert sdh.loss_history_[-1] <= sdh.loss_history_[0] and sdh.train_codes_agreement_ > 0.8
    ksh = fitted["ksh"]
    assert ksh.objective_[0] > 0 and ksh.n_iter_ >= 1  # the first bit agrees with the labels
    assert fitted["cosdish"].loss_history_[-1] < fitted["cosdish"].loss_history_[0]


def test_ksh_spectral_relaxation_alone_still_learns(digits):
    h = small("ksh", max_iter=0).fit(digits["xt"], digits["yt"])
    assert h.n_iter_ == 0 and _map(h, digits, 16) > 0.6


def test_more_anchors_than_rows_warns_and_uses_the_rows(digits):
    with pytest.warns(UserWarning, match=r"KSH: n_anchors=100 exceeds the 30 training vectors; fitting with n_anchors_=30"):
        h = small("ksh").fit(digits["xt"][:30], digits["yt"][:30])
    assert h.n_anchors_ == 30 and h.get_params()["n_anchors"] == 100


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SUPERVISED)
def test_bad_labels_are_refused_naming_the_numbers(name):
    X = np.random.default_rng(0).normal(size=(20, 4))
    y = np.arange(20) % 3
    h = small(name, n_bits=4, n_anchors=10)
    cases = [
        (None, "requires y to be passed, but the target y is None"),
        (y[:19], "y has 19 rows of labels but X has 20 rows"),
        (np.zeros(20, dtype=int) + 7, "y holds a single class \\(7 for all 20 rows\\)"),
        (np.where(np.arange(20) == 4, np.nan, 1.0 * y), "y holds NaN or infinity in 1 of 20 rows \\(rows 4\\)"),
        (y + 0.5, "non-integral values in 20 of 20 rows"),
        (np.eye(3)[y] * np.r_[np.ones(17), 0, 0, 0][:, None],
         "3 of 20 rows of the label matrix y have no label \\(rows 17, 18, 19\\)"),
        (np.eye(3)[y] * 2, "must hold only 0 and 1; 20 entries in 20 rows differ"),
        (np.ones((20, 3)), "every one of the 20 rows of the label matrix y has the same labels"),
        (np.zeros((20, 2, 2)), "got 3 dimensions"),
    ]
    for bad, match in cases:
        with pytest.raises(ValidationError, match=match):
            h.fit(X, bad)
        assert not hasattr(h, "n_features_in_")  # a failed fit never looks fitted
    with pytest.raises(NotFittedError, match=r"call fit\(X, y\) first"):
        h.transform(X)
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    with pytest.raises(HashlearnError, match="NaN"):
        h.fit(Xnan, y)


def test_string_labels_and_float_integral_labels_work(digits):
    X, y = digits["xt"][:200], digits["yt"][:200]
    a = small("sdh").fit(X, y)
    b = small("sdh").fit(X, np.array([f"c{v}" for v in y]))
    c = small("sdh").fit(X, y.astype(float))
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.transform(X), c.transform(X))
    assert list(b.classes_) == sorted(f"c{v}" for v in set(y.tolist()))


def test_check_supervision_returns_one_hot_and_classes():
    Y, classes, multi = check_supervision(np.array([3, 1, 3, 2]), 4)
    assert not multi and classes.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(Y, np.array([[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32))
    Y, classes, multi = check_supervision(np.array([[1, 0], [1, 1], [0, 1]], dtype=bool), 3)
    assert multi and Y.dtype == np.float32 and classes.tolist() == [0, 1]


def test_bad_parameters_name_the_value():
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    for name, param, value in [("ksh", "max_iter", -1), ("sdh", "nu", -1.0), ("cosdish", "n_columns", 0),
                               ("lfh", "beta", 0.0), ("sdh", "n_anchors", 0)]:
        with pytest.raises(ValidationError, match=f"{param} must be"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                small(name, n_bits=4, **{param: value}).fit(X, y)
