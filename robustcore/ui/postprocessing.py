"""Streamlit pieces of the "Postprocessing & ensembles" page: the comparison form (target,
defenses and their settings, ensemble rules, the membership attacker, the copycat) and the
results (one chart, the summary table, every attack × defense, downloads)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..attacks.extraction import ModelStealing
from ..attacks.inference import MembershipInference
from ..data import Dataset
from ..defenses.ensemble import Ensemble
from ..defenses.postprocess import DEFENSES
from ..experiments import Target
from ..experiments.postprocessing import OUTPUT_DEFENSES, Postprocessing, PostprocessingResult
from ..reports.sections.postprocessing import setup_text
from ..viz.postprocessing import defense_effects_figure
from . import experiment
from .downloads import download_json, download_table
from .forms import param_values
from .targets import fast_arch, needs_arch_guess, target_controls, target_source

SLOT = "postprocess"
SETTINGS = tuple(n for n in OUTPUT_DEFENSES if DEFENSES[n].params())
"""The defenses with settings of their own (each a nested declaration of the experiment,
named like the defense)."""
EXTRACTION = ("extraction", "steal_budget", "steal_source", "steal_output")


def form(ds: Dataset, session: Target) -> tuple[Postprocessing | None, Target | None]:
    """The controls. Returns the experiment when Run was pressed (and its settings are
    valid), and the target the form now names (for the result shown)."""
    cls = Postprocessing
    info = {p.name: p for p in cls.params()}
    source = target_source("pp")
    raw: dict[str, Any] = {}
    with st.form("pp_form"):
        left, right = st.columns(2, gap="large")
        target = target_controls(source, ds, session, "pp", container=left)
        if needs_arch_guess(source, session):
            guess = {"shadow_arch": session.arch or fast_arch(ds)}
            raw |= param_values(cls, key="pp", values=guess, only=("shadow_arch",), container=left)
        with right:
            raw["defenses"] = st.multiselect(
                info["defenses"].title,
                list(OUTPUT_DEFENSES),
                default=list(info["defenses"].default),
                format_func=lambda n: DEFENSES[n].title,
                key="pp_defenses",
                help=info["defenses"].help,
            )
            with st.expander("Defense settings"):
                for name in SETTINGS:
                    st.markdown(f"**{DEFENSES[name].title}** — {DEFENSES[name].paper}")
                    raw[name] = param_values(DEFENSES[name], key=f"pp.{name}")
            raw |= param_values(cls, key="pp", only=("rules",))
            with st.expander("Ensemble"):
                raw["ensemble"] = param_values(Ensemble, key="pp.ensemble")
            with st.expander("Membership attacks"):
                start = info["membership"].default.to_dict()
                raw["membership"] = param_values(
                    MembershipInference, key="pp.membership", values=start
                )
            with st.expander("Model extraction"):
                raw |= param_values(cls, key="pp", only=EXTRACTION)
                st.markdown(f"**{info['student'].title}**")
                raw["student"] = param_values(ModelStealing, key="pp.student")
        pressed = st.form_submit_button("Compare defenses", type="primary")
    if not pressed or target is None:
        return None, target
    # An empty choice means "none": only the undefended service, or no ensemble.
    raw["defenses"] = raw["defenses"] or None
    raw["rules"] = raw["rules"] or None
    return experiment.build(cls, raw, target), target


def show_results(result: PostprocessingResult) -> None:
    """The defense comparison: one chart and one table, plus the per-attack table."""
    summary = result.summary_table()
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
    number = st.column_config.NumberColumn
    st.dataframe(
        summary[[c for c in cols if c in summary.columns]],
        hide_index=True,
        width="stretch",
        column_config={
            "accuracy": number("accuracy (abstain = wrong)", format="percent"),
            "abstention_rate": number("abstained", format="percent"),
            "label_agreement": number("same label as undefended", format="percent"),
            "mi_auc": number("MI AUC", format="%.3f"),
            "mi_tpr@0.1%fpr": number("MI TPR at 0.1% FPR", format="percent"),
            "mi_tpr@1%fpr": number("MI TPR at 1% FPR", format="percent"),
            "mi_best_attack": "strongest attack (AUC)",
            "extraction_fidelity": number("stolen: fidelity", format="percent"),
            "extraction_accuracy": number("stolen: accuracy", format="percent"),
        },
    )
    st.caption(setup_text(result))
    per_attack = result.per_attack()
    with st.expander("Every attack against every defense"):
        st.dataframe(per_attack, hide_index=True, width="stretch")
    c1, c2, c3 = st.columns(3)
    download_table(summary, "defense_effects.csv", label="Summary (CSV)", container=c1)
    download_table(per_attack, "defense_membership.csv", label="Attacks (CSV)", container=c2)
    download_json(result.as_json(), "postprocess_run.json", label="Run (JSON)", container=c3)
