"""One G-Rank peer: a linear ranker learnt online from its own clicks, and gossip of its model.

* :class:`PositionBiasedClicks` — the simulator's user: rank ``r`` (1-based) is examined with probability
  ``(1 / r) ** eta``; an examined document is clicked with probability ``click_relevant`` if the qrels
  judge it relevant, ``click_irrelevant`` otherwise ("An Experimental Comparison of Click Position-Bias
  Models", Craswell et al., 2008). The qrels are the simulator's ground truth, never the learner's input.
* :func:`ndcg10` — nDCG@10 of a linear ranker over a :class:`~.features.CandidateSet`.
* :func:`aggregate` — ``mean``, coordinate-wise ``median`` or ``trimmed`` mean of model vectors
  ("Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", Yin et al., 2018), or
  ``clipped`` gossip: the own model moves towards each received one by at most a clipping radius
  ("Byzantine-robust decentralized learning via ClippedGossip", He, Karimireddy, Jaggi, 2022).
* :class:`Peer` — presents a ranking sampled from a Plackett-Luce distribution over its scores, turns
  clicks into pairwise preferences (a clicked document beats the unclicked ones ranked above it and the
  next one below), takes a logistic pairwise gradient step — the scheme of PDGD ("Differentiable Unbiased
  Online Learning to Rank", Oosterhuis & de Rijke, 2018) without its debiasing weights — and merges the
  models its neighbours send (bytes on the wire: :meth:`Peer.message` / :meth:`Peer.receive`).

Reference for the setting: "G-Rank: Unsupervised Continuous Learn-to-Rank for Edge Devices in a P2P
Network" (Ciocîrlan, Stan, Tarkhanov, 2023).
"""

from __future__ import annotations

import struct

import numpy as np

from ...errors import FileFormatError, ValidationError

__all__ = ["PositionBiasedClicks", "Peer", "aggregate", "ndcg10", "AGGREGATIONS"]

AGGREGATIONS = ("mean", "median", "trimmed", "clipped")
_HEADER = struct.Struct("<4sIIH")  # magic, sender id, round, n_features
_MAGIC = b"GRK1"


