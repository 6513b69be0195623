"""Query limitation: a per-client query budget and a stateful detector of attack query
streams, measured against SimBA and ZOO, benign clients and an adaptive attacker."""

import streamlit as st

from robustcore.experiments.query_limitation import QueryLimitation
from robustcore.ui import experiment, jobs, state
from robustcore.ui import query_limitation as ui
from robustcore.ui.shell import page_setup

page_setup(
    "Query limitation",
    "A black-box attack needs many queries, and they look alike. The service can cap the "
    "queries each client may send, and remember each client's recent queries: Chen, Carlini "
    "& Wagner (2020, *Stateful Detection of Black-Box Adversarial Attacks*) flag a client "
    "when a new query's mean distance to its k nearest earlier queries is smaller than "
    "natural images ever are. Below: when each attack is caught, what it achieves before "
    "that, how often honest clients are flagged, and what an attacker who knows the "
    "detector pays to get around it.",
)

ds, target = state.require_target()
exp = ui.form(ds, target)
if exp is not None:
    experiment.start(ui.SLOT, exp, ds)

res = experiment.show(ui.SLOT, QueryLimitation, ds, target)
if res is not None:
    ui.results(res)
elif jobs.current(ui.SLOT) is None:
    st.info(
        "Press **Run attacks against the limits**. The default calibrates the detector on "
        "4,000 training images (0.1 % false positives, k = 50), sends SimBA (pixel and DCT) "
        "and ZOO against 50 test images with a budget of 2,000 queries each, and 20 honest "
        "clients with 200 test images each. A run you did before is shown at once."
    )
