"""Functional-equivalence cache: hash error rates and a regularized-evolution search with / without it.

Two measurements, both with :mod:`hashlearn.apps.funchash`:

1. False splits and false collisions of the functional hash on random expressions
   (:func:`hash_error_rates`): equivalent rewrites that a cache lookup misses, and mutations that change
   the function (checked on 4096 fresh points) but are found anyway; for several tolerances, with and
   without near-boundary neighbour probing.
2. Regularized evolution (Real et al., AAAI 2019) for symbolic regression, same seed, run four times:
   no cache, a syntactic cache (key = printed expression, the usual memoisation), the functional cache,
   and the functional cache in checking mode (every hit re-evaluated to count false collisions).

Usage::

    OMP_NUM_THREADS=1 python bench/funchash_evolution.py [--part rates|evolution|all] [--quick]

Writes bench/out/funchash_<part>.json and the ``funchash-rates`` / ``funchash-evolution`` blocks of
bench/sections/funchash_selection.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from common import command_line, machine_info, markdown_table, now_iso, update_markdown_section, write_json  # noqa: E402

from hashlearn.apps.funchash import cache_benchmark, hash_error_rates  # noqa: E402

SECTION = Path(__file__).resolve().parent / "sections" / "funchash_selection.md"
SECTION_HEAD = "## Functional-equivalence cache and hashed instance selection (issue 7, part B)\n"


def ensure_section_file() -> None:
    SECTION.parent.mkdir(parents=True, exist_ok=True)
    if not SECTION.exists():
        SECTION.write_text(SECTION_HEAD + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="I.12.2,I.18.4,diabetes")
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--tournament", type=int, default=10)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--part", choices=("rates", "evolution", "nas", "all"), default="all")
    ap.add_argument("--nas-cycles", type=int, default=150)
    ap.add_argument("--nas-population", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.cycles, args.pairs, args.seeds = 2000, 200, 100, "0"
    info = machine_info()
    ensure_section_file()
    if args.part in ("rates", "all"):
        rates_part(args, info)
    if args.part in ("evolution", "all"):
        evolution_part(args, info)
    if args.part in ("nas", "all"):
        nas_part(args, info)


def rates_part(args, info) -> None:
    t_start = time.time()
    rates = []
    for rtol in (1e-3, 1e-6, 1e-9):
        for boundary in (0.0, 1e-3, 1e-2):
            r = hash_error_rates(args.pairs, rtol=rtol, boundary=boundary, noise=5e-3 * rtol, random_state=0)
            rates.append(r)
            print(f"rtol={rtol:g} boundary={boundary:g}: splits {r['split_lookup']}/{r['equivalent_pairs']} "
                  f"(primary {r['split_primary']}), noisy {r['noisy_split_lookup']} (primary "
                  f"{r['noisy_split_primary']}), collisions {r['collisions']}/{r['different_pairs']}", flush=True)
    out = {"machine": info, "command": command_line(), "date": now_iso(), "rates": rates,
           "seconds": time.time() - t_start}
    write_json(Path(__file__).resolve().parent / "out" / "funchash_rates.json", out)
    n = args.pairs
    rate_rows = [{
        "rtol": f"{r['rtol']:g}", "boundary": "off" if r["boundary"] == 0 else f"{r['boundary']:g} cell",
        "split_primary": f"{r['split_primary']}/{n}", "split_lookup": f"{r['split_lookup']}/{n}",
        "noisy_primary": f"{r['noisy_split_primary']}/{n}", "noisy_lookup": f"{r['noisy_split_lookup']}/{n}",
        "collisions": f"{r['collisions']}/{r['different_pairs']}", "us": r["hash_us_per_candidate"],
    } for r in rates]
    body = f"""### Functional hash: false splits and false collisions

Command: `OMP_NUM_THREADS=1 {out['command']}` — {out['date']}; machine: 2-core x86_64, 24 GiB, no GPU
(shared with other jobs). Run time {out['seconds']:.0f} s.

