"""HyperAttention against exact attention (torch SDPA and a brute-force softmax), causality, bad input."""

from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch", reason="hashlearn.nn needs torch (pip install 'hashlearn[deep]')")
F = torch.nn.functional

from hashlearn.errors import HashlearnError, ValidationError  # noqa: E402
from hashlearn.nn import HyperAttention, angular_buckets, exact_attention, gray_rank, hyper_attention  # noqa: E402
from hashlearn.nn.attention import _exact_math  # noqa: E402
from hashlearn.nn.lsh import random_projections  # noqa: E402


def _qkv(B=2, H=3, n=1000, d=16, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, n, d, generator=g, dtype=dtype) for _ in range(3))


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def test_gray_rank_neighbours_differ_in_one_bit():
    rank = gray_rank(5)
    order = torch.argsort(rank)  # bucket ids in sort order
    assert sorted(rank.tolist()) == list(range(32))
    for a, b in zip(order[:-1].tolist(), order[1:].tolist()):
        assert bin(a ^ b).count("1") == 1


def test_angular_buckets_agree_with_hyperplane_signs():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 8, generator=g)
    proj = random_projections(8, 4, seed=1)
    ids = ((x @ proj) > 0).long() @ (2 ** torch.arange(4))
    assert torch.equal(angular_buckets(x, proj), gray_rank(4)[ids])


@pytest.mark.parametrize("causal", [False, True])
def test_fallback_below_min_seq_len_is_exact_and_logged(causal, caplog):
    q, k, v = _qkv(n=300)
    with caplog.at_level(logging.INFO, logger="hashlearn.nn.attention"):
        out = hyper_attention(q, k, v, causal=causal, min_seq_len=301)
    assert "exact attention" in caplog.text
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal))


@pytest.mark.parametrize("causal", [False, True])
def test_one_block_covering_every_key_is_exact(causal):
    q, k, v = _qkv(n=1000)
    out = hyper_attention(q, k, v, causal=causal, block_size=1000, sample_size=64, min_seq_len=10)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal))


def test_cross_attention_lengths_and_value_dim():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 2, 700, 16, generator=g, dtype=torch.float64)
    k = torch.randn(1, 2, 900, 16, generator=g, dtype=torch.float64)
    v = torch.randn(1, 2, 900, 24, generator=g, dtype=torch.float64)
    out = hyper_attention(q, k, v, block_size=900, min_seq_len=10)
    assert out.shape == (1, 2, 700, 24)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


def _concentrated(n=2048, d=32, B=1, H=2, seed=0, shuffle=True):
    """Unit-ish random keys; query i is 8x a key (key i, or a shuffled one): each row's mass is ~90% on it."""
    g = torch.Generator().manual_seed(seed)
    k = F.normalize(torch.randn(B, H, n, d, generator=g, dtype=torch.float64), dim=-1) * 3.0
    q = (k[:, :, torch.randperm(n, generator=g)] if shuffle else k) * 8.0
    v = torch.randn(B, H, n, d, generator=g, dtype=torch.float64)
    return q, k, v


def _uniform_error(v, exact):
    return _rel(v.mean(2, keepdim=True).expand_as(exact), exact)


def test_small_error_when_attention_is_concentrated():
    # query i's key is key i: same bucket and the same place in the stable sort, so always the same block
    q, k, v = _concentrated(shuffle=False)
    exact = F.scaled_dot_product_attention(q, k, v)
    kw = dict(block_size=128, n_projections=7, min_seq_len=256)
    assert _rel(hyper_attention(q, k, v, sample_size=128, **kw), exact) < 0.06
    # shuffled: query and key share a bucket but may land in neighbouring blocks of a big bucket
    q, k, v = _concentrated(shuffle=True)
    exact = F.scaled_dot_product_attention(q, k, v)
    kw["n_projections"] = 8
    err = _rel(hyper_attention(q, k, v, sample_size=128, **kw), exact)
    assert err < 0.35 < 0.9 < _uniform_error(v, exact)


