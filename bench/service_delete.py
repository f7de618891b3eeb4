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

The Markdown section ``service-delete`` of ``bench/sections/service.md`` is written from the run
(``--no-section`` for a trial run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, load_average, machine_info, machine_summary, now_iso, update_markdown_section  # noqa: E402


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
    ap.add_argument("--section", type=Path, default=Path(__file__).resolve().parent / "sections" / "service.md",
                    help="Markdown file whose service-delete section is rewritten.")
    ap.add_argument("--no-section", action="store_true", help="Do not write the Markdown section (trial runs).")
    a = ap.parse_args()
    load_start, started = load_average(), now_iso()
    rows = []
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
        rows.append((n, t_compact, t_swap, t_first, t_faiss, t_sorted, t_ties))
        print(f"| {n:,} | {a.dim} | {t_compact:.4f} | {t_swap:.6f} | {t_compact / t_swap:,.0f}× | {t_first:.4f} | "
              f"{t_faiss:.4f} | {t_faiss / t_swap:,.0f}× | {1e3 * t_sorted:.2f} | {1e3 * t_ties:.2f} |", flush=True)
    load_end = load_average()
    print(f"load average at end: {load_end}")
    if not a.no_section:
        print(f"wrote {update_markdown_section('service-delete', section(a, rows, started, load_start, load_end), a.section)}")


def section(a, rows, started, load_start, load_end) -> str:
    table = [f"| points | dim | delete {a.batch} ids: compact (s) | swap (s) | compact / swap | first deletes after a "
             "load, one builds the id map (s) | faiss remove_ids (s) | faiss / swap | search 8 queries, k=100: rows in "
             "id order (ms) | after swaps (ms) |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, t_compact, t_swap, t_first, t_faiss, t_sorted, t_ties in rows:
        table.append(f"| {n:,} | {a.dim} | {t_compact:.4f} | {t_swap:.6f} | {t_compact / t_swap:,.0f}× | {t_first:.4f} | "
                     f"{t_faiss:.4f} | {t_faiss / t_swap:,.0f}× | {1e3 * t_sorted:.2f} | {1e3 * t_ties:.2f} |")
    slow = [100 * (t_ties / t_sorted - 1) for *_, t_sorted, t_ties in rows]
    return "\n".join([
        "### Deletes and replacements: O(batch)",
        "",
        f"Command: `OMP_NUM_THREADS=1 {command_line()}` ({started}, one thread, load average {load_start[0]} at the "
        f"start, {load_end[0]} at the end). {machine_summary(machine_info())}",
        "",
        "A collection's rows are the library's `CodeStore` (inside the collection's `HashIndex`): a delete (or the "
        "removal half of a replacement) moves the current last row into each freed row and finds rows through an "
        "id → row map, so it costs O(batch); the map is built by the first delete that needs it after a load (O(n), "
        "once). Row order then no longer follows the ids, so searches break Hamming ties by id explicitly (same "
        "results, checked against brute force in `tests/test_service_storage.py` and `tests/test_index.py`) until the "
        "next snapshot sorts the rows by id again. The O(n) removal the service used before runs in the same process "
        "as a reference, and faiss's `IndexBinaryIDMap.remove_ids` on the same codes as the peer (faiss holds the "
        f"8-byte codes only, a collection also the {a.dim} float32 of each vector; `remove_ids` compacts, O(n)).",
        "",
        *table,
        "",
        "The price: between a delete and the next snapshot, searches use the explicit tie rule; their time changed by "
        + ", ".join(f"{d:+.0f} % at {r[0]:,} points" for d, r in zip(slow, rows)) + " in this run.",
    ])


if __name__ == "__main__":
    main()
