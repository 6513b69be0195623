"""Postprocessing & ensembles: each output defense's effect on privacy, extraction and
accuracy, in one chart and one table."""

import streamlit as st

from robustcore.experiments.postprocessing import Postprocessing
from robustcore.ui import experiment, jobs, state
from robustcore.ui import postprocessing as ui
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
ds, session = state.require_target()

exp, target = ui.form(ds, session)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, Postprocessing, ds, target)
if result is not None:
    ui.show_results(result)
elif jobs.current(ui.SLOT) is None:
    st.info(
        "Press **Compare defenses**. The default compares six output defenses and three "
        "ensemble rules on a small overfit MLP, with 4 shadow models per membership attacker "
        "and a 500-query copycat per row."
    )