Random expression trees over 3 variables (depth ≤ 4), hashed on 32 seeded probes in [1, 5]³, atol 1e-9;
{n} pairs of each kind per row, the same pairs in every row.
* *rewrite splits*: an equivalent rewrite (distributivity, `(a+1)-1`, `(3a)/3`, `(0.1a)·10`,
  `a/b → a·inv(b)`, `a-b → a+(-b)`, commutativity) that is missed by the primary key alone / by a cache
  lookup (primary + near-boundary neighbour keys). The remaining lookup misses are pairs that really
  differ in floating point, e.g. `x/(x-x) = inf` against its rewrite `x/((3x)/3 - x) = 1.6e16`.
* *noisy splits*: the same outputs times `1 + 5e-3·rtol·u`, `u ~ U(-1, 1)` per probe (evaluation noise
  at half a percent of the tolerance) — what neighbour probing is for: a miss needs the noise to
  cross a cell boundary, which happens at rate ≈ noise/cell per coordinate without probing and never
  when the margin (`boundary`) exceeds the noise.
* *false collisions*: a mutation that changes the function somewhere on 4096 fresh points of the box
  but is found anyway (the 32 probes all miss the region where they differ, e.g. both functions NaN on
  97% of the box).

{markdown_table(rate_rows, [("rtol", "rtol"), ("boundary", "neighbour margin"), ("split_primary", "rewrite splits, primary key"), ("split_lookup", "rewrite splits, lookup"), ("noisy_primary", "noisy splits, primary key"), ("noisy_lookup", "noisy splits, lookup"), ("collisions", "false collisions"), ("us", "µs / fingerprint")])}
"""
    update_markdown_section("funchash-rates", body, path=SECTION)
    print(f"wrote {SECTION}")


def evolution_part(args, info) -> None:
    t_start = time.time()
    runs = []
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows = cache_benchmark(task, n_samples=args.samples, n_cycles=args.cycles,
                                   population_size=args.population, sample_size=args.tournament, random_state=seed,
                                   progress=lambda name: print(f"  {task} seed {seed}: {name}", flush=True))
            for r in rows:
                r["seed"] = seed
                print(f"{task} seed={seed} {r['cache']:>16}: {r['seconds']:.2f}s (cpu {r['cpu_seconds']:.2f}s) "
                      f"hits {r['hits']}/{r['calls']} evals {r['evaluations']} fc {r['false_collisions']} "
                      f"same {r['same_history']} best {r['best_fitness']:.4g}", flush=True)
            runs += rows
    out = {"machine": info, "command": command_line(), "date": now_iso(), "runs": runs,
           "seconds": time.time() - t_start, "args": vars(args)}
    write_json(Path(__file__).resolve().parent / "out" / "funchash_evolution.json", out)
    run_rows = [{
        "task": r["task"], "seed": r["seed"], "cache": r["cache"], "seconds": r["seconds"],
        "speedup": r["speedup"], "cpu_speedup": r["cpu_speedup"], "hit_rate": r["hit_rate"],
        "evaluations": r["evaluations"], "saved": r["evaluations_saved"],
        "fc": "—" if r["false_collisions"] is None else f"{r['false_collisions']}/{r['checked']}",
        "same": r["same_history"], "best": r["best_fitness"],
    } for r in runs]
    body = f"""### Functional-equivalence cache in a regularized-evolution search

Command: `OMP_NUM_THREADS=1 {out['command']}` — {out['date']}; machine: 2-core x86_64, 24 GiB, no GPU,
shared with other jobs (load average about {info['load_average_1_5_15'][0] if info.get('load_average_1_5_15') else '?'}
at the start), so wall times are noisy; process-CPU-time speedups are given beside them. Run time
{out['seconds']:.0f} s.

