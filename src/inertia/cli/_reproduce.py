"""``inertia reproduce``: run the registered claims (and their negative controls) and write the report."""

from __future__ import annotations

import os

from .._checks import InertiaError
from ._claims import CLAIM_LIST
from ._parse import integer


def add_commands(commands) -> None:
    p = commands.add_parser("reproduce", help="check the seed papers' claims and write report/index.html")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="small configurations (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="the papers' configurations")
    p.add_argument("--only", action="append", metavar="CLAIM", help="run only this claim (repeatable)")
    p.add_argument("--controls", action="store_true",
                   help="also run every claim's negative controls (deliberately wrong variants that must fail)")
    p.add_argument("--out", default="report", help="output folder (default: report)")
    p.add_argument("--explore", action="store_true",
                   help="also write OUT/explore.html, the explorer's static page (about 15 CPU-seconds, 5 MB), and "
                        "link it from the report")
    p.add_argument("--jobs", type=integer(1), default=None, metavar="N",
                   help="run N claims at once, each in its own worker process (default: the number of CPUs; 1: one "
                        "after another in this process); verdicts and numbers do not depend on N")
    p.add_argument("--list", action="store_true", help="list the claims and exit")
    p.set_defaults(handler=_reproduce, mode="quick", needs_jax=False)


def _reproduce(args) -> int:
    if args.list:  # from the generated list: no JAX, no experiments imported
        for claim_id, (paper, title) in CLAIM_LIST.items():
            print(f"{claim_id:32s} {paper:22s} {title}")
        return 0
    unknown = [i for i in args.only or () if i not in CLAIM_LIST]
    if unknown:
        raise InertiaError(f"--only: unknown claim {unknown[0]!r}; known claims: {', '.join(CLAIM_LIST)}")
    from ..report import check_report_folder, reproduce

    # before JAX starts and any claim runs, so that no work is lost to a bad folder
    check_report_folder(args.out, args.explore)
    import jax

    jax.config.update("jax_enable_x64", True)  # theory checks and reports run in float64

    jobs = args.jobs or os.cpu_count() or 1
    results = reproduce(args.mode, args.only, args.out, controls=args.controls, explorer=args.explore, jobs=jobs)
    crashed = [r["id"] for r in results if r["verdict"] == "error"
               or any(c["verdict"] == "error" for c in r["controls"])]
    broken = [r["id"] for r in results if r["broken"]]
    print(f"wrote {args.out}/index.html and {args.out}/results.json: "
          + ", ".join(f"{r['id']} {r['verdict']}" for r in results))
    if broken:
        print("claims with a negative control that did not fail (broken): " + ", ".join(broken))
    return 1 if crashed or broken else 0  # a "fails" verdict is a finding, not an error; a broken claim is an error
