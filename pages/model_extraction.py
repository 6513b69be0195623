"""Model extraction: steal the current model through its prediction API."""

import streamlit as st

from robustcore.experiments.model_extraction import ModelExtraction
from robustcore.ui import experiment, jobs, state
from robustcore.ui import model_extraction as ui
from robustcore.ui.shell import page_setup

page_setup(
    "Model extraction",
    "Anyone who can query a model can copy it. The attacker sends inputs to the prediction "
    "API, keeps the answers and trains a *student* network on them (Copycat CNN, "
    "Correia-Silva et al. 2018; Knockoff Nets, Orekondy et al. 2019; Tramèr et al. 2016). "
    "**Accuracy** is the copy's accuracy on the real test labels; **fidelity** is how often "
    "it agrees with the target, which is what a transfer attack needs from a surrogate.",
)
ds, target = state.require_target()

exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, ModelExtraction, ds, target)
if result is not None:
    ui.show_results(ds, result)
elif jobs.current(ui.SLOT) is None:
    st.info(
        "Choose budgets, outputs and sources and press **Run model stealing**. The "
        "default trains 16 small students (an MLP, 20 epochs each) in the time estimated "
        "above, then is served from the run store."
    )
