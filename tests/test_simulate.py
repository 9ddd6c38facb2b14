"""Simulation: iterates against closed forms, divergence bookkeeping, no recompilation, resumable sweeps."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

from inertia import (
    DAL,
    GD,
    Adam,
    Gaussian,
    HeavyBall,
    InertiaError,
    Nesterov,
    Quadratic,
    Rosenbrock,
    from_optax,
    grid,
    run,
    sweep,
)
from inertia.objectives import Function
from inertia.simulate import record_steps, trajectory


def test_gd_on_a_quadratic_follows_the_matrix_power():
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    x0, h, n = np.array([1.0, -2.0]), 0.3, 40
    traj = run(GD(h), Quadratic(H), x0, n, record_at=[0, 7, 40])
    for step, x in zip(traj.steps, traj.x):
        np.testing.assert_allclose(x, np.linalg.matrix_power(np.eye(2) - h * H, int(step)) @ x0, rtol=1e-12)
    np.testing.assert_allclose(traj.loss, [0.5 * x @ H @ x for x in np.asarray(traj.x)], rtol=1e-12)


def test_recording_at_listed_steps_equals_recording_at_a_stride():
    f, x0 = Quadratic([1.0, 10.0]), np.array([1.0, 1.0])
    every = run(HeavyBall(0.05, 0.8), f, x0, 100, record_every=1)
    listed = run(HeavyBall(0.05, 0.8), f, x0, 100, record_at=[3, 50, 99, 100])
    np.testing.assert_array_equal(listed.x, every.x[np.array([3, 50, 99, 100])])
    np.testing.assert_array_equal(record_steps(10, 4), [0, 4, 8, 10])


def test_divergence_is_marked_at_the_predicted_step_and_leaves_other_runs_alone():
    # GD on f = ½ μx² has x_n = (1 − hμ)^n x_0; with |1 − hμ| = 2 it passes max_norm at n = ⌈log2(max_norm)⌉ + …
    mu, x0, max_norm = 1.0, np.array([1.0]), 1e6
    method = grid(GD, h=[0.5, 3.0, 1.0])
    ds = sweep(method, Quadratic([mu]), x0, 60, max_norm=max_norm, record_every=1)
    predicted = int(np.floor(np.log(max_norm) / np.log(2.0))) + 1  # first n with 2^n > max_norm
    np.testing.assert_array_equal(ds.diverged_at.values[:, 0], [-1, predicted, -1])
    np.testing.assert_array_equal(ds.diverged.values[:, 0], [False, True, False])
    alone = run(GD(0.5), Quadratic([mu]), x0, 60, record_every=1)
    np.testing.assert_array_equal(ds.x.values[0, 0], alone.x)
    assert np.all(np.isfinite(ds.x.values))  # the diverged run is frozen at its last finite state


def test_a_new_grid_of_the_same_shape_does_not_recompile():
    traces = []

    def loss(x):
        traces.append(1)  # runs once per trace
        return jnp.sum(x**2 + 0.1 * x**4)

    f = Function(loss)
    sweep(grid(HeavyBall, h=[0.01, 0.02], momentum=[0.5, 0.9]), f, np.ones(3), 50, progress=False)
    first = len(traces)
    sweep(grid(HeavyBall, h=[0.03, 0.04], momentum=[0.1, 0.2]), f, np.ones(3), 50, progress=False)
    assert len(traces) == first


def test_sgd_stationary_variance_matches_the_exact_discrete_formula():
    # Liu, Ziyin & Ueda (2021) Thm 1 in 1-D: Var = λσ² / (k(2 − λk)). One sample per chain, at the final step.
    k, sigma2, lr, chains = 1.0, 1.0, 1.5, 4000
    ds = sweep(GD(lr), Quadratic([k]), np.zeros(1), 300, seeds=chains, noise=Gaussian(sigma2),
               key=jax.random.key(1), record_at=[300], progress=False)
    samples = ds.x.values[0, :, -1, 0]
    exact = lr * sigma2 / (k * (2 - lr * k))
    stderr = exact * np.sqrt(2 / (chains - 1))  # Gaussian samples: Var(s²) = 2σ⁴/(n−1)
    assert abs(samples.var(ddof=1) - exact) < 4 * stderr
    assert abs(samples.var(ddof=1) - lr * sigma2 / (2 * k)) > 4 * stderr  # the continuous-time value is rejected


def test_same_key_same_numbers_and_seeds_differ():
    kw = dict(noise=Gaussian(0.1), key=jax.random.key(3), record_every=10, progress=False)
    a = sweep(HeavyBall(0.1, 0.5), Quadratic([1.0, 2.0]), np.ones(2), 100, seeds=3, **kw)
    b = sweep(HeavyBall(0.1, 0.5), Quadratic([1.0, 2.0]), np.ones(2), 100, seeds=3, **kw)
    np.testing.assert_array_equal(a.x.values, b.x.values)
    assert not np.allclose(a.x.values[0, 0], a.x.values[0, 1])


def test_a_sweep_resumes_from_its_chunks(tmp_path):
    method = grid(HeavyBall, h=np.linspace(0.01, 0.1, 7), momentum=[0.9])
    f, x0 = Quadratic([1.0, 5.0]), np.ones(2)
    full = sweep(method, f, x0, 200, path=tmp_path, chunk_size=3, progress=False)
    chunks = sorted(tmp_path.glob("chunk_*.npz"))
    assert len(chunks) == 3
    stamps = {c.name: c.stat().st_mtime_ns for c in chunks}
    chunks[1].unlink()  # as if interrupted while writing the second chunk
    again = sweep(method, f, x0, 200, path=tmp_path, chunk_size=3, progress=False)
    np.testing.assert_array_equal(again.x.values, full.x.values)
    assert chunks[0].stat().st_mtime_ns == stamps[chunks[0].name]  # finished chunks were not recomputed
    assert chunks[2].stat().st_mtime_ns == stamps[chunks[2].name]
    saved = xr.open_dataset(tmp_path / "sweep.nc")
    np.testing.assert_array_equal(saved.x.values, full.x.values)
    with pytest.raises(InertiaError, match="holds a different sweep"):
        sweep(grid(HeavyBall, h=[0.5], momentum=[0.1]), f, x0, 200, path=tmp_path, chunk_size=3, progress=False)


def test_sweep_coordinates_label_each_configuration():
    ds = sweep(grid(HeavyBall.from_normalised, lr=[0.1, 0.2], momentum=[0.5, 0.9]), Quadratic([1.0]), np.ones(1), 10,
               progress=False)
    np.testing.assert_allclose(ds.h.values / (1 - ds.momentum.values), [0.1, 0.1, 0.2, 0.2])
    assert ds.x.dims == ("config", "seed", "step", "dim")


@pytest.mark.parametrize("kwargs,match", [
    (dict(x0=[np.nan, 1.0]), "x0 must be finite"),
    (dict(x0=[[1.0, 2.0]]), "x0 must be a non-empty vector"),
    (dict(v0=[1.0]), "v0 must have the shape"),
    (dict(steps=0), "steps must be an integer"),
    (dict(noise=Gaussian(1.0)), "key is required"),
    (dict(record_at=[5, 500]), "record_at must hold steps"),
])
def test_bad_input_is_a_clear_error(kwargs, match):
    args = dict(x0=[1.0, 2.0], steps=100) | kwargs
    with pytest.raises(InertiaError, match=match):
        run(GD(0.1), Quadratic([1.0, 2.0]), args.pop("x0"), args.pop("steps"), **args)


# ------------------------------------------------------------------------- any method of the stepping protocol


def test_a_sweep_over_an_adam_grid_equals_its_configurations_run_one_at_a_time():
    f, x0 = Rosenbrock(), np.array([-1.2, 1.0])
    methods = grid(Adam, lr=[1e-3, 1e-2], b1=[0.5, 0.9], b2=[0.9, 0.999])
    ds = sweep(methods, f, x0, 200, noise=Gaussian(0.01), key=jax.random.key(7), seeds=2, record_every=20,
               progress=False)
    assert ds.sizes["config"] == 8
    for c in range(8):
        alone = Adam(float(ds.lr[c]), float(ds.b1[c]), float(ds.b2[c]), float(ds.eps[c]))
        seed_keys = jax.random.split(jax.random.key(7), 2)
        for s in range(2):
            traj = run(alone, f, x0, 200, noise=Gaussian(0.01), key=seed_keys[s], record_every=20)
            np.testing.assert_allclose(ds.x.values[c, s], traj.x, rtol=1e-12, atol=0)
            np.testing.assert_allclose(ds.nu.values[c, s], traj.state.nu, rtol=1e-12, atol=0)
    assert len({tuple(np.round(ds.x.values[c, 0, -1], 6)) for c in range(8)}) == 8  # the grid differs


def test_sweep_coordinates_are_every_hyper_parameter_of_the_method():
    f, x0 = Quadratic([1.0, 3.0]), np.ones(2)
    dal = sweep(grid(DAL, p=[0.5, 1.0, 2.0], h_max=[1.0, 5.0]), f, x0, 5, progress=False)
    np.testing.assert_array_equal(dal.p.values, [0.5, 0.5, 1.0, 1.0, 2.0, 2.0])
    np.testing.assert_array_equal(dal.h_max.values, [1.0, 5.0] * 3)
    assert dal.attrs["method"] == "DAL" and "learning_rate" in dal  # DAL's step size per recorded step
    adam = sweep(Adam(np.array([1e-3, 1e-2]), b1=0.8, b2=np.array([0.9, 0.99])), f, x0, 5, progress=False)
    assert {"lr", "b1", "b2", "eps"} <= set(adam.coords)
    np.testing.assert_array_equal(adam.b1.values, [0.8, 0.8])
    np.testing.assert_array_equal(adam.b2.values, [0.9, 0.99])
    opt = sweep(grid(lambda learning_rate: from_optax(optax.sgd, learning_rate=learning_rate, momentum=0.9),
                     learning_rate=[0.01, 0.02]), f, x0, 5, progress=False)
    np.testing.assert_array_equal(opt.learning_rate.values, [0.01, 0.02])
    np.testing.assert_array_equal(opt.momentum.values, [0.9, 0.9])


def test_sweep_records_the_observed_point_and_the_state():
    f, x0 = Quadratic([1.0, 3.0]), np.ones(2)
    ds = sweep(grid(Nesterov, h=[0.1, 0.2], momentum=[0.5]), f, x0, 20, record_every=1, progress=False)
    np.testing.assert_allclose(ds.observed.values, ds.x.values + 0.5 * ds.velocity.values, rtol=1e-15)
    traj = run(Nesterov(0.2, 0.5), f, x0, 20, record_every=1)
    np.testing.assert_array_equal(ds.observed.values[1, 0], traj.observed)


def test_the_traceable_trajectory_equals_run_under_jit():
    f, x0, method = Rosenbrock(), jnp.array([-1.2, 1.0]), Nesterov(1e-3, 0.9)
    at = jnp.arange(0, 101, 10)
    inside = eqx.filter_jit(lambda m: trajectory(m, f, x0, at).observed)(method)
    np.testing.assert_allclose(inside, run(method, f, x0, 100, record_every=10).observed, rtol=1e-14)


def _explodes(x):
    """At x₀ = 14.15 the loss e^{707.5} ≈ 1e307 is finite but the gradient 50·e^{707.5} overflows to inf."""
    return jnp.sum(jnp.exp(50 * x))


@pytest.mark.parametrize("method", [GD(0.1), Nesterov(0.1, 0.9), Adam(0.1), DAL(1.0),
                                    from_optax(lambda learning_rate: optax.chain(optax.clip(1.0),
                                                                                 optax.sgd(learning_rate)),
                                               learning_rate=0.1)], ids=lambda m: m.name)
def test_a_non_finite_gradient_marks_the_run_diverged_at_that_step(method):
    x0 = jnp.array([14.15, 0.0])
    traj = run(method, Function(_explodes), x0, 10, record_every=1)
    assert int(traj.diverged_at) == 1  # the first step evaluated an infinite gradient
    np.testing.assert_array_equal(traj.x[-1], x0)  # frozen at the last finite state


def test_the_clip_would_hide_the_infinite_gradient_without_the_guard():
    """The control for the optax case above: optax's own clipped step from an infinite gradient is finite."""
    tx = optax.chain(optax.clip(1.0), optax.sgd(0.1))
    x0 = jnp.array([14.15, 0.0])
    updates, _ = tx.update(Function(_explodes).grad(x0), tx.init(x0), x0)
    assert not np.all(np.isfinite(Function(_explodes).grad(x0))) and np.all(np.isfinite(updates))


