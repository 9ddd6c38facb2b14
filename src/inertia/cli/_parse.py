"""Parsers for command-line values: numbers, lists, ranges, objectives, methods, files.

Every parser names the option as the user wrote it (``--lr``, not ``h``) and the allowed range, and imports no JAX
until a command runs. The argparse ``type=`` factories raise `argparse.ArgumentTypeError`, which argparse prefixes
with ``argument --NAME:``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
from typing import Callable

import numpy as np

from .._checks import InertiaError, check_range

#: Method names on the command line; the same keys as `inertia.stability.METHODS` (tests/test_checks.py checks it),
#: kept here so that parsing needs no JAX.
METHOD_NAMES = ("gd", "heavy-ball", "nesterov", "heavy-ball-normalised", "nesterov-normalised")
OBJECTIVE_NAMES = ("rosenbrock", "himmelblau", "beale")
#: The names `inertia.nn.data.DATASETS` loads (checked in tests/test_checks.py).
DATASET_NAMES = ("digits", "breast_cancer", "mnist1d", "mnist", "fashion_mnist", "cifar10")
DEFAULT_X0 = {"rosenbrock": [-1.2, 1.0], "himmelblau": [0.0, 0.0], "beale": [1.0, 1.0]}

_RANGE = re.compile(r"^(log:)?([^:,]*):([^:,]*):([^:,]*)$")


def _number(text: str) -> float:
    value = float(text)  # ValueError for what is not a number
    if not math.isfinite(value):
        raise ValueError
    return value


def floats(text: str, name: str) -> np.ndarray:
    """``"1,10,100"`` → array; ``"0.01:1:20"`` → 20 values spaced linearly; ``"log:1e-3:1:20"`` → geometrically.

    Every value is finite; a list or range is never empty; a log range needs positive ends.
    """
    form = f"{name} must be numbers like 1,2,3 or lo:hi:n or log:lo:hi:n"
    text = text.strip()
    match = _RANGE.match(text)
    if match:
        try:
            lo, hi = _number(match.group(2)), _number(match.group(3))
        except ValueError:
            raise InertiaError(f"{form}; got {text!r} (the ends must be finite numbers)") from None
        if not re.fullmatch(r"\s*\d+\s*", match.group(4)) or int(match.group(4)) < 1:
            raise InertiaError(f"{form}; got {text!r} (n, the number of values, must be an integer >= 1)")
        n = int(match.group(4))
        if match.group(1):
            if lo <= 0 or hi <= 0:
                raise InertiaError(f"{name}: a log range needs positive ends; got {text!r}")
            return np.geomspace(lo, hi, n)
        return np.linspace(lo, hi, n)
    if ":" in text:
        raise InertiaError(f"{form}; got {text!r}")
    items = [item.strip() for item in text.split(",")]
    if not text or any(item == "" for item in items):
        raise InertiaError(f"{name} needs at least one number and no empty entries; got {text!r}")
    try:
        return np.array([_number(item) for item in items])
    except ValueError:
        raise InertiaError(f"{form}, each finite; got {text!r}") from None


def checked_floats(text: str, name: str, low: float, high: float, *, low_open=False, high_open=False) -> np.ndarray:
    """`floats`, each in the interval from `low` to `high`."""
    values = floats(text, name)
    check_range(name, values, low, high, low_open=low_open, high_open=high_open)
    return values


def number(low: float = -math.inf, high: float = math.inf, *, low_open=False, high_open=False):
    """An argparse ``type=``: one finite number in the interval from `low` to `high`."""
    interval = f"{'(' if low_open or low == -math.inf else '['}{low:g}, {high:g}" \
               f"{')' if high_open or high == math.inf else ']'}"

    def parse(text: str) -> float:
        try:
            value = _number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}; got {text!r}") from None
        if (value <= low if low_open else value < low) or (value >= high if high_open else value > high):
            raise argparse.ArgumentTypeError(f"must lie in {interval}; got {text!r}")
        return value

    return parse


def integer(low: int = 0, high: int | None = None):
    """An argparse ``type=``: an integer in ``[low, high]``."""
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"

    def parse(text: str) -> int:
        value: int | None
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            try:  # 1e6 is a fine way to write a million
                as_float = float(text)
                value = int(as_float) if as_float.is_integer() else None
            except (ValueError, OverflowError):
                value = None
            if value is None:
                raise argparse.ArgumentTypeError(f"must be an integer {allowed}; got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {allowed}; got {text!r}")
        return value

    return parse


def method_name(text: str) -> str:
    """An argparse ``type=``: one of `METHOD_NAMES`."""
    if text not in METHOD_NAMES:  # ArgumentTypeError keeps this message; argparse would replace a ValueError's
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(METHOD_NAMES)}; got {text!r}")
    return text


#: The methods that only simulation runs (no theory), by name: their options besides ``--lr``, with defaults.
SIMULATED = {"qhm": {"momentum": "0.9", "nu": "0.7"}, "adam": {"b1": "0.9", "b2": "0.999", "eps": "1e-8"},
             "rmsprop": {"decay": "0.9", "eps": "1e-8"}}


#: Every name ``--method`` takes where a command only simulates: the methods with a theory, then `SIMULATED`.
SIMULATED_METHOD_NAMES = (*METHOD_NAMES, *SIMULATED)


def simulated_method_name(text: str) -> str:
    """An argparse ``type=``: one of `SIMULATED_METHOD_NAMES`."""
    if text not in SIMULATED_METHOD_NAMES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(SIMULATED_METHOD_NAMES)}; got {text!r}")
    return text


def add_method_options(p) -> None:
    """``--nu``, ``--b1``, ``--b2``, ``--eps``, ``--decay``: the hyper-parameters of qhm, adam and rmsprop."""
    p.add_argument("--nu", help="qhm's ν in [0, 1] (default 0.7); values, as --lr")
    p.add_argument("--b1", help="adam's β₁ (default 0.9); values, as --lr")
    p.add_argument("--b2", help="adam's β₂ (default 0.999); values, as --lr")
    p.add_argument("--eps", help="adam's and rmsprop's ε (default 1e-8); values, as --lr")
    p.add_argument("--decay", help="rmsprop's ρ (default 0.9); values, as --lr")


def simulated_method(args, *, single: bool = False):
    """The method of ``--method`` with its hyper-parameters from the options: a grid over every listed value, or
    (``single``) one method, each option holding one value."""
    from .. import methods
    from ..stability import METHODS

    own = SIMULATED.get(args.method, {"momentum": "0"})
    given = {"lr": args.lr} | {name: default if getattr(args, name) is None else getattr(args, name)
                               for name, default in own.items()}
    values = {name: floats(str(value), f"--{name}") for name, value in given.items()}
    simulated: dict[str, Callable[..., methods.AbstractMethod]] = {
        "qhm": methods.QHM, "adam": methods.Adam, "rmsprop": methods.RMSProp}
    constructor: Callable[..., methods.AbstractMethod] = simulated.get(args.method) or METHODS[args.method]
    with as_options(**{name: f"--{name}" for name in values}):  # the methods check their ranges; errors name options
        if not single:
            return methods.grid(constructor, **values)
        several = [name for name, v in values.items() if v.size != 1]
        if several:
            raise InertiaError(f"--{several[0]} takes one value in run; use sweep for several")
        return constructor(**{name: float(v[0]) for name, v in values.items()})


def shown_hyperparameters(method) -> list[str]:
    """The hyper-parameters a results table shows: all of ``method.coords()``, except the look-ahead ``a`` of the
    methods whose ``a`` follows from the others (0 for gd and heavy ball, ``a = β`` for Nesterov); QHM's look-ahead
    is the only trace of its ν there (`inertia.methods.QHM`)."""
    return [n for n in method.coords() if n != "lookahead" or method.name == "QHM"]


def objective_spec(text: str) -> str:
    """An argparse ``type=``: ``rosenbrock``, ``himmelblau``, ``beale`` or ``quadratic:EIG,EIG,…`` (checked here,
    built later by `objective`)."""
    name, colon, rest = text.partition(":")
    if name == "quadratic":
        if not colon or not rest.strip():
            raise argparse.ArgumentTypeError(f"quadratic needs its eigenvalues, e.g. quadratic:1,10; got {text!r}")
        try:
            floats(rest, "--objective quadratic")
        except InertiaError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("--objective ")) from None
        return text
    if name not in OBJECTIVE_NAMES or colon:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(OBJECTIVE_NAMES)} or quadratic:EIG,EIG,…; "
                                         f"got {text!r}")
    return text


def objective(text: str):
    """The objective named by an `objective_spec` (a diagonal quadratic for ``quadratic:EIG,…``)."""
    from .. import objectives

    name, _, rest = text.partition(":")
    if name == "quadratic":
        return objectives.Quadratic(floats(rest, "--objective quadratic"))
    return {"rosenbrock": objectives.Rosenbrock, "himmelblau": objectives.Himmelblau, "beale": objectives.Beale}[name]()


def dimension(text: str) -> int:
    """The dimension of the objective named by an `objective_spec`."""
    name, _, rest = text.partition(":")
    return len(floats(rest, "--objective quadratic")) if name == "quadratic" else 2


def start(text: str | None, objective_text: str) -> np.ndarray:
    """``--x0``: comma-separated, one entry per dimension of the objective (its usual start by default)."""
    dim = dimension(objective_text)
    if text is None:
        return np.asarray(DEFAULT_X0.get(objective_text.partition(":")[0], np.ones(dim)), dtype=float)
    x0 = floats(text, "--x0")
    if ":" in text:
        raise InertiaError(f"--x0 must be comma-separated numbers, not a range; got {text!r}")
    if x0.size != dim:
        raise InertiaError(f"--x0 must have {dim} entries for --objective {objective_text}; got {x0.size}")
    return x0


def names(text: str, name: str, allowed) -> list[str]:
    """A comma-separated list of names from `allowed`, at least one, no repeats."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise InertiaError(f"{name} needs at least one of {', '.join(allowed)}, comma-separated; got {text!r}")
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise InertiaError(f"{name} must be names from {', '.join(allowed)}; got {unknown[0]!r}")
    return list(dict.fromkeys(items))


