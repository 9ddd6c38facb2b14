"""Hessian tools for any scalar loss of a parameter pytree, without forming the Hessian.

- `hvp`: ``∇²f(θ) v`` by forward-over-reverse differentiation (Pearlmutter 1994).
- `lanczos`: ``k`` steps of Lanczos with full reorthogonalisation; the Ritz values of the tridiagonal
  matrix approximate the extreme eigenvalues (Golub & Van Loan, Matrix Computations, §10.1).
- `top_eigenvalues`, `sharpness` (the largest eigenvalue, Cohen et al., ICLR 2021), `sharpness_along` a
  recorded trajectory.
- `trace`: Hutchinson's estimator ``E[zᵀHz] = tr H`` with Rademacher ``z``, with its standard error
  (Hutchinson 1990; as in PyHessian, Yao et al. 2020).

Everything is traceable, so it runs under `jit` and `vmap` (e.g. inside `inertia.nn.train`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree

__all__ = ["hvp", "lanczos", "top_eigenvalues", "sharpness", "sharpness_along", "trace"]


def _flat(loss: Callable[[PyTree], Array], params: PyTree):
    flat, unravel = ravel_pytree(params)
    return (lambda z: loss(unravel(z))), flat


def hvp(loss: Callable[[PyTree], Array], params: PyTree, v: PyTree) -> PyTree:
    """``∇²f(θ) v`` for a pytree ``θ`` and a direction ``v`` of the same structure (jvp of grad)."""
    return jax.jvp(jax.grad(loss), (params,), (v,))[1]


def lanczos(matvec: Callable[[Array], Array], dim: int, *, key: Array, iterations: int, dtype=None):
    """Lanczos tridiagonalisation of a symmetric operator with full reorthogonalisation.

    **Arguments:** ``matvec``: ``v ↦ Av`` on vectors of size ``dim``; ``key``: start vector;
    ``iterations``: ``k ≤ dim`` steps.

    **Returns:** ``(ritz_values, ritz_vectors)``: the eigenvalues of the k×k tridiagonal ``T = QᵀAQ``
    in descending order, and the matching vectors ``Q s`` (shape ``(k, dim)``). With ``k = dim`` they are
    the exact spectrum; the extreme ones converge first (Golub & Van Loan §10.1).
    """
    k = min(int(iterations), int(dim))
    dtype = dtype or jnp.result_type(float)
    q0 = jax.random.normal(key, (dim,), dtype)
    q0 = q0 / jnp.linalg.norm(q0)
    tiny = jnp.finfo(dtype).tiny ** 0.5

    def body(j, carry):
        Q, alpha, beta = carry
        q = Q[j]
        w = matvec(q)
        a = q @ w
        # full reorthogonalisation against every basis vector so far, twice ("twice is enough")
        mask = (jnp.arange(k) <= j).astype(dtype)[:, None]
        w = w - (Q * mask).T @ ((Q * mask) @ w)
        w = w - (Q * mask).T @ ((Q * mask) @ w)
        b = jnp.linalg.norm(w)
        q_next = jnp.where(b > tiny, w / jnp.maximum(b, tiny), 0.0)
        Q = Q.at[jnp.minimum(j + 1, k - 1)].set(jnp.where(j + 1 < k, q_next, Q[k - 1]))
        return Q, alpha.at[j].set(a), beta.at[j].set(b)

    Q = jnp.zeros((k, dim), dtype).at[0].set(q0)
    Q, alpha, beta = jax.lax.fori_loop(0, k, body, (Q, jnp.zeros(k, dtype), jnp.zeros(k, dtype)))
    T = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    values, vectors = jnp.linalg.eigh(T)
    return values[::-1], (Q.T @ vectors[:, ::-1]).T


def top_eigenvalues(loss: Callable[[PyTree], Array], params: PyTree, *, key: Array, k: int = 1,
                    iterations: int = 30) -> Array:
    """The ``k`` largest Hessian eigenvalues of ``loss`` at ``params`` by Lanczos (descending order).

    **Arguments:** ``loss``: scalar function of the pytree ``params``; ``key``: the start vector;
    ``k``: how many; ``iterations``: Lanczos steps (more for tighter convergence; ≤ the parameter count).
    """
    f, flat = _flat(loss, params)
    grad = jax.grad(f)
    matvec = lambda v: jax.jvp(grad, (flat,), (v,))[1]
    values, _ = lanczos(matvec, flat.size, key=key, iterations=max(iterations, k), dtype=flat.dtype)
    return values[:k]


def sharpness(loss: Callable[[PyTree], Array], params: PyTree, *, key: Array, iterations: int = 20) -> Array:
    """The largest Hessian eigenvalue ``λ_max(∇²f(θ))`` (Cohen et al., ICLR 2021, "sharpness")."""
    return top_eigenvalues(loss, params, key=key, k=1, iterations=iterations)[0]


def sharpness_along(loss: Callable[[PyTree], Array], trajectory: PyTree, *, key: Array,
                    iterations: int = 20) -> Array:
    """Sharpness at every point of a trajectory whose leaves have a leading time axis; shape ``(T,)``."""
    return jax.lax.map(lambda p: sharpness(loss, p, key=key, iterations=iterations), trajectory)


def trace(loss: Callable[[PyTree], Array], params: PyTree, *, key: Array, samples: int = 100):
    """Hutchinson's estimate of ``tr ∇²f(θ)`` with ``samples`` Rademacher vectors.

    **Returns:** ``(estimate, standard_error)``; the standard error is the sample standard deviation of
    ``zᵀHz`` over √samples. For Rademacher ``z`` the exact variance of one sample is ``2 Σ_{i≠j} H_ij²``.
    """
    f, flat = _flat(loss, params)
    grad = jax.grad(f)
    z = jax.random.rademacher(key, (samples, flat.size), flat.dtype)
    quad = jax.lax.map(lambda v: v @ jax.jvp(grad, (flat,), (v,))[1], z)
    return quad.mean(), quad.std(ddof=1) / jnp.sqrt(samples)
