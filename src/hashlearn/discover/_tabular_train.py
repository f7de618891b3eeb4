"""The two training stages of :class:`~hashlearn.discover.TabularNCD` (torch; imported inside ``fit``)."""

from __future__ import annotations

import numpy as np

__all__ = ["build_model", "vime_pretraining", "joint_training"]


def build_model(torch, d: int, hidden: list, dropout: float, n_classifier: int):
    """The TabularNCD network: encoder, VIME heads, classifier; the clustering head is added later."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers, prev = [], d
            for i, h in enumerate(hidden):
                layers.append(nn.Linear(prev, h))
                if i < len(hidden) - 1:
                    layers += [nn.Dropout(dropout), nn.ReLU()]
                prev = h
            self.encoder = nn.Sequential(*layers)
            self.mask_head = nn.Linear(prev, d)
            self.feature_head = nn.Linear(prev, d)
            self.classifier = nn.Sequential(nn.Linear(prev, n_classifier))
            self.width = prev

        def add_cluster_head(self, k: int):
            self.cluster_head = nn.Sequential(nn.Linear(self.width, k))

    return Net()


def _batches(n: int, batch_size: int, rng) -> list:
    perm = rng.permutation(n)
    return [perm[s:s + batch_size] for s in range(0, n, batch_size)]


def vime_pretraining(torch, net, X: np.ndarray, p: dict, rng) -> np.ndarray:
    """VIME self-supervision: predict the corruption mask and the clean row; returns the loss per epoch."""
    F = torch.nn.functional
    params = list(net.encoder.parameters()) + list(net.mask_head.parameters()) + list(net.feature_head.parameters())
    opt = torch.optim.AdamW(params, lr=p["ssl_lr"])
    Xt = torch.from_numpy(X)
    n, d = X.shape
    losses = []
    net.train()
    for _ in range(p["ssl_epochs"]):
        total = []
        for idx in _batches(n, 128, rng):
            xb = X[idx]
            mask = rng.random(xb.shape) < p["p_m"]
            shuffled = X[rng.integers(0, n, size=xb.shape), np.arange(d)[None, :]]  # per-feature marginal
            x_tilde = np.where(mask, shuffled, xb)
            m_label = torch.from_numpy((x_tilde != xb).astype(np.float32))
            z = net.encoder(torch.from_numpy(x_tilde.astype(np.float32)))
            loss = (F.binary_cross_entropy_with_logits(net.mask_head(z), m_label)
                    + p["alpha"] * F.mse_loss(net.feature_head(z), Xt[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total.append(float(loss.detach()))
        losses.append(float(np.mean(total)) if total else np.nan)
    return np.asarray(losses, dtype=np.float64)


def _augment(X: np.ndarray, rows: np.ndarray, pool: np.ndarray, knn: np.ndarray, rng) -> np.ndarray:
    """SMOTE-like copies of ``X[pool[rows]]``: a random step towards one of each row's neighbours in the pool."""
    src = X[pool[rows]]
    partner = X[pool[knn[rows, rng.integers(0, knn.shape[1], size=rows.size)]]]
    return (src + (partner - src) * rng.random((rows.size, 1))).astype(np.float32)


def _pairwise_bce(torch, logits, positive, eps: float = 1e-7):
    """Mean BCE of ``<softmax_i, softmax_j>`` against the pseudo label of every pair i < j."""
    prob = torch.softmax(logits, dim=1)
    sim = prob @ prob.T
    iu = torch.triu_indices(sim.shape[0], sim.shape[0], offset=1)
    s = sim[iu[0], iu[1]]
    t = positive[iu[0], iu[1]]
    return -(t * torch.log(s + eps) + (1 - t) * torch.log(1 - s + eps)).mean()


def _pseudo_labels(torch, z, topk: int):
    """Pairs (i, j) positive when j is among the ``topk`` most cosine-similar rows of i, or i of j."""
    zn = torch.nn.functional.normalize(z.detach(), dim=1)
    S = zn @ zn.T
    S.fill_diagonal_(-float("inf"))
    k = max(1, min(topk, S.shape[0] - 1))
    pos = torch.zeros_like(S)
    pos.scatter_(1, S.topk(k, dim=1).indices, 1.0)
    return torch.clamp(pos + pos.T, max=1.0)


def joint_training(torch, net, X: np.ndarray, target: np.ndarray, unlab: np.ndarray, p: dict, rng) -> np.ndarray:
    """Alternate classification and clustering steps per mini-batch; returns the mean loss per epoch."""
    F = torch.nn.functional
    lab_pool, unlab_pool = np.flatnonzero(~unlab), np.flatnonzero(unlab)
    from .tabular_ncd import _cosine_knn

    knn = {"lab": _cosine_knn(X[lab_pool], p["k_neighbors"]) if lab_pool.size > 1 else None,
           "unlab": _cosine_knn(X[unlab_pool], p["k_neighbors"])}
    pos_in_pool = np.empty(X.shape[0], dtype=np.int64)
    pos_in_pool[lab_pool] = np.arange(lab_pool.size)
    pos_in_pool[unlab_pool] = np.arange(unlab_pool.size)
    opt_c = torch.optim.AdamW(net.parameters(), lr=p["lr_classif"])
    opt_k = torch.optim.AdamW(net.parameters(), lr=p["lr_cluster"])
    topk = int(p["batch_size"] / 2 * p["topk_percent"] / 100)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(target)
    losses = []
    net.train()
    for _ in range(p["epochs"]):
        total = []
        for idx in _batches(X.shape[0], p["batch_size"], rng):
            m_u = unlab[idx]
            if m_u.sum() < 2:
                continue
            aug = np.empty((idx.size, X.shape[1]), dtype=np.float32)
            aug[m_u] = _augment(X, pos_in_pool[idx[m_u]], unlab_pool, knn["unlab"], rng)
            if knn["lab"] is not None:
                aug[~m_u] = _augment(X, pos_in_pool[idx[~m_u]], lab_pool, knn["lab"], rng)
            else:
                aug[~m_u] = X[idx[~m_u]]
            xb, ab = Xt[idx], torch.from_numpy(aug)
            # classification step: CE over known classes + "unlabelled", consistency with the augmented copy
            logits = net.classifier(net.encoder(xb))
            logits_aug = net.classifier(net.encoder(ab))
            loss_c = p["w1"] * F.cross_entropy(logits, Tt[idx]) + (1 - p["w1"]) * F.mse_loss(logits, logits_aug)
            opt_c.zero_grad()
            loss_c.backward()
            opt_c.step()
            # clustering step on the unlabelled rows: pairwise pseudo labels from the encoder space
            mu = torch.from_numpy(m_u)
            z = net.encoder(xb[mu])
            out = net.cluster_head(z)
            out_aug = net.cluster_head(net.encoder(ab[mu]))
            positive = _pseudo_labels(torch, z, topk)
            loss_k = p["w2"] * _pairwise_bce(torch, out, positive) + (1 - p["w2"]) * F.mse_loss(out, out_aug)
            opt_k.zero_grad()
            loss_k.backward()
            opt_k.step()
            total.append(float(loss_c.detach()) + float(loss_k.detach()))
        losses.append(float(np.mean(total)) if total else np.nan)
    net.eval()
    return np.asarray(losses, dtype=np.float64)
