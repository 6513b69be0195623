"""Figures of the Adversarial training page: clean and robust accuracy per epoch with the
watchdog's decision, and both models' accuracy against ε (shared figure)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE


def robust_training_curves(history: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Clean test accuracy, held-out PGD accuracy and the watchdog's training-subset PGD
    accuracy per epoch; the kept epoch is marked, and a stop by the watchdog is labelled."""
    fig = go.Figure()
    n = int(history["robust_n"].iloc[0]) if "robust_n" in history else 0
    series = (
        ("test_acc", "clean accuracy (test set)", PALETTE[0], "solid"),
        ("robust_acc", f"PGD-10 accuracy ({n} held-out test images)", PALETTE[1], "solid"),
        ("watch_acc", "PGD-10 accuracy (watched training images)", PALETTE[3], "dot"),
    )
    for col, name, color, dash in series:
        if col in history:
            fig.add_trace(
                go.Scatter(
                    x=history["epoch"],
                    y=history[col],
                    name=name,
                    mode="lines+markers",
                    line={"color": color, "dash": dash},
                    hovertemplate="epoch %{x}: %{y:.1%}<extra>" + name + "</extra>",
                )
            )
    if "kept" in history and history["kept"].any():
        kept = int(history.loc[history["kept"].astype(bool), "epoch"].iloc[-1])
        stopped = bool(history.get("event", pd.Series([""])).astype(str).str.len().gt(0).any())
        last = int(history["epoch"].iloc[-1])
        text = f"kept: epoch {kept}"
        if stopped:
            text += f" (watchdog stopped training in epoch {last})"
        fig.add_vline(
            x=kept,
            line_dash="dash",
            line_color="gray",
            annotation_text=text,
            annotation_position="bottom left" if kept > 1 else "bottom right",
        )
    eps = f" at ε={history['eps'].max():g}" if "eps" in history else ""
    fig.update_layout(
        title=title or f"Clean and robust accuracy per epoch{eps}",
        xaxis_title="epoch",
        yaxis_title="accuracy",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.02],
        xaxis_dtick=1,
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.25},
        margin={"b": 110},
    )
    return fig
