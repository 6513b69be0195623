"""The "model extraction" experiment behind the Model extraction page.

The spec names the dataset (with its content fingerprint), the target model (the session's
run key), the query budgets and one stealing configuration per API output × query source.
The job steals the target once per configuration and budget (each stolen model is stored
in the model zoo, so it can serve later as a transfer-attack surrogate) and stores the
accuracy/fidelity curve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ..attacks.extraction import ModelStealing, extraction_curve, model_api, pool_size
from ..data import Dataset
from ..errors import ValidationError
from ..models import predict_logits
from .runner import JobContext
from .store import RunResult


def extraction_spec(
    dataset: Dataset,
    model_key: str,
    budgets: Sequence[int],
    configs: Sequence[ModelStealing],
) -> dict[str, Any]:
    """The experiment spec of stealing the model ``model_key`` at each budget."""
    if not configs:
        raise ValidationError("Choose at least one API output and one query source.")
    return {
        "kind": "extraction.curve",
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "model": model_key,
        "budgets": sorted({int(b) for b in budgets}),
        "attack": [{"name": c.name, **c.to_dict()} for c in configs],
        "seed": configs[0].seed,
    }


def feasible_budgets(
    dataset: Dataset, budgets: Sequence[int], configs: Sequence[ModelStealing]
) -> tuple[list[ModelStealing], dict[str, list[int]]]:
    """Split ``budgets`` per query source into those its pool can supply and the rest.

    Returns:
        ``(runs, skipped)``: one configuration per feasible (config, budget) pair, and per
        query source the budgets larger than its pool.
    """
    runs: list[ModelStealing] = []
    skipped: dict[str, list[int]] = {}
    for c in configs:
        size = pool_size(dataset, c.query_source)
        for b in sorted({int(b) for b in budgets}):
            if size is not None and b > size:
                if b not in skipped.setdefault(c.query_source, []):
                    skipped[c.query_source].append(b)
            else:
                runs.append(c.replace(budget=b))
    return runs, skipped


def extraction_job(
    model: nn.Module,
    dataset: Dataset,
    budgets: Sequence[int],
    configs: Sequence[ModelStealing],
    *,
    target_id: str | None = None,
) -> Callable[[JobContext], RunResult]:
    """A job function for :meth:`JobRunner.submit` that draws the extraction curve.

    Budgets larger than a query source's pool (e.g. 2,000 queries from the 1,797 images of
    the other dataset) are skipped for that source and listed in the metrics.
    """

    def job(ctx: JobContext) -> RunResult:
        ctx.progress(0.0, "preparing the queries")
        runs, skipped = feasible_budgets(dataset, budgets, configs)
        if not runs:
            raise ValidationError(
                "Every budget is larger than the chosen query sources can supply: "
                + "; ".join(f"{s}: {b}" for s, b in skipped.items())
            )
        api = model_api(model)
        curve = extraction_curve(
            api,
            dataset,
            None,  # each run carries its own budget
            runs,
            progress=lambda f, m: ctx.progress(0.97 * f, m),
            target_id=target_id,
        )
        pred = predict_logits(model, dataset.x_test).argmax(dim=1)
        target_acc = float((pred == dataset.y_test.cpu()).float().mean())
        metrics: dict[str, Any] = {
            "target_accuracy": target_acc,
            "max_budget": int(curve["budget"].max()),
            "n_students": int(len(curve)),
            "skipped_budgets": {k: v for k, v in skipped.items() if v},
        }
        for (out, src), df in curve.groupby(["output", "query_source"], sort=False):
            top = df.loc[df["budget"].idxmax()]
            metrics[f"fidelity.{out}.{src}"] = float(top["fidelity"])
            metrics[f"accuracy.{out}.{src}"] = float(top["accuracy"])
        ctx.progress(1.0, "done")
        return RunResult(
            metrics=metrics,
            tables={"curve": curve},
            label=f"Model stealing on {dataset.name}",
        )

    return job
