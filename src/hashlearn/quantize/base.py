"""Base class of the vector quantizers: the scikit-learn estimator contract plus codes, tables, search.

A quantizer maps a float vector to ``n_codes`` small integers (one byte each, ``uint8``) and back to
an approximation of the vector. Distances to a float query are sums of table look-ups (ADC), which
is what makes scanning millions of codes cheap. Subclasses implement a few template methods:

* ``_fit(X, rng)`` — learn the codebooks from validated float32 training vectors;
* ``_encode(X)`` / ``_decode(codes)`` — vectors ↔ uint8 codes (inputs already validated);
* ``_distance_tables(Q)`` — float32 tables ``(nq, n_codes, ksub)``;
* ``_code_bias(codes)`` — optional per-code additive term of the distance (``None`` if none);
* ``_codebook_arrays()`` — the arrays that define the codebook (hashed into the fingerprint).

Every fitted quantizer has a ``fingerprint_``; :meth:`encode` returns :class:`QuantizedCodes`
carrying it, and every method that consumes codes refuses codes of another codebook.
"""

from __future__ import annotations


import numpy as np
from sklearn.base import BaseEstimator

from ..errors import FileFormatError, NotFittedError, ValidationError
from ..hashing.base import PersistableEstimatorMixin, check_random_state, check_vectors_array
from ._codes import QuantizedCodes, check_quantized_codes, codebook_fingerprint
from .search import _check_k, adc_range_search, adc_search

__all__ = ["BaseQuantizer"]


