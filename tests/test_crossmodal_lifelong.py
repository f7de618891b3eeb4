"""dlch: class increments keep stored codes, old classes stay retrievable, new classes are learned; errors."""

from __future__ import annotations

import numpy as np
import pytest

import hashlearn
from hashlearn.codes import hamming_distances, pack
from hashlearn.crossmodal import DeepLifelongCrossModalHashing
from hashlearn.crossmodal.data import make_planted_views
from hashlearn.crossmodal.lifelong import center_bank
from hashlearn.errors import ValidationError
from hashlearn.io import persist
from hashlearn.metrics import hamming_ranking, mean_average_precision, relevance_from_labels

torch = pytest.importorskip("torch", reason="dlch trains with torch")

KW = dict(n_bits=16, hidden=64, epochs=30, increment_epochs=30, batch_size=64, n_threads=1, code_memory=20,
          replay_per_class=10)


def mean_ap(q, db, yq, ydb, nb=16):
    return mean_average_precision(relevance_from_labels(yq, ydb, hamming_ranking(hamming_distances(q, db, n_bits=nb))))


@pytest.fixture(scope="module")
def data():
    views, y = make_planted_views(900, n_clusters=6, latent_dim=8, dims=(24, 16), noise=0.3, random_state=5)
    return [v[:700] for v in views], y[:700], [v[700:] for v in views], y[700:]


@pytest.fixture(scope="module")
def two_sessions(data):
    X, y, _, _ = data
    old = y < 4
    m = DeepLifelongCrossModalHashing(random_state=0, **KW).fit([X[0][old], X[1][old]], y[old])
    before = {k: [a.copy() for a in getattr(m, k)] for k in ("memory_codes_", "exemplar_codes_")}
    db_old = [m.transform(X[v][old], view=v) for v in range(2)]
    m2 = persist.loads(persist.dumps(m))
    m.partial_fit([X[0][~old], X[1][~old]], y[~old])
    return m, m2, before, db_old


def test_stored_codes_of_old_items_are_bit_identical_after_an_increment(two_sessions):
    m, _, before, _ = two_sessions
    for key, old in before.items():
        for v in range(2):
            now = getattr(m, key)[v]
            np.testing.assert_array_equal(now[: len(old[v])], old[v])  # earlier codes untouched
            assert len(now) > len(old[v])  # the new classes' codes were appended
    assert m.memory_labels_[0].shape[1] == 6 and m.session_classes_ == [4, 2]


def test_old_queries_still_match_old_codes_and_new_classes_are_learned(two_sessions, data):
    m, _, _, db_old = two_sessions
    X, y, Q, yq = data
    old = y < 4
    db = [np.zeros((len(y), 1), np.uint64) for _ in range(2)]
    for v in range(2):
        db[v][old] = db_old[v]  # stored before the increment, never re-encoded
        db[v][~old] = m.transform(X[v][~old], view=v)
    q_old, q_new = yq < 4, yq >= 4
    for qv in (0, 1):
        qc = m.transform(Q[qv], view=qv)
        assert mean_ap(qc[q_old], db[1 - qv], yq[q_old], y) > 0.9
        assert mean_ap(qc[q_new], db[1 - qv], yq[q_new], y) > 0.9


def test_increment_equals_the_same_increment_on_a_reloaded_model(two_sessions, data):
    m, reloaded, _, _ = two_sessions
    X, y, _, _ = data
    reloaded.partial_fit([X[0][y >= 4], X[1][y >= 4]], y[y >= 4])
    for a, b in zip(m.layers_, reloaded.layers_):
        for wa, wb in zip(a, b):
            np.testing.assert_array_equal(wa, wb)
    assert persist.dumps(reloaded) == persist.dumps(m)


def test_new_classes_take_fresh_centres(two_sessions):
    m, _, _, _ = two_sessions
    C = m.centers_
    assert C.shape == (6, 16)
    assert len({tuple(c) for c in C}) == 6  # distinct centres
    np.testing.assert_array_equal(C, m.center_bank_[:6])


def test_center_bank_is_hadamard_rows_for_powers_of_two():
    bank = center_bank(16, np.random.default_rng(0))
    assert bank.shape == (32, 16)
    G = bank @ bank.T
    off = G[~np.eye(32, dtype=bool)]
    assert set(np.unique(off).tolist()) <= {-16.0, 0.0}  # orthogonal or antipodal
    assert np.all(np.abs(bank[:-2].sum(1)) == 0)  # balanced centres first, the constant rows last
    assert center_bank(12, np.random.default_rng(0)).shape == (256, 12)


