"""Poisoning attacks: the attacker controls part of the training data.

* :mod:`.triggers` – backdoor triggers (pixel, patch, checkerboard, blended noise).
* :mod:`.badnets` – BadNets (Gu et al. 2017): triggered, relabelled training points.
* :mod:`.hidden_trigger` – hidden-trigger backdoor (Saha et al. 2020): clean-label poisons
  optimised within an L∞ ε to collide with triggered source images in feature space.
* :mod:`.label_flip` – random and targeted (A → B) label flipping.
* :mod:`.base` – the poisoned data (:class:`PoisonedData`) and :func:`train_poisoned`, which
  trains a victim on it through the model zoo.

The sweeps the pages run (poison rate, trigger size, ε, flip rate…) are experiments:
:mod:`robustcore.experiments.backdoors`, ``hidden_trigger``, ``label_flipping`` and
``poisoning_sanitization``.

Example::

    from robustcore.data import load
    from robustcore.models import TrainRecipe
    from robustcore.attacks.poisoning import (
        BadNets, Trigger, backdoor_metrics, poison_badnets, train_poisoned,
    )

    ds = load("mnist5k")
    poisoned = poison_badnets(ds, Trigger(), BadNets(), poison_rate=0.03, target_class=0)
    model = train_poisoned(poisoned, "small_cnn", TrainRecipe()).model
    backdoor_metrics(model, ds, Trigger(), target_class=0)   # clean_accuracy, attack_success
"""

from .badnets import BadNets, attack_labels, backdoor_metrics, poison_badnets
from .base import PoisonedData, train_poisoned
from .hidden_trigger import (
    HiddenTrigger,
    craft_poisons,
    features_dataset,
    head_recipe,
    poison_hidden_trigger,
    retrain_head,
)
from .label_flip import LabelFlip, flip_labels
from .triggers import Trigger, TriggerStamp, default_size

__all__ = [
    "BadNets",
    "HiddenTrigger",
    "LabelFlip",
    "PoisonedData",
    "Trigger",
    "TriggerStamp",
    "attack_labels",
    "backdoor_metrics",
    "craft_poisons",
    "default_size",
    "features_dataset",
    "flip_labels",
    "head_recipe",
    "poison_badnets",
    "poison_hidden_trigger",
    "retrain_head",
    "train_poisoned",
]
