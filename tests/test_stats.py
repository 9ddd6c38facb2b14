"""The claims' shared statistics against closed forms and simulation."""

import numpy as np
import pytest
from scipy import stats

from inertia import _stats


def test_z_critical_is_bonferroni_corrected_normal_quantile():
    assert abs(_stats.z_critical(1, 0.05) - 1.959964) < 1e-6
    assert abs(_stats.z_critical(10, 0.05) - stats.norm.ppf(1 - 0.0025)) < 1e-12


def test_welch_matches_scipy_ttest_confidence_interval():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 12), rng.normal(0.5, 2, 9)
    w = _stats.welch(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert abs(w["low"] - ci.low) < 1e-10 and abs(w["high"] - ci.high) < 1e-10


def test_tost_size_and_power_by_simulation():
    """At a true difference equal to the margin, TOST declares equivalence at most α of the time (±3 MC SE); at
    zero difference with the seeds of the power calculation, at least the requested power (±3 MC SE)."""
    rng = np.random.default_rng(1)
    reps, alpha, margin = 4000, 0.05, 0.5
    at_margin = np.mean([_stats.tost(rng.normal(margin, 1, 20), rng.normal(0, 1, 20), margin, alpha)["equivalent"]
                         for _ in range(reps)])
    assert at_margin <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps)
    n = _stats.tost_seeds(1.0, margin, alpha, power=0.8)
    power = np.mean([_stats.tost(rng.normal(0, 1, n), rng.normal(0, 1, n), margin, alpha)["equivalent"]
                     for _ in range(reps)])
    assert power >= 0.8 - 3 * np.sqrt(0.8 * 0.2 / reps) - 0.03  # normal approximation of the t test: a few % low


def test_paired_tost_size_at_the_margin_and_power_at_its_seed_count():
    """Paired samples share a large common part (the seed), which the paired test removes: at a true difference on
    the margin it declares equivalence at most α of the time, and at ``paired_tost_seeds`` it reaches its power."""
    rng = np.random.default_rng(3)
    reps, alpha, margin, sd_difference = 4000, 0.05, 0.5, 1.0

    def equivalent(n, true_difference):
        common = rng.normal(0, 5, n)
        return _stats.tost(common + rng.normal(true_difference, sd_difference, n), common, margin, alpha,
                           pairs=True)["equivalent"]

    at_margin = np.mean([equivalent(20, margin) for _ in range(reps)])
    assert at_margin <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps)
    n = _stats.paired_tost_seeds(sd_difference, margin, alpha, power=0.8)
    assert n == _stats.tost_seeds(sd_difference / np.sqrt(2), margin, alpha, power=0.8)
    power = np.mean([equivalent(n, 0.0) for _ in range(reps)])
    assert power >= 0.8 - 3 * np.sqrt(0.8 * 0.2 / reps) - 0.03  # normal approximation of the t test: a few % low


def test_superiority_seeds_give_the_one_sided_test_its_power():
    rng = np.random.default_rng(4)
    reps, alpha, margin, effect, sd = 4000, 0.05, 0.1, 0.6, 1.0
    n = _stats.superiority_seeds(sd, effect, margin, alpha, power=0.8)
    shown = [_stats.welch(rng.normal(effect, sd, n), np.zeros(n), level=1 - 2 * alpha)["low"] > margin
             for _ in range(reps)]
    # the smallest n of power >= 0.8 (exact noncentral t); one seed more adds ~1.5% power at n ≈ 25
    assert 0.8 - 3 * np.sqrt(0.8 * 0.2 / reps) <= np.mean(shown) <= 0.8 + 3 * np.sqrt(0.8 * 0.2 / reps) + 0.02


def test_fitted_order_standard_error_covers_the_true_slope():
    rng = np.random.default_rng(2)
    hs = np.geomspace(1e-3, 1e-1, 6)
    covered = 0
    for _ in range(2000):
        fit = _stats.fitted_order(hs, 3 * hs**2 * np.exp(rng.normal(0, 0.1, hs.size)))
        covered += abs(fit["order"] - 2) < fit["t"] * fit["se"]
    assert abs(covered / 2000 - 0.99) < 3 * np.sqrt(0.99 * 0.01 / 2000) + 0.002


