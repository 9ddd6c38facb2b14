"""`reproduce`: the report lists each claim with its paper, verdict, controls, deciding numbers, figures and
provenance."""

import json
import os
import re
import stat

import pytest

from inertia import InertiaError
from inertia.report import reproduce


def test_reproduce_writes_html_and_json_with_controls_and_provenance(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "stale-1.png").write_bytes(b"old")
    results = reproduce("quick", ["conventions-identical"], tmp_path, progress=False, controls=True)
    saved = json.loads((tmp_path / "results.json").read_text())
    claim = saved["claims"][0]
    assert claim["id"] == "conventions-identical" and claim["verdict"] == "holds"
    assert claim["numbers"]["max_relative_difference"] < 1e-12 and claim["seconds"] > 0
    assert [c["verdict"] for c in claim["controls"]] == ["fails"] * len(claim["controls"]) and not claim["broken"]
    assert {"id", "description", "verdict", "numbers"} <= set(claim["controls"][0])
    assert saved["provenance"]["controls"] is True and saved["provenance"]["mode"] == "quick"
    expected = {"inertia", "git_commit", "jax", "jaxlib", "python", "platform", "cpu_count", "date"}
    assert expected <= set(saved["provenance"])
    assert saved["counts"]["seed_paper"] + saved["counts"]["supporting"] == 1
    page = (tmp_path / "index.html").read_text()
    assert 'href="#conventions-identical"' in page and "data:image/png;base64," in page and "lr-not-rescaled" in page
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["conventions-identical-1.png"]
    figure = tmp_path / "figures" / "conventions-identical-1.png"
    for path in (tmp_path / "index.html", tmp_path / "results.json", figure):
        assert os.stat(path).st_mode & stat.S_IROTH
    assert results[0]["verdict"] == "holds"


def test_the_report_links_the_explorers_static_page_when_asked(tmp_path, monkeypatch):
    import functools

    from inertia import explore

    small = functools.partial(explore.write_static, steps=10, lrs=2, momenta=(0.0, 0.5), objectives=("quadratic",))
    monkeypatch.setattr(explore, "write_static", small)
    reproduce("quick", ["conventions-identical"], tmp_path / "plain", progress=False)
    assert 'href="explore.html"' not in (tmp_path / "plain" / "index.html").read_text()
    assert not (tmp_path / "plain" / "explore.html").exists()
    reproduce("quick", ["conventions-identical"], tmp_path / "linked", progress=False, explorer=True)
    assert 'href="explore.html"' in (tmp_path / "linked" / "index.html").read_text()
    page = (tmp_path / "linked" / "explore.html").read_text()
    assert "<title>inertia explore (static)</title>" in page and not re.search(r"<script[^>]+src=", page)


def test_reproduce_refuses_an_output_folder_that_is_a_file_before_running(tmp_path):
    target = tmp_path / "report"
    target.write_text("not a folder")
    with pytest.raises(InertiaError, match="--out"):
        reproduce("quick", ["conventions-identical"], target, progress=False)