def test_a_non_finite_loss_marks_the_run_diverged_at_the_first_record_that_sees_it():
    # f = −x₀ below x₀ = 1 and +inf above, with the finite gradient (−1, 0) everywhere: GD moves x₀ by h per step,
    # x₀ = 0.45 + 0.1n passes 1 at n = 6, and the first recorded step after that (record_every = 4) is 8, where the
    # run is frozen (unfrozen, it would reach 1.65 at step 12).
    f = Function(lambda x: -x[0] + jnp.where(x[0] < 1.0, 0.0, jnp.inf) + 0 * x[1])
    traj = run(GD(0.1), f, jnp.array([0.45, 0.0]), 20, record_every=4)
    assert int(traj.diverged_at) == 8
    np.testing.assert_allclose(traj.x[:, 0], [0.45, 0.85, 1.25, 1.25, 1.25, 1.25], rtol=1e-12)
    assert int(run(GD(0.1), f, jnp.array([0.45, 0.0]), 5, record_every=1).diverged_at) == -1


def test_a_long_run_in_segments_has_exactly_the_iterates_of_one_call(monkeypatch):
    from inertia import simulate

    kw = dict(noise=Gaussian(0.5), key=jax.random.key(2), record_every=7, progress=False)
    method = grid(HeavyBall, h=[0.1, 0.45], momentum=[0.0, 0.9])  # h = 0.45 with momentum 0.9 diverges on eigenvalue 5
    whole = sweep(method, Quadratic([1.0, 5.0]), np.ones(2), 300, seeds=2, **kw)
    monkeypatch.setattr(simulate, "SEGMENT_WORK", 1)
    monkeypatch.setattr(simulate, "SEGMENT_FIRST_WORK", 8 * 13)  # 13 steps per segment at first: not a record stride
    parts = sweep(method, Quadratic([1.0, 5.0]), np.ones(2), 300, seeds=2, **kw)
    for name in ("x", "velocity", "loss", "diverged_at"):
        np.testing.assert_array_equal(parts[name].values, whole[name].values)
    assert parts.diverged.values.any() and not parts.diverged.values.all()


