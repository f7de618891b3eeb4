"""The G-Rank network simulation: peers learn from their own clicks and gossip models; churn and a poisoned peer.

A discrete-time, single-process simulation: at each step every online peer answers one query of its
own stream (sampled from the training queries), sees simulated clicks and learns; every
``gossip_every`` steps each online peer sends its model (bytes) to ``fanout`` random online peers, and
every peer merges what it received. With ``churn`` > 0, an online peer goes offline with that
probability at each gossip round (and an offline one comes back with probability 0.5), keeping its model.
Peers only exchange serialised messages; they run in this process or, with ``backend="ray"``, as Ray
actors (one process each, :mod:`.network`) with the same results.

Metrics: nDCG@10 of every honest peer on the evaluation queries (never seen in the streams) every
``eval_every`` steps, and the bytes sent.
"""

from __future__ import annotations

import numpy as np

from ...errors import ValidationError
from .features import FEATURE_NAMES, CandidateSet
from .network import BACKENDS, make_network
from .peer import AGGREGATIONS, Peer, PositionBiasedClicks, ndcg10

__all__ = ["simulate", "run_scenarios", "SCENARIOS", "static_weights"]

#: name → simulate() arguments
SCENARIOS = {
    "local only": {"gossip": False},
    "gossip (mean)": {},
    "gossip + churn (mean)": {"churn": 0.2},
    "poisoned peer, mean": {"n_poisoned": 1, "aggregation": "mean"},
    "poisoned peer, median": {"n_poisoned": 1, "aggregation": "median"},
    "poisoned peer, trimmed mean": {"n_poisoned": 1, "aggregation": "trimmed"},
    "poisoned peer, clipped gossip": {"n_poisoned": 1, "aggregation": "clipped"},
    "gossip (clipped), no poison": {"aggregation": "clipped"},
}


def static_weights() -> np.ndarray:
    """The static zero-shot ranker: the dense cosine feature alone."""
    w = np.zeros(len(FEATURE_NAMES))
    w[FEATURE_NAMES.index("dense")] = 1.0
    return w


def simulate(train: CandidateSet, evaluation: CandidateSet, *, n_peers: int = 10, queries_per_peer: int = 500,
             gossip: bool = True, gossip_every: int = 10, fanout: int = 3, churn: float = 0.0, n_poisoned: int = 0,
             aggregation: str = "mean", eval_every: int = 50, lr: float = 0.05, temperature: float = 0.3,
             clicks: PositionBiasedClicks | None = None, backend: str = "local", random_state=0) -> dict:
    """Run one network; returns ``steps`` (queries per peer at each check), ``ndcg`` (n_checks, n_peers;
    NaN for poisoned peers), ``bytes`` (cumulative bytes sent at each check), ``online`` (peers online).

    ``backend="ray"`` runs every peer as a Ray actor (its own process, :mod:`.network`) and gives the same
    numbers as ``"local"``."""
    if n_peers < 2 or not 0 <= n_poisoned < n_peers:
        raise ValidationError(f"need n_peers >= 2 and 0 <= n_poisoned < n_peers, got {n_peers}, {n_poisoned}")
    if aggregation not in AGGREGATIONS:
        raise ValidationError(f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {aggregation!r}")
    if not 0 <= churn < 1 or queries_per_peer < 1 or gossip_every < 1 or eval_every < 1 or fanout < 1:
        raise ValidationError("churn must be in [0, 1) and queries_per_peer, gossip_every, eval_every, fanout >= 1")
    if backend not in BACKENDS:
        raise ValidationError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    rng = np.random.default_rng(random_state)
    peers = [Peer(i, static_weights(), lr=lr, temperature=temperature, aggregation=aggregation,
                  poisoned=i < n_poisoned, rng=int(rng.integers(2**31))) for i in range(n_peers)]
    poisoned = np.array([p.poisoned for p in peers])
    network = make_network(backend, peers, train, clicks or PositionBiasedClicks())
    online = np.ones(n_peers, bool)
    steps, curves, sent, online_log, total_bytes = [], [], [], [], 0

    def check(step):
        steps.append(step)
        curves.append([np.nan if bad else float(ndcg10(w, evaluation).mean())
                       for w, bad in zip(network.weights(), poisoned)])
        sent.append(total_bytes)
        online_log.append(int(online.sum()))

    try:
        check(0)
        step = 0
        while step < queries_per_peer:
            # peers do not interact between gossip rounds: run each online peer up to the next event
            nxt = min(queries_per_peer, (step // eval_every + 1) * eval_every)
            if gossip:
                nxt = min(nxt, (step // gossip_every + 1) * gossip_every)
            network.answer(np.flatnonzero(online), nxt - step)
            step = nxt
            if gossip and step % gossip_every == 0:
                total_bytes += _gossip_round(network, online, fanout, step // gossip_every, rng)
                if churn > 0:
                    flip = rng.random(n_peers)
                    online = np.where(online, flip >= churn, flip < 0.5)
                    if not online.any():
                        online[int(rng.integers(n_peers))] = True
            if step % eval_every == 0 or step == queries_per_peer:
                check(step)
    finally:
        network.close()
    return {"steps": steps, "ndcg": np.asarray(curves), "bytes": sent, "online": online_log}


def _gossip_round(network, online, fanout, round_, rng) -> int:
    """Each online peer sends its model to ``fanout`` random online peers; all merge. Returns bytes sent."""
    ids = np.flatnonzero(online)
    messages = network.messages(ids, round_)
    inboxes = {int(i): [] for i in ids}
    sent = 0
    for i in ids:
        others = ids[ids != i]
        if not len(others):
            continue
        for j in rng.choice(others, size=min(fanout, len(others)), replace=False):
            inboxes[int(j)].append(messages[int(i)])
            sent += len(messages[int(i)])
    network.deliver(inboxes)
    network.merge(ids)
    return sent


def run_scenarios(train: CandidateSet, evaluation: CandidateSet, *, scenarios=None, log=None, **params) -> list:
    """One result per scenario (:data:`SCENARIOS`) plus the static ranker; each row: ``scenario``,
    ``final_ndcg@10`` (mean over honest peers), ``gain`` (relative to the static ranker), ``bytes``,
    ``steps``, ``mean_curve``, ``min_final``/``max_final``."""
    log = log or (lambda msg: None)
    static = float(ndcg10(static_weights(), evaluation).mean())
    rows = [{"scenario": "static zero-shot", "final_ndcg@10": static, "gain": 0.0, "bytes": 0}]
    for name, extra in (scenarios or SCENARIOS).items():
        res = simulate(train, evaluation, **{**params, **extra})
        final = res["ndcg"][-1]
        honest = final[~np.isnan(final)]
        mean_final = float(honest.mean())
        rows.append({"scenario": name, "final_ndcg@10": mean_final, "gain": mean_final / static - 1.0,
                     "bytes": int(res["bytes"][-1]), "min_final": float(honest.min()), "max_final": float(honest.max()),
                     "steps": res["steps"], "mean_curve": np.nanmean(res["ndcg"], axis=1).tolist(),
                     "bytes_curve": res["bytes"], "online": res["online"]})
        log(f"{name}: mean nDCG@10 {mean_final:.4f} ({rows[-1]['gain']:+.1%} vs static {static:.4f}), "
            f"{rows[-1]['bytes']:,} bytes")
    return rows
