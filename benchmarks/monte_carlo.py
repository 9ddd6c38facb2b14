"""Speed of the stochastic machinery, baselines measured in the same run.

1. Monte Carlo: 4000 chains × 4000 steps of heavy ball with Gaussian noise in d = 2, `inertia.sweep`
   (after compilation) against a NumPy loop vectorised over chains. Target: under 2 s.
2. `inertia.stationary.covariance` at d = 100, 300, 1000 (C commuting with H, and not), against SciPy's
   dense `solve_discrete_lyapunov` on the 2d × 2d state (Bartels–Stewart on the Schur form) where it is affordable.
3. The scanned Euler–Maruyama of `inertia.sde.simulate` against diffrax (Euler, UnsafeBrownianPath).

Run: PYTHONPATH=src python benchmarks/monte_carlo.py
"""

import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np
import scipy.linalg

import inertia
from inertia import stationary as st
from _timing import timed  # noqa: E402


def monte_carlo(chains=4000, steps=4000):
    K = np.array([[1.0, 0.3], [0.3, 0.2]])
    C = np.array([[0.5, -0.2], [-0.2, 1.0]])
    method = inertia.HeavyBall.from_practitioner(0.5, 0.9)
    times = {}
    for dtype in (np.float32, np.float64):  # simulations run in the dtype of x0 (float32 is JAX's default)
        args = (method, inertia.Quadratic(jax.numpy.asarray(K, dtype)), np.zeros(2, dtype), steps)
        kw = dict(seeds=chains, noise=inertia.Gaussian(jax.numpy.asarray(C, dtype)), record_at=[steps], progress=False)
        first, _ = timed(lambda: inertia.sweep(*args, key=jax.random.key(0), **kw))
        times[dtype], ds = timed(lambda: inertia.sweep(*args, key=jax.random.key(1), **kw), repeat=2)
        print(f"inertia.sweep {chains} chains × {steps} steps, d = 2, {np.dtype(dtype).name}: {times[dtype]:.3f} s "
              f"after compilation (first call {first:.2f} s); Tr Σ = {np.mean(np.sum(ds.x.values[0, :, -1] ** 2, 1)):.4f}")

    def numpy_loop():
        rng = np.random.default_rng(0)
        L = np.linalg.cholesky(C)
        x, v = np.zeros((chains, 2)), np.zeros((chains, 2))
        for _ in range(steps):
            g = x @ K + rng.standard_normal((chains, 2)) @ L.T
            v = 0.9 * v - 0.5 * g
            x = x + v
        return x

    numpy_time, x_np = timed(numpy_loop)
    exact = np.trace(st.covariance(method, K, C).parameters)
    print(f"NumPy loop (vectorised over chains, float64): {numpy_time:.3f} s; Tr Σ = {np.mean(np.sum(x_np ** 2, 1)):.4f}; "
          f"exact {exact:.4f}")
    return times[np.float32], times[np.float64], numpy_time


def covariance_timings():
    rng = np.random.default_rng(0)
    method = inertia.HeavyBall(0.5, 0.9)
    rows = []
    for d in (100, 300, 1000):
        Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        k = rng.uniform(0.1, 1.0, d)
        H = (Q * k) @ Q.T
        C_comm = (Q * rng.uniform(0.1, 1.0, d)) @ Q.T
        C_full = np.cov(rng.normal(size=(d, 2 * d)))
        t_comm, _ = timed(lambda: st.covariance(method, H, C_comm))
        t_full, out = timed(lambda: st.covariance(method, H, C_full))
        t_dense = np.nan
        if d <= 300:
            A, B = st.state_space(method, H)
            t_dense, dense = timed(lambda: scipy.linalg.solve_discrete_lyapunov(A, B @ C_full @ B.T))
            err = np.abs(dense[:d, :d] - out.parameters).max() / np.abs(dense[:d, :d]).max()
            print(f"  d = {d}: eigenbasis vs dense SciPy agree to {err:.1e}")
        rows.append((d, t_comm, t_full, t_dense))
        print(f"covariance d = {d:4d}: commuting C {t_comm:.3f} s, non-commuting C {t_full:.3f} s, "
              f"SciPy dense Lyapunov {t_dense:.3f} s")
    return rows


def sde_solvers(paths=4000, steps=1000):
    """The order-1 SME on a 2-D quadratic: `inertia.sde.simulate` (scanned Euler–Maruyama) against diffrax's
    Euler with an `UnsafeBrownianPath` (its fastest fixed-step option), same step and path count."""
    import diffrax
    import jax.numpy as jnp

    from inertia import sde

    K = np.array([[1.0, 0.3], [0.3, 0.2]])
    C = np.array([[0.5, -0.2], [-0.2, 1.0]])
    model = sde.SME(0.1, C)
    objective = inertia.Quadratic(K)
    x0, T = np.ones(2), 10.0
    dt = T / steps
    run = lambda key: np.asarray(sde.simulate(model, objective, x0, T, dt=dt, paths=paths, key=key))
    run(jax.random.key(0))
    t_em, x_em = timed(lambda: run(jax.random.key(1)), repeat=2)

    G = jnp.asarray(model.diffusion_factor(2))

    @jax.jit
    def solve(keys):
        def one(key):
            bm = diffrax.UnsafeBrownianPath(shape=(2,), key=key)
            terms = diffrax.MultiTerm(diffrax.ODETerm(lambda t, y, a: model.drift(objective, y)),
                                      diffrax.ControlTerm(lambda t, y, a: G, bm))
            return diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, T, dt, jnp.asarray(x0), max_steps=steps + 2,
                                       adjoint=diffrax.ForwardMode()).ys[-1]

        return jax.vmap(one)(keys)

    solve(jax.random.split(jax.random.key(0), paths)).block_until_ready()
    t_dfx, x_dfx = timed(lambda: np.asarray(solve(jax.random.split(jax.random.key(1), paths))), repeat=2)
    exact = np.trace(sde.gaussian_moments(model, K, x0, [T])[1][0])
    print(f"SME, {paths} paths × {steps} Euler–Maruyama steps: inertia.sde.simulate {t_em:.3f} s, diffrax {t_dfx:.3f} s; "
          f"Tr Cov: {np.trace(np.cov(x_em.T)):.4f} / {np.trace(np.cov(x_dfx.T)):.4f} (exact {exact:.4f})")
    return t_em, t_dfx


if __name__ == "__main__":
    t32, t64, numpy_time = monte_carlo()
    rows = covariance_timings()
    t_em, t_dfx = sde_solvers()
    print()
    print(f"monte carlo 4000x4000 d=2: float32 {t32:.3f} s, float64 {t64:.3f} s (target < 2 s); "
          f"NumPy-loop/inertia time ratio {numpy_time / t32:.2f} (float32), {numpy_time / t64:.2f} (float64)")
    for d, t_comm, t_full, t_dense in rows:
        ratio = f"; SciPy-dense/inertia ratio {t_dense / t_full:.1f}" if np.isfinite(t_dense) else ""
        print(f"covariance d={d}: {t_full:.3f} s non-commuting, {t_comm:.3f} s commuting{ratio}")
    print(f"SDE Euler–Maruyama: diffrax/inertia time ratio {t_dfx / t_em:.2f}")
