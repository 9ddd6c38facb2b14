"""Parsers for command-line values: number lists, ranges, objectives, methods."""

from __future__ import annotations

import argparse

import numpy as np

from .._checks import InertiaError
from .. import objectives
from ..stability import METHODS


def floats(text: str, name: str) -> np.ndarray:
    """``"1,10,100"`` → array; ``"0.01:1:20"`` → 20 values spaced linearly; ``"log:1e-3:1:20"`` → geometrically."""
    try:
        if text.startswith("log:") or text.count(":") == 2:
            parts = text.removeprefix("log:").split(":")
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
            return np.geomspace(lo, hi, n) if text.startswith("log:") else np.linspace(lo, hi, n)
        values = np.array([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise InertiaError(f"{name} must be numbers like 1,2,3 or lo:hi:n or log:lo:hi:n; got {text!r}") from None
    if values.size == 0:
        raise InertiaError(f"{name} is empty")
    return values


OBJECTIVES = {"rosenbrock": objectives.Rosenbrock, "himmelblau": objectives.Himmelblau, "beale": objectives.Beale}
DEFAULT_X0 = {"rosenbrock": [-1.2, 1.0], "himmelblau": [0.0, 0.0], "beale": [1.0, 1.0]}


def objective(text: str):
    """``rosenbrock``, ``himmelblau``, ``beale``, or ``quadratic:EIG,EIG,…`` (a diagonal quadratic)."""
    name, _, rest = text.partition(":")
    if name == "quadratic":
        return objectives.Quadratic(floats(rest or "1,10", "quadratic eigenvalues"))
    if name not in OBJECTIVES:
        raise InertiaError(f"objective must be one of {', '.join(OBJECTIVES)}, quadratic:EIGS; got {text!r}")
    return OBJECTIVES[name]()


def start(text: str | None, objective_text: str, dim: int) -> np.ndarray:
    if text is None:
        return np.asarray(DEFAULT_X0.get(objective_text.partition(":")[0], np.ones(dim)), dtype=float)
    x0 = floats(text, "x0")
    if x0.size != dim:
        raise InertiaError(f"x0 must have {dim} entries for this objective; got {x0.size}")
    return x0


def method_name(text: str) -> str:
    if text not in METHODS:  # ArgumentTypeError keeps this message; argparse would replace a ValueError's
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(METHODS)}; got {text!r}")
    return text
