"""Entropic optimal transport with uniform column marginals (Sinkhorn), streaming over a cost matrix.

Only the column potentials ``g`` are kept: the row potentials have a closed form given ``g``, so
one pass over the cost matrix per iteration computes them and the column marginals of the plan at
the same time (one ``exp`` per entry). Log-domain, hence stable for small ``eps``.

Measured against POT's ``ot.sinkhorn(..., method="sinkhorn_log")`` at the same regularisation and
iteration count: ``python bench/quantize.py --part micro`` (bench/sections/quantize.md); POT is
therefore not a dependency.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

__all__ = ["sinkhorn_column_potentials"]


_POW2 = np.array([2.0**k for k in range(-127, 1)], np.float32)  # 2**k at index k + 127


@njit(cache=True, inline="always", fastmath=True)
def _exp_nonpositive(x, pow2):
    """exp(x) for x <= 0 in float32 (relative error < 4e-6; 0 below about -87): 2**floor(y) from a
    table times a degree-5 polynomial of 2**frac(y), y = x log2(e). Unlike np.exp (a scalar libm call
    without SVML), this loop vectorises."""
    y = max(x * np.float32(1.4426950408889634), np.float32(-126.0))
    k = np.int32(np.floor(y))
    r = y - np.float32(k)
    p = np.float32(1.8775767e-3)
    p = p * r + np.float32(8.9893397e-3)
    p = p * r + np.float32(5.5826318e-2)
    p = p * r + np.float32(2.4015361e-1)
    p = p * r + np.float32(6.9315308e-1)
    p = p * r + np.float32(9.9999994e-1)
    return p * pow2[k + 127]


@njit(cache=True, boundscheck=False, fastmath=True)
def _rows_mass(C, lo, hi, g32, s_eps, pow2, acc, n_total):
    """Add rows lo..hi of the plan to the column sums ``acc`` (a plain loop, so it vectorises)."""
    K = C.shape[1]
    e = np.empty(K, np.float32)
    v = np.empty(K, np.float32)
    for i in range(lo, hi):
        row = C[i]
        m = np.float32(np.inf)
        for k in range(K):
            v[k] = row[k] - g32[k]
            m = min(m, v[k])
        s = np.float32(0.0)
        for k in range(K):
            x = _exp_nonpositive((m - v[k]) * s_eps, pow2)
            e[k] = x
            s += x
        w = 1.0 / (np.float64(s) * n_total)
        for k in range(K):
            acc[k] += e[k] * w


@njit(cache=True, parallel=True, boundscheck=False, fastmath=True)
def _column_mass(C, g, inv_eps, n_chunks, pow2):
    """Column sums of the plan P_ik = a_i softmax_k((g_k - C_ik) / eps) with a_i = 1 / n."""
    n, K = C.shape
    partial = np.zeros((n_chunks, K), np.float64)
    step = (n + n_chunks - 1) // n_chunks
    g32 = g.astype(np.float32)
    for t in prange(n_chunks):
        _rows_mass(C, t * step, min(n, (t + 1) * step), g32, np.float32(inv_eps), pow2, partial[t], n)
    out = np.zeros(K, np.float64)
    for t in range(n_chunks):
        for k in range(K):
            out[k] += partial[t, k]
    return out


def sinkhorn_column_potentials(C: np.ndarray, eps: float, *, g0: np.ndarray | None = None, max_iter: int = 100,
                               tol: float = 1e-3) -> tuple[np.ndarray, int, float]:
    """Column potentials of the entropic transport from uniform rows to uniform columns.

    Parameters
    ----------
    C : float32 array (n, K) — costs
    eps : float > 0 — entropic regularisation, in the units of ``C``
    g0 : float64 array (K,), optional — warm start
    max_iter : int; tol : float — stop when every column's mass is within ``tol`` (relative) of 1/K

    Returns
    -------
    g : float64 (K,) — potentials; the plan's row i is softmax_k((g_k - C_ik) / eps), and the hard
        assignment ``argmin_k C_ik - g_k`` is the plan's row-wise mode
    n_iter : int
    err : float — max relative deviation of the column masses from 1/K at the last iteration
    """
    C = np.ascontiguousarray(C, dtype=np.float32)
    K = C.shape[1]
    g = np.zeros(K, np.float64) if g0 is None else np.array(g0, dtype=np.float64, copy=True)
    chunks = max(1, min(4 * get_num_threads(), C.shape[0]))
    err = np.inf
    it = 0
    for it in range(1, int(max_iter) + 1):
        mass = _column_mass(C, g, 1.0 / eps, chunks, _POW2)
        err = float(np.max(np.abs(mass * K - 1.0)))
        g += eps * (np.log(1.0 / K) - np.log(np.maximum(mass, 1e-300)))
        if err < tol:
            break
    return g, it, err