def test_a_long_adam_run_in_segments_carries_its_whole_state(monkeypatch):
    from inertia import simulate

    kw = dict(noise=Gaussian(0.1), key=jax.random.key(3), record_every=9, progress=False)
    f, x0, method = Rosenbrock(), np.array([-1.2, 1.0]), grid(Adam, lr=[0.01, 0.1], b1=[0.5, 0.9])
    whole, alone = sweep(method, f, x0, 200, seeds=2, **kw), run(Adam(0.05), f, x0, 200, **kw)
    monkeypatch.setattr(simulate, "SEGMENT_WORK", 1)
    monkeypatch.setattr(simulate, "SEGMENT_FIRST_WORK", 16 * 11)  # 11 steps per segment at first: not a record stride
    parts, segmented = sweep(method, f, x0, 200, seeds=2, **kw), run(Adam(0.05), f, x0, 200, **kw)
    for name in ("x", "mu", "nu", "steps_taken", "loss", "diverged_at"):
        np.testing.assert_array_equal(parts[name].values, whole[name].values)
    for a, b in zip(jax.tree.leaves(segmented.state), jax.tree.leaves(alone.state)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(segmented.loss, alone.loss)


# ------------------------------------------------------------------------------ the engine against references


def test_a_heavy_ball_grid_equals_a_hand_written_scan_in_matrix_form():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    H = (Q * np.linspace(0.01, 1.0, 20)) @ Q.T
    H = (H + H.T) / 2
    x0, lrs, steps = rng.normal(size=20), np.linspace(0.05, 2.0, 8), 500
    ds = sweep(HeavyBall(lrs, 0.9), Quadratic(H), x0, steps, record_at=[100, steps], progress=False)

    def body(carry, _):
        X, V = carry
        V = 0.9 * V - lrs[:, None] * (X @ H)
        return (X + V, V), X + V

    X0 = np.tile(x0, (len(lrs), 1))
    _, path = jax.lax.scan(body, (jnp.asarray(X0), jnp.zeros_like(jnp.asarray(X0))), None, length=steps)
    np.testing.assert_allclose(ds.x.values[:, 0], np.asarray(path)[[99, steps - 1]].transpose(1, 0, 2),
                               rtol=1e-12, atol=1e-14)
    assert not ds.diverged.values.any()


def _guarded_reference(method, f, x0, v0, steps, max_norm):
    """The per-step guarded loop of the previous engine: `guarded_step` at every step, one run."""
    from inertia.simulate import guarded_step

    state = method.astype(jnp.float64).init(jnp.asarray(x0), jnp.asarray(v0))
    carry = (state, jnp.asarray(-1))
    for n in range(steps):
        carry = guarded_step(method.astype(jnp.float64), carry, f.grad, jnp.asarray(n), max_norm)
    return carry


@pytest.mark.parametrize("h, max_norm", [(0.5, 1.2), (0.5, 1e12), (5.0, 1e12)])
def test_divergence_inside_a_block_is_caught_at_its_step_as_by_a_check_at_every_step(h, max_norm):
    # Heavy ball started with a velocity swings to ‖x‖ = 1.23 at step 2 and comes back to 0.04 by step 32, within
    # the block: a check at the block's end alone would miss it. h = 5 diverges to inf instead.
    f, x0, v0, steps = Quadratic([1.0, 0.3]), np.zeros(2), np.array([1.0, 0.5]), 70
    method = HeavyBall(h, 0.8)
    traj = run(method, f, x0, steps, v0=v0, record_at=[steps], max_norm=max_norm, progress=False)
    (state, diverged_at) = _guarded_reference(method, f, x0, v0, steps, max_norm)
    assert int(traj.diverged_at) == int(diverged_at)
    np.testing.assert_allclose(traj.x[-1], state.x, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(traj.velocity[-1], state.velocity, rtol=1e-12, atol=1e-300)
    if max_norm == 1.2:
        assert 0 < int(diverged_at) < 32  # inside the first block of the fast path
        assert np.linalg.norm(traj.x[-1]) < 1.2


def test_gaussian_noise_is_drawn_per_seed_in_blocks_as_documented():
    from inertia.simulate import noise_block_steps

    f, noise, x0, steps, seeds = Quadratic([1.0, 2.0, 0.5]), Gaussian(np.diag([0.5, 1.0, 0.2])), np.ones(3), 300, 2
    ds = sweep(HeavyBall([0.1, 0.2], 0.9), f, x0, steps, seeds=seeds, noise=noise, key=jax.random.key(4),
               record_at=[steps], progress=False)
    K = noise_block_steps(3)
    assert K == 128
    for s, seed_key in enumerate(jax.random.split(jax.random.key(4), seeds)):
        for c, h in enumerate([0.1, 0.2]):
            x, v = jnp.asarray(x0), jnp.zeros(3)
            for b in range(-(-steps // K)):
                xi = noise.sample(jax.random.fold_in(seed_key, b), (K, 3), jnp.float64)
                for i in range(min(K, steps - b * K)):
                    v = 0.9 * v - h * (f.grad(x) + xi[i])
                    x = x + v
            np.testing.assert_allclose(ds.x.values[c, s, -1], x, rtol=1e-12, atol=1e-14)


def test_chunking_and_devices_leave_the_noise_unchanged(tmp_path):
    method = grid(HeavyBall, h=np.linspace(0.05, 0.3, 5), momentum=[0.5, 0.9])
    kw = dict(seeds=4, noise=Gaussian(0.2), key=jax.random.key(6), record_every=50, progress=False)
    whole = sweep(method, Quadratic([1.0, 3.0]), np.ones(2), 400, **kw)
    chunked = sweep(method, Quadratic([1.0, 3.0]), np.ones(2), 400, path=tmp_path, chunk_size=3,
                    devices=jax.devices()[:1], **kw)
    np.testing.assert_allclose(chunked.x.values, whole.x.values, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(chunked.diverged_at.values, whole.diverged_at.values)
