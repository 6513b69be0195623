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
    """Which labels are flipped, and to what."""

    name = "label_flip"
    title = "Label flipping"
    paper = "Biggio, Nelson & Laskov 2012; Xiao, Xiao & Eckert 2012"

    mode: str = param(
        "random",
        choices=("random", "targeted"),
        help="random: flipped labels go to a random other class; targeted: class A → B.",
    )
    rate: float = param(
        0.2,
        low=0.0,
        high=1.0,
        step=0.05,
        label="Flip rate",
        help="random: fraction of the whole training set flipped; targeted: fraction of "
        "class A relabelled B.",
    )
    source_class: int = param(
        7,
        low=0,
        high=9999,
        step=1,
        label="Class A",
        help="Targeted mode: the class whose labels are flipped.",
    )
    target_class: int = param(
        1, low=0, high=9999, step=1, label="Class B", help="Targeted mode: the label they get."
    )
    seed: int = param(0, low=0, high=2**31 - 1, step=1, help="Seed of which labels are flipped.")

    def check(self) -> None:
        if self.mode == "targeted" and self.source_class == self.target_class:
            raise ValidationError(
                f"Class A and class B must differ for targeted flipping (both are "
                f"{self.source_class})."
            )


def flip_labels(ds: Dataset, config: LabelFlip) -> PoisonedData:
    """Flip the labels of ``ds``'s training set as ``config`` says (inputs are untouched).

    Raises:
        ValidationError: a class is out of range, or the dataset has a single class.
    """
    if ds.num_classes < 2:
        raise ValidationError("Label flipping needs at least two classes.")
    gen = torch.Generator().manual_seed(config.seed)
    y = ds.y_train.clone()
    if config.mode == "targeted":
        check_class(config.source_class, ds, "Class A")
        check_class(config.target_class, ds, "Class B")
        pool = torch.nonzero(y == config.source_class).flatten()
    else:
        pool = torch.arange(ds.n_train)
    n = int(round(config.rate * pool.numel()))
    idx = torch.sort(pool[torch.randperm(pool.numel(), generator=gen)[:n]]).values
    if n:
        if config.mode == "targeted":
            y[idx] = config.target_class
        else:
            shift = torch.randint(1, ds.num_classes, (n,), generator=gen)
            y[idx] = (y[idx] + shift) % ds.num_classes
    description: dict[str, Any] = {"attack": "label_flip", "config": config.to_dict()}
    poisoned = derived_dataset(ds, "label_flip", y_train=y)
    return PoisonedData(poisoned, idx, "label_flip", description, clean=ds)
