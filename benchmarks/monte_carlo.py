"""Speed of the stochastic machinery, baselines and limits measured in the same run.

1. Monte Carlo: 4000 chains × 4000 steps of heavy ball with Gaussian noise in d = 2, float32 and float64:
   - inertia: `inertia.sweep(..., seeds=4000, noise=Gaussian(C))` after compilation;
   - the strongest simple alternative: NumPy vectorised over chains, in the same dtype (the faster of default and
     one BLAS thread);
   - the limit: the time to draw the same 32 million normals alone with the generator inertia uses (JAX's default,
     drawn in blocks of 100 steps × all chains inside a `lax.scan`), and, for NumPy's loop, NumPy's own generator;
   - a diagnostic: the noise drawn exactly as the sweep draws it (per seed, in blocks; `inertia.Gaussian.sample`).
   Targets (issue 14): ≥ 1.25× NumPy in float32, ≥ 1× in float64, within 1.3× of the RNG limit.
2. `inertia.stationary.covariance` at d = 100, 300, 1000 (C commuting with H, and not), against SciPy's
   dense `solve_discrete_lyapunov` on the 2d × 2d state (Bartels–Stewart on the Schur form) where it is affordable.
3. The scanned Euler–Maruyama of `inertia.sde.simulate` against diffrax (Euler, UnsafeBrownianPath).

Run: PYTHONPATH=src python benchmarks/monte_carlo.py [--monte-carlo-only]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

import inertia
from _timing import cpu_ratio, machine, speedup_line, timed, timed_numpy
from inertia import stationary as st
from inertia.simulate import noise_block_steps

jax.config.update("jax_enable_x64", True)

CHAINS, STEPS, BLOCK = 4000, 4000, 100
K = np.array([[1.0, 0.3], [0.3, 0.2]])
C = np.array([[0.5, -0.2], [-0.2, 1.0]])
LR, MOMENTUM = 0.5, 0.9


def trace_sigma(x):
    return float(np.mean(np.sum(np.asarray(x, np.float64) ** 2, 1)))


def inertia_sweep(dtype):
    method = inertia.HeavyBall.from_practitioner(LR, MOMENTUM)
    args = (method, inertia.Quadratic(jnp.asarray(K, dtype)), np.zeros(2, dtype), STEPS)
    kw = {"seeds": CHAINS, "noise": inertia.Gaussian(jnp.asarray(C, dtype)), "record_at": [STEPS], "progress": False}
    first, _ = timed(lambda: inertia.sweep(*args, key=jax.random.key(0), **kw).x.values)
    t, x = timed(lambda: inertia.sweep(*args, key=jax.random.key(1), **kw).x.values[0, :, -1], repeat=2)
    return first, t, x


def numpy_vectorised(dtype, steps=STEPS):
    rng = np.random.default_rng(0)
    Kd, Lt = K.astype(dtype), np.linalg.cholesky(C).T.astype(dtype)
    x, v = np.zeros((CHAINS, 2), dtype), np.zeros((CHAINS, 2), dtype)
    for _ in range(steps):
        g = x @ Kd + rng.standard_normal((CHAINS, 2), dtype=dtype) @ Lt
        v = dtype(MOMENTUM) * v - dtype(LR) * g
        x += v
    return x


def numpy_normals(dtype):
    rng = np.random.default_rng(0)
    total = np.zeros((CHAINS, 2), dtype)
    for _ in range(STEPS):
        total += rng.standard_normal((CHAINS, 2), dtype=dtype)
    return total


def jax_normals_in_blocks(dtype):
    """All chains' normals for BLOCK steps at once, one key per block: the generator's rate at this size."""

    @jax.jit
    def draw(key):
        def block(total, b):
            z = jax.random.normal(jax.random.fold_in(key, b), (BLOCK, CHAINS, 2), dtype)
            return total + z.sum(0), None

        return jax.lax.scan(block, jnp.zeros((CHAINS, 2), dtype), jnp.arange(STEPS // BLOCK))[0]

    return draw


def jax_noise_per_seed_block(dtype):
    """The noise exactly as the sweep draws it: per seed, blocks of ``noise_block_steps(d)`` steps from
    ``fold_in(seed_key, block)``, times the factor of C (`inertia.Gaussian.sample`)."""
    noise, steps = inertia.Gaussian(jnp.asarray(C, dtype)), noise_block_steps(2)

    @jax.jit
    def draw(keys):
        def block(total, b):
            xi = jax.vmap(lambda k: noise.sample(jax.random.fold_in(k, b), (steps, 2), dtype))(keys)
            return total + xi.sum(1), None

        return jax.lax.scan(block, jnp.zeros((CHAINS, 2), dtype), jnp.arange(-(-STEPS // steps)))[0]

    return draw


def monte_carlo_row(dtype, exact):
    """inertia, NumPy vectorised over chains and the RNG limits in one dtype; prints them, returns the times."""
    name = np.dtype(dtype).name
    first, t_inertia, x_inertia = inertia_sweep(dtype)
    t_numpy, threads, x_numpy = timed_numpy(lambda: numpy_vectorised(dtype), repeat=2,
                                            probe=lambda: numpy_vectorised(dtype, STEPS // 10))
    blocks = jax_normals_in_blocks(dtype)
    np.asarray(blocks(jax.random.key(0)))
    t_rng = timed(lambda: np.asarray(blocks(jax.random.key(1))), repeat=2)[0]
    per_seed = jax_noise_per_seed_block(dtype)
    keys = jax.random.split(jax.random.key(0), CHAINS)
    np.asarray(per_seed(keys))
    t_seed = timed(lambda: np.asarray(per_seed(keys)), repeat=2)[0]
    t_np_rng = timed(lambda: numpy_normals(dtype), repeat=2)[0]
    print(f"{name}: inertia.sweep {t_inertia:.3f} s (cpu {t_inertia.cpu:.3f}; first call {first:.2f} s), "
          f"Tr Σ = {trace_sigma(x_inertia):.4f}; NumPy vectorised over chains {t_numpy:.3f} s (cpu {t_numpy.cpu:.3f}; "
          f"BLAS threads: {threads}), Tr Σ = {trace_sigma(x_numpy):.4f}; exact {exact:.4f}")
    print(f"{name}: limit, {CHAINS * STEPS * 2 / 1e6:.0f} M normals alone: JAX default generator in blocks of "
          f"{BLOCK} steps {t_rng:.3f} s (cpu {t_rng.cpu:.3f}); NumPy's generator per step {t_np_rng:.3f} s; "
          f"diagnostic, the noise exactly as the sweep draws it (per seed, blocks of {noise_block_steps(2)} steps, "
          f"times the factor of C) {t_seed:.3f} s (cpu {t_seed.cpu:.3f})")
    return t_inertia, t_numpy, t_rng


def monte_carlo():
    exact = np.trace(st.covariance(inertia.HeavyBall.from_practitioner(LR, MOMENTUM), K, C).parameters)
    # simulations run in the dtype of x0 (float32 is JAX's default)
    return {np.dtype(dtype).name: monte_carlo_row(dtype, exact) for dtype in (np.float32, np.float64)}


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

    from inertia import sde

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
    print(f"SME, {paths} paths × {steps} Euler–Maruyama steps: inertia.sde.simulate {t_em:.3f} s, "
          f"diffrax {t_dfx:.3f} s; "
          f"Tr Cov: {np.trace(np.cov(x_em.T)):.4f} / {np.trace(np.cov(x_dfx.T)):.4f} (exact {exact:.4f})")
    return t_em, t_dfx


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--monte-carlo-only", action="store_true", help="skip the covariance and SDE timings")
    only = parser.parse_args().monte_carlo_only
    print(f"Monte Carlo, {CHAINS} chains × {STEPS} steps, d = 2; {machine()}")
    rows = monte_carlo()
    if not only:
        for d, t_comm, t_full, t_dense in covariance_timings():
            ratio = f"; SciPy-dense/inertia ratio {t_dense / t_full:.1f}" if np.isfinite(t_dense) else ""
            print(f"covariance d={d}: {t_full:.3f} s non-commuting, {t_comm:.3f} s commuting{ratio}")
        t_em, t_dfx = sde_solvers()
        print(f"SDE Euler–Maruyama: diffrax/inertia time ratio {t_dfx / t_em:.2f}")
    for (name, (t_inertia, t_numpy, t_rng)), target in zip(rows.items(), (1.25, 1.0)):
        print(speedup_line(f"NumPy vectorised over chains, {name}", t_inertia, t_numpy, target))
        within = t_inertia / t_rng
        print(f"RATIO inertia vs the RNG limit, {name}: {within:.2f}x the time to draw its normals alone "
              f"(target <= 1.3x, {'met' if within <= 1.3 else 'NOT met'}{cpu_ratio(t_inertia, t_rng)})")


if __name__ == "__main__":
    main()
