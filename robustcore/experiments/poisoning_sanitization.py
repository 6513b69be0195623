"""The "Poisoning sanitization" page's experiment: BadNets poisons the training set, a model
is trained on it, a detector (activation clustering or spectral signatures) flags poisons
in its penultimate activations, the model is retrained without them and measured again.

The detector is :mod:`robustcore.defenses.sanitize`; the models are trained like the
target (:mod:`.victims`) through the zoo.

``python -m robustcore poisoning-sanitization --attack.mode all_to_all --poison-rate 0.1``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.poisoning import BadNets, Trigger, backdoor_metrics, poison_badnets, train_poisoned
from ..attacks.poisoning.base import check_class
from ..attacks.poisoning.triggers import default_size
from ..data import Dataset
from ..defenses.sanitize import (
    ActivationClustering,
    SpectralSignatures,
    project_2d,
    sanitize_and_retrain,
)
from ..errors import ValidationError
from ..models import TrainRecipe, train_entry
from ..params import nested, param
from ..progress import ProgressFn, scaled
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, training_work
from .victims import (
    ARCH_CHOICES,
    ARCH_HELP,
    ARCH_LABEL,
    fit_work,
    metrics_work,
    poisoned_training,
    victim_training,
)

DETECTORS: dict[str, type] = {
    "activation_clustering": ActivationClustering,
    "spectral_signatures": SpectralSignatures,
}
"""Detector name → its settings class."""

DETECTOR_FIELDS = {"activation_clustering": "clustering", "spectral_signatures": "spectral"}
"""Detector name → the experiment's parameter holding its settings."""
SUMMARY_MODELS = ("clean data", "poisoned data", "after sanitization")
MARGINAL_SHARE = 0.2
"""The share of the classes whose activation-clustering split is expected to be marginal
(each costs the second opinion one model), for the time estimate: how many are is only
known once the detector ran; the digits of the default run have two of ten (1 and 7, each
written in two styles)."""


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


class SanitizationResult(ExperimentResult):
    """A stored poison → detect → retrain run."""

    @property
    def detector(self) -> str:
        """``activation_clustering`` or ``spectral_signatures``."""
        return str(self._metric("detector"))

    @property
    def detector_title(self) -> str:
        return DETECTORS[self.detector].title

    @property
    def precision(self) -> float:
        """Share of the removed points that were poisons (NaN when none was removed)."""
        return _nan(self._metric("precision"))

    @property
    def recall(self) -> float:
        """Share of the poisons that were removed."""
        return _nan(self._metric("recall"))

    @property
    def n_flagged(self) -> int:
        return int(self._metric("n_flagged"))

    @property
    def n_poison(self) -> int:
        return int(self._metric("n_poison"))

    @property
    def true_positives(self) -> int:
        return int(self._metric("true_positives"))

    @property
    def n_train_after(self) -> int:
        """Training points left after the flagged ones were removed."""
        return int(self._metric("n_train_after"))

    @property
    def before_clean_accuracy(self) -> float:
        return float(self._metric("before_clean_accuracy"))

    @property
    def before_attack_success(self) -> float:
        return float(self._metric("before_attack_success"))

    @property
    def after_clean_accuracy(self) -> float:
        return float(self._metric("after_clean_accuracy"))

    @property
    def after_attack_success(self) -> float:
        return float(self._metric("after_attack_success"))

    @property
    def clean_model_accuracy(self) -> float:
        return float(self._metric("clean_model_accuracy"))

    @property
    def mode(self) -> str:
        return str(self._metric("mode"))

    @property
    def target_class(self) -> int:
        return int(self._metric("target_class"))

    @property
    def poison_rate(self) -> float:
        return float(self._metric("poison_rate"))

    def summary_table(self) -> pd.DataFrame:
        """Clean accuracy and attack success of the models trained on clean data, on the
        poisoned data and after sanitization (column ``model``; one row each)."""
        return self._table("summary")

    def per_class(self) -> pd.DataFrame:
        """The detector's per-class table, with the true and the found poisons per class."""
        return self._table("per_class")

    def projection(self) -> pd.DataFrame:
        """Every training point's 2-D projection (its class's first two principal components
        of the activations), truth, cluster and whether it was flagged."""
        return self._table("projection")

    def projection_classes(self) -> list[int]:
        return sorted(int(c) for c in self.projection()["class"].unique())

    def projection_of(self, cls: int) -> pd.DataFrame:
        """The projected points of class ``cls`` (empty when it has no training points)."""
        proj = self.projection()
        return proj[proj["class"] == cls]

    def default_class(self) -> int:
        """The class worth projecting first: the target class (all_to_one), else the first."""
        return self.target_class if self.mode == "all_to_one" else self.projection_classes()[0]

    def marginal_decisions(self) -> pd.DataFrame:
        """The rows of :meth:`per_class` whose clustering decision was marginal."""
        per = self.per_class()
        if "decision" not in per:
            return per.iloc[0:0]
        return per[per["decision"].astype(str).str.startswith("marginal")]

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"summary": self.summary_table(), "per_class": self.per_class()}