class BaseQuantizer(PersistableEstimatorMixin, BaseEstimator):
    """Base of hashlearn's vector quantizers (see the module docstring for the template methods)."""

    method_name = "base"
    input_kind = "quantizer"
    #: What the tables of :meth:`distance_tables` measure: ``"l2"`` (squared L2) or ``"ip"`` (negative
    #: inner products, for quantizers trained to rank by inner product).
    metric = "l2"
    #: Constructor parameter that sets the bytes per code (``pq:16`` → ``M=16``), or None when the code
    #: size is not a free choice (one list id per vector).
    size_param: str | None = "M"

    # -- the estimator contract ----------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the codebooks from training vectors.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Finite training vectors (converted to float32).
        y : ignored

        Returns
        -------
        self
        """
        for attr in ("n_features_in_", "fingerprint_"):  # a failed (re)fit must not look fitted
            self.__dict__.pop(attr, None)
        self._check_params()
        X = check_vectors_array(X, name="X")
        self._check_train(X)
        rng = check_random_state(self.random_state)
        self._fit(X, rng)
        self.n_features_in_ = int(X.shape[1])
        self.fingerprint_ = self._fingerprint()
        return self

    def encode(self, X) -> QuantizedCodes:
        """Codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in_)

        Returns
        -------
        codes : QuantizedCodes, uint8 of shape (n, n_codes), carrying ``fingerprint_``
        """
        self._check_fitted()
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_)
        return QuantizedCodes(self._encode(X), self.fingerprint_)

    transform = encode

    def fit_transform(self, X, y=None):
        """``fit(X).encode(X)``."""
        return self.fit(X).encode(X)

    def decode(self, codes) -> np.ndarray:
        """Reconstructions of ``codes`` (n, n_codes): float32 array (n, n_features_in_)."""
        self._check_fitted()
        return self._decode(self.check_codes(codes))

    inverse_transform = decode

    def distance_tables(self, Q) -> np.ndarray:
        """ADC look-up tables of the queries ``Q`` (nq, n_features_in_): float32 (nq, n_codes, ksub).

        The squared L2 distance of query i to the reconstruction of code c is
        ``sum_m tables[i, m, c[m]] + code_bias(c)`` (exactly, up to float rounding).
        """
        self._check_fitted()
        Q = check_vectors_array(Q, name="Q", n_features=self.n_features_in_)
        return self._distance_tables(Q)

    def inner_product_tables(self, Q) -> np.ndarray:
        """Tables of NEGATIVE inner products: float32 (nq, n_codes, ksub).

        ``-<q, decode(c)>`` (for ``metric == "ip"`` quantizers: ``-score(q, c)``) is
        ``sum_m tables[i, m, c[m]]``, with no per-code term; an ADC scan of these tables ranks codes by
        decreasing inner product (maximum inner-product search, as faiss' ``METRIC_INNER_PRODUCT``).
        """
        self._check_fitted()
        Q = check_vectors_array(Q, name="Q", n_features=self.n_features_in_)
        return np.ascontiguousarray(self._ip_tables(Q), dtype=np.float32)

    def code_bias(self, codes) -> np.ndarray | None:
        """Per-code term of the ADC distance (float32 (n,)), or None when the tables alone give it."""
        self._check_fitted()
        return self._code_bias(self.check_codes(codes))

    def sdc_tables(self, query_codes) -> np.ndarray:
        """Tables for symmetric distances: the ADC tables of the queries' reconstructions (nq, n_codes, ksub)."""
        self._check_fitted()
        return self._distance_tables(self._decode(self.check_codes(query_codes, name="query codes")))

    def search(self, Q, codes, k: int, *, symmetric: bool = False, n_threads: int | None = None):
        """k nearest codes of each query by estimated squared L2 distance (exhaustive scan).

        Parameters
        ----------
        Q : array-like (nq, n_features_in_) — float queries (ADC), or, with ``symmetric=True``,
            query codes (nq, n_codes) from this quantizer (SDC)
        codes : uint8 array (n, n_codes) from this quantizer's :meth:`encode`
        k : int >= 1
        symmetric : bool, default False
        n_threads : int, optional

        Returns
        -------
        D : float32 (nq, k), ascending, ``inf`` padding; I : int64 (nq, k) code positions, -1 padding.
        Ties go to the smaller position.
        """
        self._check_fitted()
        k = _check_k(k)
        codes = self.check_codes(codes)
        tables = self.sdc_tables(Q) if symmetric else self.distance_tables(Q)
        return adc_search(tables, codes, k, bias=self._code_bias(codes), n_threads=n_threads)

    def range_search(self, Q, codes, radius: float, *, n_threads: int | None = None):
        """Codes within estimated squared L2 distance ``radius`` (inclusive) of each float query.

        Returns (lims, D, I) in CSR layout: query i's results are ``D[lims[i]:lims[i+1]]`` (float32)
        and ``I[...]`` (int64 positions, ascending).
        """
        codes = self.check_codes(codes)
        tables = self.distance_tables(Q)
        return adc_range_search(tables, codes, radius, bias=self._code_bias(codes), n_threads=n_threads)

    def quantization_error(self, X) -> float:
        """Mean squared L2 reconstruction error over the rows of ``X`` (float)."""
        self._check_fitted()
        X = check_vectors_array(X, name="X", n_features=self.n_features_in_)
        err = 0.0
        for s in range(0, X.shape[0], 65536):
            part = X[s : s + 65536]
            diff = part.astype(np.float64) - self._decode(self._encode(part))
            err += float(np.einsum("ij,ij->", diff, diff))
        return err / X.shape[0]

    def check_codes(self, codes, *, name: str = "codes") -> np.ndarray:
        """Validated plain uint8 codes (n, n_codes); refuses codes of another codebook (IncompatibleError)."""
        self._check_fitted()
        return check_quantized_codes(codes, n_codes=self.n_codes, n_values=self.n_centroids,
                                     fingerprint=self.fingerprint_, owner=type(self).__name__, name=name)

    # -- persistence -------------------------------------------------------------------------------
    @classmethod
    def _from_state(cls, state: dict):
        obj = super()._from_state(state)
        if "fingerprint_" in state["fitted"]:
            try:
                again = obj._fingerprint()
            except Exception as exc:  # noqa: BLE001 - any inconsistency of the stored arrays
                raise FileFormatError(f"the stored {cls.__name__} has inconsistent codebooks ({exc})") from None
            if again != obj.fingerprint_:
                raise FileFormatError(
                    f"the stored {cls.__name__} has fingerprint {obj.fingerprint_} but its codebooks hash to {again}"
                )
        return obj

    def _fingerprint(self) -> str:
        return codebook_fingerprint(
            type(self).__name__, {"n_codes": self.n_codes, "n_centroids": self.n_centroids, "d": self.n_features_in_},
            self._codebook_arrays(),
        )

    # -- properties --------------------------------------------------------------------------------
    @property
    def code_size(self) -> int:
        """Bytes per encoded vector (one byte per sub-code)."""
        return int(self.n_codes)

    @property
    def n_centroids(self) -> int:
        """Number of centroids per sub-quantizer (``2 ** nbits``)."""
        return 1 << int(self.nbits)

    # -- hooks -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        raise NotImplementedError

    def _check_train(self, X: np.ndarray) -> None:
        if X.shape[0] < self.n_centroids:
            raise ValidationError(
                f"{type(self).__name__} needs at least as many training vectors as centroids per codebook: "
                f"got {X.shape[0]} vectors for {self.n_centroids} centroids"
            )

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _encode(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _distance_tables(self, Q: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _code_bias(self, codes: np.ndarray) -> np.ndarray | None:
        return None

    def _ip_tables(self, Q: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _codebook_arrays(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _is_fitted(self) -> bool:
        return hasattr(self, "fingerprint_")

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X) first")
