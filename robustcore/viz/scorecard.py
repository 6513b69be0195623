"""The Home page's robustness scorecard as a figure: accuracy under each condition."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

VERDICT_COLORS = {"good": "#2ca02c", "fair": "#ff7f0e", "poor": "#d62728"}


def scorecard_figure(table: pd.DataFrame, *, chance: float) -> go.Figure:
    """Bars of the accuracy rows (clean, noise, PGD small/large ε) coloured by verdict, with
    the chance line. ``table`` is the scorecard table (``area``, ``check``, ``value``,
    ``verdict``)."""
    rows = table[table["area"].isin(["accuracy", "general robustness", "white-box evasion"])]
    colors = [VERDICT_COLORS.get(str(v), "#1f77b4") for v in rows["verdict"]]
    fig = go.Figure(
        go.Bar(
            x=rows["value"],
            y=rows["check"],
            orientation="h",
            marker_color=colors,
            text=[f"{v:.1%}" for v in rows["value"]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    # The line's label above the plotting area: on the bars it would be grey on colour.
    fig.add_vline(
        x=chance,
        line_dash="dot",
        line_color="grey",
        annotation_text=f"chance {chance:.0%}",
        annotation_position="top",
    )
    fig.update_layout(
        title="Accuracy of the current model under each condition",
        xaxis_title="accuracy on the test images",
        xaxis_tickformat=".0%",
        xaxis_range=[0, 1.1],
        yaxis_autorange="reversed",
        height=140 + 45 * len(rows),
        margin={"l": 10, "r": 10, "t": 80, "b": 40},
    )
    return fig
