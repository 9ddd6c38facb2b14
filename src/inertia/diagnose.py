"""`diagnose`: what does an optimiser really do on a user's own model? Measure, predict from theory, then check.

At the current parameters θ of any JAX loss over a parameter pytree, `diagnose` measures the local quadratic
model and the minibatch noise, predicts from the seed papers what the optimiser will do, and runs a short
continuation of the optimiser to check each prediction:

**Measured** (`measure`): the top Hessian eigenpairs ``(μ_i, u_i)`` (Lanczos, with the residual of each pair), the
full-pool gradient ``ḡ``, the per-example gradient covariance ``F = (1/N) Σ ∇ℓ_i ∇ℓ_iᵀ − ḡḡᵀ`` restricted to the
top directions (``F_U = UᵀFU``, exact) and the per-example curvatures ``U H_i Uᵀ``, both by forward-mode derivatives
of ``c ↦ ℓ_i(θ + Uᵀc)``, and the traces of ``H`` and ``F`` (Hutchinson, with their standard errors). Minibatches of
``B`` drawn with replacement from the ``N`` pooled examples have noise covariance ``C = F/B``
(Ziyin, Liu, Mori & Ueda, ICLR 2022; docs/theory.md §3.3). No full per-example gradient is ever formed; per-example
quantities are taken ``chunk`` examples at a time, so memory stays at ``chunk × (k + k²)`` tangents of the model's
activations for ``k`` directions.

**Predicted** (`predict`), for a linear two-step method (h, λ, a):

- *stability margin*: sharpness ``μ_max`` against the method's own threshold ``2(1+λ)/((1+2a)h)``
  (GD 2/h; heavy ball 2(1+β)/h) (docs/theory.md §1; `stability.canonical_threshold`);
- *stationary fluctuation* in the top directions: the exact discrete stationary covariance of the local quadratic
  ``½ Σ μ_i (u_iᵀδ)²`` with noise ``C_U = F_U/B`` (Liu, Ziyin & Ueda, ICML 2021, Theorems 1–2, solved as a discrete
  Lyapunov equation by `stationary.covariance`), against the continuous-time Ornstein–Uhlenbeck value
  (`stationary.covariance_ou`), and the excess loss ``½ Tr[KΣ]`` it adds;
- *momentum regime*: SGD at the matched effective rate ``h/(1−λ)`` (Wang et al., ICLR 2024) is predicted
  equivalent ("noise-dominated") when it is stable (``h/(1−λ)·μ_max < 2``) and its exact stationary excess loss
  differs from the method's own by less than the margin, a quarter of the latter; otherwise momentum matters
  ("curvature-limited");
- *implicit regulariser*: the modified-loss term ``c(λ,a)·h·‖∇f‖²`` with ``c = (1+λ−2a(1−λ))/(4(1−λ)²)``
  (Kovachki & Stuart, JMLR 2021; Barrett & Dherin, ICLR 2021, for GD: ``c = 1/4``).

**Checked** (`check`): ``replicas`` continuations of ``steps`` steps from θ with independent minibatches. The
variance of ``u_iᵀθ_t`` across replicas over the last half is compared with the prediction (z-scores with a
Bonferroni correction over the top directions); SGD at the matched rate, on the same minibatches (coupled), is
compared with the method by a paired TOST on the late-window loss with the prediction's margin; and twin full-batch
runs at 0.8× and 1.25× the predicted largest stable learning rate, from θ and from θ + εu_1, show whether a
perturbation along the top eigenvector dies out below the threshold and grows beyond it, as the linear stability
analysis predicts; the measured orders of the (rescaled) gradient flow and of the modified-loss flow against the
method, 1 and 2, show whether the implicit regulariser is what separates the method from gradient flow.

The local quadratic model holds near a minimum. Far from one (large gradient, negative curvature, moving
eigenvectors) the predictions are not to be trusted, and the checks say so: docs/diagnose.md.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree

from . import hessian, stability, stationary
from ._checks import InertiaError, check_int
from ._stats import order_row
from .flows import GradientFlow, ModifiedFlow, drift_coefficient
from .methods import GD, AbstractMethod, Adam, FromOptax, Method, RMSProp, effective_lr, require_linear
from .objectives import Objective
from .order import convergence_order

__all__ = ["Measurement", "Diagnosis", "measure", "predict", "check", "check_stability", "check_implicit_regulariser",
           "diagnose"]

Loss = Callable[[PyTree, PyTree], Array]


@dataclasses.dataclass(frozen=True)
class Measurement:
    """The local model at θ: see `measure`. Arrays are NumPy float64; ``directions`` has shape ``(k, P)``;
    ``eigen_residuals`` ``‖Hu_i − μ_i u_i‖``, ``trace_se`` and ``noise_trace_se`` say how accurate each number is."""

    loss: float
    gradient_norm: float
    eigenvalues: np.ndarray
    directions: np.ndarray
    trace: float
    trace_se: float
    noise_top: np.ndarray
    noise_trace: float
    curvatures: np.ndarray
    batch_size: int
    examples: int
    eigen_residuals: np.ndarray
    noise_trace_se: float
    lanczos_iterations: int
    timings: dict = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """What `diagnose` found: ``measured``, ``predicted`` and ``checked`` as plain dicts, and the raw traces
    (``traces``) for figures; ``timings``: CPU-seconds and wall seconds of each phase, compilation included."""

    measured: dict
    predicted: dict
    checked: dict
    traces: dict = dataclasses.field(default_factory=dict, repr=False)
    timings: dict = dataclasses.field(default_factory=dict)


def _pool(data: Any) -> tuple[PyTree, int]:
    """A pytree of arrays with a common leading example axis, from such a pytree or an iterable of them."""
    if isinstance(data, (tuple, list, dict)) or hasattr(data, "shape"):
        leaves = jax.tree.leaves(data)
        if leaves and all(hasattr(x, "shape") and x.ndim >= 1 for x in leaves):
            sizes = {int(x.shape[0]) for x in leaves}
            if len(sizes) != 1:
                raise InertiaError(f"data's arrays must share their first (example) axis; got sizes {sorted(sizes)}")
            return jax.tree.map(jnp.asarray, data), sizes.pop()
    batches = list(data)
    if not batches:
        raise InertiaError("data must hold at least one batch")
    return _pool(jax.tree.map(lambda *xs: np.concatenate(xs), *batches))


def _take(pool: PyTree, index) -> PyTree:
    return jax.tree.map(lambda x: x[index], pool)


class _Clock:
    """Process CPU-seconds and wall seconds of each phase, compilation included (the phases end on host values, so
    asynchronous dispatch has finished)."""

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = {}
        self._last = (time.process_time(), time.perf_counter())

    def lap(self, name: str) -> None:
        now = (time.process_time(), time.perf_counter())
        self.phases[name] = {"cpu_s": now[0] - self._last[0], "wall_s": now[1] - self._last[1]}
        self._last = now


def _pooled_loss(loss: Loss, unravel, n: int, chunk: int) -> Callable[[Array, PyTree], Array]:
    """``(z, pool) ↦ (1/N) Σ_i ℓ_i(z)`` evaluated ``chunk`` examples at a time (the loss is a mean over its batch).
    The examples are an argument, not a closure: compiled programs that close over arrays hold them as constants,
    and XLA then spends minutes constant-folding convolutions of the data."""
    chunks = n // chunk

    def f(z, pool):
        head = jax.tree.map(lambda x: x[: chunks * chunk].reshape((chunks, chunk) + x.shape[1:]), pool)
        tail = _take(pool, slice(chunks * chunk, n))
        params = unravel(z)
        total = jnp.sum(jax.lax.map(lambda b: loss(params, b), head)) * chunk if chunks else 0.0
        return (total + (loss(params, tail) * (n - chunks * chunk) if n > chunks * chunk else 0.0)) / n

    return f


def _per_example_losses(loss: Loss, unravel) -> Callable[[Array, PyTree], Array]:
    """``(z, batch) ↦ (ℓ_i(z))_i``: the loss of each example of the batch on its own (the user's loss of a batch of
    one). Under forward-mode differentiation in ``z`` the weights stay shared by the batch, so the model runs as on an
    ordinary batch: no per-example weight gradients are formed."""

    def losses(z, batch):
        params = unravel(z)
        return jax.vmap(lambda e: loss(params, jax.tree.map(lambda x: x[None], e)))(batch)

    return losses


def _subspace_statistics(losses, flat: Array, pool: PyTree, n: int, U: Array, chunk: int):
    """Per-example gradients and Hessians **in the span of the top directions**, ``U g_i`` and ``U H_i Uᵀ``, as the
    first and second derivatives at ``c = 0`` of ``c ↦ ℓ_i(θ + Uᵀc)`` (forward over forward mode: ``k + k²``
    tangents, ``chunk`` examples at a time, never a full per-example gradient). Returns ``(1/N) Σ (Ug_i)(Ug_i)ᵀ`` and
    the curvatures ``(N, k, k)``; memory: ``chunk × (k + k²)`` tangents of the model's activations."""

    @jax.jit
    def block(batch, x, U):  # arrays as arguments, not closed over: no constant folding of the data
        along = lambda c: losses(x + c @ U, batch)
        first = lambda c: (jax.jacfwd(along)(c),) * 2
        curvature, gradient = jax.jacfwd(first, has_aux=True)(jnp.zeros(U.shape[0], x.dtype))
        return gradient.T @ gradient, (curvature + jnp.swapaxes(curvature, 1, 2)) / 2

    second, curvatures = jnp.zeros((U.shape[0],) * 2, flat.dtype), []
    for start in range(0, n, chunk):
        part, A = block(_take(pool, slice(start, min(start + chunk, n))), flat, U)
        second = second + part
        curvatures.append(np.asarray(A, float))
    return np.asarray(second, float) / n, np.concatenate(curvatures)


