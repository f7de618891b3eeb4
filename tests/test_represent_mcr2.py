"""hashlearn.represent.mcr2: coding rates against brute-force formulas, Sinkhorn marginals, MLC on tiny data."""

import numpy as np
import pytest

pytest.importorskip("torch")

from hashlearn.errors import ValidationError  # noqa: E402
from hashlearn.represent.mcr2 import (ManifoldClustering, coding_rate, coding_rate_reduction, sinkhorn,  # noqa: E402
                                      subspace_coherence)


def _subspace_data(rng, n_per=40, d=12, k=3, r=2):
    """k mutually orthogonal r-dim subspaces of R^d, unit-norm rows."""
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    Z, y = [], []
    for c in range(k):
        B = basis[:, c * r:(c + 1) * r]
        Z.append(rng.standard_normal((n_per, r)) @ B.T)
        y += [c] * n_per
    Z = np.vstack(Z)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True), np.asarray(y)


def test_coding_rate_matches_gram_form():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((7, 4))
    eps = 0.7
    n, d = Z.shape
    # Sylvester: logdet(I_d + a ZᵀZ) = logdet(I_n + a Z Zᵀ) — the n × n form, computed independently
    brute = 0.5 * np.log(np.linalg.det(np.eye(n) + d / (n * eps**2) * Z @ Z.T))
    assert coding_rate(Z, eps) == pytest.approx(brute, rel=1e-10)


def test_rate_reduction_matches_loop_formula():
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((9, 3))
    Pi = rng.random((9, 4))
    eps, (n, d) = 0.5, Z.shape
    rc = 0.0
    for j in range(4):
        t = Pi[:, j].sum()
        Zj = Z * np.sqrt(Pi[:, j])[:, None]
        rc += t / (2 * n) * np.log(np.linalg.det(np.eye(n) + d / (t * eps**2) * Zj @ Zj.T))
    assert coding_rate_reduction(Z, Pi, eps) == pytest.approx(coding_rate(Z, eps) - rc, rel=1e-10)


def test_perfect_membership_beats_random_on_orthogonal_subspaces():
    rng = np.random.default_rng(2)
    Z, y = _subspace_data(rng)
    perfect = np.eye(3)[y]
    random = rng.dirichlet(np.ones(3), size=y.size)
    shuffled = np.eye(3)[rng.permutation(y)]
    dr = coding_rate_reduction(Z, perfect)
    assert dr > coding_rate_reduction(Z, random) + 0.5
    assert dr > coding_rate_reduction(Z, shuffled) + 0.5


def test_sinkhorn_marginals_and_masked_diagonal():
    rng = np.random.default_rng(3)
    L = rng.standard_normal((6, 6))
    np.fill_diagonal(L, -np.inf)
    G = sinkhorn(L, n_iter=200)
    assert np.allclose(G.sum(1), 1, atol=1e-8) and np.allclose(G.sum(0), 1, atol=1e-8)
    assert np.all(np.diag(G) == 0) and (G >= 0).all()
    R = sinkhorn(rng.standard_normal((8, 4)), n_iter=200, row_sum=1.0)  # rectangular: columns sum to n / m
    assert np.allclose(R.sum(1), 1, atol=1e-8) and np.allclose(R.sum(0), 2, atol=1e-8)
    with pytest.raises(ValidationError, match="all -inf"):
        sinkhorn(np.full((2, 2), -np.inf))


def test_subspace_coherence_orthogonal_vs_identical():
    rng = np.random.default_rng(4)
    Z, y = _subspace_data(rng)
    assert subspace_coherence(Z, y) < 1e-8
    same = np.vstack([Z[y == 0], Z[y == 0]])
    assert subspace_coherence(same, np.repeat([0, 1], (y == 0).sum())) == pytest.approx(1.0)


def test_manifold_clustering_tiny_fit_predict_transform():
    rng = np.random.default_rng(5)
    Z, y = _subspace_data(rng, n_per=30)
    m = ManifoldClustering(3, dim=6, hidden=32, pretrain_steps=5, steps=5, batch_size=32, random_state=0).fit(Z)
    assert m.labels_.shape == (90,) and set(m.labels_) <= {0, 1, 2}
    assert m.transform(Z).shape == (90, 6)
    assert np.allclose(np.linalg.norm(m.transform(Z), axis=1), 1, atol=1e-5)
    assert m.predict(Z[:7]).shape == (7,)
    assert m.loss_.size == 10 and m.delta_r_.size == 5
    again = ManifoldClustering(3, dim=6, hidden=32, pretrain_steps=5, steps=5, batch_size=32, random_state=0).fit(Z)
    assert np.array_equal(again.labels_, m.labels_)


def test_manifold_clustering_bad_input():
    X = np.zeros((5, 3), dtype=np.float32)
    with pytest.raises(ValidationError, match="n_clusters=6 is more than the 5 samples"):
        ManifoldClustering(6).fit(X)
    with pytest.raises(ValidationError, match="finite"):
        ManifoldClustering(2).fit(np.full((5, 3), np.nan))
    m = ManifoldClustering(2, dim=2, hidden=8, pretrain_steps=1, steps=1, random_state=0).fit(np.random.rand(8, 3))
    with pytest.raises(ValidationError, match="fitted on 3"):
        m.predict(np.zeros((2, 4)))
