"""Figures of the Certified robustness page: certified accuracy against the L2 radius per
σ with the empirical PGD-L2 accuracy of the smoothed classifier on the same chart, and the
clean accuracy and abstentions of the base and smoothed classifiers per σ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import NARROW_PX, PALETTE, fit_title, title_top, wrap_text

ON_CHART_NOTE = (
    "The certificate is a lower bound: each diamond should lie on or above the open circle "
    "of its colour (the certified accuracy of the same attacked images), up to PREDICT's "
    "abstentions (counted as wrong) and sampling error (α)."
)

BOUND_NOTE = (
    "Solid steps: the certified accuracy of all the certified images; diamonds: PREDICT's "
    "accuracy on the PGD-L2 examples of the first images (radius 0: on the clean images); "
    "open circles: the certified accuracy of those same images. A certified image is "
    "classified right by the smoothed classifier under every attack within its radius "
    "(with probability 1 − α), so the diamonds must not fall below the circles except "
    "where PREDICT abstains or errs (probability α)."
)


def certified_vs_radius(
    curve: pd.DataFrame,
    empirical: pd.DataFrame | None = None,
    *,
    width_px: float = NARROW_PX,
) -> go.Figure:
    """Per σ (one colour): the certified accuracy as a step function of the L2 radius
    (``curve``: sigma, radius, accuracy; constant up to the next radius) and, dashed with
    markers, PREDICT's accuracy on PGD-L2 examples at each attacked radius (``empirical``:
    sigma, radius, accuracy, abstain_rate, certified_same_images, images; radius 0 is the
    clean accuracy)."""
    fig = go.Figure()
    sigmas = sorted({float(s) for s in curve["sigma"]})
    for i, sigma in enumerate(sigmas):
        color = PALETTE[i % len(PALETTE)]
        c = curve[np.isclose(curve["sigma"], sigma)].sort_values("radius")
        fig.add_trace(
            go.Scatter(
                x=c["radius"],
                y=c["accuracy"],
                mode="lines",
                line={"color": color, "width": 3, "shape": "hv"},
                name=f"certified, σ={sigma:g}",
                legendgroup=f"s{i}",
                hovertemplate="r=%{x:.3f}: %{y:.1%} certified<extra>σ=" + f"{sigma:g}</extra>",
            )
        )
        if empirical is None or empirical.empty:
            continue
        e = empirical[np.isclose(empirical["sigma"], sigma)].sort_values("radius")
        if e.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=e["radius"],
                y=e["accuracy"],
                mode="lines+markers",
                line={"color": color, "width": 2, "dash": "dash"},
                marker={"size": 9, "symbol": "diamond"},
                name=f"PGD-L2 + PREDICT, σ={sigma:g}",
                legendgroup=f"s{i}",
                customdata=np.stack(
                    [e["abstain_rate"], e["certified_same_images"], e["images"]], axis=1
                ),
                hovertemplate="r=%{x:g}: %{y:.1%} empirical (%{customdata[0]:.0%} abstained;"
                " certified on the same %{customdata[2]} images: %{customdata[1]:.0%})"
                "<extra>σ=" + f"{sigma:g}</extra>",
            )
        )
        # The certified accuracy of the attacked images themselves, at the attacked radii:
        # the value each diamond above must not fall below.
        fig.add_trace(
            go.Scatter(
                x=e["radius"],
                y=e["certified_same_images"],
                mode="markers",
                marker={"size": 11, "symbol": "circle-open", "color": color, "line": {"width": 2}},
                name=f"certified, attacked images, σ={sigma:g}",
                legendgroup=f"s{i}",
                hovertemplate="r=%{x:g}: %{y:.1%} of the attacked images certified"
                "<extra>σ=" + f"{sigma:g}</extra>",
            )
        )
    title = fit_title(
        "Certified (solid) and empirical PGD-L2 (dashed) accuracy of the smoothed classifier "
        "against the L2 radius",
        width_px,
    )
    note = wrap_text(ON_CHART_NOTE, max(30, int(width_px / 6.2)))
    lines = note.count("<br>") + 1
    fig.add_annotation(
        text=note,
        xref="paper",
        yref="paper",
        x=0,
        y=1.0,
        xanchor="left",
        yanchor="bottom",
        yshift=4,
        align="left",
        showarrow=False,
        font={"size": 11, "color": "#555"},
    )
    fig.update_layout(
        title=title,
        xaxis_title="L2 radius r",
        yaxis_title="accuracy (share of test images)",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.05],
        xaxis_rangemode="tozero",
        legend={"orientation": "h", "y": -0.22},
        height=520 + 14 * lines,
        margin={"t": title_top(title, above=14 * lines + 6), "b": 150},
    )
    return fig


def clean_accuracy_bars(summary: pd.DataFrame, *, reference: float | None = None) -> go.Figure:
    """Per σ: the noise-trained base model's clean accuracy and its accuracy under noise,
    the smoothed classifier's clean accuracy (PREDICT) and certified accuracy at radius 0,
    next to PREDICT's and CERTIFY's abstentions (hatched); ``reference`` (the current
    model's clean accuracy on the same images) as a dashed line."""
    labels = [f"σ={s:g}" for s in summary["sigma"]]
    bars = [
        ("base model, clean", "base_clean_accuracy", ""),
        ("base model under noise", "base_noisy_accuracy", ""),
        ("smoothed (PREDICT), clean", "smoothed_accuracy", ""),
        ("certified at r=0 (CERTIFY)", "certified_accuracy", ""),
        ("PREDICT abstains", "predict_abstain_rate", "/"),
        ("CERTIFY abstains", "certify_abstain_rate", "/"),
    ]
    fig = go.Figure()
    for i, (name, col, pattern) in enumerate(bars):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=summary[col],
                name=name,
                marker={"color": PALETTE[i % len(PALETTE)], "pattern": {"shape": pattern}},
                text=[f"{v:.0%}" for v in summary[col]],
                textposition="outside",
                hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>",
            )
        )
    if reference is not None and np.isfinite(reference):
        fig.add_hline(
            y=reference,
            line_dash="dash",
            line_color="gray",
            layer="below",
        )
    text = "Clean accuracy and abstentions per noise level σ"
    if reference is not None and np.isfinite(reference):
        text += f" (dashed: the current model, {reference:.0%})"
    title = fit_title(text)
    fig.update_layout(
        title=title,
        barmode="group",
        yaxis_title="share of test images",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.15],
        legend={"orientation": "h", "y": -0.2},
        margin={"t": title_top(title), "b": 140},
        uniformtext={"minsize": 8, "mode": "hide"},
    )
    return fig
