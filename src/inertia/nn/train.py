"""One compiled training loop for networks, vectorised over hyper-parameters and seeds.

The parameters of a model are flattened to one vector with `jax.flatten_util.ravel_pytree`, and every
update is ``method.step(state, gradient, n)`` of the stepping protocol (`inertia.methods.AbstractMethod`), with
the results of `inertia.simulate.guarded_step` at every step (checked per epoch, exactly: `_epoch`). So a
practitioner SGD/SGDM/Nesterov run here has exactly the iterates of ``optax.sgd`` started at rest (Nesterov: the
look-ahead points, docs/theory.md §0), Adam those of ``optax.adam``, and nothing else in the project implements an
update rule twice.

- Minibatches are drawn epoch by epoch without replacement: a fresh seeded permutation per epoch, cut into
  ``⌊N/B⌋`` batches (the remainder is dropped).
- SVAG (Li, Malladi & Arora, NeurIPS 2021; docs/theory.md §3.4): with ``svag = ℓ > 1`` each step combines the
  gradients of two independent batches (from two independent permutations) with `inertia.noise.svag_weights`,
  so the gradient noise covariance is multiplied by ℓ; pass the learning rate ``η/ℓ`` and ℓ× the epochs.
- Inputs may be one array or a tuple of arrays (token ids and attention mask, `inertia.nn.pretrained.tokenize`);
  floating inputs train in the training ``dtype`` (float32 by default), integer inputs stay integer.
  ``micro_batch=m`` accumulates a batch's gradient over ``B/m`` slices of ``m`` examples (the same mean gradient,
  less memory); the metrics are evaluated ``eval_batch`` examples at a time.
- Seeds share nothing but the data; every configuration sees the same seeds (common random numbers: the
  same initialisation and batch order), so differences between configurations are paired.
- A run whose parameters, optimiser state or gradient become non-finite, whose parameters grow larger than
  ``max_norm``, or whose recorded training loss is non-finite, is frozen and its metrics become NaN from then on;
  ``diverged_at`` records the step. Nothing is raised.
- ``executor=``: chunks of configurations run as tasks on any `concurrent.futures.Executor` or a Dask
  ``distributed.Client``, through the sweep's machinery (`inertia.scaling.run_tasks`); every task trains its
  configurations × all seeds with the same key, so the results are those of the local run (docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from .. import hessian
from .._checks import InertiaError, check_choice, check_int, check_positive
from ..methods import AbstractMethod
from ..noise import svag_weights
from ..scaling import run_tasks
from ..simulate import guarded_step, keep_frozen, mark_nonfinite_loss, state_variables, unguarded_step
from .data import Dataset

__all__ = ["train", "LOSSES"]

LOSSES = ("cross_entropy", "squared")
#: The training precisions: parameters, inputs, hyper-parameters and optimiser state all take this dtype.
DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Unflattens a `ravel_pytree` vector. Hashable by value (unlike ravel_pytree's closure), so a second call
    to `train` with the same model shapes reuses the compiled program."""

    treedef: Any
    shapes: tuple

    @classmethod
    def of(cls, tree) -> "_Layout":
        leaves, treedef = jax.tree.flatten(tree)
        return cls(treedef, tuple(tuple(leaf.shape) for leaf in leaves))

    def __call__(self, flat):
        sizes = [math.prod(shape) for shape in self.shapes]
        pieces = jnp.split(flat, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [flat]
        return jax.tree.unflatten(self.treedef, [p.reshape(s) for p, s in zip(pieces, self.shapes)])


def _per_example(kind: str, out, y):
    if kind == "cross_entropy":
        return jax.nn.logsumexp(out) - out[y]
    target = y if out.ndim == 0 else jax.nn.one_hot(y, out.shape[-1], dtype=out.dtype)
    return 0.5 * jnp.sum((out - target) ** 2)


def _correct(out, y):
    return (jnp.sign(out) == jnp.sign(y)) if out.ndim == 0 else (jnp.argmax(out) == y)


class _Problem(eqx.Module):
    """The pieces of one training problem that the compiled loop closes over (arrays are traced)."""

    static: object = eqx.field(static=True)
    unravel: _Layout = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    batch: int = eqx.field(static=True)
    micro_batch: int = eqx.field(static=True)
    eval_batch: int = eqx.field(static=True)
    steps_per_epoch: int = eqx.field(static=True)
    two_batches: bool = eqx.field(static=True)
    sharpness_iterations: int = eqx.field(static=True)
    x_train: jax.Array
    y_train: jax.Array
    x_eval: jax.Array
    y_eval: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    max_norm: jax.Array
    svag_weights: jax.Array

    def outputs(self, flat, x):
        model = eqx.combine(self.unravel(flat), self.static)
        return jax.vmap(model)(x)

    def loss(self, flat, x, y):
        return jnp.mean(jax.vmap(lambda o, t: _per_example(self.kind, o, t))(self.outputs(flat, x), y))

    def gradient(self, flat, rows):
        """The gradient of the mean loss over the examples ``rows``, summed over slices of ``micro_batch``."""
        grad = jax.grad(self.loss)
        if self.micro_batch == len(rows):
            return grad(flat, _take(self.x_train, rows), self.y_train[rows])
        slices = rows.reshape(-1, self.micro_batch)
        add = lambda total, r: (total + grad(flat, _take(self.x_train, r), self.y_train[r]), None)
        return jax.lax.scan(add, jnp.zeros_like(flat), slices)[0] / slices.shape[0]

    def metrics(self, flat, x, y):
        model = eqx.combine(self.unravel(flat), self.static)

        def one(example):
            out = model(example[0])
            return _per_example(self.kind, out, example[1]), _correct(out, example[1]).astype(flat.dtype)

        losses, correct = jax.lax.map(one, (x, y), batch_size=self.eval_batch)
        return jnp.mean(losses), jnp.mean(correct)


def _take(x, rows):
    """Rows of an input array or of each array of a tuple of inputs."""
    return jax.tree.map(lambda a: a[rows], x)


def _inputs(x, dtype):
    """Floating inputs in the training dtype; integer inputs (token ids, masks) as int32."""
    cast = lambda a: jnp.asarray(a, dtype if np.issubdtype(np.asarray(a).dtype, np.floating) else jnp.int32)
    return jax.tree.map(cast, x)


def _batches(problem, key, epoch):
    n = problem.y_train.shape[0]
    order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
    return order[: problem.steps_per_epoch * problem.batch].reshape(problem.steps_per_epoch, problem.batch)


def _over_grid(problem, method, state, first, second, n, step):
    """``step(method, state, gradient, n)`` for every run: over seeds (inner; each seed its rows ``first``/``second``,
    (seed, batch)) and configurations (outer; each its hyper-parameters). The first layer of an MLP is then one
    product per seed for all configurations (its input is not batched over them)."""
    w1, w2 = problem.svag_weights

    def one(m, s, rows, other):
        def gradient(y):
            g = problem.gradient(y, rows)
            return g if not problem.two_batches else w1 * g + w2 * problem.gradient(y, other)

        return step(m, s, gradient, n)

    over_seeds = jax.vmap(one, (None, 0, 0, 0))
    return jax.vmap(over_seeds, (0, 0, None, None))(method, state, first, second)


def _epoch(problem, method, carry, first, second, n0):
    """One epoch (steps ``n0 + i`` on the rows ``first[:, i]``, (seed, step, batch)) of every run, with exactly the
    results of `guarded_step` at every step.

    The epoch is one block, as in `inertia.simulate` (README: "Divergence is checked per block, exactly"): it runs
    with nothing frozen, noting whether any run left its bounds, and is run again step by step with `guarded_step`
    from its start only when a run that had not diverged did; runs frozen before it are put back. So the per-step
    freezing (a pass over every state a step) is paid only in an epoch in which a run diverges.
    """
    state0, diverged_at = carry
    at = lambda rows, i: rows if rows is None else rows[:, i]

    def fast(i, inner):
        state, bad = inner
        check = lambda m, s, g, n: unguarded_step(m, s, g, n, problem.max_norm)
        state, ok = _over_grid(problem, method, state, at(first, i), at(second, i), n0 + i, check)
        return state, bad | ~ok

    def guarded(i, carry):
        guard = lambda m, s, g, n: guarded_step(m, s, g, n, problem.max_norm)
        return _over_grid(problem, method, carry, at(first, i), at(second, i), n0 + i, guard)

    steps = problem.steps_per_epoch
    state, bad = jax.lax.fori_loop(0, steps, fast, (state0, jnp.zeros(diverged_at.shape, bool)))
    frozen = diverged_at >= 0
    again = lambda: jax.lax.fori_loop(0, steps, guarded, (state0, diverged_at))
    return jax.lax.cond(jnp.any(bad & ~frozen), again, lambda: (keep_frozen(frozen, state0, state), diverged_at))


def _advance(problem, method, state, seed_keys, first_epoch, n_epochs):
    """``n_epochs`` epochs of every run from ``state = (method state, diverged_at)`` (leaves (config, seed, …)).

    The loop runs over epochs and steps with the whole grid as its state (as `inertia.simulate._simulate`), so that
    an epoch without divergence skips the per-step guard (`_epoch`); under a `vmap` of a per-run loop the re-run
    would be a select, computed every time. Both bounds are traced, so every chunk, the empty first one included,
    shares one compiled program.
    """
    keys = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, 1)))(seed_keys)
    order_keys, second_keys = keys[:, 0], keys[:, 1]
    batches = jax.vmap(lambda k, e: _batches(problem, k, e), (0, None))

    def epoch(e, carry):
        second = batches(second_keys, e) if problem.two_batches else None
        return _epoch(problem, method, carry, batches(order_keys, e), second, e * problem.steps_per_epoch)

    return jax.lax.fori_loop(first_epoch, first_epoch + n_epochs, epoch, state)


