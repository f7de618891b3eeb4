"""Learned unsupervised hashing on top of PCA: PCA hashing (PCAH), PCA-ITQ and Isotropic Hashing (IsoH).

All three centre the data, project it on its top ``n_bits`` principal directions and take signs (a bit
is 1 where the projection is positive); they differ in the orthogonal rotation applied to the PCA
projections before the sign:

* :class:`PCAHashing` — none (the identity);
* :class:`ITQ` — the rotation minimising the quantisation loss ``||B - V R||_F²`` (Gong & Lazebnik);
* :class:`IsotropicHashing` — a rotation that gives every projected dimension the same variance
  (Kong & Li).

Fitting streams the training matrix in row chunks: the mean and covariance are accumulated in float64
one chunk at a time, so the PCA needs ``O(d²)`` memory besides one chunk, and its cost is linear in the
number of rows (a NumPy memory map is read chunk by chunk). ITQ additionally keeps the projected
training data ``V`` (``n × n_bits`` float32, never larger than ``X`` itself) and iterates over it in
chunks, accumulating the ``n_bits × n_bits`` matrix of the Procrustes step.

A principal-component basis has at most ``d`` directions, so the code length of these methods cannot
exceed the data dimension ``d`` (the papers use ``c ≤ d`` bits; faiss' ``ITQ`` has the same limit).
With ``n_bits > d``, :meth:`fit` warns and learns ``n_bits_ = d`` bits, as scikit-learn's estimators
do with an ``n_components`` larger than the data allow; ``n_bits`` itself is left as given. Use a
data-independent family (:class:`~hashlearn.hashing.SimHash`, :class:`~hashlearn.hashing.E2LSH`) for
codes longer than the dimension.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._rotations import nearest_orthogonal, random_orthogonal
from ._validation import check_int_param, check_real_param, warn_data_limit
from .base import BaseHasher
from .registry import register

__all__ = ["PCAHashing", "ITQ", "IsotropicHashing"]

# Elements (rows × columns) per chunk in the streamed passes: 4M, i.e. 32 MB of float64 temporaries.
_CHUNK_ELEMS = 1 << 22


# -- shared numerical helpers ----------------------------------------------------------------------------
def _chunk_rows(n_cols: int) -> int:
    return max(1, _CHUNK_ELEMS // max(1, n_cols))


def _mean_cov(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d), both float64, of the rows of ``X`` in two streamed passes.

    The second pass accumulates ``(X_c - μ)ᵀ (X_c - μ)`` chunk by chunk in float64, so no full-size
    temporary is made and there is no cancellation from a large mean. Divides by ``n - 1`` (by 1 if n = 1).
    """
    n, d = X.shape
    rows = _chunk_rows(d)
    total = np.zeros(d, dtype=np.float64)
    for s in range(0, n, rows):
        total += X[s : s + rows].sum(axis=0, dtype=np.float64)
    mean = total / n
    cov = np.zeros((d, d), dtype=np.float64)
    buf = np.empty((min(rows, n), d), dtype=np.float64)  # reused: no allocation (and page faults) per chunk
    for s in range(0, n, rows):
        Xc = X[s : s + rows]
        Y = buf[: Xc.shape[0]]
        np.subtract(Xc, mean, out=Y)
        cov += Y.T @ Y  # numpy calls syrk for A.T @ A
    cov /= max(n - 1, 1)
    return mean, cov


