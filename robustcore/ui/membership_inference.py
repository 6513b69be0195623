"""Streamlit pieces of the "Membership inference" page: the attack form (target and
attacks), its results (metrics, log-log and linear ROC, score histograms, downloads), and
the Overfitting sweep tab."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..attacks.inference import ATTACKS, fpr_resolution
from ..data import Dataset
from ..experiments import Target
from ..experiments.membership_inference import (
    MembershipInferenceExperiment,
    MembershipInferenceResult,
)
from ..experiments.overfitting_sweep import (
    DEFAULT_VALUES,
    KNOBS,
    OverfittingSweep,
    OverfittingSweepResult,
)
from ..models import TrainRecipe
from ..reports.sections.membership_inference import setup_text
from ..viz.membership_inference import overfitting_figure, roc_figure, score_histogram
from . import experiment
from .downloads import download_json, download_table
from .forms import param_form, param_values
from .targets import (
    OVERFIT_DEFAULTS,
    RECIPE_FIELDS,
    arch_select,
    fast_arch,
    needs_arch_guess,
    target_controls,
    target_source,
)

SLOT = "membership"
SWEEP_SLOT = "membership_sweep"


def attack_form(
    ds: Dataset, session: Target
) -> tuple[MembershipInferenceExperiment | None, Target | None]:
    """The target and attack controls. Returns the experiment when Run was pressed (and its
    settings are valid), and the target the form now names (for the result shown)."""
    cls = MembershipInferenceExperiment
    source = target_source("mi")
    raw: dict[str, Any] = {}
    with st.form("mi_form"):
        left, right = st.columns(2, gap="large")
        target = target_controls(source, ds, session, "mi", container=left)
        if needs_arch_guess(source, session):
            guess = {"shadow_arch": session.arch or fast_arch(ds)}
            raw |= param_values(cls, key="mi", values=guess, only=("shadow_arch",), container=left)
        raw |= param_values(
            cls, key="mi", only=("attack",), container=right, nested_in_expanders=False
        )
        pressed = st.form_submit_button("Run membership inference", type="primary")
    if not pressed or target is None:
        return None, target
    return experiment.build(cls, raw, target), target


def _pct(x: float) -> str:
    return f"{x:.1%}"


def show_results(result: MembershipInferenceResult) -> None:
    """Metrics, ROC curves (linear and log-log), score histograms and downloads."""
    n = result.per_side
    best = result.attack_metrics(result.best_low_fpr_attack)
    loss = result.attack_metrics("loss")
    cols = st.columns(4)
    cols[0].metric(
        "Best TPR at 0.1% FPR",
        _pct(best["tpr@0.1%fpr"]),
        help=f"{ATTACKS.get(best['attack'], best['attack'])}. With {n:,} non-members, 0.1% "
        f"FPR allows {fpr_resolution(n, 0.001)} false positive(s).",
    )
    cols[1].metric("Its AUC", f"{best['auc']:.3f}", help="0.5 = guessing, 1 = perfect.")
    cols[2].metric("Loss-threshold AUC", f"{loss['auc']:.3f}", help=ATTACKS["loss"])
    cols[3].metric(
        "Accuracy on members / non-members",
        f"{result.member_accuracy:.0%} / {result.nonmember_accuracy:.0%}",
        delta=f"gap {result.gap:+.1%}",
        delta_color="off",
        help="The target's accuracy on the member and non-member candidates: the "
        "generalisation gap that membership inference feeds on.",
    )
    st.caption(setup_text(result))
    curves = result.roc_curves()
    left, right = st.columns(2)
    left.plotly_chart(
        roc_figure(curves, log=True, n_nonmembers=n, n_members=n),
        width="stretch",
        key="mi_roc_log",
    )
    right.plotly_chart(roc_figure(curves), width="stretch", key="mi_roc_lin")
    names = result.attack_names()
    table = result.metrics_table()
    shown = table.assign(name=table["attack"].map(names))[
        ["name", "auc", "balanced_accuracy", "advantage", "tpr@0.1%fpr", "tpr@1%fpr"]
    ]
    number = st.column_config.NumberColumn
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "name": "attack",
            "auc": number("AUC", format="%.3f"),
            "balanced_accuracy": number("balanced accuracy", format="%.3f"),
            "advantage": number("advantage (TPR−FPR)", format="%.3f"),
            "tpr@0.1%fpr": number("TPR at 0.1% FPR", format="percent"),
            "tpr@1%fpr": number("TPR at 1% FPR", format="percent"),
        },
    )
    scores = result.scores()
    attack = st.selectbox(
        "Score histogram of",
        list(names),
        format_func=names.get,
        index=list(names).index(result.best_low_fpr_attack),
        key="mi_hist_attack",
    )
    st.plotly_chart(
        score_histogram(scores, attack, name=names[attack]), width="stretch", key="mi_hist"
    )
    cols = st.columns(3)
    download_table(table, "membership_metrics.csv", label="Metrics (CSV)", container=cols[0])
    download_table(scores, "membership_scores.csv", label="Scores (CSV)", container=cols[1])
    download_json(result.as_json(), "membership_run.json", label="Run (JSON)", container=cols[2])


def sweep_form(ds: Dataset) -> tuple[OverfittingSweep | None, Target | None]:
    """The knob, its values and the base target. Returns the sweep when Run was pressed
    (and its settings are valid), and the base target the form now names."""
    info = {p.name: p for p in OverfittingSweep.params()}
    knob = st.selectbox(
        info["knob"].title,
        list(KNOBS),
        format_func=KNOBS.get,
        key="mi_sweep_knob",
        help=info["knob"].help,
    )
    with st.form("mi_sweep_form"):
        text = st.text_input(
            f"{KNOBS[knob]} values (comma-separated)",
            ", ".join(f"{v:g}" for v in DEFAULT_VALUES[knob]),
            key=f"mi_sweep_values_{knob}",
            help=info["values"].help,
        )
        arch = arch_select(ds, "mi_sweep_arch", "Architecture")
        recipe = param_form(
            TrainRecipe,
            key="mi_sweep_recipe",
            values=OVERFIT_DEFAULTS,
            only=tuple(f for f in RECIPE_FIELDS if f != knob),
        )
        pressed = st.form_submit_button("Run sweep", type="primary")
    base = Target.zoo(arch, recipe) if recipe is not None else None
    if not pressed or base is None:
        return None, base
    return experiment.build(OverfittingSweep, {"knob": knob, "values": text}, base), base


def show_sweep(result: OverfittingSweepResult) -> None:
    """The overfitting sweep: advantage and AUC against the knob, and the table."""
    table = result.sweep()
    st.plotly_chart(
        overfitting_figure(table, knob_title=result.knob_title),
        width="stretch",
        key="mi_sweep_fig",
    )
    labels = {
        "train_acc": "accuracy on members",
        "test_acc": "accuracy on non-members",
        "gap": "gap",
        "auc": "AUC (loss)",
        "advantage": "advantage (loss)",
        "tpr@1%fpr": "TPR at 1% FPR (loss)",
        "confidence_auc": "AUC (confidence)",
    }
    st.dataframe(
        table.drop(columns=["zoo_key", "knob"]),
        hide_index=True,
        width="stretch",
        column_config={
            "value": result.knob_title,
            "members": "candidates per side",
            **{c: st.column_config.NumberColumn(t, format="%.3f") for c, t in labels.items()},
        },
    )
    st.caption(
        "Each target is attacked with the loss and confidence thresholds only (no shadow "
        "models), on its own members and as many test examples."
    )
    download_table(table, "overfitting_sweep.csv", label="Sweep (CSV)", key="dl.mi_sweep")
