"""Poisoning experiments as runs: BadNets sweeps, hidden trigger, label flipping, sanitization.

Each experiment has a ``<name>_spec(...)`` (everything that changes the result: dataset and
its fingerprint, the victim's architecture and recipe, every attack/defense parameter, the
sweep values and the seed) and a ``<name>_job(...)`` returning the job function for
:meth:`~robustcore.runs.JobRunner.submit`. Victim models are trained through the model zoo,
so a sweep that shares models with an earlier one only trains the new ones.

Example::

    from robustcore.runs import get_runner
    from robustcore.runs.poisoning_job import backdoor_job, backdoor_spec

    args = (ds, "small_cnn", TrainRecipe(), Trigger(), BadNets(), "poison_rate", [0, 0.01])
    record = get_runner().submit(backdoor_spec(*args), backdoor_job(*args)).wait().result
    record.table("sweep")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..attacks.poisoning import (
    SWEEPS,
    BadNets,
    HiddenTrigger,
    LabelFlip,
    Trigger,
    backdoor_metrics,
    badnets_sweep,
    hidden_trigger_sweep,
    label_flip_sweep,
    poison_badnets,
    train_poisoned,
    triggered_examples,
)
from ..attacks.poisoning.experiments import DEFAULT_EPS, DEFAULT_FLIP_RATES
from ..data import Dataset
from ..defenses.sanitize import (
    ActivationClustering,
    SpectralSignatures,
    project_2d,
    sanitize_and_retrain,
)
from ..errors import ValidationError
from ..models import TrainRecipe, train_entry
from ..models.training import predict_logits
from .runner import JobContext
from .store import RunResult

__all__ = [
    "DETECTORS",
    "backdoor_job",
    "backdoor_spec",
    "hidden_trigger_job",
    "hidden_trigger_spec",
    "label_flip_job",
    "label_flip_spec",
    "sanitize_job",
    "sanitize_spec",
]

JobFn = Callable[[JobContext], RunResult]
N_GALLERY = 8
DETECTORS: dict[str, type] = {
    "activation_clustering": ActivationClustering,
    "spectral_signatures": SpectralSignatures,
}


def _base(kind: str, ds: Dataset, arch: str, recipe: TrainRecipe) -> dict[str, Any]:
    return {
        "kind": kind,
        "dataset": ds.name,
        "fingerprint": ds.fingerprint(),
        "arch": arch,
        "recipe": recipe.to_dict(),
        "seed": recipe.seed,
    }


def _images(ds: Dataset, x: torch.Tensor) -> np.ndarray | None:
    return x.detach().cpu().numpy().astype(np.float32) if ds.modality == "image" else None


def _values(values: Sequence[float] | None, default: Sequence[float]) -> list[float]:
    return sorted(float(v) for v in (default if values is None else values))


# -- BadNets sweep ---------------------------------------------------------------------------


def backdoor_spec(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    config: BadNets,
    sweep: str = "poison_rate",
    values: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The spec of a BadNets sweep."""
    if sweep not in SWEEPS:
        raise ValidationError(f"Unknown sweep {sweep!r}: expected one of {', '.join(SWEEPS)}.")
    return {
        **_base("poisoning.badnets", ds, arch, recipe),
        "trigger": trigger.to_dict(),
        "attack": config.to_dict(),
        "sweep": sweep,
        "values": _values(values, SWEEPS[sweep].defaults),
    }


def _headline(table: pd.DataFrame, column: str, wanted: float) -> int:
    """Row of ``table`` whose ``column`` equals ``wanted``, else the last row."""
    hits = np.flatnonzero(np.isclose(table[column].to_numpy(dtype=float), wanted))
    return int(hits[0]) if hits.size else len(table) - 1


