"""Time of one `inertia.diagnose` on the built-in ResNet on Fashion-MNIST (issue 16: under 2 minutes on 2 cores).

Trains the ResNet (`inertia.nn.ResNet`, GroupNorm) ``--epochs`` epochs on ``--n-train`` Fashion-MNIST images, then
diagnoses all its parameters at that checkpoint with HB (lr 0.05, momentum 0.9) and prints the process CPU-seconds
and wall seconds of each phase: measure (Lanczos, Hutchinson, per-example gradients and curvatures), predict, check
(the continuations). Compilation is included: a diagnosis is run once. Run from the repository root:

    PYTHONPATH=src python benchmarks/diagnose_time.py [--widths 16,32,64] [--pool 512] [--steps 400] [--replicas 32]
        [--measure-only]
"""

from __future__ import annotations

import argparse
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import inertia as ia
from inertia.diagnose import check, measure, predict
from inertia.nn import ResNet, load, train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", default="16,32,64")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pool", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--measure-only", action="store_true", help="time the measurement alone")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    widths = tuple(int(w) for w in args.widths.split(","))
    data = load("fashion_mnist", n_train=args.n_train, n_test=500)
    factory = functools.partial(ResNet, data.shape, data.n_classes, widths=widths)
    method = ia.HeavyBall.from_practitioner(0.05, 0.9)
    out = train(factory, method, data, key=jax.random.key(0), epochs=args.epochs, batch_size=args.batch_size,
                keep_params=True, progress=False)
    template, static = eqx.partition(factory(key=jax.random.key(0)), eqx.is_inexact_array)
    params = ravel_pytree(template)[1](jnp.asarray(out.final.values[0, 0], jnp.float64))

    def loss(p, batch):
        logits = jax.vmap(eqx.combine(p, static))(batch[0])
        return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, batch[1][:, None], 1)[:, 0])

    pooled = (jnp.asarray(data.x_train[: args.pool], jnp.float64), jnp.asarray(data.y_train[: args.pool]))
    size = ravel_pytree(params)[0].size
    print(f"ResNet widths {widths}: {size} parameters; pool {args.pool}; top_k {args.top_k}; "
          f"continuation {args.replicas} × {args.steps} steps of batch {args.batch_size}")
    clock = [time.process_time(), time.perf_counter()]

    def lap(name: str) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        print(f"{name}: {cpu - clock[0]:.1f} CPU-s, {wall - clock[1]:.1f} s wall")
        clock[:] = [cpu, wall]

    start = list(clock)
    m = measure(loss, params, pooled, batch_size=args.batch_size, key=jax.random.key(1), top_k=args.top_k,
                chunk=args.chunk)
    lap("measure")
    if args.measure_only:
        return
    predicted = predict(method, m)
    lap("predict")
    check(loss, params, pooled, method, m, predicted, key=jax.random.key(2), steps=args.steps,
          replicas=args.replicas)
    lap("check")
    print(f"diagnosis: {time.process_time() - start[0]:.1f} CPU-s, {time.perf_counter() - start[1]:.1f} s wall; "
          f"per-example memory bound chunk × top_k × P × 8 B = {args.chunk * args.top_k * size * 8 / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
