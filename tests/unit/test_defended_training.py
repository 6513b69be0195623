"""Defended models: the recipe's training methods (FGSM-RS, PGD-AT, TRADES, distillation),
the per-epoch monitor and watchdog, and the sanity checks that catch distillation's
gradient masking. Small MLPs (3 epochs on mnist5k) keep each training to seconds."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from robustcore.defenses.training import (
    AdversarialLoss,
    LogitsDividedBy,
    RobustMonitor,
    epsilon_schedule,
    input_gradient_norms,
)
from robustcore.defenses.training.checks import pgd_accuracy, pgd_success, train_small
from robustcore.errors import ValidationError
from robustcore.evaluation.sanity import check_reaches_chance, check_whitebox_beats_blackbox
from robustcore.models import TrainRecipe, build_model, recipe_key, train_entry
from robustcore.models.training import fit, run_epochs

SMALL = {"epochs": 3, "batch_size": 64, "seed": 0}


@pytest.fixture(scope="module")
def trained(mnist5k):
    """PGD-10 accuracy at ε = 0.1 of an MLP trained by each method (3 epochs)."""
    out = {}
    for method in ("standard", "fgsm_rs", "pgd_at", "trades"):
        recipe = TrainRecipe(method=method, adv_eps=0.1, adv_steps=5, **SMALL)
        model, history = train_small(mnist5k, recipe)
        out[method] = (pgd_accuracy(model, mnist5k, eps=0.1), history)
    return out


@pytest.fixture(scope="module")
def distilled(mnist5k):
    return train_small(mnist5k, TrainRecipe(method="distillation", temperature=100, **SMALL))


def test_recipe_keeps_standard_keys_and_validates_methods(mnist5k):
    plain = TrainRecipe()
    assert "method" not in plain.to_dict() and "adv_eps" not in plain.to_dict()
    # A method's settings are in the key only with that method.
    assert recipe_key("mlp", mnist5k, plain) == recipe_key("mlp", mnist5k, TrainRecipe(adv_eps=0.2))
    pgd = TrainRecipe(method="pgd_at", adv_eps=0.3)
    assert pgd.to_dict()["adv_steps"] == 10 and "temperature" not in pgd.to_dict()
    assert recipe_key("mlp", mnist5k, pgd) != recipe_key("mlp", mnist5k, pgd.replace(adv_eps=0.2))
    assert TrainRecipe(noise_std=0.1).method == "noise"  # one name for noise training
    # A noise sweep (Backdoors) may step σ down to 0 from a noise recipe: standard again.
    assert TrainRecipe(noise_std=0.1).replace(noise_std=0.0) == TrainRecipe()
    assert pgd.undefended() == TrainRecipe()  # the method's settings back at their defaults
    assert pgd.describe_method() == "PGD-AT (10 steps) ε=0.3"
    with pytest.raises(ValidationError, match="σ above 0"):
        TrainRecipe(method="noise")
    with pytest.raises(ValidationError, match="training ε above 0"):
        TrainRecipe(method="trades", adv_eps=0.0)
    with pytest.raises(ValidationError, match="Training method"):
        TrainRecipe(method="magic")


def test_epsilon_warm_up_is_linear_then_constant():
    r = TrainRecipe(method="pgd_at", adv_eps=0.3, eps_warmup=3)
    assert [round(epsilon_schedule(r, e), 3) for e in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]
    assert epsilon_schedule(r.replace(eps_warmup=0), 1) == 0.3


def test_each_adversarial_trainer_beats_standard_training_on_pgd_accuracy(trained):
    standard = trained["standard"][0]
    # Seeds 0-2 (bench/threshold_spread.py --only defenses), PGD-10 on 300 images at
    # ε = 0.1: standard 0.153-0.173; above it FGSM-RS 0.420-0.440, PGD-AT 0.443-0.480,
    # TRADES 0.483-0.527.
    for method in ("fgsm_rs", "pgd_at", "trades"):
        acc, history = trained[method]
        assert acc > standard + 0.25, (method, acc, standard)
        assert {"robust_acc", "watch_acc", "eps", "kept", "event"} <= set(history.columns)
        assert history["kept"].tolist() == [False, False, True]  # no collapse: the last epoch


class _ModeRecorder(nn.Module):
    """Records whether each forward pass ran in train or eval mode."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.inner(x)


