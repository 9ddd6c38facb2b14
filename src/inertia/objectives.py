"""Objectives: quadratics, standard 2-D test functions, finite sums over a data set, any JAX function.

An objective is an equinox module with ``loss(x)``; ``grad`` and ``hvp`` (a Hessian-vector product by
forward-over-reverse differentiation) follow from it. A finite sum also exposes ``example_loss`` so that
`inertia.noise.Minibatch` can sample it.
"""

from __future__ import annotations

import abc
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._checks import InertiaError, check_finite, check_symmetric

__all__ = [
    "Objective", "Quadratic", "Function", "Rosenbrock", "Himmelblau", "Beale", "FiniteSum",
    "LeastSquares", "LogisticRegression",
]


class Objective(eqx.Module):
    """A differentiable loss ``f: R^d → R``."""

    @abc.abstractmethod
    def loss(self, x: Array) -> Array:
        """The loss at one point ``x`` of shape ``(d,)``."""

    @property
    def dimension(self) -> int | None:
        """The dimension ``d`` of the points it accepts, or None when the loss does not fix it (checked by tracing)."""
        return None

    def grad(self, x: Array) -> Array:
        """``∇f(x)``."""
        return jax.grad(self.loss)(x)

    def hvp(self, x: Array, v: Array) -> Array:
        """``∇²f(x) v`` by forward-over-reverse differentiation, without forming the Hessian."""
        return jax.jvp(self.grad, (x,), (v,))[1]

    def hessian(self, x: Array) -> Array:
        """The dense Hessian ``∇²f(x)``; only for small ``d``."""
        return jax.hessian(self.loss)(x)


class Quadratic(Objective):
    """``f(x) = ½ (x − x*)ᵀ H (x − x*)`` with symmetric ``H``.

    **Arguments:** ``H``: a symmetric ``(d, d)`` matrix (symmetric to rounding, as `inertia.covariance` requires;
    a non-symmetric one is refused, never silently symmetrised), or a ``(d,)`` vector of eigenvalues (diagonal ``H``);
    ``minimum``: ``x*``, zeros by default.
    """

    H: Array
    minimum: Array

    def __init__(self, H: ArrayLike, minimum: ArrayLike | None = None):
        check_finite("H", H)  # numbers (not text, None or ragged lists), all finite
        H = jnp.asarray(H)
        if H.ndim == 1:
            H = jnp.diag(H)
        if H.ndim != 2 or H.shape[0] != H.shape[1]:
            raise InertiaError(f"H must be a square matrix or a vector of eigenvalues; got shape {H.shape}")
        if H.shape[0] == 0:
            raise InertiaError("H is empty; it needs at least one eigenvalue")
        check_finite("H", H)
        check_symmetric("H", H)
        self.H = (H + H.T) / 2  # exactly symmetric, for eigvalsh
        if minimum is not None:
            check_finite("minimum", minimum)
        self.minimum = jnp.zeros(H.shape[0], H.dtype) if minimum is None else jnp.asarray(minimum)
        if self.minimum.shape != (H.shape[0],):
            raise InertiaError(f"minimum must have shape ({H.shape[0]},) to match H; got {self.minimum.shape}")

    @property
    def dimension(self) -> int:
        return self.H.shape[0]

    def loss(self, x):
        r = x - self.minimum
        return 0.5 * r @ (self.H @ r)

    def grad(self, x):
        # One matrix-vector product, where autodiff of the loss would take two. Written as (x − x*)ᵀH (H is exactly
        # symmetric): under vmap over runs it becomes one row-major matrix product (runs, d) @ (d, d), no transpose.
        return (x - self.minimum) @ self.H

    def hvp(self, x, v):
        return self.H @ v

    @property
    def eigenvalues(self) -> Array:
        """The eigenvalues of ``H``, ascending."""
        return jnp.linalg.eigvalsh(self.H)


class Function(Objective):
    """Any scalar JAX function ``fn(x)`` of a vector ``x``."""

    fn: Callable[[Array], Array] = eqx.field(static=True)

    def loss(self, x):
        return self.fn(x)


class Rosenbrock(Objective):
    """``f(x, y) = (a − x)² + b (y − x²)²``, minimum at ``(a, a²)`` (Rosenbrock 1960)."""

    a: float = 1.0
    b: float = 100.0

    dimension = 2

    def loss(self, x):
        return (self.a - x[0]) ** 2 + self.b * (x[1] - x[0] ** 2) ** 2


class Himmelblau(Objective):
    """``f(x, y) = (x² + y − 11)² + (x + y² − 7)²``: four minima with value 0 (Himmelblau 1972)."""

    dimension = 2

    def loss(self, x):
        return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2


class Beale(Objective):
    """Beale's function, minimum 0 at ``(3, 0.5)`` (Beale 1958)."""

    dimension = 2

    def loss(self, x):
        u, v = x[0], x[1]
        return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2


class FiniteSum(Objective):
    """``f(x) = (1/N) Σ_i ℓ(x; input_i, target_i)`` over a data set held as arrays."""

    inputs: eqx.AbstractVar[Array]
    targets: eqx.AbstractVar[Array]

    @abc.abstractmethod
    def example_loss(self, x: Array, inp: Array, target: Array) -> Array:
        """The loss ``ℓ`` of one example."""

    @property
    def n_examples(self) -> int:
        return self.inputs.shape[0]

    def batch_loss(self, x: Array, index: Array) -> Array:
        """The mean loss over the examples ``index``."""
        return jnp.mean(jax.vmap(self.example_loss, (None, 0, 0))(x, self.inputs[index], self.targets[index]))

    def loss(self, x):
        return jnp.mean(jax.vmap(self.example_loss, (None, 0, 0))(x, self.inputs, self.targets))

    def example_grads(self, x: Array) -> Array:
        """Per-example gradients, shape ``(N, d)``."""
        return jax.vmap(jax.grad(self.example_loss), (None, 0, 0))(x, self.inputs, self.targets)


def _data(inputs, targets):
    inputs, targets = jnp.asarray(inputs), jnp.asarray(targets)
    if inputs.ndim != 2:
        raise InertiaError(f"inputs must have shape (N, d); got {inputs.shape}")
    if targets.shape != (inputs.shape[0],):
        raise InertiaError(f"targets must have shape ({inputs.shape[0]},) to match inputs; got {targets.shape}")
    check_finite("inputs", inputs)
    check_finite("targets", targets)
    return inputs, targets


class LeastSquares(FiniteSum):
    """``ℓ(x; a, y) = ½ (aᵀx − y)²``."""

    inputs: Array
    targets: Array

    def __init__(self, inputs: ArrayLike, targets: ArrayLike):
        self.inputs, self.targets = _data(inputs, targets)

    def example_loss(self, x, inp, target):
        return 0.5 * (inp @ x - target) ** 2


class LogisticRegression(FiniteSum):
    """``ℓ(x; a, y) = log(1 + e^{aᵀx}) − y aᵀx + (l2/2)|x|²`` with labels ``y ∈ {0, 1}``."""

    inputs: Array
    targets: Array
    l2: float = 0.0

    def __init__(self, inputs: ArrayLike, targets: ArrayLike, l2: float = 0.0):
        self.inputs, self.targets = _data(inputs, targets)
        self.l2 = l2

    def example_loss(self, x, inp, target):
        z = inp @ x
        return jax.nn.softplus(z) - target * z + 0.5 * self.l2 * x @ x
