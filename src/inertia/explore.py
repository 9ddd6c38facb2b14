"""The interactive explorer behind ``inertia explore``: momentum dynamics on the library's own computations.

Every number on the page comes from inertia: trajectories from `inertia.run` (and `inertia.play` for the game),
rates and thresholds from `inertia.stability`, continuous-time overlays from `inertia.flows.solve`, stationary
covariances from `inertia.stationary`. The page itself only draws (Bokeh); it never re-implements an update rule.

Two halves, kept apart:

- `compute` turns one `Settings` into the arrays of every panel (no Bokeh involved; tests call it directly);
- `make_document` builds the Bokeh page and redraws it from `compute` whenever a widget moves; `serve` runs it
  in a Bokeh server on 127.0.0.1; `write_static` precomputes a coarse grid of settings into one self-contained
  HTML file whose widgets only select among stored results.

The panels follow Goh, "Why Momentum Really Works" (Distill, 2017): the trajectory on the contours, the rate map
over (lr, β) with its stability boundary, and the error along each eigen-direction; beyond it, the stationary
cloud under gradient noise against the exact (discrete Lyapunov) and the continuous-time (OU) covariances
(Liu, Ziyin & Ueda, ICML 2021), and the loss next to plain GD at the matched effective rate ``lr/(1−β)``
(Wang et al.'s point that SGDM and SGD at the same effective rate follow each other).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, NamedTuple

import numpy as np

from . import stability
from ._checks import InertiaError
from .methods import GD, QHM, AbstractMethod, Adam, HeavyBall, Method, Nesterov, effective_lr
from .objectives import Himmelblau, Objective, Quadratic, Rosenbrock

__all__ = ["Settings", "METHOD_CHOICES", "LANDSCAPES", "compute", "make_document", "serve", "write_static"]


class MethodChoice(NamedTuple):
    """One entry of the method menu.

    ``build(lr=…, **sliders)`` makes the method from the learning rate and the `Settings` fields named in
    ``sliders`` (``"momentum"``, ``"nu"``, ``"b2"``). ``theory(settings)`` is its family in the ``(lr, β)`` plane
    for `inertia.stability` (a name of ``stability.METHODS`` or a constructor): rate map, thresholds, optimum. It is
    ``None`` for a method without linear theory, whose theory panels are switched off with a one-line reason.
    """

    build: Callable[..., AbstractMethod]
    sliders: tuple[str, ...]
    theory: Callable[["Settings"], stability.Family] | None


@dataclasses.dataclass(frozen=True)
class QHMFamily:
    """QHM at a fixed ν as a constructor ``(lr, β) -> Method`` for `inertia.stability` (hashable by value, so the
    optimum is cached per ν)."""

    nu: float

    def __call__(self, lr, momentum) -> Method:
        return QHM(lr, momentum, self.nu)


#: The method menu, one line per method, in the practitioner convention (torch.optim.SGD / optax.sgd; QHM in
#: Ma & Yarats' (α, β, ν); Adam in optax's (lr, β₁, β₂), ε = 1e-8).
METHOD_CHOICES: dict[str, MethodChoice] = {
    "GD": MethodChoice(lambda lr: GD(lr), (), lambda settings: "gd"),
    "HeavyBall": MethodChoice(HeavyBall.from_practitioner, ("momentum",), lambda settings: "heavy-ball"),
    "Nesterov": MethodChoice(Nesterov.from_practitioner, ("momentum",), lambda settings: "nesterov"),
    "QHM": MethodChoice(QHM, ("momentum", "nu"), lambda settings: QHMFamily(settings.nu)),
    "Adam": MethodChoice(lambda lr, momentum, b2: Adam(lr, momentum, b2), ("momentum", "b2"), None),
}
#: The methods of the static page: the (lr, β) grid is all they need.
STATIC_METHODS = ("GD", "HeavyBall", "Nesterov")


class Landscape(NamedTuple):
    """One entry of the objective menu. ``build(kappa, rotation_degrees)`` gives the objective (or ``None`` for
    the game); ``minimum`` is where the eigen-directions and local thresholds are taken; ``lr`` is the slider's
    ``(start, end, step, default)``."""

    build: Callable[[float, float], Objective | None]
    minimum: tuple[float, float]
    start: tuple[float, float]
    view: tuple[float, float, float, float]
    lr: tuple[float, float, float, float]


def quadratic(kappa: float, rotation_degrees: float) -> Quadratic:
    """``½ xᵀHx`` with eigenvalues ``1/κ`` and ``1`` along axes turned by ``rotation_degrees``."""
    if not np.isfinite(kappa) or kappa < 1:
        raise InertiaError(f"condition number must lie in [1, inf); got {kappa:g}")
    turn = np.deg2rad(rotation_degrees)
    R = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return Quadratic(R @ np.diag([1 / kappa, 1.0]) @ R.T)


def bilinear_loss(phi, theta):
    """The zero-sum bilinear game ``L(φ, θ) = φθ``: φ minimises, θ maximises; equilibrium at the origin."""
    return phi[0] * theta[0]


LANDSCAPES: dict[str, Landscape] = {
    "quadratic": Landscape(quadratic, (0.0, 0.0), (-2.5, 1.5), (-3, 3, -3, 3), (0.01, 4.5, 0.01, 1.0)),
    "Rosenbrock": Landscape(lambda *_: Rosenbrock(), (1.0, 1.0), (-1.2, 1.0), (-2, 2, -1, 3),
                            (1e-5, 3e-3, 1e-5, 1e-3)),
    "Himmelblau": Landscape(lambda *_: Himmelblau(), (3.0, 2.0), (-0.5, -0.5), (-5, 5, -5, 5),
                            (1e-4, 4e-2, 1e-4, 5e-3)),
    "bilinear game": Landscape(lambda *_: None, (0.0, 0.0), (1.0, 1.0), (-3, 3, -3, 3), (0.01, 1.0, 0.01, 0.1)),
}

#: Overlays a user can switch on, in the order of the check boxes.
OVERLAYS = ("gradient flow", "modified-loss flow", "principal flow (GD)", "GD at matched effective rate")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the page depends on. ``lr`` and ``momentum`` are in the practitioner convention (QHM: α and β;
    Adam: lr and β₁); ``nu`` is QHM's ν, ``b2`` Adam's β₂."""

    method: str = "HeavyBall"
    objective: str = "quadratic"
    lr: float = 1.0
    momentum: float = 0.5
    nu: float = 0.7
    b2: float = 0.999
    kappa: float = 10.0
    rotation: float = 30.0
    start: tuple[float, float] = (-2.5, 1.5)
    steps: int = 100
    noise: float = 0.3
    overlays: tuple[str, ...] = ()
    seed: int = 0


