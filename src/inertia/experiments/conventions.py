"""Claim: the practitioner (torch/optax), normalised (EMA) and canonical two-step forms give identical iterates.

The reference loops here are written from each form's own update rule, independently of `inertia.methods`,
so that comparing them with `inertia.run` checks the conversions of docs/theory.md §0.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import load_breast_cancer

from ..methods import HeavyBall, Nesterov
from ..objectives import LogisticRegression, Objective, Rosenbrock
from ..simulate import run
from ._registry import Control, claim, plot_data, verdict


def optax_iterates(transform: optax.GradientTransformation, objective: Objective, x0, steps: int):
    """Iterates ``θ_0 … θ_steps`` of an optax transformation, as torch.optim.SGD / optax users run it."""

    def step(carry, _):
        theta, state = carry
        updates, state = transform.update(objective.grad(theta), state, theta)
        theta = optax.apply_updates(theta, updates)
        return (theta, state), theta

    x0 = jnp.asarray(x0)
    _, thetas = jax.lax.scan(step, (x0, transform.init(x0)), None, length=steps)
    return jnp.concatenate([x0[None], thetas])


def normalised_iterates(objective: Objective, x0, lr: float, momentum: float, steps: int, nesterov=False):
    """The EMA form ``m ← βm + (1−β)g; θ ← θ − lr·m`` (with look-ahead ``θ − lr(βm + (1−β)g)`` if nesterov)."""

    def step(carry, _):
        theta, m = carry
        g = objective.grad(theta)
        m = momentum * m + (1 - momentum) * g
        direction = momentum * m + (1 - momentum) * g if nesterov else m
        theta = theta - lr * direction
        return (theta, m), theta

    x0 = jnp.asarray(x0)
    _, thetas = jax.lax.scan(step, (x0, jnp.zeros_like(x0)), None, length=steps)
    return jnp.concatenate([x0[None], thetas])


def two_step_iterates(objective: Objective, x0, h: float, momentum: float, lookahead: float, steps: int):
    """The canonical recursion ``x_{n+1} = x_n + λ(x_n − x_{n−1}) − h∇f(x_n + a(x_n − x_{n−1}))``, ``x_{−1} = x_0``.

    Returns the iterates ``x_n`` and the look-ahead points ``y_n = x_n + a(x_n − x_{n−1})``.
    """

    def step(carry, _):
        x, x_prev = carry
        y = x + lookahead * (x - x_prev)
        x_next = x + momentum * (x - x_prev) - h * objective.grad(y)
        y_next = x_next + lookahead * (x_next - x)
        return (x_next, x), (x_next, y_next)

    x0 = jnp.asarray(x0)
    _, (xs, ys) = jax.lax.scan(step, (x0, x0), None, length=steps)
    return jnp.concatenate([x0[None], xs]), jnp.concatenate([x0[None], ys])


def _breast_cancer() -> LogisticRegression:
    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    return LogisticRegression(np.c_[X, np.ones(len(X))], data.target.astype(float), l2=1e-3)


def _max_rel(a, b) -> float:
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@functools.lru_cache(maxsize=128)
def _iterates(problem: str, form: str, lr: float, beta: float, steps: int, x64: bool) -> tuple:
    """The iterates of one ``form`` on one of `_PROBLEMS`, as a tuple of arrays. Cached: the controls run the same
    forms at the same settings as the claim, and only the forms they change are computed again (``x64`` keys the
    precision that `reproduce` set)."""
    make, start, _ = _PROBLEMS[problem]
    objective, x0 = _objective(make), jnp.asarray(start)
    if form in ("hb", "nag", "hb-normalised", "nag-normalised"):
        method = HeavyBall if form.startswith("hb") else Nesterov
        made = (method.from_normalised if form.endswith("normalised") else method.from_practitioner)(lr, beta)
        out = run(made, objective, x0, steps, record_every=1)
        return (out.x,) if method is HeavyBall else (out.x, out.lookahead)
    if form in ("optax-hb", "optax-nag"):
        return (optax_iterates(optax.sgd(lr, beta, nesterov=form == "optax-nag"), objective, x0, steps),)
    if form in ("two-step-hb", "two-step-nag"):
        return two_step_iterates(objective, x0, lr, beta, beta if form == "two-step-nag" else 0.0, steps)
    return (normalised_iterates(objective, x0, lr, beta, steps, nesterov=form == "ema-nag"),)


@functools.lru_cache(maxsize=4)
def _objective(make: Callable[[], Objective]) -> Objective:
    return make()


def _comparisons(problem: str, lr: float, beta: float, steps: int, variant: str):
    """Each pair of forms that should agree, as (label, inertia's iterates, reference iterates).

    ``variant`` makes a control: "lr-not-rescaled" gives the normalised form the practitioner lr (dropping the
    factor 1/(1−β)); "nesterov-at-x" compares Nesterov's iterates x_n where its look-ahead points y_n belong.
    """
    eta = lr if variant == "lr-not-rescaled" else lr / (1 - beta)

    def forms(form: str, rate: float = lr) -> tuple:
        return _iterates(problem, form, rate, beta, steps, bool(jax.config.read("jax_enable_x64")))

    (hb,), (nag_x, nag_y) = forms("hb"), forms("nag")
    (hb_norm,), (_, nag_norm) = forms("hb-normalised", eta), forms("nag-normalised", eta)
    (xs_hb, _), (_, ys_nag) = forms("two-step-hb"), forms("two-step-nag")
    (optax_hb,), (optax_nag,) = forms("optax-hb"), forms("optax-nag")
    return [
        ("HB: inertia vs optax.sgd", hb, optax_hb),
        ("NAG: inertia look-ahead vs optax nesterov", nag_x if variant == "nesterov-at-x" else nag_y, optax_nag),
        ("HB: canonical two-step vs optax.sgd", xs_hb, optax_hb),
        ("NAG: canonical look-ahead vs optax nesterov", ys_nag, optax_nag),
        ("HB: normalised η=lr/(1−β) vs practitioner", hb, forms("ema-hb", eta)[0]),
        ("NAG: normalised vs practitioner", nag_y, forms("ema-nag", eta)[0]),
        ("HB: inertia normalised vs practitioner", hb_norm, hb),
        ("NAG: inertia normalised vs practitioner", nag_norm, nag_y),
    ]


_PROBLEMS: dict[str, tuple[Callable[[], Objective], tuple[float, ...], float]] = {
    "Rosenbrock (lr 1e-3)": (Rosenbrock, (-1.2, 1.0), 1e-3),
    "logistic regression, breast cancer (lr 0.05)": (_breast_cancer, (0.0,) * 31, 0.05),
}
# float64 unit roundoff is 1.1e-16; a few thousand steps of a smooth map accumulate at most ~1e4 roundings of
# relative size ε each, so equivalent forms agree to ~1e-12. A wrong conversion differs at O(1) relative size.
_TOLERANCE = 1e-12


def _judge(numbers: dict) -> tuple:
    worst = numbers["max_relative_difference"]
    return verdict(worst < numbers["tolerance"]), (
        f"Largest relative difference over {len(numbers['comparisons'])} comparisons: {worst:.2e} "
        f"(tolerance {numbers['tolerance']:.0e}, float64 rounding accumulated over the run).")


def _draw(numbers: dict) -> list:
    plot = plot_data(numbers)
    fig, axes = plt.subplots(1, len(_PROBLEMS), figsize=(12, 4), sharey=True)
    for ax, name in zip(axes, _PROBLEMS):
        for (problem, label), err in plot["curves"].items():
            if problem == name:
                ax.semilogy(np.arange(plot["steps"] + 1), np.maximum(err, 1e-18), label=label, lw=1)
        ax.axhline(numbers["tolerance"], color="k", ls="--", lw=1, label="tolerance 1e-12")
        ax.set(title=f"{name}, β = {plot['beta']}", xlabel="step n", ylim=(1e-18, 1e-8))
    axes[0].set_ylabel("max |difference| / max |iterate|")
    axes[-1].legend(fontsize=7, loc="upper left")
    fig.suptitle("Iterates of equivalent forms differ only by float64 rounding (values below 1e-18 drawn at 1e-18)")
    return [fig]


@claim(
    id="conventions-identical",
    title="Practitioner, normalised and canonical forms give identical iterates",
    paper="kovachki-stuart-2021",
    source="Kovachki & Stuart, JMLR 2021, eq. (1.2); torch.optim.SGD and optax.sgd update rules",
    statement="Practitioner heavy ball (lr, β) started from rest is canonical HB with h = lr, λ = β; practitioner "
              "Nesterov returns the look-ahead points of canonical NAG; the normalised (EMA) form with lr η is the "
              "practitioner form with lr = η(1−β). Iterates agree to float64 rounding: relative 1e-12, the bound on "
              "roundoff (1.1e-16) accumulated over at most ~1e4 operations per coordinate.",
    quick={"steps": 200, "momenta": [0.5, 0.9]},
    full={"steps": 2000, "momenta": [0.0, 0.5, 0.9, 0.99]},
    judge=_judge, draw=_draw,
    controls=[
        Control("lr-not-rescaled", "the normalised form run at the practitioner lr, without the factor 1/(1−β)",
                {"variant": "lr-not-rescaled"}),
        Control("nesterov-at-x", "practitioner Nesterov compared at the iterates x_n instead of the look-ahead "
                "points y_n", {"variant": "nesterov-at-x"}),
    ],
)
def _measure(steps: int, momenta: list[float], variant: str = "correct") -> dict:
    comparisons, curves = {}, {}
    for name, (_, _, lr) in _PROBLEMS.items():
        for beta in momenta:
            for label, ours, ref in _comparisons(name, lr, beta, steps, variant):
                err = jnp.max(jnp.abs(ours - ref), axis=-1) / jnp.max(jnp.abs(ref))
                comparisons[f"{name} | β={beta} | {label}"] = float(jnp.max(err))
                if beta == momenta[-1]:
                    curves[(name, label)] = np.asarray(err)
    return {"max_relative_difference": max(comparisons.values()), "tolerance": _TOLERANCE,
            "comparisons": comparisons, "plot": {"curves": curves, "steps": steps, "beta": momenta[-1]}}
