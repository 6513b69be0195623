"""Membership inference: ROC (linear and log-log), TPR at low FPR, score histograms,
attacks side by side, and overfitting as a knob."""

import streamlit as st

from robustcore.attacks.inference import KNOBS, MembershipInference, parse_values
from robustcore.errors import ValidationError
from robustcore.models import TrainRecipe
from robustcore.runs.membership_job import (
    membership_job,
    membership_spec,
    overfit_sweep_job,
    overfit_sweep_spec,
)
from robustcore.ui import jobs, state
from robustcore.ui.forms import param_form
from robustcore.ui.privacy import (
    OVERFIT_DEFAULTS,
    arch_select,
    show_membership,
    show_sweep,
    sweep_knob,
    sweep_values,
    target_controls,
    target_source,
)
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
ds, model, ref = state.require_model()

tab_attack, tab_sweep = st.tabs(["Attacks", "Overfitting sweep"])
with tab_attack:
    source = target_source("mi")
    with st.form("mi_form"):
        left, right = st.columns(2, gap="large")
        target = target_controls(source, ds, model, ref, "mi", container=left)
        right.markdown("**Attacks**")
        config = param_form(MembershipInference, key="mi_cfg", container=right)
        run = st.form_submit_button("Run membership inference", type="primary")
    if run and target is not None and config is not None:
        jobs.start(
            "membership",
            membership_spec(ds, target, config),
            membership_job(ds, target, config),
        )
    record = jobs.show("membership")
    if record is not None:
        show_membership(record)
    elif jobs.current("membership") is None:
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
    knob = sweep_knob("mi_sweep")
    with st.form("mi_sweep_form"):
        text = sweep_values(knob, "mi_sweep")
        arch = arch_select(ds, "mi_sweep_arch", "Architecture")
        base = param_form(
            TrainRecipe,
            key="mi_sweep_recipe",
            values=OVERFIT_DEFAULTS,
            exclude=("batch_size", "optimizer", "noise_std", knob),
        )
        sweep = st.form_submit_button("Run sweep", type="primary")
    if sweep and base is not None:
        try:
            values = parse_values(text, knob)
        except ValidationError as exc:
            st.error(str(exc))
        else:
            spec = overfit_sweep_spec(ds, arch, base, knob, values, max_per_side=1000, seed=0)
            job = overfit_sweep_job(ds, arch, base, knob, values, max_per_side=1000, seed=0)
            jobs.start("membership_sweep", spec, job)
    swept = jobs.show("membership_sweep")
    if swept is not None:
        show_sweep(swept)
    elif jobs.current("membership_sweep") is None:
        st.caption(f"Knobs: {', '.join(KNOBS.values())}.")
