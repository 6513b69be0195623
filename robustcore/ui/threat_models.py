"""Streamlit pieces of the "Threat models" page: the form (drawn from the declaration of the
``threat_models`` experiment), the results and the explanations."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ..data import Dataset
from ..evaluation.sanity import SanityCheck
from ..experiments import Target
from ..experiments.threat_models import ThreatModels, ThreatModelsResult
from ..viz.threat_models import threat_figure, threat_gallery
from . import experiment
from .downloads import download_json, download_table
from .forms import param_values
from .sanity import flagged

SLOT = "tm.run"
MAIN = ("eps", "n", "query_budget", "label_budget")
"""Parameters shown in the form's first row; the others sit in an expander."""


def _widget(name: str, start: dict[str, Any], container: Any) -> Any:
    """The declared widget of one parameter (starting at the dataset's default)."""
    drawn = param_values(ThreatModels, key="tm", values=start, container=container, only=(name,))
    return drawn[name]


def form(ds: Dataset, target: Target) -> ThreatModels | None:
    """Draw the controls in a form; return the experiment when Run was pressed and valid."""
    start = ThreatModels.defaults(ds)
    rest = [p.name for p in ThreatModels.params() if p.name not in MAIN]
    values: dict[str, Any] = {}
    with st.form("tm_form"):
        cols = st.columns(len(MAIN))
        for col, name in zip(cols, MAIN, strict=True):
            values[name] = _widget(name, start, col)
        with st.expander("More settings: PGD steps, surrogate, which black-box attacks, seed"):
            left, right = st.columns(2)
            for i, name in enumerate(rest):
                values[name] = _widget(name, start, left if i % 2 == 0 else right)
        run = st.form_submit_button("Run threat models", type="primary")
    if not run:
        return None
    return experiment.build(ThreatModels, values, target)


def _fmt(v: float) -> str:
    return "—" if pd.isna(v) else f"{v:.0%}"


def explanations(res: ThreatModelsResult) -> list[tuple[str, str]]:
    """One (title, Markdown) pair per threat model: what the attacker has, what it costs
    and what this run's result means."""
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


def _whitebox_beaten(res: ThreatModelsResult) -> list[SanityCheck]:
    """Carlini et al.'s check of this page, when it failed: an attacker who knows less
    fooled more images than white-box PGD within the same ε."""
    if res.whitebox_beats_all:
        return []
    return [
        SanityCheck(
            "White-box at least as strong as every attacker who knows less",
            "warn",
            f"{', '.join(res.beats_whitebox)} beat white-box PGD within the same ε.",
        )
    ]


def results(ds: Dataset, res: ThreatModelsResult) -> None:
    """Metrics, the knowledge/cost chart, the verdict, explanations, table, gallery and
    downloads."""
    cols = st.columns(5)
    cols[0].metric("Clean accuracy", f"{res.clean_accuracy:.1%}", help="On the whole test split.")
    labels = {"white-box": "White-box", "gray-box": "Gray-box", "label-only": "Label-only"}
    for col, (threat, title) in zip([cols[1], cols[2], cols[4]], labels.items(), strict=True):
        r = res.row(threat)
        if r is not None:
            failed = _whitebox_beaten(res) if threat == "white-box" else []
            col.metric(
                f"{title} success",
                f"{r['success_rate']:.0%}",
                delta_arrow="off",
                **flagged(failed, "", r["attack"], where="the warning below the chart"),
            )
    top = res.best_black_box()
    if top is not None:
        cols[3].metric(
            "Black-box success within ε",
            f"{top['success_within_eps']:.0%}",
            help=f"{top['attack']}; {top['success_rate']:.0%} with any perturbation size.",
        )
    st.caption(
        f"Clean accuracy on all {ds.n_test:,} test images (as on Home); success rates on the "
        f"{res.n:,} correctly classified test images every attacker tries."
    )
    table = res.threats()
    st.plotly_chart(threat_figure(table, eps=res.eps), width="stretch", key="tm_chart")
    if res.whitebox_beats_all:
        st.success(
            "White-box PGD fools at least as many images as every attacker who knows less, "
            "at the same ε, as an honest evaluation must show (Carlini et al. 2019)."
        )
    else:
        st.warning(
            f"{', '.join(res.beats_whitebox)} beat white-box PGD within the same ε: the "
            "white-box attack is not converged (raise PGD steps) or the gradients are masked."
        )
    for title, text in explanations(res):
        with st.expander(title, expanded=True):
            st.markdown(text)
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(
        "success_rate: images the model classified correctly that it misclassifies after "
        "the attack; success_within_eps: the same, counting only perturbations inside the "
        "L∞ ε-ball; queries_total includes the label-only attacker's training queries; "
        "setup_seconds is the surrogate's training time, paid once (recorded when it was "
        "trained, even if it is loaded from the model zoo now)."
    )
    clean, advs, gallery, order = res.gallery()
    if advs and ds.modality == "image":
        fig = threat_gallery(clean, advs, gallery, order=order)
        st.plotly_chart(fig, width="stretch", key="tm_gallery")
    dl = st.columns(2)
    download_table(table, "threat_models.csv", label="Table (CSV)", container=dl[0])
    download_json(res.as_json(), "threat_models_run.json", label="Run (JSON)", container=dl[1])
