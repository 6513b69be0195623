"""Report sections of the Model inversion page."""

from __future__ import annotations

from typing import Any

from ...data import Dataset
from ...experiments.model_inversion import ModelInversionResult
from ...viz.model_inversion import inversion_grid, inversion_profile, inversion_progress
from ..blocks import Chart, Metric, Metrics, Table, pct
from . import Part, builder


def reconstructions_figure(res: ModelInversionResult, names: list[str]) -> Any:
    """The reconstructions next to their class means: an image grid with each one's
    confidence and correlation, or feature profiles for tabular data."""
    table = res.per_class()
    recon, means = res.reconstructions(), res.class_means()
    if res.modality == "image":
        return inversion_grid(
            recon,
            means,
            names,
            confidence=table["confidence"].tolist(),
            correlation=table["correlation_with_class_mean"].tolist(),
        )
    return inversion_profile(recon, means, names)


@builder("model_inversion")
def model_inversion(res: ModelInversionResult, dataset: Dataset | None) -> Part:
    table = res.per_class()
    if dataset is not None:
        names = [str(c) for c in dataset.class_names]
    else:
        names = [f"class {i}" for i in range(res.n_classes)]
    blocks = [
        Metrics(
            (
                Metric(
                    "Mean confidence",
                    pct(res.mean_confidence),
                    "The model's probability of the target class for its reconstruction.",
                ),
                Metric(
                    "Correlation with class mean",
                    f"{res.mean_correlation:.2f}",
                    f"real images: {res.real_images_correlation:.2f}",
                ),
                Metric("Classes identified", f"{res.identification_rate:.0%}"),
                Metric("Gradient steps", f"{res.mean_steps:.0f}", "Average per class."),
            )
        )
    ]
    fig = reconstructions_figure(res, names)
    blocks += [
        Chart("reconstructions", fig),
        Chart("descent", inversion_progress(res.history())),
        Table("per_class", "Per class", table),
    ]
    return Part(
        blocks,
        threat=(
            "A white-box attacker with the model's input gradients and no training data "
            "(MIFace, Fredrikson et al. 2015) reconstructs a representative input per class; "
            "measured by the model's confidence and the correlation with the class mean."
        ),
        tried={"Model inversion"},
    )
