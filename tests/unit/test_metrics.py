"""Confusion matrix and per-class accuracy (robustcore.evaluation.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustcore.errors import ValidationError
from robustcore.evaluation.metrics import confusion_matrix, per_class_accuracy


def test_confusion_matrix_counts():
    y_true = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    expected = np.array([[2, 1, 0], [0, 1, 1], [1, 0, 3]])
    assert isinstance(cm, np.ndarray)
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == len(y_true)
    np.testing.assert_array_equal(cm.sum(axis=1), [3, 2, 4])


def test_confusion_matrix_accepts_float_and_unused_classes():
    cm = confusion_matrix(torch.tensor([1.0, 1.0]), torch.tensor([1, 3]), 5)
    assert cm.shape == (5, 5)
    assert cm[1, 1] == 1 and cm[1, 3] == 1 and cm.sum() == 2


def test_confusion_matrix_empty():
    cm = confusion_matrix(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 4)
    np.testing.assert_array_equal(cm, np.zeros((4, 4)))


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [([0, 1], [0, 3]), ([0, 3], [0, 1]), ([0, -1], [0, 1])],
)
def test_confusion_matrix_rejects_out_of_range_labels(y_true, y_pred):
    # An out-of-range label used to be counted silently in another cell (idx = t * n + p).
    with pytest.raises(ValidationError, match="labels outside 0..2"):
        confusion_matrix(torch.tensor(y_true), torch.tensor(y_pred), 3)


def test_confusion_matrix_rejects_shape_mismatch():
    with pytest.raises(ValidationError, match="same shape"):
        confusion_matrix(torch.tensor([0, 1, 2]), torch.tensor([0]), 3)


def test_per_class_accuracy():
    cm = np.array([[2, 1, 0], [0, 1, 1], [1, 0, 3]])
    np.testing.assert_allclose(per_class_accuracy(cm), [2 / 3, 1 / 2, 3 / 4])


def test_per_class_accuracy_class_without_samples_is_nan():
    y_true = torch.tensor([0, 0, 2, 2])
    y_pred = torch.tensor([0, 1, 2, 1])
    cm = confusion_matrix(y_true, y_pred, 3)
    acc = per_class_accuracy(cm)
    assert acc[0] == 0.5 and acc[2] == 0.5
    assert np.isnan(acc[1])


def test_per_class_accuracy_all_empty_no_warning():
    with np.errstate(all="raise"):
        acc = per_class_accuracy(np.zeros((2, 2), dtype=np.int64))
    assert np.isnan(acc).all()
