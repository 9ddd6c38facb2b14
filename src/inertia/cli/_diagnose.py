"""``inertia diagnose``: train a built-in model to a checkpoint, then measure, predict and check (docs/diagnose.md)."""

from __future__ import annotations

from typing import Callable

from .._checks import InertiaError, check_output_folder
from . import _parse

MODELS = ("mlp", "cnn", "resnet")
#: defaults sized for a diagnosis of the built-in ResNet on Fashion-MNIST within 2 minutes on 2 cores
#: (benchmarks/diagnose_time.py; docs/diagnose.md "Time and memory")
POOL, LANCZOS, STEPS, REPLICAS, STABILITY_STEPS = 128, 16, 60, 8, 16
#: the implicit regulariser's check (float64 flows solved to 1e-11) by default only up to this many parameters: on
#: the digits MLP (8,970) it costs about 20 CPU-s, mostly compilation; on the built-in ResNet (77,754) it had not
#: finished after 20 CPU-minutes (docs/diagnose.md)
FLOW_STEPS, FLOW_PARAMETERS = 8, 20_000


def add_commands(commands) -> None:
    p = commands.add_parser("diagnose", help="what does my optimiser do at this checkpoint? predictions from the "
                                             "five papers, checked by a short continuation; writes an HTML page")
    p.add_argument("--data", default="digits", choices=_parse.DATASET_NAMES, metavar="DATA",
                   help="a data set of inertia.nn.load (default digits)")
    p.add_argument("--path", help="folder with the files, for mnist, fashion_mnist and cifar10")
    p.add_argument("--model", default="mlp", choices=MODELS)
    p.add_argument("--method", default="heavy-ball", type=_parse.simulated_method_name,
                   help="gd, heavy-ball, nesterov (torch/optax form), heavy-ball-normalised, nesterov-normalised; "
                        "qhm, adam, rmsprop run the continuation, with no prediction (they have no linear theory)")
    p.add_argument("--lr", type=_parse.number(0.0, low_open=True), required=True,
                   help="learning rate > 0 (torch/optax convention)")
    p.add_argument("--momentum", type=_parse.number(0.0, 1.0, high_open=True), default=0.9, help="in [0, 1)")
    _parse.add_method_options(p)
    p.add_argument("--batch-size", type=_parse.integer(1), default=32)
    p.add_argument("--epochs", type=_parse.integer(1), default=5,
                   help="train this many epochs (>= 1) to reach the checkpoint (default 5)")
    p.add_argument("--n-train", type=_parse.integer(2),
                   help="train the checkpoint on a random subset of this many examples (default: all)")
    p.add_argument("--pool", type=_parse.integer(2), default=POOL,
                   help=f"training examples used to measure, >= 2 (default {POOL})")
    p.add_argument("--top-k", type=_parse.integer(1), default=4, help="Hessian directions (default 4)")
    p.add_argument("--lanczos-iterations", type=_parse.integer(1), default=LANCZOS,
                   help=f"Lanczos steps, >= 1, raised to --top-k if lower (default {LANCZOS}; the residuals are "
                        "reported)")
    p.add_argument("--probes", type=_parse.integer(2), default=10,
                   help="Hutchinson probes for the traces, >= 2 (default 10; standard errors reported)")
    p.add_argument("--steps", type=_parse.integer(20), default=STEPS,
                   help=f"continuation steps, >= 20 (default {STEPS})")
    p.add_argument("--replicas", type=_parse.integer(4), default=REPLICAS,
                   help=f"continuation replicas, >= 4 (default {REPLICAS}; Monte Carlo standard errors reported)")
    p.add_argument("--stability-steps", type=_parse.integer(0), default=STABILITY_STEPS,
                   help=f"full-batch steps of each stability run, 0 skips them (default {STABILITY_STEPS})")
    p.add_argument("--flow-steps", type=_parse.integer(0),
                   help=f"steps over which the implicit regulariser's flows are compared with the method, at 4 step "
                        f"sizes, full batch, float64; 0 skips it (default {FLOW_STEPS} for models of at most "
                        f"{FLOW_PARAMETERS:,} parameters, 0 above: the solves grow with the model)")
    p.add_argument("--precision", default="float32", choices=("float32", "float64"),
                   help="of the model's measurements and continuations (default float32: about twice as fast on "
                        "CPU; the Lanczos residuals and standard errors say what it costs); predictions are float64")
    p.add_argument("--chunk", type=_parse.integer(1), default=64,
                   help="examples per block of per-example derivatives: the memory bound (default 64)")
    p.add_argument("--seed", type=_parse.integer(0), default=0)
    p.add_argument("--out", default="diagnose", help="output folder (default: diagnose)")
    p.set_defaults(handler=_diagnose)


