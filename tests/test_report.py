"""`reproduce`: the report lists each claim with its verdict, the deciding numbers, run time and figures."""

import json

from inertia.experiments import CLAIMS
from inertia.report import reproduce


def test_every_claim_has_a_statement_source_and_both_configurations():
    for claim in CLAIMS.values():
        assert claim.statement and claim.source and claim.title
        assert isinstance(claim.quick, dict) and isinstance(claim.full, dict)


def test_reproduce_writes_html_and_json_with_the_deciding_numbers(tmp_path):
    results = reproduce("quick", ["conventions-identical"], tmp_path, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    claim = saved["claims"][0]
    assert claim["id"] == "conventions-identical" and claim["verdict"] == "holds"
    assert claim["numbers"]["max_relative_difference"] < 1e-12 and claim["seconds"] > 0
    page = (tmp_path / "index.html").read_text()
    assert 'href="#conventions-identical"' in page and "data:image/png;base64," in page
    assert (tmp_path / "figures" / "conventions-identical-1.png").exists()
    assert results[0]["verdict"] == "holds"
