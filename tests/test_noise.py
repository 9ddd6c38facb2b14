"""Gradient-noise models: Monte Carlo covariance of the noise inside its confidence interval."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inertia import Gaussian, InertiaError, LeastSquares, LogisticRegression, Minibatch, Quadratic, Rosenbrock


def sample_noise(noise, objective, x, draws, seed=0):
    keys = jax.random.split(jax.random.key(seed), draws)
    g = jax.vmap(lambda k: noise.gradient(objective, x, key=k))(keys)
    return np.asarray(g - objective.grad(x))


def assert_covariance_in_interval(xi, C, z=4.5):
    """Each entry of the sample covariance (mean known to be 0) within z standard errors, estimated from the data."""
    prods = xi[:, :, None] * xi[:, None, :]
    estimate = prods.mean(0)
    stderr = prods.std(0, ddof=1) / np.sqrt(len(xi))
    assert np.all(np.abs(estimate - C) <= z * stderr + 1e-15), np.max(np.abs(estimate - C) / (stderr + 1e-300))


def test_gaussian_noise_has_covariance_C():
    A = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, -0.2], [0.0, -0.2, 0.2]])
    xi = sample_noise(Gaussian(A), Quadratic([1.0, 2.0, 3.0]), jnp.ones(3), 40000)
    assert_covariance_in_interval(xi, A)
    np.testing.assert_allclose(np.asarray(Gaussian(A).covariance(Quadratic([1.0] * 3), jnp.ones(3))), A)


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return LeastSquares(X, X @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=60)), jnp.array([0.3, 0.2, -0.1])


@pytest.mark.parametrize("replace", [True, False])
def test_minibatch_noise_covariance(regression, replace):
    f, x = regression
    n, s = 60, 10
    noise = Minibatch(s, replace=replace)
    G = np.asarray(f.example_grads(x))
    F = G.T @ G / n - np.outer(G.mean(0), G.mean(0))
    expected = F / s if replace else (n - s) / (s * (n - 1)) * F
    np.testing.assert_allclose(np.asarray(noise.covariance(f, x)), expected, rtol=1e-12)
    xi = sample_noise(noise, f, x, 60000)
    assert_covariance_in_interval(xi, expected)
    # The two schemes differ by (N−S)/(N−1) ≈ 0.85 in trace: the measurement tells them apart.
    other = (n - s) / (s * (n - 1)) * F if replace else F / s
    trace, se = np.trace(np.cov(xi.T)), np.std(np.sum(xi**2, 1)) / np.sqrt(len(xi))
    assert abs(trace - np.trace(other)) > 4 * se


def test_full_batch_without_replacement_has_no_noise(regression):
    f, x = regression
    np.testing.assert_allclose(sample_noise(Minibatch(60, replace=False), f, x, 10), 0.0, atol=1e-12)


def test_finite_sum_gradients_match_autodiff_of_the_mean():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 2, 30).astype(float)
    f, x = LogisticRegression(X, y, l2=0.1), jnp.array([0.1, -0.2, 0.3, 0.0])
    np.testing.assert_allclose(np.asarray(f.example_grads(x)).mean(0), np.asarray(f.grad(x)), rtol=1e-12)
    z = X @ np.asarray(x)
    manual = X.T @ (1 / (1 + np.exp(-z)) - y) / 30 + 0.1 * np.asarray(x)
    np.testing.assert_allclose(np.asarray(f.grad(x)), manual, rtol=1e-12)


def test_hvp_equals_the_dense_hessian():
    f, x, v = Rosenbrock(), jnp.array([0.3, -0.4]), jnp.array([1.0, 2.0])
    H = np.array([[2 - 400 * (x[1] - 3 * x[0] ** 2), -400 * x[0]], [-400 * x[0], 200.0]])
    np.testing.assert_allclose(np.asarray(f.hvp(x, v)), H @ np.asarray(v), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(f.hessian(x)), H, rtol=1e-12)


@pytest.mark.parametrize("build,match", [
    (lambda f: Minibatch(0), "size must be an integer >= 1"),
    (lambda f: Minibatch(61).covariance(f[0], f[1]), r"size must lie in \[1, 60\]"),
    (lambda f: Minibatch(5).covariance(Quadratic([1.0]), jnp.ones(1)), "needs a FiniteSum"),
    (lambda f: Gaussian(np.array([[1.0, 2.0], [2.0, 1.0]])), "positive semi-definite"),
])
def test_bad_noise_arguments(regression, build, match):
    with pytest.raises(InertiaError, match=match):
        build(regression)
