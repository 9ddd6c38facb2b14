"""Simulation: one trajectory (`run`) or a grid of hyper-parameters × seeds (`sweep`).

Any method of the stepping protocol (`inertia.methods.AbstractMethod`) runs here, through its ``init``, ``step``
and ``observed`` only. Both are one compiled program: a `lax.scan` over recording points, each advancing the whole
grid (configurations × seeds, under `vmap`) with a loop over steps, so that a step on a `Quadratic` is one matrix
product for every run. Hyper-parameters, objective data and recording steps are traced values, so a new grid of
the same shape reuses the compiled program. A run that diverges (a non-finite gradient or state,
``‖x‖ > max_norm``, or a non-finite loss at a recorded step) is frozen at its last finite state and marked with the
step at which it diverged; it never raises and never touches other runs. Steps go in blocks that check bounds
without freezing; a block in which a run leaves them is run again with the per-step bookkeeping of `guarded_step`,
so the results are those of a check at every step. Long runs go in segments of about half a second, each one call
of the same compiled program carrying the state on, so that Ctrl-C stops them quickly; with ``path``, a sweep is
saved chunk by chunk and resumes (`inertia._store`); with ``executor`` its chunks run as tasks on a cluster, and
with several devices its configurations are split over them (`inertia.scaling`, docs/scaling.md).

Seeds: ``key`` is split into one key per seed, shared by every configuration (common random numbers, so
configurations are compared on the same noise). Additive `Gaussian` noise is drawn per seed in blocks of
``K = noise_block_steps(d)`` steps: step ``n`` adds row ``n mod K`` of
``noise.sample(fold_in(seed_key, n // K), (K, d))``. Every other noise model draws step ``n`` with
``noise.gradient(..., key=fold_in(seed_key, n))``. Neither depends on chunks, segments or devices. (Until the block
engine of issue 14, Gaussian noise too was drawn with ``fold_in(seed_key, n)``: the same key now gives other,
equally distributed, numbers.)
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from typing import Any, Callable, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array, ArrayLike
from tqdm.auto import tqdm

from ._checks import InertiaError, check_finite, check_int, check_point, check_positive
from ._store import Store
from ._version import __version__
from .methods import AbstractMethod, Method, all_finite, require_linear
from .noise import Gaussian, Noise
from .objectives import Objective
from .scaling import over_devices, resolve_devices, run_tasks

__all__ = ["Trajectory", "run", "sweep", "trajectory", "record_steps", "guarded_step"]


class Trajectory(eqx.Module):
    """A recorded trajectory (leading axes: the grid, for a batch of runs).

    **Fields:** ``steps`` (T,): the recorded step numbers; ``state``: the method's state at those steps (every
    leaf with a leading axis T; for the linear methods a `TwoStepState` ``(x, velocity)``); ``loss`` (T,):
    ``f(x_n)``; ``diverged_at``: the first step whose state was non-finite or too large (or the first recorded
    step whose loss was non-finite), −1 if none; ``method``.
    """

    steps: Array
    state: Any
    loss: Array
    diverged_at: Array
    method: AbstractMethod

    @property
    def observed(self) -> Array:
        """The method's observed points (T, d): the look-ahead points for Nesterov and QHM, ``x`` otherwise."""
        return observed_points(self.method, self.state)

    @property
    def x(self) -> Array:
        """The iterates ``x_n`` (..., T, d)."""
        return self.state.x

    @property
    def velocity(self) -> Array:
        """``x_n − x_{n−1}`` (..., T, d), for the linear two-step methods."""
        require_linear(self.method, "Trajectory.velocity")
        return self.state.velocity

    @property
    def lookahead(self) -> Array:
        """The look-ahead points ``y_n = x_n + a (x_n − x_{n−1})``: practitioner Nesterov's iterates (= `observed`)."""
        return self.observed

    @property
    def diverged(self) -> Array:
        return self.diverged_at >= 0