@pytest.mark.parametrize("method", ["fgsm_rs", "pgd_at", "trades"])
def test_the_inner_attack_runs_in_eval_mode_and_the_loss_in_train_mode(mnist5k, method):
    model = _ModeRecorder(build_model("mlp", mnist5k.input_shape, mnist5k.num_classes, seed=0))
    recipe = TrainRecipe(method=method, adv_eps=0.1, adv_steps=3)
    loss_fn = AdversarialLoss(recipe, mnist5k, torch.device("cpu"))
    model.train()
    loss, logits, _ = loss_fn(model, mnist5k.x_train[:16], mnist5k.y_train[:16], 1)
    assert loss.requires_grad and logits.shape == (16, 10)
    attack_passes = 1 if method == "fgsm_rs" else 3
    if method == "trades":  # clean pass (train), 3 KL steps (eval), adversarial pass (train)
        assert model.modes == [True, False, False, False, True]
    else:
        assert model.modes == [False] * attack_passes + [True]


def test_watchdog_stops_a_collapsing_run_and_keeps_the_best_epoch(mnist5k):
    good, _ = train_small(mnist5k, TrainRecipe(method="fgsm_rs", adv_eps=0.1, **SMALL))
    recipe = TrainRecipe(method="fgsm_rs", adv_eps=0.1, **SMALL)
    monitor = RobustMonitor.for_recipe(recipe, mnist5k, torch.device("cpu"))
    model = copy.deepcopy(good)
    first = monitor.after_epoch(model, 1)
    assert first["watch_acc"] > 0.3 and "stop" not in first
    with torch.no_grad():  # a collapse: the weights are scrambled
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.01)
    second = monitor.after_epoch(model, 2)
    assert second["stop"] is True
    rows = [{"epoch": 1, **first}, {"epoch": 2, **second}]
    monitor.finish(model, rows)
    assert [r["kept"] for r in rows] == [True, False]
    assert "Catastrophic overfitting" in rows[-1]["event"] and "epoch 1" in rows[-1]["event"]
    x = mnist5k.x_test[:50]
    assert torch.equal(model(x), good(x))  # the best epoch's weights are back


def test_watchdog_switched_off_keeps_the_last_epoch(mnist5k):
    recipe = TrainRecipe(method="fgsm_rs", adv_eps=0.1, watchdog=False, **SMALL)
    good, _ = train_small(mnist5k, recipe)
    monitor = RobustMonitor.for_recipe(recipe, mnist5k, torch.device("cpu"))
    monitor.after_epoch(good, 1)
    worse = copy.deepcopy(good)
    with torch.no_grad():
        for p in worse.parameters():
            p.zero_()
    assert "stop" not in monitor.after_epoch(worse, 2)


def test_distillation_masks_gradients_and_the_adaptive_attack_breaks_it(mnist5k, distilled):
    model, history = distilled
    assert list(history["phase"].unique()) == ["teacher", "student"]
    x, y = mnist5k.x_test[:300], mnist5k.y_test[:300]
    zero = (input_gradient_norms(model, x, y) == 0).float().mean()
    naive = pgd_success(model, mnist5k, eps=0.3)
    adaptive = pgd_success(model, mnist5k, eps=0.3, temperature=100)
    # Seeds 0-2 (bench/threshold_spread.py --only defenses), PGD-20 at ε = 0.3: naive
    # success 0.217-0.232, adaptive 1.000; zero gradients on 84-89 % of the inputs.
    assert zero > 0.5
    assert naive < 0.5 and adaptive > 0.95, (naive, adaptive)
    # Deployed at T = 1: the same predictions as the logits divided by T, T times larger.
    with torch.no_grad():
        assert torch.equal(LogitsDividedBy(model, 100)(x).argmax(1), model(x).argmax(1))


