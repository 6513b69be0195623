"""The "train or load a model" experiment behind the Home page and ``python -m robustcore
train``: the target is trained through the model zoo (or is the uploaded model) and the run
stores what the Home page shows about it: clean accuracy, training curves, the confusion
matrix, per-class accuracy and sample predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import Dataset
from ..evaluation.metrics import confusion_matrix, per_class_accuracy
from ..models import predict_logits, train_entry
from ..progress import ProgressFn
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, model_key

N_SAMPLES = 16


def sample_indices(
    pred: torch.Tensor, y: torch.Tensor, conf: torch.Tensor, k: int = N_SAMPLES
) -> torch.Tensor:
    """Test indices worth looking at: up to ``k // 2`` of the most confident mistakes, then
    the first correctly classified examples, ``k`` in all (in test-set order)."""
    k = min(k, int(y.shape[0]))
    wrong = torch.nonzero(pred != y).flatten()
    wrong = wrong[torch.argsort(conf[wrong], descending=True)][: k // 2]
    right = torch.nonzero(pred == y).flatten()[: k - wrong.numel()]
    return torch.sort(torch.cat([wrong, right])).values


def model_report(model: nn.Module, dataset: Dataset) -> RunResult:
    """Clean accuracy, confusion matrix, per-class accuracy and sample predictions."""
    logits = predict_logits(model, dataset.x_test)
    probs = torch.softmax(logits, dim=1)
    conf, pred = probs.max(dim=1)
    y = dataset.y_test.cpu()
    cm = confusion_matrix(y, pred, dataset.num_classes)
    names = [str(c) for c in dataset.class_names]
    confusion = pd.DataFrame(cm, index=names, columns=names)
    per_class = pd.DataFrame(
        {"class": names, "accuracy": per_class_accuracy(cm), "support": cm.sum(axis=1)}
    )
    idx = sample_indices(pred, y, conf)
    samples = pd.DataFrame(
        {
            "index": idx.numpy(),
            "true": [names[i] for i in y[idx].tolist()],
            "predicted": [names[i] for i in pred[idx].tolist()],
            "confidence": conf[idx].numpy(),
            "correct": (pred[idx] == y[idx]).numpy(),
        }
    )
    artifacts: dict[str, Any] = {}
    if dataset.modality == "image":
        artifacts["sample_images"] = dataset.x_test[idx].cpu().numpy().astype(np.float32)
    return RunResult(
        metrics={
            "clean_accuracy": float((pred == y).float().mean().item()),
            "n_test": dataset.n_test,
        },
        tables={"confusion": confusion, "per_class": per_class, "samples": samples},
        artifacts=artifacts,
    )


class TrainResult(ExperimentResult):
    """What the Home page shows about the current model."""

    @property
    def clean_accuracy(self) -> float:
        return float(self._metric("clean_accuracy"))

    @property
    def n_test(self) -> int:
        return int(self._metric("n_test"))

    @property
    def train_accuracy(self) -> float | None:
        return self._metric("train_accuracy")

    @property
    def train_seconds(self) -> float | None:
        return self._metric("train_seconds")

    @property
    def zoo_key(self) -> str | None:
        """The model's key in the zoo (``None`` for an uploaded model)."""
        return self._metric("zoo_key")

    @property
    def method_label(self) -> str | None:
        """How the model was trained, in a few words (``None`` for an uploaded model)."""
        return self._metric("method_label")

    @property
    def training_inputs(self) -> str:
        """What the training accuracy was measured on (``TrainRecipe.training_inputs``)."""
        return str(self._metric("training_inputs", "the training set") or "the training set")

    @property
    def watchdog(self) -> str:
        """The overfitting watchdog's decision, if it stopped training ("" otherwise)."""
        return str(self._metric("watchdog", "") or "")

    def history(self) -> pd.DataFrame | None:
        """Loss and accuracy per epoch (training and test set), or ``None`` for uploads."""
        return self._table("history") if self._has_table("history") else None

    def confusion(self) -> pd.DataFrame:
        return self._table("confusion")

    def per_class(self) -> pd.DataFrame:
        return self._table("per_class")

    def samples(self) -> pd.DataFrame:
        return self._table("samples")

    def sample_images(self) -> np.ndarray | None:
        return self._artifact("sample_images") if self._has_artifact("sample_images") else None


@register
@dataclass(frozen=True)
class Train(Experiment):
    """Train the target through the zoo (or take the uploaded one) and report on it."""

    name = "train"
    title = "Train / load model"
    paper = ""
    result_class = TrainResult
    headline = "clean_accuracy"
    model_share = 0.95

    def work(self, dataset: Dataset) -> Work:
        """The test set's forward pass (training the target is counted by the estimate)."""
        return Work.of(model_key(self.target), forward=dataset.n_test)

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None and self.target is not None
        if progress:
            progress(0.0, "evaluating on the test set")
        result = model_report(model, dataset)
        result.metrics["dataset"] = dataset.name
        result.metrics["arch"] = self.target.arch
        if self.target.source == "zoo":
            entry = train_entry(self.target.arch, dataset, self.target.recipe)  # a zoo hit
            result.metrics.update(
                {
                    "train_accuracy": entry.metrics["train_acc"],
                    "train_seconds": entry.metrics["train_seconds"],
                    "zoo_key": entry.key,
                    "method": self.target.recipe.method,
                    "method_label": self.target.recipe.describe_method(),
                    "training_inputs": self.target.recipe.training_inputs,
                    "watchdog": entry.metrics.get("watchdog", ""),
                    "kept_epoch": entry.metrics.get("kept_epoch"),
                }
            )
            result.tables["history"] = entry.history
        result.label = f"{self.target.describe()} on {dataset.name}"
        return result
