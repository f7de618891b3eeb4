"""Hashing inside models (``hashlearn.nn``, torch, extra ``[deep]``).

* :func:`hyper_attention` / :class:`HyperAttention` — sortLSH + sampled residual attention in
  near-linear time, same call shape as ``torch.nn.functional.scaled_dot_product_attention``.
* :class:`EcoFormerAttention` — kernelized hashing of queries/keys into binary codes, linear attention
  with the codes (trainable end to end), :func:`operation_counts` (multiplications vs additions).
* Hash families on tensors: :func:`angular_buckets` (SimHash, Gray-ordered), :func:`cross_polytope_buckets`.
"""

from .attention import HyperAttention, exact_attention, hyper_attention
from .ecoformer import EcoFormerAttention, KernelizedHash, operation_counts
from .lsh import angular_buckets, cross_polytope_buckets, gray_rank, random_projections, random_rotation

__all__ = ["hyper_attention", "HyperAttention", "exact_attention",
           "EcoFormerAttention", "KernelizedHash", "operation_counts",
           "angular_buckets", "cross_polytope_buckets", "gray_rank", "random_projections", "random_rotation"]
