"""Two-player games: simultaneous and alternating GD, their modified losses, and explicit drift regularisers.

Player φ minimises ``L₁(φ, θ)`` with step ``h_φ``; player θ minimises ``L₂(φ, θ)`` with step ``h_θ``.
Rosca, Wu, Dherin & Barrett (ICML 2021, "Discretization drift in two-player games", Thms 3.1/3.2): one
step of GD follows, to O(h³), the flow ``φ̇ = −h_φ ∇_φ Ẽ₁``, ``θ̇ = −h_θ ∇_θ Ẽ₂`` over unit time, with

    Ẽ₁ = L₁ + (h_φ/4)|∇_φL₁|² + (h_θ/2) ∇_θL₁ᵀ sg(∇_θL₂)
    Ẽ₂ = L₂ + (h_θ/4)|∇_θL₂|² + k (h_φ/2) ∇_φL₂ᵀ sg(∇_φL₁),   k = +1 simultaneous, −1 alternating (φ first).

These coefficients were derived here by backward error analysis and are confirmed by a measured one-step
error of order 3 for equal and unequal step sizes (tests/test_games.py); they are not copied from code.
The interaction terms (the ones with ``sg``) are what `cancel_interaction` removes by explicit regularisation.

`drift_coefficients` is the one owner of the coefficients: ``"derived"`` (above) or ``"deepmind"``, those of
DeepMind's ``discretisation_drift`` code (docs/theory.md §10), which agree only when ``h_φ = h_θ`` and measure
one-step order 2 otherwise. `modified_losses`, `cancel_interaction`, `one_step_error` and `drift_order` all take
``coefficients=`` and read them from there.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._checks import InertiaError, check_choice, check_int, check_positive
from .flows import integrate
from .order import Order, fit_order

__all__ = ["Game", "play", "DriftCoefficients", "COEFFICIENTS", "drift_coefficients", "modified_losses",
           "cancel_interaction", "one_step_error", "drift_order"]


class Game(eqx.Module):
    """A two-player differentiable game: φ minimises ``loss1(φ, θ)``, θ minimises ``loss2(φ, θ)``.

    A zero-sum game has ``loss2 = −loss1`` (`Game.zero_sum`).
    """

    loss1: Callable[[Array, Array], Array] = eqx.field(static=True)
    loss2: Callable[[Array, Array], Array] = eqx.field(static=True)

    @classmethod
    def zero_sum(cls, loss: Callable[[Array, Array], Array]) -> "Game":
        """φ minimises ``loss``, θ maximises it."""
        return cls(loss, lambda phi, theta: -loss(phi, theta))

    def gradients(self, phi: Array, theta: Array) -> tuple[Array, Array]:
        """``(∇_φ L₁, ∇_θ L₂)``: each player's own gradient."""
        return jax.grad(self.loss1, 0)(phi, theta), jax.grad(self.loss2, 1)(phi, theta)


def _step(game, phi, theta, h_phi, h_theta, alternating):
    new_phi = phi - h_phi * jax.grad(game.loss1, 0)(phi, theta)
    theta_at = new_phi if alternating else phi
    return new_phi, theta - h_theta * jax.grad(game.loss2, 1)(theta_at, theta)


def play(game: Game, phi0: ArrayLike, theta0: ArrayLike, steps: int, h_phi: float, h_theta: float, *,
         alternating: bool = False) -> tuple[Array, Array]:
    """Simultaneous or alternating (φ first) GD on the game; the iterates at steps ``0 … steps``.

    **Returns:** ``(φ_n, θ_n)`` of shapes ``(steps+1, dφ)``, ``(steps+1, dθ)``. A diverging run shows as
    non-finite or huge values, not as an error.
    """
    check_int("steps", steps, 1)
    check_positive("h_phi", h_phi)
    check_positive("h_theta", h_theta)
    phi0, theta0 = jnp.asarray(phi0, float), jnp.asarray(theta0, float)
    return _play(game, phi0, theta0, steps, jnp.asarray(h_phi, float), jnp.asarray(h_theta, float), alternating)


@eqx.filter_jit
def _play(game, phi0, theta0, steps, h_phi, h_theta, alternating):
    def body(carry, _):
        nxt = _step(game, *carry, h_phi, h_theta, alternating)
        return nxt, nxt

    _, (phis, thetas) = jax.lax.scan(body, (phi0, theta0), None, length=steps)
    return jnp.concatenate([phi0[None], phis]), jnp.concatenate([theta0[None], thetas])


