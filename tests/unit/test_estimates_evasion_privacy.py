"""What the black-box, transfer, threat-model, query-limit, extraction, inversion and
privacy experiments say they compute (``Experiment.work``): counted, never timed."""

from __future__ import annotations

import pytest

from robustcore.attacks.inference import MembershipInference, membership_split, train_shadows
from robustcore.experiments import Target
from robustcore.experiments.blackbox import BlackBox, selection_work
from robustcore.experiments.estimate import Work
from robustcore.experiments.membership_inference import MembershipInferenceExperiment
from robustcore.experiments.model_extraction import ModelExtraction
from robustcore.experiments.model_inversion import ModelInversion
from robustcore.experiments.overfitting_sweep import OverfittingSweep
from robustcore.experiments.postprocessing import Postprocessing
from robustcore.experiments.query_limitation import QueryLimitation
from robustcore.experiments.threat_models import ThreatModels
from robustcore.experiments.transfer import Transfer
from robustcore.models import TrainRecipe, build_model, train_entry

TINY = TrainRecipe(epochs=1, train_size=60)


@pytest.fixture()
def empty_zoo(tmp_path, monkeypatch):
    """A ROBUSTCORE_HOME of this test's own: nothing trained yet."""
    monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path))
    return tmp_path


def fwd(work: Work, model: str) -> float:
    return work.forward.get(model, 0.0)


def test_black_box_queries_scale_with_images_and_budgets(mnist5k):
    t = Target.zoo("mlp", TINY)
    simba = BlackBox(attacks=("simba_pixel",), n=10, simba_queries=100).on(t)

    def queries(exp):
        return fwd(exp.work(mnist5k), "mlp") - fwd(selection_work("mlp", exp.n, mnist5k), "mlp")

    assert queries(simba) == 10 * 100  # the budget is the upper bound
    assert queries(simba.replace(n=20)) == 2 * queries(simba)
    assert queries(simba.replace(simba_queries=200)) == 2 * queries(simba)
    both = simba.replace(attacks=("simba_pixel", "zoo"), zoo_queries=300)
    assert queries(both) == 10 * (100 + 300)
    # An uploaded model's queries are priced on the upload itself.
    module = build_model("mlp", mnist5k.input_shape, mnist5k.num_classes)
    assert simba.on(Target.upload(module, "abc123")).work(mnist5k).models() == ["upload:abc123"]


def test_transfer_counts_training_only_for_models_missing_from_the_zoo(mnist5k, empty_zoo):
    exp = Transfer(archs=("logreg", "mlp"), attack="fgsm", n=10).on(Target.zoo("logreg", TINY))
    before = exp.work(mnist5k)
    assert before.train == {"logreg": 60.0, "mlp": 60.0}
    # Each surrogate: one FGSM gradient per input; each target: two labels per input and
    # surrogate.
    assert before.gradient == {"logreg": 10.0, "mlp": 10.0}
    train_entry("logreg", mnist5k, TINY)
    after = exp.work(mnist5k)
    assert after.train == {"mlp": 60.0}
    assert after.gradient == before.gradient
    pgd = exp.replace(attack="pgd")
    assert pgd.work(mnist5k).gradient["mlp"] == 10 * pgd.pgd.steps


def test_threat_models_count_each_attacker(mnist5k, empty_zoo):
    t = Target.zoo("mlp", TINY)
    exp = ThreatModels(n=10, pgd_steps=5, query_budget=100, label_budget=200, label_epochs=2).on(t)
    w = exp.work(mnist5k)
    sur = exp.surrogate(mnist5k)
    assert sur != "mlp"
    # PGD on the model, then on the surrogate twice (gray box, label only).
    assert w.gradient == {"mlp": 10 * 5.0, sur: 2 * 10 * 5.0}
    # The gray-box surrogate (60 images, 1 epoch) and the label-only one (200 labels, 2 epochs).
    assert w.train == {sur: 60 + 200 * 2.0}
    more = exp.replace(query_budget=200).work(mnist5k)
    black_box = 2 * 10 * 100  # SimBA-DCT and ZOO, every image at its budget
    assert fwd(more, "mlp") - fwd(w, "mlp") == black_box
    assert fwd(exp.replace(zoo=False).work(mnist5k), "mlp") == fwd(w, "mlp") - 10 * 100


