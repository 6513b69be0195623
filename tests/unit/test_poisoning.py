"""Poisoning attacks: triggers, BadNets, hidden trigger, label flipping, penultimate features.

The end-to-end checks train the default model (small_cnn, 5 epochs) on mnist5k through the
session's model zoo, so models are shared between tests (and with the AppTests).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustcore.attacks.poisoning import (
    BadNets,
    HiddenTrigger,
    LabelFlip,
    Trigger,
    backdoor_metrics,
    craft_poisons,
    flip_labels,
    poison_badnets,
    poison_hidden_trigger,
    train_poisoned,
)
from robustcore.data import Dataset
from robustcore.errors import ModelError, ValidationError
from robustcore.experiments import Target
from robustcore.experiments.backdoors import Backdoors
from robustcore.experiments.hidden_trigger import HiddenTriggerBackdoor
from robustcore.experiments.label_flipping import LabelFlipping
from robustcore.models import ARCHITECTURES, TrainRecipe, build_model, train_entry
from robustcore.models.features import feature_dim, penultimate, split_model

DEFAULT = TrainRecipe()  # the default model: small_cnn, 5 epochs
TARGET = Target.zoo("small_cnn", DEFAULT)  # the victims are trained like it


@pytest.fixture(scope="module")
def clean_default(mnist5k):
    return train_entry("small_cnn", mnist5k, DEFAULT)


@pytest.fixture(scope="module")
def badnets_3pct(mnist5k):
    poisoned = poison_badnets(mnist5k, Trigger(), BadNets(), poison_rate=0.03)
    return poisoned, train_poisoned(poisoned, "small_cnn", DEFAULT)


# -- triggers --------------------------------------------------------------------------------


def _bounds(shape):
    return torch.zeros(shape), torch.ones(shape)


def test_pixel_patch_and_checkerboard_masks():
    shape = (1, 28, 28)
    pixel = Trigger(pattern="pixel").build(shape, _bounds(shape))
    assert pixel.mask.sum() == 1 and pixel.mask[0, 26, 26] == 1  # one pixel, 1 px margin
    patch = Trigger(pattern="patch", size=4, position="top_left").build(shape, _bounds(shape))
    assert patch.mask.sum() == 16 and patch.mask[0, 1:5, 1:5].all()
    board = Trigger(pattern="checkerboard", size=3).build(shape, _bounds(shape))
    block = board.pattern[0, 24:27, 24:27]  # 3×3 with a 1 px margin
    assert board.mask.sum() == 9
    assert torch.equal(block, torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]]))
    x = torch.full((2, *shape), 0.5)
    out = board.apply(x)
    assert torch.equal(out[:, 0, 24:27, 24:27], block.expand(2, 3, 3))
    assert (out[:, :, :24].eq(0.5)).all() and (out[:, :, :, :24].eq(0.5)).all()


def test_blend_trigger_is_noise_mixed_with_alpha():
    shape = (3, 8, 8)
    stamp = Trigger(pattern="blend", alpha=0.1, seed=3).build(shape, _bounds(shape))
    assert torch.allclose(stamp.mask, torch.full(shape, 0.1))
    x = torch.rand(4, *shape)
    assert torch.allclose(stamp.apply(x), 0.9 * x + 0.1 * stamp.pattern)
    again = Trigger(pattern="blend", alpha=0.1, seed=3).build(shape, _bounds(shape))
    assert torch.equal(stamp.pattern, again.pattern)


def test_trigger_validation():
    with pytest.raises(ValidationError, match="does not fit"):
        Trigger(size=9).build((1, 8, 8), _bounds((1, 8, 8)))
    with pytest.raises(ValidationError, match="one of"):
        Trigger(pattern="star")
    with pytest.raises(ValidationError, match="shape"):
        Trigger().build((1, 28, 28), _bounds((1, 28, 28))).apply(torch.zeros(2, 1, 8, 8))


def test_tabular_trigger_sets_features_to_their_bounds():
    lo, hi = -torch.arange(1.0, 7.0), torch.arange(1.0, 7.0)
    stamp = Trigger(pattern="checkerboard", size=3, position="bottom_right").build((6,), (lo, hi))
    assert stamp.mask.tolist() == [0, 0, 0, 1, 1, 1]
    assert stamp.pattern[3:].tolist() == [4.0, -5.0, 6.0]
    left = Trigger(pattern="patch", size=2, position="top_left").build((6,), (lo, hi))
    assert left.mask.tolist() == [1, 1, 0, 0, 0, 0]


# -- BadNets ---------------------------------------------------------------------------------


def test_poison_badnets_relabels_only_the_chosen_points(mnist5k):
    p = poison_badnets(mnist5k, Trigger(), BadNets(seed=1), poison_rate=0.05, target_class=2)
    assert p.n_poison == 200 and abs(p.rate - 0.05) < 1e-9
    assert (mnist5k.y_train[p.poison_idx] != 2).all()  # taken from the other classes
    assert (p.dataset.y_train[p.poison_idx] == 2).all()
    clean = ~p.is_poison
    assert torch.equal(p.dataset.x_train[clean], mnist5k.x_train[clean])
    assert torch.equal(p.dataset.y_train[clean], mnist5k.y_train[clean])
    assert not torch.equal(p.dataset.x_train[p.poison_idx], mnist5k.x_train[p.poison_idx])
    assert torch.equal(p.dataset.x_test, mnist5k.x_test)
    assert p.dataset.fingerprint() != mnist5k.fingerprint()
    same = poison_badnets(mnist5k, Trigger(), BadNets(seed=1), poison_rate=0.05, target_class=2)
    assert torch.equal(same.poison_idx, p.poison_idx)
    assert same.dataset.fingerprint() == p.dataset.fingerprint()


def test_all_to_all_labels_go_to_the_next_class(mnist5k):
    p = poison_badnets(mnist5k, Trigger(), BadNets(mode="all_to_all"), poison_rate=0.1)
    y0, y1 = mnist5k.y_train[p.poison_idx], p.dataset.y_train[p.poison_idx]
    assert torch.equal(y1, (y0 + 1) % 10)


def test_badnets_validation(mnist5k):
    with pytest.raises(ValidationError, match="Target class"):
        poison_badnets(mnist5k, Trigger(), BadNets(), poison_rate=0.03, target_class=10)
    with pytest.raises(ValidationError, match="at most 0.5"):
        Backdoors(poison_rate=0.9)


class _TriggerDetector(nn.Module):
    """Predicts class 0 when the bottom-right corner is bright, else the true-ish class 1."""

    def forward(self, x):
        hit = x[:, 0, 22:26, 22:26].mean(dim=(1, 2)) > 0.4
        out = torch.zeros(x.shape[0], 10)
        out[hit, 0] = 1.0
        out[~hit, 1] = 1.0
        return out


def test_backdoor_metrics_counts_triggered_non_target_inputs():
    x = torch.zeros(20, 1, 28, 28)
    y = torch.tensor([0] * 5 + [1] * 15)
    ds = Dataset("toy", x, y, x, y, 10, [str(i) for i in range(10)], "image", _bounds((1, 28, 28)))
    m = backdoor_metrics(_TriggerDetector(), ds, Trigger(pattern="patch"), target_class=0)
    assert m["n_attack"] == 15 and m["attack_success"] == 1.0
    assert m["clean_accuracy"] == 0.75  # the 15 ones are right, the 5 zeros wrong
    m = backdoor_metrics(_TriggerDetector(), ds, Trigger(pattern="pixel"), target_class=0)
    assert m["attack_success"] == 0.0 and m["triggered_accuracy"] == 1.0


def test_badnets_few_percent_reaches_95_percent_success(mnist5k, clean_default, badnets_3pct):
    """Gu et al.: a few percent of poisons → a near-certain backdoor, clean accuracy kept."""
    _, entry = badnets_3pct
    clean = backdoor_metrics(clean_default.model, mnist5k, Trigger(), target_class=0)
    m = backdoor_metrics(entry.model, mnist5k, Trigger(), target_class=0)
    # Seeds 0-4 of poisons and training (bench/threshold_spread.py): clean model's attack
    # success 0.002-0.004, poisoned 0.982-1.000, clean accuracy drop -0.001-0.011.
    assert clean["attack_success"] < 0.05  # the trigger alone does nothing to a clean model
    assert m["attack_success"] >= 0.95, m
    assert clean["clean_accuracy"] - m["clean_accuracy"] < 0.02, (clean, m)


def test_badnets_sweep_reuses_the_zoo(mnist5k, clean_default, badnets_3pct):
    res = Backdoors(poison_rates=(0.0, 0.03)).on(TARGET).sweep_models(mnist5k)
    assert list(res.table["poison_rate"]) == [0.0, 0.03]
    assert res.table["from_cache"].all()  # the clean and the 3 % model were trained before
    assert res.table["n_poison"].tolist() == [0, 120]
    # Seeds 0-4 (bench/threshold_spread.py): the 3 % model's lead 0.979-0.997.
    assert res.table["attack_success"].iloc[1] > res.table["attack_success"].iloc[0] + 0.9
    with pytest.raises(ValidationError, match="only once"):
        Backdoors(poison_rates=(0.01, 0.01))
    with pytest.raises(ValidationError, match="Sweep over must be one of"):
        Backdoors(sweep="lr")


# -- hidden trigger --------------------------------------------------------------------------


def test_craft_poisons_stays_in_budget_and_moves_features():
    body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU()).eval()
    torch.manual_seed(0)
    x = torch.rand(10, 1, 4, 4)
    src = torch.rand(30, 1, 4, 4)
    z, info = craft_poisons(
        body, x, src, eps=0.1, steps=30, step_size=0.1, bounds=_bounds((1, 4, 4))
    )
    assert (z - x).abs().max() <= 0.1 + 1e-6
    assert z.min() >= 0 and z.max() <= 1
    assert info["feature_distance_after"] < info["feature_distance_before"]


def test_hidden_trigger_config_validation(mnist5k):
    with pytest.raises(ValidationError, match="differ"):
        HiddenTriggerBackdoor(source_class=3, target_class=3)
    with pytest.raises(ValidationError, match="differ"):
        poison_hidden_trigger(
            mnist5k, None, Trigger(), HiddenTrigger(), source_class=3, target_class=3, eps=0.3
        )


def test_hidden_trigger_works_but_is_weaker_than_badnets(mnist5k, clean_default, badnets_3pct):
    """Saha et al.: clean-label poisons plant the backdoor (frozen features, retrained last
    layer), though less reliably than BadNets' relabelled, triggered poisons."""
    res = HiddenTriggerBackdoor(eps=(0.3,)).on(TARGET).sweep_models(mnist5k)
    row = res.table.iloc[0]
    assert row["eps"] == 0.3 and row["n_poison"] == 400
    poisoned = res.poisoned[0]
    assert torch.equal(poisoned.dataset.y_train, mnist5k.y_train)  # clean label
    delta = poisoned.dataset.x_train[poisoned.poison_idx] - mnist5k.x_train[poisoned.poison_idx]
    assert delta.abs().max() <= 0.3 + 1e-6
    # Seeds 0-4 of the model and the poisons (bench/threshold_spread.py): feature distance
    # ratio 0.30-0.42; victim's clean accuracy 0.937-0.952; BadNets ahead by 0.47-0.99.
    assert row["feature_distance_after"] < 0.6 * row["feature_distance_before"]
    badnets = backdoor_metrics(badnets_3pct[1].model, mnist5k, Trigger(), target_class=0)
    # The backdoor's strength is not reproducible: attack success minus the baseline (0 in
    # every seed) is 0.53 at seed 0 but 0.01-0.19 at seeds 1-4 (the old bound, 0.2, held at
    # seed 0 only; at seed 3 it is one triggered image). Only its sign is asserted.
    assert row["attack_success"] > row["baseline_attack_success"], row.to_dict()
    assert row["attack_success"] < badnets["attack_success"], (row.to_dict(), badnets)
    assert row["clean_accuracy"] > 0.9


