"""Quadratic theory: numerical thresholds, optima and rates against closed forms and simulation."""

import numpy as np
import pytest

from inertia import QHM, HeavyBall, InertiaError, Nesterov, Quadratic, run
from inertia import stability as st
from inertia.experiments.quadratics import measured_rate

NAMES = ["gd", "heavy-ball", "nesterov", "heavy-ball-normalised", "nesterov-normalised"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("beta", [0.0, 0.3, 0.9, 0.99])
@pytest.mark.parametrize("mu", [0.5, 20.0])
def test_numerical_threshold_matches_closed_form(name, beta, mu):
    assert st.threshold(name, beta, mu) == pytest.approx(st.closed_form_threshold(name, beta, mu), rel=1e-9)


@pytest.mark.parametrize("nu", [0.0, 0.7, 1.0])
@pytest.mark.parametrize("beta", [0.5, 0.999])
def test_a_constructor_is_a_family_too_qhm_at_fixed_nu(nu, beta):
    # ν = 1, β = 0.999 is normalised heavy ball with threshold 2(1+β)/((1−β)μ) ≈ 4e3/μ: beyond a grid ending at 1e3/μ
    family = lambda lr, momentum: QHM(lr, momentum, nu)  # noqa: E731
    a = beta * (1 - nu) / (1 - beta)
    closed = 2 * (1 + beta) / ((1 + 2 * a) * (1 - beta) * 2.0)  # Jury on h = α(1−β), μ = 2
    assert st.closed_form_threshold(family, beta, 2.0) == pytest.approx(closed, rel=1e-12)
    assert st.threshold(family, beta, 2.0) == pytest.approx(closed, rel=1e-9)


def test_the_optimum_of_qhm_with_nu_one_is_polyaks_in_the_normalised_convention():
    eig = np.linspace(1.0, 10.0, 5)
    best, polyak = st.optimal(lambda lr, momentum: QHM(lr, momentum, 1.0), eig), st.polyak_optimal(1.0, 10.0)
    assert best["momentum"] == pytest.approx(polyak["momentum"], rel=1e-6)
    assert best["lr"] * (1 - best["momentum"]) == pytest.approx(polyak["lr"], rel=1e-6)
    assert best["rate"] == pytest.approx(polyak["rate"], rel=1e-7)


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_numerical_optimum_recovers_polyak_and_gd(kappa):
    eig = np.linspace(1.0, kappa, 7)
    hb, polyak = st.optimal("heavy-ball", eig), st.polyak_optimal(1.0, kappa)
    # The documented precision of `optimal` is 1e-7 relative (the rate has a kink at the optimum).
    assert hb["rate"] == pytest.approx(polyak["rate"], rel=1e-7)
    assert hb["lr"] == pytest.approx(polyak["lr"], rel=1e-6)
    assert hb["momentum"] == pytest.approx(polyak["momentum"], rel=1e-6)
    gd = st.optimal("gd", eig)
    assert gd["lr"] == pytest.approx(2 / (1 + kappa), rel=1e-7)
    assert gd["rate"] == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-7)


def test_heavy_ball_complex_roots_have_modulus_sqrt_beta():
    beta, mu = 0.81, 1.0
    lrs = np.linspace(0.2, 3.0, 30)  # (1+β−hμ)² < 4β on this range: complex roots
    assert np.all((1 + beta - lrs * mu) ** 2 < 4 * beta)
    radius = st.spectral_radius(HeavyBall(lrs, beta), [mu])[:, 0]
    np.testing.assert_allclose(radius, np.sqrt(beta), rtol=1e-12)


def test_nesterov_characteristic_polynomial():
    beta, hmu = 0.7, 0.4
    roots = np.linalg.eigvals(st.companion(Nesterov(hmu, beta), [1.0])[0])
    np.testing.assert_allclose(np.sort_complex(roots),
                               np.sort_complex(np.roots([1, -(1 + beta) * (1 - hmu), beta * (1 - hmu)])), rtol=1e-12)


@pytest.mark.parametrize("method", [HeavyBall(0.02, 0.5), HeavyBall(0.03, 0.8), Nesterov(0.02, 0.6),
                                    Nesterov(0.012, 0.9)])
def test_predicted_rate_equals_rate_measured_by_run(method):
    eig = np.array([1.0, 7.0, 30.0, 60.0])
    predicted = float(st.rate(method, eig))
    steps = int(250 / -np.log(predicted))
    traj = run(method, Quadratic(eig), np.ones(4), steps, record_every=max(1, steps // 200))
    measured = measured_rate(np.linalg.norm(np.asarray(traj.x), axis=-1), np.asarray(traj.steps))
    assert measured == pytest.approx(predicted, rel=0.01)


def test_rate_map_marks_the_unstable_region():
    eig = [1.0, 10.0]
    lrs = np.array([0.1, 0.2, 0.35, 0.41])
    rates = st.rate_map("heavy-ball", eig, lrs, [0.9, 0.5])
    unstable = lrs[None, :] * 10 > 2 * (1 + np.array([[0.9], [0.5]]))
    np.testing.assert_array_equal(rates >= 1, unstable)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(InertiaError, match="method must be one of"):
        st.threshold("adam")