def test_the_zoo_distils_once_for_every_temperature(mnist5k, distilled):
    """Through the zoo the teacher is the undefended model and the student at T is the
    T = 1 student scaled by T: the same model as training at T from scratch, up to the
    rounding of the scaling (measured: relative difference 1.6e-7)."""
    recipe = TrainRecipe(method="distillation", temperature=100, **SMALL)
    zoo_model = train_entry("mlp", mnist5k, recipe, device=torch.device("cpu"))
    base = train_entry("mlp", mnist5k, recipe.replace(temperature=1.0))
    teacher = train_entry("mlp", mnist5k, recipe.undefended())
    assert base.from_cache and teacher.from_cache  # both made on the way to T = 100
    assert zoo_model.metrics["derived_from"] == base.key
    assert list(zoo_model.history["phase"].unique()) == ["teacher", "student"]
    x = mnist5k.x_test[:200]
    scratch, _ = distilled
    with torch.no_grad():
        ours, theirs = zoo_model.model(x), scratch.eval()(x)
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.abs().max())
        assert torch.allclose(ours, 100 * base.model(x), rtol=1e-5, atol=1e-3)
    # The teacher a from-scratch distillation trains is the undefended model, bit for bit.
    own = build_model("mlp", mnist5k.input_shape, mnist5k.num_classes, seed=recipe.seed)
    run_epochs(own, mnist5k, recipe, device=torch.device("cpu"), phase="teacher")
    std = build_model("mlp", mnist5k.input_shape, mnist5k.num_classes, seed=recipe.seed)
    fit(std, mnist5k, recipe.undefended(), device=torch.device("cpu"))
    for a, b in zip(own.state_dict().values(), std.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_sanity_checks_flag_the_distilled_model(mnist5k, distilled):
    model, _ = distilled
    x, y = mnist5k.x_test[:200], mnist5k.y_test[:200]
    naive = check_reaches_chance(model, x, y, 10)
    assert naive.status == "warn" and "gradient masking" in naive.message
    adaptive = check_reaches_chance(LogitsDividedBy(model, 100), x, y, 10)
    assert adaptive.status == "pass"


def test_whitebox_beats_blackbox_check():
    warn = check_whitebox_beats_blackbox(0.2, 0.9, 200, eps=0.3)
    assert warn.status == "warn" and "masked" in warn.message
    assert check_whitebox_beats_blackbox(0.9, 0.85, 200).status == "pass"


def test_every_experiment_takes_a_defended_target(mnist5k):
    """A defended model is a target like any other: each page's experiment accepts it and
    its spec (hence the cache key) names the method and its settings."""
    from robustcore.experiments import EXPERIMENTS, Target, load_all

    load_all()
    recipe = TrainRecipe(method="trades", adv_eps=0.3, trades_beta=3.0)
    target = Target.zoo("small_cnn", recipe)
    plain = Target.zoo("small_cnn", TrainRecipe())
    for name in ("whitebox", "blackbox", "threat_models", "membership_inference",
                 "model_extraction", "scorecard", "transfer", "train"):  # fmt: skip
        cls = EXPERIMENTS[name]
        spec = cls.for_dataset(mnist5k).on(target).spec(mnist5k)
        assert spec["target"]["recipe"]["method"] == "trades", name
        assert spec["target"]["recipe"]["trades_beta"] == 3.0, name
        assert spec != cls.for_dataset(mnist5k).on(plain).spec(mnist5k), name
    assert target.defended and not plain.defended and target.undefended() == plain


def test_attacking_through_logits_divided_by_t_leaves_the_shared_model_in_eval_mode():
    from robustcore.attacks.evasion import PGD

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.BatchNorm1d(10)).eval()
    wrapped = LogitsDividedBy(model, 10)
    assert not wrapped.training
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    PGD(steps=2).run(wrapped, x, y, eps=0.1)
    # An attack restores the mode it found; the zoo's student must stay in eval mode (with
    # batch norm, train mode would change its running statistics).
    assert not model.training and not model[2].training
