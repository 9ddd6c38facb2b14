"""`reproduce`: run claims and their negative controls; write one self-contained HTML page and results.json.

The page and the JSON record how they were made (inertia version, git commit, jax/jaxlib, Python, platform, CPU
count, date, mode, and whether the controls ran), so a verdict can be traced to the code that gave it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import html
import io
import json
import multiprocessing
import os
import platform
import subprocess
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path

import jinja2
from tqdm.auto import tqdm

from ._checks import InertiaError, check_output_folder
from ._files import write_atomic

__all__ = ["reproduce", "provenance", "figure_png", "json_safe", "check_report_folder"]


def figure_png(figure) -> bytes:
    """A matplotlib figure as PNG bytes (110 dpi); the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def json_safe(value):
    """Plain JSON values: arrays as lists, NaN as null, and no drawing-only ``"plot"`` entries."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items() if k != "plot"}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if isinstance(value, float) and value != value:
        return None
    return value


def _evaluate(claim, config: dict, draw: bool):
    """Measure and judge under the claim's precision; draw if asked. Returns (verdict, summary, numbers, pngs)."""
    import jax
    import matplotlib

    matplotlib.use("Agg")
    with jax.enable_x64(claim.precision == "float64"):
        numbers = claim.measure(**config)
        verdict, summary = claim.judge(numbers)
    return verdict, summary, numbers, ([figure_png(f) for f in claim.draw(numbers)] if draw else [])


def _attempt(claim, config: dict, draw: bool) -> dict:
    """One evaluation timed (wall seconds, and the CPU seconds of the process that ran it, all its threads); a crash
    is reported as the verdict "error", and the other claims still run."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        verdict, summary, numbers, figures = _evaluate(claim, config, draw)
    except Exception as error:
        verdict, summary, figures = "error", f"{type(error).__name__}: {error}", []
        numbers = {"traceback": traceback.format_exc()}
    return {"verdict": verdict, "summary": summary, "numbers": json_safe(numbers), "figures": figures,
            "seconds": round(time.perf_counter() - start, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}


def run_control(claim, control, mode: str) -> dict:
    """Run one negative control of ``claim`` in ``mode`` through the claim's own measurement and rule."""
    result = _attempt(claim, control.config(claim.config(mode), mode), draw=False)
    return {"id": control.id, "description": control.description, "verdict": result["verdict"],
            "summary": result["summary"], "numbers": result["numbers"], "seconds": result["seconds"],
            "cpu_seconds": result["cpu_seconds"]}


def run_claim(claim, mode: str, controls: bool) -> dict:
    """Run ``claim`` in ``mode`` (and its controls if asked); the result as written to results.json, plus figures."""
    result = _attempt(claim, claim.config(mode), draw=True)
    checked = [run_control(claim, c, mode) for c in claim.controls] if controls else []
    return {"id": claim.id, "title": claim.title, "paper": claim.paper, "source": claim.source,
            "statement": claim.statement, "mode": mode, "config": claim.config(mode), **result,
            "controls": checked, "broken": any(c["verdict"] != "fails" for c in checked)}


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def provenance(mode: str, controls: bool) -> dict:
    """How a report was made: versions, commit, machine, date, mode and whether the controls ran."""
    return {"inertia": _version("inertia"), "git_commit": _git_commit(), "jax": _version("jax"),
            "jaxlib": _version("jaxlib"), "python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": mode, "controls": controls}


def _counts(results: list[dict]) -> dict:
    """Claims counted by paper kind (seed paper or supporting) and by verdict."""
    counts: dict = {"seed_paper": 0, "supporting": 0, "verdicts": {}, "broken": 0}
    for r in results:
        counts["supporting" if r["paper"] == "supporting" else "seed_paper"] += 1
        counts["verdicts"][r["verdict"]] = counts["verdicts"].get(r["verdict"], 0) + 1
        counts["broken"] += r["broken"]
    return counts


