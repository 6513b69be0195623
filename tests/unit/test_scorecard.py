"""The Home page's robustness scorecard (robustcore.experiments.scorecard)."""

from __future__ import annotations

import pytest
import torch

from robustcore.data import load
from robustcore.errors import ValidationError
from robustcore.experiments import Target
from robustcore.experiments.scorecard import VERDICTS, Scorecard

SMALL = {"n": 60, "n_query": 10, "members": 100, "pgd_steps": 10, "query_budget": 300}


@pytest.fixture(scope="module")
def card(tiny_cnn, mnist5k):
    torch.set_num_threads(1)
    return Scorecard(**SMALL).run(mnist5k, tiny_cnn.model)


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
    # Seeds 0-4 of the model and the plan (bench/threshold_spread.py), 60 images: clean
    # accuracy 0.833-0.933 (bound half the spread below the lowest), PGD at the large ε
    # 0.000-0.033, chance reached in every seed, membership AUC 0.509-0.572.
    assert m["clean_accuracy"] > 0.78 and m["pgd_large_accuracy"] < 0.2
    assert m["reaches_chance"]
    assert 0.0 <= m["simba_success"] <= 1.0 and 0.3 < m["membership_auc"] < 0.8


def test_spec_and_settings_are_validated(mnist5k):
    with pytest.raises(ValidationError, match="large ε"):
        Scorecard(eps_small=0.3, eps_large=0.1)
    with pytest.raises(ValidationError):
        Scorecard(n=5)
    target = Target.zoo("small_cnn")
    a = Scorecard().on(target).spec(mnist5k)
    b = Scorecard(noise_std=0.2).on(target).spec(mnist5k)
    c = Scorecard().on(target.with_recipe(seed=1)).spec(mnist5k)
    assert len({str(a), str(b), str(c)}) == 3  # settings and the model are in the key
    assert a["kind"] == "scorecard" and a["fingerprint"] == mnist5k.fingerprint()
    assert a["target"] == target.spec() and a["params"]["noise_std"] == 0.1
    with pytest.raises(ValidationError, match="choose a model"):
        Scorecard().spec(mnist5k)
    assert Scorecard.defaults(mnist5k) == {}
    assert Scorecard.defaults(load("breast_cancer"))["eps_large"] == 1.0
