"""Figures of the "Query limitation" page: success against query budget with and without the
stateful detector, detection delay, accounts the adaptive attacker needs, and the k-NN
distances of benign queries against the threshold. Pure functions of tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .blackbox import success_vs_queries_figure
from .figures import NARROW_PX, PALETTE, fit_title, title_top

HALF_PX = NARROW_PX / 2 - 10
"""The width of a chart in one of two ``st.columns`` at the narrowest layout."""
HALF_TITLE = 14
"""Font size of the titles of those half-width charts."""

DEFENSE_DASH = {
    "no defense": "solid",
    "stateful detector": "dash",
    "blinded, stateful detector": "dot",
}


def _colors(attacks: list[str]) -> dict[str, str]:
    return {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(attacks)}


def budget_defense_figure(
    curves: pd.DataFrame,
    *,
    title: str = "Success against query budget, with and without the stateful detector",
) -> go.Figure:
    """One step line per attack × defense (columns ``attack``, ``defense``, ``budget``,
    ``success_rate``): solid without the detector, dashed with it (a success counts only
    before the client is caught), dotted for blinded queries. Log query axis."""
    df = curves.assign(label=curves["attack"].astype(str) + " · " + curves["defense"].astype(str))
    # The defended lines of different attacks often coincide (all caught before any
    # success: 0 %, or the same few successes): earlier attacks' lines are drawn wider, so a
    # coinciding later one leaves the earlier colour showing around it.
    return success_vs_queries_figure(
        df,
        title=title,
        color_by="attack",
        dash_by="defense",
        dash={**{d: "dashdot" for d in df["defense"].astype(str)}, **DEFENSE_DASH},
        x_title="query budget per image",
        widen_earlier=True,
    )


def detection_delay_figure(
    per_image: pd.DataFrame,
    *,
    k: int | None = None,
    title: str = "Detection delay: the query at which each attacker was caught",
) -> go.Figure:
    """A box (with every point) per attack of ``detected_at`` over the caught images, named
    with how many were caught. ``k`` draws the earliest possible query (k + 1).

    An attack whose caught images were all caught at the same query has no distribution
    to draw (a box would be a flat strip): it is one marker with the number written by it.
    """
    fig = go.Figure()
    attacks = list(dict.fromkeys(per_image["attack"]))
    color = _colors(attacks)
    top = 1.0
    for attack in attacks:
        grp = per_image[per_image["attack"] == attack]
        caught = grp.loc[grp["detected_at"] > 0, "detected_at"].to_numpy(dtype=float)
        top = max(top, float(caught.max()) if caught.size else 1.0)
        name = f"{attack}<br>{caught.size}/{len(grp)} caught"
        hover = "caught at query %{y:,}<extra>" + str(attack) + "</extra>"
        if caught.size and caught.min() == caught.max():
            fig.add_trace(
                go.Scatter(
                    x=[name],
                    y=[caught[0]],
                    mode="markers+text",
                    name=name,
                    marker={"color": color[attack], "size": 12, "symbol": "diamond"},
                    text=[f"all {caught.size} at<br>query {caught[0]:,.0f}"],
                    textposition="top center",
                    textfont={"color": color[attack]},
                    cliponaxis=False,
                    hovertemplate=hover,
                )
            )
            continue
        fig.add_trace(
            go.Box(
                y=caught,
                name=name,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": color[attack], "size": 5, "opacity": 0.6},
                line={"color": color[attack]},
                hovertemplate=hover,
            )
        )
    if k is not None:
        top = max(top, k + 1.0)
        fig.add_hline(
            y=k + 1,
            line_dash="dot",
            line_color="gray",
            annotation_text=f"earliest possible: query k + 1 = {k + 1}",
            annotation_position="bottom left",
        )
    head = fit_title(title, HALF_PX, size=HALF_TITLE)
    head["font"] = {"size": HALF_TITLE}
    fig.update_layout(
        title=head,
        margin={"t": title_top(head)},
        yaxis_title="query number when caught",
        yaxis_range=[0, top * 1.2],
        xaxis_type="category",
        showlegend=False,
    )
    return fig


def accounts_figure(
    per_image: pd.DataFrame,
    *,
    per_account: int | None = None,
    title: str = "Accounts the adaptive attacker needs per image",
) -> go.Figure:
    """Per attack, a box of accounts per image for the two adaptive strategies: a fresh
    account after each ban (``accounts_resume``: the paper's count of detections + 1) and,
    in addition, a fresh one every ``per_account`` queries (``accounts_rotate``)."""
    fig = go.Figure()
    strategies = [
        ("accounts_resume", "new account after each ban", PALETTE[0]),
        (
            "accounts_rotate",
            f"new account every {per_account} queries" if per_account else "rotating accounts",
            PALETTE[2],
        ),
    ]
    for col, name, color in strategies:
        if col not in per_image:
            continue
        fig.add_trace(
            go.Box(
                x=per_image["attack"],
                y=per_image[col],
                name=name,
                boxpoints="outliers",
                marker_color=color,
                hovertemplate="%{y} accounts<extra>" + name + "</extra>",
            )
        )
    head = fit_title(title, HALF_PX, size=HALF_TITLE)
    head["font"] = {"size": HALF_TITLE}
    fig.update_layout(
        title=head,
        margin={"t": title_top(head)},
        boxmode="group",
        yaxis_title="accounts per image",
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def benign_distance_figure(
    distances: np.ndarray | pd.Series,
    threshold: float,
    *,
    title: str = "Benign queries: mean distance to the k nearest earlier queries",
) -> go.Figure:
    """Histogram of benign queries' k-NN mean distances with the detection threshold: every
    bar left of the line is a false alarm."""
    d = np.asarray(distances, dtype=float)
    d = d[np.isfinite(d)]
    fig = go.Figure(
        go.Histogram(
            x=d,
            nbinsx=60,
            marker_color=PALETTE[0],
            opacity=0.75,
            name="benign queries",
            hovertemplate="distance %{x}: %{y} queries<extra></extra>",
        )
    )
    fig.add_vline(
        x=float(threshold),
        line_color=PALETTE[1],
        line_dash="dash",
        annotation_text=f"threshold {threshold:.3g}",
        annotation_position="top right",
    )
    fig.update_layout(
        title=title,
        xaxis_title="mean distance to the k nearest earlier queries (encoder space)",
        yaxis_title="queries",
        showlegend=False,
    )
    return fig
