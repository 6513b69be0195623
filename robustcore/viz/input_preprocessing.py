"""Figures of the Input preprocessing page: the clean-accuracy cost of each transform, the
naive and adaptive attacks' accuracy against ε on one chart, and the ROC of the
feature-squeezing detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE, add_roc_reference, fit_title, title_top

STYLE: dict[str, tuple[str, str, float]] = {
    "PGD on the undefended model": ("#7f7f7f", "dash", 2.0),
    "Naive PGD (exact gradients)": (PALETTE[1], "solid", 4.0),
    "BPDA PGD (adaptive)": (PALETTE[0], "solid", 3.0),
    "BPDA + EOT PGD (adaptive)": (PALETTE[2], "dashdot", 2.5),
    "PGD transferred from the undefended model": (PALETTE[4], "dot", 2.0),
}
"""Colour, dash and width of each attack's line (the naive attack in red, drawn widest,
so a coinciding adaptive line stays visible on top of it)."""


def clean_cost_figure(clean: pd.DataFrame) -> go.Figure:
    """Horizontal bars: clean accuracy of the undefended model, of each transform alone
    and of the whole chain, with the cost (the drop) in each bar's text."""
    df = clean.iloc[::-1]
    text = [
        f"{a:.1%}" + ("" if c == 0 else f" ({-c:+.1%})")
        for a, c in zip(df["clean_accuracy"], df["cost"], strict=True)
    ]
    colors = ["#7f7f7f" if str(t).startswith("none") else PALETTE[0] for t in df["transform"]]
    fig = go.Figure(
        go.Bar(
            x=df["clean_accuracy"],
            y=df["transform"],
            orientation="h",
            text=text,
            textposition="auto",
            marker_color=colors,
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    title = fit_title("Clean accuracy behind each transform (the cost of the defense)")
    fig.update_layout(
        title=title,
        xaxis_title="clean test accuracy",
        xaxis_tickformat=".0%",
        xaxis_range=[0, 1.05],
        margin={"t": title_top(title), "l": 10},
        height=max(260, 70 + 45 * len(df)),
        yaxis={"automargin": True},
    )
    return fig


def accuracy_vs_eps(
    sweep: pd.DataFrame, *, defense: str = "", chance: float | None = None
) -> go.Figure:
    """One line per attack: accuracy against the L∞ budget ε. The naive attack's flat line
    is the apparent robustness; the adaptive lines (BPDA, EOT) are what the defense is
    worth. ``chance``: a dotted reference line (1 / classes)."""
    fig = go.Figure()
    for i, (attack, grp) in enumerate(sweep.groupby("attack", sort=False)):
        grp = grp.sort_values("eps")
        color, dash, width = STYLE.get(str(attack), (PALETTE[i % len(PALETTE)], "solid", 2.0))
        fig.add_trace(
            go.Scatter(
                x=grp["eps"],
                y=grp["accuracy"],
                name=str(attack),
                mode="lines+markers",
                line={"color": color, "dash": dash, "width": width},
                marker={"size": 4 + 1.5 * width},
                hovertemplate="ε=%{x:g}: %{y:.1%}<extra>" + str(attack) + "</extra>",
            )
        )
    if chance is not None:
        fig.add_hline(
            y=chance,
            line_dash="dot",
            line_color="gray",
            layer="below",
            annotation_text=f"chance ({chance:.0%})",
            annotation_position="bottom right",
        )
    behind = f" behind {defense}" if defense else ""
    title = fit_title(f"Accuracy against ε{behind}: naive and adaptive attacks")
    fig.update_layout(
        title=title,
        xaxis_title="L∞ budget ε",
        yaxis_title="accuracy on the attacked test images",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.05],
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.25},
        margin={"t": title_top(title), "b": 130},
    )
    return fig


def detection_roc_figure(
    roc: pd.DataFrame,
    *,
    target_fpr: float | None = None,
    squeezers: str = "",
    n_clean: int | None = None,
) -> go.Figure:
    """ROC of the feature-squeezing score per attack (clean against adversarial examples),
    the chance diagonal and, dotted, the threshold's target false-positive rate."""
    fig = go.Figure()
    for i, (attack, df) in enumerate(roc.groupby("attack", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=df["fpr"],
                y=df["tpr"],
                mode="lines",
                name=str(attack),
                line={
                    "color": PALETTE[i % len(PALETTE)],
                    "width": 3 - 0.5 * i,
                    "dash": ("solid", "dash", "dot")[i % 3],
                },  # fmt: skip
                hovertemplate="FPR %{x:.1%}<br>TPR %{y:.1%}<extra>" + str(attack) + "</extra>",
            )
        )
    target = f"target FPR {target_fpr:.0%}" if target_fpr is not None else ""
    add_roc_reference(fig, target_fpr, target)
    by = f" ({squeezers})" if squeezers else ""
    title = fit_title(f"Feature-squeezing detection{by}: ROC per attack")
    on = f" ({n_clean} clean test images)" if n_clean else ""
    fig.update_layout(
        title=title,
        xaxis_title=f"false-positive rate on clean images{on}",
        yaxis_title="detection rate (TPR) on adversarial examples",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".0%",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
        legend={"orientation": "h", "y": -0.25},
        margin={"t": title_top(title), "b": 130},
    )
    return fig


def chance_level(num_classes: int | None) -> float | None:
    """1 / classes (``None`` when unknown)."""
    if not num_classes or not np.isfinite(num_classes):
        return None
    return 1.0 / float(num_classes)
