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

from ..data import Dataset
from ..errors import ValidationError
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures, default_architecture
from .base import Target

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
