"""`diagnose` on linear regression, where the local quadratic model is exact: measurements against closed forms,
predictions against the library's theory, and the continuation's checks against the predictions."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import inertia as ia
from inertia import diagnose as dg


def _regression(n=512, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.sqrt(np.linspace(0.2, 2.0, d))
    y = X @ rng.normal(size=d) + 0.5 * rng.normal(size=n)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    loss = lambda p, batch: 0.5 * jnp.mean((batch[0] @ p["w"] - batch[1]) ** 2)
    return loss, {"w": jnp.asarray(w_star)}, (jnp.asarray(X), jnp.asarray(y)), X, y, w_star


def test_measurement_matches_closed_forms():
    loss, params, data, X, y, w = _regression()
    m = dg.measure(loss, params, data, batch_size=8, key=jax.random.key(0), top_k=3, hutchinson_samples=200, chunk=100)
    H = X.T @ X / len(y)
    assert np.allclose(m.eigenvalues, np.sort(np.linalg.eigvalsh(H))[::-1][:3], rtol=1e-10)
    assert abs(m.trace - np.trace(H)) < 4 * m.trace_se
    G = X * (X @ w - y)[:, None]  # per-example gradients
    F = G.T @ G / len(y) - np.outer(G.mean(0), G.mean(0))
    assert np.allclose(m.noise_top, m.directions @ F @ m.directions.T, rtol=1e-9, atol=1e-12)
    assert abs(m.noise_trace - np.trace(F)) < 4 * m.noise_trace_se  # Hutchinson, 200 probes
    Ux = X @ m.directions.T  # per-example Hessians x_i x_iᵀ, seen in the top directions
    assert np.allclose(m.curvatures, Ux[:, :, None] * Ux[:, None, :], rtol=1e-9, atol=1e-12)
    assert np.all(m.eigen_residuals < 1e-10)  # 5 parameters: Lanczos is exact
    assert m.gradient_norm < 1e-10  # the least-squares minimum


def test_predictions_are_the_library_theory_in_the_top_directions():
    loss, params, data, *_ = _regression()
    method = ia.HeavyBall(0.05, 0.5)
    m = dg.measure(loss, params, data, batch_size=8, key=jax.random.key(0), top_k=3)
    p = dg.predict(method, m)
    exact, _ = ia.stationary.minibatch_regression_covariance(method, data[0], data[1], 8)
    top = m.directions @ exact @ m.directions.T  # the full 5-D answer, seen in the top 3 directions
    rel = np.abs(p["stationary"]["variance"] / np.diag(top) - 1)
    assert np.all(rel < 0.05), rel  # the top-3 restriction ignores the 2 flattest directions' share of the noise
    assert abs(p["stability"]["threshold_eigenvalue"] - 2 * 1.5 / 0.05) < 1e-9
    assert p["stationary"]["near_minimum"]  # at the least-squares minimum the gradient vanishes
    with pytest.raises(ia.InertiaError, match="linear two-step"):
        dg.predict(object(), m)


def test_checks_confirm_exact_fluctuation_and_reject_ou_at_large_lr():
    """At h·μ_max ≈ 1.2 the discrete variance far exceeds the OU value: the continuation must land inside the exact
    prediction's Bonferroni interval and outside the OU one."""
    loss, params, data, *_ = _regression()
    method = ia.HeavyBall(0.3, 0.3)
    out = dg.diagnose(loss, params, data, method, batch_size=8, key=jax.random.key(1), top_k=5, steps=600,
                      replicas=64, flow_steps=0)  # all 5 directions: the state-dependent noise is then modelled exactly
    st = out.checked["stationary"]
    assert st["holds"], st
    assert np.max(np.abs(st["z_ou"])) > st["z_critical"]


def test_stability_check_follows_the_companion_matrix_and_rejects_a_wrong_threshold():
    """On least squares the dynamics are exactly linear, so the twin runs' separation along u_1 equals the companion
    matrix's prediction at every step, to the twins' rounding (√ε_mach relative): it dies out at 0.8× the
    threshold 2(1+β)/h and grows at 1.25×, and the check holds. Given GD's threshold 2/h in place of heavy ball's
    2(1+β)/h, the "unstable" run at 1.25× of it (hμ = 2.5 < 2.6) is decisively stable, and the check fails."""
    loss, params, data, *_ = _regression()
    method = ia.HeavyBall(0.3, 0.3)
    m = dg.measure(loss, params, data, batch_size=8, key=jax.random.key(0), top_k=5)
    predicted = dg.predict(method, m)
    checked, traces = dg.check(loss, params, data, method, m, predicted, key=jax.random.key(1), steps=20,
                               replicas=4, stability_steps=60, flow_steps=0)
    stable, unstable = checked["stability"]["runs"]
    assert checked["stability"]["holds"] and stable["decisive"] and unstable["decisive"]
    assert stable["decay"] < 1e-6 and unstable["growth"] > 1e14
    for path in traces["stability"].values():
        assert np.allclose(path["separation"], path["linear"], rtol=1e-6, atol=1e-6)
    wrong = {**predicted, "stability": {**predicted["stability"],
                                        "largest_stable_lr_factor": 2 / (float(method.h) * m.eigenvalues[0])}}
    checked, _ = dg.check(loss, params, data, method, m, wrong, key=jax.random.key(1), steps=20, replicas=4,
                          stability_steps=60, flow_steps=0)
    assert checked["stability"]["holds"] is False and checked["stability"]["runs"][1]["growth"] < 10


