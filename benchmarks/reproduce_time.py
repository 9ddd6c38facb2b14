"""Time of ``inertia reproduce --quick --controls`` (issue 14: under 3 minutes on an idle 2-core machine).

Runs the command in a temporary folder, in a fresh process (imports and JAX's compilation included, as a user sees
them), and prints each claim's seconds with its controls (from results.json, measured inside the worker that ran
it), the wall time of the whole command and the CPU seconds of all its processes (workers included). With
``--serial`` it also runs ``--jobs 1`` (one process, one claim after another) and checks that both runs give the
same verdicts and numbers. Run from the repository root:

    PYTHONPATH=src python benchmarks/reproduce_time.py [--jobs N] [--serial] [--full] [--keep DIR]

The last line starts with ``RATIO``: the 180-second budget over the measured wall time (>= 1: met); an
idle machine is assumed (the line names the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import Seconds, machine

TARGET_S = 180.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_reproduce(folder: Path, jobs: int | None, mode: str) -> tuple[Seconds, dict]:
    """One ``inertia reproduce --MODE --controls`` into ``folder``: its wall time (with the CPU seconds of it and its
    workers) and its results.json."""
    argv = [sys.executable, "-m", "inertia", "reproduce", f"--{mode}", "--controls", "--out", str(folder)]
    argv += ["--jobs", str(jobs)] if jobs else []
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(argv, capture_output=True, text=True)
    took = Seconds(time.perf_counter() - start, _children_cpu() - cpu)
    if done.returncode not in (0, 1):  # 1: a claim crashed or a control did not fail, reported in results.json
        sys.exit(f"{' '.join(argv)} failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    return took, json.loads((folder / "results.json").read_text())


def _decided(results: dict) -> list:
    """Verdicts and numbers of every claim and control: results.json without times and provenance."""
    timed = ("seconds", "cpu_seconds")
    untimed = [{k: v for k, v in c.items() if k not in timed} for c in results["claims"]]
    return [dict(c, controls=[{k: v for k, v in d.items() if k not in timed} for d in c["controls"]]) for c in untimed]


def _claim_table(results: dict) -> None:
    """Each claim's seconds with its controls, wall and CPU (as measured in the process that ran it), longest first."""

    def total(c: dict, key: str) -> float:
        return c.get(key, 0.0) + sum(d.get(key, 0.0) for d in c["controls"])

    print(f"{'claim':34s} {'verdict':13s} {'claim s':>8s} {'controls s':>10s} {'total s':>8s} {'CPU-s':>7s}")
    for c in sorted(results["claims"], key=lambda c: -total(c, "seconds")):
        print(f"{c['id']:34s} {c['verdict']:13s} {c['seconds']:8.1f} {total(c, 'seconds') - c['seconds']:10.1f} "
              f"{total(c, 'seconds'):8.1f} {total(c, 'cpu_seconds'):7.1f}")
    print(f"{'sum over the claims':57s} {sum(total(c, 'seconds') for c in results['claims']):8.1f} "
          f"{sum(total(c, 'cpu_seconds') for c in results['claims']):7.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: reproduce's, the CPUs)")
    parser.add_argument("--serial", action="store_true", help="also run --jobs 1 and compare the numbers")
    parser.add_argument("--full", action="store_true", help="time the full mode instead (no 180 s target)")
    parser.add_argument("--keep", metavar="DIR", help="write the reports under DIR (default: a temporary folder)")
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        took, results = run_reproduce(Path(tmp) / "parallel", args.jobs, mode)
        _claim_table(results)
        jobs = args.jobs or os.cpu_count()
        print(f"reproduce --{mode} --controls --jobs {jobs}: {took:.1f} s wall, {took.cpu:.1f} CPU-s "
              f"({len(results['claims'])} claims; {machine()})")
        if args.serial:
            serial, serial_results = run_reproduce(Path(tmp) / "serial", 1, mode)
            same = _decided(serial_results) == _decided(results)
            print(f"reproduce --{mode} --controls --jobs 1: {serial:.1f} s wall, {serial.cpu:.1f} CPU-s; verdicts "
                  f"and numbers {'identical to' if same else 'DIFFERENT FROM'} --jobs {jobs}")
            print(f"RATIO --jobs {jobs} vs --jobs 1: {serial / took:.2f}x faster in wall time "
                  f"({took.cpu / serial.cpu:.2f}x the CPU seconds)")
            if not same:
                return 1
    verdict = "no target" if args.full else f"target >= 1x, {'met' if took <= TARGET_S else 'NOT met'}"
    print(f"RATIO reproduce --{mode} --controls, 180 s budget / wall time: {TARGET_S / took:.2f}x ({verdict}; "
          f"{took:.1f} s wall, {took.cpu:.1f} CPU-s, {machine()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
