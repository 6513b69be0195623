"""The "Model inversion" experiment (MIFace, Fredrikson et al. 2015): every class of the
target inverted at once, each reconstruction compared with the real mean of its class.

The run stores the reconstructions, the real class means, one row per class and the
descent curve.

``python -m robustcore model-inversion --arch logreg --miface.steps 300 --miface.tv-weight 0.002``
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.inference.inversion import MIFace, correlation_matrix, invert
from ..data import Dataset
from ..params import nested
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, register
from .estimate import Work, model_key


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


class ModelInversionResult(ExperimentResult):
    """Reconstructions, class means, the per-class table and the descent of one MIFace run."""

    @property
    def mean_confidence(self) -> float:
        """The model's probability of the target class for its reconstruction, on average."""
        return float(self._metric("mean_confidence"))

    @property
    def mean_correlation(self) -> float:
        """Pearson correlation of each reconstruction with its class mean, on average."""
        return float(self._metric("mean_correlation"))

    @property
    def real_images_correlation(self) -> float:
        """For scale: a real training input's correlation with its class mean, on average."""
        return float(self._metric("real_images_correlation"))

    @property
    def identification_rate(self) -> float:
        """Share of reconstructions closest to their own class's mean."""
        return float(self._metric("identification_rate"))

    @property
    def n_classes(self) -> int:
        return int(self._metric("n_classes"))

    @property
    def mean_steps(self) -> float:
        return float(self._metric("mean_steps"))

    @property
    def modality(self) -> str:
        return str(self._metric("modality"))

    def per_class(self) -> pd.DataFrame:
        """One row per class: class, confidence, predicted, correlation with the class mean,
        the real images' correlation, nearest mean, steps."""
        return self._table("per_class")

    def history(self) -> pd.DataFrame:
        """One row every few steps: step, mean and lowest confidence, mean cost, active."""
        return self._table("history")

    def reconstructions(self) -> np.ndarray:
        """(K, …) reconstructions, shaped like the inputs."""
        return self._artifact("reconstructions")

    def class_means(self) -> np.ndarray:
        """(K, …) real mean training input of each class."""
        return self._artifact("class_means")

    def reconstructions_npy(self) -> bytes:
        """The reconstructions as a ``.npy`` file (for downloads)."""
        buffer = io.BytesIO()
        np.save(buffer, self.reconstructions(), allow_pickle=False)
        return buffer.getvalue()

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"per_class": self.per_class()}


@register
@dataclass(frozen=True)
class ModelInversion(Experiment):
    """MIFace on every class of the target, next to the real class means."""

    name = "model_inversion"
    title = "Model inversion"
    paper = MIFace.paper
    result_class = ModelInversionResult
    headline = "identification_rate"

    miface: MIFace = nested(MIFace, label="MIFace settings")

    def work(self, dataset: Dataset) -> Work:
        """One batch of every class through ``miface.steps`` input gradients (an upper
        bound: the descent ends sooner once every class is confident or stalled; until then
        the finished classes stay in the batch), then one forward pass."""
        k = dataset.num_classes
        return Work.of(model_key(self.target), gradient=k * self.miface.steps, forward=k)

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None
        descent, compare = split(progress, {"inverting every class": 95, "comparing": 5})
        result = invert(model, dataset, self.miface, progress=descent)
        if compare is not None:
            compare(0.0, "comparing with the real class means")
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
        if compare is not None:
            compare(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"per_class": table, "history": pd.DataFrame(result.history)},
            artifacts={
                "reconstructions": result.images.numpy().astype(np.float32),
                "class_means": result.class_means.numpy().astype(np.float32),
            },
        )
