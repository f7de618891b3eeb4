"""Training of :class:`~hashlearn.apps.blocking.NeuralBlocker`'s projection (torch, imported here only).

Model: ``u = x + W2 gelu(W1 x)`` (a residual MLP, ``W2`` initialised at zero, so training starts from the
frozen embeddings), hashed by fixed random hyperplanes ``R``. Loss on a batch of positive pairs with
in-batch negatives: InfoNCE on the cosine of ``u`` plus InfoNCE on the relaxed Hamming agreement
``mean(tanh(β u_a R) tanh(β u_b R))``.

No global state is touched: every random draw (hyperplanes, initial weights, batch order) comes from
local generators seeded with ``seed``, and torch's thread count is restored after training.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["TrainedProjection", "train_projection", "limit_torch_threads"]

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