_PAGE = jinja2.Template("""<!doctype html><html><head><meta charset="utf-8"><title>inertia report</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.holds{color:#17723a;font-weight:bold}.fails{color:#b3261e;font-weight:bold}
.inconclusive{color:#8a6d00;font-weight:bold}.error{color:#b3261e;font-weight:bold}.broken{background:#fde7e4}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%}
section{border-top:2px solid #ddd;margin-top:2em}small{color:#555}</style></head><body>
<h1>inertia: reproduced claims</h1>
<p>Mode <b>{{ prov.mode }}</b>; {{ results|length }} claims ({{ counts.seed_paper }} from the five seed papers,
{{ counts.supporting }} supporting) in {{ "%.1f"|format(total) }} s;
{% for v, n in counts.verdicts.items() %}{{ n }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}.
{% if prov.controls %}Negative controls ran: every control must come out <i>fails</i>;
{{ counts.broken }} claim(s) have a control that did not.{% else %}Negative controls did not run
(<code>inertia reproduce --controls</code>).{% endif %}</p>
{% if explorer %}<p>Interactive: <a href="explore.html">the explorer</a> (a static page of precomputed settings written
by <code>inertia explore --static</code>; <code>inertia explore</code> serves the live one).</p>{% endif %}
<p><small>inertia {{ prov.inertia }}, commit {{ prov.git_commit }}, jax {{ prov.jax }} / jaxlib {{ prov.jaxlib }},
Python {{ prov.python }}, {{ prov.platform }}, {{ prov.cpu_count }} CPUs, {{ prov.date }}.</small></p>
<table><tr><th>claim</th><th>paper</th><th>title</th><th>verdict</th><th>controls</th><th>seconds</th></tr>
{% for r in results %}<tr{% if r.broken %} class="broken"{% endif %}><td><a href="#{{ r.id }}">{{ r.id }}</a></td>
<td>{{ r.paper }}</td><td>{{ r.title }}</td><td class="{{ r.verdict }}">{{ r.verdict }}</td>
<td>{% if r.controls %}{{ r.controls|selectattr("verdict", "equalto", "fails")|list|length }}/{{ r.controls|length }}
fail{% if r.broken %} <b>(broken)</b>{% endif %}{% else %}not run{% endif %}</td>
<td>{{ "%.1f"|format(r.total) }}</td></tr>{% endfor %}</table>
{% for r in results %}<section id="{{ r.id }}"><h2>{{ r.title }} <small>({{ r.id }})</small></h2>
<p><b>Paper:</b> {{ r.paper }}. <b>Source:</b> {{ r.source }}</p><p><b>Statement:</b> {{ r.statement }}</p>
<p><b>Verdict:</b> <span class="{{ r.verdict }}">{{ r.verdict }}</span>. {{ r.summary }}</p>
{% for png in r.pngs %}<img src="data:image/png;base64,{{ png }}">{% endfor %}
{% if r.controls %}<p><b>Negative controls</b> (each must come out <i>fails</i> under the same rule):</p>
<table><tr><th>control</th><th>what is wrong</th><th>verdict</th><th>what the rule saw</th></tr>
{% for c in r.controls %}<tr><td>{{ c.id }}</td><td>{{ c.description }}</td>
<td class="{{ c.verdict }}">{{ c.verdict }}</td>
<td>{{ c.summary }}</td></tr>{% endfor %}</table>{% endif %}
<details><summary>numbers and configuration ({{ "%.1f"|format(r.seconds) }} s)</summary>
<pre>{{ r.numbers_text }}</pre><pre>{{ r.config_text }}</pre></details></section>{% endfor %}
</body></html>""", autoescape=True)


def check_report_folder(out, explorer: bool = False) -> None:
    """Raise unless the report can be written to ``out`` (``index.html``, ``results.json``, ``figures/``, and
    ``explore.html`` with ``explorer``), before any claim runs."""
    files = ("index.html", "results.json") + (("explore.html",) if explorer else ())
    check_output_folder("--out", out, subfolders=("figures",), files=files)


def _render(results: list[dict], prov: dict, explorer: bool) -> str:
    return _PAGE.render(
        prov=prov, counts=_counts(results), total=sum(r["total"] for r in results), explorer=explorer,
        results=[dict(r, pngs=[base64.b64encode(p).decode() for p in r["figures"]],
                      numbers_text=json.dumps(r["numbers"], indent=1)[:20000],
                      config_text="configuration: " + html.unescape(json.dumps(r["config"]))) for r in results])


def _write(results: list[dict], prov: dict, out: Path, explorer: bool) -> None:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for stale in figures.glob("*.png"):  # figures of earlier runs must not stand beside this report
        stale.unlink()
    for r in results:  # also as files, for slides and papers
        for k, png in enumerate(r["figures"]):
            write_atomic(figures / f"{r['id']}-{k + 1}.png", png)
    write_atomic(out / "index.html", _render(results, prov, explorer).encode())
    summary = [{k: v for k, v in r.items() if k not in ("figures", "total")} for r in results]
    write_atomic(out / "results.json", json.dumps({"provenance": prov, "counts": _counts(results),
                                                    "claims": summary}, indent=1).encode())