def _hutchinson(losses, flat: Array, pool: PyTree, n: int, probes: Array, chunk: int) -> tuple[np.ndarray, ...]:
    """Per Rademacher probe ``z``: ``zᵀHz`` and ``zᵀFz`` (``F`` the per-example gradient covariance), both from one
    forward-over-forward pass of the per-example losses along ``z``: ``d/dt ℓ_i(θ+tz) = zᵀg_i`` and
    ``d²/dt² ℓ_i(θ+tz) = zᵀH_i z``. Their means over probes are unbiased for ``tr H`` and ``tr F`` (Hutchinson 1990;
    ``E[(zᵀv)²] = ‖v‖²``)."""

    @jax.jit
    def block(batch, x, z):
        along = lambda t: losses(x + t * z, batch)
        slope, bend = jax.jvp(lambda t: jax.jvp(along, (t,), (jnp.ones_like(t),))[1], (jnp.zeros((), x.dtype),),
                              (jnp.ones((), x.dtype),))
        return jnp.stack([jnp.sum(bend), jnp.sum(slope), jnp.sum(slope**2)])

    sums = np.zeros((len(probes), 3))
    for i, z in enumerate(probes):
        for start in range(0, n, chunk):
            sums[i] += np.asarray(block(_take(pool, slice(start, min(start + chunk, n))), flat, z), float)
    sums /= n
    return sums[:, 0], sums[:, 2] - sums[:, 1] ** 2


