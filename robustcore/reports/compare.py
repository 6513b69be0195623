"""Side-by-side comparison of stored runs: what differs between their specs, their charts
overlaid (one colour per run), and their metrics with deltas.

* :func:`differences` flattens each spec (``params.pgd.steps``) and keeps the settings that
  are not the same in every run; :func:`run_names` turns them into the short names the
  legends and table headers use ("pgd.steps=40").
* :func:`overlay` draws the same chart of several runs of one kind on one figure: every
  trace of run *i* gets run *i*'s colour, and a trace's place within its run a line dash
  (solid, dashed, dotted…), so two runs of a two-line chart give four distinguishable
  lines. Charts that cannot be overlaid (heat maps, image grids) give ``None``: the page
  draws them side by side.
* :func:`metric_table` (runs of one kind): one row per scalar metric, one column per run
  and the difference of each later run to the first. :func:`headline_table` (runs of any
  kinds): each run's headline numbers as its page shows them, in one long table.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..errors import ValidationError
from .blocks import Chart, Metrics, RunSection

MIN_RUNS, MAX_RUNS = 2, 6
"""How many runs one comparison holds."""

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")
"""One colour per compared run (colour-blind-safe enough for six, and never two alike)."""
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")

_OVERLAYABLE = {"scatter", "scattergl", "bar"}
_NAME_CHARS = 48


def check_count(n: int) -> None:
    """Raise ValidationError unless ``n`` runs can be compared."""
    if not MIN_RUNS <= n <= MAX_RUNS:
        raise ValidationError(
            f"Compare {MIN_RUNS} to {MAX_RUNS} runs at a time; {n} "
            f"{'is' if n == 1 else 'are'} chosen."
        )


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list | tuple):
        out[prefix] = json.dumps(list(value))
    else:
        out[prefix] = value


def _short(path: str) -> str:
    for prefix, short in (
        ("params.", ""),
        ("target.recipe.", "recipe."),
        ("target.", "model."),
        ("fingerprint", "data fingerprint"),
    ):
        if path.startswith(prefix):
            return short + path[len(prefix) :]
    return path


def differences(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For each spec, the settings (flattened, shortened names) not equal in every spec."""
    flat = []
    for spec in specs:
        out: dict[str, Any] = {}
        _flatten(spec, "", out)
        flat.append(out)
    names = list(dict.fromkeys(k for f in flat for k in f))
    differing = [k for k in names if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    return [{_short(k): f.get(k) for k in differing} for f in flat]


def _value_text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_names(sections: Sequence[RunSection]) -> list[str]:
    """A short, unique name per run for legends and headers: what differs in its spec
    ("pgd.steps=40, eps=[0, 0.1]"); the kind when kinds differ; the key as a last resort."""
    diffs = differences([s.spec for s in sections])
    names = []
    for s, diff in zip(sections, diffs, strict=True):
        if "kind" in diff:
            text = s.title
        else:
            parts = [f"{k}={_value_text(v)}" for k, v in diff.items() if k != "layout"]
            text = ", ".join(parts) or s.key[:8]
        if len(text) > _NAME_CHARS:
            text = text[: _NAME_CHARS - 1].rstrip(", ") + "…"
        names.append(text)
    for i, name in enumerate(names):
        if names.count(name) > 1:
            names[i] = f"{name} ({sections[i].key[:6]})"
    return names


def differences_table(sections: Sequence[RunSection]) -> pd.DataFrame:
    """One row per differing setting, one column per run (named by :func:`run_names`)."""
    diffs = differences([s.spec for s in sections])
    names = run_names(sections)
    settings = list(dict.fromkeys(k for d in diffs for k in d if k != "layout"))
    rows = [
        {"setting": k, **{n: _value_text(d.get(k)) for n, d in zip(names, diffs, strict=True)}}
        for k in settings
    ]
    return pd.DataFrame(rows, columns=["setting", *names])


def _scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in metrics.items() if v is None or isinstance(v, bool | int | float | str)
    }


