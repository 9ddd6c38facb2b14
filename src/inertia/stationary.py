"""Exact stationary statistics of linear methods on a quadratic with gradient noise.

On ``f = ½ xᵀHx`` with stochastic gradient ``g = Hx + ξ`` (``Cov ξ = C``, any distribution with finite
covariance) and an optional preconditioner ``P`` multiplying the gradient, the canonical method of
`inertia.methods` (``h``, ``λ``, ``a``) is linear in the state ``z = (x_n, v_n = x_n − x_{n−1})``:

    v_{n+1} = −hPH x_n + (λI − haPH) v_n − hP ξ_n,      x_{n+1} = x_n + v_{n+1},

i.e. ``z_{n+1} = A z_n + B ξ_n``. The stationary covariance solves the discrete Lyapunov equation
``Σ_z = A Σ_z Aᵀ + B C Bᵀ`` (Liu, Ziyin & Ueda, ICML 2021, whose Theorems 1–3 and 5 and Corollary 1 are
special cases; docs/theory.md §3.1). One solver covers GD, heavy ball and Nesterov in every convention.

The solver never forms a Kronecker product of ``d × d`` matrices. With ``M = P^{1/2} H P^{1/2} = U K Uᵀ``
and ``T = P^{1/2} U``, ``PH = T K T⁻¹``: in the coordinates ``x = T x̃`` every block of ``A`` is diagonal, so
the equation splits into one ``4 × 4`` linear system per pair of eigenvalues ``(k_i, k_j)``, scaled by
``C̃_ij`` with ``C̃ = Uᵀ P^{1/2} C P^{1/2} U``. The cost is one eigendecomposition plus ``O(d²)`` tiny solves;
when ``C̃`` is diagonal (``C`` commutes with ``PH``) only the ``d`` diagonal pairs are solved.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ._checks import InertiaError, check_finite, check_int, check_symmetric
from ._linalg import psd_sqrt
from .methods import Adam, HeavyBall, Method, require_linear
from .noise import minibatch_covariance, sampling_factor
from .stability import canonical_threshold, spectral_radius

__all__ = [
    "Stationary", "covariance", "covariance_ou", "training_loss", "test_loss", "state_space", "moments",
    "label_noise_covariance", "minibatch_regression_covariance", "self_consistent_covariance",
    "bayesian_learning_rate", "adam_frozen_covariance", "natural_gradient_covariance",
]


class Stationary(NamedTuple):
    """The stationary second moments of a linear method (all ``(d, d)``; the stationary mean is the minimum).

    **Fields:** ``parameters``: ``Cov x_n``; ``velocity``: ``Cov v_n`` with ``v_n = x_n − x_{n−1}`` (the
    practitioner momentum buffer of heavy ball is ``b_n = −v_n / h``, so its covariance is ``velocity / h²``);
    ``cross``: ``E[x_n v_nᵀ]``; ``lookahead``: ``Cov y_n`` with ``y_n = x_n + a v_n``, the iterates that
    practitioner (torch/optax) Nesterov returns; equal to ``parameters`` for GD and heavy ball.
    """

    parameters: np.ndarray
    velocity: np.ndarray
    cross: np.ndarray
    lookahead: np.ndarray


def _scalars(method: Method):
    method = require_linear(method, "the stationary statistics")
    if method.shape != ():
        raise InertiaError(f"method must have scalar hyper-parameters; this one is a grid of shape {method.shape}")
    return tuple(float(p) for p in (method.h, method.momentum, method.lookahead))


def _matrix(name: str, value, d: int | None, *, symmetric=True) -> np.ndarray:
    """A ``(d, d)`` matrix from a matrix, a ``(d,)`` diagonal or a scalar."""
    arr = np.asarray(value, dtype=np.float64)
    check_finite(name, arr)
    if arr.ndim == 0:
        if d is None:
            raise InertiaError(f"{name} must be a matrix or a vector when the dimension is not known")
        return arr * np.eye(d)
    if arr.ndim == 1:
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (d is not None and arr.shape[0] != d):
        want = f"({d}, {d}), ({d},) or a scalar" if d else "(d, d) or (d,)"
        raise InertiaError(f"{name} must have shape {want}; got {np.shape(value)}")
    if symmetric:
        check_symmetric(name, arr)
    return (arr + arr.T) / 2 if symmetric else arr


class _Eigensystem(NamedTuple):
    k: np.ndarray  # eigenvalues of PH
    T: np.ndarray  # PH = T diag(k) T⁻¹
    Ph: np.ndarray  # P^{1/2}
    U: np.ndarray


def _eigensystem(H, preconditioner) -> _Eigensystem:
    H = _matrix("H", H, None)
    d = H.shape[0]
    if preconditioner is None:
        Ph = np.eye(d)
    else:
        Ph = psd_sqrt("preconditioner", _matrix("preconditioner", preconditioner, d), definite=True)
    M = Ph @ H @ Ph
    if not np.any(M - np.diag(np.diag(M))):
        # Already diagonal (eigenvalues given, diagonal preconditioner): no eigendecomposition needed.
        order = np.argsort(np.diag(M))
        U = np.eye(d)[:, order]
        return _Eigensystem(np.diag(M)[order], Ph @ U, Ph, U)
    k, U = np.linalg.eigh(M)
    return _Eigensystem(k, Ph @ U, Ph, U)


def _check_stationary(method: Method, k: np.ndarray) -> None:
    h, lam, a = _scalars(method)
    s_max = float(canonical_threshold(method))
    if k.min() <= 0:
        raise InertiaError(
            f"no stationary state: the (preconditioned) Hessian has eigenvalue {k.min():.3g} <= 0, so the noise "
            "accumulates along a flat or ascending direction; a stationary state needs every eigenvalue > 0")
    radius = spectral_radius(method, k)
    if np.any(radius >= 1):
        raise InertiaError(
            f"no stationary state: h·k_max = {h * k.max():.6g} reaches the stability threshold "
            f"2(1+λ)/(1+2a) = {s_max:.6g}, i.e. the learning rate h must be < {s_max / k.max():.6g} "
            f"(spectral radius {radius.max():.6g} >= 1)")


def _pair_solutions(method: Method, ki: np.ndarray, kj: np.ndarray) -> np.ndarray:
    """For eigenvalue pairs, the 2×2 ``G`` with ``G = A_i G A_jᵀ + b bᵀ``, ``b = (−h, −h)``; shape ``(..., 2, 2)``."""
    h, lam, a = _scalars(method)

    def block(k):
        s = h * k
        top = np.stack([1 - s, lam - a * s], -1)
        bottom = np.stack([-s, lam - a * s], -1)
        return np.stack([top, bottom], -2)

    Ai, Aj = block(ki), block(kj)
    # Row-major vec: vec(A_i G A_jᵀ) = (A_i ⊗ A_j) vec(G); here a 4 × 4 matrix per pair only.
    kron = np.einsum("...ab,...cd->...acbd", Ai, Aj).reshape(ki.shape + (4, 4))
    rhs = np.full(ki.shape + (4, 1), h * h)
    return np.linalg.solve(np.eye(4) - kron, rhs).reshape(ki.shape + (2, 2))


def _noise_in_eigenbasis(C, system: _Eigensystem) -> np.ndarray:
    d = system.k.size
    C = _matrix("C", C, d)
    try:  # a Cholesky factorisation is far cheaper than eigenvalues at large d
        np.linalg.cholesky(C + 1e-10 * max(1.0, np.abs(C).max()) * np.eye(d))
    except np.linalg.LinAlgError:
        raise InertiaError("C must be positive semi-definite (a covariance)") from None
    M = system.Ph @ system.U
    return M.T @ C @ M


def covariance(method: Method, H, C, preconditioner=None, *, block_rows: int = 128) -> Stationary:
    """The exact stationary covariance of ``method`` on ``½xᵀHx`` with gradient-noise covariance ``C``.

    Solves ``Σ_z = A Σ_z Aᵀ + B C Bᵀ`` for the state ``(x_n, x_n − x_{n−1})`` of the canonical form
    (module docstring). Liu, Ziyin & Ueda (ICML 2021): Theorem 1 (SGD), Theorem 2 (SGDM), Theorem 3 (matrix
    learning rate ``hP``) and Corollary 1 are special cases, checked in tests/test_stationary.py to 1e-10.

    **Arguments:**
    - ``method``: a `GD`, `HeavyBall` or `Nesterov` with scalar hyper-parameters (any convention).
    - ``H``: the Hessian, ``(d, d)`` symmetric or ``(d,)`` eigenvalues of a diagonal Hessian.
    - ``C``: the noise covariance, ``(d, d)``, ``(d,)`` diagonal or a scalar; need not commute with ``H``.
    - ``preconditioner``: ``P`` (symmetric positive definite, ``(d, d)``, ``(d,)`` or scalar); the step uses ``hPg``.
    - ``block_rows``: eigenvalue rows solved at once (memory ``≈ 200·block_rows·d`` bytes).

    **Returns:** a `Stationary` (``parameters``, ``velocity``, ``cross``, ``lookahead``).

    **Raises:** `InertiaError` when no stationary state exists (``h·k_max ≥ 2(1+λ)/(1+2a)`` or an
    eigenvalue of ``PH`` ≤ 0), with the threshold on the learning rate.
    """
    system = _eigensystem(H, preconditioner)
    _check_stationary(method, system.k)
    Ct = _noise_in_eigenbasis(C, system)
    k, d = system.k, system.k.size
    T = system.T
    pairs = ((0, 0), (0, 1), (1, 1))  # blocks xx, xv, vv of Σ_z (vx is the transpose of xv)
    if np.abs(Ct - np.diag(np.diag(Ct))).max() <= 1e-14 * max(np.abs(Ct).max(), 1e-300):
        # C commutes with PH: only the d diagonal pairs contribute.
        G = _pair_solutions(method, k, k)
        return _assemble(method, *((T * (np.diag(Ct) * G[:, r, c])) @ T.T for r, c in pairs))
    check_int("block_rows", block_rows, 1)
    blocks = [np.empty((d, d)) for _ in pairs]
    for start in range(0, d, block_rows):
        rows = slice(start, min(start + block_rows, d))
        ki, kj = np.meshgrid(k[rows], k, indexing="ij")
        G = _pair_solutions(method, ki, kj)
        for block, (r, c) in zip(blocks, pairs):
            block[rows] = Ct[rows] * G[..., r, c]
    return _assemble(method, *(T @ block @ T.T for block in blocks))


def _assemble(method, xx, xv, vv) -> Stationary:
    xx, vv = (xx + xx.T) / 2, (vv + vv.T) / 2
    a = float(method.lookahead)
    look = xx + a * (xv + xv.T) + a * a * vv
    return Stationary(xx, vv, xv, (look + look.T) / 2)


def covariance_ou(method: Method, H, C, preconditioner=None) -> np.ndarray:
    """The Ornstein–Uhlenbeck (continuous-time) prediction: ``PHΣ + ΣHP = h/(1−λ) · PCP``.

    Liu, Ziyin & Ueda (ICML 2021), eq. for the SDE limit (``ΣK + KΣ = λ/(1−μ) C``; docs/theory.md §3.1). The
    effective learning rate ``h/(1−λ)`` is the same in every convention; valid as ``h → 0``.
    """
    h, lam, _ = _scalars(method)
    system = _eigensystem(H, preconditioner)
    if system.k[0] <= 0:
        raise InertiaError(f"no stationary state: the (preconditioned) Hessian has eigenvalue {system.k[0]:.3g} <= 0")
    Ct = _noise_in_eigenbasis(C, system)
    St = h / (1 - lam) * Ct / (system.k[:, None] + system.k[None, :])
    S = system.T @ St @ system.T.T
    return (S + S.T) / 2


def training_loss(method: Method, H, C, preconditioner=None) -> float:
    """The expected stationary excess training loss ``½ Tr[HΣ]`` (Liu, Ziyin & Ueda 2021, Theorem 5 for SGDM:
    ``λ/(4(1−μ)) Tr[(I − λK/(2(1+μ)))⁻¹ C]``, checked in tests)."""
    S = covariance(method, H, C, preconditioner).parameters
    return 0.5 * float(np.sum(_matrix("H", H, None) * S))


def test_loss(parameters_cov, input_cov, *, shift=None, label_variance: float = 0.0) -> float:
    """The expected test loss of linear regression ``½E(wᵀx − y)²`` over the stationary distribution:
    ``½Tr[A(Σ + δδᵀ)] + σ²/2``, where ``A = E xxᵀ`` on the test distribution, ``δ`` the offset of the
    stationary mean (the training minimum) from the teacher, ``σ²`` the label-noise variance
    (Ziyin, Liu, Mori & Ueda, ICLR 2022, Sec. 4).
    """
    S = np.asarray(parameters_cov, dtype=float)
    A = _matrix("input_cov", input_cov, S.shape[0])
    delta = np.zeros(S.shape[0]) if shift is None else np.asarray(shift, dtype=float)
    return 0.5 * float(np.sum(A * S) + delta @ A @ delta + label_variance)


def state_space(method: Method, H, preconditioner=None) -> tuple[np.ndarray, np.ndarray]:
    """The dense ``(A, B)`` of ``z_{n+1} = A z_n + B ξ_n`` with ``z = (x_n, x_n − x_{n−1})`` (module docstring).

    For small ``d``: transient moments (`moments`) and cross-checks. `covariance` never forms them.
    """
    h, lam, a = _scalars(method)
    H = _matrix("H", H, None)
    d = H.shape[0]
    P = np.eye(d) if preconditioner is None else _matrix("preconditioner", preconditioner, d)
    I = np.eye(d)
    row_v = np.hstack([-h * P @ H, lam * I - h * a * P @ H])
    A = np.vstack([np.hstack([I, np.zeros((d, d))]) + row_v, row_v])
    B = np.vstack([-h * P, -h * P])
    return A, B


def moments(method: Method, H, C, x0, steps: int, *, v0=None, preconditioner=None):
    """Exact mean and covariance of ``x_n`` for ``n = 0 … steps`` from a deterministic start.

    Iterates ``m ← A m`` and ``Σ ← AΣAᵀ + BCBᵀ`` (Liu, Ziyin & Ueda 2021, proof of Theorem 7). Exact for any
    noise distribution with covariance ``C``.

    **Returns:** ``(mean (steps+1, d), cov (steps+1, d, d))``.
    """
    check_int("steps", steps, 0)
    A, B = state_space(method, H, preconditioner)
    d = A.shape[0] // 2
    C = _matrix("C", C, d)
    Q = B @ C @ B.T
    z = np.concatenate([np.asarray(x0, float), np.zeros(d) if v0 is None else np.asarray(v0, float)])
    S = np.zeros((2 * d, 2 * d))
    means, covs = [z[:d]], [S[:d, :d]]
    for _ in range(steps):
        z, S = A @ z, A @ S @ A.T + Q
        means.append(z[:d])
        covs.append(S[:d, :d])
    return np.array(means), np.array(covs)


def label_noise_covariance(method: Method, input_cov, label_variance: float, batch_size: int,
                           preconditioner=None) -> np.ndarray:
    """Stationary ``Cov w`` of SGD/SGDM on online linear regression with label noise (closed form).

    Ziyin, Liu, Mori & Ueda (ICLR 2022), Theorem 2 with momentum μ (docs/theory.md §3.3): with ``x ~ N(0, A)``,
    ``y = uᵀx + ε``, ``Var ε = σ²``, batch ``S`` and learning-rate matrix ``Λ = hP`` commuting with ``A``,

        Σ = (σ²/S)(1 + κ/S) Λ G⁻¹,   G = 2(1−μ)I − ((1−μ)/(1+μ) + 1/S) ΛA,
        κ = Tr[ΛAG⁻¹] / (1 − Tr[ΛAG⁻¹]/S).

    Heavy ball only (``a = 0``). Checked in tests against the self-consistent Lyapunov solution with the
    exact state-dependent noise ``C(w) = (AΣA + (Tr[AΣ] + σ²)A)/S`` and against Monte Carlo.
    """
    h, mu, a = _scalars(method)
    if a != 0:
        raise InertiaError("label_noise_covariance covers GD and heavy ball (lookahead a = 0); use "
                           "minibatch-style self-consistency via covariance for Nesterov")
    check_int("batch_size", batch_size, 1)
    A = _matrix("input_cov", input_cov, None)
    d = A.shape[0]
    Lam = h * (np.eye(d) if preconditioner is None else _matrix("preconditioner", preconditioner, d))
    if not np.allclose(Lam @ A, A @ Lam, atol=1e-12 * np.abs(A).max()):
        raise InertiaError("the learning-rate matrix must commute with input_cov (Ziyin et al. 2022, Thm 2)")
    S = batch_size
    G = 2 * (1 - mu) * np.eye(d) - ((1 - mu) / (1 + mu) + 1 / S) * Lam @ A
    LAG = Lam @ A @ np.linalg.inv(G)
    trace = np.trace(LAG)
    if np.linalg.eigvals(G).real.min() <= 0 or trace >= S:
        raise InertiaError("no stationary state: the learning rate is beyond the label-noise stability limit "
                           f"(G must be positive definite and Tr[ΛAG⁻¹] = {trace:.4g} < S = {S})")
    kappa = trace / (1 - trace / S)
    Sigma = label_variance / S * (1 + kappa / S) * Lam @ np.linalg.inv(G)
    return (Sigma + Sigma.T) / 2


def self_consistent_covariance(method: Method, H, noise_of: Callable[[np.ndarray], np.ndarray], C0,
                               preconditioner=None, tol: float = 1e-13, max_iter: int = 10_000) -> np.ndarray:
    """The stationary ``Σ`` under state-dependent noise: ``Σ = covariance(method, H, C0 + noise_of(Σ))``.

    For minibatch noise the covariance grows with the distance from the minimum (Ziyin, Liu, Mori & Ueda, ICLR
    2022, Sec. 3); the Lyapunov equation then holds with the expected noise, solved by fixed-point iteration (linear,
    contracting when a stationary state exists). Raises `InertiaError` when the iteration diverges.
    """
    Sigma = covariance(method, H, C0, preconditioner).parameters
    # a diverging iteration overflows on its way to the divergence test, which reports it: no floating-point warnings
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(max_iter):
            noise = C0 + noise_of(Sigma)
            if not np.all(np.isfinite(noise)):
                break
            new = covariance(method, H, noise, preconditioner).parameters
            if np.abs(new - Sigma).max() <= tol * np.abs(new).max():
                return new
            if not np.all(np.isfinite(new)) or np.abs(new).max() > 1e12 * max(1.0, np.abs(Sigma).max()):
                break
            Sigma = new
    raise InertiaError("no stationary state: the state-dependent noise grows faster than the dynamics contract "
                       "(the self-consistent iteration diverged); lower the learning rate")


def minibatch_regression_covariance(method: Method, inputs, targets, batch_size: int, *, replace: bool = True,
                                    preconditioner=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact stationary ``Cov w`` of minibatch SGD/SGDM on least squares ``(1/2N) Σ (aᵢᵀw − yᵢ)²``.

    The minibatch noise depends on the state: with ``r = w − ŵ`` (``ŵ`` the least-squares minimum),
    per-example gradients are ``gᵢ(w) = aᵢaᵢᵀ r + gᵢ(ŵ)``, so ``E C(w) = c·[F(ŵ) + (1/N) Σ (aᵢᵀΣaᵢ) aᵢaᵢᵀ − KΣK]``
    with ``c = 1/S`` (with replacement) or ``(N−S)/(S(N−1))`` (without) (Ziyin, Liu, Mori & Ueda, ICLR 2022,
    Sec. 3; docs/theory.md §3.3). Noise is uncorrelated with the state, so the Lyapunov equation holds with ``E C(w)``
    and is solved self-consistently.

    **Returns:** ``(Σ, ŵ)``.
    """
    X = np.asarray(inputs, dtype=float)
    y = np.asarray(targets, dtype=float)
    n = X.shape[0]
    check_int("batch_size", batch_size, 1)
    if batch_size > n:
        raise InertiaError(f"batch_size must lie in [1, {n}]; got {batch_size}")
    K = X.T @ X / n
    w_hat = np.linalg.lstsq(X, y, rcond=None)[0]
    at_minimum = minibatch_covariance(X * (X @ w_hat - y)[:, None], batch_size, replace)
    c = sampling_factor(n, batch_size, replace)

    def state_noise(Sigma):
        q = np.einsum("ij,jk,ik->i", X, Sigma, X)
        return c * ((X * q[:, None]).T @ X / n - K @ Sigma @ K)

    return self_consistent_covariance(method, K, state_noise, at_minimum, preconditioner), w_hat