Regularized evolution (Real et al., AAAI 2019; population {args.population}, tournament {args.tournament},
{args.cycles} children, so {args.population + args.cycles} candidates per run) over expression trees;
fitness = NMSE after linear scaling on {args.samples:,} rows of a Feynman equation (AI Feynman sampling,
variables in [1, 5]) or on the 442 rows of scikit-learn's diabetes data. The four runs of a group use
the same seed: no cache; a syntactic cache (key = printed expression, plain memoisation); the
functional cache (32 probes in the data's bounding box, rtol 1e-6, atol 1e-9); the functional cache in
checking mode (every hit re-evaluated; a false collision is a hit whose full fitness differs from the
cached one by more than 1e-6 relative). "same history" = the fitness sequence equals the uncached run's
(within 1e-6 relative or 1e-12 absolute; tournament ties within the same tolerance go to the first
sampled): the cache changed the cost, not the search.

{markdown_table(run_rows, [("task", "task"), ("seed", "seed"), ("cache", "cache"), ("seconds", "wall s"), ("speedup", "speedup (wall)"), ("cpu_speedup", "speedup (CPU)"), ("hit_rate", "hit rate"), ("evaluations", "evaluations"), ("saved", "evaluations saved"), ("fc", "false collisions"), ("same", "same history"), ("best", "best NMSE")])}
"""
    update_markdown_section("funchash-evolution", body, path=SECTION)
    print(f"wrote {SECTION}")


# -- a small architecture search over torch MLPs --------------------------------------------------
_OPS = ("linear", "relu", "tanh", "identity")


def _build(genome, seed=0):
    """MLP on digits: Linear(64, 32), the genome's ops at width 32, Linear(32, 10); seeded init."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = [nn.Linear(64, 32)]
    for op in genome:
        layers.append(nn.Linear(32, 32) if op == "linear" else nn.ReLU() if op == "relu" else
                      nn.Tanh() if op == "tanh" else nn.Identity())
    layers.append(nn.Linear(32, 10))
    m = nn.Sequential(*layers)
    m.genome = tuple(genome)
    return m


def _nas_init(rng):
    return _build([_OPS[i] for i in rng.integers(len(_OPS), size=rng.integers(1, 5))])


def _nas_mutate(module, rng):
    g = list(module.genome)
    r = rng.integers(3)
    if r == 0 and len(g) < 6:
        g.insert(int(rng.integers(len(g) + 1)), _OPS[rng.integers(len(_OPS))])
    elif r == 1 and len(g) > 1:
        del g[int(rng.integers(len(g)))]
    else:
        g[int(rng.integers(len(g)))] = _OPS[rng.integers(len(_OPS))]
    return _build(g)


class _TrainAndScore:
    """Fitness of an architecture: validation error after 100 full-batch Adam steps from its seeded init,
    plus 1e-6 × the final training loss (a tie-break that also makes the checking mode's exact
    comparison sensitive: two different networks rarely share the continuous training loss)."""

    def __init__(self, steps=100):
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
        Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.33, random_state=0, stratify=y)
        self.Xtr, self.Xva = torch.tensor(Xtr, dtype=torch.float32), torch.tensor(Xva, dtype=torch.float32)
        self.ytr, self.yva = torch.tensor(ytr), torch.tensor(yva)
        self.X_np = Xtr
        self.steps = steps

    def __call__(self, module):
        import copy

        import torch

        m = copy.deepcopy(module)
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        loss_fn = torch.nn.CrossEntropyLoss()
        m.train()
        for _ in range(self.steps):
            opt.zero_grad()
            loss = loss_fn(m(self.Xtr), self.ytr)
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            err = float((m(self.Xva).argmax(1) != self.yva).float().mean())
            return err + 1e-6 * float(loss_fn(m(self.Xtr), self.ytr))


