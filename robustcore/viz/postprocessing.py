"""Figures of the "Postprocessing & ensembles" page: each output defense's accuracy,
membership leakage and extraction fidelity. Pure functions: tables in, Plotly figures out."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import PALETTE, fit_title, title_top

DEFENSE_METRICS: tuple[tuple[str, str], ...] = (
    ("accuracy", "clean accuracy"),
    ("mi_auc", "membership AUC (strongest attack)"),
    ("mi_tpr@1%fpr", "membership TPR at 1% FPR"),
    ("extraction_fidelity", "extraction fidelity"),
)

AUC_COLUMNS = frozenset({"mi_auc"})
"""Metrics that are areas under a curve (0.5 = guessing), drawn on an axis of their own."""


def defense_effects_figure(
    summary: pd.DataFrame, metrics: Sequence[tuple[str, str]] = DEFENSE_METRICS
) -> go.Figure:
    """One row of horizontal bars per defense (names on the left, where long names fit):
    the rates (accuracy, membership TPR, extraction fidelity) in percent on the left panel,
    the membership AUC on its own axis on the right (from 0.5, guessing, to 1), since an
    AUC is not a rate.

    Args:
        summary: one row per defense with a ``defense`` column and the metric columns
            (missing metric columns are skipped).
    """
    present = [m for m in metrics if m[0] in summary.columns]
    rates = [m for m in present if m[0] not in AUC_COLUMNS]
    aucs = [m for m in present if m[0] in AUC_COLUMNS]
    cols = 2 if rates and aucs else 1
    fig = make_subplots(
        rows=1,
        cols=cols,
        shared_yaxes=True,
        column_widths=[0.68, 0.32] if cols == 2 else None,
        horizontal_spacing=0.08,
        subplot_titles=(["rates"] if rates else []) + (["AUC (0.5 = guessing)"] if aucs else []),
    )
    names = summary["defense"].astype(str)
    colors = {col: PALETTE[i % len(PALETTE)] for i, (col, _) in enumerate(present)}
    for panel, group in ((1, rates), (cols, aucs)):
        for col, label in group:
            fmt = ".3f" if col in AUC_COLUMNS else ".1%"
            fig.add_trace(
                go.Bar(
                    y=names,
                    x=summary[col],
                    orientation="h",
                    name=label,
                    marker_color=colors[col],
                    hovertemplate="%{y}<br>" + label + ": %{x:" + fmt + "}<extra></extra>",
                ),
                row=1,
                col=panel,
            )
    fig.update_xaxes(tickformat=".0%", range=[0, 1.0], dtick=0.25, row=1, col=1)
    if aucs:
        fig.update_xaxes(range=[0.5, 1.0], dtick=0.1, tickformat=".1f", row=1, col=cols)
    fig.update_yaxes(autorange="reversed", automargin=True)
    n = len(summary)
    title = fit_title("Each defense: accuracy kept, membership leakage, extraction fidelity")
    top = title_top(title, above=22)
    fig.update_layout(
        barmode="group",
        title=title,
        height=top + 100 + n * (14 * max(1, len(rates)) + 14),
        legend={"orientation": "h", "yanchor": "top", "y": -0.08, "x": 0},
        margin={"l": 10, "r": 20, "b": 30, "t": top},
    )
    return fig
