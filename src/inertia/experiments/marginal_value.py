"""Claim: SGD with momentum is equivalent to SGD at the same effective learning rate, except at large rate and batch.

Equivalence is shown, not assumed from a non-significant difference: two one-sided tests (`_stats.tost`) on the
paired per-seed differences (both optimisers start from the same initialisation and see the same batches), against
margins stated in the configuration, with as many seeds as a power calculation (`_stats.tost_seeds`) asks for at
the standard deviations of a pilot run (seeds 100–115, not the seeds judged here).
"""

from __future__ import annotations

import functools
import warnings

import jax
import matplotlib.pyplot as plt
import numpy as np

from .. import _stats
from ..methods import HeavyBall, Method
from ..nn import MLP, load, train
from ._registry import Control, claim, plot_data, verdict

_METRICS = ("test_accuracy", "log10_train_loss")
_LABELS = {"test_accuracy": "test accuracy", "log10_train_loss": "log10 training loss"}


def _matched(lr: float, beta: float, sgd_lr_factor: float) -> Method:
    """SGD at ``η·sgd_lr_factor`` and SGDM at ``γ = η(1 − β)``: the same effective rate ``γ/(1−β) = η`` when the
    factor is 1 (docs/theory.md §3.5). Config 0 is SGD, config 1 SGDM."""
    return HeavyBall.from_practitioner(np.array([lr * sgd_lr_factor, lr * (1 - beta)]), np.array([0.0, beta]))


