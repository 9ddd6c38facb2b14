"""Stochastic modified equations (SDEs) of SGD, and their weak errors measured against the discrete methods.

SGD with learning rate ``η`` and gradient noise of covariance ``Σ`` is modelled, in time ``t = kη``, by

- `SME` order 1: ``dX = −∇f dt + √η Σ^{1/2} dW`` (Li, Tai & E 2017/2019; docs/theory.md §3.4);
- `SME` order 2: ``dX = −∇(f + (η/4)|∇f|²) dt + √η Σ^{1/2} dW``.

For momentum (docs/theory.md marks the momentum SME [open]) this module exposes only what was measured:
`SME.for_method` builds, for heavy ball/Nesterov with ``(h, λ)``, the order-1 SME of SGD at the effective
learning rate ``η = h/(1−λ)`` (time ``t = k·h/(1−λ)``); its weak order, measured in tests/test_sde.py and the
claim ``sde-weak-order``, is 1. Its order-2 drift is refused for momentum: started from rest (the torch/optax
start) even the noiseless part keeps an ``O(h)`` time lag, and the measured order of that combination is 1
for heavy ball and Nesterov at β ∈ {0.1, 0.3, 0.5, 0.7, 0.9}, except Nesterov at β = 0.5, where the
O(h) terms happen to cancel (measured order 2.16 without noise).

The weak error of a method against a model is measured exactly on quadratics (`weak_error`, both laws are
Gaussian with moments in closed form: `inertia.stationary.moments` for the method, the OU transient for the
SDE) and by coupled Monte Carlo on any objective (`coupled_weak_error`: the method's noise is the sum of the
SDE's Brownian increments; scanned Euler–Maruyama, Richardson-extrapolated). Measured on the non-convex
``f = x²/2 + sin(2x)/2``: local orders 0.95 (order 1), 2.05 (order 2, η = 0.005 → 0.0025), 0.97 (heavy ball,
β = 0.5). A scanned Euler–Maruyama is used rather than diffrax: the SDEs here have additive noise and fixed steps,
and the coupling needs the method's and the SDE's increments from one array; it is also 1.3–2.2× faster than
diffrax's Euler with an `UnsafeBrownianPath` (4000 paths × 1000 steps, benchmarks/monte_carlo.py).
SVAG (`inertia.noise.SVAG`) with learning rate ``η/ℓ`` converges to the order-1 SME as ``ℓ → ∞``.
Between two discrete methods (SGDM against SGD at the matched rate, Wang et al. 2024), `coupled_weak_differences`
measures ``E φ(x^a) − E φ(x^b)`` with the same noise draw at each step of both (claim ``wang-weak-approximation``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._checks import InertiaError, check_int, check_positive
from ._linalg import psd_sqrt
from .methods import Method, effective_lr, require_linear
from .noise import Noise
from .objectives import Objective
from .simulate import sweep
from .stationary import _matrix
from .stationary import moments as method_moments

__all__ = ["SME", "simulate", "gaussian_moments", "weak_error"]


class SME(eqx.Module):
    """The stochastic modified equation of SGD with learning rate ``lr`` and noise covariance ``noise_cov``.

    **Arguments:** ``lr``: ``η > 0``; ``noise_cov``: ``Σ`` as ``(d, d)``, ``(d,)`` diagonal or scalar;
    ``order``: 1 (``−∇f`` drift) or 2 (``−∇(f + η|∇f|²/4)`` drift) (Li, Tai & E, JMLR 2019, Thms 3 and 4).
    Time is ``t = k·lr``.
    """

    lr: float
    noise_cov: np.ndarray
    order: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        check_positive("lr", self.lr)
        if self.order not in (1, 2):
            raise InertiaError(f"order must be 1 or 2; got {self.order}")

    @classmethod
    def for_method(cls, method: Method, noise_cov, order: int = 1) -> "SME":
        """The SME of `method`: SGD's with ``η = h/(1−λ)`` (time ``t = k·η``).

        For momentum only ``order = 1`` is offered: weak order 1 was measured (tests/test_sde.py); an order-2
        drift with the effective learning rate still measures order 1 from rest, so it is refused.
        """
        method = require_linear(method, "SME.for_method")
        h, lam = float(method.h), float(method.momentum)
        if lam != 0 and order != 1:
            raise InertiaError("for momentum methods only the order-1 SME is offered: the measured weak order of "
                               "the order-2 drift at the effective learning rate is 1 (docs/stochastic.md)")
        return cls(h / (1 - lam), noise_cov, order)

    def drift(self, objective: Objective, x):
        g = objective.grad(x)
        return -g if self.order == 1 else -(g + 0.5 * self.lr * objective.hvp(x, g))

    def diffusion_factor(self, d: int) -> np.ndarray:
        """``√η Σ^{1/2}`` as a ``(d, d)`` matrix."""
        return np.sqrt(self.lr) * psd_sqrt("noise_cov", _matrix("noise_cov", self.noise_cov, d))

    def linear_drift(self, H) -> np.ndarray:
        """``M`` with drift ``−M x`` on the quadratic ``½xᵀHx``: ``H`` (order 1) or ``H + (η/2)H²`` (order 2)."""
        H = _matrix("H", H, None)
        return H if self.order == 1 else H + 0.5 * self.lr * H @ H


def gaussian_moments(model: SME, H, x0, times):
    """Exact mean and covariance of the SDE on ``½xᵀHx`` (a linear SDE, drift ``−Mx``) at each time in `times`.

    With ``M = V diag(m) Vᵀ`` and ``Q = Vᵀ GGᵀ V``: ``m(t) = e^{−Mt} x₀`` and
    ``Cov(t) = V [Q_ij (1 − e^{−(m_i+m_j)t}) / (m_i + m_j)] Vᵀ`` (the OU transient, solved in the eigenbasis so
    that it stays stable at long times).
    """
    M = model.linear_drift(H)
    m, V = np.linalg.eigh(M)
    G = model.diffusion_factor(M.shape[0])
    Q = V.T @ G @ G.T @ V
    rates = m[:, None] + m[None, :]
    x0 = V.T @ np.asarray(x0, float)
    means, covs = [], []
    for t in np.atleast_1d(np.asarray(times, dtype=float)):
        means.append(V @ (np.exp(-m * t) * x0))
        grown = np.where(np.abs(rates * t) < 1e-12, t, -np.expm1(-rates * t) / np.where(rates == 0, 1, rates))
        cov = V @ (Q * grown) @ V.T
        covs.append((cov + cov.T) / 2)
    return np.array(means), np.array(covs)


def weak_error(method: Method, model: SME, H, C, x0, steps: int, *, test: str = "loss",
               time: float | None = None) -> float:
    """``|E φ(x_N) − E φ(X_T)|`` of `method` against `model` on ``½xᵀHx`` with noise covariance ``C``, exactly.

    ``T = N·h/(1−λ)``, the method's time (so SVAG with ``GD(η/ℓ)`` for ``Nℓ`` steps reaches ``T = Nη``), unless
    ``time`` gives another; ``φ`` is the loss ``½xᵀHx`` (``test="loss"``) or ``|x|²`` (``test="norm"``). Both laws
    are Gaussian with exact moments, so there is no sampling error.
    """
    method = require_linear(method, "sde.weak_error")
    check_int("steps", steps, 1)
    H = _matrix("H", H, None)
    m_n, c_n = method_moments(method, H, C, x0, steps)
    m_t, c_t = gaussian_moments(model, H, x0, [steps * float(effective_lr(method)) if time is None else time])
    W = H / 2 if test == "loss" else np.eye(H.shape[0])
    expect = lambda m, c: float(m @ W @ m + np.sum(W * c))
    return abs(expect(m_n[-1], c_n[-1]) - expect(m_t[0], c_t[0]))


@eqx.filter_jit
def _euler_maruyama(model, objective, factor, x0, dt, n_steps, keys):
    def path(key):
        def step(x, n):
            dw = jax.random.normal(jax.random.fold_in(key, n), x.shape, x.dtype) * jnp.sqrt(dt)
            return x + model.drift(objective, x) * dt + factor @ dw, None

        return jax.lax.scan(step, x0, jnp.arange(n_steps))[0]

    return jax.vmap(path)(keys)


def simulate(model: SME, objective: Objective, x0, time: float, *, dt: float, paths: int, key) -> jax.Array:
    """``X_T`` of `paths` independent solutions by Euler–Maruyama (weak order 1 in ``dt``), one compiled
    ``lax.scan`` under ``vmap``. **Returns:** ``(paths, d)``."""
    check_positive("time", time)
    check_positive("dt", dt)
    check_int("paths", paths, 1)
    x0 = jnp.asarray(x0, dtype=jnp.result_type(float))
    n_steps = int(round(time / dt))
    factor = jnp.asarray(model.diffusion_factor(x0.shape[0]), x0.dtype)
    return _euler_maruyama(model, objective, factor, x0, jnp.asarray(time / n_steps, x0.dtype), n_steps,
                           jax.random.split(key, paths))


class WeakError(eqx.Module):
    """A Monte Carlo weak error ``E φ(method) − E φ(SDE)`` with its standard error (paired samples)."""

    error: float
    stderr: float
    method_mean: float
    sde_mean: float


@eqx.filter_jit
def _coupled(method, model, objective, factor, x0, n_steps, substeps, dt_step, keys, test):
    d = x0.shape[0]

    def path(key):
        def sde_steps(x, increments):
            def em(y, dw):
                return y + model.drift(objective, y) * (dt_step / increments.shape[0]) + factor @ dw, None

            return jax.lax.scan(em, x, increments)[0]

        def step(carry, n):
            x, v, fine, coarse = carry
            dw = jax.random.normal(jax.random.fold_in(key, n), (substeps, d), x0.dtype) * jnp.sqrt(dt_step / substeps)
            z = dw.sum(0) / jnp.sqrt(dt_step)  # the method's N(0, I) noise is the sum of the SDE's increments
            # ξ = −L z (LLᵀ = C): the step subtracts h·ξ, so the sign makes the method's displacement +η L z,
            # the same as the SDE's √η L ΔW over the step (ξ is symmetric, so its law is unchanged).
            noise = -factor @ z / jnp.sqrt(model.lr)
            x, v = method.step((x, v), lambda y: objective.grad(y) + noise, 0)
            fine = sde_steps(fine, dw)
            coarse = sde_steps(coarse, dw.reshape(substeps // 2, 2, d).sum(1))
            return (x, v, fine, coarse), None

        init = (x0, jnp.zeros_like(x0), x0, x0)
        x, _, fine, coarse = jax.lax.scan(step, init, jnp.arange(n_steps))[0]
        return test(x), test(fine), test(coarse)

    return jax.vmap(path)(keys)


def coupled_weak_error(method: Method, model: SME, objective: Objective, x0, steps: int, *, paths: int,
                       substeps: int = 16, key, test=None) -> WeakError:
    """Weak error of `method` (with Gaussian gradient noise of the model's covariance) against `model` on any
    objective, by Monte Carlo with shared randomness.

    Each method step draws its noise as the sum of the ``substeps`` Brownian increments that drive the SDE over
    the same time ``h/(1−λ)``, so the two are strongly coupled and the paired difference has a small variance.
    The SDE is solved by Euler–Maruyama with ``substeps`` and ``substeps/2`` steps per method step on the same
    path, and Richardson-extrapolated (``2E_fine − E_coarse``) to remove its O(dt) bias.

    **Arguments:** ``test``: the test function ``φ`` (default: the objective's loss); others as `weak_error`.
    **Returns:** a `WeakError` (``error = E φ(x_N) − E φ(X_T)``, ``T = N·h/(1−λ)``).
    """
    method = require_linear(method, "sde.coupled_weak_error")
    check_int("steps", steps, 1)
    check_int("paths", paths, 2)
    if substeps < 2 or substeps % 2:
        raise InertiaError(f"substeps must be an even integer >= 2; got {substeps}")
    x0 = jnp.asarray(x0, dtype=jnp.result_type(float))
    lr = float(effective_lr(method))
    if abs(lr - model.lr) > 1e-12 * lr:
        raise InertiaError(f"the model's learning rate {model.lr:g} must equal the method's effective rate {lr:g}")
    factor = jnp.asarray(model.diffusion_factor(x0.shape[0]), x0.dtype)
    method = jax.tree.map(lambda p: jnp.asarray(p, x0.dtype), method)
    test = objective.loss if test is None else test
    phis = _coupled(method, model, objective, factor, x0, steps, substeps, jnp.asarray(lr, x0.dtype),
                    jax.random.split(key, paths), test)
    phi_m, phi_f, phi_c = (np.asarray(a) for a in phis)
    reference = 2 * phi_f - phi_c
    diff = phi_m - reference
    return WeakError(float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(paths)), float(phi_m.mean()),
                     float(reference.mean()))


def coupled_weak_differences(method: Method, objective: Objective, x0, steps: int, *, noise: Noise, paths: int, key,
                             tests: dict, pairs: list[tuple[int, int]]) -> dict:
    """``E φ(x_N^a) − E φ(x_N^b)`` for pairs ``(a, b)`` of configurations of a method grid, by Monte Carlo with common
    random numbers, with its standard error.

    Every configuration runs the same `paths` chains: chain ``j`` of every configuration has the key ``k_j`` and step
    ``n`` draws the same noise from it in every configuration (`inertia.sweep`), so the runs are coupled step by step
    and the paired difference ``φ(x_N^a) − φ(x_N^b)`` has a far smaller variance than two independent means.

    **Arguments:** ``method``: a grid of configurations (array hyper-parameters); ``objective``, ``x0``, ``steps``;
    ``noise``: the gradient-noise model; ``paths``: chains per configuration (>= 2); ``key``; ``tests``:
    ``{name: φ}``, each a JAX function of one point; ``pairs``: the configuration indices to compare.

    **Returns:** ``{name: {"difference": (P,), "stderr": (P,)}}`` over the ``P`` pairs.
    """
    check_int("paths", paths, 2)
    n_configs = int(np.prod(method.shape))
    if not pairs or any(not 0 <= i < n_configs for pair in pairs for i in pair):
        raise InertiaError(f"pairs must hold configuration indices in [0, {n_configs}); got {pairs}")
    ds = sweep(method, objective, x0, steps, seeds=paths, noise=noise, key=key, record_at=[steps], progress=False)
    final = jnp.asarray(ds.x.values[:, :, -1, :])
    a, b = (np.array([p[i] for p in pairs]) for i in (0, 1))
    out = {}
    for name, phi in tests.items():
        values = np.asarray(jax.vmap(jax.vmap(phi))(final))
        diff = values[a] - values[b]
        out[name] = {"difference": diff.mean(1), "stderr": diff.std(1, ddof=1) / np.sqrt(paths)}
    return out


__all__ += ["coupled_weak_error", "WeakError", "coupled_weak_differences"]
