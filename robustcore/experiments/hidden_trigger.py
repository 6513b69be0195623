"""The "Backdoors" page's hidden-trigger experiment (Saha et al. 2020): clean-label poisons
crafted for each ε of a sweep, the victim retrained on them, attack success against ε.

The attacker's feature extractor is the clean model, trained like the target
(:mod:`.victims`). With the attack's ``setting="head"`` (the paper's) the victim is that
extractor, frozen, with a new last layer trained on the poisoned set; with ``"full"`` it is
retrained from scratch. The baseline is the same victim trained on clean data.

``python -m robustcore hidden-trigger --eps 0.1,0.2,0.3,0.4 --attack.setting head``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.poisoning import (
    HiddenTrigger,
    PoisonedData,
    Trigger,
    backdoor_metrics,
    poison_hidden_trigger,
    retrain_head,
    train_poisoned,
)
from ..attacks.poisoning.base import check_class
from ..attacks.poisoning.hidden_trigger import head_recipe
from ..attacks.poisoning.triggers import default_size
from ..data import Dataset
from ..errors import ValidationError
from ..models import TrainRecipe, predict_logits, train_entry
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, training_work
from .victims import (
    ARCH_CHOICES,
    ARCH_HELP,
    ARCH_LABEL,
    fit_work,
    metrics_work,
    victim_training,
)

N_GALLERY = 8
DEFAULT_EPS: tuple[float, ...] = (0.1, 0.2, 0.3)
EPS_CHOICES: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def _images(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float32)


@dataclass
class HiddenTriggerSweep:
    """The poisons and victims of a hidden-trigger sweep, in memory
    (:meth:`HiddenTriggerBackdoor.sweep_models`).

    Attributes:
        table: one row per ε: clean_accuracy, attack_success, triggered_accuracy,
            baseline_attack_success (the same trigger on the victim trained without
            poisons), clean_drop, feature distances before/after crafting, n_poison,
            train_seconds.
        baseline: metrics of the victim trained the same way on clean data.
        poisoned: the poisoned data of each ε (in the table's order).
        models: the victim model of each ε.
    """

    table: pd.DataFrame
    baseline: dict[str, float]
    poisoned: list[PoisonedData] = field(repr=False)
    models: list[nn.Module] = field(repr=False)


class HiddenTriggerResult(ExperimentResult):
    """A stored hidden-trigger sweep: headline numbers, the ε table, poisons and gallery."""

    @property
    def headline_eps(self) -> float:
        """The ε whose victim the headline numbers, poisons and gallery show (the largest)."""
        return float(self._metric("headline_eps"))

    @property
    def clean_accuracy(self) -> float:
        return float(self._metric("clean_accuracy"))

    @property
    def attack_success(self) -> float:
        return float(self._metric("attack_success"))

    @property
    def baseline_attack_success(self) -> float:
        return float(self._metric("baseline_attack_success"))

    @property
    def baseline_clean_accuracy(self) -> float:
        return float(self._metric("baseline_clean_accuracy"))

    @property
    def n_poison(self) -> int:
        return int(self._metric("n_poison"))

    @property
    def setting(self) -> str:
        """``head`` (last layer retrained on frozen features) or ``full``."""
        return str(self._metric("setting"))

    @property
    def source_class(self) -> int:
        return int(self._metric("source_class"))

    @property
    def target_class(self) -> int:
        return int(self._metric("target_class"))

    def sweep(self) -> pd.DataFrame:
        """One row per ε (see :class:`HiddenTriggerSweep`)."""
        return self._table("sweep")

    def poisons(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Some poisons' original images and the poisons themselves (``None`` for tabular
        data)."""
        if not self._has_artifact("poison_images"):
            return None
        return self._artifact("poison_originals"), self._artifact("poison_images")

    def gallery(self) -> tuple[np.ndarray | None, pd.DataFrame]:
        """Triggered source-class test images (``None`` for tabular data) and the victim's
        predictions on them."""
        images = self._artifact("gallery_images") if self._has_artifact("gallery_images") else None
        return images, self._table("gallery")

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"sweep": self.sweep()}


