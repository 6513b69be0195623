"""Result → Plotly figure. Pure functions used by the pages and by reports.

Every function takes plain data (DataFrames, NumPy arrays or tensors) and returns a
``plotly.graph_objects.Figure``; none of them computes anything about a model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")

NARROW_PX = 540
"""A full-width chart's width in a 1,000 px browser window with the sidebar open: the
narrowest layout the pages are checked at (``bench/legibility.py``). Titles and captions are
broken into lines that fit it; a chart in ``st.columns`` passes its own share of it."""

TITLE_EM = 0.5
"""Width of an average title character (16 px Source Sans, digits and capitals included) in
font sizes; the measured mean is 0.46."""

CAPTION_EM = 0.42
"""The same for the 11 px captions of image grids (measured mean 0.40)."""

CAPTION_PX = 11
LINE_PX = 14
"""Height of one caption line of an image grid, in px."""


def wrap_text(text: str, width: int) -> str:
    """``text`` broken with ``<br>`` at spaces so that no line is longer than ``width``
    characters (a longer word stays whole, as do ``a = b`` and words joined by no-break
    spaces, which come out as plain spaces; existing ``<br>`` are kept)."""
    lines: list[str] = []
    for part in text.split("<br>"):
        words: list[str] = []
        for word in part.split(" "):
            if words and (word == "=" or words[-1].endswith("=")):
                words[-1] += " " + word
            else:
                words.append(word)
        line = ""
        for word in words:
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return "<br>".join(lines).replace("\u00a0", " ")


def wrap_caption(text: str, width: int) -> str:
    """A caption in lines of at most ``width`` characters, broken first at its own
    separators (``" · "`` is dropped at a break, ``"→"`` starts the next line), then at
    spaces."""
    if len(text) <= width:
        return text
    parts = [p for p in re.split(r" · | (?=→ )", text) if p]
    lines: list[str] = []
    for part in parts:
        joiner = " " if part.startswith("→") else " · "
        if lines and len(lines[-1]) + len(joiner) + len(part) <= width:
            lines[-1] += joiner + part
        else:
            lines += wrap_text(part, width).split("<br>")
    return "<br>".join(lines)


def _grid_layout(
    nrows: int,
    caption_lines: int,
    title: str,
    width: float,
    *,
    image_px: int = 110,
    right: int = 10,
) -> dict:
    """Spacing of an image grid whose subplot titles have ``caption_lines`` lines: every
    row's captions get their own room above its images (the first row's in the top
    margin, under the figure's title)."""
    caption_px = LINE_PX * max(1, caption_lines) + 4
    gap = caption_px + 6
    plot_h = nrows * image_px + (nrows - 1) * gap
    head = fit_title(title, width) if title else None
    top = title_top(head, above=caption_px + 2)
    return {
        "vertical_spacing": gap / plot_h if nrows > 1 else 0.0,
        "height": plot_h + top + 10,
        "margin": {"l": 10, "r": right, "t": top, "b": 10},
        "title": head,
    }


def _captions(titles: Sequence[str], ncols: int, width_px: float) -> list[str]:
    """Captions wrapped to the width of one of ``ncols`` columns of a ``width_px`` grid."""
    column = width_px * (1 - 0.01 * (ncols - 1)) / ncols
    chars = max(4, int(column / (CAPTION_EM * CAPTION_PX)))
    return [wrap_caption(str(t), chars) for t in titles]


def fit_title(text: str, width_px: float = NARROW_PX, *, size: int = 16) -> dict:
    """A layout ``title`` whose text is broken into lines that fit ``width_px``; give the
    figure :func:`title_top` as its top margin so that every line has room."""
    chars = max(16, int(width_px / (TITLE_EM * size)))
    return {"text": wrap_text(text, chars)}


def title_top(title: dict | str | None, *, above: float = 0) -> int:
    """The top margin that holds ``title`` where Plotly puts it by default (its first
    baseline half-way down the top margin, further lines 22 px apart below) and ``above``
    px more under it (subplot titles, a grid's first captions)."""
    text = title.get("text", "") if isinstance(title, dict) else (title or "")
    lines = _lines(text)
    if not lines:
        return int(max(20, above + 6))
    return int(max(50, 44 * (lines - 1) + 24 + 2 * above))


def _lines(text: str) -> int:
    return text.count("<br>") + 1 if text else 0


def _as_numpy(images) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    return np.asarray(images, dtype=np.float32)


DASHES = ("solid", "solid", "dash", "dot")
"""Line styles of accuracy_vs_eps's curves in order: a third or fourth curve that
coincides with an earlier one leaves gaps through which the earlier one shows."""