def _eigenpairs(matvec, flat: Array, key: Array, iterations: int) -> tuple[np.ndarray, Array]:
    """Eigenpairs of the Hessian in descending order: Lanczos with ``iterations`` steps, or, when that is as many
    steps as there are parameters, the dense Hessian from one Hessian-vector product per parameter and its exact
    eigendecomposition. A Krylov space holds one vector per *distinct* eigenvalue (Golub & Van Loan, Matrix
    Computations, §10.1), so Lanczos cannot return a full basis where eigenvalues repeat, as they do for a softmax head
    (its logits' shift invariance, lifted by weight decay to a multiple eigenvalue); the dense form can."""
    if iterations < flat.size:
        values, vectors = hessian.lanczos(matvec, flat.size, key=key, iterations=iterations, dtype=flat.dtype)
        return np.asarray(values, float), vectors
    dense = np.asarray(jax.lax.map(matvec, jnp.eye(flat.size, dtype=flat.dtype), batch_size=16), float)
    values, vectors = np.linalg.eigh((dense + dense.T) / 2)
    return values[::-1], jnp.asarray(vectors[:, ::-1].T, flat.dtype)


def _mean_se(samples: np.ndarray) -> tuple[float, float]:
    return float(samples.mean()), float(samples.std(ddof=1) / np.sqrt(samples.size)) if samples.size > 1 else np.nan


def measure(loss: Loss, params: PyTree, data: Any, *, batch_size: int, key: Array, top_k: int = 4,
            iterations: int = 20, hutchinson_samples: int = 10, chunk: int = 256) -> Measurement:
    """Measure the local quadratic model and the minibatch noise at ``params`` (module docstring).

    **Arguments:** ``loss(params, batch)``: the mean loss of a batch (a pytree with a leading example axis);
    ``params``: a pytree; ``data``: the examples (such a pytree, or an iterable of batches, concatenated);
    ``batch_size``: the user's minibatch size ``B``; ``key``: for Lanczos and Hutchinson; ``top_k``: directions;
    ``iterations``: Lanczos steps (at least ``top_k``; as many as the parameters: the dense Hessian, exact);
    ``hutchinson_samples``: probes for the traces of ``H`` and
    ``F`` (≥ 2, for a standard error); ``chunk``: examples per block of the per-example quantities.

    Accuracy is reported, not assumed: ``eigen_residuals`` ``‖Hu_i − μ_i u_i‖`` of the Ritz pairs (each ``μ_i`` lies
    within that of an eigenvalue of ``H``, and within ``residual²/gap`` once isolated: Parlett, The Symmetric
    Eigenvalue Problem, Thms 4.5.1 and 11.7.1), and the Hutchinson standard errors ``trace_se``, ``noise_trace_se``.
    """
    pool, n = _pool(data)
    check_int("batch_size", batch_size, 1)
    check_int("top_k", top_k, 1)
    check_int("iterations", iterations, 1)
    check_int("hutchinson_samples", hutchinson_samples, 2)
    check_int("chunk", chunk, 1)
    flat, unravel = ravel_pytree(params)
    if top_k > flat.size:
        raise InertiaError(f"top_k must lie in [1, {flat.size}] (the parameter count); got {top_k}")
    f = _pooled_loss(loss, unravel, n, chunk)
    hvp = jax.jit(lambda x, data, v: jax.jvp(lambda z: jax.grad(f)(z, data), (x,), (v,))[1])
    k1, k2 = jax.random.split(key)
    clock = _Clock()
    values, vectors = _eigenpairs(lambda v: hvp(flat, pool, v), flat, k1, max(iterations, top_k))
    U, mu = vectors[:top_k], np.asarray(values[:top_k], float)
    clock.lap("lanczos")
    # one compiled program for the loss, its gradient and the residual products H u_i (the primal, independent of
    # the direction, is computed once under vmap)
    both = jax.jit(jax.vmap(lambda x, data, v: jax.jvp(lambda z: jax.value_and_grad(f)(z, data), (x,), (v,)),
                            in_axes=(None, None, 0)))
    (value, mean_grad), (_, HU) = both(flat, pool, U)
    value, mean_grad = value[0], mean_grad[0]
    residuals = np.asarray(jnp.linalg.norm(HU - mu[:, None] * U, axis=1), float)
    g_top = np.asarray(U @ mean_grad, float)
    clock.lap("gradient_and_residuals")
    losses = _per_example_losses(loss, unravel)
    probes = jax.random.rademacher(k2, (hutchinson_samples, flat.size), flat.dtype)
    quad, noise = _hutchinson(losses, flat, pool, n, probes, chunk)
    clock.lap("hutchinson")
    second_top, curvatures = _subspace_statistics(losses, flat, pool, n, U, chunk)
    clock.lap("per_example_top_directions")
    (trace, trace_se), (noise_trace, noise_trace_se) = _mean_se(quad), _mean_se(noise)
    return Measurement(
        loss=float(value), gradient_norm=float(jnp.linalg.norm(mean_grad)), eigenvalues=mu,
        directions=np.asarray(U, float), trace=trace, trace_se=trace_se,
        noise_top=second_top - np.outer(g_top, g_top), noise_trace=noise_trace, curvatures=curvatures,
        batch_size=int(batch_size), examples=n, eigen_residuals=residuals, noise_trace_se=noise_trace_se,
        lanczos_iterations=int(max(iterations, top_k)), timings=clock.phases)


def _linear(method: Any, what: str) -> Method:
    method = require_linear(method, what)
    if np.shape(method.h) != ():
        raise InertiaError(f"{what} needs scalar hyper-parameters; the method is a grid of shape {np.shape(method.h)}")
    return method


