"""Figures of the "Threat models" page: attack success against attacker knowledge and cost.

Pure functions of the table of the ``threat_models`` experiment
(:meth:`robustcore.experiments.threat_models.ThreatModelsResult.table`: one row per attack,
ordered from most to least attacker knowledge).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import fit_title, image_grid, title_top

THREAT_COLORS = {
    "white-box": "#d62728",
    "gray-box": "#ff7f0e",
    "black-box": "#1f77b4",
    "label-only": "#2ca02c",
}


SHORT_ATTACK = {"white-box": "PGD", "gray-box": "transfer", "label-only": "transfer"}


def _labels(table: pd.DataFrame) -> list[str]:
    """Short one-line category labels: the threat model and the attack."""
    out = []
    for t, a in zip(table["threat_model"], table["attack"], strict=True):
        out.append(f"{t} · {SHORT_ATTACK.get(t, a)}")
    return out


def threat_figure(
    table: pd.DataFrame,
    *,
    eps: float | None = None,
    title: str = "Attack success against attacker knowledge and cost",
) -> go.Figure:
    """Three panels side by side, one horizontal bar per attack (from most attacker
    knowledge at the top to least), the attacks named once on the left.

    Left: success rate; the bar is the success *within the L∞ ε-ball* (comparable across
    threat models), a diamond marks the success with any perturbation size where it is
    higher (SimBA-DCT, ZOO). Middle: queries per image sent to the model (log scale; the
    label-only attacker's training queries are spread over the images; gradient attacks
    send none, which the bar's place says in words). Right: seconds, the attack itself plus
    (lighter) the surrogate's training.

    Args:
        table: columns ``threat_model``, ``attack``, ``success_rate``,
            ``success_within_eps``, ``queries_per_image``, ``seconds``, ``setup_seconds``.
        eps: the L∞ budget, for the panel's title.
    """
    labels = _labels(table)
    colors = [THREAT_COLORS.get(t, "#7f7f7f") for t in table["threat_model"]]
    fig = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        subplot_titles=(
            "success rate" + ("" if eps is None else f"<br>within L∞ ε = {eps:g}"),
            "queries per image<br>(log scale)",
            "seconds (light:<br>surrogate training)",
        ),
        horizontal_spacing=0.04,
    )
    within = "within ε" if eps is None else f"within L∞ ε = {eps:g}"
    fig.add_trace(
        go.Bar(
            y=labels,
            x=table["success_within_eps"],
            orientation="h",
            marker_color=colors,
            name=f"success {within}",
            showlegend=False,
            customdata=table["attack"],
            text=[f"{v:.0%}" for v in table["success_within_eps"]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{customdata}<br>success " + within + ": %{x:.1%}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    larger = table["success_rate"] > table["success_within_eps"] + 1e-9
    if bool(larger.any()):
        fig.add_trace(
            go.Scatter(
                y=[lab for lab, big in zip(labels, larger, strict=True) if big],
                x=table.loc[larger, "success_rate"],
                mode="markers",
                marker={"symbol": "diamond", "size": 12, "color": "black"},
                name="success with any perturbation size (not bounded by ε)",
                hovertemplate="%{y}<br>success, any size: %{x:.1%}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    q = table["queries_per_image"].astype(float)
    fig.add_trace(
        go.Bar(
            y=labels,
            x=q.where(q > 0, np.nan),
            orientation="h",
            marker_color=colors,
            name="queries per image",
            showlegend=False,
            text=[f"{v:,.0f}" if v >= 1 else (f"{v:.2g}" if v > 0 else "") for v in q],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}<br>%{x:,.1f} queries per image<extra></extra>",
        ),
        row=1,
        col=2,
    )
    for lab in [lab for lab, v in zip(labels, q, strict=True) if v == 0]:
        fig.add_annotation(
            y=lab,
            x=0,
            xref="x2 domain",
            yref="y2",
            text="none (gradients)",
            showarrow=False,
            xanchor="left",
            font={"size": 11},
        )
    fig.add_trace(
        go.Bar(
            y=labels,
            x=table["seconds"],
            orientation="h",
            marker_color=colors,
            name="attack",
            showlegend=False,
            hovertemplate="%{y}<br>attack: %{x:.2f} s<extra></extra>",
        ),
        row=1,
        col=3,
    )
    if bool((table["setup_seconds"] > 0).any()):
        fig.add_trace(
            go.Bar(
                y=labels,
                x=table["setup_seconds"],
                orientation="h",
                marker_color=colors,
                marker_opacity=0.4,
                name="surrogate training (paid once)",
                showlegend=False,
                hovertemplate="%{y}<br>surrogate training: %{x:.2f} s<extra></extra>",
            ),
            row=1,
            col=3,
        )
    positive = q[q > 0]
    lo = float(np.log10(positive.min())) if len(positive) else 0.0
    hi = float(np.log10(positive.max())) if len(positive) else 1.0
    for ann in fig.layout.annotations[:3]:  # the panels' titles, two lines each
        ann.font = {"size": 13}
    fig.update_layout(
        barmode="stack",
        title=fit_title(title),
        height=title_top(fit_title(title), above=2 * 17) + 46 * len(labels) + 110,
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"l": 10, "r": 20, "b": 40, "t": title_top(fit_title(title), above=2 * 17)},
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(tickformat=".0%", range=[0, 1.25], row=1, col=1)
    # Room for the bars' numbers at the right end of the log axis.
    fig.update_xaxes(type="log", dtick=1, range=[min(lo, 0.0) - 0.1, hi + 0.6], row=1, col=2)
    fig.update_xaxes(title_text="s", ticksuffix="", row=1, col=3)
    return fig


def _fmt(v: float) -> str:
    return "—" if pd.isna(v) else f"{v:.0%}"


def explanations(res: Any) -> list[tuple[str, str]]:
    """One (title, Markdown) pair per threat model: what the attacker has, what it costs
    and what this run's result means (``res``: a ``ThreatModelsResult``)."""
    table = res.threats()
    eps = res.eps
    by = {t: df for t, df in table.groupby("threat_model", sort=False)}
    out: list[tuple[str, str]] = []
    if "white-box" in by:
        r = by["white-box"].iloc[0]
        out.append(
            (
                f"White-box · {_fmt(r['success_rate'])} fooled",
                f"**Has** the model itself: architecture, weights and gradients. **Costs** "
                f"{r['attack']}, i.e. gradient steps on the model ({r['seconds']:.2f} s), "
                f"no queries. **Means**: the worst case at L∞ ε = {eps:g}; the model is at least "
                f"this fragile, and no weaker attacker should do better (if one does, the "
                "white-box attack is not converged).",
            )
        )
    if "gray-box" in by:
        r = by["gray-box"].iloc[0]
        out.append(
            (
                f"Gray-box · {_fmt(r['success_rate'])} fooled",
                f"**Has** the training data, not the model. It trains a "
                f"{res.surrogate_arch} of its own "
                f"({res.gray_surrogate_accuracy:.0%} test accuracy, "
                f"{r['setup_seconds']:.1f} s once), attacks that with the same PGD and ε, "
                f"and sends each result once ({r['queries_per_image']:.0f} query per image). "
                "**Means**: how many of the white-box adversarial directions are shared by "
                "two models trained on the same task (Papernot et al. 2016; Tramèr et al. "
                "2017). Hiding the weights alone does not protect the model.",
            )
        )
    if "black-box" in by:
        lines = []
        for _, r in by["black-box"].iterrows():
            lines.append(
                f"{r['attack']}: {_fmt(r['success_within_eps'])} within L∞ ε = {eps:g} "
                f"({_fmt(r['success_rate'])} with any size: mean L∞ "
                f"{r['mean_linf']:.2f}, mean L2 {r['mean_l2']:.2f}), "
                f"{r['queries_per_image']:,.0f} queries per image on average, "
                f"{r['seconds']:.1f} s"
            )
        best = by["black-box"]["success_within_eps"].max()
        any_size = by["black-box"]["success_rate"].max()
        out.append(
            (
                f"Black-box (scores) · up to {_fmt(best)} fooled within ε "
                f"({_fmt(any_size)} with any size)",
                "**Has** only the prediction API's class probabilities. It probes the "
                "model with slightly changed inputs and keeps the changes that lower the "
                "probability of the true class (SimBA, Guo et al. 2019) or estimates the "
                "gradient coordinate by coordinate from pairs of queries (ZOO, Chen et al. "
                f"2017), at most {res.query_budget:,} queries per image. **Costs** "
                "many queries. " + "; ".join(lines) + ". **Means**: SimBA-DCT and ZOO are "
                "not confined to the L∞ ε-ball (SimBA-DCT adds steps of length ε along "
                "cosine patterns, which add up on some pixels; ZOO minimises an L2 "
                "penalty), so only their *within ε* rate compares with the other rows; the "
                "other number shows what query access buys without that limit. SimBA-pixel "
                "(an option) moves a pixel by ε at most once per pass over the pixels, so "
                "until it starts a second pass it stays inside the ball. A query budget or "
                "a detector of similar queries (the Query limitation page) targets this "
                "attacker.",
            )
        )
    if "label-only" in by:
        r = by["label-only"].iloc[0]
        out.append(
            (
                f"Label-only · {_fmt(r['success_rate'])} fooled",
                f"**Has** only the API's top-1 labels. It sends {r['setup_queries']:,} "
                f"training images, trains a {res.surrogate_arch} on the labels that "
                f"come back ({res.label_fidelity:.0%} agreement with the model on the "
                "test set) and transfers PGD from it (Papernot et al. 2017). **Costs** those "
                f"queries plus one per image ({r['queries_per_image']:,.1f} per image in "
                "all). **Means**: even a service that returns nothing but labels can be "
                "attacked; the result is usually a little below the gray-box one because "
                "the surrogate learned from fewer, model-given labels.",
            )
        )
    return out


def whitebox_verdict(res: Any) -> tuple[bool, str]:
    """Carlini et al.'s check of the page: did white-box PGD fool at least as many images
    as every attacker who knows less, within the same ε? (passed, the sentence saying so;
    ``res``: a ``ThreatModelsResult``)."""
    if res.whitebox_beats_all:
        return True, (
            "White-box PGD fools at least as many images as every attacker who knows less, "
            "at the same ε, as an honest evaluation must show (Carlini et al. 2019)."
        )
    return False, (
        f"{', '.join(res.beats_whitebox)} beat white-box PGD within the same ε: the "
        "white-box attack is not converged (raise PGD steps) or the gradients are masked."
    )


GALLERY_TITLES = {
    "white": "white-box",
    "gray": "gray-box",
    "simba": "SimBA-DCT",
    "simba_pixel": "SimBA-pixel",
    "zoo": "ZOO",
    "label": "label-only",
}


def threat_gallery(
    clean: np.ndarray,
    advs: Mapping[str, np.ndarray],
    gallery: pd.DataFrame,
    *,
    titles: Mapping[str, str] | None = None,
    order: Sequence[str] | None = None,
) -> go.Figure:
    """The same images, clean (first row) and after each attack (one row per attack), each
    titled with the model's answer.

    Args:
        clean: (k, C, H, W) clean images.
        advs: attack key → (k, C, H, W) adversarial images.
        gallery: rows with ``attack``, ``slot``, ``true``, ``predicted``, ``fooled``.
        titles: attack key → row name (default :data:`GALLERY_TITLES`).
        order: attack keys in row order (default: the order of ``advs``).
    """
    titles = dict(GALLERY_TITLES, **(titles or {}))
    keys = list(order or advs)
    k = clean.shape[0]
    images = [clean]
    captions: list[str] = []
    first = gallery[gallery["attack"] == keys[0]].sort_values("slot") if keys else gallery
    captions += [f"clean: {t}" for t in first["true"].tolist()[:k]]
    for key in keys:
        images.append(advs[key])
        rows = gallery[gallery["attack"] == key].sort_values("slot")
        captions += [
            f"{titles.get(key, key)}: {p}" + (" ✗" if f else "")
            for p, f in zip(rows["predicted"], rows["fooled"], strict=True)
        ]
    return image_grid(
        np.concatenate(images),
        captions,
        ncols=k,
        title="The same images under each threat model (✗: the model is fooled)",
    )
