"""The "model inversion" experiment behind the Model inversion page (MIFace).

The spec names the dataset (with its content fingerprint), the model (the session's run
key, which identifies the current model) and every MIFace parameter; the job inverts all
classes at once and stores the reconstructions, the real class means and one row per class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.inference.inversion import MIFace, correlation_matrix, invert
from ..data import Dataset
from .runner import JobContext
from .store import RunResult


def inversion_spec(dataset: Dataset, model_key: str, config: MIFace) -> dict[str, Any]:
    """The experiment spec of inverting the model ``model_key`` with ``config``."""
    return {
        "kind": "inversion.miface",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "model": model_key,
        "attack": {"name": config.name, **config.to_dict()},
        "seed": config.seed,
    }


def real_image_correlation(dataset: Dataset, means: torch.Tensor) -> torch.Tensor:
    """Mean correlation of each class's real training inputs with that class's mean.

    The yardstick for a reconstruction's correlation: how close a genuine example of the
    class typically is to the class mean.
    """
    out = torch.full((dataset.num_classes,), float("nan"))
    for c in range(dataset.num_classes):
        xc = dataset.x_train[dataset.y_train == c]
        if xc.shape[0]:
            out[c] = correlation_matrix(xc, means[c : c + 1]).mean()
    return out


def inversion_job(
    model: nn.Module, dataset: Dataset, config: MIFace
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit` that runs MIFace on every class."""

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "inverting every class")
        result = invert(model, dataset, config, progress=lambda f, m: ctx.progress(0.95 * f, m))
        ctx.progress(0.96, "comparing with the real class means")
        real = real_image_correlation(dataset, result.class_means)
        table = result.table(dataset.class_names)
        table.insert(4, "real_images_correlation", real[result.classes].numpy())
        metrics = {
            "mean_confidence": float(result.confidence.mean()),
            "mean_correlation": float(result.correlation.mean()),
            "real_images_correlation": float(np.nanmean(real.numpy())),
            "identification_rate": result.identification_rate,
            "n_classes": int(result.classes.numel()),
            "mean_steps": float(result.steps.float().mean()),
            "modality": dataset.modality,
        }
        ctx.progress(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"per_class": table, "history": pd.DataFrame(result.history)},
            artifacts={
                "reconstructions": result.images.numpy().astype(np.float32),
                "class_means": result.class_means.numpy().astype(np.float32),
            },
            label=f"MIFace on {dataset.name}",
        )

    return job