def test_stability_check_says_when_it_is_too_short_to_decide():
    """Heavy ball at β = 0.9 damps by √β ≈ 0.95 a step at 0.8× the threshold: 16 steps cannot show the perturbation
    dying out, so the check is undecided (holds None), never "fails", and names the steps that would decide."""
    loss, params, data, *_ = _regression()
    method = ia.HeavyBall.from_practitioner(0.05, 0.9)
    out = dg.diagnose(loss, params, data, method, batch_size=8, key=jax.random.key(1), top_k=5, steps=20,
                      replicas=4, stability_steps=16, flow_steps=0)
    assert out.checked["stability"]["holds"] is None
    assert "128 steps would decide" in out.checked["stability"]["reason"]
    # a short run at h·μ = 0.05 whose perturbation is seen to grow 50-fold while the companion matrix keeps it
    # below 1 (as far from a minimum, where the curvature changes along the way): it has left, and that is decided
    linear = dg._linear_perturbation(method, 1.0, 16)
    assert np.abs(linear).max() <= 1
    escaped = dg._judge_stability_run(0.8, linear * np.geomspace(1, 50, 16), linear, np.ones(16))
    assert escaped["decisive"] and not escaped["holds"]


@pytest.mark.parametrize("rescale", [True, False])
def test_regime_prediction_matches_the_coupled_continuation(rescale):
    """HB(0.02, 0.9) near the minimum: SGD at the matched rate 0.2 is predicted equivalent (Wang et al.), at the
    un-rescaled rate 0.02 not. The measured loss difference lands within 4 SE of the predicted one in both cases."""
    loss, params, data, *_ = _regression()
    out = dg.diagnose(loss, params, data, ia.HeavyBall(0.02, 0.9), batch_size=8, key=jax.random.key(1), top_k=5,
                      steps=600, replicas=64, rescale=rescale, flow_steps=0)
    regime = out.checked["regime"]
    assert out.predicted["regime"]["momentum_marginal"] is rescale
    assert regime["equivalent"] is rescale and regime["holds"]
    assert abs(regime["z_difference"]) < 4


def test_optax_methods_run_the_continuation_and_say_why_there_is_no_prediction(tmp_path):
    """optax.sgd with momentum is heavy ball in the practitioner form: diagnose runs it through `from_optax`, its
    continuation equals heavy ball's on the same minibatches (to round-off), and every prediction says it is not
    available and why (no linear two-step form can be read from an optax transformation). Adam likewise, against
    optax.adam through `from_optax`."""

    from inertia._diagnose_page import write_page

    loss, params, data, *_ = _regression()
    run = lambda method: dg.diagnose(loss, params, data, method, batch_size=8, key=jax.random.key(3), top_k=5,
                                     steps=100, replicas=8)
    opt, hb = run(ia.from_optax(optax.sgd, learning_rate=0.05, momentum=0.5)), run(ia.HeavyBall.from_practitioner(0.05,
                                                                                                                  0.5))
    assert np.allclose(opt.traces["projections"], hb.traces["projections"], rtol=1e-9, atol=1e-14)
    measured, reference = opt.checked["stationary"], hb.checked["stationary"]
    assert np.allclose(measured["measured_variance"], reference["measured_variance"], rtol=1e-8)
    assert abs(measured["excess_loss"]["measured"] / reference["excess_loss"]["measured"] - 1) < 1e-8
    for name in dg.PREDICTIONS:
        assert opt.predicted[name]["available"] is False
        assert "linear two-step" in opt.predicted[name]["reason"] and "optax" in opt.predicted[name]["reason"]
    for name in ("stationary", "regime", "stability"):
        assert opt.checked[name]["available"] is False and opt.checked[name]["holds"] is None
    adam, adam_optax = run(ia.Adam(0.01)), run(ia.from_optax(optax.adam, learning_rate=0.01))
    assert np.allclose(adam.traces["projections"], adam_optax.traces["projections"], rtol=1e-8, atol=1e-12)
    assert "Adam is not one" in adam.predicted["regime"]["reason"]
    page = write_page(adam, tmp_path).read_text()
    assert page.count("not available: ") == len(dg.PREDICTIONS) and "Traceback" not in page


