"""Backdoors: BadNets and the hidden-trigger backdoor, side by side."""

import streamlit as st

from robustcore.experiments.backdoors import Backdoors
from robustcore.experiments.hidden_trigger import HiddenTriggerBackdoor
from robustcore.ui import backdoors as ui
from robustcore.ui import experiment, state
from robustcore.ui.shell import page_setup
from robustcore.ui.triggers import trigger_designer, victim_arch

page_setup(
    "Backdoors",
    "A backdoored model behaves normally until its input carries a trigger, then it obeys "
    "the attacker. **BadNets** (Gu et al. 2017) stamps the trigger on a few training images "
    "and relabels them; the **hidden-trigger backdoor** (Saha et al. 2020) keeps every "
    "label correct and never shows the trigger: its poisons are target-class images nudged "
    "within an L∞ budget ε until, inside the network, they look like triggered source "
    "images. Both are measured by clean accuracy and attack success on triggered test inputs.",
)

ds, target = state.require_target()
victim = victim_arch(ds, target, key="bd_victim")

st.subheader("Trigger")
trigger = trigger_designer(ds, key="bd_trigger", values=Backdoors.for_dataset(ds).trigger.to_dict())

tab_b, tab_h, tab_c = st.tabs(["BadNets", "Hidden trigger", "Side by side"])

with tab_b:
    exp_b = ui.badnets_form(ds, target, trigger, victim)
    if exp_b is not None:
        experiment.start("badnets", exp_b, ds)
    result_b = experiment.show("badnets", Backdoors, ds, target)
    if result_b is not None:
        ui.show_backdoor(result_b, ds)

with tab_h:
    exp_h = ui.hidden_form(ds, target, trigger, victim)
    if exp_h is not None:
        experiment.start("hidden", exp_h, ds)
    result_h = experiment.show("hidden", HiddenTriggerBackdoor, ds, target)
    if result_h is not None:
        ui.show_hidden(result_h, ds)

with tab_c:
    ui.show_side_by_side(result_b, result_h)
