"""Membership-inference runs behind the "Membership inference" page.

Two experiments:

* :func:`membership_spec` / :func:`membership_job`: every membership attack against one
  target (the session's model, or a deliberately overfit model trained here), with ROC
  curves, metrics per attack and the candidates' scores (for histograms).
* :func:`overfit_sweep_spec` / :func:`overfit_sweep_job`: overfitting as a knob (epochs,
  training-set size or weight decay) against membership advantage.

A target is described by :class:`Target`: how it was made (architecture and recipe, so
shadow models can copy it) and, for the session's model, its run key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..attacks.inference import (
    ATTACKS,
    MembershipInference,
    membership_inference,
    overfitting_sweep,
)
from ..data import Dataset
from ..defenses.postprocess import NoDefense, OutputDefense
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..models.zoo import train_entry
from .runner import JobContext
from .store import RunResult


@dataclass(frozen=True)
class Target:
    """The model under attack.

    Attributes:
        source: ``"overfit"`` (trained by the job from ``arch`` and ``recipe`` through the
            zoo) or ``"session"`` (the model the user chose in the sidebar, passed in).
        arch, recipe: how the target was (or will be) trained. For an uploaded session
            model they are the attacker's guess used for shadow models, and the members are
            assumed to be the whole training split.
        run_key: the session model's run key (identifies it in the spec).
        label: a short description for tables and titles.
        model: the session model itself (not part of the spec).
    """

    source: str
    arch: str
    recipe: TrainRecipe
    run_key: str | None = None
    label: str = ""
    model: nn.Module | None = None

    def __post_init__(self) -> None:
        if self.source not in ("overfit", "session"):
            raise ValidationError(
                f"Target source must be 'overfit' or 'session', got {self.source!r}."
            )
        if self.arch not in ARCHITECTURES:
            raise ValidationError(
                f"Unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}."
            )
        if self.source == "session" and (self.model is None or not self.run_key):
            raise ValidationError("A session target needs its model and its run key.")

    def spec(self) -> dict[str, Any]:
        """What identifies the target in a run spec."""
        out: dict[str, Any] = {
            "source": self.source,
            "arch": self.arch,
            "recipe": self.recipe.to_dict(),
        }
        if self.source == "session":
            out["run_key"] = self.run_key
        return out

    def resolve(self, dataset: Dataset, progress: Callable[[float, str], None]) -> nn.Module:
        """The target model: the session's, or the overfit one trained through the zoo."""
        if self.source == "session":
            assert self.model is not None
            return self.model
        archs = compatible_architectures(dataset.modality, dataset.input_shape)
        if self.arch not in archs:
            raise ValidationError(
                f"{self.arch!r} does not fit {dataset.name}; choose one of {', '.join(archs)}."
            )
        return train_entry(self.arch, dataset, self.recipe, progress=progress).model

    def describe(self) -> str:
        if self.label:
            return self.label
        r = self.recipe
        size = f"{r.train_size:,}" if r.train_size else "all"
        return f"{self.arch}, {r.epochs} epochs, {size} training examples, wd {r.weight_decay:g}"


def defense_spec(defense: OutputDefense | None) -> dict[str, Any]:
    d = defense if defense is not None else NoDefense()
    return {"name": d.name, "params": d.to_dict()}


def membership_spec(
    dataset: Dataset,
    target: Target,
    config: MembershipInference,
    defense: OutputDefense | None = None,
) -> dict[str, Any]:
    """The spec of a membership-inference run."""
    return {
        "kind": "membership",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "target": target.spec(),
        "attack": config.to_dict(),
        "defense": defense_spec(defense),
        "seed": config.seed,
    }


def _scores_table(result) -> pd.DataFrame:
    split = result.split
    index = np.concatenate([split.member_index.numpy(), split.nonmember_index.numpy()])
    df = pd.DataFrame(
        {
            "split": np.where(result.is_member, "train", "test"),
            "index": index,
            "label": split.y.numpy(),
            "member": result.is_member,
        }
    )
    for key, values in result.scores.items():
        df[key] = values
    return df


def membership_job(
    dataset: Dataset,
    target: Target,
    config: MembershipInference,
    defense: OutputDefense | None = None,
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit`: attack ``target`` and report."""

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "preparing the target")
        model = target.resolve(dataset, lambda f, m: ctx.progress(0.1 * f, f"target: {m}"))
        result = membership_inference(
            model,
            dataset,
            config,
            arch=target.arch,
            recipe=target.recipe,
            defense=defense,
            progress=lambda f, m: ctx.progress(0.1 + 0.88 * f, m),
        )
        metrics_table = result.metrics
        roc = pd.concat(
            [df.assign(attack=key) for key, df in result.roc.items()], ignore_index=True
        )
        best = metrics_table.sort_values(["tpr@0.1%fpr", "auc"], ascending=False).iloc[0]
        metrics: dict[str, Any] = {
            "target": target.describe(),
            "per_side": result.split.per_side,
            "n_target_train": result.split.n_target_train,
            "member_accuracy": result.target["member_accuracy"],
            "nonmember_accuracy": result.target["nonmember_accuracy"],
            "attacks": list(result.scores),
            "best_low_fpr_attack": str(best["attack"]),
            "seconds": result.seconds,
        }
        for _, row in metrics_table.iterrows():
            for col in ("auc", "advantage", "tpr@0.1%fpr", "tpr@1%fpr"):
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
        ctx.progress(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"metrics": metrics_table, "roc": roc, "scores": _scores_table(result)},
            label=f"Membership inference on {target.describe()}",
        )

    return job


def overfit_sweep_spec(
    dataset: Dataset,
    arch: str,
    recipe: TrainRecipe,
    knob: str,
    values: list[float | int],
    *,
    max_per_side: int,
    seed: int,
) -> dict[str, Any]:
    """The spec of an overfitting sweep."""
    return {
        "kind": "membership.overfit_sweep",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "arch": arch,
        "recipe": recipe.to_dict(),
        "knob": knob,
        "values": list(values),
        "max_per_side": int(max_per_side),
        "seed": int(seed),
    }


def overfit_sweep_job(
    dataset: Dataset,
    arch: str,
    recipe: TrainRecipe,
    knob: str,
    values: list[float | int],
    *,
    max_per_side: int,
    seed: int,
) -> Callable[[JobContext], RunResult]:
    """A job function: one target per knob value, its gap and its leakage."""

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "training the first target")
        table = overfitting_sweep(
            arch,
            dataset,
            recipe,
            knob,
            values,
            max_per_side=max_per_side,
            seed=seed,
            progress=ctx.progress,
        )
        ctx.progress(1.0, "done")
        top = table.loc[table["advantage"].idxmax()]
        return RunResult(
            metrics={
                "knob": knob,
                "max_advantage": float(top["advantage"]),
                "at_value": float(top["value"]),
                "attack": ATTACKS["loss"],
            },
            tables={"sweep": table},
            label=f"Overfitting sweep ({knob}) on {arch}",
        )

    return job
