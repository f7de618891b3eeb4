"""TabularNCD: novel class discovery in tabular data (VIME pre-training, then joint classifier + clustering)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..hashing.base import PersistableEstimatorMixin
from ..io import persistable
from ..params import check_int_param, check_real_param
from ._common import (UNLABELLED, check_features, check_fitted, check_partial_labels, require_torch,
                      torch_local_state)
from .estimate_k import estimate_n_clusters

__all__ = ["TabularNCD"]


def _mlp_forward(X: np.ndarray, layers) -> np.ndarray:
    """ReLU MLP in numpy: ReLU after every layer but the last (the encoder of the paper)."""
    h = X
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def _cosine_knn(X: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """(n, k') int64: the k most cosine-similar other rows of each row (k' = min(k, n - 1) >= 1), by blocks."""
    n = X.shape[0]
    k = max(1, min(int(k), n - 1))
    Z = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, block):
        S = Z[s:s + block] @ Z.T
        S[np.arange(S.shape[0]), np.arange(s, s + S.shape[0])] = -np.inf  # never the row itself
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        out[s:s + block] = part
    return out


@persistable
class TabularNCD(PersistableEstimatorMixin, BaseEstimator):
    """Novel class discovery in tabular data: known-class classifier and novel-class clustering head.

    Fitting has two stages on one MLP encoder (ReLU hidden layers, dropout):

    1. **Self-supervised pre-training (VIME)** on every row, labelled or not: each feature is
       corrupted with probability ``p_m`` (its value replaced by the same feature of a random row);
       two linear heads on the encoder predict the corruption mask (binary cross-entropy) and the
       clean row (mean squared error, weight ``alpha``).
    2. **Joint training.** A classification head over the known classes plus one "unlabelled" class
       is trained with cross-entropy and a consistency term (MSE between the logits of a row and of
       its augmented copy, weights ``w1`` / ``1 - w1``). A clustering head with ``n_novel`` outputs is
       trained on the unlabelled rows with pairwise pseudo labels: in each mini-batch, a pair is
       positive when one row is among the ``topk_percent`` % (of half the batch size) most
       cosine-similar rows of the other in the encoder space; the loss is the binary cross-entropy of
       the inner product of the two softmax outputs, plus the same consistency term (weights ``w2`` /
       ``1 - w2``). Augmentation is SMOTE-like: a row moves a random fraction of the way towards one of
       its ``k_neighbors`` most cosine-similar rows of the same part (labelled or unlabelled).

    When ``n_novel`` is None it is estimated before stage 2 from the pre-trained encoder's embedding
    of the unlabelled rows, as the k-means clustering with the best silhouette among
    ``2..max_novel`` clusters ("A Practical Approach to Novel Class Discovery in Tabular Data", which
    estimates it with cluster-validity indices in a latent space).

    Parameters
    ----------
    n_novel : int or None, default None
        Number of novel classes (outputs of the clustering head); None: estimated.
    known_classes : sequence of int or None, default None
        The known classes; each must have a labelled row (None: the classes found among the labels).
    max_novel : int, default 15
        Upper end of the range searched when ``n_novel`` is None.
    hidden : sequence of int or None, default None
        Encoder layer sizes (None: three layers as wide as the input, as in the paper's configurations).
    dropout : float, default 0.01
    ssl_epochs : int, default 30
    ssl_lr : float, default 1e-3
    p_m : float, default 0.3
        Corruption probability of the pre-training.
    alpha : float, default 2.0
        Weight of the feature-reconstruction loss of the pre-training.
    epochs : int, default 30
    batch_size : int, default 512
    lr_classif, lr_cluster : float, default 0.0064, 0.0096
        AdamW learning rates of the classification and clustering steps.
    w1, w2 : float, default 0.8, 0.8
        Weights of cross-entropy (resp. pairwise BCE) against the consistency terms.
    topk_percent : float, default 5.6
        Positive pseudo pairs per row, as a percentage of half the batch size.
    k_neighbors : int, default 10
        Neighbours among which an augmentation partner is drawn.
    n_threads : int, default 1
        torch threads during ``fit`` (at most).
    random_state : int, Generator or None

    Attributes
    ----------
    classes_ : int64 (n_known,) — the known classes
    novel_labels_ : int64 (n_novel_,) — labels given to the novel clusters (after the largest known class)
    n_novel_ : int — number of novel clusters (given or estimated)
    n_novel_candidates_ : int64 (m,) — the numbers of novel classes tried (empty when given)
    n_novel_scores_ : float64 (m,) — their silhouettes
    encoder_ : list of [W (d_in, d_out), b (d_out,)] float32
    classifier_ : [W, b] — n_known + 1 outputs, the last one is "unlabelled / novel"
    cluster_head_ : [W, b] — n_novel_ outputs
    ssl_loss_, loss_ : float64 (epochs,) — mean losses per epoch of stage 1 and of stage 2 (sum of both steps)
    n_features_in_ : int

    References
    ----------
    C. Troisemaine, J. Flocon-Cholet, S. Gosselin, A. Reiffers-Masson, S. Vaton, V. Lemaire, "A Method
    for Discovering Novel Classes in Tabular Data" (TabularNCD), ICKG 2022; C. Troisemaine et al.,
    "A Practical Approach to Novel Class Discovery in Tabular Data", 2023 (estimating the number of
    novel classes); J. Yoon et al., "VIME: Extending the Success of Self- and Semi-supervised Learning to
    Tabular Domain", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from hashlearn.discover import TabularNCD
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(0, 6, (4, 5))
    >>> y_true = np.repeat(np.arange(4), 100)
    >>> X = (centers[y_true] + rng.normal(size=(400, 5))).astype("float32")
    >>> y = np.where(y_true < 2, y_true, -1)          # classes 2 and 3 are novel, unlabelled
    >>> model = TabularNCD(n_novel=2, epochs=5, ssl_epochs=2, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def __init__(self, n_novel=None, *, known_classes=None, max_novel: int = 15, hidden=None,
                 dropout: float = 0.01, ssl_epochs: int = 30, ssl_lr: float = 1e-3, p_m: float = 0.3,
                 alpha: float = 2.0, epochs: int = 30, batch_size: int = 512, lr_classif: float = 0.0064,
                 lr_cluster: float = 0.0096, w1: float = 0.8, w2: float = 0.8, topk_percent: float = 5.6,
                 k_neighbors: int = 10, n_threads: int = 1, random_state=None):
        self.n_novel = n_novel
        self.known_classes = known_classes
        self.max_novel = max_novel
        self.hidden = hidden
        self.dropout = dropout
        self.ssl_epochs = ssl_epochs
        self.ssl_lr = ssl_lr
        self.p_m = p_m
        self.alpha = alpha
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr_classif = lr_classif
        self.lr_cluster = lr_cluster
        self.w1 = w1
        self.w2 = w2
        self.topk_percent = topk_percent
        self.k_neighbors = k_neighbors
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _validated_params(self, n_unlab: int, d: int) -> dict:
        p = {}
        p["n_novel"] = check_int_param(self.n_novel, "n_novel", min_val=1, allow_none=True)
        if p["n_novel"] is not None and p["n_novel"] > n_unlab:
            from ..errors import ValidationError

            raise ValidationError(f"n_novel={p['n_novel']} novel classes requested but only {n_unlab} "
                                  "unlabelled rows")
        p["max_novel"] = check_int_param(self.max_novel, "max_novel", min_val=2)
        for name in ("ssl_epochs", "epochs"):
            p[name] = check_int_param(getattr(self, name), name, min_val=0)
        for name in ("batch_size", "k_neighbors", "n_threads"):
            p[name] = check_int_param(getattr(self, name), name, min_val=1)
        p["batch_size"] = max(p["batch_size"], 4)
        for name in ("ssl_lr", "lr_classif", "lr_cluster", "topk_percent"):
            p[name] = check_real_param(getattr(self, name), name, min_val=0, include_boundaries="neither")
        for name in ("p_m", "w1", "w2"):
            p[name] = check_real_param(getattr(self, name), name, min_val=0, max_val=1)
        p["dropout"] = check_real_param(self.dropout, "dropout", min_val=0, max_val=1, include_boundaries="left")
        p["alpha"] = check_real_param(self.alpha, "alpha", min_val=0)
        hidden = [d, d, d] if self.hidden is None else list(self.hidden)
        p["hidden"] = [check_int_param(h, "hidden[i]", min_val=1) for h in hidden]
        if not p["hidden"]:
            from ..errors import ValidationError

            raise ValidationError("hidden must list at least one layer size, got []")
        return p

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Learn the encoder, the known-class classifier and the novel-class clustering head.

        Parameters
        ----------
        X : array-like (n, d), finite
            All training rows: labelled known-class rows and unlabelled rows.
        y : array-like of int (n,)
            Class of each labelled row, ``-1`` for an unlabelled row.

        Returns
        -------
        self
        """
        from sklearn.utils import check_random_state

        X = check_features(X)
        y, known = check_partial_labels(y, X.shape[0], self.known_classes)
        unlab = y == UNLABELLED
        n_unlab = int(unlab.sum())
        if n_unlab < 2:
            from ..errors import ValidationError

            raise ValidationError(f"need at least 2 unlabelled rows (label -1) to discover classes, got {n_unlab}")
        p = self._validated_params(n_unlab, X.shape[1])
        torch = require_torch("TabularNCD")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(2**31 - 1))
        np_rng = np.random.default_rng(seed)
        with torch_local_state(torch, seed, p["n_threads"]):
            from ._tabular_train import build_model, joint_training, vime_pretraining

            net = build_model(torch, X.shape[1], p["hidden"], p["dropout"], len(known) + 1)
            self.ssl_loss_ = vime_pretraining(torch, net, X, p, np_rng)
            Z = _mlp_forward(X[unlab], _export(net.encoder))
            if p["n_novel"] is None:
                k, scores = estimate_n_clusters(Z, max_k=min(p["max_novel"], n_unlab - 1),
                                                random_state=int(np_rng.integers(2**31 - 1)))
                self.n_novel_candidates_ = np.asarray(sorted(scores), dtype=np.int64)
                self.n_novel_scores_ = np.asarray([scores[c] for c in sorted(scores)], dtype=np.float64)
            else:
                k = p["n_novel"]
                self.n_novel_candidates_ = np.zeros(0, dtype=np.int64)
                self.n_novel_scores_ = np.zeros(0, dtype=np.float64)
            self.n_novel_ = int(k)
            net.add_cluster_head(self.n_novel_)
            target = np.full(X.shape[0], len(known), dtype=np.int64)  # "unlabelled" class index
            target[~unlab] = np.searchsorted(known, y[~unlab])
            self.loss_ = joint_training(torch, net, X, target, unlab, p, np_rng)
            self.encoder_ = _export(net.encoder)
            self.classifier_ = _export(net.classifier)[0]
            self.cluster_head_ = _export(net.cluster_head)[0]
        self.classes_ = known
        self.novel_labels_ = np.arange(self.n_novel_, dtype=np.int64) + int(known.max()) + 1
        self.n_features_in_ = X.shape[1]
        return self

    # ------------------------------------------------------------------ predict
    def _embed(self, X) -> np.ndarray:
        check_fitted(self, "cluster_head_")
        X = check_features(X, n_features=self.n_features_in_)
        return _mlp_forward(X, self.encoder_)

    def transform(self, X) -> np.ndarray:
        """Encoder embedding, float32 (n, hidden[-1])."""
        return self._embed(X).astype(np.float32)

    def predict_novel(self, X) -> np.ndarray:
        """Novel cluster of each row, int64 in ``0..n_novel_-1`` (the clustering head's argmax)."""
        W, b = self.cluster_head_
        return np.argmax(self._embed(X) @ W + b, axis=1).astype(np.int64)

    def predict_known(self, X) -> np.ndarray:
        """Known class of each row (argmax of the classifier over the known classes only), int64."""
        W, b = self.classifier_
        logits = self._embed(X) @ W + b
        return self.classes_[np.argmax(logits[:, :-1], axis=1)]

    def predict(self, X) -> np.ndarray:
        """A known class, or ``novel_labels_[cluster]`` when the classifier's top output is "novel"."""
        Z = self._embed(X)
        Wc, bc = self.classifier_
        Wk, bk = self.cluster_head_
        top = np.argmax(Z @ Wc + bc, axis=1)
        known = self.classes_[np.minimum(top, len(self.classes_) - 1)]
        novel = self.novel_labels_[np.argmax(Z @ Wk + bk, axis=1)]
        return np.where(top == len(self.classes_), novel, known).astype(np.int64)


def _export(seq) -> list:
    """[[W (in, out), b (out,)], ...] float32 numpy arrays of the Linear layers of a torch module."""
    import torch

    return [[m.weight.detach().numpy().T.astype(np.float32).copy(), m.bias.detach().numpy().astype(np.float32).copy()]
            for m in seq.modules() if isinstance(m, torch.nn.Linear)]
