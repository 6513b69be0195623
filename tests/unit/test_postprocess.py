"""Output-postprocessing defenses, ensembles, and their measured effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.report_check import check_section

from robustcore.attacks.inference import MembershipInference
from robustcore.defenses.ensemble import (
    Ensemble,
    abstained,
    answer_stats,
    answered_labels,
    build_ensemble,
    combine,
    member_plan,
)
from robustcore.defenses.postprocess import (
    DEFENSES,
    LabelOnly,
    NoDefense,
    ReverseSigmoid,
    Rounding,
    Temperature,
    TopK,
    make_defense,
    wrap,
)
from robustcore.errors import ValidationError
from robustcore.experiments import Target
from robustcore.experiments.postprocessing import Postprocessing, evaluate_output_defenses
from robustcore.models import TrainRecipe, predict_logits, train_entry
from robustcore.runs import JobRunner, ResultStore

OVERFIT = TrainRecipe(epochs=30, train_size=300)


@pytest.fixture(scope="module")
def overfit(mnist5k):
    return train_entry("mlp", mnist5k, OVERFIT)


@pytest.fixture(scope="module")
def test_logits(overfit, mnist5k):
    return predict_logits(overfit.model, mnist5k.x_test)


def _probs(seed: int = 0, n: int = 500, c: int = 10, scale: float = 4.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, c, generator=gen) * scale, dim=1)


# -- output defenses --------------------------------------------------------------------


def test_rounding_keeps_every_label_and_the_accuracy(test_logits, mnist5k):
    probs = torch.softmax(test_logits, 1)
    for decimals in (0, 1, 2, 4):
        out = Rounding(decimals=decimals)(probs)
        assert torch.equal(out.argmax(1), probs.argmax(1)), decimals
        scaled = out.double() * 10**decimals
        assert torch.allclose(scaled, scaled.round(), atol=1e-3)  # on the grid
        assert (out - probs).abs().max() <= 10.0**-decimals + 1e-6
    acc = (Rounding(2).apply(test_logits).argmax(1) == mnist5k.y_test).float().mean()
    assert acc == (test_logits.argmax(1) == mnist5k.y_test).float().mean()


def test_rounding_breaks_ties_at_the_top_in_favour_of_the_model():
    probs = torch.tensor([[0.44, 0.46, 0.10], [0.496, 0.504, 0.0]])
    out = Rounding(decimals=1)(probs)
    assert out.argmax(1).tolist() == [1, 1]
    assert out[1].tolist() == pytest.approx([0.4, 0.6, 0.0])


def test_top_k_keeps_the_k_largest_values():
    probs = _probs()
    out = TopK(k=3)(probs)
    assert ((out > 0).sum(1) == 3).all()
    top = probs.topk(3, dim=1)
    torch.testing.assert_close(out.gather(1, top.indices), top.values)
    assert torch.equal(TopK(k=10)(probs), probs)


def test_label_only_returns_one_hot_labels():
    probs = _probs(1)
    out = LabelOnly()(probs)
    assert torch.equal(out.sum(1), torch.ones(len(probs)))
    assert torch.equal(out.argmax(1), probs.argmax(1))
    assert set(out.unique().tolist()) == {0.0, 1.0}


def _reverse_sigmoid_reference(p: np.ndarray, beta: float, gamma: float) -> np.ndarray:
    """Lee et al. (2019) as written in the Adversarial Robustness Toolbox (numpy)."""
    clipped = np.clip(p, 1e-9, 1 - 1e-9)
    r = beta * (1.0 / (1.0 + np.exp(-gamma * np.log(clipped / (1.0 - clipped)))) - 0.5)
    q = np.clip(p - r, 0.0, 1.0)
    return q / q.sum(axis=-1, keepdims=True)


def test_reverse_sigmoid_matches_the_reference_formula():
    probs = _probs(2)
    for beta, gamma in ((1.0, 0.1), (0.5, 1.0), (2.0, 0.2)):
        out = ReverseSigmoid(beta=beta, gamma=gamma)(probs)
        expected = _reverse_sigmoid_reference(probs.double().numpy(), beta, gamma)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
        torch.testing.assert_close(out.sum(1), torch.ones(len(probs)))
    torch.testing.assert_close(ReverseSigmoid(beta=0.0)(probs), probs)
    # The small probabilities are lifted: the answer is much flatter than the model's.
    assert ReverseSigmoid()(probs).max(1).values.mean() < probs.max(1).values.mean() - 0.2


def test_temperature_is_softmax_of_scaled_logits():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(200, 10, generator=gen) * 5
    t = Temperature(temperature=4.0)
    torch.testing.assert_close(t.apply(logits), torch.softmax(logits / 4.0, 1))
    torch.testing.assert_close(t(torch.softmax(logits, 1)), t.apply(logits), atol=1e-5, rtol=0)
    assert torch.equal(t.apply(logits).argmax(1), logits.argmax(1))
    assert t.apply(logits).max(1).values.mean() < torch.softmax(logits, 1).max(1).values.mean()


def test_defenses_work_on_stacked_batches():
    probs = torch.stack([_probs(4, n=20), _probs(5, n=20)])  # (shadow models, N, C)
    for name, cls in DEFENSES.items():
        out = cls()(probs)
        assert out.shape == probs.shape, name
        torch.testing.assert_close(out[1], cls()(probs[1]))


def test_make_defense_validates_names_and_parameters():
    assert make_defense("rounding", {"decimals": 3}) == Rounding(decimals=3)
    with pytest.raises(ValidationError, match="Unknown output defense"):
        make_defense("blur")
    with pytest.raises(ValidationError, match="at most 8"):
        make_defense("rounding", {"decimals": 9})
    with pytest.raises(ValidationError, match="at least 1"):
        TopK(k=0)
    with pytest.raises(ValidationError, match="class probabilities"):
        Rounding()(torch.ones(5))


def test_wrapped_api_counts_queries_and_returns_plain_tensors(overfit, mnist5k):
    api = wrap(overfit.model, Rounding(decimals=1))
    out = api(mnist5k.x_test[:64])
    assert out.shape == (64, 10) and api.queries == 64
    api(mnist5k.x_test[:10])
    assert api.queries == 74
    assert not out.requires_grad and not out.is_inference()  # usable as training targets
    plain = wrap(overfit.model)(mnist5k.x_test[:64])
    torch.testing.assert_close(
        plain, torch.softmax(predict_logits(overfit.model, mnist5k.x_test[:64]), 1)
    )
    assert not hasattr(api, "model") and not hasattr(api, "logits")
    with pytest.raises(ValidationError, match="OutputDefense"):
        wrap(overfit.model, "rounding")


# -- ensembles --------------------------------------------------------------------------


def test_combine_rules():
    # 3 members, 2 inputs, 3 classes.
    p = torch.tensor(
        [
            [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]],
            [[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]],
            [[0.1, 0.8, 0.1], [0.1, 0.2, 0.7]],
        ]
    )
    torch.testing.assert_close(combine(p, "average"), p.mean(0))
    vote = combine(p, "vote")
    assert vote.argmax(1).tolist() == [0, 1]  # 2 votes for class 0; a 1-1-1 tie → mean prob
    torch.testing.assert_close(vote.sum(1), torch.ones(2))
    unanimous = combine(p, "reject", 1.0)
    assert abstained(unanimous).tolist() == [True, True]
    majority = combine(p, "reject", 0.6)
    assert abstained(majority).tolist() == [False, True]
    assert answered_labels(majority).tolist() == [0, -1]
    stats = answer_stats(majority, torch.tensor([0, 1]))
    assert stats == {
        "accuracy": 0.5,
        "selective_accuracy": 1.0,
        "coverage": 0.5,
        "abstention_rate": 0.5,
    }
    with pytest.raises(ValidationError, match="Unknown rule"):
        combine(p, "median")


def test_ensemble_members_come_from_the_zoo_and_member_zero_is_the_target(overfit, mnist5k):
    ens = build_ensemble(mnist5k, Ensemble(members=3), arch="mlp", recipe=OVERFIT)
    assert ens.keys[0] == overfit.key and len(set(ens.keys)) == 3
    assert ens.from_cache >= 1
    again = build_ensemble(mnist5k, Ensemble(members=3), arch="mlp", recipe=OVERFIT)
    assert again.from_cache == 3 and again.keys == ens.keys
    stats = {
        rule: answer_stats(ens.answer(mnist5k.x_test, rule), mnist5k.y_test)
        for rule in ("average", "vote", "reject")
    }
    single = float((wrap(overfit.model)(mnist5k.x_test).argmax(1) == mnist5k.y_test).float().mean())
    # Seeds 0-4 of the members (bench/threshold_spread.py): averaging minus the single model
    # -0.002-0.004; reject abstains on 0.065-0.084 and its selective accuracy leads
    # averaging by 0.029-0.040.
    assert stats["average"]["accuracy"] >= single - 0.01
    assert stats["reject"]["abstention_rate"] > 0.0
    assert stats["reject"]["selective_accuracy"] > stats["average"]["accuracy"]
    api = ens.api("reject")
    assert api(mnist5k.x_test[:50]).shape == (50, 10) and api.queries == 50
    mixed = member_plan(mnist5k, Ensemble(members=4, architectures="mixed"), "mlp", OVERFIT)
    # The target's architecture first, then the others that fit (the slow ResNet left out).
    assert [a for a, _ in mixed] == ["mlp", "logreg", "small_cnn", "lenet5"]
    assert [r.seed for _, r in mixed] == [0, 1, 2, 3]


# -- measured effects -------------------------------------------------------------------


def test_label_only_lowers_membership_leakage_and_rounding_keeps_accuracy(overfit, mnist5k):
    summary, per_attack, info = evaluate_output_defenses(
        overfit.model,
        mnist5k,
        arch="mlp",
        recipe=OVERFIT,
        defenses=[NoDefense(), Rounding(decimals=1), LabelOnly(), Temperature(temperature=3.0)],
        membership=MembershipInference(attacks="threshold", max_examples=300),
    )
    rows = summary.set_index("key")
    assert rows.loc["rounding", "accuracy"] == rows.loc["none", "accuracy"]
    assert rows.loc["rounding", "label_agreement"] == 1.0
    assert rows.loc["temperature", "label_agreement"] == 1.0
    # Seeds 0-4 of the target and candidates (bench/threshold_spread.py): label-only lowers
    # the best AUC and the loss AUC by 0.067-0.111.
    assert rows.loc["label_only", "mi_auc"] < rows.loc["none", "mi_auc"] - 0.03
    assert rows.loc["label_only", "loss_auc"] < rows.loc["none", "loss_auc"]
    assert set(per_attack["attack"]) == {"loss", "confidence"}
    assert info["per_side"] == 300 and "shadow_models" not in info


def test_label_only_output_lowers_extraction_at_equal_budget(overfit, mnist5k):
    extraction = pytest.importorskip("robustcore.attacks.extraction")
    config = extraction.ModelStealing(epochs=20, seed=0)
    reference = wrap(overfit.model)
    probs = extraction.steal(wrap(overfit.model), mnist5k, config, budget=300, reference=reference)
    label = extraction.steal(
        wrap(overfit.model, LabelOnly()), mnist5k, config, budget=300, reference=reference
    )
    # Seeds 0-4 of the target and the student (bench/threshold_spread.py): 0.032-0.045 lower.
    assert label.fidelity < probs.fidelity
    assert label.queries == probs.queries == 300


def test_postprocessing_experiment_compares_the_chosen_defenses(overfit, mnist5k, tmp_path):
    from robustcore.attacks.extraction import ModelStealing

    exp = Postprocessing(
        defenses=("rounding", "label_only"),
        rounding=Rounding(decimals=1),
        rules=("average", "reject"),
        membership=MembershipInference(attacks="threshold", max_examples=300),
        steal_budget=200,
        student=ModelStealing(epochs=5),
    ).on(Target.zoo("mlp", OVERFIT))
    assert [d.short() for d in exp.output_defenses()] == [
        "No defense",
        "Rounding (1 decimals)",
        "Label only",
    ]
    # Settings of what does not run stay out of the key.
    params = exp.to_dict()
    assert "rounding" in params and "top_k" not in params and "temperature" not in params
    plain = exp.replace(extraction=False)
    assert "student" not in plain.to_dict() and "steal_budget" not in plain.to_dict()
    assert plain.replace(student=ModelStealing(epochs=9)).spec(mnist5k) == plain.spec(mnist5k)
    assert "ensemble" not in exp.replace(rules=None).to_dict()
    # The page's default attacker trains 4 shadow models.
    assert Postprocessing().membership.shadow_models == 4
    runner = JobRunner(ResultStore(tmp_path / "runs.sqlite"), max_workers=1)
    try:
        job = runner.submit(exp, mnist5k)
        record = job.wait(600).result
        assert job.state == "done", job.error
        result = Postprocessing.result(record)
        check_section(record, {"effects"}, {"Membership inference"})
        summary = result.summary_table()
        keys = ["none", "rounding", "label_only", "ensemble_average", "ensemble_reject"]
        assert list(summary["key"]) == keys
        assert summary["defense"].iloc[3] == "Ensemble ×3 (average)"
        rows = summary.set_index("key")
        assert rows.loc["rounding", "accuracy"] == rows.loc["none", "accuracy"]
        assert rows.loc["label_only", "loss_auc"] < rows.loc["none", "loss_auc"]
        assert rows.loc["ensemble_reject", "abstention_rate"] > 0.0
        assert result.has_extraction and (summary["queries"] == 200).all()
        assert summary["extraction_fidelity"].between(0.0, 1.0).all()
        assert set(result.per_attack()["defense_key"]) == set(keys)
        assert result.per_side == 300 and result.shadows() is None
        assert result.ensemble()["members"] == 3 and len(result.ensemble()["member_accuracy"]) == 3
        assert 0.5 < result.undefended_accuracy <= 1
        # The engine function gives the same table.
        direct, _, _ = evaluate_output_defenses(
            overfit.model,
            mnist5k,
            arch="mlp",
            recipe=OVERFIT,
            defenses=exp.output_defenses(),
            ensemble=exp.ensemble,
            rules=["average", "reject"],
            membership=exp.membership,
        )
        cols = ["key", "accuracy", "label_agreement", "mi_auc", "loss_auc"]
        pd.testing.assert_frame_equal(summary[cols], direct[cols], check_dtype=False)
        assert runner.submit(exp, mnist5k).from_store
    finally:
        runner.shutdown()
    # An uploaded model of unknown make: the architecture of the copies must be chosen.
    upload = Target.upload(overfit.model, "0123456789abcdef")
    with pytest.raises(ValidationError, match="unknown for this uploaded model"):
        exp.on(upload).spec(mnist5k)
    assert exp.replace(shadow_arch="mlp").on(upload).spec(mnist5k)["params"]["shadow_arch"] == "mlp"


def test_postprocessing_command():
    import contextlib
    import io
    import json

    from robustcore.cli import main

    def cli(argv: list[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse refuses a flag value
                rc = int(exc.code)
        return rc, out.getvalue(), err.getvalue()

    argv = ["postprocessing", "--dataset", "digits", "--arch", "logreg", "--recipe.epochs", "3"]
    argv += ["--defenses", "label_only", "--rules", "none", "--extraction", "false"]
    argv += ["--membership.attacks", "threshold", "--membership.max-examples", "100"]
    rc, out, err = cli(argv)
    assert rc == 0, err
    assert "# defenses" in out and "Label only" in out
    summary = json.loads(out[out.index("{") :])
    assert summary["per_side"] == 100
    assert summary["label_only.accuracy"] == summary["none.accuracy"]  # the label is kept
    rc, _, err = cli([*argv, "--rules", "median"])
    assert rc == 2 and "Ensemble consensus rules must be one of" in err
