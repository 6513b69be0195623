"""Figures of the "Membership inference" page: ROC curves (linear and log-log), score
histograms and the overfitting sweep. Pure functions: tables in, Plotly figures out."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import PALETTE, fit_title, title_top

_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot", "solid")


def roc_figure(
    curves: Mapping[str, pd.DataFrame],
    *,
    log: bool = False,
    n_nonmembers: int | None = None,
    n_members: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """ROC curves of several attacks, with the chance diagonal.

    Args:
        curves: legend name → DataFrame with columns ``fpr`` and ``tpr``.
        log: log-log axes (Carlini et al. 2022): the low-FPR corner, where an attack is
            confidently right, takes most of the plot. Zero rates cannot be drawn on a log
            axis; they are drawn at half the smallest measurable rate (``0.5 / n``), i.e. on
            the axes' edge.
        n_nonmembers, n_members: candidate counts (set the log axes' lower edge).
    """
    fig = go.Figure()
    lo_x = 0.5 / n_nonmembers if n_nonmembers else 1e-4
    lo_y = 0.5 / n_members if n_members else 1e-4
    for i, (name, df) in enumerate(curves.items()):
        fpr = df["fpr"].to_numpy(dtype=float)
        tpr = df["tpr"].to_numpy(dtype=float)
        if log:
            fpr, tpr = np.maximum(fpr, lo_x), np.maximum(tpr, lo_y)
        fig.add_trace(
            go.Scatter(
                x=fpr,
                y=tpr,
                mode="lines",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)], "dash": _DASHES[i % len(_DASHES)]},
                hovertemplate="FPR %{x:.3%}<br>TPR %{y:.2%}<extra>" + name + "</extra>",
            )
        )
    lo = min(lo_x, lo_y) if log else 0.0
    fig.add_trace(
        go.Scatter(
            x=[lo, 1.0],
            y=[lo, 1.0],
            mode="lines",
            name="chance",
            line={"color": "gray", "dash": "dash", "width": 1},
            hoverinfo="skip",
        )
    )
    axis = {"type": "log", "dtick": 1, "exponentformat": "power"} if log else {"range": [0, 1]}
    fig.update_layout(
        title=title or ("ROC, log-log axes" if log else "ROC, linear axes"),
        xaxis={"title": "false-positive rate", **axis},
        yaxis={"title": "true-positive rate", **axis},
        legend={"font": {"size": 11}, "orientation": "h", "y": -0.2},
        height=560,
        margin={"t": 50},
    )
    if log:
        fig.update_xaxes(range=[np.log10(lo_x), 0])
        fig.update_yaxes(range=[np.log10(lo_y), 0])
    return fig


def score_histogram(
    scores: pd.DataFrame,
    column: str,
    *,
    name: str | None = None,
    bins: int = 50,
) -> go.Figure:
    """Overlaid histograms of one attack's scores for members and non-members.

    Args:
        scores: one row per candidate with a boolean ``member`` column and ``column``.
        column: the attack's score column.
    """
    s = scores[column].to_numpy(dtype=float)
    finite = np.isfinite(s)
    lo, hi = (0.0, 1.0)
    if finite.any():
        lo, hi = (float(v) for v in np.percentile(s[finite], [1, 99]))
        if hi <= lo:
            lo, hi = float(s[finite].min()), float(s[finite].max())
    size = (hi - lo) / bins if hi > lo else 1.0
    s = np.clip(s, lo, hi)  # the outer 1% on each side is drawn in the edge bins
    fig = go.Figure()
    title = fit_title(
        f"Scores of {name or column}: members\u00a0vs\u00a0non-members "
        "(1st–99th percentile; the tails are gathered in the edge bins)"
    )
    for i, (flag, label) in enumerate(((True, "members"), (False, "non-members"))):
        part = s[(scores["member"].to_numpy(dtype=bool) == flag) & finite]
        fig.add_trace(
            go.Histogram(
                x=part,
                name=f"{label} ({part.size:,})",
                opacity=0.6,
                marker_color=PALETTE[i],
                xbins={"start": lo, "end": hi + size, "size": size},
            )
        )
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title="membership score (higher = more likely a member)",
        yaxis_title="candidates",
        margin={"t": title_top(title)},
    )
    return fig


def overfitting_figure(sweep: pd.DataFrame, *, knob_title: str) -> go.Figure:
    """Membership advantage and the train/test gap (both differences of two rates, in
    percent, left axis) and the loss attack's AUC on an axis of its own (right, from 0.5,
    guessing), against an overfitting knob."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [f"{v:g}" for v in sweep["value"]]
    fig.add_trace(
        go.Bar(
            x=x,
            y=sweep["gap"],
            name="gap: accuracy on members − on non-members (left)",
            marker_color="rgba(120,120,120,0.35)",
            hovertemplate="%{x}: gap %{y:.1%}<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=sweep["advantage"],
            name="membership advantage, loss attack (left)",
            mode="lines+markers",
            line={"color": PALETTE[0]},
            hovertemplate="%{x}: advantage %{y:.1%}<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=sweep["auc"],
            name="AUC, loss attack (right)",
            mode="lines+markers",
            line={"color": PALETTE[1], "dash": "dash"},
            marker={"symbol": "diamond", "size": 9},
            hovertemplate="%{x}: AUC %{y:.3f}<extra></extra>",
        ),
        secondary_y=True,
    )
    title = fit_title(f"Overfitting knob: {knob_title}")
    fig.update_layout(
        title=title,
        xaxis_title=knob_title,
        margin={"t": title_top(title)},
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
    )
    fig.update_xaxes(type="category")
    left = sweep[["advantage", "gap"]].to_numpy(dtype=float)
    top = max(0.05, float(np.nanmax(left)) * 1.15) if left.size else 1.0
    bottom = min(0.0, float(np.nanmin(left)) * 1.15) if left.size else 0.0
    fig.update_yaxes(
        title_text="advantage, gap",
        tickformat=".0%",
        range=[bottom, top],
        secondary_y=False,
    )
    auc = sweep["auc"].to_numpy(dtype=float)
    low = min(0.5, float(np.nanmin(auc)) - 0.02) if np.isfinite(auc).any() else 0.5
    fig.update_yaxes(
        title_text="AUC",
        title_font_color=PALETTE[1],
        tickformat=".1f",
        dtick=0.1,
        tickmode="linear",
        range=[low, 1.0],
        showgrid=False,
        secondary_y=True,
    )
    return fig
