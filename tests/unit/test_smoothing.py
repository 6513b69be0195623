"""Randomized smoothing (Cohen et al. 2019): the certificate's statistics on constructed
base classifiers whose class probabilities under noise are known, abstention, seeds and
batching, the soft smoothed model (Salman et al. 2019) as a model, and the certificate as
a lower bound on PGD-L2's empirical accuracy on a tiny noise-trained model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, binomtest, norm
from torch import nn

from robustcore.attacks.evasion import PGD, Goal
from robustcore.defenses.smoothing import (
    ABSTAIN,
    NOISE_BLOCK,
    SmoothedClassifier,
    Smoothing,
    binomial_p_value,
    certified_accuracy,
    lower_confidence_bound,
)
from robustcore.errors import ValidationError
from robustcore.experiments import Target
from robustcore.experiments.certified_robustness import CertifiedRobustness
from robustcore.models import build_model, train_entry


class Threshold(nn.Module):
    """Class 0 when the first feature is below ``t``, else class 1: at x = 0 under noise
    of σ, class 0 has probability Φ(t / σ), and the exact distance from x to the decision
    boundary of the smoothed classifier is t."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t
        self.dummy = nn.Parameter(torch.zeros(()))  # a device and requires_grad to restore

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        first = z.flatten(1)[:, 0]
        above = (first >= self.t).float()
        return torch.stack([1 - above, above], dim=1) * 10 + self.dummy


