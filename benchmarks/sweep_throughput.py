"""Benchmark: `inertia.sweep` against a NumPy loop (and torch.optim.SGD if installed), float64.

Heavy ball on a d = 100 quadratic, 64 learning rates × 10,000 steps. Achieved GFLOP/s are compared with this
machine's float64 matrix-multiply rate, measured in the same run. Targets (issue 2): sweep ≥ 10× the NumPy loop,
and ≥ 40% of the matmul rate. Run: python benchmarks/sweep_throughput.py [--steps N]
"""

from __future__ import annotations

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from inertia import HeavyBall, Quadratic, sweep  # noqa: E402
from _timing import timed  # noqa: E402

D, CONFIGS, MOMENTUM = 100, 64, 0.9


def problem(seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    H = (Q * np.linspace(0.01, 1.0, D)) @ Q.T
    return (H + H.T) / 2, rng.normal(size=D), np.linspace(0.01, 3.0, CONFIGS)


def flops(steps):
    return CONFIGS * steps * (2 * D * D + 5 * D)  # one matvec and five vector operations per step


def matmul_rate():
    n = 1500
    a, b = np.random.default_rng(1).normal(size=(2, n, n))
    return 2 * n**3 / timed(lambda: a @ b, 5)[0] / 1e9


def numpy_loop(H, x0, lrs, steps):
    out = []
    for lr in lrs:
        x, v = x0.copy(), np.zeros_like(x0)
        for _ in range(steps):
            v = MOMENTUM * v - lr * (H @ x)
            x = x + v
        out.append(x)
    return np.array(out)


def torch_loop(H, x0, lrs, steps):
    import torch

    Ht = torch.tensor(H)
    params = [torch.tensor(x0, requires_grad=True) for _ in lrs]
    optims = [torch.optim.SGD([p], lr=float(lr), momentum=MOMENTUM) for p, lr in zip(params, lrs)]
    for _ in range(steps):
        for p, opt in zip(params, optims):
            opt.zero_grad()
            p.grad = Ht @ p.detach()
            opt.step()
    return np.array([p.detach().numpy() for p in params])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    steps = parser.parse_args().steps
    H, x0, lrs = problem()
    method, f = HeavyBall(lrs, MOMENTUM), Quadratic(H)
    run_sweep = lambda: sweep(method, f, x0, steps, record_at=[steps], progress=False).x.values
    run_sweep()  # compile
    t_sweep = timed(run_sweep)[0]
    numpy_steps = max(steps // 10, 100)  # the NumPy loop is timed on fewer steps and scaled: it is linear in steps
    t_numpy = timed(lambda: numpy_loop(H, x0, lrs, numpy_steps), 1)[0] * steps / numpy_steps
    check = numpy_loop(H, x0, lrs[:4], 50)
    assert np.allclose(sweep(HeavyBall(lrs[:4], MOMENTUM), f, x0, 50, record_at=[50], progress=False).x.values[:, 0, -1], check)
    peak = matmul_rate()
    rate = flops(steps) / t_sweep / 1e9
    print(f"heavy ball, d={D}, {CONFIGS} learning rates x {steps} steps, float64")
    print(f"sweep:      {t_sweep:8.3f} s  {rate:7.2f} GFLOP/s")
    print(f"numpy loop: {t_numpy:8.3f} s  {flops(steps) / t_numpy / 1e9:7.2f} GFLOP/s (timed on {numpy_steps} steps, scaled)")
    try:
        import torch  # noqa: F401

        torch_steps = max(steps // 20, 50)
        t_torch = timed(lambda: torch_loop(H, x0, lrs, torch_steps), 1)[0] * steps / torch_steps
        print(f"torch loop: {t_torch:8.3f} s  (timed on {torch_steps} steps, scaled); sweep speed-up {t_torch / t_sweep:.1f}x")
    except ImportError:
        print("torch loop: skipped (torch is not installed)")
    print(f"float64 matmul rate of this machine: {peak:.2f} GFLOP/s")
    print(f"ratio sweep / numpy loop: {t_numpy / t_sweep:.1f}x (target >= 10x)")
    print(f"ratio sweep / matmul rate: {rate / peak:.1%} (target >= 40%)")


if __name__ == "__main__":
    main()
