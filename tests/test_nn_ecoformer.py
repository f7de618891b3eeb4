"""EcoFormer attention: linear form = explicit bit-agreement attention, causality, training, op counts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="hashlearn.nn needs torch (pip install 'hashlearn[deep]')")

from hashlearn.errors import ValidationError  # noqa: E402
from hashlearn.nn import EcoFormerAttention, KernelizedHash, operation_counts  # noqa: E402


def _qkv(n=40, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, 3, n, d, generator=g, dtype=torch.float64) for _ in range(3))


def _explicit(hq, hk, v, causal, b):
    sim = (b + hq @ hk.transpose(-1, -2)) / 2  # agreeing bits, (B, H, Nq, Nk)
    if causal:
        sim = sim.masked_fill(torch.ones(sim.shape[-2:], dtype=torch.bool).triu(1), 0.0)
    return (sim @ v) / (sim.sum(-1, keepdim=True) + 1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_form_equals_quadratic_bit_agreement_attention(causal):
    q, k, v = _qkv()
    attn = EcoFormerAttention(8, n_bits=6, n_anchors=12, seed=1).double()
    out = attn(q, k, v, causal=causal)
    hq, hk = attn.hash(q).detach(), attn.hash(k).detach()
    assert set(hq.unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(out, _explicit(hq, hk, v, causal, 6))


def test_codes_add_only_product():
    """H_k^T V by additions and subtractions of value rows equals the matrix product with the codes."""
    q, k, v = _qkv()
    h = KernelizedHash(8, n_bits=5, n_anchors=10).double()(k).detach()
    added = torch.stack([v[..., h[0, 0, :, j] > 0, :].sum(-2) - v[..., h[0, 0, :, j] < 0, :].sum(-2)
                         for j in range(5)], dim=-2)[0, 0]
    torch.testing.assert_close(added, (h.transpose(-1, -2) @ v)[0, 0])


def test_causal_never_depends_on_the_future():
    q, k, v = _qkv(n=30)
    attn = EcoFormerAttention(8, n_bits=8, n_anchors=16).double()
    base = attn(q, k, v, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 20:] += 5.0
    v2[:, :, 20:] -= 3.0
    torch.testing.assert_close(attn(q, k2, v2, causal=True)[:, :, :20], base[:, :, :20])


def test_trainable_end_to_end_and_hash_loss_decreases():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=g) * 2
    lab = torch.randint(4, (1, 1, 64), generator=g)
    x = (centres[lab] + 0.3 * torch.randn(1, 1, 64, 8, generator=g))
    attn = EcoFormerAttention(8, n_bits=8, n_anchors=16, seed=0)
    opt = torch.optim.Adam(attn.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = attn.hash_loss(x * 2, x, top=4)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(attn.hash_loss(x * 2, x, top=4)) < 0.7 * first
    out = attn(x, x, x)  # gradients reach the hash parameters through the straight-through sign
    out.square().sum().backward()
    assert attn.hash.weight.grad is not None and attn.hash.weight.grad.abs().sum() > 0


def test_operation_counts():
    c = operation_counts(1024, 64, n_bits=16, n_anchors=64)
    assert c["softmax_mul"] == 2 * 1024 * 1024 * 64 + 1024 * 1024
    assert c["ecoformer_mul"] < c["softmax_mul"] / 10 and 0 < c["mul_saved"] < 1
    causal = operation_counts(1024, 64, causal=True)
    assert causal["softmax_mul"] < c["softmax_mul"] and causal["ecoformer_add"] > c["ecoformer_add"]


def test_bad_input():
    q, k, v = _qkv()
    attn = EcoFormerAttention(8).double()
    with pytest.raises(ValidationError, match=r"query \(2, 3, 40, 8\) and key \(2, 3, 40, 4\)"):
        attn(q, k[..., :4], v)
    with pytest.raises(ValidationError, match="dimension 4, expected 8"):
        KernelizedHash(8)(torch.zeros(3, 4))
    with pytest.raises(ValidationError, match="n_bits"):
        KernelizedHash(8, n_bits=0)
