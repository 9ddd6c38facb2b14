"""Claims on SDE models of SGD and SGDM (`inertia.sde`): weak orders of the SMEs, and SVAG's 1/ℓ convergence.

A weak order is a fitted order, never a two-point ratio: at >= 4 step sizes the error is fitted as
``log|e| = a + p·log h + b·h`` (`_stats.fitted_order_expansion`: the ``b·h`` term absorbs the leading correction of
the weak error expansion), and the fitted ``p`` must lie within ``q·SE`` of the expected order, ``q`` the two-sided
1% quantile Bonferroni-corrected over the curves: normal for Monte Carlo curves (SE from the paths), Student with
``n − 3`` degrees of freedom for the exact (noise-free) curves, whose SE measures the misfit of the expansion.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from scipy import stats

from .. import sde
from .._stats import fitted_order_expansion
from ..methods import GD, HeavyBall
from ..objectives import Function
from ._registry import Control, claim, plot_data, verdict

_H = np.array([[1.0, 0.3], [0.3, 0.2]])
_C = np.array([[0.5, -0.2], [-0.2, 1.0]])  # does not commute with _H
_X0 = np.ones(2)
RULE = ("Rule: at >= 4 step sizes, the order p of log|e| = a + p·log h + b·h (the b·h term absorbs the leading "
        "correction of the error expansion) within q·SE of the expected order; q the two-sided 1% quantile "
        "Bonferroni-corrected over the curves, normal for Monte Carlo curves (SE from the paths), Student with n − 3 "
        "degrees of freedom for exact curves (SE from the residuals).")


def _critical(curve: dict, cells: int, alpha: float = 0.01) -> float:
    tail = 1 - alpha / (2 * cells)
    return float(stats.norm.ppf(tail) if curve["dof"] is None else stats.t.ppf(tail, curve["dof"]))


def judge_orders(numbers: dict) -> tuple:
    """Every curve's fitted order within its Bonferroni-corrected quantile × SE of its expected order."""
    curves = numbers["curves"]
    rows, ok = [], True
    for name, c in curves.items():
        q = _critical(c, len(curves))
        inside = abs(c["order"] - c["expected"]) < q * c["se"]
        ok &= inside
        rows.append(f"{name}: {c['order']:.3f} ± {c['se']:.3f} (expected {c['expected']:g}, ±{q:.1f} SE: "
                    f"{'inside' if inside else 'outside'})")
    return verdict(bool(ok)), "Fitted weak orders: " + "; ".join(rows) + "."


def _fit(hs, errors, expected, stderr=None) -> dict:
    fit = fitted_order_expansion(hs, errors, stderr)
    return {**fit, "expected": expected, "h": list(hs), "error": list(np.abs(errors)),
            "stderr": None if stderr is None else list(stderr)}


# ----------------------------------------------------------------------------------------------------------------
# sde-weak-order


def _exact_curves(lrs, time, variant):
    """Exact weak errors on the quadratic (Gaussian moments), per model, as fitted curves."""
    steps = [int(round(time / h)) for h in lrs]
    second = 1 if variant == "first-order-for-second" else 2
    curves = {
        "SGD vs SME order 1": _fit(lrs, [sde.weak_error(GD(h), sde.SME(h, _C, 1), _H, _C, _X0, n)
                                         for h, n in zip(lrs, steps)], 1),
        "SGD vs SME order 2": _fit(lrs, [sde.weak_error(GD(h), sde.SME(h, _C, second), _H, _C, _X0, n)
                                         for h, n in zip(lrs, steps)], 2),
    }
    for beta in (0.5, 0.9):
        errors = []
        for h, n in zip(lrs, steps):
            method = HeavyBall.from_normalised(h, beta)
            if variant == "time-not-rescaled":  # SGD's SME at the practitioner rate γ = h(1−β), time t = kγ
                gamma = h * (1 - beta)
                errors.append(sde.weak_error(method, sde.SME(gamma, _C), _H, _C, _X0, n, time=n * gamma))
            else:
                errors.append(sde.weak_error(method, sde.SME.for_method(method, _C), _H, _C, _X0, n))
        curves[f"SGDM β = {beta} vs SME(η = γ/(1−β))"] = _fit(lrs, errors, 1)
    return curves


