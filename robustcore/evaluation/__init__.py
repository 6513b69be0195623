"""Metrics, sweeps and sanity checks on attack and defense results."""

from .metrics import confusion_matrix, per_class_accuracy

__all__ = ["confusion_matrix", "per_class_accuracy"]
