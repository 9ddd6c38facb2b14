"""Every benchmark of issue 14 in one command, with the machine's load before and after, and every RATIO line
gathered at the end.

Run from the repository root: ``python benchmarks/run_all.py`` (add ``--quick`` for shorter runs: fewer steps and
repeats, for checking that everything runs). About 3 minutes on an idle 2-core machine. Each script runs in its own
process; the heavy-ball sweep runs twice, on one CPU device and on two host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``), since JAX reads that flag when it starts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _runs(quick: bool) -> list[tuple[str, list[str], dict]]:
    two = {"XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()}
    sweep = ["--steps", "2000", "--repeat", "1"] if quick else []
    return [
        ("heavy-ball sweep, one device", ["sweep_throughput.py", *sweep], {}),
        ("heavy-ball sweep, two host devices", ["sweep_throughput.py", *sweep], two),
        ("Monte Carlo", ["monte_carlo.py", "--monte-carlo-only"], {}),
        ("training 32 MLPs", ["vectorised_training.py", "--no-python-loop"], {}),
    ]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter sweeps, to check that everything runs")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent / "src"),
                                                                    os.environ.get("PYTHONPATH")])))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {_load()}", flush=True)
    ratios, failed, clock = [], [], time.perf_counter()
    for title, argv, extra in _runs(args.quick):
        print(f"\n== {title}: python benchmarks/{' '.join(argv)}" + "".join(f" [{k}={v}]" for k, v in extra.items()),
              flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], env=dict(env, **extra),
                              capture_output=True, text=True)
        print(done.stdout, end="")
        if done.returncode:
            failed.append(title)
            print(done.stderr[-2000:], end="")
        ratios += [f"{title}: {line}" for line in done.stdout.splitlines() if line.startswith("RATIO")]
        print(f"({time.perf_counter() - start:.0f} s; {_load()})", flush=True)
    print(f"\n== all ratios ({time.perf_counter() - clock:.0f} s in all; {_load()})")
    print("\n".join(ratios))
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
