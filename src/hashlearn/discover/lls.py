"""LatentLabelShift: classes recovered from domains whose class proportions differ (DDFA)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..hashing.base import PersistableEstimatorMixin
from ..io import persistable
from ..params import check_int_param
from ._common import check_features, check_fitted

__all__ = ["LatentLabelShift"]


def _check_domains(domains, n: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(domains)
    if d.shape != (n,):
        raise ValidationError(f"domains must hold one domain id per row ({n}), got shape {d.shape}")
    values, idx = np.unique(d, return_inverse=True)
    return values, idx


@persistable
class LatentLabelShift(PersistableEstimatorMixin, BaseEstimator):
    """Unsupervised classes under latent label shift: Discriminate, Discretize, Factorize, Attribute.

    Rows come from ``r`` domains; the class proportions ``p(y | d)`` differ between domains while
    ``p(x | y)`` is shared. Then ``p(d | x)`` depends on ``x`` only through its class, so

    1. **Discriminate**: a classifier (an MLP with ``hidden`` ReLU units, or a multinomial logistic
       regression with ``hidden=0``) predicts the domain of a row, ``f(x) ≈ p(d|x)``;
    2. **Discretize**: k-means on ``f(x)`` groups rows into ``n_clusters`` cells ``c``;
    3. **Factorize**: the cell-by-domain distribution ``Q[c, d] = p(c | d)`` is factored by
       non-negative matrix factorisation into ``p(c | y)`` (columns normalised) times ``p(y | d)``
       (with ``n_clusters == n_classes`` the cells are the classes and ``p(y | d)`` is counted);
    4. **Attribute**: a row of domain ``d`` in cell ``c`` gets ``argmax_y p(c | y) p(y | d)``.

    The discriminator is fitted and applied on the same rows (the paper holds out a split to
    calibrate it); the number of domains should be at least the number of classes.

    Parameters
    ----------
    n_classes : int
    n_clusters : int or None, default None
        Cells of the discretisation (None: ``n_classes``).
    hidden : int, default 256
        Hidden units of the MLP discriminator (0: logistic regression).
    max_iter : int, default 30
        Training epochs of the discriminator.
    random_state : int, Generator or None

    Attributes
    ----------
    domains_ : array (r,) — domain ids seen in ``fit``
    discriminator_ : list of [W, b] float64 layers (ReLU between them, softmax at the end)
    cell_centers_ : float64 (n_clusters, r) — k-means centres of the domain posteriors
    cell_given_class_ : float64 (n_clusters, n_classes) — p(c | y)
    class_given_domain_ : float64 (n_classes, r) — p(y | d)
    labels_ : int64 (n,) — latent class of each training row
    n_features_in_ : int

    References
    ----------
    M. Roberts, P. Mani, S. Garg, Z. C. Lipton, "Unsupervised Learning under Latent Label Shift",
    NeurIPS 2022 (DDFA).
    """

    def __init__(self, n_classes: int = 10, *, n_clusters=None, hidden: int = 256, max_iter: int = 30,
                 random_state=None):
        self.n_classes = n_classes
        self.n_clusters = n_clusters
        self.hidden = hidden
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, domains):
        """Fit on rows ``X`` (n, d) and their domain ids ``domains`` (n,); returns self."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import NMF
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.utils import check_random_state

        X = check_features(X).astype(np.float64)
        values, d = _check_domains(domains, X.shape[0])
        K = check_int_param(self.n_classes, "n_classes", min_val=2)
        if K > X.shape[0]:
            raise ValidationError(f"n_classes={K} classes requested but only {X.shape[0]} rows")
        if values.size < 2:
            raise ValidationError(f"latent label shift needs at least 2 domains, got {values.size}")
        m = check_int_param(self.n_clusters, "n_clusters", min_val=K, allow_none=True) or K
        m = min(m, X.shape[0])
        hidden = check_int_param(self.hidden, "hidden", min_val=0)
        max_iter = check_int_param(self.max_iter, "max_iter", min_val=1)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        if hidden:
            disc = MLPClassifier((hidden,), max_iter=max_iter, early_stopping=True, random_state=seed)
        else:
            disc = LogisticRegression(max_iter=max(max_iter, 100))
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            disc.fit(X, d)
        self.discriminator_ = ([[W, b] for W, b in zip(disc.coefs_, disc.intercepts_)] if hidden
                               else [[disc.coef_.T, disc.intercept_]])
        self.n_features_in_ = X.shape[1]
        F = self._domain_posterior(X)
        km = KMeans(m, n_init=4, random_state=seed).fit(F)
        Q = np.zeros((m, values.size))
        np.add.at(Q, (km.labels_, d), 1.0)
        Q /= Q.sum(0, keepdims=True)
        if m == K:  # the cells are the classes
            A, B = np.eye(K), Q
        else:
            nmf = NMF(K, init="nndsvda", max_iter=2000, random_state=seed)
            A = nmf.fit_transform(Q)  # (m, K)
            B = nmf.components_  # (K, r)
            scale = A.sum(0) + 1e-12
            A, B = A / scale, B * scale[:, None]
            B /= B.sum(0, keepdims=True) + 1e-12
        self.domains_ = values
        self.cell_centers_ = km.cluster_centers_
        self.cell_given_class_, self.class_given_domain_ = A, B
        self.labels_ = self._attribute(F, d)
        return self

    def _domain_posterior(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import softmax

        h = X
        for i, (W, b) in enumerate(self.discriminator_):
            h = h @ W + b
            if i < len(self.discriminator_) - 1:
                h = np.maximum(h, 0.0)
        if h.shape[1] == 1:  # binary: one logit
            h = np.hstack([np.zeros_like(h), h])
        return softmax(h, axis=1)

    def _attribute(self, F: np.ndarray, d: np.ndarray) -> np.ndarray:

        cells = ((F[:, None, :] - self.cell_centers_[None]) ** 2).sum(-1).argmin(1)
        post = self.cell_given_class_[cells] * self.class_given_domain_[:, d].T
        return post.argmax(1).astype(np.int64)

    def predict(self, X, domains) -> np.ndarray:
        """Latent class of each row (int64, ``0..n_classes-1``) given its domain (one seen in ``fit``)."""
        check_fitted(self, "labels_")
        X = check_features(X, n_features=self.n_features_in_).astype(np.float64)
        dom = np.asarray(domains)
        if dom.shape != (X.shape[0],):
            raise ValidationError(f"domains must hold one domain id per row ({X.shape[0]}), got shape {dom.shape}")
        unknown = np.setdiff1d(np.unique(dom), self.domains_)
        if unknown.size:
            raise ValidationError(f"domains {unknown.tolist()[:5]} were not seen in fit ({self.domains_.size} domains)")
        d = np.searchsorted(self.domains_, dom)
        return self._attribute(self._domain_posterior(X), d)