def _top_eigh(cov: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues (descending, clipped at 0) and their eigenvectors (d, k).

    Signs are fixed so that each eigenvector's entry of largest magnitude is positive (as in
    scikit-learn's ``svd_flip``), which makes the bits independent of the LAPACK build.
    """
    w, U = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1][:k]
    w, U = np.maximum(w[order], 0.0), U[:, order]
    signs = np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(k)])
    signs[signs == 0] = 1.0
    return w, U * signs


# -- the shared PCA front end -------------------------------------------------------------------------------
class _PCAFamily(BaseHasher):
    """PCA front end shared by PCAH, ITQ and IsoH: streamed mean/covariance, top ``n_bits`` directions.

    Subclasses implement ``_fit_rotation(X, W, var, rng)`` (``W`` the (d, n_bits) float64 principal
    directions, ``var`` their variances) returning the (n_bits, n_bits) float64 rotation applied after the
    PCA projection, or None for the identity; ``projection_ = components_ @ rotation`` is what encodes.
    """

    def _fit(self, X: np.ndarray, rng: np.random.Generator) -> None:
        d = X.shape[1]
        nb = int(self.n_bits)
        if nb > d:
            warn_data_limit(self, "n_bits", nb, d, f"exceeds the data dimension d={d} (a PCA basis has at most "
                            f"d directions; SimHash or E2LSH give longer codes)")
            nb = self.n_bits_ = d
        mean, cov = _mean_cov(X)
        var, W = _top_eigh(cov, nb)
        self.mean_ = mean.astype(np.float32)
        self.components_ = W.astype(np.float32)
        self.explained_variance_ = var
        R = self._fit_rotation(X, W, var, rng)
        self.projection_ = (W @ R).astype(np.float32) if R is not None else self.components_.copy()

    def _fit_rotation(self, X, W, var, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _project(self, X: np.ndarray) -> np.ndarray:
        """Centred, projected and rotated ``X``: (n, n_bits) float32; positive entries are the 1 bits.

        Row chunks are centred one at a time, so no temporary of the size of ``X`` is made.
        """
        P = self.projection_
        n, d = X.shape
        out = np.empty((n, P.shape[1]), dtype=np.float32)
        rows = _chunk_rows(d)
        buf = np.empty((min(rows, n), d), dtype=np.float32)
        for s in range(0, n, rows):
            Xc = X[s : s + rows]
            Y = buf[: Xc.shape[0]]
            np.subtract(Xc, self.mean_, out=Y)
            np.matmul(Y, P, out=out[s : s + rows])
        return out



# -- PCAH ----------------------------------------------------------------------------------------------------
@register("pcah")
class PCAHashing(_PCAFamily):
    """PCA hashing (PCAH): bit ``j`` of ``x`` is ``[w_jᵀ (x - μ) > 0]`` for the ``j``-th principal direction.

    The baseline of the ITQ paper: the top ``n_bits`` eigenvectors of the training covariance, thresholded
    at zero after centring. Because the variance is concentrated in the first directions, longer codes
    gain little — which is what ITQ's rotation fixes.

    Parameters
    ----------
    n_bits : int, default 64
        Code length; at most the data dimension ``d`` (see ``n_bits_``).
    random_state : int, numpy Generator or None, default None
        Unused (PCAH is deterministic); accepted so that every registered method takes it.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,), float32
        Training mean, subtracted before projecting.
    components_ : ndarray of shape (n_features_in_, n_bits_), float32
        Principal directions (unit columns) by decreasing variance; the sign of each is fixed so that its
        entry of largest magnitude is positive.
    explained_variance_ : ndarray of shape (n_bits_,), float64
        Training variance along each direction (covariance eigenvalues, divided by ``n - 1``).
    projection_ : ndarray of shape (n_features_in_, n_bits_), float32
        The matrix applied to centred vectors; equal to ``components_`` for PCAH.
    n_bits_ : int
        Code length learned: ``min(n_bits, n_features_in_)``.
    n_features_in_ : int

    Warns
    -----
    UserWarning
        From :meth:`fit` if ``n_bits`` exceeds the data dimension ``d``; ``n_bits_ = d`` bits are learned.

    References
    ----------
    Y. Gong and S. Lazebnik, "Iterative Quantization: A Procrustean Approach to Learning Binary Codes",
    CVPR 2011; Y. Gong, S. Lazebnik, A. Gordo and F. Perronnin, TPAMI 35(12), 2013 (PCA-Direct baseline).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 16))
    >>> PCAHashing(n_bits=8).fit(X).transform(X).shape
    (200, 1)
    """

    def __init__(self, n_bits=64, *, random_state=None):
        self.n_bits = n_bits
        self.random_state = random_state

    def _fit_rotation(self, X, W, var, rng):
        return None


# -- ITQ -----------------------------------------------------------------------------------------------------
@register("itq")
class ITQ(_PCAFamily):
    """PCA-ITQ: PCA to ``n_bits`` dimensions, then the orthogonal rotation minimising quantisation loss.

    With ``V = (X - μ) W`` the centred training data projected on its top ``n_bits`` principal directions,
    ITQ alternates, from a random orthogonal ``R`` (Haar, drawn from ``random_state``), between
    ``B = sign(V R)`` and the orthogonal Procrustes solution ``R = U Ŵᵀ`` where ``Vᵀ B = U Ω Ŵᵀ`` is an SVD.
    Each step can only lower the loss ``Q(B, R) = ||B - V R||_F²``, which is recorded after every
    iteration in :attr:`loss_history_`. A query ``x`` is encoded as ``sign((x - μ)ᵀ W R)``.

    Each iteration is one streamed pass over ``V`` in row chunks: the chunk of ``V R`` is formed, turned
    into ``B`` in place and ``Vᵀ B`` accumulated in float64; the loss of the same pass is
    ``n·n_bits + ||V||² - 2 <R, Vᵀ B>``. ``V`` (float32, ``n × n_bits``, never larger than ``X``) is the
    only size-``n`` array allocated; ``max_train_samples`` bounds it and the cost of the iterations.

    ``n_iter=0`` gives PCA followed by a random rotation ("PCA-RR" in the paper).

    Parameters
    ----------
    n_bits : int, default 64
        Code length; at most the data dimension ``d`` (see ``n_bits_``).
    n_iter : int, default 50
        Number of ITQ iterations (50 in the paper).
    max_train_samples : int or None, default None
        If set and the training set is larger, the rotation is learned on this many rows drawn at random
        without replacement (seeded by ``random_state``); the mean and the PCA always use every row
        (one streamed pass, linear in ``n``). ``None`` uses every row, as in the paper.
    random_state : int, numpy Generator or None, default None
        Seed of the subsample and of the initial rotation, resolved in ``fit``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,), float32
    components_ : ndarray of shape (n_features_in_, n_bits_), float32
        Principal directions ``W`` by decreasing variance.
    explained_variance_ : ndarray of shape (n_bits_,), float64
    rotation_ : ndarray of shape (n_bits_, n_bits_), float64
        The learned orthogonal rotation ``R``.
    projection_ : ndarray of shape (n_features_in_, n_bits_), float32
        ``components_ @ rotation_``, the matrix applied to centred vectors.
    loss_history_ : ndarray of shape (n_iter + 1,), float64
        Quantisation loss ``||sign(V R_k) - V R_k||_F²`` divided by the number of training rows used, for
        the initial rotation ``R_0`` and after each iteration; non-increasing.
    n_train_samples_ : int
        Rows the rotation was learned on.
    n_bits_ : int
        Code length learned: ``min(n_bits, n_features_in_)``.
    n_features_in_ : int

    Warns
    -----
    UserWarning
        From :meth:`fit` if ``n_bits`` exceeds the data dimension ``d``; ``n_bits_ = d`` bits are learned.

    References
    ----------
    Y. Gong and S. Lazebnik, "Iterative Quantization: A Procrustean Approach to Learning Binary Codes",
    CVPR 2011. Y. Gong, S. Lazebnik, A. Gordo and F. Perronnin, "Iterative Quantization: A Procrustean
    Approach to Learning Binary Codes for Large-Scale Image Retrieval", TPAMI 35(12):2916–2929, 2013.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 32))
    >>> itq = ITQ(n_bits=16, n_iter=20, random_state=0).fit(X)
    >>> itq.transform(X).shape
    (500, 1)
    >>> bool(np.all(np.diff(itq.loss_history_) <= 1e-9))
    True
    """

    def __init__(self, n_bits=64, *, n_iter=50, max_train_samples=None, random_state=None):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.max_train_samples = max_train_samples
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.n_iter, "n_iter", min_val=0)
        check_int_param(self.max_train_samples, "max_train_samples", min_val=1, allow_none=True)

    def _fit_rotation(self, X, W, var, rng):
        n, d = X.shape
        nb = W.shape[1]
        idx = None
        if self.max_train_samples is not None and n > self.max_train_samples:
            idx = np.sort(rng.choice(n, size=int(self.max_train_samples), replace=False))
        m = n if idx is None else idx.shape[0]
        # V = (X - μ) W, float32, filled chunk by chunk
        mean32, W32 = self.mean_, W.astype(np.float32)
        V = np.empty((m, nb), dtype=np.float32)
        rows = _chunk_rows(d)
        xbuf = np.empty((min(rows, m), d), dtype=np.float32)
        for s in range(0, m, rows):
            Xc = X[s : s + rows] if idx is None else X[idx[s : s + rows]]
            Y = xbuf[: Xc.shape[0]]
            np.subtract(Xc, mean32, out=Y)
            np.matmul(Y, W32, out=V[s : s + rows])
        sq_norm = 0.0
        rows_v = _chunk_rows(nb)
        for s in range(0, m, rows_v):
            Vc = V[s : s + rows_v]
            sq_norm += float(np.einsum("ij,ij->", Vc, Vc, dtype=np.float64))

        R = random_orthogonal(rng, nb)
        buf = np.empty((min(rows_v, m), nb), dtype=np.float32)
        losses = np.empty(int(self.n_iter) + 1, dtype=np.float64)
        for it in range(int(self.n_iter) + 1):
            R32 = R.astype(np.float32)
            M = np.zeros((nb, nb), dtype=np.float64)  # Vᵀ B, B = sign(V R)
            for s in range(0, m, rows_v):
                Vc = V[s : s + rows_v]
                B = buf[: Vc.shape[0]]
                np.matmul(Vc, R32, out=B)
                np.copysign(np.float32(1.0), B, out=B)
                M += Vc.T @ B
            # ||B - V R||² = ||B||² + ||V R||² - 2 tr(Bᵀ V R) = n·nb + ||V||² - 2 <R, Vᵀ B>
            losses[it] = (m * nb + sq_norm - 2.0 * float(np.sum(R32.astype(np.float64) * M))) / m
            if it < self.n_iter:
                R = nearest_orthogonal(M)  # max over orthogonal R of <R, M>: R = U Wᵀ from M = U Ω Wᵀ
        self.rotation_ = R
        self.loss_history_ = losses
        self.n_train_samples_ = int(m)
        return R


# -- IsoH ----------------------------------------------------------------------------------------------------
def _isotropic_rotation(var: np.ndarray, Q0: np.ndarray, *, max_iter: int, tol: float):
    """Kong & Li's lift-and-projection: orthogonal ``Q`` with ``diag(Qᵀ Λ Q) = mean(λ)``.

    Alternates between ``T = Z`` with its diagonal replaced by ``a = mean(λ)`` (projection on the affine
    set of matrices with that diagonal) and ``Z = U Λ Uᵀ`` where ``T = U Γ Uᵀ`` with eigenvalues in the
    order of ``λ`` (projection on the orthogonal similarity orbit of ``Λ``), starting from
    ``Z = Q0ᵀ Λ Q0``. Returns ``(Q, n_iter, rel_error)`` with ``Q = Uᵀ`` so that ``Z = Qᵀ Λ Q`` and
    ``rel_error = max_j |Z_jj - a| / a``.
    """
    a = float(var.mean())
    Q = Q0
    if a <= 0.0 or np.ptp(var) <= 1e-12 * a:  # already isotropic (or all-zero variance)
        return Q, 0, 0.0
    order = np.argsort(var)  # eigh returns ascending eigenvalues: pair them with λ in ascending order
    Z = Q.T @ (var[:, None] * Q)
    err = float(np.max(np.abs(np.diag(Z) - a)) / a)
    it = 0
    while err > tol and it < max_iter:
        T = Z.copy()
        np.fill_diagonal(T, a)
        _, U_asc = np.linalg.eigh(T)
        U = np.empty_like(U_asc)
        U[:, order] = U_asc  # column j of U carries λ_j
        Z = U @ (var[:, None] * U.T)
        Q = U.T
        err = float(np.max(np.abs(np.diag(Z) - a)) / a)
        it += 1
    return Q, it, err


@register("isoh")
class IsotropicHashing(_PCAFamily):
    """Isotropic Hashing (IsoH): PCA, then a rotation that equalises the variance of every projected dimension.

    PCA concentrates the variance in the first directions, so all bits get the same weight in the
    Hamming distance although some carry much more information. IsoH learns an orthogonal ``Q`` such
    that ``Qᵀ Λ Q`` (the covariance of the rotated projections, ``Λ = diag(λ)`` the top ``n_bits``
    eigenvalues) has all diagonal entries equal to ``a = mean(λ)`` — such a ``Q`` exists by the
    Schur–Horn theorem. A query ``x`` is encoded as ``sign((x - μ)ᵀ W Q)``.

    ``Q`` is found with the paper's *lift and projection* (LP) algorithm: starting from
    ``Z = Q0ᵀ Λ Q0`` with ``Q0`` a random orthogonal matrix, alternately (i) lift: replace the diagonal
    of ``Z`` by ``a``, giving ``T``; (ii) project: eigendecompose ``T = U Γ Uᵀ`` and set ``Z = U Λ Uᵀ``
    with the eigenvalues matched in order, so ``Z`` stays an orthogonal similarity of ``Λ`` with
    ``Q = Uᵀ``. It stops when ``max_j |Z_jj - a| / a <= tol`` (tens of iterations of an
    ``n_bits × n_bits`` eigendecomposition in practice); a
    :class:`~sklearn.exceptions.ConvergenceWarning` is raised if ``max_iter`` is reached first.
    (The paper's alternative, gradient flow, is not implemented.)

    Parameters
    ----------
    n_bits : int, default 64
        Code length; at most the data dimension ``d`` (see ``n_bits_``).
    max_iter : int, default 1000
        Maximum number of lift-and-projection iterations.
    tol : float, default 1e-6
        Stop when every diagonal entry is within ``tol · a`` of ``a``.
    random_state : int, numpy Generator or None, default None
        Seed of the initial rotation ``Q0``, resolved in ``fit``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,), float32
    components_ : ndarray of shape (n_features_in_, n_bits_), float32
        Principal directions ``W`` by decreasing variance.
    explained_variance_ : ndarray of shape (n_bits_,), float64
        ``λ``.
    rotation_ : ndarray of shape (n_bits_, n_bits_), float64
        The learned orthogonal ``Q``: ``diag(rotation_ᵀ diag(λ) rotation_) ≈ mean(λ)``.
    projection_ : ndarray of shape (n_features_in_, n_bits_), float32
        ``components_ @ rotation_``, the matrix applied to centred vectors.
    n_iter_ : int
        Lift-and-projection iterations run.
    isotropy_error_ : float
        Final ``max_j |(Qᵀ Λ Q)_jj - a| / a``.
    n_bits_ : int
        Code length learned: ``min(n_bits, n_features_in_)``.
    n_features_in_ : int

    Warns
    -----
    UserWarning
        From :meth:`fit` if ``n_bits`` exceeds the data dimension ``d``; ``n_bits_ = d`` bits are learned.

    References
    ----------
    W. Kong and W.-J. Li, "Isotropic Hashing", Advances in Neural Information Processing Systems 25
    (NIPS 2012), pp. 1646–1654.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 32)) * np.arange(1, 33)
    >>> h = IsotropicHashing(n_bits=16, random_state=0).fit(X)
    >>> Z = h.rotation_.T @ np.diag(h.explained_variance_) @ h.rotation_
    >>> bool(np.allclose(np.diag(Z), h.explained_variance_.mean(), rtol=1e-5))
    True
    """

    def __init__(self, n_bits=64, *, max_iter=1000, tol=1e-6, random_state=None):
        self.n_bits = n_bits
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int_param(self.max_iter, "max_iter", min_val=0)
        check_real_param(self.tol, "tol", min_val=0, include_boundaries="neither")

    def _fit_rotation(self, X, W, var, rng):
        Q0 = random_orthogonal(rng, W.shape[1])
        Q, it, err = _isotropic_rotation(var, Q0, max_iter=int(self.max_iter), tol=float(self.tol))
        if err > self.tol:
            warnings.warn(
                f"IsotropicHashing: lift and projection stopped after max_iter={self.max_iter} iterations with "
                f"relative isotropy error {err:.3g} > tol={self.tol}; increase max_iter",
                ConvergenceWarning,
                stacklevel=4,
            )
        self.rotation_ = Q
        self.n_iter_ = int(it)
        self.isotropy_error_ = float(err)
        return Q