def test_query_limitation_counts_the_service_budget_and_blinding(mnist5k):
    exp = QueryLimitation(attacks=("simba_pixel", "zoo"), n=10).on(Target.zoo("mlp", TINY))
    exp = exp.replace(limit=exp.limit.replace(budget=100))
    base = fwd(exp.work(mnist5k), "mlp") - fwd(selection_work("mlp", 10, mnist5k), "mlp")
    assert base == 2 * 10 * 100
    blind = exp.replace(adaptive=exp.adaptive.replace(blinding=0.01))
    assert fwd(blind.work(mnist5k), "mlp") - fwd(exp.work(mnist5k), "mlp") == base + 2 * 10


def test_model_extraction_trains_one_student_per_cell(mnist5k):
    exp = ModelExtraction(
        budgets=(100, 200), outputs=("label",), query_sources=("in_distribution",)
    ).on(Target.zoo("small_cnn", TINY))
    exp = exp.replace(student=exp.student.replace(epochs=3))
    w = exp.work(mnist5k)
    assert w.train == {"mlp": (100 + 200) * 3.0}
    # The target answers the largest budget once, and the test split twice.
    assert fwd(w, "small_cnn") == 200 + 2 * mnist5k.n_test
    both = exp.replace(outputs=("label", "probabilities")).work(mnist5k)
    assert both.train["mlp"] == 2 * w.train["mlp"]
    assert fwd(both, "small_cnn") == fwd(w, "small_cnn")  # the answers are shared


def test_model_inversion_counts_every_class_at_every_step(mnist5k):
    exp = ModelInversion().on(Target.zoo("mlp", TINY))
    w = exp.work(mnist5k)
    assert w.gradient == {"mlp": float(mnist5k.num_classes * exp.miface.steps)}
    longer = exp.replace(miface=exp.miface.replace(steps=2 * exp.miface.steps))
    assert longer.work(mnist5k).gradient["mlp"] == 2 * w.gradient["mlp"]


def test_shadow_models_in_the_zoo_count_nothing(mnist5k, empty_zoo):
    attack = MembershipInference(shadow_models=4, max_examples=20)
    exp = MembershipInferenceExperiment(attack=attack).on(Target.zoo("mlp", TINY))
    before = exp.work(mnist5k)
    # Four shadows, each on its half of a pool twice the target's 60 examples, 1 epoch.
    assert before.train == {"mlp": 4 * 60.0}
    cands = membership_split(mnist5k, train_size=60, max_per_side=20, seed=0)
    train_shadows(
        mnist5k,
        cands.pool_x,
        cands.pool_y,
        cands.candidates,
        [("mlp", TINY)],
        shadow_models=4,
        seed=0,
    )
    after = exp.work(mnist5k)
    assert after.train == {}
    # The target's and the four shadows' answers on the 40 candidates remain.
    assert fwd(after, "mlp") == 5 * 40
    thresholds = exp.replace(attack=attack.replace(attacks="threshold")).work(mnist5k)
    assert thresholds.forward == {"mlp": 40.0} and not thresholds.train


def test_overfitting_sweep_counts_each_value_missing_from_the_zoo(mnist5k, empty_zoo):
    exp = OverfittingSweep(knob="train_size", values=(30, 60), max_per_side=20)
    exp = exp.on(Target.zoo("mlp", TINY))
    assert exp.work(mnist5k).train == {"mlp": 30.0 + 60.0}
    train_entry("mlp", mnist5k, TINY)  # the value 60 is the target's own recipe
    w = exp.work(mnist5k)
    assert w.train == {"mlp": 30.0}
    assert fwd(w, "mlp") == mnist5k.n_test + 2 * 20 * 2  # its epoch's test pass, candidates


def test_postprocessing_counts_members_shadows_and_copycats(mnist5k, empty_zoo):
    base = Postprocessing(
        defenses=("rounding",),
        rules=None,
        membership=MembershipInference(attacks="threshold", max_examples=20),
        extraction=False,
    ).on(Target.zoo("mlp", TINY))
    plain = base.work(mnist5k)
    assert plain.forward == {"mlp": 40.0 + mnist5k.n_test} and not plain.train
    steal = base.replace(extraction=True, steal_budget=50)
    steal = steal.replace(student=steal.student.replace(epochs=2))
    # One copycat per row: the undefended service and rounding.
    assert steal.work(mnist5k).train == {"mlp": 2 * 50 * 2.0}
    ens = base.replace(rules=("average", "vote"))
    ens = ens.replace(ensemble=ens.ensemble.replace(members=3))
    # Member 0 is the target's own recipe: only members 1 and 2 train.
    assert ens.work(mnist5k).train == {"mlp": 2 * 60.0}
    train_entry("mlp", mnist5k, TINY)
    assert ens.work(mnist5k).train == {"mlp": 2 * 60.0}