def metric_table(
    sections: Sequence[RunSection], metrics: Sequence[Mapping[str, Any]], headline: str = ""
) -> pd.DataFrame:
    """Runs of one kind: one row per scalar metric (the headline first), one column per
    run, and ``Δ <run> − <first>`` columns for every later run's numeric difference."""
    names = run_names(sections)
    plain = [_scalar_metrics(m) for m in metrics]
    keys = list(dict.fromkeys(k for m in plain for k in m))
    if headline:
        from fnmatch import fnmatchcase

        first = [k for k in keys if fnmatchcase(k, headline)]
        keys = first + [k for k in keys if k not in first]
    rows = []
    for k in keys:
        row: dict[str, Any] = {"metric": k.replace("_", " ")}
        values = [m.get(k) for m in plain]
        for n, v in zip(names, values, strict=True):
            row[n] = v
        base = values[0]
        for n, v in zip(names[1:], values[1:], strict=True):
            numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (base, v))
            row[f"Δ {n}"] = (v - base) if numeric else None
        rows.append(row)
    columns = ["metric", *names, *(f"Δ {n}" for n in names[1:])]
    return pd.DataFrame(rows, columns=columns)


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every cell as display text (numbers to 4 significant digits, Δ
    columns signed), so a column mixing numbers and words draws as one column."""

    def cell(value: Any, signed: bool) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return "–"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return f"{value:+.4g}" if signed else f"{value:.4g}"

    return pd.DataFrame(
        {c: [cell(v, str(c).startswith("Δ ")) for v in frame[c]] for c in frame.columns},
        columns=frame.columns,
    )


def headline_table(sections: Sequence[RunSection]) -> pd.DataFrame:
    """Runs of any kinds: every headline number as its page shows it, one row each."""
    rows = []
    for s in sections:
        for block in s.blocks:
            if isinstance(block, Metrics):
                for m in block.items:
                    rows.append(
                        {
                            "run": s.key[:8],
                            "experiment": s.title,
                            "metric": m.label,
                            "value": m.value,
                            "note": m.note,
                        }
                    )
    return pd.DataFrame(rows, columns=["run", "experiment", "metric", "value", "note"])


def same_model(sections: Sequence[RunSection]) -> bool:
    """True when every run was computed on the same model and data."""
    keys = {
        json.dumps([s.spec.get("target"), s.spec.get("fingerprint")], sort_keys=True)
        for s in sections
    }
    return len(keys) == 1


def _recolor(trace: Any, color: str, dash: str, symbol: str) -> None:
    if trace.type == "bar":
        trace.marker.color = color
        trace.marker.pattern.shape = {"solid": "", "dash": "/", "dot": "."}.get(dash, "x")
        return
    mode = trace.mode or "lines"
    if "lines" in mode:
        trace.line.color = color
        trace.line.dash = dash
    if "markers" in mode:
        trace.marker.color = color
        trace.marker.symbol = symbol
        trace.marker.colorscale = None
        trace.marker.showscale = False


def _signature(trace: Any) -> str:
    """What a trace draws: its type, name and data (two runs with the same signature drew
    the very same line)."""

    def values(v: Any) -> Any:
        return None if v is None else [str(x) for x in v]

    return json.dumps([trace.type, trace.name, values(trace.x), values(trace.y)])


SHARED = "#555555"
"""The colour of a line that several runs drew identically (one legend entry says so)."""


def overlay(charts: Sequence[Chart | None], names: Sequence[str]) -> go.Figure | None:
    """The same chart of several runs on one figure (see the module notes), or ``None``
    when a run lacks it or it is not made of lines and bars only.

    A line that several runs drew identically (an attack whose settings did not change)
    is drawn once, in grey, with one legend entry naming the runs and saying "identical",
    so no run's line hides under another's."""
    if not charts or any(c is None for c in charts):
        return None
    figures = [c.figure for c in charts]  # type: ignore[union-attr]
    if any(not f.data or any(t.type not in _OVERLAYABLE for t in f.data) for f in figures):
        return None
    groups: dict[str, list[tuple[int, int, Any]]] = {}
    for i, fig in enumerate(figures):
        named = [t for t in fig.data if t.showlegend is not False]
        for j, trace in enumerate(fig.data):
            style = named.index(trace) if trace in named else j
            groups.setdefault(_signature(trace), []).append((i, style, trace))
    out = go.Figure(layout=copy.deepcopy(figures[0].layout))
    n = len(figures)
    for members in groups.values():
        i, style, trace = members[0]
        t = copy.deepcopy(trace)
        own = (t.name or "").strip()
        several = len(figures[i].data) > 1
        if len(members) > 1:
            if trace.showlegend is False:  # a reference line (chance): once, as it was
                out.add_trace(t)
                continue
            runs = {m[0] for m in members}
            who = (
                f"every run ({n})" if len(runs) == n else ", ".join(names[r] for r in sorted(runs))
            )
            _recolor(t, SHARED, DASHES[style % len(DASHES)], SYMBOLS[style % len(SYMBOLS)])
            t.name = f"{who} · {own} (identical)" if own else f"{who} (identical)"
            t.legendgroup = "shared"
        else:
            _recolor(
                t,
                COLORS[i % len(COLORS)],
                DASHES[style % len(DASHES)],
                SYMBOLS[style % len(SYMBOLS)],
            )
            t.name = f"{names[i]} · {own}" if own and several else names[i]
            t.legendgroup = f"run{i}"
        t.legendgrouptitle = None
        out.add_trace(t)
    if any(t.type == "bar" for t in out.data):
        out.update_layout(barmode="group")
    title = figures[0].layout.title.text if figures[0].layout.title else None
    out.update_layout(
        title_text=f"{title} — {n} runs" if title else f"{n} runs compared",
        showlegend=True,
        legend={"groupclick": "toggleitem"},
    )
    return out


def chart_pairs(sections: Sequence[RunSection]) -> list[tuple[str, list[Chart | None]]]:
    """Every chart id of the compared runs (in the first run's order, then any others),
    with each run's chart of that id or ``None``."""
    ids = list(dict.fromkeys(c.id for s in sections for c in s.charts))
    out = []
    for cid in ids:
        per = [next((c for c in s.charts if c.id == cid), None) for s in sections]
        out.append((cid, per))
    return out
