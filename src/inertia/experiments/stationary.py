"""Claims on the exact stationary covariance of SGD and SGDM at finite learning rate (`inertia.stationary`).

Liu, Ziyin & Ueda (ICML 2021), Theorems 1–2 and Corollary 1; minibatch and label noise (Ziyin, Liu, Mori & Ueda,
ICLR 2022). Every rule is the same: Monte Carlo estimates (one sample per chain at the final step, so the samples
are independent and the standard error comes from the chains) must lie within ``z·SE`` of the prediction at every
cell, with ``z`` the two-sided 1% normal quantile Bonferroni-corrected over the cells (`_stats.z_critical`). The
controls put a wrong prediction (the continuous-time OU covariance, the noise at the minimum only, the wrong
sampling factor) or a wrong simulation (half the noise) through the same rule.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import stationary as st
from .._checks import InertiaError
from .._linalg import psd_sqrt
from .._stats import z_critical, zscores
from ..methods import GD, HeavyBall
from ..noise import Gaussian, LabelNoise, Minibatch
from ..objectives import LeastSquares, Quadratic
from ..simulate import sweep
from ._registry import Control, claim, plot_data, verdict

LIU = "Liu, Ziyin & Ueda, ICML 2021"
ZIYIN = "Ziyin, Liu, Mori & Ueda, ICLR 2022"
RULE = ("Rule: every cell's Monte Carlo estimate within z·SE of the prediction, SE from the chains (one independent "
        "sample per chain), z the two-sided 1% normal quantile Bonferroni-corrected over the cells.")
HALF_NOISE = Control("half-noise", "the Monte Carlo run with half the noise standard deviation (a quarter of the "
                     "variance), judged against the unchanged prediction", {"noise_scale": 0.5})
OU = Control("ou-formula", "the continuous-time (Ornstein–Uhlenbeck) covariance ΣK + KΣ = λ/(1−μ)·C in place of "
             "the discrete one", {"prediction": "ou"})


def final_states(method, objective, x0, steps: int, chains: int, noise, seed: int) -> np.ndarray:
    """The iterate of every chain at the final step, ``(config, chain, dim)``."""
    ds = sweep(method, objective, x0, steps, seeds=chains, noise=noise, key=jax.random.key(seed),
               record_at=[steps], progress=False)
    return np.asarray(ds.x.values[:, :, -1, :])


def mean_and_se(values) -> tuple[float, float]:
    """Mean over independent samples (axis 0) and its standard error."""
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.shape[0]))


def judge_cells(numbers: dict) -> tuple:
    """The shared rule: every cell inside ``z_critical(cells)`` standard errors of ``numbers["prediction"]``."""
    z = zscores(numbers["simulated"], numbers["stderr"], numbers["prediction"])
    crit = z_critical(z.size)
    worst = int(np.argmax(np.abs(z)))
    return verdict(bool(np.all(np.abs(z) < crit))), (
        f"{int(np.sum(np.abs(z) < crit))}/{z.size} cells inside ±{crit:.2f} SE (Bonferroni over {z.size}, α = 1%) of "
        f"the {numbers['prediction_name']} prediction; worst cell {numbers['cells'][worst]}: simulated "
        f"{np.ravel(numbers['simulated'])[worst]:.4g} ± {np.ravel(numbers['stderr'])[worst]:.2g}, predicted "
        f"{np.ravel(numbers['prediction'])[worst]:.4g} (z = {np.ravel(z)[worst]:+.1f}).")


def predicted_covariance(method, K, C, prediction: str) -> np.ndarray:
    """``Cov w`` at stationarity: the exact discrete solution (``"exact"``) or the continuous-time OU one (``"ou"``)."""
    return st.covariance(method, K, C).parameters if prediction == "exact" else st.covariance_ou(method, K, C)


def _prediction_name(prediction: str, exact: str = "exact (discrete Lyapunov)") -> str:
    return {"exact": exact, "ou": "continuous-time OU", "naive": "noise-at-minimum",
            "wrong-scheme": "wrong-sampling-factor"}[prediction]


# ----------------------------------------------------------------------------------------------------------------
# stationary-variance-1d


def _variance_1d_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    fine = np.linspace(0.01, 1.995, 400)
    ax.semilogy(fine, [st.covariance(GD(lr), [1.0], 1.0).parameters[0, 0] for lr in fine], "k-",
                label="exact, Theorem 1: λ/(2−λ)")
    ax.semilogy(fine, fine / 2, "C1--", label="OU (continuous time): λ/2")
    ax.errorbar(p["lr"], numbers["simulated"], yerr=numbers["z_critical"] * np.asarray(numbers["stderr"]), fmt="o",
                color="C0", ms=5, label=f"SGD, {p['chains']} chains, ±{numbers['z_critical']:.1f} SE")
    ax.axvline(2.0, color="0.6", ls=":", label="λk = 2: no stationary state")
    ax.set(xlabel="learning rate λ (k = 1)", ylabel=f"Var[w] after {p['steps']} steps",
           title=f"1-D quadratic, σ² = {p['noise_scale'] ** 2:g} (predicted with σ² = 1)")
    ax.legend(fontsize=8)
    return [fig]


def _variance_1d_judge(numbers: dict) -> tuple:
    return judge_cells(numbers)


@claim(id="stationary-variance-1d", title="Exact stationary variance of SGD in 1-D diverges as λk → 2",
       paper="liu-ziyin-ueda-2021", source=f"{LIU}, Theorem 1 and Fig. 1",
       statement="With k = 1 and σ² = 1 the stationary variance of SGD is λ/(2 − λ) (Theorem 1), while the "
                 "continuous-time (OU) prediction is λ/2; simulation follows the exact value up to λ = 1.99. " + RULE,
       quick={"lrs": [0.1, 0.6, 1.0, 1.4, 1.7, 1.9, 1.99], "chains": 1000, "steps": 600},
       full={"lrs": list(np.round(np.linspace(0.05, 1.95, 20), 3)) + [1.99], "chains": 10000, "steps": 1000},
       judge=_variance_1d_judge, draw=_variance_1d_draw, controls=[OU, HALF_NOISE])
def _variance_1d(lrs, chains, steps, prediction="exact", noise_scale=1.0):
    lrs = np.asarray(lrs, float)
    x = final_states(GD(lrs), Quadratic([1.0]), np.zeros(1), steps, chains, Gaussian(noise_scale**2), seed=0)
    est = np.array([mean_and_se(x[c, :, 0] ** 2) for c in range(lrs.size)])
    return {"cells": [f"λ = {lr:g}" for lr in lrs], "prediction_name": _prediction_name(prediction),
            "prediction": [float(predicted_covariance(GD(lr), [1.0], 1.0, prediction)[0, 0]) for lr in lrs],
            "simulated": est[:, 0],
            "stderr": est[:, 1], "z_critical": z_critical(lrs.size),
            "plot": {"lr": lrs, "chains": chains, "steps": steps, "noise_scale": noise_scale}}


# ----------------------------------------------------------------------------------------------------------------
# stationary-2d

_K2 = np.diag([1.0, 0.1])
_C2 = np.array([[1.0, 0.3], [0.3, 0.5]])
_ENTRIES = ((0, 0), (0, 1), (1, 1))


def _ellipse(ax, S, **kw):
    """The 2σ ellipse of covariance S: the unit circle mapped by 2·S^{1/2}."""
    t = np.linspace(0, 2 * np.pi, 200)
    pts = 2 * psd_sqrt("S", S) @ np.stack([np.cos(t), np.sin(t)])
    ax.plot(pts[0], pts[1], **kw)


def _stationary_2d_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    lrs = p["lr"]
    fig, axes = plt.subplots(1, len(lrs), figsize=(4.2 * len(lrs), 4), squeeze=False)
    for c, (lr, ax) in enumerate(zip(lrs, axes[0])):
        ax.plot(p["samples"][c][:, 0], p["samples"][c][:, 1], ".", ms=2, color="0.6", label="SGD samples")
        _ellipse(ax, st.covariance(GD(lr), _K2, _C2).parameters, color="k", label="exact (2σ)")
        _ellipse(ax, st.covariance_ou(GD(lr), _K2, _C2), color="C1", ls="--", label="OU (2σ)")
        ax.set(xlabel="w₁ (k = 1)", ylabel="w₂ (k = 0.1)", title=f"λ = {lr:g}")
        ax.set_aspect("equal", "datalim")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return [fig]


@claim(id="stationary-2d", title="2-D stationary covariance with Hessian eigenvalues 1 and 0.1",
       paper="liu-ziyin-ueda-2021", source=f"{LIU}, Theorem 1, Fig. 2",
       statement="For K = diag(1, 0.1) and a noise C = [[1, 0.3], [0.3, 0.5]] that does not commute with K, the "
                 "exact stationary covariance (Theorem 1, solved as a discrete Lyapunov equation) matches "
                 "simulation in all three entries at λ ∈ {0.5, 1.8, 1.99}; the OU prediction is rejected at "
                 "large λ. " + RULE,
       quick={"lrs": [0.5, 1.8, 1.99], "chains": 1000, "steps": 600},
       full={"lrs": [0.5, 1.8, 1.99], "chains": 10000, "steps": 3000},
       judge=judge_cells, draw=_stationary_2d_draw, controls=[OU, HALF_NOISE])
def _stationary_2d(lrs, chains, steps, prediction="exact", noise_scale=1.0):
    lrs = np.asarray(lrs, float)
    x = final_states(GD(lrs), Quadratic(_K2), np.zeros(2), steps, chains, Gaussian(noise_scale**2 * _C2), seed=1)
    cells, predicted, est = [], [], []
    for c, lr in enumerate(lrs):
        S = predicted_covariance(GD(lr), _K2, _C2, prediction)
        for i, j in _ENTRIES:
            cells.append(f"λ = {lr:g}, Σ_{i + 1}{j + 1}")
            predicted.append(float(S[i, j]))
            est.append(mean_and_se(x[c, :, i] * x[c, :, j]))
    est = np.array(est)
    return {"cells": cells, "prediction_name": _prediction_name(prediction), "prediction": predicted,
            "simulated": est[:, 0], "stderr": est[:, 1], "z_critical": z_critical(len(cells)),
            "plot": {"lr": lrs, "samples": x[:, :1000]}}


# ----------------------------------------------------------------------------------------------------------------
# momentum-divergence

_LR_K = 2.75  # λk of Liu, Ziyin & Ueda's Fig. 3
_MU_EDGE = (_LR_K - 2) / 2


def _momentum_judge(numbers: dict) -> tuple:
    v, summary = judge_cells(numbers)
    refused = numbers["refuses_below_edge"]
    return verdict(v == "holds" and refused), summary + f" covariance() refuses μ = {_MU_EDGE - 0.005:g} " \
        f"(below (λk−2)/2 = {_MU_EDGE:g}): {refused}."


def _momentum_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    fine = np.linspace(_MU_EDGE + 5e-4, 0.97, 300)
    ax.semilogy(fine, [st.covariance(HeavyBall.from_practitioner(_LR_K, m), [1.0], 1.0).parameters[0, 0]
                       for m in fine], "k-", label="exact (Corollary 1)")
    ax.semilogy(fine, _LR_K / (2 * (1 - fine)), "C1--", label="OU: λ/(2(1−μ)k)")
    ax.errorbar(p["momentum"], numbers["simulated"], yerr=numbers["z_critical"] * np.asarray(numbers["stderr"]),
                fmt="o", color="C0", ms=5, label=f"SGDM, {p['chains']} chains, ±{numbers['z_critical']:.1f} SE")
    ax.axvline(_MU_EDGE, color="0.6", ls=":", label="μ = (λk−2)/2")
    ax.set(xlabel="momentum μ", ylabel="Var[w]", title=f"λk = {_LR_K}, noise σ = {p['noise_scale']:g}")
    ax.legend(fontsize=8)
    return [fig]


@claim(id="momentum-divergence", title="SGDM at λk = 2.75 diverges as μ → (λk − 2)/2",
       paper="liu-ziyin-ueda-2021", source=f"{LIU}, Theorem 2 / Corollary 1, Fig. 3",
       statement="With λk = 2.75 a stationary state exists only for μ > (λk − 2)/2 = 0.375 (covariance() refuses "
                 "μ = 0.37); above it the exact variance (Corollary 1) diverges as μ → 0.375 and simulation "
                 "follows it, while the OU prediction stays finite. " + RULE,
       quick={"momenta": [0.39, 0.42, 0.5, 0.6, 0.75, 0.9], "chains": 1000, "steps": 1000},
       full={"momenta": list(np.round(np.linspace(0.38, 0.95, 16), 4)), "chains": 10000, "steps": 6000},
       judge=_momentum_judge, draw=_momentum_draw, controls=[OU, HALF_NOISE])
def _momentum_divergence(momenta, chains, steps, prediction="exact", noise_scale=1.0):
    mus = np.asarray(momenta, float)
    try:
        st.covariance(HeavyBall.from_practitioner(_LR_K, _MU_EDGE - 0.005), [1.0], 1.0)
        refused = False
    except InertiaError:
        refused = True
    methods = HeavyBall.from_practitioner(np.full_like(mus, _LR_K), mus)
    x = final_states(methods, Quadratic([1.0]), np.zeros(1), steps, chains, Gaussian(noise_scale**2), seed=2)
    est = np.array([mean_and_se(x[c, :, 0] ** 2) for c in range(mus.size)])
    return {"cells": [f"μ = {m:g}" for m in mus], "prediction_name": _prediction_name(prediction),
            "prediction": [float(predicted_covariance(HeavyBall.from_practitioner(_LR_K, m), [1.0], 1.0,
                                                      prediction)[0, 0]) for m in mus],
            "simulated": est[:, 0], "stderr": est[:, 1], "z_critical": z_critical(mus.size),
            "refuses_below_edge": refused, "plot": {"momentum": mus, "chains": chains, "noise_scale": noise_scale}}


# ----------------------------------------------------------------------------------------------------------------
# minibatch-regression


def _regression_data(n: int, dim: int):
    """A synthetic teacher–student regression (the setting of Ziyin et al. 2022, Sec. 4: Gaussian inputs)."""
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=dim)
    X = rng.normal(size=(n, dim))
    return X, X @ teacher + rng.normal(size=n)


def _minibatch_prediction(method, X, y, batch, replace, prediction):
    """Stationary ``Cov w`` (and the minimum ŵ) for the prediction being judged."""
    if prediction in ("exact", "wrong-scheme"):
        scheme = replace if prediction == "exact" else not replace
        return st.minibatch_regression_covariance(method, X, y, batch, replace=scheme)
    w_hat = np.linalg.lstsq(X, y, rcond=None)[0]
    K = X.T @ X / len(y)
    at_minimum = np.asarray(Minibatch(batch, replace).covariance(LeastSquares(X, y), w_hat))
    return predicted_covariance(method, K, at_minimum, "exact" if prediction == "naive" else "ou"), w_hat


def _minibatch_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    schemes = p["schemes"]
    fig, axes = plt.subplots(1, len(schemes), figsize=(5.5 * len(schemes), 4), squeeze=False)
    for ax, (name, s) in zip(axes[0], schemes.items()):
        idx = np.arange(len(s["exact"]))
        ax.errorbar(idx, s["simulated"], yerr=numbers["z_critical"] * np.asarray(s["stderr"]), fmt="o", color="C0",
                    label=f"SGD, ±{numbers['z_critical']:.1f} SE")
        ax.plot(idx, s["exact"], "k_", ms=22, mew=2, label="exact (self-consistent)")
        ax.plot(idx, s["naive"], "C3_", ms=18, mew=2, label="noise at minimum only")
        ax.plot(idx, s["ou"], "C1_", ms=14, mew=2, label="OU")
        ax.set_xticks(idx)
        ax.set(xlabel="parameter index i", ylabel="stationary Var[w_i]",
               title=f"N = {p['n']}, S = {p['batch']}, {name}")
        ax.set_ylim(0, 1.35 * max(np.max(s["exact"]), np.max(s["simulated"])))
        ax.legend(fontsize=8, loc="upper left", ncol=2)
    fig.suptitle(f"minibatch SGD on least squares, λ·k_max = {p['lr_k']:g}, {p['chains']} chains", fontsize=10)
    fig.tight_layout()
    return [fig]


@claim(id="minibatch-regression", title="Minibatch noise in linear regression, N = 1000, S = 100",
       paper="supporting", source=f"{ZIYIN}, Sec. 3–4 (minibatch noise); stationary solver of {LIU}",
       statement="The exact stationary covariance of minibatch SGD on least squares, with the state-dependent "
                 "minibatch noise (factor 1/S with replacement, (N−S)/(S(N−1)) without) solved self-consistently, "
                 "matches simulation in every diagonal entry; the noise at the minimum only, the OU limit and the "
                 "other scheme's sampling factor (a 10% change at N = 1000, S = 100) are rejected. Synthetic "
                 "Gaussian inputs (the paper's setting), 4 parameters, λ = 1.6/k_max. Chains: 4000, so that a 10% "
                 "error in a variance is 4.5 SE (relative SE √(2/4000) = 2.2%) against a Bonferroni z of 3.0. "
                 + RULE,
       quick={"n": 1000, "batch": 100, "dim": 4, "lr_k": 1.6, "chains": 4000, "steps": 50, "replace": [True]},
       full={"n": 1000, "batch": 100, "dim": 4, "lr_k": 1.6, "chains": 4000, "steps": 100, "replace": [True, False]},
       judge=judge_cells, draw=_minibatch_draw,
       controls=[Control("noise-at-minimum", "the minibatch noise frozen at its value at the minimum (the "
                         "state-dependent part dropped)", {"prediction": "naive"}),
                 Control("wrong-scheme", "the other sampling scheme's factor: (N−S)/(S(N−1)) for sampling with "
                         "replacement and 1/S without", {"prediction": "wrong-scheme"}),
                 Control("ou-formula", OU.description, {"prediction": "ou"})])
def _minibatch_regression(n, batch, dim, lr_k, chains, steps, replace, prediction="exact"):
    X, y = _regression_data(n, dim)
    method = GD(lr_k / np.linalg.eigvalsh(X.T @ X / n).max())
    cells, predicted, est, schemes = [], [], [], {}
    for r in replace:
        name = "with replacement" if r else "without replacement"
        moments = _minibatch_moments(n, batch, dim, lr_k, chains, steps, r, bool(jax.config.jax_enable_x64))
        cells += [f"{name}, Var w_{i + 1}" for i in range(dim)]
        predicted += list(np.diag(_minibatch_prediction(method, X, y, batch, r, prediction)[0]))
        est.append(moments)
        schemes[name] = {"simulated": moments[:, 0], "stderr": moments[:, 1],
                         **{k: np.diag(_minibatch_prediction(method, X, y, batch, r, k)[0])
                            for k in ("exact", "naive", "ou")}}
    est = np.concatenate(est)
    return {"cells": cells, "prediction_name": _prediction_name(prediction, "exact (self-consistent minibatch noise)"),
            "prediction": predicted,
            "simulated": est[:, 0], "stderr": est[:, 1], "z_critical": z_critical(len(cells)),
            "plot": {"schemes": schemes, "n": n, "batch": batch, "lr_k": lr_k, "chains": chains}}


@functools.lru_cache(maxsize=4)
def _minibatch_moments(n, batch, dim, lr_k, chains, steps, replace, x64) -> np.ndarray:
    """Monte Carlo ``(Var w_i, SE)`` per parameter. Cached on its arguments (precision included): the controls
    that change only the prediction reuse the same run, which they would reproduce exactly (same seed)."""
    X, y = _regression_data(n, dim)
    method = GD(lr_k / np.linalg.eigvalsh(X.T @ X / n).max())
    w_hat = np.linalg.lstsq(X, y, rcond=None)[0]
    x = final_states(method, LeastSquares(X, y), w_hat, steps, chains, Minibatch(batch, replace=replace), seed=3)
    return np.array([mean_and_se((x[0] - w_hat)[:, i] ** 2) for i in range(dim)])


# ----------------------------------------------------------------------------------------------------------------
# label-noise-regression

_A = np.diag([1.0, 0.4])
_TEACHER = np.array([1.0, -1.0])
_LABEL_VARIANCE = 1.0


def _label_noise_limit(mu: float, batch: int) -> float:
    """The largest learning rate with a stationary state under label noise, by bisection on the closed form."""
    lo, hi = 0.0, 2 * (1 + mu) / _A.max()
    for _ in range(60):
        mid = (lo + hi) / 2
        try:
            st.label_noise_covariance(HeavyBall.from_practitioner(mid, mu), _A, _LABEL_VARIANCE, batch)
            lo = mid
        except InertiaError:
            hi = mid
    return lo


def _label_noise_trace(method, batch: int, prediction: str) -> float:
    """Tr Cov w: Ziyin et al.'s closed form, or the Lyapunov solution with the noise at the minimum σ²A/S."""
    if prediction == "exact":
        return float(np.trace(st.label_noise_covariance(method, _A, _LABEL_VARIANCE, batch)))
    at_minimum = LabelNoise(batch, _LABEL_VARIANCE).mean_covariance(_A, np.zeros_like(_A))
    return float(np.trace(st.covariance(method, _A, at_minimum).parameters))


