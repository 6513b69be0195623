"""Plain metrics on predictions: confusion matrix, per-class accuracy."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ValidationError


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> np.ndarray:
    """Counts ``cm[i, j]`` of samples of true class ``i`` predicted as ``j``."""
    y_true = y_true.detach().cpu().long()
    y_pred = y_pred.detach().cpu().long()
    if y_true.shape != y_pred.shape:
        raise ValidationError(
            f"y_true and y_pred must have the same shape, got {tuple(y_true.shape)} "
            f"and {tuple(y_pred.shape)}."
        )
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            # Out-of-range labels would silently land in another cell of the flat count.
            raise ValidationError(
                f"{name} holds labels outside 0..{num_classes - 1}: "
                f"min {int(y.min())}, max {int(y.max())}."
            )
    idx = y_true * num_classes + y_pred
    counts = torch.bincount(idx, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).numpy()


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix (NaN for a class with no samples)."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def fooled_rate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor
) -> float:
    """Share of the inputs the model classifies right that ``x_adv`` makes it get wrong
    (an untargeted attack's success rate; 0 when it has none right)."""
    with torch.inference_mode():
        right = model(x).argmax(1) == y
        fooled = model(x_adv).argmax(1) != y
    base = int(right.sum())
    return float((right & fooled).sum()) / base if base else 0.0