class Panels(NamedTuple):
    """The arrays of every panel, plus the messages to show. Theory panels hold ``None`` where they do not apply."""

    trajectory: dict
    loss: dict
    matched: dict | None
    flows: dict
    eigen: dict | None
    rates: dict | None
    noise: dict | None
    canonical: dict | None
    messages: list


def build_method(settings: Settings) -> AbstractMethod:
    """The method of the settings, from its practitioner hyper-parameters."""
    if settings.method not in METHOD_CHOICES:
        raise InertiaError(f"method must be one of {', '.join(METHOD_CHOICES)}; got {settings.method!r}")
    choice = METHOD_CHOICES[settings.method]
    return choice.build(lr=settings.lr, **{name: getattr(settings, name) for name in choice.sliders})


def theory_family(settings: Settings) -> stability.Family | None:
    """The method's family in the (lr, β) plane for `inertia.stability`; ``None`` without linear theory."""
    theory = METHOD_CHOICES[settings.method].theory
    return None if theory is None else theory(settings)


def build_objective(settings: Settings) -> Objective | None:
    """The objective of the settings (``None`` for the bilinear game)."""
    if settings.objective not in LANDSCAPES:
        raise InertiaError(f"objective must be one of {', '.join(LANDSCAPES)}; got {settings.objective!r}")
    return LANDSCAPES[settings.objective].build(settings.kappa, settings.rotation)


def _check_settings(settings: Settings) -> None:
    if isinstance(settings.steps, bool) or not isinstance(settings.steps, int) or not 1 <= settings.steps <= 5000:
        raise InertiaError(f"steps must be an integer in [1, 5000]; got {settings.steps!r}")
    if len(settings.start) != 2 or not np.all(np.isfinite(settings.start)):
        raise InertiaError(f"start must be two finite numbers x, y; got {settings.start!r}")
    if not np.isfinite(settings.noise) or settings.noise < 0:
        raise InertiaError(f"noise must lie in [0, inf); got {settings.noise:g}")


def local_hessian(settings: Settings) -> np.ndarray:
    """The Hessian at the landscape's minimum: the quadratic's ``H``, or the local quadratic model elsewhere."""
    return _hessian_at_minimum(settings.objective, settings.kappa, settings.rotation).copy()


@functools.lru_cache(maxsize=64)
def _hessian_at_minimum(objective: str, kappa: float, rotation: float) -> np.ndarray:
    landscape = LANDSCAPES[objective]
    import jax.numpy as jnp

    built = landscape.build(kappa, rotation)
    if built is None:
        raise InertiaError(f"{objective} is a two-player game: it has no single Hessian")
    return np.asarray(built.hessian(jnp.asarray(landscape.minimum, float)))


def compute(settings: Settings) -> Panels:
    """Every panel's arrays for one setting. Raises `InertiaError` for bad settings (the page shows the message)."""
    _check_settings(settings)
    method = build_method(settings)
    objective = build_objective(settings)
    if objective is None:
        return _game_panels(settings, method)
    traj = _run(method, objective, settings)
    run_panels = trajectory_panels(settings, method, objective, traj.x, traj.loss, int(traj.diverged_at))
    if not isinstance(method, Method):
        return _nonlinear_panels(settings, method, run_panels)
    H = local_hessian(settings)
    messages = run_panels["messages"]
    matched = None
    if OVERLAYS[3] in settings.overlays:
        gd = _run(GD(float(effective_lr(method))), objective, settings)
        matched = {"step": np.asarray(gd.steps), "loss": _excess(settings, objective, gd.loss)}
        if bool(gd.diverged):
            messages.append(f"GD at the matched rate lr/(1−β) = {float(gd.method.h):.4g} diverges at step "
                            f"{int(gd.diverged_at)}: the match holds for small rates only.")
    return Panels(run_panels["trajectory"], run_panels["loss"], matched,
                  _flows(settings, method, objective, np.asarray(traj.steps), messages), run_panels["eigen"],
                  rate_panel(settings, method, np.linalg.eigvalsh(H), messages),
                  _noise_panel(settings, method, objective, H, messages), _canonical(method), messages)


def _nonlinear_panels(settings: Settings, method: AbstractMethod, run_panels: dict) -> Panels:
    """A method without linear theory (Adam): its trajectory and loss, and one line saying why the rest is off."""
    messages = run_panels["messages"] + [
        f"Theory panels off: {method.name} is not a linear two-step method (h, λ, a), so it has no rate map, "
        "flows, eigen-direction split, stationary ellipse or matched effective rate."]
    return Panels(run_panels["trajectory"], run_panels["loss"], None, {}, None, None, None, None, messages)


def trajectory_panels(settings: Settings, method: AbstractMethod, objective: Objective, x, loss,
                      diverged_at: int) -> dict:
    """The panels of one recorded run (every step from 0): trajectory, excess loss, error per eigen-direction
    (eigenvectors of the Hessian at the minimum) and the stability message."""
    x = np.asarray(x)
    steps = np.arange(x.shape[0])
    eigenvalues, vectors = np.linalg.eigh(local_hessian(settings))
    error = (x - _minimum(settings)) @ vectors
    return {"trajectory": {"x": x[:, 0], "y": x[:, 1], "step": steps},
            "loss": {"step": steps, "loss": _excess(settings, objective, loss)},
            "eigen": {"step": steps, **{f"e{i}": _positive(np.abs(error[:, i])) for i in range(2)}},
            "messages": _stability_messages(settings, method, diverged_at, eigenvalues)}