def _stationary_top(method: Method, m: Measurement, k: int, state_dependent: bool = True) -> dict:
    """Exact discrete and OU stationary covariances in the top ``k`` directions, or why none exists.

    The minibatch noise depends on the state: near θ, ``g_i(θ+δ) ≈ g_i(θ) + H_i δ``, so drawing ``B`` of ``N``
    examples with replacement gives ``E C = (1/B)[F + (1/N) Σ H_i Σ H_i − KΣK]`` (Ziyin, Liu, Mori & Ueda, ICLR 2022,
    Sec. 3, here with the per-example Hessians restricted to the top directions). The covariance is solved
    self-consistently with it (``state_dependent=True``) or with the constant ``F/B`` alone.
    """
    K, A = np.diag(m.eigenvalues[:k]), np.ascontiguousarray(m.curvatures[:, :k, :k])
    C0 = m.noise_top[:k, :k] / m.batch_size
    n = len(A)
    stacked = A.reshape(n * k, k)  # rows (example, j)

    def state_noise(S):
        # (1/N) Σ_n A_n S A_n as two matrix products of n·k³ operations (A_n is symmetric)
        AS = (stacked @ S).reshape(n, k, k).transpose(1, 0, 2).reshape(k, n * k)
        return (AS @ stacked / n - K @ S @ K) / m.batch_size

    try:
        # tolerance 1e-10: far below any Monte Carlo standard error the checks can reach
        exact = (stationary.self_consistent_covariance(method, K, state_noise, C0, tol=1e-10) if state_dependent
                 else stationary.covariance(method, K, C0).parameters)
    except InertiaError as error:
        return {"exists": False, "reason": str(error)}
    C = C0 + state_noise(exact) if state_dependent else C0
    ou = stationary.covariance_ou(method, K, C)
    return {"exists": True, "variance": np.diag(exact), "variance_ou": np.diag(ou),
            "excess_loss": 0.5 * float(np.trace(K @ exact)), "excess_loss_ou": 0.5 * float(np.trace(K @ ou))}


def predict(method: AbstractMethod, m: Measurement, *, rescale: bool = True) -> dict:
    """The predictions of the module docstring, each with its source, for a linear two-step ``method``.

    The momentum regime compares the method with GD at the matched rate ``h/(1−λ)`` (``rescale=False`` uses ``h``,
    the un-rescaled rate, as a negative control). Equivalence margin, fixed in advance: a quarter of the method's own
    stationary excess loss (the part of the loss the noise adds).
    """
    if isinstance(method, AbstractMethod) and not isinstance(method, Method):
        return _unavailable(method)
    method = _linear(method, "predict")
    h, lam = float(method.h), float(method.momentum)
    sharp = float(m.eigenvalues[0])
    limit = float(stability.canonical_threshold(method)) / h
    positive = int(np.sum(m.eigenvalues > 0))  # Lanczos returns them in descending order
    own = _stationary_top(method, m, positive)
    matched = GD(float(effective_lr(method)) if rescale else h)
    matched_stable = float(matched.h) * sharp < 2
    theirs = _stationary_top(matched, m, positive) if matched_stable else {"exists": False}
    margin = 0.25 * own["excess_loss"] if own["exists"] else np.nan
    gap = theirs["excess_loss"] - own["excess_loss"] if own["exists"] and theirs["exists"] else np.nan
    marginal = bool(lam > 0 and matched_stable and abs(gap) < margin)
    c = float(drift_coefficient(method))
    # Near a minimum the noise, not the drift, sets the loss: one effective step of descent, h/(1−λ)·‖∇f‖², must be
    # small against the stationary excess loss, or the local model's stationary prediction does not apply yet.
    descent = float(effective_lr(method)) * m.gradient_norm**2
    near = bool(own["exists"] and descent < 0.1 * own["excess_loss"])
    return {
        "stability": {"sharpness": sharp, "threshold_eigenvalue": limit, "margin": sharp / limit,
                      "largest_stable_lr_factor": limit / sharp,
                      "source": "companion-matrix threshold 2(1+λ)/((1+2a)h); docs/theory.md §1"},
        "stationary": {**own, "directions": positive, "descent_per_step": descent, "near_minimum": near,
                       "source": "Liu, Ziyin & Ueda, ICML 2021, Thms 1-2 (discrete) vs OU"},
        "regime": {"momentum": lam, "matched_lr": float(matched.h), "matched_stable": matched_stable,
                   "excess_loss_gap": gap, "margin": margin, "momentum_marginal": marginal,
                   "verdict": ("no momentum" if lam == 0 else "noise-dominated: SGD at h/(1-λ) is equivalent"
                               if marginal else "curvature-limited: momentum matters"),
                   "source": "Wang et al., ICLR 2024 (SGDM ≈ SGD at γ/(1−β)); exact stationary losses"},
        "implicit_regulariser": {"coefficient": c, "strength": c * h * m.gradient_norm**2,
                                 "relative_to_loss": c * h * m.gradient_norm**2 / max(abs(m.loss), 1e-300),
                                 "source": "Kovachki & Stuart, JMLR 2021; Barrett & Dherin, ICLR 2021"},
    }


#: The predictions, each of which needs the linear two-step form (h, λ, a) of the method.
PREDICTIONS = ("stability", "stationary", "regime", "implicit_regulariser")


def _unavailable(method: AbstractMethod) -> dict:
    """Every prediction marked not available for a method without a linear two-step form, with the reason
    (`require_linear`'s message: why its theory does not apply)."""
    try:
        require_linear(method, "this prediction")
    except InertiaError as error:
        reason = str(error)
    return {name: {"available": False, "reason": reason} for name in PREDICTIONS}


#: Methods whose step calls its gradient once, outside any nested transformation, so the loss recorded during the
#: call belongs to the step's own trace (`_value_recording`).
_TOP_LEVEL_GRADIENT = (Method, Adam, RMSProp, FromOptax)


def _value_recording(f: Callable[[Array], Array]) -> tuple[Callable[[Array], Array], list]:
    """``(gradient, seen)``: ``gradient(z)`` is ``∇f(z)``, from `jax.value_and_grad`; it appends ``f(z)`` to
    ``seen``."""
    seen: list = []

    def gradient(z):
        value, g = jax.value_and_grad(f)(z)
        seen.append(value)
        return g

    return gradient, seen


