"""The "Backdoors" page's BadNets experiment: one poisoned model per value of a sweep (poison
rate, trigger size, the trigger's noise level α, or the defender's training noise σ), each
measured by clean accuracy and attack success, with a gallery of triggered test images.

Every victim is trained from scratch like the target (:mod:`.victims`) through the model
zoo, keyed on the poisoned data, so a sweep that shares models with an earlier one only
trains the new ones; a poison rate of 0 is the clean model itself.

``python -m robustcore backdoors --sweep trigger_size --trigger-sizes 1,2,4,8 --poison-rate 0.01``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.poisoning import BadNets, Trigger, backdoor_metrics, poison_badnets, train_poisoned
from ..attacks.poisoning.base import check_class
from ..attacks.poisoning.triggers import default_size
from ..data import Dataset
from ..errors import ValidationError
from ..models import TrainRecipe, predict_logits, train_entry
from ..models.zoo import ZooEntry
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, total, training_work
from .victims import (
    ARCH_CHOICES,
    ARCH_HELP,
    ARCH_LABEL,
    metrics_work,
    poisoned_training,
    victim_training,
)

N_GALLERY = 8


@dataclass(frozen=True)
class SweepInfo:
    """One axis a BadNets sweep can run along."""

    label: str
    help: str
    field: str  # the experiment's parameter holding the values
    choices: tuple[float, ...]  # values a form offers
    percent: bool = False
    is_int: bool = False


SWEEPS: dict[str, SweepInfo] = {
    "poison_rate": SweepInfo(
        "Poison rate",
        "Share of the training set that carries the trigger and the attacker's label.",
        "poison_rates",
        (0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2),
        percent=True,
    ),
    "trigger_size": SweepInfo(
        "Trigger size (px)",
        "Side of the trigger square (the pattern stays the one designed above).",
        "trigger_sizes",
        (1, 2, 3, 4, 5, 6, 8, 10),
        is_int=True,
    ),
    "blend_alpha": SweepInfo(
        "Trigger noise level α",
        "A blended random-noise trigger over the whole image, mixed in with weight α.",
        "blend_alphas",
        (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5),
    ),
    "noise_std": SweepInfo(
        "Training input-noise σ",
        "Gaussian noise the defender adds to every training input (noise augmentation).",
        "noise_stds",
        (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8),
    ),
}


def triggered_examples(
    model: nn.Module, ds: Dataset, trigger: Trigger, *, target_class: int, k: int = N_GALLERY
) -> tuple[torch.Tensor, pd.DataFrame]:
    """``k`` triggered test images (one class after another, skipping the target) with the
    model's prediction and confidence, for a gallery."""
    y = ds.y_test.cpu()
    idx = torch.nonzero(y != target_class).flatten()
    # spread over classes: the first test image of each class in turn
    picked: list[int] = []
    for c in range(ds.num_classes):
        if c == target_class:
            continue
        hits = idx[y[idx] == c]
        if hits.numel():
            picked.append(int(hits[0]))
    picked = (picked + [int(i) for i in idx if int(i) not in picked])[:k]
    sel = torch.tensor(picked, dtype=torch.long)
    x = trigger.build(ds.input_shape, ds.bounds).apply(ds.x_test[sel])
    probs = torch.softmax(predict_logits(model, x), dim=1)
    conf, pred = probs.max(1)
    names = [str(c) for c in ds.class_names]
    table = pd.DataFrame(
        {
            "index": sel.numpy(),
            "true": [names[i] for i in y[sel].tolist()],
            "predicted": [names[i] for i in pred.tolist()],
            "confidence": conf.numpy(),
        }
    )
    return x, table


def headline_row(table: pd.DataFrame, column: str, wanted: float) -> int:
    """Row of ``table`` whose ``column`` equals ``wanted``, else the last row."""
    hits = np.flatnonzero(np.isclose(table[column].to_numpy(dtype=float), wanted))
    return int(hits[0]) if hits.size else len(table) - 1