def _record(problem, x, x0, key):
    train_loss, train_acc = problem.metrics(x, problem.x_eval, problem.y_eval)
    test_loss, test_acc = problem.metrics(x, problem.x_test, problem.y_test)
    out = {"train_loss": train_loss, "train_accuracy": train_acc, "test_loss": test_loss,
           "test_accuracy": test_acc, "distance": jnp.linalg.norm(x - x0)}
    if problem.sharpness_iterations:
        loss = lambda z: problem.loss(z, problem.x_eval, problem.y_eval)
        out["sharpness"] = hessian.sharpness(loss, x, key=key, iterations=problem.sharpness_iterations)
    return out


def _metrics(problem, x, x0, seed_keys, diverged_at, step):
    """The record of every run at ``step``, NaN for a diverged run; ``diverged_at`` updated for a non-finite loss."""
    record = lambda x, start, k: _record(problem, x, start, jax.random.fold_in(k, 2))
    metrics = jax.vmap(jax.vmap(record), (0, None, None))(x, x0, seed_keys)
    diverged_at = mark_nonfinite_loss(diverged_at, metrics["train_loss"], step)
    return diverged_at, {k: jnp.where(diverged_at >= 0, jnp.nan, v) for k, v in metrics.items()}


@eqx.filter_jit
def _first(problem, diverged_at, seed_keys, x0):
    """The record at step 0. Every configuration of a seed starts from that seed's ``x0`` (`AbstractMethod.init`
    starts every method at rest there) and records with that seed's key, so the metrics are computed once per seed
    and shared by the configurations: the numbers of a record of every run, at a fraction of the cost."""
    record = lambda x, k: _record(problem, x, x, jax.random.fold_in(k, 2))
    per_seed = jax.vmap(record)(x0, seed_keys)
    metrics = {k: jnp.broadcast_to(v, diverged_at.shape) for k, v in per_seed.items()}
    diverged_at = mark_nonfinite_loss(diverged_at, metrics["train_loss"], 0)
    return diverged_at, {k: jnp.where(diverged_at >= 0, jnp.nan, v) for k, v in metrics.items()}


