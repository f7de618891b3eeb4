"""GMMDiscovery: a semi-supervised Gaussian mixture for generalized category discovery, K found by split/merge."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator

from ..errors import ValidationError
from ..hashing.base import PersistableEstimatorMixin
from ..io import persistable
from ..params import check_int_param, check_real_param
from ._common import UNLABELLED, check_features, check_fitted, check_partial_labels

__all__ = ["GMMDiscovery"]


def _gauss_params(Z: np.ndarray, w: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean (d,) and full covariance (d, d) + reg·I of the rows of Z."""
    s = max(float(w.sum()), 1e-12)
    mu = (w @ Z) / s
    D = Z - mu
    cov = (D * w[:, None]).T @ D / s
    cov[np.diag_indices_from(cov)] += reg
    return mu, cov


def _log_gauss(Z: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(z | mu, cov) of every row, (n,)."""
    L = np.linalg.cholesky(cov)
    sol = np.linalg.solve(L, (Z - mu).T)
    return -0.5 * (np.sum(sol**2, axis=0) + 2 * np.log(np.diag(L)).sum() + Z.shape[1] * np.log(2 * np.pi))


def _split_gain(Z: np.ndarray, reg: float, seed: int, max_rows: int = 2000, n_iter: int = 30) -> float:
    """Mean log-likelihood gain per row of a 2-component Gaussian mixture over one Gaussian.

    The mixture starts from the split of the rows by the sign of their projection on the first
    principal axis, then runs ``n_iter`` EM iterations (full covariances + ``reg``).
    """
    if Z.shape[0] < 4:
        return -np.inf
    if Z.shape[0] > max_rows:
        Z = Z[np.random.default_rng(seed).choice(Z.shape[0], max_rows, replace=False)]
    ones = np.ones(Z.shape[0])
    mu, cov = _gauss_params(Z, ones, reg)
    one = float(_log_gauss(Z, mu, cov).mean())
    C = Z - mu
    axis = np.linalg.eigh(C.T @ C)[1][:, -1]
    r = (C @ axis > 0).astype(float)
    if r.sum() in (0, r.size):
        return 0.0
    resp = np.stack([r, 1 - r], axis=1)
    two = one
    for _ in range(n_iter):
        params = [_gauss_params(Z, resp[:, j], reg) for j in range(2)]
        w = np.maximum(resp.sum(0), 1e-12) / Z.shape[0]
        logp = np.stack([_log_gauss(Z, m, c) for m, c in params], axis=1) + np.log(w)
        norm = logsumexp(logp, axis=1)
        resp = np.exp(logp - norm[:, None])
        two = float(norm.mean())
    return two - one


@persistable
class GMMDiscovery(PersistableEstimatorMixin, BaseEstimator):
    """Generalized category discovery with a semi-supervised Gaussian mixture and split/merge moves.

    The unlabelled rows may belong to known or to novel classes. One full-covariance Gaussian per
    known class is anchored by the labelled rows (they are always assigned to their class); further
    "novel" components explain the rest. EM alternates soft assignments of the unlabelled rows to
    every component with weighted updates of weights, means and covariances.

    The number of novel components is estimated by split and merge moves whose threshold is set by
    the known classes: for each known class, the mean log-likelihood gain per row of a 2-component
    mixture over one Gaussian on its labelled rows measures how "splittable" a true class looks in
    this feature space; the ``split_quantile`` quantile of these gains is the threshold ``τ``. A novel
    component whose own gain exceeds ``τ`` is split (2-means on its rows); two components whose
    union gains less than ``τ`` are merged (a novel component may also be merged into a known one).
    Rounds of splits, each followed by EM, run until no split applies (at most ``max_moves``), then
    rounds of merges the same way; the two phases never interleave, so the search cannot cycle.
    The estimate is only as good as the known classes are representative: when they are tighter
    (more Gaussian) than the novel ones, novel classes get split (see the GCD benchmark).

    Parameters
    ----------
    n_novel : int or None, default None
        Number of novel components; None: estimated by split/merge starting from ``init_novel``.
    known_classes : sequence of int or None, default None
    init_novel : int or None, default None
        Starting number of novel components when estimating (None: the number of known classes).
    max_novel : int, default 30
    split_quantile : float, default 0.5
        Quantile of the known classes' split gains used as the threshold.
    reg_covar : float, default 1e-3
        Added to the covariance diagonals, relative to the mean feature variance.
    max_iter : int, default 100
        EM iterations per round.
    tol : float, default 1e-4
        EM stops when the mean log-likelihood changes less than this.
    max_moves : int, default 10
    random_state : int, Generator or None

    Attributes
    ----------
    classes_ : int64 (n_known,)
    labels_ : int64 (n_components_,) — the label of each component: known classes, then novel labels
    means_ : float64 (n_components_, d)
    covariances_ : float64 (n_components_, d, d)
    weights_ : float64 (n_components_,)
    n_novel_ : int — number of novel components (the estimate when ``n_novel`` is None)
    split_threshold_ : float — τ (NaN when ``n_novel`` is given)
    history_ : list of int — the number of novel components after the initial EM and after each round
    n_features_in_ : int

    References
    ----------
    B. Zhao, X. Wen, K. Han, "Learning Semi-supervised Gaussian Mixture Models for Generalized Category
    Discovery", ICCV 2023 (GPC: a semi-supervised GMM whose components for known classes are anchored
    by the labels, with split and merge moves estimating the number of classes); S. Vaze, K. Han,
    A. Vedaldi, A. Zisserman, "Generalized Category Discovery", CVPR 2022 (protocol).

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.discover import GMMDiscovery
    >>> rng = np.random.default_rng(0)
    >>> y_true = np.repeat(np.arange(6), 150)
    >>> X = rng.normal(0, 20, (6, 3))[y_true] + rng.normal(size=(900, 3))
    >>> y = np.where((y_true < 3) & (rng.random(900) < 0.5), y_true, -1)
    >>> model = GMMDiscovery(random_state=0).fit(X, y)
    >>> model.n_novel_
    3
    """

    def __init__(self, n_novel=None, *, known_classes=None, init_novel=None, max_novel: int = 30,
                 split_quantile: float = 0.5, reg_covar: float = 1e-3, max_iter: int = 100, tol: float = 1e-4,
                 max_moves: int = 10, random_state=None):
        self.n_novel = n_novel
        self.known_classes = known_classes
        self.init_novel = init_novel
        self.max_novel = max_novel
        self.split_quantile = split_quantile
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.tol = tol
        self.max_moves = max_moves
        self.random_state = random_state

    # ------------------------------------------------------------------ EM
    def _em(self, Z, lab_comp, unlab, means, reg, max_iter, tol):
        """Semi-supervised EM from initial means; returns (means, covs, weights, resp of unlabelled rows)."""
        K = means.shape[0]
        n_u = int(unlab.sum())
        Zu = Z[unlab]
        # initial hard assignment of the unlabelled rows to the nearest mean
        d2 = ((Zu[:, None, :] - means[None]) ** 2).sum(-1) if Zu.shape[0] * K * Z.shape[1] < 5e7 else \
            np.stack([((Zu - m) ** 2).sum(1) for m in means], axis=1)
        resp = np.zeros((n_u, K))
        resp[np.arange(n_u), d2.argmin(1)] = 1.0
        prev = -np.inf
        for _ in range(max_iter):
            means, covs, weights = self._m_step(Z, lab_comp, unlab, resp, K, reg)
            logp = np.stack([_log_gauss(Zu, means[k], covs[k]) for k in range(K)], axis=1) + np.log(weights + 1e-300)
            norm = logsumexp(logp, axis=1)
            resp = np.exp(logp - norm[:, None])
            ll = float(norm.mean())
            if abs(ll - prev) < tol:
                break
            prev = ll
        means, covs, weights = self._m_step(Z, lab_comp, unlab, resp, K, reg)
        return means, covs, weights, resp

    @staticmethod
    def _m_step(Z, lab_comp, unlab, resp, K, reg):
        d = Z.shape[1]
        means = np.zeros((K, d))
        covs = np.zeros((K, d, d))
        mass = np.zeros(K)
        lab_rows = ~unlab
        for k in range(K):
            w = np.zeros(Z.shape[0])
            w[lab_rows] = (lab_comp[lab_rows] == k).astype(float)
            w[unlab] = resp[:, k]
            mass[k] = w.sum()
            if mass[k] < 1e-8:  # an empty component: park it on a random row, it gets removed by merges
                w[np.argmax(unlab)] = 1.0
            means[k], covs[k] = _gauss_params(Z, w, reg)
        weights = np.maximum(mass, 1e-12) / max(mass.sum(), 1e-12)
        return means, covs, weights

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit the mixture; ``y`` holds a class for labelled rows and ``-1`` for unlabelled ones.

        Parameters
        ----------
        X : array-like (n, d), finite
        y : array-like of int (n,)

        Returns
        -------
        self
        """
        from sklearn.cluster import KMeans
        from sklearn.utils import check_random_state

        Z = check_features(X).astype(np.float64)
        y, known = check_partial_labels(y, Z.shape[0], self.known_classes)
        unlab = y == UNLABELLED
        n_u = int(unlab.sum())
        n_novel = check_int_param(self.n_novel, "n_novel", min_val=0, allow_none=True)
        if n_novel is not None and n_novel > n_u:
            raise ValidationError(f"n_novel={n_novel} novel classes requested but only {n_u} unlabelled rows")
        max_novel = check_int_param(self.max_novel, "max_novel", min_val=1)
        init = check_int_param(self.init_novel, "init_novel", min_val=1, allow_none=True)
        q = check_real_param(self.split_quantile, "split_quantile", min_val=0, max_val=1)
        reg = check_real_param(self.reg_covar, "reg_covar", min_val=0, include_boundaries="neither")
        max_iter = check_int_param(self.max_iter, "max_iter", min_val=1)
        tol = check_real_param(self.tol, "tol", min_val=0)
        max_moves = check_int_param(self.max_moves, "max_moves", min_val=0)
        rs = check_random_state(self.random_state)
        seed = int(rs.randint(2**31 - 1))
        reg = reg * float(Z.var(axis=0).mean())
        n_known = known.size
        lab_comp = np.full(Z.shape[0], -1, dtype=np.int64)
        lab_comp[~unlab] = np.searchsorted(known, y[~unlab])
        known_means = np.stack([Z[lab_comp == k].mean(0) for k in range(n_known)])
        k0 = n_novel if n_novel is not None else min(init if init is not None else n_known, max_novel, n_u)
        novel_means = (KMeans(k0, n_init=3, random_state=seed).fit(Z[unlab]).cluster_centers_ if k0 > 0
                       else np.zeros((0, Z.shape[1])))
        means = np.vstack([known_means, novel_means])
        means, covs, weights, resp = self._em(Z, lab_comp, unlab, means, reg, max_iter, tol)
        history = [means.shape[0] - n_known]
        self.split_threshold_ = float("nan")
        if n_novel is None and max_moves > 0:
            gains = [_split_gain(Z[lab_comp == k], reg, seed) for k in range(n_known)]
            tau = float(np.quantile(gains, q))
            self.split_threshold_ = tau
            for phase in ("split", "merge"):  # each phase until no move applies: no cycles
                for rnd in range(max_moves):
                    new_means, changed = self._moves(Z[unlab], resp.argmax(1), means, n_known, tau, reg,
                                                     seed + rnd, max_novel, phase)
                    if not changed:
                        break
                    means, covs, weights, resp = self._em(Z, lab_comp, unlab, new_means, reg, max_iter, tol)
                    history.append(means.shape[0] - n_known)
        self.classes_ = known
        self.n_novel_ = int(means.shape[0] - n_known)
        self.labels_ = np.concatenate([known, int(known.max()) + 1 + np.arange(self.n_novel_)]).astype(np.int64)
        self.means_, self.covariances_, self.weights_ = means, covs, weights
        self.history_ = history
        self.n_features_in_ = Z.shape[1]
        return self

    @staticmethod
    def _moves(Zu, hard, means, n_known, tau, reg, seed, max_novel, phase):
        """One round of merges (nearest pairs, at least one novel) or of splits of novel components."""
        from sklearn.cluster import KMeans

        K = means.shape[0]
        members = [Zu[hard == k] for k in range(K)]
        kept = {k: [means[k]] for k in range(K)}  # component -> its new mean(s)
        touched = set()
        D = ((means[:, None] - means[None]) ** 2).sum(-1)
        pairs = sorted((D[a, b], a, b) for a in range(n_known, K) for b in range(K) if b < a)
        for _, a, b in pairs if phase == "merge" else ():  # a is novel; b is known or an earlier novel component
            if a in touched or b in touched:
                continue
            union = np.vstack([members[a], members[b]])
            if members[a].shape[0] < 2 or _split_gain(union, reg, seed) < tau:
                del kept[a]
                if union.shape[0]:
                    kept[b] = [union.mean(0)] if b >= n_known else [means[b]]  # known means stay anchored
                touched.update((a, b))
        n_novel = sum(1 for k in kept if k >= n_known)
        for k in range(n_known, K) if phase == "split" else ():
            if k in touched or n_novel >= max_novel or members[k].shape[0] < 8:
                continue
            if _split_gain(members[k], reg, seed) > tau:
                kept[k] = list(KMeans(2, n_init=2, random_state=seed).fit(members[k]).cluster_centers_)
                touched.add(k)
                n_novel += 1
        new = [m for k in sorted(kept) for m in kept[k]]
        return np.vstack(new), bool(touched)

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X) -> np.ndarray:
        """Posterior of each component, float64 (n, n_components_) (columns in the order of ``labels_``)."""
        check_fitted(self, "means_")
        Z = check_features(X, n_features=self.n_features_in_).astype(np.float64)
        logp = np.stack([_log_gauss(Z, m, c) for m, c in zip(self.means_, self.covariances_)], axis=1)
        logp += np.log(self.weights_ + 1e-300)
        return np.exp(logp - logsumexp(logp, axis=1, keepdims=True))

    def predict(self, X) -> np.ndarray:
        """A known class or a novel label (``labels_[n_known:]``) for every row, int64 (n,)."""
        proba = self.predict_proba(X)
        return self.labels_[proba.argmax(1)]