#: The sets of drift coefficients `drift_coefficients` knows: this module's, measured to order 3, and DeepMind's code's.
COEFFICIENTS = ("derived", "deepmind")


class DriftCoefficients(NamedTuple):
    """The four coefficients of the modified losses, in this module's form:

        Ẽ₁ = L₁ + self1 |∇_φL₁|² + cross1 ∇_θL₁ᵀ sg(∇_θL₂),    Ẽ₂ = L₂ + self2 |∇_θL₂|² + cross2 ∇_φL₂ᵀ sg(∇_φL₁).

    ``cross1`` and ``cross2`` are the interaction coefficients that `cancel_interaction` removes.
    """

    self1: ArrayLike
    cross1: ArrayLike
    self2: ArrayLike
    cross2: ArrayLike


def drift_coefficients(h_phi: ArrayLike, h_theta: ArrayLike, *, alternating: bool = False,
                       coefficients: str = "derived") -> DriftCoefficients:
    """The drift coefficients of one GD step on a game (simultaneous, or alternating with φ first); their one owner.

    - ``coefficients="derived"`` (docs/theory.md §2.8, §10): ``self = (h_φ/4, h_θ/4)``, ``cross = (h_θ/2, ±h_φ/2)``
      (``+`` simultaneous, ``−`` alternating): each interaction term carries the *other* player's step. Derived
      here by backward error analysis; the one-step error measures order 3 for equal and unequal steps
      (`drift_order`, tests/test_games.py).
    - ``coefficients="deepmind"``: DeepMind's ``drift_utils.get_dd_coeffs`` (google-deepmind/discretisation_drift
      @e5c5623) for one update per player, turned into this form (its self coefficient multiplies
      ``∇⟨∇L, sg ∇L⟩``, twice ours): ``self = (h_φ/4, h_θ/4)``; ``cross = (h_φ/2, h_θ/2)`` simultaneous (each
      player's *own* step), ``(h_φ/2, −(h_θ/2)(2h_φ/h_θ − 1))`` alternating. They equal the derived ones iff
      ``h_φ = h_θ``; for unequal steps the one-step error measures order 2 (docs/theory.md §10).

    **Returns:** a `DriftCoefficients`; ``h_phi`` and ``h_theta`` may be arrays (traced values).
    """
    check_choice("coefficients", coefficients, COEFFICIENTS)
    sign = -1 if alternating else 1
    if coefficients == "derived":
        return DriftCoefficients(h_phi / 4, h_theta / 2, h_theta / 4, sign * h_phi / 2)
    cross2 = -(h_theta / 2) * (2 * h_phi / h_theta - 1) if alternating else h_theta / 2
    return DriftCoefficients(h_phi / 4, h_phi / 2, h_theta / 4, cross2)


def _cross1(game, phi, theta):
    """``∇_θL₁ᵀ sg(∇_θL₂)``: player φ's interaction term."""
    return jnp.vdot(jax.grad(game.loss1, 1)(phi, theta), jax.lax.stop_gradient(jax.grad(game.loss2, 1)(phi, theta)))


def _cross2(game, phi, theta):
    """``∇_φL₂ᵀ sg(∇_φL₁)``: player θ's interaction term."""
    return jnp.vdot(jax.grad(game.loss2, 0)(phi, theta), jax.lax.stop_gradient(jax.grad(game.loss1, 0)(phi, theta)))


def modified_losses(game: Game, h_phi: ArrayLike, h_theta: ArrayLike, *, alternating: bool = False,
                    coefficients: str = "derived") -> tuple[Callable, Callable]:
    """The modified losses ``(Ẽ₁, Ẽ₂)`` of simultaneous or alternating GD (module docstring; Rosca et al. 2021).

    Only ``∇_φ Ẽ₁`` and ``∇_θ Ẽ₂`` are meaningful (the ``sg`` factors are held fixed). ``coefficients``: which
    `drift_coefficients`; ``"derived"`` (the default) follows one step to O(h³), ``"deepmind"`` to O(h²) only
    for unequal steps (a negative control).
    """
    c = drift_coefficients(h_phi, h_theta, alternating=alternating, coefficients=coefficients)

    def e1(phi, theta):
        g_phi = jax.grad(game.loss1, 0)(phi, theta)
        return game.loss1(phi, theta) + c.self1 * jnp.vdot(g_phi, g_phi) + c.cross1 * _cross1(game, phi, theta)

    def e2(phi, theta):
        g_theta = jax.grad(game.loss2, 1)(phi, theta)
        return game.loss2(phi, theta) + c.self2 * jnp.vdot(g_theta, g_theta) + c.cross2 * _cross2(game, phi, theta)

    return e1, e2


