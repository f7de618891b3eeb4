"""hashlearn.nn.lm: the char transformer, HyperAttention swapped into its layers, perplexity, the lm bench rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="hashlearn.nn needs torch (pip install 'hashlearn[deep]')")
F = torch.nn.functional

from hashlearn.errors import ValidationError  # noqa: E402
from hashlearn.nn.lm import CharTransformer, lm_rows, perplexity, replace_attention, train_char_lm  # noqa: E402

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n" * 30


def _ids():
    vocab = sorted(set(TEXT))
    return np.array([vocab.index(c) for c in TEXT], dtype=np.int64), vocab


def _model(**kw):
    ids, vocab = _ids()
    return CharTransformer(len(vocab), d_model=16, n_layers=2, n_heads=2, seed=3, **kw), ids


def test_same_seed_same_weights_and_private_generator():
    state = torch.random.get_rng_state()
    a, _ = _model()
    b, _ = _model()
    assert torch.equal(state, torch.random.get_rng_state())  # no global RNG used
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)


@pytest.mark.parametrize("attention", ["exact", "ecoformer"])
def test_causal_future_tokens_do_not_change_past_logits(attention):
    model, ids = _model(attention=attention)
    x = torch.from_numpy(ids[:40]).unsqueeze(0)
    y = x.clone()
    y[0, 25:] = (y[0, 25:] + 1) % 5
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[0, :25], b[0, :25], atol=1e-6)
    assert not torch.allclose(a[0, 25:], b[0, 25:], atol=1e-4)


def test_hyper_swap_exact_settings_equal_exact_and_restored():
    model, ids = _model()
    x = torch.from_numpy(ids[:96]).unsqueeze(0)
    with torch.no_grad():
        exact = model(x)
        with replace_attention(model, "all", min_seq_len=512) as idx:  # n below min_seq_len: exact fallback
            assert idx == [0, 1]
            fallback = model(x)
        # one sortLSH block holding every key (block_size = n): the recursion's off-diagonal parts are exact
        with replace_attention(model, "all", block_size=96, sample_size=16, min_seq_len=16):
            one_block = model(x)
        with replace_attention(model, "half", block_size=8, sample_size=8, min_seq_len=16) as idx:
            assert idx == [1]
            approx = model(x)
        again = model(x)
    assert torch.allclose(fallback, exact, atol=1e-5)
    assert torch.allclose(one_block, exact, atol=1e-5)
    assert not torch.allclose(approx, exact, atol=1e-4)  # the approximation is really used
    assert torch.equal(again, exact) and all(b.attn.hyper is None for b in model.blocks)


def test_replace_attention_bad_layers():
    model, _ = _model()
    with pytest.raises(ValidationError, match="layers must be one of"):
        with replace_attention(model, "most"):
            pass


def test_perplexity_is_exp_of_mean_cross_entropy_by_hand():
    model, ids = _model()
    ctx = 32
    res = perplexity(model, ids[:200], ctx, max_windows=3)
    total, count = 0.0, 0
    with torch.no_grad():
        for w in range(3):
            seg = torch.from_numpy(ids[w * ctx: w * ctx + ctx + 1])
            logp = torch.log_softmax(model(seg[:-1].unsqueeze(0))[0].double(), -1)
            total -= float(logp[torch.arange(ctx), seg[1:]].sum())
            count += ctx
    assert res["tokens"] == count and res["windows"] == 3
    assert res["loss"] == pytest.approx(total / count, rel=1e-5)
    assert res["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)
    with pytest.raises(ValidationError, match="no window"):
        perplexity(model, ids[:10], ctx)


def test_training_lowers_loss_on_repetitive_text():
    model, ids = _model()
    before = perplexity(model, ids, 32, max_windows=4)["loss"]
    info = train_char_lm(model, ids, steps=40, context=32, batch=4, lr=1e-2, seed=0)
    after = perplexity(model, ids, 32, max_windows=4)["loss"]
    assert info["steps"] == 40 and info["train_s"] > 0
    assert after < before - 0.5


def test_lm_rows_toy_text_required_columns():
    rows = lm_rows(None, text_ids=_ids(), steps=3, context=48, d_model=16, n_heads=2, block_size=8, sample_size=8,
                   min_seq_len=16, eval_windows=2, progress=False)
    assert [(r["method"], r["layers"]) for r in rows] == [("sdpa", "none"), ("hyper", "half"), ("hyper", "all"),
                                                          ("ecoformer", "all")]
    for r in rows:
        assert {"part", "method", "n", "causal", "ms", "perplexity", "layers", "loss"} <= set(r)
        assert r["part"] == "lm" and r["n"] == 48 and r["causal"] is True and r["ms"] > 0
        assert r["perplexity"] == pytest.approx(math.exp(r["loss"]))
    assert rows[0]["train_s"] == rows[1]["train_s"]  # one exactly trained model, evaluated three ways
    eco = rows[-1]
    assert eco["softmax_mul"] > 0 and eco["ecoformer_mul"] > 0
    assert eco["mul_saved"] == pytest.approx(1 - eco["ecoformer_mul"] / eco["softmax_mul"])


def test_char_transformer_bad_shape():
    with pytest.raises(ValidationError, match="even dimension"):
        CharTransformer(10, d_model=12, n_heads=4)
    with pytest.raises(ValidationError, match="attention must be"):
        CharTransformer(10, d_model=16, n_heads=2, attention="hyper")


def test_lm_rows_rejects_context_shorter_than_a_block_before_training():
    with pytest.raises(ValidationError, match="shorter than one HyperAttention block"):
        lm_rows(None, text_ids=_ids(), steps=10_000, context=32, block_size=64, min_seq_len=16, progress=False)
