"""Training 32 MLPs (4 learning rates × 8 seeds) on MNIST-1D: one vectorised program against one after another.

Measured in one run, same model, data, batch size and epochs (compilation excluded: each program runs once before
it is timed; the first-call times are printed); 1 and 2 are the best of 3 calls each, taken in turns (1, 2, 1, 2, …)
so that a change of load during the run weighs on both:

1. inertia: one `inertia.nn.train` call over a grid of 4 learning rates and 8 seeds;
2. the strongest simple alternative: the same compiled loop, one network after another (32 `train` calls of one
   network each, compiled once);
3. the machine's limit: the float32 matrix-multiply rate, measured two ways with `jax.jit`: a large square product
   (the peak) and the training step's own products (batch × 40 × W, batch × W × W, batch × W × 10, forward and
   backward, for 32 networks) alone; achieved GFLOP/s of 1 and 2 are printed against both;
4. extra: the usual way, one jitted optax step per minibatch driven by a Python loop.

Target (issue 14): inertia ≥ 2× the per-network compiled loop (2). Older notes: on a CPU one network's step is
already compute-bound at these sizes and runs its matmuls on both cores, while XLA:CPU runs a batched matmul as a
loop over the batch.

    PYTHONPATH=src python benchmarks/vectorised_training.py [BATCH [WIDTH]]
"""

import functools
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from _timing import limit_line, machine, speedup_line, timed, timed_interleaved
from inertia import HeavyBall
from inertia.nn import MLP, load, train

LRS = [0.01, 0.03, 0.1, 0.3]
SEEDS = 8
EPOCHS = 5
POSITIONAL = [a for a in sys.argv[1:] if not a.startswith("--")]
BATCH = int(POSITIONAL[0]) if len(POSITIONAL) > 0 else 64
WIDTH = int(POSITIONAL[1]) if len(POSITIONAL) > 1 else 100
EXTRA = "--no-python-loop" not in sys.argv  # the per-minibatch Python loop: the slowest line, and not a target
REPEAT = 3  # inertia and the per-network loop: the best of 3 calls each, interleaved (the machine is shared)


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


def flops_per_example(width):
    """Training FLOPs of one example in one step: forward 2·(40W + W² + 10W), backward twice that."""
    return 3 * 2 * (40 * width + width * width + width * 10)


def matmul_limits(steps):
    """float32 GFLOP/s of a 2000² product (the peak), and the time of the training's own products alone:
    for `steps` steps, 32 networks × (forward, two backward) products of each layer at batch BATCH."""
    a = jax.random.normal(jax.random.key(0), (2000, 2000), jnp.float32)
    square = jax.jit(lambda a: a @ a)
    square(a).block_until_ready()
    peak = 2 * 2000**3 / timed(lambda: square(a).block_until_ready(), 3)[0] / 1e9
    n = len(LRS) * SEEDS
    shapes = [(40, WIDTH), (WIDTH, WIDTH), (WIDTH, 10)]
    weights = [jax.random.normal(jax.random.key(1), (n, i, o), jnp.float32) / np.sqrt(i) for i, o in shapes]
    x = jax.random.normal(jax.random.key(2), (n, BATCH, 40), jnp.float32)

    @jax.jit
    def products(x, weights):
        def step(carry, _):  # weights are updated so that XLA cannot fold the weight gradients away
            x, weights = carry
            h, acts = x, []
            for w in weights:  # forward
                acts.append(h)
                h = jnp.einsum("nbi,nio->nbo", h, w)
            g, grads = h, []
            for w, a in zip(reversed(weights), reversed(acts)):  # backward: weight gradient and input gradient
                grads.append(jnp.einsum("nbi,nbo->nio", a, g))
                g = jnp.einsum("nbo,nio->nbi", g, w)
            weights = [w - 1e-6 * dw for w, dw in zip(weights, reversed(grads))]
            return (x + 1e-6 * g, weights), None

        return jax.lax.scan(step, (x, weights), None, length=steps)[0][0]

    products(x, weights).block_until_ready()
    t_products = timed(lambda: products(x, weights).block_until_ready(), 2)[0]
    return peak, t_products


def main():
    data = load("mnist1d")
    model = functools.partial(MLP, 40, 10, width=WIDTH, depth=2)
    key = jax.random.key(0)
    networks = len(LRS) * SEEDS
    print(f"MNIST-1D: {len(data.y_train)} training examples, MLP 40-{WIDTH}-{WIDTH}-10, batch {BATCH}, "
          f"{EPOCHS} epochs, "
          f"{len(LRS)} learning rates × {SEEDS} seeds = {networks} networks, float32; {machine()}")
    first_v = timed(lambda: vectorised(data, model, key))[0]
    first_s = timed(lambda: train(model, HeavyBall.from_practitioner(LRS[0], 0.9), data, key=key, epochs=EPOCHS,
                                  batch_size=BATCH, record_every=EPOCHS, progress=False))[0]
    (t_v, acc_v), (t_s, acc_s) = timed_interleaved([lambda: vectorised(data, model, key),
                                                    lambda: sequential(data, model, key)], REPEAT)
    t_p, acc_p = timed(lambda: python_loop(data, model, key)) if EXTRA else (float("nan"), np.full_like(acc_s, np.nan))
    steps = EPOCHS * (len(data.y_train) // BATCH)
    work = networks * steps * BATCH * flops_per_example(WIDTH)  # training products only; evaluation not counted
    peak, t_products = matmul_limits(steps)
    gflops = lambda t: work / t / 1e9
    print(f"first call (with compilation): vectorised {first_v:.2f} s, one network {first_s:.2f} s")
    print(f"mean final test accuracy per learning rate: vectorised {np.round(acc_v.mean(1), 3)}, "
          f"sequential {np.round(acc_s.mean(1), 3)}, Python loop {np.round(acc_p.mean(1), 3)}")
    print(f"inertia, vectorised (one program, {networks} networks): {t_v:6.2f} s  {gflops(t_v):6.2f} GFLOP/s")
    print(f"one after another, inertia's compiled loop per network: {t_s:6.2f} s  {gflops(t_s):6.2f} GFLOP/s")
    print(f"extra: one after another, jitted optax step per minibatch from Python: {t_p:.2f} s")
    print(f"limit: float32 matmul peak (2000x2000) {peak:.1f} GFLOP/s; the training's own products alone "
          f"({steps} steps, {networks} networks) {t_products:.2f} s, {gflops(t_products):.2f} GFLOP/s")
    print(f"inertia reaches {gflops(t_v) / peak:.0%} of the float32 matmul peak")
    print(speedup_line("the per-network compiled loop", t_v, t_s, 2.0))
    if EXTRA:
        print(speedup_line("the per-step Python loop (extra)", t_v, t_p))
    print(limit_line("the training's matmuls alone", t_v, t_products))


if __name__ == "__main__":
    main()