@dataclass
class BackdoorSweep:
    """The models of a BadNets sweep, in memory (:meth:`Backdoors.sweep_models`).

    Attributes:
        sweep: the swept axis (a key of :data:`SWEEPS`).
        table: one row per swept value: the value, clean_accuracy, attack_success,
            triggered_accuracy, clean_drop (clean model's accuracy minus this one's),
            n_poison, train_seconds, from_cache.
        clean: clean accuracy and attack success (the trigger on an unpoisoned model).
        entries: the zoo entry of each swept value (in the table's order).
        triggers: the trigger of each value.
    """

    sweep: str
    table: pd.DataFrame
    clean: dict[str, float]
    entries: list[ZooEntry] = field(repr=False)
    triggers: list[Trigger] = field(repr=False)


class BackdoorsResult(ExperimentResult):
    """A stored BadNets sweep: headline numbers, the sweep table and the gallery."""

    @property
    def sweep_axis(self) -> str:
        """The swept setting (a key of :data:`SWEEPS`)."""
        return str(self._metric("sweep"))

    @property
    def sweep_label(self) -> str:
        return SWEEPS[self.sweep_axis].label

    @property
    def percent_axis(self) -> bool:
        """Whether the swept values are shares (shown as percentages)."""
        return SWEEPS[self.sweep_axis].percent

    @property
    def headline_value(self) -> float:
        """The swept value whose model the headline numbers and the gallery show."""
        return float(self._metric("headline_value"))

    @property
    def clean_model_accuracy(self) -> float:
        return float(self._metric("clean_model_accuracy"))

    @property
    def clean_model_attack_success(self) -> float:
        return float(self._metric("clean_model_attack_success"))

    @property
    def clean_accuracy(self) -> float:
        """Clean accuracy of the headline model."""
        return float(self._metric("clean_accuracy"))

    @property
    def attack_success(self) -> float:
        """Attack success of the headline model."""
        return float(self._metric("attack_success"))

    @property
    def n_poison(self) -> int:
        return int(self._metric("n_poison"))

    @property
    def mode(self) -> str:
        return str(self._metric("mode"))

    @property
    def target_class(self) -> int:
        return int(self._metric("target_class"))

    @property
    def arch(self) -> str:
        return str(self._metric("arch"))

    def sweep(self) -> pd.DataFrame:
        """One row per swept value (see :class:`BackdoorSweep`)."""
        return self._table("sweep")

    def gallery(self) -> tuple[np.ndarray | None, pd.DataFrame]:
        """Triggered test images (``None`` for tabular data) and the headline model's
        predictions on them."""
        images = self._artifact("gallery_images") if self._has_artifact("gallery_images") else None
        return images, self._table("gallery")

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"sweep": self.sweep()}


