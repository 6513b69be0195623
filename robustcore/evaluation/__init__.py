"""Metrics, sweeps and sanity checks on attack and defense results."""

from .metrics import confusion_matrix, per_class_accuracy
from .queries import success_vs_queries, success_within
from .sanity import (
    SanityCheck,
    check_converged,
    check_iterative_beats_single_step,
    check_monotone,
    check_reaches_chance,
    checks_table,
)
from .sweeps import RobustAccuracy, attack_in_batches, epsilon_sweep, robust_accuracy

__all__ = [
    "RobustAccuracy",
    "SanityCheck",
    "attack_in_batches",
    "check_converged",
    "check_iterative_beats_single_step",
    "check_monotone",
    "check_reaches_chance",
    "checks_table",
    "confusion_matrix",
    "epsilon_sweep",
    "per_class_accuracy",
    "robust_accuracy",
    "success_vs_queries",
    "success_within",
]
