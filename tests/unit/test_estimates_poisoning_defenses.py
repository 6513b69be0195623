"""What the poisoning, scorecard and defense experiments say they compute
(``Experiment.work``): counted, never timed. Models trained here are tiny (one epoch on 60
images) and only where a test needs the zoo to hold one."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from robustcore.attacks.poisoning import BadNets, Trigger, poison_badnets, train_poisoned
from robustcore.experiments import Target
from robustcore.experiments.adversarial_training import AdversarialTraining
from robustcore.experiments.attack_work import EARLY_STOP_SHARE
from robustcore.experiments.backdoors import Backdoors
from robustcore.experiments.defensive_distillation import DefensiveDistillation
from robustcore.experiments.estimate import Work, training_work
from robustcore.experiments.hidden_trigger import HiddenTriggerBackdoor
from robustcore.experiments.label_flipping import LabelFlipping
from robustcore.experiments.poisoning_sanitization import MARGINAL_SHARE, PoisoningSanitization
from robustcore.experiments.scorecard import Scorecard
from robustcore.experiments.victims import fit_work, poisoned_training
from robustcore.models import TrainRecipe, train_entry, zoo

TINY = TrainRecipe(epochs=1, train_size=60)


@pytest.fixture()
def empty_zoo(tmp_path, monkeypatch):
    """A ROBUSTCORE_HOME of this test's own: nothing trained yet (and no model that another
    test trained served from the zoo's memory instead of being stored here)."""
    monkeypatch.setenv("ROBUSTCORE_HOME", str(tmp_path))
    monkeypatch.setattr(zoo, "_memory", OrderedDict())
    return tmp_path


def trained(work: Work, model: str = "logreg") -> float:
    return work.train.get(model, 0.0)


def test_a_poisoned_model_in_the_zoo_costs_nothing(mnist5k, empty_zoo):
    trigger, attack = Trigger(size=3), BadNets()
    kw = {"trigger": trigger, "config": attack, "poison_rate": 0.01, "target_class": 0}
    before = poisoned_training("logreg", mnist5k, TINY, poison_badnets, **kw)
    assert before.train == {"logreg": 60.0}
    train_poisoned(poison_badnets(mnist5k, **kw), "logreg", TINY)
    assert poisoned_training("logreg", mnist5k, TINY, poison_badnets, **kw).models() == []
    # Another rate is another model.
    other = poisoned_training(
        "logreg", mnist5k, TINY, poison_badnets, **{**kw, "poison_rate": 0.02}
    )
    assert other.train == {"logreg": 60.0}
    # fit_work counts a training whatever the zoo holds: its steps and one test-set pass
    # per epoch.
    train_entry("logreg", mnist5k, TINY)
    assert training_work("logreg", mnist5k, TINY).models() == []
    fit = fit_work("logreg", mnist5k, TINY.replace(epochs=3))
    assert fit.to_dict() == Work.of("logreg", train=3 * 60, forward=3 * mnist5k.n_test).to_dict()


def test_backdoors_count_one_model_per_value_and_skip_the_zoos(mnist5k, empty_zoo):
    exp = Backdoors(poison_rates=(0.0, 0.01, 0.03)).on(Target.zoo("logreg", TINY))
    w = exp.work(mnist5k)
    # The clean model (also the rate-0 one) and two poisoned ones.
    assert trained(w) == 3 * 60
    assert trained(exp.on(Target.zoo("logreg", TINY.replace(epochs=2))).work(mnist5k)) == 6 * 60
    train_entry("logreg", mnist5k, TINY)
    assert trained(exp.work(mnist5k)) == 2 * 60
    # Each of the four models is measured on the test set, clean and triggered.
    triggered = int((mnist5k.y_test != 0).sum())
    measured = 4 * (mnist5k.n_test + triggered)
    assert w.forward["logreg"] == measured + 3 * mnist5k.n_test  # + one evaluation per epoch
    # A training-noise sweep: one poisoned model per σ (the clean one is in the zoo now).
    noise = exp.replace(sweep="noise_std", noise_stds=(0.0, 0.1))
    assert trained(noise.work(mnist5k)) == 2 * 60


def test_label_flipping_counts_one_model_per_rate(mnist5k, empty_zoo):
    exp = LabelFlipping(rates=(0.0, 0.4, 0.8)).on(Target.zoo("logreg", TINY))
    assert trained(exp.work(mnist5k)) == 3 * 60
    assert trained(exp.replace(rates=(0.0, 0.2, 0.4, 0.6, 0.8)).work(mnist5k)) == 5 * 60
    train_entry("logreg", mnist5k, TINY)
    assert trained(exp.work(mnist5k)) == 2 * 60


