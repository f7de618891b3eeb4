"""PNG of a G-Rank run: mean nDCG@10 of the honest peers and bytes sent, over queries per peer."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_curves"]


def plot_curves(rows, path) -> Path:
    """Plot the rows of :func:`~hashlearn.text.grank.run_scenarios` to ``path`` (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    static = rows[0]["final_ndcg@10"]
    for r in rows[1:]:
        a1.plot(r["steps"], r["mean_curve"], label=r["scenario"])
        a2.plot(r["steps"], [b / 1e3 for b in r["bytes_curve"]], label=r["scenario"])
    a1.axhline(static, color="k", ls="--", label="static zero-shot")
    a1.axhline(1.1 * static, color="grey", ls=":", label="+10% target")
    a1.set_xlabel("queries per peer")
    a1.set_ylabel("mean nDCG@10 of honest peers")
    a1.legend(fontsize=7)
    a2.set_xlabel("queries per peer")
    a2.set_ylabel("kB sent (all peers)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