def record_steps(steps: int, record_every: int | None = None,
                 record_at: ArrayLike | Sequence[int] | None = None) -> np.ndarray:
    """The sorted step numbers to record: every ``record_every`` steps (and the last), or ``record_at``."""
    check_int("steps", steps, 1)
    if record_at is not None:
        at = np.unique(np.asarray(record_at, dtype=np.int64))
        if at.size == 0 or at[0] < 0 or at[-1] > steps:
            raise InertiaError(f"record_at must hold steps in [0, {steps}]; got {np.asarray(record_at).tolist()[:5]}…")
        return at
    every = record_every if record_every is not None else max(1, steps // 100)
    check_int("record_every", every, 1)
    return np.unique(np.append(np.arange(0, steps + 1, every), steps))


def guarded_step(method: AbstractMethod, carry, gradient: Callable, n, max_norm):
    """Step ``n`` of `method` on ``carry = (state, diverged_at)``, keeping the divergence bookkeeping.

    A step whose new state has a non-finite entry, or an iterate with ``‖x‖ > max_norm``, marks the run diverged
    at ``n + 1`` and freezes it at its last finite state; later steps leave it unchanged. A non-finite gradient is
    caught through the state: every method leaves a non-finite state after one (`inertia.methods.AbstractMethod`),
    so the gradient itself is not inspected here and the compiled step of every method stays exactly its update.
    Shared by `run`/`sweep` and `inertia.nn.train`, for any method of the stepping protocol.
    """
    state, diverged_at = carry
    new = method.step(state, gradient, n)
    ok = within_bounds(new, max_norm)
    diverged_at = jnp.where((diverged_at < 0) & ~ok, n + 1, diverged_at)
    frozen = diverged_at >= 0
    return jax.tree.map(lambda old, fresh: jnp.where(frozen, old, fresh), state, new), diverged_at


def unguarded_step(method: AbstractMethod, state, gradient: Callable, n, max_norm):
    """Step ``n`` of `method` with nothing frozen, and whether the new state is within bounds: the fast path of a
    block of steps that is run again with `guarded_step` if some run left its bounds (README: "Divergence is checked
    per block, exactly"). From a finite state it flags exactly the steps `guarded_step` would mark."""
    new = method.step(state, gradient, n)
    if isinstance(method, Method):
        # From a finite state, v' = λv − h g and x' = x + v': v' is non-finite only if x' is, so the size of x
        # alone (NaN fails the comparison) decides, as `within_bounds` does.
        return new, jnp.sum(new.x * new.x) < max_norm**2
    return new, within_bounds(new, max_norm)


def within_bounds(state, max_norm) -> Array:
    """Whether one run's new state is finite with ``‖x‖ ≤ max_norm`` (one reduction for the size: a NaN or inf
    fails the comparison too)."""
    return (jnp.sum(state.x * state.x) < max_norm**2) & all_finite(state)


def mark_nonfinite_loss(diverged_at: Array, loss: Array, step) -> Array:
    """``diverged_at``, set to ``step`` for a run not yet diverged whose recorded ``loss`` is non-finite."""
    return jnp.where((diverged_at < 0) & ~jnp.isfinite(loss), step, diverged_at)


def state_variables(state) -> dict[str, Any]:
    """The fields of a recorded NamedTuple state other than ``x`` that are arrays shaped like ``x`` or one value per
    run and step (the linear methods' ``velocity``, Adam's ``mu``, ``nu`` and ``count``), for a results table."""
    x = state.x
    fields = zip(getattr(type(state), "_fields", ()), tuple(state) if isinstance(state, tuple) else ())
    return {name: value for name, value in fields if name != "x" and isinstance(value, (np.ndarray, jax.Array))
            and value.shape in (x.shape, x.shape[:-1])}


def _start(method, x0, v0):
    """The method's state at step 0 from ``x0`` (and, for a linear two-step method, the velocity ``v0``)."""
    method = method.astype(x0.dtype)
    return method.init(x0) if v0 is None else method.init(x0, v0)


#: Steps between two divergence checks on the fast path (no noise, or a noise model drawn step by step).
CHECK_EVERY = 32
#: Gaussian noise is drawn per seed in blocks of ``noise_block_steps(d)`` steps, about this many numbers a block.
NOISE_BLOCK_NUMBERS = 1024
NOISE_BLOCK_MAX_STEPS = 128


def noise_block_steps(dimension: int) -> int:
    """The steps ``K`` of one block of Gaussian gradient noise in dimension ``d``: ``min(128, max(1, 1024 // d))``.

    Step ``n`` of seed ``s`` adds row ``n mod K`` of ``noise.sample(fold_in(key_s, n // K), (K, d))``: the stream
    depends on the key, ``d`` and the dtype only, never on how the grid is chunked or the run segmented.
    """
    return min(NOISE_BLOCK_MAX_STEPS, max(1, NOISE_BLOCK_NUMBERS // dimension))


def _blocked(noise) -> bool:
    """Whether the noise is drawn in blocks for all steps of a block at once (additive Gaussian noise)."""
    return isinstance(noise, Gaussian)


class _Engine(NamedTuple):
    """The batched step of a grid: every leaf of a state has leading axes (config, seed)."""

    method: Any  # the flattened grid, each hyper-parameter (config,)
    objective: Objective
    noise: Noise | None
    keys: Array  # (seed,)
    max_norm: Any
    block: int  # steps per block: the noise block, or CHECK_EVERY

    def _gradient(self, key, xi, n):
        if self.noise is None:
            return self.objective.grad
        if xi is not None:  # this step's row of the block drawn for this seed
            return lambda y: self.objective.grad(y) + xi
        return lambda y: self.noise.gradient(self.objective, y, key=jax.random.fold_in(key, n))

    def _over_grid(self, one, state, div, xi, n):
        """``one(method, state, diverged_at, key, xi, n)`` for every run: over seeds (inner; keys and noise per
        seed) and configurations (outer; hyper-parameters per configuration)."""
        seeds = jax.vmap(one, (None, 0, 0, 0, 0, None))
        return jax.vmap(seeds, (0, 0, 0, None, None, None))(self.method, state, div, self.keys, xi, n)

    def draw(self, b, dtype, d):
        """The noise of block ``b`` for every seed: (seed, block, d)."""
        return jax.vmap(lambda k: self.noise.sample(jax.random.fold_in(k, b), (self.block, d), dtype))(self.keys)

    def fast_step(self, state, div, xi, n):
        """Every run one step on, unguarded; and whether each new state is within bounds."""
        one = lambda m, s, dv, key, z, n: unguarded_step(m, s, self._gradient(key, z, n), n, self.max_norm)
        return self._over_grid(one, state, div, xi, n)

    def guarded(self, state, div, xi, n):
        """Every run one `guarded_step` on."""
        one = lambda m, s, dv, key, z, n: guarded_step(m, (s, dv), self._gradient(key, z, n), n, self.max_norm)
        return self._over_grid(one, state, div, xi, n)


def keep_frozen(frozen, old, new):
    """``old`` where ``frozen`` (config, seed), ``new`` elsewhere, leaf by leaf (every leaf (config, seed, …))."""
    pick = lambda o, f: jnp.where(frozen.reshape(frozen.shape + (1,) * (f.ndim - 2)), o, f)
    return jax.tree.map(pick, old, new)


def _advance_steps(engine: _Engine, carry, start, stop):
    """Steps ``[start, stop)`` of every run, with exactly the results of `guarded_step` at every step.

    ``carry = (state, diverged_at, noise, block)`` holds the last block of noise drawn and its number. Steps go in
    blocks of ``engine.block`` (aligned to multiples of it, so that noise blocks are whole): each block runs
    unguarded, noting whether any run left its bounds, and is run again step by step with `guarded_step` from its
    start only when a run that had not diverged did. Runs frozen before the block are put back. The odd steps
    before the first and after the last whole block go step by step.
    """
    K = engine.block
    dtype, d = carry[0].x.dtype, carry[0].x.shape[-1]

    def noise_of(cache, b):
        if engine.noise is None or not _blocked(engine.noise):
            return cache
        xi, drawn = cache
        return jax.lax.cond(drawn == b, lambda: cache, lambda: (engine.draw(b, dtype, d), b))

    def row(cache, i):
        return None if cache is None else jax.lax.dynamic_index_in_dim(cache[0], i, axis=1, keepdims=False)

    def one_step(n, carry):
        state, div, cache = carry
        cache = noise_of(cache, n // K)
        state, div = engine.guarded(state, div, row(cache, n % K), n)
        return state, div, cache

    def block(j, carry):
        state0, div, cache = carry
        n0 = first_block + j * K
        cache = noise_of(cache, n0 // K)

        def fast(i, inner):
            state, bad = inner
            state, ok = engine.fast_step(state, div, row(cache, i), n0 + i)
            return state, bad | ~ok

        state, bad = jax.lax.fori_loop(0, K, fast, (state0, jnp.zeros(div.shape, bool)))
        frozen = div >= 0
        again = lambda: jax.lax.fori_loop(n0, n0 + K, one_step, (state0, div, cache))
        return jax.lax.cond(jnp.any(bad & ~frozen), again, lambda: (keep_frozen(frozen, state0, state), div, cache))

    first_block = jnp.minimum(stop, -(-start // K) * K)
    blocks = (stop - first_block) // K
    carry = jax.lax.fori_loop(start, first_block, one_step, carry)
    carry = jax.lax.fori_loop(0, blocks, block, carry)
    return jax.lax.fori_loop(first_block + blocks * K, stop, one_step, carry)


def _simulate(method, objective, noise, states, keys, record_at, max_norm, first, diverged_at):
    """Every run of the flattened grid ``method`` × ``keys`` from step ``first``, recorded at ``record_at``:
    (states, loss, diverged_at) with leading axes (config, seed, step) ((config, seed) for diverged_at).

    ``states`` (every leaf (config, seed, …)) and ``diverged_at`` (config, seed) are each run's state at step
    ``first``. Traceable; `_simulate_grid` is its compiled form. The loop runs over steps with the whole grid as
    its state, so a step on a `Quadratic` is one matrix product for all runs.
    """
    method = method.astype(states.x.dtype)
    d = states.x.shape[-1]
    block = noise_block_steps(d) if _blocked(noise) else CHECK_EVERY
    engine = _Engine(method, objective, noise, keys, max_norm, block)
    cache = None
    if _blocked(noise):
        cache = (jnp.zeros((keys.shape[0], block, d), states.x.dtype), jnp.asarray(-1, record_at.dtype))
    losses_of = jax.vmap(jax.vmap(objective.loss))

    def segment(carry, bounds):
        state, div, cache = _advance_steps(engine, carry, bounds[0], bounds[1])
        loss = losses_of(state.x)
        div = mark_nonfinite_loss(div, loss, bounds[1])
        return (state, div, cache), (state, loss)

    starts = jnp.concatenate([jnp.reshape(first, (1,)).astype(record_at.dtype), record_at[:-1]])
    diverged_at = jnp.asarray(diverged_at, record_at.dtype)
    (_, diverged_at, _), (recorded, losses) = jax.lax.scan(segment, (states, diverged_at, cache),
                                                            (starts, record_at))
    step_axis_after_grid = lambda a: jnp.moveaxis(a, 0, 2)
    return jax.tree.map(step_axis_after_grid, recorded), step_axis_after_grid(losses), diverged_at


def observed_points(method: AbstractMethod, states, *, grid: bool = False) -> Array:
    """``method.observed`` of states recorded along a step axis: ``(T, …)`` for one run, or ``(config, seed, T, …)``
    for a sweep (``grid=True``, the method flattened to one configuration per entry)."""
    if not grid:
        return jax.vmap(method.observed)(states)
    return jax.vmap(lambda m, s: jax.vmap(jax.vmap(m.observed))(s))(method, states)


def trajectory(method: AbstractMethod, objective: Objective, x0: Array, record_at: Array, *,
               noise: Noise | None = None, key: Array | None = None, v0: Array | None = None,
               max_norm: ArrayLike = jnp.inf) -> Trajectory:
    """One trajectory as a traceable function: no argument checks and no compilation of its own.

    For use inside compiled code (`inertia.order` runs it under ``jit`` for every step size); `run` is the
    checked, compiled entry. Arguments as `run`, except ``x0`` a floating array and ``record_at`` an integer
    array of increasing steps; a key is only needed with a noise model.
    """
    key = jax.random.key(0) if key is None else key
    state = jax.tree.map(lambda a: a[None, None], _start(method, x0, v0))
    states, losses, diverged_at = _simulate(method.flat(), objective, noise, state, key[None], record_at, max_norm,
                                            jnp.zeros((), record_at.dtype), jnp.full((1, 1), -1, record_at.dtype))
    only = lambda a: a[0, 0]
    return Trajectory(record_at, jax.tree.map(only, states), only(losses), only(diverged_at), method)


@eqx.filter_jit
def _initial_states(method, x0, v0, n_seeds: int):
    """Each run's state at step 0: (config, seed, …) for the flattened grid ``method``."""
    states = jax.vmap(_start, (0, None, None))(method, x0, v0)
    return jax.tree.map(lambda a: jnp.broadcast_to(a[:, None], (a.shape[0], n_seeds) + a.shape[1:]), states)


_simulate_grid = eqx.filter_jit(_simulate)


@eqx.filter_jit
def _simulate_sharded(devices, method, objective, noise, states, keys, record_at, max_norm, first, diverged_at):
    """`_simulate` with the configurations split over ``devices`` (`inertia.scaling.over_devices`)."""
    shared, static = eqx.partition((objective, noise), eqx.is_array)

    def on_share(method, shared, states, keys, record_at, first, diverged_at):
        objective, noise = eqx.combine(shared, static)
        return _simulate(method, objective, noise, states, keys, record_at, max_norm, first, diverged_at)

    split = over_devices(on_share, devices, (True, False, True, False, False, False, True))
    return split(method, shared, states, keys, record_at, first, diverged_at)


def _check_key(key) -> None:
    typed = isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()
    legacy = isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,)  # jax.random.PRNGKey
    if not (typed or legacy):
        raise InertiaError(f"key must be one jax.random.key(...); got {type(key).__name__} "
                           f"of shape {getattr(key, 'shape', '?')}")


def _prepare(method, objective, noise, x0, v0, key) -> tuple[Array, Array | None, Array]:
    if not isinstance(method, AbstractMethod):
        raise InertiaError("method must be a method of inertia's stepping protocol (GD, HeavyBall, Nesterov, QHM, "
                           f"Adam, RMSProp, DAL, from_optax(...)); got {type(method).__name__}")
    if not isinstance(objective, Objective):
        raise InertiaError(f"objective must be an inertia Objective; got {type(objective).__name__}")
    if noise is not None and not isinstance(noise, Noise):
        raise InertiaError(f"noise must be an inertia Noise model or None; got {type(noise).__name__}")
    x0 = check_point("x0", x0, objective)
    if v0 is not None:
        require_linear(method, "v0 (the initial velocity x_0 − x_{−1})")
        check_finite("v0", v0)
        v0 = jnp.asarray(v0, x0.dtype)
        if v0.shape != x0.shape:
            raise InertiaError(f"v0 must have the shape of x0 {x0.shape}; got {v0.shape}")
    if noise is not None and key is None:
        raise InertiaError("key is required with a noise model (a jax.random key)")
    if key is not None:
        _check_key(key)
    key = jax.random.key(0) if key is None else key
    return x0, v0, key


def _record_points(steps, record_every, record_at) -> jax.Array:
    at = record_steps(steps, record_every, record_at)
    counter = jax.dtypes.canonicalize_dtype(np.int64)  # int32 unless jax_enable_x64
    if at[-1] > np.iinfo(counter).max:
        raise InertiaError(f"steps must be at most {np.iinfo(counter).max} with {counter} step counters; got {steps} "
                           "(enable jax_enable_x64 for longer runs)")
    return jnp.asarray(at)


#: Work (steps × runs × dimension) above which a simulation goes in segments of about `SEGMENT_SECONDS` each, with a
#: progress bar, so that Ctrl-C stops it within seconds; below it, one call does everything.
SEGMENT_WORK = 2**28
SEGMENT_SECONDS = 0.5
SEGMENT_FIRST_WORK = 2**22  # the first segment's work, before its time is known


def _advance(part, objective, noise, x0, v0, keys, at, max_norm, progress, devices=()):
    """Every run of the configurations `part` × `keys` from step 0, recorded at `at`: (states, loss, diverged_at),
    NumPy arrays with leading axes (config, seed, step) (diverged_at: (config, seed)).

    Long runs go in segments: each call covers at most `budget` steps (adapted to take about `SEGMENT_SECONDS`) and
    at most ``width`` record points, padded by repetition so that every call reuses one compiled program; the state
    pytree at the end of a segment starts the next. With several ``devices``, the configurations (padded by
    repetition to a multiple of their number) are split over them.
    """
    n_real = math.prod(part.shape)
    if len(devices) > 1:
        index = np.minimum(np.arange(-(-n_real // len(devices)) * len(devices)), n_real - 1)
        part = jax.tree.map(lambda p: p[index], part)
        out = _advance_steps_of(functools.partial(_simulate_sharded, tuple(devices)), part, objective, noise, x0, v0,
                                keys, at, max_norm, progress)
        return jax.tree.map(lambda a: a[:n_real], out)
    return _advance_steps_of(_simulate_grid, part, objective, noise, x0, v0, keys, at, max_norm, progress)


def _advance_steps_of(simulate_grid, part, objective, noise, x0, v0, keys, at, max_norm, progress):
    """`_advance` with one compiled form of `_simulate` (on one device, or split over several)."""
    n_configs, n_seeds = math.prod(part.shape), keys.shape[0]
    states = _initial_states(part, x0, v0, n_seeds)
    div = jnp.full((n_configs, n_seeds), -1, at.dtype)
    steps = int(at[-1])
    work = max(1, n_configs * n_seeds * x0.shape[0])
    if steps * work <= SEGMENT_WORK:
        first = jnp.zeros((), at.dtype)
        out = simulate_grid(part, objective, noise, states, keys, at, max_norm, first, div)
        return jax.tree.map(np.asarray, out)
    points = np.asarray(at)
    width = min(len(points), 64)
    budget = max(1, SEGMENT_FIRST_WORK // work)
    pieces, done, step = [], 0, 0
    with tqdm(total=steps, desc="steps", unit="step", unit_scale=True, disable=not progress, leave=False) as bar:
        while done < len(points):
            targets = points[done:done + width]
            targets = targets[targets <= step + budget]
            real = len(targets)
            if real == 0:  # the next record point is beyond this segment: stop in between, record nothing
                targets = np.array([step + budget])
            padded = jnp.asarray(np.pad(targets, (0, width - len(targets)), mode="edge"), at.dtype)
            clock = time.perf_counter()
            first = jnp.asarray(step, at.dtype)  # an array, not a Python int: filter_jit would recompile for each
            recorded, losses, div = simulate_grid(part, objective, noise, states, keys, padded, max_norm, first, div)
            # dispatch is asynchronous: wait for the work before timing it
            states = jax.block_until_ready(jax.tree.map(lambda a: a[:, :, -1], recorded))
            pieces.append(jax.tree.map(lambda a: np.asarray(a[:, :, :real]), (recorded, losses)))
            elapsed = time.perf_counter() - clock
            if step > 0:  # the first call's time includes compiling
                budget = int(np.clip(budget * SEGMENT_SECONDS / max(elapsed, 1e-3), max(1, budget // 4), budget * 4))
            bar.update(int(targets[-1]) - step)
            step, done = int(targets[-1]), done + real
    recorded, losses = jax.tree.map(lambda *a: np.concatenate(a, axis=2), *pieces)
    return recorded, losses, np.asarray(div)


def run(method: AbstractMethod, objective: Objective, x0: ArrayLike, steps: int, *, noise: Noise | None = None,
        key: Array | None = None, record_every: int | None = None, record_at: ArrayLike | Sequence[int] | None = None,
        v0: ArrayLike | None = None, max_norm: float = 1e12, progress: bool = True) -> Trajectory:
    """Run `method` on `objective` from ``x0`` for `steps` steps; record its state, observed point and loss.

    **Arguments:**
    - ``method``: any method of the stepping protocol (`GD`, `HeavyBall`, `Nesterov`, `QHM`, `Adam`, `RMSProp`,
      `DAL`, `from_optax(...)`) with scalar hyper-parameters; use `sweep` for grids.
    - ``objective``, ``x0`` (d,), ``steps`` ≥ 1 (at most 2³¹ − 1 unless ``jax_enable_x64``).
    - ``noise``: a gradient-noise model (then ``key`` is required).
    - ``record_every`` / ``record_at``: a stride (default ``steps // 100``) or a list of steps.
    - ``v0``: for a linear two-step method, the initial velocity ``x_0 − x_{−1}``; zero ("from rest", the
      torch/optax start) by default. Every method starts from rest.
    - ``max_norm``: a run with ``‖x‖ > max_norm``, a non-finite state or gradient (or a non-finite loss at a
      recorded step) is marked diverged.
    - ``progress``: a progress bar, shown only for runs long enough to go in segments (Ctrl-C stops them within
      about a second).

    **Returns:** a `Trajectory`. The canonical form is Kovachki & Stuart (2021) eq. (1.2).
    """
    x0, v0, key = _prepare(method, objective, noise, x0, v0, key)
    if method.shape != ():
        raise InertiaError(f"run takes one method; this one is a grid of shape {method.shape}: use sweep")
    check_positive("max_norm", max_norm)
    at = _record_points(steps, record_every, record_at)
    states, losses, div = _advance(method.flat(), objective, noise, x0, v0, key[None], at, max_norm, progress)
    first = lambda a: jnp.asarray(a[0, 0])
    return Trajectory(at, jax.tree.map(first, states), first(losses), first(div), method)


def sweep(method: AbstractMethod, objective: Objective, x0: ArrayLike, steps: int, *, seeds: int = 1,
          noise: Noise | None = None, key: Array | None = None, record_every: int | None = None,
          record_at: ArrayLike | Sequence[int] | None = None, v0: ArrayLike | None = None, max_norm: float = 1e12,
          path: str | os.PathLike | None = None, chunk_size: int | None = None, force: bool = False,
          progress: bool = True, executor: Any = None, devices: Sequence[Any] | None = None) -> xr.Dataset:
    """Run every configuration of a method grid × `seeds` seeds as one compiled program.

    **Arguments:** as `run`, plus
    - ``method``: hyper-parameters as arrays of one common shape (see `inertia.grid`), flattened to ``config``.
    - ``seeds``: runs per configuration.
    - ``path``: a folder; results are written there atomically, ``chunk_size`` configurations at a time (default:
      a tenth of the grid), and a re-run with the same arguments skips finished chunks (an interrupted run loses
      only the chunk in flight). Each chunk file carries the sweep's fingerprint, its configuration range and
      shapes; one that does not match or cannot be read is recomputed, with one line saying why. A folder whose
      ``manifest.json`` records other arguments (every hyper-parameter of the method among them) is refused,
      naming them; ``force=True`` starts over there.
    - ``executor``: run the chunks as tasks on any `concurrent.futures.Executor` or a Dask ``distributed.Client``
      (docs/scaling.md); the driver writes the store. Results equal the local run's (same key, same chunk size).
    - ``devices``: the devices the configurations of a chunk are split over (`inertia.scaling.over_devices`);
      default: every local device of JAX's default backend, so one CPU or GPU unless more are set up. Results equal
      those on one device to rounding (bit for bit where the device kernels are the same).

    **Returns:** an `xarray.Dataset` with ``x`` and ``observed`` (config, seed, step, dim), the method's other
    state fields shaped like them or one value per step (``velocity`` for the linear methods; ``mu``, ``nu``,
    ``count`` for Adam; see `state_variables`), ``loss`` (config, seed, step), the per-run status ``diverged`` and
    ``diverged_at`` (config, seed; −1 if never), and every hyper-parameter of the method (its ``coords()``: ``h``,
    ``momentum``, ``lookahead`` for the linear methods; ``p``, ``h_max`` for DAL; ``lr``, ``b1``, ``b2``, ``eps`` for
    Adam) as a coordinate per configuration. A diverged run is frozen at its last finite state: summarise with
    ``ds.loss.where(~ds.diverged)``, never average it as a loss. With ``path``, the whole result is also written to
    ``path/sweep.nc`` (netCDF, ``diverged`` as 0/1, the arguments as attributes).
    """
    check_int("seeds", seeds, 1)
    check_positive("max_norm", max_norm)
    if chunk_size is not None:
        check_int("chunk_size", chunk_size, 1)
    x0, v0, key = _prepare(method, objective, noise, x0, v0, key)
    n_configs = math.prod(method.shape)
    if n_configs == 0:
        raise InertiaError(f"method is an empty grid (shape {method.shape}): every axis needs at least one value")
    flat = method.flat()
    keys = jax.random.split(key, seeds)
    at = _record_points(steps, record_every, record_at)
    chunk = n_configs if chunk_size is None and path is None else (chunk_size or max(1, math.ceil(n_configs / 10)))
    starts = range(0, n_configs, chunk)
    names = _saved_names(flat, x0, v0)
    store = None
    if path is not None:
        hyperparameters = {name: np.broadcast_to(np.asarray(value), (n_configs,))
                           for name, value in flat.coords().items()}
        arguments = {"method": method.name, **hyperparameters, "method_definition": flat, "objective": objective,
                     "noise": noise, "x0": x0, "v0": v0, "seeds": seeds, "key": key, "steps": int(steps),
                     "record_at": at, "max_norm": float(max_norm), "chunk_size": chunk, "configs": n_configs,
                     "dtype": str(x0.dtype), "inertia_version": __version__}
        shapes = _chunk_shapes(names, flat, objective, noise, x0, v0, keys, at, max_norm)
        store = Store.open(path, arguments, shapes, force=force)
    parts, todo = _saved_chunks(store, names, starts, chunk, n_configs, progress)
    tasks = [(_configurations(flat, start, chunk, n_configs), objective, noise, x0, v0, keys, at, max_norm)
             for start in todo]
    bar = tqdm(total=len(todo), desc="sweep", unit="chunk", disable=not progress or len(todo) < 2)

    def finish(i, out):
        start = todo[i]
        stop = min(start + chunk, n_configs)
        out = [a[: stop - start] for a in out]  # the last chunk was padded to the common size
        if store is not None:
            store.save(start, stop, dict(zip(names.names, out)))
        parts[start] = out
        bar.update()

    try:
        if executor is None:
            local = resolve_devices(devices)
            for i, task in enumerate(tasks):
                finish(i, _chunk_result(*task, devices=local, progress=progress))
        else:
            run_tasks(executor, _chunk_result, tasks, finish)
    except KeyboardInterrupt:
        if store is not None:
            tqdm.write(f"sweep: interrupted; {len(parts)} of {len(starts)} chunks kept in {store.folder}: run the same "
                       "sweep again to resume", file=sys.stderr)
        raise
    finally:
        bar.close()
    leaves = [np.concatenate(p)[:n_configs] for p in zip(*(parts[start] for start in starts))]
    states = jax.tree.unflatten(names.structure, leaves[:-2])
    losses, div = leaves[-2:]
    ds = _dataset(method, flat, states, losses, div, at, steps, seeds, x0.dtype)
    if store is not None:  # the whole result, for xarray.open_dataset, with the arguments as attributes
        store.write_result(ds)
    return ds


def _dataset(method, flat, states, losses, div, at, steps, seeds, dtype) -> xr.Dataset:
    """The sweep's results as a Dataset (see `sweep`)."""
    n_configs = losses.shape[0]
    observed = np.asarray(observed_points(flat.astype(dtype), states, grid=True))
    coords: dict[str, Any] = {name: ("config", np.broadcast_to(np.asarray(value), (n_configs,)))
                              for name, value in flat.coords().items()}
    coords.update(config=np.arange(n_configs), seed=np.arange(seeds), step=np.asarray(at))
    per_step = ("config", "seed", "step")
    variables = {name: (per_step + ("dim",) * (np.ndim(value) - 3), np.asarray(value))
                 for name, value in state_variables(states).items()}
    return xr.Dataset(
        {"x": (per_step + ("dim",), states.x), "observed": (per_step + ("dim",), observed), **variables,
         "loss": (per_step, losses), "diverged_at": (("config", "seed"), div.astype(np.int32)),
         "diverged": (("config", "seed"), div >= 0)},
        coords=coords, attrs={"method": method.name, "steps": steps, "seeds": seeds},
    )


class _SavedNames(NamedTuple):
    """The names under which a chunk file holds each leaf of the state pytree, then the loss and divergence step."""

    names: tuple[str, ...]
    structure: Any


def _saved_names(flat, x0, v0) -> _SavedNames:
    """Names for the state's leaves from their paths (``x``, ``velocity``, ``opt_state.0.trace``), so that a chunk
    file is readable on its own; ``loss`` and ``diverged_at`` follow."""
    shapes = eqx.filter_eval_shape(_start, jax.tree.map(lambda p: p[0], flat), x0, v0)
    paths, structure = jax.tree_util.tree_flatten_with_path(shapes)
    state = tuple("state" if not path else ".".join(_key_name(k) for k in path) for path, _ in paths)
    names = state + ("loss", "diverged_at")
    if len(set(names)) != len(names):
        raise AssertionError(f"state leaves with clashing names: {names}")  # a method's state to rename
    return _SavedNames(names, structure)


def _key_name(key) -> str:
    for field in ("name", "key", "idx"):  # GetAttrKey, DictKey, SequenceKey
        if hasattr(key, field):
            return str(getattr(key, field))
    return str(key)


def _chunk_shapes(names, flat, objective, noise, x0, v0, keys, at, max_norm) -> dict:
    """The shape of one configuration's block of each saved array, and its dtype, without computing anything."""
    part = jax.tree.map(lambda p: p[:1], flat)
    n_seeds = keys.shape[0]

    def one_configuration():
        states = _initial_states(part, x0, v0, n_seeds)
        div = jnp.full((1, n_seeds), -1, at.dtype)
        return _simulate_grid(part, objective, noise, states, keys, at, max_norm, jnp.zeros((), at.dtype), div)

    leaves = jax.tree.leaves(eqx.filter_eval_shape(one_configuration))
    return {name: (a.shape[1:], np.dtype(a.dtype).str) for name, a in zip(names.names, leaves)}


def _saved_chunks(store, names, starts, chunk, n_configs, progress) -> tuple[dict, list[int]]:
    """The chunks saved in ``store`` (``{start: leaves}``), and the starts of those to compute."""
    saved, todo = {}, []
    for start in starts:
        arrays = None if store is None else store.load(start, min(start + chunk, n_configs))
        if arrays is None:
            todo.append(start)
        else:
            saved[start] = [arrays[name] for name in names.names]
    if saved and progress:
        tqdm.write(f"sweep: resuming: {len(saved)} of {len(starts)} chunks done", file=sys.stderr)
    return saved, todo


def _configurations(flat, start, chunk, n_configs):
    """Configurations ``[start, start + chunk)`` of the flat grid, the last chunk padded by repetition to the common
    size so that every chunk reuses one compiled program."""
    index = np.minimum(np.arange(start, start + chunk), n_configs - 1)
    return jax.tree.map(lambda p: p[index], flat)


def _chunk_result(part, objective, noise, x0, v0, keys, at, max_norm, devices=None, progress=False) -> list:
    """The saved leaves (state leaves, loss, diverged_at) of the configurations ``part``, as NumPy arrays: one task
    of a sweep, run locally or on a worker (where ``devices`` defaults to the worker's own)."""
    devices = resolve_devices(devices)
    return [np.asarray(a) for a in jax.tree.leaves(_advance(part, objective, noise, x0, v0, keys, at, max_norm,
                                                              progress, devices))]
