"""Deep supervised hashers (torch, CPU; ``pip install 'hashlearn[deep]'``): ``dpsh``, ``hashnet``, ``csq``,
``greedyhash``, ``dsh``.

Importing this package does not import torch (the registry imports it to register the methods); torch
is imported when a model is fitted or encodes. Options shared by all: an MLP or, with
``input_shape=(C, H, W)``, a small CNN on flattened images; ``rotation="householder"|"linear"``;
``csce=True`` (CSCE-Net's cross-scale context and dynamic sign thresholds); the pairwise ones
(``dpsh``, ``hashnet``, ``dsh``) take ``distance="inner"|"euclidean"|"cosine"|"snr"``.
"""

from .base import DeepHasher
from .hashers import CSQ, DPSH, DSH, GreedyHash, HashNetHasher

__all__ = ["DeepHasher", "DPSH", "HashNetHasher", "CSQ", "GreedyHash", "DSH"]
