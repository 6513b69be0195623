"""Figures of poisoning attacks and sanitization (pure functions: data in, Plotly out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .figures import PALETTE

__all__ = [
    "activation_projection_figure",
    "attack_comparison_figure",
    "backdoor_sweep_figure",
    "before_after_figure",
    "hidden_trigger_figure",
    "label_flip_figure",
]

CLASS_COLORS = qualitative.D3
CLEAN_COLOR = PALETTE[0]
ATTACK_COLOR = PALETTE[1]


def _percent_axis(fig: go.Figure) -> None:
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])


def backdoor_sweep_figure(
    table: pd.DataFrame,
    x: str,
    *,
    x_title: str,
    clean_accuracy: float | None = None,
    percent_x: bool = False,
    title: str = "Clean accuracy and attack success",
) -> go.Figure:
    """Clean accuracy and attack success rate against a swept setting.

    Args:
        table: one row per value, with columns ``x``, ``clean_accuracy``,
            ``attack_success`` (fractions).
        x: the swept column.
        x_title: its axis title.
        clean_accuracy: the unpoisoned model's accuracy, drawn as a dashed line.
        percent_x: format the x axis as percentages (poison rates).
    """
    fig = go.Figure()
    xfmt = ".1%" if percent_x else ".3g"
    for col, name, color in (
        ("clean_accuracy", "clean accuracy", CLEAN_COLOR),
        ("attack_success", "attack success rate", ATTACK_COLOR),
    ):
        fig.add_trace(
            go.Scatter(
                x=table[x],
                y=table[col],
                mode="lines+markers",
                name=name,
                line={"color": color},
                hovertemplate=f"{x_title}=%{{x:{xfmt}}}<br>{name}=%{{y:.1%}}<extra></extra>",
            )
        )
    if clean_accuracy is not None:
        fig.add_hline(
            y=clean_accuracy,
            line_dash="dash",
            line_color="gray",
            annotation_text="unpoisoned model",
            annotation_position="bottom right",
        )
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="share of test inputs")
    if percent_x:
        fig.update_xaxes(tickformat=".1%")
    _percent_axis(fig)
    return fig


def hidden_trigger_figure(
    table: pd.DataFrame, *, title: str = "Hidden trigger: the role of ε"
) -> go.Figure:
    """Attack success, clean accuracy and the no-poison baseline against ε."""
    fig = go.Figure()
    series = (
        ("clean_accuracy", "clean accuracy", CLEAN_COLOR, "solid"),
        ("attack_success", "attack success rate", ATTACK_COLOR, "solid"),
        ("baseline_attack_success", "trigger without poisons", "gray", "dash"),
    )
    for col, name, color, dash in series:
        fig.add_trace(
            go.Scatter(
                x=table["eps"],
                y=table[col],
                mode="lines+markers",
                name=name,
                line={"color": color, "dash": dash},
                hovertemplate=f"ε=%{{x:.3g}}<br>{name}=%{{y:.1%}}<extra></extra>",
            )
        )
    fig.update_layout(title=title, xaxis_title="ε (L∞ budget of the poisons)")
    _percent_axis(fig)
    return fig


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


def attack_comparison_figure(
    results: Mapping[str, Mapping[str, float]],
    *,
    title: str = "BadNets and hidden trigger side by side",
) -> go.Figure:
    """Grouped bars: clean accuracy and attack success of several attacks.

    Args:
        results: attack name → ``{"clean_accuracy": ..., "attack_success": ...}``.
    """
    names = list(results)
    fig = go.Figure()
    for col, name, color in (
        ("clean_accuracy", "clean accuracy", CLEAN_COLOR),
        ("attack_success", "attack success rate", ATTACK_COLOR),
    ):
        vals = [float(results[n].get(col, np.nan)) for n in names]
        fig.add_trace(
            go.Bar(
                x=names,
                y=vals,
                name=name,
                marker_color=color,
                text=[f"{v:.1%}" for v in vals],
                textposition="outside",
            )
        )
    fig.update_layout(title=title, barmode="group", yaxis_title="share of test inputs")
    _percent_axis(fig)
    fig.update_yaxes(range=[0, 1.12])
    return fig