def _excess(settings: Settings, objective: Objective, loss) -> np.ndarray:
    import jax.numpy as jnp

    return _positive(np.asarray(loss) - float(objective.loss(jnp.asarray(_minimum(settings)))))


def _minimum(settings: Settings) -> np.ndarray:
    return np.asarray(LANDSCAPES[settings.objective].minimum, float)


def _positive(values: np.ndarray) -> np.ndarray:
    """Values for a log axis: non-positive or non-finite entries become NaN (a gap in the line)."""
    values = np.asarray(values, float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _run(method: AbstractMethod, objective: Objective, settings: Settings):
    from .simulate import run

    return run(method, objective, np.asarray(settings.start, float), settings.steps, record_every=1)


def _canonical(method: Method) -> dict:
    return {name: float(getattr(method, field)) for name, field in
            (("h", "h"), ("λ", "momentum"), ("a", "lookahead"))}


def _stability_messages(settings, method, diverged_at: int, eigenvalues) -> list[str]:
    """The divergence message: past the threshold of `inertia.stability` (at the minimum's Hessian), or diverged."""
    theory = theory_family(settings)
    if theory is not None and eigenvalues.max() > 0:
        beta = float(method.momentum)
        limit = stability.closed_form_threshold(theory, beta, float(eigenvalues.max()))
        where = "" if settings.objective == "quadratic" else " (local quadratic model at the minimum)"
        if settings.lr >= limit:
            ending = f"it diverged at step {diverged_at}" if diverged_at >= 0 else "its error grows"
            return [f"Divergence: lr = {settings.lr:g} is beyond the stability threshold lr < {limit:.4g} "
                    f"for β = {beta:g}{where}; {ending}."]
    if diverged_at >= 0:
        return [f"Divergence: the run left every bound at step {diverged_at}."]
    return []


def _flows(settings, method, objective, steps, messages) -> dict:
    """The continuous-time overlays at the model times of the recorded steps (`inertia.flows.solve`)."""
    from .flows import GradientFlow, ModifiedFlow, PrincipalFlow, solve

    models = {OVERLAYS[0]: GradientFlow, OVERLAYS[1]: ModifiedFlow, OVERLAYS[2]: PrincipalFlow}
    paths = {}
    for name, model_class in models.items():
        if name not in settings.overlays:
            continue
        if model_class is PrincipalFlow and not _is_gd(method):
            messages.append("The principal flow is defined for GD only (Rosca et al., TMLR 2023).")
            continue
        model = model_class(method)
        solution = solve(model, objective, np.asarray(settings.start, float), ts=model.time(steps))
        x = np.asarray(solution.x)
        paths[name] = {"x": x[:, 0], "y": x[:, 1]}
    return paths


@functools.lru_cache(maxsize=32)
def _optimum(theory: stability.Family, eigenvalues: tuple[float, ...]) -> dict:
    return stability.optimal(theory, list(eigenvalues))


def rate_panel(settings, method, eigenvalues, messages) -> dict | None:
    """The rate ``max_μ ρ`` over (lr, β) on the lr slider's range, the current point and the optimum."""
    theory = theory_family(settings)
    if theory is None:
        messages.append(f"Rate map: {settings.method} has no linear two-step theory.")
        return None
    if eigenvalues.min() <= 0:
        messages.append("Rate map: the Hessian at the minimum is not positive definite.")
        return None
    start, end = LANDSCAPES[settings.objective].lr[:2]
    lrs = np.linspace(start, end, 80)
    momenta = np.linspace(0.0, 0.99, 80)
    name = "heavy-ball" if theory == "gd" else theory  # GD is the β = 0 row of the heavy-ball map
    rho = stability.rate_map(name, eigenvalues, lrs, momenta)
    best = _optimum(theory, tuple(float(e) for e in eigenvalues))
    return {"lrs": lrs, "momenta": momenta, "rate": rho, "current": (settings.lr, float(method.momentum)),
            "rate_here": float(stability.rate(method, eigenvalues)), "optimum": best,
            "boundary": _boundary(name, float(eigenvalues.max()), momenta, end)}


def _boundary(family: stability.Family, largest: float, momenta: np.ndarray, end: float) -> dict:
    """The stability boundary ``lr = 2(1+λ)/((1+2a) h₁ μ_max)`` per β (Jury; `stability.closed_form_threshold`),
    where it lies on the map (``lr ≤ end``)."""
    limits = np.array([stability.closed_form_threshold(family, float(b), largest) for b in momenta])
    inside = limits <= end
    return {"x": limits[inside], "y": momenta[inside]}


def _noise_panel(settings, method, objective, H, messages) -> dict | None:
    """Stationary iterates under Gaussian gradient noise ``C = σ²I`` against the exact and the OU covariance."""
    from . import stationary

    if settings.objective != "quadratic":
        return None
    C = settings.noise**2 * np.eye(2)
    try:
        exact = stationary.covariance(method, H, C).parameters
    except InertiaError as error:
        messages.append(f"Noise: {error}")
        return None
    ou = stationary.covariance_ou(method, H, C)
    rate = float(stability.rate(method, np.linalg.eigvalsh(H)))
    return {"cloud": _stationary_cloud(method, objective, settings, rate), "exact": _ellipse(exact), "ou": _ellipse(ou),
            "exact_cov": exact}


#: Independent runs in the stationary cloud, and the longest burn-in of each.
CLOUD_POINTS, MAX_BURN_IN = 400, 20_000


def _stationary_cloud(method, objective, settings, rate) -> dict:
    """The end points of independent noisy runs (`inertia.sweep` over seeds) started at the minimum, after a
    burn-in long enough for the start to be forgotten (``ρ^{2n} < 1e-6``)."""
    import jax

    from .noise import Gaussian
    from .simulate import sweep

    burn_in = int(min(MAX_BURN_IN, np.ceil(np.log(1e-6) / (2 * np.log(max(rate, 1e-12))))))
    runs = sweep(method, objective, np.zeros(2), burn_in, seeds=CLOUD_POINTS,
                 noise=Gaussian(settings.noise**2 * np.ones(2)), key=jax.random.key(settings.seed),
                 record_at=[burn_in], progress=False)
    x = runs.x.values[0, :, -1]
    return {"x": x[:, 0], "y": x[:, 1]}


def _ellipse(cov: np.ndarray, scale: float = 2.0, points: int = 120) -> dict:
    """The ``scale``-standard-deviation ellipse of a 2-D covariance, as a closed line."""
    w, V = np.linalg.eigh(cov)
    angle = np.linspace(0, 2 * np.pi, points)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    xy = V @ (scale * np.sqrt(np.clip(w, 0, None))[:, None] * circle)
    return {"x": xy[0], "y": xy[1]}


def _game_panels(settings, method) -> Panels:
    """The bilinear game ``φθ`` under simultaneous GD with step ``lr`` for both players (`inertia.play`)."""
    from .games import Game, play

    messages = []
    if not _is_gd(method):
        messages.append(f"The game is played by simultaneous GD (inertia.play) with step lr; {settings.method} "
                        "is not used here.")
    phi0, theta0 = np.asarray(settings.start[:1], float), np.asarray(settings.start[1:], float)
    phi, theta = play(Game.zero_sum(bilinear_loss), phi0, theta0, settings.steps, settings.lr, settings.lr)
    x, y = np.asarray(phi)[:, 0], np.asarray(theta)[:, 0]
    steps = np.arange(settings.steps + 1)
    distance = np.hypot(x, y)
    if not np.all(np.isfinite(distance)) or distance[-1] > distance[0]:
        messages.append("Divergence: simultaneous GD spirals away from the equilibrium of the bilinear game.")
    messages.append("The loss panel shows the distance |(φ, θ)| to the equilibrium; the rate map, eigen-directions "
                    "and noise panels are for minimisation objectives.")
    return Panels({"x": x, "y": y, "step": steps}, {"step": steps, "loss": _positive(distance)}, None, {}, None,
                  None, None, _canonical(GD(settings.lr)), messages)


def loss_surface(settings: Settings, points: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss on a grid over the landscape's view, by the objective's own ``loss`` (the game: ``φθ``)."""
    import jax

    x0, x1, y0, y1 = LANDSCAPES[settings.objective].view
    xs, ys = np.linspace(x0, x1, points), np.linspace(y0, y1, points)
    X, Y = np.meshgrid(xs, ys)
    flat = np.stack([X.ravel(), Y.ravel()], axis=1)
    objective = build_objective(settings)
    if objective is None:
        Z = np.asarray(jax.vmap(lambda p: bilinear_loss(p[:1], p[1:]))(flat))
    else:
        Z = np.asarray(jax.vmap(objective.loss)(jax.numpy.asarray(flat)))
    return xs, ys, Z.reshape(X.shape)


def contour_levels(settings: Settings, Z: np.ndarray) -> np.ndarray:
    """Levels for the contour plot: geometric for a loss (which is ≥ its minimum), symmetric for the game."""
    if settings.objective == "bilinear game":
        top = float(np.abs(Z).max())
        return np.linspace(-top, top, 13)[1:-1]
    low = float(Z.min())
    excess = Z - low
    return low + np.geomspace(max(float(np.percentile(excess, 1)), 1e-6), float(excess.max()), 14)[:-1]


# ---------------------------------------------------------------------------------------------------------------
# The Bokeh page. Models carry names (`name=`) so that tests and users can find them in the document.

FIGURE = {"width": 430, "height": 360, "toolbar_location": "above"}
FLOW_COLOURS = ("#1b9e77", "#d95f02", "#7570b3")


def _figures(live: bool = True):
    """The empty figures and their data sources, shared by the live and the static page (``live=False``: no
    flows, start marker or matched-rate line, which the static page does not carry)."""
    from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure

    layouts: dict[str, dict[str, list]] = {
        "trajectory": {"x": [], "y": [], "step": []}, "start": {"x": [], "y": []},
        "loss": {"step": [], "loss": []}, "matched": {"step": [], "loss": []},
        "eigen": {"step": [], "e0": [], "e1": []}, "rate-image": {"image": [], "x": [], "y": [], "dw": [], "dh": []},
        "rate-current": {"x": [], "y": []}, "rate-optimum": {"x": [], "y": []}, "rate-boundary": {"x": [], "y": []},
        "cloud": {"x": [], "y": []},
        "exact-ellipse": {"x": [], "y": []}, "ou-ellipse": {"x": [], "y": []},
        **{f"flow{i}": {"x": [], "y": []} for i in range(3)}}
    src = {name: ColumnDataSource(data, name=name) for name, data in layouts.items()}
    fig = {
        "contour": figure(title="trajectory on the loss contours", x_axis_label="x", y_axis_label="y",
                          match_aspect=True, name="contour-figure", **FIGURE),
        "rate": figure(title="rate max ρ over (lr, β); grey: unstable", x_axis_label="learning rate lr",
                       y_axis_label="momentum β", name="rate-figure", **FIGURE),
        "eigen": figure(title="error along each Hessian eigen-direction", x_axis_label="step n",
                        y_axis_label="|uᵢᵀ(xₙ − x*)|", y_axis_type="log", name="eigen-figure", **FIGURE),
        "loss": figure(title="loss against step", x_axis_label="step n", y_axis_label="f(xₙ) − f*",
                       y_axis_type="log", name="loss-figure", **FIGURE),
        "noise": figure(title="quadratic: stationary iterates, gradient noise C = σ²I", x_axis_label="x − x*",
                        y_axis_label="y − y*", match_aspect=True, name="noise-figure", **FIGURE),
    }
    p = fig["contour"]
    p.line("x", "y", source=src["trajectory"], line_width=2, color="#e41a1c", legend_label="iterates xₙ")
    p.scatter("x", "y", source=src["trajectory"], size=4, color="#e41a1c")
    start = None
    if live:
        for i, name in enumerate(OVERLAYS[:3]):
            p.line("x", "y", source=src[f"flow{i}"], line_width=2, line_dash="dashed", color=FLOW_COLOURS[i],
                   legend_label=name)
        start = p.scatter("x", "y", source=src["start"], size=14, color="black", marker="circle_cross",
                          fill_alpha=0.3, legend_label="start (drag)")
    p.legend.location = "bottom_left"
    mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0, high_color="#d9d9d9")
    r = fig["rate"]
    r.image("image", x="x", y="y", dw="dw", dh="dh", source=src["rate-image"], color_mapper=mapper)
    r.add_layout(ColorBar(color_mapper=mapper, width=10, title="ρ"), "right")
    r.scatter("x", "y", source=src["rate-current"], size=12, color="#e41a1c", legend_label="current")
    r.line("x", "y", source=src["rate-boundary"], line_width=2, color="black", line_dash="dotted",
           legend_label="stability boundary")
    r.scatter("x", "y", source=src["rate-optimum"], size=14, marker="star", color="white", line_color="black",
              legend_label="optimum")
    r.legend.location = "bottom_left"
    e = fig["eigen"]
    e.line("step", "e0", source=src["eigen"], color="#377eb8", line_width=2, legend_label="smallest eigenvalue")
    e.line("step", "e1", source=src["eigen"], color="#ff7f00", line_width=2, legend_label="largest eigenvalue")
    e.legend.location = "bottom_left"
    loss = fig["loss"]
    loss.line("step", "loss", source=src["loss"], line_width=2, color="#e41a1c", legend_label="this method")
    if live:
        loss.line("step", "loss", source=src["matched"], line_width=2, line_dash="dashed", color="black",
                  legend_label="GD at lr/(1−β)")
    loss.legend.location = "bottom_left"
    n = fig["noise"]
    n.scatter("x", "y", source=src["cloud"], size=3, alpha=0.4, color="#377eb8", legend_label="simulated")
    n.line("x", "y", source=src["exact-ellipse"], line_width=2, color="black", legend_label="exact 2σ")
    n.line("x", "y", source=src["ou-ellipse"], line_width=2, line_dash="dashed", color="#e41a1c",
           legend_label="OU 2σ")
    n.legend.location = "top_left"
    for f in fig.values():
        f.legend.update(label_text_font_size="8pt", glyph_height=12, label_height=12, spacing=0, padding=4,
                        background_fill_alpha=0.6, click_policy="hide")
    return fig, src, start, mapper


def _contours(figure, settings: Settings):
    """Contour lines of the objective's loss (`loss_surface`) in `figure`; returns the renderer."""
    xs, ys, Z = loss_surface(settings)
    return figure.contour(xs, ys, Z, levels=contour_levels(settings, Z), line_color="#999999", fill_color=None)


def _contour_data(settings: Settings):
    from bokeh.plotting.contour import contour_data

    xs, ys, Z = loss_surface(settings)
    return contour_data(xs, ys, Z, contour_levels(settings, Z), want_fill=False)


def _empty(source) -> None:
    source.data = {key: [] for key in source.data}


def _show_panels(src, mapper, panels: Panels) -> None:
    """Copy one `compute` result into the data sources; the rate map's colours span its own range of ρ up to 1."""
    src["trajectory"].data = panels.trajectory
    src["loss"].data = panels.loss
    src["matched"].data = panels.matched or {"step": [], "loss": []}
    for i, name in enumerate(OVERLAYS[:3]):
        src[f"flow{i}"].data = panels.flows.get(name, {"x": [], "y": []})
    if panels.eigen is None:
        _empty(src["eigen"])
    else:
        src["eigen"].data = {k: panels.eigen[k] for k in ("step", "e0", "e1")}
    rates = panels.rates
    if rates is None:
        for name in ("rate-image", "rate-current", "rate-optimum", "rate-boundary"):
            _empty(src[name])
    else:
        lrs, momenta = rates["lrs"], rates["momenta"]
        image = {"image": [np.asarray(rates["rate"])], "x": [lrs[0]], "y": [momenta[0]],
                 "dw": [lrs[-1] - lrs[0]], "dh": [momenta[-1] - momenta[0]]}
        old = src["rate-image"].data
        if not (len(old["image"]) == 1 and np.array_equal(old["image"][0], image["image"][0])
                and old["x"] == image["x"] and old["dw"] == image["dw"]):  # send the map only when it changed
            src["rate-image"].data = image
            mapper.low = float(np.nanmin(rates["rate"]))
        src["rate-current"].data = {"x": [rates["current"][0]], "y": [rates["current"][1]]}
        src["rate-optimum"].data = {"x": [rates["optimum"]["lr"]], "y": [rates["optimum"]["momentum"]]}
        src["rate-boundary"].data = rates["boundary"]
    noise = panels.noise
    for name in ("cloud", "exact-ellipse", "ou-ellipse"):
        if noise is None:
            _empty(src[name])
        else:
            src[name].data = noise[{"cloud": "cloud", "exact-ellipse": "exact", "ou-ellipse": "ou"}[name]]


def _message_html(messages: list[str]) -> str:
    import html

    if not messages:
        return "<span style='color:#2b7a2b'>No warnings.</span>"
    return "".join(f"<div style='color:{'#b00020' if m.startswith(('Divergence', 'Input')) else '#444'}'>"
                   f"{html.escape(m)}</div>" for m in messages)


def _is_gd(method: Method) -> bool:
    """Whether ``method`` is gradient descent (no momentum, no look-ahead): the principal flow is GD's alone."""
    return method.name == "GD"


def _canonical_html(c: dict | None, rates: dict | None) -> str:
    if c is None:
        return "<b>canonical form</b>: none (not a linear two-step method)"
    rate = "" if rates is None else f"<br>rate max ρ = {rates['rate_here']:.4f} per step"
    return (f"<b>canonical form</b> (Kovachki &amp; Stuart eq. 1.2):<br>h = {c['h']:.6g}, λ = {c['λ']:.6g}, "
            f"a = {c['a']:.6g}{rate}")


class _LivePage:
    """The served page: widgets whose changes call `compute` and redraw every panel."""

    def __init__(self, settings: Settings):
        from bokeh.layouts import column, gridplot, row
        from bokeh.models import CheckboxGroup, Div, PointDrawTool, Range1d, Select, Slider, TextInput

        self.settings = settings
        self._pending = False
        self.fig, self.src, start_renderer, self.mapper = _figures()
        self.contours = _contours(self.fig["contour"], settings)
        self.fig["contour"].add_tools(PointDrawTool(renderers=[start_renderer], add=False, drag=True))
        x0, x1, y0, y1 = LANDSCAPES[settings.objective].view
        self.fig["contour"].x_range, self.fig["contour"].y_range = Range1d(x0, x1), Range1d(y0, y1)
        lr = LANDSCAPES[settings.objective].lr
        self.w = {
            "method": Select(title="method", value=settings.method, options=list(METHOD_CHOICES), name="method"),
            "objective": Select(title="objective", value=settings.objective, options=list(LANDSCAPES),
                                name="objective"),
            "lr": Slider(title="learning rate lr", start=lr[0], end=lr[1], step=lr[2], value=settings.lr,
                         format="0[.]00000", name="lr"),
            "momentum": Slider(title="momentum β", start=0.0, end=0.99, step=0.01, value=settings.momentum,
                               name="momentum"),
            "nu": Slider(title="QHM's ν (ν = β: Nesterov, ν = 1: heavy ball)", start=0.0, end=1.0, step=0.01,
                         value=settings.nu, name="nu"),
            "b2": Slider(title="Adam's β₂", start=0.0, end=0.999, step=0.001, value=settings.b2, format="0.000",
                         name="b2"),
            "kappa": Slider(title="condition number κ (quadratic)", start=1, end=100, step=1,
                            value=settings.kappa, name="kappa"),
            "rotation": Slider(title="rotation in degrees (quadratic)", start=0, end=90, step=1,
                               value=settings.rotation, name="rotation"),
            "noise": Slider(title="gradient noise σ (quadratic)", start=0.0, end=1.0, step=0.01,
                            value=settings.noise, name="noise"),
            "steps": TextInput(title="steps", value=str(settings.steps), name="steps"),
            "start": TextInput(title="start x, y (or drag the circle)", value=_format_start(settings.start),
                               name="start-text"),
            "overlays": CheckboxGroup(labels=list(OVERLAYS), active=[OVERLAYS.index(o) for o in settings.overlays],
                                      name="overlays"),
        }
        self.canonical = Div(name="canonical", width=260)
        self.message = Div(name="message", width=260)
        self.timing = Div(name="timing", width=260, styles={"color": "#777", "font-size": "11px"})
        for key, widget in self.w.items():
            widget.on_change("active" if key == "overlays" else "value", self._on_widget)
        self.src["start"].on_change("data", self._on_drag)
        controls = column(Div(text="<h3 style='margin:0'>inertia explore</h3>"), *self.w.values(), self.canonical,
                          self.message, self.timing, width=280)
        grid = gridplot([[self.fig["contour"], self.fig["rate"], self.fig["loss"]],
                         [self.fig["eigen"], self.fig["noise"], None]], toolbar_location="right")
        self.layout = row(controls, grid)
        self.redraw()

    def _read(self) -> Settings:
        """The settings from the widgets; an empty or malformed field raises `InertiaError` naming it."""
        w = self.w
        steps = w["steps"].value.strip()
        if not steps.isdigit():
            raise InertiaError(f"steps must be an integer in [1, 5000]; got {steps!r}")
        return Settings(method=w["method"].value, objective=w["objective"].value, lr=float(w["lr"].value),
                        momentum=float(w["momentum"].value), nu=float(w["nu"].value), b2=float(w["b2"].value),
                        kappa=float(w["kappa"].value),
                        rotation=float(w["rotation"].value), start=_parse_start(w["start"].value),
                        steps=int(steps), noise=float(w["noise"].value),
                        overlays=tuple(OVERLAYS[i] for i in sorted(w["overlays"].active)), seed=self.settings.seed)

    def _on_widget(self, attr, old, new) -> None:
        objective = self.w["objective"].value
        if objective != self.settings.objective:  # new landscape: its own lr range and start
            land = LANDSCAPES[objective]
            self._quiet = True
            try:
                s = self.w["lr"]
                s.update(start=land.lr[0], end=land.lr[1], step=land.lr[2], value=land.lr[3])
                self.w["start"].value = _format_start(land.start)
            finally:
                self._quiet = False
        if not getattr(self, "_quiet", False):
            self.schedule()

    def _on_drag(self, attr, old, new) -> None:
        if len(new["x"]) != 1:
            return
        point = (float(new["x"][0]), float(new["y"][0]))
        if point != self.settings.start:
            self.w["start"].value = _format_start(point)  # triggers the redraw

    def schedule(self) -> None:
        """Redraw once the changes already queued are in: a fast drag of a slider costs one redraw, not one per
        intermediate value. Without a document (a page built outside a server) it redraws at once."""
        doc = self.layout.document
        if doc is None:
            self.redraw()
        elif not self._pending:
            self._pending = True
            doc.add_next_tick_callback(self._redraw_pending)

    def _redraw_pending(self) -> None:
        self._pending = False
        self.redraw()

    def redraw(self) -> None:
        """Recompute every panel from the widgets; bad input becomes a message, never an exception."""
        began = time.perf_counter()
        try:
            settings = self._read()
            panels = compute(settings)
        except (InertiaError, ValueError) as error:
            self.message.text = _message_html([f"Input: {error}"])
            return
        except Exception as error:  # never let a redraw take the server down
            self.message.text = _message_html([f"Input: could not compute this setting ({type(error).__name__}: "
                                               f"{error})"])
            return
        landscape_changed = (settings.objective, settings.kappa, settings.rotation) != (
            self.settings.objective, self.settings.kappa, self.settings.rotation)
        if landscape_changed:
            self.contours.set_data(_contour_data(settings))
            x0, x1, y0, y1 = LANDSCAPES[settings.objective].view
            self.fig["contour"].x_range.update(start=x0, end=x1)
            self.fig["contour"].y_range.update(start=y0, end=y1)
        self.settings = settings
        self._show_sliders_of(settings.method)
        game = settings.objective == "bilinear game"
        self.fig["loss"].yaxis.axis_label = "distance to equilibrium" if game else "f(xₙ) − f*"
        if (list(self.src["start"].data["x"]), list(self.src["start"].data["y"])) != ([settings.start[0]],
                                                                                     [settings.start[1]]):
            self.src["start"].data = {"x": [settings.start[0]], "y": [settings.start[1]]}
        _show_panels(self.src, self.mapper, panels)
        self.canonical.text = _canonical_html(panels.canonical, panels.rates)
        self.message.text = _message_html(panels.messages)
        self.timing.text = f"computed and sent in {1000 * (time.perf_counter() - began):.0f} ms"


    def _show_sliders_of(self, method: str) -> None:
        """Only the hyper-parameters the chosen method reads are on show; Adam's momentum slider is its β₁."""
        sliders = METHOD_CHOICES[method].sliders
        for name in ("momentum", "nu", "b2"):
            self.w[name].visible = name in sliders
        self.w["momentum"].title = "Adam's β₁" if method == "Adam" else "momentum β"


def _format_start(point) -> str:
    return f"{point[0]:g}, {point[1]:g}"


def _parse_start(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2:
        raise InertiaError(f"start must be two numbers 'x, y'; got {text!r}")
    return values


def make_document(doc, settings: Settings | None = None) -> None:
    """Fill a Bokeh document with the live explorer (a Bokeh server application handler)."""
    page = _LivePage(settings or Settings())
    doc.title = "inertia explore"
    doc.add_root(page.layout)


def serve(port: int = 8765, *, settings: Settings | None = None, announce: Callable[[str], None] = print) -> None:
    """Serve the explorer at ``http://127.0.0.1:port/`` until interrupted; opens no browser."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    app = Application(FunctionHandler(lambda doc: make_document(doc, settings)))
    server = Server({"/": app}, port=port, address="127.0.0.1",
                    allow_websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"])
    server.start()
    announce(f"inertia explore: serving on http://127.0.0.1:{server.port}/ (Ctrl-C stops)")
    server.io_loop.start()


# ---------------------------------------------------------------------------------------------------------------
# The static page: a coarse grid of settings computed here (one `inertia.sweep` per objective and method); its
# widgets only pick stored rows, in a few lines of JavaScript that index arrays and compute nothing.

#: The static page's grid: learning rates per objective (points on the live slider's range) and momenta.
STATIC_LRS, STATIC_MOMENTA = 10, (0.0, 0.3, 0.5, 0.7, 0.8, 0.9)
#: The static page's objectives: the minimisation problems (the game runs `inertia.play`, not a method grid).
STATIC_OBJECTIVES = ("quadratic", "Rosenbrock", "Himmelblau")

_PICK_JS = """
const g = grid.data, r = rates.data;
const o = objective.value, m = method.value, i = lr.value, j = beta.value;
let k = -1;
for (let n = 0; n < g.objective.length; n++) {
  if (g.objective[n] === o && g.method[n] === m && g.lr_index[n] === i && g.beta_index[n] === j) { k = n; break; }
}
if (k < 0) { return; }
lr.title = "learning rate lr = " + g.lr[k].toPrecision(4);
beta.title = "momentum β = " + g.beta[k];
trajectory.data = {x: g.x[k], y: g.y[k], step: g.step[k]};
loss.data = {step: g.step[k], loss: g.loss[k]};
eigen.data = {step: g.step[k], e0: g.e0[k], e1: g.e1[k]};
current.data = {x: [g.lr[k]], y: [g.beta[k]]};
message.text = g.message[k];
canonical.text = g.canonical[k];
for (let n = 0; n < r.objective.length; n++) {
  if (r.objective[n] === o && r.method[n] === m) {
    image.data = {image: [r.image[n]], x: [r.x[n]], y: [r.y[n]], dw: [r.dw[n]], dh: [r.dh[n]]};
    optimum.data = {x: [r.best_lr[n]], y: [r.best_beta[n]]};
    boundary.data = {x: r.boundary_x[n], y: r.boundary_y[n]};
    mapper.low = r.low[n];
  }
}
for (const [name, renderer] of Object.entries(contours)) { renderer.visible = (name === o); }
[xr.start, xr.end, yr.start, yr.end] = views[o];
"""


def static_grid(steps: int = 100, lrs: int = STATIC_LRS, momenta=STATIC_MOMENTA,
                objectives=STATIC_OBJECTIVES) -> tuple[dict, dict]:
    """The rows of the static page: one per (objective, method, lr, β) on the grid, and one rate map per
    (objective, method)."""
    from .methods import grid
    from .simulate import sweep

    rows: dict[str, list] = {k: [] for k in ("objective", "method", "lr_index", "beta_index", "lr", "beta", "x", "y",
                                             "step", "loss", "e0", "e1", "message", "canonical")}
    rates: dict[str, list] = {k: [] for k in ("objective", "method", "image", "x", "y", "dw", "dh", "best_lr",
                                              "best_beta", "low", "boundary_x", "boundary_y")}
    for objective_name in objectives:
        land = LANDSCAPES[objective_name]
        base = Settings(objective=objective_name, start=land.start, steps=steps)
        objective = build_objective(base)
        if objective is None:
            raise InertiaError(f"the static page has no grid for the two-player game {objective_name!r}")
        lr_values = np.linspace(land.lr[0], land.lr[1], lrs)
        for method_name in STATIC_METHODS:
            choice = METHOD_CHOICES[method_name]
            uses_momentum = "momentum" in choice.sliders
            betas = tuple(momenta) if uses_momentum else (0.0,)
            family = choice.build if uses_momentum else lambda lr, momentum: choice.build(lr=lr)
            methods = grid(family, lr=lr_values, momentum=np.asarray(betas))
            runs = sweep(methods, objective, np.asarray(land.start, float), steps, record_every=1, progress=False)
            for config in range(runs.sizes["config"]):
                i, j = divmod(config, len(betas))
                settings = dataclasses.replace(base, method=method_name, lr=float(lr_values[i]), momentum=betas[j])
                method = build_method(settings)
                panels = trajectory_panels(settings, method, objective, runs.x.values[config, 0],
                                           runs.loss.values[config, 0], int(runs.diverged_at.values[config, 0]))
                for beta_index in ([j] if uses_momentum else range(len(momenta))):
                    _static_row(rows, settings, i, beta_index, panels, method)
            _static_rates(rates, base, method_name, lr_values)
    return rows, rates


def _static_row(rows, settings, lr_index, beta_index, panels, method) -> None:
    rows["objective"].append(settings.objective)
    rows["method"].append(settings.method)
    rows["lr_index"].append(lr_index)
    rows["beta_index"].append(beta_index)
    rows["lr"].append(settings.lr)
    rows["beta"].append(float(method.momentum))
    for key in ("x", "y", "step"):
        rows[key].append(panels["trajectory"][key])
    rows["loss"].append(panels["loss"]["loss"])
    for key in ("e0", "e1"):
        rows[key].append(panels["eigen"][key])
    rows["message"].append(_message_html(panels["messages"]))
    rows["canonical"].append(_canonical_html(_canonical(method), None))


def _static_rates(rates, settings, method_name, lrs) -> None:
    settings = dataclasses.replace(settings, method=method_name, lr=float(lrs[0]))
    panel = rate_panel(settings, build_method(settings), np.linalg.eigvalsh(local_hessian(settings)), [])
    if panel is None:
        return
    rates["objective"].append(settings.objective)
    rates["method"].append(method_name)
    rates["image"].append(np.asarray(panel["rate"]))
    rates["x"].append(panel["lrs"][0])
    rates["y"].append(panel["momenta"][0])
    rates["dw"].append(panel["lrs"][-1] - panel["lrs"][0])
    rates["dh"].append(panel["momenta"][-1] - panel["momenta"][0])
    rates["best_lr"].append(panel["optimum"]["lr"])
    rates["best_beta"].append(panel["optimum"]["momentum"])
    rates["boundary_x"].append(panel["boundary"]["x"])
    rates["boundary_y"].append(panel["boundary"]["y"])
    rates["low"].append(float(np.nanmin(panel["rate"])))


def write_static(path, steps: int = 100, lrs: int = STATIC_LRS, momenta=STATIC_MOMENTA,
                 objectives=STATIC_OBJECTIVES) -> None:
    """Write the explorer for the coarse grid of `static_grid` to one self-contained HTML file.

    **Arguments:** ``path``; ``steps`` per run; ``lrs``: learning rates per objective, evenly spaced on the live
    slider's range; ``momenta``: the momentum values.

    Bokeh's JavaScript is inlined (`bokeh.resources.INLINE`), so the page opens from a file with no network.
    """
    from pathlib import Path

    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot, row
    from bokeh.models import ColumnDataSource, CustomJS, Div, Select, Slider
    from bokeh.resources import INLINE

    from ._files import write_atomic

    rows, rates = static_grid(steps, lrs, momenta, objectives)
    fig, src, _, mapper = _figures(live=False)
    contours = {}
    for name in objectives:
        contours[name] = _contours(fig["contour"], Settings(objective=name))
        contours[name].visible = name == objectives[0]
    names = list(contours)
    views = {name: LANDSCAPES[name].view for name in names}
    w = {"objective": Select(title="objective", value=names[0], options=names, name="objective"),
         "method": Select(title="method", value="HeavyBall", options=list(STATIC_METHODS), name="method"),
         "lr": Slider(title="learning rate", start=0, end=lrs - 1, step=1, value=min(2, lrs - 1),
                      show_value=False, name="lr"),
         "beta": Slider(title="momentum β", start=0, end=len(momenta) - 1, step=1, value=min(2, len(momenta) - 1),
                        show_value=False, name="momentum")}
    message, canonical = Div(name="message", width=260), Div(name="canonical", width=260)
    pick = CustomJS(code=_PICK_JS, args=dict(
        grid=ColumnDataSource(rows, name="grid"), rates=ColumnDataSource(rates, name="rates"), **w,
        trajectory=src["trajectory"], loss=src["loss"], eigen=src["eigen"], current=src["rate-current"],
        image=src["rate-image"], optimum=src["rate-optimum"], boundary=src["rate-boundary"], message=message,
        canonical=canonical,
        contours=contours, views=views, xr=fig["contour"].x_range, yr=fig["contour"].y_range, mapper=mapper))
    for widget in w.values():
        widget.js_on_change("value", pick)
    note = Div(width=260, text=(
        "<h3 style='margin:0'>inertia explore (static)</h3><p>Precomputed by <code>inertia explore --static</code> "
        f"on a coarse grid: {lrs} learning rates × {len(momenta)} momenta, quadratic with κ = 10 "
        "turned by 30°. <code>inertia explore</code> serves the live page with every slider, the flows and the "
        "noise panel.</p>"))
    from bokeh.document import Document

    doc = Document()
    doc.add_root(row(column(note, *w.values(), canonical, message),
                     gridplot([[fig["contour"], fig["rate"]], [fig["loss"], fig["eigen"]]], toolbar_location="right")))
    doc.js_on_event("document_ready", pick)
    html = file_html(doc, INLINE, "inertia explore (static)")
    write_atomic(Path(path), html.encode("utf-8"))
