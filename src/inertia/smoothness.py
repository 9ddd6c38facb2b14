"""Smoothness regularisers, each usable with any method of the stepping protocol (Rosca's thesis, part II).

- `spectral_norm`: the largest singular value ``σ(W)`` by power iteration, as Miyato et al. (ICLR 2018, Alg. 1)
  compute it: ``v ← Wᵀu/‖Wᵀu‖, u ← Wv/‖Wv‖, σ = uᵀWv``, with ``u`` and ``v`` held constant for the gradient.
- `SpectralLinear`: a linear layer whose weight is used as ``W/σ(W)`` (spectral normalisation). It is stateless, so it
  works under `vmap` over configurations: each call runs ``iterations`` power steps from a fixed start vector
  (Miyato et al. carry ``u`` across steps and do one; several steps from a fixed start reach the same σ, within
  1e-6 of the SVD after convergence; tests/test_smoothness.py). ``leave_smaller=True`` divides by ``max(σ/k, 1)``
  instead, as the spectral-normalisation-in-RL code does (Gogianu et al., ICML 2021; docs/theory.md §9).
- `input_gradient_penalty`: ``R(θ) = E_x ‖∇_x f_θ(x) ‖²`` (the R1 penalty of Mescheder, Geiger & Nowozin, ICML 2018)
  or ``E_x (‖∇_x f_θ(x)‖ − 1)²`` (Gulrajani et al., NeurIPS 2017), added to a loss with a strength.
- The explicit drift regulariser is `inertia.igr_loss` (Barrett & Dherin, ICLR 2021), in `inertia.drift`.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._checks import check_int, check_positive

__all__ = ["spectral_norm", "spectral_divisor", "SpectralLinear", "input_gradient_penalty"]


def spectral_norm(W: Array, u0: Array, iterations: int = 20, eps: float = 1e-12) -> tuple[Array, Array]:
    """``σ(W)`` by ``iterations`` power steps from ``u0`` (Miyato et al., ICLR 2018, Alg. 1); returns ``(σ, u)``.

    ``u`` and ``v`` are treated as constants for differentiation (``stop_gradient``), as in Miyato et al.; the
    gradient flows through ``σ = uᵀWv`` only.
    """

    def step(u, _):
        v = W.T @ u
        v = v / (jnp.linalg.norm(v) + eps)
        u = W @ v
        return u / (jnp.linalg.norm(u) + eps), None

    u, _ = jax.lax.scan(step, u0 / (jnp.linalg.norm(u0) + eps), None, length=iterations)
    u = jax.lax.stop_gradient(u)
    v = jax.lax.stop_gradient(W.T @ u / (jnp.linalg.norm(W.T @ u) + eps))
    return u @ W @ v, u


def spectral_divisor(W: Array, u0: Array, *, iterations: int = 20, lipschitz: float = 1.0,
                     leave_smaller: bool = False) -> Array:
    """The divisor ``s`` of spectral normalisation ``W ↦ W/s``: ``s = σ(W)/k``, or ``max(σ(W)/k, 1)`` with
    ``leave_smaller`` (``k = lipschitz``); σ by `spectral_norm`, with its gradient.

    Miyato et al. (ICLR 2018) use ``k = 1`` without ``leave_smaller``; Gogianu et al. (ICML 2021, official code
    floringogianu/snrl) use ``max(σ/k, 1)``, and their optimiser adaptation divides an *unnormalised* layer's gradient
    and learning rate by this same ``s`` (docs/smoothness.md).
    """
    sigma = spectral_norm(W, u0, iterations)[0] / lipschitz
    return jnp.maximum(sigma, 1.0) if leave_smaller else sigma


class SpectralLinear(eqx.Module):
    """A linear layer ``x ↦ (W/s) x + b`` with ``s = σ(W)`` (or ``max(σ/k, 1)`` with ``leave_smaller``).

    **Arguments:** ``in_size``, ``out_size``; ``iterations``: power steps per call (default 20); ``leave_smaller``:
    only shrink layers whose norm exceeds ``lipschitz`` (default 1); ``key`` (keyword-only). The start vector ``u0``
    is drawn once and receives no gradient.
    """

    linear: eqx.nn.Linear
    u0: Array
    iterations: int = eqx.field(static=True)
    leave_smaller: bool = eqx.field(static=True)
    lipschitz: float = eqx.field(static=True)

    def __init__(self, in_size: int, out_size: int, *, iterations: int = 20, leave_smaller: bool = False,
                 lipschitz: float = 1.0, key: Array):
        check_int("iterations", iterations, 1)
        check_positive("lipschitz", lipschitz)
        k1, k2 = jax.random.split(key)
        self.linear = eqx.nn.Linear(in_size, out_size, key=k1)
        self.u0 = jax.random.normal(k2, (out_size,))
        self.iterations, self.leave_smaller, self.lipschitz = int(iterations), bool(leave_smaller), float(lipschitz)

    def sigma(self) -> Array:
        """The spectral norm of the raw weight by power iteration."""
        return spectral_norm(self.linear.weight, jax.lax.stop_gradient(self.u0), self.iterations)[0]

    def __call__(self, x: Array) -> Array:
        scale = spectral_divisor(self.linear.weight, jax.lax.stop_gradient(self.u0), iterations=self.iterations,
                                 lipschitz=self.lipschitz, leave_smaller=self.leave_smaller)
        out = (self.linear.weight / scale) @ x
        return out + self.linear.bias if self.linear.bias is not None else out


def input_gradient_penalty(fn: Callable[[Array], Array], *, target: float | None = None) -> Callable[[Array], Array]:
    """``x ↦ ‖∇_x fn(x)‖²`` (R1, Mescheder et al., ICML 2018) or ``(‖∇_x fn(x)‖ − target)²`` (Gulrajani et al.,
    NeurIPS 2017, ``target = 1``) for a scalar ``fn`` of one input; average it over a batch with `jax.vmap` and add
    ``strength ×`` it to the loss. Differentiable in ``fn``'s parameters (double backpropagation).
    """

    def penalty(x: Array) -> Array:
        squared = jnp.sum(jax.grad(fn)(x) ** 2)
        return squared if target is None else (jnp.sqrt(squared) - target) ** 2

    return penalty
