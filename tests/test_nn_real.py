"""hashlearn.nn.real_bench: HyperAttention swapped into a BERT's self-attention, Q/K/V capture, the SciFact part."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="hashlearn.nn needs torch (pip install 'hashlearn[deep]')")
transformers = pytest.importorskip("transformers", reason="the BERT swap tests need transformers")

from hashlearn.errors import DataFileError  # noqa: E402
from hashlearn.nn.real_bench import (_hyper_fn, capture_qkv, key_padding_from_mask, real_rows,  # noqa: E402
                                     real_unavailable, swap_bert_attention)

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact"


def _tiny_bert():
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=128)
    model = transformers.BertModel(cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    ids = torch.randint(0, 50, (3, 100), generator=g)
    mask = torch.ones(3, 100, dtype=torch.long)
    mask[1, 60:] = 0
    mask[2, 10:] = 0
    return model, ids, mask


def test_swap_with_exact_settings_equals_exact_and_restores():
    model, ids, mask = _tiny_bert()
    keep = mask.bool()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).last_hidden_state
        with swap_bert_attention(model, [0, 1], _hyper_fn({"min_seq_len": 1000}, 0)):  # below min_seq_len: exact
            fallback = model(input_ids=ids, attention_mask=mask).last_hidden_state
        with swap_bert_attention(model, [1], _hyper_fn({"block_size": 100, "sample_size": 8, "min_seq_len": 16}, 0)):
            one_block = model(input_ids=ids, attention_mask=mask).last_hidden_state  # one block = every key
        with swap_bert_attention(model, [0, 1], _hyper_fn({"block_size": 8, "sample_size": 8, "min_seq_len": 16}, 0)):
            approx = model(input_ids=ids, attention_mask=mask).last_hidden_state
        after = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(fallback[keep], ref[keep], atol=1e-5)
    assert torch.allclose(one_block[keep], ref[keep], atol=1e-5)
    assert not torch.allclose(approx[keep], ref[keep], atol=1e-3)
    assert torch.equal(after, ref)
    assert all("forward" not in vars(layer.attention.self) for layer in model.encoder.layer)


def test_capture_records_every_layer_and_keeps_output():
    model, ids, mask = _tiny_bert()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).last_hidden_state
        with capture_qkv(model) as store:
            out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask.bool()
    assert torch.allclose(out[keep], ref[keep], atol=1e-5)
    assert sorted(store) == [0, 1] and all(len(v) == 1 for v in store.values())
    q, k, v, kpm, scale = store[0][0]
    assert q.shape == (3, 2, 100, 16) and scale == pytest.approx(16 ** -0.5)
    assert torch.equal(kpm, keep)


def test_key_padding_from_mask_formats():
    keep = torch.tensor([[True, True, False], [True, True, True]])
    bool4 = keep[:, None, None, :].expand(2, 1, 3, 3)
    add4 = torch.zeros(2, 1, 3, 3).masked_fill(~bool4, torch.finfo(torch.float32).min)
    assert torch.equal(key_padding_from_mask(bool4, 2, 3), keep)
    assert torch.equal(key_padding_from_mask(add4, 2, 3), keep)
    assert torch.equal(key_padding_from_mask(keep.long(), 2, 3), keep)
    assert key_padding_from_mask(None, 2, 3) is None
    assert key_padding_from_mask(torch.ones(2, 1, 3, 3, dtype=torch.bool), 2, 3) is None


def test_real_unavailable_names_the_missing_file(tmp_path):
    reason = real_unavailable(tmp_path)
    assert reason is not None and "corpus.jsonl" in reason
    with pytest.raises(DataFileError, match="corpus.jsonl"):
        real_rows(tmp_path, progress=False)


@pytest.mark.slow
def test_real_rows_on_scifact_subset():
    reason = real_unavailable(SCIFACT)
    if reason is not None:
        pytest.skip(reason)
    rows = real_rows(SCIFACT, max_docs=30, max_queries=4, layers=(6,), cls_layers=(6,), more_sizes=((128, 64),),
                     more_layers=6, error_passages=2, progress=False)
    err = [r for r in rows if r["kind"] == "layer_error"]
    ret = [r for r in rows if r["kind"] == "retrieval"]
    assert len(err) == 6 * 5 and {r["layer"] for r in err} == set(range(6))
    assert all(r["rel_error"] == 0 for r in err if r["method"] == "sdpa")
    assert all(0 < r["rel_error"] < 2 for r in err if r["method"] != "sdpa")
    assert [(r["method"], r["replaced_layers"], r.get("block_size")) for r in ret] == [
        ("sdpa", 0, None), ("hyper", 6, 32), ("hyper+cls", 6, 32), ("hyper", 6, 128), ("hyper+cls", 6, 128)]
    assert ret[0]["rel_error"] == 0
    for r in ret:
        assert {"part", "method", "n", "causal", "ms", "rel_error", "ndcg@10"} <= set(r)
        assert 0 <= r["ndcg@10"] <= 1 and r["docs"] == 30


def test_global_cls_variant_is_exact_when_hyper_is_exact_and_keeps_cls_mass():
    model, ids, mask = _tiny_bert()
    keep = mask.bool()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).last_hidden_state
        with swap_bert_attention(model, [0, 1], _hyper_fn({"min_seq_len": 1000}, 0, n_global=1)):
            out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(out[keep], ref[keep], atol=1e-5)  # exact on the rest + exact on [CLS] = exact
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 2, 128, 8, generator=g) for _ in range(3))
    c = 2 * torch.randn(8, generator=g)
    q = q + c  # a shared component: every query scores key 0 high, a sink
    k[:, :, 0] = 2 * c
    exact = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, -1) @ v
    kw = {"block_size": 16, "sample_size": 8, "min_seq_len": 32}
    plain = _hyper_fn(kw, 0)(q, k, v, None, 8 ** -0.5)
    sink = _hyper_fn(kw, 0, n_global=1)(q, k, v, None, 8 ** -0.5)
    assert float((sink - exact).norm()) < 0.5 * float((plain - exact).norm())
