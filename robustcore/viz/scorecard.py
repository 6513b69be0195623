"""The Home page's robustness scorecard as a figure: accuracy under each condition."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

VERDICT_COLORS = {"good": "#2ca02c", "fair": "#ff7f0e", "poor": "#d62728"}


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The scorecard table as the page shows it: area, check, result (the formatted
    value), verdict, meaning and the page that goes deeper."""
    return table[["area", "check", "shown", "verdict", "meaning", "page"]].rename(
        columns={"shown": "result"}
    )


def verdicts_caption(thresholds: Mapping[str, tuple[float, float]]) -> str:
    """Where each row turns from good to fair to poor, in a sentence per kind of row
    (``thresholds``: :data:`robustcore.experiments.scorecard.THRESHOLDS`)."""
    kept, noise, query, auc = (thresholds[k] for k in ("kept", "noise", "query", "auc"))
    return (
        f"Verdicts: PGD rows good when they keep ≥ {kept[0]:.0%} of the clean accuracy, fair "
        f"from {kept[1]:.0%}; noise good from {noise[0]:.0%}, fair from {noise[1]:.0%}; SimBA "
        f"good at ≤ {query[0]:.0%} success, fair to {query[1]:.0%}; membership AUC good at "
        f"≤ {auc[0]}, fair to {auc[1]}. They are a summary for a reader, not a guarantee."
    )


def scorecard_figure(table: pd.DataFrame, *, chance: float) -> go.Figure:
    """Bars of the accuracy rows (clean, noise, PGD small/large ε) coloured by verdict, with
    the chance line. ``table`` is the scorecard table (``area``, ``check``, ``value``,
    ``verdict``)."""
    rows = table[table["area"].isin(["accuracy", "general robustness", "white-box evasion"])]
    colors = [VERDICT_COLORS.get(str(v), "#1f77b4") for v in rows["verdict"]]
    fig = go.Figure(
        go.Bar(
            x=rows["value"],
            y=rows["check"],
            orientation="h",
            marker_color=colors,
            text=[f"{v:.1%}" for v in rows["value"]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    # The line's label above the plotting area: on the bars it would be grey on colour.
    fig.add_vline(
        x=chance,
        line_dash="dot",
        line_color="grey",
        annotation_text=f"chance {chance:.0%}",
        annotation_position="top",
    )
    fig.update_layout(
        title="Accuracy of the current model under each condition",
        xaxis_title="accuracy on the test images",
        xaxis_tickformat=".0%",
        xaxis_range=[0, 1.1],
        yaxis_autorange="reversed",
        height=140 + 45 * len(rows),
        margin={"l": 10, "r": 10, "t": 80, "b": 40},
    )
    return fig
