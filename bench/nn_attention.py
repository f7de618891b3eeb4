"""Attention benchmark (issue 16): HyperAttention vs exact SDPA — a thin wrapper around hashlearn.nn.bench.

Writes every row to ``--json``, the plot to ``--plots`` and the Markdown section ``bench/sections/nn.md``.

Usage::

    /work/notes/heavy python bench/nn_attention.py --part speed --json bench/out/nn_speed.json --plots bench/plots
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (command_line, machine_info, machine_summary, markdown_table, now_iso,  # noqa: E402
                    write_json)

SECTION = Path(__file__).resolve().parent / "sections" / "nn.md"
HEADER = "## Hashing inside models: HyperAttention, LSH-MoE (issue 16)\n"


def _find(rows, method, n, heads, causal):
    for r in rows:
        if (r["method"], r["n"], r["heads"], r["causal"]) == (method, n, heads, causal):
            return r
    return None


def _target_line(rows, n, causal, goal):
    r = _find(rows, "hyper", n, 1, causal)
    if r is None:
        return f"- Target at n = {n:,} ({'causal' if causal else 'non-causal'}): not measured."
    met = "met" if r["speedup"] >= goal else "**not met**"
    return (f"- Target ≥ {goal:g}× at n = {n:,} {'causal' if causal else 'non-causal'} (1 head): "
            f"{r['speedup']:.2f}× ({r['ms']:.1f} ms vs SDPA {_find(rows, 'sdpa', n, 1, causal)['ms']:.1f} ms) "
            f"— {met}; "
            f"relative error {r['rel_error']:.3f} on Gaussian inputs, {r['rel_error_concentrated']:.3f} on "
            f"concentrated inputs.")


def _header(result, command, info) -> list[str]:
    return [
        f"Command: `{command}`", "",
        f"Date {result.get('date') or now_iso()}; {machine_summary(info)} torch {__import__('torch').__version__}, "
        f"**{result['threads']} torch thread**. Load average (1/5/15 min) at start "
        f"{[round(x, 2) for x in result['load_start']]}, at end {[round(x, 2) for x in result['load_end']]} "
        "(the machine is shared with other benchmarks).", ""]


def _moe_target(method, mean_bytes, held) -> str:
    ratio = mean_bytes["moe"] / mean_bytes[method]
    dloss = held[method]["loss"] / held["moe"]["loss"] - 1.0
    ok = "met" if ratio >= 2 and dloss <= 0.01 else "**not met**"
    return (f"- Target ≥ 2× fewer bytes at ≤ 1% higher held-out loss, `{method}`: {ratio:.2f}× fewer bytes, "
            f"held-out loss {dloss * 100:+.2f}% — {ok}.")


def moe_section(result, command: str, info: dict, plots: list[str]) -> str:
    rows = result["rows"]
    held = {r["method"]: r for r in rows if r["step"] == "heldout"}
    steps = {m: [r for r in rows if r["method"] == m and r["step"] != "heldout"] for m in held}
    n_steps = len(steps["moe"])
    mean_bytes = {m: sum(r["bytes"] for r in v) / len(v) for m, v in steps.items()}
    last = {m: sum(r["loss"] for r in v[-20:]) / len(v[-20:]) for m, v in steps.items()}
    table = [{"method": m, "held-out loss": held[m]["loss"], "train loss (last 20 steps)": last[m],
              "all-to-all bytes / step (mean)": int(mean_bytes[m])} for m in held]
    lines = ["### Part `moe`", ""] + _header(result, command, info) + [
        f"Tiny character LM on Tiny Shakespeare (first 90% train, last 10% held out, 8,192 held-out windows): the "
        f"previous 8 characters embedded (16 each), projected to d = 64, then `x + LSHMoE(x)` (2 FFN experts, "
        f"hidden 128, top-1 gate) and a softmax head; Adam 3e-3, {n_steps} steps of {steps['moe'][0]['tokens']:,} "
        "windows, the same "
        "initial weights and batches for every run. `lsh-moe-h*` sends cross-polytope LSH cluster centroids "
        "(`-h1`: 1 rotation, at most 128 clusters per expert; `-h2`: 2 rotations) instead of tokens and restores "
        "with residual compensation; bytes = "
        "rows crossing the all-to-all (dispatch + combine) × 64 × 4 B, counted in the layer as if every expert "
        "lived on another process (the real 2-process gloo exchange of `distributed_forward`, checked against a "
        "single-process run in the tests, sends only the rows bound for the other rank). Model size is tiny "
        "on purpose (shared 2-core CPU).", "",
        markdown_table(table, list(table[0])), "",
    ] + [_moe_target(m, mean_bytes, held) for m in held if m != "moe"] + [""]
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def ssm_section(result, command: str, info: dict, plots: list[str]) -> str:
    rows = result["rows"]
    table = [{"method": r["method"], "n": r["n"], "recall": r["recall"], "pair_fraction": r["pair_fraction"],
              "ms / step": r["ms"], "steps": r["steps"]} for r in rows]
    lines = ["### Part `ssm`", ""] + _header(result, command, info) + [
        "MQAR (Zoology): key-value pairs then each key asked again later; `recall` = accuracy of the value at "
        "the query positions of 256 held-out sequences (chance = 1 / (vocab / 2)). Model: embedding → diagonal SSM "
        "block → [nothing | LSH-bucketed attention, 2 bits | full causal attention] → SSM block → head, d = 64, "
        "Adam 3e-3, fresh batches of 32; `pair_fraction` = scored (query, key) pairs / dense causal pairs "
        "(attention FLOPs relative to dense; the buckets come from fixed hyperplanes on the learned shared query/key "
        "projection, so training can move most keys into one bucket and raise it). Tiny, short training on a shared "
        "CPU: these are smoke-level numbers, far from the MQAR regime of the seed.",
        "", markdown_table(table, list(table[0])), ""]
    for r in rows:
        if r["method"] == "ssm+hashed":
            alone = next(x for x in rows if x["method"] == "ssm" and x["n"] == r["n"])
            ok = r["recall"] >= 0.9 and alone["recall"] < 0.5 and r["pair_fraction"] <= 0.25
            lines.append(f"- n = {r['n']}: SSM + hashed attention recall {r['recall']:.3f} (SSM alone "
                         f"{alone['recall']:.3f}) scoring {r['pair_fraction'] * 100:.1f}% of the dense causal pairs; "
                         f"target ≥ 90% recall at ≤ 25% of the pairs where the SSM alone is below 50% — "
                         f"{'met' if ok else '**not met**'}.")
    lines.append("")
    return "\n".join(lines) + "\n"


def lm_section(result, command: str, info: dict, plots: list[str]) -> str:
    rows = result["rows"]
    base = next(r for r in rows if r["method"] == "sdpa")
    table = [{"method": r["method"], "layers": f"{r['layers']} {r['replaced']}", "n": r["n"],
              "perplexity": f"{r['perplexity']:.3f}", "× exact": f"{r['perplexity'] / base['perplexity']:.3f}",
              "loss (nats/char)": r["loss"], "ms / window": r["ms"], "train steps": r["steps"],
              "train s": r["train_s"]} for r in rows]
    hyp = next((r for r in rows if r["method"] == "hyper"), base)
    eco = next(r for r in rows if r["method"] == "ecoformer")
    lines = ["### Part `lm`", ""] + _header(result, command, info) + [
        f"Causal character transformer on Tiny Shakespeare (first 90% train, last 10% held out): {base['n_layers']} "
        f"pre-LN blocks, d = {base['d_model']}, {base['n_heads']} heads of {base['d_model'] // base['n_heads']}, "
        f"rotary positions, MLP 4d; context n = {base['n']:,} characters, batch {base['batch']} window(s) per step, "
        f"AdamW (lr 2e-3, warm-up 5%, cosine to 10%), {base['steps']} steps (the exact model trained in "
        f"{base['train_s']:.0f} s, {base['ms_per_step']:.0f} ms/step). Held-out perplexity = exp(mean "
        f"cross-entropy) over {base['windows']} non-overlapping held-out windows ({base['tokens']:,} characters). "
        "`sdpa`/`hyper` rows: the same exactly trained model, HyperAttention swapped in (no fine-tuning) for the "
        "layers listed (`half` = the last half, as the paper replaces the final layers of chatglm2-32k); "
        f"HyperAttention block_size {hyp.get('block_size')}, sample_size {hyp.get('sample_size')}, "
        f"min_seq_len {hyp.get('min_seq_len')} (the causal recursion computes diagonal blocks of ≤ min_seq_len "
        "exactly and approximates every off-diagonal block by sortLSH blocks + sampled columns: a query's "
        "keys in its own aligned min_seq_len block are exact, the older ones approximated; a character model "
        "leans mostly on the recent characters, which is why the swap costs little here). `ecoformer`: a "
        "second model of the same shape trained from scratch with EcoFormer attention in every layer "
        f"({eco['eco_bits']}-bit kernelized hash, {eco['eco_anchors']} anchors), same initial projections, "
        f"batches and steps ({eco['train_s']:.0f} s, {eco['ms_per_step']:.0f} ms/step). `ms / window` = forward "
        "time of one window (whole model, 1 thread).", "",
        markdown_table(table, list(table[0])), ""]
    for r in rows:
        if r["method"] == "hyper" and r["layers"] == "half":
            ratio = r["perplexity"] / base["perplexity"]
            lines.append(f"- Target held-out perplexity with half the layers replaced ≤ 1.10× exact: "
                         f"{r['perplexity']:.3f} vs {base['perplexity']:.3f} = {ratio:.3f}× — "
                         f"{'met' if ratio <= 1.10 else '**not met**'}.")
    dl = eco["loss"] / base["loss"] - 1.0
    lines.append(f"- Target EcoFormer LM within 5% of the exact model's held-out loss: {eco['loss']:.4f} vs "
                 f"{base['loss']:.4f} nats/char ({dl * 100:+.1f}%) — {'met' if dl <= 0.05 else '**not met**'}. "
                 f"Attention multiplications per forward (all heads and layers, n = {eco['n']:,}): softmax "
                 f"{eco['softmax_mul']:,} vs EcoFormer {eco['ecoformer_mul']:,} ({eco['mul_saved'] * 100:.1f}% saved; "
                 "the ±1 code products become additions). Its similarity is the number of agreeing bits "
                 f"(0..{eco['eco_bits']}), so a typical key already scores about half the maximum: the attention "
                 "cannot concentrate on the few recent characters a character model needs.")
    lines.append("")
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def real_section(result, command: str, info: dict, plots: list[str]) -> str:
    rows = result["rows"]
    ret = [r for r in rows if r["kind"] == "retrieval"]
    err = [r for r in rows if r["kind"] == "layer_error"]
    base = ret[0]
    hyp = next(r for r in ret if r["method"] == "hyper")
    ret_table = [{"method": r["method"], "block / sample": f"{r['block_size']} / {r['sample_size']}"
                  if "block_size" in r else "—", "last layers replaced": r["replaced_layers"], "nDCG@10": r["ndcg@10"],
                  "Δ vs exact": r["ndcg@10"] - base["ndcg@10"], "passage-embedding rel_error": r["rel_error"],
                  "encode s": r["ms"] / 1e3} for r in ret]
    sizes = list(dict.fromkeys((x["block_size"], x["sample_size"]) for x in err if x["method"] != "sdpa"))

    def _err(layer, method, size, key):
        return next(x[key] for x in err if x["layer"] == layer and x["method"] == method
                    and (x["block_size"], x["sample_size"]) == size)

    err_table = []
    for r in err:
        if r["method"] == "sdpa":
            row = {"layer": r["layer"], "sdpa ms / passage": r["ms"],
                   f"hyper {sizes[0][0]}/{sizes[0][1]} ms / passage": _err(r["layer"], "hyper", sizes[0], "ms")}
            for size in sizes:
                for method in ("hyper", "hyper+cls"):
                    row[f"{method} {size[0]}/{size[1]}"] = _err(r["layer"], method, size, "rel_error")
            err_table.append(row)
    lines = ["### Part `real`", ""] + _header(result, command, info) + [
        f"all-MiniLM-L6-v2 (6 layers, 12 heads of 32 dims, passages cut at 256 tokens; mean passage length "
        f"{base['n']:.0f} tokens) on BEIR SciFact, the {base['queries']} judged test queries against "
        f"{base['docs']:,} passages (every passage judged relevant for a test query plus random others, seeded; "
        "`--max-docs 0` encodes all 5,183 — the subsample raises the absolute nDCG, the exact model in the same "
        "run is the baseline). HyperAttention replaces the self-attention of the last L layers (queries and "
        "passages both; the module's own Q/K/V projections, the padding as a key mask), with block_size "
        f"{hyp.get('block_size')}, sample_size {hyp.get('sample_size')}, min_seq_len {hyp.get('min_seq_len')}, "
        f"{hyp.get('n_projections')} hyperplanes (larger block and sample sizes with the last 3 layers replaced, "
        "rows below): at the library defaults (min_seq_len 1,024) every MiniLM input "
        "(≤ 256 tokens) would fall back to exact attention and the nDCG would equal the exact one by construction, "
        "so the bench scales the blocks to the length to exercise the approximation. Short queries (claims, "
        "< min_seq_len tokens) are attended exactly. `hyper+cls`: the same HyperAttention on every key but "
        "[CLS], and [CLS] (MiniLM's attention sink: about a third of each row's mass) attended exactly by every "
        "query, the two merged by their log-sum-exps.", "",
        markdown_table(ret_table, list(ret_table[0])), "",
        f"Attention output error per layer: Q/K/V captured from the exact model on the {err[0]['passages']} "
        "longest passages (one at a time, no padding), each layer's output recomputed with HyperAttention "
        "(columns: method block_size/sample_size); `rel_error` = ‖hyper − exact‖_F / ‖exact‖_F over those "
        "passages.", "",
        markdown_table(err_table, list(err_table[0])), ""]
    for three in (r for r in ret if r["replaced_layers"] == 3 and r["method"] != "sdpa"):
        d = three["ndcg@10"] - base["ndcg@10"]
        lines.append(f"- Target nDCG@10 within 0.01 of exact with the last 3 layers replaced, `{three['method']}` "
                     f"block {three['block_size']} / sample {three['sample_size']}: "
                     f"{three['ndcg@10']:.4f} vs {base['ndcg@10']:.4f} ({d:+.4f}) — "
                     f"{'met' if d >= -0.01 else '**not met**'}.")
    lines.append("- With the library defaults (min_seq_len 1,024) every MiniLM input is shorter than min_seq_len: "
                 "the swapped model computes exact attention and its nDCG@10 equals the exact model's (met only "
                 "by falling back; nothing is approximated at these lengths, and nothing is gained either: at "
                 "n ≤ 256 HyperAttention is slower than the fused exact kernel, see the ms columns).")
    lines.append("")
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _replace_block(text: str, name: str, body: str) -> str:
    start, end = f"<!-- nn-{name}:start -->", f"<!-- nn-{name}:end -->"
    block = f"{start}\n{body}{end}\n"
    if start in text and end in text:
        return text[:text.index(start)] + block + text[text.index(end) + len(end) + 1:]
    return text + "\n" + block


def section(result, command: str, info: dict, plots: list[str]) -> str:
    rows = result["rows"]
    cols = ["method", "n", "heads", "causal", "ms", "speedup", "rel_error", "rel_error_concentrated"]
    table_rows = [{**r, "causal": "yes" if r["causal"] else "no", "speedup": f"{r['speedup']:.2f}×"} for r in rows]
    lines = [
        "### Part `speed`", "",
        f"Command: `{command}`", "",
        f"Date {result.get('date') or now_iso()}; {machine_summary(info)} torch {__import__('torch').__version__}, "
        f"**{result['threads']} torch thread** for both methods. Load average (1/5/15 min) at start "
        f"{[round(x, 2) for x in result['load_start']]}, at end {[round(x, 2) for x in result['load_end']]} "
        "(the machine is shared: absolute times are noisy, the ratio is measured in the same run).", "",
        "Peer: exact `torch.nn.functional.scaled_dot_product_attention` (torch's fused flash-attention CPU "
        f"kernel) on the same inputs, interleaved with HyperAttention, best of {rows[0].get('repeat', 3)} calls "
        "after a warm-up. "
        "Batch 1, d = 64, float32. HyperAttention defaults: block_size 256, sample_size 256, 7 hyperplanes, "
        "min_seq_len 1024 (exact below it and at the leaves of the causal recursion). `rel_error` = "
        "‖out − exact‖_F / ‖exact‖_F on the timed i.i.d. Gaussian inputs (nearly uniform attention: a sparse "
        "method cannot be accurate there, as the issue notes); `rel_error_concentrated` on inputs where query i "
        "is 8 × key i (key norm 3, random directions): the self-key scores 9 against N(0, 1.125²) for the others, "
        "so its expected share of the row mass falls from about 80% at n = 1,024 to about 12% at n = 32,768 — "
        "the error there is mostly the sampled estimate of the spread-out remainder. At n = 1,024 the causal "
        "call is exact (n ≤ min_seq_len), the non-causal one is not (only n < min_seq_len falls back).", "",
        "Implementation measured here (commit 7ecbf1c and later): the sortLSH block part and the sampled "
        "columns are two calls of the fused kernel merged by their log-sum-exps (the block call needs no "
        "mask), sorted rows are gathered and scattered with `index_select`/`index_copy_` on the storage rows, "
        "the causal halves are merged in place; outputs equal the previous implementation to float rounding "
        "(≤ 1e-6, tested). The previous run (other machine: AMD EPYC) had measured 1.68× at n = 8,192 causal. "
        "Work bound at n = 8,192 causal with these defaults: 8 exact causal leaves of 1,024 (4.2 M query-key "
        "pairs) plus 3 levels of off-diagonal blocks (4,096 queries × (256 block + 256 sampled) keys each, "
        "6.3 M pairs) against 33.6 M pairs for exact causal attention — at most 3.2× even with no overhead, and "
        "the small kernel calls run less efficiently than one long fused call.",
        "",
        markdown_table(table_rows, cols), "",
        _target_line(rows, 32768, False, 5.0),
        _target_line(rows, 8192, True, 2.0), "",
    ]
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="speed", choices=["speed", "real", "lm", "moe", "ssm"], help="Benchmark part.")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="Parts moe/lm: the Tiny Shakespeare folder (default ../shared/data/text/tiny_shakespeare); "
                         "part real: BEIR SciFact (default ../shared/data/scifact).")
    ap.add_argument("--steps", type=int, default=None, help="Part lm: training steps per model.")
    ap.add_argument("--context", type=int, default=None, help="Part lm: context length (characters).")
    ap.add_argument("--max-docs", type=int, default=None, help="Part real: SciFact passages encoded (0: all).")
    ap.add_argument("--seed", type=int, default=0, help="Random seed.")
    ap.add_argument("--json", type=Path, help="Write rows as JSON.")
    ap.add_argument("--plots", type=Path, help="Folder for PNG plots.")
    ap.add_argument("--render", action="store_true",
                    help="Only rewrite the section from the rows, command, date and machine saved in --json.")
    args = ap.parse_args(argv)
    from hashlearn.nn import bench

    make = {"moe": moe_section, "ssm": ssm_section, "lm": lm_section, "real": real_section}.get(args.part, section)
    if args.render:
        import json

        result = json.loads(args.json.read_text())
        text = SECTION.read_text() if SECTION.exists() else HEADER
        body = make(result, result["command"], result["machine"], result.get("plots", []))
        SECTION.write_text(_replace_block(text, args.part, body))
        print(body)
        return 0
    info = machine_info()
    extra = {"lengths": (64, 256), "n_pairs": 4, "steps": 300} if args.part == "ssm" else {}
    if args.part == "speed":
        extra = {"repeat": 5}  # best of 5: the shared machine is noisy
    if args.part == "lm":
        extra = {k: v for k, v in (("steps", args.steps), ("context", args.context)) if v is not None}
    if args.part == "real" and args.max_docs is not None:
        extra = {"max_docs": args.max_docs}
    default_dir = {"moe": "../shared/data/text/tiny_shakespeare", "lm": "../shared/data/text/tiny_shakespeare",
                   "real": "../shared/data/scifact"}.get(args.part)
    data_dir = args.data_dir if args.data_dir is not None else (Path(default_dir) if default_dir else None)
    result = bench.run(args.part, seed=args.seed, data_dir=data_dir, **extra)
    plots = [str(p.relative_to(Path.cwd())) if p.is_absolute() else str(p)
             for p in (bench.plot(result["rows"], args.plots) if args.plots else [])]
    result.update(command=command_line(), date=now_iso(), machine=info, plots=plots)
    if args.json:
        write_json(args.json, result)
    SECTION.parent.mkdir(parents=True, exist_ok=True)
    text = SECTION.read_text() if SECTION.exists() else HEADER
    SECTION.write_text(_replace_block(text, args.part, make(result, command_line(), info, plots)))
    print(SECTION.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
