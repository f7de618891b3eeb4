"""Where the G-Rank peers run: in this process (``"local"``) or as Ray actors, one process each (``"ray"``).

Both backends offer the same four operations to :func:`~.simulate.simulate`, which owns the schedule
(which peers are online, who gossips to whom, when to evaluate):

* ``answer(ids, n)`` — each listed peer answers ``n`` queries of its own stream: it samples a query,
  presents a ranking, sees simulated clicks and learns (peers do not interact between gossip rounds, so
  ``n`` steps of one peer in a row equal ``n`` interleaved steps);
* ``messages(ids, round_)`` — the serialised models (bytes) the listed peers send;
* ``deliver(inboxes)`` then ``merge(ids)`` — hand each receiver its messages, in sender order, then merge;
* ``weights()`` — every peer's current model, to evaluate.

With ``"ray"`` every peer is an actor (its own worker process) holding its :class:`~.peer.Peer` and the
stream's candidates; only bytes and weight vectors cross process boundaries, and every random draw is
made by the peer's own generator or by the caller, so a Ray run returns exactly the numbers of a local run.
"""

from __future__ import annotations

import numpy as np

from ...errors import ValidationError
from .peer import Peer, PositionBiasedClicks

__all__ = ["BACKENDS", "LocalNetwork", "RayNetwork", "make_network", "answer_queries"]

BACKENDS = ("local", "ray")


def answer_queries(peer: Peer, train, clicks: PositionBiasedClicks, n: int) -> None:
    """``n`` queries of ``peer``'s stream: sample a query of ``train``, present, draw clicks, learn."""
    for _ in range(n):
        q = int(peer.rng.integers(len(train)))
        order = peer.present(train.features[q], train.valid[q])
        peer.learn(train.features[q], order, clicks.clicks(train.grades[q][order], peer.rng))


class LocalNetwork:
    """Every peer in this process (reproducible, no start-up cost)."""

    def __init__(self, peers: list, train, clicks: PositionBiasedClicks):
        self.peers, self.train, self.clicks = peers, train, clicks

    def answer(self, ids, n: int) -> None:
        for i in ids:
            answer_queries(self.peers[i], self.train, self.clicks, n)

    def messages(self, ids, round_: int) -> dict:
        return {int(i): self.peers[i].message(round_) for i in ids}

    def deliver(self, inboxes: dict) -> None:
        for j, payloads in inboxes.items():
            for payload in payloads:
                self.peers[j].receive(payload)

    def merge(self, ids) -> None:
        for i in ids:
            self.peers[i].merge()

    def weights(self) -> list:
        return [p.w.copy() for p in self.peers]

    def close(self) -> None:
        pass


class _PeerProcess:
    """The body of a Ray actor: one peer and its query stream."""

    def __init__(self, peer: Peer, train, clicks: PositionBiasedClicks):
        peer.w = np.array(peer.w)  # Ray hands over arrays read-only (zero-copy); the model is updated in place
        self.peer, self.train, self.clicks = peer, train, clicks

    def answer(self, n: int) -> None:
        answer_queries(self.peer, self.train, self.clicks, n)

    def message(self, round_: int) -> bytes:
        return self.peer.message(round_)

    def receive(self, payloads: list) -> None:
        for payload in payloads:
            self.peer.receive(payload)

    def merge(self) -> None:
        self.peer.merge()

    def weights(self) -> np.ndarray:
        return self.peer.w.copy()


class RayNetwork:
    """One Ray actor (worker process) per peer; starts a local Ray runtime if none is running.

    Actors reserve no CPU (``num_cpus=0``), so ten peers run on a 2-core machine; the runtime this object
    started is shut down by :meth:`close`.
    """

    def __init__(self, peers: list, train, clicks: PositionBiasedClicks, *, num_cpus: int | None = None):
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValidationError("backend='ray' needs Ray: pip install 'hashlearn[distributed]'") from exc
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        actor = ray.remote(num_cpus=0)(_PeerProcess)
        train_ref = ray.put(train)
        self.actors = [actor.remote(p, train_ref, clicks) for p in peers]

    def _get(self, refs):
        return self._ray.get(refs)

    def answer(self, ids, n: int) -> None:
        self._get([self.actors[i].answer.remote(n) for i in ids])

    def messages(self, ids, round_: int) -> dict:
        ids = [int(i) for i in ids]
        return dict(zip(ids, self._get([self.actors[i].message.remote(round_) for i in ids])))

    def deliver(self, inboxes: dict) -> None:
        self._get([self.actors[j].receive.remote(list(p)) for j, p in inboxes.items() if p])

    def merge(self, ids) -> None:
        self._get([self.actors[i].merge.remote() for i in ids])

    def weights(self) -> list:
        return self._get([a.weights.remote() for a in self.actors])

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []
        if self._started:
            self._ray.shutdown()


def make_network(backend: str, peers: list, train, clicks: PositionBiasedClicks):
    """A :class:`LocalNetwork` or :class:`RayNetwork` over ``peers``."""
    if backend not in BACKENDS:
        raise ValidationError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return LocalNetwork(peers, train, clicks) if backend == "local" else RayNetwork(peers, train, clicks)
