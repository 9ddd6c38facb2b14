"""Claim: SGDM(η, β) and SGD(η) are weak approximations of each other over a fixed horizon (Wang et al., Thm 3.5).

Normalised convention (docs/theory.md §0): SGDM ``m ← βm + (1−β)g, x ← x − ηm`` is practitioner SGDM at
``γ = η(1−β)``, and its partner is SGD at ``η = γ/(1−β)``. Both run ``T/η`` steps from rest on a non-quadratic
objective with Gaussian gradient noise of standard deviation ``σ₀/√η`` (the SDE scaling, ``σ ≤ η^{−1/2}`` in the
theorem), so the limit is a diffusion and not a deterministic flow. Every configuration at one ``η`` shares its
chains' keys, so step ``n`` of SGDM and of SGD draw the same noise (`inertia.sde.coupled_weak_differences`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .._stats import fitted_order, z_critical
from ..methods import HeavyBall
from ..noise import Gaussian
from ..objectives import Function
from ..sde import coupled_weak_differences
from ._registry import Control, claim, plot_data, verdict


def _bowl(x):
    # smooth, non-quadratic: log cosh flattens away from 0 and x[1] couples to x[0]²
    return jnp.log(jnp.cosh(x[0])) + 0.5 * (x[1] - 0.5 * x[0] ** 2) ** 2 + 0.5 * x[1] ** 2


BOWL = Function(_bowl)
X0 = np.array([1.5, 1.0])
PARTNERS = ("η = γ/(1−β)", "γ = η(1−β)")  # SGD at the rescaled rate (the theorem's partner), and the control's
TESTS = {"x₁": lambda x: x[0], "|x|²": lambda x: x @ x, "f(x)": _bowl, "cos(x₁+x₂)": lambda x: jnp.cos(x[0] + x[1])}


def _constant_beta(beta: float) -> Callable[[float], float]:
    """``η ↦ β``."""
    return lambda eta: beta


def _power_beta(alpha: float) -> Callable[[float], float]:
    """``η ↦ 1 − η^α``."""
    return lambda eta: 1 - eta**alpha


def _regimes(fixed_beta: float, alphas: list[float]) -> dict[str, tuple[Callable[[float], float], float]]:
    """``{label: (β as a function of η, the theorem's rate in η)}``: fixed β gives ``√η`` (α = 0); ``1 − β = η^α`` gives
    ``√(η/(1−β)) = η^{(1−α)/2}``."""
    out = {f"β = {fixed_beta}": (_constant_beta(fixed_beta), 0.5)}
    out.update({f"1−β = η^{a}": (_power_beta(a), (1 - a) / 2) for a in alphas})
    return out


def _judge(numbers: dict) -> tuple:
    cells = [(r, t) for r in numbers["regimes"] for t in numbers["regimes"][r]["tests"]]
    z = z_critical(len(cells))
    ok, refuted, worst = True, False, []
    for r, name in cells:
        cell = numbers["regimes"][r]["tests"][name]
        consistent = cell["order"] + cell["t"] * cell["se"] >= numbers["regimes"][r]["theorem_rate"]
        ok &= consistent and cell["shrink_z"] >= z
        refuted |= not consistent or cell["shrink_z"] <= -z
        worst.append((cell["shrink_z"], f"{r}, {name}: order {cell['order']:.2f} ± {cell['t'] * cell['se']:.2f}"))
    orders = {r: ", ".join(f"{c['order']:.2f}" for c in v["tests"].values()) for r, v in numbers["regimes"].items()}
    rates = "; ".join(f"{r}: orders {orders[r]} (theorem {v['theorem_rate']:.3g})"
                      for r, v in numbers["regimes"].items())
    low = min(worst)
    return verdict(ok and not refuted, inconclusive=not ok and not refuted), (
        f"Partner SGD at {numbers['partner']}. {rates}. Rule: each order's 99% upper limit reaches the theorem's rate, "
        f"and the error shrinks over the η range at least by (η_min/η_max)^rate (one-sided z ≥ {z:.2f}, Bonferroni "
        f"over {len(cells)} cells; z ≤ −{z:.2f} or an upper limit below the rate refutes it, anything between is "
        f"unresolved); weakest cell z = {low[0]:.1f} ({low[1]}).")


def _draw(numbers: dict) -> list:
    plot = plot_data(numbers)
    regimes = numbers["regimes"]
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.2 * len(regimes), 3.8), sharey=True)
    etas = np.asarray(numbers["etas"])
    for ax, (r, v) in zip(axes, regimes.items()):
        for name, cell in v["tests"].items():
            err, se = np.asarray(plot["errors"][r][name]), np.asarray(plot["stderr"][r][name])
            ax.errorbar(etas, err, yerr=2 * se, fmt="o-", ms=3, capsize=2, label=f"{name}: {cell['order']:.2f}")
        top = max(max(plot["errors"][r][n]) for n in v["tests"])
        ax.loglog(etas, top * (etas / etas[0]) ** v["theorem_rate"], "k--", lw=1,
                  label=f"theorem: η^{v['theorem_rate']:.3g}")
        ax.set(xscale="log", yscale="log", xlabel="η", title=f"{r}, SGD at {numbers['partner']}")
        ax.set_xticks(etas, [f"{e:g}" for e in etas], fontsize=7)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|E φ(SGDM) − E φ(SGD)| (±2 SE)")
    fig.tight_layout()
    return [fig]


@functools.lru_cache(maxsize=2)
def _coupled_runs(etas: tuple, fixed_beta: float, alphas: tuple, T: float, sigma: float, paths: int, seed: int,
                  x64: bool) -> dict:
    """``{partner: (errors, stderr)}`` for both partners, from one coupled sweep per ``η``. Cached, so the control
    (the other partner) reuses the claim's runs; ``x64`` keys the precision that `reproduce` set.

    Configurations at one ``η``: 0 is SGD at ``η``; ``1 + i`` is SGDM in regime ``i`` (``h = η(1−β_i)``, ``λ = β_i``);
    ``1 + k + i`` is SGD at ``γ_i = η(1−β_i)``.
    """
    regimes = _regimes(fixed_beta, list(alphas))
    k = len(regimes)
    out: dict[str, tuple[dict, dict]] = {
        p: ({r: {n: [] for n in TESTS} for r in regimes}, {r: {n: [] for n in TESTS} for r in regimes})
        for p in PARTNERS}
    for eta in etas:
        betas = np.array([beta_of(eta) for beta_of, _ in regimes.values()])
        h = np.concatenate([[eta], eta * (1 - betas), eta * (1 - betas)])
        lam = np.concatenate([[0.0], betas, np.zeros(k)])
        pairs = [(1 + i, 0) for i in range(k)] + [(1 + i, 1 + k + i) for i in range(k)]
        diff = coupled_weak_differences(HeavyBall(h, lam), BOWL, X0, int(round(T / eta)),
                                        noise=Gaussian(sigma**2 / eta), paths=paths, key=jax.random.key(seed),
                                        tests=TESTS, pairs=pairs)
        for j, partner in enumerate(PARTNERS):
            errors, stderr = out[partner]
            for i, r in enumerate(regimes):
                for n in TESTS:
                    errors[r][n].append(float(abs(diff[n]["difference"][j * k + i])))
                    stderr[r][n].append(float(diff[n]["stderr"][j * k + i]))
    return out


@claim(
    id="wang-weak-approximation",
    title="SGDM(η, β) and SGD(η) have the same law up to an error that vanishes with η (fixed β and 1−β = η^α)",
    paper="wang-2024",
    source="Wang, Malladi, Wang, Lyu & Li, ICLR 2024 (arXiv 2307.15196), Theorem 3.5 (read second-hand: "
           "docs/stochastic.md)",
    statement="Theorem 3.5 (as read second-hand; the text was not reached): for 1−β = Θ(η^α), α ∈ [0, 1), and "
              "noise σ ≤ η^{−1/2}, normalised SGDM(η, β) and SGD(η) stay weak approximations of each other for T/η "
              "steps, |E φ(x_SGDM) − E φ(x_SGD)| = O(√(η/(1−β))) = O(η^{(1−α)/2}) for smooth φ. Measured by coupled "
              "Monte Carlo (common noise per step) on log cosh(x₁) + ½(x₂ − x₁²/2)² + ½x₂² with noise σ₀/√η, T = 1, "
              "for four test functions, at β = 0.9 and 1−β = η^α (α = 0.5, 0.75; full mode adds 0.25). Rule, per "
              "cell: the fitted order's "
              "99% upper limit reaches the theorem's rate, and the error at the smallest η is below "
              "(η_min/η_max)^rate times the error at the largest, one-sided z above the Bonferroni quantile over the "
              "cells (z at or below minus that quantile, or an upper limit below the rate, refutes; between: "
              "inconclusive). "
              "Control: SGD at the un-rescaled γ = η(1−β).",
    quick={"etas": [0.02, 0.01, 0.005, 0.0025, 0.00125], "fixed_beta": 0.9, "alphas": [0.5, 0.75], "T": 1.0,
           "sigma": 0.5, "paths": 4000, "seed": 0},
    full={"etas": [0.02, 0.01, 0.005, 0.0025, 0.00125, 0.000625], "fixed_beta": 0.9, "alphas": [0.25, 0.5, 0.75],
          "T": 1.0, "sigma": 0.5, "paths": 32000, "seed": 0},
    judge=_judge, draw=_draw,
    controls=[Control("sgd-not-rescaled", "SGD at the practitioner rate γ = η(1−β) instead of η = γ/(1−β)",
                      {"partner": PARTNERS[1]})],
)
def _measure(etas: list[float], fixed_beta: float, alphas: list[float], T: float, sigma: float, paths: int,
             seed: int, partner: str = PARTNERS[0]) -> dict:
    regimes = _regimes(fixed_beta, alphas)
    etas = sorted(etas, reverse=True)
    errors, stderr = _coupled_runs(tuple(etas), fixed_beta, tuple(alphas), T, sigma, paths, seed,
                                   bool(jax.config.read("jax_enable_x64")))[partner]
    numbers: dict[str, Any] = {"partner": partner, "etas": etas, "regimes": {}}
    for r, (_, rate) in regimes.items():
        cells = {}
        for n in TESTS:
            e, s = np.array(errors[r][n]), np.array(stderr[r][n])
            c = (etas[-1] / etas[0]) ** rate
            cells[n] = {**fitted_order(etas, e), "shrink_z": float((c * e[0] - e[-1]) / np.hypot(c * s[0], s[-1]))}
        numbers["regimes"][r] = {"theorem_rate": rate, "tests": cells}
    numbers["plot"] = {"errors": errors, "stderr": stderr}
    return numbers
