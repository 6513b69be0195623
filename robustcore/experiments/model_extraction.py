"""The "Model extraction" experiment: steal the target through its prediction API at every
query budget, for every API output and query source, and draw accuracy and fidelity
against the budget.

Budgets, outputs and query sources are the sweep's axes (parameters of the experiment);
the student and its training are one :class:`~robustcore.attacks.extraction.ModelStealing`
declaration shared by every theft. Each stolen model is stored in the model zoo, so it can
serve later as a transfer-attack surrogate. Budgets larger than a query source's pool are
skipped for that source and listed in the result.

``python -m robustcore model-extraction --budgets 100,1000 --outputs label
--query-sources in_distribution,noise --student.epochs 10``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from torch import nn

from ..attacks.extraction import (
    OUTPUTS,
    QUERY_SOURCES,
    Cell,
    ModelStealing,
    check_config,
    grid_cells,
    model_api,
    pool_size,
    steal_cells,
)
from ..data import Dataset
from ..errors import ValidationError
from ..hashing import stable_hash
from ..models import predict_logits, recipe_key
from ..params import nested, param
from ..progress import ProgressFn, split
from ..runs.store import RunResult
from .base import Experiment, ExperimentResult, Target, register
from .estimate import Work, model_key

DEFAULT_BUDGETS: tuple[int, ...] = (100, 250, 500, 1000)
SUGGESTED_BUDGETS: tuple[int, ...] = (50, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 8000)
"""Budgets the page offers (any whole number ≥ 1 is accepted)."""


def target_id(target: Target | None, dataset: Dataset) -> str:
    """What a stolen model's zoo entry records as ``stolen_from``: the target's zoo key, or
    the fingerprint of an uploaded model."""
    if target is None:
        return "prediction-api"
    if target.source == "zoo":
        assert target.arch is not None and target.recipe is not None
        got = recipe_key(target.arch, dataset, target.recipe)
    else:
        got = str(target.fingerprint)
    if target.inference is not None:  # the service answered through its defense
        got += "+" + stable_hash(target.inference.spec(), root="inference")
    return got


def student_work(arch: str, epochs: int, budget: int, dataset: Dataset) -> Work:
    """Training one stolen student on ``budget`` answers (with the zoo's test-set pass
    after each epoch) and scoring it on the test split. Always counted: its zoo key
    depends on the answers, which are only known once the target has given them."""
    return Work.of(arch, train=budget * epochs, forward=dataset.n_test * (epochs + 1))


def sources_for(dataset: Dataset) -> tuple[str, ...]:
    """The query sources that exist for ``dataset`` (tabular data has no other dataset)."""
    return tuple(s for s in QUERY_SOURCES if dataset.modality == "image" or s != "other_dataset")


def feasible_cells(
    dataset: Dataset,
    budgets: Sequence[int],
    *,
    outputs: Sequence[str],
    sources: Sequence[str],
) -> tuple[list[Cell], dict[str, list[int]]]:
    """Every (source, output, budget) whose pool can supply the budget, and per query
    source the budgets larger than its pool."""
    cells: list[Cell] = []
    skipped: dict[str, list[int]] = {}
    for source, output, budget in grid_cells(budgets, outputs=outputs, sources=sources):
        size = pool_size(dataset, source)
        if size is not None and budget > size:
            if budget not in skipped.setdefault(source, []):
                skipped[source].append(budget)
        else:
            cells.append((source, output, budget))
    return cells, {k: v for k, v in skipped.items() if v}


class ModelExtractionResult(ExperimentResult):
    """The accuracy / fidelity curve: one stolen model per budget × output × source."""

    @property
    def target_accuracy(self) -> float:
        """The stolen model's test accuracy (the ceiling a perfect copy reaches)."""
        return float(self._metric("target_accuracy"))

    @property
    def n_students(self) -> int:
        return int(self._metric("n_students"))

    @property
    def max_budget(self) -> int:
        return int(self._metric("max_budget"))

    @property
    def chance(self) -> float:
        return float(self._metric("chance"))

    def skipped_budgets(self) -> dict[str, list[int]]:
        """Per query source, the budgets larger than its pool (not run)."""
        return {k: list(v) for k, v in (self._metric("skipped_budgets") or {}).items()}

    def curve(self) -> pd.DataFrame:
        """One row per theft: output, query_source, student_arch, budget, queries, accuracy,
        fidelity, seconds, from_cache, zoo_key."""
        return self._table("curve")

    def best(self) -> dict[str, Any]:
        """The row of the stolen model with the highest fidelity."""
        curve = self.curve()
        return curve.loc[curve["fidelity"].idxmax()].to_dict()

    def summary(self) -> dict[str, Any]:
        best = self.best()
        return {
            "target_accuracy": self.target_accuracy,
            "n_students": self.n_students,
            "best_fidelity": float(best["fidelity"]),
            "best_accuracy": float(best["accuracy"]),
            "best": f"{best['output']}, {best['query_source']}, {int(best['budget'])} queries",
            "skipped_budgets": self.skipped_budgets(),
        }

    def cli_tables(self) -> dict[str, pd.DataFrame]:
        return {"curve": self.curve().drop(columns=["zoo_key"])}


