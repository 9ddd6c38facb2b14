"""Benchmark: a heavy-ball sweep, d = 100, 64 learning rates × 10,000 steps, float64, all measured in one run.

- inertia: `inertia.sweep(HeavyBall(lrs, 0.9), Quadratic(H), x0, steps, record_at=[steps])`;
- the strongest simple alternatives: NumPy vectorised over configurations (``V = βV − L*(X@H); X += V``; the
  faster of default and one BLAS thread, see `_timing.timed_numpy`) and a
  hand-written `jax.lax.scan` in matrix form;
- the machine's limit for this shape: the step's matrix product (64×100 @ 100×100, float64) repeated `steps`
  times alone, the fastest of NumPy (default or one BLAS thread) and a `lax.scan` (an orthogonal matrix keeps the
  iterate away from denormals);
- extra line: the old Python loop over configurations (timed on fewer steps and scaled).

With ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` set (as `run_all.py` does for its second run), JAX sees
two CPU devices: inertia splits the 64 configurations over them, and the hand-written scan is timed both on one
device and split over both with ``jax.shard_map`` (then the strongest alternative).

Targets (issue 14): inertia ≥ 1.5× NumPy vectorised, and ≥ 60% of the matmul limit.
Run: PYTHONPATH=src python benchmarks/sweep_throughput.py [--steps N] [--repeat R]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from _timing import limit_line, machine, speedup_line, timed, timed_numpy
from inertia import HeavyBall, Quadratic, sweep

jax.config.update("jax_enable_x64", True)

D, CONFIGS, MOMENTUM = 100, 64, 0.9


def problem(seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    H = (Q * np.linspace(0.01, 1.0, D)) @ Q.T
    return (H + H.T) / 2, rng.normal(size=D), np.linspace(0.01, 3.0, CONFIGS), Q


def flops(steps):
    return CONFIGS * steps * (2 * D * D + 5 * D)  # one matvec and five vector operations per step


def numpy_vectorised(H, x0, lrs, steps):
    X, V, L = np.tile(x0, (len(lrs), 1)), np.zeros((len(lrs), D)), lrs[:, None]
    for _ in range(steps):
        V = MOMENTUM * V - L * (X @ H)
        X += V
    return X


def jax_scan(steps, guarded=False):
    """The hand-written scan; ``guarded`` adds a per-step divergence check like the sweep's (a diagnostic of
    what that check costs: ‖x‖² and finiteness of the new state, and a frozen copy for diverged rows)."""

    @jax.jit
    def run(H, x0, lrs):
        def step(carry, _):
            X, V = carry
            V_new = MOMENTUM * V - lrs[:, None] * (X @ H)
            X_new = X + V_new
            if not guarded:
                return (X_new, V_new), None
            ok = (jnp.sum(X_new * X_new, 1) < 1e24) & jnp.all(jnp.isfinite(X_new), 1) & jnp.all(jnp.isfinite(V_new), 1)
            return (jnp.where(ok[:, None], X_new, X), jnp.where(ok[:, None], V_new, V)), None

        X0 = jnp.tile(x0, (len(lrs), 1))
        return jax.lax.scan(step, (X0, jnp.zeros_like(X0)), None, length=steps)[0][0]

    return run


def jax_scan_split(steps):
    """The hand-written scan with the configurations split over every device (``jax.shard_map``, 1-D mesh)."""
    plain = jax_scan(steps)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("config",))
    P = jax.sharding.PartitionSpec
    return jax.jit(jax.shard_map(plain, mesh=mesh, in_specs=(P(), P(), P("config")), out_specs=P("config"),
                                 check_vma=False))


def numpy_loop(H, x0, lrs, steps):
    out = []
    for lr in lrs:
        x, v = x0.copy(), np.zeros_like(x0)
        for _ in range(steps):
            v = MOMENTUM * v - lr * (H @ x)
            x = x + v
        out.append(x)
    return np.array(out)


def matmul_limit(Q, steps, repeat):
    """The step's core operation alone: X ← X @ Q, 64×100 @ 100×100, `steps` times (NumPy and lax.scan)."""
    X = np.random.default_rng(2).normal(size=(CONFIGS, D))

    def numpy_matmuls(n):
        Y = X
        for _ in range(n):
            Y = Y @ Q
        return Y

    scan = jax.jit(lambda X, Q: jax.lax.scan(lambda Y, _: (Y @ Q, None), X, None, length=steps)[0])
    np.asarray(scan(X, Q))
    t_np = timed_numpy(lambda: numpy_matmuls(steps), repeat, probe=lambda: numpy_matmuls(steps // 10))[0]
    t_jax = timed(lambda: np.asarray(scan(X, Q)), repeat)[0]
    return t_np, t_jax


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R timings for each way")
    args = parser.parse_args()
    steps, repeat = args.steps, args.repeat
    H, x0, lrs, Q = problem()
    print(f"heavy ball, d={D}, {CONFIGS} learning rates x {steps} steps, float64; {machine()}")

    method, f = HeavyBall(lrs, MOMENTUM), Quadratic(H)
    run_sweep = lambda: sweep(method, f, x0, steps, record_at=[steps], progress=False).x.values[:, 0, -1]
    run_sweep()  # compile
    t_inertia, x_inertia = timed(run_sweep, repeat)
    t_numpy, threads, x_numpy = timed_numpy(lambda: numpy_vectorised(H, x0, lrs, steps), repeat,
                                            probe=lambda: numpy_vectorised(H, x0, lrs, steps // 10))
    scan = jax_scan(steps)
    scan(H, x0, lrs).block_until_ready()
    t_scan, x_scan = timed(lambda: np.asarray(scan(H, x0, lrs)), repeat)
    finite = np.all(np.isfinite(x_numpy), axis=1)  # the largest rates diverge; inertia freezes those runs
    assert np.allclose(x_inertia[finite], x_numpy[finite]) and np.allclose(x_scan[finite], x_numpy[finite])
    t_split = None
    if jax.device_count() > 1:
        split = jax_scan_split(steps)
        split(H, x0, lrs).block_until_ready()
        t_split, x_split = timed(lambda: np.asarray(split(H, x0, lrs)), repeat)
        assert np.allclose(x_split[finite], x_numpy[finite])
    guarded = jax_scan(steps, guarded=True)
    guarded(H, x0, lrs).block_until_ready()
    t_guarded = timed(lambda: np.asarray(guarded(H, x0, lrs)), repeat)[0]
    t_mm_np, t_mm_jax = matmul_limit(Q, steps, repeat)
    t_limit = min(t_mm_np, t_mm_jax)
    loop_steps = max(steps // 10, 100)  # the per-configuration loop is linear in steps: timed on fewer, scaled
    t_loop = timed_numpy(lambda: numpy_loop(H, x0, lrs, loop_steps))[0] * steps / loop_steps

    gflops = lambda t: flops(steps) / t / 1e9
    cpu = lambda t: f"(cpu {t.cpu:.3f} s)"
    print(f"devices: {jax.device_count()} ({jax.devices()[0].platform}); inertia splits the configurations over all")
    print(f"inertia.sweep:                          {t_inertia:8.3f} s  {gflops(t_inertia):6.2f} GFLOP/s "
          f"{cpu(t_inertia)}")
    print(f"NumPy vectorised over configurations:   {t_numpy:8.3f} s  {gflops(t_numpy):6.2f} GFLOP/s {cpu(t_numpy)} "
          f"(BLAS threads: {threads}, the faster)")
    print(f"hand-written lax.scan, matrix form:     {t_scan:8.3f} s  {gflops(t_scan):6.2f} GFLOP/s {cpu(t_scan)}")
    if t_split is not None:
        print(f"the same scan split over {jax.device_count()} devices:     {t_split:8.3f} s  "
              f"{gflops(t_split):6.2f} GFLOP/s {cpu(t_split)}")
    print(f"diagnostic: the same scan with a per-step divergence check: {t_guarded:.3f} s")
    print(f"limit: 64x100x100 matmul x {steps} alone: NumPy {t_mm_np:.3f} s, lax.scan {t_mm_jax:.3f} s "
          f"({2 * CONFIGS * D * D * steps / t_limit / 1e9:.2f} GFLOP/s)")
    print(f"extra: Python loop over configurations: {t_loop:8.3f} s  (timed on {loop_steps} steps, scaled)")
    print(speedup_line("NumPy vectorised", t_inertia, t_numpy, 1.5))
    print(speedup_line("lax.scan (matrix form)", t_inertia, t_scan))
    if t_split is not None:
        print(speedup_line(f"lax.scan split over {jax.device_count()} devices", t_inertia, t_split))
    print(limit_line("the matmul limit", t_inertia, t_limit, 0.6))


if __name__ == "__main__":
    main()