def _monte_carlo_curves(mc, paths, variant):
    """Coupled Monte Carlo weak errors on f = x²/2 + sin(2x)/2 (σ² = 1, T = 1), as fitted curves with SEs."""
    f = Function(lambda x: 0.5 * x @ x + 0.5 * jnp.sum(jnp.sin(2 * x)))
    builders = {"SGD": GD, "SGDM β = 0.5": lambda h: HeavyBall.from_normalised(h, 0.5)}
    curves = {}
    for name, (method, order, hs) in mc.items():
        model_order = 1 if variant == "first-order-for-second" else order
        res = [sde.coupled_weak_error(builders[method](h), sde.SME(h, 1.0, model_order), f, [1.0], int(round(1 / h)),
                                      paths=paths, substeps=8, key=jax.random.key(10)) for h in hs]
        curves[f"MC {name}"] = _fit(hs, [r.error for r in res], order, [r.stderr for r in res])
    return curves


def _sde_order_draw(numbers: dict) -> list:
    curves = numbers["curves"]
    exact = {k: v for k, v in curves.items() if v["stderr"] is None}
    mc = {k: v for k, v in curves.items() if v["stderr"] is not None}
    fig, axes = plt.subplots(1, 1 + bool(mc), figsize=(5.8 * (1 + bool(mc)), 4.2), squeeze=False)
    for p, (k, v) in enumerate(exact.items()):
        axes[0, 0].loglog(v["h"], v["error"], "o-", color=f"C{p}", ms=4, label=f"{k}: {v['order']:.2f} ± {v['se']:.2f}")
    axes[0, 0].set(xlabel="effective learning rate η",
                   ylabel=f"|E L(x_N) − E L(X_T)|, T = {plot_data(numbers)['time']:g}",
                   title="quadratic, exact Gaussian moments")
    for p, (k, v) in enumerate(mc.items()):
        axes[0, 1].errorbar(v["h"], v["error"], yerr=2.576 * np.asarray(v["stderr"]), fmt="o-", color=f"C{p}", ms=4,
                            label=f"{k}: order {v['order']:.2f} ± {v['se']:.2f} (expected {v['expected']:g})")
        axes[0, 1].set(xscale="log", yscale="log", xlabel="effective learning rate η",
                       ylabel="|E f(x_N) − E f(X_T)|, T = 1 (±2.6 SE)",
                       title="f = x²/2 + sin(2x)/2, coupled Monte Carlo")
    for ax in axes[0]:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    fig.tight_layout()
    return [fig]


@claim(id="sde-weak-order", title="Weak order of the SDE models of SGD and SGDM",
       paper="supporting", source="Li, Tai & E, JMLR 2019 (SME, Thms 3–4); docs/theory.md §3.4 (momentum SME "
                                  "[open], measured here)",
       statement="The order-1 and order-2 SMEs of SGD have weak order 1 and 2; SGD's order-1 SME at the effective "
                 "learning rate η = γ/(1−β), time t = kη, models SGDM from rest with weak order 1. Measured exactly "
                 "on a quadratic with non-commuting noise (6 step sizes in quick mode, 7 in full) and by coupled "
                 "Monte Carlo on the non-convex f = x²/2 + sin(2x)/2 (4–5 step sizes). " + RULE,
       quick={"lrs": [0.04, 0.02, 0.01, 0.005, 0.0025, 0.00125], "time": 2.0,
              "mc": {"SGD order 1": ["SGD", 1, [0.04, 0.02, 0.01, 0.005]]}, "paths": 1000},
       full={"lrs": list(np.geomspace(0.08, 0.00125, 7)), "time": 2.0,
             "mc": {"SGD order 1": ["SGD", 1, [0.04, 0.02, 0.01, 0.005, 0.0025]],
                    "SGD order 2": ["SGD", 2, [0.02, 0.01, 0.005, 0.0025]],
                    "SGDM β = 0.5 order 1": ["SGDM β = 0.5", 1, [0.04, 0.02, 0.01, 0.005, 0.0025]]},
             "paths": 8000},
       judge=judge_orders, draw=_sde_order_draw,
       controls=[Control("first-order-for-second", "the order-1 SME (drift −∇f, without the (η/4)|∇f|² correction) "
                         "where the order-2 SME is claimed", {"variant": "first-order-for-second"}, quick={"mc": {}}),
                 Control("time-not-rescaled", "SGDM modelled by SGD's SME at the practitioner rate γ = η(1−β) and "
                         "time t = kγ (no 1/(1−β) rescaling)", {"variant": "time-not-rescaled"}, quick={"mc": {}})])
