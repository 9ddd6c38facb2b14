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
from ._linalg import psd_sqrt
from .objectives import FiniteSum, Objective

__all__ = ["Noise", "Gaussian", "Minibatch", "svag_weights", "sampling_factor", "minibatch_covariance"]


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
            self.factor = jnp.asarray(psd_sqrt("C", C), C.dtype)
        elif jnp.any(C < 0):
            raise InertiaError("C must be >= 0 (a variance)")
        else:
            self.factor = jnp.sqrt(C)

    def gradient(self, objective, x, *, key):
        return objective.grad(x) + self.sample(key, x.shape, x.dtype)

    def sample(self, key: Array, shape: tuple[int, ...], dtype) -> Array:
        """Draws of ``ξ ~ N(0, C)``, ``shape = (..., d)``: ``ξ = L z`` with ``z`` standard normal and ``LLᵀ = C``
        (`inertia.sweep` draws a block of steps × d at once; `gradient` draws one)."""
        z = jax.random.normal(key, shape, dtype)
        return z @ self.factor.T if self.factor.ndim == 2 else self.factor * z

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
            raise InertiaError(f"size must lie in [1, {objective.n_examples}] (the number of examples); "
                               f"got {self.size}")

    def gradient(self, objective, x, *, key):
        self._check(objective)
        index = jax.random.choice(key, objective.n_examples, (self.size,), replace=self.replace)
        return jax.grad(objective.batch_loss)(x, index)

    def covariance(self, objective, x):
        self._check(objective)
        return minibatch_covariance(objective.example_grads(x), self.size, self.replace)


def sampling_factor(n_examples: int, size: int, replace: bool) -> float:
    """The factor ``c`` in ``Cov(mean of S of N examples) = c·F``: ``1/S`` with replacement, ``(N−S)/(S(N−1))``
    without (finite-population correction; Ziyin, Liu, Mori & Ueda, ICLR 2022, Sec. 3)."""
    check_int("size", size, 1)
    if size > n_examples:
        raise InertiaError(f"size must lie in [1, {n_examples}] (the number of examples); got {size}")
    return 1 / size if replace else (n_examples - size) / (size * (n_examples - 1))


def minibatch_covariance(example_grads, size: int, replace: bool):
    """The covariance ``c·F`` of the mean of ``size`` rows of ``example_grads`` (``(N, d)``, one gradient per example),
    ``F = (1/N) Σ gᵢgᵢᵀ − ḡḡᵀ``, ``c`` = `sampling_factor` (Ziyin, Liu, Mori & Ueda, ICLR 2022, Sec. 3).

    Array-agnostic: NumPy in, NumPy out; JAX in, JAX out.
    """
    n = example_grads.shape[0]
    mean = example_grads.mean(0)
    F = example_grads.T @ example_grads / n - mean[:, None] * mean[None, :]
    return sampling_factor(n, size, replace) * F


def svag_weights(ell: float) -> tuple[float, float]:
    """SVAG's weights ``((1+c)/2, (1−c)/2)`` with ``c = √(2ℓ−1)`` (Li, Malladi & Arora, NeurIPS 2021, Sec. 4).

    Two independent batch gradients ``g₁, g₂`` combine to ``w₁g₁ + w₂g₂``: same mean, noise covariance ×ℓ.
    Run with learning rate ``η/ℓ``; ℓ steps then match one SGD step, and the weak error to the SDE is O(1/ℓ).
    """
    if not ell >= 1:
        raise InertiaError(f"ell must be >= 1; got {ell}")
    c = (2 * ell - 1) ** 0.5
    return (1 + c) / 2, (1 - c) / 2


class SVAG(Noise):
    """Stochastic Variance Amplified Gradient: a base noise model with its covariance multiplied by ``ℓ``.

    Two independent draws ``g₁, g₂`` of `base` combine as ``w₁g₁ + w₂g₂`` with the weights of `svag_weights`
    (``w₁ + w₂ = 1``, ``w₁² + w₂² = ℓ``): same mean, covariance ``ℓ·C`` (Li, Malladi & Arora, NeurIPS 2021,
    Sec. 4; official code splits one batch of 2B into halves). Run the method with learning rate ``h/ℓ`` for
    ``ℓ`` times as many steps; the weak error to the SDE is then ``O(1/ℓ)`` (measured in tests/test_sde.py).

    **Arguments:** ``base``: a `Noise` model; ``ell``: ``ℓ ≥ 1`` (``ℓ = 1`` is the base model).
    """

    base: Noise
    ell: float = eqx.field(static=True)

    def __check_init__(self):
        svag_weights(self.ell)
        if not isinstance(self.base, Noise):
            raise InertiaError(f"base must be a Noise model; got {type(self.base).__name__}")

    def gradient(self, objective, x, *, key):
        w1, w2 = svag_weights(self.ell)
        k1, k2 = jax.random.split(key)
        return w1 * self.base.gradient(objective, x, key=k1) + w2 * self.base.gradient(objective, x, key=k2)

    def covariance(self, objective, x):
        return self.ell * self.base.covariance(objective, x)


class LabelNoise(Noise):
    """Online linear regression with label noise, on a `Quadratic` ``½(w − u)ᵀA(w − u)``.

    Each step draws ``S`` fresh inputs ``x ~ N(0, A)`` and labels ``y = uᵀx + ε`` with ``Var ε = σ²``
    (``A = objective.H``, teacher ``u = objective.minimum``) and returns ``(1/S) Σ x(xᵀw − y)``. The noise is
    multiplicative; by Isserlis' theorem its covariance at ``w`` (``r = w − u``) is
    ``(A r rᵀ A + (rᵀAr + σ²) A)/S`` (Ziyin, Liu, Mori & Ueda, ICLR 2022, Sec. 4).

    **Arguments:** ``size``: the batch size ``S ≥ 1``; ``variance``: ``σ² ≥ 0``.
    """

    size: int = eqx.field(static=True)
    variance: float = 1.0

    def __check_init__(self):
        check_int("size", self.size, 1)
        if not self.variance >= 0:
            raise InertiaError(f"variance must be >= 0; got {self.variance}")

    @staticmethod
    def _check(objective):
        if not hasattr(objective, "H") or not hasattr(objective, "minimum"):
            raise InertiaError(f"LabelNoise needs a Quadratic objective (input covariance H, teacher minimum); "
                               f"got {type(objective).__name__}")

    def gradient(self, objective, x, *, key):
        self._check(objective)
        k1, k2 = jax.random.split(key)
        factor = jnp.linalg.cholesky(objective.H)
        inputs = jax.random.normal(k1, (self.size, x.shape[0]), x.dtype) @ factor.T
        labels = inputs @ objective.minimum + jnp.sqrt(self.variance) * jax.random.normal(k2, (self.size,), x.dtype)
        return inputs.T @ (inputs @ x - labels) / self.size

    def covariance(self, objective, x):
        self._check(objective)
        r = x - objective.minimum
        return self.mean_covariance(objective.H, r[:, None] * r[None, :])

    def mean_covariance(self, input_cov, second_moment):
        """``E C(w) = (AMA + (Tr[AM] + σ²)A)/S`` over states with ``M = E[(w − u)(w − u)ᵀ]`` (Isserlis; Ziyin, Liu,
        Mori & Ueda, ICLR 2022, Sec. 4). ``M = 0`` gives the noise at the minimum, ``σ²A/S``. Array-agnostic."""
        A, M = input_cov, second_moment
        return (A @ M @ A + ((A * M.T).sum() + self.variance) * A) / self.size


__all__ += ["SVAG", "LabelNoise"]
