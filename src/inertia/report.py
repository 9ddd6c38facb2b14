"""`reproduce`: run claims and write one self-contained HTML page (figures embedded) and results.json."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
import time
import traceback
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ._checks import InertiaError  # noqa: E402
from .experiments import CLAIMS  # noqa: E402

__all__ = ["reproduce"]


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if isinstance(value, float) and value != value:
        return None
    return value


def _run_claim(claim, mode: str) -> dict:
    start = time.perf_counter()
    try:
        outcome = claim.run(**(claim.quick if mode == "quick" else claim.full))
        verdict, summary, numbers = outcome.verdict, outcome.summary, outcome.numbers
        figures = [_png(f) for f in outcome.figures]
    except Exception as error:  # a failing claim is reported, and the others still run
        verdict, summary, numbers, figures = "error", f"{type(error).__name__}: {error}", {}, []
        numbers["traceback"] = traceback.format_exc()
    return {
        "id": claim.id, "title": claim.title, "source": claim.source, "statement": claim.statement,
        "mode": mode, "config": claim.quick if mode == "quick" else claim.full, "verdict": verdict,
        "summary": summary, "numbers": _json_safe(numbers), "seconds": round(time.perf_counter() - start, 2),
        "figures": figures,
    }


_PAGE = jinja2.Template("""<!doctype html><html><head><meta charset="utf-8"><title>inertia report</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.holds{color:#17723a;font-weight:bold}.fails{color:#b3261e;font-weight:bold}
.inconclusive{color:#8a6d00;font-weight:bold}.error{color:#b3261e;font-weight:bold}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%}
section{border-top:2px solid #ddd;margin-top:2em}</style></head><body>
<h1>inertia: reproduced claims</h1>
<p>Mode <b>{{ mode }}</b>; {{ results|length }} claims in {{ "%.1f"|format(total) }} s;
{% for v, n in counts.items() %}{{ n }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>
<table><tr><th>claim</th><th>title</th><th>verdict</th><th>seconds</th></tr>
{% for r in results %}<tr><td><a href="#{{ r.id }}">{{ r.id }}</a></td><td>{{ r.title }}</td>
<td class="{{ r.verdict }}">{{ r.verdict }}</td><td>{{ "%.1f"|format(r.seconds) }}</td></tr>{% endfor %}</table>
{% for r in results %}<section id="{{ r.id }}"><h2>{{ r.title }} <small>({{ r.id }})</small></h2>
<p><b>Source:</b> {{ r.source }}</p><p><b>Statement:</b> {{ r.statement }}</p>
<p><b>Verdict:</b> <span class="{{ r.verdict }}">{{ r.verdict }}</span>. {{ r.summary }}</p>
{% for png in r.pngs %}<img src="data:image/png;base64,{{ png }}">{% endfor %}
<details><summary>numbers and configuration ({{ "%.1f"|format(r.seconds) }} s)</summary>
<pre>{{ r.numbers_text }}</pre><pre>{{ r.config_text }}</pre></details></section>{% endfor %}
</body></html>""", autoescape=True)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def reproduce(mode: str = "quick", only: list[str] | None = None, out: str | os.PathLike = "report",
              progress: bool = True) -> list[dict]:
    """Run the registered claims (all, or the ids in `only`); write ``out/index.html``, ``out/results.json``, ``out/figures/``.

    **Arguments:** ``mode``: "quick" (all claims in minutes) or "full"; ``only``: claim ids; ``out``: folder.
    **Returns:** one dict per claim with its id, verdict, summary, numbers and run time in seconds.
    """
    if mode not in ("quick", "full"):
        raise InertiaError(f"mode must be 'quick' or 'full'; got {mode!r}")
    ids = list(CLAIMS) if not only else list(only)
    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise InertiaError(f"unknown claim {unknown[0]!r}; known claims: {', '.join(CLAIMS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    bar = tqdm(ids, desc="reproduce", unit="claim", disable=not progress)
    for claim_id in bar:
        bar.set_postfix_str(claim_id)
        results.append(_run_claim(CLAIMS[claim_id], mode))
        tqdm.write(f"{claim_id}: {results[-1]['verdict']} ({results[-1]['seconds']:.1f} s)") if progress else None
    counts = {}
    for r in results:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    page = _PAGE.render(
        mode=mode, total=sum(r["seconds"] for r in results), counts=counts,
        results=[dict(r, pngs=[base64.b64encode(p).decode() for p in r["figures"]],
                      numbers_text=json.dumps(r["numbers"], indent=1)[:20000],
                      config_text="configuration: " + html.unescape(json.dumps(r["config"]))) for r in results],
    )
    _write_atomic(out / "index.html", page)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    for r in results:  # also as files, for slides and papers
        for k, png in enumerate(r["figures"]):
            (figures / f"{r['id']}-{k + 1}.png").write_bytes(png)
    summary = [{k: v for k, v in r.items() if k != "figures"} for r in results]
    _write_atomic(out / "results.json", json.dumps({"mode": mode, "claims": summary}, indent=1))
    return summary