# -- label flipping --------------------------------------------------------------------------


def test_random_flips_always_change_the_label(mnist5k):
    p = flip_labels(mnist5k, LabelFlip(seed=2), rate=0.3)
    assert p.n_poison == 1200
    assert (p.dataset.y_train[p.poison_idx] != mnist5k.y_train[p.poison_idx]).all()
    assert (p.dataset.y_train[~p.is_poison] == mnist5k.y_train[~p.is_poison]).all()
    assert torch.equal(p.dataset.x_train, mnist5k.x_train)
    counts = torch.bincount(p.dataset.y_train[p.poison_idx], minlength=10)
    assert counts.min() > 60  # spread over every class


def test_targeted_flips_only_move_a_to_b(mnist5k):
    targeted = LabelFlip(mode="targeted")
    p = flip_labels(mnist5k, targeted, rate=0.5, source_class=7, target_class=1)
    assert p.n_poison == 200  # half of class 7's 400 training images
    assert (mnist5k.y_train[p.poison_idx] == 7).all() and (
        p.dataset.y_train[p.poison_idx] == 1
    ).all()
    with pytest.raises(ValidationError, match="differ"):
        LabelFlipping(attack=targeted, source_class=1, target_class=1)
    with pytest.raises(ValidationError, match="differ"):
        flip_labels(mnist5k, targeted, rate=0.5, source_class=1, target_class=1)