def nas_part(args, info) -> None:
    import torch

    from hashlearn.apps.funchash import EvaluationCache, FunctionalHasher, regularized_evolution

    torch.set_num_threads(1)
    t_start = time.time()
    fitness = _TrainAndScore()
    hasher = FunctionalHasher(32, random_state=0).fit(fitness.X_np)
    runs = [
        ("none", lambda: fitness),
        ("syntactic", lambda: EvaluationCache(fitness, repr)),
        ("functional", lambda: EvaluationCache(fitness, hasher)),
        ("functional+check", lambda: EvaluationCache(fitness, hasher, check=True, check_rtol=0, check_atol=0)),
    ]
    rows, base = [], None
    for name, make in runs:
        f = make()
        c0 = time.process_time()
        res = regularized_evolution(f, population_size=args.nas_population, sample_size=5, n_cycles=args.nas_cycles,
                                    init=_nas_init, mutate=_nas_mutate, random_state=0)
        cpu = time.process_time() - c0
        st = getattr(f, "stats", None)
        calls = len(res.history)
        row = {"cache": name, "seconds": res.seconds, "cpu_seconds": cpu, "calls": calls,
               "hits": st["hits"] if st else 0, "evaluations": st["evaluations"] if st else calls,
               "fc": f"{st['false_collisions']}/{st['checked']}" if st and st["checked"] else "—",
               "best": res.best_fitness, "arch": "-".join(res.best.genome),
               "hash_ms": 1000 * st["hash_seconds"] / calls if st else 0.0}
        row["hit_rate"] = row["hits"] / calls
        row["saved"] = calls - row["evaluations"] if name != "functional+check" else row["hits"]
        if base is None:
            base, base_cpu = res, cpu
            row["speedup"], row["cpu_speedup"], row["same"] = 1.0, 1.0, True
        else:
            row["speedup"], row["cpu_speedup"] = base.seconds / res.seconds, base_cpu / cpu
            row["same"] = bool(np.array_equal(res.history, base.history))
        rows.append(row)
        print(f"nas {name:>16}: {res.seconds:.1f}s cpu {cpu:.1f}s hits {row['hits']}/{calls} fc {row['fc']} "
              f"same {row['same']} best {res.best_fitness:.4f} {row['arch']}", flush=True)
    out = {"machine": info, "command": command_line(), "date": now_iso(), "runs": rows,
           "seconds": time.time() - t_start}
    write_json(Path(__file__).resolve().parent / "out" / "funchash_nas.json", out)
    n = args.nas_population + args.nas_cycles
    body = f"""### Functional-equivalence cache in a small neural-architecture search (torch)

Command: `OMP_NUM_THREADS=1 {out['command']}` — {out['date']}; machine: 2-core x86_64, 24 GiB, no GPU,
shared with other jobs; torch {torch.__version__} CPU, 1 thread. Run time {out['seconds']:.0f} s.

Regularized evolution (population {args.nas_population}, tournament 5, {args.nas_cycles} children: {n}
candidates) over MLPs for scikit-learn's digits: `Linear(64,32)`, then 1–6 ops from
{{linear 32→32, ReLU, Tanh, Identity}}, then `Linear(32,10)`. Fitness = validation error after 100
full-batch Adam steps from the architecture's seeded initialisation (the expensive evaluation), plus
1e-6 × the final training loss as a tie-break, so that the exact check below compares a continuous
quantity. The
functional hash runs each candidate (a copy, re-initialised with fixed seeded weights, float64) on 32
probes drawn in the bounding box of the training data: architectures that differ only by Identity
layers or repeated ReLUs share a key. Syntactic cache key: the module's `repr`. Checking mode compares
the cached fitness with that of a full re-training, exactly (tolerance 0).

{markdown_table(rows, [("cache", "cache"), ("seconds", "wall s"), ("speedup", "speedup (wall)"), ("cpu_speedup", "speedup (CPU)"), ("hit_rate", "hit rate"), ("evaluations", "trainings"), ("saved", "trainings saved"), ("fc", "false collisions"), ("same", "same history"), ("hash_ms", "hash ms / candidate"), ("best", "best fitness"), ("arch", "best architecture")])}
"""
    update_markdown_section("funchash-nas", body, path=SECTION)
    print(f"wrote {SECTION}")


if __name__ == "__main__":
    main()
