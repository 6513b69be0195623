"""Postprocessing & ensembles: each output defense's effect on privacy, extraction and
accuracy, in one chart and one table."""

import streamlit as st

from robustcore.attacks.inference import MembershipInference
from robustcore.defenses.ensemble import RULES, Ensemble
from robustcore.defenses.postprocess import DEFENSES, NoDefense
from robustcore.runs.postprocess_job import postprocess_job, postprocess_spec
from robustcore.ui import jobs, state
from robustcore.ui.forms import param_form
from robustcore.ui.privacy import show_postprocess, target_controls, target_source
from robustcore.ui.shell import page_setup

page_setup(
    "Postprocessing & ensembles",
    "A prediction service can hide part of what its model computes: round the "
    "probabilities, return only the top classes or only the label (Shokri et al. 2017; "
    "Tramèr et al. 2016), distort them with a reverse sigmoid (Lee et al. 2019), soften them "
    "with a temperature, or answer by the consensus of several models. Each row below puts "
    "one such defense in front of the same model and measures what it costs in accuracy and "
    "what it buys against **membership inference** (an attacker who knows the "
    "postprocessing) and **model extraction** (a copycat trained on the answers).",
)
ds, model, ref = state.require_model()

try:
    from robustcore.attacks.extraction import ModelStealing
except ImportError:  # part of the extraction work; the page runs without it
    ModelStealing = None

source = target_source("pp")
with st.form("pp_form"):
    left, right = st.columns(2, gap="large")
    target = target_controls(source, ds, model, ref, "pp", container=left)
    with right:
        names = [n for n in DEFENSES if n != NoDefense.name]
        chosen = st.multiselect(
            "Output defenses (the undefended service is always the first row)",
            names,
            default=names,
            format_func=lambda n: DEFENSES[n].title,
            key="pp_defenses",
        )
        defenses = [NoDefense()]
        with st.expander("Defense settings"):
            for name in names:
                if DEFENSES[name].params():
                    st.markdown(f"**{DEFENSES[name].title}** — {DEFENSES[name].paper}")
                    defense = param_form(DEFENSES[name], key=f"pp_{name}")
                    if name in chosen and defense is not None:
                        defenses.append(defense)
                elif name in chosen:
                    defenses.append(DEFENSES[name]())
        rules = st.multiselect(
            "Ensemble consensus rules", list(RULES), default=list(RULES), key="pp_rules"
        )
        with st.expander("Ensemble"):
            ensemble = param_form(Ensemble, key="pp_ens", exclude=("rule",))
        with st.expander("Membership attacks"):
            membership = param_form(MembershipInference, key="pp_mi", values={"shadow_models": 4})
        stealing = None
        if ModelStealing is not None:
            with st.expander("Model extraction"):
                steal_on = st.checkbox("Measure extraction fidelity", value=True, key="pp_steal")
                stealing = param_form(
                    ModelStealing, key="pp_steal_cfg", values={"budget": 500, "batch_size": 64}
                )
                if not steal_on:
                    stealing = None
    run = st.form_submit_button("Compare defenses", type="primary")

if run and None not in (target, ensemble, membership):
    kwargs = dict(
        defenses=defenses,
        ensemble=ensemble if rules else None,
        rules=rules,
        membership=membership,
        stealing=stealing,
    )
    jobs.start(
        "postprocess", postprocess_spec(ds, target, **kwargs), postprocess_job(ds, target, **kwargs)
    )

record = jobs.show("postprocess")
if record is not None:
    show_postprocess(record)
elif jobs.current("postprocess") is None:
    st.info(
        "Press **Compare defenses**. The default compares six output defenses and three "
        "ensemble rules on a small overfit MLP, with 4 shadow models per membership attacker "
        "and a 500-query copycat per row."
    )
