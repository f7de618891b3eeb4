"""hashlearn.robust attacks: budgets, t-mAP by hand, P2P moves codes toward the target, ProS-GAN bounds, errors."""

import numpy as np
import pytest

pytest.importorskip("torch")

from hashlearn.errors import NotFittedError, ValidationError
from hashlearn.registry import make_method
from hashlearn.robust import (HasherFunction, ProSGAN, adversarial_finetune, check_eps, dhta_codes, noise_attack,
                              p2p_codes, pgd_code_attack, random_targets, retrieval_map, targeted_map)


def _images(n=120, seed=0):
    """Tiny 8×8 'images' in [0, 1]: 3 classes, each a bright block in a different place plus noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    X = rng.uniform(0, 0.3, (n, 8, 8))
    for c in range(3):
        X[y == c, 2 * c : 2 * c + 3, 1:7] += 0.6
    return np.clip(X, 0, 1).reshape(n, -1).astype(np.float32), y


@pytest.fixture(scope="module")
def tiny_hasher():
    X, y = _images()
    # the MLP backbone (the small CNN collapses to one code on 120 tiny images)
    h = make_method("dpsh", n_bits=8, random_state=0, epochs=30, hidden=32, validation_fraction=0.0,
                    n_threads=1).fit(X, y)
    return h, X, y


def test_check_eps_bounds():
    assert check_eps(0.1) == 0.1
    assert check_eps(1.0) == 1.0
    for bad in (0, -0.1, 1.5, float("nan"), True):
        with pytest.raises(ValidationError, match="eps"):
            check_eps(bad)
    with pytest.raises(ValidationError, match=r"\(0, 255\]"):
        check_eps(300, data_range=(0, 255))


def test_targeted_map_by_hand():
    # database: 4 items, labels [0, 1, 1, 0]; codes chosen so that the query's Hamming distances are 0, 1, 2, 3
    db = np.array([[1, 1, 1], [1, 1, -1], [1, -1, -1], [-1, -1, -1]], dtype=np.int8)
    db_labels = np.array([0, 1, 1, 0])
    q = np.array([[1, 1, 1]], dtype=np.int8)
    # target 1: relevant at ranks 2 and 3 → AP = (1/2 + 2/3) / 2
    assert targeted_map(q, db, [1], db_labels) == pytest.approx((1 / 2 + 2 / 3) / 2)
    # target 0: relevant at ranks 1 and 4 → AP = (1 + 2/4) / 2
    assert targeted_map(q, db, [0], db_labels) == pytest.approx(0.75)
    assert retrieval_map(q, db, [0], db_labels) == pytest.approx(0.75)


def test_target_absent_from_database_is_refused():
    db = np.ones((4, 3), dtype=np.int8)
    with pytest.raises(ValidationError, match="target label 7 is absent from the database"):
        targeted_map(np.ones((1, 3), np.int8), db, [7], [0, 1, 1, 0])
    with pytest.raises(ValidationError, match="absent"):
        p2p_codes(np.array([5]), db, np.array([0, 1, 1, 0]))


def test_random_targets_differ_from_own_label_and_are_seeded():
    y = np.repeat(np.arange(4), 25)
    t = random_targets(y, range(4), random_state=3)
    assert np.all(t != y) and set(t) <= set(range(4))
    assert np.array_equal(t, random_targets(y, range(4), random_state=3))


def test_dhta_code_is_the_bitwise_majority():
    db = np.array([[1, 1, -1], [1, -1, -1], [-1, 1, -1], [1, 1, 1]], dtype=np.int8)
    labels = np.array([2, 2, 2, 0])
    codes = dhta_codes(np.array([2]), db, labels, n_anchor=9)
    assert codes.tolist() == [[1, 1, -1]]
    assert p2p_codes(np.array([0]), db, labels).tolist() == [[1, 1, 1]]


def test_noise_stays_within_budget_and_range():
    X, _ = _images(30)
    Xn = noise_attack(X, 0.05, random_state=0)
    assert np.abs(Xn - X).max() <= 0.05 + 1e-6
    assert Xn.min() >= 0 and Xn.max() <= 1


def test_p2p_moves_codes_toward_the_target(tiny_hasher):
    h, X, y = tiny_hasher
    f = HasherFunction(h, X)
    db = f.codes(X)
    q = np.arange(0, 120, 7)
    targets = random_targets(y[q], range(3), random_state=0)
    T = p2p_codes(targets, db, y, random_state=0)
    before = (f.codes(X[q]) != T).sum(1)
    Xa = pgd_code_attack(f, X[q], T, 0.3, n_iter=30)
    after = (f.codes(Xa) != T).sum(1)
    assert np.abs(Xa - X[q]).max() <= 0.3 + 1e-6 and Xa.min() >= 0 and Xa.max() <= 1
    assert after.mean() < before.mean()  # Hamming distance to the target code decreases
    assert targeted_map(f.codes(Xa), db, targets, y) > targeted_map(f.codes(X[q]), db, targets, y)


def test_prosgan_bounded_and_defence_runs(tiny_hasher):
    h, X, y = tiny_hasher
    f = HasherFunction(h, X)
    gan = ProSGAN(0.1, epochs=1, proto_steps=20, input_shape=(1, 8, 8), random_state=0).fit(f, X, y)
    targets = random_targets(y[:10], range(3), random_state=1)
    Xa = gan.perturb(X[:10], targets)
    assert Xa.shape == (10, 64)
    assert np.abs(Xa - X[:10]).max() <= 0.1 + 1e-6 and Xa.min() >= 0 and Xa.max() <= 1
    assert gan.prototypes_.shape == (3, 8) and set(np.unique(gan.prototypes_)) <= {-1, 1}
    with pytest.raises(ValidationError, match="absent"):
        gan.perturb(X[:1], np.array([9]))
    defended = adversarial_finetune(h, gan, X, y, epochs=1, random_state=0)
    assert defended is not h and defended.transform(X[:5]).shape == h.transform(X[:5]).shape
    assert any(not np.array_equal(defended.weights_[k], h.weights_[k]) for k in h.weights_)


def test_bad_budget_and_unfitted():
    X, y = _images(30)
    with pytest.raises(ValidationError, match="eps must be in"):
        ProSGAN(0).fit(None, X, y)
    with pytest.raises(ValidationError, match="eps must be in"):
        noise_attack(X, 2.0)
    with pytest.raises(NotFittedError):
        HasherFunction(make_method("dpsh", n_bits=8))
    with pytest.raises(NotFittedError):
        ProSGAN().perturb(X, y)
    with pytest.raises(ValidationError, match="outside the data range"):
        noise_attack(X * 3, 0.1)
