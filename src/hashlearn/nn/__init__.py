"""Hashing inside models (``hashlearn.nn``, torch, extra ``[deep]``).

* :func:`hyper_attention` / :class:`HyperAttention` — sortLSH + sampled residual attention in
  near-linear time, same call shape as ``torch.nn.functional.scaled_dot_product_attention``.
* :class:`EcoFormerAttention` — kernelized hashing of queries/keys into binary codes, linear attention
  with the codes (trainable end to end), :func:`operation_counts` (multiplications vs additions).
* :class:`LSHMoE` — top-1 mixture of experts whose dispatch sends cross-polytope LSH cluster centroids
  (residual compensation on return); :func:`distributed_forward` / :func:`spawn_forward` run it across
  real processes (torch.distributed, gloo) and count the bytes.
* :class:`DiagonalSSM`, :class:`HashedSparseAttention` (context-dependent LSH buckets), :func:`mqar_batch`.
* Hash families on tensors: :func:`angular_buckets` (SimHash, Gray-ordered), :func:`cross_polytope_buckets`.

Benchmark modules (``hashlearn bench attention``, imported on demand): :mod:`hashlearn.nn.bench` (parts and
plots), :mod:`hashlearn.nn.lm` (a causal character transformer with exact, HyperAttention or EcoFormer
attention), :mod:`hashlearn.nn.real_bench` (HyperAttention inside all-MiniLM-L6-v2 on SciFact),
:mod:`hashlearn.nn.moe_bench`, :mod:`hashlearn.nn.ssm_bench`.
"""

from .attention import HyperAttention, exact_attention, hyper_attention
from .ecoformer import EcoFormerAttention, KernelizedHash, operation_counts
from .moe import LSHMoE, distributed_forward, lsh_compress, lsh_restore, spawn_forward
from .ssm import DiagonalSSM, HashedSparseAttention, mqar_batch
from .lsh import angular_buckets, cross_polytope_buckets, gray_rank, random_projections, random_rotation

__all__ = ["hyper_attention", "HyperAttention", "exact_attention",
           "EcoFormerAttention", "KernelizedHash", "operation_counts",
           "DiagonalSSM", "HashedSparseAttention", "mqar_batch",
           "LSHMoE", "lsh_compress", "lsh_restore", "distributed_forward", "spawn_forward",
           "angular_buckets", "cross_polytope_buckets", "gray_rank", "random_projections", "random_rotation"]
