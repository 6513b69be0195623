"""The *overfitting control*: the deliberately overfit model the privacy pages attack by default.

Membership leaks through overfitting. The Membership inference, Overfitting sweep and
Postprocessing & ensembles pages therefore start on a model that memorises (few training
examples, many epochs: :data:`OVERFIT_RECIPE`) of a fast architecture (:func:`fast_arch`),
trained through the model zoo, rather than on the sidebar's well-generalising model. Those
experiments say so with ``page_target = "overfit"`` (see
:meth:`~robustcore.experiments.base.Experiment.default_target`).
"""

from __future__ import annotations

from typing import Any

from ..data import Dataset
from ..models import TrainRecipe, compatible_architectures

OVERFIT_RECIPE: dict[str, Any] = {"epochs": 40, "train_size": 500}
"""A recipe that memorises: 500 training examples, 40 epochs."""


def fast_arch(dataset: Dataset) -> str:
    """An MLP when it fits the data (it trains fast), else the first architecture that fits."""
    archs = compatible_architectures(dataset.modality, dataset.input_shape)
    return "mlp" if "mlp" in archs else archs[0]


def overfit_target(dataset: Dataset):
    """The overfitting control's default model: :func:`fast_arch` trained by
    :data:`OVERFIT_RECIPE` through the zoo."""
    from .base import Target

    return Target.zoo(fast_arch(dataset), TrainRecipe.from_dict(OVERFIT_RECIPE))
