"""Symbolic-regression tasks for the search demo: Feynman equations, scikit-learn's diabetes data, and
the linear-scaled MSE fitness."""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np

from ...errors import ValidationError
from .expr import Expr

__all__ = ["FEYNMAN_EQUATIONS", "feynman_dataset", "regression_task", "LinearScaledMSE"]

FEYNMAN_EQUATIONS: dict[str, tuple[int, Callable, str]] = {
    # name: (n_vars, f, formula) -- from the AI Feynman database (Udrescu & Tegmark, Science Advances
    # 2020), variables sampled uniformly in [1, 5] as in that paper.
    "I.12.2": (4, lambda q1, q2, eps, r: q1 * q2 / (4 * np.pi * eps * r**2), "q1*q2/(4*pi*epsilon*r^2)"),
    "I.14.3": (3, lambda m, g, z: m * g * z, "m*g*z"),
    "I.18.4": (4, lambda m1, m2, r1, r2: (m1 * r1 + m2 * r2) / (m1 + m2), "(m1*r1+m2*r2)/(m1+m2)"),
    "II.3.24": (2, lambda p, r: p / (4 * np.pi * r**2), "Pwr/(4*pi*r^2)"),
    "I.34.27": (2, lambda h, w: h / (2 * np.pi) * w, "h/(2*pi)*omega"),
}


def feynman_dataset(name: str = "I.12.2", n_samples: int = 10_000, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X`` (n_samples, n_vars) float64 drawn in [1, 5] and the equation's exact outputs ``y``.

    Equations from S.-M. Udrescu, M. Tegmark, "AI Feynman: a physics-inspired method for symbolic
    regression", Science Advances 2020 (its table of Feynman equations, same sampling range).
    """
    if name not in FEYNMAN_EQUATIONS:
        raise ValidationError(f"unknown Feynman equation {name!r}; known: {', '.join(FEYNMAN_EQUATIONS)}")
    if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValidationError(f"n_samples must be a positive integer, got {n_samples!r}")
    n_vars, f, _ = FEYNMAN_EQUATIONS[name]
    X = np.random.default_rng(random_state).uniform(1.0, 5.0, size=(int(n_samples), n_vars))
    return X, f(*X.T)


class LinearScaledMSE:
    """Fitness of an expression: normalised MSE after the best affine rescaling ``a + b·f(X)``.

    Linear scaling (M. Keijzer, "Improving Symbolic Regression with Interval Arithmetic and Linear
    Scaling", EuroGP 2003) lets the search ignore scale and offset constants. Returns
    ``mean((y - a - b f)^2) / var(y)`` (lower is better); ``inf`` when ``f`` has a non-finite value.

    Parameters
    ----------
    X : array-like of shape (n, n_vars)
    y : array-like of shape (n,)
    repeats : int, default 1
        Evaluate this many times (a stand-in for a costlier evaluation, e.g. training; the result
        does not change).
    """

    def __init__(self, X, y, *, repeats=1):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        if self.X.ndim != 2 or self.y.shape != (self.X.shape[0],) or self.X.shape[0] < 2:
            raise ValidationError(f"need X (n, d) and y (n,) with n >= 2, got {self.X.shape} and {self.y.shape}")
        if not (np.all(np.isfinite(self.X)) and np.all(np.isfinite(self.y))):
            raise ValidationError("X and y must be finite")
        self.repeats = int(repeats)
        self._var = float(np.var(self.y)) or 1.0

    def __call__(self, expr: Expr) -> float:
        for _ in range(self.repeats):
            f = expr.evaluate(self.X)
            if not np.all(np.isfinite(f)):
                return math.inf
            fc = f - f.mean()
            denom = float(fc @ fc)
            yc = self.y - self.y.mean()
            b = float(fc @ yc) / denom if denom > 1e-12 * f.size else 0.0
            resid = yc - b * fc
            value = float(resid @ resid) / f.size / self._var
        return value


def regression_task(name: str = "I.12.2", n_samples: int = 100_000, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a symbolic-regression task: a Feynman equation (see :data:`FEYNMAN_EQUATIONS`) or
    ``"diabetes"`` (scikit-learn's diabetes data, 442 patients, 10 standardised features; ``n_samples``
    is ignored)."""
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        X, y = load_diabetes(return_X_y=True)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        return X.astype(np.float64), y.astype(np.float64)
    return feynman_dataset(name, n_samples, random_state)
