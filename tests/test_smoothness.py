"""Smoothness regularisers: the power-iteration spectral norm against numpy's SVD, and the input gradient penalty's
gradient against finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from inertia import smoothness


def test_power_iteration_equals_the_largest_singular_value():
    W = jax.random.normal(jax.random.key(0), (30, 50))
    sigma, _ = smoothness.spectral_norm(W, jnp.ones(30), iterations=200)
    assert abs(float(sigma) - np.linalg.svd(np.asarray(W), compute_uv=False)[0]) < 1e-6 * float(sigma)


def test_spectral_linear_has_unit_spectral_norm_and_leave_smaller_keeps_small_layers():
    layer = smoothness.SpectralLinear(20, 10, iterations=200, key=jax.random.key(1))
    W = np.asarray(layer.linear.weight / layer.sigma())
    assert abs(np.linalg.svd(W, compute_uv=False)[0] - 1) < 1e-6
    small = smoothness.SpectralLinear(20, 10, iterations=200, leave_smaller=True, key=jax.random.key(1))
    small = eqx.tree_at(lambda m: m.linear.weight, small, small.linear.weight * 1e-3)
    x = jnp.arange(20.0)
    assert np.allclose(small(x), small.linear(x), rtol=1e-12)


def test_spectral_divisor_is_sigma_over_k_and_never_below_one_with_leave_smaller():
    """``s = σ/k`` (Miyato et al.) or ``max(σ/k, 1)`` (Gogianu et al.'s ``leave_smaller``), σ from numpy's SVD."""
    W = jax.random.normal(jax.random.key(4), (12, 9))
    sigma = np.linalg.svd(np.asarray(W), compute_uv=False)[0]
    u0 = jnp.ones(12)
    for k in (0.5, 2.0, 4 * sigma):
        plain = smoothness.spectral_divisor(W, u0, iterations=300, lipschitz=k)
        kept = smoothness.spectral_divisor(W, u0, iterations=300, lipschitz=k, leave_smaller=True)
        assert abs(float(plain) - sigma / k) < 1e-6 * sigma / k
        assert abs(float(kept) - max(sigma / k, 1.0)) < 1e-6 * max(sigma / k, 1.0)


def test_spectral_norm_gradient_is_u_v_outer_product():
    """With u, v held constant, ∂σ/∂W = u vᵀ, the top singular pair (Miyato et al., eq. 12)."""
    W = jax.random.normal(jax.random.key(2), (8, 6))
    g = jax.grad(lambda w: smoothness.spectral_norm(w, jnp.ones(8), iterations=300)[0])(W)
    U, _, Vt = np.linalg.svd(np.asarray(W))
    assert np.allclose(np.abs(np.asarray(g)), np.abs(np.outer(U[:, 0], Vt[0])), atol=1e-8)


def test_input_gradient_penalty_gradient_matches_finite_differences():
    def critic(params, x):
        return jnp.tanh(params["w"] @ x + params["b"]) @ params["v"]

    key = jax.random.key(3)
    params = {"w": jax.random.normal(key, (5, 3)), "b": jnp.zeros(5), "v": jnp.linspace(-1, 1, 5)}
    xs = jax.random.normal(jax.random.key(4), (7, 3))
    for target in (None, 1.0):
        R = lambda p: jnp.mean(jax.vmap(smoothness.input_gradient_penalty(lambda x: critic(p, x), target=target))(xs))
        grad = jax.grad(R)(params)["w"]
        eps, fd = 1e-6, np.zeros((5, 3))
        for i in range(5):
            for j in range(3):
                bump = lambda s: {**params, "w": params["w"].at[i, j].add(s)}
                fd[i, j] = (R(bump(eps)) - R(bump(-eps))) / (2 * eps)
        assert np.allclose(np.asarray(grad), fd, rtol=1e-6, atol=1e-9)