def bayesian_learning_rate(n_examples: int, batch_size: int, momentum: float = 0.0, *, continuous: bool = False):
    """The learning rate ``λ*`` at which preconditioned SGD(M) samples the posterior of a quadratic problem.

    With ``N`` examples the posterior of ``½ N wᵀKw`` (unit noise temperature) has covariance ``(NK)⁻¹``; minibatch
    noise of size ``S`` near the minimum is ``C = K/S``. With the preconditioner ``Λ = λK⁻¹`` and momentum ``μ``
    the exact stationary covariance (Theorem 3 of Liu, Ziyin & Ueda, ICML 2021; `covariance` with
    ``preconditioner=K⁻¹``) equals ``(NK)⁻¹`` at ``λ* = 2(1−μ²)S / ((1+μ)N + (1−μ)S)``, ``2S/(N+S)`` at ``μ = 0``.
    The continuous-time (OU) prediction gives ``2(1−μ)S/N`` (``continuous=True``). Derived here from the
    discrete Lyapunov solution (docs/stochastic.md; the paper's own statement [open]); checked against the solver
    in tests/test_stationary.py.
    """
    check_int("n_examples", n_examples, 1)
    check_int("batch_size", batch_size, 1)
    if not 0 <= momentum < 1:
        raise InertiaError(f"momentum must be in [0, 1), got {momentum}")
    N, S, mu = float(n_examples), float(batch_size), float(momentum)
    if continuous:
        return 2 * (1 - mu) * S / N
    return 2 * (1 - mu**2) * S / ((1 + mu) * N + (1 - mu) * S)