def test_multilabel_increment(data):
    X, y, _, _ = data
    Y = np.eye(6, dtype=np.float32)[y]
    Y[:, 1] = np.maximum(Y[:, 1], Y[:, 0])  # class 0 items also carry label 1
    old = y < 4
    m = DeepLifelongCrossModalHashing(random_state=0, **{**KW, "epochs": 3, "increment_epochs": 2})
    m.fit([X[0][old], X[1][old]], Y[old][:, :4])
    with pytest.raises(ValidationError, match="must add classes: the label matrix has 4 columns"):
        m.partial_fit([X[0][~old], X[1][~old]], Y[~old][:, :4])
    with pytest.raises(ValidationError, match="give the increment's labels as a 0/1 matrix"):
        m.partial_fit([X[0][~old], X[1][~old]], y[~old])
    m.partial_fit([X[0][~old], X[1][~old]], Y[~old])
    np.testing.assert_array_equal(m.classes_, np.arange(6))


def test_increment_errors_leave_the_model_unchanged(data):
    X, y, _, _ = data
    old = y < 4
    m = DeepLifelongCrossModalHashing(random_state=0, **{**KW, "epochs": 2})
    m.fit([X[0][old], X[1][old]], y[old])
    state = persist.dumps(m)
    with pytest.raises(ValidationError, match="needs at least one new class; every label of the batch is one of the 4"):
        m.partial_fit([X[0][old][:20], X[1][old][:20]], y[old][:20])
    with pytest.raises(ValidationError, match="labels of view 0 have 5 rows but view 0 has 20 rows"):
        m.partial_fit([X[0][~old][:20], X[1][~old][:20]], y[~old][:5])
    with pytest.raises(ValidationError, match="pairs=None means every row is paired, but view 0 has 20 rows and "
                                              "view 1 has 19"):
        m.partial_fit([X[0][~old][:20], X[1][~old][:19]], y[~old][:20])
    with pytest.raises(ValidationError, match="24"):
        m.partial_fit([X[1][~old], X[1][~old]], y[~old])  # view 0 must have 24 features
    assert persist.dumps(m) == state


def test_partial_fit_on_an_unfitted_model_is_fit(data):
    X, y, _, _ = data
    kw = {**KW, "epochs": 2}
    a = DeepLifelongCrossModalHashing(random_state=1, **kw).partial_fit(X, y)
    b = DeepLifelongCrossModalHashing(random_state=1, **kw).fit(X, y)
    assert persist.dumps(a) == persist.dumps(b)


def test_too_many_classes_for_the_bits(data):
    X, y, _, _ = data
    m = DeepLifelongCrossModalHashing(**{**KW, "n_bits": 2, "epochs": 1})  # 2 bits: 4 centres
    with pytest.raises(ValidationError, match="6 classes need more hash centres than 2 bits give \\(4\\)"):
        m.fit(X, y)


@pytest.mark.parametrize("param, value, message", [
    ("increment_epochs", 0, "increment_epochs must be an integer >= 1 or None, got 0"),
    ("replay_per_class", -1, "replay_per_class must be an integer >= 0"),
    ("lifelong_weight", -0.5, "lifelong_weight must be a finite number >= 0"),
    ("code_memory", 0, "code_memory must be an integer >= 1"),
])
def test_parameter_errors(data, param, value, message):
    X, y, _, _ = data
    with pytest.raises(ValidationError, match=message):
        DeepLifelongCrossModalHashing(**{**KW, param: value}).fit(X, y)


def test_registered_and_exemplar_free_variant_works(data):
    X, y, _, _ = data
    m = hashlearn.make_hasher("dlch", n_bits=16, random_state=0, **{**{k: v for k, v in KW.items() if k != "n_bits"},
                                                                     "replay_per_class": 0, "epochs": 2})
    old = y < 4
    m.fit([X[0][old], X[1][old]], y[old]).partial_fit([X[0][~old], X[1][~old]], y[~old])
    assert m.exemplars_[0].shape == (0, 24) and m.requires_labels
    assert pack(m.margins(X[0][:3], view=0) > 0).shape == (3, 1)
