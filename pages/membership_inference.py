"""Membership inference: ROC (linear and log-log), TPR at low FPR, score histograms,
attacks side by side, and overfitting as a knob."""

import streamlit as st

from robustcore.experiments.membership_inference import MembershipInferenceExperiment
from robustcore.experiments.overfitting_sweep import KNOBS, OverfittingSweep
from robustcore.ui import experiment, jobs, state
from robustcore.ui import membership_inference as ui
from robustcore.ui.shell import page_setup

page_setup(
    "Membership inference",
    "Given a model's answers, can an attacker tell whether an example was in its training "
    "set? The loss-threshold attack (Yeom et al. 2018) flags examples the model fits too "
    "well; Shokri et al. (2017) learn the difference from *shadow models* trained like the "
    "target; LiRA (Carlini et al. 2022) fits, per example, how the model's confidence is "
    "distributed with and without that example, and judges attacks by their **true-positive "
    "rate at a very low false-positive rate**, read off the log-log ROC curve.",
)
ds, session = state.require_target()

tab_attack, tab_sweep = st.tabs(["Attacks", "Overfitting sweep"])
with tab_attack:
    exp, target = ui.attack_form(ds, session)
    if exp is not None:
        experiment.start(ui.SLOT, exp, ds)
    result = experiment.show(ui.SLOT, MembershipInferenceExperiment, ds, target)
    if result is not None:
        ui.show_results(result)
    elif jobs.current(ui.SLOT) is None:
        st.info(
            "Press **Run membership inference**. The default attacks a small MLP trained on "
            "500 digits for 40 epochs (100% training accuracy) with 8 shadow models; it takes "
            "a few seconds to half a minute on a CPU."
        )

with tab_sweep:
    st.markdown(
        "Overfitting as a knob: one target per value, each attacked with the loss threshold "
        "(no shadow models). Watch the membership advantage follow the train/test gap."
    )
    sweep, base = ui.sweep_form(ds)
    if sweep is not None:
        experiment.start(ui.SWEEP_SLOT, sweep, ds)
    swept = experiment.show(ui.SWEEP_SLOT, OverfittingSweep, ds, base)
    if swept is not None:
        ui.show_sweep(swept)
    elif jobs.current(ui.SWEEP_SLOT) is None:
        st.caption(f"Knobs: {', '.join(KNOBS.values())}.")
