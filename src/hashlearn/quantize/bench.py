"""Quantizer benchmark: hashlearn's PQ / OPQ / RQ / IVF-PQ against faiss, same data, same run.

:func:`run` returns one row (dict) per method, implementation and code size, with recall of the exact
nearest neighbour, throughput and training time; ``bench/quantize.py`` and the CLI
(``hashlearn bench quantize``) call it, and :func:`summarize` / :func:`plot` (from
:mod:`hashlearn.quantize.report`) render its rows as Markdown and PNG plots. Our call and faiss' are timed
interleaved (a, b, a, b, ...) and the best of ``repeat`` runs is kept, both on ``threads`` threads.

Recall follows the PQ paper (Jégou et al. 2011): ``recall@R`` is the fraction of queries whose exact
nearest neighbour is among the first R results. ``10-recall@10`` (the overlap of the first 10 with
the exact 10 nearest) is reported too.

Datasets (``data_dir`` holds the files):

* ``sift10k`` — TEXMEX siftsmall: ``siftsmall_base.fvecs`` (10,000 × 128, also the training set),
  ``siftsmall_query.fvecs`` (100), ``siftsmall_groundtruth.ivecs`` (exact L2 neighbours).
* ``scifact-minilm`` — ``corpus.npy`` (5,183 × 384 all-MiniLM-L6-v2 embeddings, unit norm) and
  ``queries.npy`` (1,109); exact L2 neighbours computed here.
* ``synthetic`` — a Gaussian mixture with clusters of unequal weight (no files), plus the ADC scan
  throughput rows on 1,000,000 codes (:func:`adc_throughput`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from ..errors import DataFileError, ValidationError
from .report import plot, summarize  # noqa: F401  (re-exported: bench.run → bench.summarize / bench.plot)

__all__ = ["run", "summarize", "plot", "load_dataset", "adc_throughput", "recall_at", "DATASETS", "DEFAULT_DATA_DIRS"]

DATASETS = ("sift10k", "scifact-minilm", "synthetic")
DEFAULT_DATA_DIRS = {"sift10k": "sift10k", "scifact-minilm": "scifact/minilm"}
"""Folder of each file-based dataset under a data root such as ``../shared/data``."""


# -- data -----------------------------------------------------------------------------------------------
def _exact_knn(xb: np.ndarray, xq: np.ndarray, k: int) -> np.ndarray:
    import faiss

    _, I = faiss.knn(np.ascontiguousarray(xq), np.ascontiguousarray(xb), k)
    return I.astype(np.int64)


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataFileError(f"missing data file {path}")
    return path


def _mixture(d: int, n_clusters: int, seed: int):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d)) * 2.0
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
    return centers, weights / weights.sum(), rng.uniform(0.5, 1.5, size=n_clusters)


def _draw(mixture, m: int, rng: np.random.Generator) -> np.ndarray:
    centers, weights, spread = mixture
    c = rng.choice(centers.shape[0], size=m, p=weights)
    return (centers[c] + spread[c, None] * rng.normal(size=(m, centers.shape[1]))).astype(np.float32)


def synthetic(n: int = 50_000, d: int = 64, nq: int = 500, *, n_clusters: int = 200, seed: int = 0):
    """Gaussian mixture with Zipf-like cluster weights (so list sizes of plain k-means are skewed).

    Returns (xt, xb, xq): training = database (n, d), queries (nq, d), float32.
    """
    mixture = _mixture(d, n_clusters, seed)
    rng = np.random.default_rng(seed + 1)
    xb = _draw(mixture, n, rng)
    return xb, xb, _draw(mixture, nq, rng)


def load_dataset(dataset: str, data_dir=None, *, k: int = 100):
    """(xt, xb, xq, gt): training vectors, database, queries, exact neighbour ids (nq, k) int64."""
    from ..io.readers import read_fvecs, read_ivecs

    if dataset not in DATASETS:
        raise ValidationError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    if dataset == "synthetic":
        xt, xb, xq = synthetic()
        return xt, xb, xq, _exact_knn(xb, xq, k)
    if data_dir is None:
        raise ValidationError(f"dataset {dataset} needs data_dir (e.g. ../shared/data/{DEFAULT_DATA_DIRS[dataset]})")
    root = Path(data_dir)
    if dataset == "sift10k":
        xb = np.ascontiguousarray(read_fvecs(_need(root / "siftsmall_base.fvecs"), mmap=False))
        xq = np.ascontiguousarray(read_fvecs(_need(root / "siftsmall_query.fvecs"), mmap=False))
        gt = np.asarray(read_ivecs(_need(root / "siftsmall_groundtruth.ivecs"), mmap=False), dtype=np.int64)
        if gt.shape[1] < k:
            gt = _exact_knn(xb, xq, k)
        return xb, xb, xq, gt[:, :k]
    xb = np.ascontiguousarray(np.load(_need(root / "corpus.npy")), dtype=np.float32)
    xq = np.ascontiguousarray(np.load(_need(root / "queries.npy")), dtype=np.float32)
    return xb, xb, xq, _exact_knn(xb, xq, k)


def recall_at(I: np.ndarray, gt: np.ndarray, r: int) -> float:
    """Fraction of queries whose exact nearest neighbour ``gt[:, 0]`` is among ``I[:, :r]``."""
    return float((I[:, :r] == gt[:, :1]).any(1).mean())


def _overlap_at(I: np.ndarray, gt: np.ndarray, r: int) -> float:
    return float(np.mean([len(set(a[:r].tolist()) & set(b[:r].tolist())) / r for a, b in zip(I, gt)]))


# -- timing ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _threads(n: int):
    """numba and faiss (OpenMP) thread counts for the block, restored afterwards."""
    import faiss
    import numba

    old_numba, old_faiss = numba.get_num_threads(), faiss.omp_get_max_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old_numba)
        faiss.omp_set_num_threads(old_faiss)


def _interleaved(fns: dict, repeat: int) -> tuple[dict, dict]:
    """Best wall time of each callable over ``repeat`` round-robin runs (after one warm-up), and its result."""
    last = {name: fn() for name, fn in fns.items()}
    best = {name: np.inf for name in fns}
    for _ in range(max(1, repeat)):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            last[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, last


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# -- the methods -------------------------------------------------------------------------------------------
def _ours_flat(name: str, B: int, seed: int):
    from . import OPQ, PQ, RQ

    return {"pq": PQ, "opq": OPQ, "rq": RQ}[name](B, random_state=seed)


def _faiss_flat(name: str, B: int, d: int, seed: int):
    import faiss

    if name == "pq":
        index = faiss.IndexPQ(d, B, 8)
        index.pq.cp.seed = seed
        return index
    if name == "opq":
        index = faiss.index_factory(d, f"OPQ{B},PQ{B}")
        faiss.downcast_index(index.index).pq.cp.seed = seed
        return index
    index = faiss.IndexResidualQuantizer(d, B, 8, faiss.METRIC_L2, faiss.AdditiveQuantizer.ST_norm_float)
    index.rq.cp.seed = seed
    return index


def _flat_rows(dataset, name, B, xt, xb, xq, gt, k, repeat, seeds, log):
    """PQ / OPQ / RQ rows: recall averaged over ``seeds`` (training seeds of both libraries), speed
    timed interleaved on the first seed's models."""
    from .search import adc_search

    d = xb.shape[1]
    per_impl = {"hashlearn": [], "faiss": []}
    qps = {}
    for n_seed, seed in enumerate(seeds):
        ours = _ours_flat(name, B, seed)
        _, t_ours = _timed(lambda: ours.fit(xt))
        theirs = _faiss_flat(name, B, d, seed)
        _, t_faiss = _timed(lambda: theirs.train(xt))
        codes = ours.encode(xb)
        bias = ours.code_bias(codes)
        theirs.add(xb)
        fns = {"hashlearn": lambda: adc_search(ours.distance_tables(xq), codes, k, bias=bias),
               "faiss": lambda: theirs.search(xq, k)}
        if n_seed == 0:
            best, res = _interleaved(fns, repeat)
            qps = {impl: xq.shape[0] / best[impl] for impl in fns}
        else:
            res = {impl: fn() for impl, fn in fns.items()}
        rec = theirs.sa_decode(theirs.sa_encode(xb))
        mse = {"hashlearn": ours.quantization_error(xb), "faiss": float(((rec.astype(np.float64) - xb) ** 2).sum(1).mean())}
        for impl, train_s in (("hashlearn", t_ours), ("faiss", t_faiss)):
            per_impl[impl].append(_row(dataset, name, impl, B, res[impl][1], gt, 0.0, train_s, quantization_mse=mse[impl]))
    rows = []
    for impl, runs in per_impl.items():
        row = dict(runs[0])
        for key in ("recall@1", "recall@10", "recall@100", "10-recall@10", "train_s", "quantization_mse"):
            vals = np.array([r[key] for r in runs])
            row[key] = float(vals.mean())
            if key.startswith(("recall", "10-")):
                row[key + "_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        row.update(queries_per_s=qps[impl], seeds=len(runs), extra_bytes=4 if name == "rq" else 0)
        rows.append(row)
    log(f"{dataset} {name} {B} bytes: " + ", ".join(
        f"{r['impl']} r@10={r['recall@10']:.3f} {r['queries_per_s']:.0f} q/s train {r['train_s']:.1f}s" for r in rows))
    return rows


def _row(dataset, method, impl, B, I, gt, qps, train_s, **extra) -> dict:
    row = {"dataset": dataset, "method": method, "impl": impl, "bytes": int(B),
           "recall@1": recall_at(I, gt, 1), "recall@10": recall_at(I, gt, 10), "recall@100": recall_at(I, gt, 100),
           "10-recall@10": _overlap_at(I, gt, 10), "queries_per_s": float(qps), "train_s": float(train_s)}
    row.update(extra)
    return row


def _nlists(n: int) -> list[int]:
    base = 1 << int(np.floor(np.log2(np.sqrt(n))))
    return [base, 2 * base]


def _nprobes(nlist: int) -> list[int]:
    return [p for p in (1, 2, 4, 8, 16, 32, 64, 128) if p <= nlist]


def _ivf_rows(dataset, B, xt, xb, xq, gt, k, repeat, seed, log):
    import faiss

    from ..index.ivf import IVFIndex
    from . import PQ

    d = xb.shape[1]
    rows = []
    for nlist in _nlists(xb.shape[0]):
        ours = IVFIndex("kmeans", PQ(B, random_state=seed), nlist=nlist, random_state=seed)
        _, t_ours = _timed(lambda: ours.train(xt))
        ours.add(xb)
        theirs = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, nlist, B, 8)
        _, t_faiss = _timed(lambda: theirs.train(xt))
        theirs.add(xb)
        for nprobe in _nprobes(nlist):
            theirs.nprobe = nprobe
            best, res = _interleaved({"hashlearn": lambda: ours.search(xq, k, nprobe=nprobe),
                                      "faiss": lambda: theirs.search(xq, k)}, repeat)
            for impl, train_s in (("hashlearn", t_ours), ("faiss", t_faiss)):
                rows.append(_row(dataset, "ivf-pq", impl, B, res[impl][1], gt, xq.shape[0] / best[impl], train_s,
                                 nlist=nlist, nprobe=nprobe))
        log(f"{dataset} ivf-pq {B} bytes nlist={nlist}: swept nprobe {_nprobes(nlist)}")
    return rows


