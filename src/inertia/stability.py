"""Linear stability and rates on quadratics ``f = ½ xᵀHx``.

Every method decouples into one scalar recursion per eigenvalue ``μ`` of ``H``. In the canonical form
(Kovachki & Stuart eq. 1.2) the state ``(x_n, x_{n−1})`` evolves by the companion matrix

    [[1 + λ − hμ(1 + a),  −λ + hμa],
     [1,                   0       ]],

whose characteristic polynomial for HB is ``r² − (1+β−hμ) r + β`` and for practitioner Nesterov
``r² − (1+β)(1−hμ) r + β(1−hμ)`` (Goh, "Why momentum really works", Distill 2017; docs/theory.md §1).
Thresholds, rates and optima are computed from these matrices numerically; the closed forms
(`canonical_threshold` from Jury's conditions, `gd_optimal`, `polyak_optimal`) serve as checks.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from jaxtyping import ArrayLike
from scipy import optimize

from ._checks import InertiaError, check_positive, check_range
from .methods import GD, HeavyBall, Method, Nesterov, require_linear

__all__ = [
    "companion", "spectral_radius", "rate", "threshold", "canonical_threshold", "rate_map", "optimal", "gd_optimal",
    "polyak_optimal", "closed_form_threshold", "METHODS", "Family",
]


def _gd(lr: ArrayLike, momentum: ArrayLike = 0.0) -> Method:
    """GD in the ``(lr, momentum)`` signature of the momentum constructors; ``momentum`` is ignored."""
    return GD(lr)


#: Constructors ``(lr, momentum) -> Method`` by name and convention.
METHODS: dict[str, Callable[[ArrayLike, ArrayLike], Method]] = {
    "gd": _gd,
    "heavy-ball": HeavyBall.from_practitioner,
    "nesterov": Nesterov.from_practitioner,
    "heavy-ball-normalised": HeavyBall.from_normalised,
    "nesterov-normalised": Nesterov.from_normalised,
}


def _params(method: Method, needs: str):
    method = require_linear(method, needs)
    return tuple(np.asarray(p, dtype=float) for p in (method.h, method.momentum, method.lookahead))


def companion(method: Method, eigenvalues) -> np.ndarray:
    """Companion matrices, shape ``method.shape + (k, 2, 2)`` for ``k`` eigenvalues."""
    h, lam, a = (p[..., None] for p in _params(method, "stability.companion"))
    mu = np.asarray(eigenvalues, dtype=float).reshape(-1)
    hmu = h * mu
    top = np.stack([1 + lam - hmu * (1 + a), -lam + hmu * a], axis=-1)
    bottom = np.broadcast_to(np.array([1.0, 0.0]), top.shape)
    return np.stack([top, bottom], axis=-2)


def spectral_radius(method: Method, eigenvalues) -> np.ndarray:
    """The spectral radius per eigenvalue, shape ``method.shape + (k,)``."""
    require_linear(method, "stability.spectral_radius")
    return np.max(np.abs(np.linalg.eigvals(companion(method, eigenvalues))), axis=-1)


def rate(method: Method, eigenvalues) -> np.ndarray:
    """The asymptotic linear rate per step, ``max_μ ρ(μ)``; ≥ 1 means no convergence. Shape ``method.shape``."""
    require_linear(method, "stability.rate")
    return np.max(spectral_radius(method, eigenvalues), axis=-1)


#: A family of methods in the ``(lr, momentum)`` plane: a name of `METHODS`, or a constructor ``(lr, β) -> Method``
#: (e.g. ``lambda lr, beta: QHM(lr, beta, 0.7)``, QHM at a fixed ν). Every function below that takes ``name`` takes
#: either.
Family = str | Callable[[ArrayLike, ArrayLike], Method]


def _constructor(name: Family) -> Callable[[ArrayLike, ArrayLike], Method]:
    if callable(name):
        return name
    if name not in METHODS:
        raise InertiaError(f"method must be one of {', '.join(METHODS)}; got {name!r}")
    return METHODS[name]


def threshold(name: Family, momentum: float = 0.0, eigenvalue: float = 1.0, *, rtol: float = 1e-10) -> float:
    """The largest learning rate ``lr`` for which the method is stable on eigenvalue ``μ``, by bisection on ρ.

    Stability holds on an interval ``0 < lr < threshold``; the search brackets the first ``lr`` with
    ``ρ ≥ 1`` on a geometric grid, then bisects to relative tolerance ``rtol``.
    """
    build = _constructor(name)
    check_range("momentum", momentum, 0.0, 1.0, high_open=True)
    check_positive("eigenvalue", eigenvalue)
    radius = lambda lr: spectral_radius(build(lr, momentum), [eigenvalue])[..., 0]
    lrs = np.geomspace(1e-3, 1e6, 901) / eigenvalue  # up to 1e6: normalised forms at β → 1 need lr ~ 1/(1−β)
    unstable = np.nonzero(radius(lrs) >= 1)[0]
    if unstable.size == 0:
        return np.inf
    lo, hi = lrs[max(unstable[0] - 1, 0)], lrs[unstable[0]]
    return optimize.brentq(lambda lr: float(radius(lr)) - 1 + 1e-13, lo, hi, rtol=rtol)


def canonical_threshold(method: Method) -> np.ndarray:
    """The largest stable ``h·μ`` of the canonical form: ``2(1+λ)/(1+2a)``.

    Jury's conditions on ``r² − (1+λ−s(1+a)) r + (λ−sa)`` give stability iff ``0 < s < 2(1+λ)/(1+2a)`` for
    ``a ≥ 0``, ``0 ≤ λ < 1``: GD 2, heavy ball ``2(1+β)`` (Goh, Distill 2017), Nesterov ``(2+2β)/(1+2β)``
    (docs/theory.md §1). Tests check it against the numerical `threshold`.
    """
    method = require_linear(method, "stability.canonical_threshold")
    return 2 * (1 + np.asarray(method.momentum, float)) / (1 + 2 * np.asarray(method.lookahead, float))


def closed_form_threshold(name: Family, momentum: float = 0.0, eigenvalue: float = 1.0) -> float:
    """`canonical_threshold` as a learning rate of the named convention (normalised forms are ÷(1−β))."""
    unit = _constructor(name)(1.0, momentum)  # the canonical h per unit of the convention's lr
    return float(canonical_threshold(unit) / (float(unit.h) * eigenvalue))


def rate_map(name: Family, eigenvalues, lrs, momenta) -> np.ndarray:
    """The rate ``max_μ ρ`` over a grid, shape ``(len(momenta), len(lrs))``."""
    build = _constructor(name)
    L, B = np.meshgrid(np.asarray(lrs, float), np.asarray(momenta, float))
    return rate(build(L, B), eigenvalues)


def gd_optimal(mu: float, L: float) -> dict:
    """GD's best step ``2/(μ+L)`` and rate ``(κ−1)/(κ+1)``.

    Source: Nesterov, Introductory Lectures on Convex Optimization, 2004, Thm 2.1.15.
    """
    kappa = L / mu
    return {"lr": 2 / (mu + L), "momentum": 0.0, "rate": (kappa - 1) / (kappa + 1)}


def polyak_optimal(mu: float, L: float) -> dict:
    """Polyak's heavy ball: ``lr = 4/(√L+√μ)²``, ``β = ((√κ−1)/(√κ+1))²``, rate ``(√κ−1)/(√κ+1)`` (Polyak 1964)."""
    s = np.sqrt(L / mu)
    return {"lr": 4 / (np.sqrt(L) + np.sqrt(mu)) ** 2, "momentum": ((s - 1) / (s + 1)) ** 2, "rate": (s - 1) / (s + 1)}