def _continuation(loss: Loss, unravel, n: int, batch_size: int | None, steps: int):
    """A compiled ``(method, keys, pool, flat0, U) ↦ (projections U(θ_t − θ_0), losses)`` for ``len(keys)`` replicas
    of ``steps`` steps from ``flat0``, minibatches of ``batch_size`` drawn with replacement (``None``: the whole pool,
    full batch). Each step's loss is the minibatch's at the point where the method evaluates its gradient (``x_t``;
    the look-ahead point for Nesterov and QHM). The method is an argument, not a constant: the method and the
    matched-rate SGD (the same type, its momentum set to 0) share one compilation, as do the stability runs."""

    def replica(method, key, pool, flat0, U):  # arrays as arguments, not closed over: no constant folding of the data
        # hyper-parameters in the iterate's precision (float64 NumPy values would promote a float32 model's state)
        floating = lambda a: jnp.issubdtype(getattr(a, "dtype", int), jnp.floating)
        method = jax.tree.map(lambda a: a.astype(flat0.dtype) if floating(a) else a, method)

        def body(state, inputs):
            k, step = inputs
            batch = pool if batch_size is None else _take(pool, jax.random.randint(k, (batch_size,), 0, n))
            gradient, seen = _value_recording(lambda z: loss(unravel(z), batch))
            new = method.step(state, gradient, step)
            # the batch is independent of the point: an unbiased pool-loss estimate, from the gradient's own forward
            # pass (a separate evaluation costs a third of the step: XLA does not merge the two forward passes)
            own = len(seen) == 1 and type(method) in _TOP_LEVEL_GRADIENT
            before = seen[0] if own else loss(unravel(state.x), batch)
            state = new
            # x_n, whose covariance the theory predicts; another method's own parameters (optax's, Adam's)
            point = state.x if isinstance(method, Method) else method.observed(state)
            return state, (U @ (point - flat0), before)

        _, out = jax.lax.scan(body, method.init(flat0), (jax.random.split(key, steps), jnp.arange(steps)))
        return out

    return eqx.filter_jit(jax.vmap(replica, in_axes=(None, 0, None, None, None)))


def _as_gd(method: Method, h: float) -> Method:
    """GD at rate ``h`` as the same type as ``method`` (momentum and look-ahead 0): its steps are GD's exactly, and a
    compiled continuation of ``method`` runs it."""
    zero = np.zeros_like(np.asarray(method.momentum, float))
    return eqx.tree_at(lambda mm: (mm.h, mm.momentum, mm.lookahead), method, (np.asarray(h, float), zero, zero))


