"""inertia: the dynamics of gradient descent and momentum, simulated fast, predicted exactly, checked.

The public namespace is flat; the concepts live in modules of the same name (`methods`, `objectives`,
`noise`, `simulate`, `stability`, …).
"""

from ._checks import InertiaError
from .methods import GD, HeavyBall, Method, Nesterov, effective_lr, grid
from .noise import Gaussian, Minibatch, Noise
from .noise import SVAG, LabelNoise
from .stationary import Stationary, covariance, covariance_ou
from .sde import SME
from .escape import DoubleWell
from .objectives import (Beale, FiniteSum, Function, Himmelblau, LeastSquares, LogisticRegression, Objective,
                         Quadratic, Rosenbrock)
from .simulate import Trajectory, run, sweep

__version__ = "0.1.0"

__all__ = [
    "InertiaError", "Method", "GD", "HeavyBall", "Nesterov", "effective_lr", "grid",
    "Objective", "Quadratic", "Function", "Rosenbrock", "Himmelblau", "Beale", "FiniteSum", "LeastSquares",
    "LogisticRegression", "Noise", "Gaussian", "Minibatch", "Trajectory", "run", "sweep",
    "SVAG", "LabelNoise", "Stationary", "covariance", "covariance_ou", "SME", "DoubleWell",
]