class PositionBiasedClicks:
    """Position-biased clicks drawn from the qrels (the simulator's ground truth)."""

    def __init__(self, *, eta: float = 1.0, click_relevant: float = 0.9, click_irrelevant: float = 0.05):
        self.eta = eta
        self.click_relevant = click_relevant
        self.click_irrelevant = click_irrelevant

    def clicks(self, grades_in_order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Boolean clicks (n,) for documents shown in this order with these qrels grades."""
        n = len(grades_in_order)
        examine = rng.random(n) < (1.0 / np.arange(1, n + 1)) ** float(self.eta)
        p = np.where(grades_in_order > 0, self.click_relevant, self.click_irrelevant)
        return examine & (rng.random(n) < p)


def ndcg10(w: np.ndarray, cands) -> np.ndarray:
    """nDCG@10 (n_queries,) of ranking each query's candidates by ``features @ w`` (BEIR's linear gains)."""
    s = np.where(cands.valid, cands.features @ w, -np.inf)
    top = np.argsort(-s, axis=1, kind="stable")[:, :10]
    g = np.take_along_axis(np.where(cands.valid, cands.grades, 0.0), top, axis=1)
    dcg = (g / np.log2(np.arange(2, 12))).sum(axis=1)
    return np.where(cands.ideal_dcg10 > 0, dcg / np.maximum(cands.ideal_dcg10, 1e-12), 0.0)


def aggregate(models: list, method: str = "mean", *, trim: float = 0.2, clip_ratio: float = 0.5) -> np.ndarray:
    """Combine model vectors: ``mean``, coordinate-wise ``median``, ``trimmed`` mean, or ``clipped`` gossip.

    ``trimmed`` drops ``trim`` of the values per side and coordinate, at least one when there are three or
    more (with two values it is their mean). ``clipped`` treats ``models[0]`` as the own model ``w``:
    ``w + mean_j clip(w_j - w, tau)``, ``clip`` scaling a difference down to norm ``tau``, with ``tau`` the
    median distance ``||w_j - w||`` of the received models (ClippedGossip's adaptive radius), at most
    ``clip_ratio * ||w||`` so that a single received model cannot move the own one far.

    Examples
    --------
    >>> aggregate([[1.0, 2.0], [1.2, 2.2], [-50.0, 90.0]], "median").tolist()
    [1.0, 2.2]
    """
    if method not in AGGREGATIONS:
        raise ValidationError(f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {method!r}")
    M = np.asarray(models, np.float64)
    if M.ndim != 2 or len(M) == 0:
        raise ValidationError(f"aggregate needs a non-empty list of equal-length vectors, got shape {M.shape}")
    if method == "mean":
        return M.mean(axis=0)
    if method == "median":
        return np.median(M, axis=0)
    if method == "clipped":
        if len(M) == 1:
            return M[0]
        diffs = M[1:] - M[0]
        dist = np.linalg.norm(diffs, axis=1)
        tau = min(float(np.median(dist)), float(clip_ratio) * float(np.linalg.norm(M[0])))
        scale = np.minimum(1.0, tau / np.maximum(dist, 1e-12))
        return M[0] + (diffs * scale[:, None]).mean(axis=0)
    from scipy.stats import trim_mean

    n = len(M)
    proportion = max(float(trim), 1.0 / n) if n >= 3 else 0.0
    return trim_mean(M, proportion, axis=0)


class Peer:
    """A peer of the G-Rank network: local online learning to rank from clicks + gossip of its model.

    Parameters
    ----------
    peer_id : int
    w0 : ndarray (n_features,), the starting model (the static zero-shot ranker)
    lr : float, learning rate of the pairwise logistic step
    temperature : float, Plackett-Luce temperature of the presented rankings (exploration)
    shown : int, documents shown per query
    aggregation : {"mean", "median", "trimmed", "clipped"}, how received models are merged with the own one
    poisoned : bool, the peer sends ``-poison_scale * w`` instead of ``w`` (a Byzantine peer)
    """

    def __init__(self, peer_id: int, w0, *, lr: float = 0.05, temperature: float = 0.3, shown: int = 10,
                 aggregation: str = "mean", poisoned: bool = False, poison_scale: float = 10.0, rng=None):
        self.peer_id = peer_id
        self.w = np.array(w0, dtype=np.float64)
        self.lr = lr
        self.temperature = temperature
        self.shown = shown
        self.aggregation = aggregation
        self.poisoned = poisoned
        self.poison_scale = poison_scale
        self.rng = np.random.default_rng(rng)
        self.inbox: list = []
        self.queries_seen = 0

    def present(self, features: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Candidate rows shown, in order: a Plackett-Luce sample (Gumbel top-k of scores / temperature)."""
        s = features @ self.w / self.temperature + self.rng.gumbel(size=len(features))
        s = np.where(valid, s, -np.inf)
        k = min(self.shown, int(valid.sum()))
        return np.argsort(-s, kind="stable")[:k]

    def learn(self, features: np.ndarray, shown: np.ndarray, clicked: np.ndarray) -> int:
        """Pairwise logistic step from one query's clicks; returns the number of preference pairs used."""
        self.queries_seen += 1
        if not clicked.any():
            return 0
        last = int(np.flatnonzero(clicked).max())
        grad = np.zeros_like(self.w)
        pairs = 0
        for c in np.flatnonzero(clicked):
            # clicked beats every unclicked document shown above the last click and the one just below it
            for o in range(min(last + 2, len(shown))):
                if clicked[o]:
                    continue
                diff = features[shown[c]] - features[shown[o]]
                grad += diff / (1.0 + np.exp(float(self.w @ diff)))
                pairs += 1
        if pairs:
            self.w += self.lr * grad / pairs
        return pairs

    # -- gossip ----------------------------------------------------------------------------------------
    def message(self, round_: int) -> bytes:
        """The model sent to neighbours: a 14-byte header + float32 weights (poisoned peers lie)."""
        w = -self.poison_scale * self.w if self.poisoned else self.w
        return _HEADER.pack(_MAGIC, self.peer_id, round_, len(w)) + w.astype("<f4").tobytes()

    def receive(self, payload: bytes) -> None:
        if len(payload) < _HEADER.size:
            raise FileFormatError(f"gossip message of {len(payload)} bytes is shorter than its header")
        magic, _, _, n = _HEADER.unpack_from(payload)
        if magic != _MAGIC or len(payload) != _HEADER.size + 4 * n or n != len(self.w):
            raise FileFormatError(f"malformed gossip message ({len(payload)} bytes, {n} weights, "
                                  f"expected {len(self.w)})")
        self.inbox.append(np.frombuffer(payload, "<f4", offset=_HEADER.size).astype(np.float64))

    def merge(self) -> None:
        """Merge the received models with the own one (``aggregation``), then empty the inbox."""
        if self.inbox:
            self.w = aggregate([self.w] + self.inbox, self.aggregation)
        self.inbox = []