def adam_frozen_covariance(method: Adam, H, C, tol: float = 1e-12, max_iter: int = 1000) -> np.ndarray:
    """Stationary ``Cov x`` of `Adam` near a minimum with its preconditioner frozen at its stationary value.

    Near a minimum ``v`` averages ``g²`` over ``1/(1−β₂)`` steps and is nearly constant, so Adam is heavy ball in
    EMA form (``m ← β₁m + (1−β₁)g``, lr) with the diagonal preconditioner ``P = diag(1/(√v + ε))``,
    ``v = diag(E[ggᵀ]) = diag(C + HΣH)``: Theorem 3 of Liu, Ziyin & Ueda (ICML 2021) with ``Λ = lr·P``, solved
    self-consistently by fixed-point iteration. The approximation (the paper's for Adam: [open], docs/stochastic.md)
    ignores the fluctuations of ``v`` and the bias corrections; it breaks when ``1 − β₂`` is not small or when
    ``HΣH`` is not small against ``C``.
    """
    if not isinstance(method, Adam):
        raise InertiaError(f"method must be an Adam, got {type(method).__name__}")
    lr, b1, eps = (float(np.asarray(p)) for p in (method.lr, method.b1, method.eps))
    heavy_ball = HeavyBall.from_normalised(lr, b1)
    d = np.atleast_1d(np.asarray(H, float)).shape[0]
    H2 = _matrix("H", H, d)
    C2 = _matrix("C", C, d)
    Sigma = np.zeros((d, d))
    for _ in range(max_iter):
        v = np.diag(C2 + H2 @ Sigma @ H2)
        new = covariance(heavy_ball, H2, C2, preconditioner=1 / (np.sqrt(v) + eps)).parameters
        if np.abs(new - Sigma).max() <= tol * np.abs(new).max():
            return new
        Sigma = new
    raise InertiaError("adam_frozen_covariance: the fixed-point iteration did not converge; lower lr")