@eqx.filter_jit
def _chunk(problem, method, state, seed_keys, x0, first_epoch, n_epochs):
    inner, diverged_at = _advance(problem, method, state, seed_keys, first_epoch, n_epochs)
    step = (first_epoch + n_epochs) * problem.steps_per_epoch
    diverged_at, metrics = _metrics(problem, inner.x, x0, seed_keys, diverged_at, step)
    return (inner, diverged_at), metrics


def _initial(model, seed_keys):
    # a Python loop, not a vmap: eager initialisation reuses cached kernels, where a jit would recompile
    # for every new model factory
    def init(k):
        params, _ = eqx.partition(model(key=jax.random.fold_in(k, 0)), eqx.is_inexact_array)
        return ravel_pytree(params)[0]

    return jnp.stack([init(k) for k in seed_keys])


@eqx.filter_jit
def _start(method, x0):
    """Every configuration's initial state from every seed's initial parameters."""
    return jax.vmap(lambda m: jax.vmap(m.init)(x0))(method)


@eqx.filter_jit
def _observed(method, state):
    return jax.vmap(lambda m, s: jax.vmap(m.observed)(s))(method, state)


def _check(method, data, epochs, batch_size, seeds, loss, svag, record_every, eval_size, micro_batch, eval_batch,
           dtype):
    if not isinstance(method, AbstractMethod):
        raise InertiaError("method must be a method of inertia's stepping protocol (GD, HeavyBall, Nesterov, QHM, "
                           f"Adam, RMSProp, DAL, from_optax(...)), or a grid of one; got {type(method).__name__}")
    if not isinstance(data, Dataset):
        raise InertiaError(f"data must be an inertia.nn.Dataset; got {type(data).__name__}")
    if len(method.shape) > 1:
        raise InertiaError(f"method must be a scalar method or a flat grid; got shape {method.shape}")
    check_int("epochs", epochs, 1)
    check_int("seeds", seeds, 1)
    check_int("record_every", record_every, 1)
    if eval_size is not None:
        check_int("eval_size", eval_size, 1)
    n = len(data.y_train)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or not 1 <= batch_size <= n):
        raise InertiaError(f"batch_size must be an integer in [1, {n}] (the training examples); got {batch_size!r}")
    check_int("eval_batch", eval_batch, 1)
    batch = n if batch_size is None else batch_size
    if micro_batch is not None and (isinstance(micro_batch, bool) or not isinstance(micro_batch, (int, np.integer))
                                    or micro_batch < 1 or batch % micro_batch):
        raise InertiaError(f"micro_batch must be a positive integer dividing the batch size {batch}; "
                           f"got {micro_batch!r}")
    if loss not in LOSSES:
        raise InertiaError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    check_positive("svag", svag)
    if svag < 1:
        raise InertiaError(f"svag must be >= 1 (ℓ = 1 is plain minibatch SGD); got {svag}")
    check_choice("dtype", _dtype_name(dtype), DTYPES)


