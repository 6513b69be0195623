"""What every poisoning attack returns, the measurements shared by all of them, and how a
victim is trained on poisoned data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...data.dataset import Dataset
from ...errors import ValidationError
from ...models.training import TrainRecipe, predict_logits
from ...models.zoo import ZooEntry, train_entry
from ...progress import ProgressFn

__all__ = [
    "PoisonedData",
    "check_class",
    "derived_dataset",
    "predictions",
    "train_poisoned",
]


@dataclass
class PoisonedData:
    """A poisoned training set and the ground truth of which points were poisoned.

    Attributes:
        dataset: the poisoned dataset. Its training set holds the poisons in place of the
            points they replaced (same size as the clean one); its test set is the clean
            test set. Its fingerprint differs from the clean data's, so the model zoo never
            serves a clean model for it (nor the reverse).
        poison_idx: sorted indices (int64) of the poisoned training points.
        attack: the attack's name (``badnets``, ``hidden_trigger``, ``label_flip``).
        description: JSON-able settings of the attack (its parameters, the trigger, the
            seed); passed as ``extra`` to the zoo so a model's card says how it was made.
        clean: the dataset before poisoning.
    """

    dataset: Dataset
    poison_idx: torch.Tensor
    attack: str
    description: dict[str, Any]
    clean: Dataset = field(repr=False)

    @property
    def n_poison(self) -> int:
        return int(self.poison_idx.numel())

    @property
    def is_poison(self) -> torch.Tensor:
        """Boolean mask over the training set: True for poisoned points."""
        mask = torch.zeros(self.dataset.n_train, dtype=torch.bool)
        mask[self.poison_idx] = True
        return mask

    @property
    def rate(self) -> float:
        """Fraction of the training set that is poisoned."""
        return self.n_poison / max(1, self.dataset.n_train)


def check_class(value: int, ds: Dataset, what: str) -> int:
    """Validate a class index against ``ds`` and return it."""
    if not 0 <= int(value) < ds.num_classes:
        raise ValidationError(
            f"{what} must be a class of {ds.name}: 0 to {ds.num_classes - 1}, got {value}."
        )
    return int(value)


def derived_dataset(ds: Dataset, suffix: str, **changes: Any) -> Dataset:
    """A copy of ``ds`` with new tensors and a name ``<name>+<suffix>`` (fingerprint reset)."""
    return dataclasses.replace(ds, name=f"{ds.name}+{suffix}", _fingerprint=None, **changes)


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predicted classes of ``model`` for ``x`` (CPU int64)."""
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    return predict_logits(model, x).argmax(1)


def train_poisoned(
    poisoned: PoisonedData,
    arch: str,
    recipe: TrainRecipe,
    *,
    progress: ProgressFn | None = None,
) -> ZooEntry:
    """Train ``arch`` from scratch on the poisoned data with ``recipe`` (or load it from the
    zoo: the poisoned data's fingerprint and the attack's description are in the key)."""
    return train_entry(
        arch,
        poisoned.dataset,
        recipe,
        extra={"poisoning": poisoned.description},
        progress=progress,
    )
