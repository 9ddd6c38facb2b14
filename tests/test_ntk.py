"""NTK: the closed form H^∞, the 1/√m approach of the finite-width Gram, and the linearised rates."""



import numpy as np
import pytest

from inertia import GD, HeavyBall, InertiaError, Nesterov, ntk, stability
from inertia.stability import rate


def _sphere(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_gram_infinity_is_the_gaussian_expectation():
    """Monte Carlo of E[xᵢᵀxⱼ 1{wᵀxᵢ≥0} 1{wᵀxⱼ≥0}] over w ~ N(0, I), inside 4 standard errors."""
    x = _sphere(6, 5)
    w = np.random.default_rng(1).normal(size=(200_000, 5))
    active = (w @ x.T >= 0).astype(float)
    samples = (x @ x.T)[None] * active[:, :, None] * active[:, None, :]
    mean, se = samples.mean(0), samples.std(0) / np.sqrt(len(w))
    H = ntk.gram_infinity(x)
    assert np.all(np.abs(H - mean) < 4 * se + 1e-12)
    np.testing.assert_allclose(np.diag(H), 0.5)  # arccos 1 = 0: H_ii = 1/2


def test_finite_width_gram_approaches_infinity_at_rate_one_over_sqrt_m():
    x = _sphere(10, 8)
    H_inf = ntk.gram_infinity(x)
    widths = np.array([64, 256, 1024, 4096, 16384])
    rng = np.random.default_rng(2)
    errors = [np.mean([np.linalg.norm(ntk.gram(rng.normal(size=(m, 8)), x) - H_inf) for _ in range(20)])
              for m in widths]
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.05)


def test_gram_infinity_of_float32_inputs_is_accurate_to_float32_rounding():
    """Rows normalised in float32 have inner products ``1 − δ`` with ``δ ~ 1e-7``; the diagonal must not pay
    ``arccos(1 − δ) = √(2δ)`` (an error ~5e-5). Reference: the same data normalised in float64."""
    x64 = _sphere(40, 30, seed=4)
    x32 = x64.astype(np.float32)
    error = np.abs(ntk.gram_infinity(x32) - ntk.gram_infinity(x64))
    assert error.max() < 1e-6  # float32 rounding (6e-8) times O(1) Lipschitz constants; √ε would give ~5e-5
    np.testing.assert_allclose(np.diag(ntk.gram_infinity(x64)), 0.5 * np.sum(x64**2, axis=1), rtol=1e-15)


def _nesterov_root_moduli(h, beta, mu):
    """Larger root modulus of ``r² − (1+β)(1−hμ) r + β(1−hμ) = 0`` (practitioner Nesterov; docs/theory.md §1)."""
    return np.array([np.max(np.abs(np.roots([1.0, -(1 + beta) * (1 - h * m), beta * (1 - h * m)]))) for m in mu])


def test_predicted_rates_equal_the_characteristic_roots_and_the_tuned_optima():
    H = ntk.gram_infinity(_sphere(12, 6))
    s = ntk.spectrum(H)
    assert s["lambda0"] == pytest.approx(np.linalg.eigvalsh(H)[0], rel=1e-12)
    assert s["kappa"] == pytest.approx(s["lambda_max"] / s["lambda0"], rel=1e-12)
    for c in (0.5, 1.0):
        p = ntk.accelerated_parameters(H, c=c)
        assert p["hb_rate"] == pytest.approx(1 - c / np.sqrt(s["kappa"]), rel=1e-9)  # complex HB roots: √β
        nag = ntk.predicted_rate(Nesterov(p["h"], p["momentum"]), H)
        assert nag == pytest.approx(_nesterov_root_moduli(p["h"], p["momentum"], s["eigenvalues"]).max(), rel=1e-9)
    gd = ntk.predicted_rate(GD(p["h"]), H)
    assert gd == pytest.approx(1 - p["h"] * s["lambda0"], rel=1e-9)
    # tuned on the spectrum: Polyak's HB contracts at (√κ−1)/(√κ+1); the best NAG at 1 − 2/√(3κ+1)
    # (Lessard, Recht & Packard, SIAM J. Optim. 2016, §3.3), so tuned HB is the faster of the two
    polyak = stability.polyak_optimal(s["lambda0"], s["lambda_max"])
    tuned_hb = ntk.predicted_rate(HeavyBall.from_practitioner(polyak["lr"], polyak["momentum"]), H)
    assert tuned_hb == pytest.approx((np.sqrt(s["kappa"]) - 1) / (np.sqrt(s["kappa"]) + 1), rel=1e-6)
    best = stability.optimal("nesterov", s["eigenvalues"])
    assert best["rate"] == pytest.approx(1 - 2 / np.sqrt(3 * s["kappa"] + 1), rel=1e-5)
    assert ntk.du_bound(0.1, 0.3) == 1 - 0.1 * 0.3 / 2