@register
@dataclass(frozen=True)
class HiddenTriggerBackdoor(Experiment):
    """Hidden-trigger poisons for every ε of the sweep, the victim retrained on each set."""

    name = "hidden_trigger"
    title = "Hidden-trigger backdoor"
    paper = HiddenTrigger.paper
    result_class = HiddenTriggerResult
    headline = "attack_success"
    needs_model = False

    eps: tuple[float, ...] = param(
        DEFAULT_EPS,
        low=0.0,
        high=1.0,
        label="ε values (one set of poisons and one victim each)",
        help="How far each poison may move from its original target image, per pixel (L∞). "
        "Larger ε: stronger poisons, but easier to see.",
    )
    source_class: int = param(
        1,
        low=0,
        label="Source class (gets the trigger)",
        help="Inputs of this class carry the trigger at test time.",
    )
    target_class: int = param(
        0,
        low=0,
        label="Target class (poisons)",
        help="The class the triggered source inputs should go to; its training images "
        "become the poisons.",
    )
    trigger: Trigger = nested(Trigger, label="Trigger")
    attack: HiddenTrigger = nested(HiddenTrigger, label="Hidden-trigger settings")
    victim_arch: str | None = param(None, choices=ARCH_CHOICES, label=ARCH_LABEL, help=ARCH_HELP)

    def check(self) -> None:
        if self.source_class == self.target_class:
            raise ValidationError(
                f"Source and target class must differ (both are {self.source_class})."
            )

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        return {"trigger": {"size": default_size(dataset.input_shape)}}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["eps"] = sorted(out["eps"])
        return out

    def victim(self, dataset: Dataset) -> tuple[str, TrainRecipe]:
        """The architecture and recipe of the clean model (the attacker's features)."""
        return victim_training(self.target, self.victim_arch, dataset)

    def check_data(self, dataset: Dataset) -> None:
        self.victim(dataset)
        check_class(self.source_class, dataset, "Source class")
        check_class(self.target_class, dataset, "Target class")
        self.trigger.build(dataset.input_shape, dataset.bounds)  # raises if it does not fit
        n_target = int((dataset.y_train == self.target_class).sum())
        if int(round(self.attack.poison_fraction * n_target)) < 1:
            raise ValidationError(
                f"A poisoned share of {self.attack.poison_fraction:g} of the target class "
                f"({n_target} training images) gives no poison; raise it."
            )

    def work(self, dataset: Dataset) -> Work:
        """Training the clean model (nothing when the zoo holds it); per ε, crafting the
        poisons (the triggered source images' features, then ``steps`` input gradients of
        every poison) and training the victim on them: a new last layer on the features
        (``head``, which the baseline victim gets too) or the whole network (``full``),
        always counted, since its zoo key depends on the crafted poisons; each victim's
        predictions on the test set and the triggered source images."""
        arch, recipe = self.victim(dataset)
        n_train, n_test = dataset.n_train, dataset.n_test
        n_target = int((dataset.y_train == self.target_class).sum())
        n_poison = round(self.attack.poison_fraction * n_target)
        sources = int((dataset.y_train == self.source_class).sum())
        measure = metrics_work(
            arch, dataset, target_class=self.target_class, source_class=self.source_class
        )
        craft = Work.of(arch, forward=sources + 2 * n_poison, gradient=self.attack.steps * n_poison)
        if self.attack.setting == "head":
            victim = Work.of(arch, forward=n_train + n_test)  # the features, then the layer
            victim = victim + fit_work("logreg", dataset, head_recipe(recipe))
            baseline = victim
        else:
            victim, baseline = fit_work(arch, dataset, recipe), Work()
        per_eps = craft + victim + measure
        return training_work(arch, dataset, recipe) + baseline + measure + per_eps * len(self.eps)

    def describe(self, dataset: Dataset) -> str:
        arch, _ = self.victim(dataset)
        return f"Hidden trigger ε sweep ({self.attack.setting}) · {arch} on {dataset.name}"

    def sweep_models(
        self, dataset: Dataset, progress: ProgressFn | None = None
    ) -> HiddenTriggerSweep:
        """Craft the poisons of every ε, train the victims, measure; all kept in memory."""
        self.check_data(dataset)
        arch, recipe = self.victim(dataset)
        vals = sorted(self.eps)
        labels = {"clean model": 1.0}
        for i, eps in enumerate(vals):
            label = f"ε = {eps:g} ({i + 1}/{len(vals)})"
            labels[label] = 1.0
            labels[f"{label} · training the victim"] = 1.0
        parts = split(progress, labels)
        clean = train_entry(arch, dataset, recipe, progress=parts[0])
        metric_kw = {"target_class": self.target_class, "source_class": self.source_class}
        head = self.attack.setting == "head"
        base_model = retrain_head(clean, dataset, recipe) if head else clean.model
        baseline = backdoor_metrics(base_model, dataset, self.trigger, **metric_kw)
        rows, all_poisoned, models = [], [], []
        for i, eps in enumerate(vals):
            poisoned = poison_hidden_trigger(
                dataset,
                clean.model,
                self.trigger,
                self.attack,
                source_class=self.source_class,
                target_class=self.target_class,
                eps=eps,
                progress=parts[1 + 2 * i],
            )
            train_part = parts[2 + 2 * i]
            if head:
                extra = {"poisoning": poisoned.description}
                model = retrain_head(
                    clean, poisoned.dataset, recipe, extra=extra, progress=train_part
                )
                seconds = None
            else:
                entry = train_poisoned(poisoned, arch, recipe, progress=train_part)
                model = entry.model
                seconds = float(entry.metrics.get("train_seconds", 0.0))
            m = backdoor_metrics(model, dataset, self.trigger, **metric_kw)
            crafted = poisoned.description["crafting"]
            rows.append(
                {
                    "eps": eps,
                    "clean_accuracy": m["clean_accuracy"],
                    "attack_success": m["attack_success"],
                    "triggered_accuracy": m["triggered_accuracy"],
                    "baseline_attack_success": baseline["attack_success"],
                    "clean_drop": baseline["clean_accuracy"] - m["clean_accuracy"],
                    "feature_distance_before": crafted["feature_distance_before"],
                    "feature_distance_after": crafted["feature_distance_after"],
                    "n_poison": poisoned.n_poison,
                    "train_seconds": seconds,
                }
            )
            all_poisoned.append(poisoned)
            models.append(model)
        return HiddenTriggerSweep(pd.DataFrame(rows), baseline, all_poisoned, models)

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        sweep_part, gallery_part = split(progress, [95, 5])
        res = self.sweep_models(dataset, sweep_part)
        if gallery_part is not None:
            gallery_part(0.0, "triggered source images")
        arch, _ = self.victim(dataset)
        i = len(res.table) - 1  # the largest ε
        row = res.table.iloc[i]
        poisoned = res.poisoned[i]
        k = min(N_GALLERY, poisoned.n_poison)
        idx = poisoned.poison_idx[:k]
        src = torch.nonzero(dataset.y_test == self.source_class).flatten()[:k]
        x_src = self.trigger.build(dataset.input_shape, dataset.bounds).apply(dataset.x_test[src])
        probs = torch.softmax(predict_logits(res.models[i], x_src), dim=1)
        conf, pred = probs.max(1)
        names = [str(c) for c in dataset.class_names]
        gallery = pd.DataFrame(
            {
                "index": src.numpy(),
                "true": [names[c] for c in dataset.y_test[src].tolist()],
                "predicted": [names[c] for c in pred.tolist()],
                "confidence": conf.numpy(),
            }
        )
        artifacts: dict[str, Any] = {}
        if dataset.modality == "image":
            artifacts["poison_originals"] = _images(dataset.x_train[idx])
            artifacts["poison_images"] = _images(poisoned.dataset.x_train[idx])
            artifacts["gallery_images"] = _images(x_src)
        metrics = {
            "headline_eps": float(row["eps"]),
            "clean_accuracy": float(row["clean_accuracy"]),
            "attack_success": float(row["attack_success"]),
            "baseline_attack_success": res.baseline["attack_success"],
            "baseline_clean_accuracy": res.baseline["clean_accuracy"],
            "n_poison": int(row["n_poison"]),
            "setting": self.attack.setting,
            "source_class": self.source_class,
            "target_class": self.target_class,
            "arch": arch,
        }
        if gallery_part is not None:
            gallery_part(1.0, "done")
        return RunResult(
            metrics=metrics, tables={"sweep": res.table, "gallery": gallery}, artifacts=artifacts
        )
