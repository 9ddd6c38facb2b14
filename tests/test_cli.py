"""The command line: its numbers equal the library's, and bad input is one line with exit code 2."""

import functools
import json
import re

import numpy as np
import pytest

from inertia import stability as st
from inertia.cli import main


def test_stability_prints_the_thresholds_and_optimum(capsys):
    assert main(["stability", "--method", "heavy-ball", "--momentum", "0.9", "--eigenvalues", "1,100"]) == 0
    out = capsys.readouterr().out
    threshold = float(re.search(r"stable for 0 < lr < ([\d.e+-]+)", out).group(1))
    assert threshold == pytest.approx(2 * 1.9 / 100, rel=1e-5)
    rate = float(re.search(r"optimal lr .*: rate ([\d.]+)", out).group(1))
    assert rate == pytest.approx(st.polyak_optimal(1, 100)["rate"], abs=1e-6)


def test_stability_plot_writes_a_png(tmp_path, capsys):
    path = tmp_path / "map.png"
    assert main(["stability", "--method", "nesterov", "--eigenvalues", "1,10", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_prints_gd_iterates_of_a_quadratic(capsys):
    assert main(["run", "--method", "gd", "--objective", "quadratic:1,4", "--x0", "1,1", "--lr", "0.1",
                 "--steps", "10"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    step, loss = last.split()[:2]
    x10 = np.array([0.9**10, 0.6**10])
    assert int(step) == 10 and float(loss) == pytest.approx(0.5 * (x10[0] ** 2 + 4 * x10[1] ** 2), rel=1e-6)


@pytest.mark.parametrize("argv,match", [
    (["stability", "--method", "adam"], "--method: must be one of"),
    (["run", "--lr", "-1"], "--lr: must lie in"),
    (["run", "--lr", "0.1", "--objective", "sphere"], "--objective: must be one of"),
    (["run", "--lr", "0.1", "--x0", "1,2,3"], "--x0 must have 2 entries"),
    (["sweep", "--lr", "a,b"], "--lr must be numbers"),
    (["reproduce", "--only", "no-such-claim"], "unknown claim"),
    (["reproduce", "--jobs", "0"], "--jobs: must be an integer >= 1"),
    (["frobnicate"], "invalid choice"),
    (["diagnose", "--lr", "0"], r"--lr: must lie in \(0"),
    (["diagnose", "--lr", "0.1", "--momentum", "1"], r"--momentum: must lie in \[0, 1\)"),
    (["diagnose", "--lr", "0.1", "--steps", "5"], "--steps: must be an integer >= 20"),
    (["diagnose", "--lr", "0.1", "--replicas", "2"], "--replicas: must be an integer >= 4"),
    (["diagnose", "--lr", "0.1", "--model", "vgg"], "--model: invalid choice"),
    (["diagnose", "--lr", "0.1", "--epochs", "0"], "--epochs: must be an integer >= 1"),
    (["diagnose", "--lr", "0.1", "--epochs", "1", "--pool", "16", "--top-k", "100000"],
     r"--top-k must lie in \[1, \d+\] \(the parameter count\)"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("inertia: error:") and re.search(match, err)


def test_sweep_on_a_local_dask_cluster_prints_the_local_numbers(tmp_path, capsys):
    pytest.importorskip("distributed")
    argv = ["sweep", "--objective", "quadratic:1,4", "--x0", "1,1", "--lr", "0.05:0.5:6", "--momentum", "0.9",
            "--seeds", "3", "--noise", "0.1", "--steps", "200", "--chunk-size", "2"]
    assert main(argv) == 0
    local = capsys.readouterr().out
    assert main(argv + ["--scheduler", "local", "--out", str(tmp_path / "s")]) == 0
    farmed = capsys.readouterr().out
    assert farmed.splitlines()[:7] == local.splitlines()[:7] and len(list((tmp_path / "s").glob("chunk_*"))) == 3


def test_train_on_a_local_dask_cluster_prints_the_local_numbers(capsys):
    pytest.importorskip("distributed")
    argv = ["train", "--data", "digits", "--n-train", "100", "--width", "8", "--epochs", "2", "--batch-size", "20",
            "--lr", "0.05,0.2,0.5", "--momentum", "0.9", "--seeds", "2", "--chunk-size", "2"]
    assert main(argv) == 0
    local = capsys.readouterr().out
    assert main(argv + ["--scheduler", "local"]) == 0
    farmed = capsys.readouterr().out
    assert farmed == local and len(local.splitlines()) == 5  # header, column names, one line per learning rate


def test_sweep_with_an_unreachable_scheduler_is_one_line_with_exit_code_2(capsys):
    pytest.importorskip("distributed")
    code = main(["sweep", "--lr", "0.1", "--steps", "5", "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2 and "--scheduler 'tcp://127.0.0.1:9': no Dask scheduler answers there" in capsys.readouterr().err
    code = main(["train", "--data", "digits", "--lr", "0.1", "--epochs", "1", "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2 and "--scheduler 'tcp://127.0.0.1:9': no Dask scheduler answers there" in capsys.readouterr().err


def _verdicts_and_numbers(folder) -> list:
    """What a reproduce run decided, with every number it measured: all of results.json but times and provenance."""
    claims = json.loads((folder / "results.json").read_text())["claims"]
    timed = ("seconds", "cpu_seconds")
    return [{**{k: v for k, v in c.items() if k not in timed},
             "controls": [{k: v for k, v in d.items() if k not in timed} for d in c["controls"]]} for c in claims]


def test_reproduce_in_two_worker_processes_gives_the_numbers_of_a_serial_run(tmp_path, capsys):
    cheap = ["momentum-divergence", "svag-weak-error", "kramers-escape-rate"]
    argv = ["reproduce", "--quick", "--controls", *(a for i in cheap for a in ("--only", i))]
    assert main(argv + ["--jobs", "1", "--out", str(tmp_path / "serial")]) == 0
    serial = capsys.readouterr().out
    assert main(argv + ["--jobs", "2", "--out", str(tmp_path / "parallel")]) == 0
    parallel = capsys.readouterr().out
    untimed = functools.partial(re.sub, r"\d+\.\d s; ", "")
    assert untimed(serial).replace("serial", "parallel") == untimed(parallel)
    assert [c["id"] for c in _verdicts_and_numbers(tmp_path / "parallel")] == cheap
    assert _verdicts_and_numbers(tmp_path / "parallel") == _verdicts_and_numbers(tmp_path / "serial")
    figures = sorted(p.name for p in (tmp_path / "parallel" / "figures").iterdir())
    assert figures == sorted(p.name for p in (tmp_path / "serial" / "figures").iterdir()) and figures


def test_diagnose_reports_the_library_sharpness_and_stability_margin(tmp_path, capsys):
    """The page's numbers are `inertia.diagnose`'s from Python with the same seed (float32, the default precision);
    the sharpness lies within its reported Lanczos residual of a float64 peer (60 Lanczos steps), up to float32
    round-off of the Hessian-vector products (1e-5 relative); the margin is μ_max against 2(1+β)/lr."""
    import jax
    import jax.numpy as jnp

    import inertia as ia
    from inertia.cli._diagnose import checkpoint
    from inertia.diagnose import diagnose

    lr, beta, seed = 0.05, 0.9, 3
    argv = ["diagnose", "--data", "digits", "--model", "mlp", "--lr", str(lr), "--momentum", str(beta), "--epochs",
            "1", "--pool", "128", "--top-k", "2", "--steps", "40", "--replicas", "4", "--stability-steps", "0",
            "--flow-steps", "0", "--seed", str(seed), "--out", str(tmp_path / "d")]
    assert main(argv) == 0
    assert "regime: " in capsys.readouterr().out
    report = json.loads((tmp_path / "d" / "diagnosis.json").read_text())
    method = ia.HeavyBall.from_practitioner(lr, beta)
    loss, params, pooled, _ = checkpoint("digits", "mlp", method, batch_size=32, epochs=1, pool=128, seed=seed,
                                         precision="float32")
    d = diagnose(loss, params, pooled, method, batch_size=32, key=jax.random.key(seed + 1), top_k=2, iterations=16,
                 chunk=64, run_checks=False)  # the command line's defaults: 16 Lanczos steps, 10 probes, blocks of 64
    sharpness = report["predicted"]["stability"]["sharpness"]
    assert sharpness == pytest.approx(float(d.measured["top_eigenvalues"][0]), rel=1e-9)
    assert report["measured"]["eigen_residuals"] == pytest.approx(list(d.measured["eigen_residuals"]), rel=1e-6)
    as64 = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, jnp.float64) if x.dtype == jnp.float32 else x, tree)
    params64, pooled64 = as64(params), as64(pooled)
    peer = float(ia.hessian.top_eigenvalues(lambda p: loss(p, pooled64), params64, key=jax.random.key(9), k=1,
                                            iterations=60)[0])
    assert abs(sharpness - peer) <= report["measured"]["eigen_residuals"][0] + 1e-5 * peer
    stability = report["predicted"]["stability"]
    assert stability["threshold_eigenvalue"] == pytest.approx(2 * (1 + beta) / lr, rel=1e-12)
    assert stability["margin"] == pytest.approx(sharpness * lr / (2 * (1 + beta)), rel=1e-12)
    assert report["measured"]["examples"] == 128 and set(report["timings"]) >= {"lanczos", "continuation"}
