"""The HTML page of a diagnosis: every prediction beside its measurement, with figures (`inertia diagnose`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jinja2
import numpy as np

from ._files import write_atomic
from .report import figure_png, json_safe

_PAGE = jinja2.Template("""<!doctype html><html><head><meta charset="utf-8"><title>inertia diagnose</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.holds{color:#17723a;font-weight:bold}.fails{color:#b3261e;font-weight:bold}img{max-width:100%}</style></head><body>
<h1>inertia diagnose</h1><p>{{ title }}</p>
<h2>Measured at the checkpoint</h2>
<table>{% for k, v in measured %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Predicted, and checked by a short continuation</h2>
<table><tr><th>prediction</th><th>predicted</th><th>measured</th><th>check</th><th>source</th></tr>
{% for r in rows %}<tr><td>{{ r.name }}</td><td>{{ r.predicted }}</td><td>{{ r.measured }}</td>
<td class="{{ r.status }}">{{ r.status }}</td><td>{{ r.source }}</td></tr>{% endfor %}</table>
<p>Read docs/diagnose.md for what each number means and when not to trust it (far from a minimum the local quadratic
model breaks, and the checks say so).</p>
{% for png in pngs %}<img src="data:image/png;base64,{{ png }}">{% endfor %}
<details><summary>all numbers</summary><pre>{{ raw }}</pre></details></body></html>""", autoescape=True)


def _fmt(x) -> str:
    arr = np.atleast_1d(np.asarray(x, float))
    return ", ".join(f"{v:.4g}" for v in arr)


def _status(check: dict | None) -> str:
    if not check:
        return "not run"
    if check.get("available") is False:
        return "not available"
    if check.get("holds") is None and "reason" in check:  # ran, but too short to decide either way
        return "undecided"
    return "holds" if check.get("holds") else "fails"


def _stability_measured(check: dict | None) -> str:
    """The twin runs' perturbation along u_1 against the companion matrix's, and whether the loss blew up."""
    if not check or "runs" not in check:
        return ""
    parts = [f"{r['lr_factor']}×: predicted: {r['predicted']}; perturbation ×{r['growth']:.3g} at most "
             f"(linear ×{r['linear_growth']:.3g}), ×{r['decay']:.3g} over the last quarter (linear "
             f"×{r['linear_decay']:.3g}); loss blew up: {'yes' if r['loss_diverged'] else 'no'}"
             for r in check["runs"]]
    return "; ".join(parts) + (f". {check['reason']}" if check.get("reason") else "")


def _flows_measured(check: dict | None) -> str:
    """The fitted orders of the two flows, and how much of the departure from gradient flow the regulariser explains."""
    if not check or "orders" not in check:
        return check.get("reason", "") if check else ""
    orders = "; ".join(f"{name}: order {r['order']:.2f} ± {r['t'] * r['se']:.2f} (99%; expected {r['expected']})"
                       for name, r in check["orders"].items())
    return (f"{orders}; at this lr the regulariser accounts for {check['explained']:.1%} of the departure from "
            f"gradient flow over {check['steps']} steps")


def _unavailable_rows(d) -> list[dict]:
    """A method without a linear two-step form: each prediction says why it is not available; the continuation's
    measurements are shown on their own."""
    cs = d.checked.get("stationary", {})
    measured = (f"variance {_fmt(cs['measured_variance'])} ± {_fmt(cs['se'])}; excess loss ½Σμ_i Var(u_iᵀθ) "
                f"{cs['excess_loss']['measured']:.4g} ± {cs['excess_loss']['se']:.2g}") if cs else ""
    return [{"name": name.replace("_", " "), "predicted": "not available: " + d.predicted[name]["reason"],
             "measured": measured if name == "stationary" else "", "status": "not available", "source": ""}
            for name in d.predicted]


def _rows(d) -> list[dict]:
    p, c = d.predicted, d.checked
    if p["stability"].get("available") is False:
        return _unavailable_rows(d)
    st, rg, sb = p["stationary"], p["regime"], p["stability"]
    rows = [{"name": "stability margin μ_max / threshold", "predicted": f"{sb['margin']:.3g} (stable below 1); largest "
             f"stable lr = {sb['largest_stable_lr_factor']:.3g} × lr", "source": sb["source"],
             "measured": _stability_measured(c.get("stability")),
             "status": _status(c.get("stability"))}]
    if st["exists"]:
        cs = c.get("stationary", {})
        if not st["near_minimum"]:
            rows.append({"name": "near a minimum?", "predicted": f"no: one step of descent lowers the loss by "
                         f"{st['descent_per_step']:.3g}, not small against the excess loss {st['excess_loss']:.3g}; "
                         "the stationary prediction does not apply yet", "measured": "", "status": "",
                         "source": "docs/diagnose.md"})
        rows.append({"name": f"stationary variance in the top {st['directions']} directions",
                     "predicted": f"exact {_fmt(st['variance'])}; OU {_fmt(st['variance_ou'])}",
                     "measured": (f"{_fmt(cs['measured_variance'])} ± {_fmt(cs['se'])} (z exact {_fmt(cs['z_exact'])}; "
                                  f"z OU {_fmt(cs['z_ou'])}; critical {cs['z_critical']:.3g})") if cs else "",
                     "status": _status(cs), "source": st["source"]})
        rows.append({"name": "stationary excess loss ½Tr[KΣ] (top directions)",
                     "predicted": f"exact {st['excess_loss']:.4g}; OU {st['excess_loss_ou']:.4g}", "measured": "",
                     "status": "see variance", "source": st["source"]})
    else:
        rows.append({"name": "stationary state", "predicted": st.get("reason", "none"), "measured": "",
                     "status": _status(c.get("stationary")), "source": st["source"]})
    cr = c.get("regime", {})
    rows.append({"name": f"momentum regime vs SGD at lr {rg['matched_lr']:.4g}", "predicted": rg["verdict"],
                 "measured": (f"loss difference {cr['difference']:.3g} (predicted {cr['predicted_difference']:.3g}), "
                              f"90% CI [{cr['low']:.3g}, {cr['high']:.3g}], margin ±{cr['margin']:.3g}: "
                              f"{'equivalent' if cr['equivalent'] else 'not shown equivalent'}")
                 if "difference" in cr else cr.get("reason", ""), "status": _status(cr), "source": rg["source"]})
    ir = p["implicit_regulariser"]
    ci = c.get("implicit_regulariser")
    rows.append({"name": "implicit regulariser c·h·‖∇f‖²", "predicted": f"{ir['strength']:.3g} "
                 f"({ir['relative_to_loss']:.2%} of the loss; c = {ir['coefficient']:.3g}): the method follows the "
                 "flow of f + c·h·‖∇f‖² to O(h²), gradient flow only to O(h)", "measured": _flows_measured(ci),
                 "status": _status(ci), "source": ir["source"]})
    return rows


def figures(d) -> list:
    """Measured against predicted stationary variance; loss along the continuations; the stability runs."""
    import matplotlib.pyplot as plt

    figs = []
    st, cs = d.predicted["stationary"], d.checked.get("stationary")
    if st.get("exists") and cs:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        i = np.arange(st["directions"])
        ax.errorbar(i, cs["measured_variance"], yerr=cs["z_critical"] * cs["se"], fmt="o",
                    label="measured (Bonferroni CI)")
        ax.plot(i, st["variance"], "s", mfc="none", label="exact discrete (Liu, Ziyin & Ueda)")
        ax.plot(i, st["variance_ou"], "x", label="continuous time (OU)")
        ax.set(yscale="log", xlabel="Hessian eigen-direction (descending eigenvalue)", ylabel="variance of u_iᵀθ",
               title="Stationary fluctuation in the top directions", xticks=i)
        ax.legend(fontsize=8)
        figs.append(fig)
    if d.traces.get("losses") is not None:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for name, losses in (("method", d.traces["losses"]), ("SGD at the matched lr", d.traces.get("sgd_losses"))):
            if losses is not None:
                mean = losses.mean(0)
                ax.plot(mean, label=f"{name} (mean over replicas)")
        ax.set(xlabel="continuation step", ylabel="minibatch loss before the step", title="Coupled continuations")
        ax.legend(fontsize=8)
        figs.append(fig)
    if d.traces.get("stability"):
        figs.append(_stability_figure(d.traces["stability"]))
    return figs


def _stability_figure(paths: dict):
    """The perturbation along u_1 in the twin runs against the companion matrix's, and the loss of each run."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for (scale, path), colour in zip(paths.items(), ("tab:blue", "tab:red")):
        steps = np.arange(1, len(path["separation"]) + 1)
        finite = lambda a: np.where(np.isfinite(a), np.abs(a), np.nan)
        axes[0].semilogy(steps, finite(path["separation"]), color=colour, label=f"{scale}× the limit: measured")
        axes[0].semilogy(steps, finite(path["linear"]), "--", color=colour, label=f"{scale}×: companion matrix")
        axes[1].semilogy(steps, finite(path["loss"]), color=colour, label=f"{scale}× the predicted largest stable lr")
    axes[0].set(xlabel="step (full batch)", ylabel="|u₁ᵀ(θ′ − θ)| / ε", title="Perturbation along the top direction")
    axes[1].set(xlabel="step (full batch)", ylabel="loss on the measured examples", title="Loss of the same runs")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_page(d, folder: str | Path, title: str = "") -> Path:
    """Write ``folder/index.html`` (figures embedded) and ``folder/diagnosis.json``; returns the page's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(json_safe({"measured": d.measured, "predicted": d.predicted, "checked": d.checked,
                                "timings": d.timings}), indent=1)
    measured = [(k, _fmt(v) if not isinstance(v, (int, str)) else v) for k, v in d.measured.items() if k != "noise_top"]
    measured += [(f"time: {name}", f"{t['cpu_s']:.1f} CPU-s, {t['wall_s']:.1f} s wall")
                 for name, t in d.timings.items()]
    page = _PAGE.render(title=title, measured=measured, rows=_rows(d), raw=raw,
                        pngs=[base64.b64encode(figure_png(f)).decode() for f in figures(d)])
    write_atomic(folder / "index.html", page.encode())
    write_atomic(folder / "diagnosis.json", raw.encode())
    return folder / "index.html"
