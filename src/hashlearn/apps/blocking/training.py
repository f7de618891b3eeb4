"""Training for :class:`~hashlearn.apps.blocking.NeuralBlocker` (torch, imported here only).

Two losses:

* :func:`nlsh_loss` -- the LSH-based loss of NLSHBlock on triplets (anchor, positive, hard negatives):
  ``max(R, d(a, p)) - min(c R, d(a, n))``, where ``d`` is the SimHash collision distance
  (:func:`simhash_distance`, the expected fraction of differing hyperplane bits). Matches are pulled
  inside the collision radius ``R``, non-matches pushed beyond ``c R``; :func:`train_triplets` runs it
  over any differentiable encoder (the fine-tuned top layers of the language model, or the projection).
* InfoNCE with in-batch negatives (:func:`train_projection`, the residual projection
  ``u = x + W2 gelu(W1 x)`` over frozen embeddings, ``W2`` initialised at zero): InfoNCE on the cosine
  of ``u`` plus InfoNCE on the relaxed Hamming agreement ``mean(tanh(β u_a R) tanh(β u_b R))``.

No global state is touched: every random draw (hyperplanes, initial weights, batch order) comes from
local generators seeded with ``seed``, and torch's thread count is restored after training.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["TrainedProjection", "train_projection", "limit_torch_threads", "simhash_distance", "nlsh_loss",
           "train_triplets"]

_BETA = 8.0  # sharpness of the tanh relaxation of sign()


@contextmanager
def limit_torch_threads(n: int):
    """Run the block with at most ``n`` torch threads; the previous count is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if before > n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _projection_net(d: int, hidden: int, generator):
    """``x -> W2 gelu(W1 x)`` with ``W1`` initialised as ``torch.nn.Linear`` does (from ``generator``) and
    ``W2`` at zero; built with ``skip_init`` so that torch's global generator is not drawn from."""
    import torch

    first = torch.nn.utils.skip_init(torch.nn.Linear, d, hidden)
    last = torch.nn.utils.skip_init(torch.nn.Linear, hidden, d)
    torch.nn.init.kaiming_uniform_(first.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(d)
    torch.nn.init.uniform_(first.bias, -bound, bound, generator=generator)
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return torch.nn.Sequential(first, torch.nn.GELU(), last)


def _symmetric_infonce(S, labels):
    import torch.nn.functional as F

    return 0.5 * (F.cross_entropy(S, labels) + F.cross_entropy(S.T, labels))


def _batch_loss(net, a, b, R, temperature: float):
    """InfoNCE on the cosine plus InfoNCE on the relaxed Hamming agreement of the pairs ``(a_i, b_i)``."""
    import torch
    import torch.nn.functional as F

    za = F.normalize(a + net(a), dim=1)
    zb = F.normalize(b + net(b), dim=1)
    labels = torch.arange(a.shape[0])
    cos = za @ zb.T / temperature
    ham = (torch.tanh(_BETA * (za @ R)) @ torch.tanh(_BETA * (zb @ R)).T) / R.shape[1] / temperature
    return _symmetric_infonce(cos, labels) + _symmetric_infonce(ham, labels)


def _train_epoch(net, opt, A, B, R, *, temperature: float, batch_size: int, generator) -> float:
    """One pass over the pairs in a random order; the mean loss per pair."""
    import torch

    n = A.shape[0]
    perm = torch.randperm(n, generator=generator)
    tot, cnt = 0.0, 0
    for s in range(0, n, batch_size):
        idx = perm[s : s + batch_size]
        if idx.numel() < 2:
            continue
        loss = _batch_loss(net, A[idx], B[idx], R, temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tot += float(loss.detach()) * idx.numel()
        cnt += idx.numel()
    return tot / max(cnt, 1)


@dataclass
class TrainedProjection:
    """What :func:`train_projection` returns: the net (eval mode), the hyperplanes (d, n_bits) float32 and
    the mean loss of every epoch."""

    net: object
    hyperplanes: np.ndarray
    losses: list


def train_projection(A: np.ndarray, B: np.ndarray, *, n_bits: int, hidden: int, epochs: int, batch_size: int,
                     lr: float, temperature: float, seed: int, max_threads: int = 2) -> TrainedProjection:
    """Fine-tune the residual projection on positive pairs ``(A[i], B[i])`` (n, d) float32.

    Parameters are checked by the caller. ``seed`` drives the hyperplanes and the batch order (one
    generator) and the initial weights (a second generator with the same seed).
    """
    import torch

    with limit_torch_threads(max_threads):
        d = A.shape[1]
        g = torch.Generator().manual_seed(seed)
        hyperplanes = torch.randn(d, n_bits, generator=g).numpy()
        net = _projection_net(d, hidden, torch.Generator().manual_seed(seed))
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        R = torch.from_numpy(hyperplanes) / np.sqrt(d)
        At, Bt = torch.from_numpy(A), torch.from_numpy(B)
        losses = [_train_epoch(net, opt, At, Bt, R, temperature=temperature, batch_size=batch_size, generator=g)
                  for _ in range(epochs)]
    return TrainedProjection(net.eval(), hyperplanes, losses)


# -- NLSH loss on triplets ---------------------------------------------------------------------------
def simhash_distance(za, zb):
    """Expected fraction of differing SimHash bits of unit vectors: ``angle(za, zb) / pi`` (last axis).

    For a random hyperplane the two sides differ with probability ``angle / pi`` (Charikar 2002), so this
    is the Hamming distance of the codes in expectation, and differentiable.
    """
    import torch

    cos = (za * zb).sum(-1).clamp(-1.0 + 1e-6, 1.0 - 1e-6)
    return torch.arccos(cos) / math.pi


def nlsh_loss(za, zp, zn, valid, radius: float, c: float):
    """NLSHBlock's loss, ``max(R, d(a, p)) - min(c R, d(a, n))``, averaged over anchors.

    Parameters
    ----------
    za, zp : torch.Tensor of shape (B, d)
        Unit vectors of anchors and their positives.
    zn : torch.Tensor of shape (B, m, d)
        Unit vectors of each anchor's negatives.
    valid : torch.Tensor of shape (B, m), float
        1 where a negative exists; the negative term is averaged over valid ones.
    radius, c : float
        Collision radius ``R`` (in the units of :func:`simhash_distance`) and the gap factor ``c > 1``.

    References
    ----------
    R. Wang et al., "Neural Locality Sensitive Hashing for Entity Blocking", SIAM SDM 2024.
    """
    dp = simhash_distance(za, zp)
    dn = simhash_distance(za[:, None, :], zn)
    neg = (dn.clamp_max(c * radius) * valid).sum(1) / valid.sum(1).clamp_min(1.0)
    return (dp.clamp_min(radius) - neg).mean()


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, unit="step")


def train_triplets(forward, parameters, anchors: np.ndarray, positives: np.ndarray, negatives: np.ndarray, *,
                   radius: float, c: float, epochs: int, batch_size: int, lr: float, seed: int,
                   progress: bool = False, max_threads: int = 2, desc: str = "NLSH fine-tuning") -> list:
    """Minimise :func:`nlsh_loss` over triplets; returns the mean loss of every epoch.

    Parameters
    ----------
    forward : callable
        ``forward(ids: ndarray of int64) -> torch.Tensor (len(ids), d)`` of unit vectors, differentiable
        in ``parameters``; called once per batch on the distinct records the batch needs.
    parameters : iterable of torch.nn.Parameter
    anchors, positives : ndarray of shape (t,), int64
        Record ids (the ids ``forward`` takes).
    negatives : ndarray of shape (t, m), int64
        Record ids, ``-1`` for none.
    radius, c : float
        See :func:`nlsh_loss`.
    epochs, batch_size : int
    lr : float
        AdamW learning rate (weight decay 0.01).
    seed : int
        Seeds the batch order (a local generator; the global torch RNG is not touched).
    progress : bool
        Show a progress bar (tqdm) over the optimisation steps.
    max_threads : int
        Torch threads while training (restored afterwards).
    """
    import torch

    t = anchors.shape[0]
    n_batches = -(-t // batch_size)
    with limit_torch_threads(max_threads):
        g = torch.Generator().manual_seed(int(seed))
        opt = torch.optim.AdamW(list(parameters), lr=lr, weight_decay=0.01)
        losses = []
        with _progress_bar(epochs * n_batches, desc, progress) as bar:
            for _ in range(epochs):
                perm = torch.randperm(t, generator=g).numpy()
                tot = 0.0
                for s in range(0, t, batch_size):
                    b = perm[s : s + batch_size]
                    loss = _triplet_batch_loss(forward, anchors[b], positives[b], negatives[b], radius, c)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    tot += float(loss.detach()) * b.size
                    bar.update(1)
                losses.append(tot / max(t, 1))
    return losses


def _triplet_batch_loss(forward, a: np.ndarray, p: np.ndarray, n: np.ndarray, radius: float, c: float):
    """Encode the distinct records of a batch once and apply :func:`nlsh_loss`."""
    import torch

    ids, inv = np.unique(np.concatenate([a, p, n.ravel()]), return_inverse=True)
    has = ids[0] < 0  # -1 (no negative) sorts first
    Z = forward(ids[1:] if has else ids)
    if has:
        Z = torch.cat([torch.zeros(1, Z.shape[1], dtype=Z.dtype), Z])
    B, m = n.shape
    za, zp = Z[inv[:B]], Z[inv[B : 2 * B]]
    zn = Z[inv[2 * B :]].reshape(B, m, -1)
    valid = torch.from_numpy((n >= 0).astype(np.float32))
    return nlsh_loss(za, zp, zn, valid, radius, c)
