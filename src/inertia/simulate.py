"""Simulation: one trajectory (`run`) or a grid of hyper-parameters × seeds (`sweep`).

Both are one compiled program: a `lax.scan` over recording points, each advancing the method with a
`fori_loop`, under `vmap` over configurations and seeds. Hyper-parameters, objective data and recording
steps are traced values, so a new grid of the same shape reuses the compiled program. A run that
diverges (non-finite iterate, or ``‖x‖ > max_norm``) is frozen at its last finite state and marked with
the step at which it diverged; it never raises and never touches other runs.

Seeds: ``key`` is split into one key per seed, shared by every configuration (common random numbers,
so configurations are compared on the same noise); step ``n`` of a run uses ``fold_in(seed_key, n)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array, ArrayLike
from tqdm.auto import tqdm

from ._checks import InertiaError, check_finite, check_int, check_positive
from .methods import Method
from .noise import Noise
from .objectives import Objective

__all__ = ["Trajectory", "run", "sweep", "record_steps"]


class Trajectory(eqx.Module):
    """A recorded trajectory (leading axes: the grid, for a batch of runs).

    **Fields:** ``steps`` (T,): the recorded step numbers; ``x`` (..., T, d): iterates ``x_n``;
    ``velocity`` (..., T, d): ``x_n − x_{n−1}``; ``loss`` (..., T): ``f(x_n)``; ``diverged_at`` (...): the
    first step whose iterate was non-finite or too large, −1 if none; ``method``.
    """

    steps: Array
    x: Array
    velocity: Array
    loss: Array
    diverged_at: Array
    method: Method

    @property
    def lookahead(self) -> Array:
        """The look-ahead points ``y_n = x_n + a (x_n − x_{n−1})``: practitioner Nesterov's iterates."""
        a = jnp.asarray(self.method.lookahead)
        return self.x + a.reshape(a.shape + (1, 1)) * self.velocity

    @property
    def diverged(self) -> Array:
        return self.diverged_at >= 0


def record_steps(steps: int, record_every: int | None = None, record_at: ArrayLike | None = None) -> np.ndarray:
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


def guarded_step(method: Method, carry, gradient, n, max_norm):
    """Step ``n`` of `method` on ``carry = (x, v, diverged_at)``, keeping the divergence bookkeeping.

    A step whose iterate has ``‖x‖ > max_norm`` (or a NaN/inf) marks the run diverged at ``n + 1`` and freezes it at
    its last finite state; later steps leave it unchanged. Shared by `run`/`sweep` and `inertia.nn.train`.
    """
    x, v, diverged_at = carry
    x_new, v_new = method.step(x, v, gradient)
    # One reduction: a NaN or inf fails the comparison too.
    bad = ~(jnp.sum(x_new * x_new) < max_norm**2)
    diverged_at = jnp.where((diverged_at < 0) & bad, n + 1, diverged_at)
    frozen = diverged_at >= 0
    return jnp.where(frozen, x, x_new), jnp.where(frozen, v, v_new), diverged_at


def _simulate(method, objective, noise, x0, v0, key, record_at, max_norm):
    """One trajectory, traceable: returns (x, v, loss) at `record_at` and the divergence step."""
    method = jax.tree.map(lambda p: jnp.asarray(p, x0.dtype), method)

    def body(n, carry):
        if noise is None:
            gradient = objective.grad
        else:
            gradient = lambda y: noise.gradient(objective, y, key=jax.random.fold_in(key, n))
        return guarded_step(method, carry, gradient, n, max_norm)

    def segment(carry, bounds):
        carry = jax.lax.fori_loop(bounds[0], bounds[1], body, carry)
        return carry, (carry[0], carry[1], objective.loss(carry[0]))

    starts = jnp.concatenate([jnp.zeros(1, record_at.dtype), record_at[:-1]])
    init = (x0, v0, jnp.asarray(-1, record_at.dtype))
    (_, _, diverged_at), (xs, vs, losses) = jax.lax.scan(segment, init, (starts, record_at))
    return xs, vs, losses, diverged_at


