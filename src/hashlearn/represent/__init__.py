"""Representations and data curation by clustering (``hashlearn.represent``).

* :class:`ManifoldClustering` — MCR²/MLC: features and a doubly-stochastic membership learned jointly by
  maximising the coding-rate reduction ("Unsupervised Manifold Linearizing and Clustering", ICCV 2023);
* :class:`GSimCLR` — SimCLR whose negatives exclude same-pseudo-cluster images, the clusters from k-means on a
  denoising autoencoder's latent space ("G-SimCLR", 2020); ``guided=False`` is plain SimCLR;
* :class:`ClimbMixture` — cluster a corpus' embeddings and search mixture weights over the clusters with
  proxy models and a fitted predictor ("CLIMB", 2025);
* :class:`HouseholderProjector` / :class:`LatentDirections` — orthogonal latent directions as a product of Householder reflections
  ("Householder Projector for Unsupervised Latent Semantics Discovery", ICCV 2023); the layer is the
  ``rotation="householder"`` option of the deep hashers.

Torch is imported only inside ``fit`` / ``transform``.
"""

from .climb import ClimbMixture, NGramLM, WordVocab, mixture_search, sample_mixture
from .gsimclr import GSimCLR, nt_xent_mask
from .householder import VAE, LatentDirections, attribute_change, image_attributes
from .mcr2 import ManifoldClustering, coding_rate, coding_rate_reduction, sinkhorn, subspace_coherence

__all__ = ["ManifoldClustering", "GSimCLR", "ClimbMixture", "HouseholderProjector", "LatentDirections", "VAE",
           "NGramLM", "WordVocab", "coding_rate", "coding_rate_reduction", "sinkhorn", "subspace_coherence",
           "nt_xent_mask", "mixture_search", "sample_mixture", "attribute_change", "image_attributes"]


def __getattr__(name):
    if name == "HouseholderProjector":  # a torch module: imported on first use (torch is optional)
        from ._nets import HouseholderProjector

        return HouseholderProjector
    raise AttributeError(f"module 'hashlearn.represent' has no attribute {name!r}")
