"""The "Membership inference" experiment: every membership attack against one target, with
ROC curves, metrics per attack and the candidates' scores (for histograms).

The target is the experiment's own (:class:`~robustcore.experiments.Target`): the session's
model, or a deliberately overfit model the page builds as ``Target.zoo(arch, recipe)`` from
its overfitting control. Shadow models copy ``target.training`` (architecture and recipe);
for an uploaded model of unknown make the attacker's guess of the architecture is the
``shadow_arch`` parameter, and its members are assumed to be the whole training split.

``python -m robustcore membership-inference --arch mlp --recipe.epochs 40
--recipe.train-size 500 --attack.shadow-models 16``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..attacks.inference import ATTACKS, MembershipInference, membership_inference
from ..attacks.inference.membership import MembershipResult, MembershipSplit, membership_split
from ..attacks.inference.shadow import SHADOW_EXTRA, shadow_dataset, shadow_keep, shadow_recipe
from ..data import Dataset
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..params import nested, param
from ..progress import ProgressFn
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, Target, register
from .estimate import Work, model_key, training_work

METRIC_COLUMNS = ("auc", "advantage", "tpr@0.1%fpr", "tpr@1%fpr")


def describe_target(target: Target | None) -> str:
    """How a membership target was made: its label, or its architecture and the recipe
    fields that decide how much it overfits."""
    if target is None:
        return "no model"
    if target.label:
        return target.describe()  # the label, and the inference-time defense if any
    if target.source == "zoo" and target.recipe is not None:
        r = target.recipe
        size = f"{r.train_size:,}" if r.train_size else "all"
        return f"{target.arch}, {r.epochs} epochs, {size} training examples, wd {r.weight_decay:g}"
    return target.describe()


def check_shadow_arch(dataset: Dataset, arch: str | None, attack: MembershipInference) -> None:
    """The shadow models need an architecture that fits the data (shadow attacks only)."""
    if attack.attacks != "all":
        return
    if arch is None:
        raise ValidationError(
            "The shadow-model attacks need the architecture of the shadow models: the "
            "target's is unknown (an uploaded model), so choose the attacker's guess, or "
            "run the threshold attacks only."
        )
    archs = compatible_architectures(dataset.modality, dataset.input_shape)
    if arch not in archs:
        raise ValidationError(
            f"Shadow models of architecture {arch!r} do not fit {dataset.name}; choose one of "
            f"{', '.join(archs)}."
        )


def shadow_work(
    dataset: Dataset,
    cands: MembershipSplit,
    plan: Sequence[tuple[str, TrainRecipe]],
    shadow_models: int,
    seed: int,
) -> Work:
    """What :func:`~robustcore.attacks.inference.train_shadows` computes: each shadow
    model (one per plan entry) trained through the zoo on its half of the pool (nothing
    when the zoo holds it) and its forward pass over the candidates."""
    keep = shadow_keep(int(cands.pool_x.shape[0]), shadow_models, seed)
    n = int(cands.candidates.numel())
    work = Work()
    for k in range(shadow_models):
        ds = shadow_dataset(dataset, cands.pool_x, cands.pool_y, keep[k])
        for arch, recipe in plan:
            work = work + training_work(arch, ds, shadow_recipe(recipe), SHADOW_EXTRA)
            work = work + Work.of(arch, forward=n)
    return work


def _scores_table(result: MembershipResult) -> pd.DataFrame:
    cands = result.split
    index = np.concatenate([cands.member_index.numpy(), cands.nonmember_index.numpy()])
    df = pd.DataFrame(
        {
            "split": np.where(result.is_member, "train", "test"),
            "index": index,
            "label": cands.y.numpy(),
            "member": result.is_member,
        }
    )
    for key, values in result.scores.items():
        df[key] = values
    return df


class MembershipInferenceResult(ExperimentResult):
    """Per-attack metrics, ROC curves, scores and the target's member / non-member accuracy."""

    @property
    def target_description(self) -> str:
        return str(self._metric("target"))

    @property
    def per_side(self) -> int:
        """Members attacked (and as many non-members)."""
        return int(self._metric("per_side"))

    @property
    def n_target_train(self) -> int:
        return int(self._metric("n_target_train"))

    @property
    def member_accuracy(self) -> float:
        return float(self._metric("member_accuracy"))

    @property
    def nonmember_accuracy(self) -> float:
        return float(self._metric("nonmember_accuracy"))

    @property
    def gap(self) -> float:
        """The generalisation gap on the candidates (member − non-member accuracy)."""
        return self.member_accuracy - self.nonmember_accuracy

    @property
    def attacks(self) -> list[str]:
        """The attack keys, in the order they ran."""
        return list(self._metric("attacks", []))

    def attack_names(self) -> dict[str, str]:
        """Attack key → display name."""
        return {k: ATTACKS.get(k, k) for k in self.attacks}

    @property
    def best_low_fpr_attack(self) -> str:
        """The attack with the highest TPR at 0.1 % FPR (ties: the higher AUC)."""
        return str(self._metric("best_low_fpr_attack"))

    def metrics_table(self) -> pd.DataFrame:
        """One row per attack: ``attack``, ``name``, ``auc``, ``balanced_accuracy``,
        ``advantage``, ``tpr@0.1%fpr``, ``tpr@1%fpr``, candidate counts."""
        return self._table("metrics")

    def attack_metrics(self, attack: str) -> dict[str, Any]:
        """One attack's row of :meth:`metrics_table` as a dict."""
        table = self.metrics_table().set_index("attack")
        if attack not in table.index:
            raise ValidationError(f"No attack {attack!r} in this run; it has {self.attacks}.")
        return {"attack": attack, **table.loc[attack].to_dict()}

    def roc_curves(self) -> dict[str, pd.DataFrame]:
        """Display name → DataFrame(fpr, tpr), in the attacks' order."""
        roc = self._table("roc")
        names = self.attack_names()
        return {names.get(k, k): df for k, df in roc.groupby("attack", sort=False)}

    def scores(self) -> pd.DataFrame:
        """One row per candidate: split, index, label, ``member`` and one column per attack."""
        return self._table("scores")

    def shadows(self) -> dict[str, Any] | None:
        """count, train_size, heldout_accuracy, trained (now), seconds; ``None`` without."""
        if self._metric("shadow_models") is None:
            return None
        return {
            "count": int(self._metric("shadow_models")),
            "train_size": int(self._metric("shadow_train_size")),
            "heldout_accuracy": float(self._metric("shadow_heldout_acc")),
            "trained": int(self._metric("shadows_trained")),
            "seconds": float(self._metric("shadow_seconds")),
        }

    def summary(self) -> dict[str, Any]:
        best = self.attack_metrics(self.best_low_fpr_attack)
        return {
            "target": self.target_description,
            "per_side": self.per_side,
            "best_low_fpr_attack": self.best_low_fpr_attack,
            "best_tpr@0.1%fpr": float(best["tpr@0.1%fpr"]),
            "best_auc": float(best["auc"]),
            "loss_auc": float(self.attack_metrics("loss")["auc"]),
            "member_accuracy": self.member_accuracy,
            "nonmember_accuracy": self.nonmember_accuracy,
        }

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        cols = ["name", "auc", "balanced_accuracy", "advantage", "tpr@0.1%fpr", "tpr@1%fpr"]
        return {"attacks": self.metrics_table()[cols]}


