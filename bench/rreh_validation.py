"""Model selection for the cross-modal hashers on validation splits carved from the *training* items.

The test queries of ``bench/crossmodal.py`` are never touched: each validation split draws
``--n-val`` training items as queries, the other training items are the database and the training set
(semi-paired at each ratio). Prints one line per (split, bits, ratio, variant) and the mean over splits
of image→text / text→image mAP.

Variants are ``method`` or ``method:{"param": value, ...}`` (JSON), e.g.::

    OMP_NUM_THREADS=1 python bench/rreh_validation.py --dataset wiki --splits 0,1,2,3 --bits 16,32,64 \
        --paired 0.1,0.3,0.5,1.0 cca-itq rreh 'rreh:{"init": "svd"}'

(``docs/crossmodal.md`` gives the table this produced for ``init``.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv=None):
    import hashlearn
    from hashlearn.crossmodal.base import semi_paired_split
    from hashlearn.crossmodal.evaluate import cross_modal_map, load_crossmodal_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--dataset", default="wiki", choices=["wiki", "mfeat", "mnist"])
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--splits", default="0,1")
    ap.add_argument("--bits", default="16,32")
    ap.add_argument("--paired", default="0.1,0.3")
    ap.add_argument("--n-val", type=int, default=500)
    a = ap.parse_args(argv)
    files = {"wiki": a.data_dir / "wiki" / "wiki_data.mat", "mfeat": a.data_dir / "mfeat" / "handwritten.mat"}
    extra = {"mfeat": {"views": (0, 2)}, "mnist": {"n_queries": 1000}}.get(a.dataset, {})
    data = load_crossmodal_dataset(a.dataset, files.get(a.dataset), **extra)
    X, y = data.train, data.y_train
    results = {}
    for split in [int(s) for s in a.splits.split(",")]:
        perm = np.random.default_rng(500 + split).permutation(len(y))
        qi, ti = np.sort(perm[: a.n_val]), np.sort(perm[a.n_val:])
        Q, T, yq, yt = [x[qi] for x in X], [x[ti] for x in X], y[qi], y[ti]
        for nb in [int(b) for b in a.bits.split(",")]:
            for ratio in [float(r) for r in a.paired.split(",")]:
                r0, r1, pairs = semi_paired_split(len(yt), ratio, split)
                views = [T[0][r0], T[1][r1]]
                for spec in a.variants:
                    name, _, params = spec.partition(":")
                    model = hashlearn.make_hasher(name, n_bits=nb, random_state=split, **json.loads(params or "{}"))
                    model.fit(views, pairs)  # as bench/crossmodal.py: paired-only methods use the paired part
                    i2t = cross_modal_map(model.transform(Q[0], view=0), model.transform(T[1], view=1), yq, yt, nb)
                    t2i = cross_modal_map(model.transform(Q[1], view=1), model.transform(T[0], view=0), yq, yt, nb)
                    results.setdefault((nb, ratio, spec), []).append((i2t, t2i))
                    print(f"split {split} bits {nb} paired {ratio:g} {spec}: {i2t:.4f} / {t2i:.4f}", flush=True)
    print("\nmean over splits (image→text / text→image, then their mean):")
    for (nb, ratio, spec), vals in sorted(results.items(), key=lambda kv: kv[0][:2]):
        m = np.mean(vals, axis=0)
        print(f"{nb:4d} {ratio:4g} {spec:40s} {m[0]:.4f} / {m[1]:.4f}   {100 * m.mean():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
