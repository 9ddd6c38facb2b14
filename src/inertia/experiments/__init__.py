"""One module per group of claims, mirroring the library; importing this package registers them all.

`CLAIMS` maps a claim id to its `Claim`. Modules are imported in the order the report lists them.
"""

from . import (  # noqa: F401  (registration, in report order)
    autoencoder,
    continuous_time,
    conventions,
    diagnosis,
    drift,
    escape,
    gan,
    gan_mnist,
    high_resolution,
    igr,
    lm_finetune,
    lzu_applications,
    marginal_value,
    momentum_batch_size,
    ntk,
    quadratics,
    rate_bounds,
    reinforcement,
    sde,
    sharpness,
    smoothness,
    stationary,
    weak_approximation,
)
from ._registry import CLAIMS, PAPERS, Claim, Control, claim, plot_data, verdict

__all__ = ["CLAIMS", "PAPERS", "Claim", "Control", "claim", "plot_data", "verdict"]