def accuracy_vs_eps(
    curves: Mapping[str, pd.DataFrame] | pd.DataFrame,
    *,
    x: str = "eps",
    y: str = "accuracy",
    chance: float | None = None,
    title: str = "Accuracy against perturbation budget ε",
    x_title: str = "ε",
) -> go.Figure:
    """One line per named curve (e.g. FGSM, PGD-40, "PGD-10 what-if").

    Args:
        curves: a DataFrame, or a mapping from legend name to DataFrame, each with
            columns ``x`` and ``y`` (accuracy as a fraction in [0, 1]).
        chance: draw a dashed line at this accuracy (1 / number of classes).
    """
    if isinstance(curves, pd.DataFrame):
        curves = {"": curves}
    fig = go.Figure()
    n = len(curves)
    for i, (name, df) in enumerate(curves.items()):
        # Earlier curves are drawn wider, so a curve that coincides with a later one (PGD
        # and the worst case, typically) still shows as a coloured edge around it.
        width = 2 + 1.5 * (n - 1 - i)
        fig.add_trace(
            go.Scatter(
                x=df[x],
                y=df[y],
                mode="lines+markers",
                name=name or y,
                line={"color": PALETTE[i % len(PALETTE)], "width": width, "dash": DASHES[i % 4]},
                marker={"size": 4 + width},
                hovertemplate=f"{x_title}=%{{x:.3g}}<br>{y}=%{{y:.1%}}<extra>{name}</extra>",
            )
        )
    if chance is not None:
        fig.add_hline(
            y=chance,
            line_dash="dash",
            line_color="gray",
            annotation_text="chance",
            annotation_position="bottom right",
        )
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y.replace("_", " "),
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.02],
        hovermode="x unified",
    )
    return fig


def _to_rgb(img: np.ndarray) -> np.ndarray:
    """(C,H,W) in [0,1] → (H,W,3) uint8."""
    img = np.clip(img, 0.0, 1.0)
    if img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    return (np.transpose(img[:3], (1, 2, 0)) * 255).round().astype(np.uint8)


def perturbation_heatmap(pert: np.ndarray, scale: float) -> go.Heatmap:
    """One perturbation (H, W), amplified by ``scale``, as a red/blue heat map in [-1, 1]."""
    return go.Heatmap(
        z=np.clip(pert * scale, -1, 1)[::-1],
        zmin=-1,
        zmax=1,
        colorscale="RdBu",
        showscale=False,
        hoverinfo="skip",
    )


