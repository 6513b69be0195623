"""Figures of the White-box attacks page: C&W success against an L2 budget and the
distribution of perturbation norms (accuracy against ε and the adversarial gallery are
shared figures in :mod:`robustcore.viz.figures`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE

NORM_TITLES = {"linf": "L∞", "l2": "L2"}


def sweep_curves(runs: Iterable[tuple[str, Any]]) -> dict[str, pd.DataFrame]:
    """The accuracy-against-ε curves of one run and its what-ifs, by legend name.

    ``runs``: (legend suffix, ``WhiteBoxResult``) pairs, the first run with suffix "";
    the per-sample worst case is drawn for that first run only."""
    curves = {}
    for suffix, res in runs:
        for attack, grp in res.curves(worst_case=not suffix).items():
            curves[f"{attack}{suffix}"] = grp
    return curves


def gallery_default(options: Sequence[tuple[str, float | None]]) -> int:
    """The gallery shown first among ``WhiteBoxResult.gallery_options()``: the largest ε of
    the last swept attack (PGD when it ran), else the first option (C&W)."""
    swept = [i for i, o in enumerate(options) if o[1] is not None]
    return swept[-1] if swept else 0


def norm_default(eps_values: Sequence[float]) -> float | None:
    """The ε whose perturbation norms are shown first: the middle of the kept ones."""
    return eps_values[len(eps_values) // 2] if eps_values else None


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
