"""Membership inference: metrics, LiRA, Shokri, the real attacks on an overfit model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from robustcore.attacks.inference import (
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
    overfitting_sweep,
    parse_values,
    roc_curve,
    roc_table,
    shadow_keep,
    shokri_scores,
    tpr_at_fpr,
)
from robustcore.defenses.postprocess import LabelOnly
from robustcore.errors import ValidationError
from robustcore.models import TrainRecipe, train_entry

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
    assert parse_values("40, 1; 5", "epochs") == [1, 5, 40]
    assert parse_values("0, 0.001", "weight_decay") == [0.0, 0.001]
    with pytest.raises(ValidationError, match="whole numbers"):
        parse_values("1.5", "epochs")
    with pytest.raises(ValidationError, match="not a number"):
        parse_values("ten", "train_size")


# -- real attacks -----------------------------------------------------------------------


def test_overfit_model_leaks_membership(attacked, overfit):
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
    assert sweep["gap"].iloc[1] > sweep["gap"].iloc[0]
    assert sweep["advantage"].iloc[1] > sweep["advantage"].iloc[0] + 0.05