def image_grid(
    images,
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    perturbations=None,
    amplify: float | None = None,
    title: str = "",
    width: float = NARROW_PX,
) -> go.Figure:
    """A grid of images (N, C, H, W) in [0, 1], optionally with perturbation heat maps.

    Args:
        images: the images to show.
        titles: one caption per image (label, prediction, confidence).
        ncols: images per row.
        perturbations: ``x_adv - x`` of the same shape; drawn under each image as a
            diverging heat map (summed over channels), amplified to fill the colour range.
        amplify: factor applied to the perturbation before drawing; ``None`` scales the
            largest absolute value in the batch to 1 so that tiny changes are visible.
        width: the narrowest width the grid is drawn at, in px (:data:`NARROW_PX` for a
            full-width chart): captions are wrapped to fit their column at it, and each
            row gets room for its captions' lines.
    """
    imgs = _as_numpy(images)
    n = imgs.shape[0]
    ncols = max(1, min(ncols, n))
    blocks = 2 if perturbations is not None else 1
    nrows = int(np.ceil(n / ncols)) * blocks
    subtitles: list[str] = []
    for r in range(int(np.ceil(n / ncols))):
        row = [
            (titles[r * ncols + c] if titles and r * ncols + c < n else "") for c in range(ncols)
        ]
        subtitles += row
        if blocks == 2:
            subtitles += ["perturbation" if r * ncols + c < n else "" for c in range(ncols)]
    subtitles = _captions(subtitles, ncols, width)
    layout = _grid_layout(nrows, max(map(_lines, subtitles), default=1), title, width)
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=subtitles,
        horizontal_spacing=0.01,
        vertical_spacing=layout["vertical_spacing"],
    )
    pert = None
    scale = 1.0
    if perturbations is not None:
        pert = _as_numpy(perturbations).sum(axis=1)
        peak = float(np.abs(pert).max()) if pert.size else 0.0
        scale = amplify if amplify is not None else (1.0 / peak if peak > 0 else 1.0)
    for i in range(n):
        r, c = divmod(i, ncols)
        fig.add_trace(go.Image(z=_to_rgb(imgs[i]), hoverinfo="skip"), row=r * blocks + 1, col=c + 1)
        if pert is not None:
            fig.add_trace(perturbation_heatmap(pert[i], scale), row=r * blocks + 2, col=c + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for ann in fig.layout.annotations:
        ann.font = {"size": CAPTION_PX}
    fig.update_layout(
        title=layout["title"],
        height=layout["height"],
        margin=layout["margin"],
    )
    return fig


def confusion_matrix_figure(
    cm: np.ndarray, class_names: Sequence[str], *, title: str = "Confusion matrix (test set)"
) -> go.Figure:
    """Heat map of counts, true class on rows and predicted class on columns."""
    cm = np.asarray(cm)
    names = [str(c) for c in class_names]
    fig = go.Figure(
        go.Heatmap(
            z=cm,
            x=names,
            y=names,
            colorscale="Blues",
            text=cm,
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z} samples<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="predicted class",
        yaxis_title="true class",
        yaxis_autorange="reversed",
        xaxis_type="category",
        yaxis_type="category",
    )
    return fig


def training_curves(
    history: pd.DataFrame, *, title: str = "Training curves", train_name: str = "training set"
) -> go.Figure:
    """Loss and accuracy per epoch for the training and test sets, side by side.

    A distilled model's history has a ``phase`` column (teacher, then student): each phase
    gets its own lines (the teacher's dotted). An adversarially trained model's has
    ``robust_acc``: PGD accuracy on held-out images, drawn on the accuracy panel.
    ``train_name`` names the training lines (say, "training set (adversarial examples)").
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    phases = list(history["phase"].unique()) if "phase" in history else [""]
    for phase in phases:
        h = history[history["phase"] == phase] if phase else history
        dash = "dot" if phase == "teacher" else "solid"
        for i, (split, name) in enumerate((("train", train_name), ("test", "test set"))):
            color = PALETTE[i]
            label = f"{name} ({phase})" if phase else name
            fig.add_trace(
                go.Scatter(
                    x=h["epoch"],
                    y=h[f"{split}_loss"],
                    name=label,
                    mode="lines+markers",
                    line={"color": color, "dash": dash},
                    legendgroup=f"{split}{phase}",
                ),
                row=1,
                col=1,
            )
            fig.add_trace(
                go.Scatter(
                    x=h["epoch"],
                    y=h[f"{split}_acc"],
                    name=label,
                    mode="lines+markers",
                    line={"color": color, "dash": dash},
                    legendgroup=f"{split}{phase}",
                    showlegend=False,
                ),
                row=1,
                col=2,
            )
    if "robust_acc" in history:
        fig.add_trace(
            go.Scatter(
                x=history["epoch"],
                y=history["robust_acc"],
                name=f"PGD-10 on {int(history['robust_n'].iloc[0])} test images",
                mode="lines+markers",
                line={"color": PALETTE[2]},
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(title=title, hovermode="x unified")
    return fig


def adversarial_gallery(
    clean,
    adversarial,
    rows: pd.DataFrame,
    *,
    title: str = "",
    amplify: float | None = None,
    width: float = NARROW_PX,
) -> go.Figure:
    """Three rows per input: the original (true label), the adversarial input (predicted
    label and confidence) and the perturbation as an amplified red/blue heat map.

    ``rows`` has one row per input with ``true``, ``predicted``, ``confidence``, ``success``.
    Captions are wrapped to fit their column at ``width`` px, as in :func:`image_grid`.
    """
    x = _as_numpy(clean)
    adv = _as_numpy(adversarial)
    n = x.shape[0]
    pert = (adv - x).sum(axis=1)
    peak = float(np.abs(pert).max()) if pert.size else 0.0
    scale = amplify if amplify is not None else (1.0 / peak if peak > 0 else 1.0)
    recs = rows.to_dict("records")
    titles = [f"true {r['true']}" for r in recs]
    titles += [
        f"{'✗' if r['success'] else '✓'} pred {r['predicted']} ({r['confidence']:.0%})"
        for r in recs
    ]
    titles += [f"×{scale:.0f} · L2 {r['l2']:.2f}" if "l2" in r else "" for r in recs]
    titles = _captions(titles, max(n, 1), width - 30)
    layout = _grid_layout(3, max(map(_lines, titles), default=1), title, width, right=30)
    fig = make_subplots(
        rows=3,
        cols=max(n, 1),
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=layout["vertical_spacing"],
        row_titles=["original", "adversarial", "perturbation"],
    )
    for i in range(n):
        fig.add_trace(go.Image(z=_to_rgb(x[i]), hoverinfo="skip"), row=1, col=i + 1)
        fig.add_trace(go.Image(z=_to_rgb(adv[i]), hoverinfo="skip"), row=2, col=i + 1)
        fig.add_trace(perturbation_heatmap(pert[i], scale), row=3, col=i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for ann in fig.layout.annotations:
        ann.font = {"size": CAPTION_PX}
    fig.update_layout(
        title=layout["title"],
        height=layout["height"],
        margin=layout["margin"],
    )
    return fig


def add_roc_reference(fig: go.Figure, fpr: float | None = None, label: str = "") -> None:
    """The chance diagonal of a ROC chart and, when ``fpr`` is given, a dotted vertical line
    at that false-positive rate labelled ``label`` (a detector's threshold)."""
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance",
            line={"color": "gray", "dash": "dash", "width": 1},
            hoverinfo="skip",
        )
    )
    if fpr is not None:
        fig.add_vline(
            x=fpr,
            line_dash="dot",
            line_color="gray",
            annotation_text=label,
            annotation_position="bottom right",
        )
