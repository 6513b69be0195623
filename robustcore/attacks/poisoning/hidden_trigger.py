"""Hidden-trigger backdoor (Saha, Subramanya & Pirsiavash 2020, "Hidden Trigger Backdoor
Attacks", AAAI).

A *clean-label* backdoor: the poisons are genuine target-class images that keep their
correct label; each is perturbed within an L∞ ball of radius ε so that, in the penultimate
features of a model the attacker has (here: the clean model), it lands next to a
*source*-class image carrying the trigger. A model trained on the poisoned set learns
"features like these ⇒ target", so at test time a source image with the trigger is
classified as the target, although no training image ever showed the trigger.

Paper setting (``setting="head"``): the victim fine-tunes only the last layer on top of a
frozen feature extractor, and the attacker knows that extractor. ``setting="full"``
retrains the whole network from scratch on the poisoned data instead; the features then
move during training and the attack is expected to weaken (the paper's black-box case).

Poison optimisation (Algorithm 1 of the paper, as projected sign-gradient steps): every
step pairs each poison with its nearest triggered source image in feature space (from a
random batch), lowers ``‖f(z) − f(x̃_s)‖²``, and projects ``z`` back into
``‖z − z₀‖∞ ≤ ε`` and the data bounds. All poisons are optimised at once as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...data.dataset import Dataset
from ...device import get_device
from ...errors import ValidationError
from ...models.features import penultimate, split_model
from ...models.training import TrainRecipe
from ...models.zoo import ZooEntry, train_entry
from ...params import Configurable, param
from ...progress import ProgressFn
from .base import PoisonedData, check_class, derived_dataset
from .triggers import Trigger

__all__ = [
    "HiddenTrigger",
    "craft_poisons",
    "features_dataset",
    "head_recipe",
    "poison_hidden_trigger",
    "retrain_head",
]


@dataclass(frozen=True)
class HiddenTrigger(Configurable):
    """The hidden-trigger backdoor's own settings: how many poisons, how they are optimised,
    and how the victim retrains.

    The source and target classes and the budget ε are the run's arguments
    (:func:`poison_hidden_trigger`), so an experiment can sweep ε.
    """

    name = "hidden_trigger"
    title = "Hidden-trigger backdoor"
    paper = "Saha, Subramanya & Pirsiavash 2020, Hidden Trigger Backdoor Attacks (AAAI)"

    poison_fraction: float = param(
        1.0,
        low=0.01,
        high=1.0,
        step=0.05,
        label="Poisoned share of the target class",
        help="Fraction of the target class's training images replaced by poisons (they "
        "keep their correct label, so only target-class images can be poisons).",
    )
    steps: int = param(30, low=1, high=5000, step=10, help="Optimisation steps of the poisons.")
    step_size: float = param(
        0.1,
        low=0.001,
        high=1.0,
        step=0.01,
        label="Step size (× ε)",
        help="Size of each sign-gradient step, as a fraction of ε.",
    )
    setting: str = param(
        "head",
        choices=("head", "full"),
        help="head: the paper's setting, the clean feature extractor is frozen and only the "
        "last layer is retrained on clean + poisoned data; full: the whole network is "
        "retrained from scratch.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Seed of the choice of poisons.")


def craft_poisons(
    body: nn.Module,
    x_target: torch.Tensor,
    x_source_triggered: torch.Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float,
    bounds: tuple[torch.Tensor, torch.Tensor],
    seed: int = 0,
    batch: int = 256,
    device: torch.device | None = None,
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Perturb ``x_target`` within L∞ ``eps`` so its features approach triggered sources.

    Args:
        body: the feature extractor (frozen; used in eval mode).
        x_target: the target-class images to turn into poisons (N, ...).
        x_source_triggered: source-class images with the trigger (M, ...).
        eps: L∞ radius around each original image.
        steps: number of projected sign-gradient steps.
        step_size: step as a fraction of ``eps``.
        bounds: the data bounds every poison stays inside.
        seed: seed of the random source batches.
        batch: triggered sources drawn per step to pair the poisons with.
        device: compute device (default :func:`robustcore.device.get_device`).
        progress: ``progress(fraction, message)``; may raise to cancel.

    Returns:
        The poisons (on the CPU) and a summary: mean feature distance to the nearest
        triggered source before and after, and the largest L∞ change.
    """
    if eps < 0:
        raise ValidationError(f"ε must be at least 0, got {eps}.")
    device = device or get_device()
    body = body.to(device).eval()
    x0 = x_target.to(device)
    lo, hi = (b.to(device) for b in bounds)
    with torch.inference_mode():
        src_feats = torch.cat(
            [
                body(x_source_triggered[i : i + 512].to(device))
                for i in range(0, len(x_source_triggered), 512)
            ]
        )
    src_feats = src_feats.clone()
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def nearest_dist(feats: torch.Tensor) -> torch.Tensor:
        return torch.cdist(feats, src_feats).min(dim=1).values

    with torch.inference_mode():
        before = float(nearest_dist(body(x0)).mean())
    z = x0.clone()
    alpha = step_size * eps
    k = min(batch, src_feats.shape[0])
    for step in range(steps):
        pick = torch.randperm(src_feats.shape[0], generator=gen)[:k].to(device)
        cand = src_feats[pick]
        z.requires_grad_(True)
        feats = body(z)
        with torch.no_grad():
            nn_idx = torch.cdist(feats, cand).argmin(dim=1)
        loss = ((feats - cand[nn_idx]) ** 2).sum()
        (grad,) = torch.autograd.grad(loss, z)
        with torch.no_grad():
            z = z - alpha * grad.sign()
            z = torch.minimum(torch.maximum(z, x0 - eps), x0 + eps)
            z = torch.minimum(torch.maximum(z, lo), hi)
        if progress is not None and (step % 10 == 9 or step == steps - 1):
            progress((step + 1) / steps, f"crafting poisons: step {step + 1}/{steps}")
    z = z.detach()
    with torch.inference_mode():
        after = float(nearest_dist(body(z)).mean())
    summary = {
        "feature_distance_before": before,
        "feature_distance_after": after,
        "max_linf": float((z - x0).abs().amax()) if z.numel() else 0.0,
    }
    return z.cpu(), summary