def cancel_interaction(game: Game, h_phi: ArrayLike, h_theta: ArrayLike, *, alternating: bool = False,
                       strength: ArrayLike = 1.0, coefficients: str = "derived") -> Game:
    """The game with explicit regularisers that cancel the interaction terms of the drift.

    ``L₁ − s c₁ ∇_θL₁ᵀ sg(∇_θL₂)`` and ``L₂ − s c₂ ∇_φL₂ᵀ sg(∇_φL₁)`` with the interaction coefficients
    ``(c₁, c₂)`` = ``(cross1, cross2)`` of `drift_coefficients` (``"derived"``: ``h_θ/2``, ``±h_φ/2``);
    ``strength s = 1`` cancels them to O(h³) (Rosca et al. 2021, Sec. 5), ``s = −1`` doubles them.
    """
    c = drift_coefficients(h_phi, h_theta, alternating=alternating, coefficients=coefficients)

    def loss1(phi, theta):
        return game.loss1(phi, theta) - strength * c.cross1 * _cross1(game, phi, theta)

    def loss2(phi, theta):
        return game.loss2(phi, theta) - strength * c.cross2 * _cross2(game, phi, theta)

    return Game(loss1, loss2)


@eqx.filter_jit
def _one_step_error(game, phi, theta, h_phi, h_theta, alternating, coefficients):
    e1, e2 = modified_losses(game, h_phi, h_theta, alternating=alternating, coefficients=coefficients)
    field = lambda y: (-h_phi * jax.grad(e1, 0)(*y), -h_theta * jax.grad(e2, 1)(*y))  # noqa: E731
    flow_phi, flow_theta = integrate(field, (phi, theta), jnp.array([0.0, 1.0], phi.dtype), 1e-13, 1e-15)
    step_phi, step_theta = _step(game, phi, theta, h_phi, h_theta, alternating)
    return jnp.sqrt(jnp.sum((flow_phi[-1] - step_phi) ** 2) + jnp.sum((flow_theta[-1] - step_theta) ** 2))


def one_step_error(game: Game, phi: ArrayLike, theta: ArrayLike, h_phi: ArrayLike, h_theta: ArrayLike, *,
                   alternating: bool = False, coefficients: str = "derived") -> Array:
    """``|(φ₁, θ₁) − flow(1)|``: one GD step against the modified-loss flow over unit (step) time.

    ``h_phi``, ``h_theta`` may be arrays of one shape (one error each). Solved with diffrax at rtol 1e-13.
    ``coefficients`` as in `modified_losses`.
    """
    check_choice("coefficients", coefficients, COEFFICIENTS)  # before compiling
    h_phi, h_theta = jnp.broadcast_arrays(jnp.asarray(h_phi, float), jnp.asarray(h_theta, float))
    check_positive("h_phi", h_phi)
    check_positive("h_theta", h_theta)
    phi, theta = jnp.asarray(phi, float), jnp.asarray(theta, float)
    # a loop over one compiled program: a vmap over diffrax's adaptive loop compiles 2–3× slower
    errors = [_one_step_error(game, phi, theta, a, b, alternating, coefficients)
              for a, b in zip(h_phi.ravel(), h_theta.ravel())]
    return jnp.asarray(errors).reshape(h_phi.shape)


def drift_order(game: Game, phi: ArrayLike, theta: ArrayLike, scales: ArrayLike, *, ratio: float = 1.0,
                alternating: bool = False, coefficients: str = "derived") -> Order:
    """The measured order of the one-step error in the step size: 3 with the ``"derived"`` `drift_coefficients`;
    with ``"deepmind"``, 3 at ``ratio = 1`` and 2 otherwise (docs/theory.md §10; tests/test_games.py).

    Step sizes ``h_φ = s``, ``h_θ = ratio·s`` for each ``s`` in ``scales``. **Returns:** an `Order` over ``scales``.
    """
    scales = np.sort(np.asarray(scales, float))
    if scales.ndim != 1 or scales.size < 2:
        raise InertiaError("scales must hold at least two step sizes")
    check_positive("ratio", ratio)
    errors = np.asarray(one_step_error(game, phi, theta, scales, ratio * scales, alternating=alternating,
                                       coefficients=coefficients))
    order, residual = fit_order(scales, errors)
    return Order(scales, errors, order, residual)
