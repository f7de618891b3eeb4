"""Vertical federated learning with real processes, plain embeddings vs hash codes (HashVFL), and the
top party's attacks on what it receives: data reconstruction and label inference.

Parties hold different feature columns of the same rows (e.g. the left and right halves of MNIST
images); each trains a bottom model whose output it sends to the top party, which holds the labels and
trains the top model. With ``hashed=True`` a party sends the sign of its output as packed bits
(``ceil(r / 8)`` bytes per row) and back-propagates through the straight-through sign
(:func:`~hashlearn.robust._common.sign_ste`), the defence of "All You Need Is Hashing: Defending Against
Data Reconstruction Attack in Vertical Federated Learning" (Qiu et al., 2022); with ``hashed=False`` it
sends its float32 embedding. The top returns the gradient of the loss with respect to each message.

:func:`train_vfl` runs the top (rank 0) and the parties (ranks 1..k) as separate processes that talk
over ``torch.distributed`` (gloo, point-to-point ``send``/``recv``). :func:`reconstruction_attack`
and :func:`label_inference_attack` play the curious top party with an auxiliary set of rows whose raw
features (or labels) it knows.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from ..errors import ValidationError
from ..hashing.base import check_random_state
from ._common import import_torch, sign_ste

__all__ = ["check_parties", "train_vfl", "reconstruction_attack", "label_inference_attack", "VFLResult"]


def check_parties(parties, y=None, *, name: str = "parties") -> list:
    """Feature blocks (n, d_k) float32 of the parties: a list of ≥ 1 finite 2-D arrays with equal row counts
    (and as many rows as ``y``); else a ValidationError naming the mismatch."""
    if not isinstance(parties, (list, tuple)) or len(parties) == 0:
        raise ValidationError(f"{name} must be a non-empty list of 2-D arrays, got {type(parties).__name__}")
    out = []
    for k, X in enumerate(parties):
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] == 0:
            raise ValidationError(f"{name}[{k}] must be a 2-D array (n, d), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValidationError(f"{name}[{k}] contains NaN or infinite values")
        out.append(np.ascontiguousarray(X))
    n0 = out[0].shape[0]
    for k, X in enumerate(out[1:], start=1):
        if X.shape[0] != n0:
            raise ValidationError(f"{name}[{k}] has {X.shape[0]} rows but {name}[0] has {n0}: the parties must "
                                  f"hold the same rows (aligned sample ids)")
    if y is not None and np.asarray(y).shape[0] != n0:
        raise ValidationError(f"the labels have {np.asarray(y).shape[0]} rows but the parties hold {n0}")
    if n0 == 0:
        raise ValidationError(f"{name} hold no rows")
    return out


class VFLResult(dict):
    """What :func:`train_vfl` returns (a dict): ``acc`` (top's test accuracy), ``messages`` (list per
    party of what the top received for the ``reveal`` rows, float32 (n_reveal, r): embeddings or ±1
    codes), ``reveal`` (their row indices into the test arrays), ``bytes_forward`` (per party, bytes of
    the messages sent to the top while training), ``bits_per_row`` (per party and row, one message),
    ``train_s`` (wall time of the training loop at the top)."""


def _bottom(torch, d, r, hidden):
    nn = torch.nn
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, r), nn.BatchNorm1d(r, affine=False))


def _top(torch, r_total, hidden, n_classes):
    nn = torch.nn
    return nn.Sequential(nn.Linear(r_total, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def _pack(torch, m):
    """±1 float (n, r) → packed bits uint8 (n, ceil(r/8))."""
    return torch.from_numpy(np.packbits((m.detach().numpy() > 0).astype(np.uint8), axis=1))


def _unpack(torch, b, r):
    bits = np.unpackbits(b.numpy(), axis=1, count=r).astype(np.float32)
    return torch.from_numpy(2.0 * bits - 1.0)


def _party_loop(dist, torch, rank, cfg, X, X_test):
    r, hashed = cfg["n_bits"], cfg["hashed"]
    gen = torch.Generator().manual_seed(cfg["seed"] + 1000 * rank)
    with torch.random.fork_rng(devices=[]):
        net = _bottom(torch, X.shape[1], r, cfg["hidden"])
    from ..hashing.deep._nets import init_weights

    init_weights(net, gen)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    Xt = torch.from_numpy(X)
    sent = 0
    for order in cfg["orders"]:
        net.train()
        for s in range(0, len(order), cfg["batch_size"]):
            idx = torch.from_numpy(order[s : s + cfg["batch_size"]])
            z = net(Xt[idx])
            m = sign_ste(z) if hashed else z
            payload = _pack(torch, m) if hashed else m.detach().contiguous()
            dist.send(payload, dst=0)
            sent += payload.numel() * payload.element_size()
            grad = torch.empty(m.shape)
            dist.recv(grad, src=0)
            opt.zero_grad()
            m.backward(grad)
            opt.step()
    net.eval()
    with torch.no_grad():
        z = net(torch.from_numpy(X_test))
        m = torch.where(z >= 0, 1.0, -1.0) if hashed else z
        dist.send(_pack(torch, m) if hashed else m.contiguous(), dst=0)
    return sent


def _top_loop(dist, torch, cfg, y, y_test, dims_test):
    r, hashed, k = cfg["n_bits"], cfg["hashed"], cfg["n_parties"]
    gen = torch.Generator().manual_seed(cfg["seed"])
    with torch.random.fork_rng(devices=[]):
        net = _top(torch, r * k, cfg["hidden"], cfg["n_classes"])
    from ..hashing.deep._nets import init_weights

    init_weights(net, gen)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    yt = torch.from_numpy(y)
    nbytes = (r + 7) // 8
    t0 = time.perf_counter()
    for order in cfg["orders"]:
        net.train()
        for s in range(0, len(order), cfg["batch_size"]):
            idx = order[s : s + cfg["batch_size"]]
            msgs = []
            for p in range(1, k + 1):
                if hashed:
                    buf = torch.empty((len(idx), nbytes), dtype=torch.uint8)
                    dist.recv(buf, src=p)
                    msgs.append(_unpack(torch, buf, r).requires_grad_(True))
                else:
                    buf = torch.empty((len(idx), r))
                    dist.recv(buf, src=p)
                    msgs.append(buf.requires_grad_(True))
            loss = torch.nn.functional.cross_entropy(net(torch.cat(msgs, dim=1)), yt[torch.from_numpy(idx)])
            opt.zero_grad()
            loss.backward()
            opt.step()
            for p, m in enumerate(msgs, start=1):
                dist.send(m.grad.contiguous(), dst=p)
    train_s = time.perf_counter() - t0
    net.eval()
    n_test = dims_test
    received = []
    for p in range(1, k + 1):
        if hashed:
            buf = torch.empty((n_test, nbytes), dtype=torch.uint8)
            dist.recv(buf, src=p)
            received.append(_unpack(torch, buf, r))
        else:
            buf = torch.empty((n_test, r))
            dist.recv(buf, src=p)
            received.append(buf)
    with torch.no_grad():
        pred = net(torch.cat(received, dim=1)).argmax(1).numpy()
    acc = float(np.mean(pred == y_test))
    return acc, [m.numpy() for m in received], train_s


def _worker(rank, world, init_file, cfg, data, out_dir):
    torch = import_torch()
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        if rank == 0:
            acc, received, train_s = _top_loop(dist, torch, cfg, data["y"], data["y_test"], data["n_test"])
            np.savez(os.path.join(out_dir, "top.npz"), acc=acc, train_s=train_s,
                     **{f"m{p}": m for p, m in enumerate(received)})
        else:
            sent = _party_loop(dist, torch, rank, cfg, data["X"], data["X_test"])
            np.savez(os.path.join(out_dir, f"party{rank}.npz"), sent=sent)
    finally:
        dist.destroy_process_group()


def _spawn_target(rank, world, init_file, cfg, payloads, out_dir):
    _worker(rank, world, init_file, cfg, payloads[rank], out_dir)


def train_vfl(parties, y, parties_test, y_test, *, hashed: bool, n_bits: int = 32, hidden: int = 128,
              epochs: int = 5, batch_size: int = 128, lr: float = 1e-3, random_state=None, workdir=None) -> VFLResult:
    """Train a vertical federated model with the top and each party in its own process (gloo).

    Parameters
    ----------
    parties : list of ndarray (n, d_k) float32 — each party's training columns (same rows, same order)
    y : ndarray (n,) int — labels, held by the top only
    parties_test : list of ndarray (n_test, d_k); y_test : ndarray (n_test,)
    hashed : bool — send sign codes as packed bits (HashVFL) instead of float32 embeddings
    n_bits : int — width ``r`` of each party's message (embedding dimensions or bits)
    hidden, epochs, batch_size, lr — bottom/top MLP width and Adam training
    random_state — seeds the row orders (shared by all processes, as aligned sample ids would be) and
        every process's weights (``seed + 1000 · rank``)
    workdir : folder for the rendezvous file and the results (default: a temporary folder)

    Returns
    -------
    VFLResult — ``acc``, ``messages`` (what the top received for every test row, per party),
    ``bytes_forward``, ``bits_per_row``, ``train_s``.
    """
    import_torch()  # a clear error when torch is missing
    import torch.multiprocessing as mp

    from ..params import check_int_param

    parties = check_parties(parties, y)
    parties_test = check_parties(parties_test, y_test, name="parties_test")
    if len(parties_test) != len(parties):
        raise ValidationError(f"parties_test has {len(parties_test)} blocks but parties has {len(parties)}")
    for k, (a, b) in enumerate(zip(parties, parties_test)):
        if a.shape[1] != b.shape[1]:
            raise ValidationError(f"party {k}: {a.shape[1]} training columns but {b.shape[1]} test columns")
    for name, v in (("n_bits", n_bits), ("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size)):
        check_int_param(v, name, min_val=1)
    y, y_test = np.asarray(y, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
    classes = np.unique(y)
    y_idx = np.searchsorted(classes, y)
    y_test_idx = np.where(np.isin(y_test, classes), np.searchsorted(classes, y_test).clip(0, classes.size - 1), -1)
    rng = check_random_state(random_state)
    seed = int(rng.integers(2**31))
    n = parties[0].shape[0]
    orders = [rng.permutation(n).astype(np.int64) for _ in range(int(epochs))]
    cfg = {"n_bits": int(n_bits), "hashed": bool(hashed), "hidden": int(hidden), "lr": float(lr),
           "batch_size": int(batch_size), "orders": orders, "seed": seed, "n_parties": len(parties),
           "n_classes": int(classes.size)}
    payloads = [{"y": y_idx, "y_test": y_test_idx, "n_test": parties_test[0].shape[0]}]
    payloads += [{"X": X, "X_test": Xt} for X, Xt in zip(parties, parties_test)]
    world = len(parties) + 1
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        init_file = os.path.join(tmp, "rendezvous")
        mp.spawn(_spawn_target, args=(world, init_file, cfg, payloads, tmp), nprocs=world, join=True)
        with np.load(os.path.join(tmp, "top.npz")) as z:
            acc, train_s = float(z["acc"]), float(z["train_s"])
            messages = [z[f"m{p}"].astype(np.float32) for p in range(len(parties))]
        sent = []
        for p in range(1, world):
            with np.load(os.path.join(tmp, f"party{p}.npz")) as z:
                sent.append(int(z["sent"]))
    bits = int(n_bits) if hashed else 32 * int(n_bits)
    return VFLResult(acc=acc, messages=messages, bytes_forward=sent, bits_per_row=bits, train_s=train_s,
                     hashed=bool(hashed), n_bits=int(n_bits))


def reconstruction_attack(messages, X_party, aux, test, *, hidden: int = 256, epochs: int = 60,
                          batch_size: int = 64, lr: float = 1e-3, random_state=None):
    """The top party's decoder: learn ``message → raw features`` on the auxiliary rows it knows, apply it to
    the other rows. Returns ``(X_rec (len(test), d) float32, mse)``.

    A learned inversion model (an MLP decoder, the data reconstruction attack HashVFL defends against),
    trained with Adam on the ``aux`` rows (indices into ``messages`` / ``X_party``) and evaluated on the
    ``test`` rows, MSE averaged over rows and features.
    """
    torch = import_torch()
    from ._common import torch_generator

    M = np.asarray(messages, dtype=np.float32)
    X = np.asarray(X_party, dtype=np.float32)
    if M.shape[0] != X.shape[0]:
        raise ValidationError(f"messages have {M.shape[0]} rows but X_party has {X.shape[0]}")
    rng = check_random_state(random_state)
    gen = torch_generator(rng)
    nn = torch.nn
    with torch.random.fork_rng(devices=[]):
        dec = nn.Sequential(nn.Linear(M.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                            nn.Linear(hidden, X.shape[1]))
    from ..hashing.deep._nets import init_weights

    init_weights(dec, gen)
    opt = torch.optim.Adam(dec.parameters(), lr=float(lr))
    Ma, Xa = torch.from_numpy(M[aux]), torch.from_numpy(X[aux])
    for _ in range(int(epochs)):
        order = torch.randperm(Ma.shape[0], generator=gen)
        for s in range(0, Ma.shape[0], int(batch_size)):
            idx = order[s : s + int(batch_size)]
            loss = ((dec(Ma[idx]) - Xa[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        rec = dec(torch.from_numpy(M[test])).numpy()
    return rec, float(np.mean((rec - X[test]) ** 2))


def label_inference_attack(messages, y, aux, test) -> float:
    """Accuracy of labels inferred from the messages of one party: a logistic regression fitted on the
    ``aux`` rows whose labels the attacker knows, scored on the ``test`` rows."""
    from sklearn.linear_model import LogisticRegression

    M = np.asarray(messages, dtype=np.float32)
    y = np.asarray(y)
    clf = LogisticRegression(max_iter=500).fit(M[aux], y[aux])
    return float(np.mean(clf.predict(M[test]) == y[test]))
