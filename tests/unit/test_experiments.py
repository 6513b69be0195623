"""The experiment contract (robustcore.experiments): specs derived from the declaration,
targets, typed results, the registry and the CLI generated from it — with the README's
worked example of a new experiment."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from robustcore.attacks.evasion import PGD
from robustcore.errors import ValidationError
from robustcore.experiments import EXPERIMENTS, Experiment, ExperimentResult, Target, load_all
from robustcore.models import TrainRecipe, predict_logits
from robustcore.params import add_arguments, namespace_values, nested, param
from robustcore.progress import split
from robustcore.runs import JobRunner, ResultStore, RunResult, spec_key


# -- the README's worked example: a new experiment in one module -----------------------------
class NoiseResult(ExperimentResult):
    @property
    def accuracy(self) -> float:
        return float(self._metric("accuracy"))

    def per_sigma(self) -> pd.DataFrame:
        return self._table("per_sigma")


@dataclass(frozen=True)
class NoiseAccuracy(Experiment):
    """Accuracy of the target under Gaussian noise of a few sizes."""

    name = "noise_accuracy_example"
    title = "Accuracy under Gaussian noise"
    result_class = NoiseResult

    sigmas: tuple[float, ...] = param((0.1, 0.3), low=0.0, high=5.0, label="Noise σ values")
    n: int = param(200, low=1, high=10_000, label="Test images")
    seed: int = param(0, low=0, label="Seed")

    def check_data(self, dataset):
        if self.n > dataset.n_test:
            raise ValidationError(f"{dataset.name} has only {dataset.n_test} test images.")

    def run(self, dataset, model, progress=None):
        x, y = dataset.x_test[: self.n], dataset.y_test[: self.n]
        gen = torch.Generator().manual_seed(self.seed)
        rows = []
        for sigma, part in zip(self.sigmas, split(progress, self.sigmas), strict=True):
            noisy = (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)
            acc = float((predict_logits(model, noisy).argmax(1) == y).float().mean())
            rows.append({"sigma": sigma, "accuracy": acc})
            if part:
                part(1.0, f"σ = {sigma:g}")
        table = pd.DataFrame(rows)
        return RunResult(metrics={"accuracy": table["accuracy"].min()}, tables={"per_sigma": table})


@pytest.fixture()
def runner(tmp_path):
    r = JobRunner(ResultStore(tmp_path / "runs.sqlite"))
    yield r
    r.shutdown()


def test_worked_example_runs_through_the_runner_and_comes_back_typed(runner, mnist5k, tiny_cnn):
    target = Target.upload(tiny_cnn.model, "tiny-cnn-test", arch="small_cnn", label="tiny")
    exp = NoiseAccuracy(sigmas="0, 0.5", n=100).on(target)
    job = runner.submit(exp, mnist5k).wait()
    assert job.state == "done", job.error
    res = NoiseAccuracy.result(job.result)
    assert list(res.per_sigma()["sigma"]) == [0.0, 0.5]
    assert res.accuracy == res.per_sigma()["accuracy"].min()
    assert res.target == target.spec() and res.fingerprint == mnist5k.fingerprint()
    assert runner.submit(exp, mnist5k).from_store  # the same spec is served from the store
    assert not runner.submit(exp.replace(n=50), mnist5k).from_store
    with pytest.raises(ValidationError, match="only 1000 test images"):
        runner.submit(exp.replace(n=5000), mnist5k)


def test_the_spec_is_derived_from_the_fields(mnist5k):
    target = Target.zoo("small_cnn", {"epochs": 2})
    spec = NoiseAccuracy().on(target).spec(mnist5k)
    assert spec == {
        "kind": "noise_accuracy_example",
        "layout": 1,
        "dataset": "mnist5k",
        "fingerprint": mnist5k.fingerprint(),
        "target": {"source": "zoo", "arch": "small_cnn", "recipe": TrainRecipe(epochs=2).to_dict()},
        "params": {"sigmas": [0.1, 0.3], "n": 200, "seed": 0},
        "seed": 0,
    }
    keys = {
        spec_key(NoiseAccuracy().on(target).spec(mnist5k)),
        spec_key(NoiseAccuracy(n=100).on(target).spec(mnist5k)),
        spec_key(NoiseAccuracy().on(target.with_recipe(seed=3)).spec(mnist5k)),
        spec_key(NoiseAccuracy().on(target.with_arch("lenet5")).spec(mnist5k)),
    }
    assert len(keys) == 4

    @dataclass(frozen=True)
    class Newer(NoiseAccuracy):
        layout = 2  # a changed result layout is never served from an old run

    assert spec_key(Newer().on(target).spec(mnist5k)) not in keys
    with pytest.raises(ValidationError, match="choose a model"):
        NoiseAccuracy().spec(mnist5k)


def test_typed_results_refuse_another_experiments_run(runner, mnist5k, tiny_cnn):
    from robustcore.experiments.train import Train

    target = Target.upload(tiny_cnn.model, "tiny-cnn-test-2", arch="small_cnn")
    record = runner.submit(NoiseAccuracy(n=20).on(target), mnist5k).wait().result
    with pytest.raises(ValidationError, match="not 'train'"):
        Train.result(record)


def test_targets_are_validated_and_describe_themselves():
    with pytest.raises(ValidationError, match="Unknown architecture"):
        Target.zoo("nope")
    with pytest.raises(ValidationError, match="needs its model"):
        Target("upload", fingerprint="x")
    with pytest.raises(ValidationError, match="zoo target needs"):
        Target("zoo", arch="mlp")
    with pytest.raises(ValidationError, match="Only a model trained by recipe"):
        Target.upload(torch.nn.Linear(2, 2), "abc").with_recipe(epochs=2)
    t = Target.zoo("mlp", {"epochs": 3, "seed": 7})
    assert t.training == ("mlp", TrainRecipe(epochs=3, seed=7))
    assert "mlp" in t.describe() and "3 epochs" in t.describe()
    up = Target.upload(torch.nn.Linear(2, 2), "abc")
    assert up.spec() == {"source": "upload", "arch": None, "fingerprint": "abc"}
    assert up.training == (None, TrainRecipe())


@dataclass(frozen=True)
class _WithNested(Experiment):
    name = "nested_example"
    eps: tuple[float, ...] = param((0.0, 0.1), low=0.0)
    target_class: int | None = param(None, low=0)
    pgd: PGD = nested(PGD, label="PGD settings")


def test_nested_lists_and_optional_parameters_from_dicts_text_and_flags():
    e = _WithNested(eps="0, 0.2", target_class="none", pgd={"steps": 3})
    assert e.eps == (0.0, 0.2) and e.target_class is None and e.pgd == PGD(steps=3)
    assert e.to_dict() == {"eps": [0.0, 0.2], "target_class": None, "pgd": PGD(steps=3).to_dict()}
    assert _WithNested.from_dict(e.to_dict()) == e
    with pytest.raises(ValidationError, match="only once"):
        _WithNested(eps=(0.1, 0.1))
    with pytest.raises(ValidationError, match="at least one value"):
        _WithNested(eps="")
    with pytest.raises(ValidationError, match="Steps must be at least 1"):
        _WithNested(pgd={"steps": 0})
    with pytest.raises(ValidationError, match="Unknown parameter"):
        _WithNested(pgd={"eps": 0.3})  # the budget is the run's, not PGD's
    parser = argparse.ArgumentParser()
    add_arguments(parser, _WithNested)
    ns = parser.parse_args(["--eps", "0,0.3", "--pgd.steps", "7", "--target-class", "2"])
    values = namespace_values(_WithNested, ns)
    # A nested flag changes the nested field's own default (here PGD()), not its class's.
    assert values == {
        "eps": "0,0.3",
        "target_class": "2",
        "pgd": {**PGD().to_dict(), "steps": "7"},
    }
    built = _WithNested.from_dict(values)
    assert built.pgd.steps == 7 and built.target_class == 2 and built.eps == (0.0, 0.3)


def test_the_registry_lists_every_page_experiment():
    names = set(load_all())
    assert {"train", "scorecard", "whitebox"} <= names
    for name, cls in EXPERIMENTS.items():
        assert cls.name == name and cls.title, name
        assert issubclass(cls.result_class, ExperimentResult), name
        assert dataclasses.is_dataclass(cls) and cls.layout >= 1


def test_each_page_starts_on_its_own_default_model(mnist5k):
    """The privacy pages start on the overfitting control's model, the others on the session's:
    what bench/page_defaults.py times and what the pages' target radios preselect."""
    load_all()
    session = Target.zoo("small_cnn", TrainRecipe())
    overfit = {n for n, cls in EXPERIMENTS.items() if cls.page_target == "overfit"}
    assert overfit == {"membership_inference", "overfitting_sweep", "postprocessing"}
    for name, cls in EXPERIMENTS.items():
        target = cls.default_target(mnist5k, session)
        if name in overfit:
            assert target.arch == "mlp" and target.recipe.epochs == 40
            assert target.recipe.train_size == 500
            assert target.recipe.replace(epochs=5, train_size=0) == TrainRecipe()
        else:
            assert target is session, name
