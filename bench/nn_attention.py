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
        f"Date {now_iso()}; {machine_summary(info)} torch {__import__('torch').__version__}, "
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
        f"Date {now_iso()}; {machine_summary(info)} torch {__import__('torch').__version__}, "
        f"**{result['threads']} torch thread** for both methods. Load average (1/5/15 min) at start "
        f"{[round(x, 2) for x in result['load_start']]}, at end {[round(x, 2) for x in result['load_end']]} "
        "(the machine is shared: absolute times are noisy, the ratio is measured in the same run).", "",
        "Peer: exact `torch.nn.functional.scaled_dot_product_attention` (torch's fused flash-attention CPU "
        "kernel) on the same inputs, interleaved with HyperAttention, best of 3 calls after a warm-up. "
        "Batch 1, d = 64, float32. HyperAttention defaults: block_size 256, sample_size 256, 7 hyperplanes, "
        "min_seq_len 1024 (exact below it and at the leaves of the causal recursion). `rel_error` = "
        "‖out − exact‖_F / ‖exact‖_F on the timed i.i.d. Gaussian inputs (nearly uniform attention: a sparse "
        "method cannot be accurate there, as the issue notes); `rel_error_concentrated` on inputs where query i "
        "is 8 × key i (key norm 3, random directions): the self-key scores 9 against N(0, 1.125²) for the others, "
        "so its expected share of the row mass falls from about 80% at n = 1,024 to about 12% at n = 32,768 — "
        "the error there is mostly the sampled estimate of the spread-out remainder. At n = 1,024 the causal "
        "call is exact (n ≤ min_seq_len), the non-causal one is not (only n < min_seq_len falls back).", "",
        markdown_table(table_rows, cols), "",
        _target_line(rows, 32768, False, 5.0),
        _target_line(rows, 8192, True, 2.0), "",
    ]
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="speed", choices=["speed", "moe", "ssm"], help="Benchmark part.")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/text/tiny_shakespeare"),
                    help="Part moe: the Tiny Shakespeare folder.")
    ap.add_argument("--seed", type=int, default=0, help="Random seed.")
    ap.add_argument("--json", type=Path, help="Write rows as JSON.")
    ap.add_argument("--plots", type=Path, help="Folder for PNG plots.")
    args = ap.parse_args(argv)
    from hashlearn.nn import bench

    info = machine_info()
    extra = {"lengths": (64, 256), "n_pairs": 4, "steps": 300} if args.part == "ssm" else {}
    result = bench.run(args.part, seed=args.seed, data_dir=args.data_dir if args.part == "moe" else None, **extra)
    plots = [str(p.relative_to(Path.cwd())) if p.is_absolute() else str(p)
             for p in (bench.plot(result["rows"], args.plots) if args.plots else [])]
    if args.json:
        write_json(args.json, result)
    SECTION.parent.mkdir(parents=True, exist_ok=True)
    text = SECTION.read_text() if SECTION.exists() else HEADER
    make = {"moe": moe_section, "ssm": ssm_section}.get(args.part, section)
    SECTION.write_text(_replace_block(text, args.part, make(result, command_line(), info, plots)))
    print(SECTION.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
