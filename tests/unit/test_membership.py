"""Membership inference: metrics, LiRA, Shokri, the real attacks on an overfit model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.report_check import check_section

from robustcore.attacks.inference import (
    ATTACKS,
    MembershipInference,
    attack_scores,
    auc,
    evaluate_attacks,
    fpr_resolution,
    lira_scores,
    logit_confidence,
    membership_inference,
    membership_metrics,
    membership_split,
    roc_curve,
    roc_table,
    shadow_keep,
    shokri_scores,
    tpr_at_fpr,
)
from robustcore.data import load
from robustcore.defenses.postprocess import LabelOnly
from robustcore.errors import ValidationError
from robustcore.experiments import Target
from robustcore.experiments.membership_inference import MembershipInferenceExperiment
from robustcore.experiments.overfitting_sweep import OverfittingSweep, overfitting_sweep
from robustcore.models import TrainRecipe, train_entry
from robustcore.runs import JobRunner, ResultStore

OVERFIT = TrainRecipe(epochs=30, train_size=300)


@pytest.fixture(scope="module")
def overfit(mnist5k):
    """An MLP that memorises 300 digits (100% train accuracy, ~80% test accuracy)."""
    return train_entry("mlp", mnist5k, OVERFIT)


@pytest.fixture(scope="module")
def attacked(overfit, mnist5k):
    config = MembershipInference(shadow_models=8, max_examples=300, seed=0)
    return membership_inference(overfit.model, mnist5k, config, arch="mlp", recipe=OVERFIT)


# -- metrics --------------------------------------------------------------------------


def test_roc_and_auc_match_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc

    rng = np.random.default_rng(0)
    member = rng.random(400) < 0.5
    scores = np.round(rng.normal(size=400) + member * 0.7, 1)  # many ties
    fpr, tpr, thr = roc_curve(scores, member)
    sk_fpr, sk_tpr, _ = sk_roc(member, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    assert auc(fpr, tpr) == pytest.approx(roc_auc_score(member, scores), abs=1e-12)
    assert thr[0] == np.inf and np.all(np.diff(thr[1:]) < 0)


def test_metrics_of_perfect_inverted_and_tied_scores():
    member = np.array([True] * 50 + [False] * 50)
    perfect = membership_metrics(member.astype(float), member)
    assert perfect["auc"] == 1.0 and perfect["tpr@0.1%fpr"] == 1.0
    assert perfect["advantage"] == 1.0 and perfect["balanced_accuracy"] == 1.0
    inverted = membership_metrics(-member.astype(float), member)
    assert inverted["auc"] == 0.0 and inverted["tpr@1%fpr"] == 0.0
    tied = membership_metrics(np.zeros(100), member)
    assert tied["auc"] == 0.5 and tied["advantage"] == 0.0
    assert perfect["fp_allowed@1%"] == 0 and fpr_resolution(1000, 0.001) == 1


def test_tpr_at_fpr_reads_the_curve_without_interpolating():
    fpr = np.array([0.0, 0.0, 0.004, 0.02, 1.0])
    tpr = np.array([0.0, 0.10, 0.30, 0.50, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.001) == 0.10
    assert tpr_at_fpr(fpr, tpr, 0.01) == 0.30


def test_roc_table_keeps_every_low_fpr_point():
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(5000, bool), np.zeros(5000, bool)]
    scores = rng.normal(size=10_000) + member
    full_fpr, full_tpr, _ = roc_curve(scores, member)
    thin = roc_table(scores, member, max_points=500)
    assert len(thin) < 1500
    low = full_fpr <= 0.02
    np.testing.assert_allclose(thin["fpr"].to_numpy()[: low.sum()], full_fpr[low])
    assert thin["fpr"].iloc[-1] == 1.0 and thin["tpr"].iloc[-1] == 1.0


def test_roc_needs_both_classes_and_no_nan():
    with pytest.raises(ValidationError, match="both members and non-members"):
        roc_curve([0.1, 0.2], [True, True])
    with pytest.raises(ValidationError, match="NaN"):
        roc_curve([0.1, np.nan], [True, False])


# -- building blocks ------------------------------------------------------------------


def test_logit_confidence_is_the_log_odds_and_stays_finite():
    p = torch.tensor([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    phi = logit_confidence(p, y)
    assert phi[0].item() == pytest.approx(np.log(0.7 / 0.3))
    assert torch.isfinite(phi).all() and phi[1] < -100  # label-only answer, wrong class
    confident = torch.softmax(torch.tensor([[30.0, 0.0]]), 1)  # 1 − p rounds to 0 in float32
    assert logit_confidence(confident, torch.tensor([0])).item() == pytest.approx(30.0, abs=0.01)


def test_shadow_keep_puts_every_example_in_exactly_half():
    keep = shadow_keep(1000, 8, seed=3)
    assert keep.shape == (8, 1000)
    assert (keep.sum(0) == 4).all()
    assert torch.equal(keep, shadow_keep(1000, 8, seed=3))
    assert not torch.equal(keep, shadow_keep(1000, 8, seed=4))


def test_lira_separates_synthetic_in_and_out_gaussians():
    gen = torch.Generator().manual_seed(0)
    k, n = 16, 400
    shadow_in = shadow_keep(n, k, seed=0)
    hardness = torch.randn(n, generator=gen) * 3  # per-example offsets the global test misses
    shadow_phi = hardness + 2.0 * shadow_in + torch.randn(k, n, generator=gen) * 0.5
    member = torch.arange(n) < n // 2
    target_phi = hardness + 2.0 * member + torch.randn(n, generator=gen) * 0.5
    scores = lira_scores(target_phi, shadow_phi, shadow_in)
    for name, s in scores.items():
        assert membership_metrics(s, member)["auc"] > 0.9, name
    # The global threshold cannot undo the per-example hardness.
    assert membership_metrics(target_phi, member)["auc"] < 0.75


def test_lira_needs_two_in_and_two_out_models():
    keep = shadow_keep(10, 2, seed=0)
    with pytest.raises(ValidationError, match="at least 2 IN and 2 OUT"):
        lira_scores(torch.zeros(10), torch.zeros(2, 10), keep)


def test_shokri_attack_classifier_learns_a_visible_signal():
    gen = torch.Generator().manual_seed(0)
    k, n, c = 8, 300, 4
    y = torch.randint(0, c, (n,), generator=gen)
    shadow_in = shadow_keep(n, k, seed=1)

    def answers(member: torch.Tensor) -> torch.Tensor:
        logits = torch.randn(*member.shape, c, generator=gen)
        boost = torch.where(member, 4.0, 1.0)
        logits.scatter_add_(-1, y.expand(member.shape).unsqueeze(-1), boost.unsqueeze(-1))
        return torch.softmax(logits, -1)

    member = torch.arange(n) < n // 2
    for mode in ("per_class", "global"):
        s = shokri_scores(answers(shadow_in), shadow_in, answers(member), y, mode=mode)
        assert membership_metrics(s, member)["auc"] > 0.85, mode


def test_membership_split_is_balanced_disjoint_and_seeded(mnist5k):
    split = membership_split(mnist5k, train_size=300, max_per_side=200, seed=5)
    assert split.per_side == 200 and int(split.is_member.sum()) == 200
    assert int(split.member_index.max()) < 300
    assert split.pool_x.shape[0] == 600  # candidates + 200 more: twice the target's size
    torch.testing.assert_close(split.pool_x[:400], split.x)
    torch.testing.assert_close(split.x[:200], mnist5k.x_train[split.member_index])
    torch.testing.assert_close(split.x[200:], mnist5k.x_test[split.nonmember_index])
    again = membership_split(mnist5k, train_size=300, max_per_side=200, seed=5)
    assert torch.equal(split.member_index, again.member_index)
    capped = membership_split(mnist5k, max_per_side=10_000)
    assert capped.per_side == mnist5k.n_test  # the test set caps the balanced split


def test_config_and_values_are_validated():
    with pytest.raises(ValidationError, match="even"):
        MembershipInference(shadow_models=7)
    with pytest.raises(ValidationError):
        MembershipInference(shadow_models=2)
    # The sweep's values: text or numbers, checked for the knob, sorted in the spec.
    assert OverfittingSweep(knob="epochs", values="40, 1; 5").values == (1, 5, 40)
    assert OverfittingSweep(knob="weight_decay", values="0, 0.001").values == (0.0, 0.001)
    assert OverfittingSweep(knob="train_size").values == (100, 250, 500, 1000, 4000)
    with pytest.raises(ValidationError, match="whole numbers"):
        OverfittingSweep(knob="epochs", values="1.5")
    with pytest.raises(ValidationError, match="must be a number"):
        OverfittingSweep(knob="train_size", values="ten")
    with pytest.raises(ValidationError, match="between 0 and 1"):
        OverfittingSweep(knob="weight_decay", values=(0.5, 2))


# -- real attacks -----------------------------------------------------------------------


def test_overfit_model_leaks_membership(attacked, overfit):
    # Seeds 0-4 of the target and the attack (bench/threshold_spread.py): training and
    # member accuracy 1.0 in every seed; loss AUC 0.657-0.699, LiRA online fixed 0.813-0.831;
    # lowest shadow held-out accuracy 0.794-0.832.
    assert overfit.metrics["train_acc"] == 1.0
    m = attacked.metrics.set_index("attack")
    assert set(m.index) == {
        "loss",
        "confidence",
        "shokri",
        "lira_online",
        "lira_online_fixed",
        "lira_offline",
        "lira_offline_fixed",
    }
    assert m.loc["loss", "auc"] > 0.6
    assert m.loc["lira_online_fixed", "auc"] > 0.65
    assert (m["n_members"] == 300).all() and (m["n_nonmembers"] == 300).all()
    assert attacked.target["member_accuracy"] == 1.0
    assert attacked.shadows.count == 8
    # The pool is twice the target's training set, so shadow models see as many examples.
    assert attacked.split.pool_x.shape[0] == 600
    assert abs(attacked.shadows.train_size - 300) < 30
    assert (attacked.shadows.heldout_accuracy > 0.7).all()


def test_lira_is_at_least_as_strong_as_the_loss_threshold_at_low_fpr(attacked):
    m = attacked.metrics.set_index("attack")
    # Seeds 0-4 (bench/threshold_spread.py): LiRA leads by 0.093-0.210 at 0.1 % FPR and by
    # 0.167-0.217 at 1 %.
    for col in ("tpr@0.1%fpr", "tpr@1%fpr"):
        assert m.loc["lira_online_fixed", col] >= m.loc["loss", col]
    assert m.loc["lira_online_fixed", "tpr@1%fpr"] > m.loc["loss", "tpr@1%fpr"]


def test_two_halves_of_unseen_data_give_chance_auc(overfit, mnist5k):
    """Half of the test set as fake "members": the target never saw either half."""
    half = mnist5k.n_test // 2
    fake = dataclasses.replace(
        mnist5k,
        name="mnist5k:unseen-halves",
        x_train=mnist5k.x_test[:half],
        y_train=mnist5k.y_test[:half],
        x_test=mnist5k.x_test[half:],
        y_test=mnist5k.y_test[half:],
        _fingerprint=None,
    )
    config = MembershipInference(shadow_models=4, max_examples=500)
    res = membership_inference(overfit.model, fake, config, arch="mlp", recipe=OVERFIT)
    # Seeds 0-4 of the target and the attack (bench/threshold_spread.py): the largest
    # |AUC - 0.5| is 0.016-0.045.
    for _, row in res.metrics.iterrows():
        assert abs(row["auc"] - 0.5) < 0.07, (row["attack"], row["auc"])


def test_label_only_output_lowers_membership_inference(attacked, overfit, mnist5k):
    config = MembershipInference(shadow_models=8, max_examples=300, seed=0)
    defended = membership_inference(
        overfit.model, mnist5k, config, arch="mlp", recipe=OVERFIT, defense=LabelOnly()
    )
    assert defended.shadows.trained == 0  # the same shadow models, from the zoo
    before = attacked.metrics.set_index("attack")
    after = defended.metrics.set_index("attack")
    # Seeds 0-4 (bench/threshold_spread.py): the best AUC drops by 0.182-0.210, the loss
    # attack's by 0.067-0.111, LiRA's TPR at 1 % FPR by 0.120-0.220.
    assert after["auc"].max() < before["auc"].max() - 0.05
    assert after.loc["loss", "auc"] < before.loc["loss", "auc"]
    assert (
        after.loc["lira_online_fixed", "tpr@1%fpr"] < before.loc["lira_online_fixed", "tpr@1%fpr"]
    )
    # Label-only: the loss attack becomes "correctly classified or not" (two score values).
    assert len(np.unique(defended.scores["loss"])) == 2


def test_threshold_attacks_need_no_architecture(overfit, mnist5k):
    res = membership_inference(
        overfit.model,
        mnist5k,
        MembershipInference(attacks="threshold", max_examples=100),
        recipe=OVERFIT,
    )
    assert list(res.metrics["attack"]) == ["loss", "confidence"] and res.shadows is None
    with pytest.raises(ValidationError, match="architecture"):
        membership_inference(overfit.model, mnist5k, MembershipInference(), recipe=OVERFIT)


def test_attack_scores_without_shadows_are_the_thresholds():
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
    scores = attack_scores(probs, torch.tensor([0, 0]))
    assert scores["loss"] == pytest.approx(np.log([0.9, 0.4]))
    assert scores["confidence"] == pytest.approx([0.9, 0.6])
    metrics, curves = evaluate_attacks(scores, np.array([True, False]))
    assert list(metrics["attack"]) == ["loss", "confidence"] and set(curves) == set(scores)


def test_more_epochs_mean_more_membership_advantage(mnist5k):
    sweep = overfitting_sweep("mlp", mnist5k, OVERFIT, "epochs", [1, 30], max_per_side=300)
    assert list(sweep["value"]) == [1, 30]
    # Seeds 0-4 of targets and candidates (bench/threshold_spread.py): the gap grows by
    # 0.037-0.113, the advantage by 0.253-0.270.
    assert sweep["gap"].iloc[1] > sweep["gap"].iloc[0]
    assert sweep["advantage"].iloc[1] > sweep["advantage"].iloc[0] + 0.05


def test_membership_experiment_is_the_engine_run_on_its_target(
    attacked, overfit, mnist5k, tmp_path
):
    attack = MembershipInference(shadow_models=8, max_examples=300, seed=0)
    exp = MembershipInferenceExperiment(attack=attack).on(Target.zoo("mlp", OVERFIT))
    runner = JobRunner(ResultStore(tmp_path / "runs.sqlite"), max_workers=1)
    try:
        job = runner.submit(exp, mnist5k)
        record = job.wait(300).result
        assert job.state == "done", job.error
        result = MembershipInferenceExperiment.result(record)
        check_section(record, {"roc_log", "roc", "scores"}, {"Membership inference"})
        # Shadow models copy the target's architecture and recipe: the same numbers as the
        # engine called with them, and the same shadow models (from the zoo).
        pd.testing.assert_frame_equal(
            result.metrics_table(), attacked.metrics, check_dtype=False, check_exact=False
        )
        np.testing.assert_allclose(result.scores()["lira_online"], attacked.scores["lira_online"])
        assert result.shadows()["count"] == 8 and result.shadows()["trained"] == 0
        assert result.per_side == 300 and result.member_accuracy == 1.0
        assert result.attacks == list(attacked.scores)
        assert set(result.roc_curves()) == {ATTACKS[k] for k in result.attacks}
        assert result.best_low_fpr_attack in result.attacks
        assert result.target_description == "mlp, 30 epochs, 300 training examples, wd 0"
        assert int(result.scores()["member"].sum()) == 300
        assert runner.submit(exp, mnist5k).from_store
    finally:
        runner.shutdown()
    # An uploaded model of unknown make: the attacker must guess the shadow architecture
    # (the thresholds need none).
    upload = Target.upload(overfit.model, "0123456789abcdef")
    with pytest.raises(ValidationError, match="architecture of the shadow models"):
        exp.on(upload).spec(mnist5k)
    guessed = exp.replace(shadow_arch="mlp").on(upload).spec(mnist5k)
    assert guessed["params"]["shadow_arch"] == "mlp" and guessed["target"]["source"] == "upload"
    thresholds = MembershipInferenceExperiment(attack=attack.replace(attacks="threshold"))
    assert thresholds.on(upload).spec(mnist5k)["params"]["shadow_arch"] is None
    with pytest.raises(ValidationError, match="do not fit"):
        exp.replace(shadow_arch="small_cnn").on(upload).spec(load("breast_cancer"))


def test_overfitting_sweep_experiment_trains_one_target_per_value(mnist5k, tmp_path):
    exp = OverfittingSweep(knob="epochs", values=(30, 1), max_per_side=300)
    exp = exp.on(Target.zoo("mlp", OVERFIT))
    assert exp.values == (1, 30) and not exp.needs_model
    runner = JobRunner(ResultStore(tmp_path / "runs.sqlite"), max_workers=1)
    try:
        job = runner.submit(exp, mnist5k)
        record = job.wait(300).result
        assert job.state == "done", job.error
        result = OverfittingSweep.result(record)
        check_section(record, {"sweep"}, {"Membership inference"})
        direct = overfitting_sweep("mlp", mnist5k, OVERFIT, "epochs", [1, 30], max_per_side=300)
        pd.testing.assert_frame_equal(result.sweep(), direct, check_dtype=False)
        assert result.knob == "epochs" and result.knob_title == "Epochs"
        assert result.max_advantage == direct["advantage"].max()
        assert result.at_value == float(direct.loc[direct["advantage"].idxmax(), "value"])
        assert runner.submit(exp, mnist5k).from_store
    finally:
        runner.shutdown()
    # The sweep trains its own targets: an uploaded model of unknown make gives no recipe.
    upload = Target.upload(train_entry("mlp", mnist5k, OVERFIT).model, "0123456789abcdef")
    with pytest.raises(ValidationError, match="built-in architecture"):
        exp.on(upload).spec(mnist5k)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    import contextlib
    import io

    from robustcore.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse refuses a flag value
            rc = int(exc.code)
    return rc, out.getvalue(), err.getvalue()


def test_membership_and_sweep_commands():
    import json

    target = ["--dataset", "digits", "--arch", "logreg", "--recipe.epochs", "3"]
    argv = ["membership-inference", *target, "--attack.attacks", "threshold"]
    argv += ["--attack.max-examples", "200"]
    rc, out, err = _cli(argv)
    assert rc == 0, err
    assert "# attacks" in out and "Loss threshold" in out
    summary = json.loads(out[out.index("{") :])
    assert summary["per_side"] == 200 and 0.0 <= summary["loss_auc"] <= 1.0
    out = _cli(argv)[1]
    again = json.loads(out[out.index("{") :])
    assert again["from_store"] is True and again["run_key"] == summary["run_key"]
    rc, _, err = _cli([*argv, "--attack.shadow-models", "7"])
    assert rc == 2 and "even" in err
    sweep = ["overfitting-sweep", *target, "--knob", "epochs", "--values", "2,1"]
    sweep += ["--max-per-side", "100"]
    rc, out, err = _cli(sweep)
    assert rc == 0, err
    assert "# sweep" in out and json.loads(out[out.index("{") :])["knob"] == "epochs"
    rc, _, err = _cli([*sweep[:-4], "--values", "1.5"])
    assert rc == 2 and "whole numbers" in err and "Traceback" not in err
