"""Functional hashing (hashlearn.apps.funchash): keys of equivalent candidates, tolerance and boundary
handling, failures, torch modules, the evaluation cache and the regularized-evolution demo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hashlearn.apps.funchash import (
    EvaluationCache,
    Expr,
    FunctionalHasher,
    LinearScaledMSE,
    equivalent_rewrite,
    feynman_dataset,
    hash_error_rates,
    mutate_expr,
    random_expr,
    regularized_evolution,
)
from hashlearn.errors import NotFittedError, ValidationError

x0, x1, x2 = Expr.var(0), Expr.var(1), Expr.var(2)


def found(h, stored, query) -> bool:
    """Would a cache holding ``stored`` answer a lookup of ``query``?"""
    return h.fingerprint(stored).key in h.fingerprint(query).lookup_keys


# -- expression trees -------------------------------------------------------------------------------
def test_expr_evaluates_like_numpy(rng):
    X = rng.uniform(0.5, 2.0, size=(50, 3))
    e = (x0 * (x1 + 1.0)) / Expr.apply("sqrt", x2) - Expr.apply("sin", x0)
    ref = X[:, 0] * (X[:, 1] + 1) / np.sqrt(X[:, 2]) - np.sin(X[:, 0])
    np.testing.assert_allclose(e.evaluate(X), ref, rtol=1e-14)
    assert e.n_vars() == 3 and e.size() == 11 and e.depth() == 4
    assert str(x0 + 2.0) == "(x0 + 2)"
    # a constant expression broadcasts to one value per row
    assert Expr.const(3.0).evaluate(X).shape == (50,)


def test_expr_replace_and_paths():
    e = x0 * (x1 + 1.0)
    assert len(e.paths()) == e.size()
    e2 = e.replace((1, 0), x2)
    assert str(e2) == "(x0 * (x2 + 1))" and str(e) == "(x0 * (x1 + 1))"  # immutable


def test_expr_bad_input():
    with pytest.raises(ValidationError, match="unknown operator"):
        Expr.apply("tan", x0)
    with pytest.raises(ValidationError, match="takes 2"):
        Expr.apply("add", x0)
    with pytest.raises(ValidationError, match="finite"):
        Expr.const(float("nan"))
    with pytest.raises(ValidationError, match="x2 but X has 2 columns"):
        (x0 + x2).evaluate(np.ones((3, 2)))


# -- the hash ---------------------------------------------------------------------------------------
def test_equivalent_forms_share_a_key_different_functions_do_not():
    h = FunctionalHasher(n_features=3, random_state=1).fit()
    a = x0 * (x1 + x2)
    b = x0 * x1 + x0 * x2  # distributivity: differs from a in the last bits
    c = x2 * x0 + x1 * x0
    assert found(h, a, b) and found(h, a, c)
    assert not found(h, a, x0 * x1 + x2)
    assert not found(h, a, a * 1.0001)  # 1e-4 relative: far beyond rtol=1e-6
    # the same key from a lambda, a row-wise scalar function and a tree
    hr = FunctionalHasher(n_features=3, call="rows", random_state=1).fit()
    hm = FunctionalHasher(n_features=3, call="matrix", random_state=1).fit()
    assert found(h, a, lambda u, v, w: u * (v + w))
    assert found(hr, a, lambda u, v, w: u * (v + w))
    assert found(hm, a, lambda X: X[:, 0] * (X[:, 1] + X[:, 2]))


def test_rewrites_rarely_split_and_mutations_rarely_collide():
    # Measured, not assumed. Rewrites are equal in real arithmetic but x/(x-x) = inf while its rewrite
    # x/((x*3)/3 - x) may be 1e16: a few pairs really differ in floating point. Noisy copies within the
    # neighbour-probing margin are always found; real mutations (checked on 4096 fresh points) almost
    # never collide (the probes can miss a small region where two functions differ).
    r = hash_error_rates(150, random_state=3)
    assert r["equivalent_pairs"] == 150 and r["split_lookup"] <= 5
    assert r["noisy_split_lookup"] == 0
    assert r["different_pairs"] == 150 and r["collision_rate"] <= 0.02


def test_a_lookup_misses_only_beyond_the_guaranteed_margin(rng):
    # The documented guarantee: if every coordinate of t differs by less than `boundary` cells (and at
    # most max_flips coordinates are ambiguous), a lookup finds the stored candidate.
    h = FunctionalHasher(n_features=3, low=1.0, high=5.0, random_state=2).fit()
    checked = 0
    for _ in range(300):
        e = random_expr(rng, 3, 4, p_leaf=0.2)
        e2 = equivalent_rewrite(e, rng)
        f1, f2 = h.fingerprint(e), h.fingerprint(e2)
        if f1.key in f2.lookup_keys:
            continue
        checked += 1
        c1, r1 = h.quantize(f1.values)
        c2, r2 = h.quantize(f2.values)
        finite = np.isfinite(f1.values) & np.isfinite(f2.values)
        gap = np.abs((c1 + r1) - (c2 + r2))[finite]
        assert (np.isfinite(f1.values) != np.isfinite(f2.values)).any() or gap.max() >= h.boundary \
            or f2.n_ambiguous > h.max_flips
    assert checked < 30


def test_random_rewrites_are_really_rewrites(rng):
    X = rng.uniform(1, 5, size=(200, 3))
    for _ in range(30):
        e = random_expr(rng, 3, 3)
        e2 = equivalent_rewrite(e, rng)
        a, b = e.evaluate(X), e2.evaluate(X)
        ok = np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True) | (a == b)
        assert ok.mean() > 0.99


def test_tolerance_is_relative_for_large_and_absolute_near_zero():
    h = FunctionalHasher(n_features=1, rtol=1e-6, atol=1e-9, random_state=0).fit()
    big = lambda x: 1e6 + 0 * x  # noqa: E731
    assert found(h, big, lambda x: 1e6 * (1 + 1e-12) + 0 * x)
    assert not found(h, big, lambda x: 1e6 * (1 + 1e-4) + 0 * x)
    zero = lambda x: 0 * x  # noqa: E731
    assert found(h, zero, lambda x: 1e-14 + 0 * x)
    assert not found(h, zero, lambda x: 1e-6 + 0 * x)


def _value_at_boundary(h, m, pos=0, cell=1000):
    """A value whose t-coordinate at output position ``pos`` lies exactly on a cell boundary."""
    off = h._cell_offsets(m)[pos]
    t = cell - off
    return float(h.atol / h.rtol * np.expm1(h.rtol * t))


def test_values_straddling_a_cell_boundary_are_found_through_neighbour_keys():
    h = FunctionalHasher(n_probes=4, n_features=1, random_state=0).fit()
    v = _value_at_boundary(h, 4)
    lo, hi = v * (1 - 1e-13), v * (1 + 1e-13)  # both within float noise of each other
    f_lo = lambda x: np.array([lo, 1.0, 2.0, 3.0])  # noqa: E731
    f_hi = lambda x: np.array([hi, 1.0, 2.0, 3.0])  # noqa: E731
    a, b = h.fingerprint(f_lo), h.fingerprint(f_hi)
    assert a.key != b.key  # the primary keys split ...
    assert a.n_ambiguous >= 1 and b.n_ambiguous >= 1
    assert a.key in b.lookup_keys and b.key in a.lookup_keys  # ... the lookup does not
    # without neighbour probing the same pair is a false split
    h0 = FunctionalHasher(n_probes=4, n_features=1, boundary=0.0, random_state=0).fit()
    assert h0.fingerprint(f_lo).key not in h0.fingerprint(f_hi).lookup_keys


def test_seeded_offsets_keep_round_numbers_off_cell_boundaries():
    # Without offsets an output of exactly 0 would sit on a cell boundary in every coordinate; with
    # them, 0 is ambiguous only at the base rate 2 * boundary.
    n_amb = 0
    for seed in range(20):
        h = FunctionalHasher(n_features=1, random_state=seed).fit()
        fp = h.fingerprint(lambda x: 0 * x)
        n_amb += fp.n_ambiguous
        assert len(fp.neighbours) == 2 ** min(fp.n_ambiguous, h.max_flips) - 1
    assert n_amb <= 20 * 32 * 2 * 1e-2 * 3 + 3


def test_nan_inf_and_exceptions_are_deterministic():
    h = FunctionalHasher(n_features=1, random_state=0).fit()
    nan1 = h.hash(lambda x: np.log(-1 - x * x))
    nan2 = h.hash(lambda x: x * np.nan)
    assert nan1 == nan2
    assert h.hash(lambda x: x / 0 * 0 + np.inf) != h.hash(lambda x: x * 0 - np.inf)
    # a partly non-finite output differs from both neighbours
    assert h.hash(lambda x: np.where(x > 0, np.nan, x)) != h.hash(lambda x: np.where(x > 0, 0.0, x))
    fp1 = h.fingerprint(lambda x: 1 / 0)
    fp2 = h.fingerprint(lambda x: [][1])
    assert fp1.error == "ZeroDivisionError" and fp2.error == "IndexError" and fp1.key != fp2.key
    assert h.fingerprint(lambda x: 1 // 0).key == fp1.key
    assert h.fingerprint(lambda x: "text").error == "TypeError"
    assert h.fingerprint(lambda x: x[:3]).error == "TypeError"  # wrong number of rows
    strict = FunctionalHasher(n_features=1, on_error="raise").fit()
    with pytest.raises(ZeroDivisionError):
        strict.hash(lambda x: 1 / 0)
    # huge finite values do not overflow the quantisation
    assert h.hash(lambda x: 1e308 + 0 * x) != h.hash(lambda x: 1e307 + 0 * x)


def test_seed_fixes_the_probes_and_keys():
    f = lambda x: np.sin(3 * x)  # noqa: E731
    a = FunctionalHasher(n_features=1, random_state=5).fit()
    b = FunctionalHasher(n_features=1, random_state=5).fit()
    c = FunctionalHasher(n_features=1, random_state=6).fit()
    assert a.hash(f) == b.hash(f) != c.hash(f)
    np.testing.assert_array_equal(a.probes_, b.probes_)


def test_fit_on_data_draws_probes_in_its_box(rng):
    X = rng.uniform([1, 10], [2, 20], size=(100, 2))
    h = FunctionalHasher(n_probes=64, random_state=0).fit(X)
    assert h.probes_.shape == (64, 2)
    assert np.all(h.probes_ >= X.min(axis=0)) and np.all(h.probes_ <= X.max(axis=0))
    # sqrt(x^2) == |x| == x on positive data: equivalent there
    assert found(h, Expr.apply("sqrt", Expr.apply("square", x0)), x0)


def test_hasher_validation():
    with pytest.raises(NotFittedError):
        FunctionalHasher().hash(lambda x: x)
    for bad in (dict(n_probes=0), dict(rtol=0), dict(atol=-1.0), dict(boundary=0.5), dict(max_flips=-1),
                dict(call="kwargs"), dict(on_error="ignore"), dict(low=1.0, high=1.0), dict(n_features=0)):
        with pytest.raises(ValidationError):
            FunctionalHasher(**bad).fit()
    with pytest.raises(ValidationError, match="candidate must be"):
        FunctionalHasher().fit().hash(42)
    with pytest.raises(ValidationError, match="NaN|finite"):
        FunctionalHasher().fit(np.array([[1.0], [np.nan]]))


# -- torch modules ----------------------------------------------------------------------------------
def test_torch_modules_hash_by_function_with_fixed_init():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(123)
    base = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    torch.manual_seed(999)  # different own weights: irrelevant after the fixed re-initialisation
    padded = nn.Sequential(nn.Linear(3, 8), nn.Identity(), nn.ReLU(), nn.ReLU(), nn.Linear(8, 1))
    tanh = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    wider = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    h = FunctionalHasher(n_probes=16, n_features=3, random_state=0).fit()
    before = [p.detach().clone() for p in base.parameters()]
    assert found(h, base, padded)
    assert not found(h, base, tanh) and not found(h, base, wider)
    for p, q in zip(before, base.parameters()):  # the user's module is not modified
        assert torch.equal(p, q)
    assert base[0].weight.dtype == torch.float32
    # reinit=False hashes the module's own weights: different weights, different keys
    hw = FunctionalHasher(n_probes=16, n_features=3, reinit=False, random_state=0).fit()
    assert not found(hw, base, padded)
    # the same with conv modules and a probe shape
    hc = FunctionalHasher(n_probes=4, n_features=(1, 6, 6), random_state=0).fit()
    c1 = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    c2 = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Identity(), nn.Flatten())
    assert hc.hash(c1) == hc.hash(c2)


# -- the cache --------------------------------------------------------------------------------------
def test_cache_counts_hits_and_skips_evaluations():
    calls = []

    def evaluate(f):
        calls.append(f)
        return float(np.sum(f(np.linspace(-1, 1, 11))))

    h = FunctionalHasher(n_features=1, random_state=0).fit()
    cache = EvaluationCache(evaluate, h)
    v1 = cache(lambda x: 2 * x + 1)
    v2 = cache(lambda x: x + x + 1)  # equivalent: cached
    cache(lambda x: x * x)  # new
    assert v1 == v2 and len(calls) == 2 and len(cache) == 2
    assert cache.stats["hits"] == 1 and cache.stats["calls"] == 3 and cache.hit_rate == pytest.approx(1 / 3)


def test_checking_mode_measures_false_collisions():
    # A deliberately coarse hash (cells ~ 5 x |v| wide, 2 probes) merges functions that differ by 1%;
    # checking mode re-evaluates every hit, counts the collision and still returns the cached value.
    coarse = FunctionalHasher(2, n_features=1, rtol=5.0, atol=1.0, boundary=0.0, low=1.0, high=2.0, random_state=0).fit()
    evaluate = lambda f: float(np.mean(f(np.linspace(1, 2, 5))))  # noqa: E731
    cache = EvaluationCache(evaluate, coarse, check=True)
    a = cache(lambda x: 100 * x)
    b = cache(lambda x: 101 * x)  # collides and is different
    assert b == a == 150.0
    assert cache.stats["hits"] == 1 and cache.stats["checked"] == 1 and cache.stats["false_collisions"] == 1
    assert cache.stats["evaluations"] == 2
    assert cache.false_collision_examples[0][1:] == (150.0, 151.5)
    fine = EvaluationCache(evaluate, FunctionalHasher(n_features=1, random_state=0).fit(), check=True)
    fine(lambda x: 100 * x)
    fine(lambda x: 50 * x + 50 * x)
    assert fine.stats["hits"] == 1 and fine.stats["false_collisions"] == 0


def test_syntactic_key_and_lru_eviction():
    cache = EvaluationCache(lambda e: e.size(), str, max_size=2)
    for e in (x0 + x1, x0 * x1, x1 + x0, x0 + x1):
        cache(e)
    # x1 + x0 is a different string: 3 misses, capacity 2 evicted x0 + x1 before it came again
    assert cache.stats["hits"] == 0 and len(cache) == 2
    with pytest.raises(ValidationError):
        EvaluationCache(42, str)
    with pytest.raises(ValidationError):
        EvaluationCache(len, str, max_size=0)
    with pytest.raises(NotFittedError):
        EvaluationCache(len, FunctionalHasher())


# -- the search loop --------------------------------------------------------------------------------
def test_linear_scaled_mse():
    X, y = feynman_dataset("I.14.3", 500, random_state=0)
    fit = LinearScaledMSE(X, y)
    exact = x0 * x1 * x2
    assert fit(exact) == pytest.approx(0.0, abs=1e-20)
    assert fit(3.0 * exact + 7.0) == pytest.approx(0.0, abs=1e-18)  # scale and offset are free
    assert fit(x0) > 0.1
    assert fit(x0 / (x1 - x1)) == math.inf
    with pytest.raises(ValidationError):
        LinearScaledMSE(np.ones((3, 2)), np.ones(2))
    with pytest.raises(ValidationError, match="unknown Feynman"):
        feynman_dataset("I.0.0")


def test_mutation_respects_size(rng):
    e = random_expr(rng, 2, 3)
    for _ in range(200):
        e = mutate_expr(e, rng, 2, max_size=15)
        assert e.size() <= 15 and e.n_vars() <= 2


def test_evolution_with_cache_is_the_same_search_with_fewer_evaluations():
    X, y = feynman_dataset("I.14.3", 2000, random_state=0)
    fitness = LinearScaledMSE(X, y)
    kw = dict(n_vars=3, population_size=30, sample_size=5, n_cycles=300, random_state=4)
    plain = regularized_evolution(fitness, **kw)
    again = regularized_evolution(fitness, **kw)
    np.testing.assert_array_equal(plain.history, again.history)  # seeded: reproducible
    h = FunctionalHasher(n_features=3, random_state=0).fit(X)
    cache = EvaluationCache(fitness, h, check=True)
    cached = regularized_evolution(cache, **kw)
    assert len(cached.history) == 330 and cache.stats["calls"] == 330
    assert cache.stats["hits"] > 0  # evolution does propose equivalent children
    assert cache.stats["false_collisions"] == 0
    np.testing.assert_allclose(cached.history, plain.history, rtol=1e-9)
    assert str(cached.best) == str(plain.best)
    assert np.all(np.diff(plain.best_so_far) <= 0)
    with pytest.raises(ValidationError):
        regularized_evolution(fitness, n_vars=3, population_size=5, sample_size=6)