@eqx.filter_jit
def _simulate_grid(method, objective, noise, x0, v0, keys, record_at, max_norm):
    over_seeds = jax.vmap(_simulate, (None, None, None, None, None, 0, None, None))
    over_configs = jax.vmap(over_seeds, (0, None, None, None, None, None, None, None))
    return over_configs(method, objective, noise, x0, v0, keys, record_at, max_norm)


def _prepare(method, objective, noise, x0, v0, key):
    if not isinstance(method, Method):
        raise InertiaError(f"method must be an inertia Method (GD, HeavyBall, Nesterov, DAL); got {type(method).__name__}")
    if not isinstance(objective, Objective):
        raise InertiaError(f"objective must be an inertia Objective; got {type(objective).__name__}")
    if noise is not None and not isinstance(noise, Noise):
        raise InertiaError(f"noise must be an inertia Noise model or None; got {type(noise).__name__}")
    x0 = jnp.asarray(x0)
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        x0 = x0.astype(jnp.result_type(float))
    if x0.ndim != 1:
        raise InertiaError(f"x0 must be a vector of shape (d,); got shape {x0.shape}")
    check_finite("x0", x0)
    v0 = jnp.zeros_like(x0) if v0 is None else jnp.asarray(v0, x0.dtype)
    if v0.shape != x0.shape:
        raise InertiaError(f"v0 must have the shape of x0 {x0.shape}; got {v0.shape}")
    check_finite("v0", v0)
    if noise is not None and key is None:
        raise InertiaError("key is required with a noise model (a jax.random key)")
    key = jax.random.key(0) if key is None else key
    return x0, v0, key


def run(method: Method, objective: Objective, x0: ArrayLike, steps: int, *, noise: Noise | None = None,
        key: Array | None = None, record_every: int | None = None, record_at: ArrayLike | None = None,
        v0: ArrayLike | None = None, max_norm: float = 1e12) -> Trajectory:
    """Run `method` on `objective` from ``x0`` for `steps` steps; record ``x``, ``x_n − x_{n−1}`` and the loss.

    **Arguments:**
    - ``method``: a `GD`, `HeavyBall` or `Nesterov` (scalar hyper-parameters; use `sweep` for grids).
    - ``objective``, ``x0`` (d,), ``steps`` ≥ 1.
    - ``noise``: a gradient-noise model (then ``key`` is required).
    - ``record_every`` / ``record_at``: a stride (default ``steps // 100``) or a list of steps.
    - ``v0``: the initial velocity ``x_0 − x_{−1}``; zero ("from rest", the torch/optax start) by default.
    - ``max_norm``: a run with ``‖x‖ > max_norm`` (or a non-finite iterate) is marked diverged.

    **Returns:** a `Trajectory`. The canonical form is Kovachki & Stuart (2021) eq. (1.2).
    """
    if method.shape != ():
        raise InertiaError(f"run takes one method; this one is a grid of shape {method.shape}: use sweep")
    x0, v0, key = _prepare(method, objective, noise, x0, v0, key)
    check_positive("max_norm", max_norm)
    at = jnp.asarray(record_steps(steps, record_every, record_at))
    batched = jax.tree.map(lambda p: jnp.reshape(p, (1,)), method)
    xs, vs, losses, div = _simulate_grid(batched, objective, noise, x0, v0, key[None], at, max_norm)
    return Trajectory(at, xs[0, 0], vs[0, 0], losses[0, 0], div[0, 0], method)


def _fingerprint(*parts) -> str:
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(parts):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        digest.update(np.asarray(leaf).tobytes() if hasattr(leaf, "shape") else repr(leaf).encode())
    digest.update(repr(jax.tree_util.tree_structure(parts)).encode())
    return digest.hexdigest()[:16]