@register
@dataclass(frozen=True)
class PoisoningSanitization(Experiment):
    """BadNets poisoning, detection in the activations, removal and retraining."""

    name = "poisoning_sanitization"
    title = "Poisoning sanitization"
    paper = (
        "Chen et al. 2018 (activation clustering); Tran, Li & Madry 2018 (spectral "
        "signatures); Gu et al. 2017 (BadNets)"
    )
    result_class = SanitizationResult
    headline = "precision"
    needs_model = False

    detector: str = param(
        "activation_clustering",
        choices=tuple(DETECTORS),
        label="Detector",
        help="activation_clustering (Chen et al. 2018) or spectral_signatures (Tran et al. "
        "2018); their settings are `clustering` and `spectral`.",
    )
    poison_rate: float = param(
        0.03,
        low=0.0,
        high=0.5,
        step=0.005,
        label="Poison rate",
        help="Fraction of the whole training set that is triggered and relabelled.",
    )
    target_class: int = param(
        0, low=0, label="Target class", help="The class triggered inputs go to (all_to_one)."
    )
    trigger: Trigger = nested(Trigger, label="Trigger")
    attack: BadNets = nested(BadNets, label="BadNets settings")
    clustering: ActivationClustering = nested(ActivationClustering, label="Activation clustering")
    spectral: SpectralSignatures = nested(SpectralSignatures, label="Spectral signatures")
    victim_arch: str | None = param(None, choices=ARCH_CHOICES, label=ARCH_LABEL, help=ARCH_HELP)

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        return {"trigger": {"size": default_size(dataset.input_shape)}}

    @property
    def detector_config(self) -> ActivationClustering | SpectralSignatures:
        """The settings of the chosen detector."""
        return getattr(self, DETECTOR_FIELDS[self.detector])

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # The detector that does not run does not change the result: keep it out of the key.
        for name, key in DETECTOR_FIELDS.items():
            if name != self.detector:
                out.pop(key)
        return out

    def victim(self, dataset: Dataset) -> tuple[str, TrainRecipe]:
        """The architecture and recipe of the poisoned and the retrained model."""
        return victim_training(self.target, self.victim_arch, dataset)

    def poison_share_of_target(self, dataset: Dataset) -> float | None:
        """Share of the target label the poisons would make up (all_to_one; else ``None``):
        activation clustering's size rule assumes they are a minority of it."""
        if self.attack.mode != "all_to_one":
            return None
        n_poison = round(self.poison_rate * dataset.n_train)
        return n_poison / max(1, int((dataset.y_train == self.target_class).sum()) + n_poison)

    def check_data(self, dataset: Dataset) -> None:
        self.victim(dataset)
        check_class(self.target_class, dataset, "Target class")
        self.trigger.build(dataset.input_shape, dataset.bounds)  # raises if it does not fit
        n = int(round(self.poison_rate * dataset.n_train))
        if n == 0:
            raise ValidationError("The poison rate gives no poisoned point: raise it.")
        if self.attack.mode == "all_to_one":
            candidates = int((dataset.y_train != self.target_class).sum())
        else:
            candidates = dataset.n_train
        if n > candidates:
            raise ValidationError(
                f"Poison rate {self.poison_rate:g} asks for {n} poisons but only {candidates} "
                "training points can be poisoned; lower the rate."
            )

    def work(self, dataset: Dataset) -> Work:
        """Training the poisoned model and the clean reference through the zoo (nothing for
        those it holds), the training set's activations, and retraining without the
        poisons, always counted (on the training set less the poisons: what the detector
        removes is only known once it ran), as are the second opinion's models, one per
        marginal cluster (:data:`MARGINAL_SHARE` of the classes); each model's predictions
        on the test set, clean and triggered."""
        arch, recipe = self.victim(dataset)
        measure = metrics_work(arch, dataset, target_class=self.target_class, mode=self.attack.mode)
        poisoned = poisoned_training(
            arch, dataset, recipe, poison_badnets, trigger=self.trigger, config=self.attack,
            poison_rate=self.poison_rate, target_class=self.target_class,
        )  # fmt: skip
        kept = dataset.n_train - round(self.poison_rate * dataset.n_train)
        kept = min(recipe.train_size or kept, kept)
        retrained = fit_work(arch, dataset, recipe.replace(train_size=kept))
        retrainings = 1.0
        if self.detector == "activation_clustering" and self.clustering.second_opinion != "none":
            retrainings += MARGINAL_SHARE * dataset.num_classes
        activations = Work.of(arch, forward=dataset.n_train)
        clean = training_work(arch, dataset, recipe)
        return poisoned + clean + activations + retrained * retrainings + measure * 3

    def describe(self, dataset: Dataset) -> str:
        arch, _ = self.victim(dataset)
        title = self.detector_config.title
        return f"Sanitization ({title}) of BadNets · {arch} on {dataset.name}"

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        self.check_data(dataset)
        arch, recipe = self.victim(dataset)
        detector = self.detector_config
        if progress is not None:
            progress(0.0, "poisoning the training set")
        poisoned = poison_badnets(
            dataset,
            self.trigger,
            self.attack,
            poison_rate=self.poison_rate,
            target_class=self.target_class,
        )
        entry = train_poisoned(
            poisoned,
            arch,
            recipe,
            progress=scaled(progress, 0.0, 0.45, "training on poisoned data"),
        )
        metric_kw = {"target_class": self.target_class, "mode": self.attack.mode}

        def evaluate(m: nn.Module) -> dict[str, float]:
            return backdoor_metrics(m, dataset, self.trigger, **metric_kw)

        before = evaluate(entry.model)
        clean = train_entry(arch, dataset, recipe)  # for reference; usually already in the zoo
        clean_m = evaluate(clean.model)
        out = sanitize_and_retrain(
            poisoned,
            entry.model,
            arch,
            recipe,
            detector,
            evaluate=evaluate,
            progress=scaled(progress, 0.45, 0.95),
        )
        if progress is not None:
            progress(0.96, "projecting activations")
        found, scores, after = out["detection"], out["scores"], out["after"]
        acts, labels = out["activations"], poisoned.dataset.y_train
        truth = poisoned.is_poison
        frames = []
        for c in torch.unique(labels).tolist():
            idx = torch.nonzero(labels == c).flatten()
            xy = project_2d(acts[idx])
            frames.append(
                pd.DataFrame(
                    {
                        "class": c,
                        "index": idx.numpy(),
                        "pc1": xy[:, 0].numpy(),
                        "pc2": xy[:, 1].numpy(),
                        "poison": truth[idx].numpy(),
                        "cluster": found.cluster[idx].numpy(),
                        "flagged": found.flagged[idx].numpy(),
                    }
                )
            )
        projection = pd.concat(frames, ignore_index=True)
        n_after = out["cleaned"].n_train
        summary = pd.DataFrame(
            [
                {"model": SUMMARY_MODELS[0], "n_train": dataset.n_train, **clean_m},
                {"model": SUMMARY_MODELS[1], "n_train": dataset.n_train, **before},
                {"model": SUMMARY_MODELS[2], "n_train": n_after, **after},
            ]
        )
        per_class = found.per_class.copy()
        classes = per_class["class"].tolist()
        per_class["poisons"] = [int(truth[labels == c].sum()) for c in classes]
        per_class["poisons_found"] = [
            int((truth & found.flagged)[labels == c].sum()) for c in classes
        ]
        metrics = {
            **scores,
            "detector": detector.name,
            "poison_rate": self.poison_rate,
            "mode": self.attack.mode,
            "target_class": self.target_class,
            "before_clean_accuracy": before["clean_accuracy"],
            "before_attack_success": before["attack_success"],
            "after_clean_accuracy": after["clean_accuracy"],
            "after_attack_success": after["attack_success"],
            "clean_model_accuracy": clean_m["clean_accuracy"],
            "n_train_after": n_after,
            "arch": arch,
        }
        return RunResult(
            metrics=metrics,
            tables={"summary": summary, "per_class": per_class, "projection": projection},
        )
