"""Embedding throughput of hashlearn.embed.Embedder (all-MiniLM-L6-v2, offline) on SciFact abstracts.

    python bench/embed_throughput.py --n 300 --threads 2

Prints docs/s for title + " " + text of the first N corpus documents (no cache), after one warm-up
batch, with the machine's load average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from hashlearn.embed import Embedder

    torch.set_num_threads(args.threads)
    texts = []
    with args.corpus.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            texts.append((doc.get("title", "") + " " + doc.get("text", "")).strip())
            if len(texts) == args.n:
                break
    emb = Embedder(batch_size=args.batch_size, show_progress=False)
    emb.encode(texts[: args.batch_size], use_cache=False)  # load the model, warm up
    load = os.getloadavg()
    start = time.perf_counter()
    vectors = emb.encode(texts, use_cache=False)
    seconds = time.perf_counter() - start
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(json.dumps({
        "docs": len(texts), "mean_words": round(words, 1), "threads": args.threads,
        "batch_size": args.batch_size, "seconds": round(seconds, 2),
        "docs_per_s": round(len(texts) / seconds, 1), "dim": int(vectors.shape[1]),
        "loadavg_at_start": [round(x, 2) for x in load],
    }))


if __name__ == "__main__":
    main()
