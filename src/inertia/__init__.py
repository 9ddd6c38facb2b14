"""inertia: the dynamics of gradient descent and momentum, simulated fast, predicted exactly, checked.

The public namespace is flat; the concepts live in modules of the same name (`methods`, `objectives`,
`noise`, `simulate`, `stability`, …).
"""

from ._checks import InertiaError
from .methods import GD, HeavyBall, Method, Nesterov, effective_lr, grid
from .noise import Gaussian, Minibatch, Noise
from .objectives import (Beale, FiniteSum, Function, Himmelblau, LeastSquares, LogisticRegression, Objective,
                         Quadratic, Rosenbrock)
from .simulate import Trajectory, run, sweep
from .flows import (GradientFlow, HighResolutionODE, Model, ModifiedFlow, ModifiedODE, PrincipalFlow, Solution,
                    ThirdOrderFlow, manifold_velocity, modified_loss, solve)
from .order import Order, attraction_rate, convergence_order, manifold_distance
from .drift import DAL, dal, igr_loss
from .games import Game, cancel_interaction, drift_order, modified_losses, one_step_error, play

__version__ = "0.1.0"

__all__ = [
    "InertiaError", "Method", "GD", "HeavyBall", "Nesterov", "effective_lr", "grid",
    "Objective", "Quadratic", "Function", "Rosenbrock", "Himmelblau", "Beale", "FiniteSum", "LeastSquares",
    "LogisticRegression", "Noise", "Gaussian", "Minibatch", "Trajectory", "run", "sweep",
    "Model", "GradientFlow", "ModifiedODE", "ModifiedFlow", "ThirdOrderFlow", "PrincipalFlow", "HighResolutionODE",
    "Solution", "solve", "modified_loss", "manifold_velocity",
    "Order", "convergence_order", "manifold_distance", "attraction_rate",
    "DAL", "dal", "igr_loss", "Game", "play", "modified_losses", "cancel_interaction", "one_step_error", "drift_order",
]
