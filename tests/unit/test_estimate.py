"""Time estimates: the work arithmetic, the measured and cached prices, the zoo's training
cost, and the remaining time a progress bar shows. No timing is asserted: prices are
whatever this machine measures; what is checked is how they are counted."""

from __future__ import annotations

import json

import pytest
import torch

from robustcore.experiments import Target
from robustcore.experiments import estimate as est
from robustcore.experiments.estimate import Work, training_work
from robustcore.experiments.registry import MODULES
from robustcore.experiments.train import Train
from robustcore.models import TrainRecipe, build_model
from robustcore.ui.jobs import remaining_seconds


@pytest.fixture()
def fresh_home(tmp_path, monkeypatch):
    """An empty ROBUSTCORE_HOME and no prices remembered in this process."""
    monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path))
    monkeypatch.setattr(est, "_prices", {})
    return tmp_path


def test_work_adds_and_scales_per_model_and_unit():
    a = Work.of("mlp", forward=100, gradient=10)
    b = Work.of("mlp", forward=50) + Work.of("small_cnn", train=7)
    s = a + b
    assert s.forward == {"mlp": 150.0}
    assert s.gradient == {"mlp": 10.0}
    assert s.train == {"small_cnn": 7.0}
    assert (s * 2).forward == {"mlp": 300.0} and (3 * a).gradient == {"mlp": 30.0}
    assert s.models() == ["mlp", "small_cnn"]
    assert Work.of("mlp").models() == []  # zero counts are not work
    assert est.total([a, b]).to_dict() == s.to_dict()


def test_prices_are_measured_once_then_read_from_the_home(fresh_home, mnist5k, monkeypatch):
    calls = []
    real = est.measure

    def counting(model, dataset, batch=est.PRICE_BATCH):
        calls.append(type(model).__name__)
        return real(model, dataset, batch=16)

    monkeypatch.setattr(est, "measure", counting)
    p = est.price("logreg", mnist5k)
    assert set(p) == {"forward", "gradient", "train"}
    assert all(v > 0 for v in p.values())
    assert est.price("logreg", mnist5k) == p
    assert len(calls) == 1
    saved = json.loads((fresh_home / "costs.json").read_text())
    (key,) = saved
    assert "logreg" in key and est.machine_signature() in key
    # A new process (nothing in memory) reads the file instead of measuring again...
    saved[key]["load"] = 0.0
    (fresh_home / "costs.json").write_text(json.dumps(saved))
    monkeypatch.setattr(est, "_prices", {})
    assert est.price("logreg", mnist5k) == p
    assert len(calls) == 1
    # ... unless the price was measured on a busy processor: then once more, keeping the
    # lower of the two.
    saved[key] = {**saved[key], "forward": 1.0, "load": 1e6}
    (fresh_home / "costs.json").write_text(json.dumps(saved))
    monkeypatch.setattr(est, "_prices", {})
    again = est.price("logreg", mnist5k)
    assert len(calls) == 2
    assert again["forward"] < 1.0 and again["train"] <= p["train"]
    assert est.price("logreg", mnist5k) == again and len(calls) == 2


def test_a_damaged_costs_file_is_measured_again(fresh_home, mnist5k):
    (fresh_home / "costs.json").write_text("{not json")
    assert est.price("logreg", mnist5k)["forward"] > 0
    (fresh_home / "costs.json").write_text(json.dumps({"k": {"forward": -1}}))
    est._prices.clear()
    assert est.price("logreg", mnist5k)["forward"] > 0


def test_an_uploaded_model_is_priced_on_the_module_itself(fresh_home, mnist5k, monkeypatch):
    seen = []
    monkeypatch.setattr(
        est,
        "measure",
        lambda model, dataset, batch=128: seen.append(model) or dict.fromkeys(est.UNITS, 1e-4),
    )
    module = build_model("mlp", mnist5k.input_shape, mnist5k.num_classes)
    target = Target.upload(module, "abc123", arch=None)
    e = Train().on(target).estimate(mnist5k)
    assert seen == [module]
    assert e is not None and e.work.forward == {"upload:abc123": float(mnist5k.n_test)}
    assert e.seconds == pytest.approx(mnist5k.n_test * 1e-4)
    with pytest.raises(KeyError):
        est.price("upload:nothing", mnist5k)


