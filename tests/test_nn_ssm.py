"""Diagonal SSM vs its recurrence, hashed sparse attention (causality, buckets, pair fraction), MQAR data."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="hashlearn.nn needs torch (pip install 'hashlearn[deep]')")

from hashlearn.errors import ValidationError  # noqa: E402
from hashlearn.nn.ssm import DiagonalSSM, HashedSparseAttention, mqar_batch  # noqa: E402


def test_ssm_equals_sequential_recurrence():
    ssm = DiagonalSSM(3, d_state=4, seed=1).double()
    x = torch.randn(2, 25, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = torch.sigmoid(ssm.a_logit)
    h = torch.zeros(2, 3, 4, dtype=torch.float64)
    ref = []
    for t in range(25):
        h = a * h + ssm.b * x[:, t].unsqueeze(-1)
        ref.append((ssm.c * h).sum(-1) + ssm.d * x[:, t])
    torch.testing.assert_close(ssm(x), torch.stack(ref, 1))


def test_hashed_attention_zero_bits_is_causal_attention_and_causal_always():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 30, 8, generator=g)
    full = HashedSparseAttention(8, n_heads=2, n_bits=0, seed=1)
    qk = full.qk(x).view(2, 30, 2, 4).transpose(1, 2)
    v = full.v(x).view(2, 30, 2, 4).transpose(1, 2)
    k = torch.nn.functional.normalize(qk, dim=-1)
    ref = torch.nn.functional.scaled_dot_product_attention(qk, k, v, is_causal=True)
    torch.testing.assert_close(full(x), full.out(ref.transpose(1, 2).reshape(2, 30, 8)))
    sparse = HashedSparseAttention(8, n_heads=2, n_bits=3, seed=1)
    base = sparse(x)
    x2 = x.clone()
    x2[:, 20:] += 3.0
    torch.testing.assert_close(sparse(x2)[:, :20], base[:, :20])
    assert 0 < sparse.last_pair_fraction < 0.6


def test_pair_fraction_shrinks_with_bits():
    x = torch.randn(1, 200, 16, generator=torch.Generator().manual_seed(2))
    fr = []
    for bits in (1, 2, 4):
        m = HashedSparseAttention(16, n_bits=bits, seed=0)
        m(x)
        fr.append(m.last_pair_fraction)
    assert fr[0] > fr[1] > fr[2]


def test_mqar_batch_targets_are_the_values_of_the_asked_keys():
    x, y = mqar_batch(5, 64, 6, 100, generator=torch.Generator().manual_seed(3))
    for i in range(5):
        pairs = dict(zip(x[i, 0:12:2].tolist(), x[i, 1:12:2].tolist()))
        asked = torch.nonzero(y[i] >= 0).squeeze(1)
        assert len(asked) == 6 and int(asked.min()) >= 12
        for p in asked.tolist():
            assert pairs[int(x[i, p])] == int(y[i, p])
    with pytest.raises(ValidationError, match="need seq_len >= 30"):
        mqar_batch(1, 20, 10, 100)


def test_mqar_rows_tiny_run_rows():
    from hashlearn.nn.ssm_bench import mqar_rows

    rows = mqar_rows(lengths=(24,), n_pairs=2, vocab=16, d_model=16, steps=3, batch=8, progress=False)
    by = {r["method"]: r for r in rows}
    assert set(by) == {"ssm", "ssm+hashed", "ssm+attention"}
    assert by["ssm+attention"]["pair_fraction"] == 1.0 and by["ssm"]["pair_fraction"] == 0.0
    assert 0.0 < by["ssm+hashed"]["pair_fraction"] < 1.0
    assert all(0.0 <= r["recall"] <= 1.0 and r["ms"] > 0 for r in rows)