def _run_claim_by_id(claim_id: str, mode: str, controls: bool) -> dict:
    """`run_claim` in a worker process, which finds the claim in its own registry."""
    from .experiments import CLAIMS

    return run_claim(CLAIMS[claim_id], mode, controls)


def _start_worker(x64: bool) -> None:
    """A worker runs claims under the parent's default precision (each claim still sets its own around its runs)."""
    import jax

    jax.config.update("jax_enable_x64", x64)


@contextlib.contextmanager
def _claim_runs(ids: list[str], mode: str, controls: bool, jobs: int, explorer_page: Path | None):
    """The results of `run_claim` for ``ids``, in that order, computed in ``jobs`` processes; the explorer's static
    page (if asked) is written beside them.

    With one job everything runs here, one claim after another. Otherwise the claims run in a pool of worker
    processes that are *spawned*, never forked (a forked JAX runtime can deadlock): each claim, with its controls,
    is one task, so a claim and its controls share the programs they compile. A claim's numbers do not depend on
    which process runs it: each sets its precision and seeds its keys itself.
    """
    from .experiments import CLAIMS

    if jobs == 1 or len(ids) + bool(explorer_page) == 1:
        yield (run_claim(CLAIMS[i], mode, controls) for i in ids)
        if explorer_page is not None:
            from .explore import write_static

            write_static(explorer_page)
        return
    import jax

    pool = ProcessPoolExecutor(min(jobs, len(ids) + bool(explorer_page)), mp_context=multiprocessing.get_context(
        "spawn"), initializer=_start_worker, initargs=(bool(jax.config.read("jax_enable_x64")),))
    try:
        page = None
        if explorer_page is not None:  # first (about 15 CPU-seconds), so that it overlaps the claims
            from .explore import write_static

            page = pool.submit(write_static, explorer_page)
        futures = [pool.submit(_run_claim_by_id, i, mode, controls) for i in ids]
        yield (f.result() for f in futures)
        if page is not None:
            page.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def reproduce(mode: str = "quick", only: list[str] | None = None, out: str | os.PathLike = "report",
              progress: bool = True, controls: bool = False, explorer: bool = False, jobs: int = 1) -> list[dict]:
    """Run the registered claims (all, or the ids in `only`) and, if asked, their negative controls.

    Writes ``out/index.html``, ``out/results.json`` and ``out/figures/`` (only this run's figures).

    **Arguments:** ``mode``: "quick" (all claims in minutes) or "full"; ``only``: claim ids; ``out``: folder;
    ``controls``: also run every claim's negative controls, each of which must come out "fails"; ``explorer``: also
    write ``out/explore.html``, the explorer's static page (`inertia.explore.write_static`), and link it from the
    report; ``jobs``: worker processes that run claims side by side (1: all in this process, one after another).
    Verdicts and numbers do not depend on ``jobs``; only the times do.
    **Returns:** one dict per claim with its id, paper, verdict, summary, numbers, controls and run time in seconds.
    """
    from .experiments import CLAIMS, PAPERS

    if mode not in ("quick", "full"):
        raise InertiaError(f"mode must be 'quick' or 'full'; got {mode!r}")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise InertiaError(f"jobs must be an integer >= 1; got {jobs!r}")
    # the report groups claims by paper, the seed papers first, keeping each paper's claims in registry order
    ids = sorted(CLAIMS, key=lambda i: PAPERS.index(CLAIMS[i].paper)) if not only else list(dict.fromkeys(only))
    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise InertiaError(f"unknown claim {unknown[0]!r}; known claims: {', '.join(CLAIMS)}")
    out = Path(out)
    check_report_folder(out, explorer)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with _claim_runs(ids, mode, controls, jobs, out / "explore.html" if explorer else None) as runs:
        bar = tqdm(ids, desc="reproduce", unit="claim", disable=not progress)
        for claim_id in bar:
            bar.set_postfix_str(claim_id)
            r = next(runs)
            r["total"] = r["seconds"] + sum(c["seconds"] for c in r["controls"])
            results.append(r)
            if progress:
                checked = f"; controls {sum(c['verdict'] == 'fails' for c in r['controls'])}/{len(r['controls'])} fail"
                tqdm.write(f"{claim_id}: {r['verdict']} ({r['total']:.1f} s{checked if controls else ''})")
    prov = provenance(mode, controls)
    _write(results, prov, out, explorer)
    return [{k: v for k, v in r.items() if k not in ("figures", "total")} for r in results]
