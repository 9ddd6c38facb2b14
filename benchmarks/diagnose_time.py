"""Time of one `inertia.diagnose` on the built-in ResNet on Fashion-MNIST (issue 16: under 2 minutes on 2 cores).

Trains the ResNet (`inertia.nn.ResNet`, GroupNorm; default widths 16, 32, 64: 77,754 parameters) ``--epochs`` epochs
on ``--n-train`` Fashion-MNIST images (the checkpoint; not part of the diagnosis), then diagnoses all its parameters
at that checkpoint with HB (lr 0.05, momentum 0.9), with the defaults of `inertia diagnose`, and prints, per phase,
the process CPU-seconds and wall seconds (compilation included: a diagnosis runs once), the wall seconds XLA spent
compiling, the accuracy of each measurement (Lanczos residuals, Hutchinson and Monte Carlo standard errors) and the
peak resident memory. Run from the repository root:

    PYTHONPATH=src python benchmarks/diagnose_time.py [--widths 16,32,64] [--pool 128] [--steps 60] [--replicas 8]
        [--measure-only]
"""

from __future__ import annotations

import argparse
import functools
import resource
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import inertia as ia
from inertia.diagnose import diagnose
from inertia.nn import ResNet, load, train


def _compile_clock() -> list[float]:
    """Wall seconds of XLA backend compilation, summed (jax.monitoring's compile-duration events)."""
    total = [0.0]

    def listen(event: str, seconds: float, **_) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            total[0] += seconds

    jax.monitoring.register_event_duration_secs_listener(listen)
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", default="16,32,64")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pool", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=16, help="Lanczos steps")
    parser.add_argument("--probes", type=int, default=10, help="Hutchinson probes")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--stability-steps", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--precision", default="float32", choices=("float32", "float64"))
    parser.add_argument("--measure-only", action="store_true", help="time the measurement alone")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    compiling = _compile_clock()
    widths = tuple(int(w) for w in args.widths.split(","))
    data = load("fashion_mnist", n_train=args.n_train, n_test=500)
    factory = functools.partial(ResNet, data.shape, data.n_classes, widths=widths)
    method = ia.HeavyBall.from_practitioner(0.05, 0.9)
    start = time.process_time(), time.perf_counter()
    out = train(factory, method, data, key=jax.random.key(0), epochs=args.epochs, batch_size=args.batch_size,
                keep_params=True, progress=False)
    print(f"checkpoint ({args.epochs} epoch(s) on {args.n_train} images, not part of the diagnosis): "
          f"{time.process_time() - start[0]:.1f} CPU-s, {time.perf_counter() - start[1]:.1f} s wall")
    template, static = eqx.partition(factory(key=jax.random.key(0)), eqx.is_inexact_array)
    dtype = jnp.dtype(args.precision)
    params = ravel_pytree(template)[1](jnp.asarray(out.final.values[0, 0], dtype))

    def loss(p, batch):
        logits = jax.vmap(eqx.combine(p, static))(batch[0])
        return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, batch[1][:, None], 1)[:, 0])

    pooled = (jnp.asarray(data.x_train[: args.pool], dtype), jnp.asarray(data.y_train[: args.pool]))
    size = ravel_pytree(params)[0].size
    print(f"ResNet widths {widths}: {size} parameters; pool {args.pool}; top_k {args.top_k}; Lanczos "
          f"{args.iterations}; Hutchinson {args.probes}; continuation {args.replicas} × {args.steps} steps of batch "
          f"{args.batch_size}; stability {args.stability_steps} full-batch steps; {args.precision}")
    compiling[0] = 0.0
    start = time.process_time(), time.perf_counter()
    d = diagnose(loss, params, pooled, method, batch_size=args.batch_size, key=jax.random.key(1), top_k=args.top_k,
                 steps=args.steps, replicas=args.replicas, stability_steps=args.stability_steps,
                 flow_steps=0,  # as `inertia diagnose` above 20,000 parameters (cli/_diagnose.FLOW_PARAMETERS)
                 run_checks=not args.measure_only, iterations=args.iterations, hutchinson_samples=args.probes,
                 chunk=args.chunk)
    cpu, wall = time.process_time() - start[0], time.perf_counter() - start[1]
    for name, t in d.timings.items():
        print(f"  {name}: {t['cpu_s']:.1f} CPU-s, {t['wall_s']:.1f} s wall")
    print(f"diagnosis: {cpu:.1f} CPU-s, {wall:.1f} s wall, of which XLA compilation {compiling[0]:.1f} s wall; "
          f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    m = d.measured
    print(f"sharpness {m['top_eigenvalues'][0]:.5g}; top eigenvalues {np.round(m['top_eigenvalues'], 5)}; Lanczos "
          f"residuals ‖Hu−μu‖ {np.array2string(m['eigen_residuals'], precision=2)}; tr H {m['hessian_trace']:.4g} ± "
          f"{m['hessian_trace_se']:.2g}; tr F {m['noise_trace_per_example']:.4g} ± {m['noise_trace_se']:.2g}")
    excess = d.checked.get("stationary", {}).get("excess_loss")
    if excess:
        print(f"stationary excess loss (top directions) measured {excess['measured']:.4g} ± {excess['se']:.2g} "
              f"(Monte Carlo SE over {args.replicas} replicas), predicted {excess['predicted']:.4g}; near a minimum: "
              f"{d.predicted['stationary']['near_minimum']}")


if __name__ == "__main__":
    main()
