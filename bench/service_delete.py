"""Cost of deletes and replacements in a service collection, and of searching before / after the
snapshot puts the rows back in id order.

    python bench/service_delete.py [--n 100000 1000000] [--dim 128] [--batch 10]

A collection's rows live in the library's store (``hashlearn.index.flat.CodeStore``, wrapped by the
collection's ``HashIndex``), which removes in O(batch): the last row moves into each freed row, and an
id → row map finds the rows.

``swap``: ``ServiceCollectionState.apply_delete`` (the store's removal plus the payload index), best of 5.
``first``: the slower of the first two removals after the rows were loaded in id order (the second
builds the id → row map: O(n), once per load).
``compact``: the O(n) removal the service used before deletes became swaps, kept here as the reference
(boolean-mask copy of every array and a rebuilt id → row dict), run on copies of the same arrays in the
same process.
``faiss``: the peer, ``faiss.IndexBinaryIDMap(IndexBinaryFlat).remove_ids`` on the same codes (it stores
the codes only, 8 bytes a point here, while a collection also holds the float vectors).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average  # noqa: E402


class CompactReference:
    """The pre-swap removal: rebuild every array without the removed rows, and the id -> row dict (O(n))."""

    def __init__(self, ids, vectors, codes):
        self.ids, self.vectors, self.codes = ids.copy(), vectors.copy(), codes.copy()
        self.pos = dict(zip(self.ids.tolist(), range(self.ids.shape[0])))

    def remove(self, ids: np.ndarray) -> int:
        rows = [self.pos[i] for i in ids.tolist() if i in self.pos]
        if not rows:
            return 0
        keep = np.ones(self.ids.shape[0], bool)
        keep[rows] = False
        self.ids = np.ascontiguousarray(self.ids[keep])
        self.vectors = np.ascontiguousarray(self.vectors[keep])
        self.codes = np.ascontiguousarray(self.codes[keep])
        self.pos = dict(zip(self.ids.tolist(), range(self.ids.shape[0])))
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
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000], help="Collection sizes.")
    ap.add_argument("--dim", type=int, default=128, help="Vector dimension.")
    ap.add_argument("--batch", type=int, default=10, help="Ids per delete.")
    a = ap.parse_args()
    import faiss

    from hashlearn.codes import knn_search
    from hashlearn.service.storage import CollectionConfig, ServiceCollectionState

    rng = np.random.default_rng(0)
    print(f"load average at start: {load_average()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"| points | dim | delete {a.batch} ids: compact (s) | swap (s) | compact / swap | first delete, builds the "
          "id map (s) | faiss remove_ids (s) | faiss / swap | search 8 queries, k=100: rows in id order (ms) | "
          "after swaps (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in a.n:
        cfg = CollectionConfig(name="c", dim=a.dim, method="simhash", n_bits=64).validate()
        st = ServiceCollectionState(cfg)
        X = rng.standard_normal((n, a.dim)).astype(np.float32)
        hasher = cfg.fit_without_data()
        st.apply_hasher(1, hasher, st.prepare_hasher(hasher))
        ids = np.arange(n, dtype=np.int64)
        st.apply_upsert(2, ids, X, None, st.prepare_upsert(X))
        index = st.index
        q = hasher.transform(rng.standard_normal((8, a.dim)).astype(np.float32))
        t_sorted = best(lambda: knn_search(q, index.codes, 100, n_bits=64, n_threads=1))
        ref = CompactReference(index.ids, index.vectors, index.codes)
        t_compact = best(lambda: ref.remove(rng.choice(ref.ids, a.batch, replace=False)))
        fx = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(64))
        fx.add_with_ids(np.ascontiguousarray(index.codes).view(np.uint8), index.ids.copy())
        t_faiss = best(lambda: fx.remove_ids(rng.choice(index.ids, a.batch, replace=False)))
        # The first delete finds rows by binary search (rows are in id order) and swaps; the second
        # builds the id -> row map (O(n), once per load). Both are timed once; the slower is reported.
        t_first = max(best(lambda: st.apply_delete(3, rng.choice(index.ids, a.batch, replace=False)), 1),
                      best(lambda: st.apply_delete(4, rng.choice(index.ids, a.batch, replace=False)), 1))
        t_swap = best(lambda: st.apply_delete(5, rng.choice(index.ids, a.batch, replace=False)))
        t_ties = best(lambda: knn_search(q, index.codes, 100, n_bits=64, tie_ids=index.ids, n_threads=1))
        print(f"| {n:,} | {a.dim} | {t_compact:.4f} | {t_swap:.6f} | {t_compact / t_swap:,.0f}× | {t_first:.4f} | "
              f"{t_faiss:.4f} | {t_faiss / t_swap:,.0f}× | {1e3 * t_sorted:.2f} | {1e3 * t_ties:.2f} |", flush=True)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
