"""Figures of the black-box pages: success against queries, query counts and the transfer
matrix. Pure functions of tables; nothing here touches a model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE


def success_vs_queries_figure(
    curves: pd.DataFrame,
    *,
    title: str = "Success rate against queries per image",
    color_by: str = "label",
    dash_by: str | None = None,
    dash: Mapping[str, str] | None = None,
    x_title: str = "queries per image (budget)",
    widen_earlier: bool = False,
) -> go.Figure:
    """One step line per ``label`` of a table with ``budget`` and ``success_rate`` columns
    (:func:`robustcore.evaluation.success_vs_queries`), on a logarithmic query axis.

    Lines share a colour (and a legend group) when they share the value of ``color_by``
    (e.g. the attack); ``dash`` maps the value of ``dash_by`` (default: the label) to a
    Plotly dash style (e.g. ``"dash"`` for the defended variant of the same attack). With
    ``widen_earlier`` the lines of earlier colour groups are drawn wider (2 px for the
    last group, 1.5 px more for each one before), so that lines which coincide all stay
    visible, as in :func:`~robustcore.viz.figures.accuracy_vs_eps`.
    """
    fig = go.Figure()
    groups = list(dict.fromkeys(curves[color_by].astype(str)))
    for label, grp in curves.groupby("label", sort=False):
        grp = grp.sort_values("budget")
        first = grp.iloc[0]
        group = str(first[color_by])
        style = (dash or {}).get(str(first[dash_by or "label"]), "solid")
        rank = len(groups) - 1 - groups.index(group)
        width = 2 + 1.5 * rank if widen_earlier else 2
        fig.add_trace(
            go.Scatter(
                x=grp["budget"].clip(lower=1),
                y=grp["success_rate"],
                mode="lines",
                name=str(label),
                legendgroup=group,
                line={
                    "color": PALETTE[groups.index(group) % len(PALETTE)],
                    "shape": "hv",
                    "dash": style,
                    "width": width,
                },
                hovertemplate="≤ %{x:,} queries: %{y:.1%} fooled<extra>" + str(label) + "</extra>",
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        xaxis_type="log",
        yaxis_title="success rate",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.02],
        hovermode="x unified",
    )
    return fig


def query_histogram(
    samples: Mapping[str, Sequence[float]],
    *,
    title: str = "Queries each successful attack needed",
) -> go.Figure:
    """Overlaid histograms of per-image query counts (log-spaced bins), one per attack."""
    fig = go.Figure()
    values = [np.asarray(v, dtype=float) for v in samples.values()]
    top = max((float(v.max()) for v in values if v.size), default=1.0)
    edges = np.unique(np.round(np.logspace(0, np.log10(max(top, 2.0)) + 1e-9, 31)))
    centers = np.sqrt(edges[:-1] * edges[1:])
    for i, (name, v) in enumerate(zip(samples, values, strict=True)):
        counts, _ = np.histogram(v, bins=edges)
        fig.add_trace(
            go.Bar(
                x=centers,
                y=counts,
                width=np.diff(edges) * 0.95,
                name=name,
                opacity=0.6,
                marker_color=PALETTE[i % len(PALETTE)],
                customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                hovertemplate="%{customdata[0]:,.0f}–%{customdata[1]:,.0f} queries: "
                "%{y} images<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title=title,
        barmode="overlay",
        xaxis_type="log",
        xaxis_title="queries per image",
        yaxis_title="images",
    )
    return fig


def transfer_heatmap(
    matrix: pd.DataFrame,
    *,
    value: str = "success_rate",
    title: str = "Transfer success: craft on the surrogate (row), attack the target (column)",
) -> go.Figure:
    """Heat map of a transfer matrix table (``surrogate``, ``target``, ``value`` columns).

    The diagonal is the white-box attack on the model itself; off-diagonal cells are what
    reaches a target the attacker never saw.
    """
    table = matrix.pivot(index="surrogate", columns="target", values=value)
    order = list(dict.fromkeys(matrix["surrogate"]))
    cols = list(dict.fromkeys(matrix["target"]))
    table = table.reindex(index=order, columns=cols)
    z = table.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in cols],
            y=[str(r) for r in order],
            zmin=0.0,
            zmax=1.0,
            colorscale="Reds",
            text=np.vectorize(lambda v: "" if np.isnan(v) else f"{v:.0%}")(z),
            texttemplate="%{text}",
            colorbar={"title": "fooled", "tickformat": ".0%"},
            hovertemplate="surrogate %{y} → target %{x}: %{z:.1%} fooled<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="target model",
        yaxis_title="surrogate model (attack crafted here)",
        yaxis_autorange="reversed",
        xaxis_type="category",
        yaxis_type="category",
    )
    return fig
