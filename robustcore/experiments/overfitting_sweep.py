"""The "Overfitting sweep" experiment (a tab of the Membership inference page): overfitting
as a knob against membership leakage.

One target per value of the knob (epochs, training-set size or weight decay): the
experiment's target recipe with that field changed, trained through the zoo, attacked with
the loss and confidence thresholds (no shadow models). Yeom et al. (2018) tie membership
advantage to the generalisation gap; the sweep shows it.

``python -m robustcore overfitting-sweep --arch mlp --recipe.epochs 40 --recipe.train-size 500
--knob train_size --values 100,250,500,1000,4000``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.inference import ATTACKS, attack_scores, membership_metrics, membership_split
from ..data import Dataset
from ..errors import ValidationError
from ..models import TrainRecipe, compatible_architectures, predict_logits
from ..models.zoo import train_entry
from ..params import param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, training_work

KNOBS: dict[str, str] = {
    "epochs": "Epochs",
    "train_size": "Training examples",
    "weight_decay": "Weight decay",
}
"""The overfitting knobs a sweep can turn (fields of the target's training recipe)."""

DEFAULT_VALUES: dict[str, tuple[float, ...]] = {
    "epochs": (1, 5, 10, 20, 40),
    "train_size": (100, 250, 500, 1000, 4000),
    "weight_decay": (0.0, 0.0001, 0.001, 0.01),
}
"""The values swept when none are given, per knob."""

MAX_VALUES = 12


def knob_values(knob: str, values: Sequence[float]) -> tuple[float | int, ...]:
    """``values`` checked for ``knob``, sorted, whole numbers for epochs and sizes."""
    if knob not in KNOBS:
        raise ValidationError(f"Unknown knob {knob!r}; choose one of {', '.join(KNOBS)}.")
    if not values:
        raise ValidationError("Give at least one value to sweep.")
    out: list[float | int] = []
    for v in values:
        v = float(v)
        if knob == "weight_decay":
            if not 0.0 <= v <= 1.0:
                raise ValidationError(f"Weight decay must be between 0 and 1; got {v:g}.")
            out.append(v)
        else:
            if v != int(v) or v < 1:
                raise ValidationError(f"{KNOBS[knob]} must be whole numbers ≥ 1; got {v:g}.")
            out.append(int(v))
    if len(out) > MAX_VALUES:
        raise ValidationError(f"At most {MAX_VALUES} values per sweep; got {len(out)}.")
    return tuple(sorted(set(out)))


def overfitting_sweep(
    arch: str,
    dataset: Dataset,
    recipe: TrainRecipe,
    knob: str,
    values: Sequence[float | int],
    *,
    max_per_side: int = 1000,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Overfitting as a knob: train one target per value and measure its leakage.

    Each target is ``recipe`` with ``knob`` set to the value (trained through the zoo);
    the loss- and confidence-threshold attacks (no shadow models) measure how much it leaks.

    Returns:
        One row per value: ``value``, ``train_acc`` and ``test_acc`` (the final model's
        accuracy on the member and non-member candidates), ``gap``, ``auc``,
        ``advantage`` and ``tpr@1%fpr`` of the loss attack, ``confidence_auc``,
        ``members`` (candidates per side).
    """
    if knob not in KNOBS:
        raise ValidationError(f"Unknown knob {knob!r}; choose one of {', '.join(KNOBS)}.")
    if not values:
        raise ValidationError("Give at least one value to sweep.")
    labels = [f"{KNOBS[knob].lower()} = {value:g}" for value in values]
    parts = split(progress, dict.fromkeys(labels, 1.0))
    rows = []
    for value, part in zip(values, parts, strict=True):
        r = recipe.replace(**{knob: value})
        entry = train_entry(arch, dataset, r, progress=part)
        cands = membership_split(
            dataset, train_size=r.train_size, max_per_side=max_per_side, seed=seed
        )
        probs = torch.softmax(predict_logits(entry.model, cands.x), dim=1)
        scores = attack_scores(probs, cands.y)
        loss_m = membership_metrics(scores["loss"], cands.is_member)
        conf_m = membership_metrics(scores["confidence"], cands.is_member)
        correct = (probs.argmax(1) == cands.y).float()
        member_acc = float(correct[cands.is_member].mean())
        nonmember_acc = float(correct[~cands.is_member].mean())
        rows.append(
            {
                "knob": knob,
                "value": value,
                "train_acc": member_acc,
                "test_acc": nonmember_acc,
                "gap": member_acc - nonmember_acc,
                "auc": loss_m["auc"],
                "advantage": loss_m["advantage"],
                "tpr@1%fpr": loss_m["tpr@1%fpr"],
                "confidence_auc": conf_m["auc"],
                "members": cands.per_side,
                "zoo_key": entry.key,
            }
        )
        if part is not None:
            part(1.0, "measured")
    return pd.DataFrame(rows)


class OverfittingSweepResult(ExperimentResult):
    """One row per knob value: the target's gap and its leakage to the loss attack."""

    @property
    def knob(self) -> str:
        return str(self._metric("knob"))

    @property
    def knob_title(self) -> str:
        return KNOBS.get(self.knob, self.knob)

    @property
    def max_advantage(self) -> float:
        return float(self._metric("max_advantage"))

    @property
    def at_value(self) -> float:
        """The knob value with the largest membership advantage."""
        return float(self._metric("at_value"))

    def sweep(self) -> pd.DataFrame:
        """``value``, ``train_acc``, ``test_acc``, ``gap``, ``auc``, ``advantage``,
        ``tpr@1%fpr``, ``confidence_auc``, ``members``, ``zoo_key`` (and ``knob``)."""
        return self._table("sweep")

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"sweep": self.sweep().drop(columns=["zoo_key", "knob"])}


@register
@dataclass(frozen=True)
class OverfittingSweep(Experiment):
    """One target per value of an overfitting knob, attacked with the loss threshold.

    The targets are the experiment's target recipe with the knob changed; they are trained
    here (through the zoo), so the experiment never needs the target model itself.
    """

    name = "overfitting_sweep"
    title = "Overfitting sweep"
    page_target = "overfit"
    paper = (
        "Yeom et al. 2018, Privacy Risk in Machine Learning: Analyzing the Connection to "
        "Overfitting"
    )
    result_class = OverfittingSweepResult
    headline = "max_advantage"
    needs_model = False

    knob: str = param(
        "epochs",
        choices=tuple(KNOBS),
        label="Knob",
        help="Which part of the recipe to vary; the others stay at the target's values.",
    )
    values: tuple[float, ...] | None = param(
        None,
        low=0.0,
        label="Values",
        help="The knob's values, separated by commas (whole numbers for epochs and training "
        f"examples; at most {MAX_VALUES}); empty: the knob's usual range.",
    )
    max_per_side: int = param(
        1000,
        low=2,
        high=100_000,
        step=10,
        label="Candidates per side",
        help="At most this many members and as many non-members per target.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Draws the candidates.")

    def check(self) -> None:
        # Sorted, typed values in the spec: "40, 1, 5" and "1, 5, 40" are the same run.
        given = self.values if self.values is not None else DEFAULT_VALUES[self.knob]
        object.__setattr__(self, "values", knob_values(self.knob, given))

    def check_data(self, dataset: Dataset) -> None:
        if self.target is None:
            raise ValidationError(
                "The overfitting sweep trains its own targets: give the architecture and the "
                "base recipe (a zoo target)."
            )
        arch, _ = self.target.training
        archs = compatible_architectures(dataset.modality, dataset.input_shape)
        if arch not in archs:
            raise ValidationError(
                f"The sweep's targets need a built-in architecture that fits {dataset.name}: "
                f"choose one of {', '.join(archs)} (got {arch!r})."
            )

    def work(self, dataset: Dataset) -> Work:
        """One target per value, trained through the zoo (nothing for those already
        there), and its forward pass over its member and non-member candidates."""
        arch, recipe = self.target.training if self.target is not None else (None, None)
        if arch is None or recipe is None or self.values is None:
            return Work()
        work = Work()
        for value in self.values:
            r = recipe.replace(**{self.knob: value})
            cands = membership_split(
                dataset, train_size=r.train_size, max_per_side=self.max_per_side, seed=self.seed
            )
            work = work + training_work(arch, dataset, r)
            work = work + Work.of(arch, forward=2 * cands.per_side)
        return work

    def describe(self, dataset: Dataset) -> str:
        arch = self.target.training[0] if self.target is not None else "?"
        return f"Overfitting sweep ({self.knob}) on {arch}"

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert self.target is not None and self.values is not None
        arch, recipe = self.target.training
        assert arch is not None
        table = overfitting_sweep(
            arch,
            dataset,
            recipe,
            self.knob,
            list(self.values),
            max_per_side=self.max_per_side,
            seed=self.seed,
            progress=progress,
        )
        top = table.loc[table["advantage"].idxmax()]
        metrics: dict[str, Any] = {
            "knob": self.knob,
            "max_advantage": float(top["advantage"]),
            "at_value": float(top["value"]),
            "attack": ATTACKS["loss"],
        }
        return RunResult(metrics=metrics, tables={"sweep": table})