def test_beyond_the_stability_limit_the_stationary_checks_say_why_nothing_is_predicted():
    """HB(2, 0.3) on the regression: μ_max·h exceeds 2(1+β), so no stationary distribution exists in the top
    directions (Liu, Ziyin & Ueda need a stable linear map); the checks are "not available" with that reason, never
    "does not hold", and the stability margin (> 1) says why."""
    loss, params, data, *_ = _regression()
    out = dg.diagnose(loss, params, data, ia.HeavyBall(2.0, 0.3), batch_size=8, key=jax.random.key(1), top_k=3,
                      steps=40, replicas=4, stability_steps=0, flow_steps=0)
    assert out.predicted["stability"]["margin"] > 1 and not out.predicted["stationary"]["exists"]
    for name in ("stationary", "regime"):
        assert out.checked[name]["available"] is False and out.checked[name]["holds"] is None, name
    assert out.checked["stationary"]["reason"].startswith("no stationary distribution in the top directions: ")


def test_implicit_regulariser_check_measures_the_orders_of_the_two_flows():
    """Logistic regression away from its minimum, heavy ball (β = 0.5): over 8 steps at h, h/2, h/4, h/8 the rescaled
    gradient flow is measured O(h) and the modified-loss flow O(h²) (Kovachki & Stuart), each fit's 99% interval
    inside its order ± ½; at the least-squares minimum neither flow moves, and the check says it is not available
    rather than fitting orders to the solver's round-off."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 1.0]) + rng.normal(size=256) > 0).astype(np.int32)
    logistic = lambda p, b: jnp.mean(jnp.logaddexp(0, b[0] @ p["w"]) - b[1] * (b[0] @ p["w"]))
    checked, traces = dg.check_implicit_regulariser(logistic, {"w": jnp.zeros(4, jnp.float32)},
                                                    (jnp.asarray(X, jnp.float32), jnp.asarray(y)),
                                                    ia.HeavyBall.from_practitioner(0.1, 0.5), steps=8)
    assert checked["holds"], checked
    for name, expected in (("gradient flow", 1), ("modified flow", 2)):
        r = checked["orders"][name]
        assert abs(r["order"] - expected) + r["t"] * r["se"] < 0.5, (name, r)
    assert np.all(traces["errors"]["modified flow"] < traces["errors"]["gradient flow"])
    loss, params, data, *_ = _regression()
    at_minimum, _ = dg.check_implicit_regulariser(loss, params, data, ia.GD(0.1), steps=8)
    assert at_minimum["available"] is False and "too small" in at_minimum["reason"]


def test_state_dependent_noise_beyond_its_limit_says_why_without_floating_point_warnings():
    """HB(1.1, 0.3) at batch 1 is linearly stable on the regression (h·μ_max < 2(1+β)) but its state-dependent
    minibatch noise grows faster than the dynamics contract: the self-consistent stationary covariance diverges. The
    prediction says so, and the diverging iteration's overflow reaches the user as no RuntimeWarning."""
    import warnings

    loss, params, data, *_ = _regression()
    m = dg.measure(loss, params, data, batch_size=1, key=jax.random.key(0), top_k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        p = dg.predict(ia.HeavyBall(1.1, 0.3), m)
    assert p["stability"]["margin"] < 1 and not p["stationary"]["exists"]
    assert "self-consistent iteration diverged" in p["stationary"]["reason"]


@pytest.mark.parametrize("make", [ia.HeavyBall, ia.Nesterov, lambda h, _: ia.from_optax(optax.sgd, learning_rate=h)])
def test_continuation_records_the_loss_where_the_gradient_is_taken(make):
    """The loss each step records comes from the gradient's own forward pass: it must equal the full-batch loss at
    the method's evaluation point, ``x_t`` (heavy ball, optax) or ``x_t + a v_t`` (Nesterov), of a NumPy loop."""
    loss, params, data, X, y, w = _regression()
    start = {"w": jnp.asarray(w + 0.3)}
    flat, unravel = jax.flatten_util.ravel_pytree(start)
    method = make(0.05, 0.5)
    run = dg._continuation(loss, unravel, len(y), None, 12)
    _, losses = run(method, jax.random.split(jax.random.key(0), 1), data, flat, jnp.eye(1, flat.size))
    lookahead = float(getattr(method, "lookahead", 0.0))
    momentum = float(getattr(method, "momentum", 0.0))
    x, v, expected = np.asarray(w + 0.3), np.zeros_like(w), []
    for _ in range(12):
        point = x + lookahead * v
        expected.append(0.5 * np.mean((X @ point - y) ** 2))
        v = momentum * v - 0.05 * X.T @ (X @ point - y) / len(y)
        x = x + v
    assert np.allclose(np.asarray(losses[0]), expected, rtol=1e-12)