def test_weighted_slope_matches_numpy_polyfit_and_its_standard_error_is_calibrated():
    rng = np.random.default_rng(3)
    x, se = np.linspace(0, 2, 5), np.array([0.1, 0.2, 0.05, 0.1, 0.3])
    y = 1.5 * x - 0.5 + rng.normal(0, se)
    fit = _stats.weighted_slope(x, y, se)
    slope, intercept = np.polyfit(x, y, 1, w=1 / se)
    assert abs(fit["slope"] - slope) < 1e-12 and abs(fit["intercept"] - intercept) < 1e-12
    slopes = [_stats.weighted_slope(x, 1.5 * x + rng.normal(0, se), se)["slope"] for _ in range(4000)]
    assert abs(np.std(slopes) / fit["se"] - 1) < 3 * np.sqrt(1 / (2 * 4000))  # SE of a sample SD ≈ SD/√(2n)


def test_fitted_order_expansion_removes_the_leading_correction_and_its_standard_error_is_calibrated():
    hs = np.geomspace(0.005, 0.08, 5)
    exact = _stats.fitted_order_expansion(hs, 2 * hs * np.exp(3 * hs))  # exactly log-linear in (log h, h)
    assert abs(exact["order"] - 1) < 1e-10 and exact["dof"] == 2
    expansion = 2 * hs * (1 + 3 * hs)  # its O(h²) remainder leaves a bias of order 3²h²/2 only
    assert abs(_stats.fitted_order_expansion(hs, expansion)["order"] - 1) < 0.01
    assert abs(_stats.fitted_order(hs, expansion)["order"] - 1) > 0.05
    rng = np.random.default_rng(4)
    se = 0.02 * 2 * hs
    fits = [_stats.fitted_order_expansion(hs, 2 * hs * np.exp(3 * hs) + rng.normal(0, se), se) for _ in range(2000)]
    z = np.array([(f["order"] - 1) / f["se"] for f in fits])
    assert abs(np.mean(np.abs(z) < 2.576) - 0.99) < 0.01  # normal 99% coverage, up to the O(h²) term and noise
def test_fitted_slope_recovers_an_exponential_rate():
    x = np.linspace(0, 5, 11)
    exact = _stats.fitted_slope(x, 3 * np.exp(-0.7 * x))
    assert abs(exact["slope"] + 0.7) < 1e-12 and exact["se"] < 1e-12 and exact["dof"] == 9
    noisy = 3 * np.exp(-0.7 * x + np.random.default_rng(0).normal(0, 0.05, x.size))
    fit = stats.linregress(x, np.log(noisy))
    assert abs(_stats.fitted_slope(x, noisy)["se"] - fit.stderr) < 1e-15


def test_order_identified_singles_out_one_integer():
    hs = np.geomspace(0.01, 0.08, 5)
    biased = _stats.fitted_order(hs, hs**3 * (1 + 2 * hs))  # pre-asymptotic bias, tiny standard error
    assert _stats.order_identified(biased, 3) and not _stats.order_identified(biased, 2)
    nearly_half = _stats.fitted_order(hs, hs**2.45 * (1 + hs))  # within 0.5 of 2 by less than its interval
    assert not _stats.order_identified(nearly_half, 3) and not _stats.order_identified(nearly_half, 2)
    noisy = _stats.fitted_order(hs, hs**3 * np.exp(np.random.default_rng(0).normal(0, 0.5, hs.size)))
    assert not _stats.order_identified(noisy, 3)  # an interval wider than one order identifies nothing
    assert not _stats.order_identified({"order": 3.0, "se": float("nan"), "t": 5.0}, 3)


def test_order_row_and_summary_decide_by_the_interval():
    hs = np.array([0.01, 0.02, 0.04, 0.08])
    errors = 3 * hs**2 * (1 + 0.1 * hs)  # order 2 with a small pre-asymptotic term
    right, wrong = _stats.order_row(hs, errors, 2), _stats.order_row(hs, errors, 1)
    assert right["order"] == pytest.approx(2.0, abs=0.01) and right["inside"] and not wrong["inside"]
    inside, text = _stats.orders_summary({"a": right, "b": wrong})
    assert not inside and "b: 2.0" in text and "OUTSIDE" in text and _stats.orders_summary({"a": right})[0]


def test_paired_interval_matches_scipy_and_paired_tost_uses_it():
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, 10)
    b = a + rng.normal(0.3, 0.1, 10)
    ci = stats.ttest_rel(a, b).confidence_interval(0.9)
    p = _stats.paired(a, b, level=0.9)
    assert abs(p["low"] - ci.low) < 1e-10 and abs(p["high"] - ci.high) < 1e-10
    t = _stats.tost(a, b, 0.5, pairs=True)
    assert abs(t["low"] - ci.low) < 1e-10 and t["equivalent"] == (ci.low > -0.5 and ci.high < 0.5)
