"""The Home page's robustness scorecard (robustcore.runs.scorecard_job)."""

from __future__ import annotations

import pytest
import torch

from robustcore.errors import ValidationError
from robustcore.runs.scorecard_job import (
    VERDICTS,
    ScorecardPlan,
    default_values,
    run_scorecard,
    scorecard_spec,
)

SMALL = {"n": 60, "n_query": 10, "members": 100, "pgd_steps": 10, "query_budget": 300}


@pytest.fixture(scope="module")
def card(tiny_cnn, mnist5k):
    torch.set_num_threads(1)
    return run_scorecard(tiny_cnn.model, mnist5k, ScorecardPlan(**SMALL))


def test_every_question_has_a_row_with_a_verdict_and_a_page(card):
    table = card.tables["scorecard"]
    assert list(table["area"]) == [
        "accuracy",
        "general robustness",
        "white-box evasion",
        "white-box evasion",
        "evaluation",
        "black-box evasion",
        "privacy",
    ]
    assert set(table["verdict"]) <= set(VERDICTS.values())
    assert table["page"].str.len().min() > 0
    assert ((table["value"] >= 0) & (table["value"] <= 1)).all()


def test_numbers_behave_as_attacks_should(card):
    m = card.metrics
    # More budget never helps the model; the attack beats random noise of the same size.
    assert m["pgd_large_accuracy"] <= m["pgd_small_accuracy"] <= m["clean_accuracy"]
    assert m["clean_accuracy"] > 0.8 and m["pgd_large_accuracy"] < 0.2
    assert m["reaches_chance"]
    assert 0.0 <= m["simba_success"] <= 1.0 and 0.3 < m["membership_auc"] < 0.8


def test_spec_and_settings_are_validated(mnist5k):
    with pytest.raises(ValidationError, match="large ε"):
        ScorecardPlan(eps_small=0.3, eps_large=0.1)
    with pytest.raises(ValidationError):
        ScorecardPlan(n=5)
    a = scorecard_spec(mnist5k, "run-1", ScorecardPlan(), 0)
    b = scorecard_spec(mnist5k, "run-1", ScorecardPlan(noise_std=0.2), 0)
    assert a != b and a["kind"] == "scorecard" and a["fingerprint"] == mnist5k.fingerprint()
    assert default_values(mnist5k) == {}
