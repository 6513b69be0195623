"""Figures of the "Adversarial detector" page: ROC curves per attack at the training ε,
detection against ε, the naive and the adaptive attack on the guarded model, and the
abstention cost of a threshold against what it detects. Pure functions: tables in, Plotly
figures out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE, add_roc_reference, fit_title, title_top

_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def _is(value: float, other: float) -> bool:
    return bool(np.isclose(float(value), float(other)))


def roc_curves(roc: pd.DataFrame, *, train_eps: float, fpr: float | None = None) -> go.Figure:
    """One ROC curve per attack at the training ε (C&W has no ε: its one curve), with the
    chance diagonal and, dotted, the target FPR of the guard's threshold.

    Args:
        roc: columns ``attack``, ``eps`` (NaN for C&W), ``fpr``, ``tpr``.
        train_eps: the ε whose curves are drawn.
        fpr: the guard's target false-positive rate (a vertical line), or ``None``.
    """
    fig = go.Figure()
    eps = roc["eps"].astype(float)
    chosen = roc[eps.isna() | np.isclose(eps.fillna(-1.0), train_eps)]
    for i, (attack, df) in enumerate(chosen.groupby("attack", sort=False)):
        at = df["eps"].iloc[0]
        name = str(attack) if pd.isna(at) else f"{attack} (ε={float(at):g})"
        fig.add_trace(
            go.Scatter(
                x=df["fpr"],
                y=df["tpr"],
                mode="lines",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)], "dash": _DASHES[i % len(_DASHES)]},
                hovertemplate="FPR %{x:.1%}<br>TPR %{y:.1%}<extra>" + name + "</extra>",
            )
        )
    add_roc_reference(fig, fpr, f"threshold's target FPR {fpr:.1%}" if fpr is not None else "")
    title = fit_title(
        f"Detection ROC per attack (clean test images vs adversarial ones, ε={train_eps:g})"
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "false-positive rate (clean images flagged)", "range": [0, 1]},
        yaxis={"title": "true-positive rate (adversarial flagged)", "range": [0, 1.02]},
        legend={"orientation": "h", "y": -0.2},
        height=520,
        margin={"t": title_top(title)},
    )
    return fig


def detection_vs_eps(
    detection: pd.DataFrame, *, train_eps: float, fpr: float, train_attack: str | None = None
) -> go.Figure:
    """Detection at the guard's threshold against ε, one line per budgeted attack (with its
    AUC in the hover); C&W (no ε) as a horizontal dashed line; the training ε marked.

    Args:
        detection: columns ``attack``, ``eps`` (NaN for C&W), ``detected``, ``auc``,
            ``n_adv``, ``attack_success``.
        train_eps: the ε the detector was trained at (a vertical line).
        fpr: the threshold's target false-positive rate (in the title).
        train_attack: the attack's label the detector was trained on (in the legend).
    """
    fig = go.Figure()
    budgeted = detection[detection["eps"].notna()]
    for i, (attack, df) in enumerate(budgeted.groupby("attack", sort=False)):
        df = df.sort_values("eps")
        name = f"{attack}{' (trained on)' if attack == train_attack else ''}"
        fig.add_trace(
            go.Scatter(
                x=df["eps"],
                y=df["detected"],
                mode="lines+markers",
                name=name,
                customdata=np.stack([df["auc"], df["n_adv"], df["attack_success"]], axis=1),
                line={"color": PALETTE[i % len(PALETTE)], "dash": _DASHES[i % len(_DASHES)]},
                hovertemplate="ε=%{x:g}: %{y:.1%} detected<br>AUC %{customdata[0]:.3f} · "
                "%{customdata[1]} examples that fool the model (%{customdata[2]:.0%})"
                "<extra>" + name + "</extra>",
            )
        )
    others = detection[detection["eps"].isna()]
    for _, row in others.iterrows():
        if pd.isna(row["detected"]):
            continue
        fig.add_hline(
            y=float(row["detected"]),
            line_dash="dash",
            line_color="gray",
            annotation_text=f"{row['attack']} (no ε): {float(row['detected']):.0%}",
            annotation_position="top left",
        )
    fig.add_vline(
        x=train_eps,
        line_dash="dot",
        line_color="gray",
        annotation_text=f"trained at ε={train_eps:g}",
        annotation_position="bottom right",
    )
    title = fit_title(f"Adversarial examples flagged against ε (threshold at {fpr:.1%} FPR)")
    fig.update_layout(
        title=title,
        xaxis_title="ε (L∞)",
        yaxis_title="detected (of the examples that fool the model)",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.05],
        legend={"orientation": "h", "y": -0.25},
        margin={"t": title_top(title), "b": 110},
    )
    return fig


ADAPTIVE_BARS = (
    ("fooled", "fool the classifier"),
    ("detected", "flagged (of those)"),
    ("success", "success: fooled and not flagged"),
)


def adaptive_bars(adaptive: pd.DataFrame) -> go.Figure:
    """The naive and the adaptive attack side by side: how often each fools the
    classifier, how many of those the detector flags, and the joint success.

    Args:
        adaptive: one row per attack with ``attack``, ``eps``, ``n``, ``fooled``,
            ``detected``, ``success``.
    """
    fig = go.Figure()
    labels = [label for _, label in ADAPTIVE_BARS]
    for i, row in enumerate(adaptive.itertuples(index=False)):
        values = [float(getattr(row, col)) for col, _ in ADAPTIVE_BARS]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=str(row.attack),
                marker_color=PALETTE[i % len(PALETTE)],
                text=[f"{v:.0%}" for v in values],
                textposition="outside",
                hovertemplate="%{x}: %{y:.1%}<extra>" + str(row.attack) + "</extra>",
            )
        )
    eps = float(adaptive["eps"].iloc[0]) if len(adaptive) else float("nan")
    n = int(adaptive["n"].iloc[0]) if len(adaptive) else 0
    title = fit_title(f"Naive vs adaptive PGD on the guarded model at ε={eps:g} ({n} images)")
    fig.update_layout(
        title=title,
        barmode="group",
        yaxis_title="share of the images",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.15],
        legend={"orientation": "h", "y": -0.2},
        margin={"t": title_top(title)},
    )
    return fig


def abstention_tradeoff(tradeoff: pd.DataFrame) -> go.Figure:
    """What a threshold costs on clean data against what it catches: per target FPR, the
    clean test images' abstention (x) and the detection of the naive and the adaptive
    examples (y); the run's threshold is ringed.

    Args:
        tradeoff: columns ``target_fpr``, ``clean_abstention``, ``guarded_accuracy``,
            ``naive_detected``, ``adaptive_detected``, ``chosen``.
    """
    fig = go.Figure()
    df = tradeoff.sort_values("clean_abstention")
    series = (("naive_detected", "naive PGD"), ("adaptive_detected", "adaptive PGD"))
    for i, (col, name) in enumerate(series):
        fig.add_trace(
            go.Scatter(
                x=df["clean_abstention"],
                y=df[col],
                mode="lines+markers",
                name=f"{name} detected",
                customdata=np.stack([df["target_fpr"], df["guarded_accuracy"]], axis=1),
                line={"color": PALETTE[i % len(PALETTE)], "dash": _DASHES[i % len(_DASHES)]},
                hovertemplate="threshold for %{customdata[0]:.1%} FPR: %{x:.1%} of clean "
                "images rejected, guarded accuracy %{customdata[1]:.1%}<br>%{y:.1%} "
                "detected<extra>" + name + "</extra>",
            )
        )
    chosen = df[df["chosen"].astype(bool)]
    if not chosen.empty:
        row = chosen.iloc[0]
        fig.add_trace(
            go.Scatter(
                x=[row["clean_abstention"], row["clean_abstention"]],
                y=[row["naive_detected"], row["adaptive_detected"]],
                mode="markers",
                name=f"this run's threshold ({float(row['target_fpr']):.1%} FPR)",
                marker={"size": 16, "symbol": "circle-open", "color": "black"},
                hoverinfo="skip",
            )
        )
    title = fit_title("Abstention cost on clean images against detection, per threshold")
    fig.update_layout(
        title=title,
        xaxis_title="clean test images the guarded model abstains on",
        xaxis_tickformat=".0%",
        yaxis_title="adversarial examples detected",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.05],
        legend={"orientation": "h", "y": -0.25},
        margin={"t": title_top(title), "b": 110},
    )
    return fig
