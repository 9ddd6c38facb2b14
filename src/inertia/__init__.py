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
from . import hessian, nn, ntk  # submodules: networks (inertia.nn), Hessian tools, NTK

__version__ = "0.1.0"

__all__ = [
    "InertiaError", "Method", "GD", "HeavyBall", "Nesterov", "effective_lr", "grid",
    "Objective", "Quadratic", "Function", "Rosenbrock", "Himmelblau", "Beale", "FiniteSum", "LeastSquares",
    "LogisticRegression", "Noise", "Gaussian", "Minibatch", "Trajectory", "run", "sweep",
    "hessian", "nn", "ntk",
]
