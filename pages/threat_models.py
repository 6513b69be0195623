"""Threat models: the same model and budget attacked by white-, gray-, black-box and
label-only attackers."""

import streamlit as st

from robustcore.experiments.threat_models import ThreatModels
from robustcore.ui import experiment, jobs, state
from robustcore.ui import threat_models as ui
from robustcore.ui.shell import page_setup

page_setup(
    "Threat models",
    "How much an attacker knows decides how well it does. The same images of the current "
    "model are attacked with one budget by a **white-box** attacker (PGD with the model's "
    "gradients; Madry et al. 2018), a **gray-box** one (PGD on its own surrogate trained on "
    "the same data, transferred; Papernot et al. 2016), a **black-box** one that only reads "
    "the API's probabilities (SimBA, Guo et al. 2019; ZOO, Chen et al. 2017) and a "
    "**label-only** one that trains its surrogate on the API's labels (Papernot et al. "
    "2017). Less knowledge should mean less success, or more cost.",
)

ds, target = state.require_target()
exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

res = experiment.show(ui.SLOT, ThreatModels, ds, target)
if res is not None:
    ui.results(ds, res)
elif jobs.current(ui.SLOT) is None:
    st.info(
        "Press **Run threat models**. The default attacks 30 correctly classified test "
        "images at L∞ ε = 0.2 with a budget of 1,000 queries per image; it trains two "
        "small surrogates (kept in the model zoo) in the time estimated above, then is "
        "served from the run store."
    )
