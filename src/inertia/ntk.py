"""The neural tangent kernel of the two-layer ReLU network of docs/theory.md §4, and its rates.

For ``f(W, a, x) = (1/√m) Σ_r a_r relu(w_rᵀx)`` with ``a_r = ±1`` fixed, ``‖x_i‖ = 1`` and the loss
``½‖u − y‖²`` (Du, Zhai, Poczos & Singh, ICLR 2019):

- finite-width Gram matrix ``H_ij(W) = (x_iᵀx_j / m) Σ_r 1{w_rᵀx_i ≥ 0} 1{w_rᵀx_j ≥ 0}`` (`gram`);
- its infinite-width limit at ``w_r ~ N(0, I)``: ``H^∞_ij = x_iᵀx_j (π − θ_ij) / (2π)``, ``θ_ij`` the angle
  (`gram_infinity`; docs/theory.md §4, [num]: it matched neural-tangents to 4e-9). Each entry of ``H(0)`` is a mean
  of ``m`` independent bounded terms, so ``H(0) − H^∞ = O(1/√m)`` (measured in tests/test_ntk.py);
- ``λ₀ = λ_min(H^∞)`` and ``κ = λ_max/λ₀`` (`spectrum`).

Rates. While the Gram matrix stays near ``H(0)`` (wide networks), the residual ``r = u − y`` follows the
method on the quadratic with Hessian ``H``: ``r_{k+1} = r_k + λ(r_k − r_{k−1}) − ηH(r_k + a(r_k − r_{k−1}))``.
So `predicted_rate` is the spectral radius of the method's companion matrix over the eigenvalues of ``H``
(`inertia.stability.rate`): the per-step factor of ``‖u − y‖``; `kernel_residuals` runs the recursion itself.
`du_bound` is Du et al.'s Theorem 4.1 for GD, ``‖u(k) − y‖² ≤ (1 − ηλ₀/2)^k ‖u(0) − y‖²``, under its hypothesis
``η = O(λ₀/n²)``. HB (Wang, Lin & Abernethy 2021) and NAG (Liu et al., IJCAI 2024) are proved to converge at
``1 − Θ(1/√κ)``; their constants are [open] in docs/theory.md, so this module offers the linearised rate, which
the experiments check against training (experiments/ntk.py).
Liu et al.'s bounds, as far as they were read (`high_resolution_parameters`, `liu_exponent`, `liu_bound`;
docs/networks.md tags each part), come with the conditions their proofs need, checked on a run (`kernel_conditions`).

Learning rates here are in the paper's convention (loss ``½‖u − y‖²``, a sum). `inertia.nn.train` minimises
the mean ``(1/n) Σ ½(u_i − y_i)²``, so its ``h`` is ``n·η``.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike
from scipy.spatial import distance

from ._checks import InertiaError, check_positive
from .flows import shi_momentum
from .methods import HeavyBall, Method, require_linear
from .objectives import Quadratic
from .simulate import run
from .stability import rate

__all__ = ["accelerated_parameters", "du_bound", "du_width", "gram", "gram_drift", "gram_infinity", "kernel_residuals",
           "predicted_rate", "spectrum", "high_resolution_parameters", "liu_exponent", "liu_bound", "kernel_conditions"]


def _inputs(x: ArrayLike) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InertiaError(f"x must be an (n, d) matrix of examples; got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-4):
        raise InertiaError(f"x must have unit-norm rows (docs/theory.md §4); norms range over "
                           f"[{norms.min():.4g}, {norms.max():.4g}]")
    return x


def gram_infinity(x: ArrayLike) -> np.ndarray:
    """``H^∞_ij = x_iᵀx_j (π − θ_ij) / (2π)``, ``θ_ij`` the angle between ``x_i`` and ``x_j`` (Du et al. 2019, eq. 4).

    The angle is ``2 atan2(‖x̂_i − x̂_j‖, ‖x̂_i + x̂_j‖)`` between the normalised rows (Kahan, "How futile are
    mindless assessments of roundoff in floating-point computation?", 2006), accurate at every angle: ``arccos``
    of an inner product that rounds to ``1 − δ`` gives ``√(2δ)``, so float32 inputs (``δ ~ 1e-7``) would put an
    error of ~5e-5 on the diagonal ``‖x_i‖²/2`` (tests/test_ntk.py checks float32 inputs against a float64
    reference). Duplicate rows give identical rows of ``H``.
    """
    x = _inputs(x)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    angle = 2 * np.arctan2(distance.cdist(unit, unit), distance.cdist(unit, -unit))
    return (x @ x.T) * (np.pi - angle) / (2 * np.pi)


def gram(weight: ArrayLike, x: ArrayLike) -> np.ndarray:
    """The finite-width Gram matrix ``H_ij(W) = (x_iᵀx_j/m) Σ_r 1{w_rᵀx_i ≥ 0} 1{w_rᵀx_j ≥ 0}`` (Du et al. eq. 5).

    **Arguments:** ``weight``: the first layer ``W`` of shape ``(m, d)``; ``x``: unit-norm examples ``(n, d)``.
    """
    x = _inputs(x)
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 2 or weight.shape[1] != x.shape[1]:
        raise InertiaError(f"weight must have shape (m, {x.shape[1]}); got {weight.shape}")
    active = (weight @ x.T >= 0).astype(np.float64)  # (m, n)
    return (x @ x.T) * (active.T @ active) / weight.shape[0]


def gram_drift(initial: ArrayLike, current: ArrayLike, x: ArrayLike) -> float:
    """``‖H(t) − H(0)‖₂``: how far the Gram matrix moved during training (Du et al., Lemma 3.2)."""
    return float(np.linalg.norm(gram(current, x) - gram(initial, x), 2))


def spectrum(H: ArrayLike) -> dict:
    """``{"lambda0": λ_min, "lambda_max": λ_max, "kappa": λ_max/λ_min, "eigenvalues": all, ascending}``.

    **Raises:** `InertiaError` if ``H`` is not numerically positive definite (duplicate or parallel examples):
    ``λ_min ≤ n·ε·λ_max``, the round-off of an eigensolver on an exactly singular matrix.
    """
    eig = np.linalg.eigvalsh(np.asarray(H, dtype=np.float64))
    if eig[0] <= eig.size * np.finfo(np.float64).eps * abs(eig[-1]):
        raise InertiaError(f"H must be positive definite (distinct, non-parallel examples); λ_min = {eig[0]:.3g}")
    return {"lambda0": float(eig[0]), "lambda_max": float(eig[-1]), "kappa": float(eig[-1] / eig[0]),
            "eigenvalues": eig}


def predicted_rate(method: Method, H: ArrayLike) -> np.ndarray:
    """The kernel-regime rate of ``‖u − y‖`` per step: ``max_μ ρ(companion(η, λ, a; μ))`` over ``μ ∈ eig(H)``.

    ``method`` is in the paper's convention (loss ``½‖u − y‖²``). Its square is the factor of the loss.
    """
    return rate(require_linear(method, "ntk.predicted_rate"), spectrum(H)["eigenvalues"])


def kernel_residuals(method: Method, H: ArrayLike, residual: ArrayLike, record_at: ArrayLike) -> np.ndarray:
    """The kernel-regime residuals ``r_k = u(k) − y`` at the steps ``record_at``, shape ``(len(record_at), n)``.

    With the Gram matrix frozen at ``H``, the residual follows the method on ``½ rᵀHr`` from ``r_0 = residual``
    at rest: ``r_{k+1} = r_k + λ(r_k − r_{k−1}) − ηH(r_k + a(r_k − r_{k−1}))`` (module docstring; Du et al. 2019,
    §4, for GD). ``method`` is in the paper's convention (loss ``½‖u − y‖²``). Run by `inertia.run` on
    `inertia.Quadratic` ``(H)``, in the precision of ``residual``.
    """
    record_at = np.asarray(record_at, dtype=np.int64)
    trajectory = run(method, Quadratic(np.asarray(H)), residual, int(record_at.max()), record_at=record_at)
    return np.asarray(trajectory.x)


def du_bound(h: float, lambda0: float) -> float:
    """Du et al. (ICLR 2019), Thm 4.1: ``‖u(k) − y‖² ≤ (1 − ηλ₀/2)^k ‖u(0) − y‖²``; returns ``1 − ηλ₀/2``."""
    check_positive("h", h)
    check_positive("lambda0", lambda0)
    return 1.0 - h * lambda0 / 2


def du_width(n: int, lambda0: float, delta: float = 0.1) -> float:
    """``n⁶/(λ₀⁴δ³)``: the order of Du et al.'s width condition ``m = Ω(n⁶/(λ₀⁴δ³))`` (ICLR 2019, Thm 4.1), under
    which GD's linear rate holds with probability ``1 − δ``, with its unknown constant set to 1. A sufficient
    condition, far from necessary: experiments check the kernel conditions it exists to guarantee instead
    (`kernel_conditions`). Liu et al.'s width bound serves the same purpose; its constants are [open]."""
    check_positive("n", n)
    check_positive("lambda0", lambda0)
    if not 0 < delta < 1:
        raise InertiaError(f"delta must lie in (0, 1); got {delta}")
    return float(n) ** 6 / (float(lambda0) ** 4 * float(delta) ** 3)


def accelerated_parameters(H: ArrayLike, c: float = 0.5) -> dict:
    """``η = 1/λ_max(H)``, ``β = (1 − c√(ηλ₀))²``: for ``c ≤ 1`` every mode of heavy ball has complex roots, so
    heavy ball contracts at ``√β = 1 − c/√κ`` (the momentum-dominated regime of Wang, Lin & Abernethy 2021;
    their constants are [open] in docs/theory.md §4). Returns ``{"h", "momentum", "hb_rate"}``.

    In this regime NAG at the same ``(η, β)`` is faster than HB whenever its modes have complex roots, of modulus
    ``√(β(1 − ημ)) < √β``; at ``c = 1`` (Polyak's boundary) its slowest mode has real roots and it can be slower.
    Measured with `predicted_rate` on ``H^∞`` of 64 digits examples (κ = 53): at ``c = 0.5`` NAG 0.9225 against
    HB 0.9313, at ``c = 1`` NAG 0.9001 against HB 0.8627 (tests/test_ntk.py checks both against the roots).
    """
    check_positive("c", c)
    s = spectrum(H)
    h = 1.0 / s["lambda_max"]
    beta = (1.0 - c * np.sqrt(h * s["lambda0"])) ** 2
    return {"h": h, "momentum": beta, "hb_rate": float(rate(HeavyBall(h, beta), s["eigenvalues"]))}


# Liu, Tao, Li, Zhan, Wang & Pan (IJCAI 2024, arXiv 2208.03941). The theorems' text was not reached (docs/networks.md):
# the HB exponent 2 − √2 is second-hand; the parameter choice, the time unit and the NAG exponent are [open].
_LIU_HB_EXPONENT = 2 - np.sqrt(2)


def high_resolution_parameters(H: ArrayLike) -> dict:
    """The step and momentum of the high-resolution analysis on the residual dynamics with Hessian ``H`` [open]:
    ``s = 1/λ_max(H)`` (Shi et al.'s ``s ≤ 1/L``) and ``α = (1 − √(λ₀s))/(1 + √(λ₀s))`` with ``μ = λ₀``
    (`inertia.flows.shi_momentum`). Returns ``{"s", "momentum", "lambda0", "kappa"}``; ``√(λ₀s) = 1/√κ``.
    """
    sp = spectrum(H)
    s = 1.0 / sp["lambda_max"]
    return {"s": s, "momentum": float(shi_momentum(sp["lambda0"], s)), "lambda0": sp["lambda0"], "kappa": sp["kappa"]}


def liu_exponent(method: str) -> float:
    """The exponent ``ρ`` of Liu et al.'s bound ``‖u(k) − y‖² ≤ C e^{−ρ√λ₀ t}‖u(0) − y‖²``, ``t = k√s``.

    HB: ``ρ = 2 − √2`` (Liu et al., read second-hand, docs/networks.md). NAG: the paper's ``ρ*_NAG(α)`` exceeds
    HB's, but its formula was not reached [open]; this returns HB's exponent, the weakest value the paper allows.
    """
    if method not in ("HB", "NAG"):
        raise InertiaError(f"method must be 'HB' or 'NAG'; got {method!r}")
    return float(_LIU_HB_EXPONENT)


def liu_bound(method: str, lambda0: float, s: float, k: ArrayLike) -> np.ndarray:
    """``e^{−ρ√λ₀·k√s}``: the bound on ``‖u(k) − y‖²/‖u(0) − y‖²`` up to its constant, ``ρ = liu_exponent(method)``."""
    check_positive("lambda0", lambda0)
    check_positive("s", s)
    return np.exp(-liu_exponent(method) * np.sqrt(lambda0 * s) * np.asarray(k, float))


def kernel_conditions(w0: ArrayLike, x: ArrayLike, max_drift: float) -> dict:
    """The kernel-regime conditions the width bounds exist to guarantee, checked on a run instead of assumed.

    Du et al. (ICLR 2019, Lemmas 3.1-3.2) need ``‖H(0) − H^∞‖₂ ≤ λ₀/4`` and ``‖H(k) − H(0)‖₂ ≤ λ₀/4`` for all ``k``,
    so that ``λ_min(H(k)) ≥ λ₀/2``; Liu et al.'s width condition serves the same purpose [open: their constants].
    **Arguments:** ``w0``: the first layer at initialisation; ``x``: the unit-norm inputs; ``max_drift``: the largest
    `gram_drift` measured along the run. **Returns:** ``{"lambda0", "init_gap", "max_drift", "holds"}``, with
    ``λ₀ = λ_min(H^∞)``.
    """
    h_inf = gram_infinity(x)
    lam0 = spectrum(h_inf)["lambda0"]
    init_gap = float(np.linalg.norm(gram(w0, x) - h_inf, 2))
    return {"lambda0": lam0, "init_gap": init_gap, "max_drift": float(max_drift),
            "holds": bool(init_gap <= lam0 / 4 and max_drift <= lam0 / 4)}
