"""Backdoors: BadNets and the hidden-trigger backdoor, side by side."""

import streamlit as st

from robustcore.attacks.poisoning import SWEEPS, BadNets, HiddenTrigger
from robustcore.attacks.poisoning.experiments import DEFAULT_EPS
from robustcore.runs.poisoning_job import (
    backdoor_job,
    backdoor_spec,
    hidden_trigger_job,
    hidden_trigger_spec,
)
from robustcore.ui import jobs, state
from robustcore.ui import poisoning as ui
from robustcore.ui.forms import param_form
from robustcore.ui.shell import page_setup

page_setup(
    "Backdoors",
    "A backdoored model behaves normally until its input carries a trigger, then it obeys "
    "the attacker. **BadNets** (Gu et al. 2017) stamps the trigger on a few training images "
    "and relabels them; the **hidden-trigger backdoor** (Saha et al. 2020) keeps every "
    "label correct and never shows the trigger: its poisons are target-class images nudged "
    "within an L∞ budget ε until, inside the network, they look like triggered source "
    "images. Both are measured by clean accuracy and attack success on triggered test inputs.",
)

ds, _model, ref = state.require_model()
arch, recipe = ui.victim_model(ds, ref, key="bd_victim")

st.subheader("Trigger")
trigger = ui.trigger_designer(ds, key="bd_trigger")

tab_b, tab_h, tab_c = st.tabs(["BadNets", "Hidden trigger", "Side by side"])

with tab_b:
    sweep = st.selectbox(
        "Sweep over",
        list(SWEEPS),
        format_func=lambda s: SWEEPS[s].label,
        key="bd_sweep",
        help="poison rate, trigger size, the noise level of a blended noise trigger, or the "
        "Gaussian noise the defender adds while training.",
    )
    info = SWEEPS[sweep]
    st.caption(info.help)
    with st.form("bd_form"):
        c1, c2 = st.columns(2)
        target = ui.class_select(ds, "Target class", 0, key="bd_target", container=c1)
        cfg = param_form(BadNets, key="bd_cfg", exclude=("target_class",), container=c2)
        values = ui.values_select(
            f"{info.label} values (one model each)",
            info.choices,
            info.defaults,
            key=f"bd_values.{sweep}",
            pct=sweep == "poison_rate",
        )
        run_b = st.form_submit_button("Run BadNets", type="primary")
    if run_b and trigger is not None and cfg is not None:
        if not values:
            st.error("Pick at least one value to sweep over.")
        else:
            cfg = cfg.replace(target_class=target)
            args = (ds, arch, recipe, trigger, cfg, sweep, values)
            jobs.start("badnets", backdoor_spec(*args), backdoor_job(*args))
    record_b = jobs.show("badnets")
    if record_b is not None:
        ui.show_backdoor(record_b, ds)

with tab_h:
    st.caption(
        "The attacker's feature extractor is the clean model above. *head*: the victim "
        "retrains only the last layer on top of it (the paper's setting); *full*: the "
        "victim retrains the whole network from scratch (harder for the attacker)."
    )
    with st.form("ht_form"):
        c1, c2 = st.columns(2)
        source = ui.class_select(
            ds, "Source class (gets the trigger)", 1, key="ht_src", container=c1
        )
        target_h = ui.class_select(ds, "Target class (poisons)", 0, key="ht_tgt", container=c2)
        hcfg = param_form(
            HiddenTrigger, key="ht_cfg", exclude=("source_class", "target_class", "eps")
        )
        eps_values = ui.values_select(
            "ε values (one set of poisons and one victim each)",
            (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5),
            DEFAULT_EPS,
            key="ht_eps",
            pct=False,
        )
        run_h = st.form_submit_button("Run hidden trigger", type="primary")
    if run_h and trigger is not None and hcfg is not None:
        if not eps_values:
            st.error("Pick at least one ε.")
        elif source == target_h:
            st.error("Source and target class must differ.")
        else:
            hcfg = hcfg.replace(source_class=source, target_class=target_h, eps=max(eps_values))
            args_h = (ds, arch, recipe, trigger, hcfg, eps_values)
            jobs.start("hidden", hidden_trigger_spec(*args_h), hidden_trigger_job(*args_h))
    record_h = jobs.show("hidden")
    if record_h is not None:
        ui.show_hidden(record_h, ds)

with tab_c:
    ui.show_side_by_side(record_b, record_h)
