"""``inertia train`` (a grid of networks as one program) and ``inertia ntk`` (H^∞ spectrum and rates of a data set)."""

from __future__ import annotations

import numpy as np

from .._checks import InertiaError
from . import _parse


def add_commands(commands) -> None:
    p = commands.add_parser("train", help="train a grid of MLPs (learning rates × momenta × seeds) as one program")
    p.add_argument("--data", default="mnist1d", choices=_parse.DATASET_NAMES, metavar="DATA",
                   help="digits, breast_cancer, mnist1d, mnist (5,000 real digits bundled), fashion_mnist "
                                                     "(Debian's dataset-fashion-mnist), or cifar10 with --path")
    p.add_argument("--path", help="folder with the files, for mnist, fashion_mnist and cifar10")
    p.add_argument("--n-train", type=_parse.integer(2), help="keep a random subset of this many training examples")
    p.add_argument("--method", default="heavy-ball", type=_parse.simulated_method_name,
                   help="gd, heavy-ball, nesterov (torch/optax form), heavy-ball-normalised, nesterov-normalised, "
                        "qhm, adam or rmsprop")
    p.add_argument("--lr", required=True, help="values, each > 0: 1,2,3 or lo:hi:n or log:lo:hi:n")
    p.add_argument("--momentum", help="values in [0, 1), as --lr (default 0; 0.9 for qhm)")
    _parse.add_method_options(p)
    p.add_argument("--width", type=_parse.integer(1), default=64)
    p.add_argument("--depth", type=_parse.integer(1), default=2)
    p.add_argument("--batch-size", type=_parse.integer(1), help="minibatch size (default: full batch)")
    p.add_argument("--epochs", type=_parse.integer(1), default=10)
    p.add_argument("--seeds", type=_parse.integer(1), default=1)
    p.add_argument("--svag", type=_parse.number(1.0), default=1.0,
                   help="SVAG noise multiplier ℓ >= 1 (pass lr/ℓ yourself)")
    p.add_argument("--seed", type=_parse.integer(0), default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="training precision (default float32; float64 equals optax's own loop to 1e-12)")
    p.add_argument("--chunk-size", type=_parse.integer(1),
                   help="configurations per task with --scheduler (default: a tenth of the grid)")
    _parse.add_scheduler_option(p)
    p.set_defaults(handler=_train)

    p = commands.add_parser("ntk", help="H^∞ of a data set (unit-norm inputs): λ₀, κ and GD/HB/NAG rates")
    p.add_argument("--data", default="digits", choices=_parse.DATASET_NAMES, metavar="DATA")
    p.add_argument("--path")
    p.add_argument("--n", type=_parse.integer(2), default=64, help="training examples, >= 2 (default 64)")
    p.add_argument("--c", type=_parse.number(0.0, 1.0, low_open=True, high_open=True), default=0.5,
                   help="β = (1 − c√(ηλ₀))² at η = 1/λ_max, c in (0, 1) (default 0.5)")
    p.add_argument("--seed", type=_parse.integer(0), default=0)
    p.set_defaults(handler=_ntk)


def _train(args) -> int:
    import functools

    import jax

    from ..nn import MLP, Dataset, load, train

    method = _parse.simulated_method(args)  # before the data loads, so that a bad option costs nothing
    _parse.data_path(args.data, args.path)
    with _parse.as_options(n_train="--n-train", path="--path"):
        data = load(args.data, path=args.path, n_train=args.n_train, seed=args.seed)
    assert isinstance(data, Dataset)  # a numeric data set, not Texts
    if args.batch_size is not None and args.batch_size > len(data.y_train):
        raise InertiaError(f"--batch-size must lie in [1, {len(data.y_train)}] (the training examples); "
                           f"got {args.batch_size}")
    model = functools.partial(MLP, data.x_train.shape[1], data.n_classes, width=args.width, depth=args.depth)
    with _parse.dask_client(args.scheduler) as client:
        out = train(model, method, data, key=jax.random.key(args.seed), epochs=args.epochs,
                    batch_size=args.batch_size, seeds=args.seeds, svag=args.svag,
                    record_every=max(1, args.epochs // 10), dtype=args.dtype, executor=client,
                    chunk_size=args.chunk_size)
    last = out.isel(record=-1)
    chance = _chance_level(data.y_test)
    print(f"{args.data}: {len(data.y_train)} training examples, batch {out.attrs['batch_size']}, {args.epochs} epochs; "
          f"chance level {chance:.4f} (the most frequent test class)")
    names = _parse.shown_hyperparameters(method)
    print(" ".join(f"{'lr(h)' if n == 'h' else n:>10s}" for n in names)
          + f" {'train loss':>11s} {'test acc':>9s} {'± (std)':>8s} {'diverged':>9s}  status")
    for c in range(out.sizes["config"]):
        acc = last.test_accuracy.values[c]  # NaN for a diverged run: averaged over the runs that did not diverge
        div = int((out.diverged_at.values[c] >= 0).sum())
        settings = " ".join(f"{float(out[n][c]):10.4g}" for n in names)
        if div == args.seeds:
            print(f"{settings} {'—':>11s} {'—':>9s} {'—':>8s} {div:5d}/{args.seeds}  diverged")
            continue
        status = "at chance level" if _at_chance(np.nanmean(acc), chance, len(data.y_test)) else "learning"
        print(f"{settings} {np.nanmean(last.train_loss.values[c]):11.4g} {np.nanmean(acc):9.4f} "
              f"{np.nanstd(acc):8.4f} {div:5d}/{args.seeds}  {status}")
    return 0


def _chance_level(labels) -> float:
    """The accuracy of always answering the most frequent class."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return float(counts.max() / counts.sum())


def _at_chance(accuracy: float, chance: float, n_test: int) -> bool:
    """Whether a test accuracy is within 3 binomial standard errors of the chance level (one-sided: not above it)."""
    return bool(accuracy <= chance + 3 * np.sqrt(chance * (1 - chance) / n_test))


def _ntk(args) -> int:
    from .. import ntk
    from ..methods import HeavyBall, Nesterov
    from ..nn import Dataset, load, unit_norm

    _parse.data_path(args.data, args.path)
    with _parse.as_options(n_train="--n", path="--path"):
        data = load(args.data, path=args.path, n_train=args.n, seed=args.seed)
    assert isinstance(data, Dataset)  # a numeric data set, not Texts
    H = ntk.gram_infinity(unit_norm(data.x_train))
    s = ntk.spectrum(H)
    p = ntk.accelerated_parameters(H, c=args.c)
    print(f"{args.data}, {args.n} examples on the unit sphere: λ₀ = {s['lambda0']:.5g}, λ_max = {s['lambda_max']:.5g}, "
          f"κ = {s['kappa']:.5g}")
    print(f"η = 1/λ_max = {p['h']:.5g}, β = {p['momentum']:.5f}; rate of ‖u − y‖ per step in the kernel regime:")
    for name, method in (("GD", HeavyBall(p["h"], 0.0)), ("HB", HeavyBall(p["h"], p["momentum"])),
                         ("NAG", Nesterov(p["h"], p["momentum"]))):
        print(f"  {name:4s} {float(ntk.predicted_rate(method, H)):.6f}")
    print(f"  Du et al.'s GD bound on ‖u − y‖²: {ntk.du_bound(p['h'], s['lambda0']):.6f}")
    return 0
