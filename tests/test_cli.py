"""The command line: its numbers equal the library's, and bad input is one line with exit code 2."""

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
    (["frobnicate"], "invalid choice"),
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