@register
@dataclass(frozen=True)
class ModelExtraction(Experiment):
    """Copycat / Knockoff-style stealing of the target at several query budgets."""

    name = "model_extraction"
    title = "Model extraction"
    paper = ModelStealing.paper
    result_class = ModelExtractionResult
    headline = "fidelity.*"

    budgets: tuple[int, ...] = param(
        DEFAULT_BUDGETS,
        low=1,
        high=1_000_000,
        label="Query budgets",
        help="One stolen model per budget (and per output × source).",
    )
    outputs: tuple[str, ...] = param(
        OUTPUTS,
        choices=OUTPUTS,
        label="API outputs",
        help="What the service returns per query: all class probabilities, or only the "
        "predicted label (less information per query).",
    )
    query_sources: tuple[str, ...] = param(
        ("in_distribution", "other_dataset"),
        choices=QUERY_SOURCES,
        label="Query sources",
        help="Where the attacker's inputs come from: natural images of the same task, real "
        "images of another dataset, or uniform random noise inside the data bounds.",
    )
    student: ModelStealing = nested(
        ModelStealing, label="Student (the attacker's network and its training)"
    )

    @classmethod
    def defaults(cls, dataset: Dataset) -> dict[str, Any]:
        budgets = tuple(b for b in DEFAULT_BUDGETS if b <= dataset.n_train)
        return {
            "budgets": budgets or (min(dataset.n_train, 100),),
            "query_sources": sources_for(dataset)[:2],
        }

    def check_data(self, dataset: Dataset) -> None:
        if "other_dataset" in self.query_sources and dataset.modality != "image":
            raise ValidationError(
                f"{dataset.name} is tabular: it has no other dataset to send as queries; "
                f"choose among {', '.join(sources_for(dataset))}."
            )
        check_config(dataset, self.student)
        cells, skipped = feasible_cells(
            dataset, self.budgets, outputs=self.outputs, sources=self.query_sources
        )
        if not cells:
            raise ValidationError(
                "Every budget is larger than the chosen query sources can supply: "
                + "; ".join(f"{s}: {', '.join(f'{b:,}' for b in bs)}" for s, bs in skipped.items())
            )

    def work(self, dataset: Dataset) -> Work:
        """The target's test-set labels (the fidelity reference, and once more for its
        accuracy), one batch of queries per source (its largest budget: the smaller ones
        share its answers), and one student per cell (:func:`student_work`)."""
        key, st = model_key(self.target), self.student
        cells, _ = feasible_cells(
            dataset, self.budgets, outputs=self.outputs, sources=self.query_sources
        )
        largest: dict[str, int] = {}
        for source, _, budget in cells:
            largest[source] = max(largest.get(source, 0), budget)
        work = Work.of(key, forward=2 * dataset.n_test + sum(largest.values()))
        for _, _, budget in cells:
            work = work + student_work(st.student_arch, st.epochs, budget, dataset)
        return work

    def run(
        self, dataset: Dataset, model: nn.Module | None, progress: ProgressFn | None = None
    ) -> RunResult:
        assert model is not None
        stealing, scoring = split(progress, [0.97, 0.03])
        cells, skipped = feasible_cells(
            dataset, self.budgets, outputs=self.outputs, sources=self.query_sources
        )
        curve = steal_cells(
            model_api(model),
            dataset,
            cells,
            self.student,
            progress=stealing,
            target_id=target_id(self.target, dataset),
        )
        if scoring is not None:
            scoring(0.0, "scoring the target")
        pred = predict_logits(model, dataset.x_test).argmax(dim=1)
        target_acc = float((pred == dataset.y_test.cpu()).float().mean())
        metrics: dict[str, Any] = {
            "target_accuracy": target_acc,
            "chance": 1.0 / dataset.num_classes,
            "max_budget": int(curve["budget"].max()),
            "n_students": int(len(curve)),
            "skipped_budgets": skipped,
        }
        for (out, src), df in curve.groupby(["output", "query_source"], sort=False):
            top = df.loc[df["budget"].idxmax()]
            metrics[f"fidelity.{out}.{src}"] = float(top["fidelity"])
            metrics[f"accuracy.{out}.{src}"] = float(top["accuracy"])
        return RunResult(metrics=metrics, tables={"curve": curve})
