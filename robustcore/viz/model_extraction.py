"""Figures of the "Model extraction" page: the stolen model's accuracy and fidelity against
the query budget (pure Plotly, no Streamlit)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import PALETTE

SOURCE_TITLES = {
    "in_distribution": "in-distribution",
    "other_dataset": "other dataset",
    "noise": "noise",
}
OUTPUT_DASH = {"probabilities": "solid", "label": "dash"}


def extraction_curves(
    curve: pd.DataFrame,
    *,
    target_accuracy: float | None = None,
    chance: float | None = None,
    title: str = "Stolen model against the query budget",
) -> go.Figure:
    """Accuracy (left) and fidelity (right) against the query budget.

    Args:
        curve: one row per run with columns ``output``, ``query_source``, ``budget``,
            ``accuracy`` and ``fidelity`` (as :func:`~robustcore.attacks.extraction.
            extraction_curve` returns). One line per output × query source: colour by
            source, solid for probabilities and dashed for label-only.
        target_accuracy: drawn as a dotted line on the accuracy panel (the target's own
            test accuracy, the ceiling a perfect copy reaches).
        chance: drawn as a dashed grey line on both panels.
    """
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("accuracy on the test labels", "fidelity (agreement with the target)"),
        horizontal_spacing=0.08,
    )
    sources = list(dict.fromkeys(curve["query_source"]))
    for (out, src), df in curve.groupby(["output", "query_source"], sort=False):
        df = df.sort_values("budget")
        name = f"{out} · {SOURCE_TITLES.get(src, src)}"
        color = PALETTE[sources.index(src) % len(PALETTE)]
        for col, metric in ((1, "accuracy"), (2, "fidelity")):
            fig.add_trace(
                go.Scatter(
                    x=df["budget"],
                    y=df[metric],
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": color, "dash": OUTPUT_DASH.get(out, "dot")},
                    hovertemplate=(f"%{{x:,}} queries<br>{metric}=%{{y:.1%}}<extra>{name}</extra>"),
                ),
                row=1,
                col=col,
            )
    if target_accuracy is not None:
        fig.add_hline(
            y=target_accuracy,
            line_dash="dot",
            line_color="black",
            annotation_text="target",
            annotation_position="bottom right",
            row=1,
            col=1,
        )
    if chance is not None:
        for col in (1, 2):
            fig.add_hline(y=chance, line_dash="dash", line_color="gray", row=1, col=col)
    # Ticks at the budgets themselves: a log axis's own minor ticks ("9", "2", "5" around
    # 100 and 1,000) crowd each other in a half-width panel.
    budgets = sorted({int(b) for b in curve["budget"]})
    if len(budgets) > 5:  # at most five, the first and the last among them
        step = -(-len(budgets) // 5)
        budgets = sorted({*budgets[::step], budgets[-1]})
    fig.update_xaxes(
        type="log",
        title_text="queries (log scale)",
        tickvals=budgets,
        ticktext=[f"{b:,}" for b in budgets],
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    fig.update_layout(title=title, legend={"orientation": "h", "y": -0.2}, height=460)
    return fig