def test_sampled_residual_lowers_error():
    q, k, v = _concentrated(shuffle=False, seed=1)
    v = v + 1.0  # a common component every row carries: the blocks alone under-weight it
    q = q * 0.4  # flatter rows: a third of the mass outside the block
    exact = F.scaled_dot_product_attention(q, k, v)
    kw = dict(block_size=128, n_projections=7, min_seq_len=256)
    blocks_only = _rel(hyper_attention(q, k, v, sample_size=0, **kw), exact)
    with_samples = _rel(hyper_attention(q, k, v, sample_size=512, **kw), exact)
    assert with_samples < blocks_only


def test_lse_matches_exact_when_one_block():
    q, k, v = _qkv(n=500)
    out, lse = hyper_attention(q, k, v, block_size=500, min_seq_len=10, return_lse=True)
    _, lse_exact = _exact_math(q, k, v, False, 0.25, None)
    torch.testing.assert_close(lse, lse_exact)


@pytest.mark.parametrize("n, pos", [(1000, 0), (1000, 499), (1000, 500), (1001, 777), (1000, 998)])
def test_causal_output_never_depends_on_future_keys(n, pos):
    q, k, v = _qkv(n=n, seed=pos)
    kw = dict(causal=True, block_size=32, sample_size=32, min_seq_len=64, seed=5)
    base = hyper_attention(q, k, v, **kw)
    k2, v2 = k.clone(), v.clone()
    g = torch.Generator().manual_seed(99)
    k2[:, :, pos + 1:] = 10 * torch.randn(k2[:, :, pos + 1:].shape, generator=g, dtype=k.dtype)
    v2[:, :, pos + 1:] += 7.0
    moved = hyper_attention(q, k2, v2, **kw)
    torch.testing.assert_close(moved[:, :, :pos + 1], base[:, :, :pos + 1], rtol=0, atol=1e-12)
    assert not torch.allclose(moved[:, :, pos + 1:], base[:, :, pos + 1:])  # the perturbation is visible later


def test_causal_first_rows_exact_and_error_bounded():
    q, k, v = _concentrated(n=1536, shuffle=False)
    exact = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out = hyper_attention(q, k, v, causal=True, block_size=64, sample_size=64, min_seq_len=128)
    torch.testing.assert_close(out[:, :, :128], exact[:, :, :128])  # the first leaf of the recursion is exact
    assert _rel(out, exact) < 0.1 < 0.9 < _uniform_error(v, exact)


def test_key_padding_mask_matches_masked_exact():
    q, k, v = _qkv(n=600)
    mask = torch.rand(2, 600, generator=torch.Generator().manual_seed(2)) > 0.4
    bias = torch.zeros(2, 3, 600, dtype=q.dtype).masked_fill(~mask[:, None], float("-inf"))
    ref, _ = _exact_math(q, k, v, False, 0.25, bias)
    torch.testing.assert_close(hyper_attention(q, k, v, key_padding_mask=mask, block_size=600, min_seq_len=8), ref)
    ref_c, _ = _exact_math(q, k, v, True, 0.25, bias)
    out_c = hyper_attention(q, k, v, causal=True, key_padding_mask=mask, block_size=600, min_seq_len=8)
    torch.testing.assert_close(out_c, ref_c)
    # the values of masked keys never matter, also when approximating (their keys still take part in the sort)
    v2 = v.clone()
    v2[~mask[:, None].expand(2, 3, 600)] = 1000.0
    kw = dict(key_padding_mask=mask, block_size=64, sample_size=64, min_seq_len=100, seed=1)
    for causal in (False, True):
        torch.testing.assert_close(hyper_attention(q, k, v2, causal=causal, **kw),
                                   hyper_attention(q, k, v, causal=causal, **kw))


def test_exact_attention_reference_and_fused_agree():
    q, k, v = _qkv(n=257)
    for causal in (False, True):
        o1, l1 = exact_attention(q, k, v, causal=causal)
        o2, l2 = _exact_math(q, k, v, causal, 0.25, None)
        torch.testing.assert_close(o1, o2)
        torch.testing.assert_close(l1, l2)


