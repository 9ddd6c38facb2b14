"""Claim: in deep RL, spectral normalisation of one layer is recovered by adapting that layer's Adam step
(Gogianu, Berariu, Rosca, Clopath, Busoniu & Pascanu, ICML 2021, arXiv 2105.05246).

A DQN agent (Mnih et al., Nature 2015: ε-greedy actor, replay buffer, target network, squared TD error) on a MinAtar
game from gymnax (JAX-native environments), trained three ways: (A) spectral normalisation on the penultimate layer,
``W ↦ W/max(σ(W)/k, 1)`` (`inertia.smoothness.SpectralLinear`, ``leave_smaller`` as in the paper's code); (B) no
normalisation; (C) no normalisation, with that layer's weight gradient divided by ``ρ = max(σ(W)/k, 1)`` before Adam
and its step divided by ρ after (the ε part and the learning-rate part of the paper's optimiser adaptation, the code's
``div_grad_by_rho`` and ``div_by_rho``; docs/smoothness.md). All arms and seeds run as one vmapped program.

Two things are compared with (A), over the second half of training: the mean episode return (the paper's claim) and
the size of the step of the layer's effective weight ``W̄`` (``W/ρ`` with SN, ``W`` without), the quantity the paper's
optimisation argument says SN rescales.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from .._stats import tost, tost_seeds
from ..smoothness import SpectralLinear, spectral_divisor
from ._registry import Control, claim, plot_data, verdict

ARMS = ("spectral-norm", "plain", "adapted")


def _glorot(layer: eqx.nn.Linear, key) -> eqx.nn.Linear:
    """Glorot-uniform weights and zero bias, the initialisation of the paper's code (``xavier_uniform``); it puts the
    penultimate layer's σ near 2 at the start, where equinox's default (±1/√fan_in) puts it near 1."""
    weight = jax.nn.initializers.glorot_uniform()(key, layer.weight.shape)
    return eqx.tree_at(lambda m: (m.weight, m.bias), layer, (weight, jnp.zeros(layer.weight.shape[0])))


class _QNet(eqx.Module):
    """MLP Q-network on the flattened MinAtar frame; ``hidden`` is the penultimate layer (the paper's index −2)."""

    first: eqx.nn.Linear
    hidden: SpectralLinear
    last: eqx.nn.Linear

    def __init__(self, d_in: int, width: int, n_actions: int, lipschitz: float, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.first = _glorot(eqx.nn.Linear(d_in, width, key=k1), k4)
        hidden = SpectralLinear(width, width, leave_smaller=True, lipschitz=lipschitz, key=k2)
        self.hidden = eqx.tree_at(lambda m: m.linear, hidden, _glorot(hidden.linear, jax.random.fold_in(k4, 1)))
        self.last = _glorot(eqx.nn.Linear(width, n_actions, key=k3), jax.random.fold_in(k4, 2))

    def __call__(self, x, normalise):
        h = jax.nn.relu(self.first(x.ravel()))
        # one program for all arms: the arm is data, so the normalised and raw layer are both evaluated
        h = jnp.where(normalise, self.hidden(h), self.hidden.linear(h))
        return self.last(jax.nn.relu(h))


def _divide_hidden_weight(tree, rho):
    return eqx.tree_at(lambda t: t.hidden.linear.weight, tree, tree.hidden.linear.weight / rho)


def _td_loss(params, target, static, batch, normalise, gamma):
    q = jax.vmap(lambda o: eqx.combine(params, static)(o, normalise))(batch["obs"])
    q_next = jax.vmap(lambda o: eqx.combine(target, static)(o, normalise))(batch["next_obs"])
    bootstrap = batch["reward"] + gamma * (1.0 - batch["done"]) * jnp.max(q_next, axis=-1)
    chosen = jnp.take_along_axis(q, batch["action"][:, None], axis=-1)[:, 0]
    return jnp.mean((chosen - jax.lax.stop_gradient(bootstrap)) ** 2)


def _run(key, arm, *, game, width, envs, iterations, warmup, buffer, batch, lr, eps, gamma, target_every,
         explore_fraction, bins, lipschitz):
    """One DQN run of ``iterations`` × ``envs`` environment steps; returns completed-episode return sums and counts
    per bin of environment steps, and σ of the penultimate layer at each bin's end."""
    import gymnax

    env, env_params = gymnax.make(game)
    n_actions = env.action_space(env_params).n
    k_net, k_env, k_loop = jax.random.split(key, 3)
    obs0, state0 = jax.vmap(env.reset, (0, None))(jax.random.split(k_env, envs), env_params)
    net = _QNet(obs0[0].size, width, n_actions, lipschitz, k_net)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    opt = optax.adam(lr, eps=eps)
    normalise, adapted = arm == 0, arm == 2
    shape = (buffer, obs0[0].size)
    store = {"obs": jnp.zeros(shape, bool), "next_obs": jnp.zeros(shape, bool), "action": jnp.zeros(buffer, int),
             "reward": jnp.zeros(buffer), "done": jnp.zeros(buffer)}
    per_bin = iterations // bins

    def learn(params, target, opt_state, store, filled, key):
        idx = jax.random.randint(key, (batch,), 0, filled)
        sample = {k: v[idx].astype(jnp.float32) if k.endswith("obs") else v[idx] for k, v in store.items()}
        grads = jax.grad(_td_loss)(params, target, static, sample, normalise, gamma)
        u0 = jax.lax.stop_gradient(params.hidden.u0)
        rho = spectral_divisor(params.hidden.linear.weight, u0, lipschitz=lipschitz, leave_smaller=True)
        rho = jnp.where(adapted, jax.lax.stop_gradient(rho), 1.0)
        updates, opt_state = opt.update(_divide_hidden_weight(grads, rho), opt_state, params)
        return optax.apply_updates(params, _divide_hidden_weight(updates, rho)), opt_state

    def effective_weight(params):  # the weight the forward pass uses: W/ρ with SN, W otherwise
        W = params.hidden.linear.weight
        rho = spectral_divisor(W, params.hidden.u0, lipschitz=lipschitz, leave_smaller=True)
        return W / jnp.where(normalise, rho, 1.0)

    def step(carry, t):
        params, target, opt_state, store, obs, state, ret, sums, counts, moves, key = carry
        key, k_act, k_rand, k_step, k_learn = jax.random.split(key, 5)
        epsilon = jnp.clip(1.0 - 0.95 * t / (explore_fraction * iterations), 0.05, 1.0)
        greedy = jnp.argmax(jax.vmap(lambda o: eqx.combine(params, static)(o, normalise))(obs), -1)
        explore = jax.random.uniform(k_act, (envs,)) < epsilon
        action = jnp.where(explore, jax.random.randint(k_rand, (envs,), 0, n_actions), greedy)
        next_obs, state, reward, terminated, truncated, info = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(k_step, envs), state, action, env_params)
        done = terminated | truncated  # the episode ends; only termination stops the bootstrap
        at = (t * envs) % buffer
        new = {"obs": obs.reshape(envs, -1) > 0.5, "next_obs": info["final_observation"].reshape(envs, -1) > 0.5,
               "action": action, "reward": reward.astype(jnp.float32), "done": terminated.astype(jnp.float32)}
        store = {k: jax.lax.dynamic_update_slice_in_dim(store[k], new[k], at, 0) for k in store}
        ret = ret + reward
        b = jnp.minimum(t // per_bin, bins - 1)
        sums, counts = sums.at[b].add(jnp.sum(jnp.where(done, ret, 0.0))), counts.at[b].add(jnp.sum(done))
        ret = jnp.where(done, 0.0, ret)
        filled = jnp.minimum((t + 1) * envs, buffer)
        trained = learn(params, target, opt_state, store, filled, k_learn)
        before = effective_weight(params)
        params, opt_state = jax.tree.map(lambda a, b: jnp.where(t >= warmup, a, b), trained, (params, opt_state))
        moves = moves.at[b].add(jnp.linalg.norm(effective_weight(params) - before) / per_bin)
        target = jax.tree.map(lambda p, q: jnp.where(t % target_every == 0, p, q), params, target)
        return (params, target, opt_state, store, next_obs, state, ret, sums, counts, moves, key), None

    carry = (params, params, opt.init(params), store, obs0, state0, jnp.zeros(envs), jnp.zeros(bins),
             jnp.zeros(bins), jnp.zeros(bins), k_loop)
    carry, _ = jax.lax.scan(step, carry, jnp.arange(iterations))
    final = carry[0]
    sigma = spectral_divisor(final.hidden.linear.weight, final.hidden.u0, lipschitz=1.0)
    return carry[7], carry[8], carry[9], sigma


@functools.lru_cache(maxsize=4)
def _train_all(seeds: int, config: tuple) -> dict:
    """All arms × seeds as one vmapped, compiled program; cached so that a control reuses the claim's runs."""
    kwargs = dict(config)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    arms = jnp.repeat(jnp.arange(len(ARMS)), seeds)
    run = jax.jit(jax.vmap(functools.partial(_run, **kwargs)))
    sums, counts, moves, sigma = run(jnp.tile(keys, (len(ARMS), 1)), arms)
    shape = (len(ARMS), seeds, -1)
    return {"sums": np.asarray(sums).reshape(shape), "counts": np.asarray(counts).reshape(shape),
            "moves": np.asarray(moves).reshape(shape), "sigma": np.asarray(sigma).reshape(len(ARMS), seeds)}


# Margins, fixed before measuring. Return: the 80–125% ratio convention of bioequivalence (FDA guidance on
# bioequivalence, 2001), as ±log 1.25 on log returns. Update schedule: half a step of the paper's Adam learning-rate
# grid (10^{1/3} per step), ±log(10)/6 on the log step size, i.e. a smaller change than the paper's sweep resolves.
RETURN_MARGIN = float(np.log(1.25))
SCHEDULE_MARGIN = float(np.log(10) / 6)


def _outside(t: dict) -> bool:
    return bool(t["low"] > t["margin"] or t["high"] < -t["margin"])


def _describe(name: str, t: dict) -> str:
    state = "equivalent" if t["equivalent"] else "outside the margin" if _outside(t) else "undecided"
    return (f"{name}: {t['difference']:+.3f}, 90% Welch interval [{t['low']:+.3f}, {t['high']:+.3f}] against "
            f"±{t['margin']:.3f} (TOST p = {t['p']:.3g}; {state})")


def _judge(numbers: dict) -> tuple:
    if "missing" in numbers:
        return "inconclusive", f"gymnax could not be imported ({numbers['missing']}); install it as the README says."
    tests = (numbers["return_tost"], numbers["schedule_tost"])
    holds, refuted = all(t["equivalent"] for t in tests), any(_outside(t) for t in tests)
    means = ", ".join(f"{a} {np.mean(v):.2f}" for a, v in numbers["returns"].items())
    steps = ", ".join(f"{a} {np.exp(np.mean(v)):.2e}" for a, v in numbers["log_steps"].items())
    return verdict(holds and not refuted, inconclusive=not holds and not refuted), (
        f"{numbers['compared']} minus spectral-norm, over the second half of training ({numbers['game']}, "
        f"{numbers['env_steps']} environment steps per run, {numbers['seeds']} seeds): "
        + _describe("log mean episode return", numbers["return_tost"])
        + "; " + _describe("log step ‖ΔW̄‖ of the penultimate layer's effective weight", numbers["schedule_tost"])
        + f". Seeds per arm for 80% power at the measured sd: return {numbers['seeds_needed']['return']}, step "
        f"{numbers['seeds_needed']['schedule']}. Mean returns: {means}; geometric-mean steps: {steps}; final σ of "
        f"the raw weight: " + ", ".join(f"{a} {np.mean(v):.2f}" for a, v in numbers["sigma"].items()) + ".")


def _band(ax, x, runs, colour, label):
    """Mean over seeds with a normal 95% interval; bins where fewer than two seeds have a value get no interval."""
    runs = np.asarray(runs, float)
    n = np.sum(np.isfinite(runs), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins (no episode ended) are left blank
        mean, half = np.nanmean(runs, 0), 1.96 * np.nanstd(runs, 0, ddof=1) / np.sqrt(n)
    ax.plot(x, mean, color=colour, label=label)
    ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.2)


def _draw(numbers: dict) -> list:
    plot = plot_data(numbers)
    if not plot:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    for arm, colour in zip(ARMS, ("tab:blue", "tab:grey", "tab:red")):
        _band(axes[0], plot["steps"], plot["returns"][arm], colour, f"{arm}")
        _band(axes[1], plot["steps"], plot["moves"][arm], colour, f"{arm}")
    axes[0].set(xlabel="environment steps per run", ylabel="mean return of episodes ending in the bin",
                title="return (mean over seeds, 95% interval)")
    axes[1].set(xlabel="environment steps per run", ylabel="‖ΔW̄‖ per update (Frobenius)", yscale="log",
                title="step of the penultimate layer's effective weight W̄")
    axes[0].legend(fontsize=9)
    fig.suptitle(f"DQN on {numbers['game']}, Adam lr {numbers['lr']:g}, ε {numbers['eps']:g}: spectral "
                 "normalisation vs adapted optimiser")
    return [fig]


def _second_half(values, counts=None):
    """Per run, the mean over the second half of the bins (episode-weighted when ``counts`` is given)."""
    half = values.shape[-1] // 2
    if counts is None:
        return values[..., half:].mean(-1)
    return values[..., half:].sum(-1) / np.maximum(counts[..., half:].sum(-1), 1)


# Fixed from pilots of the spectral-norm and plain arms only (docs/smoothness.md): Adam lr 1e-2, where SN changed the
# return at 100k steps (at lr 1e-3 … 3e-3 the two agents reach the same return); ε of the paper's code.
_AGENT: dict[str, Any] = {"game": "Breakout-MinAtar", "width": 64, "envs": 8, "warmup": 64, "batch": 32, "lr": 1e-2,
                          "eps": 3.125e-4, "gamma": 0.99, "target_every": 125, "explore_fraction": 0.5, "bins": 20,
                          "lipschitz": 1.0}


@claim(
    id="rl-spectral-normalisation",
    title="In DQN, spectral normalisation of one layer is recovered by dividing that layer's Adam step by ρ",
    paper="rosca-thesis",
    source="Gogianu, Berariu, Rosca, Clopath, Busoniu & Pascanu, ICML 2021 (arXiv 2105.05246), optimiser adaptation "
           "(official code floringogianu/snrl: div_grad_by_rho, div_by_rho; docs/smoothness.md); MinAtar (Young & "
           "Tian 2019) as gymnax's JAX port; DQN (Mnih et al., Nature 2015)",
    statement="A DQN agent on gymnax's Breakout-MinAtar without normalisation, with the penultimate layer's weight "
              "gradient divided by ρ = max(σ/1, 1) before Adam and its step divided by ρ after, matches the agent "
              "with spectral normalisation on that layer, over the second half of training, in (a) the log mean "
              "episode return, margin ±log 1.25 (the 80–125% ratio convention of bioequivalence), and (b) the log "
              "size of the layer's effective weight step ‖ΔW̄‖, margin ±log(10)/6 (half a step of the paper's "
              "lr grid): both 90% Welch intervals inside their margins (TOST, α = 0.05). Fails when either "
              "interval lies wholly outside its margin; inconclusive otherwise (quick mode is a short run and is "
              "expected to leave (a) undecided).",
    quick={"seeds": 6, "iterations": 1000, "buffer": 4000},
    full={"seeds": 16, "iterations": 12500, "buffer": 25000},
    judge=_judge, draw=_draw, precision="float32",
    controls=[Control("unadapted", "the plain agent (no normalisation, Adam unadapted) compared with SN",
                      {"compared": "plain"})],
)
def _measure(seeds: int, iterations: int, buffer: int, compared: str = "adapted") -> dict:
    try:
        import gymnax  # noqa: F401
    except ImportError as error:
        return {"missing": str(error)}
    config: dict[str, Any] = {**_AGENT, "iterations": iterations, "buffer": buffer}
    runs = _train_all(seeds, tuple(sorted(config.items())))
    returns = {a: _second_half(runs["sums"][i], runs["counts"][i]) for i, a in enumerate(ARMS)}
    log_steps = {a: np.log(_second_half(runs["moves"][i])) for i, a in enumerate(ARMS)}
    log_returns = {a: np.log(np.maximum(v, 1e-3)) for a, v in returns.items()}  # a run with no points: 1e-3

    def pooled_sd(values):
        return max(float(np.sqrt((np.var(values[compared], ddof=1) + np.var(values["spectral-norm"], ddof=1)) / 2)),
                   1e-6)

    with np.errstate(invalid="ignore", divide="ignore"):
        curves = {a: runs["sums"][i] / np.where(runs["counts"][i] > 0, runs["counts"][i], np.nan)
                  for i, a in enumerate(ARMS)}
    per_bin = iterations // config["bins"]
    starts = np.arange(config["bins"]) * per_bin
    learning = np.clip(starts + per_bin - np.maximum(starts, config["warmup"]), 0, None)  # updates in each bin
    with np.errstate(invalid="ignore", divide="ignore"):
        step_curves = runs["moves"] * per_bin / np.where(learning > 0, learning, np.nan)
    return {"returns": {a: v.tolist() for a, v in returns.items()},
            "log_steps": {a: v.tolist() for a, v in log_steps.items()},
            "sigma": {a: runs["sigma"][i].tolist() for i, a in enumerate(ARMS)},
            "return_tost": tost(log_returns[compared], log_returns["spectral-norm"], RETURN_MARGIN),
            "schedule_tost": tost(log_steps[compared], log_steps["spectral-norm"], SCHEDULE_MARGIN),
            "seeds_needed": {"return": tost_seeds(pooled_sd(log_returns), RETURN_MARGIN),
                             "schedule": tost_seeds(pooled_sd(log_steps), SCHEDULE_MARGIN)},
            "compared": compared, "seeds": seeds, "game": config["game"], "lr": config["lr"], "eps": config["eps"],
            "env_steps": iterations * config["envs"],
            "plot": {"returns": {a: c.tolist() for a, c in curves.items()},
                     "moves": {a: step_curves[i].tolist() for i, a in enumerate(ARMS)},
                     "steps": ((starts + per_bin / 2) * config["envs"]).tolist()}}
