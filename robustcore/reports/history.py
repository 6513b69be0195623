"""The run history: every stored run as one readable row, and the filters over it.

:func:`history` gives, per run, its key, experiment, label, model, dataset, the settings
that differ from the experiment's defaults, its headline metric, status, date and
duration; :func:`filter_history` narrows it by kind, model, dataset, status and text.
The run-history page and ``python -m robustcore runs`` both use it.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

import pandas as pd

from ..runs.store import ResultStore
from .compare import _flatten
from .document import target_text

COLUMNS = (
    "key",
    "kind",
    "experiment",
    "settings",
    "headline",
    "status",
    "model",
    "dataset",
    "label",
    "when",
    "seconds",
    "error",
)
_SETTINGS_CHARS = 90


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _text(value: Any) -> str:
    """A cell as text: "" for None and NaN (pandas' missing values)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def headline(row: dict[str, Any]) -> str:
    """The one number a run list shows: its experiment's ``headline`` metric (a pattern
    takes the largest match), else the first of a few well-known metrics. ``row`` is a row
    of :meth:`ResultStore.list_runs` (metrics as ``m.<name>``)."""
    from ..experiments import EXPERIMENTS, load_all

    load_all()
    cls = EXPERIMENTS.get(str(row.get("kind")))
    wanted = getattr(cls, "headline", "") if cls is not None else ""
    if wanted:
        found = {
            k[2:]: v
            for k, v in row.items()
            if k.startswith("m.") and fnmatchcase(k[2:], wanted) and _number(v)
        }
        if found:
            name = max(found, key=lambda k: found[k])
            shown = wanted.replace("*", "best") if "*" in wanted else name
            return f"{shown} {found[name]:.3g}"
    for name in (
        "robust_accuracy",
        "clean_accuracy",
        "precision",
        "best_auc",
        "auc",
        "success_rate",
        "fidelity",
    ):
        value = row.get(f"m.{name}")
        if _number(value):
            return f"{name} {value:.3g}"
    return ""


def _defaults(kind: str) -> dict[str, Any]:
    from ..experiments import EXPERIMENTS

    cls = EXPERIMENTS.get(kind)
    if cls is None:
        return {}
    try:
        out: dict[str, Any] = {}
        _flatten(json.loads(json.dumps(cls().to_dict(), default=str)), "", out)
        return out
    except Exception:  # an experiment whose declared defaults need a dataset
        return {}


def settings_text(kind: str, params: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The settings of a run that differ from its experiment's declared defaults
    ("pgd.steps=40, eps=[0, 0.1]"), or "defaults"."""
    flat: dict[str, Any] = {}
    _flatten(params or {}, "", flat)
    parts = [
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in flat.items()
        if k not in defaults or json.dumps(defaults[k]) != json.dumps(v)
    ]
    text = ", ".join(parts) or "defaults"
    return text if len(text) <= _SETTINGS_CHARS else text[: _SETTINGS_CHARS - 1] + "…"


def history(store: ResultStore, limit: int = 2000) -> pd.DataFrame:
    """Every stored run (newest first, at most ``limit``) as one row of :data:`COLUMNS`."""
    from ..experiments import EXPERIMENTS, load_all

    load_all()
    raw = store.list_runs(limit=limit, with_spec=True)
    defaults: dict[str, dict[str, Any]] = {}
    rows = []
    for rec in raw.to_dict("records"):
        kind = str(rec["kind"])
        spec = rec.get("spec") if isinstance(rec.get("spec"), dict) else {}
        if kind not in defaults:
            defaults[kind] = _defaults(kind)
        cls = EXPERIMENTS.get(kind)
        title = cls.title if cls is not None else kind
        label = _text(rec.get("label"))
        if label.startswith(f"{title} · "):  # the stored default label repeats the experiment
            label = label[len(title) + 3 :]
        rows.append(
            {
                "key": rec["key"],
                "kind": kind,
                "experiment": title,
                "label": label,
                "model": target_text(spec.get("target")),
                "dataset": _text(rec.get("dataset")),
                "settings": settings_text(kind, spec.get("params") or {}, defaults[kind]),
                "headline": headline(rec),
                "status": rec["status"],
                "when": datetime.datetime.fromtimestamp(rec["created"]).strftime("%Y-%m-%d %H:%M"),
                "seconds": round(float(rec["seconds"]), 1),
                "error": _text(rec.get("error")),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def filter_history(
    frame: pd.DataFrame,
    *,
    kinds: Iterable[str] = (),
    models: Iterable[str] = (),
    datasets: Iterable[str] = (),
    statuses: Iterable[str] = (),
    text: str = "",
) -> pd.DataFrame:
    """The rows that match every filter given (an empty filter matches all); ``text`` is
    searched, case-insensitively, in the key, label, experiment, settings and error."""
    keep = pd.Series(True, index=frame.index)
    for column, wanted in (
        ("kind", kinds),
        ("model", models),
        ("dataset", datasets),
        ("status", statuses),
    ):
        wanted = list(wanted)
        if wanted:
            keep &= frame[column].isin(wanted)
    needle = (text or "").strip().lower()
    if needle:
        hay = (
            frame["key"]
            + " "
            + frame["label"]
            + " "
            + frame["experiment"]
            + " "
            + frame["settings"]
            + " "
            + frame["error"]
        ).str.lower()
        keep &= hay.str.contains(needle, regex=False)
    return frame[keep]
