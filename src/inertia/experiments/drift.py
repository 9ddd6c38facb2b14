"""Claims on discretisation drift: the drift-adjusted learning rate on a small network, and two-player games."""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import games  # noqa: E402
from ..drift import DAL  # noqa: E402
from ..methods import GD, grid  # noqa: E402
from ..objectives import Function  # noqa: E402
from ..simulate import run, sweep  # noqa: E402
from ._registry import Outcome, claim, verdict  # noqa: E402


def _digits_mlp(hidden: int, n_examples: int):
    """Cross-entropy of a one-hidden-layer tanh network on scikit-learn's digits, on a flat parameter vector."""
    from sklearn.datasets import load_digits

    data = load_digits()
    inputs = jnp.asarray(data.data[:n_examples] / 16.0)
    labels = jnp.asarray(data.target[:n_examples])
    d_in, d_out = inputs.shape[1], 10
    shapes = [(d_in, hidden), (hidden,), (hidden, d_out), (d_out,)]
    sizes = [int(np.prod(s)) for s in shapes]

    def unflatten(x):
        parts = jnp.split(x, np.cumsum(sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, shapes)]

    def loss(x):
        w1, b1, w2, b2 = unflatten(x)
        logits = jnp.tanh(inputs @ w1 + b1) @ w2 + b2
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(logits, labels[:, None], 1)[:, 0])

    key1, key2 = jax.random.split(jax.random.key(0))
    x0 = jnp.concatenate([jax.random.normal(key1, (sizes[0],)) / np.sqrt(d_in), jnp.zeros(sizes[1]),
                          jax.random.normal(key2, (sizes[2],)) / np.sqrt(hidden), jnp.zeros(sizes[3])])
    return Function(loss), x0


