"""One module per group of claims from the seed papers; importing this package registers them all.

`CLAIMS` maps a claim id to its `Claim`. Modules are imported in the order the report lists them.
"""

from ._registry import CLAIMS, Claim, Outcome, claim, verdict
from . import conventions, quadratics, continuous_time, drift, stochastic, networks  # noqa: F401,E402  (registration, report order)

__all__ = ["CLAIMS", "Claim", "Outcome", "claim", "verdict"]
