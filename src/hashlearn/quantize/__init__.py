"""Vector quantizers (PQ, OPQ, residual, balanced k-means) and ADC/SDC scans over their codes.

Every quantizer is a scikit-learn style estimator: ``fit(X)``, ``encode(X)`` → uint8 codes
``(n, n_codes)`` that carry the codebook's fingerprint, ``decode(codes)`` → float32 vectors,
``distance_tables(Q)`` → ADC look-up tables, ``search(Q, codes, k)`` → ``(D, I)``. Fitted quantizers
are saved with :func:`hashlearn.save`.
"""

from ._codes import QuantizedCodes
from .balanced import BalancedKMeans
from .pq import OPQ, PQ
from .rq import RQ
from .trained import JPQ, TRAINED_QUANTIZERS, RepCONC
from .search import MISSING_DISTANCE, adc_distances, adc_range_search, adc_search, sdc_lookup, sdc_search

__all__ = ["PQ", "OPQ", "RQ", "BalancedKMeans", "QUANTIZERS", "JPQ", "RepCONC", "TRAINED_QUANTIZERS",
           "QuantizedCodes", "adc_search", "adc_distances", "adc_range_search", "sdc_search", "sdc_lookup",
           "MISSING_DISTANCE"]

QUANTIZERS: dict[str, type] = {"pq": PQ, "opq": OPQ, "rq": RQ, "balanced-kmeans": BalancedKMeans}
"""Quantizer classes by method name (for the registry's "quantizer" kind and the CLI)."""