def _check_args(args) -> None:
    """What the argument types cannot check alone: --path against --data, and the output folder, before training."""
    _parse.data_path(args.data, args.path)
    check_output_folder("--out", args.out, files=("index.html", "diagnosis.json"))


def checkpoint(data_name: str, model_name: str, method, *, batch_size: int, epochs: int, pool: int, seed: int,
               path=None, n_train: int | None = None, precision: str = "float64"):
    """Train a built-in model ``epochs`` epochs with ``method`` (on ``n_train`` examples, or all); return
    ``(loss, params, (x, y), description)``: the pool is the first ``pool`` training examples, parameters and
    inputs in ``precision``."""
    import functools

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from ..nn import CNN, MLP, Dataset, ResNet, load, train

    with _parse.as_options(path="--path", n_train="--n-train"):
        data = load(data_name, path=path, seed=seed, n_train=n_train)
    assert isinstance(data, Dataset)  # a numeric data set, not Texts
    factories: dict[str, Callable[..., eqx.Module]] = {
        "mlp": functools.partial(MLP, data.x_train.shape[1], data.n_classes, width=64, depth=2),
        "cnn": functools.partial(CNN, data.shape, data.n_classes),
        "resnet": functools.partial(ResNet, data.shape, data.n_classes)}
    factory = factories[model_name]
    out = train(factory, method, data, key=jax.random.key(seed), epochs=epochs, batch_size=batch_size,
                keep_params=True, progress=False)
    if int(out.diverged_at.values[0, 0]) >= 0:
        raise InertiaError(f"training diverged at step {int(out.diverged_at.values[0, 0])}; lower --lr")
    template, static = eqx.partition(factory(key=jax.random.key(seed)), eqx.is_inexact_array)
    _, unravel = ravel_pytree(template)
    params = unravel(jnp.asarray(out.final.values[0, 0], precision))

    def loss(p, batch):
        logits = jax.vmap(eqx.combine(p, static))(batch[0])
        return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, batch[1][:, None], 1)[:, 0])

    n = min(pool, len(data.y_train))
    pooled = (jnp.asarray(data.x_train[:n], precision), jnp.asarray(data.y_train[:n]))
    accuracy = float(out.test_accuracy.values[0, 0, -1])
    return loss, params, pooled, f"{model_name} on {data_name}, {epochs} epochs, test accuracy {accuracy:.3f}"


def _diagnose(args) -> int:
    import jax

    from .._diagnose_page import write_page
    from ..diagnose import diagnose

    _check_args(args)
    method = _parse.simulated_method(args, single=True)
    loss, params, pooled, what = checkpoint(args.data, args.model, method, batch_size=args.batch_size,
                                            epochs=args.epochs, pool=args.pool, seed=args.seed, path=args.path,
                                            n_train=args.n_train, precision=args.precision)
    print(f"checkpoint: {what}; measuring on {len(pooled[1])} examples")
    flow_steps = _flow_steps(args.flow_steps, params)
    with _parse.as_options(top_k="--top-k", iterations="--lanczos-iterations", hutchinson_samples="--probes"):
        d = diagnose(loss, params, pooled, method, batch_size=args.batch_size, key=jax.random.key(args.seed + 1),
                     top_k=args.top_k, steps=args.steps, replicas=args.replicas, stability_steps=args.stability_steps,
                     flow_steps=flow_steps, iterations=args.lanczos_iterations, hutchinson_samples=args.probes,
                     chunk=args.chunk)
    settings = ", ".join(f"{k} {float(v):.4g}" for k, v in method.coords().items())
    page = write_page(d, args.out, title=f"{what}; {method.name} ({settings}), batch {args.batch_size}")
    for name, check in d.checked.items():
        print(f"{name}: " + ("not available: " + check["reason"] if check.get("available") is False
                             else "undecided: " + check["reason"] if check.get("holds") is None and "reason" in check
                             else "holds" if check.get("holds") else "does not hold"))
    if not flow_steps:
        print("implicit_regulariser: not run (--flow-steps 8 runs it)")
    phases = ", ".join(f"{name} {t['cpu_s']:.1f}" for name, t in d.timings.items())
    print(f"diagnosis: {sum(t['cpu_s'] for t in d.timings.values()):.1f} CPU-s ({phases})")
    print(f"wrote {page}")
    return 0


def _flow_steps(asked: int | None, params) -> int:
    """``--flow-steps`` as given, or by default `FLOW_STEPS` for models of at most `FLOW_PARAMETERS` parameters."""
    if asked is not None:
        return asked
    import jax

    size = sum(int(x.size) for x in jax.tree.leaves(params))
    return FLOW_STEPS if size <= FLOW_PARAMETERS else 0
