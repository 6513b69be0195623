"""Label flipping (Biggio, Nelson & Laskov 2012; Xiao, Xiao & Eckert 2012).

The attacker cannot touch the inputs, only the labels of a fraction of the training set:

* ``random``: a fraction ``rate`` of the whole training set gets a label drawn uniformly
  from the *other* classes (untargeted: the model gets worse everywhere);
* ``targeted``: a fraction ``rate`` of class A is relabelled B (the model learns to
  confuse A with B, the rest of the classes barely move).

Measured: overall and per-class test accuracy of a model trained on the flipped labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...data.dataset import Dataset
from ...errors import ValidationError
from ...params import Configurable, param
from .base import PoisonedData, check_class, derived_dataset

__all__ = ["LabelFlip", "flip_labels"]


@dataclass(frozen=True)
class LabelFlip(Configurable):
    """Label flipping's own settings: random or targeted flips, and which labels are drawn.

    The flip rate and (targeted) classes A and B are the run's arguments
    (:func:`flip_labels`), so an experiment can sweep the rate.
    """

    name = "label_flip"
    title = "Label flipping"
    paper = "Biggio, Nelson & Laskov 2012; Xiao, Xiao & Eckert 2012"

    mode: str = param(
        "random",
        choices=("random", "targeted"),
        help="random: flipped labels go to a random other class; targeted: class A → B.",
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Seed of which labels are flipped.")


def flip_labels(
    ds: Dataset,
    config: LabelFlip,
    *,
    rate: float,
    source_class: int | None = None,
    target_class: int | None = None,
) -> PoisonedData:
    """Flip the labels of ``ds``'s training set (inputs are untouched).

    Args:
        ds: the clean dataset.
        config: random or targeted, and the seed.
        rate: random: the share of the whole training set flipped; targeted: the share of
            class A (``source_class``) relabelled B (``target_class``).
        source_class, target_class: classes A and B (targeted mode only).

    Raises:
        ValidationError: the rate is not a share, a class is missing, out of range or A
            equals B, or the dataset has a single class.
    """
    if ds.num_classes < 2:
        raise ValidationError("Label flipping needs at least two classes.")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValidationError(f"The flip rate is a share (0 to 1), got {rate}.")
    gen = torch.Generator().manual_seed(config.seed)
    y = ds.y_train.clone()
    description: dict[str, Any] = {
        "attack": "label_flip",
        "config": {"mode": config.mode, "rate": float(rate), "seed": config.seed},
    }
    if config.mode == "targeted":
        if source_class is None or target_class is None:
            raise ValidationError("Targeted flipping needs class A and class B.")
        check_class(source_class, ds, "Class A")
        check_class(target_class, ds, "Class B")
        if source_class == target_class:
            raise ValidationError(
                f"Class A and class B must differ for targeted flipping (both are {source_class})."
            )
        description["config"].update(source_class=int(source_class), target_class=int(target_class))
        pool = torch.nonzero(y == source_class).flatten()
    else:
        pool = torch.arange(ds.n_train)
    n = int(round(rate * pool.numel()))
    idx = torch.sort(pool[torch.randperm(pool.numel(), generator=gen)[:n]]).values
    if n:
        if config.mode == "targeted":
            y[idx] = int(target_class)
        else:
            shift = torch.randint(1, ds.num_classes, (n,), generator=gen)
            y[idx] = (y[idx] + shift) % ds.num_classes
    poisoned = derived_dataset(ds, "label_flip", y_train=y)
    return PoisonedData(poisoned, idx, "label_flip", description, clean=ds)
