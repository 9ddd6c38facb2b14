"""Shared statistics for the claims' decision rules: one home for each test, so every claim judges the same way.

- `zscores` / `z_critical`: Monte Carlo estimates against a prediction, with a Bonferroni correction over cells.
- `welch`: Welch's two-sample t interval for a difference of means; `paired`: the t interval of the mean of
  paired differences (arms run on the same seeds).
- `tost`: equivalence by two one-sided Welch tests against a margin stated in advance (Schuirmann 1987); with
  ``pairs=True``, by the paired test.
- `tost_seeds`: the number of seeds per arm that gives a TOST the requested power (normal approximation).
- `paired_tost_seeds`: seeds for a paired TOST (common initialisation and batches), from the SD of
  the per-seed differences; `superiority_seeds`: seeds for a one-sided paired test that a difference exceeds a margin.
- `fitted_order`: a log–log slope with its standard error, and the t quantile for an interval on it;
  `fitted_slope`: the same for a log-linear slope (an exponential rate).
- `order_identified`: whether that interval singles out one integer order; `order_row` and `orders_summary`: a fitted
  order with its decision, and the text of a table of them.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def z_critical(cells: int, alpha: float = 0.01) -> float:
    """Two-sided normal quantile with a Bonferroni correction over ``cells`` comparisons: ``Φ⁻¹(1 − α/(2·cells))``."""
    return float(stats.norm.ppf(1 - alpha / (2 * max(int(cells), 1))))


def zscores(estimate, standard_error, prediction) -> np.ndarray:
    """``(estimate − prediction) / standard_error``, elementwise."""
    return (np.asarray(estimate, float) - np.asarray(prediction, float)) / np.asarray(standard_error, float)


def welch(a, b, level: float = 0.95) -> dict:
    """Welch's interval for ``mean(a) − mean(b)``: ``{"difference", "low", "high", "se", "dof"}``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = float(np.sqrt(va + vb))
    dof = (float((va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))) if se > 0
           else float(a.size + b.size - 2))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    diff = float(a.mean() - b.mean())
    return {"difference": diff, "low": diff - half, "high": diff + half, "se": se, "dof": dof}