def natural_gradient_covariance(lr: float, momentum: float, H, C) -> tuple[np.ndarray, np.ndarray]:
    """Stationary ``Cov x`` of natural-gradient SGD(M) (practitioner heavy ball) and its preconditioner.

    With the Fisher taken as the stationary covariance of the full-batch gradient, ``J = HΣH`` (noise excluded),
    and ``Λ = lr·J⁻¹``, the fixed point of Theorem 3 (Liu, Ziyin & Ueda, ICML 2021; docs/theory.md §3.2) is
    ``Σ = ½H⁻¹[Q + lr/(2(1+μ))]``, ``Q = (lr²/(4(1+μ)²) + 2lr/(1−μ)·CH⁻¹)^{1/2}``. Needs ``[H, C] = 0``. That this is
    the paper's Fisher is [open] (docs/stochastic.md). **Returns:** ``(Σ, P = J⁻¹)``.
    """
    d = np.atleast_1d(np.asarray(H, float)).shape[0]
    H2, C2 = _matrix("H", H, d), _matrix("C", C, d)
    if not np.allclose(H2 @ C2, C2 @ H2, atol=1e-12 * max(1.0, np.abs(H2 @ C2).max())):
        raise InertiaError("natural_gradient_covariance needs H and C to commute ([H, C] = 0)")
    if not 0 <= momentum < 1:
        raise InertiaError(f"momentum must be in [0, 1), got {momentum}")
    k, U = np.linalg.eigh(H2)
    if k[0] <= 0:
        raise InertiaError(f"H must be positive definite; smallest eigenvalue {k[0]:.3g}")
    c = np.einsum("ij,ik,kj->j", U, C2, U)  # C in H's eigenbasis (diagonal since they commute)
    a = lr / (2 * (1 + momentum))
    sigma = 0.5 / k * (np.sqrt(a * a + 2 * lr / (1 - momentum) * c / k) + a)
    Sigma = (U * sigma) @ U.T
    return Sigma, (U / (k * k * sigma)) @ U.T