def test_training_work_counts_epochs_methods_and_the_zoo(fresh_home, mnist5k):
    std = TrainRecipe(epochs=2)
    w = training_work("mlp", mnist5k, std)
    assert w.train == {"mlp": 2.0 * mnist5k.n_train}
    assert w.forward == {"mlp": 2.0 * mnist5k.n_test}  # the per-epoch test evaluation
    assert training_work("mlp", mnist5k, std.replace(epochs=4)).train["mlp"] == 2 * w.train["mlp"]
    small = training_work("mlp", mnist5k, std.replace(train_size=500))
    assert small.train == {"mlp": 1000.0}
    pgd = training_work("mlp", mnist5k, std.replace(method="pgd_at", adv_steps=7))
    fgsm = training_work("mlp", mnist5k, std.replace(method="fgsm_rs"))
    # Per epoch, PGD-AT's inner attack takes 7 gradients per image, FGSM-RS's one; both
    # pay the same per-epoch robustness checks.
    assert pgd.gradient["mlp"] - fgsm.gradient["mlp"] == 2 * mnist5k.n_train * (7 - 1)
    # Distillation at T > 1 is derived from the T = 1 student, which needs the teacher.
    dist = training_work("mlp", mnist5k, std.replace(method="distillation", temperature=20.0))
    assert dist.train["mlp"] == 2 * w.train["mlp"]


def test_a_model_in_the_zoo_costs_nothing_to_get(fresh_home, mnist5k):
    from robustcore.models import train_entry

    recipe = TrainRecipe(epochs=1, train_size=200)
    target = Target.zoo("logreg", recipe)
    before = Train().on(target).estimate(mnist5k)
    assert before is not None and before.work.train == {"logreg": 200.0}
    train_entry("logreg", mnist5k, recipe)
    assert est.in_zoo("logreg", mnist5k, recipe)
    after = Train().on(target).estimate(mnist5k)
    assert after is not None and after.work.train == {}
    assert after.seconds < before.seconds
    assert "forward images" in after.breakdown()


def test_experiments_without_work_give_no_estimate(mnist5k):
    class Silent(Train):
        def work(self, dataset):
            return None

    assert Silent().on(Target.zoo("logreg")).estimate(mnist5k) is None


def test_remaining_time_moves_from_the_estimate_to_the_pace():
    # Before any progress: the estimate's remainder.
    assert remaining_seconds(0.0, 5.0, 60.0) == pytest.approx(55.0)
    # No estimate and no progress: nothing to say.
    assert remaining_seconds(0.0, 5.0, None) is None
    # No estimate: the pace alone (10 s for 25 % → 30 s left).
    assert remaining_seconds(0.25, 10.0, None) == pytest.approx(30.0)
    # Half done in 40 s with a 60 s estimate: between the pace (40) and the estimate (20).
    assert remaining_seconds(0.5, 40.0, 60.0) == pytest.approx(0.5 * 40 + 0.5 * 20)
    # Past the estimate: never negative.
    assert remaining_seconds(0.9, 100.0, 60.0) >= 0.0


def test_format_seconds_reads_naturally():
    assert est.format_seconds(0.4) == "a second"
    assert est.format_seconds(42.2) == "42 s"
    assert est.format_seconds(150) == "2.5 min"
    assert est.format_seconds(1200) == "20 min"
    assert est.format_seconds(7200) == "2.0 h"


def test_measure_leaves_the_model_untouched(mnist5k):
    model = build_model("mlp", mnist5k.input_shape, mnist5k.num_classes, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    est.measure(model, mnist5k, batch=8)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", list(MODULES))
def test_every_page_default_says_what_it_computes(name, mnist5k, fresh_home, monkeypatch):
    """Every registered experiment counts its work; with nothing in the zoo, every page
    default trains a model (its own, or its target, which the estimate adds)."""
    from collections import OrderedDict

    from robustcore.experiments import get, load_all
    from robustcore.models import default_architecture, zoo

    monkeypatch.setattr(zoo, "_memory", OrderedDict())  # no model served from memory
    load_all()
    session = Target.zoo(default_architecture(mnist5k), TrainRecipe())
    exp = get(name).page_default(mnist5k, session)
    work = exp.work(mnist5k)
    assert isinstance(work, Work) and work.models()
    assert all(v > 0 for unit in est.UNITS for v in getattr(work, unit).values())
    if exp.needs_model:
        work = work + est.target_work(exp.target, mnist5k)
    assert work.train
