"""Shallow supervised hashers: ``fit(X, y)`` with class labels or a 0/1 label matrix, packed codes out.

* :class:`KSH` — Kernel-Based Supervised Hashing (Liu et al., CVPR 2012);
* :class:`SDH` — Supervised Discrete Hashing (Shen et al., CVPR 2015);
* :class:`COSDISH` — Column Sampling Based Discrete Supervised Hashing (Kang et al., AAAI 2016);
* :class:`LFH` — Supervised Hashing with Latent Factor Models (Zhang et al., SIGIR 2014).

All four share the RBF anchor features of :class:`SupervisedHasher` and its label checks; they say
that they need ``y`` through scikit-learn's tags (``get_tags(est).target_tags.required``), which
:func:`is_supervised` reads.
"""

from ._labels import PairwiseLabels, check_supervision
from .base import SupervisedHasher
from .cosdish import COSDISH
from .ksh import KSH
from .lfh import LFH
from .sdh import SDH

__all__ = ["SupervisedHasher", "check_supervision", "PairwiseLabels", "KSH", "SDH", "COSDISH", "LFH",
           "is_supervised"]


def is_supervised(estimator_or_class) -> bool:
    """Whether ``fit`` needs labels ``y`` (scikit-learn's ``target_tags.required``) — class or instance."""
    from sklearn.utils import get_tags

    est = estimator_or_class() if isinstance(estimator_or_class, type) else estimator_or_class
    try:
        return bool(get_tags(est).target_tags.required)
    except Exception:  # noqa: BLE001 - an object without scikit-learn tags is not a supervised estimator
        return False