def _train(data, width, method, batch, steps, seeds, seed):
    n = len(data.y_train)
    epochs = max(1, -(-steps * batch // n))
    model = functools.partial(MLP, data.x_train.shape[1], data.n_classes, width=width)
    return train(model, method, data, key=jax.random.key(seed), epochs=epochs, batch_size=batch, seeds=seeds,
                 record_every=max(1, epochs // 15), progress=False)


def _final(out) -> dict:
    """Per (config, seed): the final test accuracy and log10 training loss (NaN for a diverged run)."""
    return {"test_accuracy": out.test_accuracy.values[..., -1],
            "log10_train_loss": np.log10(out.train_loss.values[..., -1])}


def _seeds_needed(sd_prior: dict, margins: dict, alpha: float, power: float, cells: int) -> int:
    """Seeds for every paired TOST to reach ``power`` (Bonferroni over ``cells``) at the pilot's SDs of differences."""
    return max(_stats.paired_tost_seeds(sd_prior[m], margins[m], alpha / cells, power) for m in _METRICS)


def _paired_tost(values: np.ndarray, margin: float, alpha: float) -> dict:
    """TOST of SGDM (config 1) − SGD (config 0) on paired seeds, with both means."""
    return {**_stats.tost(values[1], values[0], margin, alpha, pairs=True),
            "sgd": float(np.mean(values[0])), "sgdm": float(np.mean(values[1]))}


@claim(
    id="sgdm-marginal-value",
    title="SGD with momentum is equivalent to SGD at the same effective learning rate, except at large "
          "learning rate and full batch",
    paper="wang-2024",
    source="Wang, Malladi, Wang, Lyu & Li, 'The marginal value of momentum for small learning rate SGD', ICLR 2024, "
           "Thm 3.5 and Sec. 5; TOST: Schuirmann 1987",
    statement=(
        "MLP on a real data set (a configuration entry: digits, which trains to ~95% test accuracy), SGD at η "
        "against SGDM at γ = η(1−β), β = 0.9, the same effective rate, from the same initialisations and batches. "
        "(1) At the small rate, at every batch size, SGDM is equivalent to SGD in final test accuracy (margin "
        "±0.01) AND in final log10 training loss (margin ±0.05, a factor 1.12), both margins fixed in the "
        "configuration before the final run: paired TOST, α = 0.05 Bonferroni over the (batch size, metric) "
        "cells, with the number of seeds from a power calculation (power 0.8) at the SDs of paired differences "
        "in a pilot on other seeds (quick: accuracy 0.006, log10 loss 0.015; full: 0.004, 0.007), and at least 5. "
        "At B = 16 the pilot's final log10 loss varied by 0.32 between seeds, which would need ~550 seeds at this "
        "margin: B = 16 is not tested. (2) At the large rate and full batch, where "
        "SGD is past its stability threshold 2/η and SGDM (threshold 2(1+β)/γ) is not, SGDM's log10 training "
        "loss is lower than SGD's by more than the loss margin (one-sided paired t, α = 0.05), or SGD diverges. "
        "Horizon: 300 steps in quick mode, where SGD's test accuracy had plateaued in the pilot (1000 in full "
        "mode). At η = 0.1 and 300 steps SGDM's start from rest (it needs ~β/(1−β) = 9 steps to reach full "
        "speed) left its log10 loss 0.06 above SGD's in the pilot, outside the margin."
    ),
    quick={"dataset": "digits", "n_train": 512, "width": 32, "beta": 0.9, "small_lr": 0.3, "large_lr": 3.0,
           "batch_sizes": [32, 128], "steps": 300, "margins": {"test_accuracy": 0.01, "log10_train_loss": 0.05},
           "sd_prior": {"test_accuracy": 0.006, "log10_train_loss": 0.015}, "alpha": 0.05, "power": 0.8,
           "min_seeds": 5, "seed": 0},
    full={"dataset": "digits", "n_train": None, "width": 64, "beta": 0.9, "small_lr": 0.3, "large_lr": 3.0,
          "batch_sizes": [32, 128, 512], "steps": 1000, "margins": {"test_accuracy": 0.01, "log10_train_loss": 0.05},
          "sd_prior": {"test_accuracy": 0.004, "log10_train_loss": 0.007}, "alpha": 0.05, "power": 0.8,
          "min_seeds": 5, "seed": 0},
    judge=lambda numbers: _judge(numbers), draw=lambda numbers: _draw(numbers),
    controls=[
        Control("sgd-lr-3x", "SGD at 3× the matched learning rate (3η against SGDM's effective η): the equivalence "
                "must fail", {"sgd_lr_factor": 3.0},
                # quick mode: the equivalence part judges the wrong rate; the full-batch large-rate run is skipped
                quick={"large_lr": None}),
    ],
    precision="float32",
)
def _measure(*, dataset, n_train, width, beta, small_lr, large_lr, batch_sizes, steps, margins, sd_prior, alpha,
             power, min_seeds, seed, sgd_lr_factor=1.0) -> dict:
    data = load(dataset, n_train=n_train, seed=seed)
    cells = len(batch_sizes) * len(_METRICS)
    # the power calculation's normal approximation is poor below 5 seeds (Student's t with ≤ 3 degrees of freedom)
    seeds = max(min_seeds, _seeds_needed(sd_prior, margins, alpha, power, cells))
    equivalence, curves = {}, {}
    for batch in batch_sizes:
        out = _train(data, width, _matched(small_lr, beta, sgd_lr_factor), batch, steps, seeds, seed)
        final = _final(out)
        equivalence[f"B={batch}"] = {m: _paired_tost(final[m], margins[m], alpha / cells) for m in _METRICS}
        curves[f"B = {batch}, η = {small_lr:g}"] = (out.step.values, out.train_loss.values)
    large = None
    if large_lr is not None:
        full = len(data.y_train)
        out = _train(data, width, _matched(large_lr, beta, sgd_lr_factor), full, steps, seeds, seed)
        final = _final(out)["log10_train_loss"]
        diverged = out.diverged_at.values >= 0
        finite = ~diverged.any(axis=0)
        difference = final[1, finite] - final[0, finite]  # paired seeds where neither diverged
        large = {"lr": large_lr, "batch": full, "sgd_diverged": int(diverged[0].sum()),
                 "sgdm_diverged": int(diverged[1].sum()), "sgd": float(np.nanmean(final[0])),
                 "sgdm": float(np.nanmean(final[1])),
                 # its "high" is a one-sided upper bound at α (one-sample Student interval, as in _paired_tost)
                 "log10_loss_gap": (_stats.welch(difference, np.zeros_like(difference), level=1 - 2 * alpha)
                                    if difference.size >= 2 else None)}
        curves[f"full batch ({full}), η = {large_lr:g}"] = (out.step.values, out.train_loss.values)
    return {"dataset": dataset, "seeds": seeds, "min_seeds": min_seeds, "cells": cells, "margins": margins,
            "sd_prior": sd_prior, "small_lr": small_lr, "beta": beta, "sgd_lr_factor": sgd_lr_factor,
            "equivalence": equivalence, "large_lr": large, "plot": {"curves": curves}}


def _helps(large: dict, margin: float) -> bool:
    """Momentum helps at the large rate: SGD diverges where SGDM does not, or SGDM's log10 loss is lower by more
    than the margin (one-sided)."""
    if large["sgdm_diverged"]:
        return False
    if large["sgd_diverged"]:
        return True
    return large["log10_loss_gap"] is not None and large["log10_loss_gap"]["high"] < -margin


def _judge(numbers: dict) -> tuple:
    equivalent = {b: all(t["equivalent"] for t in e.values()) for b, e in numbers["equivalence"].items()}
    large = numbers["large_lr"]
    helps = None if large is None else _helps(large, numbers["margins"]["log10_train_loss"])
    holds = all(equivalent.values()) and helps is not False
    rows = [f"{b}: " + ", ".join(
        f"{_LABELS[m]} SGD {t['sgd']:.3f} vs SGDM {t['sgdm']:.3f}, difference in [{t['low']:+.3f}, {t['high']:+.3f}] "
        f"(margin ±{t['margin']:g}: {'equivalent' if t['equivalent'] else 'NOT shown equivalent'})"
        for m, t in e.items()) for b, e in numbers["equivalence"].items()]
    summary = (f"{numbers['dataset']}, η = {numbers['small_lr']:g}"
               + (f" (SGD at {numbers['sgd_lr_factor']:g}η)" if numbers["sgd_lr_factor"] != 1 else "")
               + f", {numbers['seeds']} paired seeds (power calculation, at least {numbers['min_seeds']}): "
               + "; ".join(rows) + ". ")
    if large is None:
        summary += "Large learning rate not run."
    else:
        gap = large["log10_loss_gap"]
        summary += (f"Full batch at η = {large['lr']:g}: log10 training loss SGD {large['sgd']:.2f} vs SGDM "
                    f"{large['sgdm']:.2f}" + ("" if gap is None else f" (gap ≤ {gap['high']:+.2f} one-sided)")
                    + f", diverged {large['sgd_diverged']} SGD / {large['sgdm_diverged']} SGDM runs: momentum "
                    + ("helps." if helps else "does NOT help beyond the margin."))
    return verdict(holds), summary


def _band(ax, x, values, colour, label, ls="-"):
    with warnings.catch_warnings():  # records where every seed diverged are NaN, and drawn as gaps
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        half = 1.96 * np.nanstd(values, axis=0, ddof=1) / np.sqrt(np.sum(np.isfinite(values), axis=0).clip(1))
    ax.plot(x, mean, color=colour, ls=ls, label=label)
    ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.2, lw=0)


def _draw(numbers: dict) -> list:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    batches = list(numbers["equivalence"])
    for ax, metric in zip(axes, _METRICS):
        tests = [numbers["equivalence"][b][metric] for b in batches]
        centre = [t["difference"] for t in tests]
        ax.errorbar(np.arange(len(batches)), centre, yerr=[[c - t["low"] for c, t in zip(centre, tests)],
                                                           [t["high"] - c for c, t in zip(centre, tests)]],
                    fmt="o", capsize=4, label="SGDM − SGD, TOST interval (1 − 2α, Bonferroni)")
        margin = numbers["margins"][metric]
        ax.axhspan(-margin, margin, color="tab:green", alpha=0.15, label=f"equivalence margin ±{margin:g}")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(batches)), batches)
        ax.set(xlabel="batch size", ylabel=f"final {_LABELS[metric]}: SGDM − SGD",
               title=f"{numbers['dataset']}, η = {numbers['small_lr']:g}, {numbers['seeds']} paired seeds")
        ax.legend(fontsize=7)
    curves = plot_data(numbers)["curves"]
    fig2, axes2 = plt.subplots(1, len(curves), figsize=(3.8 * len(curves), 3.4), squeeze=False)
    for ax, (name, (steps, loss)) in zip(axes2[0], curves.items()):
        _band(ax, steps, loss[0], "tab:gray", "SGD at η")
        _band(ax, steps, loss[1], "tab:blue", "SGDM at γ = η(1−β)")
        ax.set_yscale("log")
        ax.set(xlabel="step", ylabel="training loss (cross-entropy)", title=name)
        ax.legend(fontsize=7)
    fig2.suptitle("Training loss, mean and 95% band over seeds", fontsize=10)
    for f in (fig, fig2):
        f.tight_layout()
    return [fig, fig2]