def _label_noise_draw(numbers: dict) -> list:
    p = plot_data(numbers)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for c, mu in enumerate(p["momenta"]):
        limit = p["limits"][c]
        fine = np.linspace(0.02, 0.95, 60) * limit
        for prediction, style, label in (("exact", "-", "exact (Ziyin et al.)"),
                                         ("naive", ":", "noise at minimum σ²A/S")):
            ax.semilogy(fine / limit, [_label_noise_trace(HeavyBall.from_practitioner(l, mu), p["batch"], prediction)
                                       for l in fine], style, color=f"C{c}", label=f"μ = {mu:g}: {label}")
        sel = [i for i, m in enumerate(p["cell_momentum"]) if m == mu]
        ax.errorbar(np.asarray(p["fraction"])[sel], np.asarray(numbers["simulated"])[sel],
                    yerr=numbers["z_critical"] * np.asarray(numbers["stderr"])[sel], fmt="o", color=f"C{c}", ms=5)
    ax.set(xlabel="learning rate / its label-noise stability limit", ylabel="stationary Tr Cov[w]",
           title=f"online regression, S = {p['batch']}, σ² = {_LABEL_VARIANCE * p['noise_scale'] ** 2:g} (dots: "
                 f"{p['chains']} chains ±{numbers['z_critical']:.1f} SE)")
    ax.legend(fontsize=7)
    return [fig]