def _dtype_name(dtype) -> Any:
    """``"float64"`` for ``"float64"``, ``np.float64`` or ``jnp.float64``; the value itself if it names no dtype."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return dtype


def _precision(dtype: str):
    """JAX's 64-bit mode for the duration of a float64 run (scoped: nothing global changes); as it is otherwise."""
    needs_x64 = dtype == "float64" and not jax.config.read("jax_enable_x64")
    return jax.enable_x64(True) if needs_x64 else contextlib.nullcontext()


def train(model: Callable[..., eqx.Module], method: AbstractMethod, data: Dataset, *, key: jax.Array, epochs: int,
          batch_size: int | None = None, seeds: int = 1, loss: str = "cross_entropy", svag: float = 1.0,
          record_every: int = 1, eval_size: int | None = None, sharpness_iterations: int = 0,
          max_norm: float = 1e6, keep_params: bool = False, progress: bool = True, micro_batch: int | None = None,
          eval_batch: int = 1024, dtype: str = "float32", executor: Any = None,
          chunk_size: int | None = None) -> xr.Dataset:
    """Train one network per (configuration, seed) as one compiled, vectorised program.

    **Arguments:**
    - ``model``: a factory ``model(key=...) -> eqx.Module`` taking one example (e.g.
      ``functools.partial(MLP, 40, 10, width=64)``, or a `SentenceClassifier` taking ``(ids, mask)``); its
      inexact arrays are the trained parameters;
    - ``method``: any method of the stepping protocol (`GD`, `HeavyBall`, `Nesterov`, `QHM`, `Adam`, `RMSProp`,
      `DAL`, `from_optax(...)`), or a flat grid of one (`inertia.grid`): hyper-parameters are traced, so a new grid
      of the same size reuses the compiled program;
    - ``data``: an `inertia.nn.Dataset`; labels are class indices, or ``±1`` floats for a scalar output; inputs
      are an array or a tuple of arrays (e.g. int token ids and attention mask);
    - ``key``: split into one key per seed (initialisation and batch order); ``seeds``: how many;
    - ``epochs``; ``batch_size``: ``B`` (full batch by default); ``loss``: ``"cross_entropy"`` or
      ``"squared"`` (``½‖out − target‖²`` per example, one-hot targets for vector outputs); the training
      objective is the mean over the batch;
    - ``svag``: ℓ ≥ 1, SVAG's noise multiplier (pass the learning rate η/ℓ yourself);
    - ``record_every``: record metrics every this many epochs (and at epoch 0); ``eval_size``: evaluate the
      train metrics on the first this many training examples (all by default);
    - ``sharpness_iterations``: if > 0, also record the largest Hessian eigenvalue of the (evaluation)
      training loss with this many Lanczos steps (`inertia.hessian.sharpness`);
    - ``max_norm``: a run whose parameter norm exceeds this is marked diverged; ``keep_params``: return the
      initial and final parameters; ``progress``: a tqdm bar over chunks of epochs;
    - ``micro_batch``: accumulate each batch's gradient over slices of this many examples (it must divide the
      batch size; the whole batch at once by default); ``eval_batch``: examples per slice of the metrics;
    - ``dtype``: ``"float32"`` (default) or ``"float64"``: the initial parameters, floating inputs, the method's
      hyper-parameters and its state all take this dtype. A float64 run turns on JAX's 64-bit mode for the call
      only (``jax.enable_x64`` as a context); in float64 the iterates equal optax's own loop on the same batches
      to 1e-12 (tests/test_nn.py);
    - ``executor``: train chunks of ``chunk_size`` configurations (default: a tenth of the grid) as tasks on any
      `concurrent.futures.Executor` or a Dask ``distributed.Client`` (docs/scaling.md). Every task trains its
      configurations with every seed from the same key; the results equal the local run's bit for bit (tests:
      a thread pool and a Dask LocalCluster of two processes). ``chunk_size`` without an executor trains the
      chunks one after another here.

    **Returns:** an `xarray.Dataset` over ``(config, seed, record)`` with ``train_loss``, ``train_accuracy``,
    ``test_loss``, ``test_accuracy``, ``distance`` (``‖θ − θ₀‖``), optionally ``sharpness``; coordinates
    ``epoch``/``step`` per record and every hyper-parameter of the method (``coords()``) per configuration;
    ``diverged_at`` (step, −1 if never) per run; with ``keep_params`` also ``initial`` (seed, parameter), and
    (config, seed, parameter): ``final`` (the last iterate ``x_n``), ``observed`` (the method's observed point:
    optax's parameters) and the method's other state fields shaped like them (``velocity`` ``x_n − x_{n−1}`` for the
    linear methods, ``mu`` and ``nu`` for Adam; `inertia.simulate.state_variables`).
    """
    _check(method, data, epochs, batch_size, seeds, loss, svag, record_every, eval_size, micro_batch, eval_batch,
           dtype)
    if executor is not None or chunk_size is not None:
        options = dict(key=key, epochs=epochs, batch_size=batch_size, seeds=seeds, loss=loss, svag=svag,
                       record_every=record_every, eval_size=eval_size, sharpness_iterations=sharpness_iterations,
                       max_norm=max_norm, keep_params=keep_params, progress=False, micro_batch=micro_batch,
                       eval_batch=eval_batch, dtype=dtype)
        return _in_chunks(executor, chunk_size, model, method.flat(), data, options, progress)
    dtype = _dtype_name(dtype)
    with _precision(dtype):
        return _train(model, method, data, key, epochs, batch_size, seeds, loss, svag, record_every, eval_size,
                      sharpness_iterations, max_norm, keep_params, progress, micro_batch, eval_batch,
                      jnp.dtype(dtype))


