"""Figures of the evasion pages: C&W success against an L2 budget, perturbation norms and the
adversarial gallery (original, adversarial, amplified perturbation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import PALETTE, _as_numpy, _to_rgb, perturbation_heatmap


def success_vs_budget(
    curves: Mapping[str, pd.DataFrame],
    *,
    title: str = "C&W: inputs fooled within an L2 budget",
) -> go.Figure:
    """One line per run: the fraction of inputs a minimum-norm attack fooled with an L2
    perturbation no larger than the budget (columns ``l2_budget`` and ``success_rate``)."""
    fig = go.Figure()
    for i, (name, df) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=df["l2_budget"],
                y=df["success_rate"],
                mode="lines",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)], "shape": "hv"},
                hovertemplate="L2 ≤ %{x:.2f}: %{y:.1%} fooled<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="L2 budget",
        yaxis_title="success rate",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.02],
        hovermode="x unified",
    )
    return fig


def norm_histogram(
    samples: Mapping[str, Sequence[float]],
    *,
    norm: str = "l2",
    title: str = "",
) -> go.Figure:
    """Overlaid histograms of per-input perturbation norms, one per named group."""
    fig = go.Figure()
    for i, (name, values) in enumerate(samples.items()):
        fig.add_trace(
            go.Histogram(
                x=np.asarray(values, dtype=float),
                name=name,
                opacity=0.6,
                marker_color=PALETTE[i % len(PALETTE)],
                nbinsx=30,
            )
        )
    label = "L2" if norm == "l2" else "L∞"
    fig.update_layout(
        title=title or f"Distribution of {label} perturbation norms",
        barmode="overlay",
        xaxis_title=f"{label} norm of x_adv − x",
        yaxis_title="inputs",
    )
    return fig


def adversarial_gallery(
    clean,
    adversarial,
    rows: pd.DataFrame,
    *,
    title: str = "",
    amplify: float | None = None,
) -> go.Figure:
    """Three rows per input: the original (true label), the adversarial input (predicted
    label and confidence) and the perturbation as an amplified red/blue heat map.

    ``rows`` has one row per input with ``true``, ``predicted``, ``confidence``, ``success``.
    """
    x = _as_numpy(clean)
    adv = _as_numpy(adversarial)
    n = x.shape[0]
    pert = (adv - x).sum(axis=1)
    peak = float(np.abs(pert).max()) if pert.size else 0.0
    scale = amplify if amplify is not None else (1.0 / peak if peak > 0 else 1.0)
    recs = rows.to_dict("records")
    titles = [f"true {r['true']}" for r in recs]
    titles += [
        f"{'✗' if r['success'] else '✓'} pred {r['predicted']} ({r['confidence']:.0%})"
        for r in recs
    ]
    titles += [f"×{scale:.0f} · L2 {r['l2']:.2f}" if "l2" in r else "" for r in recs]
    fig = make_subplots(
        rows=3,
        cols=max(n, 1),
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=0.08,
        row_titles=["original", "adversarial", "perturbation"],
    )
    for i in range(n):
        fig.add_trace(go.Image(z=_to_rgb(x[i]), hoverinfo="skip"), row=1, col=i + 1)
        fig.add_trace(go.Image(z=_to_rgb(adv[i]), hoverinfo="skip"), row=2, col=i + 1)
        fig.add_trace(perturbation_heatmap(pert[i], scale), row=3, col=i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for ann in fig.layout.annotations:
        ann.font = {"size": 10}
    fig.update_layout(
        title=title or None,
        height=480,
        margin={"l": 10, "r": 30, "t": 60 if title else 30, "b": 10},
    )
    return fig
