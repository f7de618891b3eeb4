"""The functional hash: run a candidate on fixed, seeded probes and hash its quantised outputs.

Each output ``v`` is mapped to ``t = sign(v) · log1p(|v| · rtol / atol) / rtol``: one unit of ``t`` is
``rtol·|v|`` for large ``|v|`` and ``atol`` near zero, so "equal within ``max(atol, rtol·|v|)``" becomes
"within one cell". The cell index is ``floor(t + offset)`` with a seeded random offset per output
position, so cell boundaries do not sit on round numbers (``1.0``, ``0.5``) that search spaces produce
all the time. Two values that differ by float noise can still straddle a boundary (a *false split*):
a coordinate whose ``t`` lies within ``boundary`` cells of a boundary is *ambiguous*, and a lookup also
probes the keys with up to ``max_flips`` ambiguous coordinates moved to the neighbouring cell. Hence two
outputs closer than ``boundary`` cells in every coordinate always find each other (when at most
``max_flips`` coordinates are ambiguous). Keys are 128-bit BLAKE2b digests of the cell indices.

NaN, +inf and -inf get their own cells; a candidate that raises (or returns something that is not
numeric) gets the key of its exception type, so all candidates failing the same way share one key
(``on_error="raise"`` re-raises instead). Floating-point warnings are silenced during probing.

torch is imported only when a torch module is hashed.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import numbers
import sys
from dataclasses import dataclass, field

import numpy as np

from ...errors import NotFittedError, ValidationError
from .expr import Expr

__all__ = ["Fingerprint", "FunctionalHasher"]

_NAN_CELL = np.iinfo(np.int64).min
_POSINF_CELL = np.iinfo(np.int64).max
_NEGINF_CELL = np.iinfo(np.int64).min + 1


@dataclass(frozen=True)
class Fingerprint:
    """What :meth:`FunctionalHasher.fingerprint` computes for one candidate.

    Attributes
    ----------
    key : str
        32 hex digits; equal for candidates with equal quantised outputs.
    neighbours : tuple of str
        Keys of the same outputs with ambiguous (near-boundary) coordinates moved to the adjacent cell;
        a lookup should try them after ``key``.
    values : ndarray of shape (n_outputs,), float64, or None
        The raw probe outputs, flattened (None when the candidate failed).
    error : str or None
        The exception type name when the candidate raised or returned something non-numeric.
    n_ambiguous : int
        Number of near-boundary coordinates (only ``max_flips`` of them are probed).
    """

    key: str
    neighbours: tuple = ()
    values: np.ndarray | None = field(default=None, compare=False)
    error: str | None = None
    n_ambiguous: int = 0

    @property
    def lookup_keys(self) -> tuple:
        return (self.key, *self.neighbours)


class FunctionalHasher:
    """Hash a candidate function by its outputs on fixed, seeded probe inputs.

    Parameters
    ----------
    n_probes : int, default 32
        Number of probe inputs.
    n_features : int or tuple of int, default 1
        Shape of one probe input: the number of variables of an expression or callable, or the input
        shape of a torch module (e.g. ``(3, 8, 8)``). Ignored when ``fit`` receives data.
    low, high : float, default -2.0, 2.0
        Probes are drawn uniformly in ``[low, high)`` (per coordinate) when ``fit`` gets no data.
    rtol, atol : float, default 1e-6, 1e-9
        Width of a quantisation cell: ``rtol·|v|`` for large outputs, ``atol`` near zero.
    boundary : float, default 1e-2
        Fraction of a cell: a coordinate this close to a cell boundary is ambiguous and its neighbour
        cell is probed too (0 disables neighbour probing). Outputs that differ by less than this
        fraction of the tolerance (float noise) are always found; about ``2·boundary`` of the
        coordinates are ambiguous.
    max_flips : int, default 4
        At most this many ambiguous coordinates (the closest to a boundary) are flipped, i.e. at most
        ``2**max_flips - 1`` neighbour keys.
    call : {"columns", "matrix", "rows"}, default "columns"
        How a plain callable is called: ``f(x0, x1, ...)`` on the probe columns (vectorised), ``f(X)``
        on the probe matrix, or ``f(*row)`` once per probe (scalar code, e.g. the ``math`` module).
    on_error : {"key", "raise"}, default "key"
        ``"key"``: a candidate that raises gets the key of its exception type; ``"raise"``: re-raise.
    reinit : bool, default True
        Re-initialise torch modules with fixed seeded weights (on a copy) before probing. With False
        the module's own weights are used (then "same function" means same architecture *and* weights).
    random_state : int or None, default 0
        Seed of the probes, the cell offsets and the torch initialisation.

    Attributes
    ----------
    probes_ : ndarray of shape (n_probes, *input_shape), float64
        The probe inputs.
    seed_ : int
        Seed derived at fit time for the cell offsets and torch weights.

    References
    ----------
    R. Gillard et al., "Unified Functional Hashing in Automatic Machine Learning", 2023.

    Examples
    --------
    >>> h = FunctionalHasher(n_features=2, random_state=0).fit()
    >>> h.hash(lambda x, y: x * (y + 1)) == h.hash(lambda x, y: x * y + x)
    True
    >>> h.hash(lambda x, y: x * (y + 1)) == h.hash(lambda x, y: x * y + y)
    False
    """

    def __init__(self, n_probes=32, *, n_features=1, low=-2.0, high=2.0, rtol=1e-6, atol=1e-9,
                 boundary=1e-2, max_flips=4, call="columns", on_error="key", reinit=True, random_state=0):
        self.n_probes = n_probes
        self.n_features = n_features
        self.low = low
        self.high = high
        self.rtol = rtol
        self.atol = atol
        self.boundary = boundary
        self.max_flips = max_flips
        self.call = call
        self.on_error = on_error
        self.reinit = reinit
        self.random_state = random_state

    # -- sklearn-style plumbing --------------------------------------------------------------------
    def get_params(self, deep=False) -> dict:
        return {k: getattr(self, k) for k in (
            "n_probes", "n_features", "low", "high", "rtol", "atol", "boundary", "max_flips", "call",
            "on_error", "reinit", "random_state")}

    def __repr__(self) -> str:
        return f"FunctionalHasher({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _check_params(self) -> None:
        if not isinstance(self.n_probes, numbers.Integral) or self.n_probes < 1:
            raise ValidationError(f"n_probes must be a positive integer, got {self.n_probes!r}")
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or not (v > 0 and math.isfinite(v)):
                raise ValidationError(f"{name} must be a positive finite number, got {v!r}")
        if not isinstance(self.boundary, numbers.Real) or not 0 <= self.boundary < 0.5:
            raise ValidationError(f"boundary must be in [0, 0.5), got {self.boundary!r}")
        if not isinstance(self.max_flips, numbers.Integral) or not 0 <= self.max_flips <= 16:
            raise ValidationError(f"max_flips must be an integer in [0, 16], got {self.max_flips!r}")
        if self.call not in ("columns", "matrix", "rows"):
            raise ValidationError(f"call must be 'columns', 'matrix' or 'rows', got {self.call!r}")
        if self.on_error not in ("key", "raise"):
            raise ValidationError(f"on_error must be 'key' or 'raise', got {self.on_error!r}")
        if not (isinstance(self.low, numbers.Real) and isinstance(self.high, numbers.Real)
                and math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValidationError(f"need finite low < high, got low={self.low!r}, high={self.high!r}")
        if self.random_state is not None and not isinstance(self.random_state, numbers.Integral):
            raise ValidationError(f"random_state must be an int or None, got {type(self.random_state).__name__}")

    def _input_shape(self) -> tuple:
        nf = self.n_features
        shape = (nf,) if isinstance(nf, numbers.Integral) else tuple(nf) if isinstance(nf, (tuple, list)) else None
        if not shape or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape):
            raise ValidationError(f"n_features must be a positive int or a tuple of them, got {nf!r}")
        return tuple(int(s) for s in shape)

    def fit(self, X=None, y=None):
        """Draw the probes; with data ``X`` (n, d), uniformly in the bounding box of its rows.

        Parameters
        ----------
        X : array-like of shape (n, d), optional
            Example inputs (finite). Probes are drawn in the box ``[min(X), max(X)]`` per column, so
            "equivalent" means equivalent on the region the data occupies.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        if X is None:
            shape = self._input_shape()
            probes = rng.uniform(float(self.low), float(self.high), size=(int(self.n_probes), *shape))
        else:
            from ...io.readers import check_vectors

            X = check_vectors(X, name="X", dtype=np.float64)
            lo, hi = X.min(axis=0), X.max(axis=0)
            probes = lo + (hi - lo) * rng.random((int(self.n_probes), X.shape[1]))
        self.probes_ = np.ascontiguousarray(probes, dtype=np.float64)
        self.seed_ = int(rng.integers(0, 2**62))
        self._offsets: dict[int, np.ndarray] = {}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "probes_"):
            raise NotFittedError("this FunctionalHasher is not fitted yet: call fit() first")

    # -- probing -----------------------------------------------------------------------------------
    def outputs(self, candidate) -> np.ndarray:
        """Outputs of ``candidate`` on the probes, as float64 of shape (n_probes, ...).

        Raises whatever the candidate raises; a non-numeric result raises ``TypeError``.
        """
        self._check_fitted()
        P = self.probes_
        with np.errstate(all="ignore"):
            if isinstance(candidate, Expr):
                if P.ndim != 2:
                    raise ValidationError(f"expressions need 2-D probes, these have shape {P.shape}")
                out = candidate.evaluate(P)
            elif _is_torch_module(candidate):
                out = self._torch_outputs(candidate)
            elif callable(candidate):
                out = self._call(candidate, P)
            else:
                raise ValidationError(
                    f"a candidate must be an Expr, a callable or a torch module, got {type(candidate).__name__}"
                )
        return _as_float_output(out, P.shape[0])

    def _call(self, f, P):
        if self.call == "matrix":
            return f(P)
        if self.call == "columns":
            cols = P.reshape(P.shape[0], -1).T
            return f(*cols)
        return np.array([np.asarray(f(*np.ravel(row)), dtype=np.float64) for row in P])

    def _torch_outputs(self, module):
        import torch

        m = copy.deepcopy(module).double()
        if self.reinit:
            _fixed_init(m, self.seed_)
        m.eval()
        with torch.no_grad():
            out = m(torch.from_numpy(self.probes_.copy()))
        if isinstance(out, (tuple, list)):
            out = torch.cat([o.reshape(o.shape[0], -1) for o in out], dim=1)
        return out.detach().cpu().numpy()

    # -- quantisation ------------------------------------------------------------------------------
    def _cell_offsets(self, m: int) -> np.ndarray:
        off = self._offsets.get(m)
        if off is None:
            off = np.random.default_rng([self.seed_, m]).random(m)
            self._offsets[m] = off
        return off

    def quantize(self, values) -> tuple[np.ndarray, np.ndarray]:
        """Cell indices (int64) and positions within the cell in [0, 1) of flattened ``values``."""
        self._check_fitted()
        v = np.ascontiguousarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(v)
        rtol, atol = float(self.rtol), float(self.atol)
        with np.errstate(all="ignore"):
            a = np.abs(v)
            # log1p(a * rtol / atol) without overflow for huge a
            logs = np.where(a > 1e250, np.log(a) + math.log(rtol / atol), np.log1p(a * (rtol / atol)))
            t = np.sign(v) * logs / rtol + self._cell_offsets(v.size)
        all_finite = bool(finite.all())
        if not all_finite:
            t = np.where(finite, t, 0.5)
        cells = np.floor(t)
        frac = t - cells
        cells = cells.astype(np.int64)
        if not all_finite:
            cells[np.isnan(v)] = _NAN_CELL
            cells[np.isposinf(v)] = _POSINF_CELL
            cells[np.isneginf(v)] = _NEGINF_CELL
            frac[~finite] = 0.5
        return cells, frac

    def _neighbour_keys(self, cells: np.ndarray, frac: np.ndarray, header: bytes) -> tuple[tuple, int]:
        """Keys with up to ``max_flips`` near-boundary coordinates moved to the adjacent cell (all
        non-empty subsets of them), and the number of near-boundary coordinates."""
        if not (self.boundary > 0 and self.max_flips > 0):
            return (), 0
        b = float(self.boundary)
        low = frac < b
        amb = np.flatnonzero(low | (frac > 1.0 - b))
        if not amb.size:
            return (), 0
        closeness = np.minimum(frac[amb], 1.0 - frac[amb])
        flip = amb[np.argsort(closeness, kind="stable")[: int(self.max_flips)]]
        step = np.where(low[flip], -1, 1).astype(np.int64)
        keys = []
        for r in range(1, flip.size + 1):
            for subset in itertools.combinations(range(flip.size), r):
                c = cells.copy()
                idx = list(subset)
                c[flip[idx]] += step[idx]
                keys.append(_digest(header + c.tobytes()))
        return tuple(keys), int(amb.size)

    def fingerprint(self, candidate) -> Fingerprint:
        """Key, neighbour keys and raw outputs of ``candidate`` (see :class:`Fingerprint`)."""
        self._check_fitted()
        try:
            out = self.outputs(candidate)
        except ValidationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the candidate's own failure is part of its hash
            if self.on_error == "raise":
                raise
            name = type(exc).__name__
            return Fingerprint(key=_digest(b"error:" + name.encode()), error=name)
        cells, frac = self.quantize(out)
        header = np.array(out.shape, dtype=np.int64).tobytes()
        neighbours, n_amb = self._neighbour_keys(cells, frac, header)
        return Fingerprint(key=_digest(header + cells.tobytes()), neighbours=neighbours, values=out.ravel(),
                           n_ambiguous=n_amb)

    def hash(self, candidate) -> str:
        """The key of ``candidate``: 32 hex digits."""
        return self.fingerprint(candidate).key

    __call__ = hash


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _is_torch_module(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _fixed_init(module, seed: int) -> None:
    """Overwrite every parameter, in registration order, with seeded uniform(±1/sqrt(fan_in)) values."""
    import torch

    rng = np.random.default_rng([seed, 7])
    with torch.no_grad():
        for p in module.parameters():
            shape = tuple(p.shape)
            fan_in = int(np.prod(shape[1:])) if len(shape) >= 2 else max(1, shape[0] if shape else 1)
            bound = 1.0 / math.sqrt(fan_in)
            vals = rng.uniform(-bound, bound, size=shape)
            p.copy_(torch.from_numpy(vals).to(p.dtype))


def _as_float_output(out, n_probes: int) -> np.ndarray:
    if _is_torch_tensor(out):
        out = out.detach().cpu().numpy()
    arr = np.asarray(out)
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise TypeError(f"candidate returned non-numeric output of dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        arr = np.stack([arr.real, arr.imag], axis=-1)
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 0:  # a constant function
        arr = np.full((n_probes,), float(arr))
    elif arr.shape[0] != n_probes:
        raise TypeError(f"candidate returned {arr.shape[0]} rows for {n_probes} probes")
    return arr


def _is_torch_tensor(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)
