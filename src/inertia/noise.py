"""Gradient-noise models: ``g = ∇f(x) + ξ``.

Each model draws a stochastic gradient with an explicit key and knows the exact covariance of ``ξ``:

- `Gaussian`: additive ``ξ ~ N(0, C)``;
- `Minibatch`: the mean gradient of ``S`` examples of a `FiniteSum`, drawn with or without replacement.
  With ``F = (1/N) Σ ∇ℓ_i ∇ℓ_iᵀ − ∇f ∇fᵀ`` the covariance is ``F/S`` with replacement and
  ``(N − S)/(S(N − 1)) F`` without (Ziyin, Liu, Mori & Ueda, ICLR 2022, Sec. 3).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._checks import InertiaError, check_finite, check_int
from .objectives import FiniteSum, Objective

__all__ = ["Noise", "Gaussian", "Minibatch", "svag_weights"]


class Noise(eqx.Module):
    """A model of stochastic gradients."""

    @abc.abstractmethod
    def gradient(self, objective: Objective, x: Array, *, key: Array) -> Array:
        """One stochastic gradient of `objective` at ``x``."""

    @abc.abstractmethod
    def covariance(self, objective: Objective, x: Array) -> Array:
        """The exact covariance of ``g − ∇f(x)`` at ``x``."""


class Gaussian(Noise):
    """Additive Gaussian noise with covariance ``C`` (a ``(d, d)`` matrix, a ``(d,)`` diagonal or a scalar)."""

    C: Array
    factor: Array

    def __init__(self, C: ArrayLike):
        C = jnp.asarray(C)
        check_finite("C", C)
        self.C = C
        if C.ndim == 2:
            eig = jnp.linalg.eigvalsh((C + C.T) / 2)
            if float(eig[0]) < -1e-10 * max(1.0, float(eig[-1])):
                raise InertiaError(f"C must be positive semi-definite; its smallest eigenvalue is {float(eig[0]):.3g}")
            w, v = jnp.linalg.eigh((C + C.T) / 2)
            self.factor = v * jnp.sqrt(jnp.clip(w, 0))
        elif jnp.any(C < 0):
            raise InertiaError("C must be >= 0 (a variance)")
        else:
            self.factor = jnp.sqrt(C)

    def gradient(self, objective, x, *, key):
        z = jax.random.normal(key, x.shape, x.dtype)
        xi = self.factor @ z if self.factor.ndim == 2 else self.factor * z
        return objective.grad(x) + xi

    def covariance(self, objective, x):
        d = x.shape[0]
        return self.C if self.C.ndim == 2 else jnp.broadcast_to(self.C, (d,)) * jnp.eye(d)


class Minibatch(Noise):
    """The mean gradient over ``size`` examples of a `FiniteSum`, with or without replacement.

    **Arguments:** ``size``: the batch size ``S`` (1 ≤ S ≤ N); ``replace``: sample with replacement.
    """

    size: int = eqx.field(static=True)
    replace: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        check_int("size", self.size, 1)

    def _check(self, objective):
        if not isinstance(objective, FiniteSum):
            raise InertiaError(f"Minibatch noise needs a FiniteSum objective; got {type(objective).__name__}")
        if self.size > objective.n_examples:
            raise InertiaError(f"size must lie in [1, {objective.n_examples}] (the number of examples); got {self.size}")

    def gradient(self, objective, x, *, key):
        self._check(objective)
        index = jax.random.choice(key, objective.n_examples, (self.size,), replace=self.replace)
        return jax.grad(objective.batch_loss)(x, index)

    def covariance(self, objective, x):
        self._check(objective)
        n, s = objective.n_examples, self.size
        G = objective.example_grads(x)
        F = G.T @ G / n - jnp.outer(G.mean(0), G.mean(0))
        factor = 1 / s if self.replace else (n - s) / (s * (n - 1))
        return factor * F


def svag_weights(ell: float) -> tuple[float, float]:
    """SVAG's weights ``((1+c)/2, (1−c)/2)`` with ``c = √(2ℓ−1)`` (Li, Malladi & Arora, NeurIPS 2021, Sec. 4).

    Two independent batch gradients ``g₁, g₂`` combine to ``w₁g₁ + w₂g₂``: same mean, noise covariance ×ℓ.
    Run with learning rate ``η/ℓ``; ℓ steps then match one SGD step, and the weak error to the SDE is O(1/ℓ).
    """
    if not ell >= 1:
        raise InertiaError(f"ell must be >= 1; got {ell}")
    c = (2 * ell - 1) ** 0.5
    return (1 + c) / 2, (1 - c) / 2
