"""Two-player games (Rosca et al., ICML 2021): the modified losses measured to one-step order 3 for equal and
unequal step sizes, simultaneous and alternating; cancelling the interaction drift stabilises a zero-sum game."""

import jax
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import inertia as I  # noqa: E402
from inertia.flows import integrate  # noqa: E402
from inertia.order import fit_order  # noqa: E402


def loss1(phi, theta):
    return jnp.sin(phi[0]) * theta[0] + 0.5 * phi @ phi + phi[1] * theta[1] ** 2 + 0.3 * jnp.cos(phi[0] + theta[1])


def loss2(phi, theta):
    return (-theta[0] * phi[0] ** 2 + 0.5 * theta @ theta + jnp.tanh(theta[1]) * phi[1]
            + 0.2 * jnp.sin(theta[0] * phi[1]))


GAME = I.Game(loss1, loss2)
PHI, THETA = jnp.array([0.3, -0.5]), jnp.array([0.7, 0.2])
SCALES = np.geomspace(0.01, 0.08, 6)


@pytest.mark.parametrize("alternating", [False, True], ids=["simultaneous", "alternating"])
@pytest.mark.parametrize("ratio", [1.0, 0.3, 3.0], ids=["equal", "theta-slower", "theta-faster"])
def test_one_step_error_order_3(alternating, ratio):
    result = I.drift_order(GAME, PHI, THETA, SCALES, ratio=ratio, alternating=alternating)
    assert abs(result.order - 3) < 0.15, result


def test_alternating_needs_the_negative_interaction_coefficient():
    # The simultaneous modified losses against alternating steps (h_θ = h_φ/2): the error is only O(h²).
    @jax.jit
    @jax.vmap
    def error(s):
        e1, e2 = I.modified_losses(GAME, s, 0.5 * s, alternating=False)
        field = lambda y: (-s * jax.grad(e1, 0)(*y), -0.5 * s * jax.grad(e2, 1)(*y))  # noqa: E731
        flow_phi, flow_theta = integrate(field, (PHI, THETA), jnp.array([0.0, 1.0]), 1e-13, 1e-15)
        phi = PHI - s * jax.grad(loss1, 0)(PHI, THETA)
        theta = THETA - 0.5 * s * jax.grad(loss2, 1)(phi, THETA)
        return jnp.sqrt(jnp.sum((flow_phi[-1] - phi) ** 2) + jnp.sum((flow_theta[-1] - theta) ** 2))

    order, _ = fit_order(SCALES, np.asarray(error(jnp.asarray(SCALES))))
    assert abs(order - 2) < 0.15


@pytest.mark.parametrize("alternating", [False, True], ids=["simultaneous", "alternating"])
@pytest.mark.parametrize("ratio, expected", [(1.0, 3), (0.3, 2), (3.0, 2)],
                         ids=["equal", "theta-slower", "theta-faster"])
def test_deepmind_coefficients_measure_order_3_only_for_equal_steps(alternating, ratio, expected):
    # docs/theory.md §10: DeepMind's get_dd_coeffs agree with the derived coefficients iff h_φ = h_θ.
    result = I.drift_order(GAME, PHI, THETA, SCALES, ratio=ratio, alternating=alternating, coefficients="deepmind")
    assert abs(result.order - expected) < 0.15, result


@pytest.mark.parametrize("alternating", [False, True], ids=["simultaneous", "alternating"])
def test_the_two_sets_of_coefficients_coincide_exactly_at_equal_steps_and_only_there(alternating):
    derived = I.drift_coefficients(0.1, 0.1, alternating=alternating)
    deepmind = I.drift_coefficients(0.1, 0.1, alternating=alternating, coefficients="deepmind")
    np.testing.assert_allclose(deepmind, derived, rtol=1e-15)
    derived = I.drift_coefficients(0.1, 0.05, alternating=alternating)
    deepmind = I.drift_coefficients(0.1, 0.05, alternating=alternating, coefficients="deepmind")
    assert (deepmind.self1, deepmind.self2) == (derived.self1, derived.self2)  # one update per player: same
    assert abs(deepmind.cross1 - derived.cross1) > 0.02 and abs(deepmind.cross2 - derived.cross2) > 0.02


def test_play_matches_hand_written_steps():
    phis, thetas = I.play(GAME, PHI, THETA, 3, 0.1, 0.05, alternating=True)
    phi, theta = PHI, THETA
    for n in range(3):
        phi = phi - 0.1 * jax.grad(loss1, 0)(phi, theta)
        theta = theta - 0.05 * jax.grad(loss2, 1)(phi, theta)
        assert np.allclose(phis[n + 1], phi, rtol=0, atol=1e-14) and np.allclose(thetas[n + 1], theta, atol=1e-14)


def test_cancelling_interaction_stabilises_zero_sum_game():
    # min_φ max_θ ε/2|φ|² + φᵀθ − ε/2|θ|²: simultaneous GD multiplies |z|² by 1 − 2hε + h²(1+ε²) per step
    # (> 1 at h = 0.2, ε = 0.05); with the interaction drift cancelled by 1 − 2hε + h²ε² + h⁴(1+ε²)/4 (< 1).
    eps, h, steps = 0.05, 0.2, 400
    game = I.Game.zero_sum(lambda p, t: eps / 2 * p @ p + p @ t - eps / 2 * t @ t)
    p0, t0 = jnp.array([1.0, 0.5]), jnp.array([0.5, -1.0])
    norm0 = np.sqrt(np.sum(p0**2) + np.sum(t0**2))
    for g, factor in [(game, 1 - 2 * h * eps + h**2 * (1 + eps**2)),
                      (I.cancel_interaction(game, h, h), 1 - 2 * h * eps + h**2 * eps**2 + h**4 * (1 + eps**2) / 4)]:
        phis, thetas = I.play(g, p0, t0, steps, h, h)
        norm = np.sqrt(np.sum(phis[-1] ** 2) + np.sum(thetas[-1] ** 2))
        assert np.isclose(norm, norm0 * factor ** (steps / 2), rtol=1e-8)
    assert factor < 1


def test_bad_input_raises():
    with pytest.raises(I.InertiaError, match="h_phi"):
        I.play(GAME, PHI, THETA, 3, -0.1, 0.1)
    with pytest.raises(I.InertiaError, match="scales"):
        I.drift_order(GAME, PHI, THETA, [0.1])
    with pytest.raises(I.InertiaError, match="coefficients must be one of derived, deepmind; got 'mine'"):
        I.drift_order(GAME, PHI, THETA, SCALES, coefficients="mine")
    with pytest.raises(I.InertiaError, match="coefficients must be one of"):
        I.cancel_interaction(GAME, 0.1, 0.1, coefficients="own")
