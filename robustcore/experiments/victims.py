"""Models trained "like" the target: the architecture and recipe of the poisoned victims.

The poisoning experiments (``backdoors``, ``hidden_trigger``, ``label_flipping``,
``poisoning_sanitization``) never attack the current model itself: they train new models on
poisoned data, from scratch, the way the current model was trained
(:attr:`~robustcore.experiments.base.Target.training`), so that the clean reference is the
current model and comes from the zoo at once. An uploaded model has no recipe (the default
one is used) and may have no built-in architecture: the experiments' ``victim_arch``
parameter then names the architecture to train with (it may also give a zoo target's
victims another one). On the command line it is ``--victim-arch``; ``--arch`` names the
target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..data import Dataset
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures, default_architecture
from .base import Target
from .estimate import Work, training_work

ARCH_CHOICES: tuple[str, ...] = tuple(ARCHITECTURES)
ARCH_LABEL = "Architecture of the trained models"
ARCH_HELP = (
    "Built-in architecture every poisoned model is trained with, from scratch; empty: the "
    "current model's (an uploaded model of your own architecture needs one)."
)


def victim_training(
    target: Target | None, arch: str | None, dataset: Dataset
) -> tuple[str, TrainRecipe]:
    """The architecture and recipe the victims are trained with.

    ``arch`` when given, else the target's architecture (for an experiment without a
    target: the dataset's default one); the target's recipe (the default recipe for an
    uploaded model or no target).

    Raises:
        ValidationError: no architecture is known (an upload of an own architecture), or it
            does not fit ``dataset``.
    """
    own, recipe = target.training if target is not None else (None, TrainRecipe())
    if target is None and arch is None:
        own = default_architecture(dataset)
    chosen = arch or own
    archs = compatible_architectures(dataset.modality, dataset.input_shape)
    if chosen is None:
        raise ValidationError(
            "The current model was uploaded and its architecture is not a built-in one: "
            f"choose the architecture to train the poisoned models with ({', '.join(archs)})."
        )
    if chosen not in archs:
        raise ValidationError(
            f"{chosen!r} does not fit {dataset.name}: train the poisoned models with one of "
            f"{', '.join(archs)}."
        )
    return chosen, recipe


# -- what training the victims costs (for the experiments' time estimates) -------------------

_POISONED: dict[str, tuple[str, str, dict[str, Any]]] = {}
"""Poisoned sets made for an estimate: (clean fingerprint, attack, settings) → their name,
fingerprint and description, all a zoo key needs (the tensors are not kept)."""


def poisoned_training(
    arch: str,
    dataset: Dataset,
    recipe: TrainRecipe,
    poison: Callable[..., Any],
    **settings: Any,
) -> Work:
    """What :func:`~robustcore.attacks.poisoning.train_poisoned` of ``arch`` by ``recipe`` on
    ``poison(dataset, **settings)`` costs: nothing when the zoo holds that model. The
    poisoned set is made once per process to learn its zoo key (its fingerprint)."""
    memo = f"{dataset.fingerprint()} {poison.__name__} {sorted(settings.items())!r}"
    if memo not in _POISONED:
        made = poison(dataset, **settings)
        _POISONED[memo] = (made.dataset.name, made.dataset.fingerprint(), made.description)
    name, fingerprint, description = _POISONED[memo]
    keyed = dataclasses.replace(dataset, name=name, _fingerprint=fingerprint)
    return training_work(arch, keyed, recipe, {"poisoning": description})


def metrics_work(
    arch: str,
    dataset: Dataset,
    *,
    target_class: int,
    mode: str = "all_to_one",
    source_class: int | None = None,
) -> Work:
    """What :func:`~robustcore.attacks.poisoning.backdoor_metrics` computes: the model's
    predictions on the test set, and on its triggered images of the counted classes."""
    y = dataset.y_test
    keep = y == y if mode == "all_to_all" else y != target_class
    if source_class is not None:
        keep = keep & (y == source_class)
    return Work.of(arch, forward=dataset.n_test + int(keep.sum()))


def fit_work(arch: str, dataset: Dataset, recipe: TrainRecipe) -> Work:
    """What training ``arch`` by ``recipe`` on ``dataset``'s training set costs whether or not
    the zoo holds it: for models whose zoo key is only known once the run has computed their
    data (crafted poisons, a sanitized training set). ``training_work``'s count, asked about
    a dataset key no zoo holds."""
    never_stored = dataclasses.replace(dataset, name=f"{dataset.name}+estimate", _fingerprint="-")
    return training_work(arch, never_stored, recipe)
