"""Poison → train → measure, for one setting or a sweep; every model goes through the zoo.

Victim models are trained from scratch on the poisoned data with the same architecture and
recipe as the clean model (``train_entry(arch, poisoned.dataset, recipe, extra=...)``), so
each one is stored in the model zoo under the poisoned data's fingerprint and a repeated
experiment only re-measures. A sweep value that means "no poison" (poison rate 0, flip rate
0) is served by the clean model itself.

Sweeps (``SWEEPS``):

* ``poison_rate``: how many training points BadNets poisons;
* ``trigger_size``: the side of the trigger square;
* ``blend_alpha``: the noise level of a blended random-noise trigger (Chen et al. 2017);
* ``noise_std``: Gaussian input noise the *defender* adds while training
  (``TrainRecipe.noise_std``), i.e. whether noise augmentation washes out a trigger;
* for the hidden trigger, ``eps``: the L∞ budget of the poisons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...data.dataset import Dataset
from ...errors import ValidationError
from ...evaluation.metrics import confusion_matrix, per_class_accuracy
from ...models import TrainRecipe, train_entry
from ...models.features import split_model
from ...models.training import predict_logits
from ...models.zoo import ZooEntry
from .badnets import BadNets, backdoor_metrics, poison_badnets
from .base import PoisonedData, predictions
from .hidden_trigger import HiddenTrigger, features_dataset, poison_hidden_trigger
from .label_flip import LabelFlip, flip_labels
from .triggers import Trigger

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_FLIP_RATES",
    "DEFAULT_TARGETED_RATES",
    "SWEEPS",
    "BackdoorSweep",
    "HiddenTriggerSweep",
    "LabelFlipSweep",
    "badnets_sweep",
    "head_recipe",
    "hidden_trigger_sweep",
    "label_flip_sweep",
    "train_poisoned",
    "triggered_examples",
]

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class SweepInfo:
    label: str
    help: str
    defaults: tuple[float, ...]
    choices: tuple[float, ...]
    is_int: bool = False


SWEEPS: dict[str, SweepInfo] = {
    "poison_rate": SweepInfo(
        "Poison rate",
        "Share of the training set that carries the trigger and the attacker's label.",
        (0.0, 0.01, 0.03),
        (0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2),
    ),
    "trigger_size": SweepInfo(
        "Trigger size (px)",
        "Side of the trigger square (the pattern stays the one designed above).",
        (1, 2, 4, 6),
        (1, 2, 3, 4, 5, 6, 8, 10),
        is_int=True,
    ),
    "blend_alpha": SweepInfo(
        "Trigger noise level α",
        "A blended random-noise trigger over the whole image, mixed in with weight α.",
        (0.02, 0.05, 0.1, 0.2),
        (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5),
    ),
    "noise_std": SweepInfo(
        "Training input-noise σ",
        "Gaussian noise the defender adds to every training input (noise augmentation).",
        (0.0, 0.1, 0.3, 0.5),
        (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8),
    ),
}

DEFAULT_EPS: tuple[float, ...] = (0.1, 0.2, 0.3)
DEFAULT_FLIP_RATES: tuple[float, ...] = (0.0, 0.4, 0.8)
DEFAULT_TARGETED_RATES: tuple[float, ...] = (0.0, 0.5, 0.75)


def _part(progress: ProgressFn | None, i: int, n: int, label: str) -> ProgressFn | None:
    """A progress callback for unit ``i`` of ``n``, prefixing messages with ``label``."""
    if progress is None:
        return None
    return lambda f, m: progress((i + max(0.0, min(1.0, f))) / n, f"{label} · {m}" if m else label)


def head_recipe(recipe: TrainRecipe) -> TrainRecipe:
    """How a new last layer is trained on frozen features: 20 epochs of Adam, lr 0.01."""
    return TrainRecipe(epochs=20, lr=1e-2, batch_size=128, seed=recipe.seed)


def train_poisoned(
    poisoned: PoisonedData,
    arch: str,
    recipe: TrainRecipe,
    *,
    progress: ProgressFn | None = None,
) -> ZooEntry:
    """Train ``arch`` from scratch on the poisoned data (or load it from the zoo)."""
    return train_entry(
        arch,
        poisoned.dataset,
        recipe,
        extra={"poisoning": poisoned.description},
        progress=progress,
    )


def _check_values(values: Sequence[float], what: str) -> list[float]:
    vals = [float(v) for v in values]
    if not vals:
        raise ValidationError(f"Pick at least one {what} value to sweep over.")
    if len(set(vals)) != len(vals):
        raise ValidationError(f"The {what} values must be distinct, got {vals}.")
    return sorted(vals)


@dataclass
class BackdoorSweep:
    """Result of :func:`badnets_sweep`.

    Attributes:
        table: one row per swept value: the value, clean_accuracy, attack_success,
            triggered_accuracy, clean_drop (clean model's accuracy minus this one's),
            n_poison, train_seconds, from_cache.
        clean: clean accuracy and attack success (the trigger on an unpoisoned model).
        entries: the zoo entry of each swept value (in the table's order).
        triggers / configs: the trigger and BadNets settings of each value.
    """

    sweep: str
    table: pd.DataFrame
    clean: dict[str, float]
    entries: list[ZooEntry] = field(repr=False)
    triggers: list[Trigger] = field(repr=False)
    configs: list[BadNets] = field(repr=False)


def _variant(
    sweep: str, value: float, trigger: Trigger, config: BadNets, recipe: TrainRecipe
) -> tuple[Trigger, BadNets, TrainRecipe]:
    if sweep == "poison_rate":
        return trigger, config.replace(poison_rate=value), recipe
    if sweep == "trigger_size":
        return trigger.replace(size=int(value)), config, recipe
    if sweep == "blend_alpha":
        return trigger.replace(pattern="blend", alpha=value), config, recipe
    if sweep == "noise_std":
        return trigger, config, recipe.replace(noise_std=value)
    raise ValidationError(f"Unknown sweep {sweep!r}: expected one of {', '.join(SWEEPS)}.")


def badnets_sweep(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    config: BadNets,
    *,
    sweep: str = "poison_rate",
    values: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
) -> BackdoorSweep:
    """Train one BadNets-poisoned model per value of ``sweep`` and measure each.

    Args:
        ds: the clean dataset.
        arch, recipe: the victim's architecture and training recipe.
        trigger, config: the base attack; ``sweep`` changes one of its settings.
        sweep: a key of :data:`SWEEPS`.
        values: the values (default: the sweep's defaults).
        progress: ``progress(fraction, message)`` per model; may raise to cancel.
    """
    if sweep not in SWEEPS:
        raise ValidationError(f"Unknown sweep {sweep!r}: expected one of {', '.join(SWEEPS)}.")
    info = SWEEPS[sweep]
    vals = _check_values(values if values is not None else info.defaults, info.label)
    n = len(vals) + 1
    clean = train_entry(arch, ds, recipe, progress=_part(progress, 0, n, "clean model"))
    clean_m = backdoor_metrics(
        clean.model, ds, trigger, target_class=config.target_class, mode=config.mode
    )
    rows, entries, triggers, configs = [], [], [], []
    for i, v in enumerate(vals, start=1):
        t, c, r = _variant(sweep, v, trigger, config, recipe)
        label = f"model {i}/{len(vals)} ({info.label} {v:g})"
        if c.poison_rate == 0:
            entry = train_entry(arch, ds, r, progress=_part(progress, i, n, label))
            n_poison = 0
        else:
            poisoned = poison_badnets(ds, t, c)
            entry = train_poisoned(poisoned, arch, r, progress=_part(progress, i, n, label))
            n_poison = poisoned.n_poison
        m = backdoor_metrics(entry.model, ds, t, target_class=c.target_class, mode=c.mode)
        rows.append(
            {
                sweep: int(v) if info.is_int else v,
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
        triggers.append(t)
        configs.append(c)
    return BackdoorSweep(sweep, pd.DataFrame(rows), clean_m, entries, triggers, configs)


@dataclass
class HiddenTriggerSweep:
    """Result of :func:`hidden_trigger_sweep`.

    Attributes:
        table: one row per ε: clean_accuracy, attack_success, triggered_accuracy,
            baseline_attack_success (the same trigger on the victim trained without
            poisons), feature distances before/after crafting, n_poison, seconds.
        baseline: metrics of the victim trained the same way on clean data.
        poisoned: the poisoned data of each ε (in the table's order).
        models: the victim model of each ε.
    """

    table: pd.DataFrame
    baseline: dict[str, float]
    poisoned: list[PoisonedData] = field(repr=False)
    models: list[nn.Module] = field(repr=False)


def _head_model(
    clean: ZooEntry, ds: Dataset, recipe: TrainRecipe, extra: dict[str, Any], progress
) -> nn.Module:
    body, _ = split_model(clean.model)
    head = train_entry(
        "logreg",
        features_dataset(ds, clean.model),
        head_recipe(recipe),
        extra={"head_of": clean.key, **extra},
        progress=progress,
    )
    return nn.Sequential(body, head.model).eval()


def hidden_trigger_sweep(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    trigger: Trigger,
    config: HiddenTrigger,
    *,
    eps_values: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
) -> HiddenTriggerSweep:
    """Craft hidden-trigger poisons for each ε, train the victim, measure.

    The attacker's feature extractor is the clean model ``train_entry(arch, ds, recipe)``.
    With ``config.setting == "head"`` the victim is that extractor, frozen, with a new last
    layer trained on the poisoned set (:func:`head_recipe`); with ``"full"`` it is ``arch``
    retrained from scratch with ``recipe``. The baseline is the same victim trained on
    clean data.
    """
    vals = _check_values(eps_values if eps_values is not None else [config.eps], "ε")
    if any(v < 0 or v > 1 for v in vals):
        raise ValidationError(f"ε values must lie between 0 and 1, got {vals}.")
    n = 2 * len(vals) + 1
    clean = train_entry(arch, ds, recipe, progress=_part(progress, 0, n, "clean model"))
    metric_kw = {"target_class": config.target_class, "source_class": config.source_class}
    if config.setting == "head":
        base_model = _head_model(clean, ds, recipe, {}, None)
    else:
        base_model = clean.model
    baseline = backdoor_metrics(base_model, ds, trigger, **metric_kw)
    rows, all_poisoned, models = [], [], []
    for i, eps in enumerate(vals):
        label = f"ε = {eps:g} ({i + 1}/{len(vals)})"
        poisoned = poison_hidden_trigger(
            ds,
            clean.model,
            trigger,
            config.replace(eps=eps),
            progress=_part(progress, 1 + 2 * i, n, label),
        )
        part = _part(progress, 2 + 2 * i, n, f"{label} · training the victim")
        if config.setting == "head":
            model = _head_model(
                clean, poisoned.dataset, recipe, {"poisoning": poisoned.description}, part
            )
            seconds = None
        else:
            entry = train_poisoned(poisoned, arch, recipe, progress=part)
            model = entry.model
            seconds = float(entry.metrics.get("train_seconds", 0.0))
        m = backdoor_metrics(model, ds, trigger, **metric_kw)
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


@dataclass
class LabelFlipSweep:
    """Result of :func:`label_flip_sweep`.

    Attributes:
        table: one row per flip rate: accuracy, n_flipped, train_seconds, from_cache, and
            (targeted mode) accuracy of class A and share of class A predicted as B.
        per_class: long table (rate, class, accuracy).
        confusions: the test confusion matrix of each rate (in the table's order).
    """

    table: pd.DataFrame
    per_class: pd.DataFrame
    confusions: list[np.ndarray] = field(repr=False)


def label_flip_sweep(
    ds: Dataset,
    arch: str,
    recipe: TrainRecipe,
    config: LabelFlip,
    *,
    rates: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
) -> LabelFlipSweep:
    """Train one model per flip rate (rate 0 is the clean model) and measure accuracy."""
    vals = _check_values(rates if rates is not None else DEFAULT_FLIP_RATES, "flip rate")
    if any(v < 0 or v > 1 for v in vals):
        raise ValidationError(f"Flip rates must lie between 0 and 1, got {vals}.")
    names = [str(c) for c in ds.class_names]
    rows, per_class, confusions = [], [], []
    y = ds.y_test.cpu()
    for i, rate in enumerate(vals):
        part = _part(progress, i, len(vals), f"model {i + 1}/{len(vals)} (flip rate {rate:g})")
        if rate == 0:
            entry = train_entry(arch, ds, recipe, progress=part)
            n_flipped = 0
        else:
            poisoned = flip_labels(ds, config.replace(rate=rate))
            entry = train_poisoned(poisoned, arch, recipe, progress=part)
            n_flipped = poisoned.n_poison
        pred = predictions(entry.model, ds.x_test)
        cm = confusion_matrix(y, pred, ds.num_classes)
        acc_c = per_class_accuracy(cm)
        row: dict[str, Any] = {
            "rate": rate,
            "accuracy": float((pred == y).float().mean()),
            "n_flipped": n_flipped,
            "train_seconds": float(entry.metrics.get("train_seconds", 0.0)),
            "from_cache": bool(entry.from_cache),
        }
        if config.mode == "targeted":
            a, b = config.source_class, config.target_class
            row["class_a_accuracy"] = float(acc_c[a])
            row["a_predicted_as_b"] = float(cm[a, b] / max(1, cm[a].sum()))
        rows.append(row)
        per_class += [
            {"rate": rate, "class": names[c], "accuracy": float(acc_c[c])}
            for c in range(ds.num_classes)
        ]
        confusions.append(cm)
    return LabelFlipSweep(pd.DataFrame(rows), pd.DataFrame(per_class), confusions)


def triggered_examples(
    model: nn.Module, ds: Dataset, trigger: Trigger, *, target_class: int, k: int = 8
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