def test_flipping_lowers_accuracy_monotonically(mnist5k):
    """More flipped labels, lower accuracy (an MLP trained to fit its labels, 15 epochs)."""
    recipe = TrainRecipe(epochs=15)
    exp = LabelFlipping(rates=(0.0, 0.2, 0.4, 0.6, 0.8)).on(Target.zoo("mlp", recipe))
    res = exp.sweep_models(mnist5k)
    acc = res.table["accuracy"].tolist()
    # Seeds 0-4 of flips and training (bench/threshold_spread.py): every step loses 0.033 or
    # more; 0 → 0.8 loses 0.655-0.694.
    assert all(b < a + 0.01 for a, b in zip(acc, acc[1:], strict=False)), acc
    assert acc[0] - acc[-1] > 0.15, acc
    assert len(res.confusions) == 5 and res.confusions[0].sum() == mnist5k.n_test
    assert set(res.per_class["rate"]) == {0.0, 0.2, 0.4, 0.6, 0.8}


def test_targeted_flipping_hits_class_a(mnist5k):
    cfg = LabelFlipping(
        attack=LabelFlip(mode="targeted"), source_class=7, target_class=1, rates=(0.0, 0.75)
    )
    res = cfg.on(Target.zoo("mlp", TrainRecipe(epochs=15))).sweep_models(mnist5k)
    before, after = res.table.iloc[0], res.table.iloc[1]
    # Seeds 0-4 of flips and training (bench/threshold_spread.py): A → B rises by 0.73-0.93,
    # class A's accuracy drops by 0.71-0.91, overall accuracy by 0.071-0.098 (seed 4 sat
    # 0.002 under the old bound 0.1; bound half the spread above the highest).
    assert after["a_predicted_as_b"] > before["a_predicted_as_b"] + 0.3
    assert after["class_a_accuracy"] < before["class_a_accuracy"] - 0.3
    assert before["accuracy"] - after["accuracy"] < 0.12  # the other classes barely move


