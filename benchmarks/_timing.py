"""Timing and reporting shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, so this folder is
importable). Every script measures, in one run, inertia, the strongest simple alternative and the machine's limit
for the workload's core operation, and prints the ratios on its last lines."""

import os
import platform
import time


class Seconds(float):
    """A wall time in seconds that also carries ``cpu``: the process's CPU seconds (all threads) of the same call.

    On a loaded machine the wall time says more about the other jobs than about the code; CPU seconds say how
    much work the code did (for a multi-threaded program, idle spinning threads count too)."""

    cpu: float

    def __new__(cls, wall: float, cpu: float):
        out = super().__new__(cls, wall)
        out.cpu = cpu
        return out


def timed(fn, repeat=1):
    """The best wall time over `repeat` calls of ``fn()`` (a `Seconds`, with that call's CPU seconds), and the last
    call's result.

    ``fn`` must return host data (or block on device results) so that the time covers the whole computation."""
    best, out = Seconds(float("inf"), float("inf")), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        now = Seconds(time.perf_counter() - start, time.process_time() - cpu)
        best = min(best, now)
    return best, out


def timed_interleaved(fns, repeat=1):
    """`timed` of each of ``fns``, their calls interleaved (``a, b, a, b, …``), so that a change of the machine's load
    during the run weighs on all of them alike: a list of (best `Seconds`, last result), one per function."""
    best = [Seconds(float("inf"), float("inf")) for _ in fns]
    out: list = [None for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t, out[i] = timed(fn)
            best[i] = min(best[i], t)
    return list(zip(best, out))


def cpu_ratio(numerator, denominator) -> str:
    """``, CPU-seconds ratio R`` when both times carry CPU seconds, else nothing."""
    if not (hasattr(numerator, "cpu") and hasattr(denominator, "cpu")) or denominator.cpu <= 0:
        return ""
    return f"; in CPU seconds {numerator.cpu / denominator.cpu:.2f}x ({numerator.cpu:.3f} / {denominator.cpu:.3f})"


def machine() -> str:
    """One line naming the machine and its load: cores, CPU model (from /proc/cpuinfo) and the 1-minute load."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"{os.cpu_count()} cores, {model}, load average {load:.1f} at {now}"


def speedup_line(name: str, t_inertia: float, t_other: float, target: float | None = None) -> str:
    """``inertia vs OTHER: t_other / t_inertia`` against a target ratio (higher is better for inertia; none:
    reported only)."""
    ratio = t_other / t_inertia
    verdict = "no target" if target is None else f"target >= {target:g}x, {'met' if ratio >= target else 'NOT met'}"
    return f"RATIO inertia vs {name}: {ratio:.2f}x ({verdict}{cpu_ratio(t_other, t_inertia)})"


def limit_line(name: str, t_inertia: float, t_limit: float, target: float | None = None) -> str:
    """Inertia's speed as a fraction of the machine's limit, ``t_limit / t_inertia``, against a target fraction
    (none: reported only)."""
    fraction = t_limit / t_inertia
    verdict = "no target" if target is None else f"target >= {target:.0%}, {'met' if fraction >= target else 'NOT met'}"
    return (f"RATIO inertia as % of {name}: {fraction:.0%} ({verdict}; "
            f"inertia {t_inertia / t_limit:.2f}x the limit's time{cpu_ratio(t_inertia, t_limit)})")


def timed_numpy(fn, repeat=1, probe=None):
    """``fn()`` timed with the faster BLAS setting for it, NumPy's default threads or one thread: (time, threads,
    result). The setting is chosen on ``probe()`` (a shorter run of the same work; ``fn`` itself if not given).

    On small matrix products (100×100) a busy machine makes OpenBLAS's threads wait on each other: one thread can
    be 100× faster, and a careful user would pick it. `threadpoolctl` comes with scikit-learn."""
    from threadpoolctl import threadpool_limits

    probe = probe or fn
    t_default = timed(probe)[0]
    with threadpool_limits(limits=1, user_api="blas"):
        t_one = timed(probe)[0]
        if t_one < t_default:
            return _labelled(fn, repeat, 1)
    return _labelled(fn, repeat, "default")


def _labelled(fn, repeat, threads):
    t, out = timed(fn, repeat)
    return t, threads, out
