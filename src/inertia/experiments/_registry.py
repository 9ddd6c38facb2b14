"""The registry of claims that `inertia reproduce` checks.

A claim is a statement from a paper with a quick and a full configuration, and a function that runs the
configuration and returns an `Outcome`: a verdict, the numbers that decided it, and figures.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal

from matplotlib.figure import Figure

Verdict = Literal["holds", "fails", "inconclusive"]


@dataclasses.dataclass
class Outcome:
    """What a claim's run found.

    **Fields:** ``verdict``: holds / fails / inconclusive; ``summary``: one or two sentences with the numbers
    that decided the verdict; ``numbers``: JSON-serialisable measurements; ``figures``: matplotlib figures.
    """

    verdict: Verdict
    summary: str
    numbers: dict
    figures: list[Figure] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Claim:
    """A checkable statement: ``run(**quick)`` or ``run(**full)`` returns an `Outcome`."""

    id: str
    title: str
    source: str
    statement: str
    quick: dict
    full: dict
    run: Callable[..., Outcome]


CLAIMS: dict[str, Claim] = {}


def claim(*, id: str, title: str, source: str, statement: str, quick: dict, full: dict):
    """Register the decorated ``run(**config) -> Outcome`` as a claim."""

    def register(run: Callable[..., Outcome]) -> Callable[..., Outcome]:
        if id in CLAIMS:
            raise ValueError(f"claim id {id!r} is registered twice")
        CLAIMS[id] = Claim(id, title, source, statement, quick, full, run)
        return run

    return register


def verdict(holds: bool, inconclusive: bool = False) -> Verdict:
    """``inconclusive`` wins over ``holds``/``fails``."""
    return "inconclusive" if inconclusive else ("holds" if holds else "fails")
