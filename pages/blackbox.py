"""Black-box evasion: SimBA and ZOO through the query interface, and transfer attacks."""

import streamlit as st

from robustcore.ui import blackbox, jobs, state
from robustcore.ui.shell import page_setup

page_setup(
    "Black-box attacks",
    "The attacker cannot see inside the model: it can only send inputs and read back the "
    "answers, and every query counts. **SimBA** tries one random direction at a time (pixels "
    "or low-frequency DCT patterns) and keeps it when the true class loses probability (Guo "
    "et al. 2019); **ZOO** estimates gradients from pairs of queries (Chen et al. 2017). "
    "**Transfer attacks** need no queries at all: craft a white-box attack on a surrogate "
    "model and hope it carries over (Papernot et al. 2016).",
)

ds, model, ref = state.require_model()

st.subheader("Query attacks: success against queries")
plan = blackbox.attack_form(ds, ref)
if plan is not None:
    blackbox.start_attacks(ds, model, ref, plan)
rec = jobs.show(blackbox.SLOT)
if rec is not None:
    blackbox.attack_results(ds, rec)
elif jobs.current(blackbox.SLOT) is None:
    st.info(
        "Press **Run black-box attacks**: SimBA (pixel and DCT) and ZOO attack the same "
        "correctly classified test images through a query interface that counts every query. "
        "A run you did before is shown at once from the result store."
    )

st.subheader("Transfer attacks: surrogate × target")
tplan = blackbox.transfer_form(ds, ref)
if tplan is not None:
    blackbox.start_transfer(ds, ref, tplan)
trec = jobs.show(blackbox.TRANSFER_SLOT)
if trec is not None:
    blackbox.transfer_results(trec)
elif jobs.current(blackbox.TRANSFER_SLOT) is None:
    st.info(
        "Press **Run transfer matrix**: every architecture is trained on the same data (or "
        "loaded from the zoo), the attack is crafted on each and sent to all the others."
    )
