"""Model inversion: MIFace class representatives next to the real class means."""

import streamlit as st

from robustcore.experiments.model_inversion import ModelInversion
from robustcore.ui import experiment, jobs, state
from robustcore.ui import model_inversion as ui
from robustcore.ui.shell import page_setup

page_setup(
    "Model inversion",
    "Can a model give away what its training data looks like? **MIFace** (Fredrikson, Jha & "
    "Ristenpart 2015, *Model Inversion Attacks that Exploit Confidence Information*) starts "
    "from a blank input and runs gradient descent on the input until the model is confident "
    "it sees a given class; the result is the model's *class representative*. All classes "
    "are inverted at once and each reconstruction is shown above the real mean of that "
    "class's training images.",
)
ds, target = state.require_target()

exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

result = experiment.show(ui.SLOT, ModelInversion, ds, target)
if result is not None:
    ui.show_results(ds, result)
elif jobs.current(ui.SLOT) is None:
    st.info("Choose the settings and press **Run model inversion** (a few seconds).")