def check(loss: Loss, params: PyTree, data: Any, method: AbstractMethod, m: Measurement, predicted: dict, *,
          key: Array, steps: int = 400, replicas: int = 32, stability_steps: int = 60,
          flow_steps: int = 8) -> tuple[dict, dict]:
    """Run the continuations of the module docstring and compare them with ``predicted``; returns (checks, traces).

    Any method of the stepping protocol runs (an optax one through `from_optax`, `Adam`): its continuation is
    measured in the top directions, and the checks that need a prediction of the linear theory (the stationary
    fluctuation, the regime, the stability margin, the implicit regulariser) say that none is available, and why.
    ``stability_steps = 0`` skips the stability runs, ``flow_steps = 0`` the implicit regulariser's
    (`check_implicit_regulariser`).
    """
    check_int("steps", steps, 20)
    check_int("replicas", replicas, 4)
    check_int("stability_steps", stability_steps, 0)
    check_int("flow_steps", flow_steps, 0)
    linear = isinstance(method, Method)
    if linear:
        method = _linear(method, "check")
    pool, n = _pool(data)
    flat0, unravel = ravel_pytree(params)
    k = predicted["stationary"]["directions"] if linear else int(np.sum(m.eigenvalues > 0))
    U = jnp.asarray(m.directions[:k], flat0.dtype)
    keys = jax.random.split(key, replicas)
    clock = _Clock()
    run = _continuation(loss, unravel, n, m.batch_size, steps)
    proj, losses = run(method, keys, pool, flat0, U)
    proj, losses = np.asarray(proj, float), np.asarray(losses, float)
    clock.lap("continuation")
    late = slice(steps // 2, steps)
    per_replica = _late_variance(proj, late)
    traces: dict[str, Any] = {"projections": proj, "losses": losses, "sgd_losses": None, "stability": {},
                              "timings": clock.phases}
    if not linear:
        reason = predicted["stationary"]["reason"]
        excess = 0.5 * per_replica @ m.eigenvalues[:k]
        measured = {"measured_variance": per_replica.mean(0),
                    "se": per_replica.std(0, ddof=1) / np.sqrt(replicas),
                    "excess_loss": {"measured": float(excess.mean()),
                                    "se": float(excess.std(ddof=1) / np.sqrt(replicas))}}
        return ({"stationary": {**measured, "available": False, "holds": None, "reason": reason},
                 **{name: {"available": False, "holds": None, "reason": reason}
                    for name in ("regime", "stability", "implicit_regulariser")}},
                traces)
    checked: dict = {}
    if predicted["stationary"]["exists"]:
        checked["stationary"] = _stationary_check(per_replica, m.eigenvalues[:k], predicted)
    else:  # nothing was predicted, so nothing can fail: say why instead of "does not hold"
        missing = "no stationary distribution in the top directions: " + predicted["stationary"]["reason"]
        checked["stationary"] = {"available": False, "holds": None, "reason": missing}
    if not np.isfinite(predicted["regime"]["margin"]):
        checked["regime"] = {"available": False, "holds": None,
                             "reason": "no stationary prediction to set the equivalence margin"}
    elif predicted["regime"]["matched_stable"] and float(predicted["regime"]["momentum"]) > 0:
        assert isinstance(method, Method)  # `linear`
        sgd_proj, sgd_losses = run(_as_gd(method, predicted["regime"]["matched_lr"]), keys, pool, flat0, U)
        checked["regime"] = _regime_check(proj[:, late], sgd_proj[:, late], m.eigenvalues[:k], predicted)
        traces["sgd_losses"] = np.asarray(sgd_losses, float)
        clock.lap("matched_sgd")
    if stability_steps:
        assert isinstance(method, Method)  # `linear`
        checked["stability"], traces["stability"] = check_stability(loss, params, pool, method, m, predicted,
                                                                    steps=stability_steps)
        clock.lap("stability")
    if flow_steps:
        assert isinstance(method, Method)  # `linear`
        checked["implicit_regulariser"], traces["flows"] = check_implicit_regulariser(loss, params, pool, method,
                                                                                      steps=flow_steps)
        clock.lap("implicit_regulariser")
    return checked, traces


def _late_variance(proj: np.ndarray, late: slice) -> np.ndarray:
    """Per replica, the variance of ``u_iᵀθ_t`` over the late window about the mean across replicas at each step
    (unbiased across replicas): shape ``(replicas, k)``."""
    window = np.asarray(proj[:, late], float)
    replicas = window.shape[0]
    return ((window - window.mean(0)) ** 2).mean(1) * replicas / (replicas - 1)


def _stationary_check(per_replica: np.ndarray, eigenvalues: np.ndarray, predicted: dict) -> dict:
    """Measured variance per direction against the exact and OU predictions (Bonferroni over the directions)."""
    from ._stats import z_critical

    replicas, k = per_replica.shape
    est, se = per_replica.mean(0), per_replica.std(0, ddof=1) / np.sqrt(replicas)
    exact = predicted["stationary"]["variance"]
    # directions with no noise at all (e.g. weights of a feature that is zero on every example) have no fluctuation
    # to test: their measured variance and its standard error are round-off
    live = exact > 1e-12 * exact.max()
    z_exact = np.where(live, (est - exact) / se, np.nan)
    z_ou = np.where(live, (est - predicted["stationary"]["variance_ou"]) / se, np.nan)
    crit = z_critical(int(live.sum()))
    return {"measured_variance": est, "se": se, "z_exact": z_exact, "z_ou": z_ou, "z_critical": crit,
            "holds": bool(np.all(np.abs(z_exact[live]) < crit)),
            "excess_loss": _excess_loss_check(per_replica, eigenvalues, predicted)}


def _regime_check(proj, sgd_proj, eigenvalues: np.ndarray, predicted: dict) -> dict:
    """Paired TOST of the late-window loss of the local model in the top directions, ``½ Σ μ_i (u_iᵀ(θ_t − θ_0))²``,
    the method against SGD at the matched rate on the same minibatches, with the prediction's margin. That loss is
    where the prediction lives; the minibatch losses carry the sampling noise of the batch and the excess of every
    other direction."""
    from ._stats import tost

    top = lambda p: (0.5 * np.asarray(p, float) ** 2 @ eigenvalues).mean(1)
    paired = top(proj) - top(sgd_proj)
    result = tost(paired, np.zeros_like(paired), margin=predicted["regime"]["margin"])  # a paired TOST
    predicted_difference = -predicted["regime"]["excess_loss_gap"]  # method minus matched SGD
    return {**result, "predicted_difference": predicted_difference,
            "z_difference": (result["difference"] - predicted_difference) / result["se"],
            "predicted_marginal": predicted["regime"]["momentum_marginal"],
            "holds": result["equivalent"] == predicted["regime"]["momentum_marginal"]}


def _excess_loss_check(per_replica: np.ndarray, eigenvalues: np.ndarray, predicted: dict) -> dict:
    """The stationary excess loss in the top directions, ``½ Σ_i μ_i Var(u_iᵀθ)``, measured per replica, against
    the exact and the OU predictions (``½ Tr[KΣ]``): one z-score each, critical value at α = 0.01 (one cell)."""
    from ._stats import z_critical

    per = 0.5 * per_replica @ eigenvalues
    est, se = float(per.mean()), float(per.std(ddof=1) / np.sqrt(per.size))
    z_exact = (est - predicted["stationary"]["excess_loss"]) / se
    z_ou = (est - predicted["stationary"]["excess_loss_ou"]) / se
    return {"measured": est, "se": se, "predicted": predicted["stationary"]["excess_loss"],
            "predicted_ou": predicted["stationary"]["excess_loss_ou"], "z_exact": z_exact, "z_ou": z_ou,
            "z_critical": z_critical(1), "holds": bool(abs(z_exact) < z_critical(1))}


#: Stability check (fixed before measuring): a predicted-unstable run must amplify the perturbation along ``u_1``
#: tenfold at some step, a predicted-stable one must have damped it below its size over the last quarter of the run;
#: a run is decisive when the linear model at that lr amplifies it a hundredfold, or damps it below a tenth (a
#: factor of ten left for the loss's departure from its quadratic model), or when a predicted-stable perturbation
#: grows tenfold beyond the linear model's largest transient (it has left); otherwise it is too short to decide.
GROWTH, DECAY, DECISIVE = 10.0, 1.0, 10.0


def _perturbation_amplitudes(separation: np.ndarray) -> tuple[float, float]:
    """``(G, D)``: the largest ``|s_t|/ε`` over the run, and over its last quarter (non-finite: infinite)."""
    s = np.where(np.isfinite(separation), np.abs(separation), np.inf)
    return float(s.max()), float(s[len(s) - max(1, len(s) // 4):].max())


def _linear_perturbation(method: Method, eigenvalue: float, steps: int) -> np.ndarray:
    """``s_t/ε``, ``t = 1…steps``: a perturbation ``ε u`` of the iterate along an eigenvector ``u`` of eigenvalue
    ``μ``, started at rest, under the linear method's companion matrix (`stability.companion`; docs/theory.md §1):
    ``(s_{t+1}, s_t) = M (s_t, s_{t−1})``, ``(s_0, s_{−1}) = (1, 1)``. It grows like ``ρ(μ)^t`` beyond the threshold
    and decays like it below."""
    M = stability.companion(method, [eigenvalue])[0]
    state, out = np.ones(2), np.empty(steps)
    for t in range(steps):
        state = M @ state
        out[t] = state[0]
    return out


def check_stability(loss: Loss, params: PyTree, data: Any, method: Method, m: Measurement, predicted: dict, *,
                    steps: int = 60) -> tuple[dict, dict]:
    """Linear stability of the iterate, measured; returns (check, traces). Twin full-batch runs from ``θ`` and
    ``θ + εu_1`` at 0.8× and 1.25× the predicted largest stable lr, and the separation ``s_t = u_1ᵀ(θ'_t − θ_t)``
    along the top eigenvector.
    The prediction is that the perturbation dies out below the threshold and grows beyond it (rule: `GROWTH`,
    `DECAY`, `DECISIVE`). ``ε = √(machine epsilon)·max(‖θ‖, 1)`` in the iterate's precision, so the twins' rounding
    differences lie √ε_mach below it. Whether the loss itself blows up (ends above 10× its start, or not finite) is
    reported, not judged: a network's curvature changes far from θ (it may catapult or settle into a period-two
    orbit instead).

    **Arguments:** as `check`; ``predicted["stability"]["largest_stable_lr_factor"]`` sets the lrs (`predict`);
    ``steps``: full-batch steps of each run (≥ 1).
    """
    check_int("steps", steps, 1)
    method = _linear(method, "check_stability")
    pool, n = _pool(data)
    flat0, unravel = ravel_pytree(params)
    factor = predicted["stability"]["largest_stable_lr_factor"]
    u = jnp.asarray(m.directions[:1], flat0.dtype)
    eps = float(np.sqrt(np.finfo(np.dtype(flat0.dtype)).eps) * max(float(jnp.linalg.norm(flat0)), 1.0))
    run = _continuation(loss, unravel, n, None, steps)
    keys = jax.random.split(jax.random.key(0), 1)  # full batch: the key draws nothing
    runs, paths = [], {}
    for scale in (0.8, 1.25):
        scaled = _with_h(method, float(method.h) * factor * scale)
        (base, losses), (twin, _) = run(scaled, keys, pool, flat0, u), run(scaled, keys, pool, flat0 + eps * u[0], u)
        separation = (np.asarray(twin[0, :, 0], float) + eps - np.asarray(base[0, :, 0], float)) / eps
        linear = _linear_perturbation(scaled, float(m.eigenvalues[0]), steps)
        runs.append(_judge_stability_run(scale, separation, linear, np.asarray(losses[0], float)))
        paths[scale] = {"loss": np.asarray(losses[0], float), "separation": separation, "linear": linear}
    decided = [r["holds"] for r in runs if r["decisive"]]
    holds = bool(all(decided)) if len(decided) == len(runs) else None
    summary = {"lr_factors": [0.8, 1.25], "lrs": [r["lr_factor"] * float(method.h) * factor for r in runs],
               "epsilon": eps, "runs": runs, "diverged": [r["loss_diverged"] for r in runs], "holds": holds}
    if holds is None:
        needed = _steps_to_decide(method, float(method.h) * factor, float(m.eigenvalues[0]), steps)
        summary["reason"] = (f"{steps} full-batch steps are too few to decide: the linear model amplifies the "
                             "perturbation by " + ", ".join(f"{r['linear_growth']:.3g} (last quarter "
                                                             f"{r['linear_decay']:.3g}) at {r['lr_factor']}×"
                                                             for r in runs)
                             + (f"; {needed} steps would decide" if needed else "; even 64× as many would not"))
    return summary, paths


def _steps_to_decide(method: Method, h_limit: float, eigenvalue: float, steps: int) -> int | None:
    """The fewest steps, doubling from ``steps`` up to 64×, at which both stability runs are decisive."""
    for candidate in steps * 2 ** np.arange(1, 7):
        amplitudes = [_perturbation_amplitudes(_linear_perturbation(_with_h(method, h_limit * s), eigenvalue,
                                                                    int(candidate))) for s in (0.8, 1.25)]
        if all(g >= GROWTH * DECISIVE or d <= DECAY / DECISIVE for g, d in amplitudes):
            return int(candidate)
    return None


def _judge_stability_run(scale: float, separation: np.ndarray, linear: np.ndarray, losses: np.ndarray) -> dict:
    """One stability run against its prediction (`check_stability`): measured and linear ``(G, D)``."""
    growth, decay = _perturbation_amplitudes(separation)
    linear_growth, linear_decay = _perturbation_amplitudes(linear)
    leaves = scale > 1  # the prediction under test: unstable beyond the predicted threshold, stable below it
    # decisive on either side, whatever is predicted: a threshold put on the wrong side is then tested, not excused
    decisive = linear_growth >= GROWTH * DECISIVE or linear_decay <= DECAY / DECISIVE
    # below the threshold the linear model bounds the perturbation by its own largest transient: one that grows
    # tenfold past it has left, however short the run
    escaped = not leaves and growth >= GROWTH * max(1.0, linear_growth)
    decisive = decisive or escaped
    return {"lr_factor": scale, "predicted": "grows" if leaves else "dies out", "growth": growth, "decay": decay,
            "linear_growth": linear_growth, "linear_decay": linear_decay, "decisive": bool(decisive),
            "holds": bool(growth >= GROWTH if leaves else decay < DECAY and not escaped),
            "loss_diverged": bool(not np.all(np.isfinite(losses)) or losses[-1] > 10 * losses[0])}


class _PoolLoss(Objective):
    """The pooled loss ``z ↦ (1/N) Σ ℓ_i(z)`` of the flat parameters as an `Objective`. The examples are a field,
    traced, not a closure: compiled programs that close over arrays hold them as constants (`_pooled_loss`)."""

    pool: PyTree
    fn: Callable = eqx.field(static=True)

    def loss(self, x):
        return self.fn(x, self.pool)


#: The flows' solver tolerances (`convergence_order`'s defaults): errors within 100× of this floor, relative to
#: ``max(‖θ‖, 1)``, are the solver's, not the model's, and no order is fitted to them.
_FLOW_FLOOR = 1e-11


def check_implicit_regulariser(loss: Loss, params: PyTree, data: Any, method: Method, *, steps: int = 8,
                               step_sizes: int = 4, chunk: int = 256) -> tuple[dict, dict]:
    """The implicit regulariser, measured on the user's loss; returns (check, traces).

    The method follows the flow of the modified loss ``f + c(λ,a)·h·‖∇f‖²`` to O(h²) and the (rescaled) gradient
    flow of ``f`` only to O(h) (Kovachki & Stuart, JMLR 2021, Thms 2 and 4; Barrett & Dherin, ICLR 2021, Thm 3.1,
    for GD): the regulariser is the part of the discrete trajectory that gradient flow misses. Measured:
    `convergence_order` of both flows on the full-batch loss (float64, whatever the model's precision), over the
    model time ``T = steps·h``, at ``step_sizes`` step sizes ``h, h/2, h/4, …``, started on the slow manifold; the
    rule of the order claims (`_stats.order_identified`: the fit's 99% interval inside the predicted order ± ½)
    must single out order 1 for gradient flow and 2 for the modified flow. Also reported: at the user's ``h``, the
    fraction of the departure from gradient flow that the modified flow accounts for, ``1 − e_MF/e_GF``. At a
    stationary point neither flow moves (``‖∇f‖ = 0``: nothing to regularise) and the check is not available.
    """
    check_int("steps", steps, 1)
    check_int("step_sizes", step_sizes, 4)
    method = _linear(method, "check_implicit_regulariser")
    pool, n = _pool(data)
    with jax.enable_x64(True):
        wide = lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x
        pool, params = jax.tree.map(wide, pool), jax.tree.map(wide, params)
        flat, unravel = ravel_pytree(params)
        objective = _PoolLoss(pool, _pooled_loss(loss, unravel, n, chunk))
        hs = float(method.h) * 2.0 ** -np.arange(step_sizes)[::-1]  # ascending, as `convergence_order` sorts them
        errors = {name: convergence_order(method, model, objective, flat, steps * float(method.h), hs).errors
                  for name, model in (("gradient flow", GradientFlow), ("modified flow", ModifiedFlow))}
        floor = 100 * _FLOW_FLOOR * max(float(jnp.linalg.norm(flat)), 1.0)
    traces = {"hs": hs, "errors": errors}
    if np.min(errors["modified flow"]) <= floor:
        return {"available": False, "holds": None, "errors": errors,
                "reason": f"the modified flow's error ({np.min(errors['modified flow']):.3g}) reaches the solver's "
                          f"floor ({floor:.3g}): the gradient is too small for the flows to move (at a minimum the "
                          "regulariser has nothing to act on)"}, traces
    rows = {name: order_row(hs, e, expected) for (name, e), expected in zip(errors.items(), (1, 2))}
    return {"orders": {name: {k: r[k] for k in ("order", "se", "t", "expected", "inside")} for name, r in rows.items()},
            "explained": float(1 - errors["modified flow"][-1] / errors["gradient flow"][-1]), "steps": steps,
            "holds": all(r["inside"] for r in rows.values())}, traces


def _with_h(method: Method, h: float) -> Method:
    return eqx.tree_at(lambda mm: mm.h, method, np.asarray(h, float))


def diagnose(loss: Loss, params: PyTree, data: Any, method: AbstractMethod, *, batch_size: int, key: Array,
             top_k: int = 4, steps: int = 400, replicas: int = 32, stability_steps: int = 60, flow_steps: int = 8,
             run_checks: bool = True, rescale: bool = True, **measure_options) -> Diagnosis:
    """Measure at ``params``, predict what ``method`` will do, and check each prediction by a short continuation.

    **Arguments:** ``loss(params, batch)``: mean loss of a batch; ``params``: pytree; ``data``: examples (pytree with
    a leading example axis, or an iterable of such batches); ``method``: any method of the stepping protocol,
    scalar; the predictions need a linear two-step one (GD, HeavyBall, Nesterov, QHM): for another (`Adam`, an optax
    one through `from_optax`) the continuation runs and is measured, and each prediction says why it is not available;
    ``batch_size``: the minibatch size; ``key``: PRNG key; ``top_k``: Hessian directions; ``steps``,
    ``replicas``: the continuation; ``stability_steps``: the full-batch stability runs (0 skips them);
    ``flow_steps``: the steps of the implicit regulariser's check, `check_implicit_regulariser` (0 skips it);
    ``run_checks``: skip the continuations if False. Further keywords go to `measure`.

    **Returns:** a `Diagnosis`. Sources of every number: the module docstring and docs/diagnose.md.
    """
    k_measure, k_check = jax.random.split(key)
    m = measure(loss, params, data, batch_size=batch_size, key=k_measure, top_k=top_k, **measure_options)
    predicted = predict(method, m, rescale=rescale)
    checked, traces = check(loss, params, data, method, m, predicted, key=k_check, steps=steps, replicas=replicas,
                            stability_steps=stability_steps, flow_steps=flow_steps) if run_checks else ({}, {})
    measured = {"loss": m.loss, "gradient_norm": m.gradient_norm, "top_eigenvalues": m.eigenvalues,
                "lanczos_iterations": m.lanczos_iterations, "eigen_residuals": m.eigen_residuals,
                "hessian_trace": m.trace, "hessian_trace_se": m.trace_se, "noise_trace_per_example": m.noise_trace,
                "noise_trace_se": m.noise_trace_se,
                "noise_top": m.noise_top, "batch_size": m.batch_size, "examples": m.examples}
    return Diagnosis(measured, predicted, checked, traces, {**m.timings, **traces.get("timings", {})})
