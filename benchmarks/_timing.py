"""Timing shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, so this folder is importable)."""

import time


def timed(fn, repeat=1):
    """The best wall time over `repeat` calls of ``fn()``, and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out