# -- penultimate features --------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_split_model_head_of_body_is_the_model(arch):
    shape = (3, 32, 32)
    model = build_model(arch, shape, 10, seed=0).eval()
    x = torch.rand(4, *shape)
    body, head = split_model(model)
    assert torch.allclose(head(body(x)), model(x), atol=1e-6)
    feats = penultimate(model, x)
    assert feats.shape == (4, feature_dim(model))
    expected = {"logreg": 3 * 32 * 32, "mlp": 128, "small_cnn": 128, "lenet5": 84, "resnet": 64}
    assert feature_dim(model) == expected[arch]


def test_penultimate_refuses_opaque_models():
    scripted = torch.jit.script(build_model("mlp", (5,), 2))
    with pytest.raises(ModelError, match="penultimate"):
        split_model(scripted)
    with pytest.raises(ModelError):
        split_model(nn.Conv2d(1, 1, 1))


# -- figures ---------------------------------------------------------------------------------


def test_poisoning_figures_have_the_expected_traces():
    import json

    import pandas as pd

    from robustcore.viz.backdoors import backdoor_sweep_figure, hidden_trigger_figure
    from robustcore.viz.label_flipping import label_flip_figure
    from robustcore.viz.poisoning_sanitization import (
        activation_projection_figure,
        before_after_figure,
    )

    sweep = pd.DataFrame(
        {"poison_rate": [0, 0.01], "clean_accuracy": [0.96, 0.95], "attack_success": [0.0, 1.0]}
    )
    fig = backdoor_sweep_figure(sweep, "poison_rate", x_title="Poison rate", clean_accuracy=0.96)
    assert [t.name for t in fig.data] == ["clean accuracy", "attack success rate"]
    hidden = pd.DataFrame(
        {
            "eps": [0.1, 0.3],
            "clean_accuracy": [0.96, 0.93],
            "attack_success": [0.0, 0.8],
            "baseline_attack_success": [0.0, 0.0],
        }
    )
    assert len(hidden_trigger_figure(hidden).data) == 3
    per_class = pd.DataFrame(
        {"rate": [0, 0.5, 0, 0.5], "class": ["a", "a", "b", "b"], "accuracy": [1, 0.2, 1, 0.9]}
    )
    flips = pd.DataFrame({"rate": [0, 0.5], "accuracy": [1.0, 0.55]})
    fig = label_flip_figure(flips, per_class, highlight=["a"])
    assert [t.name for t in fig.data] == ["class a", "class b", "overall"]
    assert fig.data[1].line.color == "#b0b0b0"  # not highlighted
    pts = pd.DataFrame(
        {
            "pc1": [0.0, 1.0, 5.0],
            "pc2": [0.0, 1.0, 5.0],
            "poison": [False, False, True],
            "cluster": [0, 0, 1],
            "flagged": [False, False, True],
        }
    )
    fig = activation_projection_figure(pts)
    assert {t.name for t in fig.data} == {
        "clean",
        "poisoned",
        "larger cluster / kept",
        "flagged as poison",
    }
    summary = pd.DataFrame(
        {"model": ["poisoned", "after"], "clean_accuracy": [0.95, 0.96], "attack_success": [1, 0]}
    )
    for f in (fig, before_after_figure(summary)):
        assert json.loads(f.to_json())["data"]
