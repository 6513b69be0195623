"""Poisoning attacks: the attacker controls part of the training data.

* :mod:`.triggers` – backdoor triggers (pixel, patch, checkerboard, blended noise).
* :mod:`.badnets` – BadNets (Gu et al. 2017): triggered, relabelled training points.
* :mod:`.hidden_trigger` – hidden-trigger backdoor (Saha et al. 2020): clean-label poisons
  optimised within an L∞ ε to collide with triggered source images in feature space.
* :mod:`.label_flip` – random and targeted (A → B) label flipping.
* :mod:`.experiments` – poison → train (through the model zoo) → measure, and sweeps.

Example::

    from robustcore.data import load
    from robustcore.models import TrainRecipe
    from robustcore.attacks.poisoning import BadNets, Trigger, badnets_sweep

    ds = load("mnist5k")
    sweep = badnets_sweep(ds, "small_cnn", TrainRecipe(), Trigger(), BadNets(),
                          values=[0.0, 0.01, 0.03])
    sweep.table[["poison_rate", "clean_accuracy", "attack_success"]]
"""

from .badnets import BadNets, attack_labels, backdoor_metrics, poison_badnets
from .base import PoisonedData
from .experiments import (
    SWEEPS,
    BackdoorSweep,
    HiddenTriggerSweep,
    LabelFlipSweep,
    badnets_sweep,
    head_recipe,
    hidden_trigger_sweep,
    label_flip_sweep,
    train_poisoned,
    triggered_examples,
)
from .hidden_trigger import HiddenTrigger, craft_poisons, features_dataset, poison_hidden_trigger
from .label_flip import LabelFlip, flip_labels
from .triggers import Trigger, TriggerStamp

__all__ = [
    "SWEEPS",
    "BackdoorSweep",
    "BadNets",
    "HiddenTrigger",
    "HiddenTriggerSweep",
    "LabelFlip",
    "LabelFlipSweep",
    "PoisonedData",
    "Trigger",
    "TriggerStamp",
    "attack_labels",
    "backdoor_metrics",
    "badnets_sweep",
    "craft_poisons",
    "features_dataset",
    "flip_labels",
    "head_recipe",
    "hidden_trigger_sweep",
    "label_flip_sweep",
    "poison_badnets",
    "poison_hidden_trigger",
    "train_poisoned",
    "triggered_examples",
]
