"""Streamlit pieces shared by the "Membership inference" and "Postprocessing & ensembles"
pages: choosing the target (the session's model or a deliberately overfit one) and drawing
the results."""

from __future__ import annotations

from typing import Any

import streamlit as st
from torch import nn

from ..attacks.inference import ATTACKS, KNOBS, fpr_resolution
from ..data import Dataset
from ..models import ARCHITECTURES, TrainRecipe, compatible_architectures
from ..runs import RunRecord
from ..runs.membership_job import Target
from ..viz.privacy import (
    defense_effects_figure,
    overfitting_figure,
    roc_figure,
    score_histogram,
)
from .downloads import download_run, download_table
from .forms import param_form
from .state import ModelRef

OVERFIT = "overfit"
SESSION = "session"
OVERFIT_DEFAULTS: dict[str, Any] = {"epochs": 40, "train_size": 500}
"""A target that memorises: few training examples, many epochs (trains in seconds)."""
SWEEP_DEFAULTS = {
    "epochs": "1, 5, 10, 20, 40",
    "train_size": "100, 250, 500, 1000, 4000",
    "weight_decay": "0, 0.0001, 0.001, 0.01",
}
_RECIPE_HIDDEN = ("batch_size", "optimizer", "noise_std")


def _fast_arch(ds: Dataset) -> str:
    archs = compatible_architectures(ds.modality, ds.input_shape)
    return "mlp" if "mlp" in archs else archs[0]


def arch_select(
    ds: Dataset, key: str, label: str, default: str | None = None, container: Any = st
) -> str:
    """A select box of the architectures that fit ``ds`` (an MLP by default: it is fast)."""
    archs = compatible_architectures(ds.modality, ds.input_shape)
    default = default if default in archs else _fast_arch(ds)
    return container.selectbox(
        label,
        archs,
        index=archs.index(default),
        format_func=lambda a: ARCHITECTURES[a].title,
        key=key,
    )


def target_source(key: str) -> str:
    """The radio that picks the target (outside the form, so the form can change)."""
    return st.radio(
        "Target model",
        [OVERFIT, SESSION],
        format_func={
            OVERFIT: "A deliberately overfit model (trained here)",
            SESSION: "The current model (sidebar)",
        }.get,
        horizontal=True,
        key=f"{key}_source",
        help="Membership leaks through overfitting: a model trained on few examples for many "
        "epochs shows it clearly; a well-generalising model leaks little.",
    )


def target_controls(
    source: str, ds: Dataset, model: nn.Module, ref: ModelRef, key: str, container: Any = st
) -> Target | None:
    """The controls of the chosen target (inside a form); returns a :class:`Target`."""
    c = container
    if source == OVERFIT:
        c.markdown("**Overfitting control**: the target is trained here, through the model zoo.")
        arch = arch_select(ds, f"{key}_arch", "Architecture", container=c)
        recipe = param_form(
            TrainRecipe,
            key=f"{key}_recipe",
            values=OVERFIT_DEFAULTS,
            exclude=_RECIPE_HIDDEN,
            container=c,
        )
        if recipe is None:
            return None
        return Target(OVERFIT, arch, recipe)
    if ref.source == "zoo" and ref.arch and ref.recipe:
        recipe = TrainRecipe.from_dict(ref.recipe)
        c.caption(
            f"Attacking **{ref.label}**; shadow models copy its architecture ({ref.arch}) "
            f"and recipe ({recipe.epochs} epochs)."
        )
        return Target(SESSION, ref.arch, recipe, run_key=ref.run_key, label=ref.label, model=model)
    arch = arch_select(
        ds,
        f"{key}_shadow_arch",
        "Architecture of the shadow models (the attacker's guess)",
        default=ref.arch,
        container=c,
    )
    c.caption(
        "An uploaded model: its members are assumed to be the dataset's whole training split, "
        "and the shadow models use the default training recipe."
    )
    return Target(SESSION, arch, TrainRecipe(), run_key=ref.run_key, label=ref.label, model=model)


def _pct(x: float) -> str:
    return f"{x:.1%}"


