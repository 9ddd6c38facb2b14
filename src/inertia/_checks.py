"""Argument checks at the public boundary.

Every check raises `InertiaError` naming the argument and its allowed range. Traced values (inside
`jit`/`vmap`) are skipped: they were checked when the concrete object was built.
"""

from __future__ import annotations

import jax
import numpy as np


class InertiaError(ValueError):
    """A bad argument or a question with no answer. The message names the argument and the allowed range."""


def _concrete(value):
    leaves = jax.tree_util.tree_leaves(value)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        return None
    return np.asarray(value, dtype=float)


def check_range(name: str, value, low: float, high: float, *, low_open=False, high_open=False):
    """Raise unless every entry of `value` lies in the interval from `low` to `high`."""
    arr = _concrete(value)
    if arr is None:
        return
    ok_low = arr > low if low_open else arr >= low
    ok_high = arr < high if high_open else arr <= high
    if not (np.all(np.isfinite(arr)) and np.all(ok_low) and np.all(ok_high)):
        bad = arr[~(ok_low & ok_high & np.isfinite(arr))].ravel()[0]
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise InertiaError(f"{name} must lie in {interval}; got {bad:g}")


def check_positive(name: str, value):
    """Raise unless every entry of `value` is finite and > 0."""
    check_range(name, value, 0.0, np.inf, low_open=True, high_open=True)


def check_finite(name: str, value):
    """Raise unless every entry of `value` is finite."""
    arr = _concrete(value)
    if arr is not None and not np.all(np.isfinite(arr)):
        raise InertiaError(f"{name} must be finite; it has {int(np.sum(~np.isfinite(arr)))} non-finite entries")


def check_int(name: str, value, low: int = 0):
    """Raise unless `value` is an integer >= `low`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InertiaError(f"{name} must be an integer >= {low}; got {value!r}")
