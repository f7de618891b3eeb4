"""Cross-modal and multi-view hashing: one Hamming space for several modalities (``hashlearn.crossmodal``).

Importing this package registers the methods (``cca-itq``, ``cmfh``, ``rreh``, ``imh``, ``mvh``,
``deep-xm``) with :func:`hashlearn.make_hasher`; torch is imported only inside ``deep-xm``'s ``fit``.
"""

from .base import BaseCrossModalHasher, FeatureMap, check_pairs, check_views, semi_paired_split
from .cca_itq import CCAITQ
from .cmfh import CMFH
from .imh import IMH
from .mvh import MultiViewHashing
from .deep import DeepCrossModalHashing
from .rreh import RREH, reconstruction_weights

__all__ = [
    "BaseCrossModalHasher",
    "FeatureMap",
    "check_views",
    "check_pairs",
    "semi_paired_split",
    "CCAITQ",
    "CMFH",
    "IMH",
    "MultiViewHashing",
    "DeepCrossModalHashing",
    "RREH",
    "reconstruction_weights",
]
