"""inertia: the dynamics of gradient descent and momentum, simulated fast, predicted exactly, checked.

The public namespace is flat; each concept lives in the module of the same name: `methods`, `objectives`,
`noise`, `simulate`, `stability`, `flows`, `order`, `drift`, `games`, `stationary`, `sde`, `escape`,
`hessian`, `ntk`, and the package `nn` (data, models, training).
"""

import importlib

from ._checks import InertiaError
from ._version import __version__ as __version__

#: Where each public name lives. Names are imported on first use (PEP 562), so that importing `inertia` (and
#: ``inertia --help``) loads no JAX until something needs it.
_HOME = {
    "diagnose": None, "hessian": None, "nn": None, "ntk": None, "smoothness": None, "stability": None,  # submodules
    "DAL": "drift", "dal": "drift", "igr_loss": "drift",
    "DoubleWell": "escape",
    **dict.fromkeys(["GradientFlow", "HighResolutionODE", "Model", "ModifiedFlow", "ModifiedODE", "PrincipalFlow",
                     "Solution", "ThirdOrderFlow", "manifold_velocity", "modified_loss", "solve"], "flows"),
    **dict.fromkeys(["Game", "cancel_interaction", "DriftCoefficients", "drift_coefficients", "drift_order",
                     "modified_losses", "one_step_error", "play"], "games"),
    **dict.fromkeys(["AbstractMethod", "Method", "GD", "HeavyBall", "Nesterov", "QHM", "Adam", "RMSProp", "FromOptax",
                     "from_optax", "TwoStepState", "AdamState", "RMSPropState", "OptaxState", "effective_lr", "grid",
                     "require_linear"], "methods"),
    **dict.fromkeys(["SVAG", "Gaussian", "LabelNoise", "Minibatch", "Noise"], "noise"),
    **dict.fromkeys(["Beale", "FiniteSum", "Function", "Himmelblau", "LeastSquares", "LogisticRegression", "Objective",
                     "Quadratic", "Rosenbrock"], "objectives"),
    **dict.fromkeys(["Order", "attraction_rate", "convergence_order", "manifold_distance"], "order"),
    "SME": "sde",
    **dict.fromkeys(["Trajectory", "run", "sweep"], "simulate"),
    **dict.fromkeys(["Stationary", "covariance", "covariance_ou"], "stationary"),
}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'inertia' has no attribute {name!r}")
    module = importlib.import_module(f".{_HOME[name] or name}", __name__)
    value = module if _HOME[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    # methods, objectives, noise, simulation
    "InertiaError", "AbstractMethod", "Method", "GD", "HeavyBall", "Nesterov", "QHM", "Adam", "RMSProp", "FromOptax",
    "from_optax", "effective_lr", "grid",
    "Objective", "Quadratic", "Function", "Rosenbrock", "Himmelblau", "Beale", "FiniteSum", "LeastSquares",
    "LogisticRegression", "Noise", "Gaussian", "Minibatch", "SVAG", "LabelNoise", "Trajectory", "run", "sweep",
    "stability", "hessian", "nn", "ntk",
    # continuous-time models, measured orders, discretisation drift, games
    "Model", "GradientFlow", "ModifiedODE", "ModifiedFlow", "ThirdOrderFlow", "PrincipalFlow", "HighResolutionODE",
    "Solution", "solve", "modified_loss", "manifold_velocity",
    "Order", "convergence_order", "manifold_distance", "attraction_rate",
    "DAL", "dal", "igr_loss", "Game", "play", "modified_losses", "cancel_interaction",
    "DriftCoefficients", "drift_coefficients", "one_step_error", "drift_order",
    # stochastic: stationary statistics, SDEs, escape
    "Stationary", "covariance", "covariance_ou", "SME", "DoubleWell",
]
