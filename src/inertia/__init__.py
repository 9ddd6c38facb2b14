"""inertia: the dynamics of gradient descent and momentum, simulated fast, predicted exactly, checked.

The public namespace is flat; the concepts live in modules of the same name (`methods`, `objectives`,
`noise`, `simulate`, `stability`, `stationary`, `sde`, `escape`, …).
"""

from . import stability
from ._checks import InertiaError
from .escape import DoubleWell
from .methods import GD, HeavyBall, Method, Nesterov, effective_lr, grid
from .noise import SVAG, Gaussian, LabelNoise, Minibatch, Noise
from .objectives import (Beale, FiniteSum, Function, Himmelblau, LeastSquares, LogisticRegression, Objective,
                         Quadratic, Rosenbrock)
from .sde import SME
from .simulate import Trajectory, run, sweep
from .stationary import Stationary, covariance, covariance_ou

__version__ = "0.1.0"

__all__ = [
    "InertiaError", "Method", "GD", "HeavyBall", "Nesterov", "effective_lr", "grid",
    "Objective", "Quadratic", "Function", "Rosenbrock", "Himmelblau", "Beale", "FiniteSum", "LeastSquares",
    "LogisticRegression", "Noise", "Gaussian", "Minibatch", "SVAG", "LabelNoise", "Trajectory", "run", "sweep",
    "stability", "Stationary", "covariance", "covariance_ou", "SME", "DoubleWell",
]
