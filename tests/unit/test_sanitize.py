"""Poisoning sanitization: activation clustering, spectral signatures, scores, retraining."""

from __future__ import annotations

import pytest
import torch

from robustcore.attacks.poisoning import BadNets, Trigger, backdoor_metrics, poison_badnets
from robustcore.attacks.poisoning.experiments import train_poisoned
from robustcore.data import Dataset
from robustcore.defenses.sanitize import (
    ActivationClustering,
    SpectralSignatures,
    activation_clustering,
    detect,
    detection_scores,
    project_2d,
    remove_flagged,
    sanitize_and_retrain,
    spectral_signatures,
)
from robustcore.errors import ValidationError
from robustcore.models import TrainRecipe
from robustcore.models.features import penultimate

DEFAULT = TrainRecipe()


def _blobs(n_clean=300, n_poison=30, classes=3, dim=16, seed=0):
    """Each class: a Gaussian blob; class 0 also holds a far-away blob of 'poisons'."""
    g = torch.Generator().manual_seed(seed)
    acts, labels = [], []
    for c in range(classes):
        centre = torch.zeros(dim)
        centre[c] = 5.0
        acts.append(centre + torch.randn(n_clean, dim, generator=g))
        labels.append(torch.full((n_clean,), c))
    far = torch.zeros(dim)
    far[-1] = 8.0
    acts.append(far + torch.randn(n_poison, dim, generator=g))
    labels.append(torch.zeros(n_poison, dtype=torch.long))
    truth = torch.zeros(n_clean * classes + n_poison, dtype=torch.bool)
    truth[-n_poison:] = True
    return torch.cat(acts), torch.cat(labels), truth


def test_activation_clustering_flags_the_small_separate_cluster():
    acts, labels, truth = _blobs()
    found = activation_clustering(acts, labels, ActivationClustering())
    scores = detection_scores(found.flagged, truth)
    assert scores["recall"] == 1.0 and scores["precision"] == 1.0
    row = found.per_class.set_index("class").loc[0]
    assert row["smaller_share"] == pytest.approx(30 / 330, abs=0.01)
    # Gaussian classes split roughly in half: the size rule leaves them alone.
    assert (found.per_class.set_index("class").loc[[1, 2], "flagged"] == 0).all()
    assert set(found.cluster[truth].tolist()) == {1}  # poisons are the smaller cluster


def test_activation_clustering_ica_and_silhouette_rules_run():
    acts, labels, truth = _blobs(seed=1)
    ica = activation_clustering(acts, labels, ActivationClustering(reduce="ica", n_components=4))
    assert ica.flagged.shape == truth.shape
    sil = activation_clustering(acts, labels, ActivationClustering(rule="silhouette"))
    assert detection_scores(sil.flagged, truth)["recall"] == 1.0
    assert sil.per_class.set_index("class").loc[0, "silhouette"] > 0.5


def test_spectral_signatures_removes_the_top_scores_per_class():
    acts, labels, truth = _blobs()
    found = spectral_signatures(acts, labels, SpectralSignatures(expected_rate=0.1))
    per = found.per_class.set_index("class")
    assert per.loc[0, "flagged"] == round(1.5 * 0.1 * 330)  # 1.5 ε n of each class
    assert per.loc[1, "flagged"] == 45
    assert detection_scores(found.flagged, truth)["recall"] == 1.0
    top = torch.topk(found.score[labels == 0], 30).values.min()
    assert found.score[truth].min() >= top - 1e-6  # the poisons score highest


def test_detection_scores_arithmetic():
    flagged = torch.tensor([1, 1, 0, 0, 1], dtype=torch.bool)
    truth = torch.tensor([1, 0, 1, 0, 1], dtype=torch.bool)
    s = detection_scores(flagged, truth)
    assert s["true_positives"] == 2 and s["n_flagged"] == 3 and s["n_poison"] == 3
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    empty = detection_scores(torch.zeros(5, dtype=torch.bool), truth)
    assert empty["recall"] == 0.0 and empty["precision"] != empty["precision"]  # NaN
    with pytest.raises(ValidationError, match="same shape"):
        detection_scores(flagged, truth[:3])


