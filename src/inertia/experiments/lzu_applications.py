"""Claims on the applications of Liu, Ziyin & Ueda (ICML 2021, arXiv 2012.03636) beyond the stationary covariance.

The error of the continuous-time approximation as a function of the learning rate (SGD and SGDM), the learning
rate at which SGD samples the Bayesian posterior of a quadratic problem, and the stationary covariance of damped
Newton, natural gradient and Adam. Every rule is the one of
`experiments.stationary`: Monte Carlo estimates (one independent sample per chain at the final step) within
``z·SE`` of the prediction at every cell, ``z`` Bonferroni-corrected over the cells (`_stats.z_critical`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import stationary as st
from .._linalg import psd_sqrt
from .._stats import z_critical
from ..methods import GD, Adam, HeavyBall
from ..noise import Gaussian
from ..objectives import Quadratic
from ._registry import Control, claim, plot_data
from .stationary import LIU, RULE, final_states, judge_cells, mean_and_se

# ----------------------------------------------------------------------------------------------------------------
# lzu-approximation-error

_K = 1.0  # the Hessian eigenvalue of the 1-D quadratic; λ is measured in units of 1/k


def _approximation_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for colour, mu in zip(("C0", "C2"), p["momenta"]):
        cells = np.asarray(p["momentum"]) == mu
        fine = np.linspace(0.02, 2 * (1 + mu) * 0.995, 300)
        methods = [HeavyBall.from_practitioner(lr, mu) for lr in fine]
        curve = [1 - st.covariance_ou(m, [_K], 1.0)[0, 0] / st.covariance(m, [_K], 1.0).parameters[0, 0]
                 for m in methods]
        ax.plot(fine, curve, "-", color=colour, lw=1, label=f"1 − OU/exact (= λk/(2(1+μ))), μ = {mu:g}")
        simulated = np.asarray(numbers["simulated"])[cells]
        ou = np.asarray(p["ou"])[cells]
        error = 1 - ou / simulated
        se = ou * np.asarray(numbers["stderr"])[cells] / simulated**2
        ax.errorbar(np.asarray(p["lr"])[cells], error, yerr=numbers["z_critical"] * se, fmt="o", color=colour, ms=5,
                    label=f"Monte Carlo, μ = {mu:g}, ±{numbers['z_critical']:.1f} SE")
    ax.set(xlabel="learning rate λ (k = 1)", ylabel="relative error of OU: 1 − Σ_OU / Σ",
           title=f"Error of the continuous-time approximation ({p['chains']} chains; "
                 f"predicted: {numbers['prediction_name']})")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return [fig]


@claim(id="lzu-approximation-error", title="The continuous-time approximation's error grows as λk/(2(1+μ))",
       paper="liu-ziyin-ueda-2021", source=f"{LIU}, Theorems 1–2, Corollary 1 (the error of the SDE approximation)",
       statement="On a 1-D quadratic (k = 1, σ² = 1) the exact stationary variance of SGD (μ = 0) and SGDM "
                 "(μ = 0.9, practitioner form) is λ/((1−μ)k(2 − λk/(1+μ))), so the continuous-time (OU) value "
                 "λ/(2(1−μ)k) is off by the relative error 1 − Σ_OU/Σ = λk/(2(1+μ)), first order in λ. Monte Carlo "
                 "follows the exact value at every λ up to 0.95 of the stability edge; the OU value fails there. "
                 + RULE,
       quick={"sgd_lrs": [0.1, 0.5, 1.0, 1.5, 1.9], "sgdm_lrs": [0.2, 1.0, 2.0, 3.0, 3.6], "chains": 2000,
              "steps": 800},
       full={"sgd_lrs": list(np.round(np.linspace(0.1, 1.9, 10), 3)),
             "sgdm_lrs": list(np.round(np.linspace(0.2, 3.6, 10), 3)), "chains": 20000, "steps": 2000},
       judge=judge_cells, draw=_approximation_draw,
       controls=[Control("ou-formula", "the continuous-time (OU) variance λ/(2(1−μ)k) in place of the exact one",
                         {"prediction": "ou"})])
def _approximation_error(sgd_lrs, sgdm_lrs, chains, steps, prediction="exact", sgdm_momentum=0.9):
    lrs = np.concatenate([np.asarray(sgd_lrs, float), np.asarray(sgdm_lrs, float)])
    mus = np.concatenate([np.zeros(len(sgd_lrs)), np.full(len(sgdm_lrs), sgdm_momentum)])
    x = final_states(HeavyBall.from_practitioner(lrs, mus), Quadratic([_K]), np.zeros(1), steps, chains, Gaussian(1.0),
                     seed=11)
    est = np.array([mean_and_se(x[c, :, 0] ** 2) for c in range(lrs.size)])
    methods = [HeavyBall.from_practitioner(lr, mu) for lr, mu in zip(lrs, mus)]
    exact = [float(st.covariance(m, [_K], 1.0).parameters[0, 0]) for m in methods]
    ou = [float(st.covariance_ou(m, [_K], 1.0)[0, 0]) for m in methods]
    return {"cells": [f"μ = {mu:g}, λ = {lr:g}" for lr, mu in zip(lrs, mus)],
            "prediction_name": "exact (discrete Lyapunov)" if prediction == "exact" else "continuous-time OU",
            "prediction": exact if prediction == "exact" else ou, "simulated": est[:, 0], "stderr": est[:, 1],
            "z_critical": z_critical(lrs.size),
            "plot": {"lr": lrs, "momentum": mus, "momenta": sorted(set(mus.tolist())), "ou": ou, "chains": chains}}


# ----------------------------------------------------------------------------------------------------------------
# lzu-bayesian-inference

_KB = 2.0  # Hessian eigenvalue per example; the preconditioner is K⁻¹ = 1/2


def _bayes_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    idx = np.arange(len(numbers["cells"]))
    ax.errorbar(idx, np.asarray(numbers["simulated"]) / np.asarray(numbers["prediction"]),
                yerr=numbers["z_critical"] * np.asarray(numbers["stderr"]) / np.asarray(numbers["prediction"]),
                fmt="o", color="C0", label=f"Monte Carlo / posterior, ±{numbers['z_critical']:.1f} SE")
    ax.plot(idx, np.asarray(p["exact_at_lr"]) / np.asarray(numbers["prediction"]), "k_", ms=20, mew=2,
            label="exact discrete covariance / posterior")
    ax.axhline(1.0, color="0.5", ls=":", label="posterior (NK)⁻¹")
    ax.set_xticks(idx)
    ax.set_xticklabels(numbers["cells"], fontsize=7, rotation=15)
    ax.set(ylabel="stationary Var[w] / posterior variance",
           title=f"Preconditioned SGD(M) at the {p['choice']} learning rate ({p['chains']} chains)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [fig]


@claim(id="lzu-bayesian-inference", title="The learning rate at which SGD samples the posterior: 2S/(N+S), not 2S/N",
       paper="liu-ziyin-ueda-2021", source=f"{LIU}, optimal Bayesian inference (derived here, docs/stochastic.md)",
       statement="On a quadratic with N examples, minibatch noise C = K/S (Gaussian stand-in for the minibatch "
                 "noise near the minimum) and the preconditioner Λ = λK⁻¹, the exact stationary covariance equals "
                 "the posterior (NK)⁻¹ at λ* = 2(1−μ²)S/((1+μ)N + (1−μ)S) (2S/(N+S) at μ = 0). Monte Carlo at λ* "
                 "matches the posterior at every (N/S, μ); at the continuous-time choice 2(1−μ)S/N it does not. "
                 "1-D (k = 2), so the preconditioned step is plain SGD(M) at λ/k. " + RULE,
       quick={"cases": [[20, 0.0], [50, 0.0], [20, 0.5], [50, 0.5]], "batch_size": 10, "chains": 3000, "steps": 400},
       full={"cases": [[20, 0.0], [50, 0.0], [200, 0.0], [20, 0.5], [50, 0.5], [200, 0.5], [50, 0.9]],
             "batch_size": 10, "chains": 20000, "steps": 2000},
       judge=judge_cells, draw=_bayes_draw,
       controls=[Control("ou-learning-rate", "SGD(M) at the continuous-time choice λ = 2(1−μ)S/N, judged against the "
                         "same posterior", {"continuous": True})])
def _bayesian_inference(cases, batch_size, chains, steps, continuous=False):
    ns = np.array([int(n) for n, _ in cases])
    mus = np.array([float(mu) for _, mu in cases])
    lrs = np.array([st.bayesian_learning_rate(int(n), batch_size, mu, continuous=continuous) for n, mu in zip(ns, mus)])
    noise = _KB / batch_size  # C = K/S
    # Λ = λK⁻¹ in 1-D is the step λ/k on the stochastic gradient.
    x = final_states(HeavyBall.from_practitioner(lrs / _KB, mus), Quadratic([_KB]), np.zeros(1), steps, chains,
                     Gaussian(noise), seed=12)
    est = np.array([mean_and_se(x[c, :, 0] ** 2) for c in range(ns.size)])
    exact = [float(st.covariance(HeavyBall.from_practitioner(lr, mu), [_KB], noise, preconditioner=1 / _KB)
                   .parameters[0, 0]) for lr, mu in zip(lrs, mus)]
    return {"cells": [f"N/S = {n / batch_size:g}, μ = {mu:g}, λ = {lr:.3g}" for n, mu, lr in zip(ns, mus, lrs)],
            "prediction_name": "posterior (NK)⁻¹", "prediction": [1 / (n * _KB) for n in ns],
            "simulated": est[:, 0], "stderr": est[:, 1], "z_critical": z_critical(ns.size),
            "plot": {"exact_at_lr": exact, "chains": chains,
                     "choice": "continuous-time (OU)" if continuous else "exact-optimal"}}


# ----------------------------------------------------------------------------------------------------------------
# lzu-second-order

_K2 = np.array([[1.0, 0.3], [0.3, 0.5]])
_C2 = np.diag([1.0, 0.25])  # does not commute with _K2
_ENTRIES = ((0, 0), (0, 1), (1, 1))


def _entries(S) -> list:
    return [float(S[i, j]) for i, j in _ENTRIES]


def _sample_entries(x) -> list:
    """Monte Carlo ``Σ_ij`` (one sample per chain) with standard errors, for each entry of `_ENTRIES`."""
    return [mean_and_se(x[:, i] * x[:, j]) for i, j in _ENTRIES]


def _preconditioned_states(method, P, K, C, chains: int, steps: int, seed: int) -> np.ndarray:
    """Final iterates of ``w ← w − hP g`` (``g = Kw + ξ``, ``Cov ξ = C``), simulated in the coordinates
    ``u = P^{-1/2}w``: plain `method` on ``½uᵀP^{1/2}KP^{1/2}u`` with noise ``P^{1/2}CP^{1/2}`` has the same iterates,
    mapped back by ``w = P^{1/2}u``."""
    root = psd_sqrt("P", P)
    u = final_states(method, Quadratic(root @ K @ root), np.zeros(K.shape[0]), steps, chains,
                     Gaussian(root @ C @ root), seed=seed)
    return u @ root.T


def _predicted(method, K, C, P, prediction):
    if prediction == "ou":
        return st.covariance_ou(method, K, C, P)
    return st.covariance(method, K, C, None if prediction == "sgd" else P).parameters


def _damped_newton(lrs, chains, steps, prediction):
    """Damped Newton ``Λ = λK⁻¹`` (Theorem 3)."""
    P = np.linalg.inv(_K2)
    w = _preconditioned_states(GD(np.asarray(lrs, float)), P, _K2, _C2, chains, steps, seed=13)
    rows = []
    for c, lr in enumerate(lrs):
        S = _predicted(GD(lr), _K2, _C2, P, prediction)
        rows += [(f"damped Newton λ = {lr:g}, Σ_{i + 1}{j + 1}", p, m)
                 for (i, j), p, m in zip(_ENTRIES, _entries(S), _sample_entries(w[c]))]
    return rows


_C_NGD = 0.5 * _K2 + 0.2 * _K2 @ _K2  # commutes with _K2, as natural gradient's closed form needs


def _natural_gradient(lr, momentum, chains, steps, prediction):
    """Natural gradient with the Fisher frozen at its stationary value ``J = KΣK`` (`natural_gradient_covariance`)."""
    Sigma, P = st.natural_gradient_covariance(lr, momentum, _K2, _C_NGD)
    method = HeavyBall.from_practitioner(lr, momentum)
    w = _preconditioned_states(method, P, _K2, _C_NGD, chains, steps, seed=15)[0]
    S = Sigma if prediction == "exact" else _predicted(method, _K2, _C_NGD, P, prediction)
    return [(f"natural gradient λ = {lr:g}, μ = {momentum:g}, Σ_{i + 1}{j + 1}", p, m)
            for (i, j), p, m in zip(_ENTRIES, _entries(S), _sample_entries(w))]


def _adam(configs, chains, steps, prediction):
    """`Adam` on ``½wᵀKw`` with Gaussian gradient noise ``C``, against the frozen-preconditioner theory."""
    lr, b2 = (np.array([c[k] for c in configs], float) for k in range(2))
    x = final_states(Adam(lr, 0.9, b2, 1e-8), Quadratic(_K2), np.zeros(2), steps, chains, Gaussian(_C2), seed=14)
    rows = []
    for c, (lr_c, b2_c) in enumerate(zip(lr, b2)):
        S = (st.covariance(HeavyBall.from_normalised(lr_c, 0.9), _K2, _C2).parameters if prediction == "sgd"
             else st.adam_frozen_covariance(Adam(lr_c, 0.9, b2_c, 1e-8), _K2, _C2))
        rows += [(f"Adam lr = {lr_c:g}, β₂ = {b2_c:g}, Σ_{i + 1}{j + 1}", p, m)
                 for (i, j), p, m in zip(_ENTRIES, _entries(S), _sample_entries(x[c]))]
    return rows


def _second_order_judge(numbers: dict) -> tuple:
    v, summary = judge_cells(numbers)
    b = numbers["breakdown"]
    return v, summary + (f" Not judged (where the frozen-preconditioner approximation is expected to break): "
                         f"{'; '.join(f'{c}: z = {z:+.1f}' for c, z in zip(b['cells'], b['z']))}.")


def _second_order_draw(numbers: dict) -> list:
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    cells = numbers["cells"] + numbers["breakdown"]["cells"]
    sim = np.concatenate([numbers["simulated"], numbers["breakdown"]["simulated"]])
    se = np.concatenate([numbers["stderr"], numbers["breakdown"]["stderr"]])
    pred = np.concatenate([numbers["prediction"], numbers["breakdown"]["prediction"]])
    idx = np.arange(len(cells))
    ax.errorbar(idx, sim / pred, yerr=numbers["z_critical"] * se / np.abs(pred), fmt="o", color="C0",
                label=f"Monte Carlo / {numbers['prediction_name']}, ±{numbers['z_critical']:.1f} SE")
    ax.axhline(1.0, color="0.5", ls=":")
    ax.axvline(len(numbers["cells"]) - 0.5, color="C3", ls="--", lw=0.8, label="right: not judged (β₂ = 0.5)")
    ax.set_xticks(idx)
    ax.set_xticklabels(cells, fontsize=6, rotation=60, ha="right")
    ax.set(ylabel="simulated / predicted Σ_ij",
           title="Stationary covariance of damped Newton, natural gradient and Adam")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [fig]


@claim(id="lzu-second-order", title="Stationary covariance of damped Newton, natural gradient and Adam",
       paper="liu-ziyin-ueda-2021", source=f"{LIU}, Theorem 3 (matrix learning rate), Sec. on second-order methods",
       statement="On ½wᵀKw with K = [[1, 0.3], [0.3, 0.5]] and noise C = diag(1, 0.25) (not commuting with K): "
                 "damped Newton (Λ = λK⁻¹, Theorem 3) at λ ∈ {0.5, 1.5}; and Adam (β₁ = 0.9, β₂ = 0.99, ε = 1e-8) "
                 "against heavy ball in EMA form with the frozen preconditioner diag(1/(√v + ε)), v = diag(C + "
                 "KΣK) solved self-consistently (approximation stated in stationary.adam_frozen_covariance). All "
                 "three entries of Σ by Monte Carlo. Natural gradient (λ = 0.5, μ = 0.5) with the Fisher J = KΣK "
                 "frozen at its stationary value and C = 0.5K + 0.2K² (it needs [K, C] = 0). Adam at β₂ = 0.5 (v "
                 "fluctuates) is reported, not judged. " + RULE,
       quick={"newton_lrs": [0.5, 1.5], "natural": [0.5, 0.5], "adam": [[0.05, 0.99], [0.2, 0.99]],
              "breakdown": [[0.2, 0.5]], "chains": 2000, "steps": 600},
       full={"newton_lrs": [0.2, 0.5, 1.0, 1.5, 1.9], "natural": [0.5, 0.5],
             "adam": [[0.01, 0.99], [0.05, 0.99], [0.2, 0.99]], "breakdown": [[0.2, 0.5], [0.2, 0.9]],
             "chains": 20000, "steps": 4000},
       judge=_second_order_judge, draw=_second_order_draw,
       controls=[Control("sgd-formula", "the plain SGD(M) covariance (no preconditioner) in place of the "
                         "preconditioned one", {"prediction": "sgd"}),
                 Control("ou-formula", "the continuous-time OU covariance for damped Newton and natural gradient "
                         "(Adam unchanged)",
                         {"prediction": "ou"})])
def _second_order(newton_lrs, natural, adam, breakdown, chains, steps, prediction="exact"):
    rows = _damped_newton(newton_lrs, chains, steps, prediction) + _natural_gradient(*natural, chains, steps,
                                                                                      prediction)
    adam_rows = _adam(list(adam) + list(breakdown), chains, steps, prediction)
    judged = rows + adam_rows[:3 * len(adam)]
    rest = adam_rows[3 * len(adam):]
    z_rest = [(m[0] - p) / m[1] for _, p, m in rest]
    return {"cells": [c for c, _, _ in judged], "prediction": [p for _, p, _ in judged],
            "prediction_name": {"exact": "exact (Theorem 3)", "sgd": "plain SGD(M)", "ou": "OU"}[prediction],
            "simulated": [m[0] for _, _, m in judged], "stderr": [m[1] for _, _, m in judged],
            "z_critical": z_critical(len(judged)),
            "breakdown": {"cells": [c for c, _, _ in rest], "prediction": [p for _, p, _ in rest],
                          "simulated": [m[0] for _, _, m in rest], "stderr": [m[1] for _, _, m in rest],
                          "z": z_rest}}
