"""Streamlit pieces of the "Threat models" page: the plan form and the explanations."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ..data import Dataset
from ..errors import ValidationError
from ..models import TrainRecipe
from ..params import describe
from ..runs.threat_job import ThreatPlan, resolve_surrogate
from .forms import param_widget
from .state import ModelRef

MAIN = ("eps", "n", "query_budget", "label_budget")
"""Parameters shown in the form's first row; the others sit in an expander."""


def surrogate_recipe(ref: ModelRef) -> TrainRecipe:
    """The surrogates' training recipe: the model's own when it was trained by recipe (the
    gray-box attacker trains "the same way on the same data"), else the default."""
    if ref.source == "zoo" and ref.recipe:
        return TrainRecipe.from_dict(ref.recipe)
    return TrainRecipe()


def plan_form(ds: Dataset, ref: ModelRef) -> ThreatPlan | None:
    """Draw the controls in a form; return the plan when Run was pressed and it is valid."""
    infos = {i.name: i for i in describe(ThreatPlan)}
    values: dict[str, Any] = {}
    with st.form("tm_form"):
        cols = st.columns(len(MAIN))
        for col, name in zip(cols, MAIN, strict=True):
            info = infos[name]
            default = min(info.default, ds.n_train) if name == "label_budget" else info.default
            if name == "n":
                default = min(default, ds.n_test)
            values[name] = param_widget(info, default, key=f"tm.{name}", container=col)
        with st.expander("More settings: PGD steps, surrogate, which black-box attacks, seed"):
            left, right = st.columns(2)
            rest = [n for n in infos if n not in MAIN]
            image = len(ds.input_shape) == 3
            start = {"simba": image, "simba_pixel": not image}
            for i, name in enumerate(rest):
                box = left if i % 2 == 0 else right
                value = start.get(name, infos[name].default)
                values[name] = param_widget(infos[name], value, key=f"tm.{name}", container=box)
        run = st.form_submit_button("Run threat models", type="primary")
    if not run:
        return None
    try:
        plan = ThreatPlan.from_dict(values)
        resolve_surrogate(ds, plan, ref.arch)
    except ValidationError as exc:
        st.error(str(exc))
        return None
    return plan


def _fmt(v: float) -> str:
    return "—" if pd.isna(v) else f"{v:.0%}"


def explanations(table: pd.DataFrame, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """One (title, Markdown) pair per threat model: what the attacker has, what it costs
    and what this run's result means."""
    eps = metrics["eps"]
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
                f"{metrics['surrogate_arch']} of its own "
                f"({metrics['gray.surrogate_accuracy']:.0%} test accuracy, "
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
                f"2017), at most {metrics['query_budget']:,} queries per image. **Costs** "
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
                f"training images, trains a {metrics['surrogate_arch']} on the labels that "
                f"come back ({metrics['label.fidelity']:.0%} agreement with the model on the "
                "test set) and transfers PGD from it (Papernot et al. 2017). **Costs** those "
                f"queries plus one per image ({r['queries_per_image']:,.1f} per image in "
                "all). **Means**: even a service that returns nothing but labels can be "
                "attacked; the result is usually a little below the gray-box one because "
                "the surrogate learned from fewer, model-given labels.",
            )
        )
    return out
