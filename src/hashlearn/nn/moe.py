"""LSH-MoE: a mixture-of-experts layer whose token dispatch is compressed by cross-polytope LSH clustering.

Top-1 routing: token ``x_i`` goes to expert ``e_i = argmax softmax(G x_i)`` and its output is
``p_i * y_i``. Before the all-to-all that carries an expert's tokens to it, the tokens bound for that
expert are clustered by cross-polytope LSH (``n_hashes`` random rotations of the normalised tokens; a
cluster is a distinct tuple of buckets) and only the cluster centroids are sent. The expert runs on the
centroids, the centroid outputs are sent back, and each token's output is restored with residual
compensation ``y_i = E(c_{b(i)}) + (x_i - c_{b(i)})`` (the expert is an FFN from and to the model
dimension). Compression factor = tokens / clusters; more hashes give more, smaller clusters.

:func:`exchange` is the all-to-all over ``torch.distributed`` point-to-point messages (works on gloo),
counting the bytes each rank sends; :func:`distributed_forward` runs the layer with expert ``r`` on rank
``r``. The distributed path is forward only (no autograd across processes); training uses
:meth:`LSHMoE.forward`, which computes the same numbers in one process and reports the bytes the
all-to-all would carry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ValidationError
from ..params import check_int_param
from .lsh import cross_polytope_buckets, random_rotation

__all__ = ["LSHMoE", "lsh_compress", "lsh_restore", "exchange", "distributed_forward"]


def lsh_compress(x: torch.Tensor, rotations: torch.Tensor):
    """Cluster rows of ``x`` (n, d) by cross-polytope LSH; returns ``(centroids (c, d), assign (n,) int64)``.

    Rows with the same bucket under every rotation (``rotations`` (L, d, d)) form one cluster; its
    centroid is their mean. ``c <= n``; ``c = n`` when every row is alone.

    References
    ----------
    X. Nie et al., "LSH-MoE: Communication-efficient MoE Training via Locality-Sensitive Hashing",
    NeurIPS 2024.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.05], [0.0, 1.0]])
    >>> c, a = lsh_compress(x, torch.stack([random_rotation(2, seed=0)]))
    >>> a.tolist()[0] == a.tolist()[1], c.shape[0] <= 3
    (True, True)
    """
    if x.shape[0] == 0:
        return x, torch.zeros(0, dtype=torch.int64, device=x.device)
    buckets = cross_polytope_buckets(F.normalize(x.detach(), dim=-1), rotations)  # (n, L)
    _, assign = torch.unique(buckets, dim=0, return_inverse=True)
    n_clusters = int(assign.max()) + 1
    sums = torch.zeros(n_clusters, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, assign, x)
    counts = torch.bincount(assign, minlength=n_clusters).to(x.dtype).unsqueeze(1)
    return sums / counts, assign


def lsh_restore(y_centroids, assign, x, centroids):
    """Token outputs from centroid outputs with residual compensation: ``y[c(i)] + (x_i - centroid[c(i)])``."""
    return y_centroids[assign] + (x - centroids[assign])


class LSHMoE(torch.nn.Module):
    """Top-1 mixture of FFN experts with LSH-compressed dispatch (see the module docstring).

    Parameters
    ----------
    d_model : int
    n_experts : int
    d_hidden : int
    n_hashes : int, default 2
        Cross-polytope rotations; a cluster is a distinct tuple of ``n_hashes`` buckets.
    compress : bool, default True
        False dispatches every token (the baseline).
    seed : int, default 0
        Seeds the experts, the gate and the rotations (private generator; the global one untouched).

    Attributes
    ----------
    last_stats : dict
        After ``forward``: ``tokens``, ``rows_sent`` (rows crossing the all-to-all, both ways, summed
        over experts) and ``bytes`` (``rows_sent * d_model * element size``).

    References
    ----------
    X. Nie, X. Miao, Z. Wang, Z. Yang, J. Xue, L. Ma, G. Cao, B. Cui, "LSH-MoE: Communication-efficient
    MoE Training via Locality-Sensitive Hashing", NeurIPS 2024.

    Examples
    --------
    >>> moe = LSHMoE(16, n_experts=2, d_hidden=32, n_hashes=1)
    >>> y = moe(torch.randn(100, 16, generator=torch.Generator().manual_seed(0)))
    >>> y.shape, moe.last_stats["rows_sent"] < 200
    (torch.Size([100, 16]), True)
    """

    def __init__(self, d_model: int, *, n_experts: int = 2, d_hidden: int = 64, n_hashes: int = 2,
                 compress: bool = True, seed: int = 0):
        super().__init__()
        for name, value in (("d_model", d_model), ("n_experts", n_experts), ("d_hidden", d_hidden),
                            ("n_hashes", n_hashes)):
            check_int_param(value, name, min_val=1)
        self.d_model, self.n_experts, self.compress = int(d_model), int(n_experts), bool(compress)
        with torch.random.fork_rng(devices=[]):  # layer init draws from the global generator: scoped
            torch.manual_seed(int(seed))
            self.gate = torch.nn.Linear(d_model, n_experts)
            self.experts = torch.nn.ModuleList(
                torch.nn.Sequential(torch.nn.Linear(d_model, d_hidden), torch.nn.GELU(),
                                    torch.nn.Linear(d_hidden, d_model)) for _ in range(n_experts))
        rot = torch.stack([random_rotation(d_model, seed=int(seed) * 1000 + 17 + j) for j in range(n_hashes)])
        self.register_buffer("rotations", rot)
        self.last_stats: dict = {}

    def route(self, x):
        """(expert (n,) int64, weight (n,)) of each token: top-1 of the softmax gate."""
        p = torch.softmax(self.gate(x), dim=-1)
        w, e = p.max(-1)
        return e, w

    def run_expert(self, e: int, tokens):
        """Expert ``e`` on ``tokens`` (m, d), compressed or not; returns ``(outputs (m, d), rows sent one way)``."""
        if not self.compress or tokens.shape[0] == 0:
            return self.experts[e](tokens), tokens.shape[0]
        cent, assign = lsh_compress(tokens, self.rotations)
        return lsh_restore(self.experts[e](cent), assign, tokens, cent), cent.shape[0]

    def forward(self, x):
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValidationError(f"LSHMoE expects tokens of shape (n, {self.d_model}), got {shape}")
        e, w = self.route(x)
        out = torch.zeros_like(x)
        rows = 0
        for j in range(self.n_experts):
            idx = torch.nonzero(e == j).squeeze(1)
            y, sent = self.run_expert(j, x[idx])
            rows += 2 * sent  # dispatch and combine
            out = out.index_copy(0, idx, y * w[idx].unsqueeze(1))
        self.last_stats = {"tokens": int(x.shape[0]), "rows_sent": int(rows),
                           "bytes": int(rows * self.d_model * x.element_size())}
        return out


# -- two (or more) real processes ---------------------------------------------------------------------
def exchange(outgoing: list, *, dtype=torch.float32) -> tuple[list, int]:
    """All-to-all of 2-d tensors over ``torch.distributed`` send/recv; returns ``(incoming, bytes sent)``.

    ``outgoing[r]`` (rows_r, d) goes to rank ``r`` (the own slot is kept locally); ``incoming[r]`` came
    from rank ``r``. Row counts are exchanged first (int64, counted in the bytes). Works on gloo.
    """
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    if len(outgoing) != world:
        raise ValidationError(f"exchange: {len(outgoing)} outgoing tensors for a world of {world} ranks")
    d = outgoing[0].shape[1]
    sizes_in = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    sent = 0
    reqs = []
    for r in range(world):
        if r != rank:
            reqs.append(dist.isend(torch.tensor([outgoing[r].shape[0]], dtype=torch.int64), r))
            reqs.append(dist.irecv(sizes_in[r], r))
            sent += 8
    for q in reqs:
        q.wait()
    incoming = [None] * world
    reqs = []
    for r in range(world):
        if r == rank:
            incoming[r] = outgoing[r]
            continue
        buf = torch.empty(int(sizes_in[r]), d, dtype=dtype)
        if outgoing[r].shape[0]:
            reqs.append(dist.isend(outgoing[r].to(dtype).contiguous(), r))
            sent += outgoing[r].numel() * outgoing[r].element_size()
        if buf.shape[0]:
            reqs.append(dist.irecv(buf, r))
        incoming[r] = buf
    for q in reqs:
        q.wait()
    return incoming, sent


@torch.no_grad()
def distributed_forward(moe: LSHMoE, x: torch.Tensor):
    """The layer's forward with expert ``r`` on rank ``r`` (world size = ``n_experts``), tokens local.

    Each rank routes its tokens, compresses each expert's share (if ``moe.compress``), sends centroids
    (or tokens) to the expert's rank, runs its own expert on what it received, sends the outputs back
    and restores. Returns ``(output (n, d), bytes this rank sent)``; the output equals ``moe(x)``.
    """
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    if world != moe.n_experts:
        raise ValidationError(f"distributed_forward needs one rank per expert: {moe.n_experts} experts, "
                              f"world size {world}")
    e, w = moe.route(x)
    idx = [torch.nonzero(e == j).squeeze(1) for j in range(world)]
    payload, restore = [], []
    for j in range(world):
        tokens = x[idx[j]]
        if moe.compress and tokens.shape[0]:
            cent, assign = lsh_compress(tokens, moe.rotations)
            payload.append(cent)
            restore.append((assign, tokens, cent))
        else:
            payload.append(tokens)
            restore.append(None)
    received, sent1 = exchange(payload, dtype=x.dtype)
    results = [moe.experts[rank](r) if r.shape[0] else r for r in received]
    returned, sent2 = exchange(results, dtype=x.dtype)
    out = torch.zeros_like(x)
    for j in range(world):
        y = returned[j] if restore[j] is None else lsh_restore(returned[j], *restore[j])
        out[idx[j]] = y * w[idx[j]].unsqueeze(1)
    return out, sent1 + sent2


def _worker(rank: int, world: int, init_file: str, moe_kwargs: dict, n_tokens: int, seed: int, out_dir: str):
    import os

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        moe = LSHMoE(**moe_kwargs)
        g = torch.Generator().manual_seed(int(seed) + rank)
        x = torch.randn(n_tokens, moe.d_model, generator=g)
        out, sent = distributed_forward(moe, x)
        torch.save({"x": x, "out": out, "bytes": sent}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def spawn_forward(moe_kwargs: dict, *, n_tokens: int = 256, seed: int = 0, workdir) -> list[dict]:
    """Run :func:`distributed_forward` in ``n_experts`` real processes (gloo, ``torch.multiprocessing.spawn``).

    Rank ``r`` draws ``n_tokens`` Gaussian tokens from ``seed + r``. Returns, per rank, ``{"x", "out",
    "bytes"}`` (its tokens, the layer output, the bytes it sent in the two all-to-alls). ``workdir`` is
    an empty folder for the rendezvous file and the results.
    """
    import os

    import torch.multiprocessing as mp

    world = int(moe_kwargs.get("n_experts", 2))
    init_file = os.path.join(str(workdir), "rendezvous")
    mp.spawn(_worker, args=(world, init_file, dict(moe_kwargs), int(n_tokens), int(seed), str(workdir)),
             nprocs=world, join=True)
    return [torch.load(os.path.join(str(workdir), f"rank{r}.pt")) for r in range(world)]
