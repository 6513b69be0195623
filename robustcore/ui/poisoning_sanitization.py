"""Streamlit pieces of the Poisoning sanitization page: the form and the result view."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from ..attacks.poisoning import BadNets
from ..data import Dataset
from ..experiments.base import Target
from ..experiments.poisoning_sanitization import (
    DETECTOR_FIELDS,
    DETECTORS,
    PoisoningSanitization,
    SanitizationResult,
)
from ..viz.poisoning_sanitization import activation_projection_figure, before_after_figure
from . import notes
from .forms import param_values
from .triggers import checked, class_select, downloads, percent_table, trigger_form


def sanitize_form(ds: Dataset, target: Target, victim: str | None) -> PoisoningSanitization | None:
    """Trigger, BadNets attack and detector settings; the experiment when Run was pressed.

    Warns (and still runs) when the poisons would be more than a third of the target label,
    where activation clustering's size rule cannot work.
    """
    start = PoisoningSanitization.for_dataset(ds)
    with st.expander("Trigger of the attack (defaults: the Backdoors page's)"):
        trigger = trigger_form(ds, key="san_trigger", values=start.trigger.to_dict())
    detector = st.radio(
        "Detector",
        list(DETECTORS),
        format_func=lambda n: DETECTORS[n].title,
        horizontal=True,
        key="san_detector",
    )
    with st.form("san_form"):
        left, right = st.columns(2)
        with left:
            st.markdown("**Attack (BadNets)**")
            target_class = class_select(ds, "Target class", start.target_class, key="san_target")
            attack = param_values(BadNets, key="san_attack")
            rate = param_values(PoisoningSanitization, key="san_attack", only=("poison_rate",))
        with right:
            st.markdown(f"**{DETECTORS[detector].title}**")
            settings = param_values(DETECTORS[detector], key=f"san_{detector}")
        pressed = st.form_submit_button("Poison, detect and retrain", type="primary")
    if not pressed or trigger is None:
        return None
    raw = {
        **rate,
        "detector": detector,
        "target_class": target_class,
        "trigger": trigger,
        "attack": attack,
        DETECTOR_FIELDS[detector]: settings,
        "victim_arch": victim,
    }
    exp = checked(PoisoningSanitization, raw, target, ds)
    share = exp.poison_share_of_target(ds) if exp is not None else None
    if share is not None and share > 0.35:
        st.warning(
            f"The poisons would make up {share:.0%} of the target label: activation "
            "clustering's size rule assumes poisons are a minority of their label (at most "
            "its size threshold), so expect it to miss them."
        )
    return exp


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1%}"


def show_sanitize(res: SanitizationResult, ds: Dataset) -> None:
    """Sanitization: precision/recall, before/after, the 2-D projection of one class."""
    cols = st.columns(4)
    cols[0].metric(
        "Precision",
        _pct(res.precision),
        help="Share of the removed points that really were poisons.",
    )
    cols[1].metric("Recall", _pct(res.recall), help="Share of the poisons that were removed.")
    cols[2].metric(
        "Attack success after",
        f"{res.after_attack_success:.1%}",
        delta=f"{res.after_attack_success - res.before_attack_success:+.1%}",
        delta_color="inverse",
    )
    cols[3].metric(
        "Clean accuracy after",
        f"{res.after_clean_accuracy:.1%}",
        delta=f"{res.after_clean_accuracy - res.before_clean_accuracy:+.1%}",
    )
    st.caption(
        f"Removed {res.n_flagged:,} of {res.n_flagged + res.n_train_after:,} training points; "
        f"{res.true_positives:,} of the {res.n_poison:,} poisons."
    )
    notes.accuracy_basis(ds.n_test, ds)
    _marginal_notes(res.marginal_decisions(), ds)
    summary = res.summary_table()
    st.plotly_chart(before_after_figure(summary), width="stretch", key="san_bars")
    shown = class_select(ds, "Class to project", res.default_class(), key="san_cls")
    if shown not in res.projection_classes():
        st.info(f"Class {ds.class_names[shown]} has no training points.")
        return
    title = (
        "2-means clusters" if res.detector == "activation_clustering" else "removed (top scores)"
    )
    st.plotly_chart(
        activation_projection_figure(
            res.projection_of(shown),
            cluster_title=title,
            title=f"Class {ds.class_names[shown]}: penultimate activations (PCA to 2-D)",
        ),
        width="stretch",
        key="san_proj",
    )
    percent_table(summary, key="san_summary")
    per_class = res.per_class()
    with st.expander("Per class: split, decision and second opinion"):
        st.dataframe(per_class, hide_index=True, width="stretch")
        if "decision" in per_class:
            st.caption(
                "smaller_share: the smaller 2-means cluster's share of the class; silhouette: "
                "how cleanly the class splits (on the activations); reduce: the reduction "
                "whose split was kept; reclass_own / reclass_ratio: the second opinion (share "
                "of the cluster a model trained without it gives its own label, and that "
                "count over the most common other class)."
            )
    downloads(res, summary, "sanitization")


def _marginal_notes(marginal: pd.DataFrame, ds: Dataset) -> None:
    """Say which decisions were marginal and what the second opinion made of them."""
    for row in marginal.itertuples(False):
        name = ds.class_names[int(row[0])]
        where = (
            f"its smaller cluster holds {row.smaller_share:.0%} of it with silhouette "
            f"{row.silhouette:.2f}, within the margin of the thresholds, so another CPU's "
            "arithmetic could tip the decision either way"
        )
        if row.decision == "marginal":
            st.warning(f"Class {name}: {where}. It was kept (no second opinion asked).")
            continue
        ratio = getattr(row, "reclass_ratio", float("nan"))
        own = getattr(row, "reclass_own", float("nan"))
        action = "kept" if "kept" in row.decision else "removed"
        opinion = row.decision.split("second opinion: ")[-1].rstrip(")")
        st.info(
            f"Class {name}: {where}. Second opinion (exclusionary reclassification): a "
            f"model trained without the cluster gives {own:.0%} of it its own label "
            f"(own / most common other = {ratio:.2f}): **{opinion}**. The cluster was "
            f"**{action}**"
            + (
                " (the second opinion only reports; set it to *decides* to act on it)."
                if action == "kept" and opinion == "poison"
                else "."
            )
        )