def test_hidden_trigger_counts_the_crafting_steps_and_the_victims(mnist5k, empty_zoo):
    exp = HiddenTriggerBackdoor(eps=(0.1, 0.2)).on(Target.zoo("small_cnn", TINY))
    n_poison = int((mnist5k.y_train == exp.target_class).sum())  # poison_fraction 1
    w = exp.work(mnist5k)
    assert w.gradient["small_cnn"] == 2 * exp.attack.steps * n_poison
    more = exp.replace(attack=exp.attack.replace(steps=2 * exp.attack.steps)).work(mnist5k)
    assert more.gradient["small_cnn"] == 2 * w.gradient["small_cnn"]
    # head: the clean model, then a new last layer (20 epochs) per ε and for the baseline.
    assert w.train == {"small_cnn": 60.0, "logreg": 3 * 20 * mnist5k.n_train}
    full = exp.replace(attack=exp.attack.replace(setting="full")).work(mnist5k)
    assert full.train == {"small_cnn": 3 * 60.0}  # the clean model and one victim per ε


def test_sanitization_retrains_without_the_poisons(mnist5k, empty_zoo):
    recipe = TrainRecipe(epochs=1)
    exp = PoisoningSanitization(poison_rate=0.05).on(Target.zoo("logreg", recipe))
    n = mnist5k.n_train
    kept = n - round(0.05 * n)
    # The poisoned model, the clean reference and the retrained one...
    alone = exp.replace(clustering=exp.clustering.replace(second_opinion="none"))
    assert trained(alone.work(mnist5k)) == 2 * n + kept
    assert trained(alone.replace(poison_rate=0.1).work(mnist5k)) == 3 * n - round(0.1 * n)
    # ... and the second opinion's, one per expected marginal cluster.
    second = MARGINAL_SHARE * mnist5k.num_classes
    assert trained(exp.work(mnist5k)) == pytest.approx(2 * n + (1 + second) * kept)
    spectral = exp.replace(detector="spectral_signatures")
    assert trained(spectral.work(mnist5k)) == 2 * n + kept


def test_scorecard_counts_its_attacks(mnist5k):
    exp = Scorecard(n=50, pgd_steps=10, n_query=10, query_budget=100).on(Target.zoo("logreg", TINY))
    w = exp.work(mnist5k)
    # Two early-stopped PGD runs and the unbounded one, which takes every step.
    assert w.gradient["logreg"] == 50 * 10 * (2 * EARLY_STOP_SHARE + 1)
    assert exp.replace(n=100).work(mnist5k).gradient["logreg"] == 2 * w.gradient["logreg"]
    more = exp.replace(query_budget=200).work(mnist5k)
    assert more.forward["logreg"] - w.forward["logreg"] == 10 * 100  # the upper bound
    assert w.train == {}


def test_adversarial_training_counts_both_models_and_both_evaluations(mnist5k, empty_zoo):
    exp = AdversarialTraining.for_target(Target.zoo("logreg", TINY), eps=(0.0, 0.1), n=20, cw=False)
    w = exp.work(mnist5k)
    defended = training_work("logreg", mnist5k, exp.defense)
    assert trained(w) == 60 + 60  # FGSM-RS on 60 images, and the undefended model
    # Each model: PGD at the one ε above 0 (the training ε is in the grid), early stopped.
    attacks = 2 * 20 * exp.pgd.steps * exp.pgd.restarts * EARLY_STOP_SHARE
    assert w.gradient["logreg"] == defended.gradient["logreg"] + attacks
    train_entry("logreg", mnist5k, TINY)
    assert trained(exp.work(mnist5k)) == 60
    # Twice the epochs: both models are new (the undefended one has the defense's epochs).
    longer = exp.replace(defense=exp.defense.replace(epochs=2)).work(mnist5k)
    assert trained(longer) == 2 * trained(w)
    # C&W on both models: every step of every binary-search round is counted.
    with_cw = exp.replace(cw=True, n_cw=10).work(mnist5k)
    cw = with_cw.gradient["logreg"] - exp.work(mnist5k).gradient["logreg"]
    assert cw == 2 * 10 * 5 * 100


def test_distillation_trains_one_student_for_every_temperature(mnist5k, empty_zoo):
    exp = DefensiveDistillation(temperatures=(1.0, 10.0, 100.0), n=20, cw=False)
    exp = exp.on(Target.zoo("logreg", TINY))
    # The undefended model (the teacher) and the T = 1 student; the others are scaled.
    assert trained(exp.work(mnist5k)) == 2 * 60
    assert trained(exp.replace(temperatures=(10.0, 100.0)).work(mnist5k)) == 2 * 60
    train_entry("logreg", mnist5k, TINY)
    assert trained(exp.work(mnist5k)) == 60
    train_entry("logreg", mnist5k, exp.recipes()[10.0])  # trains the T = 1 student
    assert trained(exp.work(mnist5k)) == 0
    # Attacks per temperature: naive and adaptive PGD, early stopped.
    three, one = exp.work(mnist5k), exp.replace(temperatures=(10.0,)).work(mnist5k)
    per_t = 2 * 20 * exp.pgd.steps * EARLY_STOP_SHARE + 20  # + the gradient norms
    assert three.gradient["logreg"] - one.gradient["logreg"] == 2 * per_t
