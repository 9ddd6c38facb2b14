"""One module per group of claims from the seed papers; importing this package registers them all.

`CLAIMS` maps a claim id to its `Claim`. Modules are imported in the order the report lists them.
"""

from ._registry import CLAIMS, Claim, Outcome, claim, verdict
from . import conventions, quadratics  # noqa: F401  (registration)
from . import networks  # noqa: F401  (registration)

__all__ = ["CLAIMS", "Claim", "Outcome", "claim", "verdict"]
