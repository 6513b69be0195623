"""Home: what the workbench is, and the current model's clean performance."""

import streamlit as st

from robustcore.experiments.train import Train
from robustcore.runs import get_runner
from robustcore.ui import jobs, state
from robustcore.ui.home import model_overview
from robustcore.ui.scorecard import scorecard_section
from robustcore.ui.shell import page_setup

page_setup(
    "Adversarial Robustness Workbench",
    "Attack a real model in your browser and see what happens; then defend it and check "
    "what the defense really buys. A small perturbation, chosen by an attacker, can flip a "
    "classifier's decision while a person sees no change (Szegedy et al. 2014; Goodfellow "
    "et al. 2015). Everything here runs on real data and real models: start by choosing "
    "a dataset and a model in the sidebar.",
)

got = state.current_model()
if got is None:
    if jobs.current("model") is not None:
        st.info("Training is running: its progress is shown in the sidebar.")
    else:
        st.info(
            "**Get started:** the sidebar preselects *MNIST (5,000 digits)* and a small CNN. "
            "Press **Train / load model** (the sidebar says how long it should take on this "
            "machine): it is stored in the model zoo so that the next time it loads at once. "
            "You can also upload your own `.npz` dataset or your own weights."
        )
    st.stop()

ds, model, ref = got
record = get_runner().store.get(ref.run_key)
if record is None:
    st.warning("The stored report for this model is gone; press Train / load model again.")
    st.stop()
model_overview(Train.result(record), ds, ref)
scorecard_section(ds, ref.target(model))