def backdoor_job(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    config: BadNets,
    sweep: str = "poison_rate",
    values: Sequence[float] | None = None,
) -> JobFn:
    """Job: one BadNets-poisoned model per swept value; metrics, table and a gallery."""
    vals = _values(values, SWEEPS[sweep].defaults)

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "preparing")
        res = badnets_sweep(
            ds,
            arch,
            recipe,
            trigger,
            config,
            sweep=sweep,
            values=vals,
            progress=lambda f, m: ctx.progress(0.95 * f, m),
        )
        ctx.progress(0.96, "triggered test images")
        own = {
            "poison_rate": config.poison_rate,
            "trigger_size": trigger.size,
            "blend_alpha": trigger.alpha,
            "noise_std": recipe.noise_std,
        }[sweep]
        i = _headline(res.table, sweep, own)
        row = res.table.iloc[i]
        x, gallery = triggered_examples(
            res.entries[i].model, ds, res.triggers[i], target_class=config.target_class
        )
        artifacts: dict[str, Any] = {}
        img = _images(ds, x)
        if img is not None:
            artifacts["gallery_images"] = img
        metrics = {
            "sweep": sweep,
            "headline_value": float(row[sweep]),
            "clean_model_accuracy": res.clean["clean_accuracy"],
            "clean_model_attack_success": res.clean["attack_success"],
            "clean_accuracy": float(row["clean_accuracy"]),
            "attack_success": float(row["attack_success"]),
            "n_poison": int(row["n_poison"]),
            "mode": config.mode,
            "target_class": config.target_class,
            "arch": arch,
        }
        ctx.progress(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"sweep": res.table, "gallery": gallery},
            artifacts=artifacts,
            label=f"BadNets {SWEEPS[sweep].label.lower()} sweep · {arch} on {ds.name}",
        )

    return job


# -- Hidden trigger --------------------------------------------------------------------------


def hidden_trigger_spec(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    config: HiddenTrigger,
    eps_values: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The spec of a hidden-trigger ε sweep."""
    return {
        **_base("poisoning.hidden_trigger", ds, arch, recipe),
        "trigger": trigger.to_dict(),
        "attack": config.to_dict(),
        "eps_values": _values(eps_values, DEFAULT_EPS),
    }


def hidden_trigger_job(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    config: HiddenTrigger,
    eps_values: Sequence[float] | None = None,
) -> JobFn:
    """Job: hidden-trigger poisons for each ε, the victim retrained, metrics and examples."""
    vals = _values(eps_values, DEFAULT_EPS)

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "preparing")
        res = hidden_trigger_sweep(
            ds,
            arch,
            recipe,
            trigger,
            config,
            eps_values=vals,
            progress=lambda f, m: ctx.progress(0.95 * f, m),
        )
        i = _headline(res.table, "eps", config.eps)
        row = res.table.iloc[i]
        poisoned = res.poisoned[i]
        k = min(N_GALLERY, poisoned.n_poison)
        idx = poisoned.poison_idx[:k]
        artifacts: dict[str, Any] = {}
        src = torch.nonzero(ds.y_test == config.source_class).flatten()[:k]
        x_src = trigger.build(ds.input_shape, ds.bounds).apply(ds.x_test[src])
        probs = torch.softmax(predict_logits(res.models[i], x_src), dim=1)
        conf, pred = probs.max(1)
        names = [str(c) for c in ds.class_names]
        gallery = pd.DataFrame(
            {
                "index": src.numpy(),
                "true": [names[c] for c in ds.y_test[src].tolist()],
                "predicted": [names[c] for c in pred.tolist()],
                "confidence": conf.numpy(),
            }
        )
        if ds.modality == "image":
            artifacts["poison_originals"] = _images(ds, ds.x_train[idx])
            artifacts["poison_images"] = _images(ds, poisoned.dataset.x_train[idx])
            artifacts["gallery_images"] = _images(ds, x_src)
        metrics = {
            "headline_eps": float(row["eps"]),
            "clean_accuracy": float(row["clean_accuracy"]),
            "attack_success": float(row["attack_success"]),
            "baseline_attack_success": res.baseline["attack_success"],
            "baseline_clean_accuracy": res.baseline["clean_accuracy"],
            "n_poison": int(row["n_poison"]),
            "setting": config.setting,
            "source_class": config.source_class,
            "target_class": config.target_class,
            "arch": arch,
        }
        ctx.progress(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"sweep": res.table, "gallery": gallery},
            artifacts=artifacts,
            label=f"Hidden trigger ε sweep ({config.setting}) · {arch} on {ds.name}",
        )

    return job


# -- Label flipping --------------------------------------------------------------------------


def label_flip_spec(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    config: LabelFlip,
    rates: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The spec of a label-flipping sweep (``config.rate`` is replaced by each rate)."""
    attack = config.to_dict()
    attack.pop("rate")
    if config.mode == "random":
        attack.pop("source_class")
        attack.pop("target_class")
    return {
        **_base("poisoning.label_flip", ds, arch, recipe),
        "attack": attack,
        "rates": _values(rates, DEFAULT_FLIP_RATES),
    }


def _confusion_frame(cm: np.ndarray, ds: Dataset) -> pd.DataFrame:
    names = [str(c) for c in ds.class_names]
    return pd.DataFrame(cm, index=names, columns=names)


def label_flip_job(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    config: LabelFlip,
    rates: Sequence[float] | None = None,
) -> JobFn:
    """Job: one model per flip rate; accuracy, per-class accuracy, confusion before/after."""
    vals = _values(rates, DEFAULT_FLIP_RATES)

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "preparing")
        res = label_flip_sweep(
            ds, arch, recipe, config, rates=vals, progress=lambda f, m: ctx.progress(0.97 * f, m)
        )
        first, last = res.table.iloc[0], res.table.iloc[-1]
        metrics = {
            "mode": config.mode,
            "lowest_rate": float(first["rate"]),
            "highest_rate": float(last["rate"]),
            "accuracy_lowest": float(first["accuracy"]),
            "accuracy_highest": float(last["accuracy"]),
            "arch": arch,
        }
        ctx.progress(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={
                "sweep": res.table,
                "per_class": res.per_class,
                "confusion_before": _confusion_frame(res.confusions[0], ds),
                "confusion_after": _confusion_frame(res.confusions[-1], ds),
            },
            label=f"Label flipping ({config.mode}) · {arch} on {ds.name}",
        )

    return job