@claim(id="label-noise-regression", title="Label noise in online linear regression: the self-consistent solution",
       paper="supporting", source=f"{ZIYIN}, Theorem 2 (with momentum, docs/theory.md §3.3)",
       statement="With x ~ N(0, A), A = diag(1, 0.4), y = uᵀx + ε, σ² = 1 and batch S = 2, the stationary "
                 "covariance of SGD/SGDM is Σ = (σ²/S)(1 + κ/S)ΛG⁻¹; simulated Tr Σ agrees at every (λ, μ), "
                 "while the naive noise C ≈ σ²K/S (the noise at the minimum) underestimates it. " + RULE,
       quick={"fractions": [0.2, 0.4, 0.6], "momenta": [0.0, 0.5], "batch": 2, "chains": 1000, "steps": 250},
       full={"fractions": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "momenta": [0.0, 0.5, 0.9], "batch": 2, "chains": 10000,
             "steps": 1000},
       judge=judge_cells, draw=_label_noise_draw,
       controls=[Control("naive-noise", "the naive label noise C ≈ σ²K/S (its value at the minimum, K = A) in place "
                         "of the self-consistent solution", {"prediction": "naive"}), HALF_NOISE])
def _label_noise(fractions, momenta, batch, chains, steps, prediction="exact", noise_scale=1.0):
    cells, predicted, est, limits, cell_mu, cell_fraction = [], [], [], [], [], []
    for mu in momenta:
        limits.append(_label_noise_limit(mu, batch))
        lrs = np.asarray(fractions) * limits[-1]
        methods = HeavyBall.from_practitioner(lrs, np.full_like(lrs, mu))
        noise = LabelNoise(batch, jnp.asarray(_LABEL_VARIANCE * noise_scale**2))  # an array: no recompilation
        x = final_states(methods, Quadratic(_A, _TEACHER), _TEACHER, steps, chains, noise, seed=6) - _TEACHER
        for c, (lr, fraction) in enumerate(zip(lrs, fractions)):
            cells.append(f"μ = {mu:g}, λ at {fraction:.0%} of its limit")
            predicted.append(_label_noise_trace(HeavyBall.from_practitioner(lr, mu), batch, prediction))
            est.append(mean_and_se(np.sum(x[c] ** 2, 1)))
            cell_mu.append(mu)
            cell_fraction.append(fraction)
    est = np.array(est)
    return {"cells": cells, "prediction_name": _prediction_name(prediction, "exact (Ziyin et al. closed form)"),
            "prediction": predicted,
            "simulated": est[:, 0], "stderr": est[:, 1], "z_critical": z_critical(len(cells)),
            "plot": {"momenta": list(momenta), "limits": limits, "cell_momentum": cell_mu, "fraction": cell_fraction,
                     "batch": batch, "chains": chains, "noise_scale": noise_scale}}
