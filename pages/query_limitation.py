"""Query limitation: a per-client query budget and a stateful detector of attack query
streams, measured against SimBA and ZOO, benign clients and an adaptive attacker."""

import streamlit as st

from robustcore.ui import jobs, query_limit, state
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

ds, model, ref = state.require_model()
plan = query_limit.plan_form(ds)
if plan is not None:
    query_limit.start(ds, model, ref, plan)

rec = jobs.show(query_limit.SLOT)
if rec is not None:
    query_limit.results(rec)
elif jobs.current(query_limit.SLOT) is None:
    st.info(
        "Press **Run attacks against the limits**. The default calibrates the detector on "
        "4,000 training images (0.1 % false positives, k = 50), sends SimBA (pixel and DCT) "
        "and ZOO against 50 test images with a budget of 2,000 queries each, and 20 honest "
        "clients with 200 test images each. A run you did before is shown at once."
    )
