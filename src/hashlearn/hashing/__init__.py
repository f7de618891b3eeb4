"""Hash families and learned hashers (scikit-learn estimators returning packed binary codes)."""

from .base import BaseHasher
from .registry import get_hasher_class, list_methods, make_hasher, register

__all__ = ["BaseHasher", "make_hasher", "get_hasher_class", "list_methods", "register"]

from .simhash import SimHash  # noqa: E402
from .e2lsh import E2LSH  # noqa: E402
from .crosspolytope import CrossPolytopeLSH, fwht  # noqa: E402
from .minhash import MinHash, band_candidates, band_candidates_between, optimal_bands  # noqa: E402

__all__ += ["SimHash", "E2LSH", "CrossPolytopeLSH", "fwht", "MinHash", "optimal_bands", "band_candidates",
            "band_candidates_between"]
from .pca import ITQ, IsotropicHashing, PCAHashing  # noqa: E402

__all__ += ["PCAHashing", "ITQ", "IsotropicHashing"]

from .spherical import SphericalHashing  # noqa: E402
from .klsh import KernelizedLSH  # noqa: E402
from .kmh import KMeansHashing  # noqa: E402

__all__ += ["SphericalHashing", "KernelizedLSH", "KMeansHashing"]

from .spectral import SpectralHashing  # noqa: E402
from .anchor_graph import AnchorGraphHashing, TwoLayerAnchorGraphHashing  # noqa: E402
from .sgh import ScalableGraphHashing  # noqa: E402

__all__ += ["SpectralHashing", "AnchorGraphHashing", "TwoLayerAnchorGraphHashing", "ScalableGraphHashing"]

from .supervised import COSDISH, KSH, LFH, SDH, is_supervised  # noqa: E402

__all__ += ["KSH", "SDH", "COSDISH", "LFH", "is_supervised"]
