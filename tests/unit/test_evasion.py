"""Properties of the white-box attacks, sweeps and sanity checks (tiny CNN, 64 images)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from robustcore.attacks.evasion import FGSM, PGD, WHITEBOX_ATTACKS, CarliniWagnerL2, Goal
from robustcore.errors import ValidationError
from robustcore.evaluation import (
    check_iterative_beats_single_step,
    check_monotone,
    check_reaches_chance,
    epsilon_sweep,
    robust_accuracy,
)

TOL = 1e-5


@pytest.fixture(scope="module")
def batch(mnist5k):
    return mnist5k.x_test[:64], mnist5k.y_test[:64]


@pytest.fixture(scope="module")
def model(tiny_cnn):
    return tiny_cnn.model


@pytest.mark.parametrize(
    ("attack", "eps", "norm"),
    [
        (FGSM(), 0.2, "linf"),
        (FGSM(), 1.5, "l2"),
        (PGD(steps=5), 0.2, "linf"),
        (PGD(steps=5), 1.5, "l2"),
        (PGD(steps=3, restarts=2), 0.1, "linf"),
    ],
    ids=str,
)
def test_perturbations_stay_in_the_ball_and_the_bounds(attack, eps, norm, model, batch):
    x, y = batch
    res = attack.run(model, x, y, eps=eps, norm=norm)
    assert res.x_adv.shape == x.shape
    assert float(res.x_adv.min()) >= 0.0 and float(res.x_adv.max()) <= 1.0
    bound = res.linf if norm == "linf" else res.l2
    assert float(bound.max()) <= eps + TOL
    assert res.success.dtype == torch.bool and res.success.shape == y.shape


def test_tabular_bounds_are_respected(model):
    lo = torch.full((1, 28, 28), 0.2)
    hi = torch.full((1, 28, 28), 0.6)
    x = torch.rand(16, 1, 28, 28) * 0.4 + 0.2
    y = torch.zeros(16, dtype=torch.long)
    goal = Goal(bounds=(lo, hi))
    for atk, eps in ((FGSM(), 0.5), (PGD(steps=3), 0.5), (CarliniWagnerL2(max_iter=5), None)):
        res = atk.run(model, x, y, eps=eps, goal=goal)
        assert float(res.x_adv.min()) >= 0.2 - TOL and float(res.x_adv.max()) <= 0.6 + TOL


@pytest.mark.parametrize("cls", [FGSM, PGD])
def test_eps_zero_changes_nothing(cls, model, batch):
    x, y = batch
    res = cls().run(model, x, y, eps=0.0)
    assert torch.equal(res.x_adv, x)


def test_targeted_attacks_reach_the_target(model, batch):
    x, y = batch
    keep = y != 3
    x, y = x[keep], y[keep]
    res = PGD(steps=20).run(model, x, y, eps=0.3, goal=Goal(target=3))
    # Seeds 0-4 of the model and PGD (bench/threshold_spread.py): 0.929-1.000 of 57 images
    # (bound half the spread below the lowest); C&W reaches the target in all 8 every time.
    assert res.success.float().mean() > 0.89
    assert torch.equal(res.success, res.pred == 3)
    cw = CarliniWagnerL2().run(model, x[:8], y[:8], goal=Goal(target=3))
    assert bool(cw.success.all())


def test_pgd_accuracy_does_not_rise_with_eps(model, batch):
    x, y = batch
    df = epsilon_sweep(model, x, y, PGD(steps=10), [0.0, 0.05, 0.1, 0.2, 0.3])
    assert list(df.columns[:4]) == ["attack", "eps", "accuracy", "success_rate"]
    acc = df["accuracy"].tolist()
    # Seeds 0-4 (bench/threshold_spread.py): every step lowers accuracy by 0.031 or more;
    # 0.0 left at ε = 0.3.
    assert all(b <= a + 0.03 for a, b in zip(acc, acc[1:], strict=False))
    assert acc[-1] <= 0.1  # far below clean accuracy at ε = 0.3
    assert df["mean_linf"].iloc[0] == 0.0


def test_restarts_never_weaken_pgd(model, batch):
    x, y = batch
    one = PGD(steps=5, seed=1).run(model, x, y, eps=0.08)
    three = PGD(steps=5, restarts=3, seed=1).run(model, x, y, eps=0.08)
    assert bool((three.success | ~one.success).all())  # every success of one is kept
    assert three.success.sum() >= one.success.sum()


@pytest.mark.parametrize(
    ("kw", "eps", "norm"),
    [
        ({}, 0.1, "linf"),
        ({"random_start": False}, 0.3, "linf"),
        ({"restarts": 2}, 0.1, "linf"),
        ({}, 1.5, "l2"),
    ],
    ids=str,
)
def test_early_stop_is_never_weaker_and_stays_in_the_ball(model, batch, kw, eps, norm):
    x, y = batch
    full = PGD(steps=8, seed=2, **kw).run(model, x, y, eps=eps, norm=norm)
    early = PGD(steps=8, seed=2, early_stop=True, **kw).run(model, x, y, eps=eps, norm=norm)
    assert bool((early.success | ~full.success).all())  # every fixed-step success is kept
    bound = early.linf if norm == "linf" else early.l2
    assert float(bound.max()) <= eps + TOL
    assert float(early.x_adv.min()) >= 0.0 and float(early.x_adv.max()) <= 1.0
    # The inputs it never fooled took every step, as in the fixed-step attack.
    never = ~early.success & ~full.success
    if kw.get("restarts", 1) == 1:
        assert torch.allclose(early.x_adv[never], full.x_adv[never], atol=1e-6)


def test_early_stop_keeps_the_first_fooling_iterate_and_skips_the_rest(model, batch):
    x, y = batch
    passes = []
    hook = model.register_forward_hook(lambda m, i, o: passes.append(int(i[0].shape[0])))
    try:
        res = PGD(steps=20, early_stop=True).perturb(model, x, y, eps=0.3)
    finally:
        hook.remove()
    with torch.inference_mode():
        assert bool((model(res).argmax(1) != y).all())  # ε = 0.3 fools every input
    # One probe of one input, then fewer and fewer inputs per step, and no step after the
    # last input was fooled.
    steps = passes[1:]
    assert len(steps) < 20 and steps == sorted(steps, reverse=True) and steps[0] == len(y)
    # Targeted: the same, toward the target class.
    tgt = PGD(steps=20, early_stop=True).run(model, x, y, eps=0.3, goal=Goal(target=3))
    assert (
        tgt.success_rate
        >= PGD(steps=20).run(model, x, y, eps=0.3, goal=Goal(target=3)).success_rate
    )


def test_iterative_beats_single_step(model, batch):
    x, y = batch
    fgsm = FGSM().run(model, x, y, eps=0.1)
    pgd = PGD(steps=10).run(model, x, y, eps=0.1)
    # Seeds 0-4 of the model and PGD (bench/threshold_spread.py): PGD minus FGSM 0.000-0.062
    # (equal at seeds 0 and 1, so the bound allows one image of 64 below FGSM).
    assert pgd.success.float().mean() >= fgsm.success.float().mean() - 0.03


def test_cw_finds_small_successful_perturbations(model, batch):
    x, y = batch
    res = CarliniWagnerL2(binary_search_steps=4, max_iter=60).run(model, x[:16], y[:16])
    # Seeds 0-4 of the model (bench/threshold_spread.py): success 1.0, mean L2 1.72-2.14;
    # one search round leaves a 0.25-0.51 larger mean L2.
    assert res.success.float().mean() == 1.0
    assert 0.1 < float(res.l2.mean()) < 3.0
    # The binary search shrinks the perturbation: more rounds never make it larger.
    short = CarliniWagnerL2(binary_search_steps=1, initial_const=10.0, max_iter=60).run(
        model, x[:16], y[:16]
    )
    both = res.success & short.success
    assert float(res.l2[both].mean()) <= float(short.l2[both].mean()) + 1e-4


def test_robust_accuracy_is_the_per_sample_worst_case(model, batch):
    x, y = batch
    ra = robust_accuracy(model, x, y, [FGSM(), PGD(steps=5)], eps=0.1)
    assert ra.accuracy <= ra.per_attack["accuracy"].min() + 1e-9
    assert ra.robust.shape == y.shape


def test_bad_arguments_are_rejected(model, batch):
    x, y = batch
    with pytest.raises(ValidationError, match="Target classes"):
        PGD().run(model, x, y, eps=0.1, goal=Goal(target=-1))
    with pytest.raises(ValidationError, match="one label per input"):
        FGSM().run(model, x, y[:3], eps=0.1)
    with pytest.raises(ValidationError, match="cannot take inputs shaped"):
        FGSM().run(model, x[0], y[:1], eps=0.1)  # a single image without its batch axis
    with pytest.raises(ValidationError, match="needs a budget"):
        FGSM().run(model, x, y)
    with pytest.raises(ValidationError, match="finite number"):
        FGSM().run(model, x, y, eps=-1)
    with pytest.raises(ValidationError, match="'linf' or 'l2'"):
        PGD().run(model, x, y, eps=0.1, norm="l1")
    with pytest.raises(ValidationError, match="no ε budget"):
        CarliniWagnerL2().run(model, x, y, eps=0.1)
    with pytest.raises(ValidationError, match="not 'linf'"):
        CarliniWagnerL2().run(model, x, y, norm="linf")
    with pytest.raises(ValidationError, match="finite numbers"):
        epsilon_sweep(model, x, y, FGSM(), [-0.1])
    with pytest.raises(ValidationError, match="budgeted"):
        epsilon_sweep(model, x, y, CarliniWagnerL2(), [0.1])
    assert set(WHITEBOX_ATTACKS) == {"fgsm", "pgd", "cw"}


def test_an_l2_budget_beyond_the_data_is_allowed(model, batch):
    """Regression: an L2 ε of 20 (more than the diameter of digits' 8×8 box) was accepted by
    the White-box form and then refused inside the job. Any finite ε ≥ 0 is a budget."""
    x, y = batch
    res = PGD(steps=3).run(model, x[:8], y[:8], eps=50.0, norm="l2")
    assert res.x_adv.shape == x[:8].shape
    df = epsilon_sweep(model, x[:8], y[:8], PGD(steps=2), [0, 5, 20], norm="l2")
    assert df["eps"].tolist() == [0.0, 5.0, 20.0]


class _Masked(nn.Module):
    """Gradient masking: quantising the input gives zero gradients everywhere."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 4) / 4)


def test_sanity_checks_catch_gradient_masking(model, batch):
    x, y = batch
    ok = check_reaches_chance(model, x, y, 10, steps=10)
    # Seeds 0-4 of the model (bench/threshold_spread.py): L∞ and L2 pass in every seed.
    assert ok.status == "pass", ok.message
    masked = check_reaches_chance(_Masked(model), x, y, 10, steps=10)
    assert masked.status == "warn" and "gradient masking" in masked.message
    # L2: the "unbounded" ball around a 28×28 image has radius 28 (regression: it once
    # exceeded PGD's declared ε range and failed the whole white-box run).
    l2 = check_reaches_chance(model, x, y, 10, norm="l2", steps=10)
    assert l2.status == "pass" and "ε=28" in l2.message, l2.message


def test_sanity_checks_flag_a_rising_curve_and_a_weak_iterative_attack():
    sweep = pd.DataFrame(
        {
            "attack": ["FGSM"] * 3 + ["PGD"] * 3,
            "eps": [0.0, 0.1, 0.2] * 2,
            "accuracy": [0.95, 0.5, 0.3, 0.95, 0.7, 0.9],
            "n": [500] * 6,
        }
    )
    checks = {c.name: c for c in check_monotone(sweep)}
    assert checks["FGSM: monotone in ε"].status == "pass"
    assert checks["PGD: monotone in ε"].status == "warn"
    weak = check_iterative_beats_single_step(sweep)
    assert weak.status == "warn" and "ε=0.1" in weak.message


@pytest.mark.parametrize(
    "attack, kw",
    [
        (FGSM(), {"eps": 0.1}),
        (PGD(steps=3, seed=1), {"eps": 0.1}),
        (PGD(steps=2), {"eps": 0.5, "norm": "l2"}),
    ],
)
def test_perturb_gives_runs_adversarial_inputs_without_the_result_pass(model, batch, attack, kw):
    x, y = batch
    passes = []
    hook = model.register_forward_hook(lambda *_: passes.append(1))
    try:
        res = attack.run(model, x, y, **kw)
        n_run = len(passes)
        passes.clear()
        x_adv = attack.perturb(model, x, y, **kw)
        n_perturb = len(passes)
    finally:
        hook.remove()
    assert torch.equal(x_adv, res.x_adv)
    assert n_perturb == n_run - 1  # the result's prediction pass is the only difference
    with pytest.raises(ValidationError):
        attack.perturb(model, x, y[:-1], **kw)
