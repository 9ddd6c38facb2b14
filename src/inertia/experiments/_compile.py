"""Compiling a claim's one-off programs cheaply.

A claim's vectorised training run is compiled once and run once; for small networks XLA's optimising passes then cost
more than they save (the MNIST GAN of `gan_mnist`: 9 s of compilation and 0.9 s of running at the default level,
2 s and 2.2 s at level 0, CPU-seconds on a loaded 2-core machine).
"""

from __future__ import annotations

from typing import Callable

import jax

_OPTIONS: dict[str, str | bool] = {"xla_backend_optimization_level": "0"}


def run_once(fn: Callable, *args):
    """``jax.jit(fn)(*args)`` compiled at XLA's backend optimisation level 0 (every argument is traced)."""
    return jax.jit(fn).lower(*args).compile(compiler_options=_OPTIONS)(*args)