# -- Sanitization ----------------------------------------------------------------------------


def sanitize_spec(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    attack: BadNets,
    detector: ActivationClustering | SpectralSignatures,
) -> dict[str, Any]:
    """The spec of a BadNets → detect → retrain experiment."""
    return {
        **_base("defense.sanitize", ds, arch, recipe),
        "trigger": trigger.to_dict(),
        "attack": attack.to_dict(),
        "detector": {"name": detector.name, **detector.to_dict()},
    }


def sanitize_job(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    attack: BadNets,
    detector: ActivationClustering | SpectralSignatures,
) -> JobFn:
    """Job: poison with BadNets, train, detect poisons in the activations, retrain, measure."""

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "poisoning the training set")
        poisoned = poison_badnets(ds, trigger, attack)
        if poisoned.n_poison == 0:
            raise ValidationError("The poison rate gives no poisoned point: raise it.")
        entry = train_poisoned(
            poisoned,
            arch,
            recipe,
            progress=lambda f, m: ctx.progress(0.45 * f, f"training on poisoned data · {m}"),
        )

        def evaluate(model: torch.nn.Module) -> dict[str, float]:
            return backdoor_metrics(
                model, ds, trigger, target_class=attack.target_class, mode=attack.mode
            )

        before = evaluate(entry.model)
        clean = train_entry(arch, ds, recipe)  # for reference; usually already in the zoo
        clean_m = evaluate(clean.model)
        out = sanitize_and_retrain(
            poisoned,
            entry.model,
            arch,
            recipe,
            detector,
            evaluate=evaluate,
            progress=lambda f, m: ctx.progress(0.45 + 0.5 * f, m),
        )
        ctx.progress(0.96, "projecting activations")
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
        summary = pd.DataFrame(
            [
                {"model": "clean data", "n_train": ds.n_train, **clean_m},
                {"model": "poisoned data", "n_train": ds.n_train, **before},
                {"model": "after sanitization", "n_train": out["cleaned"].n_train, **after},
            ]
        )
        per_class = found.per_class.copy()
        per_class["poisons"] = [int(truth[labels == c].sum()) for c in per_class["class"].tolist()]
        per_class["poisons_found"] = [
            int((truth & found.flagged)[labels == c].sum()) for c in per_class["class"].tolist()
        ]
        metrics = {
            **{k: v for k, v in scores.items()},
            "detector": detector.name,
            "poison_rate": attack.poison_rate,
            "mode": attack.mode,
            "target_class": attack.target_class,
            "before_clean_accuracy": before["clean_accuracy"],
            "before_attack_success": before["attack_success"],
            "after_clean_accuracy": after["clean_accuracy"],
            "after_attack_success": after["attack_success"],
            "clean_model_accuracy": clean_m["clean_accuracy"],
            "n_train_after": out["cleaned"].n_train,
            "arch": arch,
        }
        ctx.progress(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"summary": summary, "per_class": per_class, "projection": projection},
            label=f"Sanitization ({detector.title}) of BadNets · {arch} on {ds.name}",
        )

    return job
