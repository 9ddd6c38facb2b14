"""Benchmark for docs/scaling.md: one sweep of 10,000 configurations run locally, on two host devices, and as
chunks on a Dask LocalCluster of two worker processes; the results are compared with the local run's.

Heavy ball on a quadratic in d = 10 (100 learning rates × 100 momenta), 2 seeds with Gaussian noise, 2,000 steps,
float64, chunks of 1,000 configurations. Times include everything the user waits for (for the cluster: starting
it, and each worker compiling the program once), as printed.

Run: PYTHONPATH=src python benchmarks/scaling.py  (needs dask.distributed for the cluster line)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from _timing import machine, timed
from inertia import Gaussian, HeavyBall, Quadratic, grid, sweep

jax.config.update("jax_enable_x64", True)

D, STEPS, CHUNK = 10, 2000, 1000


def run(**kw):
    method = grid(HeavyBall, h=np.linspace(0.01, 0.5, 100), momentum=np.linspace(0.0, 0.95, 100))
    ds = sweep(method, Quadratic(np.linspace(0.1, 1.0, D)), np.ones(D), STEPS, seeds=2, noise=Gaussian(0.01),
               key=jax.random.key(0), record_at=[STEPS], chunk_size=CHUNK, progress=False, **kw)
    return ds.x.values


def two_host_devices() -> str:
    """This script's local run in a process where JAX sees two CPU devices (the flag is read when JAX starts)."""
    code = ("import sys; sys.path.insert(0, 'benchmarks'); import numpy as np, jax; import scaling; "
            "scaling.run(); t, x = scaling.timed(scaling.run); np.save(sys.argv[1], x); "
            "print(f'{t:.3f} {t.cpu:.3f} {jax.device_count()}')")
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "x.npy")
        env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
        done = subprocess.run([sys.executable, "-c", code, out], env=env, capture_output=True, text=True, check=True)
        wall, cpu, devices = done.stdout.split()
        return wall, cpu, int(devices), np.load(out)


def main():
    print(f"sweep of 10,000 configurations x 2 seeds, d = {D}, {STEPS} steps, chunks of {CHUNK}; {machine()}")
    first, _ = timed(run)
    t_local, x_local = timed(run)
    print(f"local, one device:        {t_local:7.2f} s (cpu {t_local.cpu:.2f} s; first call with compiling "
          f"{first:.2f} s)")
    wall, cpu, devices, x_two = two_host_devices()
    print(f"local, {devices} host devices:    {float(wall):7.2f} s (cpu {float(cpu):.2f} s; after compiling); "
          f"results {'identical' if np.array_equal(x_two, x_local) else 'DIFFERENT'}")
    try:
        import distributed
    except ImportError:
        print("dask.distributed is not installed: no cluster line")
        return
    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        started = time.perf_counter() - start
        t_first, _ = timed(lambda: run(executor=client))
        t_dask, x_dask = timed(lambda: run(executor=client))
    print(f"Dask LocalCluster, 2 worker processes: {t_dask:7.2f} s (after each worker compiled: first call "
          f"{t_first:.2f} s; starting the cluster {started:.2f} s); results "
          f"{'identical' if np.array_equal(x_dask, x_local) else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