def _balanced_rows(dataset, B, xt, xb, xq, gt, k, seed, log):
    """IVF-PQ on k-means vs balanced k-means lists: list balance, coarse error, recall and per-query p50/p99."""
    from ..index.ivf import IVFIndex
    from . import PQ

    rows = []
    nlist = _nlists(xb.shape[0])[1]
    for coarse in ("kmeans", "balanced-kmeans"):
        index = IVFIndex(coarse, PQ(B, random_state=seed), nlist=nlist, random_state=seed)
        _, train_s = _timed(lambda: index.train(xt))
        index.add(xb)
        sizes = index.list_sizes()
        assigned = index.centroids_[index._lists]
        coarse_mse = float(((xb.astype(np.float64) - assigned) ** 2).sum(1).mean())
        for nprobe in _nprobes(nlist):
            index.search(xq[:1], k, nprobe=nprobe)
            lat = np.empty(xq.shape[0])
            I = np.empty((xq.shape[0], k), np.int64)
            for i in range(xq.shape[0]):
                t0 = time.perf_counter()
                I[i] = index.search(xq[i : i + 1], k, nprobe=nprobe)[1][0]
                lat[i] = time.perf_counter() - t0
            rows.append(_row(dataset, f"ivf-pq/{coarse}", "hashlearn", B, I, gt, 1.0 / lat.mean(), train_s,
                             nlist=nlist, nprobe=nprobe, p50_ms=1e3 * float(np.percentile(lat, 50)),
                             p99_ms=1e3 * float(np.percentile(lat, 99)),
                             largest_list_over_mean=float(sizes.max() / sizes.mean()), coarse_mse=coarse_mse))
        log(f"{dataset} {coarse} lists nlist={nlist}: largest/mean {sizes.max() / sizes.mean():.2f}, coarse mse {coarse_mse:.4g}")
    return rows