def _minimise_on_grid(fn, lo: float, hi: float, points: int = 64) -> float:
    """Minimise a scalar function on [lo, hi]: a grid brackets the minimum, bounded Brent refines it.

    Brent's bounded method falls back on golden sections, so it copes with the square-root kink that the
    rate has where two roots coincide (where gradient-based and simplex methods stall).
    """
    grid = np.linspace(lo, hi, points)
    k = int(np.argmin(fn(grid)))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, points - 1)]
    return optimize.minimize_scalar(fn, bounds=(a, b), method="bounded", options={"xatol": 1e-15 * max(1.0, b)}).x


def optimal(name: Family, eigenvalues) -> dict:
    """The ``(lr, momentum)`` minimising the rate over the given eigenvalues, found numerically.

    For each momentum the best ``lr`` below the stability threshold is found by a bracketed 1-D search, then the
    best momentum likewise. It recovers `gd_optimal` and `polyak_optimal` to 1e-7 relative
    (tests/test_stability.py); for Nesterov no closed form is assumed.
    """
    build = _constructor(name)
    eig = np.asarray(eigenvalues, dtype=float)
    if eig.size == 0 or np.any(eig <= 0):
        raise InertiaError("eigenvalues must be a non-empty list of positive numbers")
    rate_at = lambda lr, beta: rate(build(lr, beta), eig)  # vectorised over lr

    def best_lr(beta: float) -> float:
        top = threshold(name, beta, eig.max())
        return _minimise_on_grid(lambda lr: rate_at(lr, beta), top * 1e-6, top)

    if name == "gd":
        beta = 0.0
    else:
        beta = _minimise_on_grid(np.vectorize(lambda b: rate_at(best_lr(b), b)), 0.0, 0.999)
    lr = best_lr(beta)
    return {"lr": float(lr), "momentum": float(beta), "rate": float(rate_at(lr, beta))}
