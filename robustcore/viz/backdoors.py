"""Figures of the Backdoors page: BadNets sweeps, the hidden trigger's ε sweep, both side by
side (pure functions: data in, Plotly out)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE

__all__ = ["attack_comparison_figure", "backdoor_sweep_figure", "hidden_trigger_figure"]

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


INTERPRETATION = {
    "poison_rate": "A handful of poisoned points is enough: the network learns the trigger "
    "as a shortcut while clean accuracy barely moves, which is why clean accuracy alone "
    "cannot reveal a backdoor.",
    "trigger_size": "A bigger trigger is a stronger, easier-to-learn feature, but also easier "
    "for a person (or a data check) to spot.",
    "blend_alpha": "This is the noise level of the poison: a faint noise pattern (small α) is "
    "hard to see and to detect, yet the network can still learn it; too faint and the "
    "signal drowns in the image, so the attack needs more poisons or fails.",
    "noise_std": "Gaussian noise added while training is the defender's noise level: it "
    "blurs fine trigger patterns, so strong noise can weaken a small trigger, at some cost "
    "in clean accuracy; a large, high-contrast trigger usually survives it.",
}
"""What each BadNets sweep shows, in one or two sentences (the page and the report say it)."""


def trend(table: pd.DataFrame, x: str, x_label: str, *, pct: bool = False) -> str:
    """One sentence: how attack success and clean accuracy move from the first to the last
    swept value."""
    first, last = table.iloc[0], table.iloc[-1]
    a, b = (f"{first[x]:.1%}", f"{last[x]:.1%}") if pct else (f"{first[x]:g}", f"{last[x]:g}")
    return (
        f"From {x_label} {a} to {b}, attack success goes from "
        f"{first['attack_success']:.0%} to {last['attack_success']:.0%} and clean accuracy "
        f"from {first['clean_accuracy']:.1%} to {last['clean_accuracy']:.1%}."
    )


def gallery_titles(table: pd.DataFrame) -> list[str]:
    """Captions of a backdoor gallery: "true t → pred p (confidence)" per image."""
    return [
        f"true {t} → pred {p} ({c:.0%})"
        for t, p, c in zip(table["true"], table["predicted"], table["confidence"], strict=True)
    ]
