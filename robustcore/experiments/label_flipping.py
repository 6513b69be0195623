"""The "Label flipping" page's experiment: one model per flip rate (random flips, or class A
relabelled B), each tested on the clean test set: overall and per-class accuracy and the
confusion matrices at the lowest and the highest rate.

Every model is trained from scratch like the target (:mod:`.victims`) through the zoo; a
flip rate of 0 is the clean model itself.

``python -m robustcore label-flipping --attack.mode targeted --rates 0,0.25,0.5,0.75``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..attacks.poisoning import LabelFlip, flip_labels, train_poisoned
from ..attacks.poisoning.base import check_class, predictions
from ..data import Dataset
from ..errors import ValidationError
from ..evaluation.metrics import confusion_matrix, per_class_accuracy
from ..models import TrainRecipe, train_entry
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, total, training_work
from .victims import ARCH_CHOICES, ARCH_HELP, ARCH_LABEL, poisoned_training, victim_training

DEFAULT_FLIP_RATES: tuple[float, ...] = (0.0, 0.4, 0.8)
DEFAULT_TARGETED_RATES: tuple[float, ...] = (0.0, 0.5, 0.75)
RATE_CHOICES: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class LabelFlipSweep:
    """The models of a label-flipping sweep, measured (:meth:`LabelFlipping.sweep_models`).

    Attributes:
        table: one row per flip rate: accuracy, n_flipped, train_seconds, from_cache, and
            (targeted mode) class_a_accuracy and a_predicted_as_b (share of class A
            predicted as B).
        per_class: long table (rate, class, accuracy).
        confusions: the test confusion matrix of each rate (in the table's order).
    """

    table: pd.DataFrame
    per_class: pd.DataFrame
    confusions: list[np.ndarray] = field(repr=False)


class LabelFlippingResult(ExperimentResult):
    """A stored label-flipping sweep."""

    @property
    def mode(self) -> str:
        """``random`` or ``targeted``."""
        return str(self._metric("mode"))

    @property
    def source_class(self) -> int | None:
        """Class A (targeted mode; ``None`` for random flips)."""
        return self._metric("source_class")

    @property
    def target_class(self) -> int | None:
        """Class B (targeted mode; ``None`` for random flips)."""
        return self._metric("target_class")

    @property
    def lowest_rate(self) -> float:
        return float(self._metric("lowest_rate"))

    @property
    def highest_rate(self) -> float:
        return float(self._metric("highest_rate"))

    @property
    def accuracy_lowest(self) -> float:
        """Test accuracy of the model at the lowest flip rate."""
        return float(self._metric("accuracy_lowest"))

    @property
    def accuracy_highest(self) -> float:
        """Test accuracy of the model at the highest flip rate."""
        return float(self._metric("accuracy_highest"))

    def sweep(self) -> pd.DataFrame:
        """One row per flip rate (see :class:`LabelFlipSweep`)."""
        return self._table("sweep")

    @property
    def n_models(self) -> int:
        return len(self.sweep())

    def per_class(self) -> pd.DataFrame:
        """Long table: rate, class (name), accuracy."""
        return self._table("per_class")

    def confusion_lowest(self) -> pd.DataFrame:
        """Test confusion matrix (rows: true class) at the lowest flip rate."""
        return self._table("confusion_before")

    def confusion_highest(self) -> pd.DataFrame:
        """Test confusion matrix (rows: true class) at the highest flip rate."""
        return self._table("confusion_after")

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"sweep": self.sweep()}


@register
@dataclass(frozen=True)
class LabelFlipping(Experiment):
    """Label flipping at several rates; classes A and B matter in targeted mode only."""

    name = "label_flipping"
    title = "Label flipping"
    paper = LabelFlip.paper
    result_class = LabelFlippingResult
    headline = "accuracy_highest"
    needs_model = False

    rates: tuple[float, ...] = param(
        DEFAULT_FLIP_RATES,
        low=0.0,
        high=1.0,
        label="Flip rates (one model each)",
        help="random: share of the whole training set given a random wrong label; "
        "targeted: share of class A relabelled B.",
    )
    source_class: int = param(
        7, low=0, label="Class A (flipped)", help="Targeted mode: the class whose labels flip."
    )
    target_class: int = param(
        1, low=0, label="Class B (new label)", help="Targeted mode: the label they get."
    )
    attack: LabelFlip = nested(LabelFlip, label="Label flipping")
    victim_arch: str | None = param(None, choices=ARCH_CHOICES, label=ARCH_LABEL, help=ARCH_HELP)

    @property
    def targeted(self) -> bool:
        return self.attack.mode == "targeted"

    def check(self) -> None:
        if self.targeted and self.source_class == self.target_class:
            raise ValidationError(
                f"Class A and class B must differ for targeted flipping (both are "
                f"{self.source_class})."
            )

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        a = min(7, dataset.num_classes - 1)
        return {"source_class": a, "target_class": 1 if a != 1 else 0}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["rates"] = sorted(out["rates"])
        if not self.targeted:  # random flips ignore the classes: keep them out of the key
            out.pop("source_class")
            out.pop("target_class")
        return out

    def victim(self, dataset: Dataset) -> tuple[str, TrainRecipe]:
        """The architecture and recipe every model of the sweep is trained with."""
        return victim_training(self.target, self.victim_arch, dataset)

    def check_data(self, dataset: Dataset) -> None:
        self.victim(dataset)
        if dataset.num_classes < 2:
            raise ValidationError("Label flipping needs at least two classes.")
        if self.targeted:
            check_class(self.source_class, dataset, "Class A")
            check_class(self.target_class, dataset, "Class B")

    def describe(self, dataset: Dataset) -> str:
        arch, _ = self.victim(dataset)
        return f"Label flipping ({self.attack.mode}) · {arch} on {dataset.name}"

    def work(self, dataset: Dataset) -> Work:
        """Training one model per flip rate through the zoo (nothing for those it holds; a
        rate of 0 is the clean model) and each one's predictions on the test set."""
        arch, recipe = self.victim(dataset)
        parts = []
        for rate in sorted(self.rates):
            if rate == 0:
                parts.append(training_work(arch, dataset, recipe))
            else:
                flips = {"config": self.attack, "rate": rate, **self._classes()}
                parts.append(poisoned_training(arch, dataset, recipe, flip_labels, **flips))
            parts.append(Work.of(arch, forward=dataset.n_test))
        return total(parts)

    def _classes(self) -> dict[str, int]:
        if not self.targeted:
            return {}
        return {"source_class": self.source_class, "target_class": self.target_class}

    def sweep_models(self, dataset: Dataset, progress: ProgressFn | None = None) -> LabelFlipSweep:
        """Train (or load) one model per flip rate and measure it on the clean test set."""
        self.check_data(dataset)
        arch, recipe = self.victim(dataset)
        vals = sorted(self.rates)
        names = [str(c) for c in dataset.class_names]
        labels = [f"model {i + 1}/{len(vals)} (flip rate {r:g})" for i, r in enumerate(vals)]
        parts = split(progress, dict.fromkeys(labels, 1.0))
        rows, per_class, confusions = [], [], []
        y = dataset.y_test.cpu()
        for part, rate in zip(parts, vals, strict=True):
            if rate == 0:
                entry = train_entry(arch, dataset, recipe, progress=part)
                n_flipped = 0
            else:
                poisoned = flip_labels(dataset, self.attack, rate=rate, **self._classes())
                entry = train_poisoned(poisoned, arch, recipe, progress=part)
                n_flipped = poisoned.n_poison
            pred = predictions(entry.model, dataset.x_test)
            cm = confusion_matrix(y, pred, dataset.num_classes)
            acc_c = per_class_accuracy(cm)
            row: dict[str, Any] = {
                "rate": rate,
                "accuracy": float((pred == y).float().mean()),
                "n_flipped": n_flipped,
                "train_seconds": float(entry.metrics.get("train_seconds", 0.0)),
                "from_cache": bool(entry.from_cache),
            }
            if self.targeted:
                a, b = self.source_class, self.target_class
                row["class_a_accuracy"] = float(acc_c[a])
                row["a_predicted_as_b"] = float(cm[a, b] / max(1, cm[a].sum()))
            rows.append(row)
            per_class += [
                {"rate": rate, "class": names[c], "accuracy": float(acc_c[c])}
                for c in range(dataset.num_classes)
            ]
            confusions.append(cm)
        return LabelFlipSweep(pd.DataFrame(rows), pd.DataFrame(per_class), confusions)

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        sweep_part, _ = split(progress, [97, 3])
        res = self.sweep_models(dataset, sweep_part)
        arch, _ = self.victim(dataset)
        first, last = res.table.iloc[0], res.table.iloc[-1]
        metrics = {
            "mode": self.attack.mode,
            "lowest_rate": float(first["rate"]),
            "highest_rate": float(last["rate"]),
            "accuracy_lowest": float(first["accuracy"]),
            "accuracy_highest": float(last["accuracy"]),
            "arch": arch,
            "source_class": self.source_class if self.targeted else None,
            "target_class": self.target_class if self.targeted else None,
        }
        names = [str(c) for c in dataset.class_names]
        return RunResult(
            metrics=metrics,
            tables={
                "sweep": res.table,
                "per_class": res.per_class,
                "confusion_before": pd.DataFrame(res.confusions[0], index=names, columns=names),
                "confusion_after": pd.DataFrame(res.confusions[-1], index=names, columns=names),
            },
        )
