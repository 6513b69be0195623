"""Figures of the Label flipping page (pure functions: data in, Plotly out)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

__all__ = ["label_flip_figure"]

CLASS_COLORS = qualitative.D3


def _percent_axis(fig: go.Figure) -> None:
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])


def label_flip_figure(
    table: pd.DataFrame,
    per_class: pd.DataFrame,
    *,
    highlight: Sequence[str] = (),
    title: str = "Accuracy against flip rate",
) -> go.Figure:
    """Overall test accuracy (thick) and each class's accuracy (thin) against the flip rate.

    Args:
        table: columns ``rate`` and ``accuracy``.
        per_class: long table with columns ``rate``, ``class``, ``accuracy``.
        highlight: class names drawn in colour (e.g. classes A and B, or all of them);
            the others are thin grey lines.
    """
    fig = go.Figure()
    for i, (name, df) in enumerate(per_class.groupby("class", sort=False)):
        hot = str(name) in {str(h) for h in highlight}
        fig.add_trace(
            go.Scatter(
                x=df["rate"],
                y=df["accuracy"],
                mode="lines+markers" if hot else "lines",
                name=f"class {name}",
                line={
                    "color": CLASS_COLORS[i % len(CLASS_COLORS)] if hot else "#b0b0b0",
                    "width": 2 if hot else 1,
                },
                opacity=1.0 if hot else 0.7,
                hovertemplate=f"flip rate=%{{x:.0%}}<br>class {name}: %{{y:.1%}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=table["rate"],
            y=table["accuracy"],
            mode="lines+markers",
            name="overall",
            line={"color": "black", "width": 4},
            hovertemplate="flip rate=%{x:.0%}<br>overall: %{y:.1%}<extra></extra>",
        )
    )
    fig.update_layout(title=title, xaxis_title="flip rate", yaxis_title="test accuracy")
    fig.update_xaxes(tickformat=".0%")
    _percent_axis(fig)
    return fig