def _sde_order(lrs, time, mc, paths, variant="correct"):
    curves = _exact_curves(np.asarray(lrs, float), time, variant)
    curves.update(_monte_carlo_curves({k: (m, o, np.asarray(h, float)) for k, (m, o, h) in mc.items()}, paths,
                                      variant))
    return {"curves": curves, "plot": {"time": time}}


# ----------------------------------------------------------------------------------------------------------------
# svag-weak-error


def _svag_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, (k, v) in enumerate(numbers["curves"].items()):
        ells = 1 / np.asarray(v["h"])
        ax.loglog(ells, v["error"], "o-", color=f"C{i}", ms=4,
                  label=f"SVAG, {k}: order {v['order']:.2f} ± {v['se']:.2f}")
    first = next(iter(numbers["curves"].values()))
    ells = 1 / np.asarray(first["h"])
    ax.loglog(ells, first["error"][0] / ells, "k:", label="∝ 1/ℓ")
    ax.set(xlabel="SVAG parameter ℓ", ylabel=f"|E L(x) − E L(X_T)|, T = {p['time']:g}",
           title=f"weak error to the SDE, η = {p['eta']:g}, noise ×{p['amplify']}")
    ax.legend(fontsize=8)
    return [fig]


@claim(id="svag-weak-error", title="SVAG's weak error to the SDE shrinks as 1/ℓ",
       paper="supporting", source="Li, Malladi & Arora, NeurIPS 2021, Thm 4.3 and official code",
       statement="SVAG with parameter ℓ (learning rate η/ℓ, noise covariance ×ℓ, ℓ× the steps) has weak error O(1/ℓ) "
                 "to the order-1 SME at η, for SGD and for SGDM (β = 0.9, η the effective learning rate); measured "
                 "exactly on a quadratic with non-commuting noise, as an order in 1/ℓ (expected 1). " + RULE,
       quick={"eta": 0.2, "steps": 10, "ells": [4, 8, 16, 32, 64]},
       full={"eta": 0.2, "steps": 10, "ells": [4, 8, 16, 32, 64, 128, 256]},
       judge=judge_orders, draw=_svag_draw,
       controls=[Control("noise-not-amplified", "SVAG's learning rate η/ℓ without multiplying the noise covariance "
                         "by ℓ", {"amplify": "1"}),
                 Control("half-noise", "SVAG with half the noise standard deviation (covariance ×ℓ/4)",
                         {"amplify": "ℓ/4"})])
def _svag(eta, steps, ells, amplify="ℓ"):
    ells = np.asarray(ells, float)
    scale = {"ℓ": ells, "1": np.ones_like(ells), "ℓ/4": ells / 4}[amplify]
    model = sde.SME(eta, _C)
    curves = {}
    for beta in (0.0, 0.9):
        build = GD if beta == 0 else (lambda lr, beta=beta: HeavyBall.from_normalised(lr, beta))
        errors = [sde.weak_error(build(eta / ell), model, _H, s * _C, _X0, steps * int(ell))
                  for ell, s in zip(ells, scale)]
        curves[f"β = {beta:g}"] = _fit(1 / ells, errors, 1)
    return {"curves": curves, "plot": {"eta": eta, "time": eta * steps, "amplify": amplify}}
