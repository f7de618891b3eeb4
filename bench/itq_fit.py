"""ITQ training cost: hashlearn's ITQ against faiss' ``ITQ{bits},LSH`` on the same data, in the same run.

Every fit runs in a fresh subprocess that generates the data itself (seeded, so every process sees the
same matrix), so its peak memory is measurable: the peak resident set size is reset after the data is
built (``/proc/self/clear_refs``; elsewhere the difference of ``ru_maxrss`` is used) and the extra peak
memory of the fit is reported. The configurations are run round-robin (ours, ours with a subsample,
faiss, ours, ...) so that each sees the same machine load; best and median wall times are printed, with
the ratio ours / faiss.

Configurations
--------------
* ``hashlearn-itq``: ``ITQ(n_bits, n_iter=50)`` on every row (the paper's protocol).
* ``hashlearn-itq-sub``: the same with ``max_train_samples`` = faiss' own training sample,
  ``max(10·d, 32768)`` rows (faiss ``ITQTransform.max_train_per_dim = 10``); the mean and PCA still
  use every row.
* ``faiss-itq``: ``faiss.index_factory(d, "ITQ{bits},LSH").train(X)`` (PCA + 50 ITQ iterations on its
  subsample).

Usage::

    python bench/itq_fit.py                       # 1,000,000 x 128 float32, 64 bits, 3 rounds
    python bench/itq_fit.py --n 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, fmt, load_average, machine_info, machine_summary, text_table  # noqa: E402

CONFIGS = ("hashlearn-itq", "hashlearn-itq-sub", "faiss-itq")


# -- worker (one fit in a fresh process) -----------------------------------------------------------
def make_data(n: int, d: int, seed: int = 0, n_clusters: int = 256) -> np.ndarray:
    """Clustered float32 data (Gaussian clusters around Gaussian centres with a decaying spectrum),
    generated chunk by chunk straight into float32 so that building it makes no large temporary."""
    rng = np.random.default_rng(seed)
    scale = (0.97 ** np.arange(d)).astype(np.float32)
    centers = (rng.standard_normal((n_clusters, d), dtype=np.float32) * 4.0) * scale
    X = np.empty((n, d), dtype=np.float32)
    rows = 65536
    for s in range(0, n, rows):
        e = min(n, s + rows)
        X[s:e] = rng.standard_normal((e - s, d), dtype=np.float32)
        X[s:e] *= scale
        X[s:e] += centers[rng.integers(0, n_clusters, size=e - s)]
    return X


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(config: str, n: int, d: int, bits: int, seed: int) -> dict:
    X = make_data(n, d, seed)
    fit = _fit_function(config, X, bits)
    rss0 = _status_kib("VmRSS")
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reset = _reset_peak()
    t0 = time.perf_counter()
    c0 = time.process_time()
    fit()
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    if reset and _status_kib("VmHWM") is not None:
        extra_kib = _status_kib("VmHWM") - rss0
    else:
        extra_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss0
    return {"config": config, "wall_s": wall, "cpu_s": cpu, "extra_peak_mib": extra_kib / 1024,
            "data_mib": X.nbytes / 2**20, "peak_reset": reset}


def _fit_function(config: str, X: np.ndarray, bits: int):
    n, d = X.shape
    if config == "faiss-itq":
        import faiss

        def fit():
            faiss.index_factory(d, f"ITQ{bits},LSH").train(X)

        faiss.index_factory(d, f"ITQ{bits},LSH").train(X[:4096])  # library/thread warm-up, not timed
        return fit
    from hashlearn.hashing import ITQ

    sub = max(10 * d, 32768) if config == "hashlearn-itq-sub" else None
    ITQ(n_bits=bits, random_state=0).fit(X[:4096])  # library/thread warm-up, not timed

    def fit():
        ITQ(n_bits=bits, n_iter=50, max_train_samples=sub, random_state=0).fit(X)

    return fit


# -- driver -------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="training rows (default 1,000,000)")
    p.add_argument("--d", type=int, default=128, help="dimension (default 128)")
    p.add_argument("--bits", type=int, default=64, help="code length (default 64)")
    p.add_argument("--repeat", type=int, default=3, help="rounds of the round-robin (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    p.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.d, args.bits, args.seed)))
        return 0

    info = machine_info()
    print(f"# {command_line()}")
    print(f"# {machine_summary(info)}")
    print(f"# data: {args.n:,} x {args.d} float32 clustered ({args.n * args.d * 4 / 2**20:,.0f} MiB), "
          f"{args.bits} bits, 50 ITQ iterations; faiss trains on max(10*d, 32768) = "
          f"{max(10 * args.d, 32768):,} sampled rows")
    runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    for r in range(args.repeat):
        for config in CONFIGS:
            cmd = [sys.executable, __file__, "--worker", config, "--n", str(args.n), "--d", str(args.d),
                   "--bits", str(args.bits), "--seed", str(args.seed)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                raise SystemExit(f"worker {config} failed with exit code {out.returncode}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            runs[config].append(res)
            print(f"  round {r + 1}: {config:18s} {res['wall_s']:8.2f} s wall, {res['cpu_s']:8.2f} s CPU, "
                  f"+{res['extra_peak_mib']:7.1f} MiB peak   (load {load_average()})", flush=True)

    rows = []
    faiss_best = min(x["wall_s"] for x in runs["faiss-itq"])
    for config in CONFIGS:
        walls = [x["wall_s"] for x in runs[config]]
        rows.append({
            "config": config,
            "best_s": min(walls),
            "median_s": statistics.median(walls),
            "cpu_s": min(x["cpu_s"] for x in runs[config]),
            "extra_peak_mib": max(x["extra_peak_mib"] for x in runs[config]),
            "ratio": min(walls) / faiss_best,
        })
    print()
    print(text_table(rows, [("config", "config"), ("best_s", "best s"), ("median_s", "median s"),
                            ("cpu_s", "CPU s"), ("extra_peak_mib", "extra peak MiB"),
                            ("ratio", "time / faiss")]))
    print(f"\nratio (best wall time, hashlearn-itq / faiss-itq): {fmt(rows[0]['ratio'])}; "
          f"with the faiss-sized subsample: {fmt(rows[1]['ratio'])}")
    if args.json:
        from common import write_json

        write_json(args.json, {"command": command_line(), "machine": info,
                               "args": vars(args) | {"json": str(args.json)}, "runs": runs, "summary": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