class Constant(nn.Module):
    """Always class ``c`` of 5 (probability 1 under any noise)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.c = c

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(z.shape[0], 5)
        out[:, self.c] = 1.0
        return out


@pytest.fixture(scope="module")
def cnn(mnist5k) -> nn.Module:
    """An untrained small CNN (its convolutions are what the layout change touches)."""
    return build_model("small_cnn", mnist5k.input_shape, mnist5k.num_classes, seed=0).eval()


def _zeros(n: int = 1) -> torch.Tensor:
    return torch.zeros(n, 1, 2, 2)


def test_the_radius_is_sigma_times_the_normal_quantile_of_the_clopper_pearson_bound():
    sigma, t = 0.5, 0.5  # class 0 with probability Φ(1) ≈ 0.841
    sm = Smoothing(sigma=sigma, n0=100, n=10_000, alpha=0.001, clip=False)
    cert = sm.certify(Threshold(t), _zeros(3))
    n_a = cert.counts[:, 0].numpy()
    # The estimate is the known probability within sampling error (5 standard errors).
    p = norm.cdf(t / sigma)
    assert np.all(np.abs(n_a / 10_000 - p) < 5 * math.sqrt(p * (1 - p) / 10_000)), n_a
    p_lower = beta.ppf(0.001, n_a, 10_000 - n_a + 1)
    assert np.allclose(cert.p_lower.numpy(), p_lower)
    assert np.allclose(cert.radius.numpy(), sigma * norm.ppf(p_lower))
    assert (cert.pred == 0).all()
    # A lower bound on the exact radius t, and close to it with 10,000 samples.
    assert (cert.radius < t).all() and (cert.radius > 0.8 * t).all(), cert.radius


def test_a_constant_classifier_gets_the_largest_radius_n_samples_allow():
    sm = Smoothing(sigma=0.25, n0=10, n=1000, alpha=0.001)
    cert = sm.certify(Constant(3), torch.rand(4, 1, 2, 2))
    top = 0.001 ** (1 / 1000)  # Beta(n, 1)'s α quantile: every sample on the class
    assert torch.equal(cert.pred, torch.full((4,), 3))
    assert np.allclose(cert.radius.numpy(), 0.25 * norm.ppf(top))
    assert cert.max_radius == pytest.approx(0.25 * norm.ppf(top))
    y = torch.tensor([3, 3, 3, 1])
    acc = certified_accuracy(cert, y, [0.0, cert.max_radius, cert.max_radius + 1e-6])
    assert acc.tolist() == [0.75, 0.75, 0.0]


def test_certify_and_predict_abstain_when_the_classes_tie():
    # On the boundary (t = 0) the two classes are equally likely: p_A is below ½.
    sm = Smoothing(sigma=0.25, n0=100, n=2000, alpha=0.001, clip=False)
    cert = sm.certify(Threshold(0.0), _zeros(5))
    assert (cert.pred == ABSTAIN).all() and (cert.radius == 0).all()
    assert (cert.p_lower < 0.5).all() and cert.abstain_rate == 1.0
    assert certified_accuracy(cert, torch.zeros(5, dtype=torch.long), [0.0]).item() == 0.0
    pred = sm.predict(Threshold(0.0), _zeros(5))
    assert (pred.pred == ABSTAIN).all() and (pred.counts.sum(1) == 2000).all()
    # Far from the boundary PREDICT answers.
    assert (sm.predict(Threshold(1.0), _zeros(2)).pred == 0).all()


def test_the_statistics_match_scipy():
    for n_a, n_b in [(60, 40), (55, 45), (10, 0), (50, 50), (0, 0), (700, 3)]:
        want = binomtest(n_a, n_a + n_b, 0.5).pvalue if n_a + n_b else 1.0
        assert binomial_p_value(n_a, n_b) == pytest.approx(want, rel=1e-9, abs=1e-300)
    assert lower_confidence_bound(0, 100, 0.001) == 0.0
    assert lower_confidence_bound(100, 100, 0.001) == pytest.approx(0.001 ** (1 / 100))


def test_a_seed_fixes_the_draws_and_the_batch_size_does_not_change_them():
    model = Threshold(0.05)
    x = torch.randn(3, 1, 2, 2) * 0.05
    sm = Smoothing(sigma=0.25, n=700, clip=False)  # 700 draws: blocks of 256, 256, 188
    base = sm.counts(model, x, 700)
    assert base.sum(1).tolist() == [700, 700, 700]
    assert torch.equal(base, sm.counts(model, x, 700))
    for batch in (1, NOISE_BLOCK, 300, 2100, 1_000_000):
        assert torch.equal(base, sm.replace(batch_size=batch).counts(model, x, 700)), batch
    assert not torch.equal(base, sm.replace(seed=1).counts(model, x, 700))
    # CERTIFY's selection and estimation draws are independent streams.
    assert not torch.equal(sm.counts(model, x, 700, phase="select"), base)


def test_sampling_leaves_the_model_differentiable_and_in_its_mode(cnn, mnist5k):
    model = cnn
    Smoothing(sigma=0.25, n=64).counts(model, mnist5k.x_test[:2], 64, bounds=mnist5k.bounds)
    assert not model.training
    x = mnist5k.x_test[:2].clone().requires_grad_(True)
    model(x).sum().backward()  # weights converted inside inference mode would fail here
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_soft_smoothed_classifier_behaves_like_a_model(cnn, mnist5k):
    sm = Smoothing(sigma=0.25, samples=4, batch_size=8)
    soft = sm.wrap(cnn, bounds=mnist5k.bounds)
    assert isinstance(soft, SmoothedClassifier) and isinstance(soft, nn.Module)
    soft.train()
    assert not soft.training and not soft.base.training  # never trained
    x = mnist5k.x_test[:5].clone().requires_grad_(True)
    out = soft(x)  # 5 inputs × 4 draws in chunks of 2 inputs
    assert out.shape == (5, 10) and out.device == x.device
    assert torch.allclose(out.exp().sum(1), torch.ones(5), atol=1e-5)  # log of mean softmax
    out[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients through the noise (EOT)
    assert float(soft.state_dict()["sigma"]) == 0.25
    # Fresh draws on every call; a fresh wrapper repeats the sequence.
    with torch.no_grad():
        a, b = soft(x), soft(x)
        again = sm.wrap(cnn, bounds=mnist5k.bounds)
        assert not torch.equal(a, b)
        assert torch.equal(again(x), out.detach()) and torch.equal(again(x), a)


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValidationError, match="Noise σ"):
        Smoothing(sigma=0.0)
    with pytest.raises(ValidationError, match="Precision"):
        Smoothing(precision="float8")
    sm = Smoothing(n=10)
    with pytest.raises(ValidationError, match="at least one noisy copy"):
        sm.counts(Constant(0), _zeros(), 0)
    with pytest.raises(ValidationError, match="batch of inputs"):
        sm.certify(Constant(0), torch.zeros(4))
    with pytest.raises(ValidationError, match="cannot exceed the test images"):
        CertifiedRobustness(images=10, attack_images=20)


def test_the_experiment_states_its_sampling_work(mnist5k):
    exp = CertifiedRobustness(sigmas=(0.25, 0.5), images=20, n0=10, n=100, attack_images=5,
                              radii=(0.5,), samples=2, pgd={"steps": 3})  # fmt: skip
    exp = exp.on(Target.zoo("mlp", {"epochs": 1}))
    recipes = exp.recipes()
    assert [r.noise_std for r in recipes.values()] == [0.25, 0.5]
    assert all(r.method == "noise" and r.epochs == 1 for r in recipes.values())
    work = exp.work(mnist5k)
    # Per σ: CERTIFY 20 × (10 + 100), the clean pass, PREDICT on 5 × 100 adversarial
    # copies; the session model's clean pass; and the untrained base models' training.
    assert work.forward["mlp"] >= 20 + 2 * (20 * 111 + 5 * 100)
    assert work.gradient["mlp"] == 2 * 5 * 3 * 2
    with pytest.raises(ValidationError, match="built-in architecture"):
        exp.on(Target.upload(nn.Linear(784, 10), "abc")).spec(mnist5k)


def test_empirical_accuracy_is_at_least_the_certified_one(mnist5k):
    """PGD-L2 with expectation over the noise on the smoothed classifier of a tiny
    noise-trained MLP: no image certified correct at a radius of at least r is classified
    wrong by PREDICT on its PGD example at r (each could be with probability ≤ 2α)."""
    base = train_entry("mlp", mnist5k, {"epochs": 1, "noise_std": 0.25, "seed": 0}).model
    sm = Smoothing(sigma=0.25, n0=50, n=300, alpha=0.001, samples=4)
    x, y = mnist5k.x_test[:24], mnist5k.y_test[:24]
    cert = sm.certify(base, x, bounds=mnist5k.bounds)
    soft = sm.wrap(base, bounds=mnist5k.bounds)
    covered_total = 0
    for r in (0.2, 0.4):  # n = 300 certifies up to 0.25 · Φ⁻¹(0.001^(1/300)) ≈ 0.50
        x_adv = PGD(steps=5).perturb(soft, x, y, eps=r, norm="l2", goal=Goal(bounds=mnist5k.bounds))
        assert float((x_adv - x).flatten(1).norm(dim=1).max()) <= r + 1e-4
        pred = sm.predict(base, x_adv, bounds=mnist5k.bounds).pred
        covered = cert.correct(y) & (cert.radius >= r)
        covered_total += int(covered.sum())
        assert not (covered & (pred != y) & (pred != ABSTAIN)).any()
        empirical = float(((pred == y) | (pred == ABSTAIN)).float().mean())
        assert empirical >= float(certified_accuracy(cert, y, [r])[0])
    # The check had something to check: 36 certified-correct image-radius pairs at seed 0
    # (36-38 over model seeds 0-2, none contradicted).
    assert covered_total >= 20
