"""Figures of the "Model inversion" page: MIFace reconstructions next to the real class
means, their tabular counterpart and the descent curve (pure Plotly, no Streamlit)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import PALETTE, image_grid


def inversion_grid(
    reconstructions,
    class_means,
    class_names: Sequence[str],
    *,
    confidence: Sequence[float] | None = None,
    correlation: Sequence[float] | None = None,
    ncols: int = 10,
    title: str = "MIFace reconstructions (top) and real class means (bottom)",
) -> go.Figure:
    """Each class's reconstruction above the real mean of its training images.

    Args:
        reconstructions: (K, C, H, W) images in [0, 1], one per class.
        class_means: (K, C, H, W) class means in the same order.
        class_names: K names.
        confidence: the model's confidence in the class for each reconstruction.
        correlation: each reconstruction's correlation with its class mean.
        ncols: classes per row pair.
    """
    rec = np.asarray(reconstructions, dtype=np.float32)
    means = np.asarray(class_means, dtype=np.float32)
    k = rec.shape[0]
    ncols = max(1, min(ncols, k))
    images, titles = [], []
    for start in range(0, k, ncols):
        idx = list(range(start, min(k, start + ncols)))
        pad = ncols - len(idx)
        blank = np.zeros_like(rec[:1])
        for i in idx:
            parts = [str(class_names[i])]
            if confidence is not None:
                parts.append(f"p={confidence[i]:.2f}")
            if correlation is not None:
                parts.append(f"r={correlation[i]:.2f}")
            titles.append(" · ".join(parts))
        images += [rec[i] for i in idx] + [blank[0]] * pad
        titles += [""] * pad
        images += [means[i] for i in idx] + [blank[0]] * pad
        titles += [f"mean of {class_names[i]}" for i in idx] + [""] * pad
    return image_grid(np.stack(images), titles, ncols=ncols, title=title)


def inversion_profile(
    reconstructions,
    class_means,
    class_names: Sequence[str],
    *,
    title: str = "Reconstructed features (left) and real class means (right)",
) -> go.Figure:
    """For tabular data: reconstructed feature values next to the class means (heat maps,
    one row per class, one column per standardised feature)."""
    rec = np.asarray(reconstructions, dtype=np.float32).reshape(len(class_names), -1)
    means = np.asarray(class_means, dtype=np.float32).reshape(len(class_names), -1)
    names = [str(c) for c in class_names]
    feats = [f"f{i}" for i in range(rec.shape[1])]
    lim = float(max(np.abs(rec).max(initial=0.0), np.abs(means).max(initial=0.0), 1e-6))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("reconstruction", "class mean"))
    for col, z in ((1, rec), (2, means)):
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=feats,
                y=names,
                zmin=-lim,
                zmax=lim,
                colorscale="RdBu",
                showscale=col == 2,
                hovertemplate="class %{y}<br>%{x}=%{z:.2f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(title=title, height=max(260, 40 * len(names) + 140))
    return fig


def inversion_progress(history: pd.DataFrame, *, title: str = "MIFace descent") -> go.Figure:
    """Mean and lowest confidence of the target classes against the gradient step."""
    fig = go.Figure()
    for i, (col, name) in enumerate(
        (("mean_confidence", "mean confidence"), ("min_confidence", "lowest confidence"))
    ):
        fig.add_trace(
            go.Scatter(
                x=history["step"],
                y=history[col],
                mode="lines",
                name=name,
                line={"color": PALETTE[i]},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="gradient step",
        yaxis_title="model's confidence in the target class",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.02],
    )
    return fig
