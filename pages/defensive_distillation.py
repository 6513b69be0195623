"""Defensive distillation: a temperature sweep, naive against adaptive attacks."""

import streamlit as st

from robustcore.experiments.defensive_distillation import DefensiveDistillation
from robustcore.ui import defensive_distillation as ui
from robustcore.ui import experiment, jobs, state
from robustcore.ui.shell import page_setup

page_setup(
    "Defensive distillation",
    "**Defensive distillation** (Papernot et al. 2016) trains a teacher at temperature T, "
    "then a student on the teacher's softened probabilities, and deploys the student at "
    "T = 1. Its logits come out about T times larger, the softmax saturates and the "
    "gradient of the loss vanishes, so gradient attacks stall. Carlini & Wagner (2016) "
    "showed that this is **gradient masking**: attacking the logits divided by T, or the "
    "logits with C&W, succeeds as before. This page shows both, and the sanity checks that "
    "catch the masking without being asked.",
)
ds, target = state.require_target()

exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, DefensiveDistillation, ds, target)
if result is not None:
    ui.show_results(ds, result)
elif jobs.current(ui.SLOT) is None:
    st.info("Choose the temperatures and press **Distil and attack**.")