@claim(
    id="dal-digits",
    title="DAL trains a small network without tuning the learning rate",
    source="Rosca, Wu, Qin & Dherin, TMLR 2023, Sec. 6 (DAL-p); official dal.py",
    statement="GD with the drift-adjusted learning rate h_t = min(2/v^p, h_max), v = ‖H∇f‖/‖∇f‖, reaches a training "
              "loss at least as low as the median of a sweep over fixed learning rates, with no learning rate to tune.",
    quick={"p": 1.0, "hidden": 16, "n_examples": 600, "steps": 150, "lrs": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]},
    full={"p": 1.0, "hidden": 64, "n_examples": 1797, "steps": 2000,
          "lrs": [0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0]},
)
def _dal(p, hidden, n_examples, steps, lrs) -> Outcome:
    objective, x0 = _digits_mlp(hidden, n_examples)
    every = max(1, steps // 50)
    dal_run = run(DAL(p), objective, x0, steps, record_every=every)
    fixed = sweep(grid(GD, h=lrs), objective, x0, steps, record_every=every, progress=False)
    final = fixed.loss.isel(step=-1, seed=0).values
    final = np.where(fixed.diverged_at.isel(seed=0).values >= 0, np.inf, final)  # a diverged run ranks last
    dal_loss = float(dal_run.loss[-1])
    best, worst, median = float(np.min(final)), float(np.max(final)), float(np.median(final))
    holds = dal_loss <= median
    fig, ax = plt.subplots(figsize=(6, 4.2))
    steps_axis = np.asarray(fixed.step)
    for i, lr in enumerate(lrs):
        curve = fixed.loss.isel(config=i, seed=0).values
        ax.semilogy(steps_axis, np.where(np.isfinite(curve), curve, np.nan), color=plt.cm.viridis(i / max(1, len(lrs) - 1)),
                    lw=1, label=f"GD, h = {lr:g}" + (" (diverged)" if not np.isfinite(final[i]) else ""))
    ax.semilogy(np.asarray(dal_run.steps), np.asarray(dal_run.loss), "r-", lw=2.5, label=f"DAL-{p:g} (no tuning)")
    ax.set(xlabel="step n (full batch)", ylabel="training cross-entropy (nats)",
           title=f"digits, {n_examples} examples, MLP 64–{hidden}–10")
    ax.legend(fontsize=7, ncol=2)
    numbers = {"dal_final_loss": dal_loss, "sweep_lrs": lrs, "sweep_final_losses": final, "best": best,
               "median": median, "worst": worst}
    summary = (f"After {steps} steps DAL-{p:g} reaches loss {dal_loss:.4f}; fixed-lr sweep best {best:.4f}, "
               f"median {median:.4f}, worst {worst:.4g} (holds if DAL ≤ median).")
    return Outcome(verdict(holds), summary, numbers, [fig])


def _smooth_game():
    def loss1(phi, theta):
        return jnp.sin(phi[0]) * theta[0] + 0.5 * phi @ phi + phi[1] * theta[1] ** 2 + 0.3 * jnp.cos(phi[0] + theta[1])

    def loss2(phi, theta):
        return -theta[0] * phi[0] ** 2 + 0.5 * theta @ theta + jnp.tanh(theta[1]) * phi[1] + 0.2 * jnp.sin(theta[0] * phi[1])

    return games.Game(loss1, loss2), jnp.array([0.3, -0.5]), jnp.array([0.7, 0.2])


@claim(
    id="two-player-drift",
    title="Two-player GD follows its modified losses to O(h³) per step; cancelling the interaction drift stabilises a game",
    source="Rosca, Wu, Dherin & Barrett, ICML 2021, Thms 3.1–3.2 and Sec. 5",
    statement="One step of simultaneous or alternating GD differs from the flow of (Ẽ₁, Ẽ₂) by O(h³), for equal and "
              "unequal step sizes; on a zero-sum game where simultaneous GD diverges, explicit regularisers that "
              "cancel the interaction terms make it converge.",
    quick={"ratios": [1.0, 0.3], "scales": [0.01, 0.02, 0.04, 0.08], "eps": 0.05, "h": 0.2, "steps": 300},
    full={"ratios": [1.0, 0.3, 3.0], "scales": [0.005, 0.01, 0.02, 0.04, 0.08], "eps": 0.05, "h": 0.2, "steps": 1000},
)
def _games(ratios, scales, eps, h, steps) -> Outcome:
    game, phi, theta = _smooth_game()
    numbers, ok = {}, True
    fig1, ax = plt.subplots(figsize=(6, 4.2))
    for alternating in (False, True):
        for ratio in ratios:
            r = games.drift_order(game, phi, theta, scales, ratio=ratio, alternating=alternating)
            name = f"{'alternating' if alternating else 'simultaneous'}, h_θ/h_φ = {ratio:g}"
            ok &= abs(r.order - 3) < 0.15
            numbers[name] = {"order": r.order, "residual": r.residual, "errors": r.errors}
            ax.loglog(r.hs, r.errors, "o-", label=f"{name}: slope {r.order:.2f}")
    s = np.asarray(scales)
    ax.loglog(s, 0.5 * numbers[next(iter(numbers))]["errors"][0] * (s / s[0]) ** 3, "k:", label="slope 3")
    ax.set(xlabel="step size h_φ", ylabel="one-step error |GD step − modified flow(1)|",
           title="Two-player drift: one-step error of the modified losses")
    ax.legend(fontsize=7)

    zero_sum = games.Game.zero_sum(lambda p, t: eps / 2 * p @ p + p @ t - eps / 2 * t @ t)
    p0, t0 = jnp.array([1.0, 0.5]), jnp.array([0.5, -1.0])
    fig2, ax2 = plt.subplots(figsize=(6, 4.2))
    norms = {}
    for label, g in [("simultaneous GD", zero_sum), ("with interaction drift cancelled", games.cancel_interaction(zero_sum, h, h))]:
        phis, thetas = games.play(g, p0, t0, steps, h, h)
        norms[label] = np.sqrt(np.sum(np.asarray(phis) ** 2, 1) + np.sum(np.asarray(thetas) ** 2, 1))
        ax2.semilogy(np.arange(steps + 1), norms[label], label=label)
    ax2.set(xlabel="step n", ylabel="distance from equilibrium |(φ, θ)|",
            title=f"min_φ max_θ ε/2|φ|² + φᵀθ − ε/2|θ|², ε = {eps}, h = {h}")
    ax2.legend(fontsize=8)
    growth = {k: float(v[-1] / v[0]) for k, v in norms.items()}
    stabilised = growth["simultaneous GD"] > 1 and growth["with interaction drift cancelled"] < 1
    ok &= stabilised
    numbers["zero_sum_norm_ratio_final_over_initial"] = growth
    orders = ", ".join(f"{k}: {v['order']:.2f}" for k, v in numbers.items() if "order" in v)
    summary = (f"One-step error orders (expected 3 ± 0.15): {orders}. Zero-sum game after {steps} steps, |z_n|/|z_0|: "
               f"plain {growth['simultaneous GD']:.3g}, cancelled {growth['with interaction drift cancelled']:.3g}.")
    return Outcome(verdict(ok), summary, numbers, [fig1, fig2])
