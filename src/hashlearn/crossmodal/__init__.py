"""Cross-modal and multi-view hashing: one Hamming space for several modalities (``hashlearn.crossmodal``).

Importing this package registers the methods (``cca-itq``, ``cmfh``, ``rreh``, ``imh``, ``mvh``,
``deep-xm``, and the supervised ``dmveh``, ``prompthash``, ``dlch``) with :func:`hashlearn.make_hasher`;
torch is imported only inside the deep methods' ``fit`` (and DMVEH's encoders).

Supervised methods say so with the class flag ``requires_labels`` (:class:`SupervisedCrossModalMixin`)
and take ``fit(views, y, pairs=None)``.
"""

from .base import BaseCrossModalHasher, FeatureMap, check_pairs, check_views, semi_paired_split
from .cca_itq import CCAITQ
from .cmfh import CMFH
from .imh import IMH
from .mvh import MultiViewHashing
from .deep import DeepCrossModalHashing
from .dmveh import DeepMultiViewEnhancementHashing, SupervisedCrossModalMixin, check_view_labels
from .rreh import RREH, reconstruction_weights
from .prompthash import PromptHash
from .lifelong import DeepLifelongCrossModalHashing

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
    "DeepMultiViewEnhancementHashing",
    "SupervisedCrossModalMixin",
    "check_view_labels",
    "RREH",
    "PromptHash",
    "DeepLifelongCrossModalHashing",
    "reconstruction_weights",
]
