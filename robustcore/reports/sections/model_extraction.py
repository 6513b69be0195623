"""Report sections of the Model extraction page."""

from __future__ import annotations

from ...data import Dataset
from ...experiments.model_extraction import ModelExtractionResult
from ...viz.model_extraction import SOURCE_TITLES, extraction_curves
from ..blocks import Chart, Metric, Metrics, Table, Text, accuracy_basis, pct
from . import Part, builder


@builder("model_extraction")
def model_extraction(res: ModelExtractionResult, dataset: Dataset | None) -> Part:
    curve = res.curve()
    best = res.best()
    source = SOURCE_TITLES.get(best["query_source"], best["query_source"])
    blocks = [
        Metrics(
            (
                Metric("Target accuracy", pct(res.target_accuracy), "The model being stolen."),
                Metric(
                    "Best fidelity",
                    pct(best["fidelity"]),
                    f"{best['output']}, {source}, {int(best['budget']):,} queries.",
                ),
                Metric("Its accuracy", pct(best["accuracy"]), "The same stolen model's."),
                Metric("Stolen models", f"{res.n_students}"),
            ),
            caption=accuracy_basis(dataset.n_test, dataset.n_test) if dataset else "",
        )
    ]
    for src, skipped in res.skipped_budgets().items():
        blocks.append(
            Text(
                f"Budgets {', '.join(f'{b:,}' for b in skipped)} were skipped for "
                f"{SOURCE_TITLES.get(src, src)}: its pool holds fewer distinct inputs."
            )
        )
    blocks += [
        Chart(
            "curves",
            extraction_curves(curve, target_accuracy=res.target_accuracy, chance=res.chance),
            caption="Solid lines: the API returns probabilities; dashed: only the top-1 label.",
        ),
        Table("curve", "Fidelity and accuracy per budget", curve),
    ]
    return Part(
        blocks,
        threat=(
            "An attacker who can only query the model's prediction API (probabilities or "
            "labels), up to a query budget, and trains a copy on the answers; measured by "
            "the copy's agreement with the target (fidelity) and its test accuracy."
        ),
        tried={"Model extraction"},
    )