def show_membership(record: RunRecord) -> None:
    """Metrics, ROC curves (linear and log-log), score histograms and downloads."""
    m = record.metrics
    table = record.table("metrics")
    n = int(m["per_side"])
    best = table.set_index("attack").loc[m["best_low_fpr_attack"]]
    loss = table.set_index("attack").loc["loss"]
    cols = st.columns(4)
    cols[0].metric(
        "Best TPR at 0.1% FPR",
        _pct(best["tpr@0.1%fpr"]),
        help=f"{ATTACKS.get(best.name, best.name)}. With {n:,} non-members, 0.1% FPR allows "
        f"{fpr_resolution(n, 0.001)} false positive(s).",
    )
    cols[1].metric("Its AUC", f"{best['auc']:.3f}", help="0.5 = guessing, 1 = perfect.")
    cols[2].metric("Loss-threshold AUC", f"{loss['auc']:.3f}", help=ATTACKS["loss"])
    gap = m["member_accuracy"] - m["nonmember_accuracy"]
    cols[3].metric(
        "Accuracy on members / non-members",
        f"{m['member_accuracy']:.0%} / {m['nonmember_accuracy']:.0%}",
        delta=f"gap {gap:+.1%}",
        delta_color="off",
        help="The target's accuracy on the member and non-member candidates: the "
        "generalisation gap that membership inference feeds on.",
    )
    allowed = fpr_resolution(n, 0.001)
    st.caption(
        f"Target: {m['target']}. {n:,} members (training examples) and {n:,} non-members (test "
        f"examples), drawn with seed {record.seed}. "
        + (
            "At 0.1% FPR no false positive at all is allowed with this many non-members, "
            "so that column is the share of members found before the first non-member. "
            if allowed == 0
            else f"0.1% FPR = {allowed} false positive(s). "
        )
        + (
            f"{m['shadow_models']} shadow models of {m['shadow_train_size']:,} examples each "
            f"(held-out accuracy {m['shadow_heldout_acc']:.1%}; "
            f"{m['shadows_trained']} trained now)."
            if "shadow_models" in m
            else ""
        )
    )
    roc = record.table("roc")
    names = {k: ATTACKS.get(k, k) for k in roc["attack"].unique()}
    curves = {names[k]: df for k, df in roc.groupby("attack", sort=False)}
    left, right = st.columns(2)
    left.plotly_chart(
        roc_figure(curves, log=True, n_nonmembers=n, n_members=n),
        width="stretch",
        key="mi_roc_log",
    )
    right.plotly_chart(roc_figure(curves), width="stretch", key="mi_roc_lin")
    shown = table.assign(name=table["attack"].map(names))[
        ["name", "auc", "balanced_accuracy", "advantage", "tpr@0.1%fpr", "tpr@1%fpr"]
    ]
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "name": "attack",
            "auc": st.column_config.NumberColumn("AUC", format="%.3f"),
            "balanced_accuracy": st.column_config.NumberColumn("balanced accuracy", format="%.3f"),
            "advantage": st.column_config.NumberColumn("advantage (TPR−FPR)", format="%.3f"),
            "tpr@0.1%fpr": st.column_config.NumberColumn("TPR at 0.1% FPR", format="percent"),
            "tpr@1%fpr": st.column_config.NumberColumn("TPR at 1% FPR", format="percent"),
        },
    )
    scores = record.table("scores")
    attack = st.selectbox(
        "Score histogram of",
        list(names),
        format_func=names.get,
        index=list(names).index(m["best_low_fpr_attack"]),
        key="mi_hist_attack",
    )
    st.plotly_chart(
        score_histogram(scores, attack, name=names[attack]), width="stretch", key="mi_hist"
    )
    cols = st.columns(3)
    download_table(table, "membership_metrics.csv", label="Metrics (CSV)", container=cols[0])
    download_table(scores, "membership_scores.csv", label="Scores (CSV)", container=cols[1])
    download_run(record, "membership_run.json", container=cols[2])