def test_same_seed_same_output_and_module_draws_fresh_samples():
    q, k, v = _qkv(n=800, dtype=torch.float32)
    kw = dict(block_size=64, sample_size=64, min_seq_len=100)
    torch.testing.assert_close(hyper_attention(q, k, v, seed=3, **kw), hyper_attention(q, k, v, seed=3, **kw))
    a, b = HyperAttention(seed=3, **kw), HyperAttention(seed=3, **kw)
    first = a(q, k, v)
    torch.testing.assert_close(first, b(q, k, v))
    assert not torch.equal(first, a(q, k, v))  # the module's generator advanced
    assert "block_size=64" in repr(a)


def test_gradients_flow():
    q, k, v = (t.float().requires_grad_() for t in _qkv(n=600))
    hyper_attention(q, k, v, causal=True, block_size=64, sample_size=64, min_seq_len=100).square().sum().backward()
    for t in (q, k, v):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


# -- bad input ----------------------------------------------------------------------------------------
def test_bad_shapes_name_the_shapes():
    q, k, v = _qkv(n=64)
    with pytest.raises(ValidationError, match=r"query of shape \(3, 64, 16\)"):
        hyper_attention(q[0], k, v)
    with pytest.raises(ValidationError, match=r"key \(2, 3, 64, 16\) and value \(2, 3, 63, 16\)"):
        hyper_attention(q, k, v[:, :, :63])
    with pytest.raises(ValidationError, match=r"head dims"):
        hyper_attention(q, k[..., :8], v)
    with pytest.raises(ValidationError, match=r"batch and head axes differ"):
        hyper_attention(q, k[:, :2], v[:, :2])
    with pytest.raises(ValidationError, match=r"causal attention needs as many queries as keys"):
        hyper_attention(q[:, :, :10], k, v, causal=True)
    with pytest.raises(ValidationError, match="one dtype"):
        hyper_attention(q.float(), k, v)


def test_bad_mask_nan_and_short_sequence():
    q, k, v = _qkv(n=64)
    with pytest.raises(ValidationError, match=r"key_padding_mask has shape \(2, 63\), expected .*\(2, 64\)"):
        hyper_attention(q, k, v, key_padding_mask=torch.ones(2, 63, dtype=torch.bool))
    with pytest.raises(ValidationError, match="bool"):
        hyper_attention(q, k, v, key_padding_mask=torch.ones(2, 64))
    bad = q.clone()
    bad[0, 0, 5, 1] = float("nan")
    with pytest.raises(ValidationError, match=r"query of shape \(2, 3, 64, 16\) contains NaN"):
        hyper_attention(bad, k, v)
    with pytest.raises(ValidationError, match=r"64 positions, shorter than one block \(block_size=256\)"):
        hyper_attention(q, k, v, min_seq_len=32)
    with pytest.raises(HashlearnError, match="block_size"):
        hyper_attention(q, k, v, block_size=0)


def test_row_gather_and_scatter_on_views_match_torch_gather():
    from hashlearn.nn.attention import _gather_rows, _scatter_rows

    g = torch.Generator().manual_seed(0)
    base = torch.randn(2, 3, 40, 8, generator=g)
    views = [base, base[:, :, 20:], base[:, :, :20], base.reshape(2, 6, 20, 8)[:, :, 5:15],
             base[:, :1].expand(2, 3, 40, 8), base.transpose(2, 3).contiguous().transpose(2, 3)]
    for x in views:
        idx = torch.stack([torch.randperm(x.shape[2], generator=g) for _ in range(x.shape[0] * x.shape[1])])
        idx = idx.view(x.shape[0], x.shape[1], -1)
        ref = torch.gather(x, 2, idx.unsqueeze(-1).expand(*idx.shape, x.shape[-1]))
        assert torch.equal(_gather_rows(x, idx), ref)
        assert torch.equal(_scatter_rows(ref, idx, x.shape[2]), x)
