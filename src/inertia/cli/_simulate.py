"""``inertia run`` and ``inertia sweep``."""

from __future__ import annotations

import numpy as np

from .._checks import check_output_file, check_output_folder
from . import _parse


def _common(p) -> None:
    p.add_argument("--method", default="heavy-ball", type=_parse.simulated_method_name,
                   help="gd, heavy-ball, nesterov (torch/optax form), heavy-ball-normalised, nesterov-normalised, "
                        "qhm, adam or rmsprop")
    p.add_argument("--objective", default="rosenbrock", type=_parse.objective_spec,
                   help="rosenbrock, himmelblau, beale or quadratic:EIG,EIG,…")
    p.add_argument("--x0", help="starting point, comma-separated (default: the objective's usual start)")
    p.add_argument("--steps", type=_parse.integer(1), default=1000)
    p.add_argument("--noise", type=_parse.number(0.0), default=0.0,
                   help="std of additive Gaussian gradient noise, >= 0 (default 0)")
    p.add_argument("--seed", type=_parse.integer(0), default=0)


def add_commands(commands) -> None:
    p = commands.add_parser("run", help="simulate one trajectory and print the loss along it")
    _common(p)
    p.add_argument("--lr", type=_parse.number(0.0, low_open=True), required=True)
    p.add_argument("--momentum", type=_parse.number(0.0, 1.0, high_open=True),
                   help="momentum β in [0, 1) (default 0; 0.9 for qhm)")
    _parse.add_method_options(p)
    p.add_argument("--plot", metavar="PNG", help="draw the loss against the step to this file")
    p.set_defaults(handler=_run)

    p = commands.add_parser("sweep", help="simulate a grid of learning rates × momenta × seeds as one program")
    _common(p)
    p.add_argument("--lr", required=True, help="values, each > 0: 1,2,3 or lo:hi:n or log:lo:hi:n")
    p.add_argument("--momentum", help="values in [0, 1), as --lr (default 0; 0.9 for qhm)")
    _parse.add_method_options(p)
    p.add_argument("--seeds", type=_parse.integer(1), default=1)
    p.add_argument("--out", help="folder for resumable results (chunks, atomic writes)")
    p.add_argument("--chunk-size", type=_parse.integer(1),
                   help="configurations per chunk file with --out (default: a tenth of the grid)")
    p.add_argument("--force", action="store_true", help="with --out: start over in a folder holding another sweep")
    _parse.add_scheduler_option(p)
    p.add_argument("--plot", metavar="PNG", help="draw the final loss against the learning rate to this file")
    p.set_defaults(handler=_sweep)


def _setup(args):
    """Everything checked before any computation; returns (constructor, objective, x0, noise, key)."""
    import jax

    from .. import noise as noise_models

    x0 = _parse.start(args.x0, args.objective)
    if args.plot:
        check_output_file("--plot", args.plot)
    objective = _parse.objective(args.objective)
    noise = noise_models.Gaussian(args.noise**2) if args.noise > 0 else None
    return objective, x0, noise, jax.random.key(args.seed)


def _run(args) -> int:
    from ..simulate import run

    objective, x0, noise, key = _setup(args)
    method = _parse.simulated_method(args, single=True)
    traj = run(method, objective, x0, args.steps, noise=noise, key=key)
    shown = np.unique(np.linspace(0, len(traj.steps) - 1, 11).astype(int))
    diverged_at = int(traj.diverged_at)
    print(f"{'step':>8s} {'loss':>14s}   x")
    for i in shown:
        step = int(traj.steps[i])
        if 0 <= diverged_at <= step:  # frozen at its last finite state: not a loss
            print(f"{step:8d} {'diverged':>14s}")
            continue
        print(f"{step:8d} {float(traj.loss[i]):14.6e}   {np.array2string(np.asarray(traj.x[i]), precision=5)}")
    if diverged_at >= 0:
        print(f"diverged at step {diverged_at}")
    if args.plot:
        from ._figures import save_loss_plot

        loss = np.where((diverged_at >= 0) & (np.asarray(traj.steps) >= diverged_at), np.nan, np.asarray(traj.loss))
        values = ", ".join(f"{k}={float(v):g}" for k, v in method.coords().items())
        save_loss_plot(args.plot, {f"{method.name} {values}": (traj.steps, loss)})
        print(f"wrote {args.plot}")
    return 0


def _sweep(args) -> int:
    from ..simulate import sweep

    method = _parse.simulated_method(args)
    if args.out:
        check_output_folder("--out", args.out, files=("manifest.json", "sweep.nc"))
    objective, x0, noise, key = _setup(args)
    with _parse.dask_client(args.scheduler) as client:
        ds = sweep(method, objective, x0, args.steps, seeds=args.seeds, noise=noise, key=key, path=args.out,
                   chunk_size=args.chunk_size, force=args.force, executor=client)
    final = ds.loss.isel(step=-1).where(~ds.diverged)  # a diverged run is frozen, never a loss to average
    names = _parse.shown_hyperparameters(method)
    print(" ".join(f"{'lr(h)' if n == 'h' else n:>10s}" for n in names)
          + f" {'final loss (mean over runs that did not diverge)':>48s} {'diverged':>9s}")
    for c in range(ds.sizes["config"]):
        div = int(ds.diverged[c].sum())
        mean = "all diverged" if div == args.seeds else f"{float(final[c].mean()):.6e}"
        print(" ".join(f"{float(ds[n][c]):10.4g}" for n in names) + f" {mean:>48s} {div:5d}/{args.seeds}")
    if args.out:
        print(f"results in {args.out}")
    if args.plot:
        from ._figures import save_sweep_plot

        save_sweep_plot(args.plot, ds, names[0], names[1])
        print(f"wrote {args.plot}")
    return 0