def test_remove_flagged_and_projection(mnist5k):
    flagged = torch.zeros(mnist5k.n_train, dtype=torch.bool)
    flagged[:10] = True
    cleaned = remove_flagged(mnist5k, flagged)
    assert cleaned.n_train == mnist5k.n_train - 10
    assert torch.equal(cleaned.x_train, mnist5k.x_train[10:])
    assert cleaned.fingerprint() != mnist5k.fingerprint()
    with pytest.raises(ValidationError, match="every training point"):
        remove_flagged(mnist5k, torch.ones(mnist5k.n_train, dtype=torch.bool))
    with pytest.raises(ValidationError, match="entries"):
        remove_flagged(mnist5k, flagged[:5])
    xy = project_2d(torch.randn(50, 8))
    assert xy.shape == (50, 2)
    assert xy[:, 0].var() >= xy[:, 1].var()  # first component has the most variance


def test_detector_input_validation():
    with pytest.raises(ValidationError, match="2-D"):
        activation_clustering(torch.zeros(10), torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValidationError, match="one label per"):
        spectral_signatures(torch.zeros(10, 3), torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValidationError, match="Unknown detector"):
        detect(torch.zeros(10, 3), torch.zeros(10, dtype=torch.long), object())


@pytest.fixture(scope="module")
def all_to_all_10pct(mnist5k):
    """BadNets all-to-all (Gu et al.'s second MNIST attack) poisoning 10 % of the data."""
    poisoned = poison_badnets(mnist5k, Trigger(), BadNets(mode="all_to_all", poison_rate=0.1))
    return poisoned, train_poisoned(poisoned, "small_cnn", DEFAULT)


def test_activation_clustering_finds_most_poisons_at_10_percent(mnist5k, all_to_all_10pct):
    poisoned, entry = all_to_all_10pct
    acts = penultimate(entry.model, poisoned.dataset.x_train)
    found = activation_clustering(acts, poisoned.dataset.y_train)
    s = detection_scores(found.flagged, poisoned.is_poison)
    assert s["recall"] >= 0.9, s
    assert s["precision"] >= 0.8, s


def test_sanitize_and_retrain_removes_the_backdoor(mnist5k):
    """All-to-one BadNets at 3 % (the pages' default), activation clustering, retraining."""
    trigger, attack = Trigger(), BadNets(poison_rate=0.03)
    poisoned = poison_badnets(mnist5k, trigger, attack)
    entry = train_poisoned(poisoned, "small_cnn", DEFAULT)

    def evaluate(model):
        return backdoor_metrics(model, mnist5k, trigger, target_class=0)

    before = evaluate(entry.model)
    out = sanitize_and_retrain(
        poisoned, entry.model, "small_cnn", DEFAULT, ActivationClustering(), evaluate=evaluate
    )
    assert out["scores"]["recall"] >= 0.9 and out["scores"]["precision"] >= 0.9, out["scores"]
    assert before["attack_success"] > 0.9
    assert out["after"]["attack_success"] < 0.1, out["after"]
    assert out["after"]["clean_accuracy"] > before["clean_accuracy"] - 0.02
    assert out["cleaned"].n_train == mnist5k.n_train - out["scores"]["n_flagged"]


def test_spectral_signatures_on_a_backdoored_model(mnist5k, all_to_all_10pct):
    """Tran et al.: with ε = the poison share, 1.5 ε n removals per class catch the poisons."""
    poisoned, entry = all_to_all_10pct
    acts = penultimate(entry.model, poisoned.dataset.x_train)
    found = spectral_signatures(acts, poisoned.dataset.y_train, SpectralSignatures(0.1))
    s = detection_scores(found.flagged, poisoned.is_poison)
    assert s["recall"] >= 0.9, s
    assert s["n_flagged"] == pytest.approx(0.15 * mnist5k.n_train, rel=0.01)


def test_nothing_flagged_keeps_the_poisoned_model(mnist5k):
    ds = Dataset(
        "blank",
        torch.zeros(20, 4),
        torch.arange(20) % 2,
        torch.zeros(4, 4),
        torch.tensor([0, 1, 0, 1]),
        2,
        ["a", "b"],
        "tabular",
        (torch.zeros(4), torch.ones(4)),
    )

    class _Poisoned:
        dataset = ds
        is_poison = torch.zeros(20, dtype=torch.bool)
        description = {"attack": "none"}

    from robustcore.models import build_model

    model = build_model("logreg", (4,), 2, seed=0)
    out = sanitize_and_retrain(
        _Poisoned(),
        model,
        "logreg",
        TrainRecipe(epochs=1),
        ActivationClustering(),
        evaluate=lambda m: {"clean_accuracy": 0.5, "attack_success": 0.0},
    )
    assert out["scores"]["n_flagged"] == 0 and out["model"] is model
    assert out["cleaned"] is ds