# -- ADC throughput --------------------------------------------------------------------------------------------
def adc_throughput(*, n: int = 1_000_000, d: int = 128, M: int = 16, nq: int = 100, k: int = 10, repeat: int = 3,
                   seed: int = 0, log=print) -> list[dict]:
    """ADC scan of ``n`` PQ codes (``M`` bytes) by hashlearn and faiss' ``IndexPQ``: same codebooks,
    same codes, same queries, interleaved; queries in one batch and one at a time.

    Results are checked to agree (same ids except float-rounding ties) before timing is reported.
    """
    import faiss

    from . import PQ
    from .search import adc_search

    mixture = _mixture(d, 200, seed)
    rng = np.random.default_rng(seed + 1)
    pq = PQ(M, random_state=seed).fit(_draw(mixture, 100_000, rng))
    index = pq.to_faiss()
    codes = np.empty((n, M), np.uint8)
    for s in range(0, n, 100_000):  # encode in chunks: the float database is never held whole
        m = min(100_000, n - s)
        codes[s : s + m] = pq.encode(_draw(mixture, m, rng))
    faiss.copy_array_to_vector(codes.ravel(), index.codes)
    index.ntotal = n
    xq = _draw(mixture, nq, rng)
    rows = []
    for batch in ("all", "one"):
        if batch == "all":
            fns = {"hashlearn": lambda: adc_search(pq.distance_tables(xq), codes, k),
                   "faiss": lambda: index.search(xq, k)}
        else:
            fns = {"hashlearn": lambda: [adc_search(pq.distance_tables(xq[i : i + 1]), codes, k) for i in range(nq)],
                   "faiss": lambda: [index.search(xq[i : i + 1], k) for i in range(nq)]}
        best, res = _interleaved(fns, repeat)
        Io = res["hashlearn"][1] if batch == "all" else np.concatenate([r[1] for r in res["hashlearn"]])
        If = res["faiss"][1] if batch == "all" else np.concatenate([r[1] for r in res["faiss"]])
        agree = float((Io == If).mean())
        if agree < 0.99:
            raise RuntimeError(f"ADC results disagree with faiss ({agree:.3f} of ids equal): timing not reported")
        for impl in ("hashlearn", "faiss"):
            rows.append({"dataset": "synthetic-1M", "method": "adc-scan", "impl": impl, "bytes": M, "n": n, "nq": nq,
                         "k": k, "batch": batch, "queries_per_s": nq / best[impl],
                         "codes_per_s": n * nq / best[impl], "ids_equal_to_faiss": agree})
        ratio = best["faiss"] / best["hashlearn"]
        log(f"ADC {n:,} x {M} bytes, queries {batch}: hashlearn {nq / best['hashlearn']:.1f} q/s, "
            f"faiss {nq / best['faiss']:.1f} q/s, ratio {ratio:.2f}")
    return rows


