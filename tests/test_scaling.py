"""Sweeps beyond one device and one process: executors (threads, a Dask LocalCluster) and host devices give the
results of the local run."""

import concurrent.futures
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from inertia import Gaussian, HeavyBall, Quadratic, grid, sweep

FIELDS = ("x", "velocity", "loss", "diverged_at")


def _grid_sweep(**kw):
    # h = 0.45 with momentum 0.9 diverges on the eigenvalue 5: frozen runs travel through every path too
    method = grid(HeavyBall, h=[0.05, 0.1, 0.2, 0.3, 0.45], momentum=[0.0, 0.9])
    return sweep(method, Quadratic([1.0, 5.0, 2.0]), np.ones(3), 300, seeds=3, noise=Gaussian(0.3),
                 key=jax.random.key(5), record_every=25, progress=False, **kw)


def _assert_identical(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_a_thread_pool_gives_the_local_results_bit_for_bit(tmp_path):
    local = _grid_sweep(chunk_size=3)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        farmed = _grid_sweep(chunk_size=3, executor=pool, path=tmp_path)
    _assert_identical(farmed, local)
    assert farmed.diverged.values.any() and not farmed.diverged.values.all()
    assert len(list(tmp_path.glob("chunk_*.npz"))) == 4  # 10 configurations in chunks of 3, written by the driver


def test_a_dask_local_cluster_gives_the_local_results_and_resumes(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = _grid_sweep(chunk_size=4)
    # Two worker processes: they start without jax_enable_x64, which the tasks carry from the driver.
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        farmed = _grid_sweep(chunk_size=4, executor=client, path=tmp_path)
        assert farmed.x.dtype == np.float64
        _assert_identical(farmed, local)
        stamps = {c.name: c.stat().st_mtime_ns for c in tmp_path.glob("chunk_*.npz")}
        assert len(stamps) == 3
        again = _grid_sweep(chunk_size=4, executor=client, path=tmp_path)  # every chunk done: nothing is submitted
        _assert_identical(again, local)
        assert {c.name: c.stat().st_mtime_ns for c in tmp_path.glob("chunk_*.npz")} == stamps


TWO_DEVICES = textwrap.dedent("""
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from inertia import Adam, Gaussian, HeavyBall, Quadratic, Rosenbrock, grid, sweep
    assert jax.device_count() == 2, jax.devices()
    one = jax.devices()[:1]
    hb = grid(HeavyBall, h=[0.05, 0.1, 0.2, 0.3, 0.45], momentum=[0.0, 0.9])  # 10 configurations, 5 per device
    kw = dict(seeds=3, noise=Gaussian(0.3), key=jax.random.key(5), record_every=25, progress=False)
    for method, f, x0 in ((hb, Quadratic([1.0, 5.0, 2.0]), np.ones(3)),
                          (grid(Adam, lr=[1e-3, 1e-2, 1e-1]), Rosenbrock(), np.array([-1.2, 1.0]))):
        split, alone = sweep(method, f, x0, 300, **kw), sweep(method, f, x0, 300, devices=one, **kw)
        assert split.diverged.values.any() or method is not hb
        for name in ("x", "loss", "diverged_at"):
            a, b = split[name].values, alone[name].values
            print(name, "identical" if np.array_equal(a, b) else f"max difference {np.abs(a - b).max():.3e}")
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)
""")


def test_two_host_devices_give_the_results_of_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("identical") + done.stdout.count("max difference") == 6


# ------------------------------------------------------------------------------------------ training networks


def _grid_train(**kw):
    from inertia.nn import MLP, load, train

    data = load("digits", n_train=120, seed=1)
    model = functools.partial(MLP, data.x_train.shape[1], data.n_classes, width=16)
    # lr 40 diverges: frozen runs (NaN metrics) travel through every path too
    method = grid(HeavyBall.from_practitioner, lr=[0.05, 0.2, 40.0], momentum=[0.0, 0.9])
    return train(model, method, data, key=jax.random.key(3), epochs=4, batch_size=20, seeds=2, record_every=2,
                 keep_params=True, progress=False, **kw)


TRAINED = ("train_loss", "test_accuracy", "distance", "diverged_at", "final", "velocity", "initial")


def _assert_trained_identical(a, b):
    assert a.sizes == b.sizes
    for name in TRAINED:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    np.testing.assert_array_equal(a.h.values, b.h.values)


def test_training_on_a_thread_pool_gives_the_local_results_bit_for_bit():
    local = _grid_train(chunk_size=4)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        farmed = _grid_train(chunk_size=4, executor=pool)
    _assert_trained_identical(farmed, local)
    assert (farmed.diverged_at.values >= 0).any() and (farmed.diverged_at.values < 0).any()
    whole = _grid_train()  # the whole grid as one program: the same numbers to float32 rounding
    np.testing.assert_allclose(farmed.final.values, whole.final.values, rtol=1e-4, atol=1e-5)


def test_training_on_a_dask_local_cluster_gives_the_local_results_bit_for_bit():
    distributed = pytest.importorskip("distributed")
    local = _grid_train(chunk_size=3, dtype="float64")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        farmed = _grid_train(chunk_size=3, dtype="float64", executor=client)
    assert farmed.final.dtype == np.float64
    _assert_trained_identical(farmed, local)
