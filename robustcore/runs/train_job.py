"""The "train or load a model" experiment behind the Home page and the CLI.

The spec names the dataset (with its content fingerprint), the architecture and the
recipe; the job trains through the model zoo (so the model itself is cached on disk) and
stores what the Home page shows: training curves, confusion matrix and sample predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data import Dataset
from ..evaluation.metrics import confusion_matrix, per_class_accuracy
from ..models import TrainRecipe, predict_logits, train_entry
from .runner import JobContext
from .store import RunResult

N_SAMPLES = 16


def train_spec(arch: str, dataset: Dataset, recipe: TrainRecipe) -> dict[str, Any]:
    """The experiment spec of training ``arch`` on ``dataset`` with ``recipe``."""
    return {
        "kind": "train",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "arch": arch,
        "recipe": recipe.to_dict(),
        "seed": recipe.seed,
    }


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


def model_report(model: torch.nn.Module, dataset: Dataset) -> RunResult:
    """Clean accuracy, confusion matrix, per-class accuracy and sample predictions."""
    logits = predict_logits(model, dataset.x_test)
    probs = torch.softmax(logits, dim=1)
    conf, pred = probs.max(dim=1)
    y = dataset.y_test.cpu()
    cm = confusion_matrix(y, pred, dataset.num_classes)
    names = [str(c) for c in dataset.class_names]
    confusion = pd.DataFrame(cm, index=names, columns=names)
    per_class = pd.DataFrame(
        {
            "class": names,
            "accuracy": per_class_accuracy(cm),
            "support": cm.sum(axis=1),
        }
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


def train_job(
    arch: str, dataset: Dataset, recipe: TrainRecipe
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit` that trains (or loads) and reports."""

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "preparing")
        entry = train_entry(arch, dataset, recipe, progress=lambda f, m: ctx.progress(0.95 * f, m))
        ctx.progress(0.96, "evaluating on the test set")
        result = model_report(entry.model, dataset)
        result.metrics.update(
            {
                "train_accuracy": entry.metrics["train_acc"],
                "train_seconds": entry.metrics["train_seconds"],
                "zoo_key": entry.key,
                "arch": arch,
                "dataset": dataset.name,
            }
        )
        result.tables["history"] = entry.history
        result.label = f"{arch} on {dataset.name}"
        ctx.progress(1.0, "done")
        return result

    return job
