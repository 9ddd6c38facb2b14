"""Training 32 MLPs (4 learning rates × 8 seeds) on MNIST-1D: one vectorised program against one after another.

Three ways, same model, data, batch size and epochs, all measured in this run:

1. vectorised: one `inertia.nn.train` call over a grid of 4 learning rates and 8 seeds;
2. one after another with the same compiled loop: 32 `train` calls of one network each (compiled once);
3. one after another the usual way: a jitted optax step per minibatch, driven by a Python loop.

Compilation is excluded (each program runs once before it is timed; the first-call times are printed).
The target (≥ 5×) is met against the usual way (3): 5.6× on 2 idle cores, 8.3× on 2 busy ones. It is NOT
met against (2): 0.8× idle, 1.5–2× busy. On a CPU one network's step is already compute-bound at these
sizes and runs its matmuls on both cores, while XLA:CPU runs a batched matmul as a loop over the batch. On an
accelerator the 32 networks would run side by side (not measured: no accelerator here).

    PYTHONPATH=src python benchmarks/vectorised_training.py [BATCH [WIDTH]]
"""

import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from inertia import HeavyBall
from inertia.nn import MLP, load, train

import sys

LRS = [0.01, 0.03, 0.1, 0.3]
SEEDS = 8
EPOCHS = 5
BATCH = int(sys.argv[1]) if len(sys.argv) > 1 else 64
WIDTH = int(sys.argv[2]) if len(sys.argv) > 2 else 100


def vectorised(data, model, key):
    out = train(model, HeavyBall.from_practitioner(np.asarray(LRS), np.full(len(LRS), 0.9)), data, key=key,
                epochs=EPOCHS, batch_size=BATCH, seeds=SEEDS, record_every=EPOCHS, progress=False)
    return out.test_accuracy.values[:, :, -1]


def sequential(data, model, key):
    accuracy = np.zeros((len(LRS), SEEDS))
    for i, lr in enumerate(LRS):
        for s, seed_key in enumerate(jax.random.split(key, SEEDS)):
            out = train(model, HeavyBall.from_practitioner(lr, 0.9), data, key=seed_key, epochs=EPOCHS,
                        batch_size=BATCH, seeds=1, record_every=EPOCHS, progress=False)
            accuracy[i, s] = out.test_accuracy.values[0, 0, -1]
    return accuracy


def python_loop(data, model, key):
    """The usual way: one jitted optax step per minibatch, driven from Python, one network after another."""
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    accuracy = np.zeros((len(LRS), SEEDS))
    steps = len(y) // BATCH
    for i, lr in enumerate(LRS):
        opt = optax.sgd(lr, momentum=0.9)
        for s, seed_key in enumerate(jax.random.split(key, SEEDS)):
            params, static = eqx.partition(model(key=jax.random.fold_in(seed_key, 0)), eqx.is_inexact_array)
            state = opt.init(params)
            rng = np.random.default_rng(s)
            for _ in range(EPOCHS):
                order = rng.permutation(len(y))[: steps * BATCH].reshape(steps, BATCH)
                for batch in order:
                    params, state = _optax_step(params, state, static, opt, x[batch], y[batch])
            logits = jax.vmap(eqx.combine(params, static))(jnp.asarray(data.x_test))
            accuracy[i, s] = float(jnp.mean(jnp.argmax(logits, -1) == data.y_test))
    return accuracy


@eqx.filter_jit
def _optax_step(params, state, static, opt, xb, yb):
    def loss(p):
        logits = jax.vmap(eqx.combine(p, static))(xb)
        return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(len(yb)), yb])

    updates, state = opt.update(jax.grad(loss)(params), state)
    return optax.apply_updates(params, updates), state


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main():
    data = load("mnist1d")
    model = functools.partial(MLP, 40, 10, width=WIDTH, depth=2)
    key = jax.random.key(0)
    print(f"MNIST-1D: {len(data.y_train)} training examples, MLP 40-{WIDTH}-{WIDTH}-10, batch {BATCH}, {EPOCHS} epochs, "
          f"{len(LRS)} learning rates × {SEEDS} seeds = {len(LRS) * SEEDS} networks")
    _, first_v = timed(vectorised, data, model, key)
    acc_v, t_v = timed(vectorised, data, model, key)
    _, first_s = timed(train, model, HeavyBall.from_practitioner(LRS[0], 0.9), data, key=key, epochs=EPOCHS,
                       batch_size=BATCH, record_every=EPOCHS, progress=False)
    acc_s, t_s = timed(sequential, data, model, key)
    acc_p, t_p = timed(python_loop, data, model, key)
    print(f"first call (with compilation): vectorised {first_v:.2f} s, one network {first_s:.2f} s")
    print(f"mean final test accuracy per learning rate: vectorised {np.round(acc_v.mean(1), 3)}, "
          f"sequential {np.round(acc_s.mean(1), 3)}, Python loop {np.round(acc_p.mean(1), 3)}")
    print(f"vectorised (one program, 32 networks): {t_v:.2f} s")
    print(f"one after another, inertia's compiled loop per network: {t_s:.2f} s")
    print(f"one after another, jitted optax step per minibatch from Python: {t_p:.2f} s")
    print(f"speed-up over the per-network compiled loop: {t_s / t_v:.1f}x")
    print(f"speed-up over the per-step Python loop: {t_p / t_v:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
