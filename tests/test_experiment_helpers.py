"""The claims' shared helpers: one-off compilation and the 14×14 MNIST loader."""

import jax
import jax.numpy as jnp
import numpy as np

from inertia.experiments._compile import run_once
from inertia.experiments._mnist import mnist_14


def test_run_once_equals_jit_to_rounding():
    """Level-0 compilation changes the instruction schedule, not the arithmetic: equal to a few float32 ulps."""
    def f(x, w):
        return jnp.tanh(x @ w).sum(0)

    x = jax.random.normal(jax.random.PRNGKey(0), (64, 32))
    w = jax.random.normal(jax.random.PRNGKey(1), (32, 8))
    assert np.allclose(run_once(f, x, w), jax.jit(f)(x, w), rtol=1e-5, atol=1e-5)


def test_mnist_14_is_standardised_or_in_tanh_range_and_pools_the_same_digits():
    x, y, x_test, y_test = mnist_14(500)
    assert x.shape == (500, 196) and x_test.shape == (1000, 196) and y.shape == (500,)
    live = x.std(0) > 0
    assert np.allclose(x.mean(0)[live], 0, atol=1e-4) and np.allclose(x.std(0)[live], 1, atol=1e-3)
    g, g_y, _, _ = mnist_14(None, "tanh")
    assert g.shape == (4000, 196) and g.min() >= -1 and g.max() <= 1
    assert np.array_equal(g_y[:500], y)
