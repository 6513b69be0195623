"""A model card: the report of one model's scorecard and every stored run made on it.

"Made on it" means a finished run whose spec names the same target (architecture and
training recipe, or uploaded file fingerprint) and the same data fingerprint. The
scorecard comes first, then the runs in the order of the page map, newest first within a
page.
"""

from __future__ import annotations

from typing import Any

from ..data import Dataset
from ..errors import ValidationError
from ..runs.store import ResultStore
from .document import MAX_RUNS, Report, build_report


def runs_on_model(
    store: ResultStore, target: dict[str, Any], fingerprint: str, *, limit: int = 5000
) -> list[str]:
    """Keys of the finished runs computed on ``target`` (a ``Target.spec()``) and the data
    with content ``fingerprint``: the scorecard first, then in page order."""
    from ..experiments import EXPERIMENTS, load_all

    load_all()
    order = {name: i for i, name in enumerate(EXPERIMENTS)}
    kinds = dict(zip(*_kinds(store), strict=True))
    found: list[tuple[int, int, str]] = []
    for i, key in enumerate(store.keys_on(target, fingerprint)[:limit]):
        kind = kinds.get(key, "")
        rank = -1 if kind == "scorecard" else order.get(kind, len(order))
        found.append((rank, i, key))
    return [key for _, _, key in sorted(found)]


def _kinds(store: ResultStore) -> tuple[list[str], list[str]]:
    frame = store.list_runs(limit=1_000_000, status="done")
    return frame["key"].tolist(), frame["kind"].tolist()


def model_card(
    store: ResultStore,
    target: dict[str, Any],
    dataset: Dataset,
    *,
    label: str,
    datasets: dict[str, Dataset] | None = None,
) -> Report:
    """The model card of ``target`` on ``dataset``: a report of every run made on it.

    Raises ValidationError when no run was made on the model yet."""
    keys = runs_on_model(store, target, dataset.fingerprint())
    if not keys:
        raise ValidationError(
            f"No stored run was made on {label} yet: run its scorecard (or any page) first."
        )
    kinds = {store.get(k).kind for k in keys}  # type: ignore[union-attr]
    shown = keys[:MAX_RUNS]
    more = len(keys) - len(shown)
    summary = (
        f"Every run made on **{label}** ({dataset.name}) that the result store holds: "
        f"{len(keys)} run{'s' * (len(keys) != 1)} of {len(kinds)} kind"
        f"{'s' * (len(kinds) != 1)}"
        + (f"; the {MAX_RUNS} listed first are shown, {more} more are not." if more else ".")
        + ("" if "scorecard" in kinds else " It has no scorecard run yet.")
    )
    return build_report(
        store,
        shown,
        title=f"Model card: {label}",
        summary=summary,
        datasets={dataset.name: dataset, **(datasets or {})},
    )