def _in_chunks(executor, chunk_size, model, grid, data, options, progress) -> xr.Dataset:
    """`train` over chunks of ``chunk_size`` configurations of the flat ``grid``, each a task on ``executor`` (here,
    one after another, without one); the driver joins them along ``config``."""
    n_configs = grid.shape[0]
    if chunk_size is not None:
        check_int("chunk_size", chunk_size, 1)
    chunk = chunk_size or max(1, math.ceil(n_configs / 10))
    starts = range(0, n_configs, chunk)
    tasks = [(model, jax.tree.map(lambda p: p[start:start + chunk], grid), data, options) for start in starts]
    parts: dict[int, xr.Dataset] = {}
    bar = tqdm(total=len(tasks), desc="train", unit="chunk", disable=not progress or len(tasks) < 2)

    def finish(i, out):
        parts[i] = out
        bar.update()

    with bar:
        if executor is None:
            for i, task in enumerate(tasks):
                finish(i, _train_task(*task))
        else:
            run_tasks(executor, _train_task, tasks, finish)
    # variables without a config axis (``initial``) are the same in every chunk: kept once
    return xr.concat([parts[i] for i in range(len(tasks))], "config", data_vars="minimal", coords="minimal",
                     compat="override", join="override")


def _train_task(model, grid, data, options) -> xr.Dataset:
    """One chunk of configurations trained with every seed: a task of `train` with an executor (module-level, so
    that a worker process imports it)."""
    return train(model, grid, data, **options)


