"""GraphHash: modularity clustering of the user–item bipartite graph as the hash of users and items.

Users and items of one cluster share a row index (row ``c`` of the user table for its users, row ``c``
of the item table for its items). The resolution of the modularity objective is searched so that the
clusters fit the row budget — by default once per table (the finest clustering whose user clusters fit
the user table, and likewise for items), or once for both (``per_table=False``). Clustering is delegated to a maintained library:
python-igraph (``community_multilevel`` = Louvain, ``community_leiden``) when installed, else
networkx's ``louvain_communities``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import ValidationError
from ..registry import register
from .compress import BaseCompressor, hash_ids, table_rows

__all__ = ["GraphHash", "bipartite_communities"]

_ALGORITHMS = ("louvain", "leiden")
_BACKENDS = ("auto", "igraph", "networkx")


def _have_igraph() -> bool:
    try:
        import igraph  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_backend(backend: str, algorithm: str) -> str:
    if backend == "auto":
        backend = "igraph" if _have_igraph() else "networkx"
    if backend == "igraph" and not _have_igraph():
        raise ValidationError("backend='igraph' needs python-igraph: pip install python-igraph")
    if backend == "networkx" and algorithm == "leiden":
        raise ValidationError("algorithm='leiden' needs backend='igraph' (networkx runs Louvain only here)")
    return backend


def bipartite_communities(n_nodes: int, edges: np.ndarray, *, resolution: float = 1.0, seed: int = 0,
                          algorithm: str = "louvain", backend: str = "auto") -> np.ndarray:
    """Cluster label (int64, shape (n_nodes,)) of every node of an undirected graph by modularity.

    Parameters
    ----------
    n_nodes : int
    edges : int array (m, 2) of node pairs (0-based)
    resolution : float
        Modularity resolution γ: larger values give more, smaller clusters.
    seed : int
        Seeds the node order (igraph: a private ``random.Random`` installed for the call and removed
        afterwards; networkx: its ``seed`` argument).
    algorithm : {"louvain", "leiden"}
    backend : {"auto", "igraph", "networkx"}

    References
    ----------
    Blondel, Guillaume, Lambiotte, Lefebvre, "Fast unfolding of communities in large networks", J. Stat.
    Mech. 2008 (Louvain). Traag, Waltman, van Eck, "From Louvain to Leiden: guaranteeing well-connected
    communities", Sci. Rep. 2019.
    """
    backend = _resolve_backend(backend, algorithm)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if backend == "igraph":
        import random

        import igraph

        graph = igraph.Graph(n=int(n_nodes), edges=edges.tolist())
        igraph.set_random_number_generator(random.Random(int(seed)))
        try:
            if algorithm == "leiden":
                part = graph.community_leiden(objective_function="modularity", resolution=float(resolution),
                                              n_iterations=-1)
            else:
                part = graph.community_multilevel(resolution=float(resolution))
        finally:
            igraph.set_random_number_generator(random)
        labels = np.asarray(part.membership, dtype=np.int64)
    else:
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from(range(int(n_nodes)))
        graph.add_edges_from(edges.tolist())
        comms = nx.community.louvain_communities(graph, resolution=float(resolution), seed=int(seed))
        labels = np.empty(int(n_nodes), np.int64)
        for c, members in enumerate(comms):
            labels[list(members)] = c
    return labels


def _rows_from_clusters(labels: np.ndarray, n_rows: int, seed: int) -> tuple[np.ndarray, int]:
    """Rows of nodes with cluster ``labels``: clusters by decreasing size get rows 0, 1, ...; clusters
    beyond ``n_rows`` (the smallest) are folded onto rows by a hash of their label."""
    uniq, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    rank = np.empty(uniq.size, np.int64)
    rank[np.lexsort((uniq, -sizes))] = np.arange(uniq.size)
    rows = rank.copy()
    over = rank >= n_rows
    if over.any():
        rows[over] = hash_ids(uniq[over], seed, n_rows)
    return rows[inverse], int(min(uniq.size, n_rows))


@register("graphhash", kind="compressor")
class GraphHash(BaseCompressor):
    """Users and items of one modularity cluster of the interaction graph share a row index.

    The bipartite graph has one node per user and per item and one edge per distinct training
    (user, item) pair. The resolution γ is searched (doubling, then bisection on log γ) for the finest
    clustering whose user clusters fit the user table's rows and item clusters the item table's rows;
    if none fits, the smallest clusters are folded onto rows by hashing. IDs without any training
    interaction get the fallback row.

    Parameters
    ----------
    budget : float in (0, 1], default 0.25
        Rows as a fraction of the full table's rows (per table).
    algorithm : {"louvain", "leiden"}, default "louvain"
    backend : {"auto", "igraph", "networkx"}, default "auto"
        "auto" uses python-igraph when installed (much faster), else networkx.
    residual : float in [0, 1), default 0.0
        Fraction of each table's rows given to a hashed residual: every ID then has two rows, its
        cluster's and ``hash(id)`` in the residual part (the clusters get the remaining rows).
    per_table : bool, default True
        Search the resolution separately for the user table and the item table, so each table's
        budget is filled (most clusters hold both users and items, so one shared clustering is capped
        by the smaller table). False: one clustering for both tables.
    max_search : int, default 14
        Clusterings tried while searching the resolution.
    random_state : int, Generator or None

    Attributes
    ----------
    resolution_ : list of two floats
        The resolutions used for the user table and the item table (equal when ``per_table=False``).
    n_user_clusters_, n_item_clusters_ : int
        Rows occupied by clusters in each table (≤ the cluster part of the budget).
    n_isolated_ : int
        Catalogue IDs without training interactions (mapped to the fallback row).
    backend_ : str
    search_ : list of [resolution, user clusters, item clusters]

    References
    ----------
    Wu, Hu, Tian, Liu, Bayram, ..., "GraphHash: Graph Clustering Enables Parameter Efficiency in
    Recommender Systems", 2024 (arXiv:2412.17245).
    """


    def __init__(self, budget: float = 0.25, *, algorithm: str = "louvain", backend: str = "auto",
                 residual: float = 0.0, per_table: bool = True, max_search: int = 14, random_state=None):
        self.budget = budget
        self.algorithm = algorithm
        self.backend = backend
        self.residual = residual
        self.per_table = per_table
        self.max_search = max_search
        self.random_state = random_state

    def _check_params(self, X):
        super()._check_params(X)
        if self.algorithm not in _ALGORITHMS:
            raise ValidationError(f"algorithm must be one of {', '.join(_ALGORITHMS)}, got {self.algorithm!r}")
        if self.backend not in _BACKENDS:
            raise ValidationError(f"backend must be one of {', '.join(_BACKENDS)}, got {self.backend!r}")
        r = self.residual
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0 <= r < 1:
            raise ValidationError(f"residual must be a fraction in [0, 1), got {r!r}")
        if isinstance(self.max_search, bool) or not isinstance(self.max_search, numbers.Integral) \
                or self.max_search < 1:
            raise ValidationError(f"max_search must be a positive integer, got {self.max_search!r}")

    def _assign(self, X, rng, item_features):
        backend = _resolve_backend(self.backend, self.algorithm)
        n_u, n_i = X.n_users, X.n_items
        R_u, R_i = table_rows(self.budget, n_u), table_rows(self.budget, n_i)
        C_u = max(1, R_u - int(round(self.residual * R_u))) if self.residual else R_u
        C_i = max(1, R_i - int(round(self.residual * R_i))) if self.residual else R_i
        pairs = np.unique(X.pairs(), axis=0)
        nodes = np.r_[pairs[:, 0], n_u + pairs[:, 1]]
        active = np.unique(nodes)
        local = np.searchsorted(active, np.stack([pairs[:, 0], n_u + pairs[:, 1]], axis=1))
        is_user = active < n_u
        seed = int(rng.integers(0, 2**31 - 1))
        self.search_ = []
        if self.per_table:
            lab_u, res_u = self._search(active.size, local, is_user, C_u, active.size, seed, backend)
            lab_i, res_i = self._search(active.size, local, is_user, active.size, C_i, seed, backend)
        else:
            lab_u, res_u = self._search(active.size, local, is_user, C_u, C_i, seed, backend)
            lab_i, res_i = lab_u, res_u
        fold_seed = int(rng.integers(0, 2**62))
        rows_u, used_u = _rows_from_clusters(lab_u[is_user], C_u, fold_seed)
        rows_i, used_i = _rows_from_clusters(lab_i[~is_user], C_i, fold_seed)
        user_rows = np.full(n_u, R_u, np.int64)  # R_u is the fallback row (appended by the base class)
        item_rows = np.full(n_i, R_i, np.int64)
        user_rows[active[is_user]] = rows_u
        item_rows[active[~is_user] - n_u] = rows_i
        self.resolution_ = [float(res_u), float(res_i)]
        self.n_user_clusters_, self.n_item_clusters_ = used_u, used_i
        self.n_isolated_ = int(n_u + n_i - active.size)
        self.backend_ = backend
        if not self.residual:
            return user_rows[:, None], R_u, item_rows[:, None], R_i
        seeds = rng.integers(0, 2**62, size=2)
        res_u = np.where(user_rows < R_u, C_u + hash_ids(X.user_ids, int(seeds[0]), max(1, R_u - C_u)), -1)
        res_i = np.where(item_rows < R_i, C_i + hash_ids(X.item_ids, int(seeds[1]), max(1, R_i - C_i)), -1)
        return np.stack([user_rows, res_u], 1), R_u, np.stack([item_rows, res_i], 1), R_i

    def _search(self, n_nodes, edges, is_user, C_u, C_i, seed, backend):
        """Finest clustering that fits (C_u, C_i) within ``max_search`` tries (doubling then bisection)."""

        def run(res):
            lab = bipartite_communities(n_nodes, edges, resolution=res, seed=seed, algorithm=self.algorithm,
                                        backend=backend)
            m_u, m_i = np.unique(lab[is_user]).size, np.unique(lab[~is_user]).size
            self.search_.append([float(res), int(m_u), int(m_i)])
            return lab, (m_u <= C_u and m_i <= C_i), m_u + m_i

        best = None  # (total clusters, resolution, labels) of the finest fitting clustering
        smallest = None
        lo, hi = None, None  # log-resolutions known to fit / not to fit
        log_r = 0.0
        for _ in range(int(self.max_search)):
            lab, fits, total = run(math.exp(log_r))
            if smallest is None or log_r < smallest[0]:
                smallest = (log_r, lab)
            if fits:
                lo = log_r if lo is None else max(lo, log_r)
                if best is None or total > best[0]:
                    best = (total, math.exp(log_r), lab)
            else:
                hi = log_r if hi is None else min(hi, log_r)
            if lo is None:
                log_r -= math.log(4.0)
            elif hi is None:
                log_r += math.log(2.0)
            elif hi - lo < 0.02:
                break
            else:
                log_r = 0.5 * (lo + hi)
        if best is not None:
            return best[2], best[1]
        return smallest[1], math.exp(smallest[0])
