"""Poisoning sanitization: activation clustering, spectral signatures, scores, retraining."""

from __future__ import annotations

import copy

import pytest
import torch

from robustcore.attacks.poisoning import (
    BadNets,
    Trigger,
    backdoor_metrics,
    poison_badnets,
    train_poisoned,
)
from robustcore.data import Dataset
from robustcore.defenses.sanitize import (
    ActivationClustering,
    SpectralSignatures,
    activation_clustering,
    detect,
    detection_scores,
    exclusionary_reclassification,
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


def test_activation_clustering_ica_pca_and_single_rules_run():
    acts, labels, truth = _blobs(seed=1)
    for reduce in ("ica", "pca"):
        found = activation_clustering(
            acts, labels, ActivationClustering(reduce=reduce, n_components=4)
        )
        assert detection_scores(found.flagged, truth)["recall"] == 1.0, reduce
        assert set(found.per_class["reduce"]) == {reduce}
    sil = activation_clustering(acts, labels, ActivationClustering(rule="silhouette"))
    assert detection_scores(sil.flagged, truth)["recall"] == 1.0
    assert sil.per_class.set_index("class").loc[0, "silhouette"] > 0.4  # on the 16-D points
    size = activation_clustering(acts, labels, ActivationClustering(rule="size"))
    assert detection_scores(size.flagged, truth)["recall"] == 1.0


def _two_blobs(n_small: int, n_large: int, gap: float = 12.0, seed: int = 0):
    """One class: two well separated blobs of the given sizes (a real split)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.randn(n_small, 8, generator=g)
    small[:, 0] += gap
    large = torch.randn(n_large, 8, generator=g)
    return torch.cat([small, large]), torch.zeros(n_small + n_large, dtype=torch.long)


def test_a_split_near_the_size_threshold_is_marginal_not_removed():
    """A clean split of 35 % (the size threshold) is reported as marginal and kept."""
    acts, labels = _two_blobs(35, 65)
    found = activation_clustering(acts, labels, ActivationClustering())
    row = found.per_class.iloc[0]
    assert row["smaller_share"] == pytest.approx(0.35)
    assert row["decision"] == "marginal" and row["flagged"] == 0
    assert not found.flagged.any() and int(found.marginal.sum()) == 35
    clear = activation_clustering(*_two_blobs(20, 80), ActivationClustering())
    assert clear.per_class.iloc[0]["decision"] == "poison" and int(clear.flagged.sum()) == 20
    balanced = activation_clustering(*_two_blobs(45, 55), ActivationClustering())
    assert balanced.per_class.iloc[0]["decision"] == "clean"
    # Without a margin the same 35 % split is acted on: exactly the brittle decision.
    no_margin = activation_clustering(acts, labels, ActivationClustering(margin=0.0))
    assert no_margin.per_class.iloc[0]["decision"] == "poison"


def test_exclusionary_reclassification_judges_marginal_clusters():
    """Chen et al.'s second opinion: l/p below T/2 says poison (and removes the cluster only
    when it decides), at least 2T says legitimate, in between it is undecided."""
    acts, labels = _two_blobs(35, 65)
    labels = torch.cat([labels, torch.ones(50, dtype=torch.long)])
    acts = torch.cat([acts, torch.randn(50, 8) - 20.0])
    found = activation_clustering(acts, labels, ActivationClustering())
    assert found.per_class.set_index("class").loc[0, "decision"] == "marginal"
    calls = []

    def judge_with(answer):
        def judge(excluded, points):
            calls.append((excluded.clone(), points.clone()))
            return torch.tensor(answer)

        return judge

    # The model trained without the cluster still calls 30 of its 35 points class 0: legit.
    kept = exclusionary_reclassification(found, labels, judge_with([0] * 30 + [1] * 5))
    row = kept.per_class.set_index("class").loc[0]
    assert row["decision"] == "marginal: kept (second opinion: legitimate)"
    assert not kept.flagged.any()
    assert row["reclass_ratio"] == pytest.approx(6.0)  # >= 2 T: clearly legitimate
    assert row["reclass_own"] == pytest.approx(30 / 35)
    excluded, points = calls[0]
    assert torch.equal(excluded, found.marginal) and torch.equal(points, found.marginal)
    # Half and half (l/p = 17/18 = 0.94, the value a clean style of 7s gave on one seed):
    # too close to T = 1 to act on, so the cluster stays.
    close = exclusionary_reclassification(found, labels, judge_with([0] * 17 + [1] * 18))
    assert close.per_class.set_index("class").loc[0, "decision"].endswith("undecided)")
    assert not close.flagged.any()
    # ... or gives 30 of them to class 1: poison. Reported and kept by default (a genuine
    # style of 7s got this verdict on one seed of ten), removed when it decides.
    poison = judge_with([1] * 30 + [0] * 5)
    reported = exclusionary_reclassification(found, labels, poison)
    assert reported.per_class.set_index("class").loc[0, "decision"].endswith("poison)")
    assert not reported.flagged.any()
    removed = exclusionary_reclassification(found, labels, poison, decides=True)
    assert removed.per_class.set_index("class").loc[0, "decision"].startswith("marginal: removed")
    assert int(removed.flagged.sum()) == 35 and not removed.marginal.any()
    with pytest.raises(ValidationError, match="predict every point"):
        exclusionary_reclassification(found, labels, judge_with([0, 0, 0]))


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
    poisoned = poison_badnets(mnist5k, Trigger(), BadNets(mode="all_to_all"), poison_rate=0.1)
    return poisoned, train_poisoned(poisoned, "small_cnn", DEFAULT)


@pytest.fixture(scope="module")
def default_poisoned(mnist5k):
    """All-to-one BadNets at 3 % (the pages' default) and the model trained on it."""
    trigger, attack = Trigger(), BadNets()
    poisoned = poison_badnets(mnist5k, trigger, attack, poison_rate=0.03)
    return trigger, poisoned, train_poisoned(poisoned, "small_cnn", DEFAULT)


def test_activation_clustering_finds_most_poisons_at_10_percent(mnist5k, all_to_all_10pct):
    poisoned, entry = all_to_all_10pct
    acts = penultimate(entry.model, poisoned.dataset.x_train)
    found = activation_clustering(acts, poisoned.dataset.y_train)
    s = detection_scores(found.flagged, poisoned.is_poison)
    # Measured over seeds 0-4 (poisons and training; bench/threshold_spread.py --only
    # sanitize): recall 1.00 in every seed, precision 0.92-0.98. Bounds 0.1 below the lowest.
    assert s["recall"] >= 0.9, s
    assert s["precision"] >= 0.82, s


def test_activation_clustering_is_stable_under_arithmetic_noise(default_poisoned):
    """The decision must not hinge on rounding: activations computed with another thread
    count, in float64, or with 1e-5 relative noise give the same poison classes and (nearly)
    the same flagged set. (A clean class may move between "clean" and "marginal" at the
    band's outer edge; both keep its points.)"""
    _, poisoned, entry = default_poisoned
    x, y = poisoned.dataset.x_train, poisoned.dataset.y_train
    acts = penultimate(entry.model, x)
    base = activation_clustering(acts, y)
    threads = torch.get_num_threads()
    torch.set_num_threads(2 if threads == 1 else 1)
    try:
        other_threads = penultimate(entry.model, x)
    finally:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    variants = {
        "another thread count": other_threads,
        "float64 forward pass": penultimate(copy.deepcopy(entry.model).double(), x.double()),
        "1e-5 relative noise": acts
        + 1e-5 * acts.abs().max() * torch.randn(acts.shape, generator=g),
    }
    ref = detection_scores(base.flagged, poisoned.is_poison)
    for name, a in variants.items():
        found = activation_clustering(a, y)
        poison = found.per_class["decision"] == "poison"
        assert poison.tolist() == (base.per_class["decision"] == "poison").tolist(), name
        changed = int((found.flagged ^ base.flagged).sum())
        assert changed <= max(2, 0.02 * int(base.flagged.sum())), (name, changed)
        s = detection_scores(found.flagged, poisoned.is_poison)
        assert abs(s["precision"] - ref["precision"]) <= 0.02, (name, s, ref)


def test_sanitize_and_retrain_removes_the_backdoor(mnist5k, default_poisoned):
    """Activation clustering with the second opinion, then retraining, on the default."""
    trigger, poisoned, entry = default_poisoned

    def evaluate(model):
        return backdoor_metrics(model, mnist5k, trigger, target_class=0)

    before = evaluate(entry.model)
    out = sanitize_and_retrain(
        poisoned, entry.model, "small_cnn", DEFAULT, ActivationClustering(), evaluate=evaluate
    )
    # Measured over seeds 0-9 (bench/threshold_spread.py --only sanitize): the detector's
    # precision 0.99-1.00 and recall 0.99-1.00 in every seed (marginal clusters are kept and
    # reported; when the second opinion removed them, seed 8 fell to 0.46). Arithmetic
    # differences between CPUs move the split statistics by about 0.003 (thread count 1 vs
    # 2), far less than seeds do; the bounds leave 0.09 and 0.19 below the lowest seed.
    assert out["scores"]["precision"] >= 0.9, out["scores"]
    assert out["scores"]["recall"] >= 0.8, out["scores"]
    assert before["attack_success"] > 0.9
    assert out["after"]["attack_success"] < 0.1, out["after"]
    assert out["after"]["clean_accuracy"] > before["clean_accuracy"] - 0.02
    assert out["cleaned"].n_train == mnist5k.n_train - out["scores"]["n_flagged"]
    row = out["detection"].per_class.set_index("class").loc[0]
    assert row["decision"] == "poison" and row["reclass_ratio"] < 1.0, row


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