def _problem(model, data, seed_keys, loss, batch, svag, eval_size, sharpness_iterations, max_norm, micro_batch,
             eval_batch, dtype) -> _Problem:
    """The training problem of `train`'s arguments, in the training ``dtype``."""
    n = len(data.y_train)
    label_dtype = dtype if data.n_classes == 1 else jnp.int32
    eval_n = n if eval_size is None else min(int(eval_size), n)
    template, static = eqx.partition(model(key=jax.random.fold_in(seed_keys[0], 0)), eqx.is_inexact_array)
    return _Problem(
        static=static, unravel=_Layout.of(template), kind=loss, batch=batch, micro_batch=int(micro_batch or batch),
        eval_batch=int(eval_batch), steps_per_epoch=n // batch, two_batches=svag != 1,
        sharpness_iterations=int(sharpness_iterations),
        x_train=_inputs(data.x_train, dtype), y_train=jnp.asarray(data.y_train, label_dtype),
        x_eval=_inputs(_take(data.x_train, slice(None, eval_n)), dtype),
        y_eval=jnp.asarray(data.y_train[:eval_n], label_dtype),
        x_test=_inputs(data.x_test, dtype), y_test=jnp.asarray(data.y_test, label_dtype),
        max_norm=jnp.asarray(max_norm, dtype), svag_weights=jnp.asarray(svag_weights(float(svag)), dtype),
    )


def _train(model, method, data, key, epochs, batch_size, seeds, loss, svag, record_every, eval_size,
           sharpness_iterations, max_norm, keep_params, progress, micro_batch, eval_batch, dtype):
    grid = method.flat().astype(dtype)
    batch = len(data.y_train) if batch_size is None else int(batch_size)
    seed_keys = jax.random.split(key, seeds)
    x0 = _initial(model, seed_keys).astype(dtype)
    problem = _problem(model, data, seed_keys, loss, batch, svag, eval_size, sharpness_iterations, max_norm,
                       micro_batch, eval_batch, dtype)
    diverged_at, first = _first(problem, jnp.full((grid.shape[0], seeds), -1, jnp.int32), seed_keys, x0)
    state = (_start(grid, x0), diverged_at)
    bounds = list(range(0, epochs, record_every)) + [epochs]
    records = [first]
    bar = tqdm(zip(bounds[:-1], bounds[1:]), total=len(bounds) - 1, desc="train", unit="chunk", disable=not progress)
    for start, stop in bar:
        state, metrics = _chunk(problem, grid, state, seed_keys, x0, jnp.asarray(start, jnp.int32),
                                jnp.asarray(stop - start, jnp.int32))
        records.append(metrics)
        bar.set_postfix_str(f"epoch {stop}/{epochs}")
    metrics = {k: np.stack([np.asarray(r[k]) for r in records], axis=-1) for k in records[0]}
    return _as_dataset(metrics, state, x0, grid, bounds, problem.steps_per_epoch, batch, svag, keep_params)


def _as_dataset(metrics, state, x0, grid, epochs, steps_per_epoch, batch, svag, keep_params):
    dims = ("config", "seed", "record")
    variables = {k: (dims, v) for k, v in metrics.items()}
    inner, diverged_at = state
    variables["diverged_at"] = (("config", "seed"), np.asarray(diverged_at))
    if keep_params:
        per_run = ("config", "seed")
        variables["initial"] = (("seed", "parameter"), np.asarray(x0))
        variables["final"] = (per_run + ("parameter",), np.asarray(inner.x))
        variables["observed"] = (per_run + ("parameter",), np.asarray(_observed(grid, inner)))
        for name, value in state_variables(inner).items():
            variables[name] = (per_run + ("parameter",) * (np.ndim(value) - 2), np.asarray(value))
    epochs = np.asarray(epochs)
    coords = {"epoch": ("record", epochs), "step": ("record", epochs * steps_per_epoch),
              **{name: ("config", np.asarray(value)) for name, value in grid.coords().items()}}
    attrs = {"batch_size": batch, "steps_per_epoch": steps_per_epoch, "svag": float(svag),
             "parameters": int(x0.shape[-1])}
    return xr.Dataset(variables, coords=coords, attrs=attrs)
