"""Ray-sharded index vs the single-process HashIndex: build time and search throughput (same run).

The dataset is written once as a .npy file; the single-process index reads it (memory-mapped) and
encodes it in this process; ShardedIndex encodes it in Ray tasks (each task memory-maps its rows) and
holds the codes in 1 or 2 shard actors. Searches: one batch of ``--nq`` queries, k=10, best of
``--repeat``; the sharded results are checked to be identical to the single index's. Ray runs
locally (``ray.init(num_cpus=2)``). Build time is reported cold (new actors and worker processes) and
warm (rebuild on the running actors).

Usage::

    python bench/ray_shards.py --n 1000000 --dim 64 --bits 64
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--shards", default="1,2")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "ray_shards.json")
    args = ap.parse_args(argv)
    import ray

    from hashlearn import HashIndex, make_hasher
    from hashlearn.distributed import ShardedIndex

    rng = np.random.default_rng(0)
    path = args.out.parent / f"ray_shards_{args.n}x{args.dim}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    centers = rng.normal(size=(256, args.dim)).astype(np.float32)
    X = centers[rng.integers(0, 256, args.n)] + rng.normal(size=(args.n, args.dim)).astype(np.float32)
    np.save(path, X)
    Q = (centers[rng.integers(0, 256, args.nq)] + rng.normal(size=(args.nq, args.dim))).astype(np.float32)
    del X
    hasher = make_hasher("simhash", n_bits=args.bits, random_state=0).fit(np.load(path, mmap_mode="r")[:10000])

    def best(fn):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return min(times), out

    rows = []
    t = time.perf_counter()
    single = HashIndex(hasher)
    single.add(np.load(path, mmap_mode="r"))
    single_build = time.perf_counter() - t
    single_search, (D0, I0) = best(lambda: single.search(Q, args.k))
    rows.append({"index": "HashIndex (1 process)", "shards": 0, "build_cold_s": single_build, "build_warm_s": single_build,
                 "search_s": single_search, "qps": args.nq / single_search, "identical": True})
    print(rows[-1], flush=True)

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_init = time.perf_counter() - t
    for s in [int(v) for v in args.shards.split(",")]:
        index = ShardedIndex(hasher, n_shards=s, chunk_rows=args.chunk_rows)
        t = time.perf_counter()
        index.build(path)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        index.build(path)
        warm = time.perf_counter() - t
        index.search(Q[:10], args.k)
        sec, (D, I) = best(lambda: index.search(Q, args.k))
        identical = bool(np.array_equal(I, I0) and np.array_equal(D, D0))
        rows.append({"index": "ShardedIndex on Ray", "shards": s, "build_cold_s": cold, "build_warm_s": warm,
                     "search_s": sec, "qps": args.nq / sec, "identical": identical})
        print(rows[-1], flush=True)
        index.close()
    ray.shutdown()
    # the single-process search again, after the Ray runs: the spread of the two shows the noise of the machine
    again, _ = best(lambda: single.search(Q, args.k))
    rows[0]["search_s_after"] = again
    rows[0]["qps_after"] = args.nq / again
    print(f"single-process search again: {again:.3f} s ({args.nq / again:.0f} queries/s)", flush=True)
    path.unlink()
    out = {"command": "python " + " ".join([sys.argv[0]] + sys.argv[1:]), "machine": machine_info(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ray_init_s": ray_init, "rows": rows,
           "args": {k: str(v) for k, v in vars(args).items()}}
    write_json(args.out, out)
    print(f"ray.init: {ray_init:.1f} s")
    print("| index | shards | build cold s | build warm s | ratio (warm build vs 1 process) | search s | queries/s | ratio (qps vs 1 process) | identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if r["shards"] == 0:
            r = dict(r, index=f"{r['index']} (searched before and after the Ray rows)",
                     search_s=(r["search_s"] + r["search_s_after"]) / 2, qps=(r["qps"] + r["qps_after"]) / 2)
        print(f"| {r['index']} | {r['shards'] or '-'} | {r['build_cold_s']:.2f} | {r['build_warm_s']:.2f} | "
              f"{single_build / r['build_warm_s']:.2f} | {r['search_s']:.3f} | {r['qps']:.0f} | "
              f"{r['qps'] / ((rows[0]['qps'] + rows[0]['qps_after']) / 2):.2f} | {'yes' if r['identical'] else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
