"""Figures of the Poisoning sanitization page: activations in 2-D, before and after
(pure functions: data in, Plotly out)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import PALETTE

__all__ = ["activation_projection_figure", "before_after_figure"]

CLEAN_COLOR = PALETTE[0]
ATTACK_COLOR = PALETTE[1]


def _percent_axis(fig: go.Figure) -> None:
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])


def _scatter(fig: go.Figure, sub: pd.DataFrame, name: str, color: str, group: str, col: int):
    """One group of points of a 2-D activation projection, in legend group ``group``."""
    fig.add_trace(
        go.Scattergl(
            x=sub["pc1"],
            y=sub["pc2"],
            mode="markers",
            name=name,
            marker={"color": color, "size": 5, "opacity": 0.7},
            legendgroup=group,
            legendgrouptitle_text=group,
        ),
        row=1,
        col=col,
    )


def activation_projection_figure(
    points: pd.DataFrame,
    *,
    cluster_title: str = "found by the detector",
    title: str = "Activations (first two principal components)",
) -> go.Figure:
    """One class's activations in 2-D, coloured by truth (left) and by the detector (right).

    Args:
        points: columns ``pc1``, ``pc2``, ``poison`` (bool, the truth), ``cluster`` (0/1;
            1 = smaller cluster or removed) and ``flagged`` (bool).
    """
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("truth: poisoned or clean", cluster_title),
        shared_yaxes=True,
        horizontal_spacing=0.05,
    )
    truth = points["poison"].astype(bool)
    for mask, name, color in ((~truth, "clean", CLEAN_COLOR), (truth, "poisoned", ATTACK_COLOR)):
        _scatter(fig, points[mask], name, color, "truth", col=1)
    cluster = points["cluster"].astype(int)
    flagged = points["flagged"].astype(bool)
    for mask, name, color in (
        ((cluster == 0) & ~flagged, "larger cluster / kept", PALETTE[2]),
        ((cluster == 1) & ~flagged, "smaller cluster, not flagged", PALETTE[4]),
        (flagged, "flagged as poison", PALETTE[3]),
    ):
        if mask.any():
            _scatter(fig, points[mask], name, color, "detector", col=2)
    fig.update_xaxes(title_text="PC 1")
    fig.update_yaxes(title_text="PC 2", row=1, col=1)
    fig.update_layout(title=title, height=430)
    return fig


def before_after_figure(
    summary: pd.DataFrame, *, title: str = "Before and after sanitization"
) -> go.Figure:
    """Grouped bars of clean accuracy and attack success for each model in ``summary``.

    Args:
        summary: columns ``model``, ``clean_accuracy``, ``attack_success``.
    """
    fig = go.Figure()
    for col, name, color in (
        ("clean_accuracy", "clean accuracy", CLEAN_COLOR),
        ("attack_success", "attack success rate", ATTACK_COLOR),
    ):
        fig.add_trace(
            go.Bar(
                x=summary["model"],
                y=summary[col],
                name=name,
                marker_color=color,
                text=[f"{v:.1%}" for v in summary[col]],
                textposition="outside",
                hovertemplate=f"%{{x}}<br>{name}=%{{y:.1%}}<extra></extra>",
            )
        )
    fig.update_layout(title=title, barmode="group", yaxis_title="share of test inputs")
    _percent_axis(fig)
    fig.update_yaxes(range=[0, 1.12])
    return fig
