"""A Target behind an inference-time defense: its spec, its model, its estimate."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from robustcore.defenses import inference
from robustcore.defenses.inference import InferenceDefense
from robustcore.errors import ValidationError
from robustcore.experiments import Target
from robustcore.experiments.estimate import model_key
from robustcore.params import Configurable, param


class _Halve(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * 0.5)


@dataclass(frozen=True)
class _Scale(Configurable):
    name = "scale"
    factor: float = param(0.5, low=0.0, high=1.0, step=0.1, help="Input scale.")

    def wrap(self, model: nn.Module) -> nn.Module:
        return _Halve(model)

    def describe(self) -> str:
        return f"scale ×{self.factor:g}"


@pytest.fixture
def fake_kind(monkeypatch):
    mod = types.ModuleType("rc_fake_defense")
    mod._Scale = _Scale
    monkeypatch.setitem(sys.modules, "rc_fake_defense", mod)
    monkeypatch.setitem(inference.KINDS, "scale", ("rc_fake_defense", "_Scale", "Scaling"))
    return InferenceDefense.of("scale", {"factor": 0.5})


def test_spec_names_the_defense_only_when_there_is_one(fake_kind):
    plain = Target.zoo("small_cnn")
    defended = plain.defended_by(fake_kind)
    assert "inference" not in plain.spec()
    assert defended.spec()["inference"] == {"kind": "scale", "factor": 0.5}
    assert defended.spec() != plain.spec() and defended.defended
    assert defended.base == plain and defended.undefended().spec() == plain.spec()
    assert defended.with_arch("mlp").inference == fake_kind
    assert defended.with_recipe(epochs=2).inference == fake_kind
    assert defended.describe().endswith("+ scale ×0.5")
    assert InferenceDefense.from_spec(defended.spec()["inference"]) == fake_kind
    assert model_key(defended) != model_key(plain)


def test_an_uploaded_model_is_resolved_behind_its_defense(fake_kind, mnist5k):
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    got = Target.upload(net, "abc").defended_by(fake_kind).resolve(mnist5k)
    assert isinstance(got, _Halve) and got.model is net


def test_unknown_kinds_and_bad_settings_are_refused(fake_kind):
    with pytest.raises(ValidationError, match="Unknown inference-time defense"):
        InferenceDefense.of("tinfoil")
    with pytest.raises(ValidationError):
        InferenceDefense.of("scale", {"factor": 7})
    with pytest.raises(ValidationError, match="needs a 'kind'"):
        InferenceDefense.from_spec({"factor": 1})


def test_a_smoothed_zoo_model_is_the_soft_smoothed_classifier(mnist5k, tiny_cnn):
    smooth = InferenceDefense.of("smoothing", {"sigma": 0.25, "samples": 4})
    target = Target.zoo("small_cnn", {"epochs": 1, "seed": 0}).defended_by(smooth)
    model = target.resolve(mnist5k)
    x = mnist5k.x_test[:8]
    out = model(x)
    assert out.shape == (8, 10) and torch.isfinite(out).all()
    # log of a mean of probabilities: they sum to one
    assert torch.allclose(out.exp().sum(1), torch.ones(8), atol=1e-5)
    assert smooth.forward_cost == 4 and "σ=0.25" in target.describe()


def test_a_preprocessed_model_sees_squeezed_inputs(mnist5k, tiny_cnn):
    squeeze = InferenceDefense.of("preprocessing", {"bits": 1, "median": 2})
    target = Target.zoo("small_cnn", {"epochs": 1, "seed": 0})
    plain, guarded = target.resolve(mnist5k), target.defended_by(squeeze).resolve(mnist5k)
    x = mnist5k.x_test[:16]
    squeezed = squeeze.config.apply(x)
    with torch.no_grad():
        assert torch.allclose(guarded(x), plain(squeezed), atol=1e-5)
    assert "1-bit depth" in target.defended_by(squeeze).describe()