@register
@dataclass(frozen=True)
class Backdoors(Experiment):
    """BadNets swept along one axis: one model trained on poisoned data per value.

    The values of each axis are parameters of their own (``poison_rates``,
    ``trigger_sizes``, ``blend_alphas``, ``noise_stds``); ``sweep`` says which one runs.
    The other axes keep the settings the run declares: ``poison_rate``, the trigger's size
    and α, and the target's recipe (its input-noise σ).
    """

    name = "backdoors"
    title = "BadNets backdoor sweep"
    paper = BadNets.paper
    result_class = BackdoorsResult
    headline = "attack_success"
    needs_model = False

    sweep: str = param(
        "poison_rate",
        choices=tuple(SWEEPS),
        label="Sweep over",
        help="poison rate, trigger size, the noise level of a blended noise trigger, or the "
        "Gaussian noise the defender adds while training.",
    )
    poison_rates: tuple[float, ...] = param(
        (0.0, 0.01, 0.03),
        low=0.0,
        high=0.5,
        label="Poison rate values (one model each)",
        help=SWEEPS["poison_rate"].help,
    )
    trigger_sizes: tuple[int, ...] = param(
        (1, 2, 4, 6),
        low=1,
        high=64,
        label="Trigger size values (one model each)",
        help=SWEEPS["trigger_size"].help,
    )
    blend_alphas: tuple[float, ...] = param(
        (0.02, 0.05, 0.1, 0.2),
        low=0.01,
        high=1.0,
        label="Trigger noise level α values (one model each)",
        help=SWEEPS["blend_alpha"].help,
    )
    noise_stds: tuple[float, ...] = param(
        (0.0, 0.1, 0.3, 0.5),
        low=0.0,
        high=1.0,
        label="Training input-noise σ values (one model each)",
        help=SWEEPS["noise_std"].help,
    )
    poison_rate: float = param(
        0.03,
        low=0.0,
        high=0.5,
        step=0.005,
        label="Poison rate",
        help="Fraction of the whole training set that is triggered and relabelled when "
        "another setting is swept; in a poison-rate sweep, the rate whose model the "
        "headline and the gallery show (else the largest).",
    )
    target_class: int = param(
        0,
        low=0,
        label="Target class",
        help="The class triggered inputs go to (all_to_one).",
    )
    trigger: Trigger = nested(Trigger, label="Trigger")
    attack: BadNets = nested(BadNets, label="BadNets settings")
    victim_arch: str | None = param(None, choices=ARCH_CHOICES, label=ARCH_LABEL, help=ARCH_HELP)

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        return {"trigger": {"size": default_size(dataset.input_shape)}}

    def values(self) -> list[float]:
        """The swept values, sorted."""
        return sorted(getattr(self, SWEEPS[self.sweep].field))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # Only the swept axis's values change the result: keep the others out of the key.
        for name, info in SWEEPS.items():
            if name == self.sweep:
                out[info.field] = sorted(out[info.field])
            else:
                out.pop(info.field)
        return out

    def victim(self, dataset: Dataset) -> tuple[str, TrainRecipe]:
        """The architecture and recipe every poisoned model is trained with."""
        return victim_training(self.target, self.victim_arch, dataset)

    def _variants(self, recipe: TrainRecipe) -> list[tuple[float, Trigger, float, TrainRecipe]]:
        """(value, trigger, poison rate, recipe) of each model of the sweep."""
        out = []
        for v in self.values():
            trigger, rate, r = self.trigger, self.poison_rate, recipe
            if self.sweep == "poison_rate":
                rate = v
            elif self.sweep == "trigger_size":
                trigger = trigger.replace(size=int(v))
            elif self.sweep == "blend_alpha":
                trigger = trigger.replace(pattern="blend", alpha=v)
            else:
                r = recipe.replace(noise_std=v)
            out.append((v, trigger, rate, r))
        return out

    def _own_value(self, recipe: TrainRecipe) -> float:
        """The declared setting of the swept axis (it picks the headline model)."""
        return {
            "poison_rate": self.poison_rate,
            "trigger_size": self.trigger.size,
            "blend_alpha": self.trigger.alpha,
            "noise_std": recipe.noise_std,
        }[self.sweep]

    def check_data(self, dataset: Dataset) -> None:
        _, recipe = self.victim(dataset)
        check_class(self.target_class, dataset, "Target class")
        if self.attack.mode == "all_to_one":
            candidates = int((dataset.y_train != self.target_class).sum())
        else:
            candidates = dataset.n_train
        for _, trigger, rate, _ in self._variants(recipe):
            trigger.build(dataset.input_shape, dataset.bounds)  # raises if it does not fit
            n = int(round(rate * dataset.n_train))
            if n > candidates:
                raise ValidationError(
                    f"Poison rate {rate:g} asks for {n} poisons but only {candidates} training "
                    "points can be poisoned; lower the rate."
                )

    def work(self, dataset: Dataset) -> Work:
        """Training the clean model and one model per swept value through the zoo (nothing
        for those it holds; a poison rate of 0 with the clean recipe is the clean model),
        and each model's predictions on the test set, clean and triggered."""
        arch, recipe = self.victim(dataset)
        measure = metrics_work(arch, dataset, target_class=self.target_class, mode=self.attack.mode)
        parts = [training_work(arch, dataset, recipe), measure]
        for _, trigger, rate, r in self._variants(recipe):
            if rate > 0:
                badnets = {"trigger": trigger, "config": self.attack, "poison_rate": rate}
                badnets["target_class"] = self.target_class
                parts.append(poisoned_training(arch, dataset, r, poison_badnets, **badnets))
            elif r != recipe:
                parts.append(training_work(arch, dataset, r))
            parts.append(measure)
        return total(parts)

    def describe(self, dataset: Dataset) -> str:
        arch, _ = self.victim(dataset)
        return f"BadNets {SWEEPS[self.sweep].label.lower()} sweep · {arch} on {dataset.name}"

    def sweep_models(self, dataset: Dataset, progress: ProgressFn | None = None) -> BackdoorSweep:
        """Train (or load from the zoo) one BadNets-poisoned model per swept value and
        measure each; the models stay in memory."""
        self.check_data(dataset)
        arch, recipe = self.victim(dataset)
        info = SWEEPS[self.sweep]
        variants = self._variants(recipe)
        labels = ["clean model"] + [
            f"model {i}/{len(variants)} ({info.label} {v:g})"
            for i, (v, *_) in enumerate(variants, start=1)
        ]
        parts = split(progress, dict.fromkeys(labels, 1.0))
        clean = train_entry(arch, dataset, recipe, progress=parts[0])
        metric_kw = {"target_class": self.target_class, "mode": self.attack.mode}
        clean_m = backdoor_metrics(clean.model, dataset, self.trigger, **metric_kw)
        rows, entries, triggers = [], [], []
        for part, (v, trigger, rate, r) in zip(parts[1:], variants, strict=True):
            if rate == 0:
                entry = train_entry(arch, dataset, r, progress=part)
                n_poison = 0
            else:
                poisoned = poison_badnets(
                    dataset, trigger, self.attack, poison_rate=rate, target_class=self.target_class
                )
                entry = train_poisoned(poisoned, arch, r, progress=part)
                n_poison = poisoned.n_poison
            m = backdoor_metrics(entry.model, dataset, trigger, **metric_kw)
            rows.append(
                {
                    self.sweep: int(v) if info.is_int else v,
                    "clean_accuracy": m["clean_accuracy"],
                    "attack_success": m["attack_success"],
                    "triggered_accuracy": m["triggered_accuracy"],
                    "clean_drop": clean_m["clean_accuracy"] - m["clean_accuracy"],
                    "n_poison": n_poison,
                    "train_seconds": float(entry.metrics.get("train_seconds", 0.0)),
                    "from_cache": bool(entry.from_cache),
                }
            )
            entries.append(entry)
            triggers.append(trigger)
        return BackdoorSweep(self.sweep, pd.DataFrame(rows), clean_m, entries, triggers)

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        sweep_part, gallery_part = split(progress, [95, 5])
        res = self.sweep_models(dataset, sweep_part)
        if gallery_part is not None:
            gallery_part(0.0, "triggered test images")
        arch, recipe = self.victim(dataset)
        i = headline_row(res.table, self.sweep, self._own_value(recipe))
        row = res.table.iloc[i]
        x, gallery = triggered_examples(
            res.entries[i].model, dataset, res.triggers[i], target_class=self.target_class
        )
        artifacts: dict[str, Any] = {}
        if dataset.modality == "image":
            artifacts["gallery_images"] = x.detach().cpu().numpy().astype(np.float32)
        metrics = {
            "sweep": self.sweep,
            "headline_value": float(row[self.sweep]),
            "clean_model_accuracy": res.clean["clean_accuracy"],
            "clean_model_attack_success": res.clean["attack_success"],
            "clean_accuracy": float(row["clean_accuracy"]),
            "attack_success": float(row["attack_success"]),
            "n_poison": int(row["n_poison"]),
            "mode": self.attack.mode,
            "target_class": self.target_class,
            "arch": arch,
        }
        if gallery_part is not None:
            gallery_part(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"sweep": res.table, "gallery": gallery},
            artifacts=artifacts,
        )
