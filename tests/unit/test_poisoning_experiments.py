"""The poisoning experiments (backdoors, hidden_trigger, label_flipping,
poisoning_sanitization): what their specs hold, how bad settings are refused, and the
typed results a run stores (through the runner and the CLI, as the pages see them).

The runs reuse the models test_poisoning.py and test_sanitize.py train (the session's zoo):
the default model, BadNets at 3 %, the hidden trigger at ε = 0.3, the 15-epoch MLPs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.report_check import check_section

from robustcore.attacks.poisoning import LabelFlip
from robustcore.cli import main
from robustcore.errors import ValidationError
from robustcore.experiments import EXPERIMENTS, Target, load_all
from robustcore.experiments.backdoors import Backdoors, BackdoorsResult
from robustcore.experiments.hidden_trigger import HiddenTriggerBackdoor
from robustcore.experiments.label_flipping import LabelFlipping
from robustcore.experiments.poisoning_sanitization import PoisoningSanitization
from robustcore.models import TrainRecipe, build_model
from robustcore.runs import get_runner

DEFAULT = TrainRecipe()
TARGET = Target.zoo("small_cnn", DEFAULT)
MLP15 = Target.zoo("mlp", TrainRecipe(epochs=15))
NAMES = ("backdoors", "hidden_trigger", "label_flipping", "poisoning_sanitization")


SECTION_CHARTS = {
    "backdoors": ({"sweep"}, {"BadNets"}),
    "hidden_trigger": ({"sweep"}, {"Hidden trigger"}),
    "label_flipping": ({"sweep", "cm_lowest", "cm_highest"}, {"Label flipping"}),
    "poisoning_sanitization": ({"before_after"}, {"BadNets"}),
}


def _run(exp, ds):
    job = get_runner().submit(exp, ds).wait()
    assert job.state == "done", job.error
    charts, tried = SECTION_CHARTS[job.result.kind]
    check_section(job.result, charts, tried)  # its report section, from the same run
    return type(exp).result(job.result)


def test_poisoning_experiments_are_registered():
    load_all()
    for name in NAMES:
        assert name in EXPERIMENTS
        assert EXPERIMENTS[name].needs_model is False  # they train their own victims


def test_backdoors_spec_holds_only_the_swept_axis(mnist5k):
    params = Backdoors().on(TARGET).spec(mnist5k)["params"]
    assert params["sweep"] == "poison_rate" and params["poison_rates"] == [0.0, 0.01, 0.03]
    assert not {"trigger_sizes", "blend_alphas", "noise_stds"} & set(params)
    assert params["attack"] == {"mode": "all_to_one", "seed": 0}  # the attack's own settings
    sizes = Backdoors(sweep="trigger_size", trigger_sizes=(4, 1)).on(TARGET).spec(mnist5k)
    assert sizes["params"]["trigger_sizes"] == [1, 4] and "poison_rates" not in sizes["params"]
    # The order of the values does not change the key; the target class does.
    a = Backdoors(poison_rates=(0.03, 0.0)).on(TARGET).spec(mnist5k)
    b = Backdoors(poison_rates=(0.0, 0.03)).on(TARGET).spec(mnist5k)
    assert a == b
    assert Backdoors(target_class=3).on(TARGET).spec(mnist5k) != Backdoors().on(TARGET).spec(
        mnist5k
    )


def test_backdoors_bad_settings_are_messages(mnist5k):
    with pytest.raises(ValidationError, match="Target class"):
        Backdoors(target_class=10).on(TARGET).spec(mnist5k)
    with pytest.raises(ValidationError, match="does not fit"):
        Backdoors(trigger={"size": 40}).on(TARGET).spec(mnist5k)
    with pytest.raises(ValidationError, match="does not fit"):
        Backdoors(sweep="trigger_size", trigger_sizes=(4, 30)).on(TARGET).spec(mnist5k)
    with pytest.raises(ValidationError, match="at most 0.5"):
        Backdoors(poison_rates=(0.0, 0.9))


def test_victims_of_an_uploaded_model_need_a_built_in_architecture(mnist5k):
    from robustcore.data import load

    own = Target.upload(build_model("mlp", (1, 28, 28), 10), "f" * 16)  # no known arch
    with pytest.raises(ValidationError, match="choose the architecture"):
        LabelFlipping().on(own).spec(mnist5k)
    spec = LabelFlipping(victim_arch="mlp").on(own).spec(mnist5k)
    assert spec["params"]["victim_arch"] == "mlp" and spec["target"]["source"] == "upload"
    assert LabelFlipping(victim_arch="mlp").on(own).victim(mnist5k) == ("mlp", TrainRecipe())
    with pytest.raises(ValidationError, match="does not fit"):
        LabelFlipping(victim_arch="small_cnn").on(own).spec(load("breast_cancer"))
    # A zoo target's victims are trained like it.
    assert LabelFlipping().on(MLP15).victim(mnist5k) == ("mlp", TrainRecipe(epochs=15))


def test_hidden_trigger_and_label_flipping_specs(mnist5k):
    from robustcore.data import load

    params = HiddenTriggerBackdoor(eps=(0.3, 0.1)).on(TARGET).spec(mnist5k)["params"]
    assert params["eps"] == [0.1, 0.3] and "eps" not in params["attack"]
    with pytest.raises(ValidationError, match="Source class"):
        HiddenTriggerBackdoor(source_class=12).on(TARGET).spec(mnist5k)
    # Random flips ignore classes A and B: they stay out of the key.
    random = LabelFlipping(source_class=3).on(TARGET).spec(mnist5k)
    assert random == LabelFlipping().on(TARGET).spec(mnist5k)
    assert "source_class" not in random["params"]
    targeted = LabelFlipping(attack=LabelFlip(mode="targeted"), source_class=3)
    assert targeted.on(TARGET).spec(mnist5k)["params"]["source_class"] == 3
    with pytest.raises(ValidationError, match="Class A"):
        LabelFlipping(attack=LabelFlip(mode="targeted"), source_class=12).on(TARGET).spec(mnist5k)
    assert LabelFlipping.defaults(load("breast_cancer")) == {"source_class": 1, "target_class": 0}


def test_sanitization_spec_holds_only_the_chosen_detector(mnist5k):
    params = PoisoningSanitization().on(TARGET).spec(mnist5k)["params"]
    assert "clustering" in params and "spectral" not in params
    spectral = PoisoningSanitization(
        detector="spectral_signatures", spectral={"expected_rate": 0.2}
    )
    params = spectral.on(TARGET).spec(mnist5k)["params"]
    assert params["spectral"]["expected_rate"] == 0.2 and "clustering" not in params
    assert spectral.detector_config.expected_rate == 0.2
    with pytest.raises(ValidationError, match="no poisoned point"):
        PoisoningSanitization(poison_rate=0.0).on(TARGET).spec(mnist5k)
    # 3 % of 4,000 = 120 poisons next to class 0's own training images.
    n0 = int((mnist5k.y_train == 0).sum())
    share = PoisoningSanitization().poison_share_of_target(mnist5k)
    assert share == pytest.approx(120 / (n0 + 120))
    assert (
        PoisoningSanitization(attack={"mode": "all_to_all"}).poison_share_of_target(mnist5k) is None
    )


def test_backdoors_run_stores_a_typed_result(mnist5k, capsys):
    exp = Backdoors(poison_rates=(0.0, 0.03)).on(TARGET)
    seen: list[tuple[float, str]] = []
    direct = exp.run(mnist5k, None, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0.0 <= fractions[0]
    assert fractions[-1] == pytest.approx(1.0)
    assert any(m == "triggered test images" for _, m in seen)  # (the models are in the zoo)

    res = _run(exp, mnist5k)
    assert isinstance(res, BackdoorsResult)
    table = res.sweep()
    assert table["poison_rate"].tolist() == [0.0, 0.03]
    assert np.allclose(table["attack_success"], direct.tables["sweep"]["attack_success"])
    assert res.sweep_axis == "poison_rate" and res.percent_axis and res.headline_value == 0.03
    assert res.attack_success == pytest.approx(float(table["attack_success"].iloc[1]))
    assert res.n_poison == 120 and res.target_class == 0 and res.mode == "all_to_one"
    assert res.clean_model_accuracy == pytest.approx(float(table["clean_accuracy"].iloc[0]))
    images, gallery = res.gallery()
    assert images.shape == (8, 1, 28, 28) and len(gallery) == 8
    assert "0" not in set(gallery["true"])  # no input of the target class
    assert res.label.startswith("BadNets poison rate sweep · small_cnn")
    assert list(res.cli_tables()) == ["sweep"]

    # The CLI command of the same settings is served from the store.
    assert main(["backdoors", "--poison-rates", "0,0.03", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["key"] == res.key and out["metrics"]["n_poison"] == 120


def test_hidden_trigger_run_stores_a_typed_result(mnist5k):
    res = _run(HiddenTriggerBackdoor(eps=(0.3,)).on(TARGET), mnist5k)
    row = res.sweep().iloc[0]
    assert res.headline_eps == 0.3 and res.setting == "head"
    assert res.attack_success == pytest.approx(float(row["attack_success"]))
    assert res.n_poison == 400 and (res.source_class, res.target_class) == (1, 0)
    originals, poisons = res.poisons()
    assert poisons.shape == originals.shape == (8, 1, 28, 28)
    assert np.abs(poisons - originals).max() <= 0.3 + 1e-6
    images, gallery = res.gallery()
    assert images.shape == (8, 1, 28, 28) and set(gallery["true"]) == {"1"}


def test_label_flipping_run_stores_a_typed_result(mnist5k):
    exp = LabelFlipping(
        attack=LabelFlip(mode="targeted"), source_class=7, target_class=1, rates=(0.0, 0.75)
    )
    res = _run(exp.on(MLP15), mnist5k)
    table = res.sweep()
    assert res.mode == "targeted" and (res.source_class, res.target_class) == (7, 1)
    assert res.n_models == 2 and (res.lowest_rate, res.highest_rate) == (0.0, 0.75)
    assert res.accuracy_highest == pytest.approx(float(table["accuracy"].iloc[1]))
    low, high = res.confusion_lowest(), res.confusion_highest()
    assert int(low.to_numpy().sum()) == int(high.to_numpy().sum()) == mnist5k.n_test
    share = high.to_numpy()[7, 1] / high.to_numpy()[7].sum()
    assert share == pytest.approx(float(table["a_predicted_as_b"].iloc[1]))
    assert len(res.per_class()) == 2 * 10


def test_sanitization_run_stores_a_typed_result(mnist5k):
    res = _run(PoisoningSanitization().on(TARGET), mnist5k)
    # The page's default run (tests/app/test_poisoning_pages.py, same bounds; seeds 0-9 in
    # bench/threshold_spread.py --only sanitize: recall and precision 0.99-1.00).
    assert res.recall >= 0.8 and res.precision >= 0.8, res.summary()
    assert res.after_attack_success < 0.2
    assert res.n_train_after == mnist5k.n_train - res.n_flagged
    assert res.n_poison == 120 and res.true_positives <= res.n_flagged
    summary = res.summary_table()
    assert summary["model"].tolist() == ["clean data", "poisoned data", "after sanitization"]
    assert summary["attack_success"].iloc[1] == pytest.approx(res.before_attack_success)
    assert res.default_class() == 0 and 0 in res.projection_classes()
    points = res.projection_of(0)
    per_class = res.per_class().set_index("class")
    assert int(points["poison"].sum()) == per_class.loc[0, "poisons"] == 120
    assert set(res.marginal_decisions().columns) == set(res.per_class().columns)
    assert res.detector_title == "Activation clustering"
