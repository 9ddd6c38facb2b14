"""The registry of claims that `inertia reproduce` checks.

A claim is a statement from a paper, with a quick and a full configuration, split into three steps:

- ``measure(**config) -> dict``: runs the experiment and returns its numbers. Numbers under the key ``"plot"`` are
  for drawing only and are left out of results.json.
- ``judge(numbers) -> (verdict, summary)``: the decision rule. Its tolerance is fixed before measuring and the
  claim's statement says where it comes from (a standard error, a Monte Carlo interval, a bound).
- ``draw(numbers) -> [Figure]``: the figures.

Every claim carries negative **controls**: deliberately wrong variants (a wrong coefficient, the continuous-time
formula in place of the discrete one, the un-rescaled learning rate, ...). A control is the same ``measure`` with
some configuration entries overridden, judged by the same ``judge``; it must come out ``fails``. A claim whose
control does not fail is broken, whatever its own verdict says.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, get_args

Verdict = Literal["holds", "fails", "inconclusive"]
Paper = Literal["kovachki-stuart-2021", "wang-2024", "liu-2024", "rosca-thesis", "liu-ziyin-ueda-2021", "supporting"]
Precision = Literal["float32", "float64"]
PAPERS: tuple[str, ...] = get_args(Paper)


@dataclasses.dataclass(frozen=True)
class Control:
    """A deliberately wrong variant of a claim, which must come out ``fails`` under the claim's own rule.

    **Fields:** ``id``: short name; ``description``: what is wrong, in words; ``overrides``: configuration entries
    that make the variant wrong (merged over the claim's configuration); ``quick`` and ``full``: further overrides
    used in that mode only, for a smaller run of the control (never to make it pass or fail).
    """

    id: str
    description: str
    overrides: dict = dataclasses.field(default_factory=dict)
    quick: dict = dataclasses.field(default_factory=dict)
    full: dict = dataclasses.field(default_factory=dict)

    def config(self, base: dict, mode: str) -> dict:
        """The control's configuration: ``base`` with the wrong variant and that mode's smaller run."""
        return {**base, **self.overrides, **(self.quick if mode == "quick" else self.full)}


@dataclasses.dataclass(frozen=True)
class Claim:
    """A checkable statement: ``judge(measure(**config))`` gives its verdict, ``draw`` its figures."""

    id: str
    title: str
    paper: Paper
    source: str
    statement: str
    quick: dict
    full: dict
    measure: Callable[..., dict]
    judge: Callable[[dict], tuple[Verdict, str]]
    draw: Callable[[dict], list]
    controls: tuple[Control, ...]
    precision: Precision = "float64"

    def config(self, mode: str) -> dict:
        """The configuration of ``mode`` ("quick" or "full")."""
        return self.quick if mode == "quick" else self.full


CLAIMS: dict[str, Claim] = {}


def _check_declaration(id: str, paper: str, controls, precision: str) -> None:
    if id in CLAIMS:
        raise ValueError(f"claim id {id!r} is registered twice")
    if paper not in PAPERS:
        raise ValueError(f"claim {id!r}: paper must be one of {', '.join(PAPERS)}; got {paper!r}")
    if not controls:
        raise ValueError(f"claim {id!r} declares no negative control; every claim needs at least one")
    if len({c.id for c in controls}) != len(controls):
        raise ValueError(f"claim {id!r}: control ids must be distinct")
    if precision not in get_args(Precision):
        raise ValueError(f"claim {id!r}: precision must be float32 or float64; got {precision!r}")


def claim(*, id: str, title: str, paper: Paper, source: str, statement: str, quick: dict, full: dict,
          judge: Callable[[dict], tuple[Verdict, str]], draw: Callable[[dict], list],
          controls: list[Control] | tuple[Control, ...], precision: Precision = "float64"):
    """Register the decorated ``measure(**config) -> numbers`` as a claim, with its ``judge``, ``draw`` and controls.

    ``paper`` is one of the five seed papers (kovachki-stuart-2021, wang-2024, liu-2024, rosca-thesis,
    liu-ziyin-ueda-2021) or ``"supporting"`` for a result from another source (named in ``source``). ``precision``
    is the JAX float precision that `reproduce` sets around the claim's runs.
    """
    controls = tuple(controls)
    _check_declaration(id, paper, controls, precision)

    def register(measure: Callable[..., dict]) -> Callable[..., dict]:
        CLAIMS[id] = Claim(id, title, paper, source, statement, quick, full, measure, judge, draw, controls, precision)
        return measure

    return register


def verdict(holds: bool, inconclusive: bool = False) -> Verdict:
    """``inconclusive`` wins over ``holds``/``fails``."""
    return "inconclusive" if inconclusive else ("holds" if holds else "fails")


def plot_data(numbers: dict) -> dict[str, Any]:
    """The drawing-only part of a claim's numbers (key ``"plot"``), or an empty dict."""
    return numbers.get("plot", {})
