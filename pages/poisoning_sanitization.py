"""Poisoning sanitization: find BadNets poisons in the activations, remove them, retrain."""

import streamlit as st

from robustcore.attacks.poisoning import BadNets
from robustcore.runs.poisoning_job import DETECTORS, sanitize_job, sanitize_spec
from robustcore.ui import jobs, state
from robustcore.ui import poisoning as ui
from robustcore.ui.forms import param_form
from robustcore.ui.shell import page_setup

page_setup(
    "Poisoning sanitization",
    "A backdoor leaves a mark inside the network: the poisoned images of a label activate "
    "it differently from the genuine ones. **Activation clustering** (Chen et al. 2018) "
    "splits each label's penultimate activations in two and flags a small, separate "
    "cluster; **spectral signatures** (Tran, Li & Madry 2018) flag the points that stick "
    "out most along the top singular direction. Here a BadNets attack poisons the "
    "training set, a detector removes what it flags, and the model is retrained on the rest.",
)

ds, _model, ref = state.require_model()
arch, recipe = ui.victim_model(ds, ref, key="san_victim")

with st.expander("Trigger of the attack (defaults: the Backdoors page's)"):
    trigger = ui.trigger_form(ds, key="san_trigger")

detector_name = st.radio(
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
        target = ui.class_select(ds, "Target class", 0, key="san_target")
        attack = param_form(BadNets, key="san_attack", exclude=("target_class",))
    with right:
        st.markdown(f"**{DETECTORS[detector_name].title}**")
        detector = param_form(DETECTORS[detector_name], key=f"san_{detector_name}")
    run = st.form_submit_button("Poison, detect and retrain", type="primary")

if run and trigger is not None and attack is not None and detector is not None:
    attack = attack.replace(target_class=target)
    n_poison = round(attack.poison_rate * ds.n_train)
    share = n_poison / max(1, int((ds.y_train == target).sum()) + n_poison)
    if attack.mode == "all_to_one" and share > 0.35:
        st.warning(
            f"The poisons would make up {share:.0%} of the target label: activation "
            "clustering's size rule assumes poisons are a minority of their label (at most "
            "its size threshold), so expect it to miss them."
        )
    args = (ds, arch, recipe, trigger, attack, detector)
    jobs.start("sanitize", sanitize_spec(*args), sanitize_job(*args))

record = jobs.show("sanitize")
if record is not None:
    ui.show_sanitize(record, ds)
