"""Claim: Shi et al.'s high-resolution ODEs follow heavy ball and NAG-SC to O(s), and NAG needs its gradient correction.

In Shi's scaling (``μ`` fixed, momentum ``α = (1 − √(μs))/(1 + √(μs))``, time ``t = k√s``) the iterates of heavy ball
and NAG-SC (practitioner Nesterov's look-ahead points) are compared with `inertia.HighResolutionODE` over a fixed
time, for several step sizes ``s``; the order in ``s`` is fitted with its standard error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .._stats import fitted_order
from ..flows import HighResolutionODE, shi_momentum, solve
from ..methods import HeavyBall, Nesterov
from ..objectives import Function
from ..simulate import run
from ._registry import Control, claim, plot_data, verdict


def _bowl(x):
    # smooth and non-quadratic: Hessian diag(1, 2) at the minimum 0, curvature of log cosh falling off away from it
    return jnp.log(jnp.cosh(x[0])) + 0.5 * (x[1] - 0.5 * x[0] ** 2) ** 2 + 0.5 * x[1] ** 2


BOWL = Function(_bowl)
X0 = np.array([1.5, 1.0])
_METHODS = {"HB": HeavyBall, "NAG": Nesterov}
# Orders an ODE can have against the iterates in Shi's scaling: 1 when every O(√s) term is kept, 1/2 when one is
# missing (the gradient correction, or an O(√s) error in the start). The claim's interval must lie strictly between
# the neighbouring candidates' midpoints.
_ORDER, _BAND = 1.0, (0.75, 1.25)


def _record(s: float, T: float, points: int) -> np.ndarray:
    """Steps 0, 1 and ``points − 2`` more up to ``⌊T/√s⌋``: one array length for every ``s``, so one compilation."""
    last = int(np.floor(T / np.sqrt(s) + 1e-9))
    return np.unique(np.concatenate([[0, 1], np.linspace(2, last, points - 2).round()])).astype(np.int64)


def _sup_error(name: str, s: float, mu: float, T: float, points: int, variant: str) -> tuple[float, dict]:
    """``sup_k |x_k − X(k√s)|`` of one method against its high-resolution ODE; and the curves at this ``s``."""
    momentum = float(shi_momentum(mu, s))
    method = _METHODS[name](s, momentum)
    at = _record(s, T, points)
    traj = run(method, BOWL, X0, int(at[-1]), record_at=at)
    points_k = np.asarray(traj.lookahead if name == "NAG" else traj.x)  # Shi's NAG-SC iterates are the look-aheads
    ode_method = HeavyBall(s, momentum) if variant == "no-gradient-correction" else method
    model = HighResolutionODE(ode_method)
    v0 = None if variant == "shi-start" else model.matched_velocity(BOWL, points_k[0], points_k[1])
    sol = solve(model, BOWL, points_k[0], ts=model.time(at), velocity0=v0, rtol=1e-11, atol=1e-13)
    err = np.linalg.norm(np.asarray(sol.x) - points_k, axis=1)
    losses = {"iterates": np.asarray(traj.loss), "ode": np.asarray(jax.vmap(_bowl)(sol.x))}
    return float(err.max()), {"t": np.asarray(model.time(at)), **losses}


def _judge(numbers: dict) -> tuple:
    low, high = _BAND
    ok = {k: low < r["order"] - r["t"] * r["se"] and r["order"] + r["t"] * r["se"] < high
          for k, r in numbers["fits"].items()}
    text = "; ".join(f"{k}: order {r['order']:.3f} ± {r['t'] * r['se']:.3f} (99%)" for k, r in numbers["fits"].items())
    return verdict(all(ok.values())), (
        f"ODE {numbers['variant']}: {text}. Rule: each 99% interval inside ({low}, {high}), i.e. order 1 and "
        f"not 1/2 (an O(√s) term missing) or 3/2. {numbers['note']}")


def _draw(numbers: dict) -> list:
    plot = plot_data(numbers)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for k, r in numbers["fits"].items():
        ax.loglog(numbers["s"], r["errors"], "o-", label=f"{k} vs its ODE ({numbers['variant']}): "
                                                        f"slope {r['order']:.2f} ± {r['t'] * r['se']:.2f}")
    s = np.asarray(numbers["s"])
    ref = numbers["fits"]["NAG"]["errors"][-1]
    ax.loglog(s, ref * s / s[-1], "k:", lw=1, label="slope 1")
    ax.loglog(s, ref * np.sqrt(s / s[-1]), "k--", lw=1, label="slope 1/2")
    ax.set(xlabel="step size s", ylabel="sup_k |x_k − X(k√s)| over t ≤ T", title="Error against the ODE")
    ax.legend(fontsize=7)
    for label, curve in plot["curves"].items():
        bx.semilogy(curve["t"], curve["loss"], label=label)
    bx.set(xlabel="t = k√s", ylabel="f", title=f"NAG at s = {numbers['s'][-1]:g}: the gradient correction's effect")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return [fig]


@claim(
    id="high-resolution-ode",
    title="The high-resolution ODEs follow heavy ball and NAG to O(s); without the gradient correction NAG's is O(√s)",
    paper="liu-2024",
    source="Liu, Tao, Li, Zhan, Wang & Pan, IJCAI 2024 (arXiv 2208.03941), whose bounds rest on the high-resolution "
           "ODEs of Shi, Du, Jordan & Su, arXiv 1810.08907 (2018), §2 (HB and NAG-SC ODEs, gradient correction)",
    statement="On a smooth non-quadratic objective with μ = 0.5 fixed, α = (1 − √(μs))/(1 + √(μs)) and time t = k√s, "
              "heavy ball's iterates and NAG-SC's (practitioner Nesterov's look-ahead points) stay within O(s) of "
              "Ẍ + 2√μẊ + (1+√(μs))∇f = 0 and of the same ODE plus the gradient correction √s∇²f Ẋ, over t ≤ T, when "
              "the ODE starts at the first two iterates (`HighResolutionODE.matched_velocity`). The order is fitted "
              "over ≥ 4 step sizes with its standard error; the rule asks each 99% interval to lie in (0.75, 1.25): "
              "order 1, and not the order 1/2 of an ODE missing an O(√s) term (midpoints between the candidate "
              "orders, fixed in advance). Shi's own start Ẋ(0) = −2√s∇f/(1+√(μs)) and the ODE without the gradient "
              "correction are controls.",
    quick={"mu": 0.5, "T": 2.0, "hs": [4e-4, 8e-4, 1.6e-3, 3.2e-3], "points": 40},
    full={"mu": 0.5, "T": 2.0, "hs": [1e-4, 2e-4, 4e-4, 8e-4, 1.6e-3], "points": 200},
    judge=_judge, draw=_draw,
    controls=[
        Control("no-gradient-correction", "NAG's iterates against heavy ball's ODE (the √s∇²f Ẋ term dropped)",
                {"variant": "no-gradient-correction"}),
        Control("shi-start", "the ODEs started with Shi's Ẋ(0) = −2√s∇f(x₀)/(1+√(μs)) instead of the first two "
                "iterates", {"variant": "shi-start"}),
    ],
)
def _measure(mu: float, T: float, hs: list[float], points: int, variant: str = "with matched start") -> dict:
    hs = sorted(hs)
    fits, curves = {}, {}
    for name in _METHODS:
        out = [_sup_error(name, s, mu, T, points, variant) for s in hs]
        errors = [e for e, _ in out]
        fits[name] = {**fitted_order(hs, errors), "errors": errors}
        if name == "NAG":
            curves["NAG iterates"] = {"t": out[-1][1]["t"], "loss": out[-1][1]["iterates"]}
            curves[f"NAG's ODE ({variant})"] = {"t": out[-1][1]["t"], "loss": out[-1][1]["ode"]}
    note = ""
    if variant != "no-gradient-correction":
        nocorr = _sup_error("NAG", hs[-1], mu, T, points, "no-gradient-correction")
        curves["HB's ODE from NAG's start (no correction)"] = {"t": nocorr[1]["t"], "loss": nocorr[1]["ode"]}
        note = (f"At s = {hs[-1]:g}, dropping the gradient correction raises NAG's error from "
                f"{fits['NAG']['errors'][-1]:.2e} to {nocorr[0]:.2e}.")
    return {"variant": variant, "s": hs, "fits": fits, "note": note, "plot": {"curves": curves}}