def _write_atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_store(path: Path, fingerprint: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    manifest = path / "manifest.json"
    if manifest.exists():
        found = json.loads(manifest.read_text()).get("fingerprint")
        if found != fingerprint:
            raise InertiaError(f"path {path} holds a different sweep (fingerprint {found}); choose another path")
    else:
        _write_atomic(manifest, lambda h: h.write(json.dumps({"fingerprint": fingerprint}).encode()))


def sweep(method: Method, objective: Objective, x0: ArrayLike, steps: int, *, seeds: int = 1,
          noise: Noise | None = None, key: Array | None = None, record_every: int | None = None,
          record_at: ArrayLike | None = None, v0: ArrayLike | None = None, max_norm: float = 1e12,
          path: str | os.PathLike | None = None, chunk_size: int | None = None,
          progress: bool = True) -> xr.Dataset:
    """Run every configuration of a method grid × `seeds` seeds as one compiled program.

    **Arguments:** as `run`, plus
    - ``method``: hyper-parameters as arrays of one common shape (see `inertia.grid`), flattened to ``config``.
    - ``seeds``: runs per configuration.
    - ``path``: a folder; results are written there atomically, ``chunk_size`` configurations at a time,
      and a re-run with the same arguments skips finished chunks (an interrupted run loses only the chunk
      in flight). A folder holding a different sweep is refused.

    **Returns:** an `xarray.Dataset` with ``x``, ``velocity`` (config, seed, step, dim), ``loss``
    (config, seed, step), the per-run status ``diverged`` and ``diverged_at`` (config, seed; −1 if never), and
    coordinates ``h``, ``momentum``, ``lookahead`` per configuration. With ``path``, the whole result is also
    written to ``path/sweep.nc`` (netCDF, ``diverged`` as 0/1).
    """
    check_int("seeds", seeds, 1)
    check_positive("max_norm", max_norm)
    x0, v0, key = _prepare(method, objective, noise, x0, v0, key)
    shape = method.shape
    n_configs = math.prod(shape)
    flat = jax.tree.map(lambda p: jnp.broadcast_to(p, shape).reshape(-1), method)
    keys = jax.random.split(key, seeds)
    at = jnp.asarray(record_steps(steps, record_every, record_at))
    chunk = n_configs if chunk_size is None and path is None else (chunk_size or max(1, math.ceil(n_configs / 10)))
    check_int("chunk_size", chunk, 1)
    store = None if path is None else Path(path)
    if store is not None:
        _open_store(store, _fingerprint(flat, objective, noise, x0, v0, keys, at, max_norm, chunk))

    parts = []
    starts = range(0, n_configs, chunk)
    for start in tqdm(starts, desc="sweep", unit="chunk", disable=not progress or len(starts) == 1):
        parts.append(_chunk(flat, objective, noise, x0, v0, keys, at, max_norm, start, chunk, n_configs, store))
    xs, vs, losses, div = (np.concatenate(p)[:n_configs] for p in zip(*parts))
    coords = {name: ("config", np.asarray(getattr(flat, name))) for name in ("h", "momentum", "lookahead")}
    coords.update(config=np.arange(n_configs), seed=np.arange(seeds), step=np.asarray(at))
    ds = xr.Dataset(
        {"x": (("config", "seed", "step", "dim"), xs), "velocity": (("config", "seed", "step", "dim"), vs),
         "loss": (("config", "seed", "step"), losses), "diverged_at": (("config", "seed"), div.astype(np.int32)),
         "diverged": (("config", "seed"), div >= 0)},
        coords=coords, attrs={"method": type(method).__name__, "steps": steps},
    )
    if store is not None:  # the whole result, for xarray.open_dataset
        _write_atomic(store / "sweep.nc", lambda h: h.write(ds.assign(diverged=ds.diverged.astype(np.int8)).to_netcdf()))
    return ds


def _chunk(flat, objective, noise, x0, v0, keys, at, max_norm, start, chunk, n_configs, store):
    file = None if store is None else store / f"chunk_{start:08d}.npz"
    if file is not None and file.exists():
        with np.load(file) as saved:
            return saved["x"], saved["v"], saved["loss"], saved["div"]
    # Pad the last chunk to the common size, so every chunk reuses one compiled program.
    index = np.minimum(np.arange(start, start + chunk), n_configs - 1)
    part = jax.tree.map(lambda p: p[index], flat)
    out = [np.asarray(a) for a in _simulate_grid(part, objective, noise, x0, v0, keys, at, max_norm)]
    if file is not None:
        _write_atomic(file, lambda h: np.savez(h, x=out[0], v=out[1], loss=out[2], div=out[3]))
    return out