@register
@dataclass(frozen=True)
class MembershipInferenceExperiment(Experiment):
    """Loss and confidence thresholds, Shokri's attack classifier and LiRA on one target."""

    name = "membership_inference"
    title = "Membership inference"
    page_target = "overfit"
    paper = MembershipInference.paper
    result_class = MembershipInferenceResult
    headline = "*.auc"

    attack: MembershipInference = nested(MembershipInference, label="Attacks")
    shadow_arch: str | None = param(
        None,
        choices=tuple(ARCHITECTURES),
        label="Architecture of the shadow models",
        help="The attacker's guess of the target's architecture; empty: the target's own "
        "(needed for an uploaded model of unknown make when shadow models are trained).",
    )

    def check_data(self, dataset: Dataset) -> None:
        if self.target is None:
            return  # the base spec says what is missing
        arch = self.shadow_arch or self.target.training[0]
        check_shadow_arch(dataset, arch, self.attack)

    def work(self, dataset: Dataset) -> Work:
        """The target's answers on the candidates and, for the shadow attacks, the shadow
        models (:func:`shadow_work`). The attack classifier and LiRA's statistics are
        small computations on those answers and are not counted."""
        arch, recipe = self.target.training if self.target is not None else (None, TrainRecipe())
        att = self.attack
        cands = membership_split(
            dataset, train_size=recipe.train_size, max_per_side=att.max_examples, seed=att.seed
        )
        work = Work.of(model_key(self.target), forward=cands.candidates.numel())
        arch = self.shadow_arch or arch
        if att.attacks == "all" and arch is not None:
            plan = [(arch, recipe)]
            work = work + shadow_work(dataset, cands, plan, att.shadow_models, att.seed)
        return work

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None and self.target is not None
        arch, recipe = self.target.training
        result = membership_inference(
            model,
            dataset,
            self.attack,
            arch=self.shadow_arch or arch,
            recipe=recipe,
            progress=progress,
        )
        table = result.metrics
        roc = pd.concat(
            [df.assign(attack=key) for key, df in result.roc.items()], ignore_index=True
        )
        best = table.sort_values(["tpr@0.1%fpr", "auc"], ascending=False).iloc[0]
        described = describe_target(self.target)
        metrics: dict[str, Any] = {
            "target": described,
            "per_side": result.split.per_side,
            "n_target_train": result.split.n_target_train,
            "member_accuracy": result.target["member_accuracy"],
            "nonmember_accuracy": result.target["nonmember_accuracy"],
            "attacks": list(result.scores),
            "best_low_fpr_attack": str(best["attack"]),
            "seconds": result.seconds,
        }
        for _, row in table.iterrows():
            for col in METRIC_COLUMNS:
                metrics[f"{row['attack']}.{col}"] = float(row[col])
        if result.shadows is not None:
            metrics.update(
                {
                    "shadow_models": result.shadows.count,
                    "shadow_train_size": result.shadows.train_size,
                    "shadow_heldout_acc": float(result.shadows.heldout_accuracy.mean()),
                    "shadows_trained": result.shadows.trained,
                    "shadow_seconds": result.shadows.seconds,
                }
            )
        return RunResult(
            metrics=metrics,
            tables={"metrics": table, "roc": roc, "scores": _scores_table(result)},
            label=f"Membership inference on {described}",
        )