def paired(a, b, level: float = 0.95) -> dict:
    """Student's interval for the mean of ``a − b`` over pairs (same seed in both arms), in `welch`'s format."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size < 2:
        raise ValueError("a paired interval needs at least 2 pairs")
    se, dof = float(d.std(ddof=1) / np.sqrt(d.size)), float(d.size - 1)
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    diff = float(d.mean())
    return {"difference": diff, "low": diff - half, "high": diff + half, "se": se, "dof": dof}


def tost(a, b, margin: float, alpha: float = 0.05, *, pairs: bool = False) -> dict:
    """Two one-sided t tests of ``|mean(a) − mean(b)| < margin`` (Schuirmann 1987): Welch's, or with
    ``pairs=True`` the paired test (`paired`; ``a[i]`` and ``b[i]`` share a seed).

    Equivalence is shown when the ``1 − 2α`` interval of the difference lies inside ``(−margin, margin)``;
    ``p`` is the larger of the two one-sided p-values. The margin must be fixed before the data are seen.
    """
    w = (paired if pairs else welch)(a, b, level=1 - 2 * alpha)
    if w["se"] == 0:
        p = 0.0 if abs(w["difference"]) < margin else 1.0
    else:
        p = float(max(stats.t.sf((w["difference"] + margin) / w["se"], w["dof"]),
                      stats.t.sf((margin - w["difference"]) / w["se"], w["dof"])))
    return {**w, "margin": margin, "alpha": alpha, "p": p,
            "equivalent": bool(w["low"] > -margin and w["high"] < margin)}


def tost_seeds(sd: float, margin: float, alpha: float = 0.05, power: float = 0.8, true_difference: float = 0.0) -> int:
    """Seeds per arm for a TOST of power ``power`` when the true difference is ``true_difference`` (normal approx.).

    ``n = 2 (z_{1−α} + z_{1−β'})² sd² / (margin − |δ|)²`` with ``β' = (1 − power)/2`` at δ = 0 (Chow, Shao & Wang,
    Sample Size Calculations in Clinical Research, §3.2.3), and ``β' = 1 − power`` otherwise. At least 3.
    """
    gap = margin - abs(true_difference)
    if gap <= 0:
        raise ValueError("the margin must exceed the assumed true difference")
    tail = (1 - power) / 2 if true_difference == 0 else 1 - power
    n = 2 * (stats.norm.ppf(1 - alpha) + stats.norm.ppf(1 - tail)) ** 2 * sd**2 / gap**2
    return max(3, int(np.ceil(n)))


def paired_tost_seeds(sd_difference: float, margin: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Seeds for a paired `tost` (``pairs=True``) of power ``power``, per-seed differences of SD ``sd_difference``.

    `tost_seeds` sizes two independent arms of SD ``s`` (difference of means SD ``s√(2/n)``); paired differences of
    SD ``s_d`` give ``s_d/√n``, the same as arms of SD ``s_d/√2``.
    """
    return tost_seeds(sd_difference / np.sqrt(2), margin, alpha, power)


def superiority_seeds(sd_difference: float, effect: float, margin: float, alpha: float = 0.05,
                      power: float = 0.8) -> int:
    """Seeds for a one-sided paired t test of ``mean difference > margin`` to reach ``power`` when the true mean
    difference is ``effect``: the smallest ``n`` whose noncentral-t power
    ``P(T_{n−1}(δ√n/s_d) > t_{1−α, n−1}) ≥ power``, ``δ = effect − margin`` (Chow, Shao & Wang, Sample Size
    Calculations in Clinical Research, §3.2; the normal approximation ``(z_{1−α} + z_power)² s_d²/δ²`` is too
    small at a few seeds, where Student's t has heavy tails). At least 3."""
    gap = effect - margin
    if gap <= 0:
        raise ValueError("the assumed effect must exceed the margin")
    n = 3
    while stats.nct.sf(stats.t.ppf(1 - alpha, n - 1), n - 1, gap * np.sqrt(n) / sd_difference) < power:
        n += 1
    return n


def fitted_order(hs, errors) -> dict:
    """Least-squares slope of ``log errors`` on ``log hs`` with its standard error: ``{"order", "se", "dof", "t"}``.

    ``t`` is the two-sided 99% Student quantile for ``dof = len(hs) − 2``, so ``order ± t·se`` is a 99% interval.
    Needs at least 3 step sizes (4 or more for a useful standard error).
    """
    x, y = np.log(np.asarray(hs, float)), np.log(np.asarray(errors, float))
    if x.size < 3 or not np.all(np.isfinite(y)):
        raise ValueError("an order fit needs >= 3 positive, finite errors")
    fit = stats.linregress(x, y)
    dof = x.size - 2
    return {"order": float(fit.slope), "se": float(fit.stderr), "dof": dof, "t": float(stats.t.ppf(0.995, dof))}


def weighted_slope(x, y, se) -> dict:
    """Weighted least-squares line through ``(x, y)`` with known standard errors ``se`` of ``y``:
    ``{"slope", "intercept", "se"}``, ``se`` the slope's standard error ``1/√(Σ wᵢ(xᵢ − x̄_w)²)``, ``wᵢ = 1/seᵢ²``
    (known variances, so the normal quantile applies; no residual degrees of freedom are spent).
    """
    x, y, w = np.asarray(x, float), np.asarray(y, float), 1 / np.asarray(se, float) ** 2
    xm, ym = np.sum(w * x) / w.sum(), np.sum(w * y) / w.sum()
    sxx = float(np.sum(w * (x - xm) ** 2))
    slope = float(np.sum(w * (x - xm) * (y - ym)) / sxx)
    return {"slope": slope, "intercept": float(ym - slope * xm), "se": float(1 / np.sqrt(sxx))}


def fitted_order_expansion(hs, errors, se=None) -> dict:
    """The order ``p`` of ``errors ≈ c·hᵖ(1 + b·h)``, fitted as ``log|e| = a + p·log h + b·h`` with its standard error.

    The ``b·h`` term is the leading correction of an error expansion ``c·hᵖ + d·hᵖ⁺¹ + …`` (Talay & Tubaro 1990 for
    weak errors), so a pre-asymptotic range does not bias ``p`` at first order. With ``se`` (known standard errors of
    ``errors``, e.g. Monte Carlo) the fit is weighted by ``(|e|/se)²`` and ``dof`` is None (normal quantiles apply);
    without, the standard error comes from the residuals with ``dof = len(hs) − 3`` (Student quantiles). Needs at
    least 4 step sizes. Returns ``{"order", "se", "dof"}``.
    """
    h, e = np.asarray(hs, float), np.abs(np.asarray(errors, float))
    if h.size < 4 or not np.all(e > 0):
        raise ValueError("an order fit with a correction term needs >= 4 positive errors")
    X = np.stack([np.ones_like(h), np.log(h), h], 1)
    w = np.ones_like(h) if se is None else (e / np.asarray(se, float)) ** 2
    normal = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(normal, X.T @ (w * np.log(e)))
    cov = np.linalg.inv(normal)
    dof = None
    if se is None:
        dof = h.size - 3
        residual = np.log(e) - X @ beta
        cov = cov * float(residual @ residual) / dof
    return {"order": float(beta[1]), "se": float(np.sqrt(cov[1, 1])), "dof": dof}
def fitted_slope(xs, values) -> dict:
    """Least-squares slope of ``log values`` on ``xs`` (an exponential rate) with its standard error, like
    `fitted_order`: ``{"slope", "se", "dof", "t"}``."""
    x, y = np.asarray(xs, float), np.log(np.asarray(values, float))
    if x.size < 3 or not np.all(np.isfinite(y)):
        raise ValueError("a rate fit needs >= 3 positive, finite values")
    fit = stats.linregress(x, y)
    dof = x.size - 2
    return {"slope": float(fit.slope), "se": float(fit.stderr), "dof": dof, "t": float(stats.t.ppf(0.995, dof))}


def order_identified(fit: dict, expected: int) -> bool:
    """Whether the 99% interval ``order ± t·se`` of `fitted_order` lies inside ``(expected − ½, expected + ½)``.

    The orders of an asymptotic expansion are integers, so the question a measured order answers is *which*
    integer. A deterministic error sequence has a pre-asymptotic bias (``e = C hᵖ(1 + D h + …)``) that its
    standard error does not measure; the half-integer margin absorbs it while any neighbouring order (a wrong
    coefficient loses one) is excluded. A non-finite standard error is not identified.
    """
    half = fit["t"] * fit["se"]
    return bool(np.isfinite(half) and expected - 0.5 < fit["order"] - half and fit["order"] + half < expected + 0.5)


def order_row(hs, errors, expected) -> dict:
    """`fitted_order` of ``errors`` against ``hs``, with ``expected``, ``inside`` (`order_identified`) and the data."""
    fit = fitted_order(hs, errors)
    return {**fit, "expected": expected, "inside": order_identified(fit, expected), "hs": np.asarray(hs),
            "errors": np.asarray(errors)}


def orders_summary(rows: dict) -> tuple[bool, str]:
    """``(every row inside, "label: order ± t·se (expected p[, OUTSIDE]); …")`` for rows of `order_row`."""
    text = "; ".join(f"{k}: {r['order']:.3f} ± {r['t'] * r['se']:.3f} (expected {r['expected']}"
                     f"{'' if r['inside'] else ', OUTSIDE'})" for k, r in rows.items())
    return all(r["inside"] for r in rows.values()), text
