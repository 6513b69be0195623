"""BadNets backdoor (Gu, Dolan-Gavitt & Garg 2017, "BadNets: Identifying Vulnerabilities in
the Machine Learning Model Supply Chain").

The attacker stamps a trigger on a few training images and relabels them: to one target
class (*all-to-one*) or, as in the paper's second MNIST attack, to the next class
(*all-to-all*: label ``i`` becomes ``i + 1 mod C``). A network trained on this data learns
the task *and* the rule "trigger ⇒ target"; on clean inputs it behaves normally, so its
clean accuracy does not give the backdoor away.

Measured (see :func:`backdoor_metrics`): clean accuracy on the untouched test set, and the
attack success rate: the fraction of triggered test images (of classes other than the
target) that the model assigns to the attacker's label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...data.dataset import Dataset
from ...errors import ValidationError
from ...params import Configurable, param
from .base import PoisonedData, check_class, derived_dataset, predictions
from .triggers import Trigger

__all__ = ["BadNets", "attack_labels", "backdoor_metrics", "poison_badnets"]


@dataclass(frozen=True)
class BadNets(Configurable):
    """BadNets' own settings: which label triggered points get, and which points are drawn.

    How many points are poisoned (the poison rate) and the attacker's class are the run's
    arguments (:func:`poison_badnets`), so an experiment can sweep them.
    """

    name = "badnets"
    title = "BadNets backdoor"
    paper = "Gu, Dolan-Gavitt & Garg 2017, BadNets (arXiv:1708.06733)"

    mode: str = param(
        "all_to_one",
        choices=("all_to_one", "all_to_all"),
        help="all_to_one: every triggered input goes to the target class; all_to_all: "
        "class i goes to class i+1 (the paper's two MNIST attacks).",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Seed of the choice of poisons.")


def attack_labels(
    y: torch.Tensor, config: BadNets, num_classes: int, target_class: int = 0
) -> torch.Tensor:
    """The labels the attacker wants for inputs of true class ``y``."""
    if config.mode == "all_to_all":
        return (y + 1) % num_classes
    return torch.full_like(y, target_class)


def poison_badnets(
    ds: Dataset, trigger: Trigger, config: BadNets, *, poison_rate: float, target_class: int = 0
) -> PoisonedData:
    """Stamp ``trigger`` on ``round(poison_rate × n_train)`` training points and relabel them.

    Points are drawn (seeded by ``config.seed``) from the classes other than
    ``target_class`` (all_to_one) or from every class (all_to_all); the poisons replace the
    points they were made from, so the training set keeps its size. The test set is not
    touched.

    Raises:
        ValidationError: the target class is not a class of ``ds``, the rate is not a share
            (0 to 1), or there are not enough points to poison.
    """
    if not 0.0 <= float(poison_rate) <= 1.0:
        raise ValidationError(
            f"The poison rate is a share of the training set (0 to 1), got {poison_rate}."
        )
    if config.mode == "all_to_one":
        check_class(target_class, ds, "Target class")
        candidates = torch.nonzero(ds.y_train != target_class).flatten()
    else:
        candidates = torch.arange(ds.n_train)
    n = int(round(poison_rate * ds.n_train))
    if n > candidates.numel():
        raise ValidationError(
            f"Poison rate {poison_rate:g} asks for {n} poisons but only "
            f"{candidates.numel()} training points can be poisoned; lower the rate."
        )
    gen = torch.Generator().manual_seed(config.seed)
    idx = candidates[torch.randperm(candidates.numel(), generator=gen)[:n]]
    idx = torch.sort(idx).values
    x = ds.x_train.clone()
    y = ds.y_train.clone()
    if n:
        stamp = trigger.build(ds.input_shape, ds.bounds)
        x[idx] = stamp.apply(x[idx])
        y[idx] = attack_labels(y[idx], config, ds.num_classes, target_class)
    description: dict[str, Any] = {
        "attack": "badnets",
        # The settings as one record (the model zoo keys poisoned models on it).
        "config": {
            "mode": config.mode,
            "target_class": int(target_class),
            "poison_rate": float(poison_rate),
            "seed": config.seed,
        },
        "trigger": trigger.to_dict(),
    }
    poisoned = derived_dataset(ds, "badnets", x_train=x, y_train=y)
    return PoisonedData(poisoned, idx, "badnets", description, clean=ds)


def backdoor_metrics(
    model: nn.Module,
    ds: Dataset,
    trigger: Trigger,
    *,
    target_class: int | None = None,
    source_class: int | None = None,
    mode: str = "all_to_one",
) -> dict[str, float]:
    """Clean accuracy and attack success rate of ``model`` on ``ds``'s test set.

    Args:
        model: the (possibly backdoored) classifier.
        ds: the dataset; only its clean test set is used.
        trigger: the trigger stamped on test inputs.
        target_class: the attacker's class (all_to_one).
        source_class: only triggered inputs of this class count (hidden-trigger attacks
            are source-specific); ``None`` counts every class except the target.
        mode: ``all_to_one`` or ``all_to_all`` (success means predicting ``y + 1 mod C``).

    Returns:
        ``clean_accuracy``; ``attack_success`` (fraction of triggered test inputs classified
        as the attacker's label); ``triggered_accuracy`` (fraction still classified as their
        true class); ``n_attack`` (how many triggered inputs were measured).
    """
    y = ds.y_test.cpu()
    pred = predictions(model, ds.x_test)
    clean_acc = float((pred == y).float().mean()) if y.numel() else float("nan")
    if mode == "all_to_all":
        keep = torch.ones_like(y, dtype=torch.bool)
        wanted = (y + 1) % ds.num_classes
    else:
        if target_class is None:
            raise ValidationError("backdoor_metrics needs target_class for all_to_one.")
        check_class(target_class, ds, "Target class")
        keep = y != target_class
        wanted = torch.full_like(y, target_class)
    if source_class is not None:
        check_class(source_class, ds, "Source class")
        keep &= y == source_class
    idx = torch.nonzero(keep).flatten()
    if idx.numel() == 0:
        return {
            "clean_accuracy": clean_acc,
            "attack_success": float("nan"),
            "triggered_accuracy": float("nan"),
            "n_attack": 0,
        }
    x_trig = trigger.build(ds.input_shape, ds.bounds).apply(ds.x_test[idx])
    pred_trig = predictions(model, x_trig)
    return {
        "clean_accuracy": clean_acc,
        "attack_success": float((pred_trig == wanted[idx]).float().mean()),
        "triggered_accuracy": float((pred_trig == y[idx]).float().mean()),
        "n_attack": int(idx.numel()),
    }
