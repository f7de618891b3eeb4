"""Cost of deletes and replacements in a service collection, and of searching before / after the
snapshot puts the rows back in id order.

    python bench/service_delete.py [--n 100000 1000000] [--dim 128]

``swap``: the collection's O(batch) removal (the last row moves into each freed row).
``compact``: the previous O(n) removal, kept here as the reference (boolean-mask copy of every array and
a rebuilt id → row dict), run on a copy of the same state in the same process.
``faiss``: the peer, ``faiss.IndexBinaryIDMap(IndexBinaryFlat).remove_ids`` on the same codes (it stores
the codes only, 8 bytes a point here, while a collection also holds the float vectors).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np

from hashlearn.service.storage import CollectionConfig, ServiceCollectionState


def compact_remove(st: ServiceCollectionState, ids: np.ndarray) -> int:
    """The pre-swap removal: rebuild every array without the removed rows (O(n))."""
    rows = [st.pos[i] for i in ids.tolist() if i in st.pos]
    if not rows:
        return 0
    keep = np.ones(st.n, bool)
    keep[rows] = False
    st._ids = np.ascontiguousarray(st.ids[keep])
    st._vectors = np.ascontiguousarray(st.vectors[keep])
    st._codes = np.ascontiguousarray(st.codes[keep])
    st.n = st._ids.shape[0]
    st.pos = dict(zip(st._ids.tolist(), range(st.n)))
    return len(rows)


def best(f, reps=5):
    out = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        f()
        out = min(out, time.perf_counter() - t)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch", type=int, default=10)
    a = ap.parse_args()
    from hashlearn.codes import knn_search

    rng = np.random.default_rng(0)
    import faiss

    print(f"| points | dim | delete {a.batch} ids: compact (s) | swap (s) | compact / swap | faiss remove_ids (s) | "
          "faiss / swap | search 8 queries, k=100: rows in id order (ms) | after swaps (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in a.n:
        cfg = CollectionConfig(name="c", dim=a.dim, method="simhash", n_bits=64).validate()
        st = ServiceCollectionState(cfg)
        X = rng.standard_normal((n, a.dim)).astype(np.float32)
        st.hasher.fit(X[:1000])
        st.apply_hasher(1, st.hasher)
        st.apply_upsert(2, np.arange(n, dtype=np.int64), X, None)
        q = st.hasher.transform(rng.standard_normal((8, a.dim)).astype(np.float32))
        t_sorted = best(lambda: knn_search(q, st.codes, 100, n_bits=64, n_threads=1))
        ref = copy.deepcopy(st)
        t_compact = best(lambda: compact_remove(ref, rng.choice(ref.ids, a.batch, replace=False)))
        fx = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(64))
        fx.add_with_ids(np.ascontiguousarray(st.codes).view(np.uint8), st.ids.copy())
        t_faiss = best(lambda: fx.remove_ids(rng.choice(st.ids, a.batch, replace=False)))
        t_swap = best(lambda: st._remove(rng.choice(st.ids, a.batch, replace=False)))
        t_ties = best(lambda: knn_search(q, st.codes, 100, n_bits=64, tie_ids=st.ids, n_threads=1))
        print(f"| {n:,} | {a.dim} | {t_compact:.4f} | {t_swap:.6f} | {t_compact / t_swap:,.0f}× | {t_faiss:.4f} | "
              f"{t_faiss / t_swap:,.0f}× | {1e3 * t_sorted:.2f} | {1e3 * t_ties:.2f} |", flush=True)


if __name__ == "__main__":
    main()