# -- entry point --------------------------------------------------------------------------------------------------
def run(dataset: str, bytes_list=(8, 16, 32, 64), data_dir=None, *,
        methods=("pq", "opq", "rq", "ivf-pq", "balanced", "adc"), rq_max_bytes: int = 32, k: int = 100, repeat: int = 3,
        threads: int = 1, seeds=(0, 1, 2), rq_seeds=(0,), log=print) -> list[dict]:
    """Benchmark rows for one dataset (see the module docstring).

    Parameters
    ----------
    dataset : {"sift10k", "scifact-minilm", "synthetic"}
    bytes_list : iterable of int — code sizes (bytes per vector = PQ sub-quantizers = RQ levels)
    data_dir : path of the dataset's files (not needed for ``synthetic``)
    methods : subset of ``pq``, ``opq``, ``rq``, ``ivf-pq``, ``balanced`` (IVF-PQ on balanced vs k-means
        lists, at 16 bytes or the first size given) and ``adc`` (with ``synthetic`` only: the 1M-code ADC
        throughput rows of :func:`adc_throughput`)
    rq_max_bytes : RQ rows only up to this size (RQ training is the slowest, for both libraries)
    k : results per query (>= 100 for recall@100)
    repeat : timed repetitions (best kept), interleaved with faiss
    threads : numba and faiss threads during the run (restored afterwards)
    seeds : training seeds of PQ/OPQ (both libraries); recall is their mean (``recall@R_sd``: the spread);
        ``rq_seeds`` likewise for RQ; IVF and the ADC rows use the first seed

    Returns
    -------
    list of dict rows with at least ``method``, ``impl`` (``hashlearn`` or ``faiss``), ``bytes``,
    ``recall@1``, ``recall@10``, ``recall@100``, ``queries_per_s``, ``train_s``.
    """
    bytes_list = [int(b) for b in bytes_list]
    unknown = set(methods) - {"pq", "opq", "rq", "ivf-pq", "balanced", "adc"}
    if unknown:
        raise ValidationError(f"unknown benchmark method(s) {', '.join(sorted(unknown))}")
    if k < 100:
        raise ValidationError(f"k must be >= 100 to report recall@100, got {k}")
    xt, xb, xq, gt = load_dataset(dataset, data_dir, k=k)
    for B in bytes_list:
        if xb.shape[1] % B:
            raise ValidationError(f"{dataset} has d = {xb.shape[1]}, not a multiple of {B} bytes (sub-quantizers)")
    seed = int(seeds[0])
    rows: list[dict] = []
    with _threads(threads):
        for B in bytes_list:
            for name in ("pq", "opq", "rq"):
                if name in methods and not (name == "rq" and B > rq_max_bytes):
                    rows += _flat_rows(dataset, name, B, xt, xb, xq, gt, k, repeat,
                                       rq_seeds if name == "rq" else seeds, log)
            if "ivf-pq" in methods:
                rows += _ivf_rows(dataset, B, xt, xb, xq, gt, k, repeat, seed, log)
        if "balanced" in methods:
            B = 16 if 16 in bytes_list else bytes_list[0]
            rows += _balanced_rows(dataset, B, xt, xb, xq, gt, k, seed, log)
        if dataset == "synthetic" and "adc" in methods:
            rows += adc_throughput(repeat=repeat, seed=seed, log=log)
    return rows
