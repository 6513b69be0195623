"""Figures of the Defensive distillation page: attack success against the temperature,
and the distribution of input-gradient norms per temperature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import DASHES, PALETTE

ZERO_FLOOR = -12.0
"""log10 of a gradient norm is drawn at this value when the norm is exactly 0, or two
decades below the smallest non-zero norm when that is smaller (zeros stay at the left)."""


def zero_position(norms: np.ndarray) -> float:
    """Where exact zeros are drawn on the log10 axis: left of every non-zero norm."""
    nonzero = norms[norms > 0]
    if nonzero.size == 0:
        return ZERO_FLOOR
    return float(min(ZERO_FLOOR, np.floor(np.log10(nonzero.min())) - 2))


def success_vs_temperature(
    success: pd.DataFrame, *, undefended: float | None = None, eps: float | None = None
) -> go.Figure:
    """One line per attack: success rate against the distillation temperature (log axis);
    the undefended model's naive success as a dashed reference line (under the lines).

    Attacks whose success is the same at every temperature (several at 100 %, typically)
    are one line whose legend entry names them all and says so: stacked, the lowest of
    them could not be seen."""
    fig = go.Figure()
    temps = sorted({float(t) for t in success["temperature"]})
    series: dict[tuple, list[str]] = {}
    frames: dict[tuple, pd.DataFrame] = {}
    for attack, grp in success.groupby("attack", sort=False):
        grp = grp.sort_values("temperature")
        key = tuple(
            zip(grp["temperature"].astype(float), grp["success_rate"].round(9), strict=True)
        )
        series.setdefault(key, []).append(str(attack))
        frames.setdefault(key, grp)
    for i, (key, attacks) in enumerate(series.items()):
        grp = frames[key]
        attack = attacks[0] if len(attacks) == 1 else "identical: " + "<br>= ".join(attacks)
        fig.add_trace(
            go.Scatter(
                x=grp["temperature"],
                y=grp["success_rate"],
                name=attack,
                mode="lines+markers",
                # Later lines are thinner with smaller markers, so that lines which
                # coincide at some temperatures (at 100 %, say) all stay visible there.
                line={
                    "color": PALETTE[i % len(PALETTE)],
                    "dash": DASHES[i % len(DASHES)],
                    "width": max(1.5, 7 - 1.8 * i),
                },
                marker={"size": max(5, 15 - 3 * i)},
                hovertemplate="T=%{x:g}: %{y:.1%}<extra>" + " = ".join(attacks) + "</extra>",
            )
        )
    if undefended is not None:
        fig.add_hline(
            y=undefended,
            line_dash="dash",
            line_color="gray",
            layer="below",
            annotation_text=f"naive PGD on the undefended model ({undefended:.0%})",
            annotation_position="bottom right",
        )
    at = f" at ε={eps:g}" if eps is not None else ""
    fig.update_layout(
        title=f"Attack success against the temperature{at}",
        xaxis_title="distillation temperature T (log scale)",
        xaxis_type="log",
        xaxis={"tickvals": temps, "ticktext": [f"{t:g}" for t in temps]},
        yaxis_title="success rate (of inputs classified right)",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.05],
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.3},
        margin={"b": 120},
    )
    return fig


def gradient_norm_histogram(norms: pd.DataFrame) -> go.Figure:
    """Overlaid histograms of log10 ‖∇ₓ loss‖ per model; exact zeros (underflow) are
    drawn in a bar of their own at the left, and counted in the legend."""
    fig = go.Figure()
    floor = zero_position(norms["norm"].to_numpy(dtype=float))
    for i, (model, grp) in enumerate(norms.groupby("model", sort=False)):
        v = grp["norm"].to_numpy(dtype=float)
        zero = v == 0
        logv = np.where(zero, floor, np.log10(np.where(zero, 1.0, v)))
        fig.add_trace(
            go.Histogram(
                x=logv,
                name=f"{model} ({zero.mean():.0%} exactly 0)",
                opacity=0.6,
                marker_color=PALETTE[i % len(PALETTE)],
                xbins={"size": 0.5},
            )
        )
    fig.update_layout(
        title="Input-gradient norms of the cross-entropy (log10; exact zeros at the left)",
        barmode="overlay",
        xaxis_title=f"log10 ‖∇ₓ loss‖₂ (exactly 0 drawn at {floor:g})",
        yaxis_title="inputs",
        legend={"orientation": "h", "y": -0.3},
        margin={"b": 120},
    )
    return fig
