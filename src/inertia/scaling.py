"""Scaling a sweep out: over the devices of one machine, and over the machines of a cluster.

- **Devices.** `over_devices` runs a traceable function of a grid on a 1-D mesh of devices (``jax.sharding``),
  each device taking an equal share of the configuration axis (``jax.shard_map``: every device runs the whole
  program on its share, with no communication). `inertia.sweep` does so when JAX sees more than one device: several
  GPUs, or CPU host devices asked for with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX is
  imported). Nothing here changes JAX's configuration.
- **Executors.** `run_tasks` farms tasks out to any `concurrent.futures.Executor`, or to a Dask
  ``distributed.Client`` (through its ``get_executor()``). The arguments travel as NumPy arrays (random keys as
  their key data) and each task runs under the driver's ``jax_enable_x64`` setting, so that a worker computes
  exactly what the driver would: the same compiled program on the same inputs.

See docs/scaling.md.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Sequence

import jax
import numpy as np

__all__ = ["resolve_devices", "over_devices", "run_tasks"]

AXIS = "config"


def resolve_devices(devices: Sequence[Any] | None) -> tuple:
    """The devices a grid is split over: ``devices`` as given, or every local device of JAX's default backend."""
    return tuple(jax.local_devices() if devices is None else devices)


def over_devices(fn: Callable, devices: Sequence[Any], grid_args: Sequence[bool]) -> Callable:
    """``fn`` run on a 1-D mesh of ``devices``: the arguments flagged in ``grid_args`` (and every output) split along
    their leading (configuration) axis, whose length must be a multiple of ``len(devices)``; the other arguments
    copied to every device. Each device runs ``fn`` on its share alone (``jax.shard_map``, no collectives), so the
    results are those of ``fn`` on each share."""
    mesh = jax.sharding.Mesh(np.asarray(devices), (AXIS,))
    split, copied = jax.sharding.PartitionSpec(AXIS), jax.sharding.PartitionSpec()
    specs = tuple(split if flag else copied for flag in grid_args)
    # check_vma=False: the loops start from constants (no divergence yet, empty noise blocks) that become
    # per-device values; with no collectives there is nothing for the check to protect.
    return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=split, check_vma=False)


# ------------------------------------------------------------------------------------------------- executors


class _Key:
    """A typed random key array in transit: its key data and the name of its implementation."""

    def __init__(self, keys):
        self.data = np.asarray(jax.random.key_data(keys))
        self.impl = str(jax.random.key_impl(keys))

    def restore(self):
        return jax.random.wrap_key_data(jax.numpy.asarray(self.data), impl=self.impl)


def _is_key(leaf) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _portable(tree):
    """``tree`` with its JAX arrays as NumPy arrays and its typed keys as `_Key`, for pickling to another process."""
    leaf = lambda a: _Key(a) if _is_key(a) else np.asarray(a) if isinstance(a, jax.Array) else a
    return jax.tree.map(leaf, tree)


def _restored(tree):
    leaf = lambda a: a.restore() if isinstance(a, _Key) else jax.numpy.asarray(a) if isinstance(a, np.ndarray) else a
    return jax.tree.map(leaf, tree)


def _call(x64: bool, fn: Callable, arguments):
    """``fn(*arguments)`` on a worker, under the driver's ``jax_enable_x64`` setting."""
    with jax.enable_x64(x64):
        return fn(*_restored(arguments))


def run_tasks(executor, fn: Callable, tasks: Sequence[tuple], on_result: Callable[[int, Any], None]) -> None:
    """``fn(*tasks[i])`` for every ``i`` on ``executor``; ``on_result(i, result)`` on the driver as each finishes.

    **Arguments:** ``executor``: a `concurrent.futures.Executor` (threads or processes) or a Dask
    ``distributed.Client``; ``fn``: a module-level function (workers import it); ``tasks``: the arguments of each
    call. On an error or Ctrl-C the tasks not yet started are cancelled and the error is raised.
    """
    pool = executor.get_executor() if hasattr(executor, "get_executor") else executor  # Dask's Client
    x64 = bool(jax.config.read("jax_enable_x64"))
    futures = {pool.submit(_call, x64, fn, _portable(task)): i for i, task in enumerate(tasks)}
    try:
        for future in concurrent.futures.as_completed(futures):
            on_result(futures[future], future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        raise
