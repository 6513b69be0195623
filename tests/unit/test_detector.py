"""Adversarial detectors (robustcore.defenses.detector) and the Adversarial detector
experiment's declaration: each detector beats chance on its own attack, the threshold
keeps about the target share of clean inputs flagged, the guarded model abstains exactly on
flagged inputs, the adaptive attack (Carlini & Wagner 2017) lowers detection compared with
the naive one, training is deterministic for a seed, and bad settings are refused with a
message. One small CNN (1 epoch), 300 training pairs of PGD-5 at ε = 0.3."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustcore.attacks.evasion import PGD
from robustcore.attacks.inference.metrics import auc, roc_curve
from robustcore.defenses.detector import (
    ABSTAIN,
    AdaptiveAttack,
    DetectorConfig,
    GuardedModel,
    detection_rate,
    judge,
    threshold_for_fpr,
)
from robustcore.errors import ValidationError

EPS = 0.3


@pytest.fixture(scope="module")
def setting(tiny_cnn, mnist5k):
    """The model, 300 clean training images and their PGD-5 versions, 1000 other clean
    training images for the threshold, and 100 test images with their PGD-5 versions."""
    ds, model = mnist5k, tiny_cnn.model
    order = torch.randperm(ds.n_train, generator=torch.Generator().manual_seed(0))
    tr, cal = order[:300], order[300:1300]
    pgd = PGD(steps=5)
    x_adv = pgd.perturb(model, ds.x_train[tr], ds.y_train[tr], eps=EPS)
    x, y = ds.x_test[:100], ds.y_test[:100]
    test = pgd.run(model, x, y, eps=EPS)
    return {
        "model": model,
        "ds": ds,
        "x_tr": ds.x_train[tr],
        "x_tr_adv": x_adv,
        "x_cal": ds.x_train[cal],
        "x": x,
        "y": y,
        "test": test,
    }


@pytest.fixture(scope="module")
def detectors(setting):
    s = setting
    cfgs = {
        "features": DetectorConfig(kind="features", epochs=10),
        "input": DetectorConfig(kind="input", epochs=3),
    }
    return {
        kind: cfg.fit(s["model"], s["x_tr"], s["x_tr_adv"], bounds=s["ds"].bounds)
        for kind, cfg in cfgs.items()
    }


def _auc(det, clean: torch.Tensor, adv: torch.Tensor) -> float:
    sc, sa = det.scores(clean), det.scores(adv)
    truth = torch.cat([torch.zeros(len(sc)), torch.ones(len(sa))]).bool()
    fpr, tpr, _ = roc_curve(torch.cat([sc, sa]), truth)
    return auc(fpr, tpr)


@pytest.mark.parametrize("kind", ["features", "input"])
def test_detector_beats_chance_on_its_own_attack(setting, detectors, kind):
    s, det = setting, detectors[kind]
    fooled = s["test"].x_adv[s["test"].success]
    assert fooled.shape[0] > 50
    # Clean test images against the PGD examples that fool the model. Over seeds 0-2
    # (model, inputs, detector): features 0.946-0.994, input 0.999-1.000.
    assert _auc(det, s["x"], fooled) > (0.8 if kind == "features" else 0.9)
    assert det.history[-1]["loss"] < det.history[0]["loss"]
    assert det.scores(s["x"]).shape == (100,)


def test_threshold_flags_about_the_target_share_of_clean_inputs(setting, detectors):
    s, det, ds = setting, detectors["features"], setting["ds"]
    cal = det.scores(s["x_cal"])
    t = threshold_for_fpr(cal, 0.1)
    assert detection_rate(cal, t) <= 0.1  # on its own calibration images: at most the target
    assert detection_rate(cal, t) > 0.09
    # On 500 other clean (test) images: 0.090-0.106 over seeds 0-2 (binomial sd 0.013).
    assert 0.05 < detection_rate(det.scores(ds.x_test[500:]), t) < 0.16
    # Exact on a constructed case: 100 distinct scores, 5 % allowed above the threshold.
    scores = torch.arange(100, dtype=torch.float32)
    assert threshold_for_fpr(scores, 0.05) == 94.0
    assert detection_rate(scores, threshold_for_fpr(scores, 0.05)) == 0.05
    assert detection_rate(scores, threshold_for_fpr(scores, 0.0)) == 0.0


def test_guarded_model_abstains_exactly_on_flagged_inputs(setting, detectors):
    s = setting
    for det in detectors.values():
        x = torch.cat([s["x"], s["test"].x_adv])
        scores = det.scores(x)
        t = float(scores.median())  # half of them flagged
        guarded = GuardedModel(s["model"], det, t)
        pred = guarded.predict(x)
        flagged = scores > t
        assert 0 < int(flagged.sum()) < x.shape[0]
        assert bool((pred[flagged] == ABSTAIN).all())
        with torch.inference_mode():
            plain = s["model"](x).argmax(1)
            combined = guarded(x)
        assert bool((pred[~flagged] == plain[~flagged]).all())
        # C&W's combined logits: the extra class wins exactly where the detector flags.
        assert combined.shape == (x.shape[0], 11)
        assert torch.equal(combined.argmax(1) == 10, flagged)
        # The feature detector shares the model's body: the same margins either way.
        with torch.inference_mode():
            _, margin = guarded.parts(x)
        assert torch.allclose(margin, scores - t, atol=1e-5)


@pytest.mark.parametrize("kind", ["features", "input"])
def test_adaptive_attack_lowers_detection_and_gets_past_the_guard(setting, detectors, kind):
    s, det = setting, detectors[kind]
    t = threshold_for_fpr(det.scores(s["x_cal"]), 0.1)
    guarded = GuardedModel(s["model"], det, t)
    fooled, flagged = judge(guarded, s["test"].x_adv, s["y"])
    naive_detected = float((fooled & flagged).sum() / fooled.sum())
    res = AdaptiveAttack(steps=10).run(guarded, s["x"], s["y"], eps=EPS, bounds=s["ds"].bounds)
    detected = float((res.fooled & res.flagged).sum() / res.fooled.sum().clamp_min(1))
    # Seed 0-2: naive 0.86-0.99 (features), 1.0 (input); adaptive 0.00-0.02 (features),
    # 0.08-0.23 (input). Success (fooled, not flagged): naive ≤ 0.14, adaptive ≥ 0.67.
    assert detected < naive_detected - 0.5, (naive_detected, detected)
    assert float(res.success.float().mean()) > float((fooled & ~flagged).float().mean()) + 0.4
    assert torch.equal(res.success, res.fooled & ~res.flagged)
    assert float((res.x_adv - s["x"]).abs().max()) <= EPS + 1e-6
    assert float(res.x_adv.min()) >= 0.0 and float(res.x_adv.max()) <= 1.0


def test_detector_training_is_deterministic_for_a_seed(setting):
    s = setting
    x_tr, x_adv = s["x_tr"][:100], s["x_tr_adv"][:100]

    def fit(seed: int) -> torch.Tensor:
        det = DetectorConfig(kind="features", epochs=3, seed=seed).fit(
            s["model"], x_tr, x_adv, bounds=s["ds"].bounds
        )
        return det.scores(s["x"])

    rng = torch.get_rng_state()
    assert torch.equal(fit(1), fit(1))
    assert not torch.equal(fit(1), fit(2))
    assert torch.equal(rng, torch.get_rng_state())  # the global generator is left alone


def test_bad_settings_are_refused_with_a_message(setting, mnist5k):
    from robustcore.experiments import Target
    from robustcore.experiments.adversarial_detector import AdversarialDetector

    s = setting
    with pytest.raises(ValidationError, match="must be one of 'features', 'input'"):
        DetectorConfig(kind="pixels")
    with pytest.raises(ValidationError, match="Hidden width must be at least 8"):
        DetectorConfig(hidden=2)
    with pytest.raises(ValidationError, match=r"false-positive rate must be in \[0, 1\)"):
        threshold_for_fpr(torch.zeros(3), 1.0)
    with pytest.raises(ValidationError, match="at least one clean score"):
        threshold_for_fpr(torch.zeros(0), 0.05)
    with pytest.raises(ValidationError, match="clean and adversarial training examples"):
        DetectorConfig().fit(s["model"], s["x_tr"], s["x_tr"][:0], bounds=mnist5k.bounds)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    own = nn.Sequential(nn.Flatten(), nn.Identity())  # no Linear layer: no known features
    with pytest.raises(ValidationError, match="Choose the input detector instead"):
        DetectorConfig().fit(own, s["x_tr"][:4], s["x_tr"][:4], bounds=mnist5k.bounds)
    det = DetectorConfig(kind="input", epochs=1).fit(
        flat, s["x_tr"][:8], s["x_tr_adv"][:8], bounds=mnist5k.bounds
    )
    with pytest.raises(ValidationError, match="threshold must be finite"):
        GuardedModel(flat, det, float("nan"))
    guarded = GuardedModel(flat, det, 0.0)
    with pytest.raises(ValidationError, match="finite number ≥ 0"):
        AdaptiveAttack().run(guarded, s["x"], s["y"], eps=-0.1)
    with pytest.raises(ValidationError, match="one label per input"):
        AdaptiveAttack().run(guarded, s["x"], s["y"][:3], eps=0.1)
    with pytest.raises(ValidationError, match="must be one of 'weighted', 'combined'"):
        AdaptiveAttack(loss="sum")
    # The experiment's own checks.
    with pytest.raises(ValidationError, match="every value must be above 0"):
        AdversarialDetector(eps=(0.0, 0.1))
    with pytest.raises(ValidationError, match="Training ε must be above 0"):
        AdversarialDetector(train_eps=0.0)
    with pytest.raises(ValidationError, match="must be one of 'fgsm', 'pgd', 'cw'"):
        AdversarialDetector(attacks=("pgd", "simba"))
    target = Target.zoo("small_cnn", {"epochs": 1})
    with pytest.raises(ValidationError, match="from the 4000 training images"):
        AdversarialDetector(n_train=3000, n_cal=2000).on(target).spec(mnist5k)
    upload = Target.upload(flat, "f" * 16)  # an own architecture: no known penultimate layer
    with pytest.raises(ValidationError, match="choose the input detector"):
        AdversarialDetector().on(upload).spec(mnist5k)
    AdversarialDetector(detector=DetectorConfig(kind="input")).on(upload).spec(mnist5k)


def test_experiment_states_its_work_and_defaults(mnist5k):
    from robustcore.experiments import Target
    from robustcore.experiments.adversarial_detector import AdversarialDetector

    target = Target.zoo("small_cnn", {"epochs": 1})
    exp = AdversarialDetector.for_dataset(mnist5k).on(target)
    assert exp.grid() == [0.05, 0.1, 0.2, 0.3] and exp.train_eps == 0.3
    work = exp.work(mnist5k)
    pgd_steps, n = exp.pgd.steps, exp.n
    # Training attack (PGD-20 on 1000 images), the grid's PGD on n, the adaptive steps.
    assert work.gradient["small_cnn"] >= pgd_steps * (exp.n_train + 4 * n) + 50 * n
    assert not work.train  # the feature detector: the MLP on features costs next to nothing
    inp = exp.replace(detector=DetectorConfig(kind="input")).work(mnist5k)
    assert inp.train["small_cnn"] == 2 * exp.n_train * exp.detector.epochs
    # Without C&W among the attacks, its image count leaves the spec.
    assert "n_cw" not in exp.replace(attacks=("pgd",)).to_dict()