def matrix_file(path: str, name: str) -> np.ndarray:
    """A finite matrix from a ``.npy`` file or a whitespace-separated text file."""
    if not os.path.isfile(path):
        raise InertiaError(f"{name}: file {path!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False) if path.endswith(".npy") else np.loadtxt(path, ndmin=2)
        arr = np.asarray(arr, dtype=float)
    except Exception as error:  # noqa: BLE001  whatever the file holds, it is not a matrix we can read
        reason = str(error).splitlines()[0][:100] if str(error) else type(error).__name__
        raise InertiaError(f"{name}: {path!r} is not a matrix of numbers ({reason})") from None
    if not np.all(np.isfinite(arr)):
        raise InertiaError(f"{name}: {path!r} has non-finite entries")
    return arr


@contextlib.contextmanager
def as_options(**options):
    """Rename the library's argument names (``n_train="--n-train"``) in an `InertiaError` raised inside, so that
    the message names the option as the user wrote it."""
    try:
        yield
    except InertiaError as error:
        text = str(error)
        for name, option in options.items():
            if re.match(rf"{name}\b", text):
                text = option + text[len(name):]
                break
        raise InertiaError(text) from None


def data_path(name: str, path: str | None) -> None:
    """``--path`` belongs to the data sets read from the user's files, and only to them."""
    if path is not None and name not in ("mnist", "fashion_mnist", "cifar10"):
        raise InertiaError(f"--path is only for --data mnist, fashion_mnist or cifar10; --data {name} is built in")


def add_scheduler_option(p) -> None:
    """``--scheduler ADDRESS``: run the chunks of a sweep or of a training grid on a Dask cluster."""
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the chunks on a Dask cluster: its scheduler's address, e.g. tcp://host:8786, or "
                        "'local' for a LocalCluster on this machine (needs dask.distributed; docs/scaling.md)")


@contextlib.contextmanager
def dask_client(address: str | None):
    """A Dask ``distributed.Client`` connected to ``address`` ('local': a LocalCluster here), or None without one."""
    if address is None:
        yield None
        return
    try:
        import distributed
    except ImportError:
        raise InertiaError("--scheduler needs Dask's distributed scheduler: pip install 'distributed==2026.8.0'") \
            from None
    if address == "local":
        with distributed.LocalCluster(processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(address, timeout=30)
    except OSError as error:
        raise InertiaError(f"--scheduler {address!r}: no Dask scheduler answers there ({error})") from None
    with client:
        yield client