def sweep_knob(key: str) -> str:
    return st.selectbox(
        "Knob",
        list(KNOBS),
        format_func=KNOBS.get,
        key=f"{key}_knob",
        help="Which part of the recipe to vary; the others stay at the values below.",
    )


def sweep_values(knob: str, key: str) -> str:
    return st.text_input(
        f"{KNOBS[knob]} values (comma-separated)",
        SWEEP_DEFAULTS[knob],
        key=f"{key}_values_{knob}",
    )


def show_sweep(record: RunRecord) -> None:
    """The overfitting sweep: advantage and AUC against the knob, and the table."""
    table = record.table("sweep")
    knob = record.metrics["knob"]
    st.plotly_chart(
        overfitting_figure(table, knob_title=KNOBS[knob]), width="stretch", key="mi_sweep_fig"
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
            "value": KNOBS[knob],
            "members": "candidates per side",
            **{c: st.column_config.NumberColumn(t, format="%.3f") for c, t in labels.items()},
        },
    )
    st.caption(
        "Each target is attacked with the loss and confidence thresholds only (no shadow "
        "models), on its own members and as many test examples."
    )
    download_table(table, "overfitting_sweep.csv", label="Sweep (CSV)", key="dl.mi_sweep")


def show_postprocess(record: RunRecord) -> None:
    """The defense comparison: one chart and one table, plus the per-attack table."""
    m = record.metrics
    summary = record.table("summary")
    st.plotly_chart(defense_effects_figure(summary), width="stretch", key="pp_effects")
    cols = [
        "defense",
        "accuracy",
        "abstention_rate",
        "label_agreement",
        "mi_auc",
        "mi_tpr@0.1%fpr",
        "mi_tpr@1%fpr",
        "mi_best_attack",
        "extraction_fidelity",
        "extraction_accuracy",
    ]
    pct = st.column_config.NumberColumn
    st.dataframe(
        summary[[c for c in cols if c in summary.columns]],
        hide_index=True,
        width="stretch",
        column_config={
            "accuracy": pct("accuracy (abstain = wrong)", format="percent"),
            "abstention_rate": pct("abstained", format="percent"),
            "label_agreement": pct("same label as undefended", format="percent"),
            "mi_auc": pct("MI AUC", format="%.3f"),
            "mi_tpr@0.1%fpr": pct("MI TPR at 0.1% FPR", format="percent"),
            "mi_tpr@1%fpr": pct("MI TPR at 1% FPR", format="percent"),
            "mi_best_attack": "strongest attack (AUC)",
            "extraction_fidelity": pct("stolen: fidelity", format="percent"),
            "extraction_accuracy": pct("stolen: accuracy", format="percent"),
        },
    )
    n = int(m["per_side"])
    parts = [
        f"Target: {m['target']} (undefended test accuracy {m['undefended_accuracy']:.1%}).",
        f"Membership: {n:,} members vs {n:,} non-members; each row shows the strongest of the "
        "attacks, run by an attacker who applies the same postprocessing to shadow models.",
    ]
    if "shadow_models" in m:
        parts.append(f"{m['shadow_models']} shadow models ({m['shadows_trained']} trained now).")
    if "ensemble_members" in m:
        accs = ", ".join(f"{a:.1%}" for a in m["ensemble_member_acc"])
        parts.append(f"Ensemble members: {', '.join(m['ensemble_archs'])} (accuracy {accs}).")
    if "extraction_fidelity" in summary.columns:
        parts.append(
            "Extraction: a copycat trained on the defended API's answers; fidelity = agreement "
            "with the undefended service (for ensembles: the averaging ensemble)."
        )
    st.caption(" ".join(parts))
    with st.expander("Every attack against every defense"):
        st.dataframe(record.table("membership"), hide_index=True, width="stretch")
    c1, c2, c3 = st.columns(3)
    download_table(summary, "defense_effects.csv", label="Summary (CSV)", container=c1)
    download_table(
        record.table("membership"), "defense_membership.csv", label="Attacks (CSV)", container=c2
    )
    download_run(record, "postprocess_run.json", container=c3)