def test_kernel_residuals_follow_the_closed_form_of_each_method():
    """GD: ``r_k = (I − ηH)^k r_0`` exactly; HB/NAG: each eigen-mode follows its own two-term recursion."""
    H = ntk.gram_infinity(_sphere(8, 5, seed=3))
    r0 = np.random.default_rng(5).normal(size=8)
    p = ntk.accelerated_parameters(H)
    steps = [0, 1, 7, 30]
    gd = ntk.kernel_residuals(GD(p["h"]), H, r0, steps)
    expected = [np.linalg.matrix_power(np.eye(8) - p["h"] * H, k) @ r0 for k in steps]
    np.testing.assert_allclose(gd, expected, rtol=1e-10, atol=1e-12)
    mu, Q = np.linalg.eigh(H)
    for method in (HeavyBall(p["h"], p["momentum"]), Nesterov(p["h"], p["momentum"])):
        z, z_prev, modes = Q.T @ r0, Q.T @ r0, [Q.T @ r0]
        for _ in range(30):
            a, lam = float(method.lookahead), float(method.momentum)
            z, z_prev = z + lam * (z - z_prev) - p["h"] * mu * (z + a * (z - z_prev)), z
            modes.append(z)
        np.testing.assert_allclose(ntk.kernel_residuals(method, H, r0, steps), [Q @ modes[k] for k in steps],
                                   rtol=1e-10, atol=1e-12)


def test_linearised_residual_dynamics_match_predicted_rate():
    """Iterating r ← method step on ½ rᵀHr contracts at exactly the predicted rate (the companion radius)."""
    H = ntk.gram_infinity(_sphere(8, 5, seed=3))
    p = ntk.accelerated_parameters(H)
    method = HeavyBall(p["h"], p["momentum"])
    r, v = np.ones(8), np.zeros(8)
    norms = []
    for _ in range(400):
        r, v = method.step((r, v), lambda z: H @ z, 0)
        norms.append(np.linalg.norm(r))
    # every mode has complex roots of modulus √β: the norm oscillates under an exact geometric envelope
    slope = np.polyfit(np.arange(100, 400), np.log(norms[100:]), 1)[0]
    assert np.exp(slope) == pytest.approx(rate(method, np.linalg.eigvalsh(H)), abs=2e-3)


def test_gram_drift_is_zero_without_movement_and_errors_are_clear():
    x = _sphere(5, 4)
    w = np.random.default_rng(0).normal(size=(50, 4))
    assert ntk.gram_drift(w, w, x) == 0.0
    with pytest.raises(InertiaError, match="unit-norm"):
        ntk.gram_infinity(2 * x)
    with pytest.raises(InertiaError, match="weight must have shape"):
        ntk.gram(w[:, :3], x)
    with pytest.raises(InertiaError, match="positive definite"):
        ntk.spectrum(ntk.gram_infinity(np.vstack([x, x[:1]])))


def test_high_resolution_parameters_and_heavy_ball_rate_at_them():
    """H = diag(1, 4): s = 1/4, α = (1 − 1/2)/(1 + 1/2) = 1/3; every HB mode then has complex roots of modulus √α."""
    H = np.diag([1.0, 4.0])
    p = ntk.high_resolution_parameters(H)
    assert p["s"] == 0.25 and abs(p["momentum"] - 1 / 3) < 1e-15 and p["kappa"] == 4.0
    assert abs(float(ntk.predicted_rate(HeavyBall(p["s"], p["momentum"]), H)) - np.sqrt(1 / 3)) < 1e-12


def test_liu_bound_is_the_exponential_of_its_exponent():
    assert ntk.liu_exponent("HB") == ntk.liu_exponent("NAG") == 2 - np.sqrt(2)
    k = np.array([0, 10, 100])
    np.testing.assert_allclose(ntk.liu_bound("HB", 0.04, 0.25, k), np.exp(-(2 - np.sqrt(2)) * 0.1 * k), rtol=1e-14)
    with pytest.raises(InertiaError, match="method"):
        ntk.liu_exponent("GD")


def test_kernel_conditions_hold_when_wide_and_fail_when_narrow():
    x = _sphere(8, 10)
    lam0 = ntk.spectrum(ntk.gram_infinity(x))["lambda0"]
    rng = np.random.default_rng(3)
    for width, expected in [(100_000, True), (16, False)]:
        w0 = rng.normal(size=(width, 10))
        c = ntk.kernel_conditions(w0, x, ntk.gram_drift(w0, w0, x))
        assert c["lambda0"] == lam0 and c["max_drift"] == 0.0 and c["holds"] is expected
        assert abs(c["init_gap"] - np.linalg.norm(ntk.gram(w0, x) - ntk.gram_infinity(x), 2)) < 1e-12
    assert ntk.kernel_conditions(w0, x, lam0 / 3)["holds"] is False  # a drift beyond λ₀/4 breaks them


def test_du_width_is_the_theorem_order_with_unit_constant():
    # n⁶/(λ₀⁴δ³): n = 2, λ₀ = 0.5, δ = 0.5 gives 64/(0.0625·0.125) = 8192
    assert ntk.du_width(2, 0.5, 0.5) == 8192.0
    with pytest.raises(InertiaError, match="delta"):
        ntk.du_width(2, 0.5, 1.5)
