"""Why full-mode `diagnose-predictions` fails on the Fashion-MNIST ResNet's head: the loss beyond its quadratic model.

At the claim's checkpoint (the ResNet's softmax head at the minimum of its L2-regularised cross-entropy), runs HB at
the claim's learning rate times ``--scale`` twice on the **same minibatch draws**: on the real head, and on its
local quadratic model, whose per-example gradients are ``g_i + H_i δ`` with the exact per-example Hessians
(``H_i = J_iᵀ(diag p_i − p_i p_iᵀ)J_i + wd·I`` for the head). Prints the stationary excess loss ½Σμ_i Var(u_iᵀθ) of
each against the exact discrete prediction, and their paired difference: the part of the excess that the real loss
adds over its quadratic model. If it is an O(h) anharmonic correction it halves when the step halves (docs/diagnose.md,
"When not to trust it"). Run from the repository root (about 70 CPU-s per scale):

    PYTHONPATH=src python benchmarks/diagnose_anharmonic.py [--epochs 2] [--scale 1.0] [--replicas 256] [--seed 7]
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from inertia.diagnose import check, predict
from inertia.experiments.diagnosis import head_at_minimum
from inertia.methods import HeavyBall

WEIGHT_DECAY, MOMENTUM, SHARPNESS_FRACTION = 0.05, 0.3, 0.6  # the claim's full-mode settings


def quadratic_head(loss, params, pooled):
    """``(loss, data)`` of the head's local quadratic model in ``δ = θ − θ*``: per example
    ``g_iᵀδ + ½ (J_iδ)ᵀ(diag p_i − p_i p_iᵀ)(J_iδ) + (wd/2)‖δ‖²`` with ``J_iδ = δW φ_i + δb`` (the logits' tangent)."""
    flat, unravel = ravel_pytree(params)
    phi, y = pooled
    single = lambda z, x, label: loss(unravel(z), (x[None], label[None]))
    gradients = jax.vmap(jax.grad(single), (None, 0, 0))(flat, phi, y)
    probabilities = jax.nn.softmax(phi @ params["w"].T + params["b"], -1)

    def quadratic(p, batch):
        features, prob, g = batch
        tangent = features @ p["w"].T + p["b"]
        z = ravel_pytree(p)[0]
        curvature = jnp.sum(prob * tangent**2, -1) - jnp.sum(prob * tangent, -1) ** 2
        return jnp.mean(g @ z + 0.5 * curvature) + 0.5 * WEIGHT_DECAY * jnp.sum(z**2)

    # the model's per-example Hessians must be the head's own
    data = (phi, probabilities, gradients)
    for i in range(3):
        exact = jax.hessian(single)(flat, phi[i], y[i])
        model = jax.hessian(lambda z: quadratic(unravel(z), jax.tree.map(lambda a: a[i:i + 1], data)))(0 * flat)
        assert float(jnp.max(jnp.abs(model - exact))) < 1e-12 * float(jnp.max(jnp.abs(exact)))
    return quadratic, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", default="resnet-fashion_mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="learning rate relative to the claim's")
    parser.add_argument("--replicas", type=int, default=256)
    parser.add_argument("--steps", type=int, default=600, help="at scale 1; divided by the scale")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    loss, params, pooled, m = head_at_minimum(args.network, args.epochs, weight_decay=WEIGHT_DECAY)
    quadratic, data = quadratic_head(loss, params, pooled)
    method = HeavyBall.from_practitioner(args.scale * SHARPNESS_FRACTION * (1 - MOMENTUM) / float(m.eigenvalues[0]),
                                         MOMENTUM)
    predicted = predict(method, m)
    steps = int(round(args.steps / args.scale))
    runs = {}
    for name, f, p, d in (("real", loss, params, pooled), ("quadratic", quadratic, jax.tree.map(jnp.zeros_like,
                                                                                                params), data)):
        checked, traces = check(f, p, d, method, m, predicted, key=jax.random.key(args.seed), steps=steps,
                                replicas=args.replicas, stability_steps=0)
        window = traces["projections"][:, steps // 2:]
        per_replica = 0.5 * (((window - window.mean(0)) ** 2).mean(1) * args.replicas / (args.replicas - 1)) @ (
            m.eigenvalues[: window.shape[2]])
        runs[name] = (checked["stationary"]["excess_loss"], per_replica)
    exact = predicted["stationary"]["excess_loss"]
    paired = runs["real"][1] - runs["quadratic"][1]
    print(json.dumps({
        "h": float(method.h), "steps": steps, "replicas": args.replicas, "exact": exact,
        "ou": predicted["stationary"]["excess_loss_ou"],
        **{f"{name}_{key}": float(run[0][key]) for name, run in runs.items() for key in ("measured", "se", "z_exact")},
        "paired_relative": float(paired.mean() / exact),
        "paired_relative_se": float(paired.std(ddof=1) / np.sqrt(paired.size) / exact)}, indent=1))


if __name__ == "__main__":
    main()