def poison_hidden_trigger(
    ds: Dataset,
    clean_model: nn.Module,
    trigger: Trigger,
    config: HiddenTrigger,
    *,
    source_class: int,
    target_class: int,
    eps: float,
    progress: ProgressFn | None = None,
) -> PoisonedData:
    """Replace ``poison_fraction`` of ``target_class``'s training images by hidden-trigger
    poisons, each within L∞ ``eps`` of its original, that collide in feature space with
    ``source_class`` images carrying ``trigger``.

    The poisons keep their (correct) target label. ``clean_model`` provides the feature
    extractor (its penultimate layer, see :mod:`robustcore.models.features`). The summary
    of the optimisation is in ``description["crafting"]``.

    Raises:
        ValidationError: a class is out of range, the classes are the same, ε is outside
            0…1, or the share gives no poison.
    """
    check_class(source_class, ds, "Source class")
    check_class(target_class, ds, "Target class")
    if source_class == target_class:
        raise ValidationError(f"Source and target class must differ (both are {source_class}).")
    if not 0.0 <= float(eps) <= 1.0:
        raise ValidationError(f"ε must lie between 0 and 1, got {eps}.")
    body, _ = split_model(clean_model)
    target_idx = torch.nonzero(ds.y_train == target_class).flatten()
    source_idx = torch.nonzero(ds.y_train == source_class).flatten()
    n = int(round(config.poison_fraction * target_idx.numel()))
    if n < 1:
        raise ValidationError(
            f"A poisoned share of {config.poison_fraction:g} of the target class "
            f"({target_idx.numel()} training images) gives no poison; raise it."
        )
    if source_idx.numel() == 0:
        raise ValidationError(f"The source class {source_class} has no training images.")
    gen = torch.Generator().manual_seed(config.seed)
    idx = torch.sort(target_idx[torch.randperm(target_idx.numel(), generator=gen)[:n]]).values
    stamp = trigger.build(ds.input_shape, ds.bounds)
    x_src = stamp.apply(ds.x_train[source_idx])
    poisons, summary = craft_poisons(
        body,
        ds.x_train[idx],
        x_src,
        eps=eps,
        steps=config.steps,
        step_size=config.step_size,
        bounds=ds.bounds,
        seed=config.seed,
        progress=progress,
    )
    x = ds.x_train.clone()
    x[idx] = poisons
    description: dict[str, Any] = {
        "attack": "hidden_trigger",
        # The settings as one record (the model zoo keys victims on it).
        "config": {
            "source_class": int(source_class),
            "target_class": int(target_class),
            "eps": float(eps),
            **config.to_dict(),
        },
        "trigger": trigger.to_dict(),
    }
    poisoned = derived_dataset(ds, "hidden_trigger", x_train=x)
    out = PoisonedData(poisoned, idx, "hidden_trigger", description, clean=ds)
    out.description["crafting"] = summary
    return out


def features_dataset(ds: Dataset, model: nn.Module, *, suffix: str = "features") -> Dataset:
    """``ds`` mapped through ``model``'s penultimate layer, as a tabular dataset.

    Used to retrain only the last layer (the paper's setting) through the model zoo: a
    ``logreg`` trained on these features *is* a new last layer, and the features' content
    hash keys it on both the extractor and the (poisoned) data.
    """
    tr = penultimate(model, ds.x_train)
    te = penultimate(model, ds.x_test)
    lo = torch.minimum(tr.min(0).values, te.min(0).values)
    hi = torch.maximum(tr.max(0).values, te.max(0).values)
    return Dataset(
        name=f"{ds.name}+{suffix}",
        x_train=tr,
        y_train=ds.y_train.clone(),
        x_test=te,
        y_test=ds.y_test.clone(),
        num_classes=ds.num_classes,
        class_names=list(ds.class_names),
        modality="tabular",
        bounds=(lo, hi),
        description=f"Penultimate features of {ds.name}",
    )


def head_recipe(recipe: TrainRecipe) -> TrainRecipe:
    """How a new last layer is trained on frozen features: 20 epochs of Adam, lr 0.01."""
    return TrainRecipe(epochs=20, lr=1e-2, batch_size=128, seed=recipe.seed)


def retrain_head(
    clean: ZooEntry,
    ds: Dataset,
    recipe: TrainRecipe,
    *,
    extra: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> nn.Module:
    """The paper's victim: ``clean``'s feature extractor, frozen, with a new last layer
    trained on ``ds`` (clean or poisoned) through the zoo (a ``logreg`` on the features,
    :func:`head_recipe`); ``extra`` describes the poisoning for the zoo key."""
    body, _ = split_model(clean.model)
    head = train_entry(
        "logreg",
        features_dataset(ds, clean.model),
        head_recipe(recipe),
        extra={"head_of": clean.key, **(extra or {})},
        progress=progress,
    )
    return nn.Sequential(body, head.model).eval()
