"""Figures of the "Postprocessing & ensembles" page: each output defense's accuracy,
membership leakage and extraction fidelity. Pure functions: tables in, Plotly figures out."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE

DEFENSE_METRICS: tuple[tuple[str, str], ...] = (
    ("accuracy", "clean accuracy"),
    ("mi_auc", "membership AUC (strongest attack)"),
    ("mi_tpr@1%fpr", "membership TPR at 1% FPR"),
    ("extraction_fidelity", "extraction fidelity"),
)


def defense_effects_figure(
    summary: pd.DataFrame, metrics: Sequence[tuple[str, str]] = DEFENSE_METRICS
) -> go.Figure:
    """One group of bars per defense: accuracy, privacy leakage and extraction fidelity.

    Args:
        summary: one row per defense with a ``defense`` column and the metric columns
            (missing metric columns are skipped).
    """
    fig = go.Figure()
    for i, (col, label) in enumerate(m for m in metrics if m[0] in summary.columns):
        fig.add_trace(
            go.Bar(
                x=summary["defense"],
                y=summary[col],
                name=label,
                marker_color=PALETTE[i % len(PALETTE)],
                hovertemplate="%{x}<br>" + label + ": %{y:.1%}<extra></extra>",
            )
        )
    fig.add_hline(
        y=0.5,
        line_dash="dot",
        line_color="gray",
        annotation_text="AUC of guessing",
        annotation_position="top left",
    )
    fig.update_layout(
        barmode="group",
        title="Each defense: accuracy kept, membership leakage, extraction fidelity",
        yaxis={"title": "rate", "tickformat": ".0%", "range": [0, 1.05]},
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 50},
    )
    return fig
